//! The lossless subscription to a client's events: [`LosslessEventStream`], from
//! [`crate::PipecatClient::events_lossless`].
//!
//! The emitter hands every event to each lossless subscriber's own unbounded queue, under the
//! same lock and in the same order as it sends it to the broadcast behind
//! [`crate::EventStream`]. Sending to an unbounded queue never waits, so a slow reader never
//! slows the session: the cost of falling behind is memory, held by that subscriber alone.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::ClientEvent;
use crate::session::lock;

/// The queues of the live lossless subscribers.
#[derive(Default)]
pub(crate) struct LosslessSubscribers {
    senders: Mutex<Vec<mpsc::UnboundedSender<ClientEvent>>>,
}

impl LosslessSubscribers {
    /// A new subscriber; it sees every event emitted from now on.
    pub(crate) fn subscribe(&self) -> LosslessEventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.senders).push(tx);
        LosslessEventStream { rx }
    }

    /// Queues `event` for every subscriber (never waits); forgets the ones dropped.
    pub(crate) fn send(&self, event: &ClientEvent) {
        let mut senders = lock(&self.senders);
        senders.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// A subscription that loses nothing, from [`crate::PipecatClient::events_lossless`]: every
/// [`ClientEvent`] the client emits after it was made, in the order the client emitted it
/// (the order [`crate::EventStream`]s see), and never [`ClientEvent::Lagged`]. The stream
/// ends when the client is dropped.
///
/// For recorders, machine-readable output and tests. Like an [`crate::EventStream`] it never
/// slows the session; unlike one it keeps what its reader has not taken yet, in memory
/// without a bound: a reader that stops reading while events keep coming makes the process
/// grow (by the events' own size: a `server-message` holds its JSON). Read it steadily, watch
/// [`backlog`](Self::backlog) if the writer behind it can stall, and drop it when done.
/// User interfaces, which prefer the latest events to all of them, should use
/// [`crate::PipecatClient::events`].
pub struct LosslessEventStream {
    rx: mpsc::UnboundedReceiver<ClientEvent>,
}

impl LosslessEventStream {
    /// The next event; `None` once the client is gone and every event was taken.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        self.rx.recv().await
    }

    /// How many events are waiting to be read (what this subscription holds in memory).
    pub fn backlog(&self) -> usize {
        self.rx.len()
    }
}

impl std::fmt::Debug for LosslessEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LosslessEventStream").field("backlog", &self.backlog()).finish()
    }
}

impl Stream for LosslessEventStream {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_reaches_every_subscriber_in_order() {
        let subscribers = LosslessSubscribers::default();
        let mut first = subscribers.subscribe();
        for n in 0..10_000 {
            subscribers.send(&ClientEvent::ServerMessage(n.into()));
        }
        let mut second = subscribers.subscribe();
        subscribers.send(&ClientEvent::Disconnected);
        assert_eq!(first.backlog(), 10_001);
        for n in 0..10_000 {
            match first.rx.try_recv() {
                Ok(ClientEvent::ServerMessage(v)) => assert_eq!(v, n),
                other => panic!("event {n}: {other:?}"),
            }
        }
        assert!(matches!(first.rx.try_recv(), Ok(ClientEvent::Disconnected)));
        assert!(matches!(second.rx.try_recv(), Ok(ClientEvent::Disconnected)));
        assert_eq!(second.backlog(), 0);
    }

    #[test]
    fn a_dropped_subscriber_is_forgotten() {
        let subscribers = LosslessSubscribers::default();
        let dropped = subscribers.subscribe();
        let _kept = subscribers.subscribe();
        drop(dropped);
        subscribers.send(&ClientEvent::Connected);
        assert_eq!(lock(&subscribers.senders).len(), 1);
    }
}
