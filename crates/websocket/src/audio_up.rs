//! Audio up: from the user's [`AudioSource`] to the bot, as PCM16 mono `AudioRawFrame`s.
//!
//! Two tasks per session:
//! - **capture** reads the source, converts to mono at the bot's input rate (the media
//!   converter), cuts the audio into frames of the configured duration, replaces it with
//!   silence while the microphone is muted, meters the level (after muting: a
//!   [`TransportEvent::LocalAudioLevel`] about every 100 ms), and encodes each frame;
//! - **uplink** holds the frames back until the bot is ready (a bounded buffer that drops the
//!   oldest frame when full), flushes them in order on `bot_ready()`, then forwards every frame
//!   to the socket writer. The local audio track starts with the first frame sent and stops
//!   when the source ends or the session stops.
//!
//! They are separate so that the source's `next_frame` is never cancelled half way by the
//! ready signal (a paced source could lose a frame).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::FutureExt;
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{AudioConverter, AudioFormat, AudioFrame, AudioSource, LevelMeter};
use tokio::sync::{Mutex, mpsc, watch};
use tracing::{debug, trace, warn};

use crate::codec;
use crate::tracks::{TrackGuard, local_audio_track};

/// The most frames dropped as stale when a session starts on a running device (far more
/// than a device buffers).
const MAX_STALE_FRAMES: usize = 1_000;

/// Frames in flight between the capture and uplink tasks.
const CAPTURE_QUEUE: usize = 16;

/// What the uplink needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UplinkConfig {
    /// Mono at the bot's input rate.
    pub(crate) format: AudioFormat,
    /// Duration of each frame sent.
    pub(crate) frame_duration: Duration,
    /// Frames kept while the bot is not ready yet.
    pub(crate) pre_ready_frames: usize,
}

impl UplinkConfig {
    /// Samples in one frame (at least one).
    pub(crate) fn frame_samples(&self) -> usize {
        self.format.frames_in(self.frame_duration).max(1)
    }
}

/// Cuts a stream of mono samples into frames of exactly `len` samples.
#[derive(Debug)]
pub(crate) struct Chunker {
    format: AudioFormat,
    len: usize,
    pending: Vec<i16>,
    produced: usize,
}

impl Chunker {
    pub(crate) fn new(format: AudioFormat, len: usize) -> Self {
        Chunker { format, len: len.max(1), pending: Vec::with_capacity(len * 2), produced: 0 }
    }

    /// Adds samples; returns every complete frame.
    pub(crate) fn push(&mut self, samples: &[i16]) -> Vec<AudioFrame> {
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        while self.pending.len() >= self.len {
            let rest = self.pending.split_off(self.len);
            let chunk = std::mem::replace(&mut self.pending, rest);
            let ts = self.format.duration_of_frames(self.produced);
            self.produced += self.len;
            // The format was validated by the builder and the chunk is whole mono frames.
            if let Ok(frame) = AudioFrame::new(chunk, self.format, ts) {
                out.push(frame);
            }
        }
        out
    }
}

/// The frames held back until the bot is ready: bounded, the oldest is dropped when full.
#[derive(Debug)]
pub(crate) struct PreReadyBuffer {
    frames: VecDeque<Vec<u8>>,
    capacity: usize,
    dropped: u64,
}

impl PreReadyBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        PreReadyBuffer { frames: VecDeque::new(), capacity, dropped: 0 }
    }

    /// Keeps `frame`, dropping the oldest one if the buffer is full.
    pub(crate) fn push(&mut self, frame: Vec<u8>) {
        if self.capacity == 0 {
            self.dropped += 1;
            return;
        }
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
            self.dropped += 1;
        }
        self.frames.push_back(frame);
    }

    /// Takes every frame, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.frames.drain(..)
    }

    /// Frames dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }
}

/// Reads the source until it ends, fails or the session stops.
///
/// With `drop_stale` (the source is a running device), the audio the device buffered before
/// this session is dropped first: it was captured while no session listened.
pub(crate) async fn capture(
    source: Arc<Mutex<Box<dyn AudioSource>>>,
    config: UplinkConfig,
    mic_enabled: Arc<AtomicBool>,
    drop_stale: bool,
    out: mpsc::Sender<Vec<u8>>,
    events: TransportEventSink,
) {
    let mut source = source.lock().await;
    if drop_stale {
        let mut stale = 0;
        // A device source hands out buffered frames without waiting; the first wait means
        // the buffer is empty (nothing is lost by dropping that wait).
        while stale < MAX_STALE_FRAMES {
            match source.next_frame().now_or_never() {
                Some(Ok(Some(_))) => stale += 1,
                _ => break,
            }
        }
        if stale > 0 {
            debug!(frames = stale, "dropped microphone audio buffered before the session");
        }
    }
    let mut converter = match AudioConverter::new(config.format) {
        Ok(c) => c,
        Err(e) => {
            events.emit(TransportEvent::Warning(format!("audio up disabled: {e}")));
            return;
        }
    };
    let mut chunker = Chunker::new(config.format, config.frame_samples());
    let mut meter = LevelMeter::new();
    debug!(source_format = %source.format(), target = %config.format, "audio up started");
    loop {
        let frame = match source.next_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                debug!("audio source ended");
                break;
            }
            Err(e) => {
                warn!(error = %e, "audio source failed; audio up stops");
                events.emit(TransportEvent::Warning(format!("audio source failed: {e}")));
                break;
            }
        };
        let converted = match converter.process(frame) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                warn!(error = %e, "audio conversion failed; frame dropped");
                continue;
            }
        };
        for mut frame in chunker.push(converted.samples()) {
            if !mic_enabled.load(Ordering::Relaxed) {
                frame.samples_mut().fill(0);
            }
            if let Some(level) = meter.push(&frame) {
                events.emit(TransportEvent::LocalAudioLevel(level));
            }
            if out.send(codec::encode_audio(&frame)).await.is_err() {
                return;
            }
        }
    }
}

/// Where the uplink reports the local audio track: the session's sink, and the transport's
/// sink for the end of the track (see [`TrackGuard`]).
#[derive(Debug, Clone)]
pub(crate) struct TrackSinks {
    pub(crate) session: TransportEventSink,
    pub(crate) transport: Option<TransportEventSink>,
}

/// Forwards encoded frames to the writer, holding them back until the bot is ready.
pub(crate) async fn uplink(
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut ready: watch::Receiver<bool>,
    writer: mpsc::Sender<Vec<u8>>,
    capacity: usize,
    tracks: TrackSinks,
) {
    let mut track = TrackGuard::new(local_audio_track(), tracks.session, tracks.transport);
    let mut held = PreReadyBuffer::new(capacity);
    let mut is_ready = *ready.borrow_and_update();
    // The source ended: what is held still goes out on ready.
    let mut source_done = false;
    loop {
        tokio::select! {
            biased;
            changed = ready.changed(), if !is_ready => {
                if changed.is_err() {
                    return;
                }
                is_ready = *ready.borrow_and_update();
                if is_ready {
                    debug!(frames = held.len(), dropped = held.dropped(), "bot ready: flushing held audio");
                    if held.len() > 0 {
                        track.start();
                    }
                    for frame in held.drain() {
                        if writer.send(frame).await.is_err() {
                            return;
                        }
                    }
                    if source_done {
                        return;
                    }
                }
            }
            frame = frames.recv(), if !source_done => {
                let Some(frame) = frame else {
                    if is_ready {
                        return;
                    }
                    source_done = true;
                    continue;
                };
                if is_ready {
                    track.start();
                    if writer.send(frame).await.is_err() {
                        return;
                    }
                } else {
                    held.push(frame);
                    trace!(held = held.len(), "audio held until bot-ready");
                }
            }
        }
    }
}

/// The channel between capture and uplink.
pub(crate) fn capture_channel() -> (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
    mpsc::channel(CAPTURE_QUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunker_cuts_exact_frames_across_pushes() {
        let mut c = Chunker::new(AudioFormat::MONO_16K, 320);
        assert!(c.push(&[1; 300]).is_empty());
        let frames = c.push(&[2; 400]);
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.samples_per_channel() == 320));
        assert_eq!(frames[0].samples()[299], 1);
        assert_eq!(frames[0].samples()[300], 2);
        assert_eq!(frames[1].timestamp(), Duration::from_millis(20));
        assert!(c.push(&[3; 259]).is_empty());
        assert_eq!(c.push(&[3; 1]).len(), 1);
    }

    #[tokio::test]
    async fn audio_of_a_source_that_ended_before_ready_still_goes_out() {
        let (ftx, frx) = capture_channel();
        let (rtx, rrx) = watch::channel(false);
        let (wtx, mut wrx) = mpsc::channel(64);
        let (events, _erx) = TransportEventSink::new(1);
        let sinks = TrackSinks { session: events, transport: None };
        let task = tokio::spawn(uplink(frx, rrx, wtx, 8, sinks));
        for i in 0..3u8 {
            ftx.send(vec![i]).await.unwrap();
        }
        drop(ftx); // a short, unpaced file: read to its end before the bot is ready
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "the held audio would be lost");
        rtx.send(true).unwrap();
        for i in 0..3u8 {
            assert_eq!(wrx.recv().await.unwrap(), vec![i]);
        }
        task.await.unwrap();
    }

    #[test]
    fn pre_ready_buffer_drops_oldest() {
        let mut b = PreReadyBuffer::new(3);
        for i in 0..5u8 {
            b.push(vec![i]);
        }
        assert_eq!(b.dropped(), 2);
        assert_eq!(b.drain().collect::<Vec<_>>(), vec![vec![2], vec![3], vec![4]]);
        let mut none = PreReadyBuffer::new(0);
        none.push(vec![1]);
        assert_eq!((none.len(), none.dropped()), (0, 1));
    }

    #[tokio::test]
    async fn uplink_holds_then_flushes_in_order() {
        let (ftx, frx) = capture_channel();
        let (rtx, rrx) = watch::channel(false);
        let (wtx, mut wrx) = mpsc::channel(64);
        let (events, mut erx) = TransportEventSink::new(1);
        let sinks = TrackSinks { session: events, transport: None };
        let task = tokio::spawn(uplink(frx, rrx, wtx, 2, sinks));
        for i in 0..4u8 {
            ftx.send(vec![i]).await.unwrap();
        }
        tokio::task::yield_now().await;
        assert!(wrx.try_recv().is_err(), "nothing may pass before ready");
        rtx.send(true).unwrap();
        assert_eq!(wrx.recv().await.unwrap(), vec![2]);
        assert_eq!(wrx.recv().await.unwrap(), vec![3]);
        ftx.send(vec![9]).await.unwrap();
        assert_eq!(wrx.recv().await.unwrap(), vec![9]);
        drop(ftx);
        task.await.unwrap();
        // The local track started with the first frame sent and stopped when the source ended.
        let mut seen = Vec::new();
        while let Ok((_, event)) = erx.try_recv() {
            seen.push(event);
        }
        assert!(
            matches!(seen.as_slice(), [TransportEvent::TrackStarted(a), TransportEvent::TrackStopped(b)]
            if a.participant.as_ref().is_some_and(|p| p.local) && a == b),
            "{seen:?}"
        );
    }
}
