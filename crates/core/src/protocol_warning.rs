//! How a [`ProtocolWarning`] reads: a kebab-case [`kind`](ProtocolWarning::kind), a
//! structured serde form for machine-readable output, and a sentence for people.

use std::fmt;

use pipecat_rtvi::{CLIENT_PROTOCOL_VERSION, Compatibility, OLDEST_SUPPORTED_VERSION};
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::ProtocolWarning;

impl ProtocolWarning {
    /// The kind of warning in kebab-case: `invalid-message`, `bot-version`,
    /// `invalid-bot-version`, `client-ready-rejected` or `unexpected` (the `kind` field of
    /// its serde form).
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolWarning::InvalidMessage { .. } => "invalid-message",
            ProtocolWarning::BotVersion { .. } => "bot-version",
            ProtocolWarning::InvalidBotVersion { .. } => "invalid-bot-version",
            ProtocolWarning::ClientReadyRejected { .. } => "client-ready-rejected",
            ProtocolWarning::Unexpected { .. } => "unexpected",
        }
    }
}

fn compatibility_str(compatibility: Compatibility) -> &'static str {
    match compatibility {
        Compatibility::Compatible => "compatible",
        Compatibility::Legacy => "legacy",
        Compatibility::Incompatible => "incompatible",
        _ => "unknown",
    }
}

/// A map: `kind`, then the variant's fields. Versions are `major.minor.patch` strings;
/// `client_version` is the protocol this client speaks, and `assumed_version` the one it
/// assumes for a bot without a usable version:
///
/// - `{"kind": "invalid-message", "reason": ...}`
/// - `{"kind": "bot-version", "version": "1.0.0", "compatibility": "legacy", "client_version": "2.2.0"}`
///   (`compatibility` is `compatible`, `legacy` or `incompatible`)
/// - `{"kind": "invalid-bot-version", "version": ..., "assumed_version": "1.0.0", "client_version": ...}`
/// - `{"kind": "client-ready-rejected", "message": <the bot's text>, "client_version": ...}`
/// - `{"kind": "unexpected", "message_type": ...}`
impl Serialize for ProtocolWarning {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let client_version = CLIENT_PROTOCOL_VERSION.to_string();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", self.kind())?;
        match self {
            ProtocolWarning::InvalidMessage { reason } => map.serialize_entry("reason", reason)?,
            ProtocolWarning::BotVersion { version, compatibility } => {
                map.serialize_entry("version", &version.to_string())?;
                map.serialize_entry("compatibility", compatibility_str(*compatibility))?;
                map.serialize_entry("client_version", &client_version)?;
            }
            ProtocolWarning::InvalidBotVersion { version } => {
                map.serialize_entry("version", version)?;
                map.serialize_entry("assumed_version", &OLDEST_SUPPORTED_VERSION.to_string())?;
                map.serialize_entry("client_version", &client_version)?;
            }
            ProtocolWarning::ClientReadyRejected { message } => {
                map.serialize_entry("message", message)?;
                map.serialize_entry("client_version", &client_version)?;
            }
            ProtocolWarning::Unexpected { message_type } => {
                map.serialize_entry("message_type", message_type)?;
            }
        }
        map.end()
    }
}

/// One sentence for people, naming the versions and quoting the bot where it spoke.
impl fmt::Display for ProtocolWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ours = CLIENT_PROTOCOL_VERSION;
        match self {
            ProtocolWarning::InvalidMessage { reason } => {
                write!(f, "skipped a message that could not be decoded: {reason}")
            }
            ProtocolWarning::BotVersion { version, compatibility } => match compatibility {
                Compatibility::Compatible => {
                    write!(f, "the bot speaks RTVI {version}, compatible with this client's {ours}")
                }
                Compatibility::Legacy => write!(
                    f,
                    "the bot speaks the legacy RTVI {version} (this client speaks {ours}); the \
                     session goes on in legacy mode, some features may not work"
                ),
                _ => write!(
                    f,
                    "the bot speaks RTVI {version}, not compatible with this client's {ours}; the \
                     session goes on, some features may not work"
                ),
            },
            ProtocolWarning::InvalidBotVersion { version } if version.trim().is_empty() => write!(
                f,
                "the bot's bot-ready has no version; assuming RTVI {OLDEST_SUPPORTED_VERSION}"
            ),
            ProtocolWarning::InvalidBotVersion { version } => write!(
                f,
                "the bot's bot-ready version {version:?} is not major.minor.patch; assuming RTVI \
                 {OLDEST_SUPPORTED_VERSION}"
            ),
            ProtocolWarning::ClientReadyRejected { message } => write!(
                f,
                "the bot rejected client-ready (this client speaks RTVI {ours}) and carries on: \
                 {message}"
            ),
            ProtocolWarning::Unexpected { message_type } => {
                write!(f, "ignored a {message_type} that makes no sense now")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pipecat_rtvi::ProtocolVersion;
    use serde_json::{Value, json};

    use super::*;

    fn all() -> Vec<ProtocolWarning> {
        vec![
            ProtocolWarning::InvalidMessage { reason: "expected value at line 1".into() },
            ProtocolWarning::BotVersion {
                version: ProtocolVersion::new(1, 0, 0),
                compatibility: Compatibility::Legacy,
            },
            ProtocolWarning::InvalidBotVersion { version: "two".into() },
            ProtocolWarning::ClientReadyRejected {
                message: "RTVI version 2.2.0 is not compatible with 1.0.0".into(),
            },
            ProtocolWarning::Unexpected { message_type: "bot-ready".into() },
        ]
    }

    #[test]
    fn the_serde_form_is_a_kind_and_fields() {
        let json: Vec<Value> = all().iter().map(|w| serde_json::to_value(w).unwrap()).collect();
        assert_eq!(
            json,
            [
                json!({"kind": "invalid-message", "reason": "expected value at line 1"}),
                json!({
                    "kind": "bot-version",
                    "version": "1.0.0",
                    "compatibility": "legacy",
                    "client_version": "2.2.0",
                }),
                json!({
                    "kind": "invalid-bot-version",
                    "version": "two",
                    "assumed_version": "1.0.0",
                    "client_version": "2.2.0",
                }),
                json!({
                    "kind": "client-ready-rejected",
                    "message": "RTVI version 2.2.0 is not compatible with 1.0.0",
                    "client_version": "2.2.0",
                }),
                json!({"kind": "unexpected", "message_type": "bot-ready"}),
            ]
        );
        for (warning, json) in all().iter().zip(&json) {
            assert_eq!(json["kind"], warning.kind());
        }
    }

    #[test]
    fn the_text_is_a_sentence_not_debug() {
        for warning in all() {
            let text = warning.to_string();
            assert!(!text.contains('{') && !text.contains("ProtocolVersion"), "{text}");
        }
        let legacy = all()[1].to_string();
        assert!(legacy.contains("RTVI 1.0.0") && legacy.contains("2.2.0"), "{legacy}");
        let rejected = all()[3].to_string();
        assert!(
            rejected.ends_with("RTVI version 2.2.0 is not compatible with 1.0.0"),
            "{rejected}"
        );
        let missing = ProtocolWarning::InvalidBotVersion { version: String::new() }.to_string();
        assert_eq!(missing, "the bot's bot-ready has no version; assuming RTVI 1.0.0");
    }
}
