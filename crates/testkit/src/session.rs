//! One bot session: the transport-independent brain. It answers the client's RTVI messages
//! the way a pipecat-ai 1.14 bot with the Python peer script does, echoes audio, runs the
//! test's handlers and hooks, and hands everything it sends to its transport as [`Outbound`]s.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use pipecat_rtvi::{
    BotReady, ClientEnvelope, ClientMessage, ClientMessageData, Dtmf, ErrorData, ErrorResponse,
    FunctionCallResult, InputType, ProtocolVersion, RTVI_LABEL, SendText, ServerEnvelope,
    ServerMessage, ServerResponse, TextData, Transcription, UserInput,
};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};

use crate::BotTransport;
use crate::audio::{self, AudioOut, Resampler};
use crate::error::TestkitError;
use crate::recorder::{BotEventKind, EndReason, InvalidKind, Recorder};
use crate::script::{BotReadyMode, ClientMessageRequest, Reply, Script};
use crate::util::{Tasks, iso8601_micros_offset, iso8601_millis_z, lock};

/// The user id the `transcript` command puts on its fake transcriptions (as the peer bot).
const PEER_USER_ID: &str = "peer-user";
/// Echo stays open this long after the last non-silent user audio.
const ECHO_HANGOVER: Duration = Duration::from_millis(500);
/// `bot-stopped-speaking` after this long without speech audio (`BOT_VAD_STOP_SECS`).
const BOT_STOP_SPEAKING: Duration = Duration::from_millis(350);
/// Longest tone the `tone` command plays.
const MAX_TONE: Duration = Duration::from_secs(10);
/// `drop-pc` answers first, then waits this long before killing the peer connection.
const DROP_PC_DELAY: Duration = Duration::from_millis(200);
/// The renegotiation guard: no new `renegotiate` until this long after the client's offer.
const RENEGOTIATION_GUARD: Duration = Duration::from_secs(2);
/// The most bot audio queued, in seconds of output.
const MAX_QUEUED_AUDIO_SECS: u32 = 30;
/// The default size of an oversize message.
pub(crate) const DEFAULT_OVERSIZE_BYTES: usize = 2 * 1024 * 1024;
/// The largest oversize message the bot builds (a client asking for more gets this).
pub const MAX_OVERSIZE_BYTES: usize = 64 * 1024 * 1024;

/// Malformed things the bot can send, to test how a client copes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Garbage {
    /// WebSocket: a binary message that is not a protobuf `pipecat.Frame`.
    /// SmallWebRTC: a binary data-channel message that is not UTF-8.
    NotProtobuf,
    /// WebSocket: a text WebSocket message (the protocol is binary only).
    /// SmallWebRTC: a text message that is neither JSON nor a keepalive.
    TextMessage,
    /// WebSocket: a `pipecat.Frame` with no frame set. SmallWebRTC: the JSON `{}`.
    EmptyFrame,
    /// An RTVI-channel message that is not JSON.
    NotJson,
    /// JSON with a label other than `rtvi-ai`.
    WrongLabel,
    /// An RTVI message of a type no client knows.
    UnknownType,
    /// A known RTVI type (`server-response`) with data of the wrong shape.
    BadData,
    /// WebSocket: an audio frame with an odd byte count and a sample rate of 0.
    /// SmallWebRTC: not sent (media garbage is not possible over SRTP).
    BadAudio,
}

impl Garbage {
    /// Every kind of garbage, in the order [`SessionHandle::send_all_garbage`] sends them.
    pub const ALL: &'static [Garbage] = &[
        Garbage::NotProtobuf,
        Garbage::TextMessage,
        Garbage::EmptyFrame,
        Garbage::NotJson,
        Garbage::WrongLabel,
        Garbage::UnknownType,
        Garbage::BadData,
        Garbage::BadAudio,
    ];

    /// A short name, used in the recorder's sent log (`garbage/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Garbage::NotProtobuf => "not-protobuf",
            Garbage::TextMessage => "text-message",
            Garbage::EmptyFrame => "empty-frame",
            Garbage::NotJson => "not-json",
            Garbage::WrongLabel => "wrong-label",
            Garbage::UnknownType => "unknown-type",
            Garbage::BadData => "bad-data",
            Garbage::BadAudio => "bad-audio",
        }
    }

    /// The text these RTVI-channel kinds carry (the same on both transports).
    pub(crate) fn rtvi_text(self) -> Option<&'static str> {
        match self {
            Garbage::NotJson => Some("{this is not json"),
            Garbage::WrongLabel => {
                Some(r#"{"label":"not-rtvi","type":"server-message","data":{"garbage":true}}"#)
            }
            Garbage::UnknownType => {
                Some(r#"{"label":"rtvi-ai","type":"testkit-unknown-type","data":{"x":[1,2,3]}}"#)
            }
            Garbage::BadData => Some(
                r#"{"label":"rtvi-ai","type":"server-response","id":"garbage","data":[1,2,3]}"#,
            ),
            _ => None,
        }
    }
}

/// How the bot leaves a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The normal goodbye: WebSocket close 1000; SmallWebRTC `peerLeft` then close.
    Graceful(EndReason),
    /// Drop the connection with no goodbye.
    Abrupt,
    /// WebSocket close with this code and reason.
    CloseCode(u16, String),
}

/// What a session hands to its transport, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// RTVI JSON text (or raw text on the RTVI channel).
    Rtvi(String),
    /// A SmallWebRTC signalling message (JSON text). WebSocket transports drop it.
    Signalling(String),
    /// Bot audio: mono PCM16 at the session's output rate.
    Audio(Vec<i16>),
    /// WebSocket: a protobuf `InterruptionFrame`. SmallWebRTC transports drop it.
    Interruption,
    /// Transport-level garbage.
    Garbage(Garbage),
    /// SmallWebRTC: close the current peer connection without `peerLeft` (the session lives
    /// on, waiting for a `restart_pc`).
    DropPeerConnection,
    /// End the session.
    End(Ending),
}

/// What a transport hands to its session.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Text from the client's RTVI channel.
    Text(String),
    /// Client audio, interleaved PCM16.
    Audio {
        /// The samples.
        samples: Vec<i16>,
        /// Sample rate in Hz.
        sample_rate: u32,
        /// Channel count.
        channels: u16,
    },
}

/// How a session's bot audio is paced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AudioPlan {
    /// Output sample rate.
    pub(crate) sample_rate: u32,
    /// Chunk length.
    pub(crate) chunk: Duration,
    /// Send silence when idle (SmallWebRTC does, WebSocket does not).
    pub(crate) auto_silence: bool,
}

#[derive(Default)]
struct State {
    client_ready_id: Option<String>,
    client_major: Option<u64>,
    client_version: Option<String>,
    bot_ready_sent: bool,
    fn_calls: u64,
    pending_calls: HashMap<String, String>,
    echo_open_until: Option<Instant>,
    resampler: Option<Resampler>,
    speaking: bool,
    last_speech: Option<Instant>,
    renegotiating: bool,
    renegotiation_epoch: u64,
    pc_id: Option<String>,
    segment: i64,
    /// Why the bot is ending the session, once it decided to.
    ending: Option<EndReason>,
}

/// The shared core of one session.
pub(crate) struct SessionCore {
    id: String,
    transport: BotTransport,
    script: Arc<Script>,
    recorder: Recorder,
    echo: Arc<AtomicBool>,
    out_tx: mpsc::UnboundedSender<Outbound>,
    plan: AudioPlan,
    audio_out: Mutex<AudioOut>,
    state: Mutex<State>,
    /// No more sending: an ending was requested or the client left.
    closing: AtomicBool,
    /// `Some(reason)` once the session is over.
    ended: watch::Sender<Option<EndReason>>,
    tasks: Tasks,
}

impl fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("transport", &self.transport)
            .field("ended", &*self.ended.borrow())
            .finish_non_exhaustive()
    }
}

/// The channels a transport drives a new session with.
pub(crate) struct SessionIo {
    /// The session.
    pub(crate) core: Arc<SessionCore>,
    /// What to send to the client.
    pub(crate) outbound: mpsc::UnboundedReceiver<Outbound>,
    /// Where to put what the client sent.
    pub(crate) inbound: mpsc::UnboundedSender<Inbound>,
}

impl SessionCore {
    /// Starts a session: its message loop and audio pacer run until it ends.
    pub(crate) fn start(
        transport: BotTransport,
        script: Arc<Script>,
        recorder: Recorder,
        echo: Arc<AtomicBool>,
        plan: AudioPlan,
        pc_id: Option<&str>,
    ) -> SessionIo {
        let (out_tx, outbound) = mpsc::unbounded_channel();
        let (inbound, mut in_rx) = mpsc::unbounded_channel::<Inbound>();
        let cap = (plan.sample_rate * MAX_QUEUED_AUDIO_SECS) as usize;
        let core = Arc::new(SessionCore {
            id: uuid::Uuid::new_v4().to_string(),
            transport,
            script,
            recorder,
            echo,
            out_tx,
            plan,
            audio_out: Mutex::new(AudioOut::new(cap)),
            state: Mutex::new(State { pc_id: pc_id.map(str::to_owned), ..State::default() }),
            closing: AtomicBool::new(false),
            ended: watch::Sender::new(None),
            tasks: Tasks::default(),
        });
        core.recorder.event(Some(&core.id), BotEventKind::SessionStarted { transport });

        let looped = Arc::clone(&core);
        core.tasks.spawn(async move {
            while let Some(message) = in_rx.recv().await {
                match message {
                    Inbound::Text(text) => looped.handle_text(&text).await,
                    Inbound::Audio { samples, sample_rate, channels } => {
                        looped.handle_audio(&samples, sample_rate, channels)
                    }
                }
            }
        });
        let paced = Arc::clone(&core);
        core.tasks.spawn(async move { paced.pace_audio().await });

        if core.script.garbage_before_ready {
            for &garbage in Garbage::ALL {
                core.emit_garbage(garbage);
            }
        }
        for hook in core.script.on_session_start.clone() {
            let session = SessionHandle { core: Arc::clone(&core) };
            core.tasks.spawn(hook(session));
        }
        SessionIo { core, outbound, inbound }
    }

    /// The session id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The transport.
    pub(crate) fn transport(&self) -> BotTransport {
        self.transport
    }

    /// The recorder.
    pub(crate) fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The script.
    pub(crate) fn script(&self) -> &Script {
        &self.script
    }

    /// `true` once an ending was requested or the client left.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// `true` once the session is over.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.borrow().is_some()
    }

    /// Records the current SmallWebRTC `pc_id`.
    pub(crate) fn set_pc_id(&self, pc_id: &str) {
        lock(&self.state).pc_id = Some(pc_id.to_owned());
    }

    /// The current SmallWebRTC `pc_id`.
    pub(crate) fn pc_id(&self) -> Option<String> {
        lock(&self.state).pc_id.clone()
    }

    /// The client's renegotiation offer was handled: allow a new `renegotiate` request after
    /// the guard time.
    pub(crate) fn renegotiation_handled(self: &Arc<Self>) {
        let epoch = {
            let mut state = lock(&self.state);
            state.renegotiation_epoch += 1;
            state.renegotiation_epoch
        };
        let core = Arc::clone(self);
        self.tasks.spawn(async move {
            tokio::time::sleep(RENEGOTIATION_GUARD).await;
            let mut state = lock(&core.state);
            if state.renegotiation_epoch == epoch {
                state.renegotiating = false;
            }
        });
    }

    /// Called by the transport once the session is over (it closed the connection, or the
    /// client went away). Records why, stops the session's tasks. Idempotent.
    pub(crate) fn finished(&self, reason: EndReason) {
        self.closing.store(true, Ordering::SeqCst);
        // A client that leaves because the bot said goodbye does not change why it ended.
        let reason = match (reason, lock(&self.state).ending.clone()) {
            (EndReason::ClientDisconnected, Some(ending)) => ending,
            (reason, _) => reason,
        };
        let first = self.ended.send_if_modified(|ended| {
            if ended.is_none() {
                *ended = Some(reason.clone());
                true
            } else {
                false
            }
        });
        if first {
            self.recorder.event(Some(&self.id), BotEventKind::SessionEnded { reason });
            self.tasks.abort_all();
            let cap = (self.plan.sample_rate * MAX_QUEUED_AUDIO_SECS) as usize;
            *lock(&self.audio_out) = AudioOut::new(cap);
        }
    }

    /// A receiver that sees the end reason once the session is over.
    pub(crate) fn subscribe_ended(&self) -> watch::Receiver<Option<EndReason>> {
        self.ended.subscribe()
    }

    /// Waits until the session is over.
    pub(crate) async fn wait_ended(&self, timeout: Duration) -> Result<EndReason, TestkitError> {
        let mut rx = self.ended.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(reason)) => Ok(reason.clone().unwrap_or(EndReason::Shutdown)),
            Ok(Err(_)) => Ok(EndReason::Shutdown),
            Err(_) => Err(TestkitError::Timeout { what: "the session to end".into(), timeout }),
        }
    }

    // ----- sending -----

    fn push(&self, outbound: Outbound) -> Result<(), TestkitError> {
        if self.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        self.out_tx.send(outbound).map_err(|_| TestkitError::SessionEnded)
    }

    /// Sends RTVI JSON text and records it under `message_type`.
    fn send_text(&self, message_type: &str, json: String) -> Result<(), TestkitError> {
        self.push(Outbound::Rtvi(json.clone()))?;
        self.recorder.sent(&self.id, message_type, &json);
        Ok(())
    }

    /// Sends a typed server message.
    pub(crate) fn send_envelope(&self, envelope: &ServerEnvelope) -> Result<(), TestkitError> {
        let json = envelope.to_json()?;
        self.send_text(envelope.message.message_type(), json)
    }

    /// Sends a message built from its parts (`data` of `None` or `null` is left out).
    fn send_parts(&self, message_type: &str, id: Option<&str>, data: Option<Value>) {
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
    fn emit(&self, message: ServerMessage) {
        let _ = self.send_envelope(&ServerEnvelope::new(message));
    }

    fn reply(&self, id: &str, message: ServerMessage) {
        let _ = self.send_envelope(&ServerEnvelope::reply(id, message));
    }

    fn server_response(&self, id: &str, t: &str, d: Option<Value>) {
        self.reply(id, ServerMessage::ServerResponse(ServerResponse { t: t.to_owned(), d }));
    }

    fn error_response(&self, id: &str, error: impl Into<String>) {
        self.reply(id, ServerMessage::ErrorResponse(ErrorResponse { error: error.into() }));
    }

    /// Sends a signalling message (SmallWebRTC only).
    pub(crate) fn send_signalling(&self, message_type: &str) -> Result<(), TestkitError> {
        if self.transport != BotTransport::WebRtc {
            return Err(TestkitError::WrongTransport {
                what: "a signalling message",
                needs: BotTransport::WebRtc,
            });
        }
        let json = json!({"type": "signalling", "message": {"type": message_type}}).to_string();
        self.push(Outbound::Signalling(json.clone()))?;
        self.recorder.sent(&self.id, &format!("signalling/{message_type}"), &json);
        Ok(())
    }

    pub(crate) fn emit_garbage(&self, garbage: Garbage) {
        if self.push(Outbound::Garbage(garbage)).is_ok() {
            let text = garbage.rtvi_text().unwrap_or_default();
            self.recorder.sent(&self.id, &format!("garbage/{}", garbage.name()), text);
        }
    }

    /// Sends a `server-message` padded to about `bytes` bytes of JSON.
    pub(crate) fn send_oversize(&self, bytes: usize) -> Result<(), TestkitError> {
        let overhead = r#"{"label":"rtvi-ai","type":"server-message","data":{"padding":""}}"#.len();
        let padding = "x".repeat(bytes.min(MAX_OVERSIZE_BYTES).saturating_sub(overhead));
        let json =
            json!({"label": RTVI_LABEL, "type": "server-message", "data": {"padding": padding}})
                .to_string();
        self.send_text("server-message", json)
    }

    /// Requests the end of the session; the transport says goodbye and calls [`Self::finished`].
    pub(crate) fn end(&self, ending: Ending) -> Result<(), TestkitError> {
        if self.closing.swap(true, Ordering::SeqCst) {
            return Err(TestkitError::SessionEnded);
        }
        lock(&self.state).ending = Some(match &ending {
            Ending::Graceful(reason) => reason.clone(),
            Ending::Abrupt => EndReason::Abrupt,
            Ending::CloseCode(code, _) => EndReason::CloseCode(*code),
        });
        self.out_tx.send(Outbound::End(ending)).map_err(|_| TestkitError::SessionEnded)
    }

    /// Sends `bot-ready` answering the last `client-ready` (or with a fresh id if none came).
    pub(crate) fn send_bot_ready(self: &Arc<Self>) -> Result<(), TestkitError> {
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
    pub(crate) fn interrupt(&self) -> Result<(), TestkitError> {
        lock(&self.audio_out).clear();
        let was_speaking = std::mem::take(&mut lock(&self.state).speaking);
        self.push(Outbound::Interruption)?;
        self.emit(ServerMessage::BotInterrupted);
        if was_speaking {
            self.emit(ServerMessage::BotStoppedSpeaking);
        }
        Ok(())
    }

    /// Queues bot audio (mono PCM16 at `sample_rate`), resampled to the output rate.
    pub(crate) fn queue_audio(
        &self,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<(), TestkitError> {
        if self.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        let out = Resampler::new(sample_rate, self.plan.sample_rate).process(samples);
        lock(&self.audio_out).push(&out);
        Ok(())
    }

    /// Queues a tone; returns its length in samples at the output rate.
    pub(crate) fn play_tone(&self, duration: Duration, hz: f64) -> Result<usize, TestkitError> {
        let pcm = audio::tone(duration.min(MAX_TONE), hz, self.plan.sample_rate);
        self.queue_audio(&pcm, self.plan.sample_rate)?;
        Ok(pcm.len())
    }

    /// Announces a function call; returns its `tool_call_id`.
    pub(crate) fn start_function_call(
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
    pub(crate) fn stop_function_call(
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

    /// Asks a SmallWebRTC client to renegotiate; `false` if a renegotiation is already in
    /// progress (the request is then a no-op, as on the real server).
    pub(crate) fn request_renegotiate(&self) -> Result<bool, TestkitError> {
        if self.transport != BotTransport::WebRtc {
            return Err(TestkitError::WrongTransport {
                what: "renegotiate",
                needs: BotTransport::WebRtc,
            });
        }
        if std::mem::replace(&mut lock(&self.state).renegotiating, true) {
            return Ok(false);
        }
        self.send_signalling("renegotiate")?;
        Ok(true)
    }

    /// Closes the SmallWebRTC peer connection under the running session.
    pub(crate) fn drop_peer_connection(&self) -> Result<(), TestkitError> {
        if self.transport != BotTransport::WebRtc {
            return Err(TestkitError::WrongTransport {
                what: "dropping the peer connection",
                needs: BotTransport::WebRtc,
            });
        }
        self.push(Outbound::DropPeerConnection)
    }

    // ----- receiving -----

    /// Handles one text message from the client's RTVI channel.
    pub(crate) async fn handle_text(self: &Arc<Self>, text: &str) {
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

    fn handle_raw_audio(&self, chunks: &[String], sample_rate: u32, channels: u16) {
        for chunk in chunks {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(chunk) {
                self.handle_audio(&audio::from_le_bytes(&bytes), sample_rate, channels);
            }
        }
    }

    /// Handles client audio: records it and, with echo on, queues it back.
    pub(crate) fn handle_audio(&self, samples: &[i16], sample_rate: u32, channels: u16) {
        if !(1_000..=384_000).contains(&sample_rate) || samples.is_empty() {
            return;
        }
        let channels = channels.max(1);
        self.recorder.audio(&self.id, samples, sample_rate, channels);
        if !self.echo.load(Ordering::Relaxed) || self.is_closing() {
            return;
        }
        let mono = audio::to_mono(samples, channels);
        let now = Instant::now();
        let out = {
            let mut state = lock(&self.state);
            if !audio::is_silence(&mono) {
                state.echo_open_until = Some(now + ECHO_HANGOVER);
            }
            if state.echo_open_until.is_none_or(|until| now >= until) {
                return;
            }
            let resampler = state
                .resampler
                .get_or_insert_with(|| Resampler::new(sample_rate, self.plan.sample_rate));
            if resampler.input_rate() != sample_rate {
                *resampler = Resampler::new(sample_rate, self.plan.sample_rate);
            }
            resampler.process(&mono)
        };
        lock(&self.audio_out).push(&out);
    }

    /// What an LLM service pushes for a one-sentence reply that is not spoken.
    fn llm_reply(&self, text: &str) {
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
    fn fake_transcription(&self, text: &str) {
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

    async fn handle_client_message(self: &Arc<Self>, id: &str, message: ClientMessageData) {
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
        self.builtin_command(id, &t, d);
    }

    /// The Python peer bot's scripted commands, plus the testkit's misbehaviour triggers.
    fn builtin_command(self: &Arc<Self>, id: &str, t: &str, d: Option<Value>) {
        let args = d.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
        let text_arg = |name: &str, default: &str| -> String {
            match args.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => default.to_owned(),
            }
        };
        let number_arg = |name: &str, default: f64| -> f64 {
            args.get(name).and_then(Value::as_f64).unwrap_or(default)
        };
        match t {
            "ping" => self.server_response(id, t, Some(json!({"pong": true, "echo": d}))),
            "tone" => {
                let ms = number_arg("ms", 500.0).clamp(0.0, MAX_TONE.as_millis() as f64);
                let hz = number_arg("hz", 440.0);
                match self.play_tone(Duration::from_millis(ms as u64), hz) {
                    Ok(samples) => self.server_response(id, t, Some(json!({"samples": samples}))),
                    Err(e) => self.error_response(id, e.to_string()),
                }
            }
            "server-msg" => {
                self.emit(ServerMessage::ServerMessage(d.unwrap_or(Value::Null)));
                self.server_response(id, t, Some(json!({"sent": true})));
            }
            "transcript" => {
                let text = text_arg("text", "hello there bot");
                self.fake_transcription(&text);
                self.server_response(id, t, Some(json!({"text": text})));
            }
            "bot-text" => {
                let text = text_arg("text", "Hello from the bot.");
                self.llm_reply(&text);
                self.server_response(id, t, Some(json!({"text": text})));
            }
            "fn-call" => {
                let name = text_arg("function_name", "get_weather");
                let tool_call_id = args.get("tool_call_id").map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                let arguments = args.get("arguments").cloned().unwrap_or_else(|| json!({}));
                match self.start_function_call(&name, tool_call_id, arguments) {
                    Ok(call) => self.server_response(id, t, Some(json!({"tool_call_id": call}))),
                    Err(e) => self.error_response(id, e.to_string()),
                }
            }
            "fail" => self.error_response(id, text_arg("error", "nope")),
            "error" => {
                self.server_response(id, t, Some(json!({"error": true})));
                let fatal = args.get("fatal").and_then(Value::as_bool).unwrap_or(false);
                let _ = self.send_error(&text_arg("error", "boom"), fatal);
            }
            "end" => {
                self.server_response(id, t, Some(json!({"ending": true})));
                let _ = self.end(Ending::Graceful(EndReason::BotEnded));
            }
            "metrics" => {
                let processor = text_arg("processor", "TestBot#0");
                let model = args.get("model").cloned().unwrap_or_else(|| json!("peer-model"));
                let data = json!({
                    "ttfb": [{"processor": processor, "model": model, "value": number_arg("ttfb", 0.123)}],
                    "processing": [{"processor": processor, "model": model, "value": number_arg("processing", 0.045)}],
                });
                self.send_parts("metrics", None, Some(data));
                self.server_response(id, t, Some(json!({"sent": true})));
            }
            "user-speaking" => {
                self.emit(ServerMessage::UserStartedSpeaking);
                self.emit(ServerMessage::UserStoppedSpeaking);
                self.server_response(id, t, Some(json!({"sent": true})));
            }
            "interrupt" => {
                let _ = self.interrupt();
                self.server_response(id, t, Some(json!({"interrupted": true})));
            }
            "renegotiate" => match self.request_renegotiate() {
                Ok(requested) => self.server_response(id, t, Some(json!({"requested": requested}))),
                Err(_) => self.error_response(id, "renegotiate needs the SmallWebRTC transport"),
            },
            "drop-pc" => {
                if self.transport != BotTransport::WebRtc {
                    self.error_response(id, "drop-pc needs the SmallWebRTC transport");
                    return;
                }
                let mode = text_arg("mode", "close");
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
            // Testkit extras: misbehaviour a client can trigger itself.
            "garbage" => {
                for &garbage in Garbage::ALL {
                    self.emit_garbage(garbage);
                }
                self.server_response(id, t, Some(json!({"sent": Garbage::ALL.len()})));
            }
            "oversize" => {
                let bytes = number_arg("bytes", DEFAULT_OVERSIZE_BYTES as f64).max(0.0) as usize;
                self.server_response(id, t, Some(json!({"bytes": bytes})));
                let _ = self.send_oversize(bytes);
            }
            "abrupt-close" => {
                let _ = self.end(Ending::Abrupt);
            }
            "close" => {
                let code = number_arg("code", 1000.0).clamp(1000.0, 4999.0) as u16;
                let _ = self.end(Ending::CloseCode(code, text_arg("reason", "")));
            }
            "peer-left" => {
                if self.transport != BotTransport::WebRtc {
                    self.error_response(id, "peer-left needs the SmallWebRTC transport");
                    return;
                }
                self.server_response(id, t, Some(json!({"sent": true})));
                let _ = self.send_signalling("peerLeft");
            }
            _ => self.server_response(id, t, d),
        }
    }

    /// Sends an RTVI `error`; a fatal one ends the session.
    pub(crate) fn send_error(&self, error: &str, fatal: bool) -> Result<(), TestkitError> {
        self.send_envelope(&ServerEnvelope::new(ServerMessage::Error(ErrorData {
            error: error.to_owned(),
            fatal,
        })))?;
        if fatal {
            self.end(Ending::Graceful(EndReason::FatalError))?;
        }
        Ok(())
    }

    // ----- audio pacing -----

    async fn pace_audio(self: Arc<Self>) {
        let chunk_len =
            (u128::from(self.plan.sample_rate) * self.plan.chunk.as_millis() / 1_000) as usize;
        let mut ticker = tokio::time::interval(self.plan.chunk);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if self.is_closing() {
                // No more bot audio once the session is ending.
                continue;
            }
            let chunk = lock(&self.audio_out).take_chunk(chunk_len);
            let now = Instant::now();
            match chunk {
                Some(chunk) => {
                    let started = {
                        let mut state = lock(&self.state);
                        state.last_speech = Some(now);
                        !std::mem::replace(&mut state.speaking, true)
                    };
                    if started {
                        self.emit(ServerMessage::BotStartedSpeaking);
                    }
                    let _ = self.push(Outbound::Audio(chunk));
                }
                None => {
                    let stopped = {
                        let mut state = lock(&self.state);
                        let quiet = state
                            .last_speech
                            .is_none_or(|last| now.duration_since(last) >= BOT_STOP_SPEAKING);
                        if state.speaking && quiet {
                            state.speaking = false;
                            true
                        } else {
                            false
                        }
                    };
                    if stopped {
                        self.emit(ServerMessage::BotStoppedSpeaking);
                    }
                    if self.plan.auto_silence {
                        let _ = self.push(Outbound::Audio(vec![0; chunk_len]));
                    }
                }
            }
        }
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// A handle on one bot session: push messages, audio and misbehaviour to the client at any
/// time, and end the session. Cheap to clone.
///
/// Every method fails with [`TestkitError::SessionEnded`] once the session is ending.
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) core: Arc<SessionCore>,
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl SessionHandle {
    /// The session id (a UUID made by the bot).
    pub fn id(&self) -> &str {
        self.core.id()
    }

    /// The transport the client connected over.
    pub fn transport(&self) -> BotTransport {
        self.core.transport()
    }

    /// The SmallWebRTC `pc_id` of the current peer connection (`None` on WebSocket).
    pub fn pc_id(&self) -> Option<String> {
        self.core.pc_id()
    }

    /// `true` once the session is over.
    pub fn is_ended(&self) -> bool {
        self.core.is_ended()
    }

    /// The bot's recorder (shared by all sessions; filter by [`SessionHandle::id`]).
    pub fn recorder(&self) -> &Recorder {
        self.core.recorder()
    }

    /// Waits until the session is over; returns why.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_ended(&self, timeout: Duration) -> Result<EndReason, TestkitError> {
        self.core.wait_ended(timeout).await
    }

    /// Sends any server message (no id).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`], or [`TestkitError::Encode`].
    pub fn send(&self, message: ServerMessage) -> Result<(), TestkitError> {
        self.core.send_envelope(&ServerEnvelope::new(message))
    }

    /// Sends a server message with its envelope (for replies carrying an `id`).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`], or [`TestkitError::Encode`].
    pub fn send_envelope(&self, envelope: &ServerEnvelope) -> Result<(), TestkitError> {
        self.core.send_envelope(envelope)
    }

    /// Sends a `server-message` with this data.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_server_message(&self, data: Value) -> Result<(), TestkitError> {
        self.send(ServerMessage::ServerMessage(data))
    }

    /// Sends raw text on the RTVI channel, unchecked (the WebSocket wraps it in a
    /// `MessageFrame`).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_raw(&self, text: impl Into<String>) -> Result<(), TestkitError> {
        self.core.send_text("raw", text.into())
    }

    /// Sends `bot-ready` now, answering the last `client-ready` (for
    /// [`BotReadyMode::Never`], or to send it twice).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_bot_ready(&self) -> Result<(), TestkitError> {
        self.core.send_bot_ready()
    }

    /// Starts a bot-initiated function call: `llm-function-call-started` then
    /// `-in-progress` (as much as the report level reveals). Returns the `tool_call_id`
    /// (`call-<n>`). When the client answers, the bot sends `llm-function-call-stopped`; wait
    /// for the answer with [`Recorder::wait_for_function_call_result`].
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn start_function_call(
        &self,
        function_name: &str,
        arguments: Value,
    ) -> Result<String, TestkitError> {
        self.core.start_function_call(function_name, None, arguments)
    }

    /// Cancels a function call: `llm-function-call-stopped` with `cancelled: true`.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn cancel_function_call(&self, tool_call_id: &str) -> Result<(), TestkitError> {
        self.core.stop_function_call(tool_call_id, true, None)
    }

    /// Interrupts the bot: drops queued bot audio, sends `bot-interrupted` (and on WebSocket a
    /// protobuf `InterruptionFrame`).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn interrupt(&self) -> Result<(), TestkitError> {
        self.core.interrupt()
    }

    /// Plays a sine tone as bot speech (`bot-started-speaking`, audio, `bot-stopped-speaking`).
    /// Returns its length in samples at the session's output rate.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn play_tone(&self, duration: Duration, hz: f64) -> Result<usize, TestkitError> {
        self.core.play_tone(duration, hz)
    }

    /// Queues mono PCM16 audio at `sample_rate` as bot speech (resampled to the output rate).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn play_audio(&self, samples: &[i16], sample_rate: u32) -> Result<(), TestkitError> {
        self.core.queue_audio(samples, sample_rate)
    }

    /// Sends an RTVI `error`. A fatal one ends the session the way the real bot does (WebSocket
    /// close 1000; SmallWebRTC `peerLeft` and close).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_error(&self, error: &str, fatal: bool) -> Result<(), TestkitError> {
        self.core.send_error(error, fatal)
    }

    /// Ends the session gracefully, as the bot (WebSocket close 1000; SmallWebRTC `peerLeft`
    /// and close).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn end(&self) -> Result<(), TestkitError> {
        self.core.end(Ending::Graceful(EndReason::BotEnded))
    }

    /// Drops the connection with no goodbye: the WebSocket's TCP connection is closed without
    /// a close frame; the peer connection is closed without `peerLeft`.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn close_abruptly(&self) -> Result<(), TestkitError> {
        self.core.end(Ending::Abrupt)
    }

    /// Closes the WebSocket with a close code of your choice (SmallWebRTC: a graceful end).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn close_with_code(&self, code: u16, reason: &str) -> Result<(), TestkitError> {
        self.core.end(Ending::CloseCode(code, reason.to_owned()))
    }

    /// SmallWebRTC: sends the `peerLeft` signalling message but keeps the connection up.
    ///
    /// # Errors
    /// [`TestkitError::WrongTransport`] on WebSocket; [`TestkitError::SessionEnded`].
    pub fn peer_left(&self) -> Result<(), TestkitError> {
        self.core.send_signalling("peerLeft")
    }

    /// SmallWebRTC: asks the client to renegotiate. `Ok(false)` when one is already in
    /// progress (the real server ignores the request then, for 2 s after the client's offer).
    ///
    /// # Errors
    /// [`TestkitError::WrongTransport`] on WebSocket; [`TestkitError::SessionEnded`].
    pub fn request_renegotiate(&self) -> Result<bool, TestkitError> {
        self.core.request_renegotiate()
    }

    /// SmallWebRTC: closes the peer connection under the running session, telling nobody. The
    /// session goes on and a client can come back with `restart_pc`.
    ///
    /// # Errors
    /// [`TestkitError::WrongTransport`] on WebSocket; [`TestkitError::SessionEnded`].
    pub fn drop_peer_connection(&self) -> Result<(), TestkitError> {
        self.core.drop_peer_connection()
    }

    /// Sends one kind of garbage.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_garbage(&self, garbage: Garbage) -> Result<(), TestkitError> {
        if self.core.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        self.core.emit_garbage(garbage);
        Ok(())
    }

    /// Sends every kind of garbage ([`Garbage::ALL`]).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_all_garbage(&self) -> Result<(), TestkitError> {
        for &garbage in Garbage::ALL {
            self.send_garbage(garbage)?;
        }
        Ok(())
    }

    /// Sends a `server-message` of about `bytes` bytes of JSON (the JS WebSocket client's
    /// limit is 1 MiB; a data channel's is what the client advertised, often 64 KiB). At most
    /// [`MAX_OVERSIZE_BYTES`].
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_oversize(&self, bytes: usize) -> Result<(), TestkitError> {
        self.core.send_oversize(bytes)
    }
}
