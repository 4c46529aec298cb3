//! Sending to the bot: the ready check, the size check, the send timeout, and client
//! requests matched with their `server-response` / `error-response`.

use super::*;

impl Inner {
    /// The current attempt's id if the session is ready.
    pub(crate) fn ready_attempt(&self, shared: &Shared) -> Result<u64> {
        match (&shared.attempt, shared.state()) {
            (Some(attempt), TransportState::Ready) => Ok(attempt.id),
            (_, state) => Err(Error::NotReady { state }),
        }
    }

    /// Encodes with the transport's size check; an oversized message is also reported as a
    /// non-fatal error event.
    pub(crate) fn encode(&self, envelope: &ClientEnvelope) -> Result<String> {
        envelope.to_json_checked(self.transport.max_message_size()).map_err(|e| {
            let error = Error::from(e);
            if matches!(error, Error::MessageTooLarge { .. }) {
                self.emit(ClientEvent::Error(ErrorEvent::from_error(
                    ErrorOrigin::Client,
                    error.clone(),
                    false,
                )));
            }
            error
        })
    }

    /// Hands encoded text to the transport, bounded by the send timeout.
    pub(crate) async fn transmit(&self, json: String) -> Result<()> {
        let limit = self.options.send_timeout;
        match tokio::time::timeout(limit, self.transport.send_message(json)).await {
            Ok(result) => result.map_err(|e| {
                let error = Error::from(e);
                if matches!(error, Error::MessageTooLarge { .. }) {
                    self.emit(ClientEvent::Error(ErrorEvent::from_error(
                        ErrorOrigin::Transport,
                        error.clone(),
                        false,
                    )));
                }
                error
            }),
            Err(_) => Err(Error::Timeout { what: TimeoutKind::Send, after: limit }),
        }
    }

    /// Sends a message that needs the bot ready.
    pub(crate) async fn send_ready(&self, envelope: ClientEnvelope) -> Result<()> {
        self.ready_attempt(&self.lock())?;
        let json = self.encode(&envelope)?;
        tracing::trace!(message_type = envelope.message.message_type(), "sending");
        self.transmit(json).await
    }

    /// Sends a message for attempt `id`, if that attempt is still the ready one.
    pub(crate) async fn send_for(&self, id: u64, envelope: ClientEnvelope) -> Result<()> {
        let current = self.ready_attempt(&self.lock())?;
        if current != id {
            return Err(Error::Disconnected);
        }
        let json = self.encode(&envelope)?;
        self.transmit(json).await
    }

    /// A client request: registers the reply slot before sending (a fast reply must find
    /// it), then waits with `limit`. Always settles: reply, error-response, timeout,
    /// disconnect.
    pub(crate) async fn request(
        &self,
        t: String,
        d: Option<Value>,
        limit: std::time::Duration,
    ) -> Result<Value> {
        let envelope = ClientEnvelope::client_message(t, d);
        let id = envelope.id.clone();
        let (tx, rx) = oneshot::channel();
        let (attempt_id, json) = {
            let mut shared = self.lock();
            let attempt_id = self.ready_attempt(&shared)?;
            let json = self.encode(&envelope)?;
            if let Some(attempt) = shared.attempt_mut(attempt_id) {
                attempt.pending.insert(id.clone(), tx);
            }
            (attempt_id, json)
        };
        let forget = |inner: &Self| {
            if let Some(attempt) = inner.lock().attempt_mut(attempt_id) {
                attempt.pending.remove(&id);
            }
        };
        if let Err(e) = self.transmit(json).await {
            forget(self);
            return Err(e);
        }
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result,
            // The slot was dropped without an answer: the session ended.
            Ok(Err(_)) => Err(Error::Disconnected),
            Err(_) => {
                forget(self);
                Err(Error::Timeout { what: TimeoutKind::ClientRequest, after: limit })
            }
        }
    }

    /// The transport's media result, with `Unsupported` also reported as an event.
    pub(crate) fn media<T>(&self, result: Result<T, TransportError>) -> Result<T> {
        result.map_err(|e| self.report_unsupported(Error::from(e)))
    }

    /// The transport's media control, or the typed "unsupported" error (also an event) for
    /// `feature` when the transport has no media.
    pub(crate) fn media_control(&self, feature: &str) -> Result<&dyn MediaControl> {
        self.transport
            .media()
            .ok_or_else(|| TransportError::unsupported(feature, self.transport.name()))
            .map_err(|e| self.report_unsupported(Error::from(e)))
    }

    pub(crate) fn report_unsupported(&self, error: Error) -> Error {
        if let Error::Unsupported { feature, reason } = &error {
            self.emit(ClientEvent::UnsupportedFeature {
                feature: feature.clone(),
                reason: reason.clone(),
            });
        }
        error
    }
}
