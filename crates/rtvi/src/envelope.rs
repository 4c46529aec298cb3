//! The RTVI envelope `{"label":"rtvi-ai","type":…,"id"?:…,"data"?:…}` and its codec.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{ClientMessage, RtviError, ServerMessage, fresh_id};

/// The label every RTVI message carries.
pub const RTVI_LABEL: &str = "rtvi-ai";

/// The envelope fields, borrowed from the input text where possible.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    label: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    message_type: Cow<'a, str>,
    #[serde(default)]
    id: Option<MessageIdValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Ids are strings on the wire; a number from a lenient peer is kept as its decimal text.
#[derive(Deserialize)]
#[serde(untagged)]
enum MessageIdValue {
    Text(String),
    Number(serde_json::Number),
}

impl From<MessageIdValue> for String {
    fn from(id: MessageIdValue) -> Self {
        match id {
            MessageIdValue::Text(s) => s,
            MessageIdValue::Number(n) => n.to_string(),
        }
    }
}

/// Splits a text into checked envelope parts: JSON, an object, `type`, and the RTVI label.
fn split(text: &str) -> Result<RawEnvelope<'_>, RtviError> {
    let raw: RawEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            RtviError::NotJson(e)
        } else {
            RtviError::InvalidEnvelope(e)
        }
    })?;
    if raw.label.as_deref() != Some(RTVI_LABEL) {
        return Err(RtviError::WrongLabel { found: raw.label.map(Cow::into_owned) });
    }
    Ok(raw)
}

/// Decodes a message's `data`. An absent or `null` member means "no payload": payloads that
/// accept `null` (any JSON, options) get it, object payloads get `{}` so all-optional structs
/// still decode.
pub(crate) fn decode_data<T: DeserializeOwned>(
    message_type: &str,
    data: Option<&RawValue>,
) -> Result<T, RtviError> {
    let invalid = |source| RtviError::InvalidData { message_type: message_type.to_owned(), source };
    match data.map(RawValue::get) {
        Some(text) if text != "null" => serde_json::from_str(text).map_err(invalid),
        _ => serde_json::from_str("null").or_else(|_| serde_json::from_str("{}").map_err(invalid)),
    }
}

/// Writes a `data` member.
pub(crate) fn encode_data<M: SerializeMap, T: Serialize>(
    map: &mut M,
    data: &T,
) -> Result<(), M::Error> {
    map.serialize_entry("data", data)
}

/// A message of a type this crate does not know, kept as its type string and raw data.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownMessage {
    /// The wire `type`.
    pub message_type: String,
    /// The `data` member, if there was one.
    pub data: Option<Value>,
}

impl UnknownMessage {
    pub(crate) fn decode(message_type: &str, data: Option<&RawValue>) -> Result<Self, RtviError> {
        let data = data
            .map(|raw| serde_json::from_str(raw.get()))
            .transpose()
            .map_err(|source| RtviError::InvalidData {
                message_type: message_type.to_owned(),
                source,
            })?;
        Ok(UnknownMessage { message_type: message_type.to_owned(), data })
    }
}

/// A message from the bot (server) with its envelope id.
///
/// The server puts an `id` only on `bot-ready`, `server-response` and `error-response`, where
/// it echoes the id of the client message being answered.
///
/// ```
/// use pipecat_rtvi::{ServerEnvelope, ServerMessage};
/// let text = r#"{"label":"rtvi-ai","type":"error","data":{"error":"boom","fatal":false}}"#;
/// let envelope = ServerEnvelope::parse(text).unwrap();
/// match &envelope.message {
///     ServerMessage::Error(e) => assert_eq!(e.error, "boom"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(envelope.to_json().unwrap(), text);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEnvelope {
    /// The envelope id, if present.
    pub id: Option<String>,
    /// The typed message.
    pub message: ServerMessage,
}

impl ServerEnvelope {
    /// A server message without an id.
    pub fn new(message: ServerMessage) -> Self {
        ServerEnvelope { id: None, message }
    }

    /// A server message answering the client message with id `id`.
    pub fn reply(id: impl Into<String>, message: ServerMessage) -> Self {
        ServerEnvelope { id: Some(id.into()), message }
    }

    /// Decodes one message. Unknown types are kept as [`ServerMessage::Unknown`]; unknown
    /// fields are ignored.
    ///
    /// # Errors
    /// [`RtviError::NotJson`], [`RtviError::InvalidEnvelope`], [`RtviError::WrongLabel`] or
    /// [`RtviError::InvalidData`] (a known type with data of the wrong shape).
    pub fn parse(text: &str) -> Result<Self, RtviError> {
        let raw = split(text)?;
        let message = ServerMessage::decode(&raw.message_type, raw.data)?;
        Ok(ServerEnvelope { id: raw.id.map(Into::into), message })
    }

    /// Encodes the message as JSON text (no `null`s: absent fields are omitted).
    ///
    /// # Errors
    /// [`RtviError::Encode`] if a payload cannot be represented as JSON.
    pub fn to_json(&self) -> Result<String, RtviError> {
        serde_json::to_string(self).map_err(RtviError::Encode)
    }
}

impl Serialize for ServerEnvelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("label", RTVI_LABEL)?;
        map.serialize_entry("type", self.message.message_type())?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        self.message.encode_data(&mut map)?;
        map.end()
    }
}

/// A message from the client to the bot with its envelope id.
///
/// Every client message needs an id (the server rejects messages without one); the
/// constructors here always set a fresh, process-unique one.
///
/// ```
/// use pipecat_rtvi::{ClientEnvelope, ClientMessage};
/// let msg = ClientEnvelope::client_message("ping", Some(serde_json::json!({"x": 1})));
/// let json = msg.to_json_checked(64 * 1024).unwrap();
/// assert!(json.starts_with(r#"{"label":"rtvi-ai","type":"client-message","id":""#));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEnvelope {
    /// The envelope id; replies from the bot echo it.
    pub id: String,
    /// The typed message.
    pub message: ClientMessage,
}

impl ClientEnvelope {
    /// Wraps a message with a fresh id.
    pub fn new(message: ClientMessage) -> Self {
        ClientEnvelope { id: fresh_id(), message }
    }

    /// Wraps a message with the given id.
    pub fn with_id(id: impl Into<String>, message: ClientMessage) -> Self {
        ClientEnvelope { id: id.into(), message }
    }

    /// Decodes a client message (the bot's side of the wire: test bots use this).
    ///
    /// A missing `id` decodes as an empty string; the real server would reject it.
    ///
    /// # Errors
    /// As [`ServerEnvelope::parse`].
    pub fn parse(text: &str) -> Result<Self, RtviError> {
        let raw = split(text)?;
        let message = ClientMessage::decode(&raw.message_type, raw.data)?;
        Ok(ClientEnvelope { id: raw.id.map(Into::into).unwrap_or_default(), message })
    }

    /// Encodes the message as JSON text.
    ///
    /// # Errors
    /// [`RtviError::Encode`] if a payload cannot be represented as JSON.
    pub fn to_json(&self) -> Result<String, RtviError> {
        serde_json::to_string(self).map_err(RtviError::Encode)
    }

    /// Encodes the message and checks its size in UTF-8 bytes against a transport maximum.
    ///
    /// # Errors
    /// [`RtviError::MessageTooLarge`] when the encoded text is longer than `max_bytes`.
    pub fn to_json_checked(&self, max_bytes: usize) -> Result<String, RtviError> {
        let json = self.to_json()?;
        check_size(&json, max_bytes)?;
        Ok(json)
    }
}

impl Serialize for ClientEnvelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("label", RTVI_LABEL)?;
        map.serialize_entry("type", self.message.message_type())?;
        map.serialize_entry("id", &self.id)?;
        self.message.encode_data(&mut map)?;
        map.end()
    }
}

/// Checks an encoded message against a transport's maximum size in UTF-8 bytes.
///
/// # Errors
/// [`RtviError::MessageTooLarge`] when `encoded` is longer than `max_bytes`.
pub fn check_size(encoded: &str, max_bytes: usize) -> Result<(), RtviError> {
    // A Rust `str` is UTF-8, so its length is the byte count the wire will carry.
    let size = encoded.len();
    if size > max_bytes { Err(RtviError::MessageTooLarge { size, max: max_bytes }) } else { Ok(()) }
}
