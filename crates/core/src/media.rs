//! Media vocabulary shared by the client and the transports: devices, their states and
//! errors, tracks and participants. Plain data; the device code lives in `pipecat-media`.

use serde::{Deserialize, Serialize};

/// What kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeviceKind {
    /// A microphone.
    Mic,
    /// A speaker or headphones.
    Speaker,
    /// A camera.
    Cam,
}

/// An audio or video device the user can pick.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MediaDeviceInfo {
    /// Stable id to select the device with.
    pub id: String,
    /// Name for people.
    pub name: String,
    /// Mic, speaker or camera.
    pub kind: DeviceKind,
    /// The system's default device of its kind.
    pub is_default: bool,
}

/// Why a device could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeviceErrorKind {
    /// No such device (or no device at all).
    NotFound,
    /// Another program holds it.
    InUse,
    /// The system refused access.
    Permission,
    /// The device cannot do the format needed.
    UnsupportedConfig,
    /// The running stream failed (unplugged, driver error).
    StreamFailure,
    /// Anything else.
    Unknown,
}

/// A device problem, reported as an event; it never ends a session by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?} error on {device:?}: {details}")]
pub struct DeviceError {
    /// Which device kind.
    pub device: DeviceKind,
    /// What went wrong.
    pub kind: DeviceErrorKind,
    /// Details for people.
    pub details: String,
}

/// The state of one local device, in the spirit of client-js `MediaState`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DeviceState {
    /// Not opened yet.
    #[default]
    Uninitialized,
    /// Being opened.
    Initializing,
    /// Open and working.
    Granted,
    /// Could not be opened or failed.
    Error {
        /// Why.
        reason: DeviceErrorKind,
        /// Details for people.
        details: String,
    },
}

/// The states of the local devices.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaState {
    /// The microphone.
    pub mic: DeviceState,
    /// The camera.
    pub cam: DeviceState,
    /// The speaker.
    pub speaker: DeviceState,
}

/// A participant of the session (the bot, or the local user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Participant {
    /// Transport-specific id (`pc_id`, Daily session id, ...).
    pub id: String,
    /// Display name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `true` for the local user.
    pub local: bool,
}

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TrackKind {
    /// Audio (microphone or bot voice).
    Audio,
    /// Camera video.
    Video,
    /// Screen-share video.
    ScreenVideo,
}

/// A media track that started or stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Audio or video.
    pub kind: TrackKind,
    /// Whose track: `None` or a local participant for our own tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Participant>,
}

/// Control of a transport's local media: devices, their states, the microphone switch.
///
/// A transport with media returns one from [`Transport::media`](crate::Transport::media);
/// the shared media engine (`pipecat-media-engine`) implements it once for every transport.
/// The client turns a transport without media into [`Error::Unsupported`](crate::Error)
/// in one place.
#[async_trait::async_trait]
pub trait MediaControl: Send + Sync {
    /// Opens the local devices ahead of a session (a program-given source or sink counts as
    /// open); during a session, re-opens a device that failed.
    async fn init_devices(&self) -> Result<(), crate::TransportError>;

    /// Turns the microphone on or off. Off sends silence at the same pace (see the media
    /// engine's docs for why).
    async fn enable_mic(&self, enabled: bool) -> Result<(), crate::TransportError>;

    /// Whether the microphone is on.
    fn is_mic_enabled(&self) -> bool;

    /// The microphones available.
    fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>, crate::TransportError>;

    /// The speakers available.
    fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>, crate::TransportError>;

    /// Switches the microphone (mid-session too).
    async fn update_mic(&self, device_id: &str) -> Result<(), crate::TransportError>;

    /// Switches the speaker (mid-session too).
    async fn update_speaker(&self, device_id: &str) -> Result<(), crate::TransportError>;

    /// The microphone in use (`None` for a program-given source).
    fn selected_mic(&self) -> Option<MediaDeviceInfo>;

    /// The speaker in use (`None` for a program-given sink).
    fn selected_speaker(&self) -> Option<MediaDeviceInfo>;

    /// The states of the local devices.
    fn media_state(&self) -> MediaState;
}
