//! The contract between the client and a transport (SmallWebRTC, WebSocket, Daily, test mocks).
//!
//! The client owns the session lifecycle and the RTVI logic; a transport owns its wire: it
//! connects, carries RTVI JSON text both ways, moves audio between its media source/sink and
//! the bot, and reports what happens as [`TransportEvent`]s.
//!
//! Lifecycle of one session, as the client drives it:
//! 1. [`Transport::attach`] once, when the client is built (device events may flow any time);
//! 2. optionally the media's `init_devices` (see [`Transport::media`]);
//! 3. [`Transport::map_start_response`] when the session began with `start_bot`;
//! 4. [`Transport::connect`] with a fresh per-session [`TransportEventSink`]; it returns once
//!    the transport can carry messages (data channel open, socket open, room joined);
//! 5. [`Transport::send_client_ready`], then [`Transport::send_message`] any number of times;
//!    [`Transport::bot_ready`] when `bot-ready` arrives;
//! 6. [`Transport::disconnect`], which must leave nothing running and be safe to call twice.

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::media::{
    DeviceError, MediaControl, MediaDeviceInfo, MediaState, Participant, TrackInfo,
};
use crate::{ApiRequest, TransportError};

/// Transport connection parameters: a JSON object read by the transport with its own lenient
/// rules (`wsUrl`/`ws_url`, `sessionId`, `dailyRoom`...), plus the start request that produced
/// them, if any (SmallWebRTC derives its offer URL and headers from it).
///
/// Each transport offers a typed params struct that converts into this.
///
/// `Debug` shows every key but hides the values of secret-looking ones (tokens, keys,
/// credentials), since parameters often carry them.
#[derive(Clone, PartialEq, Default)]
pub struct ConnectionParams {
    /// The parameters.
    pub values: Map<String, Value>,
    /// The `start_bot` request whose answer these parameters are.
    pub start_request: Option<ApiRequest>,
}

impl ConnectionParams {
    /// Parameters from a JSON value; anything but an object is an error.
    ///
    /// # Errors
    /// [`TransportError::InvalidParams`] when `value` is not a JSON object.
    pub fn from_json(value: Value) -> Result<Self, TransportError> {
        match value {
            Value::Object(values) => Ok(ConnectionParams { values, start_request: None }),
            other => Err(TransportError::InvalidParams(format!(
                "connection parameters must be a JSON object, got {other}"
            ))),
        }
    }

    /// A parameter by any of its names (first match wins); JSON `null` counts as absent.
    pub fn get(&self, names: &[&str]) -> Option<&Value> {
        names.iter().find_map(|n| self.values.get(*n).filter(|v| !v.is_null()))
    }

    /// A string parameter by any of its names; `null` or an empty string count as absent.
    ///
    /// # Errors
    /// [`TransportError::InvalidParams`] when the parameter is present but not a string.
    pub fn get_str(&self, names: &[&str]) -> Result<Option<&str>, TransportError> {
        match self.get(names) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(TransportError::InvalidParams(format!(
                "{} must be a string, got {other}",
                names[0]
            ))),
        }
    }
}

impl std::fmt::Debug for ConnectionParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values: Map<String, Value> = self
            .values
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_key(k) { Value::from("<redacted>") } else { v.clone() };
                (k.clone(), shown)
            })
            .collect();
        f.debug_struct("ConnectionParams")
            .field("values", &values)
            .field("start_request", &self.start_request)
            .finish()
    }
}

/// Keys whose values must never reach logs.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password", "credential", "auth", "key"].iter().any(|s| key.contains(s))
}

/// Something that happened in a transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TransportEvent {
    /// An inbound RTVI message, as JSON text (the client decodes it).
    Message(String),
    /// The bot is connected at the transport level (before `bot-ready`).
    BotConnected(Participant),
    /// The bot left: SmallWebRTC `peerLeft`, a normal WebSocket close, the bot leaving a room.
    BotDisconnected {
        /// What the transport saw.
        reason: String,
    },
    /// The connection closed cleanly, but not because the bot left (a Daily call left without
    /// an error, for example): the session is over, without an error.
    Closed {
        /// What the transport saw.
        reason: String,
    },
    /// Another participant joined.
    ParticipantJoined(Participant),
    /// Another participant left.
    ParticipantLeft(Participant),
    /// The connection is gone for good; the session is over.
    Failed(TransportError),
    /// The transport is trying to recover its connection (the bot session goes on).
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Attempts allowed.
        max_attempts: u32,
    },
    /// Recovery succeeded.
    Reconnected,
    /// A problem that does not end the session.
    Warning(String),
    /// A media track started.
    TrackStarted(TrackInfo),
    /// A media track stopped.
    TrackStopped(TrackInfo),
    /// The local microphone level, 0..1, about every 100 ms.
    LocalAudioLevel(f32),
    /// The bot's audio level, 0..1, about every 100 ms.
    RemoteAudioLevel(f32),
    /// A device problem.
    DeviceError(DeviceError),
    /// The device states changed.
    MediaStateChanged(MediaState),
    /// The microphone in use changed.
    MicUpdated(MediaDeviceInfo),
    /// The speaker in use changed.
    SpeakerUpdated(MediaDeviceInfo),
    /// The set of microphones changed.
    AvailableMicsUpdated(Vec<MediaDeviceInfo>),
    /// The set of speakers changed.
    AvailableSpeakersUpdated(Vec<MediaDeviceInfo>),
}

/// Where a transport sends its events. Cheap to clone; sending never blocks, and sending after
/// the client stopped listening is silently dropped (the session it belonged to is over).
#[derive(Debug, Clone)]
pub struct TransportEventSink {
    generation: u64,
    tx: mpsc::UnboundedSender<(u64, TransportEvent)>,
}

impl TransportEventSink {
    /// A sink and the receiver the client reads. `generation` tags the session the events
    /// belong to, so the client can drop late events of an earlier session.
    pub fn new(generation: u64) -> (Self, mpsc::UnboundedReceiver<(u64, TransportEvent)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (TransportEventSink { generation, tx }, rx)
    }

    /// A sink for another session over the same channel.
    pub fn with_generation(&self, generation: u64) -> Self {
        TransportEventSink { generation, tx: self.tx.clone() }
    }

    /// The session this sink belongs to (0: not tied to a session).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Sends an event.
    pub fn emit(&self, event: TransportEvent) {
        // A closed channel means the client is gone; nothing is left to tell.
        let _ = self.tx.send((self.generation, event));
    }

    /// `true` once the client stopped listening.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A transport: the wire between a [`crate::PipecatClient`] and a bot.
///
/// The trait is about the wire and the session's lifecycle only. Everything about local media
/// (devices, their states, the microphone switch) sits behind [`Transport::media`], which the
/// shared media engine implements once for every transport.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Short name for logs and errors (`websocket`, `small-webrtc`, `daily`).
    fn name(&self) -> &'static str;

    /// Gives the transport the sink for events not tied to a session (devices). Called once
    /// when the client is built.
    fn attach(&self, events: TransportEventSink);

    /// Turns the JSON answer of the start endpoint into connection parameters. The default
    /// takes the answer as the parameters and remembers the request.
    fn map_start_response(
        &self,
        response: Value,
        start_request: &ApiRequest,
    ) -> Result<ConnectionParams, TransportError> {
        let mut params = ConnectionParams::from_json(response)?;
        params.start_request = Some(start_request.clone());
        Ok(params)
    }

    /// Establishes the connection; returns once RTVI messages can flow both ways. Session
    /// events go to `events` until [`Transport::disconnect`].
    async fn connect(
        &self,
        params: ConnectionParams,
        events: TransportEventSink,
    ) -> Result<(), TransportError>;

    /// Sends `client-ready`. Daily overrides this to hold it until the bot's audio is
    /// playable; the default sends it at once.
    async fn send_client_ready(&self, message: String) -> Result<(), TransportError> {
        self.send_message(message).await
    }

    /// Sends one RTVI message (JSON text, already checked against the maximum size).
    async fn send_message(&self, message: String) -> Result<(), TransportError>;

    /// The bot answered `client-ready`: audio held back until now may flow.
    fn bot_ready(&self) {}

    /// The bot was interrupted: drop buffered bot audio now.
    fn bot_interrupted(&self) {}

    /// Closes the connection and stops everything the session started. Idempotent.
    async fn disconnect(&self) -> Result<(), TransportError>;

    /// The largest RTVI message this transport carries now, in UTF-8 bytes.
    fn max_message_size(&self) -> usize;

    /// The transport's local media (devices, microphone switch, media states), if it has
    /// any. Default: none; the client then answers media calls with
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    fn media(&self) -> Option<&dyn MediaControl> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secret_values() {
        let params = ConnectionParams::from_json(serde_json::json!({
            "wsUrl": "ws://localhost/ws", "token": "s3cret", "dailyToken": "t0k",
            "iceConfig": {"iceServers": [{"urls": "turn:x", "credential": "pw"}]}
        }))
        .unwrap();
        let shown = format!("{params:?}");
        assert!(shown.contains("ws://localhost/ws"));
        for secret in ["s3cret", "t0k"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn get_str_treats_null_and_empty_as_absent_and_rejects_other_types() {
        let params =
            ConnectionParams::from_json(serde_json::json!({"a": null, "b": "", "c": "x", "d": 5}))
                .unwrap();
        assert_eq!(params.get_str(&["a"]).unwrap(), None);
        assert_eq!(params.get_str(&["b"]).unwrap(), None);
        assert_eq!(params.get_str(&["a", "c"]).unwrap(), Some("x"));
        assert!(matches!(params.get_str(&["d"]), Err(TransportError::InvalidParams(_))));
        assert!(ConnectionParams::from_json(serde_json::json!([1])).is_err());
    }
}
