//! The bot's HTTP surface, shaped like pipecat-ai 1.14's development runner: `POST /start`,
//! `GET /status`, `WS /ws-client[/{token}]`, `POST/PATCH /api/offer` and
//! `/sessions/{id}/api/offer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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

#[cfg(feature = "webrtc")]
mod signalling;
#[cfg(feature = "webrtc")]
pub(crate) use signalling::Candidate;

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
            .route("/api/offer", post(signalling::offer).patch(signalling::patch))
            .route("/sessions/{session_id}/{*path}", any(signalling::sessions_proxy));
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
    let header_list = header_list(&headers);
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

/// Request headers as recorded: names lower-cased, values that are not UTF-8 left out.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
