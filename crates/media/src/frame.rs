//! PCM16 audio frames and their format.

use std::fmt;
use std::time::Duration;

use crate::error::MediaError;
use crate::level;

/// The lowest sample rate this crate accepts (telephony rates and up).
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// The highest sample rate this crate accepts.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// The highest channel count this crate accepts.
pub const MAX_CHANNELS: u16 = 32;

/// A sample rate and channel count: the shape of PCM16 audio.
///
/// ```
/// use pipecat_media::AudioFormat;
/// use std::time::Duration;
///
/// let f = AudioFormat::MONO_16K;
/// assert_eq!(f.frames_in(Duration::from_millis(20)), 320);
/// assert_eq!(AudioFormat::STEREO_48K.samples_in(Duration::from_millis(10)), 960);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    /// Samples per second, per channel (Hz).
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
}

impl AudioFormat {
    /// 16 kHz mono: the usual rate of bot input over WebSocket.
    pub const MONO_16K: Self = Self::new(16_000, 1);
    /// 24 kHz mono: the usual rate of bot output over WebSocket.
    pub const MONO_24K: Self = Self::new(24_000, 1);
    /// 48 kHz mono: Opus and most devices.
    pub const MONO_48K: Self = Self::new(48_000, 1);
    /// 48 kHz stereo.
    pub const STEREO_48K: Self = Self::new(48_000, 2);

    /// A format; call [`validate`](Self::validate) before trusting values from outside.
    pub const fn new(sample_rate: u32, channels: u16) -> Self {
        Self { sample_rate, channels }
    }

    /// Checks the rate is within [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] and the channel count
    /// within 1..=[`MAX_CHANNELS`].
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] naming the bad value.
    pub fn validate(&self) -> Result<(), MediaError> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return Err(MediaError::invalid_format(format!(
                "sample rate {} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE}",
                self.sample_rate
            )));
        }
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(MediaError::invalid_format(format!(
                "{} channels is outside 1..={MAX_CHANNELS}",
                self.channels
            )));
        }
        Ok(())
    }

    /// Number of frames (samples per channel) in `duration`, rounded down.
    pub fn frames_in(&self, duration: Duration) -> usize {
        (duration.as_nanos() * u128::from(self.sample_rate) / 1_000_000_000) as usize
    }

    /// Number of interleaved samples (all channels) in `duration`, rounded down to whole frames.
    pub fn samples_in(&self, duration: Duration) -> usize {
        self.frames_in(duration) * usize::from(self.channels)
    }

    /// How long `frames` frames (samples per channel) last. Zero for a zero sample rate.
    pub fn duration_of_frames(&self, frames: usize) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        let nanos = frames as u128 * 1_000_000_000 / u128::from(self.sample_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How long `samples` interleaved samples last (partial frames are ignored).
    pub fn duration_of_samples(&self, samples: usize) -> Duration {
        self.duration_of_frames(samples / usize::from(self.channels.max(1)))
    }

    /// Bytes per second of PCM16 in this format.
    pub fn bytes_per_second(&self) -> u64 {
        u64::from(self.sample_rate) * u64::from(self.channels) * 2
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.channels {
            1 => write!(f, "{} Hz mono", self.sample_rate),
            2 => write!(f, "{} Hz stereo", self.sample_rate),
            n => write!(f, "{} Hz {n} channels", self.sample_rate),
        }
    }
}

/// A block of interleaved signed 16-bit PCM with its format and its time since stream start.
///
/// Invariants (checked by the constructors, so every helper can rely on them): the format is
/// valid and the sample count is a whole number of frames.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame};
/// use std::time::Duration;
///
/// let frame = AudioFrame::new(vec![0, 1000, -1000, 0], AudioFormat::STEREO_48K, Duration::ZERO)?;
/// assert_eq!(frame.samples_per_channel(), 2);
/// let bytes = frame.to_le_bytes();
/// let back = AudioFrame::from_le_bytes(&bytes, AudioFormat::STEREO_48K, Duration::ZERO)?;
/// assert_eq!(back, frame);
/// assert_eq!(frame.to_mono().samples(), &[500, -500]);
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    samples: Vec<i16>,
    format: AudioFormat,
    timestamp: Duration,
}

impl AudioFrame {
    /// A frame from interleaved samples.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format, [`MediaError::InvalidData`] when the sample
    /// count is not a multiple of the channel count.
    pub fn new(
        samples: Vec<i16>,
        format: AudioFormat,
        timestamp: Duration,
    ) -> Result<Self, MediaError> {
        format.validate()?;
        if !samples.len().is_multiple_of(usize::from(format.channels)) {
            return Err(MediaError::invalid_data(format!(
                "{} samples is not a whole number of {}-channel frames",
                samples.len(),
                format.channels
            )));
        }
        Ok(Self { samples, format, timestamp })
    }

    /// Internal constructor for data already known to be consistent.
    pub(crate) fn from_parts(samples: Vec<i16>, format: AudioFormat, timestamp: Duration) -> Self {
        debug_assert!(format.validate().is_ok());
        debug_assert_eq!(samples.len() % usize::from(format.channels), 0);
        Self { samples, format, timestamp }
    }

    /// `frames` frames of digital silence.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format.
    pub fn silence(
        format: AudioFormat,
        frames: usize,
        timestamp: Duration,
    ) -> Result<Self, MediaError> {
        format.validate()?;
        Ok(Self { samples: vec![0; frames * usize::from(format.channels)], format, timestamp })
    }

    /// A frame from little-endian PCM16 bytes (the WebSocket wire format).
    ///
    /// # Errors
    /// [`MediaError::InvalidData`] for an odd byte count or a partial frame,
    /// [`MediaError::InvalidFormat`] for a bad format.
    pub fn from_le_bytes(
        bytes: &[u8],
        format: AudioFormat,
        timestamp: Duration,
    ) -> Result<Self, MediaError> {
        if !bytes.len().is_multiple_of(2) {
            return Err(MediaError::invalid_data(format!(
                "{} bytes is not a whole number of 16-bit samples",
                bytes.len()
            )));
        }
        let samples = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        Self::new(samples, format, timestamp)
    }

    /// The samples as little-endian PCM16 bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.samples.len() * 2);
        self.write_le_bytes(&mut out);
        out
    }

    /// Appends the samples as little-endian PCM16 bytes to `out` (no intermediate allocation).
    pub fn write_le_bytes(&self, out: &mut Vec<u8>) {
        out.reserve(self.samples.len() * 2);
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// The interleaved samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// The interleaved samples, for in-place processing (gain, muting...).
    pub fn samples_mut(&mut self) -> &mut [i16] {
        &mut self.samples
    }

    /// Takes the interleaved samples out of the frame.
    pub fn into_samples(self) -> Vec<i16> {
        self.samples
    }

    /// Sample rate and channel count.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Samples per second per channel (Hz).
    pub fn sample_rate(&self) -> u32 {
        self.format.sample_rate
    }

    /// Number of interleaved channels.
    pub fn channels(&self) -> u16 {
        self.format.channels
    }

    /// Time of the first sample since the start of the stream.
    pub fn timestamp(&self) -> Duration {
        self.timestamp
    }

    /// Sets the time of the first sample since the start of the stream.
    pub fn set_timestamp(&mut self, timestamp: Duration) {
        self.timestamp = timestamp;
    }

    /// The same frame with another timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: Duration) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Number of frames, i.e. samples per channel.
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / usize::from(self.format.channels)
    }

    /// True when the frame holds no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// How long the frame lasts.
    pub fn duration(&self) -> Duration {
        self.format.duration_of_frames(self.samples_per_channel())
    }

    /// Timestamp just after the last sample (`timestamp + duration`).
    pub fn end_timestamp(&self) -> Duration {
        self.timestamp + self.duration()
    }

    /// The frame downmixed to one channel (channels averaged). A mono frame is cloned.
    pub fn to_mono(&self) -> AudioFrame {
        if self.format.channels == 1 {
            return self.clone();
        }
        let samples = crate::convert::mix_channels(&self.samples, self.format.channels, 1);
        Self::from_parts(samples, AudioFormat::new(self.format.sample_rate, 1), self.timestamp)
    }

    /// Linear RMS of all samples, 0 (silence) to 1 (full-scale square wave).
    /// A full-scale sine gives about 0.707.
    pub fn rms(&self) -> f32 {
        level::rms_i16(&self.samples)
    }

    /// Loudness on the 0..1 speech scale used by [`LevelMeter`](crate::LevelMeter):
    /// see [`rms_to_level`](crate::rms_to_level).
    pub fn level(&self) -> f32 {
        level::rms_to_level(self.rms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_formats_and_partial_frames() {
        let ts = Duration::ZERO;
        assert!(AudioFrame::new(vec![0; 4], AudioFormat::new(16_000, 0), ts).is_err());
        assert!(AudioFrame::new(vec![0; 4], AudioFormat::new(0, 1), ts).is_err());
        assert!(AudioFrame::new(vec![0; 3], AudioFormat::STEREO_48K, ts).is_err());
        assert!(AudioFrame::from_le_bytes(&[0, 1, 2], AudioFormat::MONO_16K, ts).is_err());
        assert!(AudioFrame::silence(AudioFormat::new(16_000, 99), 10, ts).is_err());
    }

    #[test]
    fn duration_and_sizes() {
        let f = AudioFrame::silence(AudioFormat::MONO_16K, 320, Duration::from_millis(40)).unwrap();
        assert_eq!(f.duration(), Duration::from_millis(20));
        assert_eq!(f.end_timestamp(), Duration::from_millis(60));
        assert_eq!(f.samples_per_channel(), 320);
        let s = AudioFrame::silence(AudioFormat::STEREO_48K, 480, Duration::ZERO).unwrap();
        assert_eq!(s.samples().len(), 960);
        assert_eq!(s.duration(), Duration::from_millis(10));
        assert_eq!(AudioFormat::new(44_100, 1).frames_in(Duration::from_millis(10)), 441);
    }

    #[test]
    fn le_bytes_round_trip() {
        let f =
            AudioFrame::new(vec![1, -2, i16::MAX, i16::MIN], AudioFormat::MONO_24K, Duration::ZERO)
                .unwrap();
        let bytes = f.to_le_bytes();
        assert_eq!(&bytes[..4], &[1, 0, 0xfe, 0xff]);
        assert_eq!(AudioFrame::from_le_bytes(&bytes, f.format(), Duration::ZERO).unwrap(), f);
    }

    #[test]
    fn to_mono_averages() {
        let f =
            AudioFrame::new(vec![100, 300, -100, -300], AudioFormat::STEREO_48K, Duration::ZERO)
                .unwrap();
        let m = f.to_mono();
        assert_eq!(m.samples(), &[200, -200]);
        assert_eq!(m.channels(), 1);
    }

    #[test]
    fn rms_of_silence_and_square() {
        let z = AudioFrame::silence(AudioFormat::MONO_16K, 160, Duration::ZERO).unwrap();
        assert_eq!(z.rms(), 0.0);
        assert_eq!(z.level(), 0.0);
        let sq: Vec<i16> =
            (0..160).map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX }).collect();
        let f = AudioFrame::new(sq, AudioFormat::MONO_16K, Duration::ZERO).unwrap();
        assert!(f.rms() > 0.99 && f.rms() <= 1.0);
        assert!(f.level() > 0.99);
    }
}
