//! The errors of [`crate::PipecatClient`] calls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pipecat_rtvi::RtviError;

use crate::{HttpError, TransportError, TransportState};

/// What did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The transport connecting.
    Connect,
    /// The bot answering `client-ready` with `bot-ready`.
    BotReady,
    /// The bot answering a client request.
    ClientRequest,
    /// A function-call handler.
    FunctionCall,
    /// The transport accepting an outbound message.
    Send,
    /// The transport disconnecting.
    Disconnect,
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "the transport to connect",
            TimeoutKind::BotReady => "bot-ready",
            TimeoutKind::ClientRequest => "the response to a client request",
            TimeoutKind::FunctionCall => "the function-call handler",
            TimeoutKind::Send => "the transport to send a message",
            TimeoutKind::Disconnect => "the transport to disconnect",
        })
    }
}

/// Everything a [`crate::PipecatClient`] call can fail with.
///
/// Every variant keeps what the peer said: the HTTP status and server message, the transport
/// error (with its close code), the bot's error text.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A session is already active (or still starting); disconnect first.
    #[error("a session is already active (state {state})")]
    AlreadyStarted {
        /// The state at the time of the call.
        state: TransportState,
    },
    /// The call needs the bot to be ready (state `ready`).
    #[error("the bot is not ready (state {state})")]
    NotReady {
        /// The state at the time of the call.
        state: TransportState,
    },
    /// The start request failed: unreachable, timed out, non-2xx (with status and the
    /// server's message) or a non-JSON answer.
    #[error("start request failed: {0}")]
    StartBot(#[source] HttpError),
    /// The connection parameters are not usable (or there are none to reuse).
    #[error("invalid connection parameters: {0}")]
    InvalidParams(String),
    /// The caller passed something unusable (for example DTMF keys other than 0-9, * and #).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[source] TransportError),
    /// A step did not finish in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: TimeoutKind,
        /// The time limit.
        after: Duration,
    },
    /// The bot reported a fatal error, which ended the session.
    #[error("fatal error from the bot: {message}")]
    BotError {
        /// The bot's error text.
        message: String,
    },
    /// The bot left before the session was ready.
    #[error("the bot disconnected: {reason}")]
    BotDisconnected {
        /// What the transport saw.
        reason: String,
    },
    /// The session ended (by `disconnect()` or a session-ending event) before this call
    /// could complete.
    #[error("the session was disconnected")]
    Disconnected,
    /// The bot rejected the message with an `error-response`.
    #[error("the bot rejected the message: {message}")]
    ErrorResponse {
        /// The bot's error text.
        message: String,
    },
    /// The encoded message is larger than the transport carries.
    #[error("message is {size} bytes, larger than the transport maximum of {max} bytes")]
    MessageTooLarge {
        /// Encoded size in UTF-8 bytes.
        size: usize,
        /// The transport's maximum.
        max: usize,
    },
    /// The transport or the bot cannot do this.
    #[error("{feature} is not supported: {reason}")]
    Unsupported {
        /// The feature asked for (`enable_cam`, `dtmf`...).
        feature: String,
        /// Why.
        reason: String,
    },
    /// An RTVI message could not be encoded.
    #[error("protocol error: {0}")]
    Protocol(#[source] Arc<RtviError>),
}

impl Error {
    /// The HTTP status of a failed start request.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::StartBot(e) => e.status(),
            Error::Transport(TransportError::Http(e)) => e.status(),
            _ => None,
        }
    }

    /// `true` for every kind of timeout: client steps, the start request, transport steps.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::StartBot(HttpError::Timeout { .. })
                | Error::Transport(TransportError::Timeout { .. })
                | Error::Transport(TransportError::Http(HttpError::Timeout { .. }))
        )
    }
}

impl From<TransportError> for Error {
    /// Keeps the typed variants for what the client also detects itself (size, support,
    /// parameters).
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::MessageTooLarge { size, max } => Error::MessageTooLarge { size, max },
            TransportError::Unsupported { feature, transport } => Error::Unsupported {
                feature,
                reason: format!("the {transport} transport does not support it"),
            },
            TransportError::InvalidParams(message) => Error::InvalidParams(message),
            other => Error::Transport(other),
        }
    }
}

impl From<RtviError> for Error {
    fn from(e: RtviError) -> Self {
        match e {
            RtviError::MessageTooLarge { size, max } => Error::MessageTooLarge { size, max },
            RtviError::InvalidDtmf(keys) => Error::InvalidInput(format!(
                "invalid DTMF keys {keys:?} (expected one or more of 0-9, * and #)"
            )),
            RtviError::DtmfUnsupported { version } => Error::Unsupported {
                feature: "dtmf".into(),
                reason: format!("the bot speaks RTVI {version}; DTMF needs 2.0.0 or later"),
            },
            RtviError::SendFileUnsupported { version } => Error::Unsupported {
                feature: "send-file".into(),
                reason: format!("the bot speaks RTVI {version}; send-file needs 2.2.0 or later"),
            },
            other => Error::Protocol(Arc::new(other)),
        }
    }
}

/// The result of client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_variants_survive_conversion() {
        let e: Error = TransportError::unsupported("enable_cam", "websocket").into();
        assert!(matches!(&e, Error::Unsupported { feature, .. } if feature == "enable_cam"));
        assert!(e.to_string().contains("websocket"));
        let e: Error = TransportError::MessageTooLarge { size: 9, max: 8 }.into();
        assert!(matches!(e, Error::MessageTooLarge { size: 9, max: 8 }));
        let e: Error = RtviError::InvalidDtmf("x".into()).into();
        assert!(matches!(e, Error::InvalidInput(_)));
        let e: Error = RtviError::SendFileUnsupported { version: "2.1.0".into() }.into();
        assert!(matches!(&e, Error::Unsupported { feature, .. } if feature == "send-file"));
        assert!(e.to_string().contains("2.1.0"), "{e}");
        let e = Error::StartBot(HttpError::Status {
            endpoint: "http://x".into(),
            status: 404,
            message: "no such bot".into(),
        });
        assert_eq!(e.status(), Some(404));
        assert!(e.to_string().contains("no such bot"));
        assert!(
            Error::StartBot(HttpError::Timeout {
                endpoint: "http://x".into(),
                after: Duration::from_secs(1)
            })
            .is_timeout()
        );
        assert!(
            Error::Timeout { what: TimeoutKind::BotReady, after: Duration::from_secs(1) }
                .is_timeout()
        );
        assert!(!Error::Disconnected.is_timeout());
    }
}
