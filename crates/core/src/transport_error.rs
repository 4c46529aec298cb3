//! Errors a transport reports, to its caller or as a session-ending event.

use std::sync::Arc;
use std::time::Duration;

use crate::http::HttpError;

/// A shareable source error (transport errors travel in cloned events).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a transport.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection parameters (or start-bot response) are not usable by this transport.
    #[error("invalid connection parameters: {0}")]
    InvalidParams(String),
    /// The connection could not be established.
    #[error("could not connect: {message}")]
    ConnectFailed {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<ErrorSource>,
    },
    /// A signalling HTTP request (an SDP offer, ICE candidates) failed.
    #[error("signalling request failed: {0}")]
    Http(#[from] HttpError),
    /// The server refused our credentials (WebSocket close 4003, HTTP 401/403).
    #[error("authentication rejected: {0}")]
    Authentication(String),
    /// A step did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// The step.
        what: String,
        /// The time limit.
        after: Duration,
    },
    /// The connection dropped without a normal close.
    #[error("connection lost: {reason}")]
    ConnectionLost {
        /// Close code, when the wire has one (WebSocket).
        code: Option<u16>,
        /// What happened.
        reason: String,
    },
    /// Recovery (for example SmallWebRTC peer-connection restarts) gave up.
    #[error("reconnection failed after {attempts} attempts: {reason}")]
    ReconnectFailed {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// There is no open connection to send on.
    #[error("transport is not connected")]
    NotConnected,
    /// The message is larger than the transport can carry.
    #[error("message is {size} bytes, larger than the transport maximum of {max} bytes")]
    MessageTooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// This transport cannot do that (camera on WebSocket, for example).
    #[error("{feature} is not supported by the {transport} transport")]
    Unsupported {
        /// The feature asked for.
        feature: String,
        /// The transport's name.
        transport: String,
    },
    /// Audio devices or codecs failed.
    #[error("media error: {message}")]
    Media {
        /// What failed, for people (names the headless alternatives where they help).
        message: String,
        /// The underlying device or codec error.
        #[source]
        source: Option<ErrorSource>,
    },
    /// Anything else.
    #[error("{message}")]
    Other {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<ErrorSource>,
    },
}

impl TransportError {
    /// A [`TransportError::ConnectFailed`] with a source.
    pub fn connect_failed(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TransportError::ConnectFailed { message: message.into(), source: Some(Arc::new(source)) }
    }

    /// A [`TransportError::Other`] with a source.
    pub fn other(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TransportError::Other { message: message.into(), source: Some(Arc::new(source)) }
    }

    /// A [`TransportError::Media`] with its cause.
    pub fn media(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TransportError::Media { message: message.into(), source: Some(Arc::new(source)) }
    }

    /// A [`TransportError::Unsupported`].
    pub fn unsupported(feature: impl Into<String>, transport: impl Into<String>) -> Self {
        TransportError::Unsupported { feature: feature.into(), transport: transport.into() }
    }
}
