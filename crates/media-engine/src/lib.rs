//! The media engine under every Pipecat Rust transport.
//!
//! A transport owns its wire: how an outgoing audio frame is encoded and sent, how bot audio
//! arrives. Everything else about a session's media lives here, once:
//!
//! - **What the program chose** ([`AudioOptions`], taken by every transport builder through
//!   [`AudioBuilder`]): a headless source or sink, a device by id or name, the default devices,
//!   or no audio at all.
//! - **Devices** (feature `devices`): opening, switching mid-session, listing, media states
//!   and device errors as transport events ([`MediaEngine`] implements
//!   [`MediaControl`](pipecat_core::media::MediaControl)).
//! - **The microphone pipeline**: convert to the wire's format, cut into the wire's frames,
//!   mute (zeroed frames at the same pace, see [`uplink`](crate::UplinkSpec)), meter the level,
//!   hold the audio captured before the bot is ready (when the wire asks for it), and hand each
//!   frame to the wire's [`MicWire`].
//! - **The bot-audio pipeline**: the wire pushes decoded frames into a [`BotAudioStream`]; a
//!   bounded queue feeds the sink, interruption flushes it at once, levels are metered.
//! - **Tracks**: started and stopped events for the local and the bot's audio.
//!
//! ```
//! use std::time::Duration;
//! use pipecat_media::{AudioFormat, NullSink, SilenceSource};
//! use pipecat_media_engine::{AudioOptions, MediaEngine, UplinkSpec};
//!
//! let options = AudioOptions::default()
//!     .source(SilenceSource::new(AudioFormat::MONO_16K)?)
//!     .sink(NullSink::new(AudioFormat::MONO_24K));
//! let spec = UplinkSpec {
//!     format: AudioFormat::MONO_16K,
//!     frame_duration: Duration::from_millis(20),
//!     hold_until_ready: Some(Duration::from_secs(3)),
//! };
//! let engine = MediaEngine::new(options, spec, "my-transport")?;
//! # let _ = engine;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod devices;
mod downlink;
mod engine;
mod options;
mod tracks;
mod uplink;

pub use downlink::{BotAudio, BotAudioStream};
pub use engine::{BuildError, MediaEngine, MediaSession};
pub use options::{AudioBuilder, AudioOptions};
pub use tracks::{
    TrackGuard, bot_audio_track, bot_participant, local_audio_track, local_participant,
};
pub use uplink::{MicWire, UplinkSpec, WireClosed};
