//! RTVI over Daily app-messages.
//!
//! Pipecat carries RTVI through Daily "app-messages": the RTVI message object itself is the
//! app-message payload (`{"label":"rtvi-ai","type":…,"id":…,"data":…}`), sent to everyone in
//! the room (the bot's Pipecat transport listens to broadcasts). Inbound, only payloads labelled
//! `rtvi-ai` are RTVI; other app-messages (chat, other apps) are not for the client.

use pipecat_rtvi::RTVI_LABEL;
use serde_json::Value;

use crate::params::json_type;

/// Who an app-message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Recipient {
    /// Every participant (what Pipecat does: `sendAppMessage(msg, "*")`, or a null participant
    /// in daily-core).
    #[default]
    All,
    /// One participant, by session id.
    Participant(String),
}

impl Recipient {
    /// The participant id daily-core takes: `None` for a broadcast.
    pub fn participant_id(&self) -> Option<&str> {
        match self {
            Recipient::All => None,
            Recipient::Participant(id) => Some(id),
        }
    }
}

/// Why an outgoing message cannot be an RTVI app-message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The text is not JSON.
    #[error("RTVI message is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("RTVI message must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The object is not labelled `rtvi-ai`.
    #[error("RTVI message label is {found:?}, expected \"rtvi-ai\"")]
    WrongLabel {
        /// The label found, as JSON text (`None`: no label).
        found: Option<String>,
    },
}

/// Turns an outgoing RTVI message (JSON text from the client) into the app-message payload.
///
/// ```
/// use pipecat_daily::envelope;
/// let payload = envelope::encode(r#"{"label":"rtvi-ai","type":"client-ready","id":"ab12cd34","data":{}}"#)?;
/// assert_eq!(payload["type"], "client-ready");
/// assert!(envelope::encode(r#"{"label":"chat","type":"x"}"#).is_err());
/// # Ok::<(), pipecat_daily::EnvelopeError>(())
/// ```
///
/// # Errors
/// An [`EnvelopeError`] when the text is not a JSON object labelled `rtvi-ai`.
pub fn encode(rtvi_json: &str) -> Result<Value, EnvelopeError> {
    let value: Value =
        serde_json::from_str(rtvi_json).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    match &value {
        Value::Object(map) => match map.get("label") {
            Some(Value::String(label)) if label == RTVI_LABEL => Ok(value),
            Some(other) => Err(EnvelopeError::WrongLabel { found: Some(other.to_string()) }),
            None => Err(EnvelopeError::WrongLabel { found: None }),
        },
        other => Err(EnvelopeError::NotAnObject(json_type(other))),
    }
}

/// An inbound app-message payload, classified.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InboundAppMessage {
    /// An RTVI message, as JSON text for the client to decode.
    Rtvi(String),
    /// Anything else: not labelled `rtvi-ai`, or not an object.
    Other(Value),
}

/// Classifies the payload (`msgData`) of an inbound app-message. A payload that is a string
/// holding a JSON object is accepted too (some senders serialise before sending).
///
/// ```
/// use pipecat_daily::envelope::{self, InboundAppMessage};
/// use serde_json::json;
/// let rtvi = json!({"label": "rtvi-ai", "type": "bot-ready", "id": "ab12cd34", "data": {}});
/// assert!(matches!(envelope::decode(&rtvi), InboundAppMessage::Rtvi(text) if text.contains("bot-ready")));
/// let chat = json!({"label": "chat", "text": "hi"});
/// assert!(matches!(envelope::decode(&chat), InboundAppMessage::Other(_)));
/// ```
pub fn decode(msg_data: &Value) -> InboundAppMessage {
    match msg_data {
        Value::Object(map) if map.get("label").and_then(Value::as_str) == Some(RTVI_LABEL) => {
            InboundAppMessage::Rtvi(msg_data.to_string())
        }
        Value::String(text) if text.trim_start().starts_with('{') => {
            match serde_json::from_str::<Value>(text) {
                Ok(parsed @ Value::Object(_)) => match decode(&parsed) {
                    InboundAppMessage::Rtvi(rtvi) => InboundAppMessage::Rtvi(rtvi),
                    InboundAppMessage::Other(_) => InboundAppMessage::Other(msg_data.clone()),
                },
                _ => InboundAppMessage::Other(msg_data.clone()),
            }
        }
        other => InboundAppMessage::Other(other.clone()),
    }
}

/// Whether a send error reported by Daily means the message was too large for the room.
pub fn is_too_large_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("too large") || lower.contains("toolarge") || lower.contains("too big")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_rtvi::{ClientEnvelope, ServerEnvelope, ServerMessage};
    use serde_json::json;

    #[test]
    fn outgoing_payload_is_the_rtvi_object_itself() {
        let ready = ClientEnvelope::client_ready();
        let text = ready.to_json().unwrap();
        let payload = encode(&text).unwrap();
        assert_eq!(payload["label"], "rtvi-ai");
        assert_eq!(payload["type"], "client-ready");
        assert_eq!(payload["id"], ready.id.as_str());
        assert!(payload["data"]["version"].is_string());
        assert!(payload["data"]["about"]["library"].is_string());
        // Nothing wraps it: the top-level keys are exactly the envelope's.
        let mut keys: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["data", "id", "label", "type"]);
        assert_eq!(Recipient::default().participant_id(), None);
        assert_eq!(Recipient::Participant("p".into()).participant_id(), Some("p"));
    }

    #[test]
    fn outgoing_rejects_non_rtvi() {
        assert!(matches!(encode("nope"), Err(EnvelopeError::NotJson(_))));
        assert_eq!(encode("[1]"), Err(EnvelopeError::NotAnObject("an array")));
        assert_eq!(encode(r#"{"type":"x"}"#), Err(EnvelopeError::WrongLabel { found: None }));
        assert_eq!(
            encode(r#"{"label":5,"type":"x"}"#),
            Err(EnvelopeError::WrongLabel { found: Some("5".into()) })
        );
    }

    #[test]
    fn inbound_only_rtvi_is_forwarded_and_parses() {
        let bot_ready = json!({
            "label": "rtvi-ai", "type": "bot-ready", "id": "cr-1",
            "data": {"version": "2.2.0", "about": {"library": "pipecat-ai"}}
        });
        let InboundAppMessage::Rtvi(text) = decode(&bot_ready) else { panic!("not rtvi") };
        let envelope = ServerEnvelope::parse(&text).unwrap();
        assert_eq!(envelope.id.as_deref(), Some("cr-1"));
        assert!(matches!(envelope.message, ServerMessage::BotReady(_)));

        for other in [
            json!({"label": "other", "type": "chat"}),
            json!({"type": "bot-ready"}),
            json!("text"),
            json!(42),
            json!(null),
            json!([{"label": "rtvi-ai"}]),
            json!("{not json"),
            json!(r#"{"label":"chat"}"#),
        ] {
            assert!(matches!(decode(&other), InboundAppMessage::Other(_)), "{other}");
        }
        // A serialised RTVI object is accepted.
        let serialised = Value::String(bot_ready.to_string());
        assert!(matches!(decode(&serialised), InboundAppMessage::Rtvi(_)));
    }

    #[test]
    fn too_large_detection() {
        assert!(is_too_large_error("Unable to send too large message"));
        assert!(is_too_large_error("AppMessage(MessageTooLarge)"));
        assert!(!is_too_large_error("AppMessage(Signalling(ChannelNotOpen))"));
    }
}
