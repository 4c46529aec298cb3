//! Microphones and speakers.
//!
//! The types in this module (errors, states, selectors, events) exist with or without the
//! `devices` feature, so code that reports on devices compiles either way. Opening real
//! devices (`AudioDevices`, `DeviceSource`, `DeviceSink`, `Microphone`, `Speaker`) needs
//! the `devices` feature (cpal: ALSA on Linux; with the `pulseaudio` feature, PulseAudio or
//! PipeWire directly).
//!
//! Threading model: the sound card's real-time callback and the async side exchange PCM
//! through a wait-free SPSC ring (`rtrb`); the callback never allocates, locks or logs. The
//! async side polls the ring every few milliseconds rather than being woken by the callback,
//! because waking a task can take a lock.

use std::fmt;

#[cfg(feature = "devices")]
mod handles;
#[cfg(feature = "devices")]
mod host;
#[cfg(feature = "devices")]
mod input;
#[cfg(feature = "devices")]
mod output;

#[cfg(feature = "devices")]
pub use handles::{Microphone, Speaker};
#[cfg(feature = "devices")]
pub use host::{AudioDevices, DeviceEvents};
#[cfg(feature = "devices")]
pub use input::DeviceSource;
#[cfg(feature = "devices")]
pub use output::DeviceSink;

use crate::frame::AudioFormat;
use crate::playout::PlayoutConfig;
use std::time::Duration;

/// Capture or playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceDirection {
    /// A microphone (capture).
    Input,
    /// A speaker (playback).
    Output,
}

impl fmt::Display for DeviceDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Input => "input",
            Self::Output => "output",
        })
    }
}

/// Errors from audio devices. Never a panic: a machine without a sound card gets
/// [`NotAvailable`](Self::NotAvailable) (or [`NotFound`](Self::NotFound)) when opening.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudioDeviceError {
    /// No device matches the selector.
    #[error("no {direction} audio device matches {selector}")]
    NotFound {
        /// Capture or playback.
        direction: DeviceDirection,
        /// The selector, as text.
        selector: String,
    },
    /// The device is busy (another program holds it exclusively).
    #[error("audio device {device} is in use: {reason}")]
    InUse {
        /// Device id.
        device: String,
        /// The backend's message.
        reason: String,
    },
    /// The operating system refused access (microphone permission).
    #[error("permission denied for audio device {device}: {reason}")]
    PermissionDenied {
        /// Device id.
        device: String,
        /// The backend's message.
        reason: String,
    },
    /// The device exists but cannot be opened now (unplugged, no sound card).
    #[error("audio device {device} is not available: {reason}")]
    NotAvailable {
        /// Device id.
        device: String,
        /// The backend's message.
        reason: String,
    },
    /// The device cannot run with the requested or any usable configuration.
    #[error("audio device {device} does not support the configuration: {reason}")]
    UnsupportedConfig {
        /// Device id.
        device: String,
        /// The backend's message.
        reason: String,
    },
    /// A running stream failed (device lost, server gone).
    #[error("audio stream on {device} failed: {reason}")]
    StreamFailed {
        /// Device id.
        device: String,
        /// The backend's message.
        reason: String,
    },
    /// The audio system itself is unavailable (no ALSA, no sound server).
    #[error("audio host unavailable: {reason}")]
    HostUnavailable {
        /// The backend's message.
        reason: String,
    },
    /// This build has no device support.
    #[error(
        "audio devices are not available: pipecat-media was built without the `devices` feature"
    )]
    Disabled,
}

/// Whether a device can be used, in the spirit of client-js's `AudioDeviceState`
/// (per device, and per direction for the current microphone and speaker).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AudioDeviceState {
    /// Not opened yet.
    #[default]
    Uninitialized,
    /// Being opened.
    Initializing,
    /// Open and running.
    Granted,
    /// Failed; the error says why.
    Error(AudioDeviceError),
}

impl AudioDeviceState {
    /// The state's name as client-js spells it: `uninitialized`, `initializing`, `granted`,
    /// `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Uninitialized => "uninitialized",
            Self::Initializing => "initializing",
            Self::Granted => "granted",
            Self::Error(_) => "error",
        }
    }
}

impl fmt::Display for AudioDeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => write!(f, "error: {e}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A device as listed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Stable id, `host:device` (e.g. `alsa:default`, `pulseaudio:vsink.monitor`); pass it
    /// back in [`DeviceSelector::Id`].
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// True for the system's default device of this direction.
    pub is_default: bool,
    /// Capture or playback.
    pub direction: DeviceDirection,
}

/// Which device to open.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeviceSelector {
    /// The system default.
    #[default]
    Default,
    /// By [`DeviceInfo::id`]; the part after `host:` alone also matches.
    Id(String),
    /// By name: an exact (case-insensitive) match, else the first name containing the text.
    Name(String),
}

impl fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default device"),
            Self::Id(id) => write!(f, "id {id:?}"),
            Self::Name(name) => write!(f, "name {name:?}"),
        }
    }
}

/// Something that happened to a device, delivered on `AudioDevices::events()` (feature
/// `devices`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceEvent {
    /// A device's media state changed.
    StateChanged {
        /// Capture or playback.
        direction: DeviceDirection,
        /// Device id.
        device: String,
        /// The new state.
        state: AudioDeviceState,
    },
    /// A device failed (also reflected in its state).
    Error {
        /// Capture or playback.
        direction: DeviceDirection,
        /// Device id.
        device: String,
        /// What went wrong.
        error: AudioDeviceError,
    },
    /// A `Microphone` or `Speaker` moved to another device (feature `devices`).
    Switched {
        /// The device now in use.
        device: DeviceInfo,
    },
    /// The microphone was muted or unmuted.
    MicMuted {
        /// True when muted.
        muted: bool,
    },
}

/// How to open a capture device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InputConfig {
    /// Ask the device for this rate and channel count when it supports them (saves a
    /// resampling step); `None` takes the device's default configuration.
    pub preferred_format: Option<AudioFormat>,
    /// Length of the frames the device source yields.
    pub frame_duration: Duration,
    /// Capture buffered between the device and the async side; beyond it, audio is dropped.
    pub buffer: Duration,
    /// Period asked of the device per callback (its latency); `None` leaves it to the host,
    /// which for PulseAudio means about 2 s. If the device refuses it, the host's default is
    /// used.
    pub device_buffer: Option<Duration>,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            preferred_format: None,
            frame_duration: crate::source::DEFAULT_FRAME_DURATION,
            buffer: Duration::from_secs(2),
            device_buffer: Some(DEFAULT_DEVICE_BUFFER),
        }
    }
}

impl InputConfig {
    /// Sets [`preferred_format`](Self::preferred_format).
    #[must_use]
    pub fn with_preferred_format(mut self, format: AudioFormat) -> Self {
        self.preferred_format = Some(format);
        self
    }

    /// Sets [`frame_duration`](Self::frame_duration).
    #[must_use]
    pub fn with_frame_duration(mut self, duration: Duration) -> Self {
        self.frame_duration = duration;
        self
    }

    /// Sets [`buffer`](Self::buffer).
    #[must_use]
    pub fn with_buffer(mut self, buffer: Duration) -> Self {
        self.buffer = buffer;
        self
    }

    /// Sets [`device_buffer`](Self::device_buffer).
    #[must_use]
    pub fn with_device_buffer(mut self, device_buffer: Option<Duration>) -> Self {
        self.device_buffer = device_buffer;
        self
    }
}

/// Device period requested by default: short enough for conversation, long enough for
/// ordinary hardware.
pub const DEFAULT_DEVICE_BUFFER: Duration = Duration::from_millis(20);

/// How to open a playback device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputConfig {
    /// Ask the device for this rate and channel count when it supports them; `None` takes
    /// the device's default configuration. Frames of any format are converted anyway.
    pub preferred_format: Option<AudioFormat>,
    /// Playout buffer tuning (jitter, maximum depth).
    pub playout: PlayoutConfig,
    /// Period asked of the device per callback, as for [`InputConfig::device_buffer`].
    pub device_buffer: Option<Duration>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            preferred_format: None,
            playout: PlayoutConfig::default(),
            device_buffer: Some(DEFAULT_DEVICE_BUFFER),
        }
    }
}

impl OutputConfig {
    /// Sets [`preferred_format`](Self::preferred_format).
    #[must_use]
    pub fn with_preferred_format(mut self, format: AudioFormat) -> Self {
        self.preferred_format = Some(format);
        self
    }

    /// Sets [`playout`](Self::playout).
    #[must_use]
    pub fn with_playout(mut self, playout: PlayoutConfig) -> Self {
        self.playout = playout;
        self
    }

    /// Sets [`device_buffer`](Self::device_buffer).
    #[must_use]
    pub fn with_device_buffer(mut self, device_buffer: Option<Duration>) -> Self {
        self.device_buffer = device_buffer;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages() {
        assert_eq!(AudioDeviceState::Granted.as_str(), "granted");
        assert_eq!(AudioDeviceState::default(), AudioDeviceState::Uninitialized);
        let e = AudioDeviceError::NotFound {
            direction: DeviceDirection::Input,
            selector: DeviceSelector::Name("USB".into()).to_string(),
        };
        assert_eq!(e.to_string(), "no input audio device matches name \"USB\"");
        assert_eq!(AudioDeviceState::Error(e.clone()).as_str(), "error");
        assert!(AudioDeviceState::Error(e).to_string().starts_with("error: no input"));
        assert!(AudioDeviceError::Disabled.to_string().contains("`devices` feature"));
    }
}
