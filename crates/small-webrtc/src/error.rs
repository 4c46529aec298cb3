//! The errors specific to this transport. They travel to the client inside a
//! [`TransportError`] (as its source), so callers can downcast when they need the detail.

use std::sync::Arc;

use pipecat_core::TransportError;

/// What went wrong in the SmallWebRTC transport itself (HTTP failures are
/// [`pipecat_core::HttpError`]s instead).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SmallWebRtcError {
    /// The offer endpoint answered 2xx, but not with a usable SDP answer.
    #[error("invalid SDP answer: {reason}")]
    InvalidAnswer {
        /// What is wrong with it.
        reason: String,
    },
    /// webrtc-rs refused an operation (building the peer connection, an offer, an answer).
    #[error("WebRTC error while {context}: {message}")]
    WebRtc {
        /// What the transport was doing.
        context: &'static str,
        /// webrtc-rs's description.
        message: String,
    },
    /// The peer connection failed or closed while connecting.
    #[error("the peer connection {state} while connecting")]
    PeerConnectionLost {
        /// The state it reached (`failed`, `closed`).
        state: String,
    },
}

impl SmallWebRtcError {
    /// A [`SmallWebRtcError::WebRtc`] from a webrtc-rs error.
    pub(crate) fn webrtc(context: &'static str, e: impl std::fmt::Display) -> Self {
        SmallWebRtcError::WebRtc { context, message: e.to_string() }
    }

    /// Wraps the error in a [`TransportError::ConnectFailed`] that keeps it as its source.
    pub(crate) fn into_connect_failed(self) -> TransportError {
        TransportError::ConnectFailed { message: self.to_string(), source: Some(Arc::new(self)) }
    }
}

impl From<SmallWebRtcError> for TransportError {
    fn from(e: SmallWebRtcError) -> Self {
        e.into_connect_failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_connect_failed_with_source() {
        let e: TransportError = SmallWebRtcError::InvalidAnswer { reason: "empty".into() }.into();
        match &e {
            TransportError::ConnectFailed { message, source } => {
                assert!(message.contains("empty"));
                let source = source.as_ref().expect("source kept");
                assert!(source.downcast_ref::<SmallWebRtcError>().is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
