//! One bot session: the transport-independent brain. It answers the client's RTVI messages
//! the way a pipecat-ai 1.14 bot with the Python peer script does, echoes audio, runs the
//! test's handlers and hooks, and hands everything it sends to its transport as [`Outbound`]s.
//!
//! [`SessionCore`] is split by job: [`receive`] answers the client's RTVI messages,
//! [`commands`] runs `client-message` commands, [`send`] builds what the bot sends,
//! [`bot_audio`] echoes and paces audio, [`signalling`] holds the SmallWebRTC-only parts, and
//! [`handle`] is the public [`SessionHandle`] tests drive it with.

mod bot_audio;
mod commands;
mod garbage;
mod handle;
mod io;
mod receive;
mod send;
mod signalling;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::BotTransport;
use crate::audio::{AudioOut, Resampler};
use crate::error::TestkitError;
use crate::recorder::{BotEventKind, EndReason, Recorder};
use crate::script::Script;
use crate::util::{Tasks, lock};

pub use garbage::Garbage;
pub use handle::SessionHandle;
pub(crate) use io::{AudioPlan, Ending, Inbound, Outbound, SessionIo};
pub use send::MAX_OVERSIZE_BYTES;

/// The most bot audio queued, in seconds of output.
const MAX_QUEUED_AUDIO_SECS: u32 = 30;

/// What a session has learnt and decided so far, behind one lock.
#[derive(Default)]
struct State {
    client_ready_id: Option<String>,
    client_major: Option<u64>,
    client_version: Option<String>,
    bot_ready_sent: bool,
    fn_calls: u64,
    pending_calls: HashMap<String, String>,
    echo_open_until: Option<Instant>,
    resampler: Option<Resampler>,
    speaking: bool,
    last_speech: Option<Instant>,
    renegotiating: bool,
    #[cfg(feature = "webrtc")]
    renegotiation_epoch: u64,
    pc_id: Option<String>,
    segment: i64,
    /// Why the bot is ending the session, once it decided to.
    ending: Option<EndReason>,
}

/// The shared core of one session.
pub(crate) struct SessionCore {
    id: String,
    transport: BotTransport,
    script: Arc<Script>,
    recorder: Recorder,
    echo: Arc<AtomicBool>,
    out_tx: mpsc::UnboundedSender<Outbound>,
    plan: AudioPlan,
    audio_out: Mutex<AudioOut>,
    state: Mutex<State>,
    /// No more sending: an ending was requested or the client left.
    closing: AtomicBool,
    /// `Some(reason)` once the session is over.
    ended: watch::Sender<Option<EndReason>>,
    tasks: Tasks,
}

impl fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("transport", &self.transport)
            .field("ended", &*self.ended.borrow())
            .finish_non_exhaustive()
    }
}

impl SessionCore {
    /// Starts a session: its message loop and audio pacer run until it ends.
    pub(crate) fn start(
        transport: BotTransport,
        script: Arc<Script>,
        recorder: Recorder,
        echo: Arc<AtomicBool>,
        plan: AudioPlan,
        pc_id: Option<&str>,
    ) -> SessionIo {
        let (out_tx, outbound) = mpsc::unbounded_channel();
        let (inbound, mut in_rx) = mpsc::unbounded_channel::<Inbound>();
        let cap = (plan.sample_rate * MAX_QUEUED_AUDIO_SECS) as usize;
        let core = Arc::new(SessionCore {
            id: uuid::Uuid::new_v4().to_string(),
            transport,
            script,
            recorder,
            echo,
            out_tx,
            plan,
            audio_out: Mutex::new(AudioOut::new(cap)),
            state: Mutex::new(State { pc_id: pc_id.map(str::to_owned), ..State::default() }),
            closing: AtomicBool::new(false),
            ended: watch::Sender::new(None),
            tasks: Tasks::default(),
        });
        core.recorder.event(Some(&core.id), BotEventKind::SessionStarted { transport });

        let looped = Arc::clone(&core);
        core.tasks.spawn(async move {
            while let Some(message) = in_rx.recv().await {
                match message {
                    Inbound::Text(text) => looped.handle_text(&text).await,
                    Inbound::Audio { samples, sample_rate, channels } => {
                        looped.handle_audio(&samples, sample_rate, channels)
                    }
                }
            }
        });
        let paced = Arc::clone(&core);
        core.tasks.spawn(async move { paced.pace_audio().await });

        if core.script.garbage_before_ready {
            for &garbage in Garbage::ALL {
                core.emit_garbage(garbage);
            }
        }
        for hook in core.script.on_session_start.clone() {
            let session = SessionHandle { core: Arc::clone(&core) };
            core.tasks.spawn(hook(session));
        }
        SessionIo { core, outbound, inbound }
    }

    /// The session id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The transport.
    pub(super) fn transport(&self) -> BotTransport {
        self.transport
    }

    /// The recorder.
    pub(crate) fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The script.
    pub(crate) fn script(&self) -> &Script {
        &self.script
    }

    /// `true` once an ending was requested or the client left.
    pub(super) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// `true` once the session is over.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.borrow().is_some()
    }

    /// Called by the transport once the session is over (it closed the connection, or the
    /// client went away). Records why, stops the session's tasks. Idempotent.
    pub(crate) fn finished(&self, reason: EndReason) {
        self.closing.store(true, Ordering::SeqCst);
        // A client that leaves because the bot said goodbye does not change why it ended.
        let reason = match (reason, lock(&self.state).ending.clone()) {
            (EndReason::ClientDisconnected, Some(ending)) => ending,
            (reason, _) => reason,
        };
        let first = self.ended.send_if_modified(|ended| {
            if ended.is_none() {
                *ended = Some(reason.clone());
                true
            } else {
                false
            }
        });
        if first {
            self.recorder.event(Some(&self.id), BotEventKind::SessionEnded { reason });
            self.recorder.session_ended(&self.id);
            self.tasks.abort_all();
            let cap = (self.plan.sample_rate * MAX_QUEUED_AUDIO_SECS) as usize;
            *lock(&self.audio_out) = AudioOut::new(cap);
        }
    }

    /// A receiver that sees the end reason once the session is over.
    pub(crate) fn subscribe_ended(&self) -> watch::Receiver<Option<EndReason>> {
        self.ended.subscribe()
    }

    /// Waits until the session is over.
    pub(super) async fn wait_ended(&self, timeout: Duration) -> Result<EndReason, TestkitError> {
        let mut rx = self.ended.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(reason)) => Ok(reason.clone().unwrap_or(EndReason::Shutdown)),
            Ok(Err(_)) => Ok(EndReason::Shutdown),
            Err(_) => Err(TestkitError::Timeout { what: "the session to end".into(), timeout }),
        }
    }

    /// Requests the end of the session; the transport says goodbye and calls [`Self::finished`].
    pub(super) fn end(&self, ending: Ending) -> Result<(), TestkitError> {
        if self.closing.swap(true, Ordering::SeqCst) {
            return Err(TestkitError::SessionEnded);
        }
        lock(&self.state).ending = Some(match &ending {
            Ending::Graceful(reason) => reason.clone(),
            Ending::Abrupt => EndReason::Abrupt,
            Ending::CloseCode(code, _) => EndReason::CloseCode(*code),
        });
        self.out_tx.send(Outbound::End(ending)).map_err(|_| TestkitError::SessionEnded)
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
