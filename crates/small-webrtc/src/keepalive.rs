//! The data-channel keepalive and the `trackStatus` / signalling messages.
//!
//! Once the server has seen one `ping`, it treats the client as gone when no ping arrives for
//! 3 s: it stops dispatching our messages and stops writing media. So the keepalive runs every
//! second for the whole session, recovery included, and never stops while connected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The keepalive period (the JS transport's).
pub const PING_PERIOD: Duration = Duration::from_secs(1);

/// The keepalive text: `ping: <epoch ms>` (the server only checks the `ping` prefix).
pub(crate) fn ping_message(now: SystemTime) -> String {
    let ms = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("ping: {ms}")
}

/// Receiver indices the server uses: 0 microphone, 1 camera, 2 screen.
pub(crate) const MIC_INDEX: u8 = 0;

/// `{"type":"signalling","message":{"type":"trackStatus","receiver_index":i,"enabled":b}}`.
pub(crate) fn track_status(receiver_index: u8, enabled: bool) -> String {
    json!({
        "type": "signalling",
        "message": {"type": "trackStatus", "receiver_index": receiver_index, "enabled": enabled}
    })
    .to_string()
}

/// A server signalling message on the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerSignal {
    /// Make a new offer on the same peer connection.
    Renegotiate,
    /// The bot is leaving; its peer connection closes next.
    PeerLeft,
    /// A signalling type this client does not know.
    Other(String),
}

/// What arrived on the data channel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    /// A transport signalling message.
    Signal(ServerSignal),
    /// Anything else that is JSON: an RTVI message for the client.
    Rtvi(String),
    /// Text that is not JSON (dropped with a debug log).
    NotJson,
}

/// Sorts a data-channel text message.
pub(crate) fn classify(text: &str) -> Inbound {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Inbound::NotJson;
    };
    if value.get("type").and_then(Value::as_str) == Some("signalling") {
        let kind = value.pointer("/message/type").and_then(Value::as_str).unwrap_or_default();
        return Inbound::Signal(match kind {
            "renegotiate" => ServerSignal::Renegotiate,
            "peerLeft" => ServerSignal::PeerLeft,
            other => ServerSignal::Other(other.to_owned()),
        });
    }
    Inbound::Rtvi(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_732_241_234_567);
        assert_eq!(ping_message(t), "ping: 1732241234567");
        assert!(ping_message(SystemTime::now()).starts_with("ping: "));
    }

    #[test]
    fn track_status_shape() {
        let v: Value = serde_json::from_str(&track_status(2, false)).unwrap();
        assert_eq!(
            v,
            json!({"type":"signalling","message":{"type":"trackStatus","receiver_index":2,"enabled":false}})
        );
    }

    #[test]
    fn classify_messages() {
        assert_eq!(
            classify(r#"{"type":"signalling","message":{"type":"renegotiate"}}"#),
            Inbound::Signal(ServerSignal::Renegotiate)
        );
        assert_eq!(
            classify(r#"{"type":"signalling","message":{"type":"peerLeft"}}"#),
            Inbound::Signal(ServerSignal::PeerLeft)
        );
        assert_eq!(
            classify(r#"{"type":"signalling","message":{}}"#),
            Inbound::Signal(ServerSignal::Other(String::new()))
        );
        let rtvi = r#"{"label":"rtvi-ai","type":"bot-ready","id":"1"}"#;
        assert_eq!(classify(rtvi), Inbound::Rtvi(rtvi.into()));
        assert_eq!(classify("pong"), Inbound::NotJson);
        assert_eq!(classify(""), Inbound::NotJson);
    }
}
