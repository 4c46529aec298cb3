//! RTVI protocol versions and the compatibility rules between client and bot.

use std::fmt;
use std::str::FromStr;

use crate::RtviError;

/// The RTVI protocol version this crate speaks (pipecat-ai 1.13 and later).
pub const CLIENT_PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion::new(2, 2, 0);

/// The oldest protocol this crate talks to (pipecat-ai 0.0.x bots speak 1.x). A bot whose
/// version is unknown is treated as this one: only what every bot understands is sent.
pub const OLDEST_SUPPORTED_VERSION: ProtocolVersion = ProtocolVersion::new(1, 0, 0);

/// The oldest major version a current server still serves (in "legacy" mode).
pub const LEGACY_MAJOR: u64 = 1;

/// The oldest protocol with `send-file` (pipecat-ai 1.13): older bots answer it with an
/// `error-response` ("Unsupported type send-file").
pub const SEND_FILE_MIN_VERSION: ProtocolVersion = ProtocolVersion::new(2, 2, 0);

/// A `major.minor.patch` RTVI protocol version.
///
/// ```
/// use pipecat_rtvi::ProtocolVersion;
/// let v: ProtocolVersion = "2.1.0".parse().unwrap();
/// assert!(v >= ProtocolVersion::new(2, 0, 0));
/// assert!("2.1".parse::<ProtocolVersion>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major version: a change here breaks compatibility.
    pub major: u64,
    /// Minor version: new messages and fields.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
}

impl ProtocolVersion {
    /// A version from its three parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self { major, minor, patch }
    }

    /// How a client speaking [`CLIENT_PROTOCOL_VERSION`] relates to a bot speaking `self`.
    pub fn compatibility(self) -> Compatibility {
        if self.major == CLIENT_PROTOCOL_VERSION.major {
            Compatibility::Compatible
        } else if self.major == LEGACY_MAJOR {
            Compatibility::Legacy
        } else {
            Compatibility::Incompatible
        }
    }

    /// Whether a bot speaking this version takes `send-file` ([`SEND_FILE_MIN_VERSION`]
    /// and later).
    ///
    /// ```
    /// use pipecat_rtvi::ProtocolVersion;
    /// assert!(ProtocolVersion::new(2, 2, 0).supports_send_file());
    /// assert!(!ProtocolVersion::new(2, 1, 0).supports_send_file());
    /// ```
    pub fn supports_send_file(self) -> bool {
        self >= SEND_FILE_MIN_VERSION
    }

    /// Checks that a bot speaking this version takes `send-file`.
    ///
    /// # Errors
    /// [`RtviError::SendFileUnsupported`] below [`SEND_FILE_MIN_VERSION`].
    pub fn check_send_file(self) -> Result<(), RtviError> {
        if self.supports_send_file() {
            Ok(())
        } else {
            Err(RtviError::SendFileUnsupported { version: self.to_string() })
        }
    }

    /// Which DTMF message shape a bot speaking this version understands.
    pub fn dtmf_format(self) -> DtmfFormat {
        if self < ProtocolVersion::new(2, 0, 0) {
            DtmfFormat::Unsupported
        } else if self < ProtocolVersion::new(2, 1, 0) {
            DtmfFormat::PerKey
        } else {
            DtmfFormat::Batched
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for ProtocolVersion {
    type Err = RtviError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || RtviError::InvalidVersion(s.to_owned());
        let mut parts = s.trim().split('.');
        let mut next = || -> Result<u64, RtviError> {
            let part = parts.next().ok_or_else(invalid)?;
            // Only plain decimal digits: "+1" or " 1" are not versions.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        let version = ProtocolVersion::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(version)
    }
}

/// How the bot's protocol relates to ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compatibility {
    /// Same major version: everything works.
    Compatible,
    /// Major 1: the server serves us in legacy mode (v1 `bot-output`, no progress events).
    Legacy,
    /// Any other major: a warning-level incompatibility; the session goes on.
    Incompatible,
}

/// The DTMF message shape to use with a bot, decided by its protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DtmfFormat {
    /// Below 2.0.0: no DTMF message exists.
    Unsupported,
    /// 2.0.x: one `{"button": key}` message per key.
    PerKey,
    /// 2.1.0 and later: one `{"buttons": [keys]}` message.
    Batched,
}
