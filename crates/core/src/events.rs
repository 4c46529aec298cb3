//! What a client reports: [`ClientEvent`], and the [`EventStream`] that delivers it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use pipecat_rtvi as rtvi;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::function_calls::{FunctionCall, FunctionCallOutcome};
use crate::media::{DeviceError, MediaDeviceInfo, MediaState, Participant, TrackInfo};
use crate::{Error, TransportState};

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorOrigin {
    /// An RTVI `error` message from the bot.
    Bot,
    /// The transport (a failed connection, a lost socket).
    Transport,
    /// The client itself (a timeout, a failed start request, an oversized message).
    Client,
}

/// An error report. `fatal` errors end the session: the client moves to `error`, then
/// `disconnected`, and cleans up.
#[derive(Debug, Clone)]
pub struct ErrorEvent {
    /// Who reported it.
    pub origin: ErrorOrigin,
    /// What went wrong, for people (the bot's text for bot errors).
    pub message: String,
    /// Whether it ends the session.
    pub fatal: bool,
    /// The typed error: for client and transport errors, and for a fatal bot error
    /// ([`Error::BotError`], as `connect` returns it before ready).
    pub error: Option<Arc<Error>>,
}

impl ErrorEvent {
    pub(crate) fn from_error(origin: ErrorOrigin, error: Error, fatal: bool) -> Self {
        ErrorEvent { origin, message: error.to_string(), fatal, error: Some(Arc::new(error)) }
    }
}

/// Something in the protocol that deserves attention but does not stop the session.
///
/// It displays as a sentence for people and serialises (serde) as a map of its
/// [`kind`](Self::kind) and fields, for machine-readable output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProtocolWarning {
    /// An inbound message could not be decoded; it was skipped.
    InvalidMessage {
        /// Why.
        reason: String,
    },
    /// The bot speaks a protocol major other than ours (legacy 1.x or unknown); the session
    /// goes on, some features may not work.
    BotVersion {
        /// The bot's version.
        version: rtvi::ProtocolVersion,
        /// How it relates to ours.
        compatibility: rtvi::Compatibility,
    },
    /// The bot's `bot-ready` version is missing or not `major.minor.patch`; the session is
    /// ready anyway, and the oldest supported protocol is assumed for what may be sent.
    InvalidBotVersion {
        /// What the bot sent.
        version: String,
    },
    /// The bot answered `client-ready` with an `error-response` (a version problem). The bot
    /// carries on and sends `bot-ready` anyway.
    ClientReadyRejected {
        /// The bot's text.
        message: String,
    },
    /// A message that makes no sense now (a second `bot-ready`, for example); ignored.
    Unexpected {
        /// The message type.
        message_type: String,
    },
}

/// Why a function call announced by the bot was not handed to a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UndispatchedReason {
    /// The bot did not include `function_name` (its report level is below `name`), so no
    /// handler can be chosen. Raise `function_call_report_level` on the bot.
    MissingFunctionName,
    /// The same `tool_call_id` was already dispatched in this session.
    Duplicate,
    /// No handler is registered for the function (and no catch-all): the bot may run it
    /// itself. With [`ClientBuilder::reply_to_unhandled_function_calls`] an error result was
    /// sent.
    ///
    /// [`ClientBuilder::reply_to_unhandled_function_calls`]: crate::ClientBuilder::reply_to_unhandled_function_calls
    NoHandler {
        /// The function's name.
        function_name: String,
        /// Whether an error result was sent.
        replied: bool,
    },
}

impl std::fmt::Display for UndispatchedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UndispatchedReason::MissingFunctionName => f.write_str(
                "the bot did not name the function (raise its function_call_report_level)",
            ),
            UndispatchedReason::Duplicate => f.write_str("already dispatched in this session"),
            UndispatchedReason::NoHandler { function_name, replied: false } => {
                write!(f, "no handler for {function_name}; left to the bot")
            }
            UndispatchedReason::NoHandler { function_name, replied: true } => {
                write!(f, "no handler for {function_name}; answered with an error")
            }
        }
    }
}

/// Everything a [`crate::PipecatClient`] reports. Each inbound RTVI message becomes one typed
/// event; transport happenings (tracks, devices, levels, reconnection) are forwarded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    // ---- Lifecycle (local) ----
    /// The state changed.
    TransportStateChanged {
        /// The new state.
        state: TransportState,
        /// The state before.
        previous: TransportState,
    },
    /// The transport is up and `client-ready` was sent (state `connected`).
    Connected,
    /// The session ended (state `disconnected`).
    Disconnected,
    /// `start_bot` got its answer: the start endpoint's JSON.
    BotStarted(Value),
    /// The bot is connected at the transport level (before `bot-ready`).
    BotConnected(Participant),
    /// `bot-ready`: version, about and capabilities.
    BotReady(rtvi::BotReady),
    /// The bot left the session.
    BotDisconnected {
        /// What the transport saw.
        reason: String,
    },
    /// The connection closed cleanly without the bot leaving (the transport's
    /// [`TransportEvent::Closed`](crate::TransportEvent::Closed)); `disconnected` follows.
    ConnectionClosed {
        /// What the transport saw.
        reason: String,
    },
    /// Another participant joined.
    ParticipantJoined(Participant),
    /// A participant left.
    ParticipantLeft(Participant),
    /// An error; `fatal` ones end the session.
    Error(ErrorEvent),
    /// The bot rejected a client message with `error-response` (a rejected request also
    /// fails with [`Error::ErrorResponse`]; a rejected `client-ready` is a
    /// [`ProtocolWarning::ClientReadyRejected`] instead).
    MessageError {
        /// The id of the rejected message.
        id: Option<String>,
        /// The bot's text.
        message: String,
    },
    /// A protocol oddity that does not stop the session.
    ProtocolWarning(ProtocolWarning),
    /// A feature the transport or bot lacks was asked for.
    UnsupportedFeature {
        /// The feature.
        feature: String,
        /// Why it is unavailable.
        reason: String,
    },
    /// The transport is recovering its connection; the bot session goes on.
    Reconnecting {
        /// Attempt number, from 1.
        attempt: u32,
        /// Attempts allowed.
        max_attempts: u32,
    },
    /// Transport recovery succeeded.
    Reconnected,
    /// A transport problem that does not end the session.
    TransportWarning(String),
    /// Only in an [`EventStream`]: this subscriber fell behind and lost `missed` events.
    Lagged {
        /// How many events were lost.
        missed: u64,
    },

    // ---- Bot messages ----
    /// `server-message`: an unsolicited message from the bot.
    ServerMessage(Value),
    /// `server-response`: an answer to a client request (it also resolves the request).
    ServerResponse {
        /// The id of the request answered.
        id: Option<String>,
        /// The answer.
        response: rtvi::ServerResponse,
    },
    /// `user-started-speaking`.
    UserStartedSpeaking,
    /// `user-stopped-speaking`.
    UserStoppedSpeaking,
    /// `vad-user-started-speaking` (raw VAD).
    VadUserStartedSpeaking,
    /// `vad-user-stopped-speaking` (raw VAD).
    VadUserStoppedSpeaking,
    /// `user-mute-started`: the bot ignores the user's audio for now.
    UserMuteStarted,
    /// `user-mute-stopped`.
    UserMuteStopped,
    /// `bot-started-speaking`.
    BotStartedSpeaking,
    /// `bot-stopped-speaking`.
    BotStoppedSpeaking,
    /// `bot-interrupted`: buffered bot audio was dropped.
    BotInterrupted,
    /// `user-transcription` (deprecated by the bot in favour of `user-input`).
    UserTranscript(rtvi::Transcription),
    /// `user-input`: what the user said or typed.
    UserInput(rtvi::UserInput),
    /// `user-llm-text`: the user text that entered the LLM context.
    UserLlmText(rtvi::TextData),
    /// `bot-output`: the holistic bot output stream.
    BotOutput(rtvi::BotOutput),
    /// `bot-llm-started`.
    BotLlmStarted,
    /// `bot-llm-stopped`.
    BotLlmStopped,
    /// `bot-llm-text` (deprecated): a streamed LLM chunk.
    BotLlmText(rtvi::TextData),
    /// `bot-transcription` (deprecated): one sentence of LLM text.
    BotTranscript(rtvi::TextData),
    /// `bot-tts-started`.
    BotTtsStarted,
    /// `bot-tts-stopped`.
    BotTtsStopped,
    /// `bot-tts-text` (deprecated): text as the TTS speaks it.
    BotTtsText(rtvi::TextData),
    /// `stt-raw-text`: raw STT output.
    SttRawText(rtvi::Transcription),
    /// `llm-raw-text`: raw LLM chunks.
    LlmRawText(rtvi::TextData),
    /// `tts-raw-text`: raw spoken TTS text.
    TtsRawText(rtvi::TextData),
    /// `bot-llm-marker`.
    BotLlmMarker(rtvi::BotLlmMarker),
    /// `bot-tts-audio`.
    BotTtsAudio(rtvi::BotTtsAudio),
    /// `llm-function-call-started`.
    LlmFunctionCallStarted(rtvi::FunctionCallStarted),
    /// `llm-function-call-in-progress` (a registered handler now runs).
    LlmFunctionCallInProgress(rtvi::FunctionCallInProgress),
    /// `llm-function-call-stopped`.
    LlmFunctionCallStopped(rtvi::FunctionCallStopped),
    /// `llm-function-call` (deprecated form of in-progress).
    LlmFunctionCall(rtvi::LegacyFunctionCall),
    /// A function call was not handed to a handler.
    FunctionCallUndispatched {
        /// The call id.
        tool_call_id: String,
        /// Why.
        reason: UndispatchedReason,
    },
    /// A handler finished (or failed, panicked, timed out) and its result was sent.
    FunctionCallHandled {
        /// The call.
        call: FunctionCall,
        /// What was sent as `result`.
        result: Value,
        /// How the handler ended.
        outcome: FunctionCallOutcome,
    },
    /// `bot-llm-search-response`.
    BotLlmSearchResponse(rtvi::SearchResponse),
    /// `metrics`.
    Metrics(rtvi::Metrics),
    /// `user-audio-level` (sent by the bot).
    UserAudioLevel(f64),
    /// `bot-audio-level` (sent by the bot).
    BotAudioLevel(f64),
    /// `system-log`.
    SystemLog(rtvi::TextData),
    /// `ui-command`.
    UiCommand(rtvi::UiCommand),
    /// `ui-job-group`.
    UiJobGroup(rtvi::UiJobGroup),
    /// A message type this SDK does not know, kept losslessly.
    UnknownMessage(rtvi::UnknownMessage),

    // ---- Media (from the transport) ----
    /// A media track started.
    TrackStarted(TrackInfo),
    /// A media track stopped.
    TrackStopped(TrackInfo),
    /// The local microphone level, 0..1.
    LocalAudioLevel(f32),
    /// The bot's audio level, 0..1, measured locally.
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

impl ClientEvent {
    /// The event for an inbound server message. `None` for the messages the client handles
    /// with dedicated events (`bot-ready`, `error`, `error-response`, `server-response`).
    pub(crate) fn from_server_message(message: rtvi::ServerMessage) -> Option<ClientEvent> {
        use rtvi::ServerMessage as M;
        Some(match message {
            M::BotReady(_) | M::Error(_) | M::ErrorResponse(_) | M::ServerResponse(_) => {
                return None;
            }
            M::ServerMessage(v) => ClientEvent::ServerMessage(v),
            M::UserStartedSpeaking => ClientEvent::UserStartedSpeaking,
            M::UserStoppedSpeaking => ClientEvent::UserStoppedSpeaking,
            M::VadUserStartedSpeaking => ClientEvent::VadUserStartedSpeaking,
            M::VadUserStoppedSpeaking => ClientEvent::VadUserStoppedSpeaking,
            M::UserMuteStarted => ClientEvent::UserMuteStarted,
            M::UserMuteStopped => ClientEvent::UserMuteStopped,
            M::BotStartedSpeaking => ClientEvent::BotStartedSpeaking,
            M::BotStoppedSpeaking => ClientEvent::BotStoppedSpeaking,
            M::BotInterrupted => ClientEvent::BotInterrupted,
            M::UserTranscription(t) => ClientEvent::UserTranscript(t),
            M::UserInput(u) => ClientEvent::UserInput(u),
            M::UserLlmText(t) => ClientEvent::UserLlmText(t),
            M::BotLlmStarted => ClientEvent::BotLlmStarted,
            M::BotLlmStopped => ClientEvent::BotLlmStopped,
            M::BotLlmText(t) => ClientEvent::BotLlmText(t),
            M::BotTranscription(t) => ClientEvent::BotTranscript(t),
            M::BotTtsStarted => ClientEvent::BotTtsStarted,
            M::BotTtsStopped => ClientEvent::BotTtsStopped,
            M::BotTtsText(t) => ClientEvent::BotTtsText(t),
            M::BotOutput(o) => ClientEvent::BotOutput(o),
            M::SttRawText(t) => ClientEvent::SttRawText(t),
            M::LlmRawText(t) => ClientEvent::LlmRawText(t),
            M::TtsRawText(t) => ClientEvent::TtsRawText(t),
            M::BotLlmMarker(m) => ClientEvent::BotLlmMarker(m),
            M::LlmFunctionCallStarted(f) => ClientEvent::LlmFunctionCallStarted(f),
            M::LlmFunctionCallInProgress(f) => ClientEvent::LlmFunctionCallInProgress(f),
            M::LlmFunctionCallStopped(f) => ClientEvent::LlmFunctionCallStopped(f),
            M::LlmFunctionCall(f) => ClientEvent::LlmFunctionCall(f),
            M::BotLlmSearchResponse(s) => ClientEvent::BotLlmSearchResponse(s),
            M::Metrics(m) => ClientEvent::Metrics(m),
            M::UserAudioLevel(l) => ClientEvent::UserAudioLevel(l.value),
            M::BotAudioLevel(l) => ClientEvent::BotAudioLevel(l.value),
            M::SystemLog(t) => ClientEvent::SystemLog(t),
            M::UiCommand(c) => ClientEvent::UiCommand(c),
            M::UiJobGroup(g) => ClientEvent::UiJobGroup(g),
            M::BotTtsAudio(a) => ClientEvent::BotTtsAudio(a),
            M::Unknown(u) => ClientEvent::UnknownMessage(u),
            // A type added to the RTVI crate after this match: keep it reachable.
            other => ClientEvent::UnknownMessage(rtvi::UnknownMessage {
                message_type: other.message_type().to_owned(),
                data: None,
            }),
        })
    }

    /// A short name of the event kind, for logs (`"transport-state-changed"`,
    /// `"bot-ready"`...). Server messages use their RTVI type.
    pub fn name(&self) -> &'static str {
        match self {
            ClientEvent::TransportStateChanged { .. } => "transport-state-changed",
            ClientEvent::Connected => "connected",
            ClientEvent::Disconnected => "disconnected",
            ClientEvent::BotStarted(_) => "bot-started",
            ClientEvent::BotConnected(_) => "bot-connected",
            ClientEvent::BotReady(_) => "bot-ready",
            ClientEvent::BotDisconnected { .. } => "bot-disconnected",
            ClientEvent::ConnectionClosed { .. } => "connection-closed",
            ClientEvent::ParticipantJoined(_) => "participant-joined",
            ClientEvent::ParticipantLeft(_) => "participant-left",
            ClientEvent::Error(_) => "error",
            ClientEvent::MessageError { .. } => "error-response",
            ClientEvent::ProtocolWarning(_) => "protocol-warning",
            ClientEvent::UnsupportedFeature { .. } => "unsupported-feature",
            ClientEvent::Reconnecting { .. } => "reconnecting",
            ClientEvent::Reconnected => "reconnected",
            ClientEvent::TransportWarning(_) => "transport-warning",
            ClientEvent::Lagged { .. } => "lagged",
            ClientEvent::ServerMessage(_) => "server-message",
            ClientEvent::ServerResponse { .. } => "server-response",
            ClientEvent::UserStartedSpeaking => "user-started-speaking",
            ClientEvent::UserStoppedSpeaking => "user-stopped-speaking",
            ClientEvent::VadUserStartedSpeaking => "vad-user-started-speaking",
            ClientEvent::VadUserStoppedSpeaking => "vad-user-stopped-speaking",
            ClientEvent::UserMuteStarted => "user-mute-started",
            ClientEvent::UserMuteStopped => "user-mute-stopped",
            ClientEvent::BotStartedSpeaking => "bot-started-speaking",
            ClientEvent::BotStoppedSpeaking => "bot-stopped-speaking",
            ClientEvent::BotInterrupted => "bot-interrupted",
            ClientEvent::UserTranscript(_) => "user-transcription",
            ClientEvent::UserInput(_) => "user-input",
            ClientEvent::UserLlmText(_) => "user-llm-text",
            ClientEvent::BotOutput(_) => "bot-output",
            ClientEvent::BotLlmStarted => "bot-llm-started",
            ClientEvent::BotLlmStopped => "bot-llm-stopped",
            ClientEvent::BotLlmText(_) => "bot-llm-text",
            ClientEvent::BotTranscript(_) => "bot-transcription",
            ClientEvent::BotTtsStarted => "bot-tts-started",
            ClientEvent::BotTtsStopped => "bot-tts-stopped",
            ClientEvent::BotTtsText(_) => "bot-tts-text",
            ClientEvent::SttRawText(_) => "stt-raw-text",
            ClientEvent::LlmRawText(_) => "llm-raw-text",
            ClientEvent::TtsRawText(_) => "tts-raw-text",
            ClientEvent::BotLlmMarker(_) => "bot-llm-marker",
            ClientEvent::BotTtsAudio(_) => "bot-tts-audio",
            ClientEvent::LlmFunctionCallStarted(_) => "llm-function-call-started",
            ClientEvent::LlmFunctionCallInProgress(_) => "llm-function-call-in-progress",
            ClientEvent::LlmFunctionCallStopped(_) => "llm-function-call-stopped",
            ClientEvent::LlmFunctionCall(_) => "llm-function-call",
            ClientEvent::FunctionCallUndispatched { .. } => "function-call-undispatched",
            ClientEvent::FunctionCallHandled { .. } => "function-call-handled",
            ClientEvent::BotLlmSearchResponse(_) => "bot-llm-search-response",
            ClientEvent::Metrics(_) => "metrics",
            ClientEvent::UserAudioLevel(_) => "user-audio-level",
            ClientEvent::BotAudioLevel(_) => "bot-audio-level",
            ClientEvent::SystemLog(_) => "system-log",
            ClientEvent::UiCommand(_) => "ui-command",
            ClientEvent::UiJobGroup(_) => "ui-job-group",
            ClientEvent::UnknownMessage(_) => "unknown-message",
            ClientEvent::TrackStarted(_) => "track-started",
            ClientEvent::TrackStopped(_) => "track-stopped",
            ClientEvent::LocalAudioLevel(_) => "local-audio-level",
            ClientEvent::RemoteAudioLevel(_) => "remote-audio-level",
            ClientEvent::DeviceError(_) => "device-error",
            ClientEvent::MediaStateChanged(_) => "media-state-changed",
            ClientEvent::MicUpdated(_) => "mic-updated",
            ClientEvent::SpeakerUpdated(_) => "speaker-updated",
            ClientEvent::AvailableMicsUpdated(_) => "available-mics-updated",
            ClientEvent::AvailableSpeakersUpdated(_) => "available-speakers-updated",
        }
    }
}

/// A subscription to a client's events, from [`crate::PipecatClient::events`].
///
/// A `Stream` of [`ClientEvent`]s in the order the client emitted them. It never slows the
/// session down: a subscriber that falls more than the client's event capacity behind loses
/// the oldest events and gets one [`ClientEvent::Lagged`] saying how many. The stream ends
/// when the client is dropped. For every event without loss (at the cost of memory while
/// the reader is behind) use a [`crate::LosslessEventStream`].
pub struct EventStream {
    inner: BroadcastStream<ClientEvent>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<ClientEvent>) -> Self {
        EventStream { inner: BroadcastStream::new(rx) }
    }

    /// The next event; `None` once the client is gone.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        futures::StreamExt::next(self).await
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => Poll::Ready(Some(event)),
            Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(missed)))) => {
                Poll::Ready(Some(ClientEvent::Lagged { missed }))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
