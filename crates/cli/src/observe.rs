//! A transport decorator that sees every RTVI message both ways, for `--record`.
//!
//! Outbound messages are seen as the client hands them to the transport (`client-ready`
//! included); inbound ones as the transport hands them to the client, through a
//! [`TransportEventSink`] of our own in front of the client's. Nothing in core or the
//! transports has to know.

use std::sync::Arc;

use pipecat::async_trait::async_trait;

use pipecat::{
    ApiRequest, ConnectionParams, MediaControl, Transport, TransportError, TransportEvent,
    TransportEventSink,
};
use serde_json::Value;

/// Where observed messages go.
pub(crate) trait MessageObserver: Send + Sync + 'static {
    /// A message the client sends.
    fn outbound(&self, text: &str);
    /// A message the bot sent.
    fn inbound(&self, text: &str);
}

/// `inner`, with every RTVI message shown to `observer`.
pub(crate) struct ObservedTransport {
    inner: Box<dyn Transport>,
    observer: Arc<dyn MessageObserver>,
}

impl ObservedTransport {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Box<dyn Transport>, observer: Arc<dyn MessageObserver>) -> Self {
        ObservedTransport { inner, observer }
    }
}

#[async_trait]
impl Transport for ObservedTransport {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn attach(&self, events: TransportEventSink) {
        self.inner.attach(events);
    }

    fn map_start_response(
        &self,
        response: Value,
        start_request: &ApiRequest,
    ) -> Result<ConnectionParams, TransportError> {
        self.inner.map_start_response(response, start_request)
    }

    async fn connect(
        &self,
        params: ConnectionParams,
        events: TransportEventSink,
    ) -> Result<(), TransportError> {
        // Our own sink in front of the client's: same generation, every event forwarded in
        // order. The forwarder ends when the transport drops its sink.
        let (ours, mut rx) = TransportEventSink::new(events.generation());
        let observer = Arc::clone(&self.observer);
        tokio::spawn(async move {
            while let Some((_, event)) = rx.recv().await {
                if let TransportEvent::Message(text) = &event {
                    observer.inbound(text);
                }
                events.emit(event);
            }
        });
        self.inner.connect(params, ours).await
    }

    async fn send_client_ready(&self, message: String) -> Result<(), TransportError> {
        self.observer.outbound(&message);
        self.inner.send_client_ready(message).await
    }

    async fn send_message(&self, message: String) -> Result<(), TransportError> {
        self.observer.outbound(&message);
        self.inner.send_message(message).await
    }

    fn bot_ready(&self) {
        self.inner.bot_ready();
    }

    fn bot_interrupted(&self) {
        self.inner.bot_interrupted();
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        self.inner.disconnect().await
    }

    fn max_message_size(&self) -> usize {
        self.inner.max_message_size()
    }

    fn media(&self) -> Option<&dyn MediaControl> {
        self.inner.media()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl MessageObserver for Seen {
        fn outbound(&self, text: &str) {
            self.0.lock().unwrap().push(format!("> {text}"));
        }
        fn inbound(&self, text: &str) {
            self.0.lock().unwrap().push(format!("< {text}"));
        }
    }

    /// A transport whose bot echoes every message back.
    #[derive(Default)]
    struct Echo(Mutex<Option<TransportEventSink>>);

    #[async_trait]
    impl Transport for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn attach(&self, _events: TransportEventSink) {}
        async fn connect(
            &self,
            _params: ConnectionParams,
            events: TransportEventSink,
        ) -> Result<(), TransportError> {
            *self.0.lock().unwrap() = Some(events);
            Ok(())
        }
        async fn send_message(&self, message: String) -> Result<(), TransportError> {
            if let Some(sink) = self.0.lock().unwrap().as_ref() {
                sink.emit(TransportEvent::Message(format!("re:{message}")));
            }
            Ok(())
        }
        async fn disconnect(&self) -> Result<(), TransportError> {
            self.0.lock().unwrap().take();
            Ok(())
        }
        fn max_message_size(&self) -> usize {
            1024
        }
    }

    #[tokio::test]
    async fn both_directions_are_seen_and_events_forwarded() {
        let seen = Arc::new(Seen::default());
        let transport = ObservedTransport::new(Box::new(Echo::default()), seen.clone());
        let (sink, mut rx) = TransportEventSink::new(7);
        transport.connect(ConnectionParams::default(), sink).await.unwrap();
        transport.send_client_ready("hello".into()).await.unwrap();
        let (generation, event) =
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
        assert_eq!(generation, 7);
        assert!(matches!(event, TransportEvent::Message(ref m) if m == "re:hello"));
        assert_eq!(*seen.0.lock().unwrap(), vec!["> hello".to_owned(), "< re:hello".to_owned()]);
        transport.disconnect().await.unwrap();
        assert_eq!(transport.name(), "echo");
    }
}
