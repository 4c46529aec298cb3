//! The SmallWebRTC transport of the Pipecat Rust SDK: a native counterpart of
//! `@pipecat-ai/small-webrtc-transport`, built on webrtc-rs.
//!
//! It talks to a Pipecat bot served by `SmallWebRTCTransport` (aiortc) the way the JS client
//! does:
//! - the offer is POSTed as `{sdp, type, pc_id, restart_pc, request_data}` to the bot's offer
//!   endpoint (`/api/offer`, or `/sessions/{id}/api/offer` derived from a start answer), and
//!   local ICE candidates are trickled by PATCH in 200 ms batches (or gathered first);
//! - the peer connection has the audio transceiver first (sendrecv, Opus), then camera and
//!   screen video, and the client-created, ordered `chat` data channel;
//! - on the channel: RTVI JSON both ways, `trackStatus` for each transceiver, and a
//!   `ping: <ms>` keepalive every second for the whole session;
//! - the server's `renegotiate` gets a new offer on the same peer connection, `peerLeft` is
//!   reported as the bot leaving, and a broken link is replaced by a new peer connection
//!   (`restart_pc: true`) while the bot session goes on;
//! - microphone audio is encoded as 48 kHz Opus; bot audio is decoded for the sink; both
//!   levels are reported.
//!
//! ```no_run
//! use pipecat_core::{ApiRequest, PipecatClient};
//! use pipecat_media::{AudioFormat, NullSink, SilenceSource};
//! use pipecat_small_webrtc::{AudioBuilder, SmallWebRtcTransport};
//!
//! async fn talk() -> Result<(), Box<dyn std::error::Error>> {
//!     let transport = SmallWebRtcTransport::builder()
//!         .audio_source(Box::new(SilenceSource::new(AudioFormat::MONO_16K)?))
//!         .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
//!         .build()?;
//!     let client = PipecatClient::builder(transport).build();
//!     let start = ApiRequest::new("http://localhost:7860/start");
//!     let ready = client.start_bot_and_connect(start).await?;
//!     println!("bot speaks RTVI {}", ready.version);
//!     client.disconnect().await?;
//!     Ok(())
//! }
//! ```
//!
//! The client drives the transport; see [`SmallWebRtcTransport`] for the options and
//! [`SmallWebRtcParams`] for the connection parameters it reads.
//!
//! Audio I/O is chosen on the [`SmallWebRtcTransportBuilder`]: a program-given source and
//! sink, devices picked by id or name, `without_audio()`, or the default devices (feature
//! `devices`); see [`SmallWebRtcTransport`] for the defaults.
//!
//! # Features
//!
//! * `devices`: microphones and speakers through cpal (`pipecat-media/devices`; ALSA
//!   headers needed on Linux). Without it, a transport needs an explicit source and sink (or
//!   `without_audio()`).
//! * `pulseaudio`: implies `devices`; cpal's pure-Rust PulseAudio host, preferred whenever a
//!   PulseAudio or PipeWire server is reachable.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audio;
mod connection;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod keepalive;
mod params;
mod peer;
mod recovery;
mod signalling;
mod timeline;
mod transport;

pub use connection::FALLBACK_MAX_MESSAGE_SIZE;
pub use error::SmallWebRtcError;
pub use keepalive::PING_PERIOD;
pub use params::{IceServer, SmallWebRtcParams};
pub use recovery::RecoveryConfig;
pub use timeline::ConnectTimeline;
pub use transport::{
    DEFAULT_PEER_CONNECT_TIMEOUT, DEFAULT_SIGNALLING_TIMEOUT, SmallWebRtcStats,
    SmallWebRtcTransport, SmallWebRtcTransportBuilder,
};

/// The build error every transport shares, and the audio options of its builder.
pub use pipecat_media_engine::{AudioBuilder, AudioOptions, BuildError};
