//! Test support: a scripted fake transport (its "bot" answers messages synchronously through
//! the session sink) and helpers to read events deterministically under a paused clock.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_core::media::{MediaControl, MediaDeviceInfo, MediaState};
use pipecat_core::rtvi::ClientEnvelope;
use pipecat_core::{
    ApiRequest, ClientEvent, ConnectionParams, EventStream, Transport, TransportError,
    TransportEvent, TransportEventSink, TransportState,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How a fake step behaves.
#[derive(Clone, Debug)]
pub enum Step {
    Ok,
    Fail(TransportError),
    Hang,
}

type Responder = dyn Fn(&ClientEnvelope) -> Vec<String> + Send + Sync;

pub struct FakeState {
    pub attach_sink: Mutex<Option<TransportEventSink>>,
    pub sinks: Mutex<Vec<TransportEventSink>>,
    pub params: Mutex<Vec<ConnectionParams>>,
    pub mapped: Mutex<Vec<(Value, ApiRequest)>>,
    pub sent: Mutex<Vec<String>>,
    sent_tx: mpsc::UnboundedSender<String>,
    sent_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    pub connect: Mutex<Step>,
    pub init: Mutex<Step>,
    pub send: Mutex<Step>,
    pub disconnect_step: Mutex<Step>,
    /// Yield after answering client-ready, so the answer can overtake `send_client_ready`.
    pub yield_after_client_ready: Mutex<bool>,
    responder: Mutex<Arc<Responder>>,
    pub max_size: AtomicUsize,
    pub connects: AtomicUsize,
    pub disconnects: AtomicUsize,
    pub inits: AtomicUsize,
    /// The fake has no media at all (`Transport::media` is `None`).
    pub no_media: std::sync::atomic::AtomicBool,
    /// The microphone switch of its media.
    pub mic: std::sync::atomic::AtomicBool,
    pub bot_readies: AtomicUsize,
    pub interruptions: AtomicUsize,
}

/// A transport whose bot is a closure. Clones share state, so a test keeps one to script
/// and inspect while the client owns another.
#[derive(Clone)]
pub struct FakeTransport(pub Arc<FakeState>);

impl Default for FakeTransport {
    fn default() -> Self {
        Self::with_version("2.2.0")
    }
}

impl FakeTransport {
    /// A fake whose bot answers `client-ready` with `bot-ready` of `version`.
    pub fn with_version(version: &str) -> Self {
        let version = version.to_owned();
        let fake = Self::silent();
        fake.respond(move |m| match m.message.message_type() {
            "client-ready" => vec![bot_ready(&m.id, &version)],
            _ => vec![],
        });
        fake
    }

    /// A fake whose bot never answers.
    pub fn silent() -> Self {
        let (sent_tx, sent_rx) = mpsc::unbounded_channel();
        FakeTransport(Arc::new(FakeState {
            attach_sink: Mutex::new(None),
            sinks: Mutex::new(Vec::new()),
            params: Mutex::new(Vec::new()),
            mapped: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            sent_tx,
            sent_rx: tokio::sync::Mutex::new(sent_rx),
            connect: Mutex::new(Step::Ok),
            init: Mutex::new(Step::Ok),
            send: Mutex::new(Step::Ok),
            disconnect_step: Mutex::new(Step::Ok),
            yield_after_client_ready: Mutex::new(false),
            responder: Mutex::new(Arc::new(|_: &ClientEnvelope| Vec::new())),
            max_size: AtomicUsize::new(64 * 1024),
            connects: AtomicUsize::new(0),
            disconnects: AtomicUsize::new(0),
            inits: AtomicUsize::new(0),
            no_media: std::sync::atomic::AtomicBool::new(false),
            mic: std::sync::atomic::AtomicBool::new(true),
            bot_readies: AtomicUsize::new(0),
            interruptions: AtomicUsize::new(0),
        }))
    }

    /// Replaces the bot.
    pub fn respond(&self, f: impl Fn(&ClientEnvelope) -> Vec<String> + Send + Sync + 'static) {
        *self.0.responder.lock().unwrap() = Arc::new(f);
    }

    pub fn set_connect(&self, step: Step) {
        *self.0.connect.lock().unwrap() = step;
    }

    /// A fake without media (`Transport::media` answers `None`).
    pub fn without_media() -> Self {
        let fake = Self::default();
        fake.0.no_media.store(true, Ordering::SeqCst);
        fake
    }

    pub fn set_init(&self, step: Step) {
        *self.0.init.lock().unwrap() = step;
    }

    pub fn set_send(&self, step: Step) {
        *self.0.send.lock().unwrap() = step;
    }

    pub fn set_disconnect(&self, step: Step) {
        *self.0.disconnect_step.lock().unwrap() = step;
    }

    /// The sink of the newest session.
    pub fn sink(&self) -> TransportEventSink {
        self.0.sinks.lock().unwrap().last().cloned().expect("no session sink yet")
    }

    /// The sink of the `n`th session (0-based).
    pub fn sink_of(&self, n: usize) -> TransportEventSink {
        self.0.sinks.lock().unwrap()[n].clone()
    }

    pub fn attach_sink(&self) -> TransportEventSink {
        self.0.attach_sink.lock().unwrap().clone().expect("not attached")
    }

    /// The bot sends `text` now.
    pub fn bot_says(&self, text: impl Into<String>) {
        self.sink().emit(TransportEvent::Message(text.into()));
    }

    pub fn emit(&self, event: TransportEvent) {
        self.sink().emit(event);
    }

    /// Everything sent (client-ready included), decoded.
    pub fn sent(&self) -> Vec<ClientEnvelope> {
        self.0.sent.lock().unwrap().iter().map(|s| ClientEnvelope::parse(s).unwrap()).collect()
    }

    pub fn sent_raw(&self) -> Vec<String> {
        self.0.sent.lock().unwrap().clone()
    }

    /// Sent messages of one type, decoded as JSON.
    pub fn sent_of(&self, message_type: &str) -> Vec<Value> {
        self.sent_raw()
            .iter()
            .map(|s| serde_json::from_str::<Value>(s).unwrap())
            .filter(|v| v["type"] == message_type)
            .collect()
    }

    /// The next message sent (waits, bounded by virtual time).
    pub async fn next_sent(&self) -> Value {
        let mut rx = self.0.sent_rx.lock().await;
        let text = tokio::time::timeout(Duration::from_secs(600), rx.recv())
            .await
            .expect("nothing was sent")
            .expect("channel closed");
        serde_json::from_str(&text).unwrap()
    }

    /// The next message of `message_type` sent.
    pub async fn next_sent_of(&self, message_type: &str) -> Value {
        for _ in 0..100 {
            let v = self.next_sent().await;
            if v["type"] == message_type {
                return v;
            }
        }
        panic!("no {message_type} sent");
    }

    pub fn count(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    pub fn connects(&self) -> usize {
        self.0.connects.load(Ordering::SeqCst)
    }

    pub fn disconnects(&self) -> usize {
        self.0.disconnects.load(Ordering::SeqCst)
    }

    pub fn bot_readies(&self) -> usize {
        self.0.bot_readies.load(Ordering::SeqCst)
    }

    pub fn interruptions(&self) -> usize {
        self.0.interruptions.load(Ordering::SeqCst)
    }

    async fn step(step: Step) -> Result<(), TransportError> {
        match step {
            Step::Ok => Ok(()),
            Step::Fail(e) => Err(e),
            Step::Hang => std::future::pending().await,
        }
    }

    fn record_and_answer(&self, message: &str) {
        self.0.sent.lock().unwrap().push(message.to_owned());
        let _ = self.0.sent_tx.send(message.to_owned());
        let envelope = ClientEnvelope::parse(message).expect("the client sent invalid RTVI");
        let responder = self.0.responder.lock().unwrap().clone();
        let replies = responder(&envelope);
        if let Some(sink) = self.0.sinks.lock().unwrap().last() {
            for reply in replies {
                sink.emit(TransportEvent::Message(reply));
            }
        }
    }
}

#[async_trait]
impl Transport for FakeTransport {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn attach(&self, events: TransportEventSink) {
        *self.0.attach_sink.lock().unwrap() = Some(events);
    }

    fn map_start_response(
        &self,
        response: Value,
        start_request: &ApiRequest,
    ) -> Result<ConnectionParams, TransportError> {
        self.0.mapped.lock().unwrap().push((response.clone(), start_request.clone()));
        if response.get("unmappable").is_some() {
            return Err(TransportError::InvalidParams("unmappable answer".into()));
        }
        let mut params = ConnectionParams::from_json(response)?;
        params.start_request = Some(start_request.clone());
        Ok(params)
    }

    async fn connect(
        &self,
        params: ConnectionParams,
        events: TransportEventSink,
    ) -> Result<(), TransportError> {
        self.0.connects.fetch_add(1, Ordering::SeqCst);
        self.0.params.lock().unwrap().push(params);
        self.0.sinks.lock().unwrap().push(events);
        let step = self.0.connect.lock().unwrap().clone();
        Self::step(step).await
    }

    async fn send_client_ready(&self, message: String) -> Result<(), TransportError> {
        let step = self.0.send.lock().unwrap().clone();
        Self::step(step).await?;
        self.record_and_answer(&message);
        if *self.0.yield_after_client_ready.lock().unwrap() {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    async fn send_message(&self, message: String) -> Result<(), TransportError> {
        let step = self.0.send.lock().unwrap().clone();
        Self::step(step).await?;
        self.record_and_answer(&message);
        Ok(())
    }

    fn bot_ready(&self) {
        self.0.bot_readies.fetch_add(1, Ordering::SeqCst);
    }

    fn bot_interrupted(&self) {
        self.0.interruptions.fetch_add(1, Ordering::SeqCst);
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        self.0.disconnects.fetch_add(1, Ordering::SeqCst);
        let step = self.0.disconnect_step.lock().unwrap().clone();
        Self::step(step).await
    }

    fn max_message_size(&self) -> usize {
        self.0.max_size.load(Ordering::SeqCst)
    }

    fn media(&self) -> Option<&dyn MediaControl> {
        (!self.0.no_media.load(Ordering::SeqCst)).then_some(self as &dyn MediaControl)
    }
}

// ---- RTVI text helpers ----

/// A server message as JSON text.
pub fn msg(message_type: &str, id: Option<&str>, data: Option<Value>) -> String {
    let mut v = json!({"label": "rtvi-ai", "type": message_type});
    if let Some(id) = id {
        v["id"] = json!(id);
    }
    if let Some(data) = data {
        v["data"] = data;
    }
    v.to_string()
}

pub fn bot_ready(id: &str, version: &str) -> String {
    msg(
        "bot-ready",
        Some(id),
        Some(json!({
            "version": version,
            "about": {"library": "pipecat-ai", "library_version": "1.14.0"},
            "capabilities": {"audio_in": true, "audio_out": true}
        })),
    )
}

pub fn params() -> ConnectionParams {
    ConnectionParams::from_json(json!({"wsUrl": "ws://127.0.0.1:1/ws"})).unwrap()
}

// ---- Event helpers ----

/// Lets every task run until all are waiting (the paused clock then moves 1 ms).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Every event until the client goes idle (bounded: the paused clock advances the 10 ms
/// per step when nothing else can run).
pub async fn drain(events: &mut EventStream) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match tokio::time::timeout(Duration::from_millis(10), events.recv()).await {
            Ok(Some(event)) => out.push(event),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// The states entered, in order.
pub fn states(events: &[ClientEvent]) -> Vec<TransportState> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::TransportStateChanged { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

/// The event names, in order.
pub fn names(events: &[ClientEvent]) -> Vec<&'static str> {
    events.iter().map(ClientEvent::name).collect()
}

/// Names without state changes.
pub fn names_without_states(events: &[ClientEvent]) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| !matches!(e, ClientEvent::TransportStateChanged { .. }))
        .map(ClientEvent::name)
        .collect()
}

/// Checks that consecutive state changes chain (each `previous` is the last state).
pub fn assert_chained(events: &[ClientEvent], mut from: TransportState) {
    for e in events {
        if let ClientEvent::TransportStateChanged { state, previous } = e {
            assert_eq!(*previous, from, "state change {previous} -> {state} out of order");
            assert!(pipecat_core::can_transition(*previous, *state));
            from = *state;
        }
    }
}

#[allow(unused_imports)]
pub use TransportState::{
    Authenticated, Authenticating, Connected, Connecting, Disconnected, Disconnecting,
    Error as ErrorState, Idle, Initialized, Initializing, Ready,
};

/// The fake's media: `init_devices` follows the scripted step; the rest is what a transport
/// with a program-given source and sink answers.
#[async_trait]
impl MediaControl for FakeTransport {
    async fn init_devices(&self) -> Result<(), TransportError> {
        self.0.inits.fetch_add(1, Ordering::SeqCst);
        let step = self.0.init.lock().unwrap().clone();
        Self::step(step).await
    }

    async fn enable_mic(&self, enabled: bool) -> Result<(), TransportError> {
        self.0.mic.store(enabled, Ordering::SeqCst);
        Ok(())
    }

    fn is_mic_enabled(&self) -> bool {
        self.0.mic.load(Ordering::SeqCst)
    }

    fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        Ok(Vec::new())
    }

    fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        Ok(Vec::new())
    }

    async fn update_mic(&self, _device_id: &str) -> Result<(), TransportError> {
        Err(TransportError::unsupported("update_mic", "fake"))
    }

    async fn update_speaker(&self, _device_id: &str) -> Result<(), TransportError> {
        Err(TransportError::unsupported("update_speaker", "fake"))
    }

    fn selected_mic(&self) -> Option<MediaDeviceInfo> {
        None
    }

    fn selected_speaker(&self) -> Option<MediaDeviceInfo> {
        None
    }

    fn media_state(&self) -> MediaState {
        MediaState::default()
    }
}
