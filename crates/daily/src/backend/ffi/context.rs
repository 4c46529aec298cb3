//! The process-wide daily-core context and its virtual devices.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::sync::Mutex;

use pipecat_media::AudioFormat;

use super::abi::{AboutClient, Api, ContextDelegate, Ptr};
use super::loader::{load, resolve};
use super::{BackendError, FfiConfig, LIBRARY_ENV, callbacks, lock, unavailable};

/// The process-wide daily-core context.
pub(super) struct Context {
    pub(super) api: Api,
    library: PathBuf,
    device_manager: Ptr,
    devices: Mutex<HashMap<(String, u32, u16), Ptr>>,
}

/// Created on the first join; daily-core allows one per process.
static CONTEXT: Mutex<Option<&'static Context>> = Mutex::new(None);

/// The process's context, loading the library and creating it on first use.
pub(super) fn context(config: &FfiConfig) -> Result<&'static Context, BackendError> {
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
    if callbacks::CALLBACK_API.set((api, device_manager)).is_err() {
        return Err(unavailable("daily-core was already initialised in this process"));
    }
    let strings = |s: &str| CString::new(s.replace('\0', "")).unwrap_or_default();
    // Leaked: daily-core may keep the about strings for the context's lifetime (the process).
    let about_library: &'static CStr = Box::leak(strings(&config.about_library).into_boxed_c_str());
    let about_version: &'static CStr = Box::leak(strings(&config.about_version).into_boxed_c_str());
    let os: &'static CStr = Box::leak(strings(std::env::consts::OS).into_boxed_c_str());
    let webrtc = callbacks::webrtc_delegate(device_manager);
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
    pub(super) fn device(
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
        let c_name = CString::new(Self::device_name(name, format))
            .map_err(|_| unavailable("device name contains NUL"))?;
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

    /// The name daily-core knows a device by: one per format, as its devices have a fixed one.
    pub(super) fn device_name(name: &str, format: AudioFormat) -> String {
        format!("{name}-{}-{}", format.sample_rate, format.channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_library_configured_is_unavailable_with_a_hint() {
        match context(&FfiConfig::default()) {
            Err(BackendError::Unavailable { reason, .. }) => {
                assert!(reason.contains(LIBRARY_ENV), "{reason}")
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("no library configured"),
        }
    }
}
