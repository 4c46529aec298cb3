//! The client's RTVI messages, validated and answered the way pipecat-ai's runner and the peer
//! bot answer them.

use std::sync::Arc;

use pipecat_rtvi::{
    ClientEnvelope, ClientMessage, Dtmf, ErrorData, FunctionCallResult, InputType, ProtocolVersion,
    RTVI_LABEL, SendText, ServerMessage, UserInput,
};
use serde_json::Value;

use super::{Ending, SessionCore};
use crate::recorder::{BotEventKind, EndReason, InvalidKind};
use crate::script::BotReadyMode;
use crate::util::{iso8601_micros_offset, lock};

impl SessionCore {
    /// Handles one text message from the client's RTVI channel.
    pub(super) async fn handle_text(self: &Arc<Self>, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                self.recorder.invalid(
                    &self.id,
                    InvalidKind::NotJson,
                    e.to_string(),
                    text.as_bytes(),
                );
                return;
            }
        };
        let Some(object) = value.as_object() else {
            let detail = "JSON that is not an object".to_owned();
            self.recorder.invalid(&self.id, InvalidKind::NotJson, detail, text.as_bytes());
            return;
        };
        if object.get("label").and_then(Value::as_str) != Some(RTVI_LABEL) {
            // The real server ignores it with a warning.
            let detail = format!("label {:?}", object.get("label"));
            self.recorder.invalid(&self.id, InvalidKind::NotRtvi, detail, text.as_bytes());
            return;
        }
        let message_type = object.get("type").and_then(Value::as_str);
        let id = object.get("id").and_then(Value::as_str);
        let (Some(message_type), Some(id)) = (message_type, id) else {
            let missing = if message_type.is_none() { "type" } else { "id" };
            let detail = format!("{missing}: Field required (a string)");
            self.recorder.invalid(
                &self.id,
                InvalidKind::InvalidEnvelope,
                detail.clone(),
                text.as_bytes(),
            );
            self.emit(ServerMessage::Error(ErrorData {
                error: format!(
                    "Invalid RTVI transport message: 1 validation error for Message\n{detail}"
                ),
                fatal: false,
            }));
            return;
        };
        let data = object.get("data").cloned();
        let parsed = ClientEnvelope::parse(text);
        let envelope = parsed.as_ref().ok().cloned();
        self.recorder.received(&self.id, message_type, id, data.clone(), envelope, text);

        if message_type == "client-ready" {
            self.handle_client_ready(id, data.as_ref());
            return;
        }
        match parsed {
            Ok(envelope) => self.dispatch(id, envelope.message, data.as_ref()).await,
            Err(e) => {
                self.recorder.invalid(
                    &self.id,
                    InvalidKind::InvalidData,
                    e.to_string(),
                    text.as_bytes(),
                );
                self.error_response(id, format!("Invalid message: {e}"));
            }
        }
    }

    fn handle_client_ready(self: &Arc<Self>, id: &str, data: Option<&Value>) {
        let data = match data {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                // The server's `raw.get(...)` raises on a non-object: no bot-ready at all.
                let kind = match other {
                    Value::String(_) => "str",
                    Value::Array(_) => "list",
                    Value::Bool(_) => "bool",
                    _ => "int",
                };
                self.error_response(
                    id,
                    format!("Exception processing message: '{kind}' object has no attribute 'get'"),
                );
                return;
            }
        };
        let version = data.and_then(|d| d.get("version")).and_then(Value::as_str);
        self.recorder.event(
            Some(&self.id),
            BotEventKind::ClientReady { version: version.map(str::to_owned) },
        );
        let server: ProtocolVersion =
            self.script.version.parse().unwrap_or(ProtocolVersion::new(2, 2, 0));
        let mut problem = None;
        let mut major = None;
        match version {
            None => problem = Some("Client version unknown.".to_owned()),
            Some(v) => match v.parse::<ProtocolVersion>() {
                Ok(client) => {
                    major = Some(client.major);
                    if client.major != server.major && client.major != 1 {
                        problem = Some(format!(
                            "RTVI version {v} is not compatible with server protocol {}.",
                            self.script.version
                        ));
                    }
                }
                Err(_) => problem = Some(format!("Invalid client version format ({v}).")),
            },
        }
        {
            let mut state = lock(&self.state);
            state.client_ready_id = Some(id.to_owned());
            state.client_major = major;
            state.client_version = version.map(str::to_owned);
        }
        if let Some(problem) = problem {
            self.error_response(id, format!("{problem} Compatibility issues may occur."));
        }
        match self.script.bot_ready {
            BotReadyMode::Immediate => {
                let _ = self.send_bot_ready();
            }
            BotReadyMode::Delayed(delay) => {
                let core = Arc::clone(self);
                self.tasks.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = core.send_bot_ready();
                });
            }
            BotReadyMode::Never => {}
        }
    }

    async fn dispatch(self: &Arc<Self>, id: &str, message: ClientMessage, data: Option<&Value>) {
        match message {
            ClientMessage::DisconnectBot(_) => {
                let _ = self.end(Ending::Graceful(EndReason::DisconnectBot));
            }
            ClientMessage::ClientMessage(message) => self.handle_client_message(id, message).await,
            ClientMessage::SendText(send) => self.handle_send_text(id, send),
            ClientMessage::SendFile(file) => {
                if file.options.and_then(|o| o.run_immediately).unwrap_or(true) {
                    let _ = self.interrupt();
                }
            }
            ClientMessage::LlmFunctionCallResult(result) => {
                self.handle_function_call_result(id, result, data)
            }
            ClientMessage::Dtmf(dtmf) => self.handle_dtmf(id, dtmf),
            ClientMessage::RawAudio(raw) => {
                self.handle_raw_audio(&[raw.base64_audio], raw.sample_rate, raw.num_channels)
            }
            ClientMessage::RawAudioBatch(batch) => self.handle_raw_audio(
                &batch.base64_audio_batch,
                batch.sample_rate,
                batch.num_channels,
            ),
            ClientMessage::UiEvent(_)
            | ClientMessage::UiSnapshot(_)
            | ClientMessage::UiCancelJobGroup(_)
            | ClientMessage::ClientReady(_) => {}
            ClientMessage::Unknown(unknown) => {
                self.error_response(id, format!("Unsupported type {}", unknown.message_type))
            }
            other => self.error_response(id, format!("Unsupported type {}", other.message_type())),
        }
    }

    fn handle_send_text(&self, id: &str, send: SendText) {
        let run = send.options.and_then(|o| o.run_immediately).unwrap_or(true);
        if run {
            let _ = self.interrupt();
        }
        self.emit(ServerMessage::UserInput(UserInput {
            text: send.content.clone(),
            input_type: InputType::Chat,
            timestamp: Some(iso8601_micros_offset()),
            is_final: true,
            user_id: None,
            msg_id: Some(id.to_owned()),
        }));
        if run {
            self.llm_reply(&format!("echo: {}", send.content));
        }
    }

    fn handle_function_call_result(
        &self,
        id: &str,
        result: FunctionCallResult,
        data: Option<&Value>,
    ) {
        // The server requires all four fields: arguments an object, result an object or text.
        let object = data.and_then(Value::as_object);
        let field = |name: &str| object.and_then(|o| o.get(name));
        let missing: Vec<&str> = [
            ("function_name", field("function_name").is_some_and(Value::is_string)),
            ("tool_call_id", field("tool_call_id").is_some_and(Value::is_string)),
            ("arguments", field("arguments").is_some_and(Value::is_object)),
            ("result", field("result").is_some_and(|r| r.is_object() || r.is_string())),
        ]
        .into_iter()
        .filter_map(|(name, ok)| (!ok).then_some(name))
        .collect();
        if !missing.is_empty() {
            let detail = missing.join(", ");
            self.recorder.invalid(
                &self.id,
                InvalidKind::InvalidData,
                format!("llm-function-call-result: missing or invalid {detail}"),
                data.map(Value::to_string).unwrap_or_default().as_bytes(),
            );
            self.error_response(
                id,
                format!(
                    "Invalid message: validation error for LLMFunctionCallResultData: {detail}"
                ),
            );
            return;
        }
        let _ = self.stop_function_call(&result.tool_call_id, false, Some(result.result));
    }

    fn handle_dtmf(&self, id: &str, dtmf: Dtmf) {
        let batched = self
            .script
            .version
            .parse::<ProtocolVersion>()
            .map(|v| v >= ProtocolVersion::new(2, 1, 0))
            .unwrap_or(true);
        match dtmf {
            Dtmf::Buttons { buttons } if buttons.is_empty() => self.error_response(
                id,
                "Invalid message: 1 validation error for DTMFInputData\nbuttons\n  List should have at least 1 item after validation, not 0",
            ),
            Dtmf::Buttons { .. } if !batched => self.error_response(
                id,
                "Invalid message: 1 validation error for DTMFInputData\nbutton\n  Field required",
            ),
            Dtmf::Button { .. } if batched => self.error_response(
                id,
                "Invalid message: 1 validation error for DTMFInputData\nbuttons\n  Field required",
            ),
            _ => {}
        }
    }
}
