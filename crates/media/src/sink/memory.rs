//! A sink read by the program: as a stream of frames, or pulled like a sound card.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use tokio::sync::Notify;

use super::AudioSink;
use crate::convert::AudioConverter;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};
use crate::playout::{PlayoutBuffer, PlayoutConfig, PlayoutStats};

#[derive(Debug)]
struct State {
    playout: PlayoutBuffer,
    /// Frames handed to the program so far: the timestamp of the next frame out.
    taken: u64,
}

#[derive(Debug)]
struct Shared {
    format: AudioFormat,
    state: Mutex<State>,
    notify: Notify,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The SDK's end of an in-memory audio output: bot audio written here is queued in a
/// [`PlayoutBuffer`] (bounded, flushable) for the program to read through its
/// [`MemorySinkHandle`].
#[derive(Debug)]
pub struct MemorySink {
    shared: Arc<Shared>,
    converter: AudioConverter,
}

/// The program's end of a [`MemorySink`]. Read it one of two ways (not both at once):
///
/// * **as a stream** ([`next_frame`](Self::next_frame), [`frames`](Self::frames)): every
///   queued sample, as soon as it is written, no silence inserted; ends when the sink is
///   closed or dropped. For recording, tests, forwarding to another system.
/// * **like a sound card** ([`pull`](Self::pull), [`pull_frame`](Self::pull_frame)): the
///   program's own clock asks for fixed amounts; the playout buffer's jitter logic applies and
///   silence fills the gaps (counted as under-runs in [`stats`](Self::stats)).
///
/// ```
/// use futures::StreamExt;
/// use pipecat_media::{AudioFormat, AudioFrame, AudioSink, MemorySink};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let (mut sink, handle) = MemorySink::new(AudioFormat::MONO_16K)?;
/// sink.write(AudioFrame::new(vec![7; 480], AudioFormat::MONO_16K, Duration::ZERO)?).await?;
/// sink.close().await?;
/// let frames: Vec<AudioFrame> = handle.frames().collect().await;
/// assert_eq!(frames.iter().map(|f| f.samples_per_channel()).sum::<usize>(), 480);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemorySinkHandle {
    shared: Arc<Shared>,
}

impl MemorySink {
    /// Largest frame [`MemorySinkHandle::next_frame`] returns.
    pub const STREAM_FRAME: Duration = Duration::from_millis(20);

    /// A sink storing audio in `format` with the default playout settings.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format.
    pub fn new(format: AudioFormat) -> Result<(Self, MemorySinkHandle), MediaError> {
        Self::with_config(format, PlayoutConfig::default())
    }

    /// A sink with explicit playout settings (raise `max_depth` to keep more unread audio).
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format or `max_depth`.
    pub fn with_config(
        format: AudioFormat,
        config: PlayoutConfig,
    ) -> Result<(Self, MemorySinkHandle), MediaError> {
        let playout = PlayoutBuffer::new(format, config)?;
        let shared = Arc::new(Shared {
            format,
            state: Mutex::new(State { playout, taken: 0 }),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let sink = Self { shared: shared.clone(), converter: AudioConverter::new(format)? };
        Ok((sink, MemorySinkHandle { shared }))
    }

    fn push(&self, samples: &[i16]) {
        self.shared.lock().playout.push(samples);
        self.shared.notify.notify_one();
    }

    fn mark_closed(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }
}

impl Drop for MemorySink {
    fn drop(&mut self) {
        self.mark_closed();
    }
}

#[async_trait]
impl AudioSink for MemorySink {
    fn format(&self) -> AudioFormat {
        self.shared.format
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(MediaError::Closed);
        }
        if let Some(out) = self.converter.process(frame)? {
            self.push(out.samples());
        }
        Ok(())
    }

    fn flush(&mut self) {
        self.converter.reset();
        self.shared.lock().playout.flush();
    }

    async fn close(&mut self) -> Result<(), MediaError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(tail) = self.converter.finish()? {
            self.push(tail.samples());
        }
        self.mark_closed();
        Ok(())
    }
}

impl MemorySinkHandle {
    /// The format of the audio read here.
    pub fn format(&self) -> AudioFormat {
        self.shared.format
    }

    /// Sound-card style read: fills `out` (interleaved) with the next audio, silence where
    /// none is ready. Returns the number of real samples written.
    pub fn pull(&self, out: &mut [i16]) -> usize {
        let mut state = self.shared.lock();
        let n = state.playout.pull(out);
        state.taken += (out.len() / usize::from(self.shared.format.channels)) as u64;
        n
    }

    /// Sound-card style read of `frames` frames as an [`AudioFrame`] (silence-padded),
    /// stamped with the time played so far.
    pub fn pull_frame(&self, frames: usize) -> AudioFrame {
        let mut samples = vec![0; frames * usize::from(self.shared.format.channels)];
        let mut state = self.shared.lock();
        let ts = self.shared.format.duration_of_frames(state.taken as usize);
        state.playout.pull(&mut samples);
        state.taken += frames as u64;
        AudioFrame::from_parts(samples, self.shared.format, ts)
    }

    /// Stream style read: waits for audio and returns up to 20 ms of it, or `None` once the
    /// sink is closed (or dropped) and everything was read.
    pub async fn next_frame(&self) -> Option<AudioFrame> {
        let max = self.shared.format.samples_in(MemorySink::STREAM_FRAME).max(1);
        // Bounded by the sink: each wake-up follows a push, a flush or the close.
        loop {
            {
                let mut state = self.shared.lock();
                if !state.playout.is_empty() {
                    let ts = self.shared.format.duration_of_frames(state.taken as usize);
                    let samples = state.playout.take(max);
                    state.taken +=
                        (samples.len() / usize::from(self.shared.format.channels)) as u64;
                    return Some(AudioFrame::from_parts(samples, self.shared.format, ts));
                }
                if self.shared.closed.load(Ordering::Acquire) {
                    return None;
                }
            }
            self.shared.notify.notified().await;
        }
    }

    /// The stream-style read as a `futures::Stream` of frames.
    pub fn frames(&self) -> impl Stream<Item = AudioFrame> + Send + 'static {
        futures::stream::unfold(self.clone(), |handle| async move {
            let frame = handle.next_frame().await?;
            Some((frame, handle))
        })
    }

    /// Takes everything queued now, without waiting (may be empty).
    pub fn take_all(&self) -> Vec<i16> {
        let mut state = self.shared.lock();
        let samples = state.playout.take(usize::MAX);
        state.taken += (samples.len() / usize::from(self.shared.format.channels)) as u64;
        samples
    }

    /// Playout counters: depth, under-runs, drops, flushes.
    pub fn stats(&self) -> PlayoutStats {
        self.shared.lock().playout.stats()
    }

    /// True once the sink was closed or dropped.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn frame(value: i16, frames: usize, format: AudioFormat) -> AudioFrame {
        AudioFrame::new(vec![value; frames * usize::from(format.channels)], format, Duration::ZERO)
            .unwrap()
    }

    #[tokio::test]
    async fn stream_read_gets_everything_in_order_then_ends() {
        let (mut sink, handle) = MemorySink::new(AudioFormat::MONO_16K).unwrap();
        let reader = tokio::spawn({
            let handle = handle.clone();
            async move { handle.frames().collect::<Vec<_>>().await }
        });
        for i in 0..10 {
            sink.write(frame(i, 160, AudioFormat::MONO_16K)).await.unwrap();
            tokio::task::yield_now().await;
        }
        sink.close().await.unwrap();
        let frames = reader.await.unwrap();
        let all: Vec<i16> = frames.iter().flat_map(|f| f.samples().iter().copied()).collect();
        assert_eq!(all.len(), 1600);
        assert!(all.windows(2).all(|w| w[0] <= w[1]));
        // Timestamps are contiguous.
        for w in frames.windows(2) {
            assert_eq!(w[0].end_timestamp(), w[1].timestamp());
        }
        assert!(handle.is_closed());
        assert!(sink.write(frame(1, 1, AudioFormat::MONO_16K)).await.is_err());
    }

    #[tokio::test]
    async fn dropping_the_sink_ends_the_stream() {
        let (sink, handle) = MemorySink::new(AudioFormat::MONO_16K).unwrap();
        drop(sink);
        assert!(handle.next_frame().await.is_none());
    }

    #[tokio::test]
    async fn pull_is_clock_driven_with_silence_and_flush() {
        let (mut sink, handle) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
        // Nothing yet: silence, and that is not an under-run (nothing was playing).
        let f = handle.pull_frame(240);
        assert_eq!(f.rms(), 0.0);
        assert_eq!(handle.stats().underruns, 0);
        // Bot audio at 16 kHz is converted to the sink's 24 kHz.
        let tone = crate::ToneGenerator::new(AudioFormat::MONO_16K, 440.0, 0.5)
            .unwrap()
            .frame(3200, Duration::ZERO);
        sink.write(tone).await.unwrap();
        assert!(handle.stats().depth >= Duration::from_millis(150));
        let f = handle.pull_frame(240);
        assert!(f.rms() > 0.2);
        assert_eq!(f.timestamp(), Duration::from_millis(10));
        sink.flush();
        assert_eq!(handle.stats().depth, Duration::ZERO);
        assert_eq!(handle.stats().flushes, 1);
        let mut out = [1i16; 240];
        assert_eq!(handle.pull(&mut out), 0);
        assert_eq!(out, [0; 240]);
        // Drain then run dry: an under-run.
        sink.write(frame(5, 2400, AudioFormat::MONO_24K)).await.unwrap();
        for _ in 0..12 {
            handle.pull(&mut out);
        }
        assert_eq!(handle.stats().underruns, 1);
        assert!(handle.take_all().is_empty());
    }
}
