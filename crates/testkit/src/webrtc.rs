//! The SmallWebRTC transport, server side: a minimal webrtc-rs answerer shaped like pipecat's
//! `SmallWebRTCConnection` (aiortc). One bot session per new offer; the client-created data
//! channel carries RTVI JSON, `signalling` messages and `ping: <ms>` keepalives; user audio
//! (Opus) is decoded, and bot audio is Opus-encoded on the first audio transceiver, with
//! continuous silence when idle.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::BotTransport;
use crate::bot::BotShared;
use crate::http::Candidate;
use crate::recorder::{BotEventKind, EndReason, InvalidKind};
use crate::session::{AudioPlan, Ending, Garbage, Inbound, Outbound, SessionCore};
use crate::util::lock;

/// The bot's output sample rate on SmallWebRTC (Opus runs at 48 kHz).
const OUTPUT_SAMPLE_RATE: u32 = 48_000;
/// Output chunk length: one Opus packet.
const OUTPUT_CHUNK: Duration = Duration::from_millis(20);
/// How long the answerer waits for ICE gathering before answering.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// Outbound messages queued before the data channel opens (pipecat's `MAX_MESSAGE_QUEUE_SIZE`).
const MAX_QUEUED_MESSAGES: usize = 50;
/// The SCTP max message size the bot advertises (aiortc's `a=max-message-size`).
const MAX_MESSAGE_SIZE: u32 = 262_144;
/// How long a goodbye (`peerLeft`) may take to drain before the peer connection closes.
const GOODBYE_DRAIN: Duration = Duration::from_millis(500);
/// How long late tasks wait for their connection to be linked to a session.
const LINK_WAIT: Duration = Duration::from_secs(10);

/// The audio plan of a SmallWebRTC session.
pub(crate) fn audio_plan() -> AudioPlan {
    AudioPlan { sample_rate: OUTPUT_SAMPLE_RATE, chunk: OUTPUT_CHUNK, auto_silence: true }
}

/// An offer from the HTTP layer.
pub(crate) struct OfferRequest {
    pub(crate) sdp: String,
    pub(crate) sdp_type: String,
    pub(crate) pc_id: Option<String>,
    pub(crate) restart_pc: bool,
    pub(crate) request_data: Option<Value>,
    /// The `/start` session this offer came through (`/sessions/{id}/api/offer`).
    pub(crate) start_session: Option<String>,
}

/// The answer to an offer.
pub(crate) struct Answer {
    pub(crate) sdp: String,
    pub(crate) pc_id: String,
}

/// Why an offer failed (the runner answers 500 on the direct route, 400 on the proxy).
#[derive(Debug)]
pub(crate) enum OfferError {
    /// Something went wrong applying the offer.
    Internal(#[allow(dead_code)] String),
}

/// Every peer connection of one bot, by `pc_id` (old ids of restarted connections included).
#[derive(Default)]
pub(crate) struct Hub {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    counter: AtomicU64,
}

impl Hub {
    fn get(&self, pc_id: &str) -> Option<Arc<Entry>> {
        lock(&self.entries).get(pc_id).cloned()
    }

    fn insert(&self, pc_id: &str, entry: &Arc<Entry>) {
        lock(&self.entries).insert(pc_id.to_owned(), Arc::clone(entry));
    }

    fn remove_entry(&self, entry: &Entry) {
        let ids = lock(&entry.pc_ids).clone();
        let mut entries = lock(&self.entries);
        for id in ids {
            entries.remove(&id);
        }
    }

    /// The id of the session a `pc_id` (current or replaced) belongs to, while it runs.
    pub(crate) fn session_of(&self, pc_id: &str) -> Option<String> {
        self.get(pc_id).map(|entry| entry.core.id().to_owned())
    }

    fn next_pc_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("SmallWebRTCConnection#{n}-{}", uuid::Uuid::new_v4().simple())
    }

    /// Closes every peer connection (the bot is going away). Runs the closes on the current
    /// runtime, if there is one.
    pub(crate) fn close_all(&self) {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).drain().map(|(_, e)| e).collect();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        for entry in entries {
            if let Some(conn) = entry.take_current() {
                runtime.spawn(async move {
                    conn.close().await;
                });
            }
        }
    }
}

/// One bot session's peer connection slot: the connection changes on `restart_pc`.
struct Entry {
    core: Arc<SessionCore>,
    inbound: mpsc::UnboundedSender<Inbound>,
    current: Mutex<Option<Arc<Conn>>>,
    pc_ids: Mutex<Vec<String>>,
    /// Serialises offers on this session.
    op: tokio::sync::Mutex<()>,
}

impl Entry {
    fn current(&self) -> Option<Arc<Conn>> {
        lock(&self.current).clone()
    }

    /// Detaches the current connection: its events no longer count.
    fn take_current(&self) -> Option<Arc<Conn>> {
        let conn = lock(&self.current).take();
        if let Some(conn) = &conn {
            conn.shared.alive.store(false, Ordering::SeqCst);
        }
        conn
    }
}

/// What a connection's event handler and tasks share.
struct Link {
    core: Arc<SessionCore>,
    inbound: mpsc::UnboundedSender<Inbound>,
}

struct ConnShared {
    pc_id: String,
    bot: Weak<BotShared>,
    link: watch::Sender<Option<Arc<Link>>>,
    /// `false` once the connection was replaced, dropped or closed by the bot.
    alive: AtomicBool,
    connected: AtomicBool,
    gathered: watch::Sender<bool>,
    dc: Mutex<Option<Arc<dyn DataChannel>>>,
    /// Held for every data-channel send, so queued and new messages keep their order.
    send_lock: tokio::sync::Mutex<SendState>,
    last_ping: Mutex<Option<Instant>>,
    lapsed: AtomicBool,
}

#[derive(Default)]
struct SendState {
    open: bool,
    queue: VecDeque<String>,
}

impl ConnShared {
    fn new(pc_id: String, bot: &Arc<BotShared>) -> Arc<Self> {
        Arc::new(ConnShared {
            pc_id,
            bot: Arc::downgrade(bot),
            link: watch::Sender::new(None),
            alive: AtomicBool::new(true),
            connected: AtomicBool::new(false),
            gathered: watch::Sender::new(false),
            dc: Mutex::new(None),
            send_lock: tokio::sync::Mutex::new(SendState::default()),
            last_ping: Mutex::new(None),
            lapsed: AtomicBool::new(false),
        })
    }

    /// The session this connection belongs to, once linked (bounded wait).
    async fn link(&self) -> Option<Arc<Link>> {
        let mut rx = self.link.subscribe();
        let linked = tokio::time::timeout(LINK_WAIT, rx.wait_for(Option::is_some)).await;
        match linked {
            Ok(Ok(link)) => link.clone(),
            _ => None,
        }
    }

    fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(bot) = self.bot.upgrade() {
            bot.tasks.spawn(future);
        }
    }

    /// Sends text on the data channel, queueing it (up to 50) until the channel opens.
    async fn send_text(&self, text: &str) -> Result<(), String> {
        let mut state = self.send_lock.lock().await;
        if !state.open {
            if state.queue.len() < MAX_QUEUED_MESSAGES {
                state.queue.push_back(text.to_owned());
                return Ok(());
            }
            return Err("data channel not open and the queue is full: message dropped".into());
        }
        let dc = lock(&self.dc).clone();
        match dc {
            Some(dc) => dc.send_text(text).await.map_err(|e| e.to_string()),
            None => Err("no data channel".into()),
        }
    }

    async fn send_binary(&self, data: &[u8]) -> Result<(), String> {
        let _state = self.send_lock.lock().await;
        let dc = lock(&self.dc).clone();
        match dc {
            Some(dc) => dc.send(bytes::BytesMut::from(data)).await.map_err(|e| e.to_string()),
            None => Err("no data channel".into()),
        }
    }
}

/// A live peer connection.
struct Conn {
    shared: Arc<ConnShared>,
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticSample>,
    sender: Option<Arc<dyn RtpSender>>,
    ssrc: u32,
    payload_type: Mutex<Option<u8>>,
    encoder: Mutex<Option<opus::Encoder>>,
}

impl Conn {
    /// Closes the peer connection and lets go of what its handler shares with it (the data
    /// channel refers back to the connection: kept, the pair would never be freed).
    async fn close(&self) {
        let _ = self.pc.close().await;
        *lock(&self.shared.dc) = None;
        self.shared.link.send_replace(None);
    }

    async fn write_audio(&self, samples: &[i16]) -> Result<(), String> {
        if !self.shared.connected.load(Ordering::SeqCst) {
            return Ok(());
        }
        let cached = *lock(&self.payload_type);
        let payload_type = match cached {
            Some(pt) => pt,
            None => {
                let Some(sender) = &self.sender else { return Ok(()) };
                let params = sender.get_parameters().await.map_err(|e| e.to_string())?;
                let Some(codec) = params.rtp_parameters.codecs.first() else { return Ok(()) };
                *lock(&self.payload_type) = Some(codec.payload_type);
                codec.payload_type
            }
        };
        let packet = {
            let mut encoder = lock(&self.encoder);
            let Some(encoder) = encoder.as_mut() else { return Ok(()) };
            encoder.encode_vec(samples, 4_000).map_err(|e| e.to_string())?
        };
        let duration =
            Duration::from_secs_f64(samples.len() as f64 / f64::from(OUTPUT_SAMPLE_RATE));
        let sample = Sample { data: Bytes::from(packet), duration, ..Sample::new(Instant::now()) };
        self.track
            .write_sample(self.ssrc, payload_type, &sample, &[])
            .await
            .map_err(|e| e.to_string())
    }

    /// Delivers one outbound item.
    async fn deliver(&self, core: &SessionCore, out: Outbound) {
        let result = match out {
            Outbound::Rtvi(text) | Outbound::Signalling(text) => self.shared.send_text(&text).await,
            Outbound::Audio(samples) => self.write_audio(&samples).await,
            Outbound::Garbage(garbage) => match garbage.rtvi_text() {
                Some(text) => self.shared.send_text(text).await,
                None => match garbage {
                    Garbage::NotProtobuf => {
                        self.shared.send_binary(&[0xff, 0xfe, 0xfd, 0x00]).await
                    }
                    Garbage::TextMessage => {
                        self.shared.send_text("this is neither JSON nor a keepalive").await
                    }
                    Garbage::EmptyFrame => self.shared.send_text("{}").await,
                    _ => Ok(()),
                },
            },
            Outbound::Interruption | Outbound::DropPeerConnection | Outbound::End(_) => Ok(()),
        };
        if let Err(detail) = result {
            core.recorder().event(Some(core.id()), BotEventKind::SendFailed { detail });
        }
    }
}

/// The peer connection's event handler.
struct Handler {
    shared: Arc<ConnShared>,
}

impl Handler {
    /// Records a connection event under the session this connection serves (the bot's own
    /// log when the session is not linked yet).
    fn record(&self, kind: BotEventKind) {
        if let Some(link) = self.shared.link.borrow().clone() {
            link.core.recorder().event(Some(link.core.id()), kind);
        } else if let Some(bot) = self.shared.bot.upgrade() {
            bot.recorder.event(None, kind);
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.shared.gathered.send_replace(true);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed) {
            self.record(BotEventKind::IceConnected { pc_id: self.shared.pc_id.clone() });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected => {
                self.shared.connected.store(true, Ordering::SeqCst);
                self.record(BotEventKind::PeerConnectionConnected {
                    pc_id: self.shared.pc_id.clone(),
                });
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                self.shared.connected.store(false, Ordering::SeqCst);
                if self.shared.alive.load(Ordering::SeqCst)
                    && let Some(link) = self.shared.link.borrow().clone()
                {
                    link.core.finished(EndReason::ClientDisconnected);
                }
            }
            _ => {}
        }
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let shared = Arc::clone(&self.shared);
        self.shared.spawn(run_data_channel(shared, data_channel));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = Arc::clone(&self.shared);
        self.shared.spawn(run_track(shared, track));
    }
}

async fn run_data_channel(shared: Arc<ConnShared>, dc: Arc<dyn DataChannel>) {
    // The latest channel the client opened is the one the bot talks on (as pipecat does).
    *lock(&shared.dc) = Some(Arc::clone(&dc));
    let label = dc.label().await.unwrap_or_default();
    let Some(link) = shared.link().await else { return };
    while let Some(event) = dc.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                link.core.recorder().event(
                    Some(link.core.id()),
                    BotEventKind::DataChannelOpen { label: label.clone() },
                );
                let mut state = shared.send_lock.lock().await;
                state.open = true;
                while let Some(text) = state.queue.pop_front() {
                    if let Err(e) = dc.send_text(&text).await {
                        link.core.recorder().event(
                            Some(link.core.id()),
                            BotEventKind::SendFailed { detail: e.to_string() },
                        );
                    }
                }
            }
            DataChannelEvent::OnMessage(message) => {
                handle_message(&shared, &link, &message.data);
            }
            DataChannelEvent::OnClose => {
                let current = lock(&shared.dc).as_ref().is_some_and(|d| Arc::ptr_eq(d, &dc));
                if current && shared.alive.load(Ordering::SeqCst) {
                    link.core.finished(EndReason::ClientDisconnected);
                }
                break;
            }
            _ => {}
        }
    }
    // Closed, or its peer connection went away under it.
    link.core.recorder().event(Some(link.core.id()), BotEventKind::DataChannelClosed { label });
}

/// One data-channel message: keepalive, signalling, or RTVI for the session.
fn handle_message(shared: &ConnShared, link: &Link, data: &[u8]) {
    let core = &link.core;
    let recorder = core.recorder();
    let Ok(text) = std::str::from_utf8(data) else {
        recorder.invalid(
            core.id(),
            InvalidKind::NotUtf8,
            "binary data-channel message".into(),
            data,
        );
        return;
    };
    if text.starts_with("ping") {
        recorder.ping(core.id());
        *lock(&shared.last_ping) = Some(Instant::now());
        shared.lapsed.store(false, Ordering::SeqCst);
        return;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            recorder.invalid(core.id(), InvalidKind::NotJson, e.to_string(), data);
            return;
        }
    };
    // pipecat reads `message["type"]` first: anything without it is dropped with an error log.
    let Some(message_type) = value.as_object().and_then(|o| o.get("type")) else {
        let detail = "data-channel JSON without a \"type\"".to_owned();
        recorder.invalid(core.id(), InvalidKind::InvalidEnvelope, detail, data);
        return;
    };
    if message_type == "signalling" && value.get("message").is_some_and(crate::http::truthy) {
        handle_signalling(core, &value["message"], data);
        return;
    }
    let window = core.script().ping_liveness;
    let last = *lock(&shared.last_ping);
    if let (Some(window), Some(last)) = (window, last)
        && last.elapsed() >= window
    {
        // The real server now thinks the client is gone: it queues the message and only
        // delivers such messages when its pipeline (re)connects, which a running session
        // never does again. So it is never handled.
        if !shared.lapsed.swap(true, Ordering::SeqCst) {
            recorder.event(Some(core.id()), BotEventKind::PingLapsed);
        }
        recorder.invalid(
            core.id(),
            InvalidKind::HeldWhilePingLapsed,
            format!("no ping for {:?}", last.elapsed()),
            data,
        );
        return;
    }
    let _ = link.inbound.send(Inbound::Text(text.to_owned()));
}

fn handle_signalling(core: &SessionCore, message: &Value, raw: &[u8]) {
    let kind = message.get("type").and_then(Value::as_str);
    let index = message.get("receiver_index").and_then(Value::as_u64);
    let enabled = message.get("enabled").and_then(Value::as_bool);
    match (kind, index, enabled) {
        (Some("trackStatus"), Some(receiver_index), Some(enabled)) => core
            .recorder()
            .event(Some(core.id()), BotEventKind::TrackStatus { receiver_index, enabled }),
        _ => core.recorder().invalid(
            core.id(),
            InvalidKind::BadSignalling,
            format!("signalling message {message}"),
            raw,
        ),
    }
}

async fn run_track(shared: Arc<ConnShared>, track: Arc<dyn TrackRemote>) {
    let is_audio = track.kind().await == RtpCodecKind::Audio;
    let link = shared.link().await;
    let mut decoder = if is_audio {
        opus::Decoder::new(OUTPUT_SAMPLE_RATE, opus::Channels::Mono).ok()
    } else {
        None
    };
    let mut checked_codec = false;
    let mut pcm = vec![0i16; 5_760];
    // Keep polling even for tracks the bot ignores, so their packets do not pile up.
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let (Some(link), Some(dec)) = (&link, decoder.as_mut()) else { continue };
        if !checked_codec {
            checked_codec = true;
            let mime = track.codec(packet.header.ssrc).await.map(|c| c.mime_type);
            if mime.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(MIME_TYPE_OPUS)) {
                link.core.recorder().invalid(
                    link.core.id(),
                    InvalidKind::BadFrame,
                    format!("audio codec {mime:?} is not Opus: not decoded"),
                    &[],
                );
                decoder = None;
                continue;
            }
        }
        if packet.payload.is_empty() {
            continue;
        }
        if let Ok(n) = dec.decode(&packet.payload, &mut pcm, false) {
            let _ = link.inbound.send(Inbound::Audio {
                samples: pcm[..n].to_vec(),
                sample_rate: OUTPUT_SAMPLE_RATE,
                channels: 1,
            });
        }
    }
}

/// How often the bot's ICE agent checks candidate pairs while connecting.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(5);

/// Builds a peer connection for an offer and answers it; `Err` if the offer cannot be applied.
async fn build_conn(shared: Arc<ConnShared>, offer: &str) -> Result<(Arc<Conn>, String), String> {
    let description = RTCSessionDescription::offer(offer.to_owned()).map_err(|e| e.to_string())?;
    let mut media = MediaEngine::default();
    media.register_default_codecs().map_err(|e| e.to_string())?;
    let registry =
        register_default_interceptors(Registry::new(), &mut media).map_err(|e| e.to_string())?;
    // ICE checks every 5 ms while connecting instead of webrtc-rs's 200 ms: as the controlled
    // side the bot selects a pair only once its own check of it succeeds, and on loopback
    // waiting for the next 200 ms tick was most of a session's time to ready. Once
    // connected the agent runs on its keepalive timer, so this costs nothing afterwards;
    // 300 requests keep the default 1.5 s before a pair counts as failed.
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(300))
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(MAX_MESSAGE_SIZE))
        .build();
    let handler = Arc::new(Handler { shared: Arc::clone(&shared) });
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    let ssrc = uuid::Uuid::new_v4().as_u128() as u32;
    let negotiated = async {
        pc.set_remote_description(description).await.map_err(|e| e.to_string())?;
        let codec = RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        };
        let track = MediaStreamTrack::new(
            "pipecat-testkit".to_owned(),
            format!("bot-audio-{ssrc}"),
            "bot audio".to_owned(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let track = Arc::new(
            TrackLocalStaticSample::new(Instant::now(), track).map_err(|e| e.to_string())?,
        );
        // Attaches to the client's first audio transceiver (mid 0), as pipecat's bot does.
        let sender = pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await.ok();
        let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
        pc.set_local_description(answer).await.map_err(|e| e.to_string())?;
        let mut gathered = shared.gathered.subscribe();
        let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|done| *done)).await;
        let local = pc.local_description().await.ok_or("no local description")?;
        Ok::<_, String>((track, sender, local.sdp))
    }
    .await;
    match negotiated {
        Ok((track, sender, sdp)) => {
            let encoder = opus::Encoder::new(
                OUTPUT_SAMPLE_RATE,
                opus::Channels::Mono,
                opus::Application::Voip,
            )
            .ok();
            let conn = Conn {
                shared,
                pc,
                track,
                sender,
                ssrc,
                payload_type: Mutex::new(None),
                encoder: Mutex::new(encoder),
            };
            Ok((Arc::new(conn), sdp))
        }
        Err(e) => {
            let _ = pc.close().await;
            Err(e)
        }
    }
}

/// Handles `POST /api/offer` (and the sessions proxy): a new session, a renegotiation on the
/// same peer connection, or a `restart_pc`.
pub(crate) async fn handle_offer(
    bot: &Arc<BotShared>,
    request: OfferRequest,
) -> Result<Answer, OfferError> {
    if request.sdp_type != "offer" {
        return Err(OfferError::Internal(format!("cannot handle SDP type {:?}", request.sdp_type)));
    }
    let existing = request.pc_id.as_deref().and_then(|id| bot.webrtc.get(id));
    match existing {
        Some(entry) if !entry.core.is_ended() => {
            let _guard = entry.op.lock().await;
            match entry.current() {
                Some(conn) if !request.restart_pc => renegotiate(&entry, &conn, &request.sdp).await,
                _ => restart(bot, &entry, &request).await,
            }
        }
        _ => new_session(bot, request).await,
    }
}

async fn new_session(bot: &Arc<BotShared>, request: OfferRequest) -> Result<Answer, OfferError> {
    let pc_id = bot.webrtc.next_pc_id();
    let shared = ConnShared::new(pc_id.clone(), bot);
    let (conn, sdp) = match build_conn(Arc::clone(&shared), &request.sdp).await {
        Ok(built) => built,
        Err(detail) => {
            // The real runner answers an offer it cannot use with 200 and an empty answer.
            bot.recorder.event(None, BotEventKind::InvalidOffer { detail });
            return Ok(Answer { sdp: String::new(), pc_id });
        }
    };
    let io = bot.start_session(BotTransport::WebRtc, audio_plan(), Some(&pc_id));
    let core = Arc::clone(&io.core);
    shared.link.send_replace(Some(Arc::new(Link {
        core: Arc::clone(&core),
        inbound: io.inbound.clone(),
    })));
    let entry = Arc::new(Entry {
        core: Arc::clone(&core),
        inbound: io.inbound,
        current: Mutex::new(Some(conn)),
        pc_ids: Mutex::new(vec![pc_id.clone()]),
        op: tokio::sync::Mutex::new(()),
    });
    bot.webrtc.insert(&pc_id, &entry);
    core.recorder().event(
        Some(core.id()),
        BotEventKind::PeerConnectionCreated {
            pc_id: pc_id.clone(),
            request_data: request.request_data,
        },
    );
    let writer_bot = Arc::clone(bot);
    bot.tasks.spawn(run_writer(writer_bot, Arc::clone(&entry), io.outbound));
    if let Some(start_session) = request.start_session {
        // The runner forgets a /start session once its bot ends.
        let watched = Arc::clone(&core);
        let weak = Arc::downgrade(bot);
        bot.tasks.spawn(async move {
            let mut ended = watched.subscribe_ended();
            let _ = ended.wait_for(Option::is_some).await;
            if let Some(bot) = weak.upgrade() {
                lock(&bot.start_sessions).remove(&start_session);
            }
        });
    }
    Ok(Answer { sdp, pc_id })
}

async fn renegotiate(entry: &Entry, conn: &Conn, sdp: &str) -> Result<Answer, OfferError> {
    let internal = |e: String| OfferError::Internal(e);
    let description =
        RTCSessionDescription::offer(sdp.to_owned()).map_err(|e| internal(e.to_string()))?;
    conn.pc.set_remote_description(description).await.map_err(|e| internal(e.to_string()))?;
    let answer = conn.pc.create_answer(None).await.map_err(|e| internal(e.to_string()))?;
    conn.pc.set_local_description(answer).await.map_err(|e| internal(e.to_string()))?;
    let local = conn.pc.local_description().await.ok_or_else(|| internal("no answer".into()))?;
    let pc_id = conn.shared.pc_id.clone();
    entry
        .core
        .recorder()
        .event(Some(entry.core.id()), BotEventKind::Renegotiated { pc_id: pc_id.clone() });
    entry.core.renegotiation_handled();
    Ok(Answer { sdp: local.sdp, pc_id })
}

async fn restart(
    bot: &Arc<BotShared>,
    entry: &Arc<Entry>,
    request: &OfferRequest,
) -> Result<Answer, OfferError> {
    let old_pc_id = entry.core.pc_id().unwrap_or_default();
    if let Some(old) = entry.take_current() {
        old.close().await;
    }
    let pc_id = bot.webrtc.next_pc_id();
    let shared = ConnShared::new(pc_id.clone(), bot);
    let (conn, sdp) = match build_conn(Arc::clone(&shared), &request.sdp).await {
        Ok(built) => built,
        Err(detail) => {
            bot.recorder.event(Some(entry.core.id()), BotEventKind::InvalidOffer { detail });
            return Ok(Answer { sdp: String::new(), pc_id });
        }
    };
    shared.link.send_replace(Some(Arc::new(Link {
        core: Arc::clone(&entry.core),
        inbound: entry.inbound.clone(),
    })));
    *lock(&entry.current) = Some(conn);
    lock(&entry.pc_ids).push(pc_id.clone());
    bot.webrtc.insert(&pc_id, entry);
    entry.core.set_pc_id(&pc_id);
    entry.core.recorder().event(
        Some(entry.core.id()),
        BotEventKind::PeerConnectionRestarted { old_pc_id, new_pc_id: pc_id.clone() },
    );
    entry.core.renegotiation_handled();
    Ok(Answer { sdp, pc_id })
}

/// Handles trickled candidates; `false` for an unknown `pc_id`.
pub(crate) async fn handle_candidates(
    bot: &Arc<BotShared>,
    pc_id: &str,
    candidates: Vec<Candidate>,
) -> bool {
    let Some(entry) = bot.webrtc.get(pc_id) else { return false };
    let count = candidates.len();
    if let Some(conn) = entry.current() {
        for candidate in candidates {
            // An empty candidate is the end-of-candidates marker.
            if candidate.candidate.is_empty() {
                continue;
            }
            let init = |text: String| RTCIceCandidateInit {
                candidate: text,
                sdp_mid: Some(candidate.sdp_mid.clone()),
                sdp_mline_index: Some(candidate.sdp_mline_index),
                ..Default::default()
            };
            // Accept the attribute with or without its `candidate:` prefix.
            let other = match candidate.candidate.strip_prefix("candidate:") {
                Some(bare) => bare.to_owned(),
                None => format!("candidate:{}", candidate.candidate),
            };
            if conn.pc.add_ice_candidate(init(candidate.candidate.clone())).await.is_err() {
                let _ = conn.pc.add_ice_candidate(init(other)).await;
            }
        }
    }
    entry.core.recorder().event(
        Some(entry.core.id()),
        BotEventKind::IceCandidates { pc_id: pc_id.to_owned(), count },
    );
    true
}

/// Delivers a session's outbound items to its current peer connection until the session ends.
async fn run_writer(
    bot: Arc<BotShared>,
    entry: Arc<Entry>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
) {
    let core = Arc::clone(&entry.core);
    let mut ended = core.subscribe_ended();
    let mut shutdown = bot.subscribe_shutdown();
    let reason = loop {
        tokio::select! {
            out = outbound.recv() => match out {
                None => break EndReason::Shutdown,
                Some(Outbound::End(ending)) => break goodbye(&entry, ending).await,
                Some(Outbound::DropPeerConnection) => {
                    if let Some(conn) = entry.take_current() {
                        conn.close().await;
                    }
                }
                Some(out) => {
                    if let Some(conn) = entry.current() {
                        conn.deliver(&core, out).await;
                    }
                }
            },
            _ = crate::util::watch_until(&mut ended, Option::is_some) => break EndReason::ClientDisconnected,
            _ = crate::util::watch_until(&mut shutdown, |down| *down) => {
                break goodbye(&entry, Ending::Graceful(EndReason::Shutdown)).await;
            }
        }
    };
    if let Some(conn) = entry.take_current() {
        conn.close().await;
    }
    bot.webrtc.remove_entry(&entry);
    core.finished(reason);
}

/// Says goodbye: `peerLeft` for a graceful end (then the caller closes the connection).
async fn goodbye(entry: &Entry, ending: Ending) -> EndReason {
    let reason = match ending {
        Ending::Abrupt => return EndReason::Abrupt,
        Ending::Graceful(reason) => reason,
        Ending::CloseCode(code, _) => EndReason::CloseCode(code),
    };
    if let Some(conn) = entry.current() {
        // From here the client closing its side is expected, not a disconnect.
        conn.shared.alive.store(false, Ordering::SeqCst);
        let json = r#"{"type":"signalling","message":{"type":"peerLeft"}}"#;
        entry.core.recorder().sent(entry.core.id(), "signalling/peerLeft", json);
        if conn.shared.send_text(json).await.is_ok() {
            // Let it leave before the connection closes (bounded).
            let dc = lock(&conn.shared.dc).clone();
            if let Some(dc) = dc {
                let deadline = tokio::time::Instant::now() + GOODBYE_DRAIN;
                while tokio::time::Instant::now() < deadline {
                    match dc.outstanding_bytes().await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    reason
}
