//! Where audio goes: the [`AudioSink`] trait and its headless implementations.

mod memory;
mod null;
mod switchable;
mod wav;

use async_trait::async_trait;

pub use memory::{MemorySink, MemorySinkHandle};
pub use null::NullSink;
pub use switchable::{SinkSwitch, SwitchableSink};
pub use wav::WavFileSink;

use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// A consumer of audio frames: speaker, file, program-read buffer.
///
/// Object safe and `Send`, so transports take a `Box<dyn AudioSink>`. The sinks of this crate
/// accept frames in **any** format and convert them to [`format`](Self::format) themselves
/// (resampling state is kept across writes), so a transport can write bot audio at whatever
/// rate it arrives. Writes never wait for playback: sinks that play in real time buffer the
/// audio in a bounded [`PlayoutBuffer`](crate::PlayoutBuffer).
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame, AudioSink, MemorySink};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let (sink, handle) = MemorySink::new(AudioFormat::MONO_16K)?;
/// let mut sink: Box<dyn AudioSink> = Box::new(sink);
/// sink.write(AudioFrame::silence(AudioFormat::MONO_16K, 320, Duration::ZERO)?).await?;
/// sink.flush(); // the bot was interrupted: drop what was not played yet
/// assert_eq!(handle.stats().depth, Duration::ZERO);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait AudioSink: Send {
    /// The format this sink plays or stores; frames in other formats are converted to it.
    fn format(&self) -> AudioFormat;

    /// Queues or writes one frame.
    ///
    /// # Errors
    /// Sink-specific: a failing file, a closed channel...
    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError>;

    /// Drops everything buffered and not yet played, at once (the bot was interrupted).
    /// Audio already played or written to a file stays.
    fn flush(&mut self);

    /// Ends the stream: writes out what conversion still holds and finalises (a WAV header,
    /// the end of an in-memory stream). Writing after `close` is an error for most sinks;
    /// closing again does nothing (the transports close their sink when they are dropped,
    /// whether or not the program already did).
    ///
    /// # Errors
    /// Sink-specific.
    async fn close(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
}

#[async_trait]
impl<S: AudioSink + ?Sized> AudioSink for Box<S> {
    fn format(&self) -> AudioFormat {
        (**self).format()
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        (**self).write(frame).await
    }

    fn flush(&mut self) {
        (**self).flush();
    }

    async fn close(&mut self) -> Result<(), MediaError> {
        (**self).close().await
    }
}
