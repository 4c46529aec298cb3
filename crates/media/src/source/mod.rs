//! Where audio comes from: the [`AudioSource`] trait and its headless implementations.

mod generator;
mod memory;
mod switchable;
mod wav;

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use generator::{SilenceSource, ToneGenerator, ToneSource};
pub use memory::{MemorySource, MemorySourceHandle};
pub use switchable::{SourceSwitch, SwitchableSource};
pub use wav::WavFileSource;

use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Frame length the built-in sources produce unless told otherwise.
pub const DEFAULT_FRAME_DURATION: Duration = Duration::from_millis(20);

/// A producer of audio frames: microphone, file, generator, program-fed buffer.
///
/// Object safe and `Send`, so transports take a `Box<dyn AudioSource>`. Frames come in the
/// format reported by [`format`](Self::format), with timestamps counted from the start of the
/// stream; wrap the source in an [`AudioConverter`](crate::AudioConverter) (or a
/// [`SwitchableSource`]) to get another format. Paced sources need a Tokio runtime with the
/// time driver enabled.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioSource, ToneSource};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let mut source: Box<dyn AudioSource> = Box::new(
///     ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.5)?
///         .paced(false)
///         .limit(Duration::from_millis(100)),
/// );
/// let mut frames = 0;
/// while let Some(frame) = source.next_frame().await? {
///     assert_eq!(frame.samples_per_channel(), 320); // 20 ms at 16 kHz
///     frames += 1;
/// }
/// assert_eq!(frames, 5);
/// # Ok(()) }
/// ```
#[async_trait]
pub trait AudioSource: Send {
    /// The format of the frames this source produces.
    fn format(&self) -> AudioFormat;

    /// The next frame, or `Ok(None)` at end of stream. Waits while no audio is ready (and, for
    /// paced sources, until the frame is due in real time). A paced source keeps real time
    /// while it is read; read again after a pause (a client reused for a new session), it
    /// resumes from now: the pause is neither replayed as a burst nor lost from a file.
    ///
    /// # Errors
    /// Source-specific: a broken file, a closed channel...
    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError>;
}

#[async_trait]
impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn format(&self) -> AudioFormat {
        (**self).format()
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        (**self).next_frame().await
    }
}

/// Turns a source into a `Stream` of frames that ends at end of stream (after yielding an
/// error, if the source fails, it keeps polling the source).
///
/// ```
/// use futures::StreamExt;
/// use pipecat_media::{AudioFormat, SilenceSource, source_stream};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = SilenceSource::new(AudioFormat::MONO_16K).unwrap()
///     .paced(false)
///     .limit(Duration::from_millis(60));
/// let frames: Vec<_> = source_stream(Box::new(source)).collect().await;
/// assert_eq!(frames.len(), 3);
/// # }
/// ```
pub fn source_stream(
    source: Box<dyn AudioSource>,
) -> BoxStream<'static, Result<AudioFrame, MediaError>> {
    Box::pin(futures::stream::unfold(source, |mut source| async move {
        match source.next_frame().await {
            Ok(Some(frame)) => Some((Ok(frame), source)),
            Ok(None) => None,
            Err(e) => Some((Err(e), source)),
        }
    }))
}

/// How late a paced frame may be and still be caught up on (jitter, a busy scheduler). A
/// frame later than this means nobody read the source for a while (between two sessions of a
/// reused client): pacing resumes from now instead of releasing the gap as a burst.
pub(crate) const MAX_CATCH_UP: Duration = Duration::from_millis(200);

/// Real-time pacing: frame `t` is released at `start + t`, where `start` is when the first
/// frame was asked for. Sleeping until an absolute deadline keeps drift from accumulating; a
/// pause longer than [`MAX_CATCH_UP`] moves `start` so the gap is skipped, not replayed.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    enabled: bool,
    start: Option<tokio::time::Instant>,
}

impl Pacer {
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled, start: None }
    }

    pub(crate) fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    pub(crate) async fn wait_until(&mut self, timestamp: Duration) {
        if !self.enabled {
            return;
        }
        let now = tokio::time::Instant::now();
        let start = self.start.get_or_insert(now);
        if now.saturating_duration_since(*start + timestamp) > MAX_CATCH_UP {
            // Paused: this frame is due now, the next ones in real time from here.
            *start = now.checked_sub(timestamp).unwrap_or(now);
        }
        tokio::time::sleep_until(*start + timestamp).await;
    }
}

/// Frames per chunk for a frame duration, at least one.
pub(crate) fn frames_per_chunk(format: AudioFormat, duration: Duration) -> usize {
    format.frames_in(duration).max(1)
}
