//! One webrtc-rs peer connection laid out as the SmallWebRTC server expects: audio
//! transceiver first (sendrecv, Opus), then camera video, then screen; the client-created
//! ordered `chat` data channel. Recovery builds a new [`Peer`] for the same session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipecat_core::media::Participant;
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media_engine::BotAudio;
use rtc::data_channel::{RTCDataChannelInit, RTCDataChannelState};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceConnectionState, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::audio::{OutTrack, drain_track, run_remote_audio};
use crate::error::SmallWebRtcError;
use crate::keepalive::{Inbound, ServerSignal, classify};
use crate::params::IceServer;
use crate::signalling::CandidateJson;

/// The data channel's label (the server accepts any; the JS client uses this one).
pub(crate) const CHANNEL_LABEL: &str = "chat";

/// The largest message we offer to receive, and so the most the negotiation can give us:
/// aiortc advertises 256 KiB.
const LOCAL_MAX_MESSAGE_SIZE: u32 = SctpMaxMessageSize::MAX_MESSAGE_SIZE;

/// Opus as webrtc-rs registers it by default (the track's codec must match a registered one).
fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// How to build peer connections.
#[derive(Debug, Clone)]
pub(crate) struct PeerOptions {
    pub(crate) ice_servers: Vec<IceServer>,
    pub(crate) udp_addrs: Vec<SocketAddr>,
    pub(crate) include_loopback: bool,
    pub(crate) video_transceivers: bool,
}

/// What a peer connection reports to its session. Each carries the peer's generation, so
/// late events of a replaced peer are told apart.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    Ice(u64, RTCIceConnectionState),
    State(u64, RTCPeerConnectionState),
    ChannelOpen(u64),
    ChannelClosed(u64),
    Signal(u64, ServerSignal),
}

/// Per-peer context the webrtc-rs callbacks need.
struct Handler {
    generation: u64,
    events: mpsc::UnboundedSender<PeerEvent>,
    candidates: std::sync::Mutex<Option<mpsc::UnboundedSender<CandidateJson>>>,
    gathered: watch::Sender<bool>,
    /// Set once ICE is connected: DTLS, SCTP and the data channel come next, see
    /// [`flush_channel_open`].
    ice_up: watch::Sender<bool>,
    media: MediaContext,
    tasks: Arc<TaskList>,
}

/// Where received tracks go.
#[derive(Clone)]
pub(crate) struct MediaContext {
    pub(crate) bot_audio: BotAudio,
    pub(crate) events: TransportEventSink,
    pub(crate) bot: Participant,
}

/// Tasks a peer started; all stop with it.
#[derive(Default)]
pub(crate) struct TaskList(std::sync::Mutex<Vec<JoinHandle<()>>>);

impl TaskList {
    pub(crate) fn push(&self, task: JoinHandle<()>) {
        let mut tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub(crate) fn abort_all(&self) {
        for task in self.0.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

// webrtc-rs calls these on its driver task: only hand things over, never wait here.
#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let Ok(init) = event.candidate.to_json() else { return };
        if init.candidate.is_empty() {
            return;
        }
        // Everything is bundled on the first media section (mid "0"), so candidates go there.
        let candidate =
            CandidateJson { candidate: init.candidate, sdp_mid: "0".into(), sdp_mline_index: 0 };
        if let Some(tx) = self.candidates.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(candidate);
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
            // No more candidates: let the trickle task send its last batch and end.
            self.candidates.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!(generation = self.generation, %state, "ICE connection state");
        if matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed) {
            self.ice_up.send_replace(true);
        }
        let _ = self.events.send(PeerEvent::Ice(self.generation, state));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(generation = self.generation, %state, "peer connection state");
        let _ = self.events.send(PeerEvent::State(self.generation, state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let media = self.media.clone();
        self.tasks.push(tokio::spawn(async move {
            match track.kind().await {
                RtpCodecKind::Audio => {
                    run_remote_audio(track, media.bot_audio, media.events, media.bot).await;
                }
                _ => drain_track(track, media.events, media.bot).await,
            }
        }));
    }
}

/// What a peer's setup waits on, set by its [`Handler`].
struct Waits {
    gathered: watch::Receiver<bool>,
    ice_up: watch::Receiver<bool>,
}

/// How often, and for how long after ICE connects, [`flush_channel_open`] wakes the driver.
const OPEN_FLUSH_PERIOD: Duration = Duration::from_millis(1);
const OPEN_FLUSH_LIMIT: Duration = Duration::from_millis(250);

/// Gets the data channel's DCEP `DATA_CHANNEL_OPEN` onto the wire as soon as SCTP is up.
///
/// webrtc-rs 0.21.1 queues it while handling the SCTP handshake's completion, after its
/// driver loop has flushed for that pass, and nothing wakes the driver again until a packet
/// arrives or a timer fires: against pipecat's aiortc the open message waited for the bot's
/// first audio packet, about 20 ms. Any call that changes data-channel state wakes the
/// driver, and setting the low-water mark to its current value changes nothing else. So
/// from ICE connected (which also covers what the same pattern could hold back on the way:
/// a DTLS or SCTP first flight of ours) until the channel opens, a few milliseconds on
/// loopback, wake it every millisecond, for at most `OPEN_FLUSH_LIMIT`. Measured on
/// loopback: see docs/benchmarks.md.
async fn flush_channel_open(channel: Arc<dyn DataChannel>, mut ice_up: watch::Receiver<bool>) {
    if ice_up.wait_for(|up| *up).await.is_err() {
        return;
    }
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(OPEN_FLUSH_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while started.elapsed() < OPEN_FLUSH_LIMIT {
        tick.tick().await;
        match channel.ready_state().await {
            Ok(RTCDataChannelState::Connecting) => {}
            _ => return,
        }
        let Ok(threshold) = channel.buffered_amount_low_threshold().await else { return };
        if channel.set_buffered_amount_low_threshold(threshold).await.is_err() {
            return;
        }
    }
}

/// A built peer connection and what belongs to it.
pub(crate) struct Peer {
    pc: Arc<dyn PeerConnection>,
    pub(crate) channel: Arc<dyn DataChannel>,
    audio: Arc<TrackLocalStaticSample>,
    audio_ssrc: u32,
    audio_sender: Option<Arc<dyn RtpSender>>,
    gathered: watch::Receiver<bool>,
    tasks: Arc<TaskList>,
    closed: AtomicBool,
}

impl Peer {
    /// Builds the peer connection, its transceivers and data channel, and starts reading the
    /// channel. Gathered candidates go to `candidates`.
    pub(crate) async fn build(
        generation: u64,
        options: &PeerOptions,
        events: mpsc::UnboundedSender<PeerEvent>,
        candidates: mpsc::UnboundedSender<CandidateJson>,
        media: MediaContext,
    ) -> Result<Peer, SmallWebRtcError> {
        let mut media_engine = MediaEngine::default();
        // Without codecs the audio transceiver is rejected in the offer.
        media_engine
            .register_default_codecs()
            .map_err(|e| SmallWebRtcError::webrtc("registering codecs", e))?;
        let registry = register_default_interceptors(Default::default(), &mut media_engine)
            .map_err(|e| SmallWebRtcError::webrtc("registering interceptors", e))?;
        // No mDNS: the offerer needs none (pipecat's aiortc answers with IP candidates, and
        // ours carry IPs too), and opening its multicast socket fails outright where there is
        // no multicast route (a loopback-only namespace or container: `No such device`).
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_include_loopback_candidate(options.include_loopback)
            .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(LOCAL_MAX_MESSAGE_SIZE))
            .build();
        let ice_servers = options
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let config = RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build();
        let (gathered_tx, gathered) = watch::channel(false);
        let (ice_up_tx, ice_up) = watch::channel(false);
        let tasks = Arc::new(TaskList::default());
        let handler = Arc::new(Handler {
            generation,
            events: events.clone(),
            candidates: std::sync::Mutex::new(Some(candidates)),
            gathered: gathered_tx,
            ice_up: ice_up_tx,
            media: media.clone(),
            tasks: tasks.clone(),
        });
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(handler)
            .with_udp_addrs(options.udp_addrs.clone())
            .build()
            .await
            .map_err(|e| SmallWebRtcError::webrtc("building the peer connection", e))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        // From here on the peer owns `pc` and closes it on every path.
        let waits = Waits { gathered, ice_up };
        match Self::lay_out(generation, pc.clone(), options, waits, tasks.clone(), events, media)
            .await
        {
            Ok(peer) => Ok(peer),
            Err(e) => {
                tasks.abort_all();
                let _ = pc.close().await;
                Err(e)
            }
        }
    }

    async fn lay_out(
        generation: u64,
        pc: Arc<dyn PeerConnection>,
        options: &PeerOptions,
        waits: Waits,
        tasks: Arc<TaskList>,
        events: mpsc::UnboundedSender<PeerEvent>,
        media: MediaContext,
    ) -> Result<Peer, SmallWebRtcError> {
        let audio_ssrc: u32 = rand_ssrc();
        let track = MediaStreamTrack::new(
            format!("pipecat-{generation}"),
            format!("mic-{generation}"),
            "microphone".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(audio_ssrc),
                    ..Default::default()
                },
                codec: opus_codec(),
                ..Default::default()
            }],
        );
        let audio = Arc::new(
            TrackLocalStaticSample::new(Instant::now(), track)
                .map_err(|e| SmallWebRtcError::webrtc("creating the audio track", e))?,
        );
        // Transceiver order is what the server reads by index: 0 mic, 1 camera, 2 screen.
        let audio_transceiver = pc
            .add_transceiver_from_track(
                audio.clone() as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendrecv,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await
            .map_err(|e| SmallWebRtcError::webrtc("adding the audio transceiver", e))?;
        if options.video_transceivers {
            // No local camera or screen: receive-only, so the bot can still send video.
            for what in ["adding the camera transceiver", "adding the screen transceiver"] {
                pc.add_transceiver_from_kind(
                    RtpCodecKind::Video,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .await
                .map_err(|e| SmallWebRtcError::webrtc(what, e))?;
            }
        }
        let channel = pc
            .create_data_channel(
                CHANNEL_LABEL,
                Some(RTCDataChannelInit { ordered: true, ..Default::default() }),
            )
            .await
            .map_err(|e| SmallWebRtcError::webrtc("creating the data channel", e))?;
        let audio_sender = audio_transceiver.sender().await.ok().flatten();
        tasks.push(tokio::spawn(read_channel(generation, channel.clone(), events, media.events)));
        tasks.push(tokio::spawn(flush_channel_open(channel.clone(), waits.ice_up)));
        Ok(Peer {
            pc,
            channel,
            audio,
            audio_ssrc,
            audio_sender,
            gathered: waits.gathered,
            tasks,
            closed: AtomicBool::new(false),
        })
    }

    /// Runs `task` for as long as this peer lives.
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Creates an offer and applies it locally. With `wait_gathering`, waits (at most that
    /// long) for ICE gathering so the offer carries every candidate; otherwise candidates are
    /// stripped from it, since they are trickled. Returns the SDP to send.
    pub(crate) async fn make_offer(
        &self,
        wait_gathering: Option<Duration>,
    ) -> Result<String, SmallWebRtcError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| SmallWebRtcError::webrtc("creating the offer", e))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| SmallWebRtcError::webrtc("applying the offer", e))?;
        match wait_gathering {
            Some(limit) => {
                let mut gathered = self.gathered.clone();
                if tokio::time::timeout(limit, gathered.wait_for(|done| *done)).await.is_err() {
                    tracing::debug!(?limit, "ICE gathering not complete; sending what we have");
                }
                let local = self.pc.local_description().await.ok_or_else(|| {
                    SmallWebRtcError::webrtc("reading the offer", "no local description")
                })?;
                Ok(local.sdp)
            }
            None => {
                let local = self.pc.local_description().await.ok_or_else(|| {
                    SmallWebRtcError::webrtc("reading the offer", "no local description")
                })?;
                Ok(strip_candidates(&local.sdp))
            }
        }
    }

    /// Applies the server's answer.
    pub(crate) async fn apply_answer(&self, sdp: String) -> Result<(), SmallWebRtcError> {
        let answer = answer_description(sdp)?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| SmallWebRtcError::InvalidAnswer { reason: format!("not applicable: {e}") })
    }

    /// The audio track to write microphone packets to, once negotiated.
    pub(crate) async fn out_track(&self) -> OutTrack {
        let mut payload_type = 111;
        if let Some(sender) = &self.audio_sender
            && let Ok(params) = sender.get_parameters().await
            && let Some(codec) = params.rtp_parameters.codecs.first()
        {
            payload_type = codec.payload_type;
        }
        OutTrack { track: self.audio.clone(), ssrc: self.audio_ssrc, payload_type }
    }

    /// The negotiated maximum message size (the smaller of both sides' SCTP limits).
    pub(crate) async fn max_message_size(&self) -> Option<usize> {
        let sctp = self.pc.sctp().await?;
        sctp.max_message_size().await.ok().map(|n| n as usize)
    }

    /// Closes the peer connection and stops its tasks. Idempotent.
    pub(crate) async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.channel.close().await;
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing the peer connection");
        }
        self.tasks.abort_all();
    }
}

impl Drop for Peer {
    // A webrtc-rs driver left unclosed keeps running on the runtime: make sure it stops even
    // on paths that forgot (a cancelled connect, a panic).
    fn drop(&mut self) {
        self.tasks.abort_all();
        if !self.closed.swap(true, Ordering::AcqRel)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let pc = self.pc.clone();
            runtime.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

/// Reads the data channel: RTVI text to the client, signalling and open/close to the session.
async fn read_channel(
    generation: u64,
    channel: Arc<dyn DataChannel>,
    events: mpsc::UnboundedSender<PeerEvent>,
    sink: TransportEventSink,
) {
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                let _ = events.send(PeerEvent::ChannelOpen(generation));
            }
            DataChannelEvent::OnMessage(message) => {
                let Ok(text) = std::str::from_utf8(&message.data) else {
                    tracing::debug!(
                        bytes = message.data.len(),
                        "non-UTF-8 data channel message dropped"
                    );
                    continue;
                };
                match classify(text) {
                    Inbound::Rtvi(text) => sink.emit(TransportEvent::Message(text)),
                    Inbound::Signal(signal) => {
                        let _ = events.send(PeerEvent::Signal(generation, signal));
                    }
                    Inbound::NotJson => tracing::debug!("non-JSON data channel message dropped"),
                }
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    let _ = events.send(PeerEvent::ChannelClosed(generation));
}

/// The server's answer SDP, parsed (webrtc-rs parses it eagerly).
pub(crate) fn answer_description(sdp: String) -> Result<RTCSessionDescription, SmallWebRtcError> {
    RTCSessionDescription::answer(sdp)
        .map_err(|e| SmallWebRtcError::InvalidAnswer { reason: e.to_string() })
}

/// The offer without `a=candidate` / `a=end-of-candidates` lines (they are trickled).
pub(crate) fn strip_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare.starts_with("a=candidate:") || bare == "a=end-of-candidates" {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// A random SSRC (any non-zero value will do; uniqueness per session is what matters).
fn rand_ssrc() -> u32 {
    let v = uuid::Uuid::new_v4().as_u128() as u32;
    v.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_candidate_lines() {
        let sdp = "v=0\r\nm=audio 9 UDP 111\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\na=sendrecv\r\n";
        assert_eq!(strip_candidates(sdp), "v=0\r\nm=audio 9 UDP 111\r\na=mid:0\r\na=sendrecv\r\n");
        assert_eq!(strip_candidates("v=0\n"), "v=0\n");
    }
}
