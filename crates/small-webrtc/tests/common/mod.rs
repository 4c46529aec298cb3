//! The hermetic fake bot shared by the integration tests: a webrtc-rs answerer behind a tiny
//! local HTTP offer endpoint (axum on 127.0.0.1), playing the part of a SmallWebRTC bot.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pipecat_core::{ConnectionParams, TransportEvent, TransportEventSink};
use pipecat_media::{AudioFormat, OpusConfig, OpusEncoder};
use pipecat_small_webrtc::{RecoveryConfig, SmallWebRtcParams};
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

pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// What the fake bot saw.
#[derive(Default)]
pub(crate) struct Log {
    pub(crate) offers: Vec<Value>,
    /// The `x-test` header of each offer.
    pub(crate) offer_headers: Vec<Option<String>>,
    pub(crate) patches: Vec<Value>,
    pub(crate) messages: Vec<String>,
    pub(crate) audio_packets: u64,
    /// Data channels that closed (our side went away).
    pub(crate) closed_channels: u64,
}

pub(crate) struct BotPeer {
    pub(crate) pc: Arc<dyn PeerConnection>,
    pub(crate) channel: Arc<Mutex<Option<Arc<dyn DataChannel>>>>,
}

#[derive(Clone)]
pub(crate) struct Bot {
    pub(crate) log: Arc<Mutex<Log>>,
    pub(crate) peers: Arc<Mutex<HashMap<String, Arc<BotPeer>>>>,
    pub(crate) current: Arc<Mutex<Option<String>>>,
    pub(crate) next_id: Arc<AtomicU64>,
    /// Answer the next offers with this body instead (bad-answer tests).
    pub(crate) canned: Arc<Mutex<Option<(StatusCode, Value)>>>,
}

pub(crate) struct BotHandler {
    pub(crate) log: Arc<Mutex<Log>>,
    pub(crate) channel: Arc<Mutex<Option<Arc<dyn DataChannel>>>>,
    pub(crate) gathered: mpsc::UnboundedSender<()>,
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

pub(crate) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

impl Bot {
    pub(crate) async fn start() -> (Bot, SocketAddr) {
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

    pub(crate) async fn answer(&self, body: &Value) -> Result<Value, String> {
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

    pub(crate) fn current_peer(&self) -> Arc<BotPeer> {
        let id = self.current.lock().unwrap().clone().expect("a peer");
        self.peers.lock().unwrap()[&id].clone()
    }

    pub(crate) async fn send(&self, text: &str) {
        let channel = self.current_peer().channel.lock().unwrap().clone().expect("channel");
        channel.send_text(text).await.unwrap();
    }

    /// Kills the current peer connection under the session (as a network failure would).
    pub(crate) async fn drop_pc(&self) {
        let _ = self.current_peer().pc.close().await;
    }

    pub(crate) async fn shutdown_peers(&self) {
        let peers: Vec<_> = self.peers.lock().unwrap().drain().map(|(_, p)| p).collect();
        for p in peers {
            let _ = p.pc.close().await;
        }
    }

    pub(crate) fn log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.log.lock().unwrap())
    }

    pub(crate) async fn wait_for(&self, what: &str, mut f: impl FnMut(&Log) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !f(&self.log.lock().unwrap()) {
            assert!(tokio::time::Instant::now() < deadline, "bot never saw: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// 20 ms Opus packets of a 440 Hz tone until the track is gone.
pub(crate) async fn speak(track: Arc<TrackLocalStaticSample>, payload_type: u8) {
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

pub(crate) async fn offer(
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

pub(crate) async fn patch(
    State(bot): State<Bot>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
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

/// Collects transport events, with the generation each was emitted under.
pub(crate) struct Events {
    pub(crate) rx: mpsc::UnboundedReceiver<(u64, TransportEvent)>,
    pub(crate) seen: Vec<(u64, TransportEvent)>,
}

impl Events {
    pub(crate) fn new(generation: u64) -> (TransportEventSink, Events) {
        let (sink, rx) = TransportEventSink::new(generation);
        (sink, Events { rx, seen: Vec::new() })
    }

    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        f: impl FnMut(&TransportEvent) -> bool,
    ) -> TransportEvent {
        self.wait_tagged(what, f).await.1
    }

    /// The first event (seen before or arriving) matching `f`, with its generation.
    pub(crate) async fn wait_tagged(
        &mut self,
        what: &str,
        mut f: impl FnMut(&TransportEvent) -> bool,
    ) -> (u64, TransportEvent) {
        if let Some(e) = self.seen.iter().find(|e| f(&e.1)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no event: {what}; saw {:?}", self.brief()))
                .expect("event channel open");
            self.seen.push(event.clone());
            if f(&event.1) {
                return event;
            }
        }
    }

    /// Everything that arrived so far (kept for later waits too).
    pub(crate) fn drain(&mut self) -> Vec<TransportEvent> {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event);
        }
        self.seen.iter().map(|e| e.1.clone()).collect()
    }

    pub(crate) fn brief(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|e| &e.1)
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

pub(crate) fn rtvi(kind: &str, id: &str, data: Value) -> String {
    json!({"label": "rtvi-ai", "type": kind, "id": id, "data": data}).to_string()
}

pub(crate) fn is_message_with_id(e: &TransportEvent, id: &str) -> bool {
    matches!(e, TransportEvent::Message(m) if m.contains(&format!("\"id\":\"{id}\"")))
}

pub(crate) fn params(addr: SocketAddr) -> ConnectionParams {
    SmallWebRtcParams::offer_url(format!("http://{addr}/api/offer")).into()
}

pub(crate) fn quick_recovery(attempts: u32) -> RecoveryConfig {
    RecoveryConfig {
        max_attempts: attempts,
        disconnected_grace: Duration::from_secs(2),
        retry_delay: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(5),
    }
}

pub(crate) fn track_statuses(log: &Log) -> Vec<(u64, bool)> {
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

pub(crate) fn pings(log: &Log) -> usize {
    log.messages.iter().filter(|m| m.starts_with("ping: ")).count()
}
