//! Messages from the client to the bot (pipecat-ai 1.14.0, RTVI 2.2.0).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dtmf::Dtmf;
use crate::macros::message_enum;
use crate::ui::{UiCancelJobGroup, UiEvent, UiSnapshot};
use crate::{About, CLIENT_PROTOCOL_VERSION};

message_enum! {
    /// Every client-to-server RTVI message type. Unknown types (from a newer client, when a
    /// test bot decodes them) are kept in [`ClientMessage::Unknown`].
    pub enum ClientMessage {
        /// Sent once the transport is up; the bot answers with `bot-ready`.
        "client-ready" => ClientReady(ClientReady),
        /// Asks the bot to end the session gracefully.
        "disconnect-bot" => DisconnectBot(DisconnectBot),
        /// An application message; the bot may answer with `server-response`.
        "client-message" => ClientMessage(ClientMessageData),
        /// Text for the LLM, as if the user said it.
        "send-text" => SendText(SendText),
        /// A file or image for the LLM (2.2.0+).
        "send-file" => SendFile(SendFile),
        /// The result of a client-side function call.
        "llm-function-call-result" => LlmFunctionCallResult(FunctionCallResult),
        /// Telephone keypad input.
        "dtmf" => Dtmf(Dtmf),
        /// One chunk of PCM16 audio over the message channel.
        "raw-audio" => RawAudio(RawAudio),
        /// Several chunks of PCM16 audio over the message channel.
        "raw-audio-batch" => RawAudioBatch(RawAudioBatch),
        /// A UI event (1.3.0+).
        "ui-event" => UiEvent(UiEvent),
        /// A UI accessibility snapshot (1.3.0+).
        "ui-snapshot" => UiSnapshot(UiSnapshot),
        /// Cancels a UI job group (1.3.0+).
        "ui-cancel-job-group" => UiCancelJobGroup(UiCancelJobGroup),
    }
}

/// `client-ready` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReady {
    /// The client's protocol version, `x.y.z`.
    pub version: String,
    /// The client library.
    pub about: About,
}

impl Default for ClientReady {
    fn default() -> Self {
        ClientReady { version: CLIENT_PROTOCOL_VERSION.to_string(), about: About::this_library() }
    }
}

/// `disconnect-bot` data: always the empty object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DisconnectBot {}

/// `client-message` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClientMessageData {
    /// The application's message type (required by the server).
    pub t: String,
    /// The application's data.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub d: Option<Value>,
}

/// `send-text` data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendText {
    /// The text.
    pub content: String,
    /// Options; the server defaults both to `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<SendTextOptions>,
}

/// Options of `send-text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendTextOptions {
    /// Interrupt the bot and run the LLM now (server default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_immediately: Option<bool>,
    /// Speak the reply (server default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_response: Option<bool>,
}

/// `send-file` data (2.2.0+).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SendFile {
    /// Text sent with the file.
    #[serde(default)]
    pub content: String,
    /// The file.
    pub file: FileData,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<SendFileOptions>,
}

/// A file of `send-file`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FileData {
    /// MIME type.
    pub format: String,
    /// File name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the content is.
    pub source: FileSource,
}

/// Where a file's content is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileSource {
    /// Inline bytes: base64 or a full `data:` URL.
    Bytes {
        /// The content.
        bytes: String,
        /// Image width.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        /// Image height.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
    },
    /// A URL, including `pipecat:<id>` values from the runner's upload endpoint.
    Url {
        /// The URL.
        url: String,
    },
}

impl Default for FileSource {
    fn default() -> Self {
        FileSource::Url { url: String::new() }
    }
}

/// Options of `send-file`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SendFileOptions {
    /// Interrupt the bot and run the LLM now (server default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_immediately: Option<bool>,
    /// Speak the reply (server default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_response: Option<bool>,
    /// Options for the bot's own use.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub custom_options: Option<Value>,
}

/// `llm-function-call-result` data. The server requires all four fields: give `arguments` as
/// an object and `result` as an object or a string. [`Value::Null`] is never sent as `null`:
/// the field is left out (and a missing field decodes as [`Value::Null`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FunctionCallResult {
    /// The function's name.
    pub function_name: String,
    /// The call id from `llm-function-call-in-progress`.
    pub tool_call_id: String,
    /// The call's arguments (an object).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub arguments: Value,
    /// The result: an object or a string.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
}

/// `raw-audio` data: one base64 PCM16 chunk.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawAudio {
    /// Base64 PCM16 little-endian.
    pub base64_audio: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub num_channels: u16,
}

/// `raw-audio-batch` data: several base64 PCM16 chunks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawAudioBatch {
    /// Base64 PCM16 little-endian chunks, in order.
    pub base64_audio_batch: Vec<String>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub num_channels: u16,
}
