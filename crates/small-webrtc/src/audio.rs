//! Audio both ways: microphone PCM → 48 kHz Opus on the audio track, bot Opus → PCM to the
//! sink, and the levels of both sides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pipecat_core::media::{Participant, TrackInfo, TrackKind};
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{
    AudioConverter, AudioFormat, AudioFrame, AudioSink, AudioSource, FrameChunker, LevelMeter,
    MediaError, OpusConfig, OpusDecoder, OpusEncoder,
};
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

/// The microphone source, kept across sessions; a session's pump holds it while it runs.
pub(crate) type SourceSlot = Arc<tokio::sync::Mutex<Option<Box<dyn AudioSource>>>>;

/// Microphone PCM in any format → Opus packets of 20 ms at 48 kHz, with levels.
pub(crate) struct MicEncoder {
    converter: AudioConverter,
    chunker: FrameChunker,
    encoder: OpusEncoder,
    meter: LevelMeter,
}

/// What one pushed frame produced.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) packets: Vec<Vec<u8>>,
    pub(crate) level: Option<f32>,
}

impl MicEncoder {
    pub(crate) fn new() -> Result<Self, MediaError> {
        let mut config = OpusConfig::default();
        config.format = SEND_FORMAT;
        Ok(MicEncoder {
            converter: AudioConverter::new(SEND_FORMAT)?,
            chunker: FrameChunker::new(SEND_FORMAT, PACKET_DURATION)?,
            encoder: OpusEncoder::new(config)?,
            meter: LevelMeter::new(),
        })
    }

    /// Converts, re-blocks and encodes one frame; `muted` sends silence in its place (the
    /// stream keeps its timing, as a disabled browser track does).
    pub(crate) fn push(&mut self, frame: AudioFrame, muted: bool) -> Result<Encoded, MediaError> {
        let mut out = Encoded::default();
        let Some(mut frame) = self.converter.process(frame)? else {
            return Ok(out);
        };
        if muted {
            frame.samples_mut().fill(0);
        }
        if let Some(level) = self.meter.push(&frame) {
            out.level = Some(level);
        }
        self.chunker.push(&frame)?;
        while let Some(block) = self.chunker.next_frame() {
            out.packets.push(self.encoder.encode(block.samples())?);
        }
        Ok(out)
    }
}

/// Opus packets in RTP order → PCM frames, concealing short losses.
pub(crate) struct BotAudioDecoder {
    decoder: OpusDecoder,
    last_seq: Option<u16>,
    decoded: Duration,
    meter: LevelMeter,
}

/// What one packet produced.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub(crate) frames: Vec<AudioFrame>,
    pub(crate) level: Option<f32>,
}

impl BotAudioDecoder {
    pub(crate) fn new() -> Result<Self, MediaError> {
        Ok(BotAudioDecoder {
            decoder: OpusDecoder::new(RECEIVE_FORMAT)?,
            last_seq: None,
            decoded: Duration::ZERO,
            meter: LevelMeter::new(),
        })
    }

    /// Decodes the packet with RTP sequence number `seq`. Late and duplicate packets are
    /// dropped; a gap of a few packets is filled by concealment. A corrupt packet is an error
    /// (the caller skips it).
    pub(crate) fn push(&mut self, seq: u16, payload: &[u8]) -> Result<Decoded, MediaError> {
        let mut out = Decoded::default();
        if payload.is_empty() {
            return Ok(out);
        }
        if let Some(last) = self.last_seq {
            let step = seq.wrapping_sub(last);
            // Sequence numbers wrap: a "step" in the upper half is a packet from the past.
            if step == 0 || step > u16::MAX / 2 {
                return Ok(out);
            }
            let lost = step - 1;
            if lost > 0 && lost <= MAX_CONCEALED_PACKETS {
                let samples = self.decoder.conceal(PACKET_DURATION * u32::from(lost))?;
                self.emit(samples, &mut out);
            }
        }
        self.last_seq = Some(seq);
        let samples = self.decoder.decode(payload)?;
        self.emit(samples, &mut out);
        Ok(out)
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
        if let Some(level) = self.meter.push(&frame) {
            out.level = Some(level);
        }
        out.frames.push(frame);
    }
}

/// The bot-audio sink, kept across sessions, with a flush request that works without waiting
/// for a write in progress.
pub(crate) struct SinkSlot {
    sink: tokio::sync::Mutex<Option<Box<dyn AudioSink>>>,
    flush_pending: AtomicBool,
}

impl SinkSlot {
    pub(crate) fn new(sink: Option<Box<dyn AudioSink>>) -> Self {
        SinkSlot { sink: tokio::sync::Mutex::new(sink), flush_pending: AtomicBool::new(false) }
    }

    pub(crate) async fn write(&self, frame: AudioFrame) -> Result<(), MediaError> {
        let mut guard = self.sink.lock().await;
        let Some(sink) = guard.as_mut() else { return Ok(()) };
        if self.flush_pending.swap(false, Ordering::AcqRel) {
            sink.flush();
        }
        sink.write(frame).await
    }

    /// Closes the sink (a WAV file gets its final header, an in-memory sink's stream ends).
    pub(crate) async fn close(&self) -> Result<(), MediaError> {
        match self.sink.lock().await.as_mut() {
            Some(sink) => sink.close().await,
            None => Ok(()),
        }
    }

    /// Drops what the sink has buffered (the bot was interrupted): at once if the sink is
    /// free, else before the next write.
    pub(crate) fn flush(&self) {
        self.flush_pending.store(true, Ordering::Release);
        if let Ok(mut guard) = self.sink.try_lock()
            && let Some(sink) = guard.as_mut()
        {
            sink.flush();
            self.flush_pending.store(false, Ordering::Release);
        }
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

    async fn write(&self, packet: Vec<u8>) {
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

/// Streams the microphone to the current audio track until the source ends or the task is
/// stopped. Holds the source for its whole run.
pub(crate) async fn run_mic(
    source: SourceSlot,
    out: Arc<OutSlot>,
    mic_enabled: Arc<AtomicBool>,
    events: TransportEventSink,
    transport_events: Option<TransportEventSink>,
) {
    let mut track = LocalTrackGuard::new(events.clone(), transport_events);
    let mut guard = source.lock().await;
    let Some(source) = guard.as_mut() else { return };
    let mut encoder = match MicEncoder::new() {
        Ok(e) => e,
        Err(e) => {
            events.emit(TransportEvent::Warning(format!("microphone encoder unavailable: {e}")));
            return;
        }
    };
    loop {
        let frame = match source.next_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                tracing::debug!("microphone source ended");
                return;
            }
            Err(e) => {
                events.emit(TransportEvent::Warning(format!("microphone stopped: {e}")));
                return;
            }
        };
        let muted = !mic_enabled.load(Ordering::Acquire);
        match encoder.push(frame, muted) {
            Ok(encoded) => {
                if let Some(level) = encoded.level {
                    events.emit(TransportEvent::LocalAudioLevel(level));
                }
                for packet in encoded.packets {
                    out.write(packet).await;
                    track.start();
                }
            }
            Err(e) => tracing::debug!(error = %e, "microphone frame dropped"),
        }
    }
}

/// The local audio track (the microphone, or whatever source the program gave).
pub(crate) fn local_audio_track() -> TrackInfo {
    TrackInfo {
        kind: TrackKind::Audio,
        participant: Some(Participant { id: "local".into(), name: None, local: true }),
    }
}

/// Reports the local track as started once (first packet sent), and as stopped when dropped
/// if it started: the source ended, or the microphone task stopped with its session.
///
/// `TrackStopped` goes to the transport-level sink when there is one: a client stops
/// listening to a session's own sink as soon as the session ends, which is when most tracks
/// stop.
struct LocalTrackGuard {
    session: TransportEventSink,
    transport: Option<TransportEventSink>,
    started: bool,
}

impl LocalTrackGuard {
    fn new(session: TransportEventSink, transport: Option<TransportEventSink>) -> Self {
        LocalTrackGuard { session, transport, started: false }
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.session.emit(TransportEvent::TrackStarted(local_audio_track()));
        }
    }
}

impl Drop for LocalTrackGuard {
    fn drop(&mut self) {
        if self.started {
            let event = TransportEvent::TrackStopped(local_audio_track());
            match &self.transport {
                Some(sink) => sink.emit(event),
                None => self.session.emit(event),
            }
        }
    }
}

/// Reads the bot's audio track until it ends: decodes, reports levels, feeds the sink.
pub(crate) async fn run_remote_audio(
    track: Arc<dyn TrackRemote>,
    sink: Arc<SinkSlot>,
    events: TransportEventSink,
    bot: Participant,
) {
    let info = TrackInfo { kind: TrackKind::Audio, participant: Some(bot) };
    let mut decoder = match BotAudioDecoder::new() {
        Ok(d) => d,
        Err(e) => {
            events.emit(TransportEvent::Warning(format!("bot audio decoder unavailable: {e}")));
            return;
        }
    };
    let mut started = false;
    let mut sink_failed = false;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                if !started {
                    started = true;
                    events.emit(TransportEvent::TrackStarted(info.clone()));
                }
                let decoded = match decoder.push(packet.header.sequence_number, &packet.payload) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::debug!(error = %e, "undecodable bot audio packet skipped");
                        continue;
                    }
                };
                if let Some(level) = decoded.level {
                    events.emit(TransportEvent::RemoteAudioLevel(level));
                }
                for frame in decoded.frames {
                    if let Err(e) = sink.write(frame).await
                        && !sink_failed
                    {
                        sink_failed = true;
                        events.emit(TransportEvent::Warning(format!("audio sink failed: {e}")));
                    }
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    if started {
        events.emit(TransportEvent::TrackStopped(info));
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

    #[test]
    fn mic_16k_becomes_20ms_opus_packets_and_back() {
        let mut enc = MicEncoder::new().unwrap();
        let mut dec = BotAudioDecoder::new().unwrap();
        let mut packets = Vec::new();
        let mut levels = Vec::new();
        // 1 s of 16 kHz tone in 10 ms frames.
        for i in 0..100 {
            let out = enc.push(tone(AudioFormat::MONO_16K, 10, 0.3, i * 160), false).unwrap();
            packets.extend(out.packets);
            levels.extend(out.level);
        }
        // About 50 packets (the resampler holds a few ms back).
        assert!((45..=50).contains(&packets.len()), "{} packets", packets.len());
        assert!(levels.len() >= 8 && levels.iter().all(|l| *l > 0.5), "{levels:?}");
        let mut pcm = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            for f in dec.push(i as u16, p).unwrap().frames {
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
    fn muted_mic_sends_silence_with_zero_level() {
        let mut enc = MicEncoder::new().unwrap();
        let mut dec = BotAudioDecoder::new().unwrap();
        let mut pcm = Vec::new();
        let mut levels = Vec::new();
        let mut seq = 0u16;
        for i in 0..50 {
            let out = enc.push(tone(SEND_FORMAT, 20, 0.5, i * 960), true).unwrap();
            levels.extend(out.level);
            for p in out.packets {
                pcm.extend(
                    dec.push(seq, &p).unwrap().frames.into_iter().flat_map(|f| f.into_samples()),
                );
                seq += 1;
            }
        }
        assert!(!levels.is_empty() && levels.iter().all(|l| *l == 0.0));
        assert!(rms(&pcm) < 10.0);
    }

    #[test]
    fn decoder_conceals_gaps_and_drops_late_packets() {
        let mut enc = MicEncoder::new().unwrap();
        let packets: Vec<Vec<u8>> = (0..10)
            .flat_map(|i| enc.push(tone(SEND_FORMAT, 20, 0.3, i * 960), false).unwrap().packets)
            .collect();
        let mut dec = BotAudioDecoder::new().unwrap();
        let samples = |d: Decoded| d.frames.iter().map(|f| f.samples().len()).sum::<usize>();
        // Sequence numbers across the wrap.
        assert_eq!(samples(dec.push(65_534, &packets[0]).unwrap()), 960);
        assert_eq!(samples(dec.push(65_535, &packets[1]).unwrap()), 960);
        // Two lost: concealed, then the packet itself.
        assert_eq!(samples(dec.push(2, &packets[2]).unwrap()), 3 * 960);
        // Duplicate and late packets are dropped.
        assert_eq!(samples(dec.push(2, &packets[3]).unwrap()), 0);
        assert_eq!(samples(dec.push(0, &packets[3]).unwrap()), 0);
        // A long gap is a new stream: no concealment.
        assert_eq!(samples(dec.push(1000, &packets[4]).unwrap()), 960);
        // Empty and corrupt payloads.
        assert_eq!(samples(dec.push(1001, &[]).unwrap()), 0);
        // Garbage must not panic (an error or a decode are both fine), and decoding goes on.
        let _ = dec.push(1002, &[0xff; 3]);
        assert_eq!(samples(dec.push(1003, &packets[5]).unwrap()), 960);
    }
}
