//! [`DailyTransport`]: the core [`Transport`] over a [`DailyBackend`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_core::media::{MediaControl, Participant};
use pipecat_core::{
    ApiRequest, ConnectionParams, Transport, TransportError, TransportEvent, TransportEventSink,
};
use pipecat_media::{AudioFormat, AudioFrame};
use pipecat_media_engine::{
    AudioBuilder, AudioOptions, BuildError, MediaEngine, MediaSession, MicWire, UplinkSpec,
    WireClosed, bot_participant,
};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex as AsyncMutex, watch};
use tokio::task::JoinHandle;

use crate::audio::{DEFAULT_MAX_BUFFERED, PreReadyBuffer};
use crate::backend::{
    BackendChannels, BackendError, BackendEvent, BackendReceivers, DEFAULT_REQUEST_TIMEOUT,
    DailyBackend, JoinFailure, JoinRequest,
};
use crate::call_state::{Session, SessionAction};
use crate::envelope::{self, Recipient};
use crate::event::DailyEvent;
use crate::params::DailyParams;

/// Default time limit for joining a room.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit for leaving a room.
pub const DEFAULT_LEAVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest RTVI message when the room does not say (the JS transport's fallback). Daily
/// refuses larger messages itself; that refusal becomes [`TransportError::MessageTooLarge`].
pub const FALLBACK_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;
/// The duration of each microphone frame written to the virtual microphone.
const MIC_FRAME_DURATION: Duration = Duration::from_millis(20);
/// Name of the virtual microphone the backend creates.
pub const MIC_DEVICE: &str = "pipecat-mic";
/// Name of the virtual speaker the backend creates.
pub const SPEAKER_DEVICE: &str = "pipecat-speaker";

/// Settings of a [`DailyTransport`]; see the builder methods for each.
#[derive(Debug, Clone)]
struct Options {
    mic_format: AudioFormat,
    speaker_format: AudioFormat,
    user_name: Option<String>,
    client_settings: Map<String, Value>,
    subscription_profiles: Map<String, Value>,
    echo_cancellation: bool,
    buffer_audio_until_bot_ready: bool,
    max_buffered_audio: Duration,
    join_timeout: Duration,
    request_timeout: Duration,
    leave_timeout: Duration,
    fallback_max_message_size: usize,
    speaker_queue: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mic_format: AudioFormat::MONO_16K,
            speaker_format: AudioFormat::MONO_16K,
            user_name: None,
            client_settings: Map::new(),
            subscription_profiles: default_subscription_profiles(),
            echo_cancellation: true,
            buffer_audio_until_bot_ready: false,
            max_buffered_audio: DEFAULT_MAX_BUFFERED,
            join_timeout: DEFAULT_JOIN_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            leave_timeout: DEFAULT_LEAVE_TIMEOUT,
            fallback_max_message_size: FALLBACK_MAX_MESSAGE_SIZE,
            speaker_queue: 100,
        }
    }
}

/// Receive the bot's audio only: no camera, no screen.
fn default_subscription_profiles() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "base": {"camera": "unsubscribed", "microphone": "subscribed", "screenVideo": "unsubscribed"}
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// Builds a [`DailyTransport`].
///
/// Audio I/O comes from [`AudioBuilder`], the same on every transport: the microphone's audio
/// (`audio_source`, or a device with the `devices` feature) goes to the backend's virtual
/// microphone, converted to the mic format; the bot's audio from the virtual speaker goes to
/// the sink. Unlike the other transports, the default here is **no audio** (the backend's
/// virtual devices need a program-given source and sink, or devices picked explicitly).
pub struct DailyTransportBuilder {
    backend: Arc<dyn DailyBackend>,
    options: Options,
    audio: AudioOptions,
}

impl AudioBuilder for DailyTransportBuilder {
    fn audio_options(&mut self) -> &mut AudioOptions {
        &mut self.audio
    }
}

impl DailyTransportBuilder {
    /// The format of the virtual microphone (default 16 kHz mono, what Pipecat bots take).
    #[must_use]
    pub fn mic_format(mut self, format: AudioFormat) -> Self {
        self.options.mic_format = format;
        self
    }

    /// The format of the virtual speaker (default 16 kHz mono).
    #[must_use]
    pub fn speaker_format(mut self, format: AudioFormat) -> Self {
        self.options.speaker_format = format;
        self
    }

    /// The user name shown in the room (connection parameters may override it).
    #[must_use]
    pub fn user_name(mut self, name: impl Into<String>) -> Self {
        self.options.user_name = Some(name.into());
        self
    }

    /// Extra daily-core client settings, merged over the transport's (`inputs`,
    /// `publishing`, …); a JSON object. Connection parameters' `clientSettings` go on top.
    #[must_use]
    pub fn client_settings(mut self, settings: Map<String, Value>) -> Self {
        self.options.client_settings = settings;
        self
    }

    /// The subscription profiles (default: the bot's microphone only).
    #[must_use]
    pub fn subscription_profiles(mut self, profiles: Map<String, Value>) -> Self {
        self.options.subscription_profiles = profiles;
        self
    }

    /// Asks Daily for echo cancellation on the microphone (default on).
    #[must_use]
    pub fn echo_cancellation(mut self, enabled: bool) -> Self {
        self.options.echo_cancellation = enabled;
        self
    }

    /// Records the microphone from the join until `client-ready` goes, and sends the
    /// recording as RTVI `raw-audio-batch` messages just before it, so the bot hears what was
    /// said while it was starting (default off).
    #[must_use]
    pub fn buffer_audio_until_bot_ready(mut self, enabled: bool) -> Self {
        self.options.buffer_audio_until_bot_ready = enabled;
        self
    }

    /// The longest pre-ready recording kept (default 10 s; older audio is dropped).
    #[must_use]
    pub fn max_buffered_audio(mut self, max: Duration) -> Self {
        self.options.max_buffered_audio = max;
        self
    }

    /// Time limit for joining (default 30 s).
    #[must_use]
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.options.join_timeout = timeout;
        self
    }

    /// Time limit of each other backend request: sending a message (default 30 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// Time limit for leaving (default 10 s).
    #[must_use]
    pub fn leave_timeout(mut self, timeout: Duration) -> Self {
        self.options.leave_timeout = timeout;
        self
    }

    /// The largest RTVI message when the room does not report its limit
    /// (default [`FALLBACK_MAX_MESSAGE_SIZE`]).
    #[must_use]
    pub fn fallback_max_message_size(mut self, bytes: usize) -> Self {
        self.options.fallback_max_message_size = bytes.max(1);
        self
    }

    /// Bot audio frames queued before the oldest are dropped (default 100: 2 s of 20 ms frames).
    #[must_use]
    pub fn speaker_queue(mut self, frames: usize) -> Self {
        self.options.speaker_queue = frames.max(1);
        self
    }

    /// The transport.
    ///
    /// # Errors
    /// [`BuildError`] for an unusable microphone format.
    pub fn build(self) -> Result<DailyTransport, BuildError> {
        let max = self.options.fallback_max_message_size;
        let spec = UplinkSpec {
            format: self.options.mic_format,
            frame_duration: MIC_FRAME_DURATION,
            // The bot hears the room from the join; `buffer_audio_until_bot_ready` records
            // what it would miss as raw-audio-batch messages instead.
            hold_until_ready: None,
        };
        let media = MediaEngine::new(self.audio, spec, "daily")?;
        Ok(DailyTransport {
            shared: Arc::new(Shared {
                backend: self.backend,
                options: self.options,
                media,
                max_message_size: AtomicUsize::new(max),
            }),
            lifecycle: AsyncMutex::new(()),
            active: Mutex::new(None),
        })
    }
}

/// State shared with the session's tasks.
struct Shared {
    backend: Arc<dyn DailyBackend>,
    options: Options,
    media: MediaEngine,
    max_message_size: AtomicUsize,
}

/// One joined session.
struct SessionState {
    session: Mutex<Session>,
    events: TransportEventSink,
    /// `false` once the call ended or the client is leaving: nothing more is sent.
    joined: watch::Sender<bool>,
    pre_ready: Mutex<Option<PreReadyBuffer>>,
}

struct Active {
    state: Arc<SessionState>,
    tasks: Vec<JoinHandle<()>>,
    media: MediaSession,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Daily-compatible transport: RTVI over Daily app-messages, the bot found among the room's
/// participants, `client-ready` held until the bot's audio is playable, microphone and bot
/// audio through the backend's virtual devices.
///
/// Joining a real room needs a real backend (`sidecar` or `ffi` feature); the
/// [`ScriptedBackend`](crate::backend::ScriptedBackend) is synthetic.
///
/// ```
/// use pipecat_core::{ConnectionParams, Transport, TransportEvent, TransportEventSink};
/// use pipecat_daily::backend::{ScriptStep, ScriptedBackend};
/// use pipecat_daily::DailyTransport;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (backend, handle) = ScriptedBackend::new();
/// let backend = backend.after_join(vec![
///     ScriptStep::participant("participant-joined", "bot", "Pipecat", "playable"),
/// ]);
/// let transport = DailyTransport::builder(backend).build()?;
/// let (sink, mut events) = TransportEventSink::new(1);
/// let params = ConnectionParams::from_json(serde_json::json!({
///     "dailyRoom": "https://acme.daily.co/room", "dailyToken": ""
/// }))?;
/// transport.connect(params, sink).await?;
/// let (_, event) = events.recv().await.unwrap();
/// assert!(matches!(event, TransportEvent::BotConnected(p) if p.id == "bot"));
/// transport.send_client_ready(r#"{"label":"rtvi-ai","type":"client-ready","id":"1","data":{}}"#.into()).await?;
/// assert_eq!(handle.sent_types(), ["client-ready"]);
/// transport.disconnect().await?;
/// # Ok(()) }
/// ```
pub struct DailyTransport {
    shared: Arc<Shared>,
    lifecycle: AsyncMutex<()>,
    active: Mutex<Option<Active>>,
}

impl std::fmt::Debug for DailyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyTransport")
            .field("backend", &self.shared.backend.name())
            .field("synthetic", &self.shared.backend.is_synthetic())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl DailyTransport {
    /// A builder driving `backend`.
    pub fn builder(backend: impl DailyBackend) -> DailyTransportBuilder {
        Self::builder_shared(Arc::new(backend))
    }

    /// A builder driving a shared backend.
    pub fn builder_shared(backend: Arc<dyn DailyBackend>) -> DailyTransportBuilder {
        DailyTransportBuilder { backend, options: Options::default(), audio: AudioOptions::none() }
    }

    /// The backend's name (`scripted`, `sidecar`, `ffi`).
    pub fn backend_name(&self) -> &'static str {
        self.shared.backend.name()
    }

    /// `true` when the backend is a test double that never talks to Daily.
    pub fn is_synthetic(&self) -> bool {
        self.shared.backend.is_synthetic()
    }

    /// Whether a session is joined and not ended.
    pub fn is_connected(&self) -> bool {
        lock(&self.active).as_ref().is_some_and(|a| *a.state.joined.borrow())
    }

    /// The bot of the current session, once it is in the room.
    pub fn bot(&self) -> Option<Participant> {
        lock(&self.active).as_ref().and_then(|a| lock(&a.state.session).bot())
    }

    fn current(&self) -> Result<Arc<SessionState>, TransportError> {
        match lock(&self.active).as_ref() {
            Some(active) if *active.state.joined.borrow() => Ok(active.state.clone()),
            _ => Err(TransportError::NotConnected),
        }
    }

    fn join_request(&self, params: &DailyParams) -> JoinRequest {
        let options = &self.shared.options;
        let mut microphone = json!({"isEnabled": true, "settings": {"deviceId": MIC_DEVICE}});
        if options.echo_cancellation {
            microphone["settings"]["customConstraints"] =
                json!({"echoCancellation": {"exact": true}});
        }
        let mut settings = Map::new();
        settings.insert(
            "inputs".into(),
            json!({"camera": {"isEnabled": false}, "microphone": microphone}),
        );
        settings.insert("publishing".into(), json!({"camera": {"isPublishing": false}}));
        merge(&mut settings, &options.client_settings);
        if let Some(extra) = &params.client_settings {
            merge(&mut settings, extra);
        }
        JoinRequest {
            room_url: params.room_url.as_str().to_owned(),
            token: params.token.clone(),
            client_settings: settings,
            subscription_profiles: options.subscription_profiles.clone(),
            user_name: params.user_name.clone().or_else(|| options.user_name.clone()),
            mic_device: MIC_DEVICE.into(),
            speaker_device: SPEAKER_DEVICE.into(),
            mic_format: options.mic_format,
            speaker_format: options.speaker_format,
        }
    }

    /// Ends the current session's tasks and leaves. Called with the lifecycle lock held.
    async fn teardown(&self) -> Result<(), TransportError> {
        let Some(active) = lock(&self.active).take() else { return Ok(()) };
        let was_ended = {
            let mut session = lock(&active.state.session);
            let ended = session.is_ended();
            session.set_leaving();
            ended
        };
        active.state.joined.send_replace(false);
        // Leave even after the call ended by itself: the backend releases its resources
        // (the sidecar process, the call client).
        let timeout = self.shared.options.leave_timeout;
        let left = tokio::time::timeout(timeout, self.shared.backend.leave()).await;
        for task in &active.tasks {
            task.abort();
        }
        for task in active.tasks {
            let _ = task.await;
        }
        active.media.stop().await;
        match left {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) if was_ended => Ok(()),
            Ok(Err(e)) => Err(map_backend_error(e)),
            Err(_) => Err(TransportError::Timeout {
                what: "leaving the Daily room".into(),
                after: timeout,
            }),
        }
    }
}

impl Drop for DailyTransport {
    fn drop(&mut self) {
        if let Some(active) = lock(&self.active).take() {
            for task in active.tasks {
                task.abort();
            }
        }
    }
}

/// Deep-merges `extra` into `base` (objects merge, everything else replaces).
fn merge(base: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        match (base.get_mut(key), value) {
            (Some(Value::Object(b)), Value::Object(e)) => merge(b, e),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The [`BackendError`] behind a transport error, if any (join failures keep it as source).
///
/// ```
/// use pipecat_daily::{backend::{BackendError, JoinFailure}, daily_error};
/// let error = pipecat_core::TransportError::connect_failed(
///     "could not join",
///     BackendError::JoinFailed { kind: JoinFailure::RoomLookup, message: "RoomLookup(…)".into() },
/// );
/// assert!(matches!(daily_error(&error), Some(BackendError::JoinFailed { kind: JoinFailure::RoomLookup, .. })));
/// ```
pub fn daily_error(error: &TransportError) -> Option<&BackendError> {
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        if let Some(e) = s.downcast_ref::<BackendError>() {
            return Some(e);
        }
        // Core keeps sources as `Arc<dyn Error>`, which is itself the error seen here.
        if let Some(shared) = s.downcast_ref::<pipecat_core::ErrorSource>()
            && let Some(e) = shared.downcast_ref::<BackendError>()
        {
            return Some(e);
        }
        source = s.source();
    }
    None
}

fn map_join_error(error: BackendError, room: &str) -> TransportError {
    match &error {
        BackendError::JoinFailed { kind: JoinFailure::Authentication, message } => {
            TransportError::Authentication(format!(
                "Daily refused to let us into {room}: {message}"
            ))
        }
        BackendError::Timeout { after, .. } => TransportError::Timeout {
            what: format!("joining the Daily room {room}"),
            after: *after,
        },
        _ => TransportError::connect_failed(format!("Daily room {room}: {error}"), error),
    }
}

fn map_backend_error(error: BackendError) -> TransportError {
    match error {
        BackendError::NotJoined => TransportError::NotConnected,
        BackendError::Timeout { operation, after } => {
            TransportError::Timeout { what: format!("Daily {operation}"), after }
        }
        BackendError::Closed { reason } => TransportError::ConnectionLost { code: None, reason },
        other => TransportError::other("Daily backend request failed", other),
    }
}

/// Sends one RTVI message as an app-message to everyone.
async fn send_rtvi(shared: &Shared, message: &str) -> Result<(), TransportError> {
    let max = shared.max_message_size.load(Ordering::SeqCst);
    if message.len() > max {
        return Err(TransportError::MessageTooLarge { size: message.len(), max });
    }
    let payload =
        envelope::encode(message).map_err(|e| TransportError::other("not an RTVI message", e))?;
    let timeout = shared.options.request_timeout;
    match tokio::time::timeout(timeout, shared.backend.send_app_message(payload, Recipient::All))
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(BackendError::MessageTooLarge { .. })) => {
            Err(TransportError::MessageTooLarge { size: message.len(), max })
        }
        Ok(Err(BackendError::Request { message: text, .. }))
            if envelope::is_too_large_error(&text) =>
        {
            Err(TransportError::MessageTooLarge { size: message.len(), max })
        }
        Ok(Err(e)) => Err(map_backend_error(e)),
        Err(_) => Err(TransportError::Timeout {
            what: "sending a Daily app-message".into(),
            after: timeout,
        }),
    }
}

/// Sends the pre-ready recording (if any), then `client-ready`.
async fn release_ready(
    shared: &Shared,
    state: &SessionState,
    ready: String,
) -> Result<(), TransportError> {
    let recording = lock(&state.pre_ready).take();
    if let Some(recording) = recording {
        let max = shared.max_message_size.load(Ordering::SeqCst);
        for message in recording.into_messages(max) {
            if let Err(e) = send_rtvi(shared, &message).await {
                state.events.emit(TransportEvent::Warning(format!(
                    "could not send buffered microphone audio: {e}"
                )));
                break;
            }
        }
    }
    send_rtvi(shared, &ready).await
}

fn apply(shared: &Arc<Shared>, state: &Arc<SessionState>, actions: Vec<SessionAction>) {
    for action in actions {
        match action {
            SessionAction::Emit(event) => state.events.emit(event),
            SessionAction::SendReady(message) => {
                let (shared, state) = (shared.clone(), state.clone());
                tokio::spawn(async move {
                    if let Err(e) = release_ready(&shared, &state, message).await {
                        state.events.emit(TransportEvent::Warning(format!(
                            "could not send client-ready: {e}"
                        )));
                    }
                });
            }
            SessionAction::IgnoredAppMessage(value) => {
                tracing::debug!(target: "pipecat_daily", "ignoring a non-RTVI app-message ({} bytes)", value.to_string().len());
            }
            SessionAction::Ended => {
                state.joined.send_replace(false);
            }
        }
    }
}

fn step(state: &SessionState, event: BackendEvent) -> Vec<SessionAction> {
    let mut session = lock(&state.session);
    match event {
        BackendEvent::Daily(value) => match DailyEvent::from_json(&value) {
            Some(event) => session.handle(&event),
            None => {
                tracing::debug!(target: "pipecat_daily", "ignoring a malformed Daily event");
                Vec::new()
            }
        },
        BackendEvent::Closed { reason } => session.backend_closed(&reason),
    }
}

async fn run_events(
    shared: Arc<Shared>,
    state: Arc<SessionState>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<BackendEvent>,
) {
    while let Some(event) = events.recv().await {
        let actions = step(&state, event);
        apply(&shared, &state, actions);
    }
    // Every sender is gone while the session is on: the backend dropped the call.
    let actions = lock(&state.session).backend_closed("the backend stopped reporting events");
    apply(&shared, &state, actions);
}

/// The Daily end of the microphone pipeline: each frame goes to the backend's virtual
/// microphone, and into the pre-ready recording while there is one.
struct DailyMicWire {
    shared: Arc<Shared>,
    state: Arc<SessionState>,
    warned: bool,
}

#[async_trait]
impl MicWire for DailyMicWire {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), WireClosed> {
        if !*self.state.joined.borrow() {
            return Err(WireClosed);
        }
        if let Some(recording) = lock(&self.state.pre_ready).as_mut()
            && let Err(e) = recording.push(frame.clone())
        {
            tracing::debug!(target: "pipecat_daily", "pre-ready recording: {e}");
        }
        if let Err(e) = self.shared.backend.write_mic(&frame)
            && !self.warned
        {
            self.warned = true;
            self.state.events.emit(TransportEvent::Warning(format!(
                "could not write microphone audio to Daily: {e}"
            )));
        }
        Ok(())
    }
}

/// Hands the bot's audio from the virtual speaker to the media engine.
async fn run_speaker(
    mut bot_audio: pipecat_media_engine::BotAudioStream,
    mut frames: tokio::sync::mpsc::Receiver<AudioFrame>,
) {
    while let Some(frame) = frames.recv().await {
        bot_audio.push(frame);
    }
}

#[async_trait]
impl Transport for DailyTransport {
    fn name(&self) -> &'static str {
        "daily"
    }

    fn attach(&self, events: TransportEventSink) {
        self.shared.media.attach(events);
    }

    fn map_start_response(
        &self,
        response: Value,
        start_request: &ApiRequest,
    ) -> Result<ConnectionParams, TransportError> {
        let mut params = ConnectionParams::from_json(response)?;
        // Fail early, with the start response at hand, when it names no usable room.
        DailyParams::from_connection_params(&params)?;
        params.start_request = Some(start_request.clone());
        Ok(params)
    }

    async fn connect(
        &self,
        params: ConnectionParams,
        events: TransportEventSink,
    ) -> Result<(), TransportError> {
        let daily = DailyParams::from_connection_params(&params)?;
        // No room is joined for a session that would have no audio path.
        self.shared.media.prepare().await?;
        let _lifecycle = self.lifecycle.lock().await;
        // Clean up after a session that ended by itself without a disconnect.
        if let Err(e) = self.teardown().await {
            tracing::debug!(target: "pipecat_daily", "cleaning up the previous session: {e}");
        }
        let shared = &self.shared;
        let request = self.join_request(&daily);
        let room = daily.room_url.to_string();
        tracing::info!(target: "pipecat_daily", backend = shared.backend.name(), room = %room, "joining");
        let (channels, receivers) = BackendChannels::new(shared.options.speaker_queue);
        let timeout = shared.options.join_timeout;
        let joined = tokio::time::timeout(timeout, shared.backend.join(request, channels)).await;
        let info = match joined {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                let _ = tokio::time::timeout(shared.options.leave_timeout, shared.backend.leave())
                    .await;
                return Err(map_join_error(e, &room));
            }
            Err(_) => {
                let _ = tokio::time::timeout(shared.options.leave_timeout, shared.backend.leave())
                    .await;
                return Err(TransportError::Timeout {
                    what: format!("joining the Daily room {room}"),
                    after: timeout,
                });
            }
        };
        let max = info.max_message_size.unwrap_or(shared.options.fallback_max_message_size);
        shared.max_message_size.store(max, Ordering::SeqCst);

        let pre_ready = if shared.options.buffer_audio_until_bot_ready {
            PreReadyBuffer::new(shared.options.max_buffered_audio).ok()
        } else {
            None
        };
        let state = Arc::new(SessionState {
            session: Mutex::new(Session::new()),
            events,
            joined: watch::channel(true).0,
            pre_ready: Mutex::new(pre_ready),
        });
        let BackendReceivers { events: mut event_rx, speaker } = receivers;
        // Events that arrived while joining come first, then the room as it is now.
        while let Ok(event) = event_rx.try_recv() {
            let actions = step(&state, event);
            apply(shared, &state, actions);
        }
        if let Some(participants) = &info.participants {
            let actions = lock(&state.session).seed(participants);
            apply(shared, &state, actions);
        }
        if lock(&state.session).is_ended() {
            let _ =
                tokio::time::timeout(shared.options.leave_timeout, shared.backend.leave()).await;
            return Err(TransportError::ConnectFailed {
                message: format!("the Daily call in {room} ended while joining"),
                source: None,
            });
        }
        let mut media = shared.media.start_session(state.events.clone());
        let bot_audio = media.bot_audio().stream(bot_participant());
        let mut joined = state.joined.subscribe();
        let left = async move {
            let _ = joined.wait_for(|joined| !*joined).await;
        };
        media.start_mic(
            DailyMicWire { shared: shared.clone(), state: state.clone(), warned: false },
            left,
        );
        let tasks = vec![
            tokio::spawn(run_events(shared.clone(), state.clone(), event_rx)),
            tokio::spawn(run_speaker(bot_audio, speaker)),
        ];
        *lock(&self.active) = Some(Active { state, tasks, media });
        tracing::info!(target: "pipecat_daily", room = %room, max_message_size = max, "joined");
        Ok(())
    }

    async fn send_client_ready(&self, message: String) -> Result<(), TransportError> {
        let state = self.current()?;
        let now = lock(&state.session).hold_ready(message);
        match now {
            Some(message) => release_ready(&self.shared, &state, message).await,
            None => {
                tracing::debug!(target: "pipecat_daily", "client-ready held until the bot's audio is playable");
                Ok(())
            }
        }
    }

    async fn send_message(&self, message: String) -> Result<(), TransportError> {
        self.current()?;
        send_rtvi(&self.shared, &message).await
    }

    fn bot_interrupted(&self) {
        if let Some(active) = lock(&self.active).as_ref() {
            active.media.flush_bot_audio();
        }
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        let _lifecycle = self.lifecycle.lock().await;
        self.teardown().await
    }

    fn max_message_size(&self) -> usize {
        self.shared.max_message_size.load(Ordering::SeqCst)
    }

    fn media(&self) -> Option<&dyn MediaControl> {
        Some(&self.shared.media)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep() {
        let Value::Object(mut base) =
            json!({"inputs": {"camera": false, "microphone": {"isEnabled": true}}, "x": 1})
        else {
            panic!()
        };
        let Value::Object(extra) =
            json!({"inputs": {"microphone": {"settings": {"deviceId": "m"}}}, "x": [2]})
        else {
            panic!()
        };
        merge(&mut base, &extra);
        assert_eq!(
            Value::Object(base),
            json!({"inputs": {"camera": false, "microphone": {"isEnabled": true, "settings": {"deviceId": "m"}}}, "x": [2]})
        );
    }

    #[test]
    fn join_request_defaults_and_overrides() {
        let (backend, _) = crate::backend::ScriptedBackend::new();
        let transport = DailyTransport::builder(backend).user_name("Default").build().unwrap();
        let params = DailyParams::new("https://acme.daily.co/r").unwrap().with_token("t");
        let request = transport.join_request(&params);
        assert_eq!(request.room_url, "https://acme.daily.co/r");
        assert_eq!(request.token.as_deref(), Some("t"));
        assert_eq!(request.user_name.as_deref(), Some("Default"));
        assert_eq!(
            request.client_settings["inputs"]["microphone"]["settings"]["deviceId"],
            MIC_DEVICE
        );
        assert_eq!(
            request.client_settings["inputs"]["microphone"]["settings"]["customConstraints"]["echoCancellation"]
                ["exact"],
            true
        );
        assert_eq!(request.subscription_profiles["base"]["microphone"], "subscribed");
        assert_eq!(request.subscription_profiles["base"]["camera"], "unsubscribed");
        assert!(!format!("{request:?}").contains("\"t\""));

        let Value::Object(extra) = json!({"inputs": {"microphone": {"isEnabled": false}}}) else {
            panic!()
        };
        let params = params.with_user_name("Ada");
        let params = DailyParams { client_settings: Some(extra), ..params };
        let request = transport.join_request(&params);
        assert_eq!(request.user_name.as_deref(), Some("Ada"));
        assert_eq!(request.client_settings["inputs"]["microphone"]["isEnabled"], false);
        assert_eq!(
            request.client_settings["inputs"]["microphone"]["settings"]["deviceId"],
            MIC_DEVICE
        );
    }
}
