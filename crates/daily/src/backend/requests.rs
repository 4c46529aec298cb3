//! Matching responses to requests by id, for the backends whose engine answers later and
//! elsewhere (daily-core's callback thread for `ffi`, the bridge's stdout reader for
//! `sidecar`).
//!
//! A request takes an id from [`Requests::start`] and is made with it; the response, tagged
//! with the same id, is handed to [`Requests::complete`]; the waiter gets it through
//! [`PendingRequest::wait`], or a timeout, or [`BackendError::Closed`] once the backend has
//! gone away. A request that is given up (timed out, or its future dropped) is withdrawn, so a
//! late response to it is dropped like one to an id never issued.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::{BackendError, lock};

/// A response as the engine gives it: its answer, or its error message.
pub(super) type Response = Result<Value, String>;

/// Why a request ended without a response when the backend is dropped before closing.
const GONE: &str = "the backend went away with the request pending";

/// What a waiting request is told.
enum Outcome {
    Answered(Response),
    Closed(String),
}

struct State {
    waiting: HashMap<u64, oneshot::Sender<Outcome>>,
    /// Set once by [`Requests::close`]. Kept under the same lock as `waiting`, so a request
    /// cannot be registered after the others were failed and then wait for nothing.
    closed: Option<String>,
}

/// The requests of one backend connection (a call client, a bridge process) that wait for
/// their responses.
pub(super) struct Requests {
    ids: Arc<AtomicU64>,
    state: Arc<Mutex<State>>,
}

impl Requests {
    /// No request waiting; ids from 1.
    // This and the closed-state queries below only the sidecar uses (the ffi backend shares
    // ids and never asks).
    #[cfg(any(feature = "sidecar", test))]
    pub(super) fn new() -> Self {
        Self::sharing_ids(Arc::new(AtomicU64::new(1)))
    }

    /// No request waiting; ids from `ids`, which others may draw from too (the `ffi` backend
    /// gives every call and its microphone writes one sequence, so no two share an id).
    pub(super) fn sharing_ids(ids: Arc<AtomicU64>) -> Self {
        Requests {
            ids,
            state: Arc::new(Mutex::new(State { waiting: HashMap::new(), closed: None })),
        }
    }

    /// Registers a request; make it with [`PendingRequest::id`], then wait for it.
    ///
    /// # Errors
    /// [`BackendError::Closed`] with the reason given to [`Requests::close`], once closed.
    pub(super) fn start(&self) -> Result<PendingRequest, BackendError> {
        let id = self.ids.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        let mut state = lock(&self.state);
        if let Some(reason) = &state.closed {
            return Err(BackendError::Closed { reason: reason.clone() });
        }
        state.waiting.insert(id, tx);
        Ok(PendingRequest { id, rx, state: Arc::downgrade(&self.state) })
    }

    /// Hands a response to the request `id`. Returns `false` when no request waits for it
    /// (never issued, already answered, given up): the response is dropped.
    pub(super) fn complete(&self, id: u64, response: Response) -> bool {
        let Some(tx) = lock(&self.state).waiting.remove(&id) else { return false };
        // The waiter may have just given up; then nobody wants the response.
        tx.send(Outcome::Answered(response)).is_ok()
    }

    /// Fails every waiting request, and every later one, with [`BackendError::Closed`] and
    /// `reason`. Returns `false` when already closed (the first reason stays).
    pub(super) fn close(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        let waiting = {
            let mut state = lock(&self.state);
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(reason.clone());
            std::mem::take(&mut state.waiting)
        };
        for tx in waiting.into_values() {
            let _ = tx.send(Outcome::Closed(reason.clone()));
        }
        true
    }

    /// Whether [`Requests::close`] was called.
    #[cfg(any(feature = "sidecar", test))]
    pub(super) fn is_closed(&self) -> bool {
        lock(&self.state).closed.is_some()
    }

    /// The reason given to [`Requests::close`], once closed.
    #[cfg(any(feature = "sidecar", test))]
    pub(super) fn closed_reason(&self) -> Option<String> {
        lock(&self.state).closed.clone()
    }
}

/// A request waiting for its response. Dropping it withdraws the request.
pub(super) struct PendingRequest {
    id: u64,
    rx: oneshot::Receiver<Outcome>,
    /// Weak: a request that waits must not keep a backend's state alive; when the state goes,
    /// the sender goes with it and the wait ends.
    state: Weak<Mutex<State>>,
}

impl PendingRequest {
    /// The id to make the request with.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Waits at most `timeout` for the response.
    ///
    /// # Errors
    /// [`BackendError::Request`] when the engine answered with an error,
    /// [`BackendError::Timeout`], or [`BackendError::Closed`] when the backend closed or went
    /// away first.
    pub(super) async fn wait(
        mut self,
        operation: &'static str,
        timeout: Duration,
    ) -> Result<Value, BackendError> {
        match tokio::time::timeout(timeout, &mut self.rx).await {
            Ok(Ok(Outcome::Answered(Ok(value)))) => Ok(value),
            Ok(Ok(Outcome::Answered(Err(message)))) => {
                Err(BackendError::Request { operation, message })
            }
            Ok(Ok(Outcome::Closed(reason))) => Err(BackendError::Closed { reason }),
            Ok(Err(_)) => Err(BackendError::Closed { reason: GONE.into() }),
            // Dropping `self` withdraws the request.
            Err(_) => Err(BackendError::Timeout { operation, after: timeout }),
        }
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            lock(&state).waiting.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_response_reaches_the_request_with_its_id() {
        let requests = Requests::new();
        let first = requests.start().unwrap();
        let second = requests.start().unwrap();
        assert_ne!(first.id(), second.id());
        assert!(requests.complete(second.id(), Ok(json!({"x": 2}))));
        assert!(requests.complete(first.id(), Ok(json!({"x": 1}))));
        assert_eq!(first.wait("op", LONG).await.unwrap(), json!({"x": 1}));
        assert_eq!(second.wait("op", LONG).await.unwrap(), json!({"x": 2}));
    }

    #[tokio::test]
    async fn a_response_from_another_thread_is_delivered() {
        let requests = Arc::new(Requests::new());
        let pending = requests.start().unwrap();
        let id = pending.id();
        let responder = requests.clone();
        let thread = std::thread::spawn(move || responder.complete(id, Ok(json!(true))));
        assert_eq!(pending.wait("op", LONG).await.unwrap(), json!(true));
        assert!(thread.join().unwrap());
    }

    #[tokio::test]
    async fn an_error_response_is_a_request_error_naming_the_operation() {
        let requests = Requests::new();
        let pending = requests.start().unwrap();
        requests.complete(pending.id(), Err("no such room".into()));
        match pending.wait("join", LONG).await {
            Err(BackendError::Request { operation: "join", message }) => {
                assert_eq!(message, "no such room")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_response_to_an_unknown_id_is_dropped() {
        let requests = Requests::new();
        let pending = requests.start().unwrap();
        assert!(!requests.complete(pending.id() + 100, Ok(Value::Null)));
        // The waiting request is untouched, and a second response to it is unknown too.
        assert!(requests.complete(pending.id(), Ok(json!(1))));
        assert!(!requests.complete(pending.id(), Ok(json!(2))));
        assert_eq!(pending.wait("op", LONG).await.unwrap(), json!(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_without_a_response_times_out_and_is_withdrawn() {
        let requests = Requests::new();
        let pending = requests.start().unwrap();
        let id = pending.id();
        match pending.wait("leave", Duration::from_secs(5)).await {
            Err(BackendError::Timeout { operation: "leave", after }) => {
                assert_eq!(after, Duration::from_secs(5))
            }
            other => panic!("{other:?}"),
        }
        assert!(!requests.complete(id, Ok(Value::Null)), "a late response finds nobody");
        assert!(lock(&requests.state).waiting.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_request_is_withdrawn() {
        let requests = Requests::new();
        let pending = requests.start().unwrap();
        let id = pending.id();
        drop(pending);
        assert!(!requests.complete(id, Ok(Value::Null)));
        assert!(lock(&requests.state).waiting.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn closing_fails_waiting_and_later_requests_with_the_reason() {
        let requests = Requests::new();
        let first = requests.start().unwrap();
        let second = requests.start().unwrap();
        assert!(!requests.is_closed());
        assert!(requests.close("the bridge process exited"));
        assert!(!requests.close("another reason"), "closes once");
        assert_eq!(requests.closed_reason().as_deref(), Some("the bridge process exited"));
        for pending in [first, second] {
            match pending.wait("op", LONG).await {
                Err(BackendError::Closed { reason }) => {
                    assert_eq!(reason, "the bridge process exited")
                }
                other => panic!("{other:?}"),
            }
        }
        match requests.start() {
            Err(BackendError::Closed { reason }) => assert_eq!(reason, "the bridge process exited"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("started after close"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_backend_dropped_with_requests_pending_fails_them_without_waiting() {
        let requests = Requests::new();
        let pending = requests.start().unwrap();
        drop(requests);
        let start = tokio::time::Instant::now();
        assert!(matches!(pending.wait("op", LONG).await, Err(BackendError::Closed { .. })));
        assert_eq!(start.elapsed(), Duration::ZERO, "no wait for the timeout");
    }

    #[test]
    fn backends_sharing_ids_never_issue_the_same_one() {
        let ids = Arc::new(AtomicU64::new(1));
        let a = Requests::sharing_ids(ids.clone());
        let b = Requests::sharing_ids(ids.clone());
        let issued = [a.start().unwrap(), b.start().unwrap(), a.start().unwrap()].map(|p| p.id());
        assert_eq!(issued, [1, 2, 3]);
        assert_eq!(ids.load(Ordering::SeqCst), 4);
    }
}
