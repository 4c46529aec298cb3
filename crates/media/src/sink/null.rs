//! A sink that discards audio.

use std::time::Duration;

use async_trait::async_trait;

use super::AudioSink;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Discards every frame, counting what it was given. For bots whose audio nobody listens to
/// (load tests, text-only sessions).
#[derive(Debug, Clone)]
pub struct NullSink {
    format: AudioFormat,
    frames: u64,
    written: Duration,
}

impl NullSink {
    /// A null sink reporting `format` (it accepts any format).
    pub fn new(format: AudioFormat) -> Self {
        Self { format, frames: 0, written: Duration::ZERO }
    }

    /// Number of frames written.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Total duration of the audio written.
    pub fn duration_written(&self) -> Duration {
        self.written
    }
}

#[async_trait]
impl AudioSink for NullSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        self.frames += 1;
        self.written += frame.duration();
        Ok(())
    }

    fn flush(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_discards() {
        let mut sink = NullSink::new(AudioFormat::MONO_16K);
        for _ in 0..3 {
            let f = AudioFrame::silence(AudioFormat::STEREO_48K, 960, Duration::ZERO).unwrap();
            sink.write(f).await.unwrap();
        }
        sink.flush();
        sink.close().await.unwrap();
        assert_eq!(sink.frames_written(), 3);
        assert_eq!(sink.duration_written(), Duration::from_millis(60));
    }
}
