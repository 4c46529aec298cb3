//! Re-blocking arbitrary PCM into frames of one exact size (Opus frames, 20 ms packets).

use std::time::Duration;

use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Cuts a stream of frames of any size into frames of exactly `frame_duration` (as a whole
/// number of samples), keeping the remainder for the next push. Timestamps continue from the
/// first frame pushed (after [`reset`](Self::reset), from the next one).
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame, FrameChunker};
/// use std::time::Duration;
///
/// let mut chunker = FrameChunker::new(AudioFormat::MONO_48K, Duration::from_millis(20))?;
/// chunker.push(&AudioFrame::silence(AudioFormat::MONO_48K, 1500, Duration::ZERO)?)?;
/// let frames: Vec<_> = chunker.by_ref().collect();
/// assert_eq!(frames.len(), 1); // 960 samples out, 540 kept
/// assert_eq!(chunker.buffered_frames(), 540);
/// let last = chunker.finish().unwrap(); // padded with silence to 960
/// assert_eq!(last.samples_per_channel(), 960);
/// assert_eq!(last.timestamp(), Duration::from_millis(20));
/// # Ok::<(), pipecat_media::MediaError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameChunker {
    format: AudioFormat,
    frame_frames: usize,
    buf: Vec<i16>,
    base: Option<Duration>,
    emitted: usize,
}

impl FrameChunker {
    /// A chunker for `format` producing frames of `frame_duration`.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format, [`MediaError::InvalidConfig`] if the
    /// duration is shorter than one sample.
    pub fn new(format: AudioFormat, frame_duration: Duration) -> Result<Self, MediaError> {
        format.validate()?;
        let frame_frames = format.frames_in(frame_duration);
        if frame_frames == 0 {
            return Err(MediaError::invalid_config(format!(
                "frame duration {frame_duration:?} is shorter than one sample at {format}"
            )));
        }
        Ok(Self { format, frame_frames, buf: Vec::new(), base: None, emitted: 0 })
    }

    /// The format chunked.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Samples per channel in each output frame.
    pub fn frame_len(&self) -> usize {
        self.frame_frames
    }

    /// Adds a frame, which must be in the chunker's format.
    ///
    /// # Errors
    /// [`MediaError::FormatMismatch`] otherwise.
    pub fn push(&mut self, frame: &AudioFrame) -> Result<(), MediaError> {
        if frame.format() != self.format {
            return Err(MediaError::FormatMismatch {
                expected: self.format,
                actual: frame.format(),
            });
        }
        if self.base.is_none() {
            self.base = Some(frame.timestamp());
        }
        self.buf.extend_from_slice(frame.samples());
        Ok(())
    }

    /// Adds interleaved samples (a trailing partial frame is ignored).
    pub fn push_samples(&mut self, samples: &[i16]) {
        let ch = usize::from(self.format.channels);
        self.base.get_or_insert(Duration::ZERO);
        self.buf.extend_from_slice(&samples[..samples.len() / ch * ch]);
    }

    /// Frames (samples per channel) waiting for a complete output frame.
    pub fn buffered_frames(&self) -> usize {
        self.buf.len() / usize::from(self.format.channels)
    }

    /// The next complete frame, if there is one.
    pub fn next_frame(&mut self) -> Option<AudioFrame> {
        let want = self.frame_frames * usize::from(self.format.channels);
        if self.buf.len() < want {
            return None;
        }
        let rest = self.buf.split_off(want);
        let samples = std::mem::replace(&mut self.buf, rest);
        Some(self.stamp(samples))
    }

    /// The remainder padded with silence to a full frame (`None` if nothing is left).
    pub fn finish(&mut self) -> Option<AudioFrame> {
        if self.buf.is_empty() {
            return None;
        }
        let want = self.frame_frames * usize::from(self.format.channels);
        let mut samples = std::mem::take(&mut self.buf);
        samples.resize(want, 0);
        Some(self.stamp(samples))
    }

    /// Drops buffered samples and restarts the timeline.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.base = None;
        self.emitted = 0;
    }

    fn stamp(&mut self, samples: Vec<i16>) -> AudioFrame {
        let ts = self.base.unwrap_or_default() + self.format.duration_of_frames(self.emitted);
        self.emitted += self.frame_frames;
        AudioFrame::from_parts(samples, self.format, ts)
    }
}

impl Iterator for FrameChunker {
    type Item = AudioFrame;

    fn next(&mut self) -> Option<AudioFrame> {
        self.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_sizes_come_out_exact_and_in_order() {
        let f = AudioFormat::STEREO_48K;
        let mut c = FrameChunker::new(f, Duration::from_millis(10)).unwrap();
        let mut counter = 0i16;
        let mut out = Vec::new();
        for size in [1usize, 7, 480, 479, 2000, 13, 0, 961] {
            let samples: Vec<i16> = (0..size * 2)
                .map(|_| {
                    counter = counter.wrapping_add(1);
                    counter
                })
                .collect();
            c.push(&AudioFrame::new(samples, f, Duration::from_secs(1)).unwrap()).unwrap();
            out.extend(c.by_ref());
        }
        let total: usize = [1usize, 7, 480, 479, 2000, 13, 0, 961].iter().sum();
        assert_eq!(out.len(), total / 480);
        assert!(out.iter().all(|f| f.samples_per_channel() == 480));
        let flat: Vec<i16> = out.iter().flat_map(|f| f.samples().iter().copied()).collect();
        assert!(flat.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        for (i, fr) in out.iter().enumerate() {
            assert_eq!(
                fr.timestamp(),
                Duration::from_secs(1) + Duration::from_millis(10 * i as u64)
            );
        }
        assert_eq!(c.buffered_frames(), total % 480);
        assert_eq!(c.finish().unwrap().samples_per_channel(), 480);
        assert!(c.finish().is_none());
    }

    #[test]
    fn errors_and_reset() {
        assert!(FrameChunker::new(AudioFormat::MONO_16K, Duration::from_nanos(10)).is_err());
        assert!(FrameChunker::new(AudioFormat::new(16_000, 0), Duration::from_millis(20)).is_err());
        let mut c = FrameChunker::new(AudioFormat::MONO_16K, Duration::from_millis(20)).unwrap();
        let wrong = AudioFrame::silence(AudioFormat::MONO_48K, 10, Duration::ZERO).unwrap();
        assert!(matches!(c.push(&wrong), Err(MediaError::FormatMismatch { .. })));
        c.push_samples(&[1; 100]);
        c.reset();
        assert_eq!(c.buffered_frames(), 0);
        assert!(c.next_frame().is_none());
    }
}
