//! The session lifecycle against the scripted fake transport, under tokio's paused clock:
//! state sequences of each start and each end, timeouts, gating, reconnects.

mod common;

use std::time::Duration;

use common::*;
use pipecat_core::{
    ClientEvent, ErrorOrigin, PipecatClient, ProtocolWarning, TimeoutKind, TransportError,
    TransportEvent,
};
use pipecat_core::{Error, TransportState};
use serde_json::json;

fn client(fake: &FakeTransport) -> PipecatClient {
    PipecatClient::builder(fake.clone()).build()
}

async fn ready_client(fake: &FakeTransport) -> PipecatClient {
    let client = client(fake);
    client.connect(params()).await.expect("connect");
    client
}

#[tokio::test(start_paused = true)]
async fn connect_then_disconnect_state_sequence() {
    let fake = FakeTransport::default();
    let client = client(&fake);
    assert_eq!(client.state(), Idle);
    let mut events = client.events();

    let bot = client.connect(params()).await.unwrap();
    assert_eq!(bot.version, "2.2.0");
    assert_eq!(bot.about.as_ref().unwrap().library, "pipecat-ai");
    assert_eq!(bot.capabilities.unwrap().audio_in, Some(true));
    assert_eq!(client.state(), Ready);
    assert!(client.is_ready() && client.is_connected());
    assert_eq!(client.bot_version().unwrap().to_string(), "2.2.0");
    assert_eq!(client.bot_ready_data().unwrap(), bot);

    client.disconnect().await.unwrap();
    assert_eq!(client.state(), Disconnected);
    assert!(client.bot_ready_data().is_none());

    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Connected, Ready, Disconnecting, Disconnected]);
    assert_chained(&events, Idle);
    assert_eq!(
        names(&events),
        [
            "transport-state-changed",
            "transport-state-changed",
            "connected",
            "transport-state-changed",
            "bot-ready",
            "transport-state-changed",
            "transport-state-changed",
            "disconnected"
        ]
    );
    assert_eq!((fake.connects(), fake.bot_readies(), fake.disconnects()), (1, 1, 1));

    // client-ready declares our protocol and names this SDK.
    let ready = &fake.sent_of("client-ready")[0];
    assert_eq!(ready["data"]["version"], "2.2.0");
    assert_eq!(ready["data"]["about"]["library"], "pipecat-core");
    assert!(ready["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(fake.0.params.lock().unwrap()[0], params());
}

#[tokio::test(start_paused = true)]
async fn init_devices_then_connect_state_sequence() {
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    client.init_devices().await.unwrap();
    assert_eq!(client.state(), Initialized);
    client.connect(params()).await.unwrap();
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Initializing, Initialized, Connecting, Connected, Ready]);
    assert_chained(&events, Idle);

    // Mid-session init re-opens devices without touching the state.
    client.init_devices().await.unwrap();
    assert_eq!(client.state(), Ready);
    assert_eq!(fake.count(&fake.0.inits), 2);
}

#[tokio::test(start_paused = true)]
async fn disconnect_after_init_devices_releases_them() {
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    client.init_devices().await.unwrap();
    client.disconnect().await.unwrap();
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Initializing, Initialized, Disconnecting, Disconnected]);
    assert_eq!(fake.disconnects(), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_init_ends_in_disconnected() {
    let fake = FakeTransport::default();
    fake.set_init(Step::Fail(TransportError::Media {
        message: "no microphone".into(),
        source: None,
    }));
    let client = client(&fake);
    let mut events = client.events();
    let err = client.init_devices().await.unwrap_err();
    assert!(matches!(err, Error::Transport(TransportError::Media { .. })), "{err:?}");
    assert_eq!(client.state(), Disconnected);
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Initializing, ErrorState, Disconnected]);
    assert_eq!(fake.disconnects(), 1);
    // A later connect works.
    fake.set_init(Step::Ok);
    client.connect(params()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bot_ready_overtaking_send_client_ready_still_resolves() {
    let fake = FakeTransport::default();
    *fake.0.yield_after_client_ready.lock().unwrap() = true;
    let client = client(&fake);
    let mut events = client.events();
    client.connect(params()).await.unwrap();
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Connected, Ready]);
    assert_eq!(fake.bot_readies(), 1);
}

#[tokio::test(start_paused = true)]
async fn already_started_while_active() {
    let fake = FakeTransport::silent();
    let client = client(&fake);
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.connect(params()).await }
    });
    settle().await;
    assert_eq!(client.state(), Connected);
    let err = client.connect(params()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyStarted { state: Connected }), "{err:?}");
    let err = client.start_bot(pipecat_core::ApiRequest::new("http://127.0.0.1:9/start")).await;
    assert!(matches!(err, Err(Error::AlreadyStarted { state: Connected })));
    // Re-opening devices mid-session is allowed and leaves the state alone.
    client.init_devices().await.unwrap();
    assert_eq!(client.state(), Connected);
    fake.bot_says(bot_ready(fake.sent()[0].id.as_str(), "2.2.0"));
    pending.await.unwrap().unwrap();
    let err = client.connect(params()).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyStarted { state: Ready }));
    assert_eq!(fake.connects(), 1);
}

#[tokio::test(start_paused = true)]
async fn disconnect_is_a_noop_when_idle_and_twice() {
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), Idle);
    client.connect(params()).await.unwrap();
    client.disconnect().await.unwrap();
    client.disconnect().await.unwrap();
    assert_eq!(fake.disconnects(), 1);
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Connected, Ready, Disconnecting, Disconnected]);
}

// ---- Ends ----

#[tokio::test(start_paused = true)]
async fn bot_disconnect_disconnects_by_default() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    let mut events = client.events();
    fake.emit(TransportEvent::BotDisconnected { reason: "peerLeft".into() });
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Disconnecting, Disconnected]);
    assert!(matches!(&events[0], ClientEvent::BotDisconnected { reason } if reason == "peerLeft"));
    assert_eq!(names_without_states(&events), ["bot-disconnected", "disconnected"]);
    assert_eq!(client.state(), Disconnected);
    assert_eq!(fake.disconnects(), 1);
}

#[tokio::test(start_paused = true)]
async fn bot_disconnect_with_auto_disconnect_off_stays_connected() {
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone()).disconnect_on_bot_disconnect(false).build();
    client.connect(params()).await.unwrap();
    let mut events = client.events();
    fake.emit(TransportEvent::BotDisconnected { reason: "peerLeft".into() });
    let events = drain(&mut events).await;
    assert_eq!(names(&events), ["bot-disconnected"]);
    assert_eq!(client.state(), Ready);
    assert_eq!(fake.disconnects(), 0);
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), Disconnected);
}

#[tokio::test(start_paused = true)]
async fn fatal_error_message_ends_the_session() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    let mut events = client.events();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.send_client_request("slow", None).await }
    });
    settle().await;
    fake.bot_says(msg("error", None, Some(json!({"error": "pipeline cancelled", "fatal": true}))));
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [ErrorState, Disconnected]);
    match &events[0] {
        ClientEvent::Error(e) => {
            assert_eq!(e.origin, ErrorOrigin::Bot);
            assert_eq!(e.message, "pipeline cancelled");
            assert!(e.fatal);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(names_without_states(&events), ["error", "disconnected"]);
    assert_eq!(fake.disconnects(), 1);
    assert!(matches!(pending.await.unwrap(), Err(Error::Disconnected)));
}

#[tokio::test(start_paused = true)]
async fn non_fatal_error_message_is_only_an_event() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    let mut events = client.events();
    fake.bot_says(msg("error", None, Some(json!({"error": "tts hiccup", "fatal": false}))));
    let events = drain(&mut events).await;
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], ClientEvent::Error(e) if !e.fatal && e.message == "tts hiccup"));
    assert_eq!(client.state(), Ready);
    assert_eq!(fake.disconnects(), 0);
}

#[tokio::test(start_paused = true)]
async fn transport_failure_ends_the_session() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    let mut events = client.events();
    fake.emit(TransportEvent::Failed(TransportError::ConnectionLost {
        code: Some(1006),
        reason: "abnormal closure".into(),
    }));
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [ErrorState, Disconnected]);
    match &events[0] {
        ClientEvent::Error(e) => {
            assert_eq!(e.origin, ErrorOrigin::Transport);
            assert!(e.fatal);
            assert!(matches!(
                e.error.as_deref(),
                Some(Error::Transport(TransportError::ConnectionLost { code: Some(1006), .. }))
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.disconnects(), 1);
}

#[tokio::test(start_paused = true)]
async fn connect_timeout() {
    let fake = FakeTransport::default();
    fake.set_connect(Step::Hang);
    let client =
        PipecatClient::builder(fake.clone()).connect_timeout(Duration::from_secs(7)).build();
    let mut events = client.events();
    let started = tokio::time::Instant::now();
    let err = client.connect(params()).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { what: TimeoutKind::Connect, after } if after == Duration::from_secs(7)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(client.state(), Disconnected);
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, ErrorState, Disconnected]);
    assert!(
        matches!(&events[1], ClientEvent::Error(e) if e.fatal && e.origin == ErrorOrigin::Client)
    );
    assert_eq!(fake.disconnects(), 1);
}

#[tokio::test(start_paused = true)]
async fn default_bot_ready_timeout() {
    let fake = FakeTransport::silent();
    let client = client(&fake);
    let mut events = client.events();
    let started = tokio::time::Instant::now();
    let err = client.connect(params()).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { what: TimeoutKind::BotReady, after } if after == pipecat_core::DEFAULT_BOT_READY_TIMEOUT),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Connected, ErrorState, Disconnected]);
    assert_eq!(client.state(), Disconnected);
    assert_eq!(fake.disconnects(), 1);
}

#[tokio::test(start_paused = true)]
async fn send_client_ready_hanging_counts_against_bot_ready_timeout() {
    let fake = FakeTransport::default();
    fake.set_send(Step::Hang);
    let client =
        PipecatClient::builder(fake.clone()).bot_ready_timeout(Duration::from_secs(3)).build();
    let mut events = client.events();
    let err = client.connect(params()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { what: TimeoutKind::BotReady, .. }), "{err:?}");
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, ErrorState, Disconnected]);
}

#[tokio::test(start_paused = true)]
async fn transport_connect_failure() {
    let fake = FakeTransport::default();
    fake.set_connect(Step::Fail(TransportError::Authentication("close 4003".into())));
    let client = client(&fake);
    let mut events = client.events();
    let err = client.connect(params()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Transport(TransportError::Authentication(m)) if m == "close 4003")
    );
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, ErrorState, Disconnected]);
    assert!(
        matches!(&events[1], ClientEvent::Error(e) if e.fatal && e.origin == ErrorOrigin::Transport)
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_params_from_the_transport() {
    let fake = FakeTransport::default();
    fake.set_connect(Step::Fail(TransportError::InvalidParams("wsUrl missing".into())));
    let client = client(&fake);
    let err = client.connect(params()).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidParams(m) if m == "wsUrl missing"), "{err:?}");
    assert_eq!(client.state(), Disconnected);
}

#[tokio::test(start_paused = true)]
async fn fatal_error_before_ready_fails_connect() {
    let fake = FakeTransport::silent();
    fake.respond(|m| match m.message.message_type() {
        "client-ready" => {
            vec![msg("error", None, Some(json!({"error": "no LLM key", "fatal": true})))]
        }
        _ => vec![],
    });
    let client = client(&fake);
    let mut events = client.events();
    let err = client.connect(params()).await.unwrap_err();
    assert!(matches!(&err, Error::BotError { message } if message == "no LLM key"), "{err:?}");
    assert_eq!(client.state(), Disconnected);
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Connected, ErrorState, Disconnected]);
}

#[tokio::test(start_paused = true)]
async fn bot_leaving_before_ready_fails_connect() {
    let fake = FakeTransport::silent();
    let client = client(&fake);
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.connect(params()).await }
    });
    settle().await;
    fake.emit(TransportEvent::BotDisconnected { reason: "bot crashed".into() });
    let err = pending.await.unwrap().unwrap_err();
    assert!(matches!(&err, Error::BotDisconnected { reason } if reason == "bot crashed"));
    assert_eq!(client.state(), Disconnected);
}

#[tokio::test(start_paused = true)]
async fn bot_leaving_before_ready_fails_connect_even_with_auto_disconnect_off() {
    // The option keeps an established session open; a session that never got bot-ready
    // cannot complete, so connect must fail at once instead of waiting for the timeout.
    let fake = FakeTransport::silent();
    let client = PipecatClient::builder(fake.clone()).disconnect_on_bot_disconnect(false).build();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.connect(params()).await }
    });
    settle().await;
    fake.emit(TransportEvent::BotDisconnected { reason: "bot crashed".into() });
    let err = tokio::time::timeout(Duration::from_secs(1), pending)
        .await
        .expect("connect settles without waiting for the bot-ready timeout")
        .unwrap()
        .unwrap_err();
    assert!(matches!(&err, Error::BotDisconnected { reason } if reason == "bot crashed"));
    assert_eq!(client.state(), Disconnected);
}

#[tokio::test(start_paused = true)]
async fn disconnect_during_connect_settles_it() {
    let fake = FakeTransport::default();
    fake.set_connect(Step::Hang);
    let client = client(&fake);
    let mut events = client.events();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.connect(params()).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(client.state(), Connecting);
    client.disconnect().await.unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Disconnected), "{err:?}");
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Disconnecting, Disconnected]);
}

#[tokio::test(start_paused = true)]
async fn disconnect_waiting_for_bot_ready_settles_connect() {
    let fake = FakeTransport::silent();
    let client = client(&fake);
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.connect(params()).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(client.state(), Connected);
    client.disconnect().await.unwrap();
    assert!(matches!(pending.await.unwrap(), Err(Error::Disconnected)));
    assert_eq!(client.state(), Disconnected);
}

#[tokio::test(start_paused = true)]
async fn hanging_transport_disconnect_is_bounded() {
    let fake = FakeTransport::default();
    fake.set_disconnect(Step::Hang);
    let client =
        PipecatClient::builder(fake.clone()).disconnect_timeout(Duration::from_secs(2)).build();
    client.connect(params()).await.unwrap();
    let err = client.disconnect().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { what: TimeoutKind::Disconnect, .. }), "{err:?}");
    assert_eq!(client.state(), Disconnected);
}

// ---- Reconnect ----

#[tokio::test(start_paused = true)]
async fn reconnect_with_the_same_client() {
    let fake = FakeTransport::default();
    let client = client(&fake);
    let mut events = client.events();
    for _ in 0..3 {
        client.connect(params()).await.unwrap();
        client.disconnect().await.unwrap();
    }
    // reconnect() reuses the last parameters.
    client.reconnect().await.unwrap();
    assert_eq!(client.state(), Ready);
    assert_eq!(fake.connects(), 4);
    assert_eq!(fake.0.params.lock().unwrap()[3], params());
    let events = drain(&mut events).await;
    let cycle = [Connecting, Connected, Ready, Disconnecting, Disconnected];
    let mut expected: Vec<TransportState> = cycle.repeat(3);
    expected.extend([Connecting, Connected, Ready]);
    assert_eq!(states(&events), expected);
    assert_chained(&events, Idle);
    // Every session had its own sink generation.
    let generations: Vec<u64> =
        fake.0.sinks.lock().unwrap().iter().map(|s| s.generation()).collect();
    assert_eq!(generations, [1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn reconnect_right_after_the_bot_left() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    fake.emit(TransportEvent::BotDisconnected { reason: "peerLeft".into() });
    tokio::task::yield_now().await;
    // The auto-disconnect may still be running: connect waits for it instead of failing.
    client.connect(params()).await.unwrap();
    assert_eq!(client.state(), Ready);
}

#[tokio::test(start_paused = true)]
async fn reconnect_without_history_is_invalid_params() {
    let client = client(&FakeTransport::default());
    assert!(matches!(client.reconnect().await, Err(Error::InvalidParams(_))));
}

#[tokio::test(start_paused = true)]
async fn late_events_of_an_old_session_are_ignored() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    client.disconnect().await.unwrap();
    client.connect(params()).await.unwrap();
    let mut events = client.events();
    let old = fake.sink_of(0);
    old.emit(TransportEvent::Message(msg("server-message", None, Some(json!({"old": true})))));
    old.emit(TransportEvent::Failed(TransportError::NotConnected));
    old.emit(TransportEvent::BotDisconnected { reason: "old".into() });
    old.emit(TransportEvent::TrackStopped(pipecat_core::media::TrackInfo {
        kind: pipecat_core::media::TrackKind::Audio,
        participant: None,
    }));
    fake.bot_says(msg("server-message", None, Some(json!({"new": true}))));
    let events = drain(&mut events).await;
    assert_eq!(names(&events), ["server-message"]);
    assert!(matches!(&events[0], ClientEvent::ServerMessage(v) if v["new"] == true));
    assert_eq!(client.state(), Ready);
}

// ---- Version handling ----

#[tokio::test(start_paused = true)]
async fn version_error_response_before_ready_is_a_warning() {
    let fake = FakeTransport::silent();
    fake.respond(|m| match m.message.message_type() {
        "client-ready" => vec![
            msg(
                "error-response",
                Some(&m.id),
                Some(json!({"error": "RTVI version 2.2.0 is not compatible"})),
            ),
            bot_ready(&m.id, "2.2.0"),
        ],
        _ => vec![],
    });
    let client = client(&fake);
    let mut events = client.events();
    client.connect(params()).await.unwrap();
    let events = drain(&mut events).await;
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::ProtocolWarning(ProtocolWarning::ClientReadyRejected { message })
            if message.contains("not compatible")
    )));
    assert!(!events.iter().any(|e| matches!(e, ClientEvent::MessageError { .. })));
}

#[tokio::test(start_paused = true)]
async fn incompatible_or_legacy_bot_versions_are_warnings() {
    for (version, expect) in [("3.0.0", "Incompatible"), ("1.2.0", "Legacy")] {
        let fake = FakeTransport::with_version(version);
        let client = client(&fake);
        let mut events = client.events();
        let bot = client.connect(params()).await.unwrap();
        assert_eq!(bot.version, version);
        let events = drain(&mut events).await;
        let warning = events.iter().find_map(|e| match e {
            ClientEvent::ProtocolWarning(ProtocolWarning::BotVersion { compatibility, .. }) => {
                Some(format!("{compatibility:?}"))
            }
            _ => None,
        });
        assert_eq!(warning.as_deref(), Some(expect));
    }
    let fake = FakeTransport::with_version("two");
    let client = client(&fake);
    let mut events = client.events();
    client.connect(params()).await.unwrap();
    assert_eq!(client.bot_version(), None);
    assert!(drain(&mut events).await.iter().any(|e| matches!(
        e,
        ClientEvent::ProtocolWarning(ProtocolWarning::InvalidBotVersion { version }) if version == "two"
    )));
}

#[tokio::test(start_paused = true)]
async fn unexpected_bot_ready_is_a_warning() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    let mut events = client.events();
    fake.bot_says(bot_ready("again", "2.2.0"));
    let events = drain(&mut events).await;
    assert!(matches!(
        &events[..],
        [ClientEvent::ProtocolWarning(ProtocolWarning::Unexpected { message_type })] if message_type == "bot-ready"
    ));
    assert_eq!(fake.bot_readies(), 1);
}

// ---- Many clients ----

#[tokio::test(start_paused = true)]
async fn many_clients_in_one_process_share_nothing() {
    let fakes: Vec<FakeTransport> = (0..20).map(|_| FakeTransport::default()).collect();
    let clients: Vec<PipecatClient> = fakes.iter().map(client).collect();
    let mut streams: Vec<_> = clients.iter().map(PipecatClient::events).collect();
    let results = futures::future::join_all(clients.iter().map(|c| c.connect(params()))).await;
    assert!(results.iter().all(Result::is_ok));
    // One client's session ends; the others are untouched.
    fakes[0].emit(TransportEvent::Failed(TransportError::NotConnected));
    for (i, stream) in streams.iter_mut().enumerate() {
        let events = drain(stream).await;
        let expected: &[TransportState] = if i == 0 {
            &[Connecting, Connected, Ready, ErrorState, Disconnected]
        } else {
            &[Connecting, Connected, Ready]
        };
        assert_eq!(states(&events), expected, "client {i}");
    }
    let ids: std::collections::HashSet<&str> = clients.iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), 20);
    for fake in &fakes {
        assert_eq!(fake.connects(), 1);
    }
}

#[test]
fn build_outside_a_runtime_starts_tasks_later() {
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone()).build();
    assert_eq!(client.state(), Idle);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        client.connect(params()).await.unwrap();
        assert_eq!(client.state(), Ready);
        client.disconnect().await.unwrap();
    });
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_closes_the_transport() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(fake.disconnects(), 1);
    // The event sink is closed once the client is gone.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(fake.attach_sink().is_closed());
}

/// Compile-time checks: the handle is shareable and every public future can be spawned.
#[allow(dead_code)]
fn handles_and_futures_are_send(client: PipecatClient, fake: FakeTransport) {
    fn send<T: Send>(_: T) {}
    fn share<T: Send + Sync + Clone + 'static>(_: &T) {}
    share(&client);
    send(client.init_devices());
    send(client.start_bot(pipecat_core::ApiRequest::new("http://x")));
    send(client.connect(params()));
    send(client.reconnect());
    send(client.start_bot_and_connect(pipecat_core::ApiRequest::new("http://x")));
    send(client.disconnect());
    send(client.send_client_message("t", None));
    send(client.send_client_request("t", None));
    send(client.send_text("t"));
    send(client.send_dtmf("1"));
    send(client.disconnect_bot());
    send(client.enable_mic(true));
    send(client.events());
    drop(fake);
}

/// Races on a real multi-threaded runtime: connects, disconnects and bot events at once.
/// Every call settles, every state change follows the table, the end state is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connects_and_disconnects_settle() {
    let fake = FakeTransport::default();
    *fake.0.yield_after_client_ready.lock().unwrap() = true;
    let client = client(&fake);
    let mut events = client.events();
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(event) = events.recv().await {
            all.push(event);
        }
        all
    });
    let run = async {
        for round in 0..40 {
            let connecting = tokio::spawn({
                let client = client.clone();
                async move { client.connect(params()).await }
            });
            if round % 2 == 0 {
                tokio::task::yield_now().await;
            }
            let disconnecting = tokio::spawn({
                let client = client.clone();
                async move { client.disconnect().await }
            });
            match connecting.await.unwrap() {
                Ok(_) | Err(Error::Disconnected) | Err(Error::AlreadyStarted { .. }) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
            disconnecting.await.unwrap().unwrap();
            client.disconnect().await.unwrap();
            assert_eq!(client.state(), Disconnected, "round {round}");
        }
    };
    tokio::time::timeout(Duration::from_secs(30), run).await.expect("a call hung");
    drop(client);
    let all = tokio::time::timeout(Duration::from_secs(5), collector).await.unwrap().unwrap();
    assert_chained(&all, Idle);
    assert!(matches!(all.last(), Some(ClientEvent::Disconnected)));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_pending_connect_ends_its_attempt() {
    let fake = FakeTransport::silent();
    let client = client(&fake);
    let mut events = client.events();
    // The caller gives up before the bot answers.
    let gave_up = tokio::time::timeout(Duration::from_secs(2), client.connect(params())).await;
    assert!(gave_up.is_err());
    settle().await;
    assert_eq!(client.state(), Disconnected);
    assert_eq!(fake.disconnects(), 1);
    let events = drain(&mut events).await;
    assert_eq!(states(&events), [Connecting, Connected, Disconnecting, Disconnected]);
    // And the client is usable again.
    fake.respond(|m| vec![bot_ready(&m.id, "2.2.0")]);
    client.connect(params()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dropping_a_pending_disconnect_still_finishes_it() {
    let fake = FakeTransport::default();
    fake.set_disconnect(Step::Hang);
    let client = ready_client_with(&fake, |b| b.disconnect_timeout(Duration::from_secs(5))).await;
    let gave_up = tokio::time::timeout(Duration::from_secs(1), client.disconnect()).await;
    assert!(gave_up.is_err());
    assert_eq!(client.state(), Disconnecting);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(client.state(), Disconnected);
}

async fn ready_client_with(
    fake: &FakeTransport,
    configure: impl FnOnce(pipecat_core::ClientBuilder) -> pipecat_core::ClientBuilder,
) -> PipecatClient {
    let client = configure(PipecatClient::builder(fake.clone())).build();
    client.connect(params()).await.expect("connect");
    client
}

/// A bot-ready whose version is missing, `null`, a number, or whose data is missing is
/// still a bot-ready: the session is ready at once with a protocol warning (never a
/// bot-ready timeout), and only what every bot understands is sent (no DTMF below 2.0).
#[tokio::test(start_paused = true)]
async fn a_bot_ready_without_a_usable_version_is_ready_with_a_warning() {
    let cases: [(Option<serde_json::Value>, &str); 4] = [
        (Some(json!({"about": {"library": "pipecat-ai"}})), ""),
        (Some(json!({"version": null})), ""),
        (Some(json!({"version": 2})), "2"),
        (None, ""),
    ];
    for (data, shown) in cases {
        let fake = FakeTransport::silent();
        let reply = data.clone();
        fake.respond(move |m| match m.message.message_type() {
            "client-ready" => vec![msg("bot-ready", Some(&m.id), reply.clone())],
            _ => vec![],
        });
        let client =
            PipecatClient::builder(fake.clone()).bot_ready_timeout(Duration::from_secs(30)).build();
        let mut events = client.events();
        let started = tokio::time::Instant::now();
        client.connect(params()).await.unwrap_or_else(|e| panic!("{data:?}: {e}"));
        assert!(started.elapsed() < Duration::from_secs(1), "{data:?} waited for a timeout");
        assert_eq!(client.state(), Ready);
        assert_eq!(client.bot_version(), None);
        assert!(
            drain(&mut events).await.iter().any(|e| matches!(
                e,
                ClientEvent::ProtocolWarning(ProtocolWarning::InvalidBotVersion { version })
                    if version == shown
            )),
            "{data:?}"
        );
        assert!(matches!(client.send_dtmf("1").await, Err(Error::Unsupported { .. })), "{data:?}");
        client.disconnect().await.unwrap();
    }
}

/// A clean close that is not the bot's ends the session without an error event.
#[tokio::test(start_paused = true)]
async fn a_clean_transport_close_ends_the_session_without_an_error() {
    let fake = FakeTransport::default();
    let client = ready_client(&fake).await;
    let mut events = client.events();
    fake.emit(TransportEvent::Closed { reason: "left the call".into() });
    let mut state = client.watch_state();
    tokio::time::timeout(Duration::from_secs(5), state.wait_for(|s| *s == Disconnected))
        .await
        .expect("disconnected in time")
        .unwrap();
    let events = drain(&mut events).await;
    assert!(!events.iter().any(|e| matches!(e, ClientEvent::Error(_))), "{events:?}");
    assert!(events.iter().any(
        |e| matches!(e, ClientEvent::ConnectionClosed { reason } if reason == "left the call")
    ));
    assert_eq!(states(&events), [Disconnecting, Disconnected]);
}
