//! The heart of the Pipecat Rust SDK: the session state machine, the [`Transport`] trait
//! every transport implements, and the [`PipecatClient`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
pub mod media;
mod transport;
mod transport_error;

pub use http::{ApiRequest, HttpError};
pub use transport::{
    ConnectionParams, DEFAULT_MAX_MESSAGE_SIZE, Transport, TransportEvent, TransportEventSink,
};
pub use transport_error::{ErrorSource, TransportError};

/// Re-exported so transports and users need no second dependency for message types.
pub use pipecat_rtvi as rtvi;
