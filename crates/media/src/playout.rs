//! A bounded, adaptive playout (jitter) buffer for bot audio.
//!
//! The network side pushes PCM as it arrives; the clock side (a sound card callback, or a
//! program pulling PCM) pulls fixed amounts at real-time pace. Time inside the buffer is counted
//! in pulled samples, never in wall-clock, so its behaviour is deterministic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::MediaError;
use crate::frame::AudioFormat;

/// Tuning of a [`PlayoutBuffer`]. Start from `PlayoutConfig::default()` and change fields.
///
/// ```
/// use pipecat_media::PlayoutConfig;
/// use std::time::Duration;
/// // A bot that sends faster than real time: keep up to 5 s instead of 2 s.
/// let config = PlayoutConfig::default().with_max_depth(Duration::from_secs(5));
/// // Or set any field directly.
/// let mut config = config;
/// config.stable_period = Duration::from_secs(30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlayoutConfig {
    /// Target depth at start: playback (re)starts once this much audio is queued.
    pub initial_target: Duration,
    /// The target never shrinks below this.
    pub min_target: Duration,
    /// The target never grows above this.
    pub max_target: Duration,
    /// Hard bound on queued audio; beyond it the oldest audio is dropped (and counted).
    pub max_depth: Duration,
    /// Target growth after an under-run that looks like network jitter.
    pub grow_step: Duration,
    /// Target reduction after each `stable_period` of playback without under-run.
    pub shrink_step: Duration,
    /// Playback time without under-run before the target shrinks by one step.
    pub stable_period: Duration,
    /// An under-run counts as jitter (and grows the target) only when audio comes back within
    /// this time; a longer gap is the bot having finished speaking.
    pub jitter_gap: Duration,
}

impl PlayoutConfig {
    /// Sets [`max_depth`](Self::max_depth).
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: Duration) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Sets [`initial_target`](Self::initial_target), [`min_target`](Self::min_target) and
    /// [`max_target`](Self::max_target).
    #[must_use]
    pub fn with_targets(mut self, initial: Duration, min: Duration, max: Duration) -> Self {
        self.initial_target = initial;
        self.min_target = min;
        self.max_target = max;
        self
    }
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        Self {
            initial_target: Duration::from_millis(60),
            min_target: Duration::from_millis(40),
            max_target: Duration::from_millis(400),
            max_depth: Duration::from_secs(2),
            grow_step: Duration::from_millis(20),
            shrink_step: Duration::from_millis(10),
            stable_period: Duration::from_secs(10),
            jitter_gap: Duration::from_millis(500),
        }
    }
}

/// Counters and gauges of a playout buffer, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlayoutStats {
    /// Audio queued now.
    pub depth: Duration,
    /// Current target depth (adapts to jitter).
    pub target: Duration,
    /// Times playback ran dry while playing (includes the end of each bot utterance).
    pub underruns: u64,
    /// Under-runs judged to be jitter (audio came back quickly): these grew the target.
    pub jitter_underruns: u64,
    /// Pushes that overflowed `max_depth` and dropped old audio.
    pub overruns: u64,
    /// Frames (samples per channel) dropped by overruns.
    pub dropped_frames: u64,
    /// Frames of silence handed out because no audio was ready.
    pub silence_frames: u64,
    /// Frames of real audio handed out.
    pub played_frames: u64,
    /// Times the buffer was flushed.
    pub flushes: u64,
}

impl PlayoutStats {
    /// Current depth in milliseconds (convenient for gauges).
    pub fn depth_ms(&self) -> f64 {
        self.depth.as_secs_f64() * 1000.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for `target` worth of audio. `gap` counts silence frames since an under-run
    /// (None when not recovering from one); `waited` counts frames pulled while holding audio.
    Buffering {
        gap: Option<u64>,
        waited: u64,
    },
    Playing,
}

/// A bounded, adaptive playout buffer of interleaved PCM16 in one format.
///
/// * Bounded: beyond `max_depth` the oldest audio is dropped, counted in `overruns` and
///   `dropped_frames`. Storage is allocated once, so pushing and pulling never allocate
///   (it can sit inside a real-time audio callback).
/// * Adaptive: playback starts when `target` is queued (or after waiting `target` worth of
///   pulls, so a short tail is never stuck). An under-run that is followed by new audio within
///   `jitter_gap` grows the target by `grow_step`; each `stable_period` of clean playback shrinks
///   it by `shrink_step`.
/// * [`pull`](Self::pull) always fills its output: silence when nothing is ready.
/// * [`flush`](Self::flush) drops everything at once (bot interrupted).
///
/// ```
/// use pipecat_media::{AudioFormat, PlayoutBuffer, PlayoutConfig};
///
/// let mut buf = PlayoutBuffer::new(AudioFormat::MONO_16K, PlayoutConfig::default())?;
/// buf.push(&[1000; 1600]); // 100 ms arrives from the network
/// let mut out = [0i16; 160]; // the sound card asks for 10 ms
/// assert_eq!(buf.pull(&mut out), 160);
/// assert_eq!(out[0], 1000);
/// buf.flush();
/// assert_eq!(buf.pull(&mut out), 0); // silence
/// assert_eq!(out, [0; 160]);
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
#[derive(Debug)]
pub struct PlayoutBuffer {
    format: AudioFormat,
    config: PlayoutConfig,
    channels: usize,
    buf: VecDeque<i16>,
    capacity: usize,
    target_frames: usize,
    state: State,
    stable_frames: u64,
    stats: PlayoutStats,
    /// False inside a real-time callback, where even a log call may lock or allocate.
    log: bool,
}

impl PlayoutBuffer {
    /// An empty buffer for audio in `format`.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format or a zero `max_depth`.
    pub fn new(format: AudioFormat, config: PlayoutConfig) -> Result<Self, MediaError> {
        format.validate()?;
        let channels = usize::from(format.channels);
        let capacity = format.frames_in(config.max_depth) * channels;
        if capacity == 0 {
            return Err(MediaError::invalid_format(
                "playout max_depth must hold at least one frame",
            ));
        }
        let mut this = Self {
            format,
            config,
            channels,
            buf: VecDeque::with_capacity(capacity),
            capacity,
            target_frames: 0,
            state: State::Buffering { gap: None, waited: 0 },
            stable_frames: 0,
            stats: PlayoutStats::default(),
            log: true,
        };
        this.target_frames = this.clamp_target(format.frames_in(config.initial_target));
        Ok(this)
    }

    /// Turns off logging, for use inside a real-time audio callback.
    #[cfg_attr(not(feature = "devices"), allow(dead_code))]
    pub(crate) fn without_logging(mut self) -> Self {
        self.log = false;
        self
    }

    /// The format of the audio held.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// The configuration.
    pub fn config(&self) -> &PlayoutConfig {
        &self.config
    }

    fn clamp_target(&self, frames: usize) -> usize {
        let min = self.format.frames_in(self.config.min_target);
        let max = self.format.frames_in(self.config.max_target).max(min);
        // The target can never exceed what the buffer may hold.
        frames.clamp(min, max).min(self.capacity / self.channels)
    }

    /// Queues interleaved samples (a trailing partial frame is ignored). Returns the number of
    /// frames dropped from the old end to stay within `max_depth`.
    pub fn push(&mut self, samples: &[i16]) -> usize {
        let usable = samples.len() / self.channels * self.channels;
        let mut samples = &samples[..usable];
        if samples.is_empty() {
            return 0;
        }
        let mut dropped = 0;
        if samples.len() > self.capacity {
            // More than the whole buffer: only the newest part can survive.
            dropped += (samples.len() - self.capacity) / self.channels;
            samples = &samples[samples.len() - self.capacity..];
        }
        let overflow = (self.buf.len() + samples.len()).saturating_sub(self.capacity);
        if overflow > 0 {
            self.buf.drain(..overflow);
            dropped += overflow / self.channels;
        }
        self.buf.extend(samples.iter().copied());
        if dropped > 0 {
            self.stats.overruns += 1;
            self.stats.dropped_frames += dropped as u64;
            if self.log {
                tracing::trace!(dropped, "playout buffer overrun");
            }
        }
        dropped
    }

    /// Fills `out` with the next audio, padding with silence when not enough is ready, and
    /// returns how many samples of real audio were written (the rest of `out` is zero).
    pub fn pull(&mut self, out: &mut [i16]) -> usize {
        let frames = out.len() / self.channels;
        if let State::Buffering { gap, waited } = self.state {
            let depth = self.buf.len() / self.channels;
            let waited = if depth > 0 { waited + frames as u64 } else { waited };
            if depth >= self.target_frames.max(1) || waited >= self.target_frames as u64 {
                if let Some(gap) = gap {
                    self.on_recovered(gap);
                }
                self.state = State::Playing;
            } else {
                out.fill(0);
                self.stats.silence_frames += frames as u64;
                let gap = gap.map(|g| g + frames as u64);
                self.state = State::Buffering { gap, waited };
                return 0;
            }
        }
        let n = self.buf.len().min(frames * self.channels);
        for (o, s) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = s;
        }
        out[n..].fill(0);
        let played = (n / self.channels) as u64;
        self.stats.played_frames += played;
        if n < out.len() {
            let missing = frames as u64 - played;
            self.stats.underruns += 1;
            self.stats.silence_frames += missing;
            self.stable_frames = 0;
            self.state = State::Buffering { gap: Some(missing), waited: 0 };
            if self.log {
                tracing::trace!(missing, "playout buffer under-run");
            }
        } else {
            self.stable_frames += played;
            let period = self.format.frames_in(self.config.stable_period) as u64;
            if period > 0 && self.stable_frames >= period {
                self.stable_frames = 0;
                let step = self.format.frames_in(self.config.shrink_step);
                self.target_frames = self.clamp_target(self.target_frames.saturating_sub(step));
            }
        }
        n
    }

    /// Audio is flowing again after an under-run that left `gap` frames of silence.
    fn on_recovered(&mut self, gap: u64) {
        if gap <= self.format.frames_in(self.config.jitter_gap) as u64 {
            self.stats.jitter_underruns += 1;
            let step = self.format.frames_in(self.config.grow_step);
            self.target_frames = self.clamp_target(self.target_frames + step);
            if self.log {
                tracing::debug!(target_ms = self.target().as_millis(), "playout target grown");
            }
        }
    }

    /// Takes up to `max_samples` queued samples (whole frames) without any pacing or jitter
    /// logic: for consumers that are not clock-driven (e.g. a stream of frames to a file).
    pub fn take(&mut self, max_samples: usize) -> Vec<i16> {
        let n = self.buf.len().min(max_samples / self.channels * self.channels);
        self.stats.played_frames += (n / self.channels) as u64;
        self.buf.drain(..n).collect()
    }

    /// Drops all queued audio at once. The next pulls return silence until `target` is queued
    /// again; a flush is not an under-run.
    pub fn flush(&mut self) {
        self.buf.clear();
        self.state = State::Buffering { gap: None, waited: 0 };
        self.stats.flushes += 1;
    }

    /// Audio queued now.
    pub fn depth(&self) -> Duration {
        self.format.duration_of_samples(self.buf.len())
    }

    /// Samples (all channels) queued now.
    pub fn len_samples(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Current target depth.
    pub fn target(&self) -> Duration {
        self.format.duration_of_frames(self.target_frames)
    }

    /// True while audio is being played out (not buffering).
    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    /// Counters and gauges.
    pub fn stats(&self) -> PlayoutStats {
        PlayoutStats { depth: self.depth(), target: self.target(), ..self.stats }
    }
}

/// Lock-free copy of [`PlayoutStats`], written by an audio callback and read elsewhere.
#[cfg_attr(not(feature = "devices"), allow(dead_code))]
#[derive(Debug, Default)]
pub(crate) struct AtomicPlayoutStats {
    fields: [AtomicU64; 10],
}

#[cfg_attr(not(feature = "devices"), allow(dead_code))]
impl AtomicPlayoutStats {
    pub(crate) fn store(&self, s: &PlayoutStats) {
        let values = [
            s.depth.as_nanos() as u64,
            s.target.as_nanos() as u64,
            s.underruns,
            s.jitter_underruns,
            s.overruns,
            s.dropped_frames,
            s.silence_frames,
            s.played_frames,
            s.flushes,
            0,
        ];
        for (f, v) in self.fields.iter().zip(values) {
            f.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_dropped(&self, frames: u64) {
        self.fields[9].fetch_add(frames, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> PlayoutStats {
        let v: Vec<u64> = self.fields.iter().map(|f| f.load(Ordering::Relaxed)).collect();
        PlayoutStats {
            depth: Duration::from_nanos(v[0]),
            target: Duration::from_nanos(v[1]),
            underruns: v[2],
            jitter_underruns: v[3],
            overruns: v[4],
            // Slot 9 counts audio dropped before it reached the buffer (ring full).
            dropped_frames: v[5] + v[9],
            silence_frames: v[6],
            played_frames: v[7],
            flushes: v[8],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: AudioFormat = AudioFormat::MONO_16K; // 16 frames per ms

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn buffer() -> PlayoutBuffer {
        PlayoutBuffer::new(F, PlayoutConfig::default()).unwrap()
    }

    /// Pulls `n` 10 ms blocks; returns how many samples of real audio came out.
    fn pull_blocks(b: &mut PlayoutBuffer, n: usize) -> usize {
        let mut out = [0i16; 160];
        (0..n).map(|_| b.pull(&mut out)).sum()
    }

    #[test]
    fn waits_for_target_then_plays_in_order() {
        let mut b = buffer();
        assert_eq!(b.target(), ms(60));
        b.push(&[1; 320]); // 20 ms: below target
        let mut out = [9i16; 160];
        assert_eq!(b.pull(&mut out), 0);
        assert_eq!(out, [0; 160]);
        let ramp: Vec<i16> = (0..1600).map(|i| i as i16).collect();
        b.push(&ramp);
        assert!(b.pull(&mut out) == 160 && b.is_playing());
        assert_eq!(out, [1; 160]);
        b.pull(&mut out);
        assert_eq!(out[0], 1); // rest of the first push
        b.pull(&mut out);
        assert_eq!(out[0], 0); // start of the ramp
        assert_eq!(out[159], 159);
        assert_eq!(b.stats().underruns, 0);
    }

    #[test]
    fn short_tail_is_not_stuck_below_target() {
        let mut b = buffer();
        b.push(&[5; 160]); // 10 ms, target 60 ms, and nothing else comes
        let played = pull_blocks(&mut b, 10);
        assert_eq!(played, 160);
    }

    #[test]
    fn underrun_returns_silence_and_is_counted() {
        let mut b = buffer();
        b.push(&[7; 1600]);
        let mut out = [0i16; 160];
        for _ in 0..10 {
            assert_eq!(b.pull(&mut out), 160);
        }
        out.fill(3);
        assert_eq!(b.pull(&mut out), 0);
        assert_eq!(out, [0; 160]);
        let s = b.stats();
        assert_eq!(s.underruns, 1);
        assert_eq!(s.silence_frames, 160);
        assert_eq!(s.played_frames, 1600);
        // Staying empty is one under-run, not one per pull.
        pull_blocks(&mut b, 5);
        assert_eq!(b.stats().underruns, 1);
    }

    #[test]
    fn partial_pull_is_an_underrun_with_audio_first() {
        let mut b = buffer();
        b.push(&[7; 1000]);
        pull_blocks(&mut b, 6); // 960 played
        let mut out = [1i16; 160];
        assert_eq!(b.pull(&mut out), 40);
        assert!(out[..40].iter().all(|&s| s == 7));
        assert!(out[40..].iter().all(|&s| s == 0));
        assert_eq!(b.stats().underruns, 1);
    }

    #[test]
    fn overrun_drops_oldest_and_counts() {
        let config = PlayoutConfig { max_depth: ms(100), ..PlayoutConfig::default() }; // 1600 samples
        let mut b = PlayoutBuffer::new(F, config).unwrap();
        let first: Vec<i16> = vec![1; 1600];
        let second: Vec<i16> = vec![2; 320];
        assert_eq!(b.push(&first), 0);
        assert_eq!(b.push(&second), 320);
        assert_eq!(b.depth(), ms(100));
        let s = b.stats();
        assert_eq!((s.overruns, s.dropped_frames), (1, 320));
        let mut out = vec![0i16; 1600];
        b.pull(&mut out);
        assert!(out[..1280].iter().all(|&x| x == 1));
        assert!(out[1280..].iter().all(|&x| x == 2));
        // A single push larger than the bound keeps its newest part.
        let big: Vec<i16> = (0..4000).map(|i| (i % 1000) as i16).collect();
        assert_eq!(b.push(&big), 2400);
        assert_eq!(b.len_samples(), 1600);
        assert_eq!(b.take(1)[0], big[2400]);
    }

    #[test]
    fn flush_drops_everything_at_once_and_is_not_an_underrun() {
        let mut b = buffer();
        b.push(&[4; 8000]);
        pull_blocks(&mut b, 2);
        b.flush();
        assert!(b.is_empty());
        assert_eq!(b.depth(), Duration::ZERO);
        assert_eq!(pull_blocks(&mut b, 3), 0);
        let s = b.stats();
        assert_eq!((s.flushes, s.underruns), (1, 0));
        // New audio after the flush plays normally.
        b.push(&[6; 1600]);
        let mut out = [0i16; 160];
        assert_eq!(b.pull(&mut out), 160);
        assert_eq!(out[0], 6);
    }

    #[test]
    fn target_grows_on_jitter_not_on_end_of_speech() {
        let mut b = buffer();
        let start = b.target();
        // Jitter: audio runs dry and resumes 30 ms later.
        for round in 1..=3u64 {
            b.push(&[1; 1600]);
            pull_blocks(&mut b, 12); // 100 ms of audio, then 20 ms short
            b.push(&[1; 3200]);
            pull_blocks(&mut b, 20); // exactly drained, no extra under-run
            assert_eq!(b.stats().jitter_underruns, round);
        }
        let grown = b.target();
        assert!(grown > start, "{grown:?} <= {start:?}");
        assert!(grown <= PlayoutConfig::default().max_target);
        // End of speech: a long silence before new audio does not grow the target.
        pull_blocks(&mut b, 100); // 1 s of nothing
        b.push(&[1; 16_000]);
        pull_blocks(&mut b, 10);
        assert_eq!(b.target(), grown);
        assert_eq!(b.stats().jitter_underruns, 3);
    }

    #[test]
    fn target_is_capped_and_shrinks_slowly_when_stable() {
        let config =
            PlayoutConfig { stable_period: Duration::from_secs(1), ..PlayoutConfig::default() };
        let mut b = PlayoutBuffer::new(F, config).unwrap();
        for _ in 0..50 {
            // Repeated jitter: 10 ms short each time.
            b.push(&[1; 160]);
            pull_blocks(&mut b, 40);
            b.push(&[1; 8000]);
            pull_blocks(&mut b, 60);
        }
        assert_eq!(b.target(), config.max_target);
        // Stable playback: 1 s per shrink step of 10 ms.
        let before = b.target();
        b.push(&[1; 16_000]);
        pull_blocks(&mut b, 100);
        let underruns = b.stats().underruns;
        for _ in 0..5 {
            b.push(&[1; 16_000]);
            pull_blocks(&mut b, 100);
        }
        assert_eq!(b.stats().underruns, underruns); // no new under-runs while stable
        let after = b.target();
        assert!(after < before);
        assert!(before - after <= ms(60), "shrank too fast: {before:?} -> {after:?}");
        assert!(after >= config.min_target);
    }

    #[test]
    fn stereo_alignment_and_bad_config() {
        let mut b = PlayoutBuffer::new(AudioFormat::STEREO_48K, PlayoutConfig::default()).unwrap();
        b.push(&[1, 2, 3]); // trailing half frame ignored
        assert_eq!(b.len_samples(), 2);
        let config = PlayoutConfig { max_depth: Duration::ZERO, ..PlayoutConfig::default() };
        assert!(PlayoutBuffer::new(F, config).is_err());
        assert!(PlayoutBuffer::new(AudioFormat::new(16_000, 0), PlayoutConfig::default()).is_err());
    }

    #[test]
    fn atomic_stats_round_trip() {
        let mut b = buffer();
        b.push(&[1; 1600]);
        pull_blocks(&mut b, 12);
        let shared = AtomicPlayoutStats::default();
        shared.store(&b.stats());
        shared.add_dropped(5);
        let s = shared.load();
        assert_eq!(s.underruns, 1);
        assert_eq!(s.dropped_frames, 5);
        assert_eq!(s.target, b.target());
    }
}
