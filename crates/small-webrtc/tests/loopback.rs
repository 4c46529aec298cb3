//! Hermetic end-to-end tests: the transport against a webrtc-rs answerer behind a tiny local
//! HTTP offer endpoint (axum on 127.0.0.1), playing the part of a SmallWebRTC bot.
//!
//! Every wait is bounded; nothing asserts on speed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pipecat_core::{
    ConnectionParams, Transport, TransportError, TransportEvent, TransportEventSink,
};
use pipecat_media::{AudioFormat, MemorySink, OpusConfig, OpusEncoder, ToneSource};
use pipecat_small_webrtc::{
    RecoveryConfig, SmallWebRtcError, SmallWebRtcParams, SmallWebRtcTransport,
};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::peer_connection::configuration::setting_engine::SctpMaxMessageSize;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCIceGatheringState, RTCSessionDescription, SettingEngineBuilder,
};

const WAIT: Duration = Duration::from_secs(15);

/// What the fake bot saw.
#[derive(Default)]
struct Log {
    offers: Vec<Value>,
    /// The `x-test` header of each offer.
    offer_headers: Vec<Option<String>>,
    patches: Vec<Value>,
    messages: Vec<String>,
    audio_packets: u64,
    /// Data channels that closed (our side went away).
    closed_channels: u64,
}

struct BotPeer {
    pc: Arc<dyn PeerConnection>,
    channel: Arc<Mutex<Option<Arc<dyn DataChannel>>>>,
}

#[derive(Clone)]
struct Bot {
    log: Arc<Mutex<Log>>,
    peers: Arc<Mutex<HashMap<String, Arc<BotPeer>>>>,
    current: Arc<Mutex<Option<String>>>,
    next_id: Arc<AtomicU64>,
    /// Answer the next offers with this body instead (bad-answer tests).
    canned: Arc<Mutex<Option<(StatusCode, Value)>>>,
}

struct BotHandler {
    log: Arc<Mutex<Log>>,
    channel: Arc<Mutex<Option<Arc<dyn DataChannel>>>>,
    gathered: mpsc::UnboundedSender<()>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for BotHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        *self.channel.lock().unwrap() = Some(channel.clone());
        let log = self.log.clone();
        tokio::spawn(async move {
            while let Some(event) = channel.poll().await {
                if matches!(event, DataChannelEvent::OnClose) {
                    break;
                }
                let DataChannelEvent::OnMessage(m) = event else { continue };
                let text = String::from_utf8_lossy(&m.data).into_owned();
                log.lock().unwrap().messages.push(text.clone());
                // A minimal RTVI bot: bot-ready for client-ready, server-response otherwise.
                if let Ok(v) = serde_json::from_str::<Value>(&text)
                    && v["label"] == "rtvi-ai"
                {
                    let reply = match v["type"].as_str() {
                        Some("client-ready") => {
                            json!({"label":"rtvi-ai","type":"bot-ready","id":v["id"],"data":{"version":"2.2.0"}})
                        }
                        _ => {
                            json!({"label":"rtvi-ai","type":"server-response","id":v["id"],"data":{"t":v["data"]["t"],"d":v["data"]["d"]}})
                        }
                    };
                    let _ = channel.send_text(&reply.to_string()).await;
                }
            }
            log.lock().unwrap().closed_channels += 1;
        });
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let log = self.log.clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = event {
                    log.lock().unwrap().audio_packets += 1;
                }
            }
        });
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

impl Bot {
    async fn start() -> (Bot, SocketAddr) {
        let bot = Bot {
            log: Arc::default(),
            peers: Arc::default(),
            current: Arc::default(),
            next_id: Arc::default(),
            canned: Arc::default(),
        };
        let app = Router::new()
            .route("/api/offer", post(offer).patch(patch))
            .route("/sessions/{id}/api/offer", post(offer).patch(patch))
            .with_state(bot.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (bot, addr)
    }

    async fn answer(&self, body: &Value) -> Result<Value, String> {
        let sdp = body["sdp"].as_str().ok_or("no sdp")?.to_owned();
        let pc_id = body["pc_id"].as_str().map(str::to_owned);
        let restart = body["restart_pc"].as_bool().unwrap_or(false);
        // Renegotiation: same peer connection, same pc_id.
        if let (Some(id), false) = (&pc_id, restart) {
            let peer = self.peers.lock().unwrap().get(id).cloned().ok_or("unknown pc_id")?;
            let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
            peer.pc.set_remote_description(offer).await.map_err(|e| e.to_string())?;
            let answer = peer.pc.create_answer(None).await.map_err(|e| e.to_string())?;
            peer.pc.set_local_description(answer).await.map_err(|e| e.to_string())?;
            let sdp = peer.pc.local_description().await.ok_or("no answer")?.sdp;
            return Ok(json!({"sdp": sdp, "type": "answer", "pc_id": id}));
        }
        if let Some(old) = pc_id.as_deref().filter(|_| restart) {
            let old = self.peers.lock().unwrap().remove(old);
            if let Some(old) = old {
                let _ = old.pc.close().await;
            }
        }
        let (gathered_tx, mut gathered_rx) = mpsc::unbounded_channel();
        let channel = Arc::new(Mutex::new(None));
        let handler =
            BotHandler { log: self.log.clone(), channel: channel.clone(), gathered: gathered_tx };
        let mut media = MediaEngine::default();
        media.register_default_codecs().map_err(|e| e.to_string())?;
        let settings = SettingEngineBuilder::new()
            .with_include_loopback_candidate(true)
            .with_sctp_max_message_size(SctpMaxMessageSize::Bounded(262_144))
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_handler(Arc::new(handler))
            .with_udp_addrs(vec![SocketAddr::from(([127, 0, 0, 1], 0))])
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
        pc.set_remote_description(offer).await.map_err(|e| e.to_string())?;
        // The bot speaks: a tone on the audio transceiver.
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    "bot".into(),
                    "bot-audio".into(),
                    "bot".into(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(4242),
                            ..Default::default()
                        },
                        codec: opus(),
                        ..Default::default()
                    }],
                ),
            )
            .map_err(|e| e.to_string())?,
        );
        let sender =
            pc.add_track(track.clone() as Arc<dyn TrackLocal>).await.map_err(|e| e.to_string())?;
        let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
        pc.set_local_description(answer).await.map_err(|e| e.to_string())?;
        let _ = tokio::time::timeout(Duration::from_secs(3), gathered_rx.recv()).await;
        let sdp = pc.local_description().await.ok_or("no answer")?.sdp;
        let payload_type = sender
            .get_parameters()
            .await
            .ok()
            .and_then(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
            .unwrap_or(111);
        tokio::spawn(speak(track, payload_type));
        let id = format!("TestBot#{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        self.peers.lock().unwrap().insert(id.clone(), Arc::new(BotPeer { pc, channel }));
        *self.current.lock().unwrap() = Some(id.clone());
        Ok(json!({"sdp": sdp, "type": "answer", "pc_id": id}))
    }

    fn current_peer(&self) -> Arc<BotPeer> {
        let id = self.current.lock().unwrap().clone().expect("a peer");
        self.peers.lock().unwrap()[&id].clone()
    }

    async fn send(&self, text: &str) {
        let channel = self.current_peer().channel.lock().unwrap().clone().expect("channel");
        channel.send_text(text).await.unwrap();
    }

    /// Kills the current peer connection under the session (as a network failure would).
    async fn drop_pc(&self) {
        let _ = self.current_peer().pc.close().await;
    }

    async fn shutdown_peers(&self) {
        let peers: Vec<_> = self.peers.lock().unwrap().drain().map(|(_, p)| p).collect();
        for p in peers {
            let _ = p.pc.close().await;
        }
    }

    fn log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.log.lock().unwrap())
    }

    async fn wait_for(&self, what: &str, mut f: impl FnMut(&Log) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !f(&self.log.lock().unwrap()) {
            assert!(tokio::time::Instant::now() < deadline, "bot never saw: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// 20 ms Opus packets of a 440 Hz tone until the track is gone.
async fn speak(track: Arc<TrackLocalStaticSample>, payload_type: u8) {
    let mut encoder = OpusEncoder::new(OpusConfig::default()).unwrap();
    let mut tone = pipecat_media::ToneGenerator::new(AudioFormat::MONO_48K, 440.0, 0.3).unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut pcm = vec![0i16; 960];
    for _ in 0..3000 {
        tick.tick().await;
        tone.fill(&mut pcm);
        let packet = encoder.encode(&pcm).unwrap();
        let sample = Sample {
            data: bytes::Bytes::from(packet),
            duration: Duration::from_millis(20),
            ..Sample::new(Instant::now())
        };
        if track.write_sample(4242, payload_type, &sample, &[]).await.is_err() {
            // Not bound yet, or gone: keep trying for a while.
        }
    }
}

async fn offer(
    State(bot): State<Bot>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    {
        let mut log = bot.log.lock().unwrap();
        log.offers.push(body.clone());
        let header = headers.get("x-test").and_then(|v| v.to_str().ok()).map(str::to_owned);
        log.offer_headers.push(header);
    }
    if let Some((status, canned)) = bot.canned.lock().unwrap().clone() {
        return (status, Json(canned));
    }
    match bot.answer(&body).await {
        Ok(answer) => (StatusCode::OK, Json(answer)),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"detail": e}))),
    }
}

async fn patch(State(bot): State<Bot>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    bot.log.lock().unwrap().patches.push(body.clone());
    let id = body["pc_id"].as_str().unwrap_or_default().to_owned();
    let Some(peer) = bot.peers.lock().unwrap().get(&id).cloned() else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "Peer connection not found"})));
    };
    for c in body["candidates"].as_array().cloned().unwrap_or_default() {
        let init = RTCIceCandidateInit {
            candidate: c["candidate"].as_str().unwrap_or_default().to_owned(),
            sdp_mid: c["sdp_mid"].as_str().map(str::to_owned),
            sdp_mline_index: c["sdp_mline_index"].as_u64().map(|i| i as u16),
            ..Default::default()
        };
        let _ = peer.pc.add_ice_candidate(init).await;
    }
    (StatusCode::OK, Json(json!({"status": "success"})))
}

/// Collects transport events.
struct Events {
    rx: mpsc::UnboundedReceiver<(u64, TransportEvent)>,
    seen: Vec<TransportEvent>,
}

impl Events {
    fn new(generation: u64) -> (TransportEventSink, Events) {
        let (sink, rx) = TransportEventSink::new(generation);
        (sink, Events { rx, seen: Vec::new() })
    }

    async fn wait_for(
        &mut self,
        what: &str,
        mut f: impl FnMut(&TransportEvent) -> bool,
    ) -> TransportEvent {
        if let Some(e) = self.seen.iter().find(|e| f(e)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no event: {what}; saw {:?}", self.brief()))
                .expect("event channel open");
            self.seen.push(event.1.clone());
            if f(&event.1) {
                return event.1;
            }
        }
    }

    fn brief(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| {
                !matches!(
                    e,
                    TransportEvent::RemoteAudioLevel(_) | TransportEvent::LocalAudioLevel(_)
                )
            })
            .map(|e| format!("{e:?}").chars().take(120).collect())
            .collect()
    }
}

fn rtvi(kind: &str, id: &str, data: Value) -> String {
    json!({"label": "rtvi-ai", "type": kind, "id": id, "data": data}).to_string()
}

fn is_message_with_id(e: &TransportEvent, id: &str) -> bool {
    matches!(e, TransportEvent::Message(m) if m.contains(&format!("\"id\":\"{id}\"")))
}

fn params(addr: SocketAddr) -> ConnectionParams {
    SmallWebRtcParams::offer_url(format!("http://{addr}/api/offer")).into()
}

fn quick_recovery(attempts: u32) -> RecoveryConfig {
    RecoveryConfig {
        max_attempts: attempts,
        disconnected_grace: Duration::from_secs(2),
        retry_delay: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(5),
    }
}

fn track_statuses(log: &Log) -> Vec<(u64, bool)> {
    log.messages
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter(|v| v["message"]["type"] == "trackStatus")
        .map(|v| {
            (
                v["message"]["receiver_index"].as_u64().unwrap(),
                v["message"]["enabled"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn pings(log: &Log) -> usize {
    log.messages.iter().filter(|m| m.starts_with("ping: ")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ping_track_status_renegotiate_restart_and_peer_left() {
    let (bot, addr) = Bot::start().await;
    let (sink, handle) = MemorySink::new(AudioFormat::MONO_48K).unwrap();
    let source = ToneSource::new(AudioFormat::MONO_16K, 300.0, 0.3).unwrap().paced(true);
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(Box::new(source))
        .audio_sink(Box::new(sink))
        .recovery(quick_recovery(3))
        .build()
        .unwrap();
    let (events_sink, mut events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(addr), events_sink))
        .await
        .unwrap()
        .unwrap();

    // The offer had the expected shape: first offer, no pc_id, no restart, candidates stripped.
    let first = bot.log(|l| l.offers[0].clone());
    assert_eq!(first["type"], "offer");
    assert_eq!(first["pc_id"], Value::Null);
    assert_eq!(first["restart_pc"], false);
    let sdp = first["sdp"].as_str().unwrap();
    assert!(!sdp.contains("a=candidate"), "trickle mode sends candidates by PATCH");
    let kinds: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).map(|l| &l[2..7]).collect();
    assert_eq!(
        kinds,
        ["audio", "video", "video", "appli"],
        "audio first, then camera, screen, data"
    );
    assert!(sdp.contains("opus/48000/2"));

    // On open: trackStatus for each transceiver, then pings.
    bot.wait_for("trackStatus x3", |l| track_statuses(l).len() >= 3).await;
    assert_eq!(bot.log(track_statuses)[..3], [(0, true), (1, false), (2, false)]);
    bot.wait_for("trickled candidates", |l| !l.patches.is_empty()).await;
    let patch = bot.log(|l| l.patches[0].clone());
    assert!(patch["pc_id"].as_str().unwrap().starts_with("TestBot#"));
    assert!(patch["candidates"][0]["candidate"].as_str().unwrap().starts_with("candidate:"));
    assert_eq!(patch["candidates"][0]["sdp_mid"], "0");
    assert_eq!(patch["candidates"][0]["sdp_mline_index"], 0);

    // The SCTP negotiation gave the answerer's 256 KiB.
    assert_eq!(transport.max_message_size(), 262_144);
    let big = "x".repeat(262_145);
    assert!(matches!(
        transport.send_message(big).await,
        Err(TransportError::MessageTooLarge { .. })
    ));

    // RTVI both ways.
    transport
        .send_client_ready(rtvi("client-ready", "cr-1", json!({"version": "2.2.0"})))
        .await
        .unwrap();
    events.wait_for("bot-ready", |e| is_message_with_id(e, "cr-1")).await;
    events.wait_for("bot connected", |e| matches!(e, TransportEvent::BotConnected(_))).await;

    // Audio both ways, with levels.
    bot.wait_for("mic audio", |l| l.audio_packets > 20).await;
    let frame = tokio::time::timeout(WAIT, handle.next_frame()).await.unwrap().expect("bot audio");
    assert_eq!(frame.format(), AudioFormat::MONO_48K);
    events
        .wait_for("local level", |e| matches!(e, TransportEvent::LocalAudioLevel(l) if *l > 0.3))
        .await;
    events
        .wait_for("remote level", |e| matches!(e, TransportEvent::RemoteAudioLevel(l) if *l > 0.3))
        .await;

    // Mute and unmute announce themselves.
    transport.enable_mic(false).await.unwrap();
    assert!(!transport.is_mic_enabled());
    bot.wait_for("mic off", |l| track_statuses(l).contains(&(0, false))).await;
    transport.enable_mic(true).await.unwrap();
    bot.wait_for("mic on again", |l| {
        track_statuses(l).iter().filter(|s| **s == (0, true)).count() >= 2
    })
    .await;

    // The keepalive keeps going (at least 3 pings in 2.5 s, whatever the machine's speed).
    let before = bot.log(pings);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(bot.log(pings) >= before + 2, "pings keep flowing");

    // Server-requested renegotiation: a new offer on the same pc_id, restart_pc false.
    let pc_id = transport.stats().pc_id.expect("pc_id");
    bot.send(r#"{"type":"signalling","message":{"type":"renegotiate"}}"#).await;
    bot.wait_for("renegotiation offer", |l| l.offers.len() >= 2).await;
    let reneg = bot.log(|l| l.offers[1].clone());
    assert_eq!(reneg["pc_id"], pc_id.as_str());
    assert_eq!(reneg["restart_pc"], false);
    let deadline = tokio::time::Instant::now() + WAIT;
    while transport.stats().renegotiations < 1 {
        assert!(tokio::time::Instant::now() < deadline, "renegotiation never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    transport
        .send_message(rtvi("client-message", "after-reneg", json!({"t": "ping"})))
        .await
        .unwrap();
    events.wait_for("reply after renegotiation", |e| is_message_with_id(e, "after-reneg")).await;
    assert_eq!(transport.stats().pc_id.as_deref(), Some(pc_id.as_str()));

    // The link breaks: a new peer connection with restart_pc true, a new pc_id, same session.
    bot.drop_pc().await;
    events
        .wait_for("reconnecting", |e| {
            matches!(e, TransportEvent::Reconnecting { attempt: 1, max_attempts: 3 })
        })
        .await;
    events.wait_for("reconnected", |e| matches!(e, TransportEvent::Reconnected)).await;
    let restart = bot.log(|l| l.offers.last().cloned().unwrap());
    assert_eq!(restart["restart_pc"], true);
    assert_eq!(restart["pc_id"], pc_id.as_str());
    let new_id = transport.stats().pc_id.unwrap();
    assert_ne!(new_id, pc_id);
    assert_eq!(transport.stats().reconnections, 1);
    // The new channel announced the tracks again and messages flow without a new client-ready.
    bot.wait_for("trackStatus on the new channel", |l| track_statuses(l).len() >= 8).await;
    transport
        .send_message(rtvi("client-message", "after-restart", json!({"t": "ping"})))
        .await
        .unwrap();
    events.wait_for("reply after restart", |e| is_message_with_id(e, "after-restart")).await;
    let ready_count = bot.log(|l| l.messages.iter().filter(|m| m.contains("client-ready")).count());
    assert_eq!(ready_count, 1, "no second client-ready after recovery");

    // peerLeft is the bot leaving.
    bot.send(r#"{"type":"signalling","message":{"type":"peerLeft"}}"#).await;
    events
        .wait_for("bot disconnected", |e| matches!(e, TransportEvent::BotDisconnected { .. }))
        .await;

    let closed_before = bot.log(|l| l.closed_channels);
    transport.disconnect().await.unwrap();
    transport.disconnect().await.unwrap(); // idempotent
    // Our peer connection really went away: the bot's end of the channel closed.
    bot.wait_for("our channel closed", |l| l.closed_channels > closed_before).await;
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_gives_up_with_a_typed_error_and_a_second_session_works() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .video_transceivers(false)
        .recovery(quick_recovery(2))
        .build()
        .unwrap();
    let (sink, mut events) = Events::new(1);
    // A full offer request: its headers go with every offer, its data inside the body.
    let request = pipecat_core::ApiRequest::new(format!("http://{addr}/api/offer"))
        .header("X-Test", "yes")
        .request_data(json!({"user": "u1"}));
    let full = SmallWebRtcParams { webrtc_request: Some(request), ..Default::default() };
    transport.connect(full.into(), sink).await.unwrap();
    let first = bot.log(|l| l.offers[0].clone());
    assert_eq!(first["request_data"], json!({"user": "u1"}));
    assert_eq!(bot.log(|l| l.offer_headers[0].clone()).as_deref(), Some("yes"));
    bot.wait_for("trackStatus", |l| !track_statuses(l).is_empty()).await;
    // Audio-only layout: one trackStatus on open.
    assert_eq!(bot.log(track_statuses), [(0, true)]);

    // The bot's endpoint now refuses every offer, and its peer connection dies.
    *bot.canned.lock().unwrap() =
        Some((StatusCode::SERVICE_UNAVAILABLE, json!({"detail": "down"})));
    bot.drop_pc().await;
    events
        .wait_for("attempt 1", |e| {
            matches!(e, TransportEvent::Reconnecting { attempt: 1, max_attempts: 2 })
        })
        .await;
    events
        .wait_for("attempt 2", |e| matches!(e, TransportEvent::Reconnecting { attempt: 2, .. }))
        .await;
    let failed = events.wait_for("failed", |e| matches!(e, TransportEvent::Failed(_))).await;
    // Restart offers carried the same request data and headers.
    let restart = bot.log(|l| l.offers.last().cloned().unwrap());
    assert_eq!(restart["restart_pc"], true);
    assert_eq!(restart["request_data"], json!({"user": "u1"}));
    assert!(bot.log(|l| l.offer_headers.iter().all(|h| h.as_deref() == Some("yes"))));
    match failed {
        TransportEvent::Failed(TransportError::ReconnectFailed { attempts, reason }) => {
            assert_eq!(attempts, 2);
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    transport.disconnect().await.unwrap();

    // A second session on the same transport.
    *bot.canned.lock().unwrap() = None;
    let (sink, mut events) = Events::new(2);
    transport.connect(params(addr), sink).await.unwrap();
    transport.send_message(rtvi("client-message", "s2", json!({"t": "ping"}))).await.unwrap();
    events.wait_for("second session reply", |e| is_message_with_id(e, "s2")).await;
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_gathering_sends_candidates_in_the_offer_and_no_patch() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .wait_for_ice_gathering(Duration::from_secs(2))
        .build()
        .unwrap();
    let (sink, mut events) = Events::new(1);
    let session = SmallWebRtcParams::session(
        pipecat_core::ApiRequest::new(format!("http://{addr}/start")),
        "sess-1",
    );
    transport.connect(session.into(), sink).await.unwrap();
    let offer = bot.log(|l| l.offers[0].clone());
    assert!(offer["sdp"].as_str().unwrap().contains("a=candidate"));
    transport.send_message(rtvi("client-message", "g", json!({"t": "x"}))).await.unwrap();
    events.wait_for("reply", |e| is_message_with_id(e, "g")).await;
    assert!(bot.log(|l| l.patches.is_empty()));
    assert_eq!(transport.stats().candidate_patches, 0);
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_and_http_errors_are_typed() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder().loopback_only().build().unwrap();
    let cases = [
        (StatusCode::OK, json!({"sdp": "", "type": "answer", "pc_id": "x"})),
        (StatusCode::OK, json!({"sdp": "garbage", "type": "answer", "pc_id": "x"})),
        (StatusCode::OK, json!({"type": "answer"})),
        (StatusCode::OK, json!([1, 2])),
        (
            StatusCode::OK,
            json!({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "answer", "pc_id": "x"}),
        ),
    ];
    for (status, body) in cases {
        *bot.canned.lock().unwrap() = Some((status, body.clone()));
        let (sink, _events) = Events::new(1);
        let err = transport.connect(params(addr), sink).await.expect_err("bad answer");
        let TransportError::ConnectFailed { source: Some(source), .. } = &err else {
            panic!("{body}: {err:?}");
        };
        assert!(
            matches!(
                source.downcast_ref::<SmallWebRtcError>(),
                Some(SmallWebRtcError::InvalidAnswer { .. })
            ),
            "{body}: {err:?}"
        );
        transport.disconnect().await.unwrap();
    }
    *bot.canned.lock().unwrap() =
        Some((StatusCode::NOT_FOUND, json!({"detail": "Invalid or not-yet-ready session_id"})));
    let (sink, _events) = Events::new(1);
    match transport.connect(params(addr), sink).await {
        Err(TransportError::Http(e)) => {
            assert_eq!(e.status(), Some(404));
            assert!(e.to_string().contains("not-yet-ready"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Nothing listening: unreachable, quickly and typed.
    let (sink, _events) = Events::new(1);
    let closed: ConnectionParams =
        SmallWebRtcParams::offer_url("http://127.0.0.1:9/api/offer").into();
    assert!(matches!(transport.connect(closed, sink).await, Err(TransportError::Http(_))));
    // No offer URL at all.
    let (sink, _events) = Events::new(1);
    assert!(matches!(
        transport.connect(ConnectionParams::default(), sink).await,
        Err(TransportError::InvalidParams(_))
    ));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_connect_leaves_nothing_behind() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder().loopback_only().build().unwrap();
    // Give up on the connect almost at once (as a client-side timeout would).
    let (sink, _events) = Events::new(1);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(1), transport.connect(params(addr), sink)).await;
    assert!(abandoned.is_err(), "connect cannot finish in 1 ms");
    transport.disconnect().await.unwrap();
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    // If the bot got that far, its channel closes again; either way a new session works.
    let (sink, mut events) = Events::new(2);
    transport.connect(params(addr), sink).await.unwrap();
    transport.send_message(rtvi("client-message", "fresh", json!({"t": "ping"}))).await.unwrap();
    events.wait_for("reply", |e| is_message_with_id(e, "fresh")).await;
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}
