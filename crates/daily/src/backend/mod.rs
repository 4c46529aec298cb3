//! The engine that actually joins a Daily room, behind the [`DailyBackend`] trait.
//!
//! Daily's signalling protocol is proprietary, so this crate does not speak it. A backend
//! drives Daily's own engine and reports what happens as daily-core-shaped event JSON (see
//! [`crate::event`]); the transport does everything Pipecat-specific on top.
//!
//! | Backend | What it drives | Feature |
//! |---|---|---|
//! | [`ScriptedBackend`] | nothing: replays **synthetic** event sequences, records what is sent (a test double) | always |
//! | `SidecarBackend` | `daily-python` in a child process, through this crate's bridge script | `sidecar` |
//! | `FfiBackend` | a user-supplied `libdaily_core` (daily-core-sdk C API), loaded at run time | `ffi` |

use std::time::Duration;

use async_trait::async_trait;
use pipecat_media::{AudioFormat, AudioFrame};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::envelope::Recipient;

#[cfg(feature = "ffi")]
pub mod ffi;
#[cfg(any(feature = "ffi", feature = "sidecar", test))]
mod requests;
pub mod scripted;
#[cfg(feature = "sidecar")]
pub mod sidecar;

pub use scripted::{ScriptStep, ScriptedBackend, ScriptedHandle};

/// Default time limit of one backend request (leave, send): what Daily's C++ client uses.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Locks a mutex, poisoned or not: a backend must keep working after a panic on another
/// thread (daily-core's, a reader task's).
#[cfg(any(feature = "ffi", feature = "sidecar", test))]
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything a backend needs to join a room.
#[derive(Clone, PartialEq)]
pub struct JoinRequest {
    /// The room URL (checked `https://<host>/<room>`).
    pub room_url: String,
    /// The meeting token, if any.
    pub token: Option<String>,
    /// daily-core client settings (`inputs`, `publishing`, …) as a JSON object. The transport
    /// points the microphone input at the backend's virtual microphone device, named
    /// [`JoinRequest::mic_device`].
    pub client_settings: Map<String, Value>,
    /// daily-core subscription profiles (`{"base": {"camera": "unsubscribed", "microphone": "subscribed"}}`).
    pub subscription_profiles: Map<String, Value>,
    /// The user name shown in the room.
    pub user_name: Option<String>,
    /// The name the backend must give its virtual microphone (referenced by `client_settings`).
    pub mic_device: String,
    /// The name the backend must give its virtual speaker.
    pub speaker_device: String,
    /// The format of the PCM the transport writes to the virtual microphone.
    pub mic_format: AudioFormat,
    /// The format of the PCM the backend reads from the virtual speaker.
    pub speaker_format: AudioFormat,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("room_url", &self.room_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("client_settings", &self.client_settings)
            .field("subscription_profiles", &self.subscription_profiles)
            .field("user_name", &self.user_name)
            .field("mic_device", &self.mic_device)
            .field("speaker_device", &self.speaker_device)
            .field("mic_format", &self.mic_format)
            .field("speaker_format", &self.speaker_format)
            .finish()
    }
}

/// What a backend learned by joining.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinInfo {
    /// The participants already in the room (daily-core `participants()`: an object keyed by
    /// participant id, plus `local`), when the backend can tell.
    pub participants: Option<Value>,
    /// The room's largest app-message, in bytes (`max_app_message_size` of the domain config),
    /// when the backend can tell.
    pub max_message_size: Option<usize>,
    /// Whatever the engine answered to the join, as JSON (for logs and diagnostics).
    pub raw: Value,
}

impl JoinInfo {
    /// A join answer with its maximum message size looked up in `raw` (any
    /// `max_app_message_size` / `maxAppMessageSize` key, a few levels deep).
    pub fn from_raw(raw: Value, participants: Option<Value>) -> Self {
        let max_message_size = find_max_message_size(&raw, 0);
        JoinInfo { participants, max_message_size, raw }
    }
}

fn find_max_message_size(value: &Value, depth: usize) -> Option<usize> {
    if depth > 6 {
        return None;
    }
    match value {
        Value::Object(map) => {
            for key in ["max_app_message_size", "maxAppMessageSize"] {
                if let Some(size) = map.get(key).and_then(Value::as_u64) {
                    return usize::try_from(size).ok().filter(|s| *s > 0);
                }
            }
            map.values().find_map(|v| find_max_message_size(v, depth + 1))
        }
        _ => None,
    }
}

/// Something a backend reports while joined.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BackendEvent {
    /// A daily-core event (`{"action": …}`), see [`crate::DailyEvent`].
    Daily(Value),
    /// The backend itself stopped (the sidecar process died, …); the call is gone.
    Closed {
        /// What happened.
        reason: String,
    },
}

/// Where a joined backend delivers events and the bot's audio.
#[derive(Debug, Clone)]
pub struct BackendChannels {
    events: mpsc::UnboundedSender<BackendEvent>,
    speaker: mpsc::Sender<AudioFrame>,
}

/// The receiving ends of [`BackendChannels`].
#[derive(Debug)]
pub struct BackendReceivers {
    /// Events, in order.
    pub events: mpsc::UnboundedReceiver<BackendEvent>,
    /// Speaker (bot) audio; frames beyond the channel's capacity are dropped.
    pub speaker: mpsc::Receiver<AudioFrame>,
}

impl BackendChannels {
    /// Channels with room for `speaker_frames` frames of undelivered bot audio.
    pub fn new(speaker_frames: usize) -> (Self, BackendReceivers) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (speaker_tx, speaker_rx) = mpsc::channel(speaker_frames.max(1));
        (
            BackendChannels { events: events_tx, speaker: speaker_tx },
            BackendReceivers { events: events_rx, speaker: speaker_rx },
        )
    }

    /// Reports a daily-core event. Returns `false` once nobody listens.
    pub fn event(&self, event: Value) -> bool {
        self.events.send(BackendEvent::Daily(event)).is_ok()
    }

    /// Reports that the backend stopped.
    pub fn closed(&self, reason: impl Into<String>) {
        let _ = self.events.send(BackendEvent::Closed { reason: reason.into() });
    }

    /// Delivers bot audio without waiting. Returns `false` when the frame was dropped (the
    /// consumer is behind, or gone).
    pub fn speaker(&self, frame: AudioFrame) -> bool {
        self.speaker.try_send(frame).is_ok()
    }

    /// `true` once the transport stopped listening.
    pub fn is_closed(&self) -> bool {
        self.events.is_closed()
    }
}

/// How a join failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinFailure {
    /// The room could not be looked up: no such room, or Daily's service is unreachable
    /// (daily-core's `RoomLookup` error).
    RoomLookup,
    /// The meeting token was refused, or the room needs one.
    Authentication,
    /// The signalling connection could not be opened.
    Signalling,
    /// Anything else.
    Other,
}

impl JoinFailure {
    /// Classifies a daily-core join error text.
    pub fn classify(message: &str) -> Self {
        let lower = message.to_ascii_lowercase();
        if lower.contains("roomlookup") || lower.contains("room information") {
            JoinFailure::RoomLookup
        } else if lower.contains("token")
            || lower.contains("auth")
            || lower.contains("not allowed")
            || lower.contains("forbidden")
        {
            JoinFailure::Authentication
        } else if lower.contains("signalling") || lower.contains("websocket") {
            JoinFailure::Signalling
        } else {
            JoinFailure::Other
        }
    }
}

impl std::fmt::Display for JoinFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JoinFailure::RoomLookup => "room lookup failed",
            JoinFailure::Authentication => "not allowed in",
            JoinFailure::Signalling => "signalling failed",
            JoinFailure::Other => "join failed",
        })
    }
}

/// What went wrong in a backend.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend cannot run here: library or interpreter missing, `daily-python` not
    /// installed, bridge script not startable, a second call where only one is possible.
    #[error("Daily {backend} backend unavailable: {reason}")]
    Unavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why, with what to do about it.
        reason: String,
    },
    /// The sidecar bridge speaks another protocol version than this crate.
    #[error("Daily bridge protocol mismatch: this crate speaks {expected}, the bridge {found}")]
    ProtocolMismatch {
        /// Our version.
        expected: u32,
        /// The bridge's.
        found: String,
    },
    /// The backend broke its protocol (a malformed answer).
    #[error("Daily backend protocol error: {0}")]
    Protocol(String),
    /// Daily refused or failed the join.
    #[error("could not join the Daily room: {kind}: {message}")]
    JoinFailed {
        /// The kind of failure.
        kind: JoinFailure,
        /// daily-core's message.
        message: String,
    },
    /// A request other than join failed in Daily.
    #[error("Daily {operation} failed: {message}")]
    Request {
        /// The request (`leave`, `send_app_message`, …).
        operation: &'static str,
        /// daily-core's message.
        message: String,
    },
    /// The room refused an app-message for its size.
    #[error("Daily refused the app-message as too large: {message}")]
    MessageTooLarge {
        /// daily-core's message.
        message: String,
    },
    /// Not in a call.
    #[error("not joined to a Daily room")]
    NotJoined,
    /// A request did not complete in time.
    #[error("Daily {operation} timed out after {after:?}")]
    Timeout {
        /// The request.
        operation: &'static str,
        /// The time limit.
        after: Duration,
    },
    /// The backend stopped (process exited, pipe closed).
    #[error("Daily backend stopped: {reason}")]
    Closed {
        /// What happened (exit status, last lines of stderr).
        reason: String,
    },
}

/// A Daily engine the [`crate::DailyTransport`] drives. One call at a time.
///
/// Implementations report events through the [`BackendChannels`] given to [`join`](Self::join)
/// until [`leave`](Self::leave) returns.
#[async_trait]
pub trait DailyBackend: Send + Sync + 'static {
    /// Short name for logs and errors (`scripted`, `sidecar`, `ffi`).
    fn name(&self) -> &'static str;

    /// `true` for test doubles that never talk to Daily.
    fn is_synthetic(&self) -> bool {
        false
    }

    /// Joins the room; returns once joined (or failed). Events and bot audio go to `channels`
    /// from now on, including those that arrive while joining.
    async fn join(
        &self,
        request: JoinRequest,
        channels: BackendChannels,
    ) -> Result<JoinInfo, BackendError>;

    /// Leaves the room and releases what the call used. Safe to call when not joined.
    async fn leave(&self) -> Result<(), BackendError>;

    /// Sends one app-message; returns once Daily accepted it.
    async fn send_app_message(
        &self,
        message: Value,
        recipient: Recipient,
    ) -> Result<(), BackendError>;

    /// Writes microphone PCM (in the join request's `mic_format`) without waiting.
    fn write_mic(&self, frame: &AudioFrame) -> Result<(), BackendError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn join_failure_classification() {
        let offline = "Connection(Api(RoomLookup(RoomInfoFetchFailed(Get(hyper_util::client::legacy::Error(Connect, Custom { kind: Uncategorized, error: \"failed to lookup address information: Name or service not known\" }))))))";
        assert_eq!(JoinFailure::classify(offline), JoinFailure::RoomLookup);
        assert_eq!(JoinFailure::classify("meeting token is invalid"), JoinFailure::Authentication);
        assert_eq!(JoinFailure::classify("Signalling(ChannelOpenFailed)"), JoinFailure::Signalling);
        assert_eq!(JoinFailure::classify("something"), JoinFailure::Other);
    }

    #[test]
    fn max_message_size_lookup() {
        let raw = json!({"callConfig": {"domainConfig": {"max_app_message_size": 4096}}});
        assert_eq!(JoinInfo::from_raw(raw, None).max_message_size, Some(4096));
        assert_eq!(
            JoinInfo::from_raw(json!({"maxAppMessageSize": 10}), None).max_message_size,
            Some(10)
        );
        assert_eq!(
            JoinInfo::from_raw(json!({"max_app_message_size": 0}), None).max_message_size,
            None
        );
        assert_eq!(JoinInfo::from_raw(json!(null), None).max_message_size, None);
        // Depth is bounded.
        let mut deep = json!({"max_app_message_size": 1});
        for _ in 0..10 {
            deep = json!({"x": deep});
        }
        assert_eq!(JoinInfo::from_raw(deep, None).max_message_size, None);
    }

    #[tokio::test]
    async fn channels_drop_when_full_or_closed() {
        let (channels, mut rx) = BackendChannels::new(1);
        let frame = AudioFrame::silence(AudioFormat::MONO_16K, 320, Duration::ZERO).unwrap();
        assert!(channels.speaker(frame.clone()));
        assert!(!channels.speaker(frame.clone()), "full: dropped");
        assert!(rx.speaker.recv().await.is_some());
        assert!(channels.event(json!({"action": "x"})));
        channels.closed("bye");
        assert!(matches!(rx.events.recv().await, Some(BackendEvent::Daily(_))));
        assert!(matches!(rx.events.recv().await, Some(BackendEvent::Closed { .. })));
        drop(rx);
        assert!(channels.is_closed());
        assert!(!channels.event(json!({})));
    }
}
