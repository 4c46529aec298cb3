//! Audio levels on a 0..1 scale suited to speech, measured about every 100 ms.

use std::time::Duration;

use crate::frame::{AudioFormat, AudioFrame};

/// Level 0 corresponds to this RMS level in dBFS (and anything quieter). Room noise sits below
/// it, normal speech lands around 0.5..0.7 and shouting near 0.9.
pub const LEVEL_FLOOR_DBFS: f32 = -60.0;

/// Linear RMS of PCM16 samples: 0 for silence, 1 for a full-scale square wave.
pub fn rms_i16(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    ((sum / samples.len() as f64).sqrt() / 32_767.0).min(1.0) as f32
}

/// Maps a linear RMS (0..1) to the 0..1 level scale: decibels relative to full scale, with
/// [`LEVEL_FLOOR_DBFS`] at 0 and 0 dBFS at 1.
///
/// A linear scale would put normal speech (RMS around 0.03..0.1) under 0.1, which is useless
/// for a meter; a dB scale spreads it over the middle of the range.
///
/// ```
/// use pipecat_media::rms_to_level;
/// assert_eq!(rms_to_level(0.0), 0.0);
/// assert_eq!(rms_to_level(1.0), 1.0);
/// let speech = rms_to_level(0.05); // about -26 dBFS
/// assert!(speech > 0.5 && speech < 0.6);
/// ```
pub fn rms_to_level(rms: f32) -> f32 {
    if rms.is_nan() || rms <= 0.0 {
        return 0.0;
    }
    let dbfs = 20.0 * rms.min(1.0).log10();
    (1.0 - dbfs / LEVEL_FLOOR_DBFS).clamp(0.0, 1.0)
}

/// Measures the level of a stream of frames over fixed windows of audio (100 ms by default),
/// counting time in samples, not wall-clock.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame, LevelMeter};
/// use std::time::Duration;
///
/// let mut meter = LevelMeter::new();
/// let frame = AudioFrame::new(vec![8_000; 320], AudioFormat::MONO_16K, Duration::ZERO)?;
/// let levels: Vec<f32> = (0..10).filter_map(|_| meter.push(&frame)).collect();
/// assert_eq!(levels.len(), 2); // 200 ms of audio, one level per 100 ms
/// assert!(levels[0] > 0.7); // a constant at 1/4 of full scale is about -12 dBFS
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LevelMeter {
    window: Duration,
    format: Option<AudioFormat>,
    window_frames: usize,
    frames: usize,
    sum_sq: f64,
    samples: usize,
    last: f32,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelMeter {
    /// The default measurement window.
    pub const DEFAULT_WINDOW: Duration = Duration::from_millis(100);

    /// A meter with a 100 ms window.
    pub fn new() -> Self {
        Self::with_window(Self::DEFAULT_WINDOW)
    }

    /// A meter with another window (at least 1 ms).
    pub fn with_window(window: Duration) -> Self {
        Self {
            window: window.max(Duration::from_millis(1)),
            format: None,
            window_frames: 0,
            frames: 0,
            sum_sq: 0.0,
            samples: 0,
            last: 0.0,
        }
    }

    /// The measurement window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Feeds a frame. Returns a level when a window completed inside it; if the frame covered
    /// several windows, the most recent one is returned (a meter has no use for the others).
    pub fn push(&mut self, frame: &AudioFrame) -> Option<f32> {
        let format = frame.format();
        if self.format != Some(format) {
            // A new rate changes the window length in samples: start a fresh window.
            self.format = Some(format);
            self.window_frames = format.frames_in(self.window).max(1);
            self.frames = 0;
            self.sum_sq = 0.0;
            self.samples = 0;
        }
        let channels = usize::from(format.channels);
        let mut emitted = None;
        for chunk in frame.samples().chunks_exact(channels) {
            for &s in chunk {
                self.sum_sq += f64::from(s) * f64::from(s);
            }
            self.samples += channels;
            self.frames += 1;
            if self.frames >= self.window_frames {
                let rms = ((self.sum_sq / self.samples as f64).sqrt() / 32_767.0).min(1.0) as f32;
                self.last = rms_to_level(rms);
                emitted = Some(self.last);
                self.frames = 0;
                self.sum_sq = 0.0;
                self.samples = 0;
            }
        }
        emitted
    }

    /// The last level measured (0 before the first window completes).
    pub fn level(&self) -> f32 {
        self.last
    }

    /// Forgets the partial window and the last level.
    pub fn reset(&mut self) {
        *self = Self::with_window(self.window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_frame(format: AudioFormat, frames: usize, amplitude: f32) -> AudioFrame {
        let samples = (0..frames)
            .flat_map(|i| {
                let v = (amplitude
                    * 32_767.0
                    * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / format.sample_rate as f32)
                        .sin()) as i16;
                std::iter::repeat_n(v, usize::from(format.channels))
            })
            .collect();
        AudioFrame::new(samples, format, Duration::ZERO).unwrap()
    }

    #[test]
    fn one_level_per_window() {
        let mut m = LevelMeter::new();
        let f = tone_frame(AudioFormat::MONO_48K, 480, 0.5); // 10 ms
        let n = (0..100).filter_map(|_| m.push(&f)).count(); // 1 s
        assert_eq!(n, 10);
    }

    #[test]
    fn window_is_counted_in_samples_across_rates_and_big_frames() {
        let mut m = LevelMeter::new();
        // One 1-second frame completes 10 windows: one level comes back.
        let big = tone_frame(AudioFormat::STEREO_48K, 48_000, 0.5);
        assert!(m.push(&big).is_some());
        // A rate change restarts the window: 50 ms at 16 kHz gives nothing yet.
        let small = tone_frame(AudioFormat::MONO_16K, 800, 0.5);
        assert!(m.push(&small).is_none());
        assert!(m.push(&small).is_some());
    }

    #[test]
    fn louder_is_higher_and_scale_is_bounded() {
        let mut m = LevelMeter::new();
        let mut level_of = |amp: f32| {
            m.reset();
            m.push(&tone_frame(AudioFormat::MONO_16K, 1600, amp)).unwrap()
        };
        let silent = level_of(0.0);
        let quiet = level_of(0.01);
        let speech = level_of(0.1);
        let loud = level_of(1.0);
        assert_eq!(silent, 0.0);
        assert!(quiet > 0.0 && quiet < speech && speech < loud && loud <= 1.0);
        assert!((0.5..0.8).contains(&speech), "speech level {speech}");
    }

    #[test]
    fn level_mapping_edges() {
        assert_eq!(rms_to_level(f32::NAN), 0.0);
        assert_eq!(rms_to_level(-1.0), 0.0);
        assert_eq!(rms_to_level(2.0), 1.0);
        assert_eq!(rms_to_level(0.0001), 0.0); // -80 dBFS is below the floor
        assert!((rms_to_level(0.001) - 0.0).abs() < 1e-6); // exactly the floor
    }
}
