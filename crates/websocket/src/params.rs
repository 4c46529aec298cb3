//! Connection parameters: where the bot's WebSocket is and the token that opens it.
//!
//! The rules are lenient on purpose (pipecat's dev runner answers `/start` with
//! `{"wsUrl": …, "sessionId": …, "token": null}`, which the JS transport would reject):
//! - the URL is read from `wsUrl`, else `ws_url`;
//! - `token` is optional; JSON `null` or an empty string mean "no token";
//! - every other key is ignored.

use std::fmt;

use pipecat_core::{ConnectionParams, TransportError};
use serde_json::{Map, Value};
use url::Url;

/// The parameter names the URL is read from, first match wins.
const URL_KEYS: &[&str] = &["wsUrl", "ws_url"];
/// The parameter name of the token.
const TOKEN_KEYS: &[&str] = &["token"];

/// Where to connect: the bot's WebSocket URL and an optional session token.
///
/// Converts into the [`ConnectionParams`] that
/// [`PipecatClient::connect`](pipecat_core::Transport::connect) takes, and can be read back
/// from the answer of a start endpoint. `Debug` never shows the token.
///
/// ```
/// use pipecat_core::ConnectionParams;
/// use pipecat_websocket::WebSocketParams;
///
/// let params = WebSocketParams::new("ws://localhost:7860/ws-client").with_token("s3cret");
/// assert_eq!(params.url()?.as_str(), "ws://localhost:7860/ws-client?token=s3cret");
/// assert!(!format!("{params:?}").contains("s3cret"));
///
/// // Into the transport-neutral form, and back.
/// let generic: ConnectionParams = params.clone().into();
/// assert_eq!(WebSocketParams::from_connection_params(&generic)?, params);
/// # Ok::<(), pipecat_core::TransportError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WebSocketParams {
    /// The bot's WebSocket URL (`ws://` or `wss://`).
    pub ws_url: String,
    /// A session token, sent as the `token` query parameter.
    pub token: Option<String>,
}

impl WebSocketParams {
    /// Parameters for `ws_url`, without a token.
    pub fn new(ws_url: impl Into<String>) -> Self {
        WebSocketParams { ws_url: ws_url.into(), token: None }
    }

    /// Sets the session token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Reads the parameters from their transport-neutral form (or a start-bot answer):
    /// `wsUrl` / `ws_url` and `token`, with `null` or `""` meaning absent and other keys
    /// ignored.
    ///
    /// # Errors
    /// [`TransportError::InvalidParams`] when there is no URL, or when the URL or the token
    /// is not a string.
    pub fn from_connection_params(params: &ConnectionParams) -> Result<Self, TransportError> {
        let ws_url = params.get_str(URL_KEYS)?.ok_or_else(|| {
            TransportError::InvalidParams(
                "the WebSocket transport needs `wsUrl` (or `ws_url`) in its connection \
                 parameters"
                    .into(),
            )
        })?;
        let token = params.get_str(TOKEN_KEYS)?;
        Ok(WebSocketParams { ws_url: ws_url.to_owned(), token: token.map(str::to_owned) })
    }

    /// The URL to open: `ws_url` checked (a `ws` or `wss` URL with a host), with the token
    /// appended as `?token=…`, or `&token=…` when the URL already has a query. The token is
    /// percent-encoded as JavaScript's `encodeURIComponent` does.
    ///
    /// # Errors
    /// [`TransportError::InvalidParams`] for a URL that does not parse, has another scheme or
    /// no host.
    pub fn url(&self) -> Result<Url, TransportError> {
        let mut url = Url::parse(&self.ws_url).map_err(|e| {
            TransportError::InvalidParams(format!(
                "wsUrl {:?} is not a valid URL: {e}",
                redact_str(&self.ws_url)
            ))
        })?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(TransportError::InvalidParams(format!(
                "wsUrl must be a ws:// or wss:// URL, got scheme {:?}",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(TransportError::InvalidParams("wsUrl has no host".into()));
        }
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            let encoded = encode_uri_component(token);
            let query = match url.query() {
                Some(q) if !q.is_empty() => format!("{q}&token={encoded}"),
                _ => format!("token={encoded}"),
            };
            url.set_query(Some(&query));
        }
        Ok(url)
    }
}

impl fmt::Debug for WebSocketParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketParams")
            .field("ws_url", &redact_str(&self.ws_url))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl From<WebSocketParams> for ConnectionParams {
    fn from(params: WebSocketParams) -> Self {
        let mut values = Map::new();
        values.insert("wsUrl".into(), Value::String(params.ws_url));
        if let Some(token) = params.token {
            values.insert("token".into(), Value::String(token));
        }
        ConnectionParams { values, start_request: None }
    }
}

impl TryFrom<&ConnectionParams> for WebSocketParams {
    type Error = TransportError;

    fn try_from(params: &ConnectionParams) -> Result<Self, Self::Error> {
        WebSocketParams::from_connection_params(params)
    }
}

/// A URL fit for logs: the query (which may hold a token) and any user info are replaced by
/// `<redacted>`.
///
/// ```
/// use pipecat_websocket::redact_url;
/// let url = url::Url::parse("wss://bot.example.com/ws?token=abc").unwrap();
/// assert_eq!(redact_url(&url), "wss://bot.example.com/ws?<redacted>");
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.query().is_some() {
        shown.set_query(Some("<redacted>"));
    }
    shown.set_fragment(None);
    if !shown.username().is_empty() || shown.password().is_some() {
        // Only fails for URLs that cannot have credentials, which then have none.
        let _ = shown.set_username("<redacted>");
        let _ = shown.set_password(None);
    }
    // `set_query` percent-encodes `<` and `>`; show the marker as written.
    shown.as_str().replace("%3Credacted%3E", "<redacted>")
}

/// [`redact_url`] for a string that may not even parse.
pub(crate) fn redact_str(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => redact_url(&url),
        Err(_) => match url.split_once(['?', '#']) {
            Some((base, _)) => format!("{base}?<redacted>"),
            None => url.to_owned(),
        },
    }
}

/// Percent-encodes like JavaScript's `encodeURIComponent`: everything but ASCII letters,
/// digits and `-_.!~*'()`.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(value: Value) -> ConnectionParams {
        ConnectionParams::from_json(value).unwrap()
    }

    #[test]
    fn reads_both_spellings_and_ignores_other_keys() {
        let p = params(json!({"wsUrl": "ws://h/ws", "sessionId": "abc", "extra": 1}));
        assert_eq!(WebSocketParams::from_connection_params(&p).unwrap().ws_url, "ws://h/ws");
        let p = params(json!({"ws_url": "ws://h/ws2"}));
        assert_eq!(WebSocketParams::from_connection_params(&p).unwrap().ws_url, "ws://h/ws2");
        // wsUrl wins over ws_url; a null wsUrl falls back.
        let p = params(json!({"wsUrl": "ws://a/", "ws_url": "ws://b/"}));
        assert_eq!(WebSocketParams::from_connection_params(&p).unwrap().ws_url, "ws://a/");
        let p = params(json!({"wsUrl": null, "ws_url": "ws://b/"}));
        assert_eq!(WebSocketParams::from_connection_params(&p).unwrap().ws_url, "ws://b/");
    }

    #[test]
    fn null_or_empty_token_is_absent() {
        for token in [json!(null), json!("")] {
            let p = params(json!({"wsUrl": "ws://h/ws", "token": token}));
            let p = WebSocketParams::from_connection_params(&p).unwrap();
            assert_eq!(p.url().unwrap().as_str(), "ws://h/ws");
        }
    }

    #[test]
    fn token_is_appended_with_the_right_separator() {
        let p = WebSocketParams::new("ws://h:1/ws").with_token("a b+c/=");
        assert_eq!(p.url().unwrap().as_str(), "ws://h:1/ws?token=a%20b%2Bc%2F%3D");
        let p = WebSocketParams::new("wss://h/ws?x=1").with_token("t.k");
        assert_eq!(p.url().unwrap().as_str(), "wss://h/ws?x=1&token=t.k");
    }

    #[test]
    fn invalid_params_are_typed_errors() {
        let cases = [
            json!({}),
            json!({"sessionId": "x"}),
            json!({"wsUrl": 5}),
            json!({"wsUrl": "ws://h/", "token": 5}),
            json!({"wsUrl": ""}),
        ];
        for case in cases {
            let p = params(case.clone());
            let err = WebSocketParams::from_connection_params(&p).unwrap_err();
            assert!(matches!(err, TransportError::InvalidParams(_)), "{case}: {err:?}");
        }
        for url in ["not a url", "http://h/ws", "ws://", "file:///tmp/x"] {
            let err = WebSocketParams::new(url).url().unwrap_err();
            assert!(matches!(err, TransportError::InvalidParams(_)), "{url}: {err:?}");
        }
    }

    #[test]
    fn redaction_hides_query_and_credentials() {
        let url = Url::parse("ws://user:pw@h:9/ws?token=secret#frag").unwrap();
        let shown = redact_url(&url);
        assert!(!shown.contains("secret") && !shown.contains("pw"), "{shown}");
        assert_eq!(redact_str("garbage?token=secret"), "garbage?<redacted>");
        let err = WebSocketParams::new("http://h/?token=secret").url().unwrap_err();
        assert!(!err.to_string().contains("secret"));
        let err = WebSocketParams::new("::bad::?token=secret").url().unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn round_trip_through_connection_params() {
        let p = WebSocketParams::new("ws://h/ws").with_token("t");
        let generic: ConnectionParams = p.clone().into();
        assert_eq!(generic.values["wsUrl"], "ws://h/ws");
        assert_eq!(WebSocketParams::try_from(&generic).unwrap(), p);
    }
}
