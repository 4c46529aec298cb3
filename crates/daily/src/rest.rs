//! A small client of Daily's REST API for development servers and test harnesses: create, get
//! and delete rooms, create meeting tokens, and self-sign meeting tokens without a round trip.
//!
//! A client that only talks to a Pipecat bot never needs this: the bot's start endpoint
//! answers with the room and a token. This is for the server side of a development setup
//! (what Pipecat's `DailyRESTHelper` and dev runner do).
//!
//! The API key comes from `DAILY_API_KEY` ([`DailyRestClient::from_env`]) or is given
//! directly; the base URL defaults to `https://api.daily.co/v1` and can be overridden with
//! `DAILY_API_URL` or [`DailyRestClient::with_base_url`]. The key is sent as
//! `Authorization: Bearer <key>` and never logged or shown by `Debug`.
//!
//! Error mapping: 401/403 → [`RestError::Unauthorized`], 404 → [`RestError::NotFound`], 429 →
//! [`RestError::RateLimited`] (with `Retry-After`), other non-2xx → [`RestError::Api`] with
//! Daily's `error` code and `info` message.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use url::Url;

use crate::params::RoomUrl;

/// Daily's REST API.
pub const DEFAULT_API_URL: &str = "https://api.daily.co/v1";
/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "DAILY_API_KEY";
/// The environment variable overriding the base URL.
pub const API_URL_ENV: &str = "DAILY_API_URL";
/// Default time limit of a request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to Daily's REST API.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// No API key: set `DAILY_API_KEY` or pass one.
    #[error("no Daily API key: set {API_KEY_ENV} or pass one")]
    MissingApiKey,
    /// The base URL (or a room URL) cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Nothing answered.
    #[error("could not reach {url}: {reason}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("no answer from {url} within {after:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The limit.
        after: Duration,
    },
    /// The API key was refused (HTTP 401 or 403).
    #[error("Daily refused the API key (HTTP {status}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// Daily's message.
        message: String,
    },
    /// No such room (HTTP 404).
    #[error("not found: {message}")]
    NotFound {
        /// Daily's message.
        message: String,
    },
    /// Too many requests (HTTP 429).
    #[error("rate limited by Daily: {message}")]
    RateLimited {
        /// Daily's message.
        message: String,
        /// The `Retry-After` delay, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx answer.
    #[error("Daily API error (HTTP {status}{}): {message}", error.as_deref().map(|e| format!(", {e}")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// Daily's error code (`invalid-request-error`, …), if any.
        error: Option<String>,
        /// Daily's `info` message, or the body text, or the status text.
        message: String,
    },
    /// A 2xx answer that is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    InvalidResponse {
        /// The request URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A self-signed token cannot be made from these properties.
    #[error("cannot self-sign the meeting token: {0}")]
    InvalidToken(String),
}

impl RestError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Unauthorized { status, .. } | RestError::Api { status, .. } => Some(*status),
            RestError::NotFound { .. } => Some(404),
            RestError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// Room visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomPrivacy {
    /// Anyone with the URL can join.
    Public,
    /// A meeting token is needed.
    Private,
}

/// Room properties (`POST /rooms` `properties`). Unset fields are not sent; anything else
/// Daily documents can go in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoomProperties {
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Eject everyone when the room expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eject_at_room_exp: Option<bool>,
    /// Maximum participants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u32>,
    /// Enable Daily Prebuilt's chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_chat: Option<bool>,
    /// Enable Daily Prebuilt's pre-join UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_prejoin_ui: Option<bool>,
    /// Enable emoji reactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_emoji_reactions: Option<bool>,
    /// Enable dial-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dialout: Option<bool>,
    /// Recording mode (`"cloud"`, `"local"`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_recording: Option<String>,
    /// Region of the SFU (`"us-west-2"`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<String>,
    /// Cameras off when joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_video_off: Option<bool>,
    /// Microphones off when joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_audio_off: Option<bool>,
    /// SIP dial-in settings (`{display_name, video, sip_mode, num_endpoints, …}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<Value>,
    /// Any other documented property.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The body of `POST /rooms`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CreateRoom {
    /// The room name; Daily picks one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Public or private (Daily's default: public).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<RoomPrivacy>,
    /// The properties.
    pub properties: RoomProperties,
}

/// A room, as the API returns it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Room {
    /// Daily's id.
    #[serde(default)]
    pub id: String,
    /// The room name.
    pub name: String,
    /// The URL to join.
    pub url: String,
    /// Created through the API.
    #[serde(default)]
    pub api_created: bool,
    /// `"public"` or `"private"`.
    #[serde(default)]
    pub privacy: String,
    /// Creation time (ISO 8601).
    #[serde(default)]
    pub created_at: String,
    /// The room's properties as configured (`config.sip_uri.endpoint` with SIP on).
    #[serde(default)]
    pub config: Value,
}

/// The domain configuration (`GET /`): the `domain_id` self-signed tokens need.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct DomainConfig {
    /// The domain name (`acme` of `acme.daily.co`).
    #[serde(default)]
    pub domain_name: String,
    /// The domain id.
    pub domain_id: String,
    /// The domain's settings.
    #[serde(default)]
    pub config: Value,
}

/// Meeting token properties (`POST /meeting-tokens` `properties`). Unset fields are not sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MeetingTokenProperties {
    /// The room the token is for (required for self-signed tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Not valid before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Meeting owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_owner: Option<bool>,
    /// The user name shown in the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The application's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Eject the user when the token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eject_at_token_exp: Option<bool>,
    /// Eject the user this many seconds after joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eject_after_elapsed: Option<u64>,
    /// Allow screen sharing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_screenshare: Option<bool>,
    /// Camera off when joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_video_off: Option<bool>,
    /// Microphone off when joining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_audio_off: Option<bool>,
    /// Recording mode (`"cloud"`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_recording: Option<String>,
    /// Show Daily Prebuilt's pre-join UI (not available in self-signed tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_prejoin_ui: Option<bool>,
    /// Start a cloud recording on join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_cloud_recording: Option<bool>,
    /// Permissions (for self-signed tokens: already in Daily's abbreviated form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
    /// Any other documented property (for self-signed tokens: under its abbreviated claim name).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Daily REST API client. Cheap to clone.
#[derive(Clone)]
pub struct DailyRestClient {
    http: reqwest::Client,
    api_key: String,
    base_url: Url,
    timeout: Duration,
}

impl fmt::Debug for DailyRestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DailyRestClient")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn parse_base(url: &str) -> Result<Url, RestError> {
    let invalid = |reason: String| RestError::InvalidUrl { url: url.to_owned(), reason };
    let mut parsed = Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(format!("scheme {:?} is not http or https", parsed.scheme())));
    }
    if parsed.cannot_be_a_base() {
        return Err(invalid("not a base URL".into()));
    }
    // Paths are appended segment by segment: make sure the base ends with `/`.
    if !parsed.path().ends_with('/') {
        let path = format!("{}/", parsed.path());
        parsed.set_path(&path);
    }
    Ok(parsed)
}

impl DailyRestClient {
    /// A client with an API key and the default base URL.
    ///
    /// ```
    /// use pipecat_daily::rest::DailyRestClient;
    /// let client = DailyRestClient::new("secret-key")?.with_base_url("http://127.0.0.1:9/v1")?;
    /// assert_eq!(client.base_url(), "http://127.0.0.1:9/v1/");
    /// assert!(!format!("{client:?}").contains("secret-key"));
    /// assert!(DailyRestClient::new("  ").is_err());
    /// # Ok::<(), pipecat_daily::rest::RestError>(())
    /// ```
    ///
    /// # Errors
    /// [`RestError::MissingApiKey`] for an empty key.
    pub fn new(api_key: impl Into<String>) -> Result<Self, RestError> {
        let api_key = api_key.into().trim().to_owned();
        if api_key.is_empty() {
            return Err(RestError::MissingApiKey);
        }
        Ok(DailyRestClient {
            http: reqwest::Client::new(),
            api_key,
            base_url: parse_base(DEFAULT_API_URL)?,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client from the environment: `DAILY_API_KEY` (required) and `DAILY_API_URL`
    /// (optional).
    ///
    /// # Errors
    /// [`RestError::MissingApiKey`], or [`RestError::InvalidUrl`] for a bad `DAILY_API_URL`.
    pub fn from_env() -> Result<Self, RestError> {
        let key = std::env::var(API_KEY_ENV).map_err(|_| RestError::MissingApiKey)?;
        let client = Self::new(key)?;
        match std::env::var(API_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => client.with_base_url(&url),
            _ => Ok(client),
        }
    }

    /// Another base URL (a local mock server, a proxy).
    ///
    /// # Errors
    /// [`RestError::InvalidUrl`] unless it is an http(s) URL.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, RestError> {
        self.base_url = parse_base(url)?;
        Ok(self)
    }

    /// Another time limit per request.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Another HTTP client (proxies, custom TLS).
    #[must_use]
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The base URL (always ends with `/`).
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// Creates a room (`POST /rooms`).
    ///
    /// # Errors
    /// A [`RestError`] for each failure (see the module docs).
    pub async fn create_room(&self, room: &CreateRoom) -> Result<Room, RestError> {
        let url = self.url(&["rooms"])?;
        let body = serde_json::to_value(room).map_err(|e| RestError::InvalidResponse {
            url: url.to_string(),
            reason: format!("could not encode the request: {e}"),
        })?;
        self.decode(&url, self.send(Method::POST, &url, Some(&body)).await?)
    }

    /// Gets a room by name (`GET /rooms/{name}`).
    ///
    /// # Errors
    /// [`RestError::NotFound`] when there is no such room, and the others.
    pub async fn get_room(&self, name: &str) -> Result<Room, RestError> {
        let url = self.url(&["rooms", name])?;
        self.decode(&url, self.send(Method::GET, &url, None).await?)
    }

    /// Gets the room of a room URL.
    ///
    /// # Errors
    /// [`RestError::InvalidUrl`] for a URL that is not a room URL, and as [`Self::get_room`].
    pub async fn get_room_from_url(&self, room_url: &str) -> Result<Room, RestError> {
        self.get_room(&room_name_from_url(room_url)?).await
    }

    /// Deletes a room (`DELETE /rooms/{name}`). Returns `false` when there was no such room.
    ///
    /// # Errors
    /// A [`RestError`] for failures other than 404.
    pub async fn delete_room(&self, name: &str) -> Result<bool, RestError> {
        let url = self.url(&["rooms", name])?;
        match self.send(Method::DELETE, &url, None).await {
            Ok(_) => Ok(true),
            Err(RestError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a meeting token (`POST /meeting-tokens`).
    ///
    /// # Errors
    /// A [`RestError`] for each failure.
    pub async fn create_meeting_token(
        &self,
        properties: &MeetingTokenProperties,
    ) -> Result<String, RestError> {
        let body = serde_json::json!({"properties": properties});
        let url = self.url(&["meeting-tokens"])?;
        let answer = self.send(Method::POST, &url, Some(&body)).await?;
        answer
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| RestError::InvalidResponse {
                url: url.to_string(),
                reason: "no `token` in the answer".into(),
            })
    }

    /// The domain configuration (`GET /`), for its `domain_id`.
    ///
    /// # Errors
    /// A [`RestError`] for each failure.
    pub async fn domain_config(&self) -> Result<DomainConfig, RestError> {
        let url = self.base_url.clone();
        self.decode(&url, self.send(Method::GET, &url, None).await?)
    }

    /// Self-signs a meeting token with this client's API key (no request); see
    /// [`self_signed_token`].
    ///
    /// # Errors
    /// [`RestError::InvalidToken`] as [`self_signed_token`].
    pub fn self_signed_token(
        &self,
        domain_id: &str,
        properties: &MeetingTokenProperties,
        now: SystemTime,
    ) -> Result<String, RestError> {
        self_signed_token(&self.api_key, domain_id, properties, now)
    }

    fn url(&self, segments: &[&str]) -> Result<Url, RestError> {
        let mut url = self.base_url.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| RestError::InvalidUrl {
                url: self.base_url.to_string(),
                reason: "not a base URL".into(),
            })?;
            path.pop_if_empty();
            for segment in segments {
                if segment.is_empty() {
                    return Err(RestError::InvalidUrl {
                        url: self.base_url.to_string(),
                        reason: "empty room name".into(),
                    });
                }
                path.push(segment);
            }
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        tracing::debug!(target: "pipecat_daily::rest", %method, url = %url, "Daily REST request");
        let mut request =
            self.http.request(method, url.clone()).bearer_auth(&self.api_key).timeout(self.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                RestError::Timeout { url: url.to_string(), after: self.timeout }
            } else {
                RestError::Unreachable { url: url.to_string(), reason: error_chain(&e) }
            }
        };
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(classify)?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| RestError::InvalidResponse {
                url: url.to_string(),
                reason: format!("not JSON: {e}"),
            });
        }
        let (error, message) = error_body(&text);
        let message =
            message.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        Err(match status.as_u16() {
            401 | 403 => RestError::Unauthorized { status: status.as_u16(), message },
            404 => RestError::NotFound { message },
            429 => RestError::RateLimited { message, retry_after },
            code => RestError::Api { status: code, error, message },
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        value: Value,
    ) -> Result<T, RestError> {
        serde_json::from_value(value)
            .map_err(|e| RestError::InvalidResponse { url: url.to_string(), reason: e.to_string() })
    }
}

/// Daily's error body `{"error": "<code>", "info": "<message>"}`; a non-JSON body is the message.
fn error_body(text: &str) -> (Option<String>, Option<String>) {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            let get = |k: &str| {
                map.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
            };
            let error = get("error");
            let message = get("info").or_else(|| get("message")).or_else(|| error.clone());
            (error, message)
        }
        _ => {
            let text = text.trim();
            (None, (!text.is_empty()).then(|| text.chars().take(500).collect()))
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// The room name of a room URL (its last path segment).
///
/// ```
/// assert_eq!(pipecat_daily::rest::room_name_from_url("https://acme.daily.co/standup")?, "standup");
/// # Ok::<(), pipecat_daily::rest::RestError>(())
/// ```
///
/// # Errors
/// [`RestError::InvalidUrl`] for a URL that is not a room URL.
pub fn room_name_from_url(room_url: &str) -> Result<String, RestError> {
    RoomUrl::parse(room_url)
        .map(|u| u.room_name().to_owned())
        .map_err(|e| RestError::InvalidUrl { url: room_url.to_owned(), reason: e.to_string() })
}

/// Self-signs a meeting token: an HS256 JWT signed with the domain's API key, as Daily
/// documents ("self-signing meeting tokens"). No request is made; Daily checks the signature
/// when the token is used, as long as the key is still active.
///
/// Claims (Daily's abbreviations): `r` room name (required), `d` domain id (required), `iat`
/// now (Unix seconds), `exp`, `nbf`, `o` is_owner, `u` user_name, `ud` user_id, `ss`
/// enable_screenshare, `vo` start_video_off, `ao` start_audio_off, `er` enable_recording, `sr`
/// start_cloud_recording, `ejt` eject_at_token_exp, `eje` eject_after_elapsed, `p` permissions
/// (give them already abbreviated). Entries of `extra` are copied under their own names (use
/// Daily's abbreviations). `enable_prejoin_ui` has no abbreviation and is refused.
///
/// ```
/// use pipecat_daily::rest::{self_signed_token, MeetingTokenProperties};
/// use std::time::{Duration, UNIX_EPOCH};
/// let properties = MeetingTokenProperties {
///     room_name: Some("standup".into()),
///     is_owner: Some(true),
///     exp: Some(1_700_003_600),
///     ..Default::default()
/// };
/// let token = self_signed_token("api-key", "domain-id", &properties, UNIX_EPOCH + Duration::from_secs(1_700_000_000))?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), pipecat_daily::rest::RestError>(())
/// ```
///
/// # Errors
/// [`RestError::InvalidToken`] without a room name, domain id or key, or with a property that
/// has no abbreviation.
pub fn self_signed_token(
    api_key: &str,
    domain_id: &str,
    properties: &MeetingTokenProperties,
    now: SystemTime,
) -> Result<String, RestError> {
    if api_key.trim().is_empty() {
        return Err(RestError::MissingApiKey);
    }
    if domain_id.trim().is_empty() {
        return Err(RestError::InvalidToken("the domain id (`d`) is required".into()));
    }
    let room = properties
        .room_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| RestError::InvalidToken("the room name (`r`) is required".into()))?;
    if properties.enable_prejoin_ui.is_some() {
        return Err(RestError::InvalidToken(
            "enable_prejoin_ui has no self-signed token abbreviation".into(),
        ));
    }
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| RestError::InvalidToken("the time is before 1970".into()))?
        .as_secs();
    let mut claims = Map::new();
    claims.insert("r".into(), room.into());
    claims.insert("d".into(), domain_id.into());
    claims.insert("iat".into(), iat.into());
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            claims.insert(key.into(), value);
        }
    };
    put("exp", properties.exp.map(Value::from));
    put("nbf", properties.nbf.map(Value::from));
    put("o", properties.is_owner.map(Value::from));
    put("u", properties.user_name.clone().map(Value::from));
    put("ud", properties.user_id.clone().map(Value::from));
    put("ss", properties.enable_screenshare.map(Value::from));
    put("vo", properties.start_video_off.map(Value::from));
    put("ao", properties.start_audio_off.map(Value::from));
    put("er", properties.enable_recording.clone().map(Value::from));
    put("sr", properties.start_cloud_recording.map(Value::from));
    put("ejt", properties.eject_at_token_exp.map(Value::from));
    put("eje", properties.eject_after_elapsed.map(Value::from));
    put("p", properties.permissions.clone());
    for (key, value) in &properties.extra {
        claims.insert(key.clone(), value.clone());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(Value::Object(claims).to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(api_key.as_bytes())
        .map_err(|e| RestError::InvalidToken(e.to_string()))?;
    mac.update(signing_input.as_bytes());
    let signature = b64.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base("https://api.daily.co/v1").unwrap().as_str(),
            "https://api.daily.co/v1/"
        );
        assert_eq!(parse_base("http://127.0.0.1:1/").unwrap().as_str(), "http://127.0.0.1:1/");
        assert!(parse_base("ftp://x/").is_err());
        assert!(parse_base("nope").is_err());
        let client = DailyRestClient::new("k").unwrap().with_base_url("http://h/v1").unwrap();
        assert_eq!(
            client.url(&["rooms", "a b/c"]).unwrap().as_str(),
            "http://h/v1/rooms/a%20b%2Fc"
        );
        assert!(client.url(&["rooms", ""]).is_err());
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(r#"{"error":"not-found","info":"room x not found"}"#),
            (Some("not-found".into()), Some("room x not found".into()))
        );
        assert_eq!(
            error_body(r#"{"error":"invalid-request-error"}"#).1.as_deref(),
            Some("invalid-request-error")
        );
        assert_eq!(error_body("Bad Gateway"), (None, Some("Bad Gateway".into())));
        assert_eq!(error_body(""), (None, None));
    }

    #[test]
    fn self_signed_token_checks() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let room = MeetingTokenProperties { room_name: Some("r".into()), ..Default::default() };
        assert!(self_signed_token("k", "d", &room, now).is_ok());
        assert!(matches!(self_signed_token("", "d", &room, now), Err(RestError::MissingApiKey)));
        assert!(matches!(self_signed_token("k", "", &room, now), Err(RestError::InvalidToken(_))));
        assert!(matches!(
            self_signed_token("k", "d", &MeetingTokenProperties::default(), now),
            Err(RestError::InvalidToken(_))
        ));
        let prejoin = MeetingTokenProperties { enable_prejoin_ui: Some(true), ..room };
        assert!(matches!(
            self_signed_token("k", "d", &prejoin, now),
            Err(RestError::InvalidToken(_))
        ));
    }
}
