//! Helpers shared by the unit tests.

use std::time::Duration;

use crate::frame::{AudioFormat, AudioFrame};
use crate::source::ToneGenerator;

pub(crate) use crate::analysis::goertzel_power;

/// `frames` frames of a sine at `freq` Hz and `amplitude` (0..1).
pub(crate) fn sine(format: AudioFormat, freq: f32, amplitude: f32, frames: usize) -> AudioFrame {
    ToneGenerator::new(format, freq, amplitude).unwrap().frame(frames, Duration::ZERO)
}

/// Frequency of a mono tone from zero crossings.
pub(crate) fn zero_crossing_freq(samples: &[i16], rate: u32) -> f64 {
    crate::analysis::zero_crossing_frequency(samples, rate)
}
