//! The shared core of a client: state, the active attempt, event emission, background tasks,
//! and the attempt lifecycle (begin, guard, end) the public methods are built from.
//!
//! - [`connect`]: the operations that start a session (devices, the start request, connect,
//!   `bot-ready`);
//! - [`outbound`]: sending to the bot and matching requests with their replies.

mod connect;
mod outbound;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use pipecat_rtvi::{BotReady, ClientEnvelope, Compatibility, ProtocolVersion};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tracing::{Instrument, Span};

use crate::callbacks::ClientCallbacks;
use crate::events::{ClientEvent, ErrorEvent, ErrorOrigin, ProtocolWarning};
use crate::function_calls::Registry;
use crate::http::loggable_endpoint;
use crate::http::{self, ApiRequest};
use crate::lossless::{LosslessEventStream, LosslessSubscribers};
use crate::media::MediaControl;
use crate::options::ClientOptions;
use crate::state::StateMachine;
use crate::{
    ConnectionParams, Error, TimeoutKind, Transport, TransportError, TransportEvent,
    TransportEventSink, TransportState,
};

type Result<T, E = Error> = std::result::Result<T, E>;

/// Locks a mutex; a poisoned lock is still usable (no user code runs under these locks, and
/// a panic must not wedge the client).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How the last session was started, for `reconnect()`.
#[derive(Debug, Clone)]
pub(crate) enum LastStart {
    Request(ApiRequest),
    Params(ConnectionParams),
}

/// A request waiting for its `server-response` / `error-response`.
pub(crate) type PendingReply = oneshot::Sender<Result<Value>>;

/// One attempt: everything from leaving a rest state (`idle`, `initialized`,
/// `disconnected`) until the next one. Its id tags the transport sink of its session.
pub(crate) struct Attempt {
    pub(crate) id: u64,
    /// Set (once) to the reason the attempt ended; every waiter of the attempt watches it.
    end_tx: watch::Sender<Option<Error>>,
    pub(crate) span: Span,
    ready_tx: Option<oneshot::Sender<BotReady>>,
    /// A `bot-ready` that overtook the end of `send_client_ready`.
    early_ready: Option<BotReady>,
    pub(crate) client_ready_id: Option<String>,
    pub(crate) pending: HashMap<String, PendingReply>,
    pub(crate) dispatched_calls: HashSet<String>,
    pub(crate) tasks: Vec<AbortHandle>,
}

/// What an operation holds of its attempt.
#[derive(Clone)]
pub(crate) struct AttemptHandle {
    pub(crate) id: u64,
    end_rx: watch::Receiver<Option<Error>>,
    pub(crate) span: Span,
}

/// State guarded by one lock.
pub(crate) struct Shared {
    machine: StateMachine,
    next_attempt: u64,
    pub(crate) attempt: Option<Attempt>,
    pub(crate) last_start: Option<LastStart>,
    /// The answer of `start_bot` and its request, until a connect uses it.
    started: Option<(Value, ApiRequest)>,
    pub(crate) bot_ready: Option<BotReady>,
    pub(crate) bot_version: Option<ProtocolVersion>,
}

impl Shared {
    pub(crate) fn state(&self) -> TransportState {
        self.machine.state()
    }

    /// The bot's version for deciding what may be sent: an unknown version (reported as a
    /// protocol warning) counts as the oldest supported protocol.
    pub(crate) fn gating_version(&self) -> ProtocolVersion {
        self.bot_version.unwrap_or(pipecat_rtvi::OLDEST_SUPPORTED_VERSION)
    }

    /// The attempt with id `id`, if it is the current one.
    pub(crate) fn attempt_mut(&mut self, id: u64) -> Option<&mut Attempt> {
        self.attempt.as_mut().filter(|a| a.id == id)
    }
}

/// Emits events in one order to subscribers (lossy and lossless) and the callback task.
pub(crate) struct Emitter {
    order: Mutex<()>,
    events: broadcast::Sender<ClientEvent>,
    lossless: LosslessSubscribers,
    callbacks: Option<mpsc::UnboundedSender<ClientEvent>>,
}

impl Emitter {
    pub(crate) fn emit(&self, event: ClientEvent) {
        let _order = lock(&self.order);
        if let Some(callbacks) = &self.callbacks {
            let _ = callbacks.send(event.clone());
        }
        self.lossless.send(&event);
        // No subscribers is fine: events are not stored.
        let _ = self.events.send(event);
    }
}

/// Receivers whose tasks wait for a Tokio runtime.
struct Background {
    transport_rx: mpsc::UnboundedReceiver<(u64, TransportEvent)>,
    callbacks: Option<(Arc<dyn ClientCallbacks>, mpsc::UnboundedReceiver<ClientEvent>)>,
}

/// How an attempt ends.
pub(crate) enum EndKind {
    /// Through `disconnecting`; waiters get the error given.
    Orderly(Error),
    /// Through `error`. With an origin, an error event is emitted first (callers that
    /// already reported the error pass `None`).
    Fatal { error: Error, origin: Option<ErrorOrigin> },
}

/// Which attempt to end.
#[derive(Clone, Copy)]
pub(crate) enum EndTarget {
    /// Only this attempt (a late ending of an old one does nothing).
    Attempt(u64),
    /// Whatever is active, `initialized` included.
    Current,
}

/// Where the parameters of a connect come from.
pub(crate) enum ConnectSource {
    Params(ConnectionParams),
    /// The answer of the preceding `start_bot`.
    Started,
}

/// Which operation begins an attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Init,
    StartBot,
    Connect,
}

pub(crate) struct Inner {
    pub(crate) id: String,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) options: ClientOptions,
    pub(crate) http: reqwest::Client,
    pub(crate) shared: Mutex<Shared>,
    state_tx: watch::Sender<TransportState>,
    pub(crate) emitter: Emitter,
    pub(crate) functions: Mutex<Registry>,
    sink: TransportEventSink,
    background: Mutex<Option<Background>>,
    background_started: AtomicBool,
    shutdown: watch::Sender<bool>,
    pub(crate) span: Span,
}

impl Inner {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        options: ClientOptions,
        http: reqwest::Client,
        callbacks: Option<Arc<dyn ClientCallbacks>>,
    ) -> Arc<Self> {
        let id = pipecat_rtvi::fresh_id()[..8].to_owned();
        let span =
            tracing::info_span!("pipecat_client", client = %id, transport = transport.name());
        let (sink, transport_rx) = TransportEventSink::new(0);
        let (events, _) = broadcast::channel(options.event_capacity.max(1));
        let (callback_tx, callbacks) = match callbacks {
            Some(cb) => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(tx), Some((cb, rx)))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            id,
            transport,
            options,
            http,
            shared: Mutex::new(Shared {
                machine: StateMachine::new(),
                next_attempt: 1,
                attempt: None,
                last_start: None,
                started: None,
                bot_ready: None,
                bot_version: None,
            }),
            state_tx: watch::channel(TransportState::Idle).0,
            emitter: Emitter {
                order: Mutex::new(()),
                events,
                lossless: LosslessSubscribers::default(),
                callbacks: callback_tx,
            },
            functions: Mutex::new(Registry::default()),
            sink: sink.clone(),
            background: Mutex::new(Some(Background { transport_rx, callbacks })),
            background_started: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            span,
        });
        inner.transport.attach(sink);
        inner.ensure_background();
        inner
    }

    /// Starts the event and callback tasks once a Tokio runtime is at hand (at build time
    /// if there is one, else on the first async call).
    pub(crate) fn ensure_background(self: &Arc<Self>) {
        if self.background_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let Some(background) = lock(&self.background).take() else { return };
        self.background_started.store(true, Ordering::Release);
        let weak = Arc::downgrade(self);
        let shutdown = self.shutdown.subscribe();
        runtime.spawn(pump(weak, background.transport_rx, shutdown).instrument(self.span.clone()));
        if let Some((callbacks, rx)) = background.callbacks {
            runtime.spawn(run_callbacks(callbacks, rx).instrument(self.span.clone()));
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.emitter.events.subscribe()
    }

    pub(crate) fn subscribe_lossless(&self) -> LosslessEventStream {
        self.emitter.lossless.subscribe()
    }

    pub(crate) fn emit(&self, event: ClientEvent) {
        self.emitter.emit(event);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }

    pub(crate) fn state(&self) -> TransportState {
        *self.state_tx.borrow()
    }

    pub(crate) fn watch_state(&self) -> watch::Receiver<TransportState> {
        self.state_tx.subscribe()
    }

    /// Moves the state through the table, emitting the change; refuses (and logs) anything
    /// else.
    pub(crate) fn transition(&self, shared: &mut Shared, to: TransportState) -> bool {
        match shared.machine.transition(to) {
            Ok(previous) => {
                tracing::debug!(%previous, state = %to, "state changed");
                self.state_tx.send_replace(to);
                self.emit(ClientEvent::TransportStateChanged { state: to, previous });
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "refused state transition");
                false
            }
        }
    }

    /// Waits until no session is ending (ends are bounded by the disconnect timeout).
    pub(crate) async fn wait_settled(&self) {
        let mut rx = self.state_tx.subscribe();
        let _ = rx.wait_for(|s| !s.is_ending()).await;
    }

    fn new_attempt(&self, shared: &mut Shared) -> AttemptHandle {
        let id = shared.next_attempt;
        shared.next_attempt += 1;
        let span = tracing::info_span!(parent: &self.span, "session", session = id);
        let (end_tx, end_rx) = watch::channel(None);
        shared.attempt = Some(Attempt {
            id,
            end_tx,
            span: span.clone(),
            ready_tx: None,
            early_ready: None,
            client_ready_id: None,
            pending: HashMap::new(),
            dispatched_calls: HashSet::new(),
            tasks: Vec::new(),
        });
        AttemptHandle { id, end_rx, span }
    }

    fn handle_of(attempt: &Attempt) -> AttemptHandle {
        AttemptHandle {
            id: attempt.id,
            end_rx: attempt.end_tx.subscribe(),
            span: attempt.span.clone(),
        }
    }

    /// Begins (or, from `authenticated`, continues) an attempt for `op` and moves to its
    /// first state. `prepare` runs under the lock before the transition and may refuse.
    async fn begin<T>(
        &self,
        op: Op,
        mut prepare: impl FnMut(&mut Shared) -> Result<T>,
    ) -> Result<(AttemptHandle, T)> {
        loop {
            {
                let mut shared = self.lock();
                let state = shared.state();
                if !state.is_ending() {
                    let target = match op {
                        Op::Init => TransportState::Initializing,
                        Op::StartBot => TransportState::Authenticating,
                        Op::Connect => TransportState::Connecting,
                    };
                    let continues = state == TransportState::Authenticated && op != Op::Init;
                    if !matches!(
                        state,
                        TransportState::Idle
                            | TransportState::Initialized
                            | TransportState::Disconnected
                    ) && !continues
                    {
                        return Err(Error::AlreadyStarted { state });
                    }
                    let value = prepare(&mut shared)?;
                    let handle = match shared.attempt.as_ref().filter(|_| continues) {
                        Some(attempt) => Self::handle_of(attempt),
                        None => self.new_attempt(&mut shared),
                    };
                    self.transition(&mut shared, target);
                    return Ok((handle, value));
                }
            }
            // A session is ending: start after it (so a connect right after the bot left
            // does not fail spuriously).
            self.wait_settled().await;
        }
    }

    /// Runs `future` unless the attempt ends first; then returns the end reason once the
    /// end is complete (state `disconnected`).
    pub(crate) async fn guarded<F: Future>(
        &self,
        handle: &AttemptHandle,
        future: F,
    ) -> Result<F::Output> {
        let mut end_rx = handle.end_rx.clone();
        let ended = async {
            match end_rx.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(Error::Disconnected),
                Err(_) => Error::Disconnected,
            }
        };
        tokio::select! {
            biased;
            reason = ended => {
                self.wait_settled().await;
                Err(reason)
            }
            output = future => Ok(output),
        }
    }

    /// The reason `handle`'s attempt ended, after the end completed.
    async fn ended(&self, handle: &AttemptHandle) -> Error {
        let reason = handle.end_rx.borrow().clone().unwrap_or(Error::Disconnected);
        self.wait_settled().await;
        reason
    }

    /// Ends the attempt with a client-side failure and returns the error.
    async fn fail(self: &Arc<Self>, handle: &AttemptHandle, error: Error) -> Error {
        let origin = match error {
            Error::Transport(_) => ErrorOrigin::Transport,
            _ => ErrorOrigin::Client,
        };
        // The transport's disconnect result does not change what the caller is told.
        let _ = self
            .end(
                EndTarget::Attempt(handle.id),
                EndKind::Fatal { error: error.clone(), origin: Some(origin) },
            )
            .await;
        self.wait_settled().await;
        error
    }

    /// Ends a session: state `disconnecting` (or `error`), every waiter settled with the
    /// reason, every pending request with `Disconnected`, handler tasks aborted, the
    /// transport disconnected (bounded), then `disconnected`. Returns the transport's
    /// disconnect result; does nothing (`Ok`) if the target is not active.
    ///
    /// The second half runs as its own task, so dropping this future (a caller's timeout)
    /// cannot leave the client stuck in `disconnecting`.
    pub(crate) async fn end(self: &Arc<Self>, target: EndTarget, kind: EndKind) -> Result<()> {
        match self.start_end(target, kind) {
            Some(completion) => completion.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// The synchronous half of [`Inner::end`]; spawns the rest. `None` if nothing to end.
    pub(crate) fn start_end(
        self: &Arc<Self>,
        target: EndTarget,
        kind: EndKind,
    ) -> Option<JoinHandle<Result<()>>> {
        let span = {
            let mut shared = self.lock();
            let state = shared.state();
            let active = match target {
                EndTarget::Attempt(id) => shared.attempt.as_ref().is_some_and(|a| a.id == id),
                EndTarget::Current => {
                    shared.attempt.is_some() || state == TransportState::Initialized
                }
            };
            if !active || state.is_ending() {
                return None;
            }
            let (to, reason) = match kind {
                EndKind::Orderly(reason) => (TransportState::Disconnecting, reason),
                EndKind::Fatal { error, origin } => {
                    if let Some(origin) = origin {
                        self.emit(ClientEvent::Error(ErrorEvent::from_error(
                            origin,
                            error.clone(),
                            true,
                        )));
                    }
                    (TransportState::Error, error)
                }
            };
            self.transition(&mut shared, to);
            shared.bot_ready = None;
            shared.bot_version = None;
            shared.started = None;
            match shared.attempt.take() {
                Some(attempt) => {
                    let span = attempt.span.clone();
                    settle_attempt(attempt, reason);
                    span
                }
                None => self.span.clone(),
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to close the transport on (a drop outside Tokio): the state at
            // least must not stay `disconnecting`.
            self.finish_end();
            return None;
        };
        let inner = self.clone();
        Some(
            runtime.spawn(
                async move {
                    let limit = inner.options.disconnect_timeout;
                    let result =
                        match tokio::time::timeout(limit, inner.transport.disconnect()).await {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "transport disconnect failed");
                                Err(Error::from(e))
                            }
                            Err(_) => {
                                tracing::warn!(?limit, "transport disconnect timed out");
                                Err(Error::Timeout { what: TimeoutKind::Disconnect, after: limit })
                            }
                        };
                    inner.finish_end();
                    result
                }
                .instrument(span),
            ),
        )
    }

    fn finish_end(&self) {
        let mut shared = self.lock();
        self.transition(&mut shared, TransportState::Disconnected);
        self.emit(ClientEvent::Disconnected);
    }

    /// `end` in the background, for the event pump (which must not wait).
    pub(crate) fn spawn_end(self: &Arc<Self>, target: EndTarget, kind: EndKind) {
        let _ = self.start_end(target, kind);
    }
}

/// Ends an attempt if the operation driving it is dropped before it finished (a caller's
/// own timeout or `select!`), so the client is never left half-started.
struct EndIfDropped<'a> {
    inner: &'a Arc<Inner>,
    id: Option<u64>,
}

impl<'a> EndIfDropped<'a> {
    fn new(inner: &'a Arc<Inner>, id: u64) -> Self {
        EndIfDropped { inner, id: Some(id) }
    }

    /// The operation finished: the attempt lives on.
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for EndIfDropped<'_> {
    fn drop(&mut self) {
        // After a normal failure the attempt is over already and this does nothing.
        if let Some(id) = self.id.take() {
            let _ =
                self.inner.start_end(EndTarget::Attempt(id), EndKind::Orderly(Error::Disconnected));
        }
    }
}

/// Settles everything waiting on an ended attempt.
fn settle_attempt(mut attempt: Attempt, reason: Error) {
    attempt.end_tx.send_replace(Some(reason));
    for (_, reply) in attempt.pending.drain() {
        let _ = reply.send(Err(Error::Disconnected));
    }
    for task in attempt.tasks.drain(..) {
        task.abort();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let shared = lock(&self.shared);
        let active = shared.attempt.is_some() || shared.state() == TransportState::Initialized;
        drop(shared);
        // The last handle is gone with a session open: close the transport in the
        // background rather than leave it running.
        if active && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let transport = self.transport.clone();
            let limit = self.options.disconnect_timeout;
            runtime.spawn(async move {
                let _ = tokio::time::timeout(limit, transport.disconnect()).await;
            });
        }
    }
}

/// Reads transport events until the client is dropped.
async fn pump(
    weak: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<(u64, TransportEvent)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            event = rx.recv() => {
                let Some((generation, event)) = event else { break };
                let Some(inner) = weak.upgrade() else { break };
                inner.handle_transport_event(generation, event);
            }
        }
    }
}

/// Runs the callbacks in event order; a panic in one is caught and logged.
async fn run_callbacks(
    callbacks: Arc<dyn ClientCallbacks>,
    mut rx: mpsc::UnboundedReceiver<ClientEvent>,
) {
    while let Some(event) = rx.recv().await {
        let name = event.name();
        if std::panic::catch_unwind(AssertUnwindSafe(|| callbacks.on_event(&event))).is_err() {
            tracing::error!(event = name, "a client callback panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_logged_without_secrets() {
        assert_eq!(
            loggable_endpoint("https://user:pw@bot.example/start?token=abc#x"),
            "https://bot.example/start"
        );
        assert_eq!(loggable_endpoint("not a url"), "<invalid URL>");
    }
}
