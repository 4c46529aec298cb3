//! The bot's HTTP surface, shaped like pipecat-ai 1.14's development runner: `POST /start`,
//! `GET /status`, `WS /ws-client[/{token}]`, `POST/PATCH /api/offer` and
//! `/sessions/{id}/api/offer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::BotTransport;
use crate::bot::BotShared;
use crate::recorder::{BotEventKind, StartRequest};
use crate::script::TokenRejection;
use crate::util::lock;

/// How long a WebSocket token from `/start` stays valid (the runner's 300 s).
const TOKEN_TTL: Duration = Duration::from_secs(300);
/// The largest WebSocket message the bot accepts from a client.
const MAX_WS_MESSAGE: usize = 64 * 1024 * 1024;

/// Every transport name the runner knows; the ones the testkit does not serve are "disabled".
const KNOWN_TRANSPORTS: &[&str] =
    &["webrtc", "daily", "livekit", "twilio", "telnyx", "plivo", "exotel", "websocket", "moq"];

/// The bot's router.
pub(crate) fn router(bot: Arc<BotShared>) -> Router {
    let mut router = Router::new()
        .route("/start", post(start))
        .route("/status", get(status))
        .route("/ws-client", get(ws_client))
        .route("/ws-client/{token}", get(ws_client_with_token));
    #[cfg(feature = "webrtc")]
    if bot.server.transports.contains(&BotTransport::WebRtc) {
        router = router
            .route("/api/offer", post(webrtc_http::offer).patch(webrtc_http::patch))
            .route("/sessions/{session_id}/{*path}", any(webrtc_http::sessions_proxy));
    }
    #[cfg(not(feature = "webrtc"))]
    {
        router =
            router.route("/sessions/{session_id}/{*path}", any(|| async { StatusCode::NOT_FOUND }));
    }
    router.with_state(bot)
}

fn detail(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": detail.into() }))).into_response()
}

async fn status(State(bot): State<Arc<BotShared>>) -> Response {
    let transports: Vec<&str> = bot.server.transports.iter().map(|t| t.as_str()).collect();
    axum::Json(json!({"status": "ready", "transports": transports})).into_response()
}

async fn start(State(bot): State<Arc<BotShared>>, headers: HeaderMap, body: Bytes) -> Response {
    let config = &bot.server;
    if let Some(delay) = config.start_delay {
        tokio::time::sleep(delay).await;
    }
    // Like the runner: a body that is not a JSON object counts as `{}`.
    let body: Value = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let header_list: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let only = match config.transports.as_slice() {
        [only] => Some(*only),
        _ => None,
    };
    let transport = match body.get("transport") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Null) | None => only.unwrap_or(BotTransport::WebRtc).as_str().to_owned(),
        Some(other) => other.to_string(),
    };
    let mut record = StartRequest {
        at: Duration::ZERO,
        body: body.clone(),
        headers: header_list,
        transport: transport.clone(),
        session_id: None,
    };

    let answer = start_answer(&bot, &headers, &body, &transport, only);
    if let Ok((_, Some(id))) = &answer {
        record.session_id = Some(id.clone());
    }
    bot.recorder.start_request(record);
    match answer {
        Ok((value, _)) => axum::Json(value).into_response(),
        Err(response) => *response,
    }
}

/// The `/start` answer and the session id it carries, or an error response.
fn start_answer(
    bot: &Arc<BotShared>,
    headers: &HeaderMap,
    body: &Value,
    transport: &str,
    only: Option<BotTransport>,
) -> Result<(Value, Option<String>), Box<Response>> {
    let config = &bot.server;
    if let Some((status, body)) = &config.start_failure {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(Box::new((status, axum::Json(body.clone())).into_response()));
    }
    for (name, value) in &config.required_headers {
        let present = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if present != Some(value.as_str()) {
            return Err(Box::new(detail(StatusCode::UNAUTHORIZED, "Unauthorized")));
        }
    }
    if let Some(only) = only
        && transport != only.as_str()
    {
        return Err(Box::new(detail(
            StatusCode::BAD_REQUEST,
            format!(
                "Transport '{transport}' is not allowed. Server is configured for '{0}' only (-t {0}).",
                only.as_str()
            ),
        )));
    }
    let enabled = config.transports.iter().find(|t| t.as_str() == transport).copied();
    let Some(enabled) = enabled else {
        return Err(Box::new(if KNOWN_TRANSPORTS.contains(&transport) {
            detail(
                StatusCode::BAD_REQUEST,
                format!(
                    "Transport '{transport}' is disabled in this runner environment. Check the startup banner for enabled transports."
                ),
            )
        } else {
            detail(StatusCode::BAD_REQUEST, format!("Unknown transport '{transport}'."))
        }));
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    match enabled {
        BotTransport::WebRtc => {
            let stored = body.get("body").cloned().unwrap_or_else(|| json!({}));
            lock(&bot.start_sessions).insert(session_id.clone(), stored);
            let mut answer = json!({ "sessionId": session_id });
            if let Some(servers) = &config.ice_servers {
                answer["iceConfig"] = json!({ "iceServers": servers });
            } else if body.get("enableDefaultIceServers").is_some_and(truthy) {
                answer["iceConfig"] =
                    json!({ "iceServers": [{ "urls": ["stun:stun.l.google.com:19302"] }] });
            }
            Ok((answer, Some(session_id)))
        }
        BotTransport::WebSocket => {
            let token = config.token_auth.then(|| {
                let token = uuid::Uuid::new_v4().simple().to_string();
                lock(&bot.tokens).insert(token.clone(), Instant::now() + TOKEN_TTL);
                token
            });
            let answer = json!({ "wsUrl": bot.ws_url(), "sessionId": session_id, "token": token });
            Ok((answer, Some(session_id)))
        }
    }
}

/// Python truthiness of a JSON value.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

async fn ws_client(State(bot): State<Arc<BotShared>>, request: Request) -> Response {
    upgrade(bot, None, request)
}

async fn ws_client_with_token(
    State(bot): State<Arc<BotShared>>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    upgrade(bot, Some(token), request)
}

/// The token a client presented: path segment, `Authorization: Bearer`, or `?token=`.
fn presented_token(path_token: Option<String>, request: &Request) -> Option<String> {
    if path_token.is_some() {
        return path_token;
    }
    let auth = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(auth) = auth
        && auth.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
    {
        return auth.get(7..).map(|token| token.trim().to_owned());
    }
    request.uri().query().and_then(|query| {
        query.split('&').find_map(|pair| pair.strip_prefix("token=").map(str::to_owned))
    })
}

/// Checks and consumes a one-time token.
fn consume_token(bot: &BotShared, token: Option<&str>) -> bool {
    let Some(token) = token else { return false };
    let mut tokens = lock(&bot.tokens);
    let now = Instant::now();
    tokens.retain(|_, expiry| *expiry > now);
    tokens.remove(token).is_some()
}

fn header_has(request: &Request, name: header::HeaderName, token: &str) -> bool {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

/// Upgrades `/ws-client` to a WebSocket and runs a bot session on it.
fn upgrade(bot: Arc<BotShared>, path_token: Option<String>, mut request: Request) -> Response {
    let key = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok =
        request.headers().get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v.as_bytes() == b"13");
    let (Some(key), true, true, true) = (
        key,
        version_ok,
        header_has(&request, header::UPGRADE, "websocket"),
        header_has(&request, header::CONNECTION, "upgrade"),
    ) else {
        return (StatusCode::BAD_REQUEST, "Expected a WebSocket upgrade request").into_response();
    };
    let authorized = !bot.server.token_auth || {
        let token = presented_token(path_token, &request);
        consume_token(&bot, token.as_deref())
    };
    if !authorized {
        bot.recorder.event(None, BotEventKind::TokenRejected);
        if bot.server.token_rejection == TokenRejection::Http403 {
            return (StatusCode::FORBIDDEN, "Forbidden").into_response();
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let task_bot = Arc::clone(&bot);
    bot.tasks.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        if !authorized {
            let frame = CloseFrame { code: CloseCode::from(4003), reason: "".into() };
            let _ = ws.close(Some(frame)).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                use futures::StreamExt;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            return;
        }
        crate::websocket::run_session(ws, task_bot).await;
    });
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// A FastAPI-style 422 for a body that does not validate.
fn unprocessable(errors: Vec<Value>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({ "detail": errors }))).into_response()
}

fn field_error(kind: &str, field: &str, msg: &str) -> Value {
    json!({ "type": kind, "loc": ["body", field], "msg": msg })
}

/// What every offer body must hold.
#[cfg_attr(not(feature = "webrtc"), allow(dead_code))]
pub(crate) struct OfferBody {
    pub(crate) sdp: String,
    pub(crate) sdp_type: String,
    pub(crate) pc_id: Option<String>,
    pub(crate) restart_pc: bool,
    pub(crate) request_data: Option<Value>,
    pub(crate) request_data_camel: Option<Value>,
}

/// Parses an offer body; `Err` holds the validation errors.
#[cfg_attr(not(feature = "webrtc"), allow(dead_code))]
pub(crate) fn parse_offer(body: &[u8]) -> Result<OfferBody, Vec<Value>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![json!({"type": "json_invalid", "loc": ["body"], "msg": e.to_string()})]
    })?;
    let Some(object) = value.as_object() else {
        return Err(vec![
            json!({"type": "dataclass_type", "loc": ["body"], "msg": "Input should be an object"}),
        ]);
    };
    let mut errors = Vec::new();
    let mut text = |name: &str| match object.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        None => {
            errors.push(field_error("missing", name, "Field required"));
            None
        }
        Some(_) => {
            errors.push(field_error("string_type", name, "Input should be a valid string"));
            None
        }
    };
    let sdp = text("sdp");
    let sdp_type = text("type");
    let pc_id = match object.get("pc_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(field_error("string_type", "pc_id", "Input should be a valid string"));
            None
        }
    };
    let restart_pc = match object.get("restart_pc") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(field_error("bool_type", "restart_pc", "Input should be a valid boolean"));
            false
        }
    };
    match (sdp, sdp_type) {
        (Some(sdp), Some(sdp_type)) if errors.is_empty() => Ok(OfferBody {
            sdp,
            sdp_type,
            pc_id,
            restart_pc,
            request_data: object.get("request_data").cloned(),
            request_data_camel: object.get("requestData").cloned(),
        }),
        _ => Err(errors),
    }
}

/// One trickled candidate.
#[cfg_attr(not(feature = "webrtc"), allow(dead_code))]
pub(crate) struct Candidate {
    pub(crate) candidate: String,
    pub(crate) sdp_mid: String,
    pub(crate) sdp_mline_index: u16,
}

/// Parses a PATCH body. The sessions proxy (`proxy`) builds it by hand, as the runner does:
/// `candidates` may be absent, and a candidate with an unknown key is an error.
#[cfg_attr(not(feature = "webrtc"), allow(dead_code))]
pub(crate) fn parse_patch(
    body: &[u8],
    proxy: bool,
) -> Result<(String, Vec<Candidate>), Vec<Value>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        vec![json!({"type": "json_invalid", "loc": ["body"], "msg": e.to_string()})]
    })?;
    let object = value.as_object().ok_or_else(|| {
        vec![json!({"type": "dataclass_type", "loc": ["body"], "msg": "Input should be an object"})]
    })?;
    let pc_id = match object.get("pc_id") {
        Some(Value::String(s)) => s.clone(),
        None => return Err(vec![field_error("missing", "pc_id", "Field required")]),
        Some(_) => {
            return Err(vec![field_error(
                "string_type",
                "pc_id",
                "Input should be a valid string",
            )]);
        }
    };
    let list = match object.get("candidates") {
        Some(Value::Array(list)) => list.as_slice(),
        None if proxy => &[],
        None => return Err(vec![field_error("missing", "candidates", "Field required")]),
        Some(_) => {
            return Err(vec![field_error(
                "list_type",
                "candidates",
                "Input should be a valid list",
            )]);
        }
    };
    let mut candidates = Vec::with_capacity(list.len());
    for item in list {
        let object = item.as_object();
        let get = |k: &str| object.and_then(|o| o.get(k));
        let fields_ok = object.is_some_and(|o| {
            o.keys().all(|k| matches!(k.as_str(), "candidate" | "sdp_mid" | "sdp_mline_index"))
        });
        match (
            get("candidate").and_then(Value::as_str),
            get("sdp_mid").and_then(Value::as_str),
            get("sdp_mline_index").and_then(Value::as_u64).and_then(|i| u16::try_from(i).ok()),
        ) {
            (Some(candidate), Some(sdp_mid), Some(index)) if fields_ok || !proxy => candidates
                .push(Candidate {
                    candidate: candidate.to_owned(),
                    sdp_mid: sdp_mid.to_owned(),
                    sdp_mline_index: index,
                }),
            _ => {
                return Err(vec![json!({
                    "type": "dataclass_type",
                    "loc": ["body", "candidates"],
                    "msg": "each candidate needs candidate, sdp_mid and sdp_mline_index",
                })]);
            }
        }
    }
    Ok((pc_id, candidates))
}

#[cfg(feature = "webrtc")]
mod webrtc_http {
    //! The SmallWebRTC signalling routes.

    use super::*;
    use crate::webrtc::{OfferError, OfferRequest};

    fn answer_json(answer: crate::webrtc::Answer) -> Response {
        axum::Json(json!({ "sdp": answer.sdp, "type": "answer", "pc_id": answer.pc_id }))
            .into_response()
    }

    pub(super) async fn offer(State(bot): State<Arc<BotShared>>, body: Bytes) -> Response {
        let offer = match parse_offer(&body) {
            Ok(offer) => offer,
            Err(errors) => return unprocessable(errors),
        };
        // The direct route is a dataclass: only snake_case `request_data` is honoured.
        let request = OfferRequest {
            sdp: offer.sdp,
            sdp_type: offer.sdp_type,
            pc_id: offer.pc_id,
            restart_pc: offer.restart_pc,
            request_data: offer.request_data,
            start_session: None,
        };
        match crate::webrtc::handle_offer(&bot, request).await {
            Ok(answer) => answer_json(answer),
            Err(OfferError::Internal(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
            }
        }
    }

    pub(super) async fn patch(State(bot): State<Arc<BotShared>>, body: Bytes) -> Response {
        let (pc_id, candidates) = match parse_patch(&body, false) {
            Ok(parsed) => parsed,
            Err(errors) => return unprocessable(errors),
        };
        if crate::webrtc::handle_candidates(&bot, &pc_id, candidates).await {
            axum::Json(json!({"status": "success"})).into_response()
        } else {
            detail(StatusCode::NOT_FOUND, "Peer connection not found")
        }
    }

    fn invalid_request() -> Response {
        (StatusCode::BAD_REQUEST, "Invalid WebRTC request").into_response()
    }

    /// `/sessions/{id}/...`: a mimic of Pipecat Cloud's proxy, like the runner's.
    pub(super) async fn sessions_proxy(
        State(bot): State<Arc<BotShared>>,
        Path((session_id, path)): Path<(String, String)>,
        method: Method,
        body: Bytes,
    ) -> Response {
        let Some(stored) = lock(&bot.start_sessions).get(&session_id).cloned() else {
            return (StatusCode::NOT_FOUND, "Invalid or not-yet-ready session_id").into_response();
        };
        if !path.ends_with("api/offer") {
            return StatusCode::OK.into_response();
        }
        if method == Method::POST {
            let Ok(offer) = parse_offer(&body) else { return invalid_request() };
            // `request_data or requestData or the /start body`, with Python truthiness.
            let request_data = [offer.request_data, offer.request_data_camel]
                .into_iter()
                .flatten()
                .find(truthy)
                .unwrap_or(stored);
            let request = OfferRequest {
                sdp: offer.sdp,
                sdp_type: offer.sdp_type,
                pc_id: offer.pc_id,
                restart_pc: offer.restart_pc,
                request_data: Some(request_data),
                start_session: Some(session_id),
            };
            match crate::webrtc::handle_offer(&bot, request).await {
                Ok(answer) => answer_json(answer),
                // The runner's proxy turns every failure into this 400.
                Err(_) => invalid_request(),
            }
        } else if method == Method::PATCH {
            let Ok((pc_id, candidates)) = parse_patch(&body, true) else {
                return invalid_request();
            };
            if crate::webrtc::handle_candidates(&bot, &pc_id, candidates).await {
                axum::Json(json!({"status": "success"})).into_response()
            } else {
                // The runner's proxy catches the handler's 404 and answers this instead.
                invalid_request()
            }
        } else {
            StatusCode::OK.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_bodies() {
        let ok = parse_offer(
            br#"{"sdp":"v=0","type":"offer","pc_id":null,"restart_pc":null,"requestData":{"a":1}}"#,
        )
        .expect("valid");
        assert_eq!(ok.sdp, "v=0");
        assert!(ok.pc_id.is_none());
        assert!(!ok.restart_pc);
        assert!(ok.request_data.is_none());
        assert_eq!(ok.request_data_camel, Some(json!({"a": 1})));
        assert_eq!(parse_offer(br#"{"type":"offer"}"#).err().map(|e| e.len()), Some(1));
        assert_eq!(parse_offer(br#"{}"#).err().map(|e| e.len()), Some(2));
        assert!(parse_offer(b"not json").is_err());
        assert!(parse_offer(b"[1,2]").is_err());
        assert!(parse_offer(br#"{"sdp":1,"type":"offer"}"#).is_err());
        assert!(parse_offer(br#"{"sdp":"x","type":"offer","restart_pc":"yes"}"#).is_err());
    }

    #[test]
    fn patch_bodies() {
        let (pc, c) = parse_patch(
            br#"{"pc_id":"p","candidates":[{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdp_mid":"0","sdp_mline_index":0}]}"#,
            false,
        )
        .expect("valid");
        assert_eq!(pc, "p");
        assert_eq!(c.len(), 1);
        assert!(parse_patch(br#"{"pc_id":"p"}"#, false).is_err());
        assert!(parse_patch(br#"{"pc_id":"p"}"#, true).is_ok());
        assert!(parse_patch(br#"{"candidates":[]}"#, true).is_err());
        assert!(parse_patch(br#"{"pc_id":"p","candidates":[{"candidate":"x"}]}"#, false).is_err());
        assert!(parse_patch(br#"{"pc_id":"p","candidates":[{"candidate":"","sdp_mid":"0","sdp_mline_index":0,"x":1}]}"#, true).is_err());
    }

    #[test]
    fn python_truthiness() {
        for falsy in [json!(null), json!(false), json!(0), json!(""), json!([]), json!({})] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for yes in [json!(true), json!(1), json!("a"), json!([0]), json!({"a": null})] {
            assert!(truthy(&yes), "{yes}");
        }
    }
}
