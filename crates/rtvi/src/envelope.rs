//! The RTVI envelope `{"label":"rtvi-ai","type":…,"id"?:…,"data"?:…}` and its codec.

use std::any::TypeId;
use std::borrow::Cow;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{ClientMessage, RtviError, ServerMessage, UiJobGroup, fresh_id};

/// The label every RTVI message carries.
pub const RTVI_LABEL: &str = "rtvi-ai";

/// The envelope fields, borrowed from the input text where possible.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    /// Kept raw so that a label of the wrong JSON type is a [`RtviError::WrongLabel`] too.
    #[serde(borrow, default)]
    label: Option<&'a RawValue>,
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
    // Serde's derived structs also accept a JSON array (fields by position); an envelope
    // must be an object, so anything else is classified here before decoding.
    if !text.trim_start_matches(JSON_WHITESPACE).starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Err(e) => RtviError::NotJson(e),
            Ok(_) => RtviError::InvalidEnvelope(serde::de::Error::custom(
                "expected a JSON object, found another JSON value",
            )),
        });
    }
    check_depth(text)?;
    let raw: RawEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            RtviError::NotJson(e)
        } else {
            RtviError::InvalidEnvelope(e)
        }
    })?;
    check_label(raw.label)?;
    Ok(raw)
}

/// The deepest nesting of arrays and objects a message may have, the envelope object
/// included: the deepest that serde_json parses (its recursion limit is 128, reached on the
/// 128th level), so whatever decodes can also be read back as one JSON value.
pub(crate) const MAX_DEPTH: usize = 127;

/// Rejects messages nested deeper than [`MAX_DEPTH`], wherever the nesting is. Decoding `data`
/// hits serde_json's recursion limit anyway, but fields that are skipped (unknown fields,
/// the data of payload-less types) are skipped without counting depth; this makes the rule
/// uniform. A message needs at least two bytes per level, so short texts are not scanned.
fn check_depth(text: &str) -> Result<(), RtviError> {
    if text.len() <= 2 * MAX_DEPTH {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(RtviError::NotJson(serde::de::Error::custom(format!(
                        "message nested deeper than {MAX_DEPTH} levels"
                    ))));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The JSON whitespace characters (RFC 8259): what may precede the opening brace.
const JSON_WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// Checks the envelope label; any other value (or none) is [`RtviError::WrongLabel`].
fn check_label(label: Option<&RawValue>) -> Result<(), RtviError> {
    let Some(label) = label else {
        return Err(RtviError::WrongLabel { found: None });
    };
    // The common case, without allocating: the exact, unescaped label.
    if label.get() == "\"rtvi-ai\"" {
        return Ok(());
    }
    match serde_json::from_str::<Cow<'_, str>>(label.get()) {
        Ok(found) if found == RTVI_LABEL => Ok(()),
        Ok(found) => Err(RtviError::WrongLabel { found: Some(found.into_owned()) }),
        // A JSON `null` label is no label; a number, object, ... is reported as its JSON text.
        Err(_) if label.get() == "null" => Err(RtviError::WrongLabel { found: None }),
        Err(_) => Err(RtviError::WrongLabel { found: Some(label.get().to_owned()) }),
    }
}

/// Decodes a message's `data`. An absent or `null` member means "no payload": payloads that
/// accept `null` (any JSON) get it, object payloads get `{}` so all-optional structs still
/// decode. Object payloads must be JSON objects: serde's derived structs would also take an
/// array (fields by position), which no RTVI peer sends.
pub(crate) fn decode_data<T: DeserializeOwned + 'static>(
    message_type: &str,
    data: Option<&RawValue>,
) -> Result<T, RtviError> {
    let invalid = |source| RtviError::InvalidData { message_type: message_type.to_owned(), source };
    match data.map(RawValue::get) {
        Some(text) if text != "null" => {
            if !accepts_any_json::<T>() && !text.starts_with('{') {
                return Err(invalid(serde::de::Error::custom(
                    "expected a JSON object as message data",
                )));
            }
            serde_json::from_str(text).map_err(invalid)
        }
        _ => serde_json::from_str("null").or_else(|_| serde_json::from_str("{}").map_err(invalid)),
    }
}

/// Payload types whose data may be any JSON value, not only an object: `server-message`.
fn accepts_any_json<T: 'static>() -> bool {
    TypeId::of::<T>() == TypeId::of::<Value>()
}

/// Writes a `data` member, leaving it out when the payload is JSON `null` (a `server-message`
/// of [`Value::Null`], or a [`UiJobGroup::Other`] of it): absent, never `null`, on output.
pub(crate) fn encode_data<M: SerializeMap, T: Serialize + 'static>(
    map: &mut M,
    data: &T,
) -> Result<(), M::Error> {
    let any: &dyn std::any::Any = data;
    let is_null = match (any.downcast_ref::<Value>(), any.downcast_ref::<UiJobGroup>()) {
        (Some(value), _) | (_, Some(UiJobGroup::Other(value))) => value.is_null(),
        _ => false,
    };
    if is_null { Ok(()) } else { map.serialize_entry("data", data) }
}

/// `true` for an optional JSON field that is left out on output: `None`, and also
/// `Some(Value::Null)`, since the server treats `null` as "not given" (and so does decoding,
/// which turns a `null` member into `None`).
pub(crate) fn is_absent(value: &Option<Value>) -> bool {
    value.as_ref().is_none_or(Value::is_null)
}

/// A message of a type this crate does not know, kept as its type string and raw data.
///
/// Decoding keeps the `data` member as sent (a `null` member counts as absent); encoding
/// writes it back, so an unknown message round-trips to equal JSON. Use a `message_type` that
/// is not one of this crate's known types: on decoding, a known type is decoded as such.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownMessage {
    /// The wire `type`.
    pub message_type: String,
    /// The `data` member, if there was one; `Some(Value::Null)` is encoded as absent.
    pub data: Option<Value>,
}

impl UnknownMessage {
    pub(crate) fn decode(message_type: &str, data: Option<&RawValue>) -> Result<Self, RtviError> {
        let data =
            data.map(|raw| serde_json::from_str(raw.get())).transpose().map_err(|source| {
                RtviError::InvalidData { message_type: message_type.to_owned(), source }
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
