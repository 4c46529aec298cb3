//! What the user sees: client events as a readable, live view (state, transcripts, bot
//! output, levels) or as JSON lines (`--json`).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipecat::rtvi::{InputType, SpokenStatus};
use pipecat::{ClientEvent, ErrorOrigin, FunctionCallOutcome, TransportState, UndispatchedReason};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::clock::{Clock, now_rfc3339};
use crate::record::Recording;

/// How often the level line is redrawn at most.
const STATUS_PERIOD: Duration = Duration::from_millis(100);
/// Width of a level bar, in characters.
const BAR_WIDTH: usize = 12;

/// Where events are shown, and how.
pub(crate) struct Console {
    json: bool,
    tty: bool,
    clock: Clock,
    recording: Option<Arc<Recording>>,
    state: TransportState,
    mic_level: f32,
    bot_level: f32,
    status_shown: bool,
    last_status: Option<Instant>,
    seen_user_input: bool,
}

impl Console {
    /// A console printing JSON lines or the readable view; events also go to the
    /// recording's event log.
    pub(crate) fn new(json: bool, clock: Clock, recording: Option<Arc<Recording>>) -> Self {
        Console {
            json,
            tty: !json && std::io::stdout().is_terminal(),
            clock,
            recording,
            state: TransportState::Idle,
            mic_level: 0.0,
            bot_level: 0.0,
            status_shown: false,
            last_status: None,
            seen_user_input: false,
        }
    }

    /// Shows one client event.
    pub(crate) fn event(&mut self, event: &ClientEvent) {
        if let ClientEvent::TransportStateChanged { state, .. } = event {
            self.state = *state;
        }
        let needs_json = self.json || self.recording.is_some();
        let line = needs_json.then(|| event_json(event, &self.clock));
        if let (Some(recording), Some(line)) = (&self.recording, &line) {
            recording.events.write(line);
        }
        if self.json {
            if let Some(line) = line {
                self.print_json(&line);
            }
            return;
        }
        match event {
            ClientEvent::LocalAudioLevel(level) => {
                self.mic_level = *level;
                self.draw_status(false);
            }
            ClientEvent::RemoteAudioLevel(level) => {
                self.bot_level = *level;
                self.draw_status(false);
            }
            _ => {
                if let Some((tag, text)) = self.describe(event) {
                    self.print(tag, &text);
                }
            }
        }
    }

    /// A line of the CLI's own (what it sends, what it waits for); readable view only.
    pub(crate) fn note(&mut self, tag: &str, text: &str) {
        if !self.json {
            self.print(tag, text);
        }
    }

    /// A JSON object of the CLI's own (the final summary); printed in JSON mode only, and
    /// recorded in the event log.
    pub(crate) fn json_line(&mut self, kind: &str, mut fields: Map<String, Value>) {
        let mut line = Map::new();
        line.insert("type".into(), kind.into());
        line.insert("timestamp".into(), now_rfc3339().into());
        line.insert("elapsed_ms".into(), self.clock.elapsed_ms().into());
        line.append(&mut fields);
        let line = Value::Object(line);
        if let Some(recording) = &self.recording {
            recording.events.write(&line);
        }
        if self.json {
            self.print_json(&line);
        }
    }

    /// Removes the level line (before exiting).
    pub(crate) fn finish(&mut self) {
        if self.status_shown {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            self.status_shown = false;
        }
    }

    fn print_json(&self, line: &Value) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not worth a panic.
        let _ = serde_json::to_writer(&mut out, line);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    fn print(&mut self, tag: &str, text: &str) {
        let secs = self.clock.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        if self.status_shown {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{secs:>8.3}s  {tag:<6} {text}");
        let _ = out.flush();
        drop(out);
        if self.status_shown {
            self.draw_status(true);
        }
    }

    /// The level line, redrawn in place on a terminal.
    fn draw_status(&mut self, force: bool) {
        if !self.tty {
            return;
        }
        let now = Instant::now();
        if !force && self.last_status.is_some_and(|at| now - at < STATUS_PERIOD) {
            return;
        }
        self.last_status = Some(now);
        let line = format!(
            "  [{}] mic {} {:.2}   bot {} {:.2}",
            self.state,
            bar(self.mic_level),
            self.mic_level,
            bar(self.bot_level),
            self.bot_level
        );
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[2K{line}");
        let _ = out.flush();
        self.status_shown = true;
    }

    /// The readable line for an event, or `None` for events only JSON shows.
    fn describe(&mut self, event: &ClientEvent) -> Option<(&'static str, String)> {
        Some(match event {
            ClientEvent::TransportStateChanged { state, previous } => {
                ("state", format!("{previous} -> {state}"))
            }
            ClientEvent::BotStarted(answer) => {
                ("bot", format!("started: {}", compact(&redact(answer.clone()))))
            }
            ClientEvent::BotConnected(p) => ("bot", format!("connected ({})", p.id)),
            ClientEvent::BotReady(ready) => {
                let about = ready
                    .about
                    .as_ref()
                    .map(|a| {
                        format!(
                            ", {} {}",
                            a.library,
                            a.library_version.as_deref().unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                ("bot", format!("ready: RTVI {}{}", ready.version, about.trim_end()))
            }
            ClientEvent::BotDisconnected { reason } => ("bot", format!("left: {reason}")),
            ClientEvent::ConnectionClosed { reason } => {
                ("state", format!("connection closed: {reason}"))
            }
            ClientEvent::ParticipantJoined(p) => ("peer", format!("joined: {}", p.id)),
            ClientEvent::ParticipantLeft(p) => ("peer", format!("left: {}", p.id)),
            ClientEvent::Error(e) => {
                let fatal = if e.fatal { " (fatal)" } else { "" };
                ("error", format!("{}: {}{fatal}", origin(e.origin), e.message))
            }
            ClientEvent::MessageError { message, .. } => {
                ("error", format!("the bot rejected a message: {message}"))
            }
            ClientEvent::ProtocolWarning(w) => ("warn", w.to_string()),
            ClientEvent::UnsupportedFeature { feature, reason } => {
                ("warn", format!("{feature} is not supported: {reason}"))
            }
            ClientEvent::Reconnecting { attempt, max_attempts } => {
                ("state", format!("reconnecting (attempt {attempt} of {max_attempts})"))
            }
            ClientEvent::Reconnected => ("state", "reconnected".into()),
            ClientEvent::TransportWarning(w) => ("warn", w.clone()),
            ClientEvent::Lagged { missed } => {
                ("warn", format!("the display fell behind: {missed} events not shown"))
            }
            ClientEvent::ServerMessage(data) => {
                ("bot", format!("server-message {}", compact(data)))
            }
            ClientEvent::ServerResponse { response, .. } => (
                "bot",
                format!(
                    "server-response {}: {}",
                    response.t,
                    response.d.as_ref().map(compact).unwrap_or_default()
                ),
            ),
            ClientEvent::UserStartedSpeaking => ("user", "started speaking".into()),
            ClientEvent::UserStoppedSpeaking => ("user", "stopped speaking".into()),
            ClientEvent::UserMuteStarted => ("user", "muted by the bot".into()),
            ClientEvent::UserMuteStopped => ("user", "unmuted by the bot".into()),
            ClientEvent::BotStartedSpeaking => ("bot", "started speaking".into()),
            ClientEvent::BotStoppedSpeaking => ("bot", "stopped speaking".into()),
            ClientEvent::BotInterrupted => ("bot", "interrupted".into()),
            ClientEvent::UserInput(input) => {
                self.seen_user_input = true;
                let how = match input.input_type {
                    InputType::Chat => "typed",
                    InputType::Backchannel => "backchannel",
                    _ => "said",
                };
                let interim = if input.is_final { "" } else { " …" };
                ("user", format!("{how}: {:?}{interim}", input.text))
            }
            // Bots of RTVI 2.2+ send both; user-input says everything this one does.
            ClientEvent::UserTranscript(t) if !self.seen_user_input => {
                let interim = if t.is_final { "" } else { " …" };
                ("user", format!("said: {:?}{interim}", t.text))
            }
            ClientEvent::BotOutput(output) => {
                if matches!(
                    output.spoken_status,
                    Some(SpokenStatus::InProgress | SpokenStatus::Completed)
                ) {
                    return None;
                }
                ("bot", format!("says: {:?}", output.text))
            }
            ClientEvent::LlmFunctionCallInProgress(call) => (
                "fn",
                format!(
                    "the bot calls {}({}) [{}]",
                    call.function_name.as_deref().unwrap_or("?"),
                    call.arguments.as_ref().map(compact).unwrap_or_default(),
                    call.tool_call_id
                ),
            ),
            ClientEvent::FunctionCallHandled { call, result, .. } => {
                ("fn", format!("answered {}: {}", call.function_name, compact(result)))
            }
            ClientEvent::FunctionCallUndispatched { tool_call_id, reason } => {
                ("warn", format!("function call {tool_call_id} not handled: {reason}"))
            }
            ClientEvent::LlmFunctionCallStopped(stop) => {
                let how = if stop.cancelled { "cancelled" } else { "done" };
                ("fn", format!("call {} {how}", stop.tool_call_id))
            }
            ClientEvent::Metrics(m) => ("bot", format!("metrics {}", compact(&to_json(m)))),
            ClientEvent::SystemLog(log) => ("log", log.text.clone()),
            ClientEvent::UiCommand(c) => ("ui", format!("command {}", compact(&to_json(c)))),
            ClientEvent::UnknownMessage(m) => (
                "bot",
                format!("{} {}", m.message_type, m.data.as_ref().map(compact).unwrap_or_default()),
            ),
            ClientEvent::TrackStarted(t) => ("audio", format!("{} track started", who(t))),
            ClientEvent::TrackStopped(t) => ("audio", format!("{} track stopped", who(t))),
            ClientEvent::DeviceError(e) => ("error", format!("device: {e}")),
            ClientEvent::MicUpdated(d) => ("audio", format!("microphone: {}", d.name)),
            ClientEvent::SpeakerUpdated(d) => ("audio", format!("speaker: {}", d.name)),
            _ => return None,
        })
    }
}

fn who(track: &pipecat::TrackInfo) -> String {
    let owner = match &track.participant {
        Some(p) if !p.local => "bot",
        _ => "local",
    };
    format!(
        "{owner} {}",
        serde_json::to_value(track.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    )
}

fn origin(origin: ErrorOrigin) -> &'static str {
    match origin {
        ErrorOrigin::Bot => "bot",
        ErrorOrigin::Transport => "transport",
        ErrorOrigin::Client => "client",
        _ => "error",
    }
}

fn bar(level: f32) -> String {
    let level = if level.is_finite() { level.clamp(0.0, 1.0) } else { 0.0 };
    // Rounded to whole characters: the cast of a value in 0..=BAR_WIDTH cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = (level * BAR_WIDTH as f32).round() as usize;
    format!("[{}{}]", "#".repeat(filled), " ".repeat(BAR_WIDTH - filled.min(BAR_WIDTH)))
}

fn compact(value: &Value) -> String {
    let text = value.to_string();
    const MAX: usize = 200;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `value` with the values of secret-looking keys (token, key, secret, password,
/// credential, authorization) replaced by `"<redacted>"`, at any depth.
pub(crate) fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret =
                        ["token", "key", "secret", "password", "credential", "authorization"]
                            .iter()
                            .any(|s| lower.contains(s));
                    if secret && !v.is_null() {
                        (k, Value::String("<redacted>".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// Why a function call was not dispatched: `reason` in kebab-case, and for `no-handler` the
/// function's name and whether an error result was sent.
fn undispatched_json(reason: &UndispatchedReason) -> Value {
    match reason {
        UndispatchedReason::MissingFunctionName => json!({ "reason": "missing-function-name" }),
        UndispatchedReason::Duplicate => json!({ "reason": "duplicate" }),
        UndispatchedReason::NoHandler { function_name, replied } => {
            json!({ "reason": "no-handler", "function_name": function_name, "replied": replied })
        }
        _ => json!({ "reason": "other" }),
    }
}

/// How a handler ended: `outcome` in kebab-case, with the error or the time limit.
fn outcome_json(outcome: &FunctionCallOutcome) -> Value {
    match outcome {
        FunctionCallOutcome::Completed => json!({ "outcome": "completed" }),
        FunctionCallOutcome::Failed(error) => json!({ "outcome": "failed", "error": error }),
        FunctionCallOutcome::Panicked(error) => json!({ "outcome": "panicked", "error": error }),
        FunctionCallOutcome::TimedOut(limit) => {
            json!({ "outcome": "timed-out", "timeout_ms": crate::session::millis(*limit) })
        }
        _ => json!({ "outcome": "other" }),
    }
}

/// The JSON line of an event: `type` (the event's kebab-case name), `timestamp` (RFC 3339,
/// UTC), `elapsed_ms` (since the command started) and the event's fields.
pub(crate) fn event_json(event: &ClientEvent, clock: &Clock) -> Value {
    let mut line = Map::new();
    line.insert("type".into(), event.name().into());
    line.insert("timestamp".into(), now_rfc3339().into());
    line.insert("elapsed_ms".into(), clock.elapsed_ms().into());
    let fields = match event {
        ClientEvent::TransportStateChanged { state, previous } => {
            json!({ "state": state.as_str(), "previous": previous.as_str() })
        }
        ClientEvent::BotStarted(answer) => json!({ "data": redact(answer.clone()) }),
        ClientEvent::BotConnected(p)
        | ClientEvent::ParticipantJoined(p)
        | ClientEvent::ParticipantLeft(p) => json!({ "participant": to_json(p) }),
        ClientEvent::BotReady(ready) => json!({
            "version": ready.version,
            "about": to_json(&ready.about),
            "capabilities": to_json(&ready.capabilities),
        }),
        ClientEvent::BotDisconnected { reason } | ClientEvent::ConnectionClosed { reason } => {
            json!({ "reason": reason })
        }
        ClientEvent::Error(e) => json!({
            "message": e.message,
            "fatal": e.fatal,
            "origin": origin(e.origin),
        }),
        ClientEvent::MessageError { id, message } => json!({ "id": id, "message": message }),
        ClientEvent::ProtocolWarning(w) => {
            // `kind` and the warning's fields, and the sentence the readable view shows.
            let mut fields = to_json(w);
            fields["description"] = w.to_string().into();
            fields
        }
        ClientEvent::UnsupportedFeature { feature, reason } => {
            json!({ "feature": feature, "reason": reason })
        }
        ClientEvent::Reconnecting { attempt, max_attempts } => {
            json!({ "attempt": attempt, "max_attempts": max_attempts })
        }
        ClientEvent::TransportWarning(message) => json!({ "message": message }),
        ClientEvent::Lagged { missed } => json!({ "missed": missed }),
        ClientEvent::ServerMessage(data) => json!({ "data": data }),
        ClientEvent::ServerResponse { id, response } => {
            json!({ "id": id, "t": response.t, "d": response.d })
        }
        ClientEvent::UserTranscript(t) | ClientEvent::SttRawText(t) => {
            json!({ "data": to_json(t) })
        }
        ClientEvent::UserInput(u) => json!({ "data": to_json(u) }),
        ClientEvent::UserLlmText(t)
        | ClientEvent::BotLlmText(t)
        | ClientEvent::BotTranscript(t)
        | ClientEvent::BotTtsText(t)
        | ClientEvent::LlmRawText(t)
        | ClientEvent::TtsRawText(t)
        | ClientEvent::SystemLog(t) => json!({ "text": t.text }),
        ClientEvent::BotOutput(o) => json!({ "data": to_json(o) }),
        ClientEvent::BotLlmMarker(m) => json!({ "data": to_json(m) }),
        ClientEvent::BotTtsAudio(a) => json!({ "data": to_json(a) }),
        ClientEvent::LlmFunctionCallStarted(f) => json!({ "data": to_json(f) }),
        ClientEvent::LlmFunctionCallInProgress(f) => json!({ "data": to_json(f) }),
        ClientEvent::LlmFunctionCallStopped(f) => json!({ "data": to_json(f) }),
        ClientEvent::LlmFunctionCall(f) => json!({ "data": to_json(f) }),
        ClientEvent::FunctionCallUndispatched { tool_call_id, reason } => {
            let mut fields = undispatched_json(reason);
            fields["tool_call_id"] = tool_call_id.as_str().into();
            fields["description"] = reason.to_string().into();
            fields
        }
        ClientEvent::FunctionCallHandled { call, result, outcome } => {
            let mut fields = outcome_json(outcome);
            fields["function_name"] = call.function_name.as_str().into();
            fields["tool_call_id"] = call.tool_call_id.as_str().into();
            fields["arguments"] = call.arguments.clone();
            fields["result"] = result.clone();
            fields
        }
        ClientEvent::BotLlmSearchResponse(s) => json!({ "data": to_json(s) }),
        ClientEvent::Metrics(m) => json!({ "data": to_json(m) }),
        ClientEvent::UserAudioLevel(level) | ClientEvent::BotAudioLevel(level) => {
            json!({ "level": level })
        }
        ClientEvent::UiCommand(c) => json!({ "data": to_json(c) }),
        ClientEvent::UiJobGroup(g) => json!({ "data": to_json(g) }),
        ClientEvent::UnknownMessage(m) => {
            json!({ "message_type": m.message_type, "data": m.data })
        }
        ClientEvent::TrackStarted(t) | ClientEvent::TrackStopped(t) => {
            json!({ "track": to_json(t) })
        }
        ClientEvent::LocalAudioLevel(level) | ClientEvent::RemoteAudioLevel(level) => {
            json!({ "level": level })
        }
        ClientEvent::DeviceError(e) => json!({ "error": to_json(e) }),
        ClientEvent::MediaStateChanged(m) => json!({ "media": to_json(m) }),
        ClientEvent::MicUpdated(d) | ClientEvent::SpeakerUpdated(d) => {
            json!({ "device": to_json(d) })
        }
        ClientEvent::AvailableMicsUpdated(d) | ClientEvent::AvailableSpeakersUpdated(d) => {
            json!({ "devices": to_json(d) })
        }
        _ => json!({}),
    };
    if let Value::Object(mut fields) = fields {
        // The envelope keys win over event fields of the same name.
        fields.retain(|k, _| !line.contains_key(k));
        line.append(&mut fields);
    }
    Value::Object(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_carry_state_and_type() {
        let clock = Clock::start();
        let line = event_json(
            &ClientEvent::TransportStateChanged {
                state: TransportState::Ready,
                previous: TransportState::Connected,
            },
            &clock,
        );
        assert_eq!(line["type"], "transport-state-changed");
        assert_eq!(line["state"], "ready");
        assert_eq!(line["previous"], "connected");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(line["elapsed_ms"].is_u64());
    }

    #[test]
    fn every_line_has_a_kebab_case_type() {
        let clock = Clock::start();
        for event in [
            ClientEvent::Connected,
            ClientEvent::BotStartedSpeaking,
            ClientEvent::ServerMessage(json!({"a": 1})),
            ClientEvent::LocalAudioLevel(0.5),
            ClientEvent::Lagged { missed: 3 },
        ] {
            let line = event_json(&event, &clock);
            let kind = line["type"].as_str().unwrap();
            assert!(
                kind.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{kind} is not kebab-case"
            );
        }
    }

    #[test]
    fn protocol_warnings_are_structured_not_debug() {
        let clock = Clock::start();
        let warning = pipecat::ProtocolWarning::ClientReadyRejected {
            message: "RTVI version 2.2.0 is not compatible with 1.0.0".into(),
        };
        let line = event_json(&ClientEvent::ProtocolWarning(warning.clone()), &clock);
        assert_eq!(line["type"], "protocol-warning");
        assert_eq!(line["kind"], "client-ready-rejected");
        assert_eq!(line["message"], "RTVI version 2.2.0 is not compatible with 1.0.0");
        assert_eq!(line["client_version"], "2.2.0");
        assert_eq!(line["description"], warning.to_string());
        assert!(line["timestamp"].is_string(), "the envelope stays");

        let legacy = pipecat::ProtocolWarning::BotVersion {
            version: pipecat::rtvi::ProtocolVersion::new(1, 0, 0),
            compatibility: pipecat::rtvi::Compatibility::Legacy,
        };
        let line = event_json(&ClientEvent::ProtocolWarning(legacy.clone()), &clock);
        assert_eq!(line["kind"], "bot-version");
        assert_eq!(line["version"], "1.0.0");
        assert_eq!(line["compatibility"], "legacy");
        let text = line.to_string();
        assert!(!text.contains("ProtocolVersion") && !text.contains("Legacy"), "{text}");

        let mut console = Console::new(false, clock, None);
        let (tag, shown) = console.describe(&ClientEvent::ProtocolWarning(legacy)).unwrap();
        assert_eq!(tag, "warn");
        assert!(shown.contains("RTVI 1.0.0") && !shown.contains("BotVersion"), "{shown}");
    }

    #[test]
    fn function_call_lines_are_structured_not_debug() {
        let clock = Clock::start();
        let line = event_json(
            &ClientEvent::FunctionCallUndispatched {
                tool_call_id: "t3".into(),
                reason: UndispatchedReason::NoHandler {
                    function_name: "nobody".into(),
                    replied: false,
                },
            },
            &clock,
        );
        assert_eq!(line["reason"], "no-handler");
        assert_eq!(line["function_name"], "nobody");
        assert_eq!(line["replied"], false);
        assert_eq!(line["tool_call_id"], "t3");
        let call = pipecat::FunctionCall {
            function_name: "get_weather".into(),
            tool_call_id: "t1".into(),
            arguments: json!({"city": "Oslo"}),
        };
        let line = event_json(
            &ClientEvent::FunctionCallHandled {
                call,
                result: json!({"error": "slow"}),
                outcome: FunctionCallOutcome::TimedOut(Duration::from_secs(2)),
            },
            &clock,
        );
        assert_eq!(line["outcome"], "timed-out");
        assert_eq!(line["timeout_ms"], 2000);
        assert_eq!(line["function_name"], "get_weather");
        assert_eq!(line["arguments"]["city"], "Oslo");
        assert_eq!(line["result"]["error"], "slow");
    }

    #[test]
    fn secrets_are_redacted() {
        let v = redact(
            json!({"wsUrl": "ws://x", "token": "abc", "nested": [{"apiKey": "k"}], "t": null}),
        );
        assert_eq!(v["token"], "<redacted>");
        assert_eq!(v["nested"][0]["apiKey"], "<redacted>");
        assert_eq!(v["wsUrl"], "ws://x");
        assert!(v["t"].is_null());
    }

    #[test]
    fn bars_fit() {
        assert_eq!(bar(0.0).len(), BAR_WIDTH + 2);
        assert_eq!(bar(1.0), format!("[{}]", "#".repeat(BAR_WIDTH)));
        assert_eq!(bar(f32::NAN).len(), BAR_WIDTH + 2);
        assert_eq!(bar(7.0).len(), BAR_WIDTH + 2);
    }
}
