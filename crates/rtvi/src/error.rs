//! Errors of the RTVI message layer.

/// Everything that can go wrong while decoding, encoding or checking an RTVI message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtviError {
    /// The text is not JSON at all (syntax error, truncated input, nesting too deep).
    #[error("message is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The JSON is not an RTVI envelope: not an object, or `type` missing or not a string.
    #[error("message is not an RTVI envelope: {0}")]
    InvalidEnvelope(#[source] serde_json::Error),
    /// The envelope's `label` is missing or is not `rtvi-ai`.
    #[error("message label is {found:?}, expected \"rtvi-ai\"")]
    WrongLabel {
        /// The label that was found, if any.
        found: Option<String>,
    },
    /// A known message type whose `data` does not have the documented shape.
    #[error("invalid data for RTVI message type {message_type:?}: {source}")]
    InvalidData {
        /// The message type whose data was rejected.
        message_type: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The encoded message is larger than the transport can carry.
    #[error("message is {size} bytes, larger than the transport maximum of {max} bytes")]
    MessageTooLarge {
        /// Size of the encoded message in UTF-8 bytes.
        size: usize,
        /// The transport's maximum in bytes.
        max: usize,
    },
    /// A protocol version string that is not `major.minor.patch`.
    #[error("invalid RTVI protocol version {0:?} (expected major.minor.patch)")]
    InvalidVersion(String),
    /// DTMF input that is empty or holds a key other than `0`-`9`, `*`, `#`.
    #[error("invalid DTMF keys {0:?} (expected one or more of 0-9, * and #)")]
    InvalidDtmf(String),
    /// The bot's protocol version has no DTMF message (below 2.0.0).
    #[error("the bot's RTVI protocol {version} does not support DTMF (needs 2.0.0 or later)")]
    DtmfUnsupported {
        /// The bot's protocol version.
        version: String,
    },
    /// Encoding a message failed (a payload that cannot be represented as JSON).
    #[error("could not encode message: {0}")]
    Encode(#[source] serde_json::Error),
}
