//! Small signal-analysis helpers for tests and diagnostics: is this a 440 Hz tone, and how loud?
//!
//! They are cheap and dependency-free, so transport tests can check that audio survived a
//! round trip (codec, resampler, network) without comparing samples one by one.

/// Estimates the frequency of a pure tone from its rising zero crossings (Hz).
/// Returns 0 for fewer than two crossings or a zero rate.
///
/// ```
/// use pipecat_media::analysis::zero_crossing_frequency;
/// let tone: Vec<i16> = (0..16_000)
///     .map(|i| (10_000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 16_000.0).sin()) as i16)
///     .collect();
/// assert!((zero_crossing_frequency(&tone, 16_000) - 440.0).abs() < 2.0);
/// ```
pub fn zero_crossing_frequency(samples: &[i16], sample_rate: u32) -> f64 {
    let mut first = None;
    let mut last = 0usize;
    let mut crossings = 0usize;
    for i in 1..samples.len() {
        if samples[i - 1] < 0 && samples[i] >= 0 {
            if first.is_none() {
                first = Some(i);
            } else {
                crossings += 1;
            }
            last = i;
        }
    }
    match first {
        Some(f) if crossings > 0 && sample_rate > 0 => {
            crossings as f64 * f64::from(sample_rate) / (last - f) as f64
        }
        _ => 0.0,
    }
}

/// Power of `samples` at `frequency` Hz (Goertzel filter), normalised so that a full-scale
/// sine at that exact frequency gives about 0.25 whatever the length (amplitude² / 4).
/// Compare bins against each other: a tone shows up orders of magnitude above other bins.
pub fn goertzel_power(samples: &[i16], sample_rate: u32, frequency: f64) -> f64 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * frequency / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32_768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power / (n * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_cases_do_not_panic() {
        assert_eq!(zero_crossing_frequency(&[], 16_000), 0.0);
        assert_eq!(zero_crossing_frequency(&[1, 2, 3], 0), 0.0);
        assert_eq!(goertzel_power(&[], 16_000, 440.0), 0.0);
        assert_eq!(goertzel_power(&[1, 2], 0, 440.0), 0.0);
    }

    #[test]
    fn goertzel_finds_the_tone() {
        let tone: Vec<i16> = (0..48_000)
            .map(|i| {
                (32_767.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin())
                    as i16
            })
            .collect();
        let p = goertzel_power(&tone, 48_000, 1000.0);
        assert!((p - 0.25).abs() < 0.01, "{p}");
        assert!(goertzel_power(&tone, 48_000, 440.0) < p / 1000.0);
    }
}
