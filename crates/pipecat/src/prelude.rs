//! The usual imports in one line: `use pipecat::prelude::*;`.
//!
//! The client and its vocabulary, the headless audio sources and sinks, and the transports
//! enabled by features. Nothing here shadows a name of Rust's own prelude (there is no
//! `Result`).

pub use crate::{
    ApiRequest, ClientCallbacks, ClientEvent, ConnectionParams, Error, EventStream, FunctionCall,
    PipecatClient, Transport, TransportState,
};
pub use pipecat_media::{
    AudioFormat, AudioFrame, AudioSink, AudioSource, MemorySink, MemorySource, NullSink,
    SilenceSource, ToneSource, WavFileSink, WavFileSource,
};

#[cfg(feature = "small-webrtc")]
pub use pipecat_small_webrtc::{SmallWebRtcParams, SmallWebRtcTransport};
#[cfg(feature = "websocket")]
pub use pipecat_websocket::{WebSocketParams, WebSocketTransport};
