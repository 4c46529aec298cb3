//! The REST helper against a local HTTP server on 127.0.0.1: request shapes, the auth header,
//! error mapping, and self-signed tokens. No request leaves the machine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use pipecat_daily::rest::{
    CreateRoom, DailyRestClient, MeetingTokenProperties, RestError, RoomPrivacy, RoomProperties,
    self_signed_token,
};
use serde_json::{Value, json};
use sha2::Sha256;

/// One request the mock server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Mock {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn record(&self, method: Method, path: String, headers: &HeaderMap, body: &Bytes) {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        self.seen.lock().unwrap().push(Seen {
            method,
            path,
            auth: text(header::AUTHORIZATION),
            content_type: text(header::CONTENT_TYPE),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("a request")
    }
}

fn room(name: &str) -> Value {
    json!({
        "id": "5e3cf703-5547-47d6-a371-37b1f0b4427f", "name": name, "api_created": true,
        "privacy": "public", "url": format!("https://acme.daily.co/{name}"),
        "created_at": "2026-11-22T03:00:00.000Z", "config": {"exp": 1_800_000_000}
    })
}

/// Canned answers: special room names produce errors.
fn answer_for(name: &str) -> Response {
    match name {
        "missing" => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not-found", "info": "room missing not found"})),
        )
            .into_response(),
        "forbidden" => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "authentication-error", "info": "bad API key"})),
        )
            .into_response(),
        "busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "7")],
            axum::Json(json!({"error": "rate-limit-error", "info": "slow down"})),
        )
            .into_response(),
        "broken" => (StatusCode::BAD_GATEWAY, "upstream failure").into_response(),
        "invalid" => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid-request-error", "info": "name is invalid"})),
        )
            .into_response(),
        "garbage" => (StatusCode::OK, "not json").into_response(),
        other => axum::Json(room(other)).into_response(),
    }
}

async fn serve() -> (String, Mock) {
    let mock = Mock::default();
    let app = Router::new()
        .route(
            "/v1/",
            get(|State(m): State<Mock>, headers: HeaderMap, body: Bytes| async move {
                m.record(Method::GET, "/v1/".into(), &headers, &body);
                axum::Json(json!({"domain_name": "acme", "domain_id": "d-123", "config": {"max_app_message_size": 4096}}))
            }),
        )
        .route(
            "/v1/rooms",
            post(|State(m): State<Mock>, headers: HeaderMap, body: Bytes| async move {
                m.record(Method::POST, "/v1/rooms".into(), &headers, &body);
                let name = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["name"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "generated".into());
                answer_for(&name)
            }),
        )
        .route(
            "/v1/rooms/{name}",
            get(|State(m): State<Mock>, Path(name): Path<String>, headers: HeaderMap, body: Bytes| async move {
                m.record(Method::GET, format!("/v1/rooms/{name}"), &headers, &body);
                answer_for(&name)
            })
            .delete(|State(m): State<Mock>, Path(name): Path<String>, headers: HeaderMap, body: Bytes| async move {
                m.record(Method::DELETE, format!("/v1/rooms/{name}"), &headers, &body);
                match name.as_str() {
                    "missing" | "forbidden" | "broken" => answer_for(&name),
                    _ => axum::Json(json!({"deleted": true, "name": name})).into_response(),
                }
            }),
        )
        .route(
            "/v1/meeting-tokens",
            post(|State(m): State<Mock>, headers: HeaderMap, body: Bytes| async move {
                m.record(Method::POST, "/v1/meeting-tokens".into(), &headers, &body);
                let room = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["properties"]["room_name"].as_str().map(str::to_owned));
                match room.as_deref() {
                    Some("no-token") => axum::Json(json!({"other": 1})).into_response(),
                    Some(_) => axum::Json(json!({"token": "eyJ.mock.token"})).into_response(),
                    None => answer_for("invalid"),
                }
            }),
        )
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{address}/v1"), mock)
}

fn client(base: &str) -> DailyRestClient {
    DailyRestClient::new("test-api-key")
        .unwrap()
        .with_base_url(base)
        .unwrap()
        .with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn create_room_request_shape_and_answer() {
    let (base, mock) = serve().await;
    let request = CreateRoom {
        name: Some("pipecat-1a2b3c4d".into()),
        privacy: Some(RoomPrivacy::Public),
        properties: RoomProperties {
            exp: Some(1_800_000_000),
            eject_at_room_exp: Some(true),
            start_video_off: Some(true),
            extra: serde_json::from_value(json!({"enable_people_ui": false})).unwrap(),
            ..RoomProperties::default()
        },
    };
    let room = client(&base).create_room(&request).await.unwrap();
    assert_eq!(room.name, "pipecat-1a2b3c4d");
    assert_eq!(room.url, "https://acme.daily.co/pipecat-1a2b3c4d");
    assert!(room.api_created);
    assert_eq!(room.config["exp"], 1_800_000_000);

    let seen = mock.last();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path, "/v1/rooms");
    assert_eq!(seen.auth.as_deref(), Some("Bearer test-api-key"));
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        seen.body,
        json!({
            "name": "pipecat-1a2b3c4d", "privacy": "public",
            "properties": {"exp": 1_800_000_000, "eject_at_room_exp": true, "start_video_off": true, "enable_people_ui": false}
        })
    );

    // Daily names the room when no name is given; unset fields are not sent.
    let room = client(&base).create_room(&CreateRoom::default()).await.unwrap();
    assert_eq!(room.name, "generated");
    assert_eq!(mock.last().body, json!({"properties": {}}));
}

#[tokio::test]
async fn get_and_delete_rooms() {
    let (base, mock) = serve().await;
    let c = client(&base);
    let room = c.get_room("standup").await.unwrap();
    assert_eq!(room.name, "standup");
    let seen = mock.last();
    assert_eq!(
        (seen.method, seen.path.as_str(), seen.body),
        (Method::GET, "/v1/rooms/standup", Value::Null)
    );
    assert_eq!(seen.auth.as_deref(), Some("Bearer test-api-key"));

    let room = c.get_room_from_url("https://acme.daily.co/from-url").await.unwrap();
    assert_eq!(room.name, "from-url");
    assert!(matches!(
        c.get_room_from_url("https://acme.daily.co/").await,
        Err(RestError::InvalidUrl { .. })
    ));

    assert!(c.delete_room("standup").await.unwrap());
    assert_eq!(mock.last().method, Method::DELETE);
    assert_eq!(mock.last().path, "/v1/rooms/standup");
    // 404 on delete is "nothing to delete", not an error.
    assert!(!c.delete_room("missing").await.unwrap());
    assert!(matches!(
        c.delete_room("forbidden").await,
        Err(RestError::Unauthorized { status: 401, .. })
    ));
}

#[tokio::test]
async fn meeting_tokens_and_domain_config() {
    let (base, mock) = serve().await;
    let c = client(&base);
    let properties = MeetingTokenProperties {
        room_name: Some("standup".into()),
        is_owner: Some(true),
        exp: Some(1_800_000_000),
        user_name: Some("Bot".into()),
        ..MeetingTokenProperties::default()
    };
    assert_eq!(c.create_meeting_token(&properties).await.unwrap(), "eyJ.mock.token");
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/meeting-tokens");
    assert_eq!(
        seen.body,
        json!({"properties": {"room_name": "standup", "is_owner": true, "exp": 1_800_000_000, "user_name": "Bot"}})
    );
    let no_token = MeetingTokenProperties {
        room_name: Some("no-token".into()),
        ..MeetingTokenProperties::default()
    };
    assert!(matches!(
        c.create_meeting_token(&no_token).await,
        Err(RestError::InvalidResponse { .. })
    ));

    let domain = c.domain_config().await.unwrap();
    assert_eq!((domain.domain_name.as_str(), domain.domain_id.as_str()), ("acme", "d-123"));
    assert_eq!(mock.last().path, "/v1/");
}

#[tokio::test]
async fn error_mapping() {
    let (base, _mock) = serve().await;
    let c = client(&base);
    match c.get_room("missing").await {
        Err(RestError::NotFound { message }) => assert_eq!(message, "room missing not found"),
        other => panic!("{other:?}"),
    }
    match c.get_room("forbidden").await {
        Err(e @ RestError::Unauthorized { .. }) => {
            assert_eq!(e.status(), Some(401));
            assert!(e.to_string().contains("bad API key"));
            assert!(!e.to_string().contains("test-api-key"));
        }
        other => panic!("{other:?}"),
    }
    match c.get_room("busy").await {
        Err(RestError::RateLimited { retry_after, message }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)));
            assert_eq!(message, "slow down");
        }
        other => panic!("{other:?}"),
    }
    match c.get_room("broken").await {
        Err(RestError::Api { status: 502, error: None, message }) => {
            assert_eq!(message, "upstream failure")
        }
        other => panic!("{other:?}"),
    }
    match c.create_room(&CreateRoom { name: Some("invalid".into()), ..CreateRoom::default() }).await
    {
        Err(RestError::Api { status: 400, error: Some(code), message }) => {
            assert_eq!(
                (code.as_str(), message.as_str()),
                ("invalid-request-error", "name is invalid")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.get_room("garbage").await, Err(RestError::InvalidResponse { .. })));

    // Nothing listening: unreachable, promptly.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    assert!(matches!(client(&dead).get_room("x").await, Err(RestError::Unreachable { .. })));
}

#[tokio::test]
async fn timeouts_are_typed() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let c = DailyRestClient::new("k")
        .unwrap()
        .with_base_url(&format!("http://{address}/v1"))
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    match c.get_room("x").await {
        Err(RestError::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(200)),
        other => panic!("{other:?}"),
    }
    server.abort();
}

#[test]
fn api_key_and_base_url_from_the_environment() {
    // Setting variables is unsafe in edition 2024 (and racy between tests): check the
    // constructors `from_env` uses, and `from_env` itself only when the key is unset.
    assert!(matches!(DailyRestClient::new(""), Err(RestError::MissingApiKey)));
    let c = DailyRestClient::new("k").unwrap();
    assert_eq!(c.base_url(), "https://api.daily.co/v1/");
    assert!(matches!(c.clone().with_base_url("ftp://x"), Err(RestError::InvalidUrl { .. })));
    if std::env::var_os(pipecat_daily::rest::API_KEY_ENV).is_none() {
        assert!(matches!(DailyRestClient::from_env(), Err(RestError::MissingApiKey)));
    }
}

#[test]
fn self_signed_tokens_are_hs256_with_daily_claims() {
    let properties = MeetingTokenProperties {
        room_name: Some("standup".into()),
        exp: Some(1_700_003_600),
        nbf: Some(1_699_999_000),
        is_owner: Some(true),
        user_name: Some("Ada".into()),
        user_id: Some("u-1".into()),
        enable_screenshare: Some(false),
        start_video_off: Some(true),
        start_audio_off: Some(false),
        enable_recording: Some("cloud".into()),
        start_cloud_recording: Some(true),
        eject_at_token_exp: Some(true),
        eject_after_elapsed: Some(600),
        permissions: Some(json!({"hp": true})),
        extra: serde_json::from_value(json!({"uil": "fr"})).unwrap(),
        ..MeetingTokenProperties::default()
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let token = self_signed_token("secret-api-key", "d-123", &properties, now).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        claims,
        json!({
            "r": "standup", "d": "d-123", "iat": 1_700_000_000_u64, "exp": 1_700_003_600_u64, "nbf": 1_699_999_000_u64,
            "o": true, "u": "Ada", "ud": "u-1", "ss": false, "vo": true, "ao": false, "er": "cloud",
            "sr": true, "ejt": true, "eje": 600, "p": {"hp": true}, "uil": "fr"
        })
    );
    // The signature is HMAC-SHA256 over "header.payload" with the API key.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret-api-key").unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&b64.decode(parts[2]).unwrap()).expect("valid signature");
    // Another key does not verify.
    let mut other = Hmac::<Sha256>::new_from_slice(b"another-key").unwrap();
    other.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    assert!(other.verify_slice(&b64.decode(parts[2]).unwrap()).is_err());

    // Through the client, the client's key signs.
    let c = DailyRestClient::new("secret-api-key").unwrap();
    assert_eq!(c.self_signed_token("d-123", &properties, now).unwrap(), token);
}
