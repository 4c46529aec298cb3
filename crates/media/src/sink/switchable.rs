//! A sink whose inner sink can be replaced while it runs.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::AudioSink;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// A sink that forwards to an inner sink (a speaker, a file...) that can be replaced at any
/// time through its [`SinkSwitch`]. The replaced sink is flushed and dropped: audio queued
/// for the old device is not carried over.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame, AudioSink, NullSink, SwitchableSink};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let (mut speaker, switch) = SwitchableSink::new(Box::new(NullSink::new(AudioFormat::MONO_48K)));
/// switch.replace(Box::new(NullSink::new(AudioFormat::MONO_16K)))?;
/// speaker.write(AudioFrame::silence(AudioFormat::MONO_24K, 240, Duration::ZERO)?).await?;
/// assert_eq!(speaker.format(), AudioFormat::MONO_16K);
/// # Ok(()) }
/// ```
pub struct SwitchableSink {
    inner: Box<dyn AudioSink>,
    replacements: mpsc::UnboundedReceiver<Box<dyn AudioSink>>,
}

/// Replaces the inner sink of a [`SwitchableSink`]. Cloneable, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct SinkSwitch {
    replacements: mpsc::UnboundedSender<Box<dyn AudioSink>>,
}

impl std::fmt::Debug for SwitchableSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchableSink")
            .field("format", &self.inner.format())
            .finish_non_exhaustive()
    }
}

impl SwitchableSink {
    /// Wraps `initial`.
    pub fn new(initial: Box<dyn AudioSink>) -> (Self, SinkSwitch) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { inner: initial, replacements: rx }, SinkSwitch { replacements: tx })
    }

    fn take_replacements(&mut self) {
        while let Ok(mut next) = self.replacements.try_recv() {
            tracing::debug!(from = %self.inner.format(), to = %next.format(), "switching audio sink");
            std::mem::swap(&mut self.inner, &mut next);
            next.flush();
        }
    }
}

#[async_trait]
impl AudioSink for SwitchableSink {
    /// The current inner sink's format (it may change after a replacement).
    fn format(&self) -> AudioFormat {
        self.inner.format()
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        self.take_replacements();
        self.inner.write(frame).await
    }

    fn flush(&mut self) {
        self.take_replacements();
        self.inner.flush();
    }

    async fn close(&mut self) -> Result<(), MediaError> {
        self.take_replacements();
        self.inner.close().await
    }
}

impl SinkSwitch {
    /// Replaces the inner sink; takes effect at the next write or flush.
    ///
    /// # Errors
    /// [`MediaError::Closed`] if the [`SwitchableSink`] was dropped.
    pub fn replace(&self, sink: Box<dyn AudioSink>) -> Result<(), MediaError> {
        self.replacements.send(sink).map_err(|_| MediaError::Closed)
    }

    /// True once the [`SwitchableSink`] was dropped.
    pub fn is_closed(&self) -> bool {
        self.replacements.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;
    use std::time::Duration;

    #[tokio::test]
    async fn replacement_flushes_the_old_sink_and_receives_new_audio() {
        let (a, a_handle) = MemorySink::new(AudioFormat::MONO_16K).unwrap();
        let (b, b_handle) = MemorySink::new(AudioFormat::MONO_48K).unwrap();
        let (mut sink, switch) = SwitchableSink::new(Box::new(a));
        let f = AudioFrame::new(vec![9; 320], AudioFormat::MONO_16K, Duration::ZERO).unwrap();
        sink.write(f.clone()).await.unwrap();
        assert_eq!(a_handle.stats().depth, Duration::from_millis(20));
        switch.replace(Box::new(b)).unwrap();
        sink.write(f).await.unwrap();
        assert_eq!(sink.format(), AudioFormat::MONO_48K);
        assert!(a_handle.is_closed()); // old sink dropped
        assert!(a_handle.take_all().is_empty()); // and flushed
        assert!(b_handle.stats().depth > Duration::ZERO);
        drop(sink);
        assert!(switch.is_closed());
    }
}
