//! The functions daily-core calls on its own threads, and the delegates that register them.
//!
//! They only forward: the context callbacks to the device manager, a call client's events into
//! its [`Router`]. None of them may unwind into C.

use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use super::abi::{
    Api, CallClientDelegate, CallClientDelegateFns, Ptr, WebRtcContextDelegate,
    WebRtcContextDelegateFns,
};
use super::{BackendChannels, lock};
use crate::backend::requests::{Requests, Response};

/// The API for the context callbacks, which daily-core may call while the context is created.
pub(super) static CALLBACK_API: OnceLock<(Api, Ptr)> = OnceLock::new();

/// The context's WebRTC delegate: devices come from `device_manager`, through the callbacks
/// below; what is left out (display media, codec factories, …) daily-core does itself.
pub(super) fn webrtc_delegate(device_manager: Ptr) -> WebRtcContextDelegate {
    WebRtcContextDelegate {
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
    }
}

/// A call client's delegate: events go to the [`Router`] at `router`; audio and video
/// callbacks are not used (audio comes through the virtual speaker).
pub(super) fn call_client_delegate(router: *const Router) -> CallClientDelegate {
    CallClientDelegate {
        ptr: router as *mut c_void,
        fns: CallClientDelegateFns {
            on_event: Some(cb_on_event),
            on_audio_data: None,
            on_video_frame: None,
        },
    }
}

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

/// Receives daily-core's events for one call client. Reached from the C callback through a
/// pointer owned by the backend's call.
pub(super) struct Router {
    /// The call client's requests waiting for their `request-completed`.
    pub(super) requests: Requests,
    pub(super) channels: Mutex<Option<BackendChannels>>,
}

impl Router {
    /// A router delivering events to `channels`, with no request pending; request ids come
    /// from `request_ids`.
    pub(super) fn new(channels: BackendChannels, request_ids: Arc<AtomicU64>) -> Self {
        Router {
            requests: Requests::sharing_ids(request_ids),
            channels: Mutex::new(Some(channels)),
        }
    }

    fn dispatch(&self, event: Value) {
        if let Some((id, result)) = request_completion(&event) {
            // A completion nobody waits for (given up, or no request of ours) is dropped.
            self.requests.complete(id, result);
            return;
        }
        if let Some(channels) = lock(&self.channels).as_ref() {
            channels.event(event);
        }
    }
}

/// A `request-completed` event: `{"action":"request-completed","requestId":{"id":N},
/// "requestError":{"msg":…}}` or with `requestSuccess`.
fn request_completion(event: &Value) -> Option<(u64, Response)> {
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

pub(super) unsafe extern "C" fn cb_on_event(
    delegate: *mut c_void,
    json: *const c_char,
    len: isize,
) {
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

    #[tokio::test]
    async fn router_dispatches_events_and_completions() {
        let (channels, mut rx) = BackendChannels::new(1);
        let router = Router::new(channels, Arc::new(AtomicU64::new(7)));
        let pending = router.requests.start().unwrap();
        assert_eq!(pending.id(), 7);
        // Unknown ids are dropped quietly, and are not events.
        router.dispatch(json!({"action": "request-completed", "requestId": {"id": 99}}));
        router.dispatch(json!({"action": "request-completed", "requestId": {"id": 7}}));
        let answer = pending.wait("test", std::time::Duration::from_secs(3600)).await;
        assert_eq!(answer.unwrap(), Value::Null);
        assert!(rx.events.try_recv().is_err());
        router.dispatch(json!({"action": "app-message", "msgData": {}}));
        assert!(matches!(rx.events.try_recv(), Ok(crate::backend::BackendEvent::Daily(_))));
        // Events after the call are dropped quietly.
        lock(&router.channels).take();
        router.dispatch(json!({"action": "app-message", "msgData": {}}));
    }

    #[test]
    fn callback_tolerates_bad_input() {
        let (channels, mut rx) = BackendChannels::new(1);
        let router = Arc::new(Router::new(channels, Arc::new(AtomicU64::new(1))));
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
}
