//! Loading `libdaily_core` at run time and looking up the functions of [`Api`].

use std::ffi::c_void;
use std::path::PathBuf;

use super::abi::Api;
use super::{BackendError, LIBRARY_ENV, SDK_VERSION, unavailable};

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

/// Loads a library and checks it exports [`REQUIRED_SYMBOLS`], without creating a context.
/// Returns the missing symbols (empty: all there).
///
/// # Errors
/// [`BackendError::Unavailable`] when the library cannot be loaded.
pub fn check_library(
    path: &std::path::Path,
    preload: &[PathBuf],
) -> Result<Vec<&'static str>, BackendError> {
    Ok(missing_symbols(&load(path, preload)?))
}

/// The [`REQUIRED_SYMBOLS`] `library` does not export.
fn missing_symbols(library: &libloading::Library) -> Vec<&'static str> {
    REQUIRED_SYMBOLS
        .iter()
        .copied()
        // SAFETY: only looks the symbol up (as an untyped pointer); nothing is called.
        .filter(|name| unsafe { library.get::<*const c_void>(*name) }.is_err())
        .collect()
}

pub(super) fn load(
    path: &std::path::Path,
    preload: &[PathBuf],
) -> Result<libloading::Library, BackendError> {
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

/// The function table of a loaded library, or the symbols it lacks.
pub(super) fn resolve(library: &'static libloading::Library) -> Result<Api, BackendError> {
    let missing = missing_symbols(library);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_is_unavailable_with_a_hint() {
        match check_library(std::path::Path::new("/nonexistent/libdaily_core.so"), &[]) {
            Err(BackendError::Unavailable { reason, .. }) => {
                assert!(reason.contains(LIBRARY_ENV), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_library_that_is_not_daily_core_is_refused_with_the_missing_symbols() {
        // libm is on every Linux system and exports none of daily-core's symbols.
        let missing = check_library(std::path::Path::new("libm.so.6"), &[]).unwrap();
        assert_eq!(missing.len(), REQUIRED_SYMBOLS.len());
    }
}
