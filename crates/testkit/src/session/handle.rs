//! The public handle on a session, that tests drive the bot with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pipecat_rtvi::{ServerEnvelope, ServerMessage};
use serde_json::Value;

use super::{Ending, Garbage, SessionCore};
use crate::BotTransport;
use crate::error::TestkitError;
use crate::recorder::{EndReason, Recorder};

/// A handle on one bot session: push messages, audio and misbehaviour to the client at any
/// time, and end the session. Cheap to clone.
///
/// Every method fails with [`TestkitError::SessionEnded`] once the session is ending.
#[derive(Clone)]
pub struct SessionHandle {
    pub(crate) core: Arc<SessionCore>,
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl SessionHandle {
    /// The session id (a UUID made by the bot).
    pub fn id(&self) -> &str {
        self.core.id()
    }

    /// The transport the client connected over.
    pub fn transport(&self) -> BotTransport {
        self.core.transport()
    }

    /// The SmallWebRTC `pc_id` of the current peer connection (`None` on WebSocket).
    pub fn pc_id(&self) -> Option<String> {
        self.core.pc_id()
    }

    /// `true` once the session is over.
    pub fn is_ended(&self) -> bool {
        self.core.is_ended()
    }

    /// The bot's recorder (shared by all sessions; filter by [`SessionHandle::id`]).
    pub fn recorder(&self) -> &Recorder {
        self.core.recorder()
    }

    /// Waits until the session is over; returns why.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_ended(&self, timeout: Duration) -> Result<EndReason, TestkitError> {
        self.core.wait_ended(timeout).await
    }

    /// Sends any server message (no id).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`], or [`TestkitError::Encode`].
    pub fn send(&self, message: ServerMessage) -> Result<(), TestkitError> {
        self.core.send_envelope(&ServerEnvelope::new(message))
    }

    /// Sends a server message with its envelope (for replies carrying an `id`).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`], or [`TestkitError::Encode`].
    pub fn send_envelope(&self, envelope: &ServerEnvelope) -> Result<(), TestkitError> {
        self.core.send_envelope(envelope)
    }

    /// Sends a `server-message` with this data.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_server_message(&self, data: Value) -> Result<(), TestkitError> {
        self.send(ServerMessage::ServerMessage(data))
    }

    /// Sends raw text on the RTVI channel, unchecked (the WebSocket wraps it in a
    /// `MessageFrame`).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_raw(&self, text: impl Into<String>) -> Result<(), TestkitError> {
        self.core.send_text("raw", text.into())
    }

    /// Sends `bot-ready` now, answering the last `client-ready` (for
    /// [`BotReadyMode::Never`](crate::BotReadyMode::Never), or to send it twice).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_bot_ready(&self) -> Result<(), TestkitError> {
        self.core.send_bot_ready()
    }

    /// Starts a bot-initiated function call: `llm-function-call-started` then
    /// `-in-progress` (as much as the report level reveals). Returns the `tool_call_id`
    /// (`call-<n>`). When the client answers, the bot sends `llm-function-call-stopped`; wait
    /// for the answer with [`Recorder::wait_for_function_call_result`].
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn start_function_call(
        &self,
        function_name: &str,
        arguments: Value,
    ) -> Result<String, TestkitError> {
        self.core.start_function_call(function_name, None, arguments)
    }

    /// Cancels a function call: `llm-function-call-stopped` with `cancelled: true`.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn cancel_function_call(&self, tool_call_id: &str) -> Result<(), TestkitError> {
        self.core.stop_function_call(tool_call_id, true, None)
    }

    /// Interrupts the bot: drops queued bot audio, sends `bot-interrupted` (and on WebSocket a
    /// protobuf `InterruptionFrame`).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn interrupt(&self) -> Result<(), TestkitError> {
        self.core.interrupt()
    }

    /// Plays a sine tone as bot speech (`bot-started-speaking`, audio, `bot-stopped-speaking`).
    /// Returns its length in samples at the session's output rate.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn play_tone(&self, duration: Duration, hz: f64) -> Result<usize, TestkitError> {
        self.core.play_tone(duration, hz)
    }

    /// Queues mono PCM16 audio at `sample_rate` as bot speech (resampled to the output rate).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn play_audio(&self, samples: &[i16], sample_rate: u32) -> Result<(), TestkitError> {
        self.core.queue_audio(samples, sample_rate)
    }

    /// Sends an RTVI `error`. A fatal one ends the session the way the real bot does (WebSocket
    /// close 1000; SmallWebRTC `peerLeft` and close).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_error(&self, error: &str, fatal: bool) -> Result<(), TestkitError> {
        self.core.send_error(error, fatal)
    }

    /// Ends the session gracefully, as the bot (WebSocket close 1000; SmallWebRTC `peerLeft`
    /// and close).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn end(&self) -> Result<(), TestkitError> {
        self.core.end(Ending::Graceful(EndReason::BotEnded))
    }

    /// Drops the connection with no goodbye: the WebSocket's TCP connection is closed without
    /// a close frame; the peer connection is closed without `peerLeft`.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn close_abruptly(&self) -> Result<(), TestkitError> {
        self.core.end(Ending::Abrupt)
    }

    /// Closes the WebSocket with a close code of your choice (SmallWebRTC: a graceful end).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn close_with_code(&self, code: u16, reason: &str) -> Result<(), TestkitError> {
        self.core.end(Ending::CloseCode(code, reason.to_owned()))
    }

    /// SmallWebRTC: sends the `peerLeft` signalling message but keeps the connection up.
    ///
    /// # Errors
    /// [`TestkitError::WrongTransport`] on WebSocket; [`TestkitError::SessionEnded`].
    pub fn peer_left(&self) -> Result<(), TestkitError> {
        self.core.send_signalling("peerLeft")
    }

    /// SmallWebRTC: asks the client to renegotiate. `Ok(false)` when one is already in
    /// progress (the real server ignores the request then, for 2 s after the client's offer).
    ///
    /// # Errors
    /// [`TestkitError::WrongTransport`] on WebSocket; [`TestkitError::SessionEnded`].
    pub fn request_renegotiate(&self) -> Result<bool, TestkitError> {
        self.core.request_renegotiate()
    }

    /// SmallWebRTC: closes the peer connection under the running session, telling nobody. The
    /// session goes on and a client can come back with `restart_pc`.
    ///
    /// # Errors
    /// [`TestkitError::WrongTransport`] on WebSocket; [`TestkitError::SessionEnded`].
    pub fn drop_peer_connection(&self) -> Result<(), TestkitError> {
        self.core.drop_peer_connection()
    }

    /// Sends one kind of garbage.
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_garbage(&self, garbage: Garbage) -> Result<(), TestkitError> {
        if self.core.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        self.core.emit_garbage(garbage);
        Ok(())
    }

    /// Sends every kind of garbage ([`Garbage::ALL`]).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_all_garbage(&self) -> Result<(), TestkitError> {
        for &garbage in Garbage::ALL {
            self.send_garbage(garbage)?;
        }
        Ok(())
    }

    /// Sends a `server-message` of about `bytes` bytes of JSON (the JS WebSocket client's
    /// limit is 1 MiB; a data channel's is what the client advertised, often 64 KiB). At most
    /// [`MAX_OVERSIZE_BYTES`](super::MAX_OVERSIZE_BYTES).
    ///
    /// # Errors
    /// [`TestkitError::SessionEnded`].
    pub fn send_oversize(&self, bytes: usize) -> Result<(), TestkitError> {
        self.core.send_oversize(bytes)
    }
}
