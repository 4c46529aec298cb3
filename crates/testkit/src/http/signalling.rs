//! The SmallWebRTC signalling routes (`/api/offer` and the sessions proxy) and the bodies they
//! accept, validated the way the runner's dataclasses are.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{detail, header_list, truthy};
use crate::bot::BotShared;
use crate::recorder::SignallingRequest;
use crate::util::lock;
use crate::webrtc::{OfferError, OfferRequest};

fn answer_json(answer: crate::webrtc::Answer) -> Response {
    axum::Json(json!({ "sdp": answer.sdp, "type": "answer", "pc_id": answer.pc_id }))
        .into_response()
}

/// The canned answer of [`crate::TestBotBuilder::offer_failure`], if one is set.
fn offer_failure(bot: &BotShared) -> Option<Response> {
    let (status, body) = lock(&bot.offer_failure).clone()?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some((status, axum::Json(body)).into_response())
}

/// Records an answered signalling request, with the session of the `pc_id` it was answered
/// with (`answered`) or else the one it named.
fn record(
    bot: &BotShared,
    patch: bool,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    answered: Option<&str>,
    response: &Response,
) {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let named = body.get("pc_id").and_then(Value::as_str);
    let session_id = answered.or(named).and_then(|pc_id| bot.webrtc.session_of(pc_id));
    let request = SignallingRequest {
        session_id,
        at: Duration::ZERO,
        path: uri.path().to_owned(),
        body,
        headers: header_list(headers),
        status: response.status().as_u16(),
    };
    bot.recorder.signalling(patch, request);
}

pub(super) async fn offer(
    State(bot): State<Arc<BotShared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, pc_id) = direct_offer(&bot, &body).await;
    record(&bot, false, &uri, &headers, &body, pc_id.as_deref(), &response);
    response
}

/// `POST /api/offer`: the response, and the `pc_id` it answered with.
async fn direct_offer(bot: &Arc<BotShared>, body: &[u8]) -> (Response, Option<String>) {
    if let Some(failure) = offer_failure(bot) {
        return (failure, None);
    }
    let offer = match parse_offer(body) {
        Ok(offer) => offer,
        Err(errors) => return (unprocessable(errors), None),
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
    match crate::webrtc::handle_offer(bot, request).await {
        Ok(answer) => {
            let pc_id = answer.pc_id.clone();
            (answer_json(answer), Some(pc_id))
        }
        Err(OfferError::Internal(_)) => {
            ((StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response(), None)
        }
    }
}

pub(super) async fn patch(
    State(bot): State<Arc<BotShared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = match parse_patch(&body, false) {
        Ok((pc_id, candidates)) => {
            if crate::webrtc::handle_candidates(&bot, &pc_id, candidates).await {
                axum::Json(json!({"status": "success"})).into_response()
            } else {
                detail(StatusCode::NOT_FOUND, "Peer connection not found")
            }
        }
        Err(errors) => unprocessable(errors),
    };
    record(&bot, true, &uri, &headers, &body, None, &response);
    response
}

fn invalid_request() -> Response {
    (StatusCode::BAD_REQUEST, "Invalid WebRTC request").into_response()
}

/// `/sessions/{id}/...`: a mimic of Pipecat Cloud's proxy, like the runner's. Offers and
/// PATCHes on `.../api/offer` are recorded.
pub(super) async fn sessions_proxy(
    State(bot): State<Arc<BotShared>>,
    Path((session_id, path)): Path<(String, String)>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, pc_id) = proxy(&bot, &session_id, &path, &method, &body).await;
    let signalling = path.ends_with("api/offer");
    if signalling && (method == Method::POST || method == Method::PATCH) {
        let patch = method == Method::PATCH;
        record(&bot, patch, &uri, &headers, &body, pc_id.as_deref(), &response);
    }
    response
}

/// The proxy's response, and the `pc_id` an offer was answered with.
async fn proxy(
    bot: &Arc<BotShared>,
    session_id: &str,
    path: &str,
    method: &Method,
    body: &[u8],
) -> (Response, Option<String>) {
    let Some(stored) = lock(&bot.start_sessions).get(session_id).cloned() else {
        return (
            (StatusCode::NOT_FOUND, "Invalid or not-yet-ready session_id").into_response(),
            None,
        );
    };
    if !path.ends_with("api/offer") {
        return (StatusCode::OK.into_response(), None);
    }
    if *method == Method::POST {
        if let Some(failure) = offer_failure(bot) {
            return (failure, None);
        }
        let Ok(offer) = parse_offer(body) else { return (invalid_request(), None) };
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
            start_session: Some(session_id.to_owned()),
        };
        match crate::webrtc::handle_offer(bot, request).await {
            Ok(answer) => {
                let pc_id = answer.pc_id.clone();
                (answer_json(answer), Some(pc_id))
            }
            // The runner's proxy turns every failure into this 400.
            Err(_) => (invalid_request(), None),
        }
    } else if *method == Method::PATCH {
        let Ok((pc_id, candidates)) = parse_patch(body, true) else {
            return (invalid_request(), None);
        };
        if crate::webrtc::handle_candidates(bot, &pc_id, candidates).await {
            (axum::Json(json!({"status": "success"})).into_response(), None)
        } else {
            // The runner's proxy catches the handler's 404 and answers this instead.
            (invalid_request(), None)
        }
    } else {
        (StatusCode::OK.into_response(), None)
    }
}

/// A FastAPI-style 422 for a body that does not validate.
fn unprocessable(errors: Vec<Value>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({ "detail": errors }))).into_response()
}

fn field_error(kind: &str, field: &str, msg: &str) -> Value {
    json!({ "type": kind, "loc": ["body", field], "msg": msg })
}

/// What every offer body must hold.
struct OfferBody {
    sdp: String,
    sdp_type: String,
    pc_id: Option<String>,
    restart_pc: bool,
    request_data: Option<Value>,
    request_data_camel: Option<Value>,
}

/// Parses an offer body; `Err` holds the validation errors.
fn parse_offer(body: &[u8]) -> Result<OfferBody, Vec<Value>> {
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
pub(crate) struct Candidate {
    pub(crate) candidate: String,
    pub(crate) sdp_mid: String,
    pub(crate) sdp_mline_index: u16,
}

/// Parses a PATCH body. The sessions proxy (`proxy`) builds it by hand, as the runner does:
/// `candidates` may be absent, and a candidate with an unknown key is an error.
fn parse_patch(body: &[u8], proxy: bool) -> Result<(String, Vec<Candidate>), Vec<Value>> {
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
}
