//! What the bot sends on the RTVI channel: replies, `bot-ready`, function calls,
//! interruptions, errors, garbage, and what its fake LLM and STT services push.

use std::sync::Arc;

use pipecat_rtvi::{
    BotReady, ErrorData, ErrorResponse, InputType, RTVI_LABEL, ServerEnvelope, ServerMessage,
    ServerResponse, TextData, Transcription, UserInput,
};
use serde_json::{Map, Value, json};

use super::{Ending, Garbage, Outbound, SessionCore, SessionHandle};
use crate::error::TestkitError;
use crate::recorder::{BotEventKind, EndReason};
use crate::util::{iso8601_millis_z, lock};

/// The user id the `transcript` command puts on its fake transcriptions (as the peer bot).
const PEER_USER_ID: &str = "peer-user";
/// The largest oversize message the bot builds (a client asking for more gets this).
pub const MAX_OVERSIZE_BYTES: usize = 64 * 1024 * 1024;

impl SessionCore {
    pub(super) fn push(&self, outbound: Outbound) -> Result<(), TestkitError> {
        if self.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        self.out_tx.send(outbound).map_err(|_| TestkitError::SessionEnded)
    }

    /// Sends RTVI JSON text and records it under `message_type`.
    pub(super) fn send_text(&self, message_type: &str, json: String) -> Result<(), TestkitError> {
        self.push(Outbound::Rtvi(json.clone()))?;
        self.recorder.sent(&self.id, message_type, &json);
        Ok(())
    }

    /// Sends a typed server message.
    pub(super) fn send_envelope(&self, envelope: &ServerEnvelope) -> Result<(), TestkitError> {
        let json = envelope.to_json()?;
        self.send_text(envelope.message.message_type(), json)
    }

    /// Sends a message built from its parts (`data` of `None` or `null` is left out).
    pub(super) fn send_parts(&self, message_type: &str, id: Option<&str>, data: Option<Value>) {
        let mut map = Map::new();
        map.insert("label".into(), RTVI_LABEL.into());
        map.insert("type".into(), message_type.into());
        if let Some(id) = id {
            map.insert("id".into(), id.into());
        }
        if let Some(data) = data.filter(|d| !d.is_null()) {
            map.insert("data".into(), data);
        }
        let json = Value::Object(map).to_string();
        // Sending fails only once the session is closing; nothing is left to tell then.
        let _ = self.send_text(message_type, json);
    }

    /// Sends a typed message, ignoring a closing session (used by the scripted replies).
    pub(super) fn emit(&self, message: ServerMessage) {
        let _ = self.send_envelope(&ServerEnvelope::new(message));
    }

    fn reply(&self, id: &str, message: ServerMessage) {
        let _ = self.send_envelope(&ServerEnvelope::reply(id, message));
    }

    pub(super) fn server_response(&self, id: &str, t: &str, d: Option<Value>) {
        self.reply(id, ServerMessage::ServerResponse(ServerResponse { t: t.to_owned(), d }));
    }

    pub(super) fn error_response(&self, id: &str, error: impl Into<String>) {
        self.reply(id, ServerMessage::ErrorResponse(ErrorResponse { error: error.into() }));
    }

    pub(super) fn emit_garbage(&self, garbage: Garbage) {
        if self.push(Outbound::Garbage(garbage)).is_ok() {
            let text = garbage.rtvi_text().unwrap_or_default();
            self.recorder.sent(&self.id, &format!("garbage/{}", garbage.name()), text);
        }
    }

    /// Sends a `server-message` padded to about `bytes` bytes of JSON.
    pub(super) fn send_oversize(&self, bytes: usize) -> Result<(), TestkitError> {
        let overhead = r#"{"label":"rtvi-ai","type":"server-message","data":{"padding":""}}"#.len();
        let padding = "x".repeat(bytes.min(MAX_OVERSIZE_BYTES).saturating_sub(overhead));
        let json =
            json!({"label": RTVI_LABEL, "type": "server-message", "data": {"padding": padding}})
                .to_string();
        self.send_text("server-message", json)
    }

    /// Sends `bot-ready` answering the last `client-ready` (or with a fresh id if none came).
    pub(super) fn send_bot_ready(self: &Arc<Self>) -> Result<(), TestkitError> {
        let (id, version) = {
            let state = lock(&self.state);
            let id = state.client_ready_id.clone().unwrap_or_else(pipecat_rtvi::fresh_id);
            // A 1.x client gets its own version echoed back (legacy mode).
            let version = match (state.client_major, &state.client_version) {
                (Some(1), Some(v)) => v.clone(),
                _ => self.script.version.clone(),
            };
            (id, version)
        };
        let ready = BotReady {
            version,
            about: Some(self.script.about.clone()),
            capabilities: self.script.capabilities,
        };
        self.send_envelope(&ServerEnvelope::reply(id, ServerMessage::BotReady(ready)))?;
        let first = {
            let mut state = lock(&self.state);
            !std::mem::replace(&mut state.bot_ready_sent, true)
        };
        self.recorder.event(Some(&self.id), BotEventKind::BotReadySent);
        if first {
            for hook in self.script.on_bot_ready.clone() {
                let session = SessionHandle { core: Arc::clone(self) };
                self.tasks.spawn(hook(session));
            }
        }
        Ok(())
    }

    /// Interrupts the bot: drops queued audio, tells the client.
    pub(super) fn interrupt(&self) -> Result<(), TestkitError> {
        lock(&self.audio_out).clear();
        let was_speaking = std::mem::take(&mut lock(&self.state).speaking);
        self.push(Outbound::Interruption)?;
        self.emit(ServerMessage::BotInterrupted);
        if was_speaking {
            self.emit(ServerMessage::BotStoppedSpeaking);
        }
        Ok(())
    }

    /// Announces a function call; returns its `tool_call_id`.
    pub(super) fn start_function_call(
        &self,
        function_name: &str,
        tool_call_id: Option<String>,
        arguments: Value,
    ) -> Result<String, TestkitError> {
        if self.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        let id = {
            let mut state = lock(&self.state);
            state.fn_calls += 1;
            let id = tool_call_id.unwrap_or_else(|| format!("call-{}", state.fn_calls));
            state.pending_calls.insert(id.clone(), function_name.to_owned());
            id
        };
        let level = self.script.function_call_report_level;
        if level == crate::FunctionCallReportLevel::Disabled {
            return Ok(id);
        }
        let name = level.names().then(|| function_name.to_owned());
        self.emit(ServerMessage::LlmFunctionCallStarted(pipecat_rtvi::FunctionCallStarted {
            function_name: name.clone(),
        }));
        self.emit(ServerMessage::LlmFunctionCallInProgress(pipecat_rtvi::FunctionCallInProgress {
            tool_call_id: id.clone(),
            function_name: name,
            arguments: level.arguments().then_some(arguments),
        }));
        Ok(id)
    }

    /// Sends `llm-function-call-stopped` for a call.
    pub(super) fn stop_function_call(
        &self,
        tool_call_id: &str,
        cancelled: bool,
        result: Option<Value>,
    ) -> Result<(), TestkitError> {
        if self.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        let name = lock(&self.state).pending_calls.remove(tool_call_id);
        let level = self.script.function_call_report_level;
        if level == crate::FunctionCallReportLevel::Disabled {
            return Ok(());
        }
        self.emit(ServerMessage::LlmFunctionCallStopped(pipecat_rtvi::FunctionCallStopped {
            tool_call_id: tool_call_id.to_owned(),
            cancelled,
            function_name: if level.names() { name } else { None },
            result: if level.results() { result } else { None },
        }));
        Ok(())
    }

    /// Sends an RTVI `error`; a fatal one ends the session.
    pub(super) fn send_error(&self, error: &str, fatal: bool) -> Result<(), TestkitError> {
        self.send_envelope(&ServerEnvelope::new(ServerMessage::Error(ErrorData {
            error: error.to_owned(),
            fatal,
        })))?;
        if fatal {
            self.end(Ending::Graceful(EndReason::FatalError))?;
        }
        Ok(())
    }

    /// What an LLM service pushes for a one-sentence reply that is not spoken.
    pub(super) fn llm_reply(&self, text: &str) {
        let segment = {
            let mut state = lock(&self.state);
            state.segment += 1;
            state.segment
        };
        self.emit(ServerMessage::BotLlmStarted);
        self.emit(ServerMessage::BotLlmText(TextData { text: text.to_owned() }));
        self.emit(ServerMessage::BotTranscription(TextData { text: text.to_owned() }));
        self.emit(ServerMessage::BotLlmStopped);
        self.emit(ServerMessage::BotOutput(pipecat_rtvi::BotOutput {
            text: text.to_owned(),
            output_type: Some("sentence".into()),
            text_type: Some("sentence".into()),
            aggregated_by: Some("sentence".into()),
            segment_id: Some(segment),
            spoken: Some(false),
            will_be_spoken: Some(false),
            spoken_status: Some(pipecat_rtvi::SpokenStatus::New),
            spoken_progress: None,
        }));
    }

    /// An interim then a final transcription, as an STT service would push them.
    pub(super) fn fake_transcription(&self, text: &str) {
        let interim: String = text.chars().take(text.chars().count() / 2).collect();
        for (text, is_final) in [(interim, false), (text.to_owned(), true)] {
            let timestamp = iso8601_millis_z();
            self.emit(ServerMessage::UserInput(UserInput {
                text: text.clone(),
                input_type: InputType::Transcription,
                timestamp: Some(timestamp.clone()),
                is_final,
                user_id: Some(PEER_USER_ID.into()),
                msg_id: None,
            }));
            self.emit(ServerMessage::UserTranscription(Transcription {
                text,
                user_id: Some(PEER_USER_ID.into()),
                timestamp: Some(timestamp),
                is_final,
            }));
        }
    }
}
