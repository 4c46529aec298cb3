//! [`SmallWebRtcTransport`]: the [`Transport`] implementation and its builder.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_core::media::{MediaDeviceInfo, MediaState};
use pipecat_core::{
    ApiRequest, ConnectionParams, DEFAULT_MAX_MESSAGE_SIZE, Transport, TransportError,
    TransportEventSink,
};
use pipecat_media::{AudioSink, AudioSource, DeviceSelector};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::audio::{OutSlot, PACKET_DURATION, SEND_FORMAT, SinkSlot, SourceSlot, run_mic};
use crate::keepalive::{MIC_INDEX, PING_PERIOD, track_status};
use crate::media_io::{InputChoice, MediaIo, OutputChoice, Side, UplinkConfig};
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
/// - **Devices** (feature `devices`): listing ([`Transport::available_mics`],
///   [`Transport::available_speakers`]), switching mid-session without dropping the session
///   ([`Transport::update_mic`], [`Transport::update_speaker`], by the ids listed), media
///   states per device ([`Transport::media_state`]; opened by [`Transport::init_devices`] or
///   at connect), and device errors as `TransportEvent::DeviceError` on the sink given to
///   `attach`. A program-given source or sink can be replaced by a device mid-session too.
/// - **Tracks**: `TrackStarted` / `TrackStopped` for the local audio (first packet sent;
///   source end or session end) and the bot's.
///
/// **Defaults.** With no source (no sink) given, the transport uses the default microphone
/// (speaker), opened by [`Transport::init_devices`] or at the latest by `connect`. When it
/// cannot be opened (no sound card, no permission...), or this crate was built without the
/// `devices` feature, `init_devices` and `connect` fail with [`TransportError::Media`]
/// naming the headless alternatives (and the media state becomes `error`, with a
/// `TransportEvent::DeviceError`). A session that wants no audio says so with
/// [`SmallWebRtcTransportBuilder::without_audio`].
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
    /// The devices behind the source and sink, their states and events.
    media: MediaIo,
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
        }
    }

    /// Closes the audio sink (a WAV file gets its final header, an in-memory sink's stream
    /// ends). Call it when done with the transport, after the last session; the sink may
    /// refuse audio afterwards.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the sink fails to close.
    pub async fn close_audio_sink(&self) -> Result<(), TransportError> {
        self.inner.sink.close().await.map_err(|e| TransportError::Media(e.to_string()))
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
        self.inner.media.attach(events.clone());
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
        if !self.inner.media.is_ready() {
            // No peer connection is made for a session that would have no audio path.
            self.inner.media.init(false).await?;
        }
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
            run_mic(
                self.inner.source.clone(),
                out,
                self.inner.mic_enabled.clone(),
                events,
                self.inner.media.attached(),
            )
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

    /// Opens what is not open yet: a program-given source or sink becomes `granted`, a
    /// device (the default ones unless picked) is opened, reporting `initializing`, then
    /// `granted` or `error` per device, and the device lists. `connect` does this too.
    ///
    /// # Errors
    /// [`TransportError::Media`] when a device cannot be opened, naming the headless
    /// alternatives for the default ones.
    async fn init_devices(&self) -> Result<(), TransportError> {
        self.inner.media.init(true).await
    }

    /// The microphones of this machine (feature `devices`). Blocking: a few milliseconds, a
    /// server round trip with PulseAudio.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the audio system cannot list devices;
    /// [`TransportError::Unsupported`] without the `devices` feature.
    fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        self.inner.media.available(Side::Mic)
    }

    /// The speakers of this machine (feature `devices`); blocking, as
    /// [`available_mics`](Transport::available_mics).
    ///
    /// # Errors
    /// As [`available_mics`](Transport::available_mics).
    fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        self.inner.media.available(Side::Speaker)
    }

    /// Opens the microphone `device_id` (an id from
    /// [`available_mics`](Transport::available_mics)) and sends from it from the next frame
    /// on, mid-session too; replaces a program-given source as well. On failure the current
    /// source stays in use and a [`TransportEvent::DeviceError`](pipecat_core::TransportEvent::DeviceError)
    /// is reported too.
    ///
    /// # Errors
    /// [`TransportError::Media`] when no such device exists or it cannot be opened;
    /// [`TransportError::Unsupported`] without the `devices` feature.
    async fn update_mic(&self, device_id: &str) -> Result<(), TransportError> {
        self.inner.media.update(Side::Mic, device_id).await
    }

    /// Opens the speaker `device_id` and plays the bot from the next frame on, mid-session
    /// too.
    ///
    /// # Errors
    /// As [`update_mic`](Transport::update_mic).
    async fn update_speaker(&self, device_id: &str) -> Result<(), TransportError> {
        self.inner.media.update(Side::Speaker, device_id).await
    }

    /// The microphone device in use; `None` for a program-given source (or before it opens).
    fn selected_mic(&self) -> Option<MediaDeviceInfo> {
        self.inner.media.selected_mic()
    }

    /// The speaker device in use; `None` for a program-given sink (or before it opens).
    fn selected_speaker(&self) -> Option<MediaDeviceInfo> {
        self.inner.media.selected_speaker()
    }

    /// The states of the microphone and speaker (the camera is always `uninitialized`).
    fn media_state(&self) -> MediaState {
        self.inner.media.media_state()
    }
}

/// Builds a [`SmallWebRtcTransport`].
///
/// Audio I/O: give a source and a sink ([`audio_source`](Self::audio_source),
/// [`audio_sink`](Self::audio_sink): WAV files, in-memory PCM, a tone, silence, a null sink),
/// pick devices (feature `devices`: [`mic_device`](Self::mic_device),
/// [`speaker_device`](Self::speaker_device)), say that the session has no audio
/// ([`without_audio`](Self::without_audio)), or leave a side unset for its default device
/// (see [`SmallWebRtcTransport`] for what happens without one). The last choice per side
/// wins.
pub struct SmallWebRtcTransportBuilder {
    input: InputChoice,
    output: OutputChoice,
    #[cfg(feature = "devices")]
    devices: Option<pipecat_media::AudioDevices>,
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
            .field("input", &self.input)
            .field("output", &self.output)
            .field("ice_servers", &self.ice_servers)
            .field("udp_addrs", &self.udp_addrs)
            .finish_non_exhaustive()
    }
}

impl Default for SmallWebRtcTransportBuilder {
    fn default() -> Self {
        SmallWebRtcTransportBuilder {
            input: InputChoice::Device(DeviceSelector::Default),
            output: OutputChoice::Device(DeviceSelector::Default),
            #[cfg(feature = "devices")]
            devices: None,
            ice_servers: Vec::new(),
            udp_addrs: None,
            include_loopback: false,
            video_transceivers: None,
            wait_for_gathering: None,
            signalling_timeout: None,
            connect_timeout: None,
            recovery: None,
            offer_url_template: None,
            http: None,
            mic_enabled: None,
        }
    }
}

impl SmallWebRtcTransportBuilder {
    /// The microphone side: any source in any format (it is converted to 48 kHz mono and
    /// encoded as Opus in 20 ms packets). Paced sources (devices, `paced(true)` generators)
    /// set the send rate. Default: the default microphone (see [`SmallWebRtcTransport`]).
    ///
    /// The source is kept across sessions; [`Transport::update_mic`] can still replace it
    /// with a microphone.
    #[must_use]
    pub fn audio_source(mut self, source: Box<dyn AudioSource>) -> Self {
        self.input = InputChoice::Source(source);
        self
    }

    /// Where bot audio goes (decoded to 48 kHz mono; the sink converts to its own format).
    /// Default: the default speaker (see [`SmallWebRtcTransport`]).
    #[must_use]
    pub fn audio_sink(mut self, sink: Box<dyn AudioSink>) -> Self {
        self.output = OutputChoice::Sink(sink);
        self
    }

    /// A session without audio: nothing is sent on the audio track (it stays idle, which
    /// WebRTC bots accept) and the bot's audio is discarded. For text-only sessions, tests
    /// and load generators. Replaces any source, sink or device chosen before.
    #[must_use]
    pub fn without_audio(mut self) -> Self {
        self.input = InputChoice::Silence;
        self.output = OutputChoice::Discard;
        self
    }

    /// The microphone to use, by id (as listed by [`Transport::available_mics`]) or name (an
    /// exact case-insensitive match, else the first name containing the text), or the
    /// default one. It is opened by [`Transport::init_devices`] or at connect.
    #[cfg(feature = "devices")]
    #[must_use]
    pub fn mic_device(mut self, selector: DeviceSelector) -> Self {
        self.input = InputChoice::Device(selector);
        self
    }

    /// The speaker to use, by id (as listed by [`Transport::available_speakers`]) or name,
    /// or the default one. It is opened by [`Transport::init_devices`] or at connect.
    #[cfg(feature = "devices")]
    #[must_use]
    pub fn speaker_device(mut self, selector: DeviceSelector) -> Self {
        self.output = OutputChoice::Device(selector);
        self
    }

    /// The audio devices to list and open microphones with (default: the machine's default
    /// audio host, created when first needed). Speakers are opened on a device layer of
    /// their own each (cpal's PulseAudio host cannot run two playback streams on one
    /// connection, which switching speakers needs).
    #[cfg(feature = "devices")]
    #[must_use]
    pub fn audio_devices(mut self, devices: pipecat_media::AudioDevices) -> Self {
        self.devices = Some(devices);
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
    /// Devices are not opened here but by [`Transport::init_devices`] or at connect.
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
        let ends = MediaIo::build(
            self.input,
            self.output,
            UplinkConfig { format: SEND_FORMAT, frame_duration: PACKET_DURATION },
            #[cfg(feature = "devices")]
            self.devices,
        )
        .map_err(|e| TransportError::other("could not set up the audio path", e))?;
        Ok(SmallWebRtcTransport {
            inner: Arc::new(Inner {
                config,
                http,
                source: Arc::new(tokio::sync::Mutex::new(Some(ends.source))),
                sink: Arc::new(SinkSlot::new(Some(ends.sink))),
                mic_enabled: Arc::new(AtomicBool::new(self.mic_enabled.unwrap_or(true))),
                media: ends.media,
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
