//! The `ffi` backend: Daily's own engine through the daily-core-sdk C API, from a
//! **user-supplied** `libdaily_core` loaded at run time.
//!
//! This crate ships and downloads neither the library nor its header. Get the SDK for your
//! platform from Daily (the daily-co/daily-core-sdk releases: `lib/libdaily_core.so`,
//! `lib/libdaily_core.dylib` or `bin/daily_core.dll`) under Daily's terms, then point at it:
//!
//! ```text
//! export DAILY_CORE_LIB=/opt/daily-core-sdk/lib/libdaily_core.so
//! ```
//!
//! or [`FfiConfig::library`]. The ~20 C functions used are declared by hand in this module,
//! following `daily_core.h` of daily-core-sdk [`SDK_VERSION`]; the C API has no version call,
//! so a library of another version with a different struct layout cannot be detected. Missing
//! symbols are detected and reported.
//!
//! daily-core allows one context per process, and this backend one call at a time per
//! process (a second concurrent join is refused as [`BackendError::Unavailable`]; use the
//! sidecar backend for several calls). The library is loaded and its context created on the
//! first join, and both stay until the process exits. Events arrive on daily-core's thread
//! and are only forwarded into channels there; requests are correlated by id with a timeout.
//! The virtual speaker is read in non-blocking mode every 20 ms on a thread of ours.
//!
//! All `unsafe` code of this crate is in this module.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_media::{AudioFormat, AudioFrame};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{BackendChannels, BackendError, DailyBackend, JoinFailure, JoinInfo, JoinRequest};
use crate::envelope::{self, Recipient};

/// The daily-core-sdk version whose `daily_core.h` these declarations follow.
pub const SDK_VERSION: &str = "0.22.0";
/// Environment variable naming the library.
pub const LIBRARY_ENV: &str = "DAILY_CORE_LIB";
/// Library name sent to Daily by default: the one Daily's own C++ Pipecat client sends for
/// daily-core-sdk. Whether a Rust wrapper should send something else is an open question for
/// Daily.
pub const DEFAULT_ABOUT_LIBRARY: &str = "daily-core-sdk";

const NAME: &str = "ffi";

/// daily-core log levels (`DailyLogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogLevel {
    /// Nothing (daily-core still prints some errors to stdout).
    #[default]
    Off,
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information.
    Info,
    /// Debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn as_c(self) -> c_int {
        match self {
            LogLevel::Off => 0,
            LogLevel::Error => 1,
            LogLevel::Warn => 2,
            LogLevel::Info => 3,
            LogLevel::Debug => 4,
            LogLevel::Trace => 5,
        }
    }
}

/// Where the library is and how to run it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FfiConfig {
    /// The `libdaily_core` shared library (default: `$DAILY_CORE_LIB`).
    pub library: Option<PathBuf>,
    /// Libraries to load first with global symbol visibility (Unix): only for the ABI smoke
    /// test against daily-python's module, which needs libpython's symbols. Leave empty for
    /// the real SDK.
    pub preload: Vec<PathBuf>,
    /// Time limit of each daily-core request but join (default 30 s).
    pub request_timeout: Duration,
    /// Time limit of the join request (default 45 s).
    pub join_timeout: Duration,
    /// daily-core's log level (default off).
    pub log_level: LogLevel,
    /// The client library name reported to Daily.
    pub about_library: String,
    /// The client library version reported to Daily.
    pub about_version: String,
}

impl Default for FfiConfig {
    fn default() -> Self {
        FfiConfig {
            library: None,
            preload: Vec::new(),
            request_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(45),
            log_level: LogLevel::Off,
            about_library: DEFAULT_ABOUT_LIBRARY.into(),
            about_version: SDK_VERSION.into(),
        }
    }
}

impl FfiConfig {
    /// The defaults with `DAILY_CORE_LIB` applied.
    pub fn from_env() -> Self {
        FfiConfig {
            library: std::env::var_os(LIBRARY_ENV).filter(|p| !p.is_empty()).map(PathBuf::from),
            ..FfiConfig::default()
        }
    }

    /// The library to load.
    #[must_use]
    pub fn library(mut self, path: impl Into<PathBuf>) -> Self {
        self.library = Some(path.into());
        self
    }

    /// A library to load first, globally (ABI smoke tests only).
    #[must_use]
    pub fn preload(mut self, path: impl Into<PathBuf>) -> Self {
        self.preload.push(path.into());
        self
    }

    /// Another request time limit.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Another join time limit.
    #[must_use]
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }
}

// --- The C API, declared by hand (daily_core.h of daily-core-sdk 0.22.0). ---------------

#[repr(C)]
#[derive(Clone, Copy)]
struct ContextDelegate {
    ptr: *mut c_void,
}

type GetUserMediaFn = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *const c_char,
) -> *mut c_void;
type GetDisplayMediaFn = unsafe extern "C" fn(
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
) -> *mut c_void;
type GetEnumeratedDevicesFn = unsafe extern "C" fn(*mut c_void) -> *mut c_char;
type CreateAudioDeviceModuleFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void;
type CreateFactoryFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type GetAudioDeviceFn = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type SetAudioDeviceFn = unsafe extern "C" fn(*mut c_void, *const c_char);
type GetIgnoredNetworkDevicesFn = unsafe extern "C" fn(*mut c_void) -> *const c_char;

#[repr(C)]
#[derive(Clone, Copy)]
struct WebRtcContextDelegateFns {
    get_user_media: Option<GetUserMediaFn>,
    get_display_media: Option<GetDisplayMediaFn>,
    get_enumerated_devices: Option<GetEnumeratedDevicesFn>,
    create_audio_device_module: Option<CreateAudioDeviceModuleFn>,
    create_video_decoder_factory: Option<CreateFactoryFn>,
    create_video_encoder_factory: Option<CreateFactoryFn>,
    create_audio_decoder_factory: Option<CreateFactoryFn>,
    create_audio_encoder_factory: Option<CreateFactoryFn>,
    get_audio_device: Option<GetAudioDeviceFn>,
    set_audio_device: Option<SetAudioDeviceFn>,
    get_ignored_network_devices: Option<GetIgnoredNetworkDevicesFn>,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct WebRtcContextDelegate {
    ptr: *mut c_void,
    fns: WebRtcContextDelegateFns,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct AboutClient {
    library: *const c_char,
    version: *const c_char,
    operating_system: *const c_char,
    operating_system_version: *const c_char,
    app_package_name: *const c_char,
}

type OnEventFn = unsafe extern "C" fn(*mut c_void, *const c_char, isize);
type OnAudioDataFn = unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_void);
type OnVideoFrameFn = unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_void);

#[repr(C)]
#[derive(Clone, Copy)]
struct CallClientDelegateFns {
    on_event: Option<OnEventFn>,
    on_audio_data: Option<OnAudioDataFn>,
    on_video_frame: Option<OnVideoFrameFn>,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CallClientDelegate {
    ptr: *mut c_void,
    fns: CallClientDelegateFns,
}

type AudioCallbackFn = unsafe extern "C" fn(*mut c_void, u64, usize);

/// The functions used, copied out of the (never unloaded) library.
#[derive(Clone, Copy)]
struct Api {
    set_log_level: unsafe extern "C" fn(c_int),
    context_create: unsafe extern "C" fn(ContextDelegate, WebRtcContextDelegate, AboutClient),
    create_device_manager: unsafe extern "C" fn() -> *mut c_void,
    create_audio_device_module: unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void,
    get_user_media: unsafe extern "C" fn(
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *const c_char,
    ) -> *mut c_void,
    enumerated_devices: unsafe extern "C" fn(*const c_void) -> *mut c_char,
    create_speaker: unsafe extern "C" fn(*mut c_void, *const c_char, u32, u8, bool) -> *mut c_void,
    create_microphone:
        unsafe extern "C" fn(*mut c_void, *const c_char, u32, u8, bool) -> *mut c_void,
    select_speaker: unsafe extern "C" fn(*mut c_void, *const c_char) -> bool,
    speaker_read: unsafe extern "C" fn(
        *mut c_void,
        *mut i16,
        usize,
        u64,
        Option<AudioCallbackFn>,
        *mut c_void,
    ) -> i32,
    mic_write: unsafe extern "C" fn(
        *mut c_void,
        *const i16,
        usize,
        u64,
        Option<AudioCallbackFn>,
        *mut c_void,
    ) -> i32,
    client_create: unsafe extern "C" fn() -> *mut c_void,
    client_destroy: unsafe extern "C" fn(*mut c_void),
    client_set_delegate: unsafe extern "C" fn(*mut c_void, CallClientDelegate),
    client_join:
        unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_char, *const c_char),
    client_leave: unsafe extern "C" fn(*mut c_void, u64),
    client_send_app_message: unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_char),
    client_update_subscription_profiles: unsafe extern "C" fn(*mut c_void, u64, *const c_char),
    client_set_user_name: unsafe extern "C" fn(*mut c_void, u64, *const c_char),
    client_participants: unsafe extern "C" fn(*mut c_void) -> *const c_char,
}

/// Every symbol the backend needs, for the up-front check.
pub const REQUIRED_SYMBOLS: &[&str] = &[
    "daily_core_set_log_level",
    "daily_core_context_create",
    "daily_core_context_create_device_manager",
    "daily_core_context_create_audio_device_module",
    "daily_core_context_device_manager_get_user_media",
    "daily_core_context_device_manager_enumerated_devices",
    "daily_core_context_create_virtual_speaker_device",
    "daily_core_context_create_virtual_microphone_device",
    "daily_core_context_select_speaker_device",
    "daily_core_context_virtual_speaker_device_read_frames",
    "daily_core_context_virtual_microphone_device_write_frames",
    "daily_core_call_client_create",
    "daily_core_call_client_destroy",
    "daily_core_call_client_set_delegate",
    "daily_core_call_client_join",
    "daily_core_call_client_leave",
    "daily_core_call_client_send_app_message",
    "daily_core_call_client_update_subscription_profiles",
    "daily_core_call_client_set_user_name",
    "daily_core_call_client_participants",
];

/// A raw pointer owned by daily-core, used from several threads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Ptr(*mut c_void);

impl Ptr {
    /// The pointer (a method, so closures capture the `Send` wrapper, not the raw field).
    fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the pointers wrapped are daily-core objects (device manager, devices, call clients)
// whose C API is documented as callable from any thread (Daily's C++ client does so); this
// module never dereferences them itself.
unsafe impl Send for Ptr {}
// SAFETY: as above; sharing only copies the address.
unsafe impl Sync for Ptr {}

/// The process-wide daily-core context.
struct Context {
    api: Api,
    library: PathBuf,
    device_manager: Ptr,
    devices: Mutex<HashMap<(String, u32, u16), Ptr>>,
}

static CONTEXT: Mutex<Option<&'static Context>> = Mutex::new(None);
/// The API for the context callbacks, which daily-core may call while the context is created.
static CALLBACK_API: OnceLock<(Api, Ptr)> = OnceLock::new();
/// One call at a time per process.
static IN_CALL: AtomicBool = AtomicBool::new(false);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable { backend: NAME, reason: reason.into() }
}

/// Loads a library and checks it exports [`REQUIRED_SYMBOLS`], without creating a context.
/// Returns the missing symbols (empty: all there).
///
/// # Errors
/// [`BackendError::Unavailable`] when the library cannot be loaded.
pub fn check_library(
    path: &std::path::Path,
    preload: &[PathBuf],
) -> Result<Vec<&'static str>, BackendError> {
    let library = load(path, preload)?;
    Ok(REQUIRED_SYMBOLS
        .iter()
        .copied()
        // SAFETY: only looks the symbol up (as an untyped pointer); nothing is called.
        .filter(|name| unsafe { library.get::<*const c_void>(*name) }.is_err())
        .collect())
}

fn load(path: &std::path::Path, preload: &[PathBuf]) -> Result<libloading::Library, BackendError> {
    for extra in preload {
        #[cfg(unix)]
        {
            use libloading::os::unix::{Library as UnixLibrary, RTLD_GLOBAL, RTLD_NOW};
            // SAFETY: loading runs the library's initialisers; the user named this library as
            // a dependency of daily-core (libpython for the ABI smoke test). It stays loaded.
            let lib =
                unsafe { UnixLibrary::open(Some(extra.as_path()), RTLD_NOW | RTLD_GLOBAL) }
                    .map_err(|e| unavailable(format!("cannot preload {}: {e}", extra.display())))?;
            std::mem::forget(lib);
        }
        #[cfg(not(unix))]
        {
            return Err(unavailable(format!(
                "preloading {} is only supported on Unix",
                extra.display()
            )));
        }
    }
    // SAFETY: loading runs the library's initialisers. The user supplied this library as
    // Daily's daily-core; its initialisers are Daily's.
    unsafe { libloading::Library::new(path) }.map_err(|e| {
        unavailable(format!(
            "cannot load {} ({e}); point {LIBRARY_ENV} at libdaily_core from the daily-core-sdk release for this platform",
            path.display()
        ))
    })
}

fn resolve(library: &'static libloading::Library) -> Result<Api, BackendError> {
    let missing: Vec<&str> = REQUIRED_SYMBOLS
        .iter()
        .copied()
        // SAFETY: only looks the symbol up; nothing is called.
        .filter(|name| unsafe { library.get::<*const c_void>(*name) }.is_err())
        .collect();
    if !missing.is_empty() {
        return Err(unavailable(format!(
            "the library does not export {} (is it libdaily_core from daily-core-sdk {SDK_VERSION}?)",
            missing.join(", ")
        )));
    }
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol exists (checked above) and is declared in daily_core.h with
            // the signature of the field it is assigned to. The library is never unloaded, so
            // the copied function pointer stays valid.
            *unsafe { library.get($name) }.map_err(|e| unavailable(format!("{}: {e}", $name)))?
        };
    }
    Ok(Api {
        set_log_level: sym!("daily_core_set_log_level"),
        context_create: sym!("daily_core_context_create"),
        create_device_manager: sym!("daily_core_context_create_device_manager"),
        create_audio_device_module: sym!("daily_core_context_create_audio_device_module"),
        get_user_media: sym!("daily_core_context_device_manager_get_user_media"),
        enumerated_devices: sym!("daily_core_context_device_manager_enumerated_devices"),
        create_speaker: sym!("daily_core_context_create_virtual_speaker_device"),
        create_microphone: sym!("daily_core_context_create_virtual_microphone_device"),
        select_speaker: sym!("daily_core_context_select_speaker_device"),
        speaker_read: sym!("daily_core_context_virtual_speaker_device_read_frames"),
        mic_write: sym!("daily_core_context_virtual_microphone_device_write_frames"),
        client_create: sym!("daily_core_call_client_create"),
        client_destroy: sym!("daily_core_call_client_destroy"),
        client_set_delegate: sym!("daily_core_call_client_set_delegate"),
        client_join: sym!("daily_core_call_client_join"),
        client_leave: sym!("daily_core_call_client_leave"),
        client_send_app_message: sym!("daily_core_call_client_send_app_message"),
        client_update_subscription_profiles: sym!(
            "daily_core_call_client_update_subscription_profiles"
        ),
        client_set_user_name: sym!("daily_core_call_client_set_user_name"),
        client_participants: sym!("daily_core_call_client_participants"),
    })
}

// --- Context callbacks (called by daily-core on its threads). ---------------------------

unsafe extern "C" fn cb_create_audio_device_module(
    _delegate: *mut c_void,
    task_queue_factory: *mut c_void,
) -> *mut c_void {
    match CALLBACK_API.get() {
        // SAFETY: forwards daily-core's own arguments to the device manager it asked us to
        // use, as the C API documents for this callback.
        Some((api, dm)) => unsafe { (api.create_audio_device_module)(dm.0, task_queue_factory) },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn cb_get_user_media(
    _delegate: *mut c_void,
    factory: *mut c_void,
    signaling: *mut c_void,
    worker: *mut c_void,
    network: *mut c_void,
    constraints: *const c_char,
) -> *mut c_void {
    match CALLBACK_API.get() {
        // SAFETY: forwards daily-core's own arguments (borrowed for the call) to the device
        // manager, as documented for `get_user_media`.
        Some((api, dm)) => unsafe {
            (api.get_user_media)(dm.0, factory, signaling, worker, network, constraints)
        },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn cb_get_enumerated_devices(_delegate: *mut c_void) -> *mut c_char {
    match CALLBACK_API.get() {
        // SAFETY: the device manager returns an owned string that daily-core takes over.
        Some((api, dm)) => unsafe { (api.enumerated_devices)(dm.0) },
        None => std::ptr::null_mut(),
    }
}

unsafe extern "C" fn cb_get_audio_device(_delegate: *mut c_void) -> *const c_char {
    c"".as_ptr()
}

unsafe extern "C" fn cb_set_audio_device(_delegate: *mut c_void, _device: *const c_char) {}

fn context(config: &FfiConfig) -> Result<&'static Context, BackendError> {
    let mut slot = lock(&CONTEXT);
    let library_path = config.library.clone().ok_or_else(|| {
        unavailable(format!("no libdaily_core given: set {LIBRARY_ENV} or FfiConfig::library"))
    })?;
    if let Some(context) = *slot {
        if context.library != library_path {
            return Err(unavailable(format!(
                "daily-core is already loaded from {} in this process (one per process)",
                context.library.display()
            )));
        }
        return Ok(context);
    }
    let library: &'static libloading::Library =
        Box::leak(Box::new(load(&library_path, &config.preload)?));
    let api = resolve(library)?;
    // SAFETY: plain calls with no pointers; the context is not created yet, as the C API
    // requires for creating the device manager used by the WebRTC delegate.
    let device_manager = unsafe {
        (api.set_log_level)(config.log_level.as_c());
        (api.create_device_manager)()
    };
    if device_manager.is_null() {
        return Err(unavailable("daily-core could not create a device manager"));
    }
    let device_manager = Ptr(device_manager);
    if CALLBACK_API.set((api, device_manager)).is_err() {
        return Err(unavailable("daily-core was already initialised in this process"));
    }
    let strings = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
    // Leaked: daily-core may keep the about strings for the context's lifetime (the process).
    let about_library: &'static CStr = Box::leak(strings(&config.about_library).into_boxed_c_str());
    let about_version: &'static CStr = Box::leak(strings(&config.about_version).into_boxed_c_str());
    let os: &'static CStr = Box::leak(strings(std::env::consts::OS).into_boxed_c_str());
    let webrtc = WebRtcContextDelegate {
        ptr: device_manager.0,
        fns: WebRtcContextDelegateFns {
            get_user_media: Some(cb_get_user_media),
            get_display_media: None,
            get_enumerated_devices: Some(cb_get_enumerated_devices),
            create_audio_device_module: Some(cb_create_audio_device_module),
            create_video_decoder_factory: None,
            create_video_encoder_factory: None,
            create_audio_decoder_factory: None,
            create_audio_encoder_factory: None,
            get_audio_device: Some(cb_get_audio_device),
            set_audio_device: Some(cb_set_audio_device),
            get_ignored_network_devices: None,
        },
    };
    let about = AboutClient {
        library: about_library.as_ptr(),
        version: about_version.as_ptr(),
        operating_system: os.as_ptr(),
        operating_system_version: c"".as_ptr(),
        app_package_name: std::ptr::null(),
    };
    // SAFETY: the structs follow daily_core.h's layout; every pointer in them stays valid for
    // the process lifetime (leaked strings, static callbacks, the device manager).
    unsafe { (api.context_create)(ContextDelegate { ptr: std::ptr::null_mut() }, webrtc, about) };
    let context: &'static Context = Box::leak(Box::new(Context {
        api,
        library: library_path,
        device_manager,
        devices: Mutex::new(HashMap::new()),
    }));
    *slot = Some(context);
    tracing::info!(target: "pipecat_daily::ffi", library = %context.library.display(), "daily-core context created");
    Ok(context)
}

impl Context {
    /// The virtual device `name` in `format`, created once.
    fn device(
        &self,
        name: &str,
        format: AudioFormat,
        microphone: bool,
    ) -> Result<Ptr, BackendError> {
        let key = (
            format!("{}:{name}", if microphone { "mic" } else { "speaker" }),
            format.sample_rate,
            format.channels,
        );
        let mut devices = lock(&self.devices);
        if let Some(device) = devices.get(&key) {
            return Ok(*device);
        }
        // Names are unique per format: daily-core devices are fixed to one format.
        let full_name = format!("{name}-{}-{}", format.sample_rate, format.channels);
        let c_name =
            CString::new(full_name).map_err(|_| unavailable("device name contains NUL"))?;
        let channels =
            u8::try_from(format.channels).map_err(|_| unavailable("too many channels"))?;
        // SAFETY: the device manager is alive for the process; the name is a valid C string
        // for the call. Non-blocking devices, so reads and writes never wait.
        let device = unsafe {
            if microphone {
                (self.api.create_microphone)(
                    self.device_manager.0,
                    c_name.as_ptr(),
                    format.sample_rate,
                    channels,
                    true,
                )
            } else {
                (self.api.create_speaker)(
                    self.device_manager.0,
                    c_name.as_ptr(),
                    format.sample_rate,
                    channels,
                    true,
                )
            }
        };
        if device.is_null() {
            return Err(unavailable(format!(
                "daily-core could not create the virtual device {name}"
            )));
        }
        if !microphone {
            // SAFETY: as above.
            let selected =
                unsafe { (self.api.select_speaker)(self.device_manager.0, c_name.as_ptr()) };
            if !selected {
                return Err(unavailable("daily-core could not select the virtual speaker"));
            }
        }
        devices.insert(key, Ptr(device));
        Ok(Ptr(device))
    }

    fn device_name(name: &str, format: AudioFormat) -> String {
        format!("{name}-{}-{}", format.sample_rate, format.channels)
    }
}

// --- One call. --------------------------------------------------------------------------

/// The result of a daily-core request.
type Completion = Result<Value, String>;

/// Receives daily-core's events for one call client. Reached from the C callback through a
/// pointer owned by [`Call`].
struct Router {
    pending: Mutex<HashMap<u64, oneshot::Sender<Completion>>>,
    channels: Mutex<Option<BackendChannels>>,
}

impl Router {
    fn dispatch(&self, event: Value) {
        if let Some((id, result)) = request_completion(&event) {
            if let Some(tx) = lock(&self.pending).remove(&id) {
                let _ = tx.send(result);
            }
            return;
        }
        if let Some(channels) = lock(&self.channels).as_ref() {
            channels.event(event);
        }
    }
}

/// A `request-completed` event: `{"action":"request-completed","requestId":{"id":N},
/// "requestError":{"msg":…}}` or with `requestSuccess`.
fn request_completion(event: &Value) -> Option<(u64, Completion)> {
    if event.get("action").and_then(Value::as_str) != Some("request-completed") {
        return None;
    }
    let id = event.get("requestId")?.get("id")?.as_u64()?;
    let result = match event.get("requestError") {
        Some(error) if !error.is_null() => Err(match error.get("msg").and_then(Value::as_str) {
            Some(msg) => msg.to_owned(),
            None => error.to_string(),
        }),
        _ => Ok(event.get("requestSuccess").cloned().unwrap_or(Value::Null)),
    };
    Some((id, result))
}

unsafe extern "C" fn cb_on_event(delegate: *mut c_void, json: *const c_char, len: isize) {
    if delegate.is_null() || json.is_null() {
        return;
    }
    // SAFETY: `delegate` is the `Router` pointer set with the delegate; it stays valid until
    // the call client is destroyed, after which daily-core sends no more events.
    let router = unsafe { &*(delegate as *const Router) };
    let bytes = match usize::try_from(len) {
        // SAFETY: daily-core passes `len` bytes of JSON at `json`, valid for this call.
        Ok(len) => unsafe { std::slice::from_raw_parts(json.cast::<u8>(), len) },
        // SAFETY: without a length, `json` is a NUL-terminated string valid for this call.
        Err(_) => unsafe { CStr::from_ptr(json) }.to_bytes(),
    };
    // Never unwind into C.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Ok(event) = serde_json::from_slice::<Value>(bytes) {
            router.dispatch(event);
        }
    }));
}

struct Call {
    client: Ptr,
    router: *const Router,
    speaker_running: Arc<AtomicBool>,
    speaker_thread: Option<std::thread::JoinHandle<()>>,
}

// SAFETY: `router` points to a `Router` (Send + Sync) kept alive by this `Call`; the other
// fields are Send.
unsafe impl Send for Call {}

/// The `ffi` backend. See the module docs.
///
/// ```no_run
/// use pipecat_daily::backend::ffi::{FfiBackend, FfiConfig};
/// use pipecat_daily::DailyTransport;
///
/// let backend = FfiBackend::new(FfiConfig::from_env().library("/opt/daily-core-sdk/lib/libdaily_core.so"));
/// let transport = DailyTransport::builder(backend).build();
/// # drop(transport);
/// ```
pub struct FfiBackend {
    config: FfiConfig,
    call: tokio::sync::Mutex<Option<Call>>,
    mic: Mutex<Option<Ptr>>,
    next_request: AtomicU64,
}

impl std::fmt::Debug for FfiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FfiBackend").field("config", &self.config).finish()
    }
}

impl FfiBackend {
    /// A backend with this configuration (nothing is loaded before the first join).
    pub fn new(config: FfiConfig) -> Self {
        FfiBackend {
            config,
            call: tokio::sync::Mutex::new(None),
            mic: Mutex::new(None),
            next_request: AtomicU64::new(1),
        }
    }

    /// A backend configured from the environment (`DAILY_CORE_LIB`).
    pub fn from_env() -> Self {
        Self::new(FfiConfig::from_env())
    }

    fn context(&self) -> Result<&'static Context, BackendError> {
        context(&self.config)
    }

    /// Makes one request and waits for its `request-completed`.
    async fn request(
        &self,
        router: &Router,
        operation: &'static str,
        timeout: Duration,
        make: impl FnOnce(u64),
    ) -> Result<Value, BackendError> {
        let (id, rx) = self.start_request(router, make);
        self.finish_request(router, operation, timeout, id, rx).await
    }

    /// Registers a request and makes it (synchronously).
    fn start_request(
        &self,
        router: &Router,
        make: impl FnOnce(u64),
    ) -> (u64, oneshot::Receiver<Completion>) {
        let id = self.next_request.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        lock(&router.pending).insert(id, tx);
        make(id);
        (id, rx)
    }

    /// Waits for a request's completion.
    async fn finish_request(
        &self,
        router: &Router,
        operation: &'static str,
        timeout: Duration,
        id: u64,
        rx: oneshot::Receiver<Completion>,
    ) -> Result<Value, BackendError> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(message))) => Err(BackendError::Request { operation, message }),
            Ok(Err(_)) => {
                Err(BackendError::Closed { reason: "the call client was destroyed".into() })
            }
            Err(_) => {
                lock(&router.pending).remove(&id);
                Err(BackendError::Timeout { operation, after: timeout })
            }
        }
    }

    /// Destroys a call client off the async runtime and frees its router.
    async fn destroy(&self, mut call: Call) {
        let context = match self.context() {
            Ok(c) => c,
            Err(_) => return,
        };
        call.speaker_running.store(false, Ordering::SeqCst);
        if let Some(thread) = call.speaker_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let api = context.api;
        let client = call.client;
        let router = call.router as usize;
        let _ = tokio::task::spawn_blocking(move || {
            // SAFETY: the client was created by `client_create` and is destroyed once; no
            // other request on it is made afterwards.
            unsafe { (api.client_destroy)(client.get()) };
            // SAFETY: the router was leaked with `Arc::into_raw` for this client only; the
            // destroyed client sends no more events, so this is the last reference.
            drop(unsafe { Arc::from_raw(router as *const Router) });
        })
        .await;
        IN_CALL.store(false, Ordering::SeqCst);
    }
}

fn speaker_loop(
    api: Api,
    device: Ptr,
    format: AudioFormat,
    running: Arc<AtomicBool>,
    channels: BackendChannels,
) {
    let frames = format.frames_in(Duration::from_millis(20)).max(1);
    let mut buffer = vec![0i16; frames * usize::from(format.channels)];
    let mut samples_read: usize = 0;
    let mut request: u64 = 1 << 48;
    let start = std::time::Instant::now();
    while running.load(Ordering::SeqCst) && !channels.is_closed() {
        request += 1;
        // SAFETY: the buffer holds `frames` frames of `format.channels` samples; the device
        // lives for the process; no callback, so the call completes before it returns.
        let read = unsafe {
            (api.speaker_read)(
                device.0,
                buffer.as_mut_ptr(),
                frames,
                request,
                None,
                std::ptr::null_mut(),
            )
        };
        let read = usize::try_from(read).unwrap_or(0).min(frames);
        {
            if read > 0 {
                let samples = buffer[..read * usize::from(format.channels)].to_vec();
                let ts = format.duration_of_samples(samples_read);
                samples_read += samples.len();
                if let Ok(frame) = AudioFrame::new(samples, format, ts) {
                    channels.speaker(frame);
                }
            }
        }
        // Pace to real time: the device is non-blocking.
        let wait = if read == 0 {
            Duration::from_millis(10)
        } else {
            format.duration_of_samples(samples_read).saturating_sub(start.elapsed())
        };
        std::thread::sleep(wait.min(Duration::from_millis(40)));
    }
}

fn c_string(text: &str, what: &str) -> Result<CString, BackendError> {
    CString::new(text).map_err(|_| BackendError::Protocol(format!("{what} contains a NUL byte")))
}

#[async_trait]
impl DailyBackend for FfiBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn join(
        &self,
        request: JoinRequest,
        channels: BackendChannels,
    ) -> Result<JoinInfo, BackendError> {
        let mut call_slot = self.call.lock().await;
        if let Some(old) = call_slot.take() {
            *lock(&self.mic) = None;
            self.destroy(old).await;
        }
        let context = self.context()?;
        if IN_CALL.swap(true, Ordering::SeqCst) {
            return Err(unavailable(
                "another Daily call is in progress in this process (daily-core: one context per process); use the sidecar backend for several",
            ));
        }
        let api = context.api;
        let setup = (|| {
            let mic = context.device(&request.mic_device, request.mic_format, true)?;
            let speaker = context.device(&request.speaker_device, request.speaker_format, false)?;
            Ok::<_, BackendError>((mic, speaker))
        })();
        let (mic, speaker) = match setup {
            Ok(devices) => devices,
            Err(e) => {
                IN_CALL.store(false, Ordering::SeqCst);
                return Err(e);
            }
        };
        // The client settings name the device as created (one name per format).
        let mut settings = request.client_settings.clone();
        if let Some(device) = settings
            .get_mut("inputs")
            .and_then(|i| i.get_mut("microphone"))
            .and_then(|m| m.get_mut("settings"))
            .and_then(|s| s.get_mut("deviceId"))
        {
            *device = Value::String(Context::device_name(&request.mic_device, request.mic_format));
        }
        let url = c_string(&request.room_url, "the room URL");
        let token = request.token.as_deref().map(|t| c_string(t, "the token")).transpose();
        let settings = c_string(&Value::Object(settings).to_string(), "the client settings");
        let profiles = c_string(
            &Value::Object(request.subscription_profiles.clone()).to_string(),
            "the profiles",
        );
        let user_name =
            request.user_name.as_deref().map(|n| c_string(n, "the user name")).transpose();
        let (url, token, settings, profiles, user_name) =
            match (url, token, settings, profiles, user_name) {
                (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e)) => (a, b, c, d, e),
                (Err(e), ..)
                | (_, Err(e), ..)
                | (_, _, Err(e), ..)
                | (_, _, _, Err(e), _)
                | (.., Err(e)) => {
                    IN_CALL.store(false, Ordering::SeqCst);
                    return Err(e);
                }
            };

        // SAFETY: the context exists; creating a call client has no other precondition.
        let client = unsafe { (api.client_create)() };
        if client.is_null() {
            IN_CALL.store(false, Ordering::SeqCst);
            return Err(unavailable("daily-core could not create a call client"));
        }
        let client = Ptr(client);
        let router = Arc::new(Router {
            pending: Mutex::new(HashMap::new()),
            channels: Mutex::new(Some(channels.clone())),
        });
        let router_ptr = Arc::into_raw(router.clone());
        let delegate = CallClientDelegate {
            ptr: router_ptr as *mut c_void,
            fns: CallClientDelegateFns {
                on_event: Some(cb_on_event),
                on_audio_data: None,
                on_video_frame: None,
            },
        };
        // SAFETY: the router pointer stays valid until `destroy` (it holds one Arc count);
        // `cb_on_event` only reads through it.
        unsafe { (api.client_set_delegate)(client.0, delegate) };
        let speaker_running = Arc::new(AtomicBool::new(true));
        // In the slot from now on: if this join is abandoned (its future dropped by a
        // timeout), `leave` finds the client and destroys it.
        *call_slot = Some(Call {
            client,
            router: router_ptr,
            speaker_running: speaker_running.clone(),
            speaker_thread: None,
        });

        let timeout = self.config.request_timeout;
        let result = async {
            // SAFETY: the client is alive (in the slot, whose lock is held); the C string
            // outlives the call, which copies it.
            self.request(&router, "update_subscription_profiles", timeout, |id| unsafe {
                (api.client_update_subscription_profiles)(client.get(), id, profiles.as_ptr())
            })
            .await?;
            if let Some(name) = &user_name {
                // SAFETY: as above.
                self.request(&router, "set_user_name", timeout, |id| unsafe {
                    (api.client_set_user_name)(client.get(), id, name.as_ptr())
                })
                .await?;
            }
            // SAFETY: as above; a null token means none.
            self.request(&router, "join", self.config.join_timeout, |id| unsafe {
                let token_ptr = token.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
                (api.client_join)(client.get(), id, url.as_ptr(), token_ptr, settings.as_ptr())
            })
            .await
        }
        .await;
        match result {
            Ok(raw) => {
                // SAFETY: the client is alive; the returned JSON string is read at once. It is
                // not freed: the header declares no function for it (a few KB per join).
                let participants = unsafe {
                    let text = (api.client_participants)(client.0);
                    (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
                };
                let participants =
                    participants.and_then(|p| serde_json::from_str::<Value>(&p).ok());
                let format = request.speaker_format;
                let thread = std::thread::Builder::new()
                    .name("daily-speaker".into())
                    .spawn(move || speaker_loop(api, speaker, format, speaker_running, channels));
                match (thread, call_slot.as_mut()) {
                    (Ok(thread), Some(call)) => call.speaker_thread = Some(thread),
                    (Err(e), _) => {
                        if let Some(call) = call_slot.take() {
                            self.destroy(call).await;
                        }
                        return Err(unavailable(format!("cannot start the speaker thread: {e}")));
                    }
                    (Ok(_), None) => return Err(BackendError::NotJoined),
                }
                *lock(&self.mic) = Some(mic);
                Ok(JoinInfo::from_raw(raw, participants))
            }
            Err(error) => {
                lock(&router.channels).take();
                if let Some(call) = call_slot.take() {
                    self.destroy(call).await;
                }
                Err(match error {
                    BackendError::Request { operation: "join", message } => {
                        BackendError::JoinFailed { kind: JoinFailure::classify(&message), message }
                    }
                    other => other,
                })
            }
        }
    }

    async fn leave(&self) -> Result<(), BackendError> {
        let mut call_slot = self.call.lock().await;
        *lock(&self.mic) = None;
        let Some(call) = call_slot.take() else { return Ok(()) };
        let context = self.context()?;
        let api = context.api;
        // SAFETY: `call.router` is alive until `destroy` below.
        let router = unsafe { &*call.router };
        lock(&router.channels).take();
        let client = call.client;
        // SAFETY: the client is alive until `destroy` below.
        let result = self
            .request(router, "leave", self.config.request_timeout, |id| unsafe {
                (api.client_leave)(client.get(), id)
            })
            .await;
        self.destroy(call).await;
        result.map(drop)
    }

    async fn send_app_message(
        &self,
        message: Value,
        recipient: Recipient,
    ) -> Result<(), BackendError> {
        let api = self.context()?.api;
        let text = c_string(&message.to_string(), "the message")?;
        let participant =
            recipient.participant_id().map(|p| c_string(p, "the participant id")).transpose()?;
        let (router, id, rx) = {
            // The call lock is held while the C function runs, so `leave` cannot destroy the
            // client meanwhile; the completion is awaited without it.
            let call_slot = self.call.lock().await;
            let Some(call) = call_slot.as_ref() else { return Err(BackendError::NotJoined) };
            // SAFETY: `call.router` came from `Arc::into_raw` and lives as long as the call;
            // taking a new strong count keeps it alive after the lock is released.
            let router = unsafe {
                Arc::increment_strong_count(call.router);
                Arc::from_raw(call.router)
            };
            let client = call.client;
            let (id, rx) = self.start_request(&router, |id| {
                let participant_ptr = participant.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
                // SAFETY: the client is alive (the call lock is held); the C strings outlive
                // the call, which copies them.
                unsafe {
                    (api.client_send_app_message)(client.get(), id, text.as_ptr(), participant_ptr)
                }
            });
            (router, id, rx)
        };
        match self
            .finish_request(&router, "send_app_message", self.config.request_timeout, id, rx)
            .await
        {
            Err(BackendError::Request { message, .. })
                if envelope::is_too_large_error(&message) =>
            {
                Err(BackendError::MessageTooLarge { message })
            }
            other => other.map(drop),
        }
    }

    fn write_mic(&self, frame: &AudioFrame) -> Result<(), BackendError> {
        let mic = (*lock(&self.mic)).ok_or(BackendError::NotJoined)?;
        let api = self.context()?.api;
        let frames = frame.samples_per_channel();
        let id = self.next_request.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the samples hold `frames` frames in the device's format (the transport
        // converts to the join's mic format); the device is non-blocking and lives for the
        // process; no callback.
        let written = unsafe {
            (api.mic_write)(mic.0, frame.samples().as_ptr(), frames, id, None, std::ptr::null_mut())
        };
        if written < 0 {
            return Err(BackendError::Request {
                operation: "write_mic",
                message: format!("daily-core returned {written}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_completions() {
        let ok = json!({"action": "request-completed", "requestId": {"id": 3}, "requestSuccess": {"x": 1}});
        assert_eq!(request_completion(&ok), Some((3, Ok(json!({"x": 1})))));
        let failed = json!({"action": "request-completed", "requestId": {"id": 4}, "requestError": {"msg": "AppMessage(Signalling(ChannelNotOpen))"}});
        assert_eq!(
            request_completion(&failed),
            Some((4, Err("AppMessage(Signalling(ChannelNotOpen))".into())))
        );
        let odd = json!({"action": "request-completed", "requestId": {"id": 5}, "requestError": {"code": 1}});
        assert_eq!(request_completion(&odd), Some((5, Err(r#"{"code":1}"#.into()))));
        assert_eq!(request_completion(&json!({"action": "request-completed"})), None);
        assert_eq!(request_completion(&json!({"action": "participant-joined"})), None);
    }

    #[test]
    fn router_dispatches_events_and_completions() {
        let (channels, mut rx) = BackendChannels::new(1);
        let router =
            Router { pending: Mutex::new(HashMap::new()), channels: Mutex::new(Some(channels)) };
        let (tx, mut done) = oneshot::channel();
        lock(&router.pending).insert(7, tx);
        router.dispatch(json!({"action": "request-completed", "requestId": {"id": 7}}));
        assert_eq!(done.try_recv().unwrap(), Ok(Value::Null));
        router.dispatch(json!({"action": "app-message", "msgData": {}}));
        assert!(matches!(rx.events.try_recv(), Ok(super::super::BackendEvent::Daily(_))));
        // Unknown ids and events after the call are dropped quietly.
        router.dispatch(json!({"action": "request-completed", "requestId": {"id": 99}}));
    }

    #[test]
    fn callback_tolerates_bad_input() {
        let (channels, mut rx) = BackendChannels::new(1);
        let router = Arc::new(Router {
            pending: Mutex::new(HashMap::new()),
            channels: Mutex::new(Some(channels)),
        });
        let ptr = Arc::as_ptr(&router) as *mut c_void;
        let good = br#"{"action":"error","message":"x"}"#;
        // SAFETY: a live router and `len` valid bytes, as daily-core would pass them.
        unsafe {
            cb_on_event(ptr, good.as_ptr().cast(), good.len() as isize);
            cb_on_event(ptr, b"not json".as_ptr().cast(), 8);
            cb_on_event(std::ptr::null_mut(), good.as_ptr().cast(), good.len() as isize);
            cb_on_event(ptr, std::ptr::null(), 0);
            cb_on_event(ptr, c"{\"action\":\"left\"}".as_ptr(), -1);
        }
        assert!(rx.events.try_recv().is_ok());
        assert!(rx.events.try_recv().is_ok());
        assert!(rx.events.try_recv().is_err());
    }

    #[test]
    fn missing_library_is_unavailable_with_a_hint() {
        match check_library(std::path::Path::new("/nonexistent/libdaily_core.so"), &[]) {
            Err(BackendError::Unavailable { reason, .. }) => {
                assert!(reason.contains(LIBRARY_ENV), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match context(&FfiConfig::default()) {
            Err(BackendError::Unavailable { reason, .. }) => {
                assert!(reason.contains(LIBRARY_ENV), "{reason}")
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("no library configured"),
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_library_that_is_not_daily_core_is_refused_with_the_missing_symbols() {
        // libm is on every Linux system and exports none of daily-core's symbols.
        let missing = check_library(std::path::Path::new("libm.so.6"), &[]).unwrap();
        assert_eq!(missing.len(), REQUIRED_SYMBOLS.len());
    }

    #[test]
    fn layouts_match_the_header() {
        use std::mem::size_of;
        let p = size_of::<*const c_void>();
        assert_eq!(size_of::<WebRtcContextDelegate>(), 12 * p);
        assert_eq!(size_of::<CallClientDelegate>(), 4 * p);
        assert_eq!(size_of::<AboutClient>(), 5 * p);
        assert_eq!(size_of::<ContextDelegate>(), p);
    }
}
