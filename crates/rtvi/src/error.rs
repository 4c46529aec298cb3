//! Errors of the RTVI message layer.

/// Everything that can go wrong while decoding, encoding or checking an RTVI message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtviError {
    /// The text is not JSON at all (syntax error, truncated input, a number out of range),
    /// or it nests arrays and objects more than 127 levels deep.
    #[error("message is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The JSON is not an RTVI envelope: not an object, `type` missing or not a string, `id`
    /// neither a string nor a number, or an envelope member given twice.
    #[error("message is not an RTVI envelope: {0}")]
    InvalidEnvelope(#[source] serde_json::Error),
    /// The envelope's `label` is missing, `null` or anything but the string `rtvi-ai` (the
    /// transport's own messages, such as SmallWebRTC `signalling`, have no label).
    #[error("message label is {found:?}, expected \"rtvi-ai\"")]
    WrongLabel {
        /// The label that was found: the string, or the JSON text of a label that is not a
        /// string; `None` when there was no label or it was `null`.
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
    /// The bot's protocol version has no `send-file` message (below 2.2.0).
    #[error("the bot's RTVI protocol {version} does not support send-file (needs 2.2.0 or later)")]
    SendFileUnsupported {
        /// The bot's protocol version.
        version: String,
    },
    /// Encoding a message failed: a payload that cannot be represented as JSON, such as a NaN
    /// or infinite `f64` (never written as `null`).
    #[error("could not encode message: {0}")]
    Encode(#[source] serde_json::Error),
}
