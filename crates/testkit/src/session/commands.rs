//! `client-message` commands: the test's own handlers first, then the peer bot's built-in
//! commands; anything else is echoed back as `server-response`.

use std::sync::Arc;
use std::time::Duration;

use pipecat_rtvi::{ClientMessageData, ServerMessage};
use serde_json::{Map, Value, json};

use super::bot_audio::MAX_TONE;
use super::{Ending, Garbage, SessionCore, SessionHandle};
use crate::BotTransport;
use crate::recorder::EndReason;
use crate::script::{ClientMessageRequest, Reply};

/// `drop-pc` answers first, then waits this long before killing the peer connection.
const DROP_PC_DELAY: Duration = Duration::from_millis(200);
/// The default size of an oversize message.
const DEFAULT_OVERSIZE_BYTES: usize = 2 * 1024 * 1024;

impl SessionCore {
    /// Answers a `client-message`: the test's handler for its `t`, else the built-in command,
    /// else an echo of it.
    pub(super) async fn handle_client_message(
        self: &Arc<Self>,
        id: &str,
        message: ClientMessageData,
    ) {
        let ClientMessageData { t, d } = message;
        if let Some(handler) = self.script.handlers.get(&t).cloned() {
            let request = ClientMessageRequest {
                id: id.to_owned(),
                t: t.clone(),
                d,
                session: SessionHandle { core: Arc::clone(self) },
            };
            // Run on its own task so a panicking handler becomes an error reply, not a dead bot.
            match self.tasks.spawn(handler(request)).await {
                Ok(Reply::Response(d)) => self.server_response(id, &t, d),
                Ok(Reply::Error(error)) => self.error_response(id, error),
                Ok(Reply::Silent) => {}
                Err(e) if e.is_panic() => {
                    self.error_response(id, format!("the test's handler for {t:?} panicked"))
                }
                Err(_) => {}
            }
            return;
        }
        if !self.script.builtin_commands {
            self.server_response(id, &t, d);
            return;
        }
        match Command::parse(&t, d.as_ref()) {
            Ok(command) => self.run_command(id, &t, command),
            Err(UnknownCommand(_)) => self.server_response(id, &t, d),
        }
    }

    /// Runs a built-in command; `t` is the command's name as the client sent it.
    fn run_command(self: &Arc<Self>, id: &str, t: &str, command: Command) {
        match command {
            Command::Ping { echo } => {
                self.server_response(id, t, Some(json!({"pong": true, "echo": echo})));
            }
            Command::Tone { duration, hz } => match self.play_tone(duration, hz) {
                Ok(samples) => self.server_response(id, t, Some(json!({"samples": samples}))),
                Err(e) => self.error_response(id, e.to_string()),
            },
            Command::ServerMsg { data } => {
                self.emit(ServerMessage::ServerMessage(data));
                self.server_response(id, t, Some(json!({"sent": true})));
            }
            Command::Transcript { text } => {
                self.fake_transcription(&text);
                self.server_response(id, t, Some(json!({"text": text})));
            }
            Command::BotText { text } => {
                self.llm_reply(&text);
                self.server_response(id, t, Some(json!({"text": text})));
            }
            Command::FnCall { function_name, tool_call_id, arguments } => {
                match self.start_function_call(&function_name, tool_call_id, arguments) {
                    Ok(call) => self.server_response(id, t, Some(json!({"tool_call_id": call}))),
                    Err(e) => self.error_response(id, e.to_string()),
                }
            }
            Command::Fail { error } => self.error_response(id, error),
            Command::Error { error, fatal } => {
                self.server_response(id, t, Some(json!({"error": true})));
                let _ = self.send_error(&error, fatal);
            }
            Command::End => {
                self.server_response(id, t, Some(json!({"ending": true})));
                let _ = self.end(Ending::Graceful(EndReason::BotEnded));
            }
            Command::Metrics { processor, model, ttfb, processing } => {
                let data = json!({
                    "ttfb": [{"processor": processor, "model": model, "value": ttfb}],
                    "processing": [{"processor": processor, "model": model, "value": processing}],
                });
                self.send_parts("metrics", None, Some(data));
                self.server_response(id, t, Some(json!({"sent": true})));
            }
            Command::UserSpeaking => {
                self.emit(ServerMessage::UserStartedSpeaking);
                self.emit(ServerMessage::UserStoppedSpeaking);
                self.server_response(id, t, Some(json!({"sent": true})));
            }
            Command::Interrupt => {
                let _ = self.interrupt();
                self.server_response(id, t, Some(json!({"interrupted": true})));
            }
            Command::Renegotiate => match self.request_renegotiate() {
                Ok(requested) => self.server_response(id, t, Some(json!({"requested": requested}))),
                Err(_) => self.error_response(id, "renegotiate needs the SmallWebRTC transport"),
            },
            Command::DropPc { mode } => {
                // The transport is checked before the mode, as the peer bot does.
                if self.transport != BotTransport::WebRtc {
                    self.error_response(id, "drop-pc needs the SmallWebRTC transport");
                    return;
                }
                if mode != "close" {
                    self.error_response(id, format!("unknown drop-pc mode '{mode}'"));
                    return;
                }
                self.server_response(id, t, Some(json!({"dropping": self.pc_id(), "mode": mode})));
                let core = Arc::clone(self);
                self.tasks.spawn(async move {
                    tokio::time::sleep(DROP_PC_DELAY).await;
                    let _ = core.drop_peer_connection();
                });
            }
            Command::Garbage => {
                for &garbage in Garbage::ALL {
                    self.emit_garbage(garbage);
                }
                self.server_response(id, t, Some(json!({"sent": Garbage::ALL.len()})));
            }
            Command::Oversize { bytes } => {
                self.server_response(id, t, Some(json!({"bytes": bytes})));
                let _ = self.send_oversize(bytes);
            }
            Command::AbruptClose => {
                let _ = self.end(Ending::Abrupt);
            }
            Command::Close { code, reason } => {
                let _ = self.end(Ending::CloseCode(code, reason));
            }
            Command::PeerLeft => {
                if self.transport != BotTransport::WebRtc {
                    self.error_response(id, "peer-left needs the SmallWebRTC transport");
                    return;
                }
                self.server_response(id, t, Some(json!({"sent": true})));
                let _ = self.send_signalling("peerLeft");
            }
        }
    }
}

/// A built-in `client-message` command: the Python peer bot's scripted commands, then the
/// testkit's misbehaviour triggers. Parsed once from the message's `t` and `d`.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// `ping`: answers `{pong: true, echo: d}`.
    Ping {
        /// The request's `d`, echoed.
        echo: Option<Value>,
    },
    /// `tone` `{ms, hz}`: plays a sine tone as bot speech.
    Tone {
        /// How long (`ms`, at most [`MAX_TONE`]).
        duration: Duration,
        /// The pitch in Hz.
        hz: f64,
    },
    /// `server-msg`: sends `d` as a `server-message`.
    ServerMsg {
        /// What the `server-message` carries.
        data: Value,
    },
    /// `transcript` `{text}`: an interim and a final user transcription.
    Transcript {
        /// The final transcription.
        text: String,
    },
    /// `bot-text` `{text}`: an LLM reply that is not spoken.
    BotText {
        /// The reply.
        text: String,
    },
    /// `fn-call` `{function_name, tool_call_id, arguments}`: a bot-initiated function call.
    FnCall {
        /// The function's name.
        function_name: String,
        /// The call's id (`None`: the bot numbers it).
        tool_call_id: Option<String>,
        /// The call's arguments.
        arguments: Value,
    },
    /// `fail` `{error}`: answers with an `error-response`.
    Fail {
        /// The error text.
        error: String,
    },
    /// `error` `{error, fatal}`: sends an RTVI `error`; a fatal one ends the session.
    Error {
        /// The error text.
        error: String,
        /// Whether it ends the session.
        fatal: bool,
    },
    /// `end`: the bot ends the session.
    End,
    /// `metrics` `{processor, model, ttfb, processing}`: one `metrics` message.
    Metrics {
        /// The processor named in both entries.
        processor: String,
        /// The model named in both entries (any JSON).
        model: Value,
        /// Time to first byte, in seconds.
        ttfb: f64,
        /// Processing time, in seconds.
        processing: f64,
    },
    /// `user-speaking`: `user-started-speaking` then `user-stopped-speaking`.
    UserSpeaking,
    /// `interrupt`: interrupts the bot.
    Interrupt,
    /// `renegotiate`: asks a SmallWebRTC client to renegotiate.
    Renegotiate,
    /// `drop-pc` `{mode}`: drops the SmallWebRTC peer connection after answering.
    DropPc {
        /// How to drop it; only `close` is known, others are refused when run.
        mode: String,
    },
    /// `garbage`: every kind of [`Garbage`].
    Garbage,
    /// `oversize` `{bytes}`: a `server-message` of about this many bytes.
    Oversize {
        /// The message's size.
        bytes: usize,
    },
    /// `abrupt-close`: drops the connection with no goodbye.
    AbruptClose,
    /// `close` `{code, reason}`: closes the WebSocket with this code.
    Close {
        /// The close code, within 1000..=4999.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// `peer-left`: sends SmallWebRTC `peerLeft` but stays connected.
    PeerLeft,
}

/// A `client-message` whose `t` names no built-in command (the bot echoes those back).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no built-in client-message command {0:?}")]
struct UnknownCommand(String);

impl Command {
    /// The command named `t`, with its arguments read from `d`.
    ///
    /// Arguments are lenient, so no command is malformed: a missing or mistyped argument takes
    /// its default, and text arguments take any JSON value as its JSON text.
    ///
    /// # Errors
    /// [`UnknownCommand`] when `t` names no built-in command.
    fn parse(t: &str, d: Option<&Value>) -> Result<Command, UnknownCommand> {
        let args = Args(d.and_then(Value::as_object));
        Ok(match t {
            "ping" => Command::Ping { echo: d.cloned() },
            "tone" => {
                let ms = args.number("ms", 500.0).clamp(0.0, MAX_TONE.as_millis() as f64);
                Command::Tone {
                    duration: Duration::from_millis(ms as u64),
                    hz: args.number("hz", 440.0),
                }
            }
            "server-msg" => Command::ServerMsg { data: d.cloned().unwrap_or(Value::Null) },
            "transcript" => Command::Transcript { text: args.text("text", "hello there bot") },
            "bot-text" => Command::BotText { text: args.text("text", "Hello from the bot.") },
            "fn-call" => Command::FnCall {
                function_name: args.text("function_name", "get_weather"),
                tool_call_id: args.optional_text("tool_call_id"),
                arguments: args.get("arguments").cloned().unwrap_or_else(|| json!({})),
            },
            "fail" => Command::Fail { error: args.text("error", "nope") },
            "error" => Command::Error {
                error: args.text("error", "boom"),
                fatal: args.get("fatal").and_then(Value::as_bool).unwrap_or(false),
            },
            "end" => Command::End,
            "metrics" => Command::Metrics {
                processor: args.text("processor", "TestBot#0"),
                model: args.get("model").cloned().unwrap_or_else(|| json!("peer-model")),
                ttfb: args.number("ttfb", 0.123),
                processing: args.number("processing", 0.045),
            },
            "user-speaking" => Command::UserSpeaking,
            "interrupt" => Command::Interrupt,
            "renegotiate" => Command::Renegotiate,
            "drop-pc" => Command::DropPc { mode: args.text("mode", "close") },
            "garbage" => Command::Garbage,
            "oversize" => Command::Oversize {
                bytes: args.number("bytes", DEFAULT_OVERSIZE_BYTES as f64).max(0.0) as usize,
            },
            "abrupt-close" => Command::AbruptClose,
            "close" => Command::Close {
                code: args.number("code", 1000.0).clamp(1000.0, 4999.0) as u16,
                reason: args.text("reason", ""),
            },
            "peer-left" => Command::PeerLeft,
            _ => return Err(UnknownCommand(t.to_owned())),
        })
    }
}

/// A command's `d` as named arguments; a `d` that is not an object has none.
struct Args<'a>(Option<&'a Map<String, Value>>);

impl Args<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.and_then(|args| args.get(name))
    }

    /// A string as is, any other JSON value as its JSON text; `None` when absent.
    fn optional_text(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.optional_text(name).unwrap_or_else(|| default.to_owned())
    }

    /// Any JSON number; `default` when absent or not a number.
    fn number(&self, name: &str, default: f64) -> f64 {
        self.get(name).and_then(Value::as_f64).unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str, d: Value) -> Command {
        Command::parse(t, Some(&d)).expect("a built-in command")
    }

    #[test]
    fn missing_arguments_take_the_peer_bots_defaults() {
        let tone = Command::parse("tone", None);
        assert_eq!(tone, Ok(Command::Tone { duration: Duration::from_millis(500), hz: 440.0 }));
        assert_eq!(
            Command::parse("fn-call", None),
            Ok(Command::FnCall {
                function_name: "get_weather".into(),
                tool_call_id: None,
                arguments: json!({}),
            })
        );
        assert_eq!(
            Command::parse("close", None),
            Ok(Command::Close { code: 1000, reason: String::new() })
        );
        assert_eq!(Command::parse("drop-pc", None), Ok(Command::DropPc { mode: "close".into() }));
        assert_eq!(
            Command::parse("server-msg", None),
            Ok(Command::ServerMsg { data: Value::Null })
        );
    }

    #[test]
    fn a_d_that_is_not_an_object_has_no_arguments() {
        assert_eq!(
            parse("bot-text", json!("hi")),
            Command::BotText { text: "Hello from the bot.".into() }
        );
        assert_eq!(parse("ping", json!([1])), Command::Ping { echo: Some(json!([1])) });
    }

    #[test]
    fn text_arguments_take_any_json_value_as_text() {
        assert_eq!(
            parse("transcript", json!({"text": 5})),
            Command::Transcript { text: "5".into() }
        );
        let call = parse("fn-call", json!({"tool_call_id": 7, "function_name": null}));
        assert!(matches!(call, Command::FnCall { tool_call_id: Some(id), function_name, .. }
            if id == "7" && function_name == "null"));
    }

    #[test]
    fn numbers_are_clamped_to_what_the_bot_can_do() {
        assert_eq!(
            parse("tone", json!({"ms": 99_999, "hz": "high"})),
            Command::Tone { duration: MAX_TONE, hz: 440.0 }
        );
        assert_eq!(parse("oversize", json!({"bytes": -5})), Command::Oversize { bytes: 0 });
        assert!(matches!(
            parse("close", json!({"code": 70_000})),
            Command::Close { code: 4999, .. }
        ));
        assert!(matches!(parse("close", json!({"code": 3})), Command::Close { code: 1000, .. }));
    }

    #[test]
    fn an_unknown_name_is_a_typed_error() {
        assert_eq!(Command::parse("weather", None), Err(UnknownCommand("weather".into())));
        assert_eq!(Command::parse("PING", None), Err(UnknownCommand("PING".into())));
    }
}
