//! The WebSocket transport of the Pipecat Rust SDK.
//!
//! It speaks what pipecat's `FastAPIWebsocketTransport` with the `ProtobufFrameSerializer`
//! speaks (the dev runner's `WS /ws-client`): every WebSocket message is one binary protobuf
//! `pipecat.Frame`; RTVI messages are JSON text inside `MessageFrame`; audio is raw PCM16
//! little-endian inside `AudioRawFrame`, 16 kHz mono up and whatever the bot declares down;
//! an `InterruptionFrame` tells the client to drop the bot audio it buffered.
//!
//! Use [`WebSocketTransport`] with `pipecat_core::PipecatClient`, starting the bot through its
//! start endpoint (the answer's `wsUrl` and `token` are read by the transport) or connecting
//! directly with [`WebSocketParams`]:
//!
//! ```
//! use pipecat_core::ConnectionParams;
//! use pipecat_websocket::{WebSocketParams, WebSocketTransport};
//!
//! let transport = WebSocketTransport::new();
//! let params: ConnectionParams =
//!     WebSocketParams::new("ws://localhost:7860/ws-client").into();
//! # let _ = (transport, params);
//! ```
//!
//! Audio I/O is chosen on the [`WebSocketTransportBuilder`]: a program-given source and sink
//! (WAV files, in-memory PCM, a tone, silence, a null sink), devices picked by id or name, or
//! the default devices (feature `devices`); see [`WebSocketTransport`] for the defaults. The
//! transport implements the media methods of [`pipecat_core::Transport`] (device lists,
//! switching mid-session, media states, levels, track events).
//!
//! # Features
//!
//! * `devices`: microphones and speakers through cpal (`pipecat-media/devices`; ALSA
//!   headers needed on Linux). Without it, a transport needs an explicit source and sink.
//! * `pulseaudio`: implies `devices`; cpal's pure-Rust PulseAudio host, preferred whenever a
//!   PulseAudio or PipeWire server is reachable.
//!
//! Modules: [`params`] (connection parameters), [`codec`] and [`proto`] (the wire format);
//! the audio paths, the media side and the socket tasks are private.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
mod connection;
pub mod params;
mod transport;
mod uplink;

/// The protobuf messages of pipecat's `frames.proto` (package `pipecat`), shared with the
/// testkit's bot through `pipecat-frames`.
pub use pipecat_frames::proto;

pub use connection::CLOSE_CODE_AUTH;
pub use params::{WebSocketParams, redact_url};
pub use transport::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_FRAME_DURATION, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_INPUT_SAMPLE_RATE, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_PRE_READY_BUFFER,
    KEEPALIVE_MISSES, MAX_MESSAGE_SIZE, WebSocketTransport, WebSocketTransportBuilder,
};

/// The build error every transport shares, and the audio options of its builder.
pub use pipecat_media_engine::{AudioBuilder, AudioOptions, BuildError};

/// Re-exported so a custom [`rustls::ClientConfig`] can be built with the same version.
pub use rustls;
