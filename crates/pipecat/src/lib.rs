//! # pipecat: a Rust client SDK for Pipecat voice-AI bots
//!
//! The native counterpart of `@pipecat-ai/client-js` and its transports. A Rust program
//! (desktop app, robot, CLI, test harness, load generator, backend service) starts a
//! [Pipecat](https://pipecat.ai) bot, connects over SmallWebRTC, WebSocket or Daily, waits
//! for the bot to be ready, streams audio both ways, exchanges RTVI messages and ends the
//! session cleanly.
//!
//! This crate is the one dependency an application needs: it re-exports the client
//! ([`PipecatClient`], its events, errors and options), the RTVI messages ([`rtvi`]), the
//! audio sources and sinks ([`media`]) and the transports ([`websocket`], [`small_webrtc`],
//! [`daily`], each behind its feature). The external types that appear in public signatures
//! are re-exported too ([`serde_json`], [`tokio`], [`futures`], [`async_trait`], [`reqwest`],
//! [`url`]).
//!
//! ## A session in a few lines
//!
//! ```
//! use std::time::Duration;
//! use pipecat::prelude::*;
//!
//! # #[cfg(not(feature = "websocket"))] fn main() {}
//! # #[cfg(feature = "websocket")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let bot = pipecat_testkit::TestBot::start().await?;
//! # let start_url = bot.start_url();
//! // Audio: a short test tone up, bot audio into memory (no sound card needed).
//! let mic = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3)?.limit(Duration::from_millis(500));
//! let (speaker, bot_audio) = MemorySink::new(AudioFormat::MONO_24K)?;
//! let transport = WebSocketTransport::builder().audio_source(mic).audio_sink(speaker).build()?;
//!
//! let client = PipecatClient::builder(transport)
//!     .bot_ready_timeout(Duration::from_secs(10))
//!     .build();
//! let mut events = client.events();
//!
//! // POST the bot's start endpoint (here the pipecat runner's `/start`), connect with its
//! // answer, and wait for `bot-ready`.
//! let request = ApiRequest::new(start_url)
//!     .request_data(serde_json::json!({ "transport": "websocket" }));
//! let ready = client.start_bot_and_connect(request).await?;
//! println!("the bot speaks RTVI {}", ready.version);
//!
//! // Messages: fire and forget, or a request that waits for the bot's answer.
//! let answer = client.send_client_request("ping", serde_json::json!({ "n": 1 })).await?;
//! assert_eq!(answer["pong"], true);
//! client.send_text("Hello, bot!").await?;
//!
//! // Everything that happens is an event (a stream; callbacks are available too).
//! while let Some(event) = events.recv().await {
//!     if let ClientEvent::BotOutput(output) = &event {
//!         println!("bot: {}", output.text);
//!         break;
//!     }
//! }
//!
//! client.disconnect().await?;
//! assert_eq!(client.state(), TransportState::Disconnected);
//! # let _ = bot_audio;
//! # Ok(())
//! # }
//! ```
//!
//! The examples in `crates/pipecat/examples/` are complete programs: a minimal session,
//! function calling, headless WAV in and out, device selection, callbacks, and many sessions
//! in one process. Each runs against an in-process test bot when given no URL.
//!
//! ## Features
//!
//! | Feature | Default | What it adds |
//! |---|---|---|
//! | `websocket` | yes | [`websocket`]: the WebSocket transport (protobuf frames, PCM16 audio) |
//! | `small-webrtc` | yes | [`small_webrtc`]: the SmallWebRTC transport (webrtc-rs, HTTP offer/answer) |
//! | `devices` | yes | microphones and speakers through cpal (`media::AudioDevices`, `media::default_input`...); on Linux it needs the ALSA headers (`libasound2-dev`) to build and talks to PulseAudio/PipeWire natively when a server runs |
//! | `daily` | no | [`daily`]: the Daily-compatible transport (protocol layer; joining rooms needs one of the next two) |
//! | `daily-ffi` | no | Daily rooms through a user-supplied `libdaily_core` |
//! | `daily-sidecar` | no | Daily rooms through `daily-python` in a child process |
//!
//! A program that only talks WebSocket to a server uses
//! `default-features = false, features = ["websocket"]` and compiles neither webrtc-rs nor
//! cpal.
//!
//! ## Where things are
//!
//! - The client, its lifecycle and events: the crate root ([`PipecatClient`],
//!   [`ClientEvent`], [`TransportState`], [`Error`], [`ClientCallbacks`], [`ApiRequest`]...).
//! - The transport contract, for writing a transport of your own: [`Transport`],
//!   [`TransportEvent`], [`TransportEventSink`], [`ConnectionParams`], [`TransportError`].
//! - RTVI messages: [`rtvi`]. Audio: [`media`]. The session-level device vocabulary
//!   (what [`PipecatClient::media_state`] and the device events carry): [`MediaState`],
//!   [`MediaDeviceInfo`], [`DeviceError`], [`Participant`], [`TrackInfo`].
//! - The usual imports in one line: [`prelude`].
//!
//! The `pipecat` command-line client (crate `pipecat-cli`) is built on this crate; testing
//! your own application against scripted bots is what `pipecat-testkit` is for.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod prelude;

// ---- The client (pipecat-core) ----

/// HTTP requests to bot endpoints: the start request ([`ApiRequest`]) and its errors.
#[doc(inline)]
pub use pipecat_core::http;
pub use pipecat_core::http::{ApiRequest, HttpError};
/// The session-level media vocabulary: devices as the client reports them, their states and
/// errors, tracks and participants.
pub use pipecat_core::media::{
    DeviceError, DeviceErrorKind, DeviceKind, DeviceState, MediaControl, MediaDeviceInfo,
    MediaState, Participant, TrackInfo, TrackKind,
};
// Everything at the root of pipecat-core: the client, its builder and options, events and
// callbacks, errors, function calls, the state machine and the transport contract. (Core's
// `media` module is shadowed by the audio crate below; its items are re-exported one by one.)
pub use pipecat_core::*;

// ---- Messages and audio ----

/// The RTVI message layer (crate `pipecat-rtvi`): every message of RTVI 2.2.0 both ways,
/// typed, and the version rules.
#[doc(inline)]
pub use pipecat_rtvi as rtvi;

/// Audio (crate `pipecat-media`): frames, sources and sinks (devices, WAV files, memory,
/// tone, silence), resampling, Opus, playout, levels. Its device layer reports with
/// [`media::AudioDeviceState`] and [`media::AudioDeviceError`]; the client reports devices
/// with the crate-root [`MediaState`] and [`DeviceError`].
#[doc(inline)]
pub use pipecat_media as media;

/// The media engine under every transport (crate `pipecat-media-engine`): the audio options
/// every transport builder takes ([`AudioOptions`], [`AudioBuilder`]), devices, the
/// microphone and bot-audio pipelines, tracks.
#[doc(inline)]
pub use pipecat_media_engine as media_engine;
pub use pipecat_media_engine::{AudioBuilder, AudioOptions, BuildError};

// ---- Transports ----

/// The WebSocket transport (crate `pipecat-websocket`, feature `websocket`): pipecat's
/// protobuf frames over one WebSocket, PCM16 audio both ways.
#[cfg(feature = "websocket")]
#[doc(inline)]
pub use pipecat_websocket as websocket;

/// The SmallWebRTC transport (crate `pipecat-small-webrtc`, feature `small-webrtc`):
/// webrtc-rs, offer/answer over HTTP, RTVI on the `chat` data channel, Opus audio.
#[cfg(feature = "small-webrtc")]
#[doc(inline)]
pub use pipecat_small_webrtc as small_webrtc;

/// The Daily-compatible transport (crate `pipecat-daily`, feature `daily`).
#[cfg(feature = "daily")]
#[doc(inline)]
pub use pipecat_daily as daily;

// ---- External crates in public signatures ----

/// Re-exported: used in `#[async_trait]` impls of [`Transport`], [`media::AudioSource`],
/// [`media::AudioSink`] and [`FunctionCallHandler`].
pub use async_trait;
/// Re-exported: [`EventStream`] and [`LosslessEventStream`] are `futures::Stream`s.
pub use futures;
/// Re-exported: [`ClientBuilder::http_client`] takes a `reqwest::Client`.
pub use reqwest;
/// Re-exported: message payloads are `serde_json::Value`s.
pub use serde_json;
/// Re-exported: [`PipecatClient::watch_state`] returns a `tokio::sync::watch::Receiver`.
/// For `#[tokio::main]` add tokio to your own dependencies (or write
/// `#[pipecat::tokio::main(crate = "pipecat::tokio")]`).
pub use tokio;
/// Re-exported: URLs in transport APIs.
pub use url;

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(all(doctest, feature = "small-webrtc"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// The version of this SDK.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_client_is_shareable() {
        assert_send_sync::<PipecatClient>();
        assert_send_sync::<Error>();
    }

    #[test]
    fn version_is_semver() {
        assert_eq!(VERSION.split('.').count(), 3);
    }

    #[cfg(feature = "websocket")]
    #[test]
    fn transports_build_through_the_facade() {
        let transport = websocket::WebSocketTransport::new();
        let client = PipecatClient::builder(transport).build();
        assert_eq!(client.state(), TransportState::Idle);
        assert_eq!(client.transport_name(), "websocket");
    }
}
