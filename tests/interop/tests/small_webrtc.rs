//! The SmallWebRTC transport against the real pipecat-ai 1.14.0 peer bot (aiortc underneath),
//! through the public client API. Each test starts its own bot on a free loopback port with
//! `--loopback-ice`, and the transport binds and offers 127.0.0.1 only.

use std::time::Duration;

use pipecat_core::rtvi::{BotReady, InputType};
use pipecat_core::{
    ClientEvent, ConnectionParams, Error, ErrorOrigin, EventStream, FunctionCall, PipecatClient,
    Transport, TransportState,
};
use pipecat_interop_tests::PeerBot;
use pipecat_media::{
    AudioFormat, MemorySink, ToneGenerator, ToneSource, WavFileSink, WavFileSource, analysis,
};
use pipecat_small_webrtc::{
    RecoveryConfig, SmallWebRtcParams, SmallWebRtcTransport, SmallWebRtcTransportBuilder,
};
use serde_json::{Value, json};

/// Bound on every wait for the bot.
const WAIT: Duration = Duration::from_secs(30);

async fn bot(extra: &[&str]) -> PeerBot {
    init_tracing();
    let mut args = vec!["--loopback-ice"];
    args.extend_from_slice(extra);
    match PeerBot::start("webrtc", &args).await {
        Ok(bot) => bot,
        Err(e) => panic!("{e}"),
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,pipecat_small_webrtc=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Loopback only: the bot (with `--loopback-ice`) offers 127.0.0.1 and nothing else. No
/// audio unless a test gives a source or sink (there is no sound card here).
fn builder() -> SmallWebRtcTransportBuilder {
    SmallWebRtcTransport::builder().loopback_only().without_audio()
}

fn client(transport: SmallWebRtcTransport) -> PipecatClient {
    PipecatClient::builder(transport)
        .bot_ready_timeout(WAIT)
        .connect_timeout(WAIT)
        .request_timeout(WAIT)
        .build()
}

/// A client whose transport sends no audio and discards bot audio, and its transport.
fn quiet_client() -> (PipecatClient, SmallWebRtcTransport) {
    let transport = builder().build().unwrap();
    (client(transport.clone()), transport)
}

/// The next event `pick` accepts, within [`WAIT`]; `what` names it in the failure.
async fn expect<T>(
    events: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("event stream ended before {what}"),
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

/// Waits until the client is `state`.
async fn wait_state(client: &PipecatClient, state: TransportState) {
    let mut watch = client.watch_state();
    let reached = tokio::time::timeout(WAIT, watch.wait_for(|s| *s == state)).await;
    assert!(reached.is_ok(), "state {state} not reached (now {})", client.state());
}

/// Polls `check` until it holds, within [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_peer_bot_ready(ready: &BotReady) {
    assert_eq!(ready.version, "2.2.0");
    let about = ready.about.as_ref().expect("bot-ready about");
    assert_eq!(about.library, "pipecat-ai");
    assert_eq!(about.library_version.as_deref(), Some("1.14.0"));
    let caps = ready.capabilities.as_ref().expect("bot-ready capabilities (RTVI 2.2.0)");
    assert_eq!(caps.audio_in, Some(true));
    assert_eq!(caps.audio_out, Some(true));
}

/// Which offer URL a scenario connects through.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// `start_bot_and_connect`: `/start`, then `/sessions/{sessionId}/api/offer`.
    Session,
    /// `connect` straight to the runner's `/api/offer`.
    Direct,
}

impl Route {
    async fn connect(self, client: &PipecatClient, bot: &PeerBot) -> BotReady {
        let ready = match self {
            Route::Session => client.start_bot_and_connect(bot.start_request()).await,
            Route::Direct => {
                let url = format!("{}/api/offer", bot.base_url());
                client.connect(SmallWebRtcParams::offer_url(url)).await
            }
        };
        ready.unwrap_or_else(|e| panic!("not ready via {self:?}: {e}"))
    }
}

/// Runs each scenario twice: through `/sessions/{id}/api/offer` and through `/api/offer`.
macro_rules! over_both_offer_urls {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn via_session_offer_url() {
                super::$name(super::Route::Session).await;
            }

            #[tokio::test]
            async fn via_api_offer() {
                super::$name(super::Route::Direct).await;
            }
        }
    )*};
}

over_both_offer_urls!(
    client_request_response_and_error_response,
    server_message_reaches_the_client,
    send_text_interrupts_and_gets_the_bots_text,
    function_call_round_trip_reaches_stopped_with_our_result,
    non_fatal_error_is_reported_and_the_session_goes_on,
    fatal_error_ends_the_session,
    disconnect_bot_ends_the_session_through_peer_left,
    bot_end_is_a_bot_disconnect_too,
    client_disconnect_then_a_second_session_on_the_same_client,
    a_tone_sent_up_comes_back_down_with_its_energy_and_frequency,
    server_requested_renegotiation_keeps_the_peer_connection,
    recovery_that_runs_out_of_attempts_ends_in_disconnected,
    mic_toggle_is_announced_and_the_session_goes_on,
    restart_pc_recovery_after_the_server_closes_its_peer_connection,
    restart_pc_recovery_after_ice_goes_silent,
);

/// How many offers the bot's access log shows on `path`.
fn offers_on(bot: &PeerBot, path_prefix: &str) -> usize {
    bot.log().lines().filter(|l| l.contains(&format!("\"POST {path_prefix}"))).count()
}

#[tokio::test]
async fn start_bot_and_connect_reaches_ready_via_the_session_offer_url() {
    let bot = bot(&[]).await;
    let (client, transport) = quiet_client();
    let mut events = client.events();
    let ready = client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    assert_peer_bot_ready(&ready);
    assert_eq!(client.state(), TransportState::Ready);
    let started = expect(&mut events, "bot-started", |e| match e {
        ClientEvent::BotStarted(answer) => Some(answer.clone()),
        _ => None,
    })
    .await;
    let session = started["sessionId"].as_str().expect("sessionId").to_owned();
    // The offer went to /sessions/{id}/api/offer, derived from the /start endpoint.
    eventually("offer on the session URL", || {
        offers_on(&bot, &format!("/sessions/{session}/api/offer")) == 1
    })
    .await;
    assert!(transport.stats().pc_id.is_some_and(|id| id.starts_with("SmallWebRTCConnection")));
    // Candidates were trickled to the same session URL.
    eventually("trickled candidates", || transport.stats().candidates_sent > 0).await;
    assert!(bot.log().contains(&format!("\"PATCH /sessions/{session}/api/offer")));
    // The keepalive runs: past the server's 3 s liveness window, the bot still answers.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(transport.stats().pings >= 3, "{:?}", transport.stats());
    assert!(client.send_client_request("ping", json!(1)).await.is_ok());
    // aiortc advertises 256 KiB; the SCTP negotiation agrees.
    assert_eq!(transport.max_message_size(), 262_144);
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
}

#[tokio::test]
async fn connect_directly_to_api_offer_reaches_ready_with_trickle_ice() {
    let bot = bot(&[]).await;
    let (client, transport) = quiet_client();
    let params = SmallWebRtcParams::offer_url(format!("{}/api/offer", bot.base_url()));
    let ready = client.connect(params).await.expect("ready");
    assert_peer_bot_ready(&ready);
    assert_eq!(offers_on(&bot, "/api/offer"), 1);
    // Candidates went by PATCH after the answer, and the server took them.
    eventually("trickled candidates", || transport.stats().candidates_sent > 0).await;
    let stats = transport.stats();
    assert!(stats.candidate_patches >= 1);
    assert_eq!(stats.patch_failures, 0, "{stats:?}");
    assert!(bot.log().contains("\"PATCH /api/offer"));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn wait_for_ice_gathering_connects_without_patches() {
    let bot = bot(&[]).await;
    let transport = builder().wait_for_ice_gathering(Duration::from_secs(2)).build().unwrap();
    let client = client(transport.clone());
    let ready = client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    assert_peer_bot_ready(&ready);
    assert_eq!(transport.stats().candidate_patches, 0);
    assert!(client.send_client_request("ping", json!("g")).await.is_ok());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn start_bot_then_connect_reaches_ready() {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    // start_bot, then connect with its answer (and the request it answers).
    let answer = client.start_bot(bot.start_request()).await.expect("start answer");
    assert_eq!(client.state(), TransportState::Authenticated);
    let mut params = ConnectionParams::from_json(answer).unwrap();
    params.start_request = Some(bot.start_request());
    let ready = client.connect(params).await.expect("ready");
    assert_peer_bot_ready(&ready);
    assert!(client.bot_ready_data().is_some());
    client.disconnect().await.unwrap();

    // start_bot, then connect() without parameters: the transport maps the answer itself.
    client.start_bot(bot.start_request()).await.expect("start answer");
    let ready = client.reconnect().await.expect("ready");
    assert_peer_bot_ready(&ready);
    client.disconnect().await.unwrap();
}

async fn client_request_response_and_error_response(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    route.connect(&client, &bot).await;

    let pong = client.send_client_request("ping", json!({"x": 1})).await.expect("pong");
    assert_eq!(pong, json!({"pong": true, "echo": {"x": 1}}));

    let err = client.send_client_request("fail", json!({"error": "nope"})).await.unwrap_err();
    assert!(matches!(&err, Error::ErrorResponse { message } if message == "nope"), "{err:?}");

    let echo = client.send_client_request("something-else", json!({"a": [1, 2]})).await.unwrap();
    assert_eq!(echo, json!({"a": [1, 2]}));
    client.disconnect().await.unwrap();
}

async fn server_message_reaches_the_client(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut events = client.events();
    route.connect(&client, &bot).await;
    let reply = client.send_client_request("server-msg", json!({"hello": "world"})).await;
    assert_eq!(reply.unwrap(), json!({"sent": true}));
    let message = expect(&mut events, "server-message", |e| match e {
        ClientEvent::ServerMessage(data) => Some(data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message, json!({"hello": "world"}));
    client.disconnect().await.unwrap();
}

async fn send_text_interrupts_and_gets_the_bots_text(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut events = client.events();
    route.connect(&client, &bot).await;
    client.send_text("typed text").await.unwrap();

    expect(&mut events, "bot-interrupted", |e| {
        matches!(e, ClientEvent::BotInterrupted).then_some(())
    })
    .await;
    let input = expect(&mut events, "user-input", |e| match e {
        ClientEvent::UserInput(input) => Some(input.clone()),
        _ => None,
    })
    .await;
    assert_eq!(input.text, "typed text");
    assert_eq!(input.input_type, InputType::Chat);
    assert!(input.is_final);
    expect(&mut events, "bot-llm-started", |e| {
        matches!(e, ClientEvent::BotLlmStarted).then_some(())
    })
    .await;
    let text = expect(&mut events, "bot-llm-text", |e| match e {
        ClientEvent::BotLlmText(t) => Some(t.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "echo: typed text");
    expect(&mut events, "bot-llm-stopped", |e| {
        matches!(e, ClientEvent::BotLlmStopped).then_some(())
    })
    .await;
    let output = expect(&mut events, "bot-output", |e| match e {
        ClientEvent::BotOutput(o) => Some(o.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(output, "echo: typed text");
    client.disconnect().await.unwrap();
}

async fn function_call_round_trip_reaches_stopped_with_our_result(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
        let city = call.arguments["city"].as_str().unwrap_or("nowhere").to_owned();
        Ok::<_, String>(json!({"city": city, "temp": 21}))
    });
    let mut events = client.events();
    route.connect(&client, &bot).await;
    let reply = client
        .send_client_request(
            "fn-call",
            json!({"function_name": "get_weather", "tool_call_id": "call-7", "arguments": {"city": "Paris"}}),
        )
        .await
        .unwrap();
    assert_eq!(reply, json!({"tool_call_id": "call-7"}));
    let stopped = expect(&mut events, "llm-function-call-stopped", |e| match e {
        ClientEvent::LlmFunctionCallStopped(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(stopped.tool_call_id, "call-7");
    assert!(!stopped.cancelled);
    assert_eq!(stopped.function_name.as_deref(), Some("get_weather"));
    assert_eq!(stopped.result, Some(json!({"city": "Paris", "temp": 21})));
    client.disconnect().await.unwrap();
}

async fn non_fatal_error_is_reported_and_the_session_goes_on(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut events = client.events();
    route.connect(&client, &bot).await;
    client.send_client_request("error", json!({"error": "boom", "fatal": false})).await.unwrap();
    let error = expect(&mut events, "error", |e| match e {
        ClientEvent::Error(err) if err.origin == ErrorOrigin::Bot => Some(err.clone()),
        _ => None,
    })
    .await;
    assert_eq!(error.message, "boom");
    assert!(!error.fatal);
    assert_eq!(client.state(), TransportState::Ready);
    assert!(client.send_client_request("ping", Value::Null).await.is_ok());
    client.disconnect().await.unwrap();
}

async fn fatal_error_ends_the_session(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut events = client.events();
    route.connect(&client, &bot).await;
    // The reply may or may not beat the end of the session.
    let _ = client.send_client_request("error", json!({"error": "kaboom", "fatal": true})).await;
    let error = expect(&mut events, "fatal error", |e| match e {
        ClientEvent::Error(err) if err.fatal => Some(err.clone()),
        _ => None,
    })
    .await;
    assert_eq!(error.origin, ErrorOrigin::Bot);
    assert_eq!(error.message, "kaboom");
    wait_state(&client, TransportState::Disconnected).await;
    assert!(matches!(
        client.send_client_request("ping", Value::Null).await,
        Err(Error::NotReady { .. })
    ));
}

async fn disconnect_bot_ends_the_session_through_peer_left(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut events = client.events();
    route.connect(&client, &bot).await;
    client.disconnect_bot().await.unwrap();
    let reason = expect(&mut events, "bot-disconnected", |e| match e {
        ClientEvent::BotDisconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "peerLeft");
    expect(&mut events, "disconnected", |e| matches!(e, ClientEvent::Disconnected).then_some(()))
        .await;
    wait_state(&client, TransportState::Disconnected).await;
}

async fn bot_end_is_a_bot_disconnect_too(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut events = client.events();
    route.connect(&client, &bot).await;
    assert_eq!(
        client.send_client_request("end", Value::Null).await.unwrap(),
        json!({"ending": true})
    );
    expect(&mut events, "bot-disconnected", |e| {
        matches!(e, ClientEvent::BotDisconnected { .. }).then_some(())
    })
    .await;
    wait_state(&client, TransportState::Disconnected).await;
}

async fn client_disconnect_then_a_second_session_on_the_same_client(route: Route) {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let first = route.connect(&client, &bot).await;
    assert_peer_bot_ready(&first);
    assert!(client.send_client_request("ping", json!(1)).await.is_ok());
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
    // The bot noticed: its session ended.
    eventually("the bot saw the disconnect", || bot.log().contains("client disconnected")).await;

    let second = route.connect(&client, &bot).await;
    assert_peer_bot_ready(&second);
    let pong = client.send_client_request("ping", json!(2)).await.unwrap();
    assert_eq!(pong["echo"], json!(2));
    client.disconnect().await.unwrap();
    client.reconnect().await.expect("third ready");
    client.disconnect().await.unwrap();
}

async fn a_tone_sent_up_comes_back_down_with_its_energy_and_frequency(route: Route) {
    const HZ: f64 = 440.0;
    let bot = bot(&[]).await;
    // The "microphone": 2 s of a 440 Hz tone at 48 kHz, in real time, as Opus. The
    // "speaker": an in-memory sink at 24 kHz.
    let tone = ToneSource::new(AudioFormat::MONO_48K, HZ as f32, 0.3)
        .unwrap()
        .limit(Duration::from_millis(2000));
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let transport =
        builder().audio_source(Box::new(tone)).audio_sink(Box::new(sink)).build().unwrap();
    let client = client(transport);
    let mut events = client.events();
    route.connect(&client, &bot).await;

    // Collect the echo until 1 s of loud audio came back.
    let mut loud: Vec<i16> = Vec::new();
    let collected = tokio::time::timeout(WAIT, async {
        while loud.len() < 24_000 {
            let Some(frame) = speaker.next_frame().await else { break };
            if frame.rms() > 0.05 {
                loud.extend_from_slice(frame.samples());
            }
        }
    })
    .await;
    assert!(collected.is_ok(), "only {} loud samples came back", loud.len());
    // Both levels were reported, and the bot's audio track started.
    expect(&mut events, "remote track", |e| {
        matches!(e, ClientEvent::TrackStarted(_)).then_some(())
    })
    .await;
    expect(&mut events, "local level", |e| {
        matches!(e, ClientEvent::LocalAudioLevel(l) if *l > 0.5).then_some(())
    })
    .await;
    expect(&mut events, "remote level", |e| {
        matches!(e, ClientEvent::RemoteAudioLevel(l) if *l > 0.5).then_some(())
    })
    .await;
    client.disconnect().await.unwrap();

    let rms = pipecat_media::rms_i16(&loud);
    // Sent at 0.3 of full scale: a sine's RMS is 0.3 / sqrt(2), about 0.21 (two Opus hops
    // and three resamplings in between).
    assert!((0.12..0.28).contains(&rms), "echo RMS {rms}");
    let at_tone = analysis::goertzel_power(&loud, 24_000, HZ);
    let elsewhere = analysis::goertzel_power(&loud, 24_000, 1000.0)
        .max(analysis::goertzel_power(&loud, 24_000, 220.0));
    assert!(at_tone > 100.0 * elsewhere, "no {HZ} Hz peak: {at_tone} vs {elsewhere}");
    // The median over 100 ms windows: a dropout the bot's output may have under load (its
    // transport pads late audio with silence) does not skew it.
    let mut per_window: Vec<f64> =
        loud.chunks_exact(2_400).map(|w| analysis::zero_crossing_frequency(w, 24_000)).collect();
    per_window.sort_by(f64::total_cmp);
    let measured = per_window[per_window.len() / 2];
    eprintln!(
        "echo: {} samples, rms {rms:.3}, {HZ} Hz power {at_tone:.2e} vs {elsewhere:.2e}, \
         zero-crossing frequency {measured:.1} Hz",
        loud.len()
    );
    assert!((measured - HZ).abs() < 10.0, "echo frequency {measured} Hz");
}

async fn server_requested_renegotiation_keeps_the_peer_connection(route: Route) {
    let bot = bot(&[]).await;
    let (client, transport) = quiet_client();
    route.connect(&client, &bot).await;
    let pc_id = transport.stats().pc_id.expect("pc_id");
    let reply = client.send_client_request("renegotiate", Value::Null).await.unwrap();
    assert_eq!(reply, json!({"requested": true}));
    eventually("renegotiation done", || transport.stats().renegotiations >= 1).await;
    assert_eq!(transport.stats().pc_id.as_deref(), Some(pc_id.as_str()), "same pc_id");
    assert_eq!(transport.stats().reconnections, 0);
    let pong = client.send_client_request("ping", json!("after")).await.unwrap();
    assert_eq!(pong["echo"], "after");
    assert_eq!(client.state(), TransportState::Ready);
    client.disconnect().await.unwrap();
}

/// The server's peer connection dies under a running pipeline; the transport rebuilds it
/// with `restart_pc: true` and the same bot session answers on the new one.
async fn restart_keeps_the_bot_session(route: Route, mode: &str, recovery: RecoveryConfig) {
    let bot = bot(&[]).await;
    let transport = builder().recovery(recovery).build().unwrap();
    let client = client(transport.clone());
    let mut events = client.events();
    route.connect(&client, &bot).await;
    let old_id = transport.stats().pc_id.expect("pc_id");
    let reply = client.send_client_request("drop-pc", json!({"mode": mode})).await.unwrap();
    assert_eq!(reply["dropping"], old_id.as_str());

    expect(&mut events, "reconnecting", |e| {
        matches!(e, ClientEvent::Reconnecting { attempt: 1, .. }).then_some(())
    })
    .await;
    expect(&mut events, "reconnected", |e| matches!(e, ClientEvent::Reconnected).then_some(()))
        .await;
    let new_id = transport.stats().pc_id.expect("new pc_id");
    assert_ne!(new_id, old_id, "the server names the new peer connection");
    assert_eq!(client.state(), TransportState::Ready);

    // The same bot session answers on the new peer connection, without a second bot-ready.
    let pong = client.send_client_request("ping", json!("after-restart")).await.unwrap();
    assert_eq!(pong["echo"], "after-restart");
    let reply = client.send_client_request("server-msg", json!({"again": true})).await.unwrap();
    assert_eq!(reply, json!({"sent": true}));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut late = client.events();
    // No bot-ready arrives after recovery (only the original one, before `events` existed).
    let extra_ready = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(e) = late.recv().await {
            if matches!(e, ClientEvent::BotReady(_)) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(!matches!(extra_ready, Ok(true)), "a second bot-ready arrived");
    // One bot session throughout: the runner reports the new peer connection as a client
    // (re)connecting to the same session, and that session has not finished.
    let log = bot.log();
    let mut sessions: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("client connected (session ").nth(1))
        .map(|rest| rest.trim_end_matches(')'))
        .collect();
    assert_eq!(sessions.len(), 2, "connected, then reconnected");
    sessions.dedup();
    assert_eq!(sessions.len(), 1, "the same bot session");
    assert!(!log.contains("finished"), "the bot session went on");
    client.disconnect().await.unwrap();
}

async fn restart_pc_recovery_after_the_server_closes_its_peer_connection(route: Route) {
    restart_keeps_the_bot_session(route, "close", RecoveryConfig::default()).await;
}

async fn restart_pc_recovery_after_ice_goes_silent(route: Route) {
    // Only ICE consent failure tells: a short grace keeps the test quick.
    let recovery =
        RecoveryConfig { disconnected_grace: Duration::from_secs(2), ..RecoveryConfig::default() };
    restart_keeps_the_bot_session(route, "silent", recovery).await;
}

async fn recovery_that_runs_out_of_attempts_ends_in_disconnected(route: Route) {
    let mut bot = bot(&[]).await;
    let recovery = RecoveryConfig {
        max_attempts: 2,
        retry_delay: Duration::from_millis(300),
        ..RecoveryConfig::default()
    };
    let transport = builder().recovery(recovery).build().unwrap();
    let client = client(transport);
    let mut events = client.events();
    route.connect(&client, &bot).await;
    // The bot drops its peer connection and then vanishes for good.
    client.send_client_request("drop-pc", json!({"mode": "close"})).await.unwrap();
    bot.kill();
    expect(&mut events, "attempt 2", |e| {
        matches!(e, ClientEvent::Reconnecting { attempt: 2, max_attempts: 2 }).then_some(())
    })
    .await;
    let error = expect(&mut events, "fatal transport error", |e| match e {
        ClientEvent::Error(err) if err.fatal && err.origin == ErrorOrigin::Transport => {
            Some(err.clone())
        }
        _ => None,
    })
    .await;
    assert!(error.message.contains("reconnection failed after 2 attempts"), "{}", error.message);
    wait_state(&client, TransportState::Disconnected).await;
    assert!(matches!(
        client.send_client_request("ping", Value::Null).await,
        Err(Error::NotReady { .. })
    ));
}

async fn mic_toggle_is_announced_and_the_session_goes_on(route: Route) {
    let bot = bot(&[]).await;
    let tone = ToneSource::new(AudioFormat::MONO_16K, 300.0, 0.3).unwrap();
    let transport = builder().audio_source(Box::new(tone)).build().unwrap();
    let client = client(transport.clone());
    route.connect(&client, &bot).await;
    client.enable_mic(false).await.unwrap();
    assert!(!client.is_mic_enabled());
    client.enable_mic(true).await.unwrap();
    assert!(client.is_mic_enabled());
    assert!(client.send_client_request("ping", Value::Null).await.is_ok());
    client.disconnect().await.unwrap();
}

/// The time from `start_bot_and_connect` to `ready`, median of 20 runs. A measurement, not a
/// test (ignored by default):
/// `cargo test -p pipecat-interop-tests --test small_webrtc -- --ignored --nocapture time_to_ready`
#[tokio::test]
#[ignore = "a measurement; run it explicitly"]
async fn time_to_ready_median_of_20() {
    let bot = bot(&[]).await;
    let (client, _transport) = quiet_client();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        client.start_bot_and_connect(bot.start_request()).await.expect("ready");
        times.push(started.elapsed());
        client.disconnect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    times.sort();
    let median = (times[9] + times[10]) / 2;
    eprintln!(
        "start_bot_and_connect -> ready over SmallWebRTC, 20 runs: median {:.1} ms (min {:.1} ms, max {:.1} ms)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3
    );
}

#[tokio::test]
async fn a_wav_file_streamed_up_comes_back_into_a_wav_file() {
    const HZ: f64 = 440.0;
    // The "microphone": a WAV file, 1.5 s of a 440 Hz tone at 48 kHz written with hound,
    // streamed in real time (as 48 kHz Opus). The "speaker": a WAV file at 24 kHz.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tone-440.wav");
    let output = dir.path().join("echo.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&input, spec).unwrap();
    let tone = ToneGenerator::new(AudioFormat::MONO_48K, HZ as f32, 0.3)
        .unwrap()
        .frame(72_000, Duration::ZERO);
    for &s in tone.samples() {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();

    let bot = bot(&[]).await;
    let transport = builder()
        .audio_source(Box::new(WavFileSource::open(&input).unwrap()))
        .audio_sink(Box::new(WavFileSink::create(&output, AudioFormat::MONO_24K).unwrap()))
        .build()
        .unwrap();
    let client = client(transport.clone());
    let mut events = client.events();
    Route::Session.connect(&client, &bot).await;

    // Tracks and levels as the client reports them; the local track stops when the file ends.
    let is_local =
        |t: &pipecat_core::media::TrackInfo| t.participant.as_ref().is_some_and(|p| p.local);
    let mut bot_track = false;
    let mut local_started = false;
    let mut local_stopped = false;
    let mut loud_local = 0;
    let mut loud_remote = 0;
    let finished = tokio::time::timeout(WAIT, async {
        // Until the file ended and the echo went quiet: no loud bot level for 1 s (the bot
        // keeps sending silence, so events never stop).
        let mut last_loud = tokio::time::Instant::now();
        loop {
            if local_stopped && loud_remote >= 10 && last_loud.elapsed() > Duration::from_secs(1) {
                break;
            }
            let next = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                Ok(event) => event,
                Err(_) => continue,
            };
            match next {
                Some(ClientEvent::TrackStarted(t)) if is_local(&t) => local_started = true,
                Some(ClientEvent::TrackStarted(_)) => bot_track = true,
                Some(ClientEvent::TrackStopped(t)) if is_local(&t) => local_stopped = true,
                Some(ClientEvent::LocalAudioLevel(l)) if l > 0.5 => loud_local += 1,
                Some(ClientEvent::RemoteAudioLevel(l)) if l > 0.5 => {
                    loud_remote += 1;
                    last_loud = tokio::time::Instant::now();
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    client.disconnect().await.unwrap();
    transport.close_audio_sink().await.unwrap();
    assert!(
        finished.is_ok(),
        "no end of the echo within {WAIT:?} (loud bot levels: {loud_remote})"
    );
    assert!(
        bot_track && local_started && local_stopped,
        "track events: bot {bot_track}, local start {local_started}, local stop {local_stopped}"
    );
    // 1.5 s of tone: about 15 local levels; the echo about as many.
    assert!(loud_local >= 12, "{loud_local} loud local levels");
    assert!(loud_remote >= 10, "{loud_remote} loud bot levels");

    let mut reader = hound::WavReader::open(&output).unwrap();
    assert_eq!((reader.spec().sample_rate, reader.spec().channels), (24_000, 1));
    let recorded: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    // The loud 20 ms windows, without the first and last (codec and resampler ramps).
    let windows: Vec<&[i16]> =
        recorded.chunks(480).filter(|w| pipecat_media::rms_i16(w) > 0.05).collect();
    let inner = if windows.len() > 2 { &windows[1..windows.len() - 1] } else { &windows[..] };
    let loud: Vec<i16> = inner.iter().flat_map(|w| w.iter().copied()).collect();
    assert!(loud.len() >= 24_000, "only {} loud samples in the recording", loud.len());

    let rms = pipecat_media::rms_i16(&loud);
    // Sent at 0.3 of full scale: a sine's RMS is about 0.21 (two Opus hops in between).
    assert!((0.12..0.28).contains(&rms), "echo RMS {rms}");
    let at_tone = analysis::goertzel_power(&loud, 24_000, HZ);
    let elsewhere = analysis::goertzel_power(&loud, 24_000, 1000.0)
        .max(analysis::goertzel_power(&loud, 24_000, 220.0));
    assert!(at_tone > 100.0 * elsewhere, "no {HZ} Hz peak: {at_tone} vs {elsewhere}");
    // The median over 100 ms windows, robust to a dropout of the bot's output under load.
    let mut per_window: Vec<f64> =
        loud.chunks_exact(2_400).map(|w| analysis::zero_crossing_frequency(w, 24_000)).collect();
    per_window.sort_by(f64::total_cmp);
    let measured = per_window[per_window.len() / 2];
    eprintln!(
        "WAV echo: {} samples, rms {rms:.3}, {HZ} Hz power {at_tone:.2e} vs {elsewhere:.2e}, \
         zero-crossing frequency {measured:.1} Hz",
        loud.len()
    );
    assert!((measured - HZ).abs() < 10.0, "echo frequency {measured} Hz");
}
