//! A webrtc-rs offerer shaped like pipecat's JS SmallWebRTC client: audio (sendrecv) and video
//! (sendrecv) transceivers, then the `chat` data channel; non-trickle offer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::RTCRtpTransceiverInit;
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
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::WAIT;

/// What arrives on the data channel.
#[derive(Debug, Clone)]
pub enum DcEvent {
    Text(String),
    Binary(Vec<u8>),
    Closed,
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    audio: Arc<Mutex<Vec<i16>>>,
    packets: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Audio {
            return;
        }
        let audio = Arc::clone(&self.audio);
        let packets = Arc::clone(&self.packets);
        tokio::spawn(async move {
            let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).expect("decoder");
            let mut pcm = vec![0i16; 5_760];
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    packets.fetch_add(1, Ordering::SeqCst);
                    if let Ok(n) = decoder.decode(&packet.payload, &mut pcm, false) {
                        audio.lock().expect("lock").extend_from_slice(&pcm[..n]);
                    }
                }
            }
        });
    }
}

pub struct RtcClient {
    pub pc: Arc<dyn PeerConnection>,
    pub dc: Arc<dyn DataChannel>,
    pub events: mpsc::UnboundedReceiver<DcEvent>,
    pub dc_open: watch::Receiver<bool>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    pub audio: Arc<Mutex<Vec<i16>>>,
    pub packets: Arc<AtomicU64>,
    gathered: watch::Receiver<bool>,
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    pub pc_id: Option<String>,
}

impl RtcClient {
    pub async fn new() -> RtcClient {
        let mut media = MediaEngine::default();
        media.register_default_codecs().expect("codecs");
        let settings = SettingEngineBuilder::new()
            .with_include_loopback_candidate(true)
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let audio = Arc::new(Mutex::new(Vec::new()));
        let packets = Arc::new(AtomicU64::new(0));
        let handler = Handler {
            gathered: gathered_tx,
            state: state_tx,
            audio: Arc::clone(&audio),
            packets: Arc::clone(&packets),
        };
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_handler(Arc::new(handler))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .expect("client pc");
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let ssrc = rand_u32();
        let track = Arc::new(
            TrackLocalStaticSample::new(
                Instant::now(),
                MediaStreamTrack::new(
                    "client".to_owned(),
                    "mic".to_owned(),
                    "mic".to_owned(),
                    RtpCodecKind::Audio,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        codec: RTCRtpCodec {
                            mime_type: MIME_TYPE_OPUS.to_owned(),
                            clock_rate: 48_000,
                            channels: 2,
                            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                            rtcp_feedback: vec![],
                        },
                        ..Default::default()
                    }],
                ),
            )
            .expect("track"),
        );
        let transceiver = pc
            .add_transceiver_from_track(
                Arc::clone(&track) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendrecv,
                    streams: vec![],
                    send_encodings: vec![],
                }),
            )
            .await
            .expect("audio transceiver");
        let sender = transceiver.sender().await.expect("sender").expect("has a sender");
        // (webrtc-rs refuses sendrecv without a track; the JS client attaches a camera later.)
        pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )
        .await
        .expect("video transceiver");
        let dc = pc.create_data_channel("chat", None).await.expect("data channel");
        let (events_tx, events) = mpsc::unbounded_channel();
        let (open_tx, dc_open) = watch::channel(false);
        let polled = Arc::clone(&dc);
        tokio::spawn(async move {
            while let Some(event) = polled.poll().await {
                match event {
                    DataChannelEvent::OnOpen => {
                        open_tx.send_replace(true);
                    }
                    DataChannelEvent::OnMessage(message) => {
                        let event = if message.is_string {
                            DcEvent::Text(String::from_utf8_lossy(&message.data).into_owned())
                        } else {
                            DcEvent::Binary(message.data.to_vec())
                        };
                        let _ = events_tx.send(event);
                    }
                    DataChannelEvent::OnClose => {
                        let _ = events_tx.send(DcEvent::Closed);
                        break;
                    }
                    _ => {}
                }
            }
        });
        RtcClient {
            pc,
            dc,
            events,
            dc_open,
            state,
            audio,
            packets,
            gathered,
            track,
            sender,
            ssrc,
            pc_id: None,
        }
    }

    /// Makes an offer and waits for gathering (non-trickle).
    pub async fn offer(&mut self) -> String {
        let offer = self.pc.create_offer(None).await.expect("offer");
        self.pc.set_local_description(offer).await.expect("local");
        let _ = tokio::time::timeout(Duration::from_secs(3), self.gathered.wait_for(|g| *g)).await;
        self.pc.local_description().await.expect("local description").sdp
    }

    /// The offer body the JS client posts.
    pub fn offer_body(sdp: &str, pc_id: Option<&str>, restart: bool) -> Value {
        serde_json::json!({"sdp": sdp, "type": "offer", "pc_id": pc_id, "restart_pc": restart})
    }

    /// Posts an offer to `url`, applies the answer, returns the answer JSON.
    pub async fn negotiate(&mut self, url: &str, extra: Option<(&str, Value)>) -> Value {
        let sdp = self.offer().await;
        let mut body = Self::offer_body(&sdp, self.pc_id.as_deref(), false);
        if let Some((key, value)) = extra {
            body[key] = value;
        }
        let (status, text) = super::post_json(url, &body).await;
        assert_eq!(status, 200, "{text}");
        let answer: Value = serde_json::from_str(&text).expect("answer json");
        let sdp = answer["sdp"].as_str().expect("sdp").to_owned();
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp).expect("answer"))
            .await
            .expect("remote");
        self.pc_id = answer["pc_id"].as_str().map(str::to_owned);
        answer
    }

    pub async fn wait_open(&mut self) {
        tokio::time::timeout(WAIT, self.dc_open.wait_for(|o| *o))
            .await
            .expect("dc open timed out")
            .expect("open");
    }

    pub async fn send(&self, value: &Value) {
        self.dc.send_text(&value.to_string()).await.expect("send");
    }

    pub async fn send_text(&self, text: &str) {
        self.dc.send_text(text).await.expect("send");
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<DcEvent> {
        tokio::time::timeout(wait, self.events.recv()).await.ok().flatten()
    }

    /// The next JSON message (RTVI or signalling).
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.next_within(WAIT).await {
                Some(DcEvent::Text(text)) => match serde_json::from_str(&text) {
                    Ok(value) => return value,
                    Err(_) => continue,
                },
                Some(DcEvent::Binary(_)) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// Skips until a message whose `type` (or signalling `message.type`) is `kind`.
    pub async fn wait_for(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(DcEvent::Text(text)) => {
                    let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                    if value["type"] == kind || value["message"]["type"] == kind {
                        return value;
                    }
                }
                Some(DcEvent::Binary(_)) => {}
                other => panic!("no {kind} before {other:?}"),
            }
        }
    }

    /// Streams a tone as Opus, paced in real time (20 ms packets).
    pub async fn send_tone(&self, ms: u32, hz: f64) {
        let pt = self
            .sender
            .get_parameters()
            .await
            .expect("params")
            .rtp_parameters
            .codecs
            .first()
            .expect("a codec")
            .payload_type;
        let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
            .expect("encoder");
        let pcm = super::tone(ms, hz, 48_000, 0.3);
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        for chunk in pcm.chunks(960) {
            ticker.tick().await;
            let mut frame = chunk.to_vec();
            frame.resize(960, 0);
            let packet = encoder.encode_vec(&frame, 4_000).expect("encode");
            let sample = Sample {
                data: Bytes::from(packet),
                duration: Duration::from_millis(20),
                ..Sample::new(Instant::now())
            };
            let _ = self.track.write_sample(self.ssrc, pt, &sample, &[]).await;
        }
    }

    /// Decoded bot audio so far.
    pub fn audio(&self) -> Vec<i16> {
        self.audio.lock().expect("lock").clone()
    }

    /// Sends keepalive pings every `every` until dropped.
    pub fn keepalive(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let dc = Arc::clone(&self.dc);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or_default();
                if dc.send_text(&format!("ping: {ms}")).await.is_err() {
                    break;
                }
            }
        })
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    nanos ^ 0x9e37_79b9
}
