//! A Daily-compatible transport for the Pipecat Rust SDK.
//!
//! Most Pipecat bots in production sit in a [Daily](https://daily.co) room. This crate lets a
//! Rust [`PipecatClient`](pipecat_core) talk to them: RTVI over Daily app-messages, the bot
//! found among the room's participants, `client-ready` held until the bot's audio is playable,
//! microphone and bot audio through virtual devices, pre-ready audio buffering, and a REST
//! helper for development servers.
//!
//! # What is pure Rust, and what is Daily's
//!
//! Daily's signalling protocol is proprietary and undocumented, so this crate does **not**
//! implement it. Everything Pipecat-specific ([`params`], [`envelope`], [`event`],
//! [`call_state`], [`audio`], [`rest`], [`DailyTransport`]) is pure Rust and tested offline.
//! Joining a real room goes through Daily's own engine behind the [`DailyBackend`] trait:
//!
//! - feature `ffi`: `backend::ffi::FfiBackend` loads a **user-supplied** `libdaily_core` (the
//!   daily-core-sdk C API) at run time. Neither the library nor its header is shipped or
//!   downloaded by this crate.
//! - feature `sidecar`: `backend::sidecar::SidecarBackend` drives `daily-python`
//!   (`pip install daily-python`) in a child process through this crate's bridge script.
//! - always: [`backend::ScriptedBackend`], a **synthetic** test double that replays scripted
//!   events and never talks to Daily.
//!
//! See the crate README for what has been verified offline and what needs a Daily account.
//!
//! # Example
//!
//! ```
//! use pipecat_core::{ConnectionParams, Transport, TransportEventSink};
//! use pipecat_daily::backend::{ScriptStep, ScriptedBackend};
//! use pipecat_daily::DailyTransport;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A synthetic room where the bot is already present with its audio up.
//! let (backend, handle) = ScriptedBackend::new();
//! let backend = backend.after_join(vec![
//!     ScriptStep::participant("participant-joined", "bot-1", "Pipecat bot", "playable"),
//! ]);
//! let transport = DailyTransport::builder(backend).build()?;
//! assert!(transport.is_synthetic());
//!
//! let (events, _rx) = TransportEventSink::new(1);
//! let params = ConnectionParams::from_json(serde_json::json!({"dailyRoom": "https://acme.daily.co/demo"}))?;
//! transport.connect(params, events).await?;
//! assert_eq!(transport.bot().map(|b| b.id).as_deref(), Some("bot-1"));
//! transport.disconnect().await?;
//! assert_eq!(handle.leaves(), 1);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod audio;
pub mod backend;
pub mod call_state;
pub mod envelope;
pub mod event;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod params;
pub mod rest;
mod transport;

pub use backend::{BackendError, DailyBackend, JoinFailure};
pub use call_state::{Session, SessionAction};
pub use envelope::{EnvelopeError, Recipient};
pub use event::{CallState, DailyEvent, DailyParticipant};
pub use params::{DailyParams, ParamsError, RoomUrl};
pub use transport::{
    DEFAULT_JOIN_TIMEOUT, DEFAULT_LEAVE_TIMEOUT, DailyTransport, DailyTransportBuilder,
    FALLBACK_MAX_MESSAGE_SIZE, MIC_DEVICE, SPEAKER_DEVICE, daily_error,
};

/// The build error every transport shares, and the audio options of its builder.
pub use pipecat_media_engine::{AudioBuilder, AudioOptions, BuildError};
