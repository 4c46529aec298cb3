//! Audio down: bot audio from the socket into the user's [`AudioSink`].
//!
//! The socket reader hands each decoded frame (in whatever rate and channel count the bot
//! declared; the sink converts) to the **downlink** task through a bounded queue, so a slow
//! sink never stalls RTVI messages. Interruption is an epoch counter: [`Downlink::flush`]
//! bumps it and wakes the task, which drops every queued frame of an older epoch and calls
//! [`AudioSink::flush`] at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{AudioFrame, AudioSink, LevelMeter};
use tokio::sync::{Mutex, Notify, mpsc};
use tracing::{debug, warn};

use crate::tracks::{TrackGuard, bot_audio_track};

/// Bot frames queued for the sink (the bot sends 40 ms frames: about 20 s).
const DOWN_QUEUE: usize = 512;

/// The reader's handle on the downlink.
#[derive(Debug, Clone)]
pub(crate) struct Downlink {
    tx: mpsc::Sender<(u64, AudioFrame)>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
pub(crate) struct Shared {
    epoch: AtomicU64,
    flush: Notify,
    overflow_reported: AtomicBool,
}

impl Downlink {
    /// A handle and the receiving end for [`run`].
    pub(crate) fn new() -> (Self, mpsc::Receiver<(u64, AudioFrame)>, Arc<Shared>) {
        let (tx, rx) = mpsc::channel(DOWN_QUEUE);
        let shared = Arc::new(Shared::default());
        (Downlink { tx, shared: shared.clone() }, rx, shared)
    }

    /// Queues a frame for the sink; a full queue drops it (reported once per session).
    pub(crate) fn push(&self, frame: AudioFrame, events: &TransportEventSink) {
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send((epoch, frame))
            && !self.shared.overflow_reported.swap(true, Ordering::Relaxed)
        {
            warn!("audio sink is not keeping up; bot audio dropped");
            events.emit(TransportEvent::Warning(
                "the audio sink is not keeping up: bot audio is being dropped".into(),
            ));
        }
    }

    /// Drops all queued bot audio and flushes the sink, at once.
    pub(crate) fn flush(&self) {
        flush_shared(&self.shared);
    }
}

/// [`Downlink::flush`] for holders of the shared part only (the transport).
pub(crate) fn flush_shared(shared: &Shared) {
    shared.epoch.fetch_add(1, Ordering::AcqRel);
    shared.flush.notify_one();
}

/// Writes queued bot audio into the sink until the reader is gone, metering it (a
/// [`TransportEvent::RemoteAudioLevel`] about every 100 ms of bot audio). The bot's track
/// starts with its first frame and stops when this task ends (with the session).
/// `track_sink` is where `TrackStopped` goes (see [`TrackGuard`]).
pub(crate) async fn run(
    sink: Arc<Mutex<Box<dyn AudioSink>>>,
    mut rx: mpsc::Receiver<(u64, AudioFrame)>,
    shared: Arc<Shared>,
    events: TransportEventSink,
    track_sink: Option<TransportEventSink>,
) {
    let mut track = TrackGuard::new(bot_audio_track(), events.clone(), track_sink);
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
                track.start();
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
