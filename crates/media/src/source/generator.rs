//! Synthetic sources: silence and a sine tone.

use std::time::Duration;

use async_trait::async_trait;

use super::{AudioSource, DEFAULT_FRAME_DURATION, Pacer, frames_per_chunk};
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Endless (or limited) digital silence, paced in real time by default.
///
/// Useful as a placeholder microphone: a transport keeps sending, the bot hears nothing.
#[derive(Debug, Clone)]
pub struct SilenceSource {
    format: AudioFormat,
    chunk: usize,
    limit: Option<usize>,
    produced: usize,
    pacer: Pacer,
}

impl SilenceSource {
    /// Silence in `format`, 20 ms frames, paced, no end.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format.
    pub fn new(format: AudioFormat) -> Result<Self, MediaError> {
        format.validate()?;
        Ok(Self {
            format,
            chunk: frames_per_chunk(format, DEFAULT_FRAME_DURATION),
            limit: None,
            produced: 0,
            pacer: Pacer::new(true),
        })
    }

    /// Release frames in real time (default) or as fast as they are asked for. An unpaced,
    /// unlimited silence source never waits: give it a [`limit`](Self::limit).
    #[must_use]
    pub fn paced(mut self, paced: bool) -> Self {
        self.pacer.set_enabled(paced);
        self
    }

    /// Length of each frame (at least one sample).
    #[must_use]
    pub fn frame_duration(mut self, duration: Duration) -> Self {
        self.chunk = frames_per_chunk(self.format, duration);
        self
    }

    /// End the stream after this much audio.
    #[must_use]
    pub fn limit(mut self, total: Duration) -> Self {
        self.limit = Some(self.format.frames_in(total));
        self
    }
}

#[async_trait]
impl AudioSource for SilenceSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let n = match self.limit {
            Some(limit) => self.chunk.min(limit.saturating_sub(self.produced)),
            None => self.chunk,
        };
        if n == 0 {
            return Ok(None);
        }
        let ts = self.format.duration_of_frames(self.produced);
        self.pacer.wait_until(ts).await;
        self.produced += n;
        Ok(Some(AudioFrame::from_parts(
            vec![0; n * usize::from(self.format.channels)],
            self.format,
            ts,
        )))
    }
}

/// A phase-continuous sine generator (same signal on every channel), usable without async.
///
/// ```
/// use pipecat_media::{AudioFormat, ToneGenerator};
/// let mut tone = ToneGenerator::new(AudioFormat::MONO_48K, 1000.0, 0.25)?;
/// let mut pcm = [0i16; 480];
/// tone.fill(&mut pcm);
/// assert!(pcm.iter().any(|&s| s > 8000));
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    format: AudioFormat,
    step: f64,
    amplitude: f64,
    phase: f64,
}

impl ToneGenerator {
    /// A sine of `frequency` Hz (above 0, below half the sample rate) at `amplitude` (0..=1 of
    /// full scale).
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format, [`MediaError::InvalidConfig`] for a
    /// frequency or amplitude out of range.
    pub fn new(format: AudioFormat, frequency: f32, amplitude: f32) -> Result<Self, MediaError> {
        format.validate()?;
        let nyquist = format.sample_rate as f32 / 2.0;
        if !(frequency.is_finite() && frequency > 0.0 && frequency < nyquist) {
            return Err(MediaError::invalid_config(format!(
                "tone frequency {frequency} Hz must be within (0, {nyquist})"
            )));
        }
        if !(0.0..=1.0).contains(&amplitude) {
            return Err(MediaError::invalid_config(format!(
                "tone amplitude {amplitude} must be within 0..=1"
            )));
        }
        Ok(Self {
            format,
            step: std::f64::consts::TAU * f64::from(frequency) / f64::from(format.sample_rate),
            amplitude: f64::from(amplitude) * 32_767.0,
            phase: 0.0,
        })
    }

    /// The format generated.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Fills interleaved `out` with the next samples (a trailing partial frame is left as is).
    pub fn fill(&mut self, out: &mut [i16]) {
        for frame in out.chunks_exact_mut(usize::from(self.format.channels)) {
            let v = (self.amplitude * self.phase.sin()).round() as i16;
            frame.fill(v);
            self.phase = (self.phase + self.step) % std::f64::consts::TAU;
        }
    }

    /// The next `frames` frames as an [`AudioFrame`] stamped `timestamp`.
    pub fn frame(&mut self, frames: usize, timestamp: Duration) -> AudioFrame {
        let mut samples = vec![0; frames * usize::from(self.format.channels)];
        self.fill(&mut samples);
        AudioFrame::from_parts(samples, self.format, timestamp)
    }
}

/// A sine tone source (a test signal for microphones and transports), paced by default.
#[derive(Debug, Clone)]
pub struct ToneSource {
    generator: ToneGenerator,
    chunk: usize,
    limit: Option<usize>,
    produced: usize,
    pacer: Pacer,
}

impl ToneSource {
    /// A tone of `frequency` Hz at `amplitude` (0..=1), 20 ms frames, paced, no end.
    ///
    /// # Errors
    /// As [`ToneGenerator::new`].
    pub fn new(format: AudioFormat, frequency: f32, amplitude: f32) -> Result<Self, MediaError> {
        Ok(Self {
            generator: ToneGenerator::new(format, frequency, amplitude)?,
            chunk: frames_per_chunk(format, DEFAULT_FRAME_DURATION),
            limit: None,
            produced: 0,
            pacer: Pacer::new(true),
        })
    }

    /// Release frames in real time (default) or as fast as they are asked for.
    #[must_use]
    pub fn paced(mut self, paced: bool) -> Self {
        self.pacer.set_enabled(paced);
        self
    }

    /// Length of each frame (at least one sample).
    #[must_use]
    pub fn frame_duration(mut self, duration: Duration) -> Self {
        self.chunk = frames_per_chunk(self.generator.format, duration);
        self
    }

    /// End the stream after this much audio.
    #[must_use]
    pub fn limit(mut self, total: Duration) -> Self {
        self.limit = Some(self.generator.format.frames_in(total));
        self
    }
}

#[async_trait]
impl AudioSource for ToneSource {
    fn format(&self) -> AudioFormat {
        self.generator.format
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let n = match self.limit {
            Some(limit) => self.chunk.min(limit.saturating_sub(self.produced)),
            None => self.chunk,
        };
        if n == 0 {
            return Ok(None);
        }
        let ts = self.generator.format.duration_of_frames(self.produced);
        self.pacer.wait_until(ts).await;
        self.produced += n;
        Ok(Some(self.generator.frame(n, ts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{goertzel_power, zero_crossing_frequency};

    #[tokio::test]
    async fn silence_source_limits_and_timestamps() {
        let mut s = SilenceSource::new(AudioFormat::STEREO_48K)
            .unwrap()
            .paced(false)
            .frame_duration(Duration::from_millis(10))
            .limit(Duration::from_millis(25));
        let mut got = Vec::new();
        for _ in 0..10 {
            match s.next_frame().await.unwrap() {
                Some(f) => got.push(f),
                None => break,
            }
        }
        let sizes: Vec<usize> = got.iter().map(AudioFrame::samples_per_channel).collect();
        assert_eq!(sizes, vec![480, 480, 240]);
        assert_eq!(got[2].timestamp(), Duration::from_millis(20));
        assert!(got.iter().all(|f| f.samples().iter().all(|&x| x == 0)));
        assert!(s.next_frame().await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn paced_sources_follow_the_clock() {
        let mut s = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.5).unwrap();
        let start = tokio::time::Instant::now();
        for _ in 0..50 {
            s.next_frame().await.unwrap().unwrap();
        }
        // 50 frames of 20 ms: the last is due at 980 ms (paused clock, so this is exact).
        assert_eq!(start.elapsed(), Duration::from_millis(980));
    }

    /// A source read again after a pause (a reused client's next session) resumes from now:
    /// the pause is not released as a burst of frames.
    #[tokio::test(start_paused = true)]
    async fn a_paced_source_resumes_from_now_after_a_pause() {
        let mut s = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.5).unwrap();
        for _ in 0..10 {
            s.next_frame().await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let resumed = tokio::time::Instant::now();
        let mut frames = 0;
        while resumed.elapsed() < Duration::from_millis(500) {
            s.next_frame().await.unwrap().unwrap();
            frames += 1;
        }
        // 500 ms of real time is 25 frames (26 with the one due at once), not 2.5 s of backlog.
        assert!((25..=27).contains(&frames), "{frames} frames in 500 ms after a pause");
        // Jitter within the catch-up bound is still made up: no drift.
        let start = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut caught_up = 0;
        while start.elapsed() < Duration::from_millis(100) + Duration::from_millis(1) {
            s.next_frame().await.unwrap().unwrap();
            caught_up += 1;
        }
        assert!(caught_up >= 5, "a 100 ms hiccup is caught up on ({caught_up} frames)");
    }

    #[tokio::test]
    async fn tone_source_has_the_right_pitch_and_level() {
        let mut s = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.5)
            .unwrap()
            .paced(false)
            .limit(Duration::from_secs(1));
        let mut pcm = Vec::new();
        for _ in 0..100 {
            match s.next_frame().await.unwrap() {
                Some(f) => pcm.extend_from_slice(f.samples()),
                None => break,
            }
        }
        assert_eq!(pcm.len(), 16_000);
        assert!((zero_crossing_frequency(&pcm, 16_000) - 440.0).abs() < 1.0);
        assert!((crate::level::rms_i16(&pcm) - 0.3535).abs() < 0.005);
        assert!(goertzel_power(&pcm, 16_000, 440.0) > 0.05);
    }

    #[test]
    fn tone_rejects_bad_settings() {
        let f = AudioFormat::MONO_16K;
        assert!(ToneSource::new(f, 0.0, 0.5).is_err());
        assert!(ToneSource::new(f, 8_000.0, 0.5).is_err());
        assert!(ToneSource::new(f, f32::NAN, 0.5).is_err());
        assert!(ToneSource::new(f, 440.0, 1.5).is_err());
        assert!(ToneSource::new(f, 440.0, f32::NAN).is_err());
        assert!(ToneSource::new(AudioFormat::new(16_000, 0), 440.0, 0.5).is_err());
    }

    #[test]
    fn generator_is_phase_continuous_across_calls() {
        let mut a = ToneGenerator::new(AudioFormat::MONO_48K, 440.0, 0.5).unwrap();
        let mut b = a.clone();
        let whole = a.frame(960, Duration::ZERO);
        let mut parts = b.frame(333, Duration::ZERO).into_samples();
        parts.extend(b.frame(627, Duration::ZERO).into_samples());
        assert_eq!(whole.samples(), &parts[..]);
    }
}
