//! The usual imports in one line: `use pipecat::prelude::*;`.
//!
//! The client and its vocabulary, the headless audio sources and sinks, and the transports
//! enabled by features. Nothing here shadows a name of Rust's own prelude (there is no
//! `Result`).
//!
//! A source of your own needs nothing else:
//!
//! ```
//! use pipecat::prelude::*;
//! use std::time::Duration;
//!
//! /// A sawtooth, unpaced, for one second.
//! struct Sawtooth {
//!     sent: Duration,
//! }
//!
//! #[async_trait]
//! impl AudioSource for Sawtooth {
//!     fn format(&self) -> AudioFormat {
//!         AudioFormat::MONO_16K
//!     }
//!
//!     async fn next_frame(&mut self) -> std::result::Result<Option<AudioFrame>, MediaError> {
//!         if self.sent >= Duration::from_secs(1) {
//!             return Ok(None);
//!         }
//!         let samples: Vec<i16> = (0..320).map(|i| (i * 100) as i16).collect();
//!         let frame = AudioFrame::new(samples, AudioFormat::MONO_16K, self.sent)?;
//!         self.sent += frame.duration();
//!         Ok(Some(frame))
//!     }
//! }
//!
//! # #[cfg(feature = "websocket")]
//! # fn build() -> std::result::Result<(), Box<dyn std::error::Error>> {
//! let transport =
//!     WebSocketTransport::builder().audio_source(Sawtooth { sent: Duration::ZERO }).build()?;
//! # drop(transport);
//! # Ok(())
//! # }
//! ```

pub use crate::{
    ApiRequest, ClientCallbacks, ClientEvent, ConnectionParams, Error, EventStream, FunctionCall,
    PipecatClient, Transport, TransportState,
};
pub use pipecat_media::{
    AudioFormat, AudioFrame, AudioSink, AudioSource, MediaError, MemorySink, MemorySource,
    NullSink, SilenceSource, ToneSource, WavFileSink, WavFileSource,
};
pub use pipecat_media_engine::{AudioBuilder, AudioOptions};

/// For implementing your own [`AudioSource`] or [`AudioSink`].
pub use async_trait::async_trait;

#[cfg(feature = "small-webrtc")]
pub use pipecat_small_webrtc::{SmallWebRtcParams, SmallWebRtcTransport};
#[cfg(feature = "websocket")]
pub use pipecat_websocket::{WebSocketParams, WebSocketTransport};
