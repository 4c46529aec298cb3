//! Errors of the testkit.

use std::time::Duration;

/// Everything that can go wrong while running a test bot or waiting on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The bot could not bind its loopback listener.
    #[error("could not bind the test bot on 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// Something the test waited for did not happen in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the wait was.
        timeout: Duration,
    },
    /// The session has ended: nothing more can be sent on it.
    #[error("the bot session has ended")]
    SessionEnded,
    /// The action needs the other transport (for example `peerLeft` on a WebSocket session).
    #[error("{what} needs the {needs} transport")]
    WrongTransport {
        /// The action.
        what: &'static str,
        /// The transport it needs.
        needs: crate::BotTransport,
    },
    /// A message could not be encoded.
    #[error("could not encode an RTVI message: {0}")]
    Encode(#[from] pipecat_rtvi::RtviError),
}
