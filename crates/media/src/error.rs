//! The crate's error type.

use crate::frame::AudioFormat;

/// Errors from frames, sources, sinks, conversion and WAV I/O.
///
/// Codec errors have their own type ([`OpusError`](crate::OpusError)) and so do device errors
/// ([`AudioDeviceError`](crate::AudioDeviceError)); both convert into this one with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A sample rate or channel count that cannot be used (zero, too large, unsupported here).
    #[error("invalid audio format: {reason}")]
    InvalidFormat {
        /// What is wrong with it.
        reason: String,
    },
    /// Sample data that does not fit its declared format (odd byte count, partial frame...).
    #[error("invalid audio data: {reason}")]
    InvalidData {
        /// What is wrong with it.
        reason: String,
    },
    /// A setting that cannot be used (a tone above Nyquist, a NaN amplitude...).
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// A frame arrived in a format the receiver does not convert by itself.
    #[error("audio format mismatch: expected {expected}, got {actual}")]
    FormatMismatch {
        /// The format the receiver works in.
        expected: AudioFormat,
        /// The format of the frame it was given.
        actual: AudioFormat,
    },
    /// A WAV file could not be read or written (bad header, unsupported encoding...).
    #[error("WAV error: {reason}")]
    Wav {
        /// The underlying reason.
        reason: String,
    },
    /// An I/O error from the file system.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The resampler failed.
    #[error("resampling failed: {reason}")]
    Resample {
        /// The underlying reason.
        reason: String,
    },
    /// Opus encoding or decoding failed.
    #[error(transparent)]
    Opus(#[from] crate::opus::OpusError),
    /// An audio device failed.
    #[error(transparent)]
    Device(#[from] crate::devices::AudioDeviceError),
    /// The other end of an in-memory source or sink has gone away.
    #[error("the other end of the audio channel was dropped")]
    Closed,
    /// No default audio I/O can be provided; see [`default_input`](crate::default_input).
    #[error("{reason}")]
    NoDefaultIo {
        /// Why, and which headless types to use instead.
        reason: String,
        /// The device error behind it.
        #[source]
        cause: Option<crate::devices::AudioDeviceError>,
    },
}

impl MediaError {
    pub(crate) fn invalid_format(reason: impl Into<String>) -> Self {
        Self::InvalidFormat { reason: reason.into() }
    }

    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig { reason: reason.into() }
    }

    pub(crate) fn invalid_data(reason: impl Into<String>) -> Self {
        Self::InvalidData { reason: reason.into() }
    }
}

impl From<hound::Error> for MediaError {
    fn from(e: hound::Error) -> Self {
        match e {
            // hound reports a short or garbled file as an I/O error of these kinds: it is a bad
            // file, not a failing disk.
            hound::Error::IoError(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::Other
                ) =>
            {
                Self::Wav { reason: format!("truncated or malformed WAV file: {io}") }
            }
            hound::Error::IoError(io) => Self::Io(io),
            other => Self::Wav { reason: other.to_string() },
        }
    }
}
