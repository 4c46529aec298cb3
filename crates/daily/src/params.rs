//! Connection parameters of a Daily session: the room URL, the meeting token and per-session
//! join options, read from a start-endpoint answer or given directly.
//!
//! Names accepted (first match wins, JSON `null` and empty strings count as absent):
//!
//! | Parameter | Keys, in order of precedence |
//! |---|---|
//! | room URL (required) | `url`, `room_url`, `dailyRoom` |
//! | meeting token | `token`, `dailyToken` |
//! | user name | `userName`, `user_name` |
//! | extra join settings (object) | `clientSettings`, `client_settings` |
//!
//! `dailyRoom`/`dailyToken` are what the Pipecat dev runner and Pipecat Cloud answer, `room_url`
//! is the older field name, `url`/`token` are the direct names. An empty token is dropped, since
//! Daily rejects an empty token. Other keys (`sessionId`, `fileUploadUrl`, ...) are ignored.

use std::fmt;

use pipecat_core::{ConnectionParams, TransportError};
use serde_json::{Map, Value};
use url::Url;

/// Keys that carry the room URL, in order of precedence.
pub const ROOM_URL_KEYS: &[&str] = &["url", "room_url", "dailyRoom"];
/// Keys that carry the meeting token, in order of precedence.
pub const TOKEN_KEYS: &[&str] = &["token", "dailyToken"];
/// Keys that carry the user name shown in the room.
pub const USER_NAME_KEYS: &[&str] = &["userName", "user_name"];
/// Keys that carry extra join settings (merged over the transport's client settings).
pub const CLIENT_SETTINGS_KEYS: &[&str] = &["clientSettings", "client_settings"];

/// Why connection parameters cannot be used for a Daily session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// No room URL under any of [`ROOM_URL_KEYS`].
    #[error("Daily connection parameters need the room URL, in `url`, `room_url` or `dailyRoom`")]
    MissingRoomUrl,
    /// The room URL is not an `https://<host>/<room>` URL.
    #[error("invalid Daily room URL {url:?}: {reason}")]
    InvalidRoomUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter has the wrong JSON type.
    #[error("Daily connection parameter `{key}` must be {expected}, got {found}")]
    WrongType {
        /// The key.
        key: String,
        /// The JSON type expected.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
}

impl From<ParamsError> for TransportError {
    fn from(e: ParamsError) -> Self {
        TransportError::InvalidParams(e.to_string())
    }
}

/// A Daily room URL: `https://<domain>.daily.co/<room>` (or a custom Daily domain), checked.
///
/// ```
/// use pipecat_daily::RoomUrl;
/// let url = RoomUrl::parse("https://acme.daily.co/standup")?;
/// assert_eq!(url.room_name(), "standup");
/// assert_eq!(url.host(), "acme.daily.co");
/// assert!(RoomUrl::parse("http://acme.daily.co/standup").is_err());
/// assert!(RoomUrl::parse("https://acme.daily.co/").is_err());
/// # Ok::<(), pipecat_daily::ParamsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomUrl {
    url: Url,
    room: String,
}

impl RoomUrl {
    /// Parses and checks a room URL: `https`, a host, and a room name as the last path segment.
    ///
    /// # Errors
    /// [`ParamsError::InvalidRoomUrl`] naming the problem.
    pub fn parse(text: &str) -> Result<Self, ParamsError> {
        let trimmed = text.trim();
        let invalid = |reason: &str| ParamsError::InvalidRoomUrl {
            url: trimmed.to_owned(),
            reason: reason.into(),
        };
        let url = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "https" {
            return Err(invalid("Daily rooms are https URLs"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        let room = url
            .path_segments()
            .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
            .map(str::to_owned)
            .ok_or_else(|| invalid("no room name in the path"))?;
        Ok(RoomUrl { url, room })
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The room name: the last path segment.
    pub fn room_name(&self) -> &str {
        &self.room
    }

    /// The host (`<domain>.daily.co` for Daily-hosted rooms).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

impl fmt::Display for RoomUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// The parameters of one Daily session. `Debug` never shows the token.
///
/// ```
/// use pipecat_core::ConnectionParams;
/// use pipecat_daily::DailyParams;
///
/// // What the Pipecat dev runner's POST /start answers for transport "daily":
/// let answer = serde_json::json!({
///     "dailyRoom": "https://acme.daily.co/pipecat-1a2b3c4d",
///     "dailyToken": "eyJhbGciOi...",
///     "sessionId": "f1e2d3"
/// });
/// let params = DailyParams::from_connection_params(&ConnectionParams::from_json(answer)?)?;
/// assert_eq!(params.room_url.room_name(), "pipecat-1a2b3c4d");
/// assert_eq!(params.token.as_deref(), Some("eyJhbGciOi..."));
/// assert!(!format!("{params:?}").contains("eyJ"));
///
/// // Given directly, and back to generic parameters.
/// let direct = DailyParams::new("https://acme.daily.co/room")?.with_token("");
/// assert_eq!(direct.token, None); // an empty token is no token
/// let generic: ConnectionParams = direct.into();
/// assert_eq!(generic.values["url"], "https://acme.daily.co/room");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct DailyParams {
    /// The room to join.
    pub room_url: RoomUrl,
    /// The meeting token, if any (never empty).
    pub token: Option<String>,
    /// The user name shown to others in the room, overriding the transport's default.
    pub user_name: Option<String>,
    /// Extra daily-core client settings for this session, merged over the transport's own
    /// (`inputs`, `publishing`, ...). Must be a JSON object.
    pub client_settings: Option<Map<String, Value>>,
}

impl fmt::Debug for DailyParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DailyParams")
            .field("room_url", &self.room_url.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user_name", &self.user_name)
            .field("client_settings", &self.client_settings)
            .finish()
    }
}

impl DailyParams {
    /// Parameters for a room, without a token.
    ///
    /// # Errors
    /// [`ParamsError::InvalidRoomUrl`] for a URL that is not a Daily room URL.
    pub fn new(room_url: &str) -> Result<Self, ParamsError> {
        Ok(DailyParams {
            room_url: RoomUrl::parse(room_url)?,
            token: None,
            user_name: None,
            client_settings: None,
        })
    }

    /// Sets the meeting token; an empty (or blank) token is no token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.trim().is_empty()).then_some(token);
        self
    }

    /// Sets the user name.
    #[must_use]
    pub fn with_user_name(mut self, name: impl Into<String>) -> Self {
        self.user_name = Some(name.into());
        self
    }

    /// Reads the parameters from generic connection parameters (see the module docs for the
    /// keys).
    ///
    /// # Errors
    /// [`ParamsError::MissingRoomUrl`], [`ParamsError::InvalidRoomUrl`], or
    /// [`ParamsError::WrongType`] when a known key holds the wrong JSON type.
    pub fn from_connection_params(params: &ConnectionParams) -> Result<Self, ParamsError> {
        Self::from_map(&params.values)
    }

    /// Reads the parameters from a JSON object (see the module docs for the keys).
    ///
    /// # Errors
    /// As [`DailyParams::from_connection_params`].
    pub fn from_map(values: &Map<String, Value>) -> Result<Self, ParamsError> {
        let url = string_param(values, ROOM_URL_KEYS)?.ok_or(ParamsError::MissingRoomUrl)?;
        let mut params = DailyParams::new(url)?;
        params.token = string_param(values, TOKEN_KEYS)?.map(str::to_owned);
        params.user_name = string_param(values, USER_NAME_KEYS)?.map(str::to_owned);
        params.client_settings = match first_present(values, CLIENT_SETTINGS_KEYS) {
            None => None,
            Some((_, Value::Object(map))) => Some(map.clone()),
            Some((key, other)) => {
                return Err(ParamsError::WrongType {
                    key: key.to_owned(),
                    expected: "an object",
                    found: json_type(other),
                });
            }
        };
        Ok(params)
    }
}

impl From<DailyParams> for ConnectionParams {
    fn from(params: DailyParams) -> Self {
        let mut values = Map::new();
        values.insert("url".into(), Value::String(params.room_url.as_str().to_owned()));
        if let Some(token) = params.token {
            values.insert("token".into(), Value::String(token));
        }
        if let Some(name) = params.user_name {
            values.insert("userName".into(), Value::String(name));
        }
        if let Some(settings) = params.client_settings {
            values.insert("clientSettings".into(), Value::Object(settings));
        }
        ConnectionParams { values, start_request: None }
    }
}

/// The first key present with a value other than `null` (an empty string counts as absent).
fn first_present<'a>(
    values: &'a Map<String, Value>,
    keys: &[&'a str],
) -> Option<(&'a str, &'a Value)> {
    keys.iter().find_map(|key| match values.get(*key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => Some((*key, v)),
    })
}

fn string_param<'a>(
    values: &'a Map<String, Value>,
    keys: &[&'a str],
) -> Result<Option<&'a str>, ParamsError> {
    match first_present(values, keys) {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.trim())),
        Some((key, other)) => Err(ParamsError::WrongType {
            key: key.to_owned(),
            expected: "a string",
            found: json_type(other),
        }),
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<DailyParams, ParamsError> {
        let Value::Object(map) = value else { panic!("test input must be an object") };
        DailyParams::from_map(&map)
    }

    #[test]
    fn start_endpoint_names() {
        let p = parse(json!({
            "dailyRoom": "https://acme.daily.co/room", "dailyToken": "tok", "sessionId": "s"
        }))
        .unwrap();
        assert_eq!(p.room_url.as_str(), "https://acme.daily.co/room");
        assert_eq!(p.token.as_deref(), Some("tok"));
        assert_eq!(p.user_name, None);
        assert_eq!(p.client_settings, None);
    }

    #[test]
    fn legacy_and_direct_names() {
        let p = parse(json!({"room_url": "https://acme.daily.co/a"})).unwrap();
        assert_eq!(p.room_url.room_name(), "a");
        assert_eq!(p.token, None);
        let p = parse(json!({"url": "https://acme.daily.co/b", "token": "t"})).unwrap();
        assert_eq!(p.room_url.room_name(), "b");
        assert_eq!(p.token.as_deref(), Some("t"));
    }

    #[test]
    fn precedence_url_then_room_url_then_daily_room() {
        let p = parse(json!({
            "dailyRoom": "https://acme.daily.co/c",
            "room_url": "https://acme.daily.co/b",
            "url": "https://acme.daily.co/a",
            "dailyToken": "second",
            "token": "first"
        }))
        .unwrap();
        assert_eq!(p.room_url.room_name(), "a");
        assert_eq!(p.token.as_deref(), Some("first"));
        let p = parse(json!({
            "dailyRoom": "https://acme.daily.co/c", "room_url": "https://acme.daily.co/b"
        }))
        .unwrap();
        assert_eq!(p.room_url.room_name(), "b");
    }

    #[test]
    fn null_or_empty_token_is_absent() {
        for token in [json!(null), json!(""), json!("   ")] {
            let p = parse(json!({"dailyRoom": "https://acme.daily.co/r", "dailyToken": token}))
                .unwrap();
            assert_eq!(p.token, None);
        }
        // An empty `token` falls through to `dailyToken`.
        let p = parse(json!({
            "url": "https://acme.daily.co/r", "token": "", "dailyToken": "real"
        }))
        .unwrap();
        assert_eq!(p.token.as_deref(), Some("real"));
    }

    #[test]
    fn empty_or_null_url_falls_through_and_missing_is_an_error() {
        let p = parse(json!({"url": "", "room_url": null, "dailyRoom": "https://acme.daily.co/r"}))
            .unwrap();
        assert_eq!(p.room_url.room_name(), "r");
        assert_eq!(parse(json!({"token": "t"})), Err(ParamsError::MissingRoomUrl));
        assert_eq!(parse(json!({})), Err(ParamsError::MissingRoomUrl));
    }

    #[test]
    fn wrong_types_are_typed_errors() {
        assert_eq!(
            parse(json!({"dailyRoom": 5})),
            Err(ParamsError::WrongType {
                key: "dailyRoom".into(),
                expected: "a string",
                found: "a number"
            })
        );
        assert!(matches!(
            parse(json!({"url": "https://acme.daily.co/r", "token": {"x": 1}})),
            Err(ParamsError::WrongType { .. })
        ));
        assert!(matches!(
            parse(json!({"url": "https://acme.daily.co/r", "clientSettings": "inputs"})),
            Err(ParamsError::WrongType { expected: "an object", .. })
        ));
    }

    #[test]
    fn invalid_urls() {
        for bad in [
            "acme.daily.co/r",
            "http://acme.daily.co/r",
            "wss://acme.daily.co/r",
            "https://acme.daily.co",
            "https://acme.daily.co/",
            "not a url",
        ] {
            assert!(
                matches!(parse(json!({"url": bad})), Err(ParamsError::InvalidRoomUrl { .. })),
                "{bad} should be rejected"
            );
        }
        // Trailing slash and surrounding blanks are tolerated; custom domains are allowed.
        assert_eq!(RoomUrl::parse(" https://acme.daily.co/r/ ").unwrap().room_name(), "r");
        assert_eq!(
            RoomUrl::parse("https://meet.example.com/standup").unwrap().room_name(),
            "standup"
        );
    }

    #[test]
    fn join_options_and_round_trip() {
        let p = parse(json!({
            "url": "https://acme.daily.co/r",
            "userName": "Ada",
            "client_settings": {"publishing": {"camera": {"isPublishing": false}}}
        }))
        .unwrap();
        assert_eq!(p.user_name.as_deref(), Some("Ada"));
        assert!(p.client_settings.as_ref().unwrap().contains_key("publishing"));
        let generic: ConnectionParams = p.clone().into();
        assert_eq!(DailyParams::from_connection_params(&generic).unwrap(), p);
    }

    #[test]
    fn conversion_into_transport_error() {
        let e: TransportError = ParamsError::MissingRoomUrl.into();
        assert!(matches!(e, TransportError::InvalidParams(m) if m.contains("dailyRoom")));
    }
}
