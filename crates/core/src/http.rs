//! HTTP requests to bot endpoints: the `start_bot` POST and transport signalling (SDP offers).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default time limit of an [`ApiRequest`] without its own.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Default bound on the body of an answer (start and offer answers are a few KiB): a larger
/// one is refused with [`HttpError::ResponseTooLarge`] before it is all read.
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 1024 * 1024;

/// An HTTP endpoint to POST JSON to: the bot's start endpoint, or a SmallWebRTC offer endpoint.
///
/// `Debug` never shows header values (they often carry API keys).
///
/// ```
/// use std::time::Duration;
/// use pipecat_core::ApiRequest;
/// let request = ApiRequest::new("http://localhost:7860/start")
///     .header("Authorization", "Bearer secret")
///     .request_data(serde_json::json!({"transport": "websocket"}))
///     .timeout(Duration::from_secs(5));
/// assert!(!format!("{request:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    /// The URL.
    pub endpoint: String,
    /// Extra headers (`Content-Type: application/json` is always sent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `None` sends `{}`.
    #[serde(default, alias = "request_data", skip_serializing_if = "Option::is_none")]
    pub request_data: Option<Value>,
    /// The time limit; `None` uses the client's default.
    #[serde(default, with = "duration_ms", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The largest answer body accepted, in bytes; `None` is
    /// [`DEFAULT_MAX_RESPONSE_SIZE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_size: Option<usize>,
}

impl ApiRequest {
    /// A request to `endpoint` with no headers, an empty body and the default time limit.
    pub fn new(endpoint: impl Into<String>) -> Self {
        ApiRequest {
            endpoint: endpoint.into(),
            headers: BTreeMap::new(),
            request_data: None,
            timeout: None,
            max_response_size: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the JSON body.
    pub fn request_data(mut self, data: Value) -> Self {
        self.request_data = Some(data);
        self
    }

    /// Sets the time limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the largest answer body accepted, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_SIZE`]).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = Some(bytes);
        self
    }
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiRequest")
            .field("endpoint", &self.endpoint)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("request_data", &self.request_data.as_ref().map(|_| "…"))
            .field("timeout", &self.timeout)
            .field("max_response_size", &self.max_response_size)
            .finish()
    }
}

/// Serde for an optional duration as integer milliseconds (the JS `timeout` convention).
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Why an HTTP request to a bot endpoint failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The endpoint is not a usable URL.
    #[error("invalid endpoint URL {endpoint:?}: {reason}")]
    InvalidUrl {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// Nothing answered (refused, DNS failure, TLS failure).
    #[error("could not reach {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// No complete answer within the time limit.
    #[error("no answer from {endpoint} within {after:?}")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The limit.
        after: Duration,
    },
    /// A non-2xx answer. The message comes from the JSON body's `info`, then `detail`, then
    /// the body text, then the status text.
    #[error("HTTP {status} from {endpoint}: {message}")]
    Status {
        /// The endpoint.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The answer's body is larger than the request's bound; it was not read further.
    #[error(
        "the answer from {endpoint} is larger than {limit} bytes (ApiRequest::max_response_size)"
    )]
    ResponseTooLarge {
        /// The endpoint.
        endpoint: String,
        /// The bound, in bytes.
        limit: usize,
    },
    /// A 2xx answer whose body is not JSON.
    #[error("answer from {endpoint} is not JSON: {reason}")]
    InvalidResponse {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

impl HttpError {
    /// The HTTP status, for [`HttpError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends `method` with a JSON `body` to `request.endpoint` (with its headers and time limit)
/// and returns the JSON answer. Used for `start_bot` and by transports for signalling.
///
/// # Errors
/// An [`HttpError`] for each distinct failure: bad URL, unreachable, timeout, non-2xx status
/// (with the server's message), non-JSON answer.
pub async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    request: &ApiRequest,
    body: &Value,
    default_timeout: Duration,
) -> Result<Value, HttpError> {
    // Errors name the endpoint without its query or user info: those may carry secrets.
    let endpoint = loggable_endpoint(&request.endpoint);
    let url = url::Url::parse(&request.endpoint)
        .map_err(|e| HttpError::InvalidUrl { endpoint: endpoint.clone(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpError::InvalidUrl {
            endpoint,
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    let timeout = request.timeout.unwrap_or(default_timeout);
    let mut builder = http.request(method, url).timeout(timeout).json(body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            HttpError::Timeout { endpoint: endpoint.clone(), after: timeout }
        } else {
            HttpError::Unreachable { endpoint: endpoint.clone(), reason: error_chain(&e) }
        }
    };
    let mut response = builder.send().await.map_err(classify)?;
    let status = response.status();
    let limit = request.max_response_size.unwrap_or(DEFAULT_MAX_RESPONSE_SIZE);
    let too_large = || HttpError::ResponseTooLarge { endpoint: endpoint.clone(), limit };
    if response.content_length().is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    // Read in chunks, so a huge or endless body stops at the bound instead of filling memory.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        return Err(HttpError::Status {
            endpoint,
            status: status.as_u16(),
            message: server_message(&text)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
        });
    }
    serde_json::from_str(&text)
        .map_err(|e| HttpError::InvalidResponse { endpoint, reason: e.to_string() })
}

/// An endpoint for logs and error messages: no query, fragment or user info (they may carry
/// keys or tokens).
pub(crate) fn loggable_endpoint(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// The human message of an error body: JSON `info`, then `detail`, then the plain text.
fn server_message(body: &str) -> Option<String> {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) {
        for key in ["info", "detail"] {
            match map.get(key) {
                Some(Value::String(s)) if !s.is_empty() => return Some(s.clone()),
                Some(v) if !v.is_null() => return Some(v.to_string()),
                _ => {}
            }
        }
        return None;
    }
    let text = body.trim();
    (!text.is_empty()).then(|| text.chars().take(500).collect())
}

/// reqwest's display hides the root cause ("error sending request"); walk the chain.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_message_prefers_info_then_detail_then_text() {
        assert_eq!(server_message(r#"{"info":"a","detail":"b"}"#).as_deref(), Some("a"));
        assert_eq!(server_message(r#"{"detail":"b"}"#).as_deref(), Some("b"));
        assert_eq!(
            server_message(r#"{"detail":[{"msg":"x"}]}"#).as_deref(),
            Some(r#"[{"msg":"x"}]"#)
        );
        assert_eq!(
            server_message("Invalid WebRTC request").as_deref(),
            Some("Invalid WebRTC request")
        );
        assert_eq!(server_message(r#"{"other":1}"#), None);
        assert_eq!(server_message("  "), None);
    }

    #[test]
    fn api_request_json_accepts_js_and_snake_keys() {
        let r: ApiRequest = serde_json::from_value(serde_json::json!({
            "endpoint": "http://x/start", "headers": {"A": "b"}, "requestData": {"k": 1}, "timeout": 1500
        }))
        .unwrap();
        assert_eq!(r.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(r.request_data, Some(serde_json::json!({"k": 1})));
        let r: ApiRequest =
            serde_json::from_value(serde_json::json!({"endpoint": "http://x", "request_data": 2}))
                .unwrap();
        assert_eq!(r.request_data, Some(serde_json::json!(2)));
    }
}
