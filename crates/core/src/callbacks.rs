//! JS-style callbacks: [`ClientCallbacks`], one method per [`ClientEvent`], all no-ops by
//! default.

use pipecat_rtvi as rtvi;
use serde_json::Value;

use crate::TransportState;
use crate::events::{ClientEvent, ErrorEvent, ProtocolWarning, UndispatchedReason};
use crate::function_calls::{FunctionCall, FunctionCallOutcome};
use crate::media::{DeviceError, MediaDeviceInfo, MediaState, Participant, TrackInfo};

/// Callbacks for a client's events, for those who prefer them to [`crate::EventStream`].
///
/// Override the methods you need; the others do nothing. [`ClientCallbacks::on_event`] sees
/// every event first and, by default, calls the typed method for it.
///
/// Callbacks run in order on a task of their own, so a slow callback delays later callbacks
/// but never the session; a panicking callback is caught and logged.
///
/// ```
/// use pipecat_core::{ClientCallbacks, TransportState};
///
/// struct Printer;
///
/// impl ClientCallbacks for Printer {
///     fn on_transport_state_changed(&self, state: TransportState, previous: TransportState) {
///         println!("{previous} -> {state}");
///     }
///     fn on_bot_ready(&self, ready: &pipecat_core::rtvi::BotReady) {
///         println!("bot speaks RTVI {}", ready.version);
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait ClientCallbacks: Send + Sync + 'static {
    /// Every event. The default calls the typed method below for it.
    fn on_event(&self, event: &ClientEvent) {
        dispatch_to_typed(self, event);
    }

    /// The state changed.
    fn on_transport_state_changed(&self, state: TransportState, previous: TransportState) {}

    /// The transport is up and `client-ready` was sent.
    fn on_connected(&self) {}

    /// The session ended (state `disconnected`).
    fn on_disconnected(&self) {}

    /// `start_bot` got its answer: the start endpoint's JSON.
    fn on_bot_started(&self, value: &Value) {}

    /// The bot is connected at the transport level (before `bot-ready`).
    fn on_bot_connected(&self, value: &Participant) {}

    /// `bot-ready`: version, about and capabilities.
    fn on_bot_ready(&self, value: &rtvi::BotReady) {}

    /// The bot left the session.
    fn on_bot_disconnected(&self, reason: &str) {}

    /// The connection closed cleanly without the bot leaving.
    fn on_connection_closed(&self, reason: &str) {}

    /// Another participant joined.
    fn on_participant_joined(&self, value: &Participant) {}

    /// A participant left.
    fn on_participant_left(&self, value: &Participant) {}

    /// An error; `fatal` ones end the session.
    fn on_error(&self, value: &ErrorEvent) {}

    /// The bot rejected a client message with `error-response`.
    fn on_message_error(&self, id: Option<&str>, message: &str) {}

    /// A protocol oddity that does not stop the session.
    fn on_protocol_warning(&self, value: &ProtocolWarning) {}

    /// A feature the transport or bot lacks was asked for.
    fn on_unsupported_feature(&self, feature: &str, reason: &str) {}

    /// The transport is recovering its connection; the bot session goes on.
    fn on_reconnecting(&self, attempt: u32, max_attempts: u32) {}

    /// Transport recovery succeeded.
    fn on_reconnected(&self) {}

    /// A transport problem that does not end the session.
    fn on_transport_warning(&self, value: &str) {}

    /// `server-message`: an unsolicited message from the bot.
    fn on_server_message(&self, value: &Value) {}

    /// `server-response`: an answer to a client request (it also resolves the request).
    fn on_server_response(&self, id: Option<&str>, response: &rtvi::ServerResponse) {}

    /// `user-started-speaking`.
    fn on_user_started_speaking(&self) {}

    /// `user-stopped-speaking`.
    fn on_user_stopped_speaking(&self) {}

    /// `vad-user-started-speaking` (raw VAD).
    fn on_vad_user_started_speaking(&self) {}

    /// `vad-user-stopped-speaking` (raw VAD).
    fn on_vad_user_stopped_speaking(&self) {}

    /// `user-mute-started`: the bot ignores the user's audio for now.
    fn on_user_mute_started(&self) {}

    /// `user-mute-stopped`.
    fn on_user_mute_stopped(&self) {}

    /// `bot-started-speaking`.
    fn on_bot_started_speaking(&self) {}

    /// `bot-stopped-speaking`.
    fn on_bot_stopped_speaking(&self) {}

    /// `bot-interrupted`: buffered bot audio was dropped.
    fn on_bot_interrupted(&self) {}

    /// `user-transcription` (deprecated by the bot in favour of `user-input`).
    fn on_user_transcript(&self, value: &rtvi::Transcription) {}

    /// `user-input`: what the user said or typed.
    fn on_user_input(&self, value: &rtvi::UserInput) {}

    /// `user-llm-text`: the user text that entered the LLM context.
    fn on_user_llm_text(&self, value: &rtvi::TextData) {}

    /// `bot-output`: the holistic bot output stream.
    fn on_bot_output(&self, value: &rtvi::BotOutput) {}

    /// `bot-llm-started`.
    fn on_bot_llm_started(&self) {}

    /// `bot-llm-stopped`.
    fn on_bot_llm_stopped(&self) {}

    /// `bot-llm-text` (deprecated): a streamed LLM chunk.
    fn on_bot_llm_text(&self, value: &rtvi::TextData) {}

    /// `bot-transcription` (deprecated): one sentence of LLM text.
    fn on_bot_transcript(&self, value: &rtvi::TextData) {}

    /// `bot-tts-started`.
    fn on_bot_tts_started(&self) {}

    /// `bot-tts-stopped`.
    fn on_bot_tts_stopped(&self) {}

    /// `bot-tts-text` (deprecated): text as the TTS speaks it.
    fn on_bot_tts_text(&self, value: &rtvi::TextData) {}

    /// `stt-raw-text`: raw STT output.
    fn on_stt_raw_text(&self, value: &rtvi::Transcription) {}

    /// `llm-raw-text`: raw LLM chunks.
    fn on_llm_raw_text(&self, value: &rtvi::TextData) {}

    /// `tts-raw-text`: raw spoken TTS text.
    fn on_tts_raw_text(&self, value: &rtvi::TextData) {}

    /// `bot-llm-marker`.
    fn on_bot_llm_marker(&self, value: &rtvi::BotLlmMarker) {}

    /// `bot-tts-audio`.
    fn on_bot_tts_audio(&self, value: &rtvi::BotTtsAudio) {}

    /// `llm-function-call-started`.
    fn on_llm_function_call_started(&self, value: &rtvi::FunctionCallStarted) {}

    /// `llm-function-call-in-progress` (a registered handler now runs).
    fn on_llm_function_call_in_progress(&self, value: &rtvi::FunctionCallInProgress) {}

    /// `llm-function-call-stopped`.
    fn on_llm_function_call_stopped(&self, value: &rtvi::FunctionCallStopped) {}

    /// `llm-function-call` (deprecated form of in-progress).
    fn on_llm_function_call(&self, value: &rtvi::LegacyFunctionCall) {}

    /// A function call was not handed to a handler.
    fn on_function_call_undispatched(&self, tool_call_id: &str, reason: &UndispatchedReason) {}

    /// A handler finished (or failed, panicked, timed out) and its result was sent.
    fn on_function_call_handled(
        &self,
        call: &FunctionCall,
        result: &Value,
        outcome: &FunctionCallOutcome,
    ) {
    }

    /// `bot-llm-search-response`.
    fn on_bot_llm_search_response(&self, value: &rtvi::SearchResponse) {}

    /// `metrics`.
    fn on_metrics(&self, value: &rtvi::Metrics) {}

    /// `user-audio-level` (sent by the bot).
    fn on_user_audio_level(&self, value: f64) {}

    /// `bot-audio-level` (sent by the bot).
    fn on_bot_audio_level(&self, value: f64) {}

    /// `system-log`.
    fn on_system_log(&self, value: &rtvi::TextData) {}

    /// `ui-command`.
    fn on_ui_command(&self, value: &rtvi::UiCommand) {}

    /// `ui-job-group`.
    fn on_ui_job_group(&self, value: &rtvi::UiJobGroup) {}

    /// A message type this SDK does not know, kept losslessly.
    fn on_unknown_message(&self, value: &rtvi::UnknownMessage) {}

    /// A media track started.
    fn on_track_started(&self, value: &TrackInfo) {}

    /// A media track stopped.
    fn on_track_stopped(&self, value: &TrackInfo) {}

    /// The local microphone level, 0..1.
    fn on_local_audio_level(&self, value: f32) {}

    /// The bot's audio level, 0..1, measured locally.
    fn on_remote_audio_level(&self, value: f32) {}

    /// A device problem.
    fn on_device_error(&self, value: &DeviceError) {}

    /// The device states changed.
    fn on_media_state_changed(&self, value: &MediaState) {}

    /// The microphone in use changed.
    fn on_mic_updated(&self, value: &MediaDeviceInfo) {}

    /// The speaker in use changed.
    fn on_speaker_updated(&self, value: &MediaDeviceInfo) {}

    /// The set of microphones changed.
    fn on_available_mics_updated(&self, value: &[MediaDeviceInfo]) {}

    /// The set of speakers changed.
    fn on_available_speakers_updated(&self, value: &[MediaDeviceInfo]) {}
}

/// Calls the typed method of `callbacks` for `event`: for an [`ClientCallbacks::on_event`]
/// override that still wants the typed methods.
pub fn dispatch_to_typed<C: ClientCallbacks + ?Sized>(callbacks: &C, event: &ClientEvent) {
    match event {
        ClientEvent::TransportStateChanged { state, previous } => {
            callbacks.on_transport_state_changed(*state, *previous)
        }
        ClientEvent::Connected => callbacks.on_connected(),
        ClientEvent::Disconnected => callbacks.on_disconnected(),
        ClientEvent::BotStarted(v) => callbacks.on_bot_started(v),
        ClientEvent::BotConnected(v) => callbacks.on_bot_connected(v),
        ClientEvent::BotReady(v) => callbacks.on_bot_ready(v),
        ClientEvent::BotDisconnected { reason } => callbacks.on_bot_disconnected(reason),
        ClientEvent::ConnectionClosed { reason } => callbacks.on_connection_closed(reason),
        ClientEvent::ParticipantJoined(v) => callbacks.on_participant_joined(v),
        ClientEvent::ParticipantLeft(v) => callbacks.on_participant_left(v),
        ClientEvent::Error(v) => callbacks.on_error(v),
        ClientEvent::MessageError { id, message } => {
            callbacks.on_message_error(id.as_deref(), message)
        }
        ClientEvent::ProtocolWarning(v) => callbacks.on_protocol_warning(v),
        ClientEvent::UnsupportedFeature { feature, reason } => {
            callbacks.on_unsupported_feature(feature, reason)
        }
        ClientEvent::Reconnecting { attempt, max_attempts } => {
            callbacks.on_reconnecting(*attempt, *max_attempts)
        }
        ClientEvent::Reconnected => callbacks.on_reconnected(),
        ClientEvent::TransportWarning(v) => callbacks.on_transport_warning(v),
        // Only subscribers of a stream can lag.
        ClientEvent::Lagged { .. } => {}
        ClientEvent::ServerMessage(v) => callbacks.on_server_message(v),
        ClientEvent::ServerResponse { id, response } => {
            callbacks.on_server_response(id.as_deref(), response)
        }
        ClientEvent::UserStartedSpeaking => callbacks.on_user_started_speaking(),
        ClientEvent::UserStoppedSpeaking => callbacks.on_user_stopped_speaking(),
        ClientEvent::VadUserStartedSpeaking => callbacks.on_vad_user_started_speaking(),
        ClientEvent::VadUserStoppedSpeaking => callbacks.on_vad_user_stopped_speaking(),
        ClientEvent::UserMuteStarted => callbacks.on_user_mute_started(),
        ClientEvent::UserMuteStopped => callbacks.on_user_mute_stopped(),
        ClientEvent::BotStartedSpeaking => callbacks.on_bot_started_speaking(),
        ClientEvent::BotStoppedSpeaking => callbacks.on_bot_stopped_speaking(),
        ClientEvent::BotInterrupted => callbacks.on_bot_interrupted(),
        ClientEvent::UserTranscript(v) => callbacks.on_user_transcript(v),
        ClientEvent::UserInput(v) => callbacks.on_user_input(v),
        ClientEvent::UserLlmText(v) => callbacks.on_user_llm_text(v),
        ClientEvent::BotOutput(v) => callbacks.on_bot_output(v),
        ClientEvent::BotLlmStarted => callbacks.on_bot_llm_started(),
        ClientEvent::BotLlmStopped => callbacks.on_bot_llm_stopped(),
        ClientEvent::BotLlmText(v) => callbacks.on_bot_llm_text(v),
        ClientEvent::BotTranscript(v) => callbacks.on_bot_transcript(v),
        ClientEvent::BotTtsStarted => callbacks.on_bot_tts_started(),
        ClientEvent::BotTtsStopped => callbacks.on_bot_tts_stopped(),
        ClientEvent::BotTtsText(v) => callbacks.on_bot_tts_text(v),
        ClientEvent::SttRawText(v) => callbacks.on_stt_raw_text(v),
        ClientEvent::LlmRawText(v) => callbacks.on_llm_raw_text(v),
        ClientEvent::TtsRawText(v) => callbacks.on_tts_raw_text(v),
        ClientEvent::BotLlmMarker(v) => callbacks.on_bot_llm_marker(v),
        ClientEvent::BotTtsAudio(v) => callbacks.on_bot_tts_audio(v),
        ClientEvent::LlmFunctionCallStarted(v) => callbacks.on_llm_function_call_started(v),
        ClientEvent::LlmFunctionCallInProgress(v) => callbacks.on_llm_function_call_in_progress(v),
        ClientEvent::LlmFunctionCallStopped(v) => callbacks.on_llm_function_call_stopped(v),
        ClientEvent::LlmFunctionCall(v) => callbacks.on_llm_function_call(v),
        ClientEvent::FunctionCallUndispatched { tool_call_id, reason } => {
            callbacks.on_function_call_undispatched(tool_call_id, reason)
        }
        ClientEvent::FunctionCallHandled { call, result, outcome } => {
            callbacks.on_function_call_handled(call, result, outcome)
        }
        ClientEvent::BotLlmSearchResponse(v) => callbacks.on_bot_llm_search_response(v),
        ClientEvent::Metrics(v) => callbacks.on_metrics(v),
        ClientEvent::UserAudioLevel(v) => callbacks.on_user_audio_level(*v),
        ClientEvent::BotAudioLevel(v) => callbacks.on_bot_audio_level(*v),
        ClientEvent::SystemLog(v) => callbacks.on_system_log(v),
        ClientEvent::UiCommand(v) => callbacks.on_ui_command(v),
        ClientEvent::UiJobGroup(v) => callbacks.on_ui_job_group(v),
        ClientEvent::UnknownMessage(v) => callbacks.on_unknown_message(v),
        ClientEvent::TrackStarted(v) => callbacks.on_track_started(v),
        ClientEvent::TrackStopped(v) => callbacks.on_track_stopped(v),
        ClientEvent::LocalAudioLevel(v) => callbacks.on_local_audio_level(*v),
        ClientEvent::RemoteAudioLevel(v) => callbacks.on_remote_audio_level(*v),
        ClientEvent::DeviceError(v) => callbacks.on_device_error(v),
        ClientEvent::MediaStateChanged(v) => callbacks.on_media_state_changed(v),
        ClientEvent::MicUpdated(v) => callbacks.on_mic_updated(v),
        ClientEvent::SpeakerUpdated(v) => callbacks.on_speaker_updated(v),
        ClientEvent::AvailableMicsUpdated(v) => callbacks.on_available_mics_updated(v),
        ClientEvent::AvailableSpeakersUpdated(v) => callbacks.on_available_speakers_updated(v),
    }
}
