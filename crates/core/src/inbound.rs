//! What arrives from the transport: session events, RTVI messages, function calls.

use std::sync::Arc;

use pipecat_rtvi::{ClientEnvelope, ServerEnvelope, ServerMessage};
use serde_json::Value;
use tracing::Instrument;

use crate::events::{ClientEvent, ErrorEvent, ErrorOrigin, ProtocolWarning, UndispatchedReason};
use crate::function_calls::{FunctionCall, FunctionCallHandler, run_handler};
use crate::session::{EndKind, EndTarget, Inner, lock};
use crate::{Error, TransportEvent, TransportState};

impl Inner {
    /// Handles one transport event. Runs on the event task and never waits: anything slow
    /// (ending a session, running a handler) is spawned.
    pub(crate) fn handle_transport_event(self: &Arc<Self>, generation: u64, event: TransportEvent) {
        let (current, span) = {
            let shared = self.lock();
            match &shared.attempt {
                Some(a) => (Some(a.id), a.span.clone()),
                None => (None, self.span.clone()),
            }
        };
        let session_event = matches!(
            event,
            TransportEvent::Message(_)
                | TransportEvent::BotConnected(_)
                | TransportEvent::BotDisconnected { .. }
                | TransportEvent::ParticipantJoined(_)
                | TransportEvent::ParticipantLeft(_)
                | TransportEvent::Failed(_)
                | TransportEvent::Reconnecting { .. }
                | TransportEvent::Reconnected
        );
        let _entered = span.enter();
        if generation != 0 && Some(generation) != current {
            // A late event of a session that is over.
            tracing::debug!(generation, ?current, "dropping an event of an ended session");
            return;
        }
        if generation == 0 && session_event {
            tracing::warn!("session event on the device sink dropped (use the connect sink)");
            return;
        }
        match event {
            TransportEvent::Message(text) => self.handle_message(generation, &text),
            TransportEvent::BotConnected(p) => self.emit(ClientEvent::BotConnected(p)),
            TransportEvent::BotDisconnected { reason } => {
                tracing::info!(%reason, "bot disconnected");
                self.emit(ClientEvent::BotDisconnected { reason: reason.clone() });
                // Before bot-ready the session can never complete, so it ends whatever the
                // option says; the option only keeps an established session open.
                let before_ready = self.state() != TransportState::Ready;
                if self.options.disconnect_on_bot_disconnect || before_ready {
                    self.spawn_end(
                        EndTarget::Attempt(generation),
                        EndKind::Orderly(Error::BotDisconnected { reason }),
                    );
                }
            }
            TransportEvent::Closed { reason } => {
                tracing::info!(%reason, "connection closed");
                self.emit(ClientEvent::ConnectionClosed { reason });
                // A clean end: waiters of an unfinished connect get `Disconnected`.
                self.spawn_end(
                    EndTarget::Attempt(generation),
                    EndKind::Orderly(Error::Disconnected),
                );
            }
            TransportEvent::ParticipantJoined(p) => self.emit(ClientEvent::ParticipantJoined(p)),
            TransportEvent::ParticipantLeft(p) => self.emit(ClientEvent::ParticipantLeft(p)),
            TransportEvent::Failed(e) => {
                tracing::warn!(error = %e, "transport failed");
                let error = Error::Transport(e);
                self.emit(ClientEvent::Error(ErrorEvent::from_error(
                    ErrorOrigin::Transport,
                    error.clone(),
                    true,
                )));
                self.spawn_end(
                    EndTarget::Attempt(generation),
                    EndKind::Fatal { error, origin: None },
                );
            }
            TransportEvent::Reconnecting { attempt, max_attempts } => {
                self.emit(ClientEvent::Reconnecting { attempt, max_attempts });
            }
            TransportEvent::Reconnected => self.emit(ClientEvent::Reconnected),
            TransportEvent::Warning(w) => self.emit(ClientEvent::TransportWarning(w)),
            TransportEvent::TrackStarted(t) => self.emit(ClientEvent::TrackStarted(t)),
            TransportEvent::TrackStopped(t) => self.emit(ClientEvent::TrackStopped(t)),
            TransportEvent::LocalAudioLevel(l) => self.emit(ClientEvent::LocalAudioLevel(l)),
            TransportEvent::RemoteAudioLevel(l) => self.emit(ClientEvent::RemoteAudioLevel(l)),
            TransportEvent::DeviceError(e) => self.emit(ClientEvent::DeviceError(e)),
            TransportEvent::MediaStateChanged(s) => self.emit(ClientEvent::MediaStateChanged(s)),
            TransportEvent::MicUpdated(d) => self.emit(ClientEvent::MicUpdated(d)),
            TransportEvent::SpeakerUpdated(d) => self.emit(ClientEvent::SpeakerUpdated(d)),
            TransportEvent::AvailableMicsUpdated(d) => {
                self.emit(ClientEvent::AvailableMicsUpdated(d));
            }
            TransportEvent::AvailableSpeakersUpdated(d) => {
                self.emit(ClientEvent::AvailableSpeakersUpdated(d));
            }
        }
    }

    fn handle_message(self: &Arc<Self>, generation: u64, text: &str) {
        let envelope = match ServerEnvelope::parse(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable message skipped");
                self.emit(ClientEvent::ProtocolWarning(ProtocolWarning::InvalidMessage {
                    reason: e.to_string(),
                }));
                return;
            }
        };
        tracing::trace!(message_type = envelope.message.message_type(), "message");
        let id = envelope.id;
        match envelope.message {
            ServerMessage::BotReady(bot_ready) => {
                let became_ready = self.on_bot_ready(&mut self.lock(), generation, bot_ready);
                if became_ready {
                    self.transport.bot_ready();
                }
            }
            ServerMessage::Error(error) => {
                tracing::warn!(message = %error.error, fatal = error.fatal, "error from the bot");
                // A fatal one carries the same typed error `connect` returns before ready.
                let typed =
                    error.fatal.then(|| Arc::new(Error::BotError { message: error.error.clone() }));
                self.emit(ClientEvent::Error(ErrorEvent {
                    origin: ErrorOrigin::Bot,
                    message: error.error.clone(),
                    fatal: error.fatal,
                    error: typed,
                }));
                if error.fatal {
                    self.spawn_end(
                        EndTarget::Attempt(generation),
                        EndKind::Fatal {
                            error: Error::BotError { message: error.error },
                            origin: None,
                        },
                    );
                }
            }
            ServerMessage::ErrorResponse(response) => {
                let message = response.error;
                let mut shared = self.lock();
                let state = shared.state();
                let Some(attempt) = shared.attempt_mut(generation) else { return };
                let reply = id.as_ref().and_then(|id| attempt.pending.remove(id));
                let to_client_ready =
                    id.is_some() && id == attempt.client_ready_id && state != TransportState::Ready;
                drop(shared);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::ErrorResponse { message: message.clone() }));
                }
                if to_client_ready {
                    // A version complaint: the bot sends bot-ready anyway.
                    tracing::warn!(%message, "the bot rejected client-ready");
                    self.emit(ClientEvent::ProtocolWarning(ProtocolWarning::ClientReadyRejected {
                        message,
                    }));
                } else {
                    self.emit(ClientEvent::MessageError { id, message });
                }
            }
            ServerMessage::ServerResponse(response) => {
                let reply = {
                    let mut shared = self.lock();
                    let Some(attempt) = shared.attempt_mut(generation) else { return };
                    id.as_ref().and_then(|id| attempt.pending.remove(id))
                };
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(response.d.clone().unwrap_or(Value::Null)));
                }
                self.emit(ClientEvent::ServerResponse { id, response });
            }
            ServerMessage::BotInterrupted => {
                // Drop buffered bot audio before anyone hears more of it.
                self.transport.bot_interrupted();
                self.emit(ClientEvent::BotInterrupted);
            }
            ServerMessage::LlmFunctionCallInProgress(call) => {
                self.emit(ClientEvent::LlmFunctionCallInProgress(call.clone()));
                self.dispatch_function_call(
                    generation,
                    call.function_name,
                    call.tool_call_id,
                    call.arguments,
                );
            }
            ServerMessage::LlmFunctionCall(call) => {
                self.emit(ClientEvent::LlmFunctionCall(call.clone()));
                self.dispatch_function_call(
                    generation,
                    Some(call.function_name),
                    call.tool_call_id,
                    Some(call.args),
                );
            }
            other => {
                if let Some(event) = ClientEvent::from_server_message(other) {
                    self.emit(event);
                }
            }
        }
    }

    /// With `reply_to_unhandled_function_calls`, a handler that answers an error naming the
    /// function (the call is reported undispatched, `replied: true`, as it is handed over).
    fn unhandled_reply(&self, function_name: &str) -> Option<Arc<dyn FunctionCallHandler>> {
        if !self.options.reply_to_unhandled_function_calls {
            return None;
        }
        let error = format!("no handler for {function_name} in the client");
        Some(Arc::new(move |_call: FunctionCall| {
            let error = error.clone();
            async move { Err::<Value, String>(error) }
        }))
    }

    /// Hands a call to its handler, if one is registered (the bot also announces calls it
    /// runs itself; those have no handler here and get no answer from us).
    fn dispatch_function_call(
        self: &Arc<Self>,
        generation: u64,
        function_name: Option<String>,
        tool_call_id: String,
        arguments: Option<Value>,
    ) {
        let Some(function_name) = function_name.filter(|n| !n.is_empty()) else {
            tracing::debug!(%tool_call_id, "function call without a name cannot be dispatched");
            self.emit(ClientEvent::FunctionCallUndispatched {
                tool_call_id,
                reason: UndispatchedReason::MissingFunctionName,
            });
            return;
        };
        let registered = lock(&self.functions).lookup(&function_name);
        let unhandled = registered.is_none();
        let Some(handler) = registered.or_else(|| self.unhandled_reply(&function_name)) else {
            tracing::debug!(function = %function_name, %tool_call_id, "no handler for the function call");
            self.emit(ClientEvent::FunctionCallUndispatched {
                tool_call_id,
                reason: UndispatchedReason::NoHandler { function_name, replied: false },
            });
            return;
        };
        if unhandled {
            tracing::info!(function = %function_name, %tool_call_id, "no handler: answering with an error");
            self.emit(ClientEvent::FunctionCallUndispatched {
                tool_call_id: tool_call_id.clone(),
                reason: UndispatchedReason::NoHandler {
                    function_name: function_name.clone(),
                    replied: true,
                },
            });
        }
        let call = FunctionCall {
            function_name,
            tool_call_id,
            arguments: match arguments {
                Some(Value::Null) | None => Value::Object(Default::default()),
                Some(arguments) => arguments,
            },
        };
        let mut shared = self.lock();
        let Some(attempt) = shared.attempt_mut(generation) else { return };
        if !attempt.dispatched_calls.insert(call.tool_call_id.clone()) {
            drop(shared);
            self.emit(ClientEvent::FunctionCallUndispatched {
                tool_call_id: call.tool_call_id,
                reason: UndispatchedReason::Duplicate,
            });
            return;
        }
        tracing::debug!(function = %call.function_name, tool_call_id = %call.tool_call_id, "running handler");
        let weak = Arc::downgrade(self);
        let limit = self.options.function_call_timeout;
        let span = attempt.span.clone();
        let task = tokio::spawn(
            async move {
                let (result, outcome) = run_handler(handler, call.clone(), limit).await;
                let Some(inner) = weak.upgrade() else { return };
                let envelope = ClientEnvelope::function_call_result(
                    call.function_name.clone(),
                    call.tool_call_id.clone(),
                    call.arguments.clone(),
                    result.clone(),
                );
                match inner.send_for(generation, envelope).await {
                    Ok(()) => {
                        inner.emit(ClientEvent::FunctionCallHandled { call, result, outcome });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not send a function-call result");
                        inner.emit(ClientEvent::Error(ErrorEvent {
                            origin: ErrorOrigin::Client,
                            message: format!(
                                "could not send the result of function call {} ({}): {e}",
                                call.function_name, call.tool_call_id
                            ),
                            fatal: false,
                            error: Some(Arc::new(e)),
                        }));
                    }
                }
            }
            .instrument(span),
        );
        attempt.tasks.retain(|t| !t.is_finished());
        attempt.tasks.push(task.abort_handle());
    }
}
