//! A source fed by the program: push PCM on a handle, the SDK reads frames.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{AudioSource, DEFAULT_FRAME_DURATION, Pacer, frames_per_chunk};
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

#[derive(Debug, Default)]
struct State {
    buf: VecDeque<i16>,
    finished: bool,
}

#[derive(Debug)]
struct Shared {
    format: AudioFormat,
    state: Mutex<State>,
    notify: Notify,
    source_alive: AtomicBool,
    handles: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The source end of an in-memory PCM channel: frames of exactly the configured length
/// (20 ms by default; the last one may be shorter), unpaced by default since the program
/// decides the timing. Ends when every [`MemorySourceHandle`] is dropped or
/// [`finish`](MemorySourceHandle::finish)ed and the queue is empty.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioSource, MemorySource};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let (mut source, handle) = MemorySource::new(AudioFormat::MONO_16K)?;
/// handle.push(&[100; 480])?; // 30 ms
/// handle.finish();
/// assert_eq!(source.next_frame().await?.unwrap().samples_per_channel(), 320);
/// assert_eq!(source.next_frame().await?.unwrap().samples_per_channel(), 160);
/// assert!(source.next_frame().await?.is_none());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemorySource {
    shared: Arc<Shared>,
    chunk: usize,
    produced: usize,
    pacer: Pacer,
}

/// The program's end of a [`MemorySource`]: push PCM16 here. Cloneable and thread-safe;
/// pushing never blocks (the queue is unbounded: watch [`buffered`](Self::buffered)).
#[derive(Debug)]
pub struct MemorySourceHandle {
    shared: Arc<Shared>,
}

impl MemorySource {
    /// A source in `format` and the handle that feeds it.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format.
    pub fn new(format: AudioFormat) -> Result<(Self, MemorySourceHandle), MediaError> {
        format.validate()?;
        let shared = Arc::new(Shared {
            format,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            source_alive: AtomicBool::new(true),
            handles: AtomicUsize::new(1),
        });
        let source = Self {
            shared: shared.clone(),
            chunk: frames_per_chunk(format, DEFAULT_FRAME_DURATION),
            produced: 0,
            pacer: Pacer::new(false),
        };
        Ok((source, MemorySourceHandle { shared }))
    }

    /// Length of each frame (at least one sample).
    #[must_use]
    pub fn frame_duration(mut self, duration: Duration) -> Self {
        self.chunk = frames_per_chunk(self.shared.format, duration);
        self
    }

    /// Release frames no faster than real time (off by default). Useful when the program
    /// pushes a whole recording at once.
    #[must_use]
    pub fn paced(mut self, paced: bool) -> Self {
        self.pacer.set_enabled(paced);
        self
    }
}

impl Drop for MemorySource {
    fn drop(&mut self) {
        self.shared.source_alive.store(false, Ordering::Release);
    }
}

#[async_trait]
impl AudioSource for MemorySource {
    fn format(&self) -> AudioFormat {
        self.shared.format
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let channels = usize::from(self.shared.format.channels);
        let want = self.chunk * channels;
        let samples = loop {
            {
                let mut state = self.shared.lock();
                if state.buf.len() >= want {
                    break state.buf.drain(..want).collect::<Vec<_>>();
                }
                if state.finished {
                    if state.buf.is_empty() {
                        return Ok(None);
                    }
                    break state.buf.drain(..).collect();
                }
            }
            // notify_one stores a permit, so a push between the check and here is not lost.
            self.shared.notify.notified().await;
        };
        let ts = self.shared.format.duration_of_frames(self.produced);
        self.pacer.wait_until(ts).await;
        self.produced += samples.len() / channels;
        Ok(Some(AudioFrame::from_parts(samples, self.shared.format, ts)))
    }
}

impl MemorySourceHandle {
    /// The format the source expects.
    pub fn format(&self) -> AudioFormat {
        self.shared.format
    }

    /// Queues interleaved samples.
    ///
    /// # Errors
    /// [`MediaError::InvalidData`] if `samples` is not a whole number of frames,
    /// [`MediaError::Closed`] if the source was dropped or the stream finished.
    pub fn push(&self, samples: &[i16]) -> Result<(), MediaError> {
        let channels = usize::from(self.shared.format.channels);
        if !samples.len().is_multiple_of(channels) {
            return Err(MediaError::invalid_data(format!(
                "{} samples is not a whole number of {channels}-channel frames",
                samples.len()
            )));
        }
        if !self.shared.source_alive.load(Ordering::Acquire) {
            return Err(MediaError::Closed);
        }
        {
            let mut state = self.shared.lock();
            if state.finished {
                return Err(MediaError::Closed);
            }
            state.buf.extend(samples.iter().copied());
        }
        self.shared.notify.notify_one();
        Ok(())
    }

    /// Queues little-endian PCM16 bytes.
    ///
    /// # Errors
    /// As [`push`](Self::push), plus [`MediaError::InvalidData`] for an odd byte count.
    pub fn push_le_bytes(&self, bytes: &[u8]) -> Result<(), MediaError> {
        let frame = AudioFrame::from_le_bytes(bytes, self.shared.format, Duration::ZERO)?;
        self.push(frame.samples())
    }

    /// Queues a frame, which must be in the source's format (convert it first with an
    /// [`AudioConverter`](crate::AudioConverter) otherwise).
    ///
    /// # Errors
    /// [`MediaError::FormatMismatch`], or as [`push`](Self::push).
    pub fn push_frame(&self, frame: &AudioFrame) -> Result<(), MediaError> {
        if frame.format() != self.shared.format {
            return Err(MediaError::FormatMismatch {
                expected: self.shared.format,
                actual: frame.format(),
            });
        }
        self.push(frame.samples())
    }

    /// Ends the stream once the queued audio has been read. Further pushes fail.
    pub fn finish(&self) {
        self.shared.lock().finished = true;
        self.shared.notify.notify_one();
    }

    /// Audio queued and not yet read.
    pub fn buffered(&self) -> Duration {
        self.shared.format.duration_of_samples(self.shared.lock().buf.len())
    }

    /// True once the source end was dropped.
    pub fn is_closed(&self) -> bool {
        !self.shared.source_alive.load(Ordering::Acquire)
    }
}

impl Clone for MemorySourceHandle {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::AcqRel);
        Self { shared: self.shared.clone() }
    }
}

impl Drop for MemorySourceHandle {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_cut_to_size_and_end_when_handles_drop() {
        let (source, handle) = MemorySource::new(AudioFormat::STEREO_48K).unwrap();
        let mut source = source.frame_duration(Duration::from_millis(10));
        let h2 = handle.clone();
        handle.push(&vec![1; 960 * 2 + 200]).unwrap(); // 20 ms + 100 frames
        let a = source.next_frame().await.unwrap().unwrap();
        let b = source.next_frame().await.unwrap().unwrap();
        assert_eq!((a.samples_per_channel(), b.samples_per_channel()), (480, 480));
        assert_eq!(b.timestamp(), Duration::from_millis(10));
        drop(handle);
        // One handle left: the source waits for more rather than ending.
        h2.push(&[2; 760]).unwrap();
        let c = source.next_frame().await.unwrap().unwrap();
        assert_eq!(c.samples_per_channel(), 480);
        assert_eq!(c.samples()[199], 1);
        assert_eq!(c.samples()[200], 2);
        drop(h2);
        assert!(source.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn waits_for_data_pushed_from_another_task() {
        let (mut source, handle) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
        let pusher = tokio::spawn(async move {
            for i in 0..5 {
                handle.push_le_bytes(&[i as u8, 0].repeat(320)).unwrap();
                tokio::task::yield_now().await;
            }
        });
        for i in 0..5 {
            let f = source.next_frame().await.unwrap().unwrap();
            assert_eq!(f.samples()[0], i);
        }
        pusher.await.unwrap();
        assert!(source.next_frame().await.unwrap().is_none());
    }

    #[test]
    fn push_errors() {
        let (source, handle) = MemorySource::new(AudioFormat::STEREO_48K).unwrap();
        assert!(matches!(handle.push(&[1, 2, 3]), Err(MediaError::InvalidData { .. })));
        assert!(handle.push_le_bytes(&[1, 2, 3]).is_err());
        let mono = AudioFrame::silence(AudioFormat::MONO_48K, 10, Duration::ZERO).unwrap();
        assert!(matches!(handle.push_frame(&mono), Err(MediaError::FormatMismatch { .. })));
        assert_eq!(handle.buffered(), Duration::ZERO);
        handle.push(&[0; 96]).unwrap();
        assert_eq!(handle.buffered(), Duration::from_millis(1));
        drop(source);
        assert!(handle.is_closed());
        assert!(matches!(handle.push(&[0; 2]), Err(MediaError::Closed)));
        assert!(MemorySource::new(AudioFormat::new(8_000, 0)).is_err());
    }
}
