//! The heart of the Pipecat Rust SDK: the session state machine, the [`Transport`] trait
//! every transport implements, and the [`PipecatClient`].
//!
//! A client starts a bot through its HTTP endpoint, connects a transport, waits for the
//! bot's `bot-ready`, exchanges RTVI messages and ends the session cleanly. Its lifecycle is
//! the [`TransportState`] machine with the explicit table [`TRANSITIONS`]; everything that
//! happens is a [`ClientEvent`], delivered as a stream ([`PipecatClient::events`]) and to
//! optional [`ClientCallbacks`].
//!
//! ```
//! use pipecat_core::{ClientEvent, ConnectionParams, PipecatClient, TransportState};
//! # use pipecat_core::{Transport, TransportError, TransportEvent, TransportEventSink};
//! # use std::sync::Mutex;
//! # // A stand-in transport whose "bot" answers client-ready at once.
//! # #[derive(Default)]
//! # struct LoopbackTransport { sink: Mutex<Option<TransportEventSink>> }
//! # #[async_trait::async_trait]
//! # impl Transport for LoopbackTransport {
//! #     fn name(&self) -> &'static str { "loopback" }
//! #     fn attach(&self, _events: TransportEventSink) {}
//! #     async fn connect(&self, _p: ConnectionParams, events: TransportEventSink)
//! #         -> Result<(), TransportError> { *self.sink.lock().unwrap() = Some(events); Ok(()) }
//! #     async fn send_message(&self, message: String) -> Result<(), TransportError> {
//! #         let ready = pipecat_core::rtvi::ClientEnvelope::parse(&message).unwrap();
//! #         if ready.message.message_type() == "client-ready" {
//! #             let reply = format!(r#"{{"label":"rtvi-ai","type":"bot-ready","id":"{}","data":{{"version":"2.2.0"}}}}"#, ready.id);
//! #             self.sink.lock().unwrap().as_ref().unwrap().emit(TransportEvent::Message(reply));
//! #         }
//! #         Ok(())
//! #     }
//! #     async fn disconnect(&self) -> Result<(), TransportError> { Ok(()) }
//! #     fn max_message_size(&self) -> usize { 64 * 1024 }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pipecat_core::Error> {
//! let client = PipecatClient::builder(LoopbackTransport::default())
//!     .bot_ready_timeout(std::time::Duration::from_secs(10))
//!     .build();
//! let mut events = client.events();
//!
//! let params = ConnectionParams::from_json(serde_json::json!({"wsUrl": "ws://localhost:7860/ws"}))?;
//! let bot = client.connect(params).await?;
//! assert_eq!(bot.version, "2.2.0");
//! assert_eq!(client.state(), TransportState::Ready);
//!
//! client.disconnect().await?;
//! assert_eq!(client.state(), TransportState::Disconnected);
//!
//! // Every step was an event: idle -> connecting -> connected -> ready -> ...
//! while let Some(event) = events.recv().await {
//!     if let ClientEvent::Disconnected = event {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod callbacks;
mod client;
mod error;
mod events;
mod function_calls;
pub mod http;
mod inbound;
mod lossless;
pub mod media;
mod options;
mod protocol_warning;
mod session;
mod state;
mod transport;
mod transport_error;

pub use callbacks::{ClientCallbacks, dispatch_to_typed};
pub use client::{ClientBuilder, PipecatClient};
pub use error::{Error, Result, TimeoutKind};
pub use events::{
    ClientEvent, ErrorEvent, ErrorOrigin, EventStream, ProtocolWarning, UndispatchedReason,
};
pub use function_calls::{FunctionCall, FunctionCallHandler, FunctionCallOutcome};
pub use http::{ApiRequest, HttpError};
pub use lossless::LosslessEventStream;
pub use options::{
    ClientOptions, DEFAULT_BOT_READY_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISCONNECT_TIMEOUT,
    DEFAULT_EVENT_CAPACITY, DEFAULT_FUNCTION_CALL_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_SEND_TIMEOUT,
};
pub use state::{InvalidTransition, TRANSITIONS, TransportState, can_transition};
pub use transport::{ConnectionParams, Transport, TransportEvent, TransportEventSink};
pub use transport_error::{ErrorSource, TransportError};

/// Re-exported so transports and users need no second dependency for message types.
pub use pipecat_rtvi as rtvi;
