//! The `about` object of `client-ready` and `bot-ready`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Describes a library: the client's in `client-ready`, the bot's in `bot-ready`.
///
/// Bots may put anything in their `about`; fields beyond the documented ones are kept in
/// [`About::extra`] so nothing is lost.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct About {
    /// Library name (required by the server in `client-ready`).
    #[serde(default)]
    pub library: String,
    /// Library version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library_version: Option<String>,
    /// Platform name, for example `linux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Platform version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// Free-form platform details.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub platform_details: Option<Value>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl About {
    /// The `about` this SDK sends: library name and version from Cargo, the OS as platform
    /// and the architecture and OS family as details.
    pub fn this_library() -> Self {
        About::library(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
    }

    /// An `about` for a library of the caller's choosing, with this platform filled in.
    pub fn library(name: impl Into<String>, version: impl Into<String>) -> Self {
        let mut details = Map::new();
        details.insert("arch".into(), Value::from(std::env::consts::ARCH));
        details.insert("family".into(), Value::from(std::env::consts::FAMILY));
        About {
            library: name.into(),
            library_version: Some(version.into()),
            platform: Some(std::env::consts::OS.to_owned()),
            platform_version: None,
            platform_details: Some(Value::Object(details)),
            extra: Map::new(),
        }
    }
}
