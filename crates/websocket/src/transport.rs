//! [`WebSocketTransport`]: the [`Transport`] of pipecat's WebSocket protocol, and its builder.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex as StdMutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use pipecat_core::media::MediaControl;
use pipecat_core::{
    ApiRequest, ConnectionParams, Transport, TransportError, TransportEvent, TransportEventSink,
};
use pipecat_media::AudioFormat;
use pipecat_media_engine::{
    AudioBuilder, AudioOptions, BuildError, MediaEngine, MediaSession, UplinkSpec, bot_participant,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::codec;
use crate::connection::{self, ConnectionState, Control};
use crate::params::{WebSocketParams, redact_url};
use crate::uplink::PcmWire;

/// The largest RTVI message the transport sends, in UTF-8 bytes (as the JS transport).
pub const MAX_MESSAGE_SIZE: usize = 1024 * 1024;

/// The bot's default input rate: what pipecat pipelines expect unless configured otherwise.
pub const DEFAULT_INPUT_SAMPLE_RATE: u32 = 16_000;

/// The default duration of each audio frame sent to the bot.
pub const DEFAULT_FRAME_DURATION: Duration = Duration::from_millis(20);

/// The default amount of audio held back until the bot is ready.
pub const DEFAULT_PRE_READY_BUFFER: Duration = Duration::from_secs(3);

/// The default time limit of the TCP + TLS + WebSocket handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The default time [`Transport::disconnect`] waits for the close handshake.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The default interval of WebSocket pings; the connection counts as lost when nothing at
/// all arrives for [`KEEPALIVE_MISSES`] intervals.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Keepalive intervals without any data from the server before the connection counts as
/// lost.
pub const KEEPALIVE_MISSES: u32 = 3;

/// RTVI messages queued for the socket writer; a full queue makes `send_message` wait.
const WRITER_MESSAGE_QUEUE: usize = 16;

/// How long the writer may fail to write anything before the connection counts as lost
/// without keepalive (with it: the keepalive interval times [`KEEPALIVE_MISSES`]).
const DEFAULT_WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);

/// Audio queued between the uplink and the socket writer.
const WRITER_AUDIO_QUEUE: usize = 32;

/// The WebSocket transport: pipecat's protobuf `pipecat.Frame`s over one WebSocket, RTVI as
/// JSON inside `MessageFrame`s, and raw PCM16 audio both ways.
///
/// - **Parameters**: [`WebSocketParams`] (`wsUrl` / `ws_url` and an optional `token`, sent as
///   a `token` query parameter), directly or from a start-bot answer.
/// - **TLS**: `wss://` uses rustls with the aws-lc-rs provider and the webpki roots,
///   certificates checked; give your own [`rustls::ClientConfig`] with
///   [`WebSocketTransportBuilder::tls_config`] for private roots. The process-wide rustls
///   provider is never used.
/// - **Audio up**: any [`AudioSource`](pipecat_media::AudioSource), or a microphone (feature `devices`), converted to
///   PCM16 mono at the bot's input rate (16 kHz by default) in frames of 20 ms
///   (configurable). Audio captured before the bot is ready is held back (3 s by default, the
///   oldest dropped first) and sent on `bot-ready`. With the microphone disabled
///   (`enable_mic(false)`) the frames keep flowing as **silence**, like a muted WebRTC
///   track, so the bot's input clock does not stall.
/// - **Audio down**: each bot frame goes to the [`AudioSink`](pipecat_media::AudioSink) (or a speaker) in the rate and
///   channel count it declares (sinks convert); an interruption frame or `bot-interrupted`
///   flushes it at once.
/// - **Devices** (feature `devices`): the shared media engine's ([`Transport::media`]):
///   listing, switching mid-session without dropping the session, media states per device
///   (opened by `init_devices` or at connect), and device errors as
///   [`TransportEvent::DeviceError`]. A program-given source or sink can be replaced by a
///   device mid-session too.
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
/// (speaker), opened by `init_devices` or at the latest by `connect`. When it
/// cannot be opened (no sound card, no permission...), or this crate was built without the
/// `devices` feature, `init_devices` and `connect` fail with [`TransportError::Media`]
/// naming the headless alternatives (and the microphone's media state becomes `error`, with a
/// [`TransportEvent::DeviceError`]). Nothing is sent in silence by surprise: a session that
/// wants no audio says so with [`WebSocketTransportBuilder::without_audio`].
///
/// ```no_run
/// use std::time::Duration;
/// use pipecat_media::{AudioFormat, MemorySink, ToneSource};
/// use pipecat_media_engine::AudioBuilder;
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
    media: MediaEngine,
    session: StdMutex<Option<Session>>,
}

impl std::fmt::Debug for WebSocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("media", &self.media)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Config {
    connect_timeout: Duration,
    close_timeout: Duration,
    keepalive: Option<Duration>,
    tls: Arc<rustls::ClientConfig>,
}

/// One connection and the tasks serving it.
struct Session {
    control: mpsc::Sender<Control>,
    shutdown: watch::Sender<bool>,
    media: Option<MediaSession>,
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
            .map_err(|e| BuildError::Tls(Arc::new(e)))?
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
        self.media.uplink_spec().format
    }

    /// Closes the audio sink (a WAV file gets its final header, an in-memory sink's stream
    /// ends). Call it when done with the transport; the sink may refuse audio afterwards.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the sink fails to close.
    pub async fn close_audio_sink(&self) -> Result<(), TransportError> {
        self.media.close_sink().await
    }

    fn lock_session(&self) -> MutexGuard<'_, Option<Session>> {
        // The session data stays consistent even if a holder panicked: keep going.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops a session: close handshake (bounded), then every task stopped and joined.
    async fn stop(&self, mut session: Session) {
        session.state.disconnecting.store(true, Ordering::Release);
        let mut reader_done = false;
        // A full queue means the writer is stuck (the server stopped reading): no handshake.
        if !session.reader.is_finished() && session.control.try_send(Control::Close).is_ok() {
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
        if let Some(media) = session.media.take() {
            media.stop().await;
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
        // No socket is opened for a session that would have no audio path.
        self.media.prepare().await?;
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
            events.emit(TransportEvent::BotConnected(bot_participant()));
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
        let control = {
            let guard = self.lock_session();
            let session = guard.as_ref().ok_or(TransportError::NotConnected)?;
            if *session.shutdown.borrow() {
                return Err(TransportError::NotConnected);
            }
            session.control.clone()
        };
        // Bounded: a server that stops reading makes this wait (the client's send timeout
        // then answers), instead of queueing without limit.
        control.send(Control::Frame(bytes)).await.map_err(|_| TransportError::NotConnected)
    }

    fn bot_ready(&self) {
        if let Some(media) = self.lock_session().as_ref().and_then(|s| s.media.as_ref()) {
            media.bot_ready();
        }
    }

    fn bot_interrupted(&self) {
        if let Some(media) = self.lock_session().as_ref().and_then(|s| s.media.as_ref()) {
            media.flush_bot_audio();
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

    fn media(&self) -> Option<&dyn MediaControl> {
        Some(&self.media)
    }
}

impl WebSocketTransport {
    /// Splits the socket and starts the reader, writer, capture, uplink and downlink tasks.
    fn spawn_session(&self, stream: connection::WsStream, events: TransportEventSink) -> Session {
        let span = tracing::Span::current();
        let (write_half, read_half) = stream.split();
        let state = Arc::new(ConnectionState::default());
        let (shutdown, _) = watch::channel(false);
        let (control, control_rx) = mpsc::channel(WRITER_MESSAGE_QUEUE);
        let (audio_tx, audio_rx) = mpsc::channel(WRITER_AUDIO_QUEUE);
        let mut media = self.media.start_session(events.clone());
        let bot_audio = media.bot_audio().stream(bot_participant());

        let reader = tokio::spawn(
            connection::reader(
                read_half,
                bot_audio,
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
        let tasks = vec![until_shutdown(Box::pin(connection::writer(
            write_half,
            control_rx,
            audio_rx,
            connection::WriterTiming {
                keepalive: self.config.keepalive,
                stall_limit: self
                    .config
                    .keepalive
                    .map_or(DEFAULT_WRITE_STALL_LIMIT, |k| k * KEEPALIVE_MISSES),
            },
            state.clone(),
            shutdown.clone(),
            events,
        )))];
        let mut ended = shutdown.subscribe();
        media.start_mic(PcmWire(audio_tx), async move {
            let _ = ended.wait_for(|stopped| *stopped).await;
        });
        Session { control, shutdown, media: Some(media), state, reader, tasks }
    }
}

/// Builds a [`WebSocketTransport`].
///
/// Audio I/O comes from [`AudioBuilder`], the same on every transport: give a source and a
/// sink (`audio_source`, `audio_sink`: WAV files, in-memory PCM, a tone, silence, a null
/// sink), pick devices (feature `devices`: `mic_device`, `speaker_device`), say that the
/// session has no audio (`without_audio`: nothing is sent up, bot audio is discarded), or
/// leave a side unset for its default device (see [`WebSocketTransport`] for what happens
/// without one). The last choice per side wins.
///
/// ```
/// use std::time::Duration;
/// use pipecat_core::Transport;
/// use pipecat_media::{AudioFormat, NullSink, SilenceSource};
/// use pipecat_media_engine::AudioBuilder;
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
    audio: AudioOptions,
    input_sample_rate: u32,
    frame_duration: Duration,
    pre_ready_buffer: Duration,
    connect_timeout: Duration,
    close_timeout: Duration,
    keepalive: Option<Duration>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for WebSocketTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransportBuilder")
            .field("audio", &self.audio)
            .field("input_sample_rate", &self.input_sample_rate)
            .field("frame_duration", &self.frame_duration)
            .field("pre_ready_buffer", &self.pre_ready_buffer)
            .field("connect_timeout", &self.connect_timeout)
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

impl Default for WebSocketTransportBuilder {
    fn default() -> Self {
        WebSocketTransportBuilder {
            audio: AudioOptions::default(),
            input_sample_rate: DEFAULT_INPUT_SAMPLE_RATE,
            frame_duration: DEFAULT_FRAME_DURATION,
            pre_ready_buffer: DEFAULT_PRE_READY_BUFFER,
            connect_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            keepalive: Some(DEFAULT_KEEPALIVE_INTERVAL),
            tls: None,
        }
    }
}

impl WebSocketTransportBuilder {
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

    /// Builds the transport. Devices are not opened here but by
    /// `init_devices` (see [`Transport::media`]) or at connect.
    ///
    /// # Errors
    /// [`BuildError`] for an unusable sample rate or frame duration.
    pub fn build(self) -> Result<WebSocketTransport, BuildError> {
        let spec = UplinkSpec {
            format: AudioFormat::new(self.input_sample_rate, 1),
            frame_duration: self.frame_duration,
            hold_until_ready: Some(self.pre_ready_buffer),
        };
        let tls = match self.tls {
            Some(tls) => tls,
            None => WebSocketTransport::default_tls_config()?,
        };
        Ok(WebSocketTransport {
            config: Config {
                connect_timeout: self.connect_timeout,
                close_timeout: self.close_timeout,
                keepalive: self.keepalive,
                tls,
            },
            media: MediaEngine::new(self.audio, spec, "websocket")?,
            session: StdMutex::new(None),
        })
    }
}

impl AudioBuilder for WebSocketTransportBuilder {
    fn audio_options(&mut self) -> &mut AudioOptions {
        &mut self.audio
    }
}
