//! Opus encoding and decoding (libopus, bundled and statically linked by the `opus` crate).

use std::time::Duration;

use crate::chunk::FrameChunker;
use crate::convert::AudioConverter;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Sample rates libopus accepts for PCM (WebRTC always uses 48 kHz).
pub const OPUS_SAMPLE_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

/// Largest packet the encoder will produce (libopus's recommended bound).
const MAX_PACKET: usize = 4_000;

/// Errors from the Opus codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    /// The format cannot be used with Opus (rate not in [`OPUS_SAMPLE_RATES`], not 1 or 2
    /// channels).
    #[error("Opus cannot use {format}: {reason}")]
    UnsupportedFormat {
        /// The format asked for.
        format: AudioFormat,
        /// Why not.
        reason: &'static str,
    },
    /// An encoder setting out of range.
    #[error("invalid Opus setting: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// PCM handed to the encoder is not exactly one Opus frame.
    #[error("Opus frame must be {expected} samples (all channels), got {actual}")]
    FrameSize {
        /// Interleaved samples in one frame.
        expected: usize,
        /// Interleaved samples given.
        actual: usize,
    },
    /// A frame in another format than the codec's.
    #[error("Opus codec works in {expected}, frame is {actual}")]
    FormatMismatch {
        /// The codec's format.
        expected: AudioFormat,
        /// The frame's format.
        actual: AudioFormat,
    },
    /// The packet is empty, corrupt or not Opus.
    #[error("invalid Opus packet: {reason}")]
    InvalidPacket {
        /// libopus's description.
        reason: String,
    },
    /// Any other libopus failure.
    #[error("libopus {operation} failed: {reason}")]
    Codec {
        /// The libopus function.
        operation: String,
        /// libopus's description.
        reason: String,
    },
}

impl From<opus::Error> for OpusError {
    fn from(e: opus::Error) -> Self {
        match e.code() {
            opus::ErrorCode::InvalidPacket => {
                Self::InvalidPacket { reason: e.description().to_string() }
            }
            _ => Self::Codec {
                operation: e.function().to_string(),
                reason: e.description().to_string(),
            },
        }
    }
}

/// Duration of one Opus frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OpusFrameDuration {
    /// 2.5 ms (lowest latency, CELT only).
    Ms2_5,
    /// 5 ms.
    Ms5,
    /// 10 ms.
    Ms10,
    /// 20 ms: what WebRTC uses.
    #[default]
    Ms20,
    /// 40 ms.
    Ms40,
    /// 60 ms.
    Ms60,
}

impl OpusFrameDuration {
    /// As a [`Duration`].
    pub fn as_duration(self) -> Duration {
        match self {
            Self::Ms2_5 => Duration::from_micros(2_500),
            Self::Ms5 => Duration::from_millis(5),
            Self::Ms10 => Duration::from_millis(10),
            Self::Ms20 => Duration::from_millis(20),
            Self::Ms40 => Duration::from_millis(40),
            Self::Ms60 => Duration::from_millis(60),
        }
    }
}

/// What the encoder optimises for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OpusApplication {
    /// Speech intelligibility (the right choice for a voice bot).
    #[default]
    Voip,
    /// Fidelity for music and general audio.
    Audio,
    /// Lowest algorithmic delay.
    LowDelay,
}

/// Encoder settings. Start from `OpusConfig::default()` (48 kHz mono, 20 ms, VoIP, in-band
/// FEC for 5 % loss) and change fields.
///
/// ```
/// use pipecat_media::{AudioFormat, OpusConfig, OpusFrameDuration};
/// let config = OpusConfig::default()
///     .with_format(AudioFormat::STEREO_48K)
///     .with_frame(OpusFrameDuration::Ms10)
///     .with_bitrate(Some(32_000));
/// assert_eq!(config.frame_len(), 480);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpusConfig {
    /// PCM format: a rate from [`OPUS_SAMPLE_RATES`], 1 or 2 channels.
    pub format: AudioFormat,
    /// Frame duration.
    pub frame: OpusFrameDuration,
    /// Optimisation target.
    pub application: OpusApplication,
    /// Target bits per second (500..=512 000); `None` lets libopus choose.
    pub bitrate: Option<u32>,
    /// In-band forward error correction (lets the decoder rebuild a lost packet).
    pub fec: bool,
    /// Expected packet loss in percent (0..=100); FEC only acts when this is above 0.
    pub expected_loss_percent: u8,
    /// Discontinuous transmission: tiny packets during silence.
    pub dtx: bool,
    /// Encoder complexity 0..=10; `None` keeps libopus's default.
    pub complexity: Option<u8>,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            format: AudioFormat::MONO_48K,
            frame: OpusFrameDuration::Ms20,
            application: OpusApplication::Voip,
            bitrate: None,
            fec: true,
            expected_loss_percent: 5,
            dtx: false,
            complexity: None,
        }
    }
}

impl OpusConfig {
    /// Sets [`format`](Self::format).
    #[must_use]
    pub fn with_format(mut self, format: AudioFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets [`frame`](Self::frame).
    #[must_use]
    pub fn with_frame(mut self, frame: OpusFrameDuration) -> Self {
        self.frame = frame;
        self
    }

    /// Sets [`application`](Self::application).
    #[must_use]
    pub fn with_application(mut self, application: OpusApplication) -> Self {
        self.application = application;
        self
    }

    /// Sets [`bitrate`](Self::bitrate).
    #[must_use]
    pub fn with_bitrate(mut self, bitrate: Option<u32>) -> Self {
        self.bitrate = bitrate;
        self
    }

    /// Sets [`fec`](Self::fec) and [`expected_loss_percent`](Self::expected_loss_percent).
    #[must_use]
    pub fn with_fec(mut self, fec: bool, expected_loss_percent: u8) -> Self {
        self.fec = fec;
        self.expected_loss_percent = expected_loss_percent;
        self
    }

    /// Sets [`dtx`](Self::dtx).
    #[must_use]
    pub fn with_dtx(mut self, dtx: bool) -> Self {
        self.dtx = dtx;
        self
    }

    /// Sets [`complexity`](Self::complexity).
    #[must_use]
    pub fn with_complexity(mut self, complexity: Option<u8>) -> Self {
        self.complexity = complexity;
        self
    }

    /// Samples per channel in one frame.
    pub fn frame_len(&self) -> usize {
        self.format.frames_in(self.frame.as_duration())
    }
}

fn opus_channels(format: AudioFormat) -> Result<opus::Channels, OpusError> {
    if !OPUS_SAMPLE_RATES.contains(&format.sample_rate) {
        return Err(OpusError::UnsupportedFormat {
            format,
            reason: "the rate must be 8, 12, 16, 24 or 48 kHz",
        });
    }
    match format.channels {
        1 => Ok(opus::Channels::Mono),
        2 => Ok(opus::Channels::Stereo),
        _ => Err(OpusError::UnsupportedFormat { format, reason: "Opus takes 1 or 2 channels" }),
    }
}

/// An Opus encoder for fixed-size frames of PCM16.
///
/// ```
/// use pipecat_media::{OpusConfig, OpusDecoder, OpusEncoder};
/// let mut enc = OpusEncoder::new(OpusConfig::default())?;
/// let packet = enc.encode(&[0i16; 960])?; // 20 ms of 48 kHz mono
/// let mut dec = OpusDecoder::new(enc.config().format)?;
/// assert_eq!(dec.decode(&packet)?.len(), 960);
/// # Ok::<(), pipecat_media::OpusError>(())
/// ```
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusConfig,
    frame_samples: usize,
    out: Vec<u8>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// An encoder with `config`.
    ///
    /// # Errors
    /// [`OpusError::UnsupportedFormat`] or [`OpusError::InvalidConfig`] for bad settings.
    pub fn new(config: OpusConfig) -> Result<Self, OpusError> {
        let channels = opus_channels(config.format)?;
        if let Some(b) = config.bitrate
            && !(500..=512_000).contains(&b)
        {
            return Err(OpusError::InvalidConfig { reason: format!("bitrate {b} bit/s") });
        }
        if config.expected_loss_percent > 100 {
            return Err(OpusError::InvalidConfig {
                reason: format!("expected loss {} %", config.expected_loss_percent),
            });
        }
        if config.complexity.is_some_and(|c| c > 10) {
            return Err(OpusError::InvalidConfig { reason: "complexity above 10".into() });
        }
        let application = match config.application {
            OpusApplication::Voip => opus::Application::Voip,
            OpusApplication::Audio => opus::Application::Audio,
            OpusApplication::LowDelay => opus::Application::LowDelay,
        };
        let mut inner = opus::Encoder::new(config.format.sample_rate, channels, application)?;
        if let Some(b) = config.bitrate {
            inner.set_bitrate(opus::Bitrate::Bits(b as i32))?;
        }
        inner.set_inband_fec(config.fec)?;
        inner.set_packet_loss_perc(i32::from(config.expected_loss_percent))?;
        inner.set_dtx(config.dtx)?;
        if let Some(c) = config.complexity {
            inner.set_complexity(i32::from(c))?;
        }
        Ok(Self {
            inner,
            config,
            frame_samples: config.frame_len() * usize::from(config.format.channels),
            out: vec![0; MAX_PACKET],
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// Samples per channel each [`encode`](Self::encode) call takes.
    pub fn frame_len(&self) -> usize {
        self.config.frame_len()
    }

    /// Encodes exactly one frame of interleaved PCM into a packet.
    ///
    /// # Errors
    /// [`OpusError::FrameSize`] if `pcm` is not one frame; [`OpusError::Codec`] from libopus.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, OpusError> {
        let mut out = std::mem::take(&mut self.out);
        let result = self.encode_into(pcm, &mut out).map(|n| out[..n].to_vec());
        self.out = out;
        result
    }

    /// Encodes one frame into `out` (4000 bytes always suffice); returns the packet length.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn encode_into(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, OpusError> {
        if pcm.len() != self.frame_samples {
            return Err(OpusError::FrameSize { expected: self.frame_samples, actual: pcm.len() });
        }
        Ok(self.inner.encode(pcm, out)?)
    }

    /// Encodes an [`AudioFrame`] that is exactly one frame in the encoder's format.
    ///
    /// # Errors
    /// [`OpusError::FormatMismatch`], or as [`encode`](Self::encode).
    pub fn encode_frame(&mut self, frame: &AudioFrame) -> Result<Vec<u8>, OpusError> {
        if frame.format() != self.config.format {
            return Err(OpusError::FormatMismatch {
                expected: self.config.format,
                actual: frame.format(),
            });
        }
        self.encode(frame.samples())
    }

    /// Changes the target bitrate (`None`: libopus's choice) while running.
    ///
    /// # Errors
    /// [`OpusError::InvalidConfig`] for a rate outside 500..=512 000.
    pub fn set_bitrate(&mut self, bitrate: Option<u32>) -> Result<(), OpusError> {
        let value = match bitrate {
            Some(b) if !(500..=512_000).contains(&b) => {
                return Err(OpusError::InvalidConfig { reason: format!("bitrate {b} bit/s") });
            }
            Some(b) => opus::Bitrate::Bits(b as i32),
            None => opus::Bitrate::Auto,
        };
        self.inner.set_bitrate(value)?;
        self.config.bitrate = bitrate;
        Ok(())
    }

    /// Resets the codec state (start of a new stream).
    ///
    /// # Errors
    /// [`OpusError::Codec`] from libopus.
    pub fn reset(&mut self) -> Result<(), OpusError> {
        Ok(self.inner.reset_state()?)
    }
}

/// An Opus decoder producing PCM16 in a chosen format (any Opus rate, 1 or 2 channels,
/// whatever the sender encoded).
pub struct OpusDecoder {
    inner: opus::Decoder,
    format: AudioFormat,
    buf: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").field("format", &self.format).finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder producing `format`.
    ///
    /// # Errors
    /// [`OpusError::UnsupportedFormat`] for a rate or channel count Opus cannot produce.
    pub fn new(format: AudioFormat) -> Result<Self, OpusError> {
        let channels = opus_channels(format)?;
        let inner = opus::Decoder::new(format.sample_rate, channels)?;
        // 120 ms is the longest an Opus packet can last.
        let max = format.samples_in(Duration::from_millis(120));
        Ok(Self { inner, format, buf: vec![0; max] })
    }

    /// The output format.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Decodes one packet into interleaved PCM.
    ///
    /// # Errors
    /// [`OpusError::InvalidPacket`] for an empty or corrupt packet (use
    /// [`conceal`](Self::conceal) for a lost one).
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        if packet.is_empty() {
            return Err(OpusError::InvalidPacket { reason: "empty packet".into() });
        }
        let frames = self.inner.decode(packet, &mut self.buf, false)?;
        Ok(self.buf[..frames * usize::from(self.format.channels)].to_vec())
    }

    /// Decodes one packet into an [`AudioFrame`] stamped `timestamp`.
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_frame(
        &mut self,
        packet: &[u8],
        timestamp: Duration,
    ) -> Result<AudioFrame, OpusError> {
        let samples = self.decode(packet)?;
        Ok(AudioFrame::from_parts(samples, self.format, timestamp))
    }

    /// Packet-loss concealment: synthesises `duration` of audio (rounded to 2.5 ms steps,
    /// at most 120 ms) to stand in for lost packets.
    ///
    /// # Errors
    /// [`OpusError::Codec`] from libopus.
    pub fn conceal(&mut self, duration: Duration) -> Result<Vec<i16>, OpusError> {
        let n = self.plc_len(duration);
        let frames = self.inner.decode(&[], &mut self.buf[..n], false)?;
        Ok(self.buf[..frames * usize::from(self.format.channels)].to_vec())
    }

    /// Rebuilds a lost packet of `duration` from the forward-error-correction data carried
    /// by the packet that followed it (`next_packet`); falls back to concealment when the
    /// sender did not use FEC.
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        duration: Duration,
    ) -> Result<Vec<i16>, OpusError> {
        if next_packet.is_empty() {
            return Err(OpusError::InvalidPacket { reason: "empty packet".into() });
        }
        let n = self.plc_len(duration);
        let frames = self.inner.decode(next_packet, &mut self.buf[..n], true)?;
        Ok(self.buf[..frames * usize::from(self.format.channels)].to_vec())
    }

    /// Samples (all channels) for `duration`, in whole 2.5 ms units within the buffer.
    fn plc_len(&self, duration: Duration) -> usize {
        let unit = self.format.frames_in(Duration::from_micros(2_500)).max(1);
        let frames = self.format.frames_in(duration.min(Duration::from_millis(120)));
        (frames / unit).max(1) * unit * usize::from(self.format.channels)
    }

    /// Resets the codec state (start of a new stream).
    ///
    /// # Errors
    /// [`OpusError::Codec`] from libopus.
    pub fn reset(&mut self) -> Result<(), OpusError> {
        Ok(self.inner.reset_state()?)
    }
}

/// One encoded packet and where it sits in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// The Opus payload (an RTP payload as is).
    pub data: Vec<u8>,
    /// Time of its first sample since stream start.
    pub timestamp: Duration,
    /// Samples per channel it encodes (e.g. 960 for 20 ms at 48 kHz: the RTP timestamp step).
    pub frames: usize,
}

/// Frames of any format in, Opus packets out: converts to the encoder's format, cuts exact
/// frames and encodes them. What a WebRTC transport needs between a microphone and a track.
///
/// ```
/// use pipecat_media::{AudioFormat, OpusConfig, OpusStreamEncoder, ToneGenerator};
/// use std::time::Duration;
///
/// let mut enc = OpusStreamEncoder::new(OpusConfig::default())?;
/// let mut mic = ToneGenerator::new(AudioFormat::MONO_16K, 440.0, 0.3)?;
/// let mut packets = Vec::new();
/// for i in 0..50 {
///     packets.extend(enc.push(mic.frame(160, Duration::from_millis(10 * i)))?);
/// }
/// assert!(packets.len() >= 23); // 500 ms in 20 ms packets, minus the resampler's start-up
/// assert!(packets.iter().all(|p| p.frames == 960));
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
#[derive(Debug)]
pub struct OpusStreamEncoder {
    encoder: OpusEncoder,
    converter: AudioConverter,
    chunker: FrameChunker,
}

impl OpusStreamEncoder {
    /// A pipeline encoding with `config`.
    ///
    /// # Errors
    /// [`MediaError::Opus`] for bad settings.
    pub fn new(config: OpusConfig) -> Result<Self, MediaError> {
        let encoder = OpusEncoder::new(config)?;
        Ok(Self {
            converter: AudioConverter::new(config.format)?,
            chunker: FrameChunker::new(config.format, config.frame.as_duration())?,
            encoder,
        })
    }

    /// The encoder (to change the bitrate, read the config).
    pub fn encoder_mut(&mut self) -> &mut OpusEncoder {
        &mut self.encoder
    }

    /// Adds a frame; returns the packets completed by it (often one, sometimes none).
    ///
    /// # Errors
    /// [`MediaError::Resample`] or [`MediaError::Opus`].
    pub fn push(&mut self, frame: AudioFrame) -> Result<Vec<OpusPacket>, MediaError> {
        if let Some(converted) = self.converter.process(frame)? {
            self.chunker.push(&converted)?;
        }
        self.drain()
    }

    /// Encodes what is left (padded with silence) at end of stream.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn finish(&mut self) -> Result<Vec<OpusPacket>, MediaError> {
        if let Some(tail) = self.converter.finish()? {
            self.chunker.push(&tail)?;
        }
        let mut packets = self.drain()?;
        if let Some(last) = self.chunker.finish() {
            packets.push(self.encode(&last)?);
        }
        Ok(packets)
    }

    /// Drops buffered audio (e.g. after a mute or a device switch).
    pub fn reset(&mut self) {
        self.converter.reset();
        self.chunker.reset();
    }

    fn drain(&mut self) -> Result<Vec<OpusPacket>, MediaError> {
        let mut packets = Vec::new();
        while let Some(frame) = self.chunker.next_frame() {
            packets.push(self.encode(&frame)?);
        }
        Ok(packets)
    }

    fn encode(&mut self, frame: &AudioFrame) -> Result<OpusPacket, MediaError> {
        Ok(OpusPacket {
            data: self.encoder.encode_frame(frame)?,
            timestamp: frame.timestamp(),
            frames: frame.samples_per_channel(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{goertzel_power, zero_crossing_frequency};
    use crate::source::ToneGenerator;

    fn round_trip(config: OpusConfig, seconds: usize) -> (Vec<i16>, Vec<i16>, Vec<usize>) {
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut dec = OpusDecoder::new(config.format).unwrap();
        let mut tone = ToneGenerator::new(config.format, 440.0, 0.5).unwrap();
        let frame_len = enc.frame_len();
        let frames_per_sec = config.format.sample_rate as usize / frame_len;
        let (mut input, mut output, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..frames_per_sec * seconds {
            let f = tone.frame(frame_len, Duration::ZERO);
            input.extend_from_slice(f.samples());
            let packet = enc.encode(f.samples()).unwrap();
            sizes.push(packet.len());
            let pcm = dec.decode(&packet).unwrap();
            assert_eq!(pcm.len(), f.samples().len(), "frame {i}");
            output.extend(pcm);
        }
        (input, output, sizes)
    }

    fn assert_tone(samples: &[i16], rate: u32) {
        let mid = &samples[samples.len() / 4..];
        let f = zero_crossing_freq_mono(mid, rate);
        assert!((f - 440.0).abs() < 5.0, "frequency {f}");
        let rms = crate::level::rms_i16(mid);
        assert!((rms - 0.3535).abs() < 0.05, "rms {rms}");
        assert!(goertzel_power(mid, rate, 440.0) > 100.0 * goertzel_power(mid, rate, 1000.0));
    }

    fn zero_crossing_freq_mono(samples: &[i16], rate: u32) -> f64 {
        zero_crossing_frequency(samples, rate)
    }

    #[test]
    fn mono_20ms_round_trip_keeps_frequency_and_energy() {
        let (_, out, sizes) = round_trip(OpusConfig::default(), 1);
        assert_eq!(sizes.len(), 50);
        assert!(sizes.iter().all(|&s| s > 0 && s < 1000));
        assert_tone(&out, 48_000);
    }

    #[test]
    fn stereo_10ms_round_trip() {
        let config = OpusConfig {
            format: AudioFormat::STEREO_48K,
            frame: OpusFrameDuration::Ms10,
            bitrate: Some(64_000),
            ..OpusConfig::default()
        };
        let (_, out, sizes) = round_trip(config, 1);
        assert_eq!(sizes.len(), 100);
        let left: Vec<i16> = out.iter().step_by(2).copied().collect();
        assert_tone(&left, 48_000);
    }

    #[test]
    fn wrong_sizes_formats_and_garbage_are_typed_errors() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        assert_eq!(enc.encode(&[0; 100]), Err(OpusError::FrameSize { expected: 960, actual: 100 }));
        let wrong = AudioFrame::silence(AudioFormat::MONO_16K, 320, Duration::ZERO).unwrap();
        assert!(matches!(enc.encode_frame(&wrong), Err(OpusError::FormatMismatch { .. })));
        let mut config =
            OpusConfig { format: AudioFormat::new(44_100, 1), ..OpusConfig::default() };
        assert!(matches!(OpusEncoder::new(config), Err(OpusError::UnsupportedFormat { .. })));
        config.format = AudioFormat::new(48_000, 3);
        assert!(matches!(OpusEncoder::new(config), Err(OpusError::UnsupportedFormat { .. })));
        config.format = AudioFormat::MONO_48K;
        config.bitrate = Some(10);
        assert!(matches!(OpusEncoder::new(config), Err(OpusError::InvalidConfig { .. })));
        assert!(enc.set_bitrate(Some(1_000_000)).is_err());
        enc.set_bitrate(Some(24_000)).unwrap();
        enc.set_bitrate(None).unwrap();
        assert!(OpusDecoder::new(AudioFormat::new(22_050, 1)).is_err());

        let mut dec = OpusDecoder::new(AudioFormat::MONO_48K).unwrap();
        assert!(matches!(dec.decode(&[]), Err(OpusError::InvalidPacket { .. })));
        // A TOC byte announcing a code-3 packet with an impossible frame count.
        assert!(dec.decode(&[0xff, 0xff, 0xff]).is_err());
        // Converting into the crate error works with `?`.
        let e: MediaError = dec.decode(&[]).unwrap_err().into();
        assert!(matches!(e, MediaError::Opus(_)));
    }

    #[test]
    fn concealment_and_fec_give_audio_of_the_right_length() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(AudioFormat::MONO_48K).unwrap();
        let mut tone = ToneGenerator::new(AudioFormat::MONO_48K, 440.0, 0.5).unwrap();
        let packets: Vec<Vec<u8>> = (0..10)
            .map(|_| enc.encode(tone.frame(960, Duration::ZERO).samples()).unwrap())
            .collect();
        for p in &packets[..5] {
            dec.decode(p).unwrap();
        }
        // Packet 5 lost: rebuild it from packet 6's FEC, then decode 6.
        let rebuilt = dec.decode_fec(&packets[6], Duration::from_millis(20)).unwrap();
        assert_eq!(rebuilt.len(), 960);
        assert!(crate::level::rms_i16(&rebuilt) > 0.05);
        dec.decode(&packets[6]).unwrap();
        let plc = dec.conceal(Duration::from_millis(20)).unwrap();
        assert_eq!(plc.len(), 960);
        assert_eq!(dec.conceal(Duration::from_secs(5)).unwrap().len(), 5760); // capped at 120 ms
        dec.reset().unwrap();
        enc.reset().unwrap();
    }

    #[test]
    fn stream_encoder_chunks_any_input_into_exact_packets() {
        let config = OpusConfig { frame: OpusFrameDuration::Ms10, ..OpusConfig::default() };
        let mut s = OpusStreamEncoder::new(config).unwrap();
        let mut tone = ToneGenerator::new(AudioFormat::new(44_100, 2), 440.0, 0.5).unwrap();
        let mut packets = Vec::new();
        let mut pos = 0usize;
        for size in [1usize, 500, 441, 2000, 77, 4410].iter().cycle().take(30) {
            let ts = AudioFormat::new(44_100, 2).duration_of_frames(pos);
            packets.extend(s.push(tone.frame(*size, ts)).unwrap());
            pos += size;
        }
        packets.extend(s.finish().unwrap());
        let input_secs = pos as f64 / 44_100.0;
        let out_secs = packets.len() as f64 * 0.010;
        assert!((input_secs - out_secs).abs() <= 0.011, "{input_secs} vs {out_secs}");
        assert!(packets.iter().all(|p| p.frames == 480 && !p.data.is_empty()));
        for w in packets.windows(2) {
            assert_eq!(w[1].timestamp - w[0].timestamp, Duration::from_millis(10));
        }
        // The packets decode to the tone.
        let mut dec = OpusDecoder::new(AudioFormat::MONO_48K).unwrap();
        let pcm: Vec<i16> = packets.iter().flat_map(|p| dec.decode(&p.data).unwrap()).collect();
        assert_tone(&pcm, 48_000);
        s.reset();
    }
}
