//! DTMF keys and the message shape chosen by the bot's protocol version.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ClientMessage, DtmfFormat, ProtocolVersion, RtviError};

/// One telephone keypad key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfKey(char);

impl DtmfKey {
    /// The key for `c`, if it is one of `0`-`9`, `*`, `#`.
    pub fn new(c: char) -> Option<Self> {
        matches!(c, '0'..='9' | '*' | '#').then_some(DtmfKey(c))
    }

    /// The key's character.
    pub fn as_char(self) -> char {
        self.0
    }

    /// Parses a key sequence such as `"12#"`.
    ///
    /// # Errors
    /// [`RtviError::InvalidDtmf`] for an empty string or any other character.
    pub fn parse_sequence(keys: &str) -> Result<Vec<DtmfKey>, RtviError> {
        let parsed: Option<Vec<DtmfKey>> = keys.chars().map(DtmfKey::new).collect();
        match parsed {
            Some(keys) if !keys.is_empty() => Ok(keys),
            _ => Err(RtviError::InvalidDtmf(keys.to_owned())),
        }
    }
}

impl fmt::Display for DtmfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for DtmfKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 4];
        s.serialize_str(self.0.encode_utf8(&mut buf))
    }
}

impl<'de> Deserialize<'de> for DtmfKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let mut chars = s.chars();
        match (chars.next().and_then(DtmfKey::new), chars.next()) {
            (Some(key), None) => Ok(key),
            _ => Err(serde::de::Error::custom(format!("invalid DTMF key {s:?}"))),
        }
    }
}

/// `dtmf` data in either shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dtmf {
    /// 2.1.0+ servers: all keys in one message.
    Buttons {
        /// The keys, in order.
        buttons: Vec<DtmfKey>,
    },
    /// 2.0.x servers: one key per message.
    Button {
        /// The key.
        button: DtmfKey,
    },
}

/// The `dtmf` messages to send `keys` to a bot speaking `bot_version`.
///
/// ```
/// use pipecat_rtvi::{ProtocolVersion, dtmf_messages};
/// assert_eq!(dtmf_messages(ProtocolVersion::new(2, 2, 0), "12#").unwrap().len(), 1);
/// assert_eq!(dtmf_messages(ProtocolVersion::new(2, 0, 1), "12#").unwrap().len(), 3);
/// assert!(dtmf_messages(ProtocolVersion::new(1, 2, 0), "1").is_err());
/// ```
///
/// # Errors
/// [`RtviError::InvalidDtmf`] for bad keys, [`RtviError::DtmfUnsupported`] for bots below 2.0.
pub fn dtmf_messages(
    bot_version: ProtocolVersion,
    keys: &str,
) -> Result<Vec<ClientMessage>, RtviError> {
    let keys = DtmfKey::parse_sequence(keys)?;
    match bot_version.dtmf_format() {
        DtmfFormat::Batched => Ok(vec![ClientMessage::Dtmf(Dtmf::Buttons { buttons: keys })]),
        DtmfFormat::PerKey => Ok(keys
            .into_iter()
            .map(|button| ClientMessage::Dtmf(Dtmf::Button { button }))
            .collect()),
        DtmfFormat::Unsupported => {
            Err(RtviError::DtmfUnsupported { version: bot_version.to_string() })
        }
    }
}
