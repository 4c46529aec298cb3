//! [`SmallWebRtcTransport`]: the [`Transport`] implementation and its builder.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_core::media::MediaControl;
use pipecat_core::{ApiRequest, ConnectionParams, Transport, TransportError, TransportEventSink};
use pipecat_media_engine::{
    AudioBuilder, AudioOptions, BuildError, MediaEngine, MediaSession, UplinkSpec,
};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::audio::{OpusWire, OutSlot, PACKET_DURATION, SEND_FORMAT};
use crate::connection::{
    FALLBACK_MAX_MESSAGE_SIZE, Link, Session, SessionConfig, SessionCounters, Shared,
};
use crate::keepalive::{MIC_INDEX, PING_PERIOD, track_status};
use crate::params::{IceServer, SmallWebRtcParams};
use crate::peer::PeerOptions;
use crate::recovery::RecoveryConfig;
use crate::signalling::{Signaller, SignallingCounters};
use crate::timeline::ConnectTimeline;

/// Default time limit of one signalling request (offer or candidates).
pub const DEFAULT_SIGNALLING_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time limit of establishing the peer connection (offer, answer, data channel open).
pub const DEFAULT_PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`SmallWebRtcTransport::disconnect`](Transport::disconnect) waits for the peer
/// connection to close before it stops waiting.
const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

/// The SmallWebRTC transport: a webrtc-rs peer connection to a Pipecat bot, negotiated over
/// HTTP (offer POST, trickle ICE PATCH), with RTVI on the `chat` data channel and Opus audio.
///
/// Build it with [`SmallWebRtcTransport::builder`] and hand it to the client. A transport
/// carries one session at a time and can run many sessions one after another.
///
/// - **Devices** (feature `devices`): the shared media engine's ([`Transport::media`]):
///   listing, switching mid-session without dropping the session, media states per device
///   (opened by `init_devices` or at connect), and device errors as
///   `TransportEvent::DeviceError` on the sink given to `attach`. A program-given source or
///   sink can be replaced by a device mid-session too.
/// - **Mute**: `enable_mic(false)` sends silence at the same pace (as a disabled browser
///   track) and announces it with `trackStatus`.
/// - **Tracks**: `TrackStarted` / `TrackStopped` for the local audio (first packet sent;
///   source end or session end) and the bot's.
///
/// **Defaults.** With no source (no sink) given, the transport uses the default microphone
/// (speaker), opened by `init_devices` or at the latest by `connect`. When it
/// cannot be opened (no sound card, no permission...), or this crate was built without the
/// `devices` feature, `init_devices` and `connect` fail with [`TransportError::Media`]
/// naming the headless alternatives (and the media state becomes `error`, with a
/// `TransportEvent::DeviceError`). A session that wants no audio says so with
/// [`SmallWebRtcTransportBuilder::without_audio`].
///
/// ```
/// use pipecat_media::{AudioFormat, NullSink, SilenceSource};
/// use pipecat_small_webrtc::{AudioBuilder, IceServer, SmallWebRtcTransport};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = SmallWebRtcTransport::builder()
///     .audio_source(SilenceSource::new(AudioFormat::MONO_16K)?)
///     .audio_sink(NullSink::new(AudioFormat::MONO_48K))
///     .ice_servers(vec![IceServer::new("stun:stun.l.google.com:19302")])
///     .build()?;
/// assert!(transport.stats().pc_id.is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SmallWebRtcTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SmallWebRtcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmallWebRtcTransport").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    /// The audio, its devices, their states and events.
    media: MediaEngine,
    max_message_size: Arc<AtomicUsize>,
    signalling: Arc<SignallingCounters>,
    counters: Arc<SessionCounters>,
    /// The running session; a tokio mutex so connect and disconnect do not interleave.
    session: tokio::sync::Mutex<Option<SessionHandle>>,
    /// The running session's shared state, for the fast paths (send, mic toggles).
    current: std::sync::Mutex<Option<Arc<Shared>>>,
}

#[derive(Debug, Clone)]
struct Config {
    ice_servers: Vec<IceServer>,
    udp_addrs: Vec<SocketAddr>,
    include_loopback: bool,
    video_transceivers: bool,
    wait_for_gathering: Option<Duration>,
    signalling_timeout: Duration,
    connect_timeout: Duration,
    recovery: RecoveryConfig,
    offer_url_template: Option<String>,
}

/// A running session: its task, its helpers and the switch that stops them.
struct SessionHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
    media: Option<MediaSession>,
}

impl SessionHandle {
    /// Stops everything and waits (boundedly) for the peer connection to close.
    async fn end(mut self) {
        self.stop.send_replace(true);
        for helper in self.helpers.drain(..) {
            helper.abort();
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(DISCONNECT_GRACE, &mut task).await.is_err()
        {
            tracing::warn!("session did not stop in time; aborting it");
            task.abort();
        }
        if let Some(media) = self.media.take() {
            media.stop().await;
        }
    }
}

impl Drop for SessionHandle {
    // Dropped without `end` (the transport itself dropped mid-session): still stop the
    // session, whose task then closes the peer connection.
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for helper in self.helpers.drain(..) {
            helper.abort();
        }
    }
}

/// Stops a session whose `connect` was abandoned half-way (its future dropped).
struct ConnectGuard(Option<watch::Sender<bool>>);

impl ConnectGuard {
    /// The connect finished: the session lives on.
    fn defuse(mut self) {
        self.0 = None;
    }
}

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop.send_replace(true);
        }
    }
}

/// What the transport has done so far, over all its sessions (for diagnostics and tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmallWebRtcStats {
    /// The current peer connection's id, as the server named it.
    pub pc_id: Option<String>,
    /// Offers POSTed (connections, renegotiations and restarts).
    pub offers: u64,
    /// Server-requested renegotiations completed.
    pub renegotiations: u64,
    /// Peer-connection restarts attempted (`restart_pc: true`).
    pub restarts: u64,
    /// Restarts that brought the link back.
    pub reconnections: u64,
    /// Trickle-ICE PATCH requests made.
    pub candidate_patches: u64,
    /// Candidates the server accepted by PATCH.
    pub candidates_sent: u64,
    /// PATCH requests that failed.
    pub patch_failures: u64,
    /// Keepalive pings sent.
    pub pings: u64,
    /// When each step of the newest connection attempt happened (its data channel open).
    pub last_connect: Option<ConnectTimeline>,
}

impl SmallWebRtcTransport {
    /// A builder with the defaults: the default microphone and speaker (feature `devices`;
    /// see [`SmallWebRtcTransport`]), trickle ICE, wildcard UDP bind, camera and
    /// screen transceivers, recovery with 3 attempts.
    pub fn builder() -> SmallWebRtcTransportBuilder {
        SmallWebRtcTransportBuilder::default()
    }

    /// Counters of what the transport did.
    pub fn stats(&self) -> SmallWebRtcStats {
        let s = &self.inner.signalling;
        let c = &self.inner.counters;
        let pc_id = self
            .current()
            .and_then(|shared| shared.pc_id.lock().unwrap_or_else(|p| p.into_inner()).clone());
        SmallWebRtcStats {
            pc_id,
            offers: s.offers.load(Ordering::Relaxed),
            renegotiations: c.renegotiations.load(Ordering::Relaxed),
            restarts: c.restarts.load(Ordering::Relaxed),
            reconnections: c.reconnections.load(Ordering::Relaxed),
            candidate_patches: s.patch_requests.load(Ordering::Relaxed),
            candidates_sent: s.candidates_sent.load(Ordering::Relaxed),
            patch_failures: s.patch_failures.load(Ordering::Relaxed),
            pings: c.pings.load(Ordering::Relaxed),
            last_connect: *c.last_connect.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Closes the audio sink (a WAV file gets its final header, an in-memory sink's stream
    /// ends). Call it when done with the transport, after the last session; the sink may
    /// refuse audio afterwards.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the sink fails to close.
    pub async fn close_audio_sink(&self) -> Result<(), TransportError> {
        self.inner.media.close_sink().await
    }

    fn current(&self) -> Option<Arc<Shared>> {
        self.inner.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_current(&self, shared: Option<Arc<Shared>>) {
        *self.inner.current.lock().unwrap_or_else(|p| p.into_inner()) = shared;
    }

    async fn end_session(&self) {
        let handle = {
            let mut session = self.inner.session.lock().await;
            self.set_current(None);
            session.take()
        };
        if let Some(handle) = handle {
            handle.end().await;
        }
    }
}

#[async_trait]
impl Transport for SmallWebRtcTransport {
    fn name(&self) -> &'static str {
        "small-webrtc"
    }

    fn attach(&self, events: TransportEventSink) {
        self.inner.media.attach(events);
    }

    fn map_start_response(
        &self,
        response: Value,
        start_request: &ApiRequest,
    ) -> Result<ConnectionParams, TransportError> {
        let mut params = ConnectionParams::from_json(response)?;
        params.start_request = Some(start_request.clone());
        // Fail early (with the start answer at hand) when no offer URL can be made of it.
        SmallWebRtcParams::from_connection_params(&params)?
            .resolve(self.inner.config.offer_url_template.as_deref())?;
        Ok(params)
    }

    async fn connect(
        &self,
        params: ConnectionParams,
        events: TransportEventSink,
    ) -> Result<(), TransportError> {
        let config = &self.inner.config;
        let params = SmallWebRtcParams::from_connection_params(&params)?;
        let offer = params.resolve(config.offer_url_template.as_deref())?;
        let ice_servers = params.ice_servers.clone().unwrap_or_else(|| config.ice_servers.clone());
        // No peer connection is made for a session that would have no audio path.
        self.inner.media.prepare().await?;
        // One session at a time: a stale one (abandoned connect) goes first.
        self.end_session().await;

        let span = tracing::info_span!("small_webrtc", session = events.generation());
        let mut media = span.in_scope(|| self.inner.media.start_session(events.clone()));
        let shared = Arc::new(Shared {
            events: events.clone(),
            link: tokio::sync::Mutex::new(Link::Connecting),
            pc_id: std::sync::Mutex::new(None),
            mic_enabled: self.inner.media.watch_mic(),
            bot_audio: media.bot_audio().clone(),
            video_transceivers: config.video_transceivers,
            max_message_size: self.inner.max_message_size.clone(),
            counters: self.inner.counters.clone(),
            closed: watch::channel(false).0,
        });
        // Every change of the switch from here on is announced (the task below may first run
        // after one: enable_mic right after connect). Before the channel opens, opening it
        // announces the state of that moment.
        let mut mic = shared.mic_enabled.clone();
        mic.mark_unchanged();
        self.inner.max_message_size.store(FALLBACK_MAX_MESSAGE_SIZE, Ordering::Relaxed);
        let signaller = Signaller::new(
            self.inner.http.clone(),
            offer,
            config.signalling_timeout,
            self.inner.signalling.clone(),
        );
        let out = Arc::new(OutSlot::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let session = Session::new(
            SessionConfig {
                peer: PeerOptions {
                    ice_servers,
                    udp_addrs: config.udp_addrs.clone(),
                    include_loopback: config.include_loopback,
                    video_transceivers: config.video_transceivers,
                },
                wait_for_gathering: config.wait_for_gathering,
                connect_timeout: config.connect_timeout,
                recovery: config.recovery.clone(),
            },
            shared.clone(),
            signaller,
            media.bot_audio().clone(),
            out.clone(),
            stop_rx,
        );
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(session.run(ready_tx).instrument(span.clone()));
        let guard = ConnectGuard(Some(stop_tx.clone()));
        let wire = OpusWire::new(out)
            .map_err(|e| TransportError::media("the Opus encoder could not be created", e))?;
        *self.inner.session.lock().await = Some(SessionHandle {
            stop: stop_tx,
            task: Some(task),
            helpers: Vec::new(),
            media: None,
        });

        let result = ready_rx.await.unwrap_or(Err(TransportError::NotConnected));
        if let Err(e) = result {
            drop(guard);
            self.end_session().await;
            return Err(e);
        }
        let keepalive =
            tokio::spawn(shared.clone().run_keepalive(PING_PERIOD).instrument(span.clone()));
        let announcer = tokio::spawn(announce_mic(shared.clone(), mic).instrument(span.clone()));
        span.in_scope(|| media.start_mic(wire, shared.link_closed()));
        let mut session = self.inner.session.lock().await;
        match session.as_mut() {
            Some(handle) => {
                handle.helpers.push(keepalive);
                handle.helpers.push(announcer);
                handle.media = Some(media);
            }
            // Disconnected while we were finishing: leave nothing running.
            None => {
                keepalive.abort();
                announcer.abort();
                return Err(TransportError::NotConnected);
            }
        }
        // Under the session lock, so a concurrent disconnect cannot leave it behind.
        self.set_current(Some(shared));
        drop(session);
        guard.defuse();
        Ok(())
    }

    async fn send_message(&self, message: String) -> Result<(), TransportError> {
        let max = self.max_message_size();
        if message.len() > max {
            return Err(TransportError::MessageTooLarge { size: message.len(), max });
        }
        match self.current() {
            Some(shared) => shared.send(message).await,
            None => Err(TransportError::NotConnected),
        }
    }

    fn bot_interrupted(&self) {
        if let Some(shared) = self.current() {
            shared.bot_audio.flush();
        }
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        self.end_session().await;
        Ok(())
    }

    fn max_message_size(&self) -> usize {
        self.inner.max_message_size.load(Ordering::Relaxed)
    }

    fn media(&self) -> Option<&dyn MediaControl> {
        Some(&self.inner.media)
    }
}

/// Announces every change of the microphone switch to the bot (`trackStatus`), for the
/// session's life. Not open (recovering): the next channel announces the state when it opens.
async fn announce_mic(shared: Arc<Shared>, mut mic: watch::Receiver<bool>) {
    while mic.changed().await.is_ok() {
        let enabled = *mic.borrow_and_update();
        shared.send_if_open(&track_status(MIC_INDEX, enabled)).await;
    }
}

/// Builds a [`SmallWebRtcTransport`].
///
/// Audio I/O comes from [`AudioBuilder`], the same on every transport: give a source and a
/// sink (`audio_source`, `audio_sink`: WAV files, in-memory PCM, a tone, silence, a null
/// sink; any format, converted to 48 kHz mono and encoded as Opus in 20 ms packets), pick
/// devices (feature `devices`: `mic_device`, `speaker_device`), say that the session has no
/// audio (`without_audio`: the audio track stays idle, which WebRTC bots accept, and bot
/// audio is discarded), or leave a side unset for its default device (see
/// [`SmallWebRtcTransport`] for what happens without one). The last choice per side wins.
#[derive(Default)]
pub struct SmallWebRtcTransportBuilder {
    audio: AudioOptions,
    ice_servers: Vec<IceServer>,
    udp_addrs: Option<Vec<SocketAddr>>,
    include_loopback: bool,
    video_transceivers: Option<bool>,
    wait_for_gathering: Option<Duration>,
    signalling_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    recovery: Option<RecoveryConfig>,
    offer_url_template: Option<String>,
    http: Option<reqwest::Client>,
}

impl std::fmt::Debug for SmallWebRtcTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmallWebRtcTransportBuilder")
            .field("audio", &self.audio)
            .field("ice_servers", &self.ice_servers)
            .field("udp_addrs", &self.udp_addrs)
            .finish_non_exhaustive()
    }
}

impl SmallWebRtcTransportBuilder {
    /// ICE servers used when the connection parameters bring none.
    #[must_use]
    pub fn ice_servers(mut self, servers: Vec<IceServer>) -> Self {
        self.ice_servers = servers;
        self
    }

    /// Local UDP addresses to bind. Default `0.0.0.0:0`: one socket per non-loopback
    /// interface (webrtc-rs skips loopback for wildcards).
    #[must_use]
    pub fn udp_addrs(mut self, addrs: Vec<SocketAddr>) -> Self {
        self.udp_addrs = Some(addrs);
        self
    }

    /// Also offer loopback candidates (default off; on for a bot on the same machine).
    #[must_use]
    pub fn include_loopback_candidates(mut self, include: bool) -> Self {
        self.include_loopback = include;
        self
    }

    /// Bind 127.0.0.1 only and offer it: for a bot on this machine (tests, local demos).
    #[must_use]
    pub fn loopback_only(self) -> Self {
        self.udp_addrs(vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))])
            .include_loopback_candidates(true)
    }

    /// Offer the camera and screen video transceivers after the audio one (default on, as
    /// the JS client does; receive-only, since this SDK sends no video).
    #[must_use]
    pub fn video_transceivers(mut self, enabled: bool) -> Self {
        self.video_transceivers = Some(enabled);
        self
    }

    /// Send the offer only after ICE gathering completed (at most `limit`), with every
    /// candidate inside, instead of trickling candidates by PATCH (the default).
    #[must_use]
    pub fn wait_for_ice_gathering(mut self, limit: Duration) -> Self {
        self.wait_for_gathering = Some(limit);
        self
    }

    /// Time limit of each signalling request. Default [`DEFAULT_SIGNALLING_TIMEOUT`]; a
    /// `webrtcRequestParams` timeout takes precedence for the offer endpoint.
    #[must_use]
    pub fn signalling_timeout(mut self, timeout: Duration) -> Self {
        self.signalling_timeout = Some(timeout);
        self
    }

    /// Time limit of the whole connection: offer, answer, data channel open. Default
    /// [`DEFAULT_PEER_CONNECT_TIMEOUT`].
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Peer-connection recovery settings (default: 3 attempts, 5 s disconnected grace).
    #[must_use]
    pub fn recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// Offer URL template with `:sessionId`, used for `sessionId` answers before the
    /// `/start` → `/sessions/{id}/api/offer` rule.
    #[must_use]
    pub fn offer_url_template(mut self, template: impl Into<String>) -> Self {
        self.offer_url_template = Some(template.into());
        self
    }

    /// The HTTP client for signalling (default: reqwest with rustls and aws-lc-rs).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the transport.
    ///
    /// Devices are not opened here but by `init_devices` (see [`Transport::media`]) or at connect.
    ///
    /// # Errors
    /// [`BuildError::HttpClient`] when the default HTTP client cannot be built (no TLS roots).
    pub fn build(self) -> Result<SmallWebRtcTransport, BuildError> {
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .build()
                .map_err(|e| BuildError::HttpClient(Arc::new(e)))?,
        };
        let config = Config {
            ice_servers: self.ice_servers,
            udp_addrs: self
                .udp_addrs
                .unwrap_or_else(|| vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))]),
            include_loopback: self.include_loopback,
            video_transceivers: self.video_transceivers.unwrap_or(true),
            wait_for_gathering: self.wait_for_gathering,
            signalling_timeout: self.signalling_timeout.unwrap_or(DEFAULT_SIGNALLING_TIMEOUT),
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_PEER_CONNECT_TIMEOUT),
            recovery: self.recovery.unwrap_or_default(),
            offer_url_template: self.offer_url_template,
        };
        let spec = UplinkSpec {
            format: SEND_FORMAT,
            frame_duration: PACKET_DURATION,
            // WebRTC bots take audio as soon as the track runs.
            hold_until_ready: None,
        };
        Ok(SmallWebRtcTransport {
            inner: Arc::new(Inner {
                config,
                http,
                media: MediaEngine::new(self.audio, spec, "small-webrtc")?,
                max_message_size: Arc::new(AtomicUsize::new(FALLBACK_MAX_MESSAGE_SIZE)),
                signalling: Arc::default(),
                counters: Arc::default(),
                session: tokio::sync::Mutex::new(None),
                current: std::sync::Mutex::new(None),
            }),
        })
    }
}

impl AudioBuilder for SmallWebRtcTransportBuilder {
    fn audio_options(&mut self) -> &mut AudioOptions {
        &mut self.audio
    }
}
