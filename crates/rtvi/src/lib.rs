//! The RTVI message layer of Pipecat voice-AI bots: every message of RTVI 2.2.0 in both
//! directions, typed, plus the version rules between client and bot. Serde only: no I/O, no
//! async runtime.
//!
//! Decoding is lenient (unknown message types are kept losslessly, unknown fields ignored,
//! optional fields may be missing or `null`) and encoding is strict (absent values are omitted,
//! never sent as `null`; every client message carries a fresh id).
//!
//! The exact rules:
//! - A message must be a JSON object with `label` `"rtvi-ai"` and a string `type`; anything
//!   else is a typed [`RtviError`], never a panic. The `data` of a typed message must be an
//!   object (except `server-message`, which is any JSON).
//! - Messages nested more than 127 levels deep are rejected ([`RtviError::NotJson`]), so
//!   hostile input cannot exhaust the stack.
//! - `f64` values round-trip exactly; a NaN or infinity cannot be encoded
//!   ([`RtviError::Encode`]).
//! - An optional JSON value of `Some(Value::Null)` is encoded as absent and so decodes as
//!   `None`.
//!
//! ```
//! use pipecat_rtvi::{ClientEnvelope, ServerEnvelope, ServerMessage};
//!
//! // The client says hello...
//! let ready = ClientEnvelope::client_ready();
//! let wire = ready.to_json_checked(64 * 1024).unwrap();
//! assert!(wire.contains(r#""type":"client-ready""#));
//!
//! // ...and the bot answers with the same id.
//! let answer = format!(
//!     r#"{{"label":"rtvi-ai","type":"bot-ready","id":"{}","data":{{"version":"2.2.0"}}}}"#,
//!     ready.id
//! );
//! let envelope = ServerEnvelope::parse(&answer).unwrap();
//! assert_eq!(envelope.id.as_deref(), Some(ready.id.as_str()));
//! let ServerMessage::BotReady(bot) = envelope.message else { unreachable!() };
//! assert!(bot.protocol_version().unwrap().compatibility().is_compatible());
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod about;
mod builders;
mod client;
mod dtmf;
mod envelope;
mod error;
mod finite;
mod id;
mod macros;
mod metrics;
mod server;
mod ui;
mod version;

pub use about::About;
pub use client::{
    ClientMessage, ClientMessageData, ClientReady, DisconnectBot, FileData, FileSource,
    FunctionCallResult, RawAudio, RawAudioBatch, SendFile, SendFileOptions, SendText,
    SendTextOptions,
};
pub use dtmf::{Dtmf, DtmfKey, dtmf_messages};
pub use envelope::{ClientEnvelope, RTVI_LABEL, ServerEnvelope, UnknownMessage, check_size};
pub use error::RtviError;
pub use id::fresh_id;
pub use metrics::{
    CharactersMetric, MetricValue, Metrics, SttUsage, SttUsageValue, TokenUsage, TtfaMetric,
    TtfatMetric,
};
pub use server::{
    AudioLevel, BotLlmMarker, BotOutput, BotReady, BotTtsAudio, Capabilities, ErrorData,
    ErrorResponse, FunctionCallInProgress, FunctionCallStarted, FunctionCallStopped, InputType,
    LegacyFunctionCall, SearchOrigin, SearchResponse, SearchResult, ServerMessage, ServerResponse,
    SpokenProgress, SpokenStatus, TextData, Transcription, UserInput,
};
pub use ui::{
    A11yNode, A11ySelection, A11ySnapshot, JobGroupEvent, Navigate, SelectText, SetInputValue,
    StandardUiCommand, Target, Toast, UiCancelJobGroup, UiCommand, UiEvent, UiJobGroup, UiSnapshot,
};
pub use version::{
    CLIENT_PROTOCOL_VERSION, Compatibility, DtmfFormat, LEGACY_MAJOR, OLDEST_SUPPORTED_VERSION,
    ProtocolVersion, SEND_FILE_MIN_VERSION,
};
