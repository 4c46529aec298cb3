//! Sample-rate conversion and channel mixing between any two formats.

use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters, WindowFunction,
};

use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Remixes interleaved samples from `from` channels to `to` channels.
///
/// To one channel: the average of all channels. From one channel: the same signal on every
/// channel. Otherwise output channel `c` averages the input channels `k` with `k % to == c`
/// when reducing, and copies input channel `c % from` when expanding (so stereo to 4 channels
/// gives L R L R). A trailing partial frame is ignored; zero channels give an empty result.
///
/// ```
/// use pipecat_media::mix_channels;
/// assert_eq!(mix_channels(&[100, 300, 0, 10], 2, 1), vec![200, 5]);
/// assert_eq!(mix_channels(&[7, -7], 1, 2), vec![7, 7, -7, -7]);
/// ```
pub fn mix_channels(input: &[i16], from: u16, to: u16) -> Vec<i16> {
    let (from, to) = (usize::from(from), usize::from(to));
    if from == 0 || to == 0 {
        return Vec::new();
    }
    if from == to {
        return input[..input.len() / from * from].to_vec();
    }
    let frames = input.len() / from;
    let mut out = Vec::with_capacity(frames * to);
    for frame in input.chunks_exact(from) {
        if from > to {
            for c in 0..to {
                let (sum, n) = frame
                    .iter()
                    .skip(c)
                    .step_by(to)
                    .fold((0i32, 0i32), |(s, n), &v| (s + i32::from(v), n + 1));
                out.push((sum / n.max(1)) as i16);
            }
        } else {
            out.extend((0..to).map(|c| frame[c % from]));
        }
    }
    out
}

/// The same as [`mix_channels`] on `f32` samples (used on the resampler side).
fn mix_channels_f32(input: &[f32], from: usize, to: usize) -> Vec<f32> {
    if from == to {
        return input.to_vec();
    }
    let mut out = Vec::with_capacity(input.len() / from * to);
    for frame in input.chunks_exact(from) {
        if from > to {
            for c in 0..to {
                let (sum, n) = frame
                    .iter()
                    .skip(c)
                    .step_by(to)
                    .fold((0.0, 0.0), |(s, n), &v| (s + v, n + 1.0));
                out.push(sum / f32::max(n, 1.0));
            }
        } else {
            out.extend((0..to).map(|c| frame[c % from]));
        }
    }
    out
}

fn to_f32(s: i16) -> f32 {
    f32::from(s) / 32_768.0
}

fn to_i16(x: f32) -> i16 {
    (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn resample_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::Resample { reason: e.to_string() }
}

/// The rubato state for one input/output rate pair.
struct ResampleStage {
    resampler: Box<dyn Resampler<f32>>,
    channels: usize,
    /// Interleaved input not yet consumed (less than one resampler chunk).
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    /// Output frames of start-up delay still to drop, so output time lines up with input time.
    to_trim: usize,
    in_frames: u64,
    out_frames: u64,
    ratio: f64,
}

impl ResampleStage {
    fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self, MediaError> {
        let chunk = (in_rate / 100).max(1) as usize; // 10 ms of input per resampler call
        let min_block_in = in_rate / gcd(in_rate, out_rate);
        // The FFT resampler is exact and fast but its block is a multiple of in_rate/gcd; for odd
        // rate pairs that block gets long (latency), so fall back to the sinc resampler.
        let resampler: Box<dyn Resampler<f32>> = if min_block_in <= in_rate / 20 {
            Box::new(
                Fft::<f32>::new(
                    in_rate as usize,
                    out_rate as usize,
                    chunk,
                    channels,
                    FixedSync::Input,
                )
                .map_err(resample_err)?,
            )
        } else {
            let params = SincInterpolationParameters::new(128, WindowFunction::BlackmanHarris2);
            Box::new(
                Async::<f32>::new_sinc(
                    f64::from(out_rate) / f64::from(in_rate),
                    1.0,
                    &params,
                    chunk,
                    channels,
                    FixedAsync::Input,
                )
                .map_err(resample_err)?,
            )
        };
        let out_buf = vec![0.0; resampler.output_frames_max() * channels];
        let to_trim = resampler.output_delay();
        Ok(Self {
            resampler,
            channels,
            pending: Vec::new(),
            out_buf,
            to_trim,
            in_frames: 0,
            out_frames: 0,
            ratio: f64::from(out_rate) / f64::from(in_rate),
        })
    }

    /// Resamples whatever whole chunks `input` completes; appends output to `out`.
    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), MediaError> {
        self.pending.extend_from_slice(input);
        self.in_frames += (input.len() / self.channels) as u64;
        self.drain_chunks(out)
    }

    fn drain_chunks(&mut self, out: &mut Vec<f32>) -> Result<(), MediaError> {
        let ch = self.channels;
        // Each pass consumes a whole chunk, so this ends; the bound guards against a resampler
        // that reports progress without consuming.
        for _ in 0..=self.pending.len() {
            let need = self.resampler.input_frames_next();
            if need == 0 || self.pending.len() / ch < need {
                break;
            }
            let consumed = self.process_one(need, out)?;
            if consumed == 0 {
                break;
            }
            self.pending.drain(..consumed * ch);
        }
        Ok(())
    }

    /// Runs the resampler on the first `need` pending frames; returns frames consumed.
    fn process_one(&mut self, need: usize, out: &mut Vec<f32>) -> Result<usize, MediaError> {
        let ch = self.channels;
        let input =
            InterleavedSlice::new(&self.pending[..need * ch], ch, need).map_err(resample_err)?;
        let capacity = self.out_buf.len() / ch;
        let mut output =
            InterleavedSlice::new_mut(&mut self.out_buf, ch, capacity).map_err(resample_err)?;
        let (n_in, n_out) =
            self.resampler.process_into_buffer(&input, &mut output, None).map_err(resample_err)?;
        let skip = self.to_trim.min(n_out);
        self.to_trim -= skip;
        out.extend_from_slice(&self.out_buf[skip * ch..n_out * ch]);
        self.out_frames += (n_out - skip) as u64;
        Ok(n_in)
    }

    /// Pushes zeros through until every input frame has come out; appends the tail to `out`.
    fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), MediaError> {
        let ch = self.channels;
        let expected = (self.in_frames as f64 * self.ratio).round() as u64;
        let mut tail = Vec::new();
        // Bounded: each pass yields at least one output frame once the delay is trimmed.
        for _ in 0..64 {
            if self.out_frames >= expected {
                break;
            }
            let need = self.resampler.input_frames_next();
            let have = self.pending.len() / ch;
            if have < need {
                self.pending.resize(need * ch, 0.0);
            }
            let consumed = self.process_one(need, &mut tail)?;
            self.pending.drain(..consumed.min(self.pending.len() / ch) * ch);
        }
        // Zero padding produced more than the input accounts for; keep exactly the real part.
        let surplus = self.out_frames.saturating_sub(expected) as usize;
        tail.truncate(tail.len().saturating_sub(surplus * ch));
        out.extend_from_slice(&tail);
        Ok(())
    }
}

/// A streaming converter from frames of any format to one target format.
///
/// It resamples (rubato's FFT resampler for the usual rate pairs, its sinc resampler for
/// unusual ones) and remixes channels, keeping filter state across frames so chunk boundaries
/// are inaudible. Input frames may have any size; output comes out as soon as a 10 ms
/// resampler block is complete, so a frame may produce nothing or slightly more than its own
/// length. The resampler's start-up delay is trimmed, so output timestamps follow the input's.
/// If the input format changes, the converter starts over for the new format (the few
/// milliseconds buffered for the old one are dropped).
///
/// ```
/// use pipecat_media::{AudioConverter, AudioFormat, AudioFrame};
/// use std::time::Duration;
///
/// let mut conv = AudioConverter::new(AudioFormat::MONO_16K)?;
/// let mut out = 0;
/// for i in 0..50 {
///     let frame = AudioFrame::silence(AudioFormat::STEREO_48K, 960, Duration::from_millis(20 * i))?;
///     if let Some(f) = conv.process(frame)? {
///         assert_eq!(f.format(), AudioFormat::MONO_16K);
///         out += f.samples_per_channel();
///     }
/// }
/// out += conv.finish()?.map_or(0, |f| f.samples_per_channel());
/// assert_eq!(out, 16_000); // one second in, one second out
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
pub struct AudioConverter {
    target: AudioFormat,
    input: Option<AudioFormat>,
    stage: Option<ResampleStage>,
    /// Timestamp of the first input frame since the last (re)start.
    base: Duration,
    /// Output frames emitted since the last (re)start.
    emitted: u64,
}

impl std::fmt::Debug for AudioConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioConverter")
            .field("target", &self.target)
            .field("input", &self.input)
            .field("resampling", &self.stage.is_some())
            .finish()
    }
}

impl AudioConverter {
    /// A converter producing `target`.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] if `target` is not a valid format.
    pub fn new(target: AudioFormat) -> Result<Self, MediaError> {
        target.validate()?;
        Ok(Self { target, input: None, stage: None, base: Duration::ZERO, emitted: 0 })
    }

    /// The output format.
    pub fn target(&self) -> AudioFormat {
        self.target
    }

    /// The input format seen last, if any.
    pub fn input_format(&self) -> Option<AudioFormat> {
        self.input
    }

    /// Converts one frame. Returns `None` while output is still buffering (the first few
    /// milliseconds, or a frame shorter than a resampler block). A frame already in the target
    /// format passes through untouched.
    ///
    /// # Errors
    /// [`MediaError::Resample`] if the resampler fails (not expected with valid frames).
    pub fn process(&mut self, frame: AudioFrame) -> Result<Option<AudioFrame>, MediaError> {
        let format = frame.format();
        if self.input != Some(format) {
            self.restart(format, frame.timestamp())?;
        }
        if format == self.target {
            return Ok(Some(frame));
        }
        let Some(stage) = self.stage.as_mut() else {
            // Same rate, different channels: a plain remix keeps the frame's timestamp.
            let samples = mix_channels(frame.samples(), format.channels, self.target.channels);
            return Ok(Some(AudioFrame::from_parts(samples, self.target, frame.timestamp())));
        };
        let in_ch = usize::from(format.channels);
        let out_ch = usize::from(self.target.channels);
        let floats: Vec<f32> = frame.samples().iter().map(|&s| to_f32(s)).collect();
        // Resample as few channels as possible: mix down before, mix up after.
        let floats = if out_ch < in_ch { mix_channels_f32(&floats, in_ch, out_ch) } else { floats };
        let mut out = Vec::new();
        stage.push(&floats, &mut out)?;
        Ok(self.emit(out))
    }

    /// Flushes the audio still inside the resampler (padding with silence) and returns it;
    /// call at end of stream. The converter is then ready for a new stream.
    ///
    /// # Errors
    /// [`MediaError::Resample`] if the resampler fails.
    pub fn finish(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let Some(stage) = self.stage.as_mut() else {
            self.input = None;
            return Ok(None);
        };
        let mut out = Vec::new();
        stage.finish(&mut out)?;
        let frame = self.emit(out);
        self.input = None;
        self.stage = None;
        Ok(frame)
    }

    /// Drops all buffered audio and filter state at once (e.g. on interruption).
    pub fn reset(&mut self) {
        self.input = None;
        self.stage = None;
        self.emitted = 0;
    }

    fn restart(&mut self, format: AudioFormat, timestamp: Duration) -> Result<(), MediaError> {
        if let Some(old) = self.input {
            tracing::debug!(%old, new = %format, target = %self.target, "converter input format changed");
        }
        self.input = Some(format);
        self.base = timestamp;
        self.emitted = 0;
        self.stage = if format.sample_rate == self.target.sample_rate {
            None
        } else {
            let channels = format.channels.min(self.target.channels);
            Some(ResampleStage::new(
                format.sample_rate,
                self.target.sample_rate,
                usize::from(channels),
            )?)
        };
        Ok(())
    }

    fn emit(&mut self, out: Vec<f32>) -> Option<AudioFrame> {
        let stage_ch = self.stage.as_ref().map_or(1, |s| s.channels);
        let out_ch = usize::from(self.target.channels);
        if out.is_empty() {
            return None;
        }
        let out = if stage_ch < out_ch { mix_channels_f32(&out, stage_ch, out_ch) } else { out };
        let samples: Vec<i16> = out.into_iter().map(to_i16).collect();
        let ts = self.base + self.target.duration_of_frames(self.emitted as usize);
        let frame = AudioFrame::from_parts(samples, self.target, ts);
        self.emitted += frame.samples_per_channel() as u64;
        Some(frame)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_util::{goertzel_power, sine, zero_crossing_freq};

    /// Runs `input` through a converter in uneven chunks and returns all output samples.
    fn convert_all(input: &AudioFrame, target: AudioFormat, chunk_frames: &[usize]) -> Vec<i16> {
        let mut conv = AudioConverter::new(target).unwrap();
        let ch = usize::from(input.channels());
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < input.samples_per_channel() {
            let n = chunk_frames[i % chunk_frames.len()].min(input.samples_per_channel() - pos);
            let part = AudioFrame::new(
                input.samples()[pos * ch..(pos + n) * ch].to_vec(),
                input.format(),
                input.format().duration_of_frames(pos),
            )
            .unwrap();
            if let Some(f) = conv.process(part).unwrap() {
                out.extend_from_slice(f.samples());
            }
            pos += n;
            i += 1;
        }
        if let Some(f) = conv.finish().unwrap() {
            out.extend_from_slice(f.samples());
        }
        out
    }

    fn check_tone(from_rate: u32, to_rate: u32) {
        let input = sine(AudioFormat::new(from_rate, 1), 440.0, 0.5, from_rate as usize);
        let out = convert_all(&input, AudioFormat::new(to_rate, 1), &[137, 480, 1000, 3]);
        // Length: one second in, one second out (within a block of rounding).
        let expected = to_rate as i64;
        assert!(
            (out.len() as i64 - expected).abs() <= expected / 100,
            "{from_rate}->{to_rate}: {} samples",
            out.len()
        );
        // Frequency: zero crossings in the steady middle part.
        let mid = &out[out.len() / 10..out.len() * 9 / 10];
        let f = zero_crossing_freq(mid, to_rate);
        assert!((f - 440.0).abs() < 5.0, "{from_rate}->{to_rate}: {f} Hz");
        // Energy: the RMS of a 0.5 sine is 0.354, and the Goertzel bin at 440 Hz holds it.
        let rms = crate::level::rms_i16(mid);
        assert!((rms - 0.3535).abs() < 0.02, "{from_rate}->{to_rate}: rms {rms}");
        let at_440 = goertzel_power(mid, to_rate, 440.0);
        let at_1000 = goertzel_power(mid, to_rate, 1000.0);
        assert!(at_440 > 100.0 * at_1000, "{from_rate}->{to_rate}: {at_440} vs {at_1000}");
    }

    #[test]
    fn tone_survives_48k_to_16k() {
        check_tone(48_000, 16_000);
    }

    #[test]
    fn tone_survives_16k_to_48k() {
        check_tone(16_000, 48_000);
    }

    #[test]
    fn tone_survives_24k_to_48k() {
        check_tone(24_000, 48_000);
    }

    #[test]
    fn tone_survives_44k1_to_16k() {
        check_tone(44_100, 16_000);
    }

    #[test]
    fn tone_survives_48k_to_24k_and_odd_rates() {
        check_tone(48_000, 24_000);
        // 44 101 Hz has no small common block with 16 kHz: the sinc fallback handles it.
        check_tone(44_101, 16_000);
    }

    #[test]
    fn stereo_48k_to_mono_16k_and_back_up() {
        let mono = sine(AudioFormat::MONO_48K, 440.0, 0.5, 48_000);
        let stereo = AudioFrame::new(
            mix_channels(mono.samples(), 1, 2),
            AudioFormat::STEREO_48K,
            Duration::ZERO,
        )
        .unwrap();
        let down = convert_all(&stereo, AudioFormat::MONO_16K, &[960]);
        assert!((down.len() as i64 - 16_000).abs() < 160);
        let down = AudioFrame::new(down, AudioFormat::MONO_16K, Duration::ZERO).unwrap();
        let up = convert_all(&down, AudioFormat::STEREO_48K, &[320]);
        assert_eq!(up.len() % 2, 0);
        let left: Vec<i16> = up.iter().step_by(2).copied().collect();
        let right: Vec<i16> = up.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(left, right);
        let f = zero_crossing_freq(&left[4800..43_200], 48_000);
        assert!((f - 440.0).abs() < 5.0, "{f}");
    }

    #[test]
    fn channel_mix_rules() {
        assert_eq!(mix_channels(&[1, 3, 5, 7], 2, 1), vec![2, 6]);
        assert_eq!(mix_channels(&[1, 2], 1, 3), vec![1, 1, 1, 2, 2, 2]);
        // 4 -> 2: channel 0 averages inputs 0 and 2, channel 1 inputs 1 and 3.
        assert_eq!(mix_channels(&[10, 20, 30, 40], 4, 2), vec![20, 30]);
        // 2 -> 4 repeats L R.
        assert_eq!(mix_channels(&[1, 2], 2, 4), vec![1, 2, 1, 2]);
        // No panic on nonsense.
        assert!(mix_channels(&[1, 2, 3], 0, 2).is_empty());
        assert!(mix_channels(&[1, 2, 3], 2, 0).is_empty());
        assert_eq!(mix_channels(&[1, 2, 3], 2, 2), vec![1, 2]);
        // Extremes do not overflow.
        assert_eq!(mix_channels(&[i16::MAX, i16::MAX], 2, 1), vec![i16::MAX]);
        assert_eq!(mix_channels(&[i16::MIN, i16::MIN], 2, 1), vec![i16::MIN]);
    }

    #[test]
    fn same_rate_channel_change_keeps_timestamps_and_passthrough_is_identity() {
        let mut conv = AudioConverter::new(AudioFormat::MONO_48K).unwrap();
        let f = AudioFrame::new(vec![2, 4, 6, 8], AudioFormat::STEREO_48K, Duration::from_secs(1))
            .unwrap();
        let out = conv.process(f).unwrap().unwrap();
        assert_eq!(out.samples(), &[3, 7]);
        assert_eq!(out.timestamp(), Duration::from_secs(1));
        let same = AudioFrame::new(vec![5; 10], AudioFormat::MONO_48K, Duration::ZERO).unwrap();
        assert_eq!(conv.process(same.clone()).unwrap().unwrap(), same);
    }

    #[test]
    fn output_timestamps_are_continuous_and_follow_input() {
        let mut conv = AudioConverter::new(AudioFormat::MONO_16K).unwrap();
        let start = Duration::from_secs(3);
        let mut next: Option<Duration> = None;
        for i in 0..20u32 {
            let f = AudioFrame::silence(
                AudioFormat::MONO_48K,
                960,
                start + Duration::from_millis(20 * u64::from(i)),
            )
            .unwrap();
            if let Some(out) = conv.process(f).unwrap() {
                if let Some(n) = next {
                    assert_eq!(out.timestamp(), n);
                } else {
                    assert_eq!(out.timestamp(), start);
                }
                next = Some(out.end_timestamp());
            }
        }
        assert!(next.is_some());
    }

    #[test]
    fn format_change_restarts_and_reset_drops_state() {
        let mut conv = AudioConverter::new(AudioFormat::MONO_16K).unwrap();
        let a = sine(AudioFormat::MONO_48K, 440.0, 0.5, 4800);
        let b = sine(AudioFormat::new(44_100, 2), 440.0, 0.5, 4410);
        assert!(conv.process(a).unwrap().is_some());
        assert_eq!(conv.input_format(), Some(AudioFormat::MONO_48K));
        assert!(conv.process(b).unwrap().is_some());
        assert_eq!(conv.input_format(), Some(AudioFormat::new(44_100, 2)));
        conv.reset();
        assert_eq!(conv.input_format(), None);
        assert!(conv.finish().unwrap().is_none());
    }

    #[test]
    fn invalid_target_is_an_error() {
        assert!(AudioConverter::new(AudioFormat::new(16_000, 0)).is_err());
        assert!(AudioConverter::new(AudioFormat::new(0, 1)).is_err());
    }
}
