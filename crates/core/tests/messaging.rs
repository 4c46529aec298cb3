//! Messages, requests, function calls and events against the scripted fake transport, under
//! tokio's paused clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use pipecat_core::rtvi::{ClientMessage, FileData, FileSource, SendFile, SendTextOptions};
use pipecat_core::{
    ClientCallbacks, ClientEvent, Error, FunctionCall, FunctionCallOutcome, PipecatClient,
    TimeoutKind, TransportError, TransportEvent, TransportState, UndispatchedReason,
};
use serde_json::{Value, json};

async fn ready(fake: &FakeTransport) -> PipecatClient {
    let client = PipecatClient::builder(fake.clone()).build();
    client.connect(params()).await.expect("connect");
    client
}

/// A bot that answers client-ready, and `ping` requests with `pong`, `fail` with an
/// error-response; other requests get no answer.
fn echo_bot() -> FakeTransport {
    let fake = FakeTransport::silent();
    fake.respond(|m| match &m.message {
        ClientMessage::ClientReady(_) => vec![bot_ready(&m.id, "2.2.0")],
        ClientMessage::ClientMessage(c) if c.t == "ping" => vec![msg(
            "server-response",
            Some(&m.id),
            Some(json!({"t": "ping", "d": {"pong": c.d.clone()}})),
        )],
        ClientMessage::ClientMessage(c) if c.t == "fail" => {
            vec![msg("error-response", Some(&m.id), Some(json!({"error": "nope"})))]
        }
        _ => vec![],
    });
    fake
}

// ---- Ready gating ----

async fn assert_all_gated(client: &PipecatClient, state: TransportState) {
    let not_ready = |r: Result<(), Error>| {
        assert!(matches!(r, Err(Error::NotReady { state: s }) if s == state), "{r:?}");
    };
    not_ready(client.send_client_message("t", None).await);
    not_ready(client.send_client_request("t", json!({})).await.map(|_| ()));
    not_ready(
        client
            .send_client_request_with_timeout("t", None, Duration::from_secs(1))
            .await
            .map(|_| ()),
    );
    not_ready(client.send_text("hello").await);
    not_ready(client.send_text_with_options("hello", SendTextOptions::default()).await);
    not_ready(client.disconnect_bot().await);
    not_ready(client.send_dtmf("1").await);
    not_ready(client.send_ui_event("clicked", None).await);
    not_ready(client.cancel_ui_job_group("job", None).await);
    not_ready(client.send_file(SendFile::default()).await);
    not_ready(
        client.send_message(ClientMessage::DisconnectBot(Default::default())).await.map(|_| ()),
    );
}

#[tokio::test(start_paused = true)]
async fn ready_gating() {
    let fake = FakeTransport::silent();
    let client = PipecatClient::builder(fake.clone()).build();
    assert_all_gated(&client, Idle).await;

    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.connect(params()).await }
    });
    settle().await;
    assert_all_gated(&client, Connected).await;
    fake.bot_says(bot_ready(&fake.sent()[0].id, "2.2.0"));
    pending.await.unwrap().unwrap();

    client.send_text("hello").await.unwrap();
    client.disconnect().await.unwrap();
    assert_all_gated(&client, Disconnected).await;
    // Only client-ready and the one send-text went out.
    assert_eq!(fake.sent().len(), 2);
}

// ---- Sending ----

#[tokio::test(start_paused = true)]
async fn outbound_messages_have_the_wire_shape() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    client.send_client_message("set-volume", json!({"level": 3})).await.unwrap();
    client
        .send_text_with_options(
            "typed",
            SendTextOptions { run_immediately: Some(true), audio_response: Some(false) },
        )
        .await
        .unwrap();
    client.send_text("plain").await.unwrap();
    client.disconnect_bot().await.unwrap();
    client.send_ui_event("clicked", json!({"id": "b1"})).await.unwrap();
    client.cancel_ui_job_group("job-1", Some("user".into())).await.unwrap();
    client
        .send_file(SendFile {
            content: "look".into(),
            file: FileData {
                format: "image/png".into(),
                name: None,
                source: FileSource::Url { url: "pipecat:abc".into() },
            },
            options: None,
        })
        .await
        .unwrap();

    let sent: Vec<Value> = fake
        .sent_raw()
        .iter()
        .skip(1)
        .map(|s| {
            let mut v: Value = serde_json::from_str(s).unwrap();
            assert_eq!(v["label"], "rtvi-ai");
            assert!(v["id"].as_str().is_some_and(|id| id.len() >= 8));
            v.as_object_mut().unwrap().remove("id");
            v
        })
        .collect();
    assert_eq!(
        sent,
        [
            json!({"label":"rtvi-ai","type":"client-message","data":{"t":"set-volume","d":{"level":3}}}),
            json!({"label":"rtvi-ai","type":"send-text","data":{"content":"typed","options":{"run_immediately":true,"audio_response":false}}}),
            json!({"label":"rtvi-ai","type":"send-text","data":{"content":"plain"}}),
            json!({"label":"rtvi-ai","type":"disconnect-bot","data":{}}),
            json!({"label":"rtvi-ai","type":"ui-event","data":{"event":"clicked","payload":{"id":"b1"}}}),
            json!({"label":"rtvi-ai","type":"ui-cancel-job-group","data":{"job_id":"job-1","reason":"user"}}),
            json!({"label":"rtvi-ai","type":"send-file","data":{"content":"look","file":{"format":"image/png","source":{"type":"url","url":"pipecat:abc"}}}}),
        ]
    );
    // disconnect-bot does not end the session by itself.
    assert_eq!(client.state(), Ready);
}

#[tokio::test(start_paused = true)]
async fn message_too_large_is_refused_and_reported() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    fake.0.max_size.store(200, Ordering::SeqCst);
    let mut events = client.events();
    let big = "x".repeat(300);
    let err = client.send_client_message("big", json!(big)).await.unwrap_err();
    let Error::MessageTooLarge { size, max } = err else { panic!("{err:?}") };
    assert_eq!(max, 200);
    assert!(size > 300);
    let err = client.send_client_request("big", json!(big)).await.unwrap_err();
    assert!(matches!(err, Error::MessageTooLarge { .. }));
    // Exactly at the limit passes.
    let envelope_size = |d: &str| {
        pipecat_core::rtvi::ClientEnvelope::client_message("big", Some(json!(d)))
            .to_json()
            .unwrap()
            .len()
    };
    let fits = "y".repeat(200 - envelope_size(""));
    assert_eq!(envelope_size(&fits), 200);
    client.send_client_message("big", json!(fits)).await.unwrap();

    let events = drain(&mut events).await;
    assert_eq!(names(&events), ["error", "error"]);
    assert!(matches!(&events[0], ClientEvent::Error(e) if !e.fatal));
    assert_eq!(client.state(), Ready);
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn send_timeout_and_transport_errors() {
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone()).send_timeout(Duration::from_secs(2)).build();
    client.connect(params()).await.unwrap();
    fake.set_send(Step::Hang);
    let err = client.send_text("hi").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { what: TimeoutKind::Send, .. }), "{err:?}");
    fake.set_send(Step::Fail(TransportError::NotConnected));
    let err = client.send_text("hi").await.unwrap_err();
    assert!(matches!(err, Error::Transport(TransportError::NotConnected)), "{err:?}");
    assert_eq!(client.state(), Ready);
}

// ---- Requests ----

#[tokio::test(start_paused = true)]
async fn request_resolves_with_the_matching_server_response() {
    let fake = echo_bot();
    let client = ready(&fake).await;
    let mut events = client.events();
    let answer = client.send_client_request("ping", json!({"x": 1})).await.unwrap();
    assert_eq!(answer, json!({"pong": {"x": 1}}));
    let events = drain(&mut events).await;
    match &events[..] {
        [ClientEvent::ServerResponse { id, response }] => {
            assert_eq!(id.as_deref(), fake.sent_of("client-message")[0]["id"].as_str());
            assert_eq!(response.t, "ping");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_match_by_id() {
    let fake = FakeTransport::silent();
    fake.respond(|m| match m.message.message_type() {
        "client-ready" => vec![bot_ready(&m.id, "2.2.0")],
        _ => vec![],
    });
    let client = ready(&fake).await;
    let a = tokio::spawn({
        let client = client.clone();
        async move { client.send_client_request("a", None).await }
    });
    let b = tokio::spawn({
        let client = client.clone();
        async move { client.send_client_request("b", None).await }
    });
    settle().await;
    let sent = fake.sent_of("client-message");
    let id_of = |t: &str| {
        sent.iter().find(|m| m["data"]["t"] == t).unwrap()["id"].as_str().unwrap().to_owned()
    };
    // Answer in reverse order.
    fake.bot_says(msg("server-response", Some(&id_of("b")), Some(json!({"t": "b", "d": 2}))));
    fake.bot_says(msg("server-response", Some(&id_of("a")), Some(json!({"t": "a", "d": 1}))));
    assert_eq!(a.await.unwrap().unwrap(), json!(1));
    assert_eq!(b.await.unwrap().unwrap(), json!(2));
}

#[tokio::test(start_paused = true)]
async fn request_rejected_by_error_response() {
    let fake = echo_bot();
    let client = ready(&fake).await;
    let mut events = client.events();
    let err = client.send_client_request("fail", None).await.unwrap_err();
    assert!(matches!(&err, Error::ErrorResponse { message } if message == "nope"), "{err:?}");
    let events = drain(&mut events).await;
    assert!(
        matches!(&events[..], [ClientEvent::MessageError { message, .. }] if message == "nope")
    );
}

#[tokio::test(start_paused = true)]
async fn request_times_out_default_and_per_call() {
    let fake = echo_bot();
    let client = ready(&fake).await;
    let start = tokio::time::Instant::now();
    let err = client.send_client_request("silent", None).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { what: TimeoutKind::ClientRequest, after } if after == Duration::from_secs(10)),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));

    let start = tokio::time::Instant::now();
    let err = client
        .send_client_request_with_timeout("silent", None, Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { after, .. } if after == Duration::from_millis(1500)));
    assert_eq!(start.elapsed(), Duration::from_millis(1500));

    // A late answer to a timed-out request is only an event.
    let mut events = client.events();
    let late_id = fake.sent_of("client-message")[0]["id"].as_str().unwrap().to_owned();
    fake.bot_says(msg("server-response", Some(&late_id), Some(json!({"t": "silent"}))));
    assert_eq!(names(&drain(&mut events).await), ["server-response"]);
    assert_eq!(client.state(), Ready);
}

#[tokio::test(start_paused = true)]
async fn requests_settle_on_disconnect() {
    let fake = echo_bot();
    let client = ready(&fake).await;
    let pending: Vec<_> = (0..3)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.send_client_request(format!("q{i}"), None).await })
        })
        .collect();
    settle().await;
    client.disconnect().await.unwrap();
    for p in pending {
        assert!(matches!(p.await.unwrap(), Err(Error::Disconnected)));
    }
}

#[tokio::test(start_paused = true)]
async fn requests_settle_on_transport_failure() {
    let fake = echo_bot();
    let client = ready(&fake).await;
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.send_client_request("q", None).await }
    });
    settle().await;
    fake.emit(TransportEvent::Failed(TransportError::NotConnected));
    assert!(matches!(pending.await.unwrap(), Err(Error::Disconnected)));
    assert_eq!(client.state(), Disconnected);
}

#[tokio::test(start_paused = true)]
async fn error_response_without_request_is_a_message_error() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    let mut events = client.events();
    fake.bot_says(msg(
        "error-response",
        Some("st-1"),
        Some(json!({"error": "Unsupported type append-to-context"})),
    ));
    let events = drain(&mut events).await;
    match &events[..] {
        [ClientEvent::MessageError { id, message }] => {
            assert_eq!(id.as_deref(), Some("st-1"));
            assert_eq!(message, "Unsupported type append-to-context");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.state(), Ready);
}

// ---- DTMF ----

#[tokio::test(start_paused = true)]
async fn dtmf_shape_follows_the_bot_version() {
    let fake = FakeTransport::with_version("2.2.0");
    let client = ready(&fake).await;
    client.send_dtmf("12#").await.unwrap();
    let dtmf = fake.sent_of("dtmf");
    assert_eq!(dtmf.len(), 1);
    assert_eq!(dtmf[0]["data"], json!({"buttons": ["1", "2", "#"]}));

    let fake = FakeTransport::with_version("2.0.1");
    let client = ready(&fake).await;
    client.send_dtmf("9*").await.unwrap();
    let data: Vec<Value> = fake.sent_of("dtmf").into_iter().map(|m| m["data"].clone()).collect();
    assert_eq!(data, [json!({"button": "9"}), json!({"button": "*"})]);

    let err = client.send_dtmf("12a").await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(matches!(client.send_dtmf("").await, Err(Error::InvalidInput(_))));

    let fake = FakeTransport::with_version("1.2.0");
    let client = ready(&fake).await;
    let mut events = client.events();
    let err = client.send_dtmf("1").await.unwrap_err();
    assert!(matches!(&err, Error::Unsupported { feature, .. } if feature == "dtmf"), "{err:?}");
    let events = drain(&mut events).await;
    assert!(
        matches!(&events[..], [ClientEvent::UnsupportedFeature { feature, .. }] if feature == "dtmf")
    );
    assert!(fake.sent_of("dtmf").is_empty());
}

// ---- send-file ----

fn a_file() -> SendFile {
    SendFile {
        content: "look".into(),
        file: FileData {
            format: "text/plain".into(),
            name: Some("notes.txt".into()),
            source: FileSource::Url { url: "pipecat:abc".into() },
        },
        options: None,
    }
}

#[tokio::test(start_paused = true)]
async fn send_file_needs_a_bot_of_rtvi_2_2() {
    let fake = FakeTransport::with_version("2.2.0");
    let client = ready(&fake).await;
    client.send_file(a_file()).await.unwrap();
    assert_eq!(fake.sent_of("send-file").len(), 1);

    // pipecat-ai 1.12 (2.1.0) and 1.3 (1.4.0) answer send-file with "Unsupported type": the
    // client refuses it with a typed error and an event, and sends nothing.
    for version in ["2.1.0", "1.4.0"] {
        let fake = FakeTransport::with_version(version);
        let client = ready(&fake).await;
        let mut events = client.events();
        let err = client.send_file(a_file()).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { feature, reason }
                if feature == "send-file" && reason.contains(version)),
            "{err:?}"
        );
        let events = drain(&mut events).await;
        assert!(
            matches!(&events[..], [ClientEvent::UnsupportedFeature { feature, .. }] if feature == "send-file"),
            "{events:?}"
        );
        assert!(fake.sent_of("send-file").is_empty());
        assert_eq!(client.state(), Ready);
    }
}

// ---- Function calls ----

fn in_progress(name: Option<&str>, id: &str, args: Value) -> String {
    let mut data = json!({"tool_call_id": id, "arguments": args});
    if let Some(name) = name {
        data["function_name"] = json!(name);
    }
    msg("llm-function-call-in-progress", None, Some(data))
}

fn result_data(sent: &Value) -> Value {
    assert_eq!(sent["label"], "rtvi-ai");
    assert_eq!(sent["type"], "llm-function-call-result");
    assert!(sent["id"].is_string());
    assert_eq!(sent.as_object().unwrap().len(), 4, "{sent}");
    sent["data"].clone()
}

#[tokio::test(start_paused = true)]
async fn function_call_success_sends_the_result() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
        assert_eq!(call.arguments, json!({"city": "Paris"}));
        Ok::<_, String>(json!({"temp": 21}))
    });
    let mut events = client.events();
    fake.bot_says(msg(
        "llm-function-call-started",
        None,
        Some(json!({"function_name": "get_weather"})),
    ));
    fake.bot_says(in_progress(Some("get_weather"), "call-1", json!({"city": "Paris"})));
    let sent = fake.next_sent_of("llm-function-call-result").await;
    assert_eq!(
        result_data(&sent),
        json!({"function_name": "get_weather", "tool_call_id": "call-1", "arguments": {"city": "Paris"}, "result": {"temp": 21}})
    );
    fake.bot_says(msg(
        "llm-function-call-stopped",
        None,
        Some(json!({"tool_call_id": "call-1", "cancelled": false, "function_name": "get_weather", "result": {"temp": 21}})),
    ));
    let events = drain(&mut events).await;
    assert_eq!(
        names(&events),
        [
            "llm-function-call-started",
            "llm-function-call-in-progress",
            "function-call-handled",
            "llm-function-call-stopped"
        ]
    );
    match &events[2] {
        ClientEvent::FunctionCallHandled { call, result, outcome } => {
            assert_eq!(call.tool_call_id, "call-1");
            assert_eq!(result, &json!({"temp": 21}));
            assert_eq!(outcome, &FunctionCallOutcome::Completed);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn function_call_error_panic_and_timeout_send_error_results() {
    let fake = FakeTransport::default();
    let client =
        PipecatClient::builder(fake.clone()).function_call_timeout(Duration::from_secs(5)).build();
    client.connect(params()).await.unwrap();
    client.register_function_call_handler("fails", |_c: FunctionCall| async {
        Err::<Value, _>("database unavailable")
    });
    client.register_function_call_handler("panics", |_c: FunctionCall| async {
        if true {
            panic!("handler bug");
        }
        Ok::<Value, String>(Value::Null)
    });
    client.register_function_call_handler("hangs", |_c: FunctionCall| async {
        std::future::pending::<()>().await;
        Ok::<Value, String>(Value::Null)
    });

    fake.bot_says(in_progress(Some("fails"), "c1", json!({})));
    assert_eq!(
        result_data(&fake.next_sent_of("llm-function-call-result").await),
        json!({"function_name": "fails", "tool_call_id": "c1", "arguments": {}, "result": {"error": "database unavailable"}})
    );

    fake.bot_says(in_progress(Some("panics"), "c2", json!({"a": 1})));
    assert_eq!(
        result_data(&fake.next_sent_of("llm-function-call-result").await),
        json!({"function_name": "panics", "tool_call_id": "c2", "arguments": {"a": 1}, "result": {"error": "function call handler panicked: handler bug"}})
    );

    let start = tokio::time::Instant::now();
    fake.bot_says(in_progress(Some("hangs"), "c3", json!({})));
    assert_eq!(
        result_data(&fake.next_sent_of("llm-function-call-result").await),
        json!({"function_name": "hangs", "tool_call_id": "c3", "arguments": {}, "result": {"error": "function call handler timed out after 5s"}})
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(client.state(), Ready);
}

#[tokio::test(start_paused = true)]
async fn legacy_function_call_is_dispatched() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    client.register_function_call_handler("lookup", |call: FunctionCall| async move {
        Ok::<_, String>(json!({"echo": call.arguments}))
    });
    let mut events = client.events();
    fake.bot_says(msg(
        "llm-function-call",
        None,
        Some(json!({"function_name": "lookup", "tool_call_id": "legacy-1", "args": {"q": "x"}})),
    ));
    assert_eq!(
        result_data(&fake.next_sent_of("llm-function-call-result").await),
        json!({"function_name": "lookup", "tool_call_id": "legacy-1", "arguments": {"q": "x"}, "result": {"echo": {"q": "x"}}})
    );
    let events = drain(&mut events).await;
    assert_eq!(names(&events), ["llm-function-call", "function-call-handled"]);
}

#[tokio::test(start_paused = true)]
async fn unnamed_unknown_and_duplicate_calls() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    client.register_function_call_handler("known", move |_c: FunctionCall| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, String>(1) }
    });
    let mut events = client.events();
    // No name (the bot's default report level): cannot be dispatched, nothing is sent.
    fake.bot_says(in_progress(None, "n1", json!({})));
    // A server-side function: no handler here, no answer from us.
    fake.bot_says(in_progress(Some("server_side"), "s1", json!({})));
    fake.bot_says(in_progress(Some("known"), "k1", json!({})));
    fake.bot_says(in_progress(Some("known"), "k1", json!({})));
    let events = drain(&mut events).await;
    assert_eq!(
        names(&events),
        [
            "llm-function-call-in-progress",
            "function-call-undispatched",
            "llm-function-call-in-progress",
            "function-call-undispatched",
            "llm-function-call-in-progress",
            "llm-function-call-in-progress",
            "function-call-undispatched",
            "function-call-handled"
        ]
    );
    assert!(matches!(
        &events[1],
        ClientEvent::FunctionCallUndispatched { tool_call_id, reason: UndispatchedReason::MissingFunctionName } if tool_call_id == "n1"
    ));
    assert!(matches!(
        &events[3],
        ClientEvent::FunctionCallUndispatched { tool_call_id, reason: UndispatchedReason::NoHandler { function_name, replied: false } }
            if tool_call_id == "s1" && function_name == "server_side"
    ));
    assert!(matches!(
        &events[6],
        ClientEvent::FunctionCallUndispatched { reason: UndispatchedReason::Duplicate, .. }
    ));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(fake.sent_of("llm-function-call-result").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn catch_all_and_unregistering() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    client.register_function_call_handler("named", |_c: FunctionCall| async {
        Ok::<_, String>("named")
    });
    client.register_catch_all_function_call_handler(|c: FunctionCall| async move {
        Ok::<_, String>(format!("catch-all {}", c.function_name))
    });
    fake.bot_says(in_progress(Some("named"), "1", json!({})));
    assert_eq!(fake.next_sent_of("llm-function-call-result").await["data"]["result"], "named");
    fake.bot_says(in_progress(Some("other"), "2", json!({})));
    assert_eq!(
        fake.next_sent_of("llm-function-call-result").await["data"]["result"],
        "catch-all other"
    );
    assert!(client.unregister_function_call_handler("named"));
    assert!(!client.unregister_function_call_handler("named"));
    fake.bot_says(in_progress(Some("named"), "3", json!({})));
    assert_eq!(
        fake.next_sent_of("llm-function-call-result").await["data"]["result"],
        "catch-all named"
    );
    client.unregister_catch_all_function_call_handler();
    fake.bot_says(in_progress(Some("other"), "4", json!({})));
    client.register_function_call_handler("x", |_c: FunctionCall| async { Ok::<_, String>(1) });
    client.unregister_all_function_call_handlers();
    fake.bot_says(in_progress(Some("x"), "5", json!({})));
    settle().await;
    assert_eq!(fake.sent_of("llm-function-call-result").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn handler_running_at_disconnect_is_aborted() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    let finished = Arc::new(AtomicUsize::new(0));
    let flag = finished.clone();
    client.register_function_call_handler("slow", move |_c: FunctionCall| {
        let flag = flag.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            flag.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(1)
        }
    });
    fake.bot_says(in_progress(Some("slow"), "1", json!({})));
    settle().await;
    client.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    assert!(fake.sent_of("llm-function-call-result").is_empty());
}

// ---- Every server message becomes an event ----

#[tokio::test(start_paused = true)]
async fn every_server_message_is_a_typed_event() {
    let fake = FakeTransport::default();
    let client = ready(&fake).await;
    let mut events = client.events();
    let text = json!({"text": "hi"});
    let transcript = json!({"text": "hi", "user_id": "u", "timestamp": "t", "final": true});
    let inbound: Vec<(&str, Option<Value>, &str)> = vec![
        ("server-message", Some(json!({"hello": "world"})), "server-message"),
        ("user-started-speaking", None, "user-started-speaking"),
        ("user-stopped-speaking", None, "user-stopped-speaking"),
        ("vad-user-started-speaking", None, "vad-user-started-speaking"),
        ("vad-user-stopped-speaking", None, "vad-user-stopped-speaking"),
        ("user-mute-started", None, "user-mute-started"),
        ("user-mute-stopped", None, "user-mute-stopped"),
        ("bot-started-speaking", None, "bot-started-speaking"),
        ("bot-stopped-speaking", None, "bot-stopped-speaking"),
        ("bot-interrupted", None, "bot-interrupted"),
        ("user-transcription", Some(transcript.clone()), "user-transcription"),
        (
            "user-input",
            Some(json!({"text": "hi", "input_type": "chat", "final": true, "msg_id": "m"})),
            "user-input",
        ),
        ("user-llm-text", Some(text.clone()), "user-llm-text"),
        ("bot-llm-started", None, "bot-llm-started"),
        ("bot-llm-text", Some(text.clone()), "bot-llm-text"),
        ("bot-llm-stopped", None, "bot-llm-stopped"),
        ("bot-transcription", Some(text.clone()), "bot-transcription"),
        ("bot-tts-started", None, "bot-tts-started"),
        ("bot-tts-text", Some(text.clone()), "bot-tts-text"),
        ("bot-tts-stopped", None, "bot-tts-stopped"),
        (
            "bot-output",
            Some(json!({"text": "Hello.", "output_type": "sentence", "spoken_status": "new"})),
            "bot-output",
        ),
        ("stt-raw-text", Some(transcript), "stt-raw-text"),
        ("llm-raw-text", Some(text.clone()), "llm-raw-text"),
        ("tts-raw-text", Some(text.clone()), "tts-raw-text"),
        ("bot-llm-marker", Some(json!({"text": "a", "raw": "a", "markers": []})), "bot-llm-marker"),
        ("llm-function-call-started", Some(json!({})), "llm-function-call-started"),
        (
            "llm-function-call-stopped",
            Some(json!({"tool_call_id": "t", "cancelled": true})),
            "llm-function-call-stopped",
        ),
        (
            "bot-llm-search-response",
            Some(json!({"search_result": "r", "origins": []})),
            "bot-llm-search-response",
        ),
        ("metrics", Some(json!({"ttfb": [{"processor": "llm", "value": 0.2}]})), "metrics"),
        ("user-audio-level", Some(json!({"value": 0.5})), "user-audio-level"),
        ("bot-audio-level", Some(json!({"value": 0.25})), "bot-audio-level"),
        ("system-log", Some(text.clone()), "system-log"),
        ("ui-command", Some(json!({"command": "toast", "payload": {"title": "t"}})), "ui-command"),
        (
            "ui-job-group",
            Some(json!({"kind": "group_completed", "job_id": "j", "at": 1})),
            "ui-job-group",
        ),
        (
            "bot-tts-audio",
            Some(json!({"audio": "AAAA", "sample_rate": 24000, "num_channels": 1})),
            "bot-tts-audio",
        ),
        ("future-message", Some(json!({"x": 1})), "unknown-message"),
    ];
    for (message_type, data, _) in &inbound {
        fake.bot_says(msg(message_type, None, data.clone()));
    }
    // Garbage is a warning, not a failure.
    fake.bot_says("not json");
    fake.bot_says(r#"{"label":"other","type":"x"}"#);
    let events = drain(&mut events).await;
    let expected: Vec<&str> = inbound
        .iter()
        .map(|(_, _, name)| *name)
        .chain(["protocol-warning", "protocol-warning"])
        .collect();
    assert_eq!(names(&events), expected);
    assert!(matches!(&events[0], ClientEvent::ServerMessage(v) if v["hello"] == "world"));
    assert!(events.iter().any(|e| matches!(e, ClientEvent::BotAudioLevel(l) if *l == 0.25)));
    assert!(events.iter().any(
        |e| matches!(e, ClientEvent::UnknownMessage(u) if u.message_type == "future-message")
    ));
    // bot-interrupted also tells the transport to drop buffered audio.
    assert_eq!(fake.interruptions(), 1);
    assert_eq!(client.state(), Ready);
}

#[tokio::test(start_paused = true)]
async fn transport_events_are_forwarded() {
    use pipecat_core::media::*;
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone()).build();
    let mut events = client.events();
    let mic = MediaDeviceInfo {
        id: "m1".into(),
        name: "Mic".into(),
        kind: DeviceKind::Mic,
        is_default: true,
    };
    // Device events flow before any session, on the attach sink.
    let device_sink = fake.attach_sink();
    device_sink.emit(TransportEvent::AvailableMicsUpdated(vec![mic.clone()]));
    device_sink.emit(TransportEvent::MicUpdated(mic.clone()));
    device_sink.emit(TransportEvent::DeviceError(DeviceError {
        device: DeviceKind::Mic,
        kind: DeviceErrorKind::InUse,
        details: "busy".into(),
    }));
    // Session events on the device sink are refused.
    device_sink.emit(TransportEvent::BotConnected(Participant::default()));
    let before = drain(&mut events).await;
    assert_eq!(names(&before), ["available-mics-updated", "mic-updated", "device-error"]);

    client.connect(params()).await.unwrap();
    drain(&mut events).await;
    let bot = Participant { id: "bot".into(), name: None, local: false };
    let track = TrackInfo { kind: TrackKind::Audio, participant: Some(bot.clone()) };
    for event in [
        TransportEvent::BotConnected(bot.clone()),
        TransportEvent::ParticipantJoined(bot.clone()),
        TransportEvent::TrackStarted(track.clone()),
        TransportEvent::LocalAudioLevel(0.1),
        TransportEvent::RemoteAudioLevel(0.2),
        TransportEvent::Reconnecting { attempt: 1, max_attempts: 3 },
        TransportEvent::Reconnected,
        TransportEvent::Warning("jitter".into()),
        TransportEvent::MediaStateChanged(MediaState::default()),
        TransportEvent::SpeakerUpdated(mic.clone()),
        TransportEvent::AvailableSpeakersUpdated(vec![]),
        TransportEvent::TrackStopped(track),
        TransportEvent::ParticipantLeft(bot),
    ] {
        fake.emit(event);
    }
    let events = drain(&mut events).await;
    assert_eq!(
        names(&events),
        [
            "bot-connected",
            "participant-joined",
            "track-started",
            "local-audio-level",
            "remote-audio-level",
            "reconnecting",
            "reconnected",
            "transport-warning",
            "media-state-changed",
            "speaker-updated",
            "available-speakers-updated",
            "track-stopped",
            "participant-left"
        ]
    );
    assert_eq!(client.state(), Ready);
}

#[tokio::test(start_paused = true)]
async fn unsupported_media_is_a_typed_error_and_an_event() {
    let fake = FakeTransport::without_media();
    let client = PipecatClient::builder(fake.clone()).build();
    let mut events = client.events();
    let err = client.enable_mic(false).await.unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { feature, .. } if feature == "enable_mic"),
        "{err:?}"
    );
    assert!(matches!(client.available_mics(), Err(Error::Unsupported { .. })));
    assert!(matches!(client.update_speaker("s").await, Err(Error::Unsupported { .. })));
    assert!(!client.is_mic_enabled());
    assert_eq!(client.selected_mic(), None);
    let events = drain(&mut events).await;
    assert_eq!(
        names(&events),
        ["unsupported-feature", "unsupported-feature", "unsupported-feature"]
    );
}

// ---- Event delivery ----

#[tokio::test(start_paused = true)]
async fn a_slow_subscriber_lags_but_never_blocks() {
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone()).event_capacity(8).build();
    let mut slow = client.events();
    client.connect(params()).await.unwrap();
    for i in 0..50 {
        fake.bot_says(msg("server-message", None, Some(json!(i))));
    }
    // The session went on regardless.
    let err = client
        .send_client_request_with_timeout("x", None, Duration::from_millis(1))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    settle().await;
    let events = drain(&mut slow).await;
    let ClientEvent::Lagged { missed } = events[0] else { panic!("{:?}", events[0]) };
    // 5 events of the connect, then 50 messages; the stream keeps the newest 8.
    assert_eq!(missed as usize + events.len() - 1, 5 + 50);
    assert_eq!(events.len() - 1, 8);
    assert!(matches!(events.last(), Some(ClientEvent::ServerMessage(v)) if *v == json!(49)));
}

#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
}

struct SharedRecorder(Arc<Recorder>);

impl ClientCallbacks for SharedRecorder {
    fn on_transport_state_changed(&self, state: TransportState, previous: TransportState) {
        self.0.log.lock().unwrap().push(format!("{previous}->{state}"));
    }
    fn on_bot_ready(&self, ready: &pipecat_core::rtvi::BotReady) {
        self.0.log.lock().unwrap().push(format!("bot-ready {}", ready.version));
    }
    fn on_server_message(&self, value: &Value) {
        if value == "panic" {
            panic!("callback bug");
        }
        self.0.log.lock().unwrap().push(format!("server-message {value}"));
    }
    fn on_disconnected(&self) {
        self.0.log.lock().unwrap().push("disconnected".into());
    }
}

#[tokio::test(start_paused = true)]
async fn callbacks_see_every_change_in_order() {
    let fake = FakeTransport::default();
    let recorder = Arc::new(Recorder::default());
    let client =
        PipecatClient::builder(fake.clone()).callbacks(SharedRecorder(recorder.clone())).build();
    client.connect(params()).await.unwrap();
    fake.bot_says(msg("server-message", None, Some(json!("panic"))));
    fake.bot_says(msg("server-message", None, Some(json!(1))));
    settle().await;
    client.disconnect().await.unwrap();
    settle().await;
    assert_eq!(
        *recorder.log.lock().unwrap(),
        [
            "idle->connecting",
            "connecting->connected",
            "connected->ready",
            "bot-ready 2.2.0",
            "server-message 1",
            "ready->disconnecting",
            "disconnecting->disconnected",
            "disconnected"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn unhandled_calls_get_an_error_result_when_asked() {
    let fake = FakeTransport::default();
    let client =
        PipecatClient::builder(fake.clone()).reply_to_unhandled_function_calls(true).build();
    client.connect(params()).await.unwrap();
    let mut events = client.events();
    fake.bot_says(in_progress(Some("get_weather"), "w1", json!({"city": "Oslo"})));
    let result = result_data(&fake.next_sent_of("llm-function-call-result").await);
    assert_eq!(result["tool_call_id"], "w1");
    assert_eq!(result["result"], json!({"error": "no handler for get_weather in the client"}));
    let events = drain(&mut events).await;
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::FunctionCallUndispatched {
            reason: UndispatchedReason::NoHandler { replied: true, .. },
            ..
        }
    )));
}
