//! Messages from the bot to the client (pipecat-ai 1.14.0, RTVI 2.2.0).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::macros::{message_enum, open_enum};
use crate::metrics::Metrics;
use crate::ui::{UiCommand, UiJobGroup};
use crate::{About, ProtocolVersion, RtviError};

message_enum! {
    /// Every server-to-client RTVI message type, decoded. Unknown types are kept in
    /// [`ServerMessage::Unknown`].
    pub enum ServerMessage {
        /// The bot's pipeline is ready; the answer to `client-ready`.
        "bot-ready" => BotReady(BotReady),
        /// An error in the bot; `fatal` means the pipeline is being cancelled.
        "error" => Error(ErrorData),
        /// A client message was rejected.
        "error-response" => ErrorResponse(ErrorResponse),
        /// The bot's answer to a `client-message`.
        "server-response" => ServerResponse(ServerResponse),
        /// An unsolicited message from the bot; any JSON ([`Value::Null`] is sent without
        /// `data`, and a message without `data` decodes as it).
        "server-message" => ServerMessage(Value),
        /// The user's turn started.
        "user-started-speaking" => UserStartedSpeaking,
        /// The user's turn ended.
        "user-stopped-speaking" => UserStoppedSpeaking,
        /// Raw VAD: the user started speaking (off by default on the server).
        "vad-user-started-speaking" => VadUserStartedSpeaking,
        /// Raw VAD: the user stopped speaking (off by default on the server).
        "vad-user-stopped-speaking" => VadUserStoppedSpeaking,
        /// The server started ignoring the user's audio (keep sending it).
        "user-mute-started" => UserMuteStarted,
        /// The server listens to the user's audio again.
        "user-mute-stopped" => UserMuteStopped,
        /// The bot started emitting speech audio.
        "bot-started-speaking" => BotStartedSpeaking,
        /// The bot stopped emitting speech audio.
        "bot-stopped-speaking" => BotStoppedSpeaking,
        /// The bot was interrupted: drop buffered bot audio now.
        "bot-interrupted" => BotInterrupted,
        /// Deprecated: an STT result (use `user-input`).
        "user-transcription" => UserTranscription(Transcription),
        /// What the user said or typed (2.2.0+).
        "user-input" => UserInput(UserInput),
        /// The user text that entered the LLM context.
        "user-llm-text" => UserLlmText(TextData),
        /// An LLM response started.
        "bot-llm-started" => BotLlmStarted,
        /// An LLM response ended.
        "bot-llm-stopped" => BotLlmStopped,
        /// Deprecated: a streamed LLM text chunk (use `llm-raw-text` / `bot-output`).
        "bot-llm-text" => BotLlmText(TextData),
        /// Deprecated: one sentence of LLM text.
        "bot-transcription" => BotTranscription(TextData),
        /// TTS started.
        "bot-tts-started" => BotTtsStarted,
        /// TTS stopped.
        "bot-tts-stopped" => BotTtsStopped,
        /// Deprecated: a word or segment as TTS speaks it (use `tts-raw-text`).
        "bot-tts-text" => BotTtsText(TextData),
        /// The holistic bot output stream.
        "bot-output" => BotOutput(BotOutput),
        /// Raw STT output, interim results included (2.2.0+, off by default).
        "stt-raw-text" => SttRawText(Transcription),
        /// Raw LLM chunks (2.2.0+, off by default).
        "llm-raw-text" => LlmRawText(TextData),
        /// Raw spoken TTS text (2.2.0+, off by default).
        "tts-raw-text" => TtsRawText(TextData),
        /// A side-band marker per LLM response (pipecat 1.12+, off by default).
        "bot-llm-marker" => BotLlmMarker(BotLlmMarker),
        /// The LLM started a function call.
        "llm-function-call-started" => LlmFunctionCallStarted(FunctionCallStarted),
        /// A function call is executing; a client-side handler answers it.
        "llm-function-call-in-progress" => LlmFunctionCallInProgress(FunctionCallInProgress),
        /// A function call finished or was cancelled.
        "llm-function-call-stopped" => LlmFunctionCallStopped(FunctionCallStopped),
        /// Deprecated form of `llm-function-call-in-progress`.
        "llm-function-call" => LlmFunctionCall(LegacyFunctionCall),
        /// Search grounding results (Google LLMs).
        "bot-llm-search-response" => BotLlmSearchResponse(SearchResponse),
        /// Performance and usage metrics.
        "metrics" => Metrics(Metrics),
        /// The user's audio level (off by default).
        "user-audio-level" => UserAudioLevel(AudioLevel),
        /// The bot's audio level (off by default).
        "bot-audio-level" => BotAudioLevel(AudioLevel),
        /// A server log line (off by default).
        "system-log" => SystemLog(TextData),
        /// A server-driven UI command (1.3.0+).
        "ui-command" => UiCommand(UiCommand),
        /// A multi-worker job lifecycle event (1.3.0+).
        "ui-job-group" => UiJobGroup(UiJobGroup),
        /// TTS audio as a message (defined by the server, not emitted by 1.14).
        "bot-tts-audio" => BotTtsAudio(BotTtsAudio),
    }
}

/// `bot-ready` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BotReady {
    /// The bot's protocol version (a 1.x client's own version is echoed back). Read
    /// leniently: a bot-ready is a bot-ready, so a missing or `null` version is empty and a
    /// non-string one is its JSON text (both fail [`protocol_version`](Self::protocol_version)).
    #[serde(default, deserialize_with = "lenient_version")]
    pub version: String,
    /// What the bot says about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
    /// What the bot's pipeline can do (2.2.0+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

/// Any JSON as the version text: a string as is, `null` as empty, anything else as its JSON.
fn lenient_version<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(de)? {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

impl BotReady {
    /// The bot's protocol version, parsed.
    ///
    /// # Errors
    /// [`RtviError::InvalidVersion`] if the bot sent something that is not `x.y.z`.
    pub fn protocol_version(&self) -> Result<ProtocolVersion, RtviError> {
        self.version.parse()
    }
}

/// The bot pipeline's capabilities from `bot-ready`; `None` means unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// The bot listens to user audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_in: Option<bool>,
    /// The bot sends audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_out: Option<bool>,
    /// The bot reads the user's camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_in: Option<bool>,
    /// The bot reads the user's screen share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen_in: Option<bool>,
    /// The bot sends video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_out: Option<bool>,
    /// The bot sends metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
}

/// `error` data. Note the server's field is `error`, not `message`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorData {
    /// What went wrong.
    pub error: String,
    /// The pipeline is being cancelled. Deprecated on the server since 1.8.0: also watch for
    /// the transport closing.
    #[serde(default)]
    pub fatal: bool,
}

/// `error-response` data: a client message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Why.
    pub error: String,
}

/// `server-response` data: the answer to a `client-message`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerResponse {
    /// The `t` of the client message being answered.
    pub t: String,
    /// The answer.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub d: Option<Value>,
}

/// Data that is just a text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TextData {
    /// The text.
    pub text: String,
}

/// A speech-to-text result (`user-transcription`, `stt-raw-text`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Transcription {
    /// The text.
    pub text: String,
    /// The user the text belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// ISO 8601 timestamp, as the STT gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// `false` for an interim result.
    #[serde(rename = "final", default)]
    pub is_final: bool,
}

open_enum! {
    /// What kind of user input a `user-input` carries.
    pub enum InputType {
        /// Speech, from STT.
        Transcription = "transcription",
        /// Typed text (`send-text`).
        Chat = "chat",
        /// A backchannel ("mm-hm").
        Backchannel = "backchannel",
    }
}

/// `user-input` data (2.2.0+): what the user said or typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInput {
    /// The text.
    pub text: String,
    /// Speech, chat or backchannel.
    pub input_type: InputType,
    /// ISO 8601 timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// `false` for an interim result.
    #[serde(rename = "final", default)]
    pub is_final: bool,
    /// The user the text belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// For chat input, the id of the `send-text` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
}

open_enum! {
    /// How far the speaking of a `bot-output` segment has got.
    pub enum SpokenStatus {
        /// A new segment (unspoken text gets only this).
        New = "new",
        /// Being spoken.
        InProgress = "in-progress",
        /// Fully spoken.
        Completed = "completed",
    }
}

/// Spoken progress of a `bot-output` segment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpokenProgress {
    /// Text spoken so far.
    pub accumulated_text: String,
    /// Text still to be spoken.
    pub remaining_text: String,
}

/// `bot-output` data: the holistic bot output stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BotOutput {
    /// The text.
    pub text: String,
    /// Aggregation of the text: `sentence`, `word`, `token`, `backchannel` or custom (1.14+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<String>,
    /// Deprecated alias of `output_type` (1.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_type: Option<String>,
    /// Deprecated alias of `output_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregated_by: Option<String>,
    /// Segment key for progress updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<i64>,
    /// v1 flag: the text is spoken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoken: Option<bool>,
    /// v2: the text will be spoken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub will_be_spoken: Option<bool>,
    /// v2: speaking progress status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoken_status: Option<SpokenStatus>,
    /// v2: the spoken and remaining text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoken_progress: Option<SpokenProgress>,
}

impl BotOutput {
    /// The aggregation kind, whichever of the three alias fields carries it.
    pub fn kind(&self) -> Option<&str> {
        self.output_type.as_deref().or(self.text_type.as_deref()).or(self.aggregated_by.as_deref())
    }
}

/// `bot-llm-marker` data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BotLlmMarker {
    /// The response text without markers.
    pub text: String,
    /// Marker kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The raw text with markers.
    #[serde(default)]
    pub raw: String,
    /// The markers found.
    #[serde(default)]
    pub markers: Vec<String>,
}

/// `llm-function-call-started` data. Has no `tool_call_id`; the name only at report level
/// `name` or above.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunctionCallStarted {
    /// The function's name, if the bot reveals it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
}

/// `llm-function-call-in-progress` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FunctionCallInProgress {
    /// The call id; the result must carry it.
    pub tool_call_id: String,
    /// The function's name (report level `name` and above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    /// The arguments (report level `arguments` and above).
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub arguments: Option<Value>,
}

/// `llm-function-call-stopped` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FunctionCallStopped {
    /// The call id.
    pub tool_call_id: String,
    /// The call was cancelled rather than completed.
    #[serde(default)]
    pub cancelled: bool,
    /// The function's name (report level `name` and above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    /// The result (report level `full`).
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub result: Option<Value>,
}

/// Deprecated `llm-function-call` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LegacyFunctionCall {
    /// The function's name.
    pub function_name: String,
    /// The call id.
    pub tool_call_id: String,
    /// The arguments; [`Value::Null`] means absent (left out on output).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub args: Value,
}

/// `bot-llm-search-response` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The search result text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_result: Option<String>,
    /// Rendered search content (HTML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_content: Option<String>,
    /// Where the results came from.
    #[serde(default)]
    pub origins: Vec<SearchOrigin>,
}

/// One source of a search response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SearchOrigin {
    /// The site's URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_uri: Option<String>,
    /// The site's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_title: Option<String>,
    /// The grounded results.
    #[serde(default)]
    pub results: Vec<SearchResult>,
}

/// One grounded search result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SearchResult {
    /// The text.
    pub text: String,
    /// Confidence scores.
    #[serde(default, serialize_with = "crate::finite::vec")]
    pub confidence: Vec<f64>,
}

/// An audio level (`user-audio-level`, `bot-audio-level`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AudioLevel {
    /// The level.
    #[serde(serialize_with = "crate::finite::f64")]
    pub value: f64,
}

/// `bot-tts-audio` data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BotTtsAudio {
    /// Base64 PCM16.
    pub audio: String,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count.
    pub num_channels: u16,
}
