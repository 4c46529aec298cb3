//! PCM16 helpers for the bot's audio: levels, mono mixing, resampling, tones and the paced
//! output queue.

use std::collections::VecDeque;
use std::time::Duration;

/// Amplitude under which a chunk counts as silence (pipecat's `SPEAKING_THRESHOLD`).
pub(crate) const SILENCE_THRESHOLD: i32 = 20;

/// Tone amplitude as a fraction of full scale, as in the Python peer bot.
pub(crate) const TONE_AMPLITUDE: f64 = 0.3;

/// The root mean square of PCM16 samples (0 for no samples).
pub(crate) fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

/// `true` when no sample reaches [`SILENCE_THRESHOLD`].
pub(crate) fn is_silence(samples: &[i16]) -> bool {
    samples.iter().all(|&s| i32::from(s).abs() < SILENCE_THRESHOLD)
}

/// PCM16 little-endian bytes to samples; a trailing odd byte is ignored.
pub(crate) fn from_le_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Samples to PCM16 little-endian bytes.
pub(crate) fn to_le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Interleaved samples with `channels` channels, averaged down to mono.
pub(crate) fn to_mono(samples: &[i16], channels: u16) -> Vec<i16> {
    if channels <= 1 {
        return samples.to_vec();
    }
    let n = usize::from(channels);
    samples
        .chunks(n)
        .map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            (sum / frame.len() as i32) as i16
        })
        .collect()
}

/// A sine tone at `sample_rate`, mono PCM16.
pub(crate) fn tone(duration: Duration, hz: f64, sample_rate: u32) -> Vec<i16> {
    let count = (u128::from(sample_rate) * duration.as_millis() / 1_000) as usize;
    let scale = TONE_AMPLITUDE * f64::from(i16::MAX);
    let step = 2.0 * std::f64::consts::PI * hz / f64::from(sample_rate.max(1));
    (0..count).map(|i| (scale * (step * i as f64).sin()) as i16).collect()
}

/// A streaming linear-interpolation resampler for mono PCM16. Plenty for a test bot's echo;
/// state carries across chunks so chunk edges do not click.
#[derive(Debug, Clone)]
pub(crate) struct Resampler {
    from: u32,
    to: u32,
    /// Position of the next output sample, in input samples, relative to `prev`.
    position: f64,
    /// The last input sample of the previous chunk.
    prev: Option<i16>,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both must be non-zero to convert; zero passes
    /// samples through).
    pub(crate) fn new(from: u32, to: u32) -> Self {
        Resampler { from, to, position: 0.0, prev: None }
    }

    /// The input rate this resampler converts from.
    pub(crate) fn input_rate(&self) -> u32 {
        self.from
    }

    /// Converts one chunk.
    pub(crate) fn process(&mut self, input: &[i16]) -> Vec<i16> {
        if self.from == self.to || self.from == 0 || self.to == 0 {
            return input.to_vec();
        }
        if input.is_empty() {
            return Vec::new();
        }
        let step = f64::from(self.from) / f64::from(self.to);
        let offset = usize::from(self.prev.is_some());
        let len = input.len() + offset;
        let at = |i: usize| -> f64 {
            if offset == 1 && i == 0 {
                f64::from(self.prev.unwrap_or_default())
            } else {
                f64::from(input[i - offset])
            }
        };
        let mut out = Vec::with_capacity((input.len() as f64 / step) as usize + 2);
        while self.position + 1.0 < len as f64 {
            let i = self.position as usize;
            let frac = self.position - i as f64;
            let value = at(i) + (at(i + 1) - at(i)) * frac;
            out.push(value.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16);
            self.position += step;
        }
        self.position -= (len - 1) as f64;
        self.prev = input.last().copied();
        out
    }
}

/// The bot's outgoing audio: a queue of mono samples at the session's output rate, taken out
/// in fixed chunks by the pacer.
#[derive(Debug)]
pub(crate) struct AudioOut {
    queue: VecDeque<i16>,
    /// The most samples the queue holds; older audio is dropped beyond it.
    cap: usize,
}

impl AudioOut {
    /// An empty queue holding at most `cap` samples.
    pub(crate) fn new(cap: usize) -> Self {
        AudioOut { queue: VecDeque::new(), cap }
    }

    /// Appends audio, dropping the oldest samples beyond the cap.
    pub(crate) fn push(&mut self, samples: &[i16]) {
        self.queue.extend(samples.iter().copied());
        let excess = self.queue.len().saturating_sub(self.cap);
        if excess > 0 {
            self.queue.drain(..excess);
        }
    }

    /// Takes the next chunk of `len` samples, zero-padded at the end of the audio; `None`
    /// when nothing is queued.
    pub(crate) fn take_chunk(&mut self, len: usize) -> Option<Vec<i16>> {
        if self.queue.is_empty() {
            return None;
        }
        let n = len.min(self.queue.len());
        let mut chunk: Vec<i16> = self.queue.drain(..n).collect();
        chunk.resize(len, 0);
        Some(chunk)
    }

    /// Drops everything queued (an interruption).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(rms(&[]), 0.0);
        assert!((rms(&[1000, -1000]) - 1000.0).abs() < 0.01);
        assert!(is_silence(&[0, 5, -19]));
        assert!(!is_silence(&[0, 20]));
    }

    #[test]
    fn bytes_round_trip_and_odd_tail() {
        let samples = [1i16, -2, 300, i16::MIN];
        assert_eq!(from_le_bytes(&to_le_bytes(&samples)), samples);
        assert_eq!(from_le_bytes(&[1, 0, 7]), vec![1]);
    }

    #[test]
    fn mono_mix() {
        assert_eq!(to_mono(&[100, 300, -100, -300], 2), vec![200, -200]);
        assert_eq!(to_mono(&[1, 2, 3], 1), vec![1, 2, 3]);
        // A ragged last frame does not panic.
        assert_eq!(to_mono(&[100, 300, 50], 2), vec![200, 50]);
    }

    #[test]
    fn resampler_rates_and_continuity() {
        let mut r = Resampler::new(16_000, 24_000);
        let input = tone(Duration::from_millis(100), 440.0, 16_000);
        let mut out = Vec::new();
        for chunk in input.chunks(512) {
            out.extend(r.process(chunk));
        }
        // 100 ms at 24 kHz, within one sample of edge effects.
        assert!((out.len() as i64 - 2_400).abs() <= 2, "{}", out.len());
        // The level survives resampling.
        assert!((rms(&out) - rms(&input)).abs() < rms(&input) * 0.05);
        let mut same = Resampler::new(48_000, 48_000);
        assert_eq!(same.process(&[1, 2, 3]), vec![1, 2, 3]);
        let mut down = Resampler::new(48_000, 16_000);
        let out = down.process(&vec![0; 4_800]);
        assert!((out.len() as i64 - 1_600).abs() <= 1);
    }

    #[test]
    fn tone_level() {
        let t = tone(Duration::from_millis(500), 440.0, 24_000);
        assert_eq!(t.len(), 12_000);
        // 0.3 of full scale: RMS about 0.3 * 32767 / sqrt(2).
        assert!((rms(&t) - 6_951.0).abs() < 100.0, "{}", rms(&t));
    }

    #[test]
    fn audio_out_chunks_pads_and_caps() {
        let mut q = AudioOut::new(10);
        assert!(q.take_chunk(4).is_none());
        q.push(&[1; 6]);
        assert_eq!(q.take_chunk(4), Some(vec![1, 1, 1, 1]));
        assert_eq!(q.take_chunk(4), Some(vec![1, 1, 0, 0]));
        q.push(&[2; 15]);
        assert_eq!(q.take_chunk(20).map(|c| c.iter().filter(|&&s| s == 2).count()), Some(10));
        q.push(&[3; 3]);
        q.clear();
        assert!(q.take_chunk(1).is_none());
    }
}
