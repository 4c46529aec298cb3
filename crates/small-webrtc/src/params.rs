//! Connection parameters: what a start endpoint answers (or the user passes) turned into an
//! offer endpoint and ICE servers, with the same lenient rules as the JS transport.

use std::collections::BTreeMap;

use pipecat_core::{ApiRequest, ConnectionParams, TransportError};
use serde_json::{Map, Value, json};
use url::Url;

/// A STUN or TURN server for ICE.
///
/// ```
/// use pipecat_small_webrtc::IceServer;
/// let stun = IceServer::new("stun:stun.l.google.com:19302");
/// let turn = IceServer::new("turn:turn.example.com:3478").credentials("user", "secret");
/// assert_eq!(turn.username.as_deref(), Some("user"));
/// assert!(!format!("{turn:?}").contains("secret"));
/// # let _ = stun;
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN password or token.
    pub credential: Option<String>,
}

impl IceServer {
    /// A server with one URL and no credentials.
    pub fn new(url: impl Into<String>) -> Self {
        IceServer { urls: vec![url.into()], username: None, credential: None }
    }

    /// Sets the TURN credentials.
    #[must_use]
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        credential: impl Into<String>,
    ) -> Self {
        self.username = Some(username.into());
        self.credential = Some(credential.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut v = json!({ "urls": self.urls });
        if let Some(u) = &self.username {
            v["username"] = json!(u);
        }
        if let Some(c) = &self.credential {
            v["credential"] = json!(c);
        }
        v
    }
}

impl std::fmt::Debug for IceServer {
    // The credential is a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Typed SmallWebRTC connection parameters; converts into [`ConnectionParams`] for
/// `PipecatClient::connect`.
///
/// Accepted keys, in camelCase or snake_case (anything else is ignored):
///
/// | Key | Meaning |
/// |---|---|
/// | `webrtcRequestParams` | an [`ApiRequest`] for the offer endpoint (its `requestData` goes into the offer body), or a URL string |
/// | `webrtcUrl`, `connectionUrl` | deprecated: the offer URL |
/// | `sessionId` | with a start request: the offer URL is the start endpoint with `/start` replaced by `/sessions/{id}/api/offer`, or the `offerUrlTemplate` with `:sessionId` replaced |
/// | `offerUrlTemplate` | a URL containing `:sessionId` (or `{sessionId}`) |
/// | `iceConfig.iceServers` | `[{urls: string or [string], username?, credential?}]` |
///
/// The offer URL comes from, in this order: `webrtcRequestParams`, `webrtcUrl`,
/// `connectionUrl`, the template, the `/start` rule.
///
/// ```
/// use pipecat_core::{ApiRequest, ConnectionParams};
/// use pipecat_small_webrtc::SmallWebRtcParams;
///
/// // Straight to an offer endpoint:
/// let direct: ConnectionParams = SmallWebRtcParams::offer_url("http://localhost:7860/api/offer").into();
/// assert_eq!(direct.values["webrtcUrl"], "http://localhost:7860/api/offer");
///
/// // What a start endpoint answered, with the request that produced it:
/// let start = ApiRequest::new("http://localhost:7860/start").header("Authorization", "Bearer k");
/// let params = SmallWebRtcParams::session(start, "abc");
/// let offer = params.resolve(None)?;
/// assert_eq!(offer.endpoint, "http://localhost:7860/sessions/abc/api/offer");
/// assert_eq!(offer.headers["Authorization"], "Bearer k"); // start headers are reused
/// # Ok::<(), pipecat_core::TransportError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmallWebRtcParams {
    /// The offer endpoint as a full request (headers, time limit, and `request_data`, which
    /// is sent as the offer body's `request_data`).
    pub webrtc_request: Option<ApiRequest>,
    /// Deprecated: the offer URL.
    pub webrtc_url: Option<String>,
    /// Deprecated: the offer URL.
    pub connection_url: Option<String>,
    /// The session the start endpoint created.
    pub session_id: Option<String>,
    /// An offer URL containing `:sessionId` (or `{sessionId}`).
    pub offer_url_template: Option<String>,
    /// ICE servers; `None` keeps the transport's own.
    pub ice_servers: Option<Vec<IceServer>>,
    /// The start request these parameters answer (its headers are reused).
    pub start_request: Option<ApiRequest>,
}

impl SmallWebRtcParams {
    /// Parameters that POST the offer to `url`.
    pub fn offer_url(url: impl Into<String>) -> Self {
        SmallWebRtcParams { webrtc_url: Some(url.into()), ..Default::default() }
    }

    /// Parameters for the session `session_id` created by `start_request`.
    pub fn session(start_request: ApiRequest, session_id: impl Into<String>) -> Self {
        SmallWebRtcParams {
            session_id: Some(session_id.into()),
            start_request: Some(start_request),
            ..Default::default()
        }
    }

    /// Sets the ICE servers.
    #[must_use]
    pub fn ice_servers(mut self, servers: Vec<IceServer>) -> Self {
        self.ice_servers = Some(servers);
        self
    }

    /// Reads parameters with the lenient rules described on [`SmallWebRtcParams`].
    ///
    /// # Errors
    /// [`TransportError::InvalidParams`] when a known key has the wrong type.
    pub fn from_connection_params(params: &ConnectionParams) -> Result<Self, TransportError> {
        let webrtc_request = match params.get(&["webrtcRequestParams", "webrtc_request_params"]) {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(ApiRequest::new(s.clone())),
            Some(v @ Value::Object(_)) => {
                Some(serde_json::from_value(v.clone()).map_err(|e| {
                    TransportError::InvalidParams(format!("webrtcRequestParams: {e}"))
                })?)
            }
            Some(other) => {
                return Err(TransportError::InvalidParams(format!(
                    "webrtcRequestParams must be an object or a URL, got {other}"
                )));
            }
        };
        let ice_servers = match params.get(&["iceConfig", "ice_config"]) {
            None => None,
            Some(config) => parse_ice_config(config)?,
        };
        let known = [
            "webrtcRequestParams",
            "webrtc_request_params",
            "webrtcUrl",
            "webrtc_url",
            "connectionUrl",
            "connection_url",
            "sessionId",
            "session_id",
            "offerUrlTemplate",
            "offer_url_template",
            "iceConfig",
            "ice_config",
        ];
        for key in params.values.keys().filter(|k| !known.contains(&k.as_str())) {
            tracing::debug!(key, "ignoring unknown SmallWebRTC connection parameter");
        }
        Ok(SmallWebRtcParams {
            webrtc_request,
            webrtc_url: params.get_str(&["webrtcUrl", "webrtc_url"])?.map(str::to_owned),
            connection_url: params
                .get_str(&["connectionUrl", "connection_url"])?
                .map(str::to_owned),
            session_id: params.get_str(&["sessionId", "session_id"])?.map(str::to_owned),
            offer_url_template: params
                .get_str(&["offerUrlTemplate", "offer_url_template"])?
                .map(str::to_owned),
            ice_servers,
            start_request: params.start_request.clone(),
        })
    }

    /// The offer request: endpoint, headers, time limit and the `request_data` for the offer
    /// body. `default_template` is the transport's offer-URL template, used when the
    /// parameters carry none.
    ///
    /// The start request's headers are reused for URLs derived from it (`sessionId`) and for
    /// explicit URLs on the same origin as the start endpoint; they are not sent to another
    /// origin, since they often carry an API key.
    ///
    /// # Errors
    /// [`TransportError::InvalidParams`] when no offer URL can be found or built.
    pub fn resolve(&self, default_template: Option<&str>) -> Result<ApiRequest, TransportError> {
        let explicit = self
            .webrtc_request
            .clone()
            .or_else(|| self.webrtc_url.clone().map(ApiRequest::new))
            .or_else(|| self.connection_url.clone().map(ApiRequest::new));
        if let Some(mut request) = explicit {
            if let Some(start) = &self.start_request
                && same_origin(&start.endpoint, &request.endpoint)
            {
                request.headers = merged_headers(&start.headers, &request.headers);
            }
            return Ok(request);
        }
        let Some(session_id) = self.session_id.as_deref() else {
            return Err(TransportError::InvalidParams(
                "no offer endpoint: give webrtcRequestParams, webrtcUrl, or a sessionId with its \
                 start request"
                    .into(),
            ));
        };
        let template = self.offer_url_template.as_deref().or(default_template);
        let endpoint = match (template, &self.start_request) {
            (Some(template), _) => fill_template(template, session_id),
            (None, Some(start)) => session_offer_url(&start.endpoint, session_id)?,
            (None, None) => {
                return Err(TransportError::InvalidParams(format!(
                    "sessionId {session_id:?} needs the start request (or an offer URL template) \
                     to build the offer URL"
                )));
            }
        };
        let mut request = ApiRequest::new(endpoint);
        if let Some(start) = &self.start_request {
            request.headers = start.headers.clone();
        }
        Ok(request)
    }
}

impl From<SmallWebRtcParams> for ConnectionParams {
    fn from(p: SmallWebRtcParams) -> Self {
        let mut values = Map::new();
        if let Some(r) = &p.webrtc_request
            && let Ok(v) = serde_json::to_value(r)
        {
            values.insert("webrtcRequestParams".into(), v);
        }
        let strings = [
            ("webrtcUrl", &p.webrtc_url),
            ("connectionUrl", &p.connection_url),
            ("sessionId", &p.session_id),
            ("offerUrlTemplate", &p.offer_url_template),
        ];
        for (key, value) in strings {
            if let Some(v) = value {
                values.insert(key.into(), Value::String(v.clone()));
            }
        }
        if let Some(servers) = &p.ice_servers {
            let list: Vec<Value> = servers.iter().map(IceServer::to_json).collect();
            values.insert("iceConfig".into(), json!({ "iceServers": list }));
        }
        ConnectionParams { values, start_request: p.start_request }
    }
}

/// `iceConfig` → servers; `None` when it has no server list.
fn parse_ice_config(config: &Value) -> Result<Option<Vec<IceServer>>, TransportError> {
    let Value::Object(map) = config else {
        return Err(TransportError::InvalidParams(format!(
            "iceConfig must be an object, got {config}"
        )));
    };
    let Some(list) = map.get("iceServers").or_else(|| map.get("ice_servers")) else {
        return Ok(None);
    };
    let Value::Array(entries) = list else {
        return Err(TransportError::InvalidParams(format!(
            "iceServers must be a list, got {list}"
        )));
    };
    entries.iter().map(parse_ice_server).collect::<Result<Vec<_>, _>>().map(Some)
}

fn parse_ice_server(entry: &Value) -> Result<IceServer, TransportError> {
    let bad = |what: String| TransportError::InvalidParams(format!("iceServers entry: {what}"));
    let Value::Object(map) = entry else {
        return Err(bad(format!("must be an object, got {entry}")));
    };
    // `url` is the pre-standard spelling some servers still emit.
    let urls = match map.get("urls").or_else(|| map.get("url")) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|u| match u {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(format!("urls must be strings, got {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(bad(format!("urls must be a string or a list, got {other}"))),
        None => return Err(bad("has no urls".into())),
    };
    let text = |key: &str| -> Result<Option<String>, TransportError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("{key} must be a string"))),
        }
    };
    Ok(IceServer { urls, username: text("username")?, credential: text("credential")? })
}

/// The `/start` → `/sessions/{id}/api/offer` rule (what the Pipecat runner and Pipecat
/// Cloud serve).
fn session_offer_url(start_endpoint: &str, session_id: &str) -> Result<String, TransportError> {
    let cannot = |why: &str| {
        TransportError::InvalidParams(format!(
            "cannot build the offer URL from start endpoint {start_endpoint:?}: {why}; give an \
             offer URL template or webrtcUrl"
        ))
    };
    let mut url = Url::parse(start_endpoint).map_err(|e| cannot(&e.to_string()))?;
    let segments: Vec<String> = url
        .path_segments()
        .ok_or_else(|| cannot("not a hierarchical URL"))?
        .map(str::to_owned)
        .collect();
    // Ignore one trailing slash; the last `start` segment is the one replaced.
    let trimmed: &[String] = match segments.last() {
        Some(last) if last.is_empty() => &segments[..segments.len() - 1],
        _ => &segments,
    };
    let Some(at) = trimmed.iter().rposition(|s| s == "start") else {
        return Err(cannot("its path has no /start segment"));
    };
    let mut path = url.path_segments_mut().map_err(|_| cannot("not a hierarchical URL"))?;
    path.clear();
    path.extend(&trimmed[..at]);
    path.extend(["sessions", session_id, "api", "offer"]);
    path.extend(&trimmed[at + 1..]);
    drop(path);
    Ok(url.to_string())
}

/// Replaces `:sessionId` / `{sessionId}` with the (path-escaped) session id.
fn fill_template(template: &str, session_id: &str) -> String {
    let escaped: String = url::form_urlencoded::byte_serialize(session_id.as_bytes()).collect();
    // form encoding writes spaces as `+`; in a path they must be `%20`.
    let escaped = escaped.replace('+', "%20");
    template.replace(":sessionId", &escaped).replace("{sessionId}", &escaped)
}

fn same_origin(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// `base` overridden by `own` (header names compared case-insensitively).
fn merged_headers(
    base: &BTreeMap<String, String>,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = base
        .iter()
        .filter(|(k, _)| !own.keys().any(|o| o.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn params(v: Value, start: Option<ApiRequest>) -> ConnectionParams {
        let mut p = ConnectionParams::from_json(v).unwrap();
        p.start_request = start;
        p
    }

    fn start() -> ApiRequest {
        ApiRequest::new("http://bot.example:8080/start").header("Authorization", "Bearer key")
    }

    fn resolve(v: Value, start: Option<ApiRequest>) -> Result<ApiRequest, TransportError> {
        SmallWebRtcParams::from_connection_params(&params(v, start))?.resolve(None)
    }

    /// The mapping table: input parameters → offer endpoint (or an error).
    #[test]
    fn offer_url_mapping_table() {
        let cases: Vec<(Value, Option<ApiRequest>, Option<&str>)> = vec![
            // sessionId via the /start rule, both spellings.
            (
                json!({"sessionId": "s1"}),
                Some(start()),
                Some("http://bot.example:8080/sessions/s1/api/offer"),
            ),
            (
                json!({"session_id": "s1"}),
                Some(start()),
                Some("http://bot.example:8080/sessions/s1/api/offer"),
            ),
            // A Pipecat Cloud style start URL, with a trailing slash and a query.
            (
                json!({"sessionId": "abc"}),
                Some(ApiRequest::new("https://api.example.com/v1/public/agent/start/?x=1")),
                Some("https://api.example.com/v1/public/agent/sessions/abc/api/offer?x=1"),
            ),
            // Special characters in the session id are escaped.
            (
                json!({"sessionId": "a b/c"}),
                Some(start()),
                Some("http://bot.example:8080/sessions/a%20b%2Fc/api/offer"),
            ),
            // Explicit URLs win over sessionId, in the JS order.
            (
                json!({"webrtcUrl": "http://o/api/offer", "sessionId": "s"}),
                Some(start()),
                Some("http://o/api/offer"),
            ),
            (json!({"webrtc_url": "http://o/a"}), None, Some("http://o/a")),
            (json!({"connectionUrl": "http://o/c"}), None, Some("http://o/c")),
            (json!({"connection_url": "http://o/c"}), None, Some("http://o/c")),
            (
                json!({"webrtcUrl": "http://o/w", "connectionUrl": "http://o/c"}),
                None,
                Some("http://o/w"),
            ),
            (
                json!({"webrtcRequestParams": {"endpoint": "http://o/r"}, "webrtcUrl": "http://o/w"}),
                None,
                Some("http://o/r"),
            ),
            (
                json!({"webrtc_request_params": {"endpoint": "http://o/r"}}),
                None,
                Some("http://o/r"),
            ),
            (json!({"webrtcRequestParams": "http://o/s"}), None, Some("http://o/s")),
            // Template from the parameters.
            (
                json!({"sessionId": "z", "offerUrlTemplate": "http://t/x/:sessionId/offer"}),
                Some(start()),
                Some("http://t/x/z/offer"),
            ),
            (
                json!({"session_id": "z", "offer_url_template": "http://t/{sessionId}"}),
                None,
                Some("http://t/z"),
            ),
            // Unknown keys are ignored; null and empty strings count as absent.
            (
                json!({"sessionId": "s", "fileUploadUrl": "/files", "weird": [1]}),
                Some(start()),
                Some("http://bot.example:8080/sessions/s/api/offer"),
            ),
            (
                json!({"webrtcUrl": null, "connectionUrl": "", "sessionId": "s"}),
                Some(start()),
                Some("http://bot.example:8080/sessions/s/api/offer"),
            ),
            // Errors: nothing to go on; sessionId without a start request; no /start in the path.
            (json!({}), Some(start()), None),
            (json!({"sessionId": "s"}), None, None),
            (json!({"sessionId": "s"}), Some(ApiRequest::new("http://h/begin")), None),
            (json!({"sessionId": "s"}), Some(ApiRequest::new("not a url")), None),
        ];
        for (input, start, expected) in cases {
            let got = resolve(input.clone(), start).map(|r| r.endpoint);
            match expected {
                Some(url) => assert_eq!(got.as_deref().ok(), Some(url), "input {input}: {got:?}"),
                None => assert!(
                    matches!(got, Err(TransportError::InvalidParams(_))),
                    "input {input} should fail, got {got:?}"
                ),
            }
        }
    }

    #[test]
    fn default_template_used_when_params_have_none() {
        let p = SmallWebRtcParams::from_connection_params(&params(json!({"sessionId": "q"}), None))
            .unwrap();
        assert_eq!(
            p.resolve(Some("http://t/:sessionId/offer")).unwrap().endpoint,
            "http://t/q/offer"
        );
    }

    #[test]
    fn start_headers_reused_for_derived_and_same_origin_urls_only() {
        let derived = resolve(json!({"sessionId": "s"}), Some(start())).unwrap();
        assert_eq!(derived.headers.get("Authorization").map(String::as_str), Some("Bearer key"));

        let same =
            resolve(json!({"webrtcUrl": "http://bot.example:8080/api/offer"}), Some(start()))
                .unwrap();
        assert_eq!(same.headers.get("Authorization").map(String::as_str), Some("Bearer key"));

        let other =
            resolve(json!({"webrtcUrl": "http://elsewhere/api/offer"}), Some(start())).unwrap();
        assert!(other.headers.is_empty(), "start headers must not leak to another origin");

        // Explicit request headers override the start ones (case-insensitively).
        let own = resolve(
            json!({"webrtcRequestParams": {
                "endpoint": "http://bot.example:8080/api/offer",
                "headers": {"authorization": "Bearer other", "X-A": "1"},
                "requestData": {"k": 1},
                "timeout": 2500
            }}),
            Some(start()),
        )
        .unwrap();
        assert_eq!(own.headers.len(), 2);
        assert_eq!(own.headers["authorization"], "Bearer other");
        assert_eq!(own.request_data, Some(json!({"k": 1})));
        assert_eq!(own.timeout, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn ice_servers_accept_string_or_list_and_both_spellings() {
        let p = SmallWebRtcParams::from_connection_params(&params(
            json!({"iceConfig": {"iceServers": [
                {"urls": "stun:a:3478"},
                {"urls": ["turn:b:3478", "turns:b:5349"], "username": "u", "credential": "c"},
                {"url": "stun:legacy"}
            ]}}),
            None,
        ))
        .unwrap();
        let servers = p.ice_servers.unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[0].urls, ["stun:a:3478"]);
        assert_eq!(servers[1].urls, ["turn:b:3478", "turns:b:5349"]);
        assert_eq!(servers[1].username.as_deref(), Some("u"));
        assert_eq!(servers[1].credential.as_deref(), Some("c"));
        assert_eq!(servers[2].urls, ["stun:legacy"]);

        let p = SmallWebRtcParams::from_connection_params(&params(
            json!({"ice_config": {"ice_servers": [{"urls": "stun:x"}]}}),
            None,
        ))
        .unwrap();
        assert_eq!(p.ice_servers.unwrap()[0].urls, ["stun:x"]);

        // An iceConfig without a list keeps the transport's servers.
        let p = SmallWebRtcParams::from_connection_params(&params(json!({"iceConfig": {}}), None))
            .unwrap();
        assert!(p.ice_servers.is_none());
    }

    #[test]
    fn bad_types_are_typed_errors_not_panics() {
        let bad = [
            json!({"iceConfig": 3}),
            json!({"iceConfig": {"iceServers": {"urls": "x"}}}),
            json!({"iceConfig": {"iceServers": [7]}}),
            json!({"iceConfig": {"iceServers": [{"urls": 7}]}}),
            json!({"iceConfig": {"iceServers": [{"urls": [1]}]}}),
            json!({"iceConfig": {"iceServers": [{}]}}),
            json!({"iceConfig": {"iceServers": [{"urls": "x", "username": 5}]}}),
            json!({"webrtcUrl": 5}),
            json!({"sessionId": true}),
            json!({"webrtcRequestParams": 1}),
            json!({"webrtcRequestParams": {"headers": {}}}),
        ];
        for input in bad {
            let got = SmallWebRtcParams::from_connection_params(&params(input.clone(), None));
            assert!(matches!(got, Err(TransportError::InvalidParams(_))), "{input}: {got:?}");
        }
    }

    #[test]
    fn typed_params_round_trip_through_connection_params() {
        let typed = SmallWebRtcParams {
            webrtc_request: Some(ApiRequest::new("http://o/r").request_data(json!({"a": 1}))),
            session_id: Some("s".into()),
            offer_url_template: Some("http://t/:sessionId".into()),
            ice_servers: Some(vec![IceServer::new("turn:t").credentials("u", "c")]),
            start_request: Some(start()),
            ..Default::default()
        };
        let generic: ConnectionParams = typed.clone().into();
        let back = SmallWebRtcParams::from_connection_params(&generic).unwrap();
        assert_eq!(back, typed);
    }
}
