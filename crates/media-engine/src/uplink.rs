//! The microphone pipeline: from the user's [`AudioSource`] to the transport's wire.
//!
//! Two tasks per session:
//! - **capture** reads the source, converts it to the wire's format (the media converter),
//!   cuts it into frames of the wire's duration, replaces them with silence while the
//!   microphone is muted, and meters the level (after muting: a
//!   [`TransportEvent::LocalAudioLevel`] about every 100 ms);
//! - **uplink** optionally holds the frames back until the bot is ready (a bounded buffer that
//!   drops the oldest frame when full), flushes them in order on ready, then hands every frame
//!   to the wire ([`MicWire`]). The local audio track starts with the first frame handed over
//!   and stops when the source ends or the session stops.
//!
//! They are separate so that the source's `next_frame` is never cancelled half way by the
//! ready signal (a paced source could lose a frame).
//!
//! **Mute** means the same on every transport: the frames keep flowing, zeroed, at the
//! source's pace, and the level reads 0. A bot's input keeps its clock (VAD, turn timers and
//! WebRTC jitter buffers see a live, silent stream), as a disabled browser track behaves.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{
    AudioConverter, AudioFormat, AudioFrame, AudioSource, FrameChunker, LevelMeter,
};
use tokio::sync::{Mutex, mpsc, watch};
use tracing::{debug, trace, warn};

use crate::tracks::{TrackGuard, local_audio_track};

/// The most frames dropped as stale when a session starts on a running device (far more
/// than a device buffers).
const MAX_STALE_FRAMES: usize = 1_000;

/// Frames in flight between the capture and uplink tasks.
const CAPTURE_QUEUE: usize = 16;

/// What the wire needs from the microphone pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UplinkSpec {
    /// The format frames are handed to the wire in (converted from the source's).
    pub format: AudioFormat,
    /// The duration of each frame handed to the wire (and of a device's frames).
    pub frame_duration: Duration,
    /// Hold the audio captured before the bot is ready, at most this much (the oldest is
    /// dropped first), and hand it over on ready; zero drops it. `None` hands every frame
    /// over at once (the wire copes with a bot that is not listening yet).
    pub hold_until_ready: Option<Duration>,
}

impl UplinkSpec {
    /// Frames the pre-ready buffer keeps.
    fn held_frames(&self) -> Option<usize> {
        self.hold_until_ready.map(|limit| {
            usize::try_from(limit.as_nanos() / self.frame_duration.as_nanos().max(1))
                .unwrap_or(usize::MAX)
        })
    }
}

/// The wire was closed: the uplink stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the wire is closed")]
pub struct WireClosed;

/// Where a transport takes the microphone's frames: it encodes and sends them its own way
/// (PCM16 protobuf frames, Opus RTP packets, a virtual microphone).
#[async_trait]
pub trait MicWire: Send + 'static {
    /// Sends one frame, in the [`UplinkSpec`]'s format and duration. A send may wait (back
    /// pressure paces the pipeline); [`WireClosed`] ends audio up for the session.
    async fn send(&mut self, frame: AudioFrame) -> Result<(), WireClosed>;
}

/// The frames held back until the bot is ready: bounded, the oldest is dropped when full.
#[derive(Debug)]
struct PreReadyBuffer {
    frames: VecDeque<AudioFrame>,
    capacity: usize,
    dropped: u64,
}

impl PreReadyBuffer {
    fn new(capacity: usize) -> Self {
        PreReadyBuffer { frames: VecDeque::new(), capacity, dropped: 0 }
    }

    /// Keeps `frame`, dropping the oldest one if the buffer is full.
    fn push(&mut self, frame: AudioFrame) {
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
}

/// Reads the source until it ends, fails or the session stops.
///
/// With `drop_stale` (the source is a running device), the audio the device buffered before
/// this session is dropped first: it was captured while no session listened.
pub(crate) async fn capture(
    source: Arc<Mutex<Box<dyn AudioSource>>>,
    spec: UplinkSpec,
    mic_enabled: watch::Receiver<bool>,
    drop_stale: bool,
    out: mpsc::Sender<AudioFrame>,
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
    let pipeline = AudioConverter::new(spec.format)
        .and_then(|c| Ok((c, FrameChunker::new(spec.format, spec.frame_duration)?)));
    let (mut converter, mut chunker) = match pipeline {
        Ok(parts) => parts,
        Err(e) => {
            events.emit(TransportEvent::Warning(format!("audio up disabled: {e}")));
            return;
        }
    };
    let mut meter = LevelMeter::new();
    debug!(source_format = %source.format(), target = %spec.format, "audio up started");
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
        if let Err(e) = chunker.push(&converted) {
            warn!(error = %e, "audio frame dropped");
            continue;
        }
        while let Some(mut frame) = chunker.next_frame() {
            if !*mic_enabled.borrow() {
                frame.samples_mut().fill(0);
            }
            if let Some(level) = meter.push(&frame) {
                events.emit(TransportEvent::LocalAudioLevel(level));
            }
            if out.send(frame).await.is_err() {
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

/// Hands frames to the wire, holding them back until the bot is ready when the spec says so.
pub(crate) async fn uplink(
    mut frames: mpsc::Receiver<AudioFrame>,
    mut ready: watch::Receiver<bool>,
    mut wire: Box<dyn MicWire>,
    spec: UplinkSpec,
    tracks: TrackSinks,
) {
    let mut track = TrackGuard::new(local_audio_track(), tracks.session, tracks.transport);
    let held_frames = spec.held_frames();
    let mut held = PreReadyBuffer::new(held_frames.unwrap_or(0));
    let mut is_ready = held_frames.is_none() || *ready.borrow_and_update();
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
                    debug!(frames = held.frames.len(), dropped = held.dropped, "bot ready: flushing held audio");
                    for frame in held.frames.drain(..) {
                        track.start();
                        if wire.send(frame).await.is_err() {
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
                    if wire.send(frame).await.is_err() {
                        return;
                    }
                } else {
                    held.push(frame);
                    trace!(held = held.frames.len(), "audio held until bot-ready");
                }
            }
        }
    }
}

/// The channel between capture and uplink.
pub(crate) fn capture_channel() -> (mpsc::Sender<AudioFrame>, mpsc::Receiver<AudioFrame>) {
    mpsc::channel(CAPTURE_QUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire that hands what it is sent to a channel.
    struct ChannelWire(mpsc::Sender<AudioFrame>);

    #[async_trait]
    impl MicWire for ChannelWire {
        async fn send(&mut self, frame: AudioFrame) -> Result<(), WireClosed> {
            self.0.send(frame).await.map_err(|_| WireClosed)
        }
    }

    fn frame(marker: i16) -> AudioFrame {
        AudioFrame::new(vec![marker; 320], AudioFormat::MONO_16K, Duration::ZERO).unwrap()
    }

    fn spec(hold: Option<Duration>) -> UplinkSpec {
        UplinkSpec {
            format: AudioFormat::MONO_16K,
            frame_duration: Duration::from_millis(20),
            hold_until_ready: hold,
        }
    }

    #[tokio::test]
    async fn audio_of_a_source_that_ended_before_ready_still_goes_out() {
        let (ftx, frx) = capture_channel();
        let (rtx, rrx) = watch::channel(false);
        let (wtx, mut wrx) = mpsc::channel(64);
        let (events, _erx) = TransportEventSink::new(1);
        let sinks = TrackSinks { session: events, transport: None };
        let wire = Box::new(ChannelWire(wtx));
        let task =
            tokio::spawn(uplink(frx, rrx, wire, spec(Some(Duration::from_millis(160))), sinks));
        for i in 0..3 {
            ftx.send(frame(i)).await.unwrap();
        }
        drop(ftx); // a short, unpaced file: read to its end before the bot is ready
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "the held audio would be lost");
        rtx.send(true).unwrap();
        for i in 0..3 {
            assert_eq!(wrx.recv().await.unwrap().samples()[0], i);
        }
        task.await.unwrap();
    }

    #[tokio::test]
    async fn held_audio_keeps_the_newest_frames_and_flushes_them_in_order() {
        let (ftx, frx) = capture_channel();
        let (rtx, rrx) = watch::channel(false);
        let (wtx, mut wrx) = mpsc::channel(64);
        let (events, mut erx) = TransportEventSink::new(1);
        let sinks = TrackSinks { session: events, transport: None };
        let wire = Box::new(ChannelWire(wtx));
        // Room for two 20 ms frames.
        let task =
            tokio::spawn(uplink(frx, rrx, wire, spec(Some(Duration::from_millis(40))), sinks));
        for i in 0..4 {
            ftx.send(frame(i)).await.unwrap();
        }
        tokio::task::yield_now().await;
        assert!(wrx.try_recv().is_err(), "nothing may pass before ready");
        rtx.send(true).unwrap();
        assert_eq!(wrx.recv().await.unwrap().samples()[0], 2);
        assert_eq!(wrx.recv().await.unwrap().samples()[0], 3);
        ftx.send(frame(9)).await.unwrap();
        assert_eq!(wrx.recv().await.unwrap().samples()[0], 9);
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

    #[tokio::test]
    async fn a_zero_hold_drops_everything_before_ready() {
        let (ftx, frx) = capture_channel();
        let (rtx, rrx) = watch::channel(false);
        let (wtx, mut wrx) = mpsc::channel(64);
        let (events, _erx) = TransportEventSink::new(1);
        let sinks = TrackSinks { session: events, transport: None };
        let task = tokio::spawn(uplink(
            frx,
            rrx,
            Box::new(ChannelWire(wtx)),
            spec(Some(Duration::ZERO)),
            sinks,
        ));
        ftx.send(frame(1)).await.unwrap();
        tokio::task::yield_now().await;
        rtx.send(true).unwrap();
        ftx.send(frame(2)).await.unwrap();
        assert_eq!(wrx.recv().await.unwrap().samples()[0], 2);
        drop(ftx);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn without_a_hold_frames_pass_before_ready() {
        let (ftx, frx) = capture_channel();
        let (_rtx, rrx) = watch::channel(false);
        let (wtx, mut wrx) = mpsc::channel(64);
        let (events, _erx) = TransportEventSink::new(1);
        let sinks = TrackSinks { session: events, transport: None };
        let task = tokio::spawn(uplink(frx, rrx, Box::new(ChannelWire(wtx)), spec(None), sinks));
        ftx.send(frame(5)).await.unwrap();
        assert_eq!(wrx.recv().await.unwrap().samples()[0], 5);
        drop(ftx);
        task.await.unwrap();
    }
}
