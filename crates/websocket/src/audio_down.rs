//! Audio down: bot audio from the socket into the user's [`AudioSink`].
//!
//! The socket reader hands each decoded frame (in whatever rate and channel count the bot
//! declared; the sink converts) to the **downlink** task through a bounded queue, so a slow
//! sink never stalls RTVI messages. Interruption is an epoch counter: [`Downlink::flush`]
//! bumps it and wakes the task, which drops every queued frame of an older epoch and calls
//! [`AudioSink::flush`] at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pipecat_core::media::{Participant, TrackInfo, TrackKind};
use pipecat_core::{TransportEvent, TransportEventSink};
use pipecat_media::{AudioFrame, AudioSink, LevelMeter};
use tokio::sync::{Mutex, Notify, mpsc};
use tracing::{debug, warn};

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

/// Writes queued bot audio into the sink until the reader is gone.
pub(crate) async fn run(
    sink: Arc<Mutex<Box<dyn AudioSink>>>,
    mut rx: mpsc::Receiver<(u64, AudioFrame)>,
    shared: Arc<Shared>,
    events: TransportEventSink,
) {
    let mut sink = sink.lock().await;
    let mut meter = LevelMeter::new();
    let mut track_started = false;
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
                if !track_started {
                    track_started = true;
                    events.emit(TransportEvent::TrackStarted(bot_audio_track()));
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
    if track_started {
        events.emit(TransportEvent::TrackStopped(bot_audio_track()));
    }
}

/// The bot's audio track.
fn bot_audio_track() -> TrackInfo {
    TrackInfo { kind: TrackKind::Audio, participant: Some(bot_participant()) }
}

/// The bot, as a participant of a WebSocket session (there is no id on this wire).
pub(crate) fn bot_participant() -> Participant {
    Participant { id: "bot".into(), name: None, local: false }
}
