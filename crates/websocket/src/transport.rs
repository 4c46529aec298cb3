//! [`WebSocketTransport`]: the [`Transport`] of pipecat's WebSocket protocol, and its builder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use pipecat_core::media::{MediaDeviceInfo, MediaState};
use pipecat_core::{
    ApiRequest, ConnectionParams, Transport, TransportError, TransportEvent, TransportEventSink,
};
use pipecat_media::{AudioFormat, AudioSink, AudioSource, DeviceSelector};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::audio_down::{self, Downlink};
use crate::audio_up::{self, TrackSinks, UplinkConfig};
use crate::codec;
use crate::connection::{self, ConnectionState, Control};
use crate::media_io::{InputChoice, MediaIo, OutputChoice, Side};
use crate::params::{WebSocketParams, redact_url};
use crate::tracks;

/// The largest RTVI message the transport sends, in UTF-8 bytes (as the JS transport).
pub const MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// The bot's default input rate: what pipecat pipelines expect unless configured otherwise.
pub const DEFAULT_INPUT_SAMPLE_RATE: u32 = 16_000;

/// The default duration of each audio frame sent to the bot.
pub const DEFAULT_FRAME_DURATION: Duration = Duration::from_millis(20);

/// The default amount of audio held back until the bot is ready.
pub const DEFAULT_PRE_READY_BUFFER: Duration = Duration::from_secs(3);

/// The default time limit of the TCP + TLS + WebSocket handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The default time [`Transport::disconnect`] waits for the close handshake.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The default interval of WebSocket pings; the connection counts as lost when nothing at
/// all arrives for [`KEEPALIVE_MISSES`] intervals.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Keepalive intervals without any data from the server before the connection counts as
/// lost.
pub const KEEPALIVE_MISSES: u32 = 3;

/// The longest frame duration accepted.
const MAX_FRAME_DURATION: Duration = Duration::from_secs(1);

/// Audio queued between the uplink and the socket writer.
const WRITER_AUDIO_QUEUE: usize = 32;

/// Why a [`WebSocketTransportBuilder`] could not build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The input sample rate is not usable.
    #[error("invalid input sample rate {0} Hz")]
    InvalidSampleRate(u32),
    /// The frame duration is zero, longer than a second, or shorter than one sample.
    #[error("invalid audio frame duration {0:?} (must be at least one sample and at most 1 s)")]
    InvalidFrameDuration(Duration),
    /// The default TLS configuration could not be built.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
}

/// The WebSocket transport: pipecat's protobuf `pipecat.Frame`s over one WebSocket, RTVI as
/// JSON inside `MessageFrame`s, and raw PCM16 audio both ways.
///
/// - **Parameters**: [`WebSocketParams`] (`wsUrl` / `ws_url` and an optional `token`, sent as
///   a `token` query parameter), directly or from a start-bot answer.
/// - **TLS**: `wss://` uses rustls with the aws-lc-rs provider and the webpki roots,
///   certificates checked; give your own [`rustls::ClientConfig`] with
///   [`WebSocketTransportBuilder::tls_config`] for private roots. The process-wide rustls
///   provider is never used.
/// - **Audio up**: any [`AudioSource`], or a microphone (feature `devices`), converted to
///   PCM16 mono at the bot's input rate (16 kHz by default) in frames of 20 ms
///   (configurable). Audio captured before the bot is ready is held back (3 s by default, the
///   oldest dropped first) and sent on `bot-ready`. With the microphone disabled
///   ([`Transport::enable_mic`]) the frames keep flowing as **silence**, like a muted WebRTC
///   track, so the bot's input clock does not stall.
/// - **Audio down**: each bot frame goes to the [`AudioSink`] (or a speaker) in the rate and
///   channel count it declares (sinks convert); an interruption frame or `bot-interrupted`
///   flushes it at once.
/// - **Devices** (feature `devices`): listing ([`Transport::available_mics`],
///   [`Transport::available_speakers`]), switching mid-session without dropping the session
///   ([`Transport::update_mic`], [`Transport::update_speaker`], by the ids listed), media
///   states per device ([`Transport::media_state`]; opened by [`Transport::init_devices`] or
///   at connect), and device errors as [`TransportEvent::DeviceError`]. A program-given
///   source or sink can be replaced by a device mid-session too.
/// - **Levels and tracks**: [`TransportEvent::LocalAudioLevel`] (what is sent, after mute) and
///   [`TransportEvent::RemoteAudioLevel`] (the bot's audio) about every 100 ms of audio;
///   [`TransportEvent::TrackStarted`] / [`TransportEvent::TrackStopped`] for the local audio
///   (first frame sent; source end or session end) and the bot's (first frame; session end).
/// - **Endings**: a close with code 1000 or 1001 (after `disconnect-bot`, a bot end, a fatal
///   bot error) is [`TransportEvent::BotDisconnected`]; code 4003 (or an HTTP 401/403 at the
///   handshake) is [`TransportError::Authentication`]; any other code or a drop without a close
///   frame is [`TransportError::ConnectionLost`], and so is a connection on which nothing
///   arrives for three keepalive intervals (pings every 10 s by default, see
///   [`WebSocketTransportBuilder::keepalive`]). Every task of a session stops when it ends.
///
/// **Defaults.** With no source (no sink) given, the transport uses the default microphone
/// (speaker), opened by [`Transport::init_devices`] or at the latest by `connect`. When it
/// cannot be opened (no sound card, no permission...), or this crate was built without the
/// `devices` feature, `init_devices` and `connect` fail with [`TransportError::Media`]
/// naming the headless alternatives (and the microphone's media state becomes `error`, with a
/// [`TransportEvent::DeviceError`]). Nothing is sent in silence by surprise: a session that
/// wants no audio says so with [`WebSocketTransportBuilder::without_audio`].
///
/// ```no_run
/// use std::time::Duration;
/// use pipecat_media::{AudioFormat, MemorySink, ToneSource};
/// use pipecat_websocket::WebSocketTransport;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (sink, bot_audio) = MemorySink::new(AudioFormat::MONO_24K)?;
/// let transport = WebSocketTransport::builder()
///     .audio_source(ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3)?)
///     .audio_sink(sink)
///     .frame_duration(Duration::from_millis(40))
///     .build()?;
/// // Hand `transport` to `PipecatClient::builder(transport)`; read the bot's audio from
/// // `bot_audio`.
/// # let _ = (transport, bot_audio); Ok(()) }
/// ```
pub struct WebSocketTransport {
    config: Config,
    source: Arc<Mutex<Box<dyn AudioSource>>>,
    sink: Arc<Mutex<Box<dyn AudioSink>>>,
    mic_enabled: Arc<AtomicBool>,
    media: MediaIo,
    session: StdMutex<Option<Session>>,
}

impl std::fmt::Debug for WebSocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("input_format", &self.config.uplink.format)
            .field("frame_duration", &self.config.uplink.frame_duration)
            .field("mic_enabled", &self.mic_enabled.load(Ordering::Relaxed))
            .field("media", &self.media)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Config {
    uplink: UplinkConfig,
    connect_timeout: Duration,
    close_timeout: Duration,
    keepalive: Option<Duration>,
    tls: Arc<rustls::ClientConfig>,
}

/// One connection and the tasks serving it.
struct Session {
    control: mpsc::UnboundedSender<Control>,
    ready: watch::Sender<bool>,
    shutdown: watch::Sender<bool>,
    down: Arc<audio_down::Shared>,
    state: Arc<ConnectionState>,
    reader: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // A transport dropped without `disconnect`: stop everything (the socket closes with
        // the writer and reader).
        self.reader.abort();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Default for WebSocketTransport {
    /// A transport with every default: the default microphone and speaker (feature
    /// `devices`), opened by `init_devices` or `connect` (see [`WebSocketTransport`]).
    fn default() -> Self {
        // The default configuration always builds: webpki roots with aws-lc-rs.
        WebSocketTransportBuilder::default().build().unwrap_or_else(|e| {
            unreachable!("the default WebSocket transport configuration is valid: {e}")
        })
    }
}

impl WebSocketTransport {
    /// A builder with the defaults.
    pub fn builder() -> WebSocketTransportBuilder {
        WebSocketTransportBuilder::default()
    }

    /// A transport with every default: see [`WebSocketTransport`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The TLS configuration used for `wss://` unless another is given: rustls with the
    /// aws-lc-rs provider (set explicitly, never the process default) and the webpki roots.
    ///
    /// # Errors
    /// [`BuildError::Tls`] if the provider refuses the default protocol versions (it does not
    /// with the crates this one is built with).
    pub fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, BuildError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BuildError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// `true` while a connection is open (between `connect` and its end or `disconnect`).
    pub fn is_connected(&self) -> bool {
        self.lock_session().as_ref().is_some_and(|s| !s.reader.is_finished())
    }

    /// The format audio is sent to the bot in (mono, at the input rate).
    pub fn input_format(&self) -> AudioFormat {
        self.config.uplink.format
    }

    /// Closes the audio sink (a WAV file gets its final header, an in-memory sink's stream
    /// ends). Call it when done with the transport; the sink may refuse audio afterwards.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the sink fails to close.
    pub async fn close_audio_sink(&self) -> Result<(), TransportError> {
        self.sink.lock().await.close().await.map_err(|e| TransportError::Media(e.to_string()))
    }

    fn lock_session(&self) -> MutexGuard<'_, Option<Session>> {
        // The session data stays consistent even if a holder panicked: keep going.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops a session: close handshake (bounded), then every task stopped and joined.
    async fn stop(&self, mut session: Session) {
        session.state.disconnecting.store(true, Ordering::Release);
        let mut reader_done = false;
        if !session.reader.is_finished() && session.control.send(Control::Close).is_ok() {
            // The reader ends when the server answers the close (or drops the connection).
            reader_done =
                tokio::time::timeout(self.config.close_timeout, &mut session.reader).await.is_ok();
        }
        session.shutdown.send_replace(true);
        session.reader.abort();
        for task in &session.tasks {
            task.abort();
        }
        // A JoinHandle must not be polled again once it returned.
        if !reader_done {
            let _ = (&mut session.reader).await;
        }
        for task in &mut session.tasks {
            let _ = task.await;
        }
    }
}

#[async_trait]
impl Transport for WebSocketTransport {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn attach(&self, events: TransportEventSink) {
        self.media.attach(events);
    }

    /// Opens the microphone and speaker (the devices chosen, or the defaults) unless already
    /// open; a program-given source or sink counts as open. Reports `initializing`, then
    /// `granted` or `error` per device, and the device lists. During a session, it re-opens a
    /// device that failed.
    ///
    /// # Errors
    /// [`TransportError::Media`] when a device cannot be opened, naming the headless
    /// alternatives for the default ones.
    async fn init_devices(&self) -> Result<(), TransportError> {
        self.media.init(true).await
    }

    fn map_start_response(
        &self,
        response: Value,
        start_request: &ApiRequest,
    ) -> Result<ConnectionParams, TransportError> {
        let mut params = ConnectionParams::from_json(response)?;
        // Check now, so a bad start answer fails before any connection attempt.
        WebSocketParams::from_connection_params(&params)?.url()?;
        params.start_request = Some(start_request.clone());
        Ok(params)
    }

    async fn connect(
        &self,
        params: ConnectionParams,
        events: TransportEventSink,
    ) -> Result<(), TransportError> {
        let url = WebSocketParams::from_connection_params(&params)?.url()?;
        if !self.media.is_ready() {
            // No socket is opened for a session that would have no audio path.
            self.media.init(false).await?;
        }
        let previous = self.lock_session().take();
        if let Some(previous) = previous {
            warn!("connect while a session was open: closing the previous one");
            self.stop(previous).await;
        }
        let span =
            info_span!("websocket", url = %redact_url(&url), generation = events.generation());
        async {
            info!("connecting");
            let stream =
                connection::open(&url, &self.config.tls, self.config.connect_timeout).await?;
            info!("connected");
            // Before the reader starts, so it comes ahead of anything the bot sends.
            events.emit(TransportEvent::BotConnected(tracks::bot_participant()));
            let session = self.spawn_session(stream, events.clone());
            *self.lock_session() = Some(session);
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn send_message(&self, message: String) -> Result<(), TransportError> {
        if message.len() > MAX_MESSAGE_SIZE {
            return Err(TransportError::MessageTooLarge {
                size: message.len(),
                max: MAX_MESSAGE_SIZE,
            });
        }
        let bytes = codec::encode_message(&message);
        let guard = self.lock_session();
        let session = guard.as_ref().ok_or(TransportError::NotConnected)?;
        if *session.shutdown.borrow() {
            return Err(TransportError::NotConnected);
        }
        session.control.send(Control::Frame(bytes)).map_err(|_| TransportError::NotConnected)
    }

    fn bot_ready(&self) {
        if let Some(session) = self.lock_session().as_ref() {
            session.ready.send_replace(true);
        }
    }

    fn bot_interrupted(&self) {
        if let Some(session) = self.lock_session().as_ref() {
            audio_down::flush_shared(&session.down);
        }
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        let session = self.lock_session().take();
        if let Some(session) = session {
            info!("disconnecting");
            self.stop(session).await;
            debug!("disconnected; all session tasks stopped");
        }
        Ok(())
    }

    fn max_message_size(&self) -> usize {
        MAX_MESSAGE_SIZE
    }

    async fn enable_mic(&self, enabled: bool) -> Result<(), TransportError> {
        self.mic_enabled.store(enabled, Ordering::Relaxed);
        Ok(())
    }

    fn is_mic_enabled(&self) -> bool {
        self.mic_enabled.load(Ordering::Relaxed)
    }

    /// The microphones of this machine (feature `devices`). Blocking: a few milliseconds, a
    /// server round trip with PulseAudio.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the audio system cannot list devices;
    /// [`TransportError::Unsupported`] without the `devices` feature.
    fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        self.media.available(Side::Mic)
    }

    /// The speakers of this machine (feature `devices`); blocking, as
    /// [`available_mics`](Transport::available_mics).
    ///
    /// # Errors
    /// As [`available_mics`](Transport::available_mics).
    fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        self.media.available(Side::Speaker)
    }

    /// Opens the microphone `device_id` (an id from
    /// [`available_mics`](Transport::available_mics)) and sends from it from the next frame
    /// on, mid-session too; replaces a program-given source as well. On failure the current
    /// source stays in use and a [`TransportEvent::DeviceError`] is reported too.
    ///
    /// # Errors
    /// [`TransportError::Media`] when no such device exists or it cannot be opened;
    /// [`TransportError::Unsupported`] without the `devices` feature.
    async fn update_mic(&self, device_id: &str) -> Result<(), TransportError> {
        self.media.update(Side::Mic, device_id).await
    }

    /// Opens the speaker `device_id` and plays the bot from the next frame on (audio queued
    /// for the previous speaker is dropped), mid-session too.
    ///
    /// # Errors
    /// As [`update_mic`](Transport::update_mic).
    async fn update_speaker(&self, device_id: &str) -> Result<(), TransportError> {
        self.media.update(Side::Speaker, device_id).await
    }

    /// The microphone device in use; `None` for a program-given source (or before it opens).
    fn selected_mic(&self) -> Option<MediaDeviceInfo> {
        self.media.selected_mic()
    }

    /// The speaker device in use; `None` for a program-given sink (or before it opens).
    fn selected_speaker(&self) -> Option<MediaDeviceInfo> {
        self.media.selected_speaker()
    }

    /// The states of the microphone and speaker (the camera is always `uninitialized`).
    fn media_state(&self) -> MediaState {
        self.media.media_state()
    }
}

impl WebSocketTransport {
    /// Splits the socket and starts the reader, writer, capture, uplink and downlink tasks.
    fn spawn_session(&self, stream: connection::WsStream, events: TransportEventSink) -> Session {
        let span = tracing::Span::current();
        let (write_half, read_half) = stream.split();
        let state = Arc::new(ConnectionState::default());
        let (shutdown, _) = watch::channel(false);
        let (ready, ready_rx) = watch::channel(false);
        let (control, control_rx) = mpsc::unbounded_channel();
        let (audio_tx, audio_rx) = mpsc::channel(WRITER_AUDIO_QUEUE);
        let (captured_tx, captured_rx) = audio_up::capture_channel();
        let (downlink, down_rx, down) = Downlink::new();
        let transport_events = self.media.attached();
        let tracks = TrackSinks { session: events.clone(), transport: transport_events.clone() };

        let reader = tokio::spawn(
            connection::reader(
                read_half,
                downlink,
                self.config.keepalive.map(|k| k * KEEPALIVE_MISSES),
                state.clone(),
                shutdown.clone(),
                events.clone(),
            )
            .instrument(span.clone()),
        );
        let until_shutdown = |task: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>| {
            let mut stop = shutdown.subscribe();
            let span = span.clone();
            tokio::spawn(
                async move {
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => {}
                        () = task => {}
                    }
                }
                .instrument(span),
            )
        };
        let tasks = vec![
            until_shutdown(Box::pin(connection::writer(
                write_half,
                control_rx,
                audio_rx,
                self.config.keepalive,
                state.clone(),
                shutdown.clone(),
                events.clone(),
            ))),
            until_shutdown(Box::pin(audio_up::capture(
                self.source.clone(),
                self.config.uplink,
                self.mic_enabled.clone(),
                self.media.selected_mic().is_some(),
                captured_tx,
                events.clone(),
            ))),
            until_shutdown(Box::pin(audio_up::uplink(
                captured_rx,
                ready_rx,
                audio_tx,
                self.config.uplink.pre_ready_frames,
                tracks,
            ))),
            until_shutdown(Box::pin(audio_down::run(
                self.sink.clone(),
                down_rx,
                down.clone(),
                events,
                transport_events,
            ))),
        ];
        Session { control, ready, shutdown, down, state, reader, tasks }
    }
}

/// Builds a [`WebSocketTransport`].
///
/// Audio I/O: give a source and a sink ([`audio_source`](Self::audio_source),
/// [`audio_sink`](Self::audio_sink): WAV files, in-memory PCM, a tone, silence, a null sink),
/// pick devices (feature `devices`: [`mic_device`](Self::mic_device),
/// [`speaker_device`](Self::speaker_device)), say that the session has no audio
/// ([`without_audio`](Self::without_audio)), or leave a side unset for its default device
/// (see [`WebSocketTransport`] for what happens without one). The last choice per side wins.
///
/// ```
/// use std::time::Duration;
/// use pipecat_core::Transport;
/// use pipecat_media::{AudioFormat, NullSink, SilenceSource};
/// use pipecat_websocket::WebSocketTransport;
///
/// let transport = WebSocketTransport::builder()
///     .audio_source(SilenceSource::new(AudioFormat::MONO_16K)?)
///     .audio_sink(NullSink::new(AudioFormat::MONO_24K))
///     .input_sample_rate(16_000)
///     .frame_duration(Duration::from_millis(20))
///     .pre_ready_buffer(Duration::from_secs(2))
///     .connect_timeout(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(transport.max_message_size(), 1024 * 1024);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct WebSocketTransportBuilder {
    input: InputChoice,
    output: OutputChoice,
    #[cfg(feature = "devices")]
    devices: Option<pipecat_media::AudioDevices>,
    input_sample_rate: u32,
    frame_duration: Duration,
    pre_ready_buffer: Duration,
    connect_timeout: Duration,
    close_timeout: Duration,
    keepalive: Option<Duration>,
    tls: Option<Arc<rustls::ClientConfig>>,
    mic_enabled: bool,
}

impl std::fmt::Debug for WebSocketTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransportBuilder")
            .field("input", &self.input)
            .field("output", &self.output)
            .field("input_sample_rate", &self.input_sample_rate)
            .field("frame_duration", &self.frame_duration)
            .field("pre_ready_buffer", &self.pre_ready_buffer)
            .field("connect_timeout", &self.connect_timeout)
            .field("keepalive", &self.keepalive)
            .field("mic_enabled", &self.mic_enabled)
            .finish_non_exhaustive()
    }
}

impl Default for WebSocketTransportBuilder {
    fn default() -> Self {
        WebSocketTransportBuilder {
            input: InputChoice::Device(DeviceSelector::Default),
            output: OutputChoice::Device(DeviceSelector::Default),
            #[cfg(feature = "devices")]
            devices: None,
            input_sample_rate: DEFAULT_INPUT_SAMPLE_RATE,
            frame_duration: DEFAULT_FRAME_DURATION,
            pre_ready_buffer: DEFAULT_PRE_READY_BUFFER,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            keepalive: Some(DEFAULT_KEEPALIVE_INTERVAL),
            tls: None,
            mic_enabled: true,
        }
    }
}

impl WebSocketTransportBuilder {
    /// Where the user's audio comes from (any format: it is converted): a
    /// [`WavFileSource`](pipecat_media::WavFileSource), a
    /// [`MemorySource`](pipecat_media::MemorySource) fed by the program, a
    /// [`ToneSource`](pipecat_media::ToneSource), a
    /// [`SilenceSource`](pipecat_media::SilenceSource), or your own. Default: the default
    /// microphone (see [`WebSocketTransport`]).
    ///
    /// The source is kept across sessions; each session reads it from where the last stopped.
    /// [`Transport::update_mic`] can still replace it with a microphone.
    pub fn audio_source(mut self, source: impl AudioSource + 'static) -> Self {
        self.input = InputChoice::Source(Box::new(source));
        self
    }

    /// Where the bot's audio goes (sinks take any format): a
    /// [`WavFileSink`](pipecat_media::WavFileSink), a
    /// [`MemorySink`](pipecat_media::MemorySink) read by the program, a
    /// [`NullSink`](pipecat_media::NullSink), or your own. Default: the default speaker (see
    /// [`WebSocketTransport`]).
    pub fn audio_sink(mut self, sink: impl AudioSink + 'static) -> Self {
        self.output = OutputChoice::Sink(Box::new(sink));
        self
    }

    /// A session without audio: paced silence is sent up (the bot's input clock keeps
    /// running) and the bot's audio is discarded. For text-only sessions, tests and load
    /// generators. Replaces any source, sink or device chosen before.
    pub fn without_audio(mut self) -> Self {
        self.input = InputChoice::Silence;
        self.output = OutputChoice::Discard;
        self
    }

    /// The microphone to use, by id (as listed by [`Transport::available_mics`]) or name (an
    /// exact case-insensitive match, else the first name containing the text), or the
    /// default one. It is opened by [`Transport::init_devices`] or at connect.
    #[cfg(feature = "devices")]
    pub fn mic_device(mut self, selector: DeviceSelector) -> Self {
        self.input = InputChoice::Device(selector);
        self
    }

    /// The speaker to use, by id (as listed by [`Transport::available_speakers`]) or name, or
    /// the default one. It is opened by [`Transport::init_devices`] or at connect.
    #[cfg(feature = "devices")]
    pub fn speaker_device(mut self, selector: DeviceSelector) -> Self {
        self.output = OutputChoice::Device(selector);
        self
    }

    /// The audio devices to list and open microphones with (default: the machine's default
    /// audio host, created when first needed). Share one
    /// [`AudioDevices`](pipecat_media::AudioDevices) with the rest of the program to see the
    /// same microphone states and events. Speakers are opened on a device layer of their own
    /// each (cpal's PulseAudio host cannot run two playback streams on one connection, which
    /// switching speakers needs).
    #[cfg(feature = "devices")]
    pub fn audio_devices(mut self, devices: pipecat_media::AudioDevices) -> Self {
        self.devices = Some(devices);
        self
    }

    /// The bot pipeline's input rate (`audio_in_sample_rate`); pipecat does not resample
    /// WebSocket input. Default 16 000 Hz.
    pub fn input_sample_rate(mut self, hz: u32) -> Self {
        self.input_sample_rate = hz;
        self
    }

    /// Duration of each audio frame sent. Default 20 ms.
    pub fn frame_duration(mut self, duration: Duration) -> Self {
        self.frame_duration = duration;
        self
    }

    /// How much audio to hold back until the bot is ready (older audio is dropped first).
    /// Zero sends nothing captured before `bot-ready`. Default 3 s.
    pub fn pre_ready_buffer(mut self, duration: Duration) -> Self {
        self.pre_ready_buffer = duration;
        self
    }

    /// Time limit of the TCP, TLS and WebSocket handshakes together. Default 15 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long `disconnect` waits for the server to answer the close handshake. Default 1 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// WebSocket pings every `interval`, and the connection counts as lost (a
    /// [`TransportError::ConnectionLost`] event) when nothing at all arrives from the server
    /// for [`KEEPALIVE_MISSES`] intervals: this is how a silently dead network is noticed.
    /// `None` turns both off. Default: every 10 s. (pipecat's server answers pings; uvicorn
    /// also pings every 20 s on its own.)
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval.filter(|i| !i.is_zero());
        self
    }

    /// The TLS configuration for `wss://` (private roots, client certificates...). Default:
    /// [`WebSocketTransport::default_tls_config`].
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Whether the microphone starts enabled. Default `true`.
    pub fn mic_enabled(mut self, enabled: bool) -> Self {
        self.mic_enabled = enabled;
        self
    }

    /// Builds the transport. Devices are not opened here but by
    /// [`Transport::init_devices`] or at connect.
    ///
    /// # Errors
    /// [`BuildError`] for an unusable sample rate or frame duration.
    pub fn build(self) -> Result<WebSocketTransport, BuildError> {
        let format = AudioFormat::new(self.input_sample_rate, 1);
        format.validate().map_err(|_| BuildError::InvalidSampleRate(self.input_sample_rate))?;
        if self.frame_duration > MAX_FRAME_DURATION || format.frames_in(self.frame_duration) == 0 {
            return Err(BuildError::InvalidFrameDuration(self.frame_duration));
        }
        let uplink = UplinkConfig {
            format,
            frame_duration: self.frame_duration,
            pre_ready_frames: usize::try_from(
                self.pre_ready_buffer.as_nanos() / self.frame_duration.as_nanos(),
            )
            .unwrap_or(usize::MAX),
        };
        let tls = match self.tls {
            Some(tls) => tls,
            None => WebSocketTransport::default_tls_config()?,
        };
        let ends = MediaIo::build(
            self.input,
            self.output,
            uplink,
            #[cfg(feature = "devices")]
            self.devices,
        )
        .map_err(|_| BuildError::InvalidSampleRate(self.input_sample_rate))?;
        Ok(WebSocketTransport {
            config: Config {
                uplink,
                connect_timeout: self.connect_timeout,
                close_timeout: self.close_timeout,
                keepalive: self.keepalive,
                tls,
            },
            source: Arc::new(Mutex::new(ends.source)),
            sink: Arc::new(Mutex::new(ends.sink)),
            mic_enabled: Arc::new(AtomicBool::new(self.mic_enabled)),
            media: ends.media,
            session: StdMutex::new(None),
        })
    }
}
