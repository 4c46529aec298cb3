//! `start_bot` against a real local HTTP server (axum on 127.0.0.1, port 0) with the fake
//! transport. Real clock: the HTTP timeouts are real, so they are kept short.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use pipecat_core::http::DEFAULT_MAX_RESPONSE_SIZE;
use pipecat_core::{
    ApiRequest, ClientEvent, Error, ErrorOrigin, HttpError, PipecatClient, TransportState,
};
use serde_json::{Value, json};

/// Runs `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
    auth: Mutex<Vec<Option<String>>>,
}

async fn bot_server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let start_seen = seen.clone();
    let app = Router::new()
        .route(
            "/start",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let seen = start_seen.clone();
                async move {
                    let n = seen.hits.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.bodies.lock().unwrap().push(body.0);
                    seen.auth.lock().unwrap().push(
                        headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    );
                    axum::Json(json!({"wsUrl": format!("ws://127.0.0.1:1/ws/{n}"), "token": "SECRET-ANSWER-TOKEN"}))
                }
            }),
        )
        .route(
            "/detail",
            post(|| async { (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"detail": "missing field"}))) }),
        )
        .route(
            "/info",
            post(|| async {
                (StatusCode::BAD_REQUEST, axum::Json(json!({"info": "room full", "detail": "ignored"})))
            }),
        )
        .route("/boom", post(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/text", post(|| async { "hello, not json" }))
        .route("/unmappable", post(|| async { axum::Json(json!({"unmappable": true})) }))
        .route(
            "/huge",
            post(|| async {
                let filler = "x".repeat(DEFAULT_MAX_RESPONSE_SIZE);
                axum::Json(json!({"wsUrl": "ws://127.0.0.1:1/ws", "filler": filler}))
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                axum::Json(json!({}))
            }),
        );
    (serve(app).await, seen)
}

fn client(fake: &FakeTransport) -> PipecatClient {
    PipecatClient::builder(fake.clone())
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .build()
}

fn request(base: &str, path: &str) -> ApiRequest {
    ApiRequest::new(format!("{base}{path}?key=SECRET-QUERY"))
        .header("Authorization", "Bearer SECRET-API-KEY")
        .request_data(json!({"createDailyRoom": false}))
}

/// Runs a failing start and checks the common shape: typed error, a fatal client error
/// event, `authenticating → error → disconnected`, the transport closed.
async fn failing_start(path: &str, timeout: Option<Duration>) -> HttpError {
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    let mut req = request(&base, path);
    req.timeout = timeout;
    let err = client.start_bot(req).await.unwrap_err();
    assert_eq!(client.state(), Disconnected);
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Authenticating, ErrorState, Disconnected]);
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::Error(e) if e.fatal && e.origin == ErrorOrigin::Client)
        )
    );
    assert_eq!(fake.disconnects(), 1);
    assert_eq!(fake.connects(), 0);
    match err {
        Error::StartBot(http) => http,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn start_bot_success() {
    let (base, seen) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    let answer = client.start_bot(request(&base, "/start")).await.unwrap();
    assert_eq!(answer["wsUrl"], "ws://127.0.0.1:1/ws/1");
    assert_eq!(client.state(), Authenticated);
    assert_eq!(seen.bodies.lock().unwrap()[0], json!({"createDailyRoom": false}));
    assert_eq!(seen.auth.lock().unwrap()[0].as_deref(), Some("Bearer SECRET-API-KEY"));
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Authenticating, Authenticated]);
    assert!(matches!(&events[2], ClientEvent::BotStarted(v) if *v == answer));

    // Then connect with the answer, mapped by the transport.
    client.reconnect().await.unwrap();
    assert_eq!(client.state(), Ready);
    let (mapped, req) = fake.0.mapped.lock().unwrap()[0].clone();
    assert_eq!(mapped, answer);
    assert_eq!(req.endpoint, format!("{base}/start?key=SECRET-QUERY"));
    let params = fake.0.params.lock().unwrap()[0].clone();
    assert_eq!(params.get(&["wsUrl"]), Some(&json!("ws://127.0.0.1:1/ws/1")));
    assert_eq!(params.start_request.unwrap().endpoint, format!("{base}/start?key=SECRET-QUERY"));
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn start_bot_and_connect_state_sequence_and_reconnect() {
    let (base, seen) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    let bot = client.start_bot_and_connect(request(&base, "/start")).await.unwrap();
    assert_eq!(bot.version, "2.2.0");
    client.disconnect().await.unwrap();
    // A new session: the start request is POSTed again for a fresh bot.
    client.reconnect().await.unwrap();
    assert_eq!(seen.hits.load(Ordering::SeqCst), 2);
    let second = fake.0.params.lock().unwrap()[1].clone();
    assert_eq!(second.get(&["wsUrl"]), Some(&json!("ws://127.0.0.1:1/ws/2")));

    let events = drain(&mut events).await;
    let session = [Authenticating, Authenticated, Connecting, Connected, Ready];
    let mut expected = session.to_vec();
    expected.extend([Disconnecting, Disconnected]);
    expected.extend(session);
    assert_eq!(states(&events), expected);
    assert_chained(&events, Idle);
    assert_eq!(events.iter().filter(|e| matches!(e, ClientEvent::BotStarted(_))).count(), 2);
}

#[tokio::test]
async fn start_bot_then_explicit_params() {
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    client.start_bot(request(&base, "/start")).await.unwrap();
    client.connect(params()).await.unwrap();
    assert!(fake.0.mapped.lock().unwrap().is_empty());
    // The explicit parameters are used, with the start request they follow.
    let used = fake.0.params.lock().unwrap()[0].clone();
    assert_eq!(used.values, params().values);
    assert_eq!(used.start_request.unwrap().endpoint, format!("{base}/start?key=SECRET-QUERY"));
}

#[tokio::test]
async fn disconnect_after_start_bot() {
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    client.start_bot(request(&base, "/start")).await.unwrap();
    client.disconnect().await.unwrap();
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Authenticating, Authenticated, Disconnecting, Disconnected]);
}

#[tokio::test]
async fn unmappable_start_answer() {
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    let err = client.start_bot_and_connect(request(&base, "/unmappable")).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidParams(m) if m == "unmappable answer"), "{err:?}");
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Authenticating, Authenticated, ErrorState, Disconnected]);
    assert_eq!(fake.connects(), 0);
}

#[tokio::test]
async fn status_with_detail() {
    let err = failing_start("/detail", None).await;
    assert!(
        matches!(&err, HttpError::Status { status: 422, message, .. } if message == "missing field"),
        "{err:?}"
    );
    assert_eq!(Error::StartBot(err).status(), Some(422));
}

#[tokio::test]
async fn status_with_info() {
    let err = failing_start("/info", None).await;
    assert!(
        matches!(&err, HttpError::Status { status: 400, message, .. } if message == "room full"),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_error_without_body() {
    let err = failing_start("/boom", None).await;
    assert!(
        matches!(&err, HttpError::Status { status: 500, message, .. } if message == "Internal Server Error"),
        "{err:?}"
    );
}

#[tokio::test]
async fn non_json_answer() {
    let err = failing_start("/text", None).await;
    assert!(matches!(err, HttpError::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn slow_answer_times_out() {
    let err = failing_start("/slow", Some(Duration::from_millis(200))).await;
    assert!(
        matches!(err, HttpError::Timeout { after, .. } if after == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(Error::StartBot(err).is_timeout());
}

#[tokio::test]
async fn client_default_start_timeout_applies() {
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone())
        .http_client(reqwest::Client::builder().no_proxy().build().unwrap())
        .start_bot_timeout(Duration::from_millis(150))
        .build();
    let err = client.start_bot(request(&base, "/slow")).await.unwrap_err();
    assert!(matches!(err, Error::StartBot(HttpError::Timeout { .. })), "{err:?}");
}

#[tokio::test]
async fn refused_connection_is_unreachable() {
    // A port that was just free: bind, note it, close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let fake = FakeTransport::default();
    let client = client(&fake);
    let err = client.start_bot(ApiRequest::new(format!("http://{addr}/start"))).await.unwrap_err();
    assert!(matches!(err, Error::StartBot(HttpError::Unreachable { .. })), "{err:?}");
    assert_eq!(client.state(), TransportState::Disconnected);
}

#[tokio::test]
async fn invalid_url() {
    let fake = FakeTransport::default();
    let client = client(&fake);
    let err = client.start_bot(ApiRequest::new("ftp://example/start")).await.unwrap_err();
    assert!(matches!(err, Error::StartBot(HttpError::InvalidUrl { .. })), "{err:?}");
}

#[tokio::test]
async fn disconnect_aborts_a_pending_start() {
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    let pending = tokio::spawn({
        let client = client.clone();
        let req = request(&base, "/slow");
        async move { client.start_bot(req).await }
    });
    for _ in 0..200 {
        if client.state() == Authenticating {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.disconnect().await.unwrap();
    assert!(matches!(pending.await.unwrap(), Err(Error::Disconnected)));
    assert_eq!(client.state(), Disconnected);
}

/// A writer that collects everything tracing prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("pipecat_core=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let client = client(&fake);
    client.start_bot_and_connect(request(&base, "/start")).await.unwrap();
    client.send_client_message("t", json!({"x": 1})).await.unwrap();
    client.disconnect().await.unwrap();
    let _ = client.start_bot(request(&base, "/detail")).await;
    drop(client);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("starting the bot"), "tracing captured nothing:\n{logs}");
    assert!(logs.contains("session"), "no session span:\n{logs}");
    assert!(!logs.contains("SECRET"), "a secret was logged:\n{logs}");
}

#[tokio::test]
async fn an_answer_larger_than_the_bound_is_refused_naming_the_limit() {
    let err = failing_start("/huge", None).await;
    match &err {
        HttpError::ResponseTooLarge { limit, .. } => assert_eq!(*limit, DEFAULT_MAX_RESPONSE_SIZE),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("1048576 bytes"), "{err}");
    // The bound is the request's to choose.
    let (base, _) = bot_server().await;
    let fake = FakeTransport::default();
    let answer = client(&fake)
        .start_bot(request(&base, "/huge").max_response_size(2 * DEFAULT_MAX_RESPONSE_SIZE))
        .await
        .unwrap();
    assert_eq!(answer["wsUrl"], "ws://127.0.0.1:1/ws");
}

/// A server that answers 200 with a chunked body that never ends.
async fn endless_body_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
                // Bounded: 64 MiB at most, far past the client's limit.
                for _ in 0..1024 {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_endless_answer_stops_at_the_bound() {
    let base = endless_body_server().await;
    let fake = FakeTransport::default();
    let err = client(&fake).start_bot(request(&base, "/start")).await.unwrap_err();
    assert!(
        matches!(&err, Error::StartBot(HttpError::ResponseTooLarge { limit, .. }) if *limit == DEFAULT_MAX_RESPONSE_SIZE),
        "{err:?}"
    );
}
