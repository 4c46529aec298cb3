//! The daily-core C API, declared by hand after `daily_core.h` of daily-core-sdk
//! [`SDK_VERSION`](super::SDK_VERSION): the structs passed by value, the callback signatures
//! and the table of functions used.

// No unit test checks these layouts: daily_core.h is not in this repository (the SDK is
// user-supplied), so a test could only compare the structs below with themselves. The opt-in
// ABI smoke test (tests/ffi_smoke.rs) exercises them against a real daily-core.

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct ContextDelegate {
    pub(super) ptr: *mut c_void,
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
pub(super) struct WebRtcContextDelegateFns {
    pub(super) get_user_media: Option<GetUserMediaFn>,
    pub(super) get_display_media: Option<GetDisplayMediaFn>,
    pub(super) get_enumerated_devices: Option<GetEnumeratedDevicesFn>,
    pub(super) create_audio_device_module: Option<CreateAudioDeviceModuleFn>,
    pub(super) create_video_decoder_factory: Option<CreateFactoryFn>,
    pub(super) create_video_encoder_factory: Option<CreateFactoryFn>,
    pub(super) create_audio_decoder_factory: Option<CreateFactoryFn>,
    pub(super) create_audio_encoder_factory: Option<CreateFactoryFn>,
    pub(super) get_audio_device: Option<GetAudioDeviceFn>,
    pub(super) set_audio_device: Option<SetAudioDeviceFn>,
    pub(super) get_ignored_network_devices: Option<GetIgnoredNetworkDevicesFn>,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct WebRtcContextDelegate {
    pub(super) ptr: *mut c_void,
    pub(super) fns: WebRtcContextDelegateFns,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct AboutClient {
    pub(super) library: *const c_char,
    pub(super) version: *const c_char,
    pub(super) operating_system: *const c_char,
    pub(super) operating_system_version: *const c_char,
    pub(super) app_package_name: *const c_char,
}

type OnEventFn = unsafe extern "C" fn(*mut c_void, *const c_char, isize);
type OnAudioDataFn = unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_void);
type OnVideoFrameFn = unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_void);

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct CallClientDelegateFns {
    pub(super) on_event: Option<OnEventFn>,
    pub(super) on_audio_data: Option<OnAudioDataFn>,
    pub(super) on_video_frame: Option<OnVideoFrameFn>,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct CallClientDelegate {
    pub(super) ptr: *mut c_void,
    pub(super) fns: CallClientDelegateFns,
}

type AudioCallbackFn = unsafe extern "C" fn(*mut c_void, u64, usize);

/// The functions used, copied out of the (never unloaded) library.
#[derive(Clone, Copy)]
pub(super) struct Api {
    pub(super) set_log_level: unsafe extern "C" fn(c_int),
    pub(super) context_create:
        unsafe extern "C" fn(ContextDelegate, WebRtcContextDelegate, AboutClient),
    pub(super) create_device_manager: unsafe extern "C" fn() -> *mut c_void,
    pub(super) create_audio_device_module:
        unsafe extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void,
    pub(super) get_user_media: unsafe extern "C" fn(
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *mut c_void,
        *const c_char,
    ) -> *mut c_void,
    pub(super) enumerated_devices: unsafe extern "C" fn(*const c_void) -> *mut c_char,
    pub(super) create_speaker:
        unsafe extern "C" fn(*mut c_void, *const c_char, u32, u8, bool) -> *mut c_void,
    pub(super) create_microphone:
        unsafe extern "C" fn(*mut c_void, *const c_char, u32, u8, bool) -> *mut c_void,
    pub(super) select_speaker: unsafe extern "C" fn(*mut c_void, *const c_char) -> bool,
    pub(super) speaker_read: unsafe extern "C" fn(
        *mut c_void,
        *mut i16,
        usize,
        u64,
        Option<AudioCallbackFn>,
        *mut c_void,
    ) -> i32,
    pub(super) mic_write: unsafe extern "C" fn(
        *mut c_void,
        *const i16,
        usize,
        u64,
        Option<AudioCallbackFn>,
        *mut c_void,
    ) -> i32,
    pub(super) client_create: unsafe extern "C" fn() -> *mut c_void,
    pub(super) client_destroy: unsafe extern "C" fn(*mut c_void),
    pub(super) client_set_delegate: unsafe extern "C" fn(*mut c_void, CallClientDelegate),
    pub(super) client_join:
        unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_char, *const c_char),
    pub(super) client_leave: unsafe extern "C" fn(*mut c_void, u64),
    pub(super) client_send_app_message:
        unsafe extern "C" fn(*mut c_void, u64, *const c_char, *const c_char),
    pub(super) client_update_subscription_profiles:
        unsafe extern "C" fn(*mut c_void, u64, *const c_char),
    pub(super) client_set_user_name: unsafe extern "C" fn(*mut c_void, u64, *const c_char),
    pub(super) client_participants: unsafe extern "C" fn(*mut c_void) -> *const c_char,
}

/// A raw pointer owned by daily-core, used from several threads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct Ptr(pub(super) *mut c_void);

impl Ptr {
    /// The pointer (a method, so closures capture the `Send` wrapper, not the raw field).
    pub(super) fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the pointers wrapped are daily-core objects (device manager, devices, call clients)
// whose C API is documented as callable from any thread (Daily's C++ client does so); this
// module never dereferences them itself.
unsafe impl Send for Ptr {}
// SAFETY: as above; sharing only copies the address.
unsafe impl Sync for Ptr {}
