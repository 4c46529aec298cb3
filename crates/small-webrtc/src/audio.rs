//! The wire's audio codec work: microphone frames (from the media engine, 48 kHz mono, 20 ms)
//! → Opus packets on the audio track; the bot's Opus packets → PCM frames into the media
//! engine's bot-audio pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pipecat_core::media::{Participant, TrackInfo, TrackKind};
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{AudioFormat, AudioFrame, MediaError, OpusConfig, OpusDecoder, OpusEncoder};
use pipecat_media_engine::{BotAudio, MicWire, WireClosed};
use rtc::media::Sample;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

/// Opus on WebRTC: 48 kHz; we send mono (an Opus stream says how many channels it carries).
pub(crate) const SEND_FORMAT: AudioFormat = AudioFormat::MONO_48K;
/// One Opus packet per 20 ms, as WebRTC endpoints expect.
pub(crate) const PACKET_DURATION: Duration = Duration::from_millis(20);
/// Bot audio is decoded at 48 kHz mono (the bot speaks mono; sinks convert further).
pub(crate) const RECEIVE_FORMAT: AudioFormat = AudioFormat::MONO_48K;
/// A sequence gap up to this many packets is concealed; a larger one is a new stream.
const MAX_CONCEALED_PACKETS: u16 = 5;

/// The Opus end of the microphone pipeline: each 20 ms frame the media engine hands over
/// (48 kHz mono) becomes one Opus packet on the current audio track.
pub(crate) struct OpusWire {
    encoder: OpusEncoder,
    out: Arc<OutSlot>,
}

impl OpusWire {
    pub(crate) fn new(out: Arc<OutSlot>) -> Result<Self, MediaError> {
        let mut config = OpusConfig::default();
        config.format = SEND_FORMAT;
        Ok(OpusWire { encoder: OpusEncoder::new(config)?, out })
    }
}

#[async_trait::async_trait]
impl MicWire for OpusWire {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), WireClosed> {
        match self.encoder.encode(frame.samples()) {
            Ok(packet) => self.out.write(packet).await,
            Err(e) => tracing::debug!(error = %e, "microphone frame not encoded"),
        }
        Ok(())
    }
}

/// Opus packets in RTP order → PCM frames, concealing short losses.
pub(crate) struct BotAudioDecoder {
    decoder: OpusDecoder,
    last_seq: Option<u16>,
    decoded: Duration,
}

/// What one packet produced.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub(crate) frames: Vec<AudioFrame>,
    /// Why the packet (or the concealment before it) could not be decoded; the frames that
    /// could be are still there.
    pub(crate) error: Option<MediaError>,
}

impl BotAudioDecoder {
    pub(crate) fn new() -> Result<Self, MediaError> {
        Ok(BotAudioDecoder {
            decoder: OpusDecoder::new(RECEIVE_FORMAT)?,
            last_seq: None,
            decoded: Duration::ZERO,
        })
    }

    /// Decodes the packet with RTP sequence number `seq`. Late and duplicate packets are
    /// dropped; a gap of a few packets is filled by concealment. A corrupt packet is reported
    /// in [`Decoded::error`] (the caller skips it), after the concealment of the gap before it.
    pub(crate) fn push(&mut self, seq: u16, payload: &[u8]) -> Decoded {
        let mut out = Decoded::default();
        if payload.is_empty() {
            return out;
        }
        if let Some(last) = self.last_seq {
            let step = seq.wrapping_sub(last);
            // Sequence numbers wrap: a "step" in the upper half is a packet from the past.
            if step == 0 || step > u16::MAX / 2 {
                return out;
            }
            let lost = step - 1;
            if lost > 0 && lost <= MAX_CONCEALED_PACKETS {
                match self.decoder.conceal(PACKET_DURATION * u32::from(lost)) {
                    Ok(samples) => self.emit(samples, &mut out),
                    Err(e) => out.error = Some(e.into()),
                }
            }
        }
        self.last_seq = Some(seq);
        match self.decoder.decode(payload) {
            Ok(samples) => self.emit(samples, &mut out),
            Err(e) => out.error = Some(e.into()),
        }
        out
    }

    fn emit(&mut self, samples: Vec<i16>, out: &mut Decoded) {
        if samples.is_empty() {
            return;
        }
        // The decoder only produces whole frames of its own format.
        let Ok(frame) = AudioFrame::new(samples, RECEIVE_FORMAT, self.decoded) else {
            return;
        };
        self.decoded += frame.duration();
        out.frames.push(frame);
    }
}

/// The audio track of the current peer connection (it changes when recovery rebuilds it).
#[derive(Clone)]
pub(crate) struct OutTrack {
    pub(crate) track: Arc<TrackLocalStaticSample>,
    pub(crate) ssrc: u32,
    pub(crate) payload_type: u8,
}

/// Where the microphone pump writes.
#[derive(Default)]
pub(crate) struct OutSlot {
    current: std::sync::Mutex<Option<OutTrack>>,
}

impl OutSlot {
    pub(crate) fn set(&self, track: Option<OutTrack>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = track;
    }

    fn get(&self) -> Option<OutTrack> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) async fn write(&self, packet: Vec<u8>) {
        // No track between peer connections (recovery): the audio is dropped, as it would be
        // on a broken link.
        let Some(out) = self.get() else { return };
        let sample = Sample {
            data: Bytes::from(packet),
            duration: PACKET_DURATION,
            ..Sample::new(Instant::now())
        };
        if let Err(e) = out.track.write_sample(out.ssrc, out.payload_type, &sample, &[]).await {
            tracing::trace!(error = %e, "audio packet not sent");
        }
    }
}

/// Reads the bot's audio track until it ends: decodes it into the media engine's bot-audio
/// pipeline (which meters it and feeds the sink); the track starts with its first packet and
/// stops when it ends.
pub(crate) async fn run_remote_audio(
    track: Arc<dyn TrackRemote>,
    bot_audio: BotAudio,
    events: TransportEventSink,
    bot: Participant,
) {
    let mut decoder = match BotAudioDecoder::new() {
        Ok(d) => d,
        Err(e) => {
            events.emit(TransportEvent::Warning(format!("bot audio decoder unavailable: {e}")));
            return;
        }
    };
    let mut stream = bot_audio.stream(bot);
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                stream.start_track();
                let decoded = decoder.push(packet.header.sequence_number, &packet.payload);
                decoded.frames.into_iter().for_each(|f| stream.push(f));
                if let Some(e) = decoded.error {
                    tracing::debug!(error = %e, "undecodable bot audio packet skipped");
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// Consumes a track we do not play (bot video), so its events do not pile up.
pub(crate) async fn drain_track(
    track: Arc<dyn TrackRemote>,
    events: TransportEventSink,
    bot: Participant,
) {
    let info = TrackInfo { kind: TrackKind::Video, participant: Some(bot) };
    let mut started = false;
    while let Some(event) = track.poll().await {
        if matches!(event, TrackRemoteEvent::OnEnded) {
            break;
        }
        if !started && matches!(event, TrackRemoteEvent::OnRtpPacket(_)) {
            started = true;
            events.emit(TransportEvent::TrackStarted(info.clone()));
        }
    }
    if started {
        events.emit(TransportEvent::TrackStopped(info));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(format: AudioFormat, ms: u64, amplitude: f32, start: usize) -> AudioFrame {
        let n = format.frames_in(Duration::from_millis(ms));
        let samples = (0..n)
            .flat_map(|i| {
                let t = (start + i) as f32 / format.sample_rate as f32;
                let v =
                    (amplitude * 32_767.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16;
                std::iter::repeat_n(v, usize::from(format.channels))
            })
            .collect();
        AudioFrame::new(samples, format, Duration::ZERO).unwrap()
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64)
            .sqrt()
    }

    /// The wire's encoder, without a track.
    fn encoder() -> OpusEncoder {
        let mut config = OpusConfig::default();
        config.format = SEND_FORMAT;
        OpusEncoder::new(config).unwrap()
    }

    /// `n` packets of 20 ms of tone, as the wire's encoder makes them.
    fn tone_packets(n: usize) -> Vec<Vec<u8>> {
        let mut enc = encoder();
        (0..n).map(|i| enc.encode(tone(SEND_FORMAT, 20, 0.3, i * 960).samples()).unwrap()).collect()
    }

    #[test]
    fn engine_frames_become_opus_packets_and_back() {
        let mut dec = BotAudioDecoder::new().unwrap();
        // 1 s of 48 kHz tone in 20 ms frames, as the media engine hands them over.
        let packets = tone_packets(50);
        let mut pcm = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            for f in dec.push(i as u16, p).frames {
                assert_eq!(f.format(), RECEIVE_FORMAT);
                pcm.extend_from_slice(f.samples());
            }
        }
        assert_eq!(pcm.len(), packets.len() * 960);
        // The tone's energy survives (0.3 full scale ≈ 6950 RMS); skip the codec's warm-up.
        let energy = rms(&pcm[pcm.len() / 2..]);
        assert!(energy > 4000.0, "rms {energy}");
    }

    #[test]
    fn decoder_conceals_gaps_and_drops_late_packets() {
        let packets = tone_packets(10);
        let mut dec = BotAudioDecoder::new().unwrap();
        let samples = |d: Decoded| d.frames.iter().map(|f| f.samples().len()).sum::<usize>();
        // Sequence numbers across the wrap.
        assert_eq!(samples(dec.push(65_534, &packets[0])), 960);
        assert_eq!(samples(dec.push(65_535, &packets[1])), 960);
        // Two lost: concealed, then the packet itself.
        assert_eq!(samples(dec.push(2, &packets[2])), 3 * 960);
        // Duplicate and late packets are dropped.
        assert_eq!(samples(dec.push(2, &packets[3])), 0);
        assert_eq!(samples(dec.push(0, &packets[3])), 0);
        // A long gap is a new stream: no concealment.
        assert_eq!(samples(dec.push(1000, &packets[4])), 960);
        // Empty and corrupt payloads.
        assert_eq!(samples(dec.push(1001, &[])), 0);
        // Garbage must not panic (an error or a decode are both fine), and decoding goes on.
        let _ = dec.push(1002, &[0xff; 3]);
        assert_eq!(samples(dec.push(1003, &packets[5])), 960);
    }

    /// Found by the `webrtc_rtp_audio` fuzz target: a corrupt packet after a gap lost the
    /// concealment of the gap, yet the clock counted it, so bot audio jumped ahead.
    #[test]
    fn a_corrupt_packet_after_a_gap_keeps_the_concealment_and_the_clock() {
        let packets = tone_packets(3);
        let mut dec = BotAudioDecoder::new().unwrap();
        let first = dec.push(10, &packets[0]);
        assert!(first.error.is_none());
        let end = first.frames.last().unwrap().end_timestamp();
        // Packet 11 lost, packet 12 corrupt: 20 ms concealed, then the error.
        let corrupt = dec.push(12, &[0xff; 3]);
        assert!(corrupt.error.is_some());
        let concealed: Vec<_> = corrupt.frames;
        assert_eq!(concealed.iter().map(|f| f.samples().len()).sum::<usize>(), 960);
        assert_eq!(concealed[0].timestamp(), end);
        let next = dec.push(13, &packets[1]).frames;
        assert_eq!(next[0].timestamp(), concealed.last().unwrap().end_timestamp());
    }
}
