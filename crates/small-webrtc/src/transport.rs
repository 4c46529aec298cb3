//! [`SmallWebRtcTransport`]: the [`Transport`] implementation and its builder.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_core::{
    ApiRequest, ConnectionParams, DEFAULT_MAX_MESSAGE_SIZE, Transport, TransportError,
    TransportEventSink,
};
use pipecat_media::{AudioSink, AudioSource};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::audio::{OutSlot, SinkSlot, SourceSlot, run_mic};
use crate::keepalive::{MIC_INDEX, PING_PERIOD, track_status};
use crate::params::{IceServer, SmallWebRtcParams};
use crate::peer::PeerOptions;
use crate::recovery::RecoveryConfig;
use crate::session::{Link, Session, SessionConfig, SessionCounters, Shared};
use crate::signalling::{Signaller, SignallingCounters};

/// Default time limit of one signalling request (offer or candidates).
pub const DEFAULT_SIGNALLING_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time limit of the whole connection (offer, answer, data channel open).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`SmallWebRtcTransport::disconnect`](Transport::disconnect) waits for the peer
/// connection to close before it stops waiting.
const DISCONNECT_GRACE: Duration = Duration::from_secs(5);

/// The SmallWebRTC transport: a webrtc-rs peer connection to a Pipecat bot, negotiated over
/// HTTP (offer POST, trickle ICE PATCH), with RTVI on the `chat` data channel and Opus audio.
///
/// Build it with [`SmallWebRtcTransport::builder`] and hand it to the client. A transport
/// carries one session at a time and can run many sessions one after another.
///
/// ```
/// use pipecat_media::{AudioFormat, NullSink, SilenceSource};
/// use pipecat_small_webrtc::{IceServer, SmallWebRtcTransport};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = SmallWebRtcTransport::builder()
///     .audio_source(Box::new(SilenceSource::new(AudioFormat::MONO_16K)?))
///     .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
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
    source: SourceSlot,
    sink: Arc<SinkSlot>,
    mic_enabled: Arc<AtomicBool>,
    max_message_size: Arc<AtomicUsize>,
    signalling: Arc<SignallingCounters>,
    counters: Arc<SessionCounters>,
    /// The running session; a tokio mutex so connect and disconnect do not interleave.
    session: tokio::sync::Mutex<Option<SessionHandle>>,
    /// The running session's shared state, for the fast paths (send, mic toggles).
    current: std::sync::Mutex<Option<Arc<Shared>>>,
    attached: std::sync::Mutex<Option<TransportEventSink>>,
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
}

impl SmallWebRtcTransport {
    /// A builder with the defaults: no audio, trickle ICE, wildcard UDP bind, camera and
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
        }
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
        *self.inner.attached.lock().unwrap_or_else(|p| p.into_inner()) = Some(events);
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
        // One session at a time: a stale one (abandoned connect) goes first.
        self.end_session().await;

        let span = tracing::info_span!("small_webrtc", session = events.generation());
        let shared = Arc::new(Shared {
            events: events.clone(),
            link: tokio::sync::Mutex::new(Link::Connecting),
            pc_id: std::sync::Mutex::new(None),
            mic_enabled: self.inner.mic_enabled.clone(),
            video_transceivers: config.video_transceivers,
            max_message_size: self.inner.max_message_size.clone(),
            counters: self.inner.counters.clone(),
        });
        self.inner.max_message_size.store(DEFAULT_MAX_MESSAGE_SIZE, Ordering::Relaxed);
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
            self.inner.sink.clone(),
            out.clone(),
            stop_rx,
        );
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(session.run(ready_tx).instrument(span.clone()));
        let guard = ConnectGuard(Some(stop_tx.clone()));
        *self.inner.session.lock().await =
            Some(SessionHandle { stop: stop_tx, task: Some(task), helpers: Vec::new() });

        let result = ready_rx.await.unwrap_or(Err(TransportError::NotConnected));
        if let Err(e) = result {
            drop(guard);
            self.end_session().await;
            return Err(e);
        }
        let keepalive =
            tokio::spawn(shared.clone().run_keepalive(PING_PERIOD).instrument(span.clone()));
        let mic = tokio::spawn(
            run_mic(self.inner.source.clone(), out, self.inner.mic_enabled.clone(), events)
                .instrument(span),
        );
        let mut session = self.inner.session.lock().await;
        match session.as_mut() {
            Some(handle) => {
                handle.helpers.push(keepalive);
                handle.helpers.push(mic);
            }
            // Disconnected while we were finishing: leave nothing running.
            None => {
                keepalive.abort();
                mic.abort();
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
        self.inner.sink.flush();
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        self.end_session().await;
        Ok(())
    }

    fn max_message_size(&self) -> usize {
        self.inner.max_message_size.load(Ordering::Relaxed)
    }

    async fn enable_mic(&self, enabled: bool) -> Result<(), TransportError> {
        self.inner.mic_enabled.store(enabled, Ordering::Release);
        if let Some(shared) = self.current() {
            // Not open (recovering): the next channel announces the state when it opens.
            shared.send_if_open(&track_status(MIC_INDEX, enabled)).await;
        }
        Ok(())
    }

    fn is_mic_enabled(&self) -> bool {
        self.inner.mic_enabled.load(Ordering::Acquire)
    }
}

/// Builds a [`SmallWebRtcTransport`].
#[derive(Default)]
pub struct SmallWebRtcTransportBuilder {
    source: Option<Box<dyn AudioSource>>,
    sink: Option<Box<dyn AudioSink>>,
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
    mic_enabled: Option<bool>,
}

impl std::fmt::Debug for SmallWebRtcTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmallWebRtcTransportBuilder")
            .field("audio_source", &self.source.is_some())
            .field("audio_sink", &self.sink.is_some())
            .field("ice_servers", &self.ice_servers)
            .field("udp_addrs", &self.udp_addrs)
            .finish_non_exhaustive()
    }
}

impl SmallWebRtcTransportBuilder {
    /// The microphone: any format (it is converted to 48 kHz mono and encoded as Opus in
    /// 20 ms packets). Paced sources (devices, `paced(true)` generators) set the send rate.
    /// Without one, no audio is sent.
    #[must_use]
    pub fn audio_source(mut self, source: Box<dyn AudioSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Where bot audio goes (decoded to 48 kHz mono; the sink converts to its own format).
    #[must_use]
    pub fn audio_sink(mut self, sink: Box<dyn AudioSink>) -> Self {
        self.sink = Some(sink);
        self
    }

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
    /// [`DEFAULT_CONNECT_TIMEOUT`].
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

    /// Whether the microphone starts enabled (default true).
    #[must_use]
    pub fn mic_enabled(mut self, enabled: bool) -> Self {
        self.mic_enabled = Some(enabled);
        self
    }

    /// Builds the transport.
    ///
    /// # Errors
    /// [`TransportError::Other`] when the default HTTP client cannot be built (no TLS roots).
    pub fn build(self) -> Result<SmallWebRtcTransport, TransportError> {
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .build()
                .map_err(|e| TransportError::other("could not build the HTTP client", e))?,
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
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            recovery: self.recovery.unwrap_or_default(),
            offer_url_template: self.offer_url_template,
        };
        Ok(SmallWebRtcTransport {
            inner: Arc::new(Inner {
                config,
                http,
                source: Arc::new(tokio::sync::Mutex::new(self.source)),
                sink: Arc::new(SinkSlot::new(self.sink)),
                mic_enabled: Arc::new(AtomicBool::new(self.mic_enabled.unwrap_or(true))),
                max_message_size: Arc::new(AtomicUsize::new(DEFAULT_MAX_MESSAGE_SIZE)),
                signalling: Arc::default(),
                counters: Arc::default(),
                session: tokio::sync::Mutex::new(None),
                current: std::sync::Mutex::new(None),
                attached: std::sync::Mutex::new(None),
            }),
        })
    }
}
