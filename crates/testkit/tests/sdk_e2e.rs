//! Hermetic end-to-end tests: the SDK's own client (`PipecatClient` with the WebSocket and
//! SmallWebRTC transports) against the testkit bot, over real loopback sockets.

use std::time::Duration;

use pipecat_websocket::AudioBuilder as _;

use pipecat_core::{
    ApiRequest, ClientEvent, Error, EventStream, FunctionCall, PipecatClient, TransportState,
};
use pipecat_media::{AudioFormat, MemorySink, MemorySinkHandle, ToneSource};
use pipecat_testkit::{BotReadyMode, BotTransport, EndReason, TestBot};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Waits for the first event `pick` accepts.
async fn wait_event<T>(
    events: &mut EventStream,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Some(event) => {
                    if let Some(value) = pick(&event) {
                        return value;
                    }
                }
                None => panic!("the event stream ended"),
            }
        }
    })
    .await
    .expect("event timed out")
}

/// Waits until the sink has played `loud` 20 ms frames with sound in them.
async fn wait_for_echo(sink: &MemorySinkHandle, rate: u32, loud: usize) {
    let frame = (rate / 50) as usize;
    let mut heard = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        heard.extend(sink.take_all());
        let count = heard
            .chunks(frame)
            .filter(|c| pipecat_media::rms_i16(c) > 0.06 /* about 2000 in PCM16 */)
            .count();
        if count >= loud {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {count} loud frames of echo");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ws_client(bot_ready_timeout: Duration) -> (PipecatClient, MemorySinkHandle) {
    let mic = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3)
        .expect("tone")
        .limit(Duration::from_millis(600));
    let (speaker, played) = MemorySink::new(AudioFormat::MONO_24K).expect("sink");
    let transport = pipecat_websocket::WebSocketTransport::builder()
        .audio_source(mic)
        .audio_sink(speaker)
        .build()
        .expect("transport");
    let client = PipecatClient::builder(transport).bot_ready_timeout(bot_ready_timeout).build();
    (client, played)
}

fn ws_start(bot: &TestBot) -> ApiRequest {
    ApiRequest::new(bot.start_url()).request_data(json!({"transport": "websocket"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_websocket_session() {
    let bot = TestBot::builder().transports([BotTransport::WebSocket]).start().await.expect("bot");
    let (client, played) = ws_client(WAIT);
    client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
        Ok::<_, String>(json!({"city": call.arguments["city"], "temp": 21}))
    });
    let mut events = client.events();

    let ready = client.start_bot_and_connect(ws_start(&bot)).await.expect("ready");
    assert_eq!(ready.version, "2.2.0");
    assert_eq!(client.state(), TransportState::Ready);

    let answer = client.send_client_request("ping", json!({"n": 1})).await.expect("answer");
    assert_eq!(answer, json!({"pong": true, "echo": {"n": 1}}));

    // Audio both ways: the tone goes up, the echo comes back.
    wait_for_echo(&played, 24_000, 10).await;
    let heard =
        bot.recorder().wait_for_audio(WAIT, |s| s.loud_frames >= 10).await.expect("bot heard");
    assert_eq!(heard.sample_rate, Some(16_000));

    // A bot-initiated function call, answered by the client's handler.
    let session = bot.wait_for_session(WAIT).await.expect("session");
    let call = session.start_function_call("get_weather", json!({"city": "Paris"})).expect("call");
    let result = bot.recorder().wait_for_function_call_result(&call, WAIT).await.expect("result");
    assert_eq!(result.result, json!({"city": "Paris", "temp": 21}));

    // Pushed messages and the send-text reply reach the client as events.
    session.send_server_message(json!({"hello": "sdk"})).expect("push");
    let pushed = wait_event(&mut events, |e| match e {
        ClientEvent::ServerMessage(v) => Some(v.clone()),
        _ => None,
    })
    .await;
    assert_eq!(pushed, json!({"hello": "sdk"}));
    client.send_text("hi there").await.expect("send-text");
    let output = wait_event(&mut events, |e| match e {
        ClientEvent::BotOutput(o) => Some(o.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(output, "echo: hi there");
    let sent = bot.recorder().wait_for_message("send-text", WAIT).await.expect("send-text");
    assert!(sent.envelope.is_some());

    client.disconnect().await.expect("disconnect");
    assert_eq!(client.state(), TransportState::Disconnected);
    assert!(session.wait_ended(WAIT).await.is_ok());
    let ready_msg = bot.recorder().messages_of_type("client-ready");
    assert_eq!(ready_msg.len(), 1);
    assert!(ready_msg[0].data.as_ref().is_some_and(|d| d["version"] == "2.2.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_websocket_misbehaving_bots() {
    // No bot-ready: the client's bot-ready timeout fires.
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .bot_ready(BotReadyMode::Never)
        .start()
        .await
        .expect("bot");
    let (client, _) = ws_client(Duration::from_millis(500));
    let error = client.start_bot_and_connect(ws_start(&bot)).await.expect_err("no bot-ready");
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    assert_eq!(client.state(), TransportState::Disconnected);

    // Late bot-ready within the timeout, after garbage: still a good session.
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .bot_ready(BotReadyMode::Delayed(Duration::from_millis(300)))
        .garbage_before_ready(true)
        .start()
        .await
        .expect("bot");
    let (client, _) = ws_client(WAIT);
    client.start_bot_and_connect(ws_start(&bot)).await.expect("ready despite garbage");
    client.send_client_request("ping", json!(null)).await.expect("still works");

    // A fatal error from the bot ends the session.
    let mut events = client.events();
    let session = bot.wait_for_session(WAIT).await.expect("session");
    session.send_error("kaput", true).expect("fatal");
    let fatal = wait_event(&mut events, |e| match e {
        ClientEvent::Error(error) if error.fatal => Some(error.message.clone()),
        _ => None,
    })
    .await;
    assert!(fatal.contains("kaput"), "{fatal}");
    wait_event(&mut events, |e| {
        matches!(e, ClientEvent::TransportStateChanged { .. })
            .then_some(())
            .filter(|_| client.state() == TransportState::Disconnected)
    })
    .await;

    // An abrupt close ends it too.
    let (client, _) = ws_client(WAIT);
    client.start_bot_and_connect(ws_start(&bot)).await.expect("ready");
    let mut events = client.events();
    let session = bot.wait_for_sessions(2, WAIT).await.expect("sessions").pop().expect("second");
    session.close_abruptly().expect("abrupt");
    wait_event(&mut events, |e| {
        matches!(e, ClientEvent::TransportStateChanged { .. })
            .then_some(())
            .filter(|_| client.state() == TransportState::Disconnected)
    })
    .await;
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::Abrupt);

    // A bad token: refused with close code 4003 before any session exists.
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .websocket_token_auth(true)
        .start()
        .await
        .expect("bot");
    let (client, _) = ws_client(Duration::from_secs(2));
    let params = pipecat_websocket::WebSocketParams::new(bot.ws_url());
    assert!(client.connect(params).await.is_err());
    let (client, _) = ws_client(WAIT);
    client.start_bot_and_connect(ws_start(&bot)).await.expect("the start token works");
    client.disconnect().await.expect("disconnect");
}

#[cfg(feature = "webrtc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_webrtc_session() {
    let bot = TestBot::builder().transports([BotTransport::WebRtc]).start().await.expect("bot");
    let mic = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3)
        .expect("tone")
        .limit(Duration::from_millis(800));
    let (speaker, played) = MemorySink::new(AudioFormat::MONO_48K).expect("sink");
    let transport = pipecat_small_webrtc::SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(Box::new(mic))
        .audio_sink(Box::new(speaker))
        .build()
        .expect("transport");
    let client = PipecatClient::builder(transport).bot_ready_timeout(WAIT).build();
    let mut events = client.events();

    let ready = client
        .start_bot_and_connect(
            ApiRequest::new(bot.start_url()).request_data(json!({"body": {"from": "sdk"}})),
        )
        .await
        .expect("ready");
    assert_eq!(ready.version, "2.2.0");
    let answer = client.send_client_request("ping", json!({"n": 2})).await.expect("answer");
    assert_eq!(answer["pong"], true);

    wait_for_echo(&played, 48_000, 10).await;
    let session = bot.wait_for_session(WAIT).await.expect("session");
    assert!(session.pc_id().is_some_and(|id| id.starts_with("SmallWebRTCConnection#")));
    assert!(bot.recorder().events().iter().any(|e| matches!(
        &e.kind,
        pipecat_testkit::BotEventKind::PeerConnectionCreated { request_data: Some(d), .. } if d == &json!({"from": "sdk"})
    )));
    assert!(bot.recorder().pings(session.id()) >= 1, "the client keeps the channel alive");

    // The bot leaves: peerLeft, and the client disconnects itself.
    session.end().expect("end");
    wait_event(&mut events, |e| matches!(e, ClientEvent::BotDisconnected { .. }).then_some(()))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.state() != TransportState::Disconnected {
        assert!(tokio::time::Instant::now() < deadline, "still {}", client.state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::BotEnded);
}
