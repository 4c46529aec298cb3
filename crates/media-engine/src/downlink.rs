//! The bot-audio pipeline: from the wire into the user's [`AudioSink`].
//!
//! The wire hands each decoded frame (in whatever rate and channel count the bot sent; the
//! sink converts) to the **downlink** task through a bounded queue, so a slow sink never
//! stalls the wire or RTVI messages. Interruption is an epoch counter: a flush bumps it and
//! wakes the task, which drops every queued frame of an older epoch and calls
//! [`AudioSink::flush`] at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pipecat_core::media::Participant;
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{AudioFrame, AudioSink, LevelMeter};
use tokio::sync::{Mutex, Notify, mpsc};
use tracing::{debug, warn};

use crate::tracks::{TrackGuard, bot_audio_track};

/// Bot frames queued for the sink (about 10 s of 20 ms frames).
const DOWN_QUEUE: usize = 512;

/// A session's handle on its bot-audio pipeline. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BotAudio {
    tx: mpsc::Sender<(u64, AudioFrame)>,
    shared: Arc<Shared>,
    events: TransportEventSink,
    transport_events: Option<TransportEventSink>,
}

#[derive(Debug, Default)]
struct Shared {
    epoch: AtomicU64,
    flush: Notify,
    overflow_reported: AtomicBool,
}

impl BotAudio {
    /// A handle and the receiving end for [`run`].
    pub(crate) fn new(
        events: TransportEventSink,
        transport_events: Option<TransportEventSink>,
    ) -> (Self, mpsc::Receiver<(u64, AudioFrame)>) {
        let (tx, rx) = mpsc::channel(DOWN_QUEUE);
        (BotAudio { tx, shared: Arc::default(), events, transport_events }, rx)
    }

    /// A stream of bot audio from `bot` (one per incoming track): its frames go to the sink,
    /// and its track is reported started with the first frame and stopped when the stream is
    /// dropped.
    pub fn stream(&self, bot: Participant) -> BotAudioStream {
        let track = TrackGuard::new(
            bot_audio_track(bot),
            self.events.clone(),
            self.transport_events.clone(),
        );
        BotAudioStream { audio: self.clone(), track }
    }

    /// Drops all queued bot audio and flushes the sink, at once (the bot was interrupted).
    pub fn flush(&self) {
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
        self.shared.flush.notify_one();
    }

    /// Queues a frame for the sink; a full queue drops it (reported once per session).
    fn push(&self, frame: AudioFrame) {
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send((epoch, frame))
            && !self.shared.overflow_reported.swap(true, Ordering::Relaxed)
        {
            warn!("audio sink is not keeping up; bot audio dropped");
            self.events.emit(TransportEvent::Warning(
                "the audio sink is not keeping up: bot audio is being dropped".into(),
            ));
        }
    }
}

/// One incoming stream of bot audio (see [`BotAudio::stream`]).
#[derive(Debug)]
pub struct BotAudioStream {
    audio: BotAudio,
    track: TrackGuard,
}

impl BotAudioStream {
    /// Hands one decoded frame to the sink; never waits.
    pub fn push(&mut self, frame: AudioFrame) {
        self.track.start();
        self.audio.push(frame);
    }

    /// Drops all queued bot audio and flushes the sink, at once (see [`BotAudio::flush`]).
    pub fn flush(&self) {
        self.audio.flush();
    }

    /// Reports the track as started before any audio (the wire saw the track begin).
    pub fn start_track(&mut self) {
        self.track.start();
    }
}

/// Writes queued bot audio into the sink until every handle is gone, metering it (a
/// [`TransportEvent::RemoteAudioLevel`] about every 100 ms of bot audio).
pub(crate) async fn run(
    sink: Arc<Mutex<Box<dyn AudioSink>>>,
    mut rx: mpsc::Receiver<(u64, AudioFrame)>,
    audio: BotAudio,
) {
    let shared = audio.shared.clone();
    let events = audio.events.clone();
    // The task's own handle must not keep the queue open.
    drop(audio);
    let mut sink = sink.lock().await;
    let mut meter = LevelMeter::new();
    let mut write_failed = false;
    loop {
        tokio::select! {
            biased;
            () = shared.flush.notified() => {
                debug!("interrupted: flushing bot audio");
                sink.flush();
                meter.reset();
            }
            item = rx.recv() => {
                let Some((epoch, frame)) = item else { break };
                if epoch != shared.epoch.load(Ordering::Acquire) {
                    continue;
                }
                if let Some(level) = meter.push(&frame) {
                    events.emit(TransportEvent::RemoteAudioLevel(level));
                }
                if let Err(e) = sink.write(frame).await {
                    if !write_failed {
                        warn!(error = %e, "audio sink refused bot audio");
                        events.emit(TransportEvent::Warning(format!("audio sink failed: {e}")));
                    }
                    write_failed = true;
                }
            }
        }
    }
}
