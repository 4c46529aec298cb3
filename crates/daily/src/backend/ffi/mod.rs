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

mod abi;
mod callbacks;
mod config;
mod context;
mod loader;
mod speaker;

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_media::AudioFrame;
use serde_json::Value;

use super::{
    BackendChannels, BackendError, DailyBackend, JoinFailure, JoinInfo, JoinRequest, lock,
};
use crate::envelope::{self, Recipient};
use abi::Ptr;
use callbacks::Router;
pub use config::{DEFAULT_ABOUT_LIBRARY, FfiConfig, LIBRARY_ENV, LogLevel, SDK_VERSION};
use context::Context;
pub use loader::{REQUIRED_SYMBOLS, check_library};

const NAME: &str = "ffi";

/// One call at a time per process.
static IN_CALL: AtomicBool = AtomicBool::new(false);

fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable { backend: NAME, reason: reason.into() }
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
    /// One id sequence for the requests of every call and the microphone writes, so that no
    /// two share an id.
    request_ids: Arc<AtomicU64>,
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
            request_ids: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A backend configured from the environment (`DAILY_CORE_LIB`).
    pub fn from_env() -> Self {
        Self::new(FfiConfig::from_env())
    }

    fn context(&self) -> Result<&'static Context, BackendError> {
        context::context(&self.config)
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
            let router = unsafe { Arc::from_raw(router as *const Router) };
            // No completion can come any more: whatever still waits fails now, not at its
            // time limit.
            router.requests.close("the call client was destroyed");
        })
        .await;
        IN_CALL.store(false, Ordering::SeqCst);
    }
}

/// Makes one request on a call client and waits for its `request-completed`.
async fn make_request(
    router: &Router,
    operation: &'static str,
    timeout: Duration,
    make: impl FnOnce(u64),
) -> Result<Value, BackendError> {
    let pending = router.requests.start()?;
    make(pending.id());
    pending.wait(operation, timeout).await
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
        let router = Arc::new(Router::new(channels.clone(), self.request_ids.clone()));
        let router_ptr = Arc::into_raw(router.clone());
        let delegate = callbacks::call_client_delegate(router_ptr);
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
            make_request(&router, "update_subscription_profiles", timeout, |id| unsafe {
                (api.client_update_subscription_profiles)(client.get(), id, profiles.as_ptr())
            })
            .await?;
            if let Some(name) = &user_name {
                // SAFETY: as above.
                make_request(&router, "set_user_name", timeout, |id| unsafe {
                    (api.client_set_user_name)(client.get(), id, name.as_ptr())
                })
                .await?;
            }
            // SAFETY: as above; a null token means none.
            make_request(&router, "join", self.config.join_timeout, |id| unsafe {
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
                let thread =
                    std::thread::Builder::new().name("daily-speaker".into()).spawn(move || {
                        speaker::speaker_loop(api, speaker, format, speaker_running, channels)
                    });
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
        let result = make_request(router, "leave", self.config.request_timeout, |id| unsafe {
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
        let pending = {
            // The call lock is held while the C function runs, so `leave` cannot destroy the
            // client meanwhile; the completion is awaited without it.
            let call_slot = self.call.lock().await;
            let Some(call) = call_slot.as_ref() else { return Err(BackendError::NotJoined) };
            // SAFETY: `call.router` came from `Arc::into_raw` and lives as long as the call,
            // which cannot end while the lock is held.
            let router = unsafe { &*call.router };
            let pending = router.requests.start()?;
            let participant_ptr = participant.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
            // SAFETY: the client is alive (the call lock is held); the C strings outlive the
            // call, which copies them.
            unsafe {
                (api.client_send_app_message)(
                    call.client.get(),
                    pending.id(),
                    text.as_ptr(),
                    participant_ptr,
                )
            };
            pending
        };
        match pending.wait("send_app_message", self.config.request_timeout).await {
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
        let id = self.request_ids.fetch_add(1, Ordering::SeqCst);
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
