//! The testkit's WebSocket side and HTTP surface, driven by a raw tokio-tungstenite + pipecat-frames
//! client.

mod common;

use std::time::Duration;

use common::*;
use pipecat_testkit::{
    BotEventKind, BotReadyMode, BotTransport, EndReason, Garbage, History, InvalidKind, Reply,
    TestBot, TokenRejection,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn ws_bot() -> TestBot {
    TestBot::builder().transports([BotTransport::WebSocket]).start().await.expect("bot starts")
}

async fn start_ws(bot: &TestBot) -> Value {
    let (status, body) = post_json(&bot.start_url(), &json!({"transport": "websocket"})).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[cfg(feature = "webrtc")]
#[tokio::test]
async fn status_and_start_are_shaped_like_the_runner() {
    let bot = TestBot::start().await.expect("bot");
    assert!(bot.base_url().starts_with("http://127.0.0.1:"));

    let status: Value = reqwest::get(format!("{}/status", bot.base_url()))
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["status"], "ready");
    assert_eq!(status["transports"], json!(["webrtc", "websocket"]));

    let ws = start_ws(&bot).await;
    assert_eq!(ws["wsUrl"], bot.ws_url());
    assert!(ws["sessionId"].as_str().is_some_and(|s| s.len() == 36));
    assert_eq!(ws["token"], Value::Null);
    assert!(ws.as_object().is_some_and(|o| o.contains_key("token")), "token is sent as null");

    // webrtc is the default transport.
    let (status, body) = post_json(&bot.start_url(), &json!({"body": {"user": "u1"}})).await;
    assert_eq!(status, 200);
    let webrtc: Value = serde_json::from_str(&body).expect("json");
    assert!(webrtc["sessionId"].is_string());
    assert!(webrtc.get("iceConfig").is_none());
    let (_, body) = post_json(&bot.start_url(), &json!({"enableDefaultIceServers": true})).await;
    let with_ice: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(with_ice["iceConfig"]["iceServers"][0]["urls"][0], "stun:stun.l.google.com:19302");

    let (status, body) = post_json(&bot.start_url(), &json!({"transport": "carrier-pigeon"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("Unknown transport 'carrier-pigeon'."), "{body}");
    let (status, body) = post_json(&bot.start_url(), &json!({"transport": "daily"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("is disabled in this runner environment"), "{body}");

    // A body that is not JSON counts as {} (so: webrtc).
    let (status, _) = request(reqwest::Method::POST, &bot.start_url(), "not json").await;
    assert_eq!(status, 200);

    let starts = bot.recorder().start_requests();
    assert_eq!(starts.len(), 6);
    assert_eq!(starts[1].body["body"]["user"], "u1");
    assert_eq!(starts[1].transport, "webrtc");
    assert!(starts[0].header("content-type").is_some());
}

#[tokio::test]
async fn a_single_transport_behaves_like_dash_t() {
    let bot = ws_bot().await;
    let (status, body) = post_json(&bot.start_url(), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("wsUrl"));
    let (status, body) = post_json(&bot.start_url(), &json!({"transport": "webrtc"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("is not allowed"), "{body}");
    // No SmallWebRTC routes at all.
    let (status, _) = request(reqwest::Method::POST, &bot.offer_url(), "{}").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn start_misbehaviour_and_required_headers() {
    let bot = TestBot::builder()
        .start_failure(503, json!({"info": "no capacity"}))
        .start()
        .await
        .expect("bot");
    let (status, body) = post_json(&bot.start_url(), &json!({})).await;
    assert_eq!(status, 503);
    assert!(body.contains("no capacity"));

    let bot = TestBot::builder()
        .require_start_header("Authorization", "Bearer k")
        .start()
        .await
        .expect("bot");
    let (status, _) = post_json(&bot.start_url(), &json!({})).await;
    assert_eq!(status, 401);
    let response = reqwest::Client::new()
        .post(bot.start_url())
        .header("authorization", "Bearer k")
        .json(&json!({"transport": "websocket"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(bot.recorder().start_requests()[1].header("Authorization"), Some("Bearer k"));

    let bot = TestBot::builder().start_delay(Duration::from_secs(5)).start().await.expect("bot");
    let slow = reqwest::Client::new()
        .post(bot.start_url())
        .timeout(Duration::from_millis(300))
        .json(&json!({}))
        .send()
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));
}

#[tokio::test]
async fn client_ready_gets_bot_ready() {
    let bot = ws_bot().await;
    let mut client = WsClient::connect(&bot.ws_url()).await;
    let ready = client.handshake().await;
    assert_eq!(ready["id"], "cr-1");
    assert_eq!(ready["label"], "rtvi-ai");
    assert_eq!(ready["data"]["version"], "2.2.0");
    assert_eq!(ready["data"]["about"]["library"], "pipecat-testkit");
    assert_eq!(ready["data"]["capabilities"]["audio_in"], true);
    assert_eq!(ready["data"]["capabilities"]["video_out"], false);

    let session = bot.wait_for_session(WAIT).await.expect("session");
    assert_eq!(session.transport(), BotTransport::WebSocket);
    let received = bot.recorder().wait_for_message("client-ready", WAIT).await.expect("recorded");
    assert_eq!(received.id, "cr-1");
    assert_eq!(received.session_id, session.id());
    assert!(received.envelope.is_some());
    assert!(bot.recorder().events().iter().any(|e| e.kind == BotEventKind::BotReadySent));
}

#[tokio::test]
async fn version_negotiation_follows_the_runner() {
    let bot = ws_bot().await;
    let cases = [
        (
            json!({"about": {"library": "x"}}),
            Some("Client version unknown. Compatibility issues may occur."),
            "2.2.0",
        ),
        (
            json!({"version": "2.1"}),
            Some("Invalid client version format (2.1). Compatibility issues may occur."),
            "2.2.0",
        ),
        (
            json!({"version": "3.0.0"}),
            Some(
                "RTVI version 3.0.0 is not compatible with server protocol 2.2.0. Compatibility issues may occur.",
            ),
            "2.2.0",
        ),
        (json!({"version": "1.0.0"}), None, "1.0.0"),
        (json!({"version": "2.0.0"}), None, "2.2.0"),
    ];
    for (data, error, version) in cases {
        let mut client = WsClient::connect(&bot.ws_url()).await;
        client.send_json(&rtvi("client-ready", "cr", data.clone())).await;
        let first = client.next_rtvi().await;
        if let Some(error) = error {
            assert_eq!(first["type"], "error-response", "{data}");
            assert_eq!(first["id"], "cr");
            assert_eq!(first["data"]["error"], error);
            let ready = client.next_rtvi().await;
            assert_eq!(ready["type"], "bot-ready");
            assert_eq!(ready["data"]["version"], version);
        } else {
            assert_eq!(first["type"], "bot-ready", "{data}");
            assert_eq!(first["data"]["version"], version);
        }
    }
}

#[tokio::test]
async fn builtin_commands_mirror_the_peer_bot() {
    let bot = ws_bot().await;
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;

    client.send_json(&client_message("m-ping", "ping", json!({"x": 1}))).await;
    let pong = client.next_rtvi().await;
    assert_eq!(
        pong,
        json!({"label":"rtvi-ai","type":"server-response","id":"m-ping","data":{"t":"ping","d":{"pong":true,"echo":{"x":1}}}})
    );

    client.send_json(&client_message("m-sm", "server-msg", json!({"hello": "world"}))).await;
    assert_eq!(
        client.next_rtvi().await,
        json!({"label":"rtvi-ai","type":"server-message","data":{"hello":"world"}})
    );
    assert_eq!(client.next_rtvi().await["data"]["d"], json!({"sent": true}));

    client
        .send_json(&client_message("m-tr", "transcript", json!({"text": "hello there bot"})))
        .await;
    let types: Vec<Value> = futures_collect(&mut client, 5).await;
    let names: Vec<&str> = types.iter().map(|v| v["type"].as_str().unwrap_or("")).collect();
    assert_eq!(
        names,
        ["user-input", "user-transcription", "user-input", "user-transcription", "server-response"]
    );
    assert_eq!(types[0]["data"]["final"], false);
    assert_eq!(types[0]["data"]["text"], "hello t");
    assert_eq!(types[2]["data"]["final"], true);
    assert_eq!(types[2]["data"]["input_type"], "transcription");
    assert_eq!(types[3]["data"]["user_id"], "peer-user");
    assert!(types[3]["data"]["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));

    client
        .send_json(&client_message("m-bt", "bot-text", json!({"text": "Hello from the bot."})))
        .await;
    let reply = futures_collect(&mut client, 6).await;
    let names: Vec<&str> = reply.iter().map(|v| v["type"].as_str().unwrap_or("")).collect();
    assert_eq!(
        names,
        [
            "bot-llm-started",
            "bot-llm-text",
            "bot-transcription",
            "bot-llm-stopped",
            "bot-output",
            "server-response"
        ]
    );
    assert!(reply[0].get("data").is_none(), "no data on bot-llm-started");
    assert!(reply[0].get("id").is_none(), "no id on events");
    let output = &reply[4]["data"];
    assert_eq!(output["text"], "Hello from the bot.");
    assert_eq!(output["output_type"], "sentence");
    assert_eq!(output["spoken"], false);
    assert_eq!(output["spoken_status"], "new");

    client.send_json(&client_message("m-fail", "fail", json!({"error": "nope"}))).await;
    assert_eq!(
        client.next_rtvi().await,
        json!({"label":"rtvi-ai","type":"error-response","id":"m-fail","data":{"error":"nope"}})
    );

    client
        .send_json(&client_message("m-err", "error", json!({"error": "boom", "fatal": false})))
        .await;
    assert_eq!(client.next_rtvi().await["data"]["d"], json!({"error": true}));
    assert_eq!(
        client.next_rtvi().await,
        json!({"label":"rtvi-ai","type":"error","data":{"error":"boom","fatal":false}})
    );

    client.send_json(&client_message("m-met", "metrics", json!({}))).await;
    let metrics = client.next_rtvi().await;
    assert_eq!(metrics["type"], "metrics");
    assert_eq!(metrics["data"]["ttfb"][0]["value"], 0.123);
    client.next_rtvi().await;

    client.send_json(&client_message("m-us", "user-speaking", Value::Null)).await;
    assert_eq!(client.next_rtvi().await["type"], "user-started-speaking");
    assert_eq!(client.next_rtvi().await["type"], "user-stopped-speaking");
    client.next_rtvi().await;

    client.send_json(&client_message("m-int", "interrupt", Value::Null)).await;
    assert!(matches!(client.next().await, Some(WsEvent::Interruption)));
    assert_eq!(client.next_rtvi().await["type"], "bot-interrupted");
    assert_eq!(client.next_rtvi().await["data"]["d"], json!({"interrupted": true}));

    let session = bot.wait_for_session(WAIT).await.expect("session");
    assert!(matches!(
        session.peer_left(),
        Err(pipecat_testkit::TestkitError::WrongTransport { needs: BotTransport::WebRtc, .. })
    ));
    assert!(session.request_renegotiate().is_err());
    assert!(session.drop_peer_connection().is_err());
    client.send_json(&client_message("m-rn", "renegotiate", Value::Null)).await;
    assert_eq!(
        client.next_rtvi().await["data"]["error"],
        "renegotiate needs the SmallWebRTC transport"
    );

    client.send_json(&client_message("m-other", "anything", json!([1, 2]))).await;
    assert_eq!(client.next_rtvi().await["data"], json!({"t": "anything", "d": [1, 2]}));

    client.send_json(&client_message("m-tone", "tone", json!({"ms": 200, "hz": 440}))).await;
    let response = client.wait_rtvi("server-response").await;
    assert_eq!(response["data"]["d"]["samples"], 4_800);
    client.wait_rtvi("bot-started-speaking").await;
    client.wait_rtvi("bot-stopped-speaking").await;

    assert_eq!(bot.recorder().client_messages("ping").len(), 1);
}

/// Collects the next `n` RTVI messages (skipping audio).
async fn futures_collect(client: &mut WsClient, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(client.next_rtvi().await);
    }
    out
}

#[tokio::test]
async fn send_text_interrupts_and_echoes() {
    let bot = ws_bot().await;
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    client
        .send_json(&rtvi(
            "send-text",
            "st-1",
            json!({"content": "typed text", "options": {"run_immediately": true, "audio_response": false}}),
        ))
        .await;
    assert!(matches!(client.next().await, Some(WsEvent::Interruption)));
    assert_eq!(client.next_rtvi().await["type"], "bot-interrupted");
    let input = client.next_rtvi().await;
    assert_eq!(input["type"], "user-input");
    assert_eq!(input["data"]["input_type"], "chat");
    assert_eq!(input["data"]["msg_id"], "st-1");
    assert_eq!(input["data"]["final"], true);
    assert!(input["data"]["timestamp"].as_str().is_some_and(|t| t.ends_with("+00:00")));
    let names: Vec<String> = futures_collect(&mut client, 5)
        .await
        .iter()
        .map(|v| v["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        names,
        ["bot-llm-started", "bot-llm-text", "bot-transcription", "bot-llm-stopped", "bot-output"]
    );

    // Without run_immediately: no interruption and no reply.
    client
        .send_json(&rtvi(
            "send-text",
            "st-2",
            json!({"content": "later", "options": {"run_immediately": false}}),
        ))
        .await;
    let input = client.next_rtvi().await;
    assert_eq!(input["type"], "user-input");
    client.send_json(&client_message("p", "ping", Value::Null)).await;
    assert_eq!(client.next_rtvi().await["type"], "server-response");
}

#[tokio::test]
async fn audio_is_echoed_at_24k_in_40ms_chunks() {
    let bot = ws_bot().await;
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    let pcm = tone(600, 440.0, 16_000, 0.3);
    for chunk in pcm.chunks(512) {
        client.send_audio(chunk, 16_000).await;
    }
    let mut frames = Vec::new();
    let mut started = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while frames.len() < 10 && tokio::time::Instant::now() < deadline {
        match client.next().await {
            Some(WsEvent::Audio(frame)) => frames.push(frame),
            Some(WsEvent::Rtvi(v)) if v["type"] == "bot-started-speaking" => started = true,
            Some(WsEvent::Rtvi(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(started, "bot-started-speaking precedes the echo");
    assert!(frames.len() >= 10);
    for frame in &frames {
        assert_eq!(frame.sample_rate, 24_000);
        assert_eq!(frame.num_channels, 1);
        assert_eq!(frame.audio.len(), 1_920);
        assert_eq!(frame.pts, None);
    }
    let level = rms(&common::pcm(&frames[3].audio));
    assert!(level > 5_000.0, "echo level {level}");

    let stats = bot.recorder().wait_for_audio(WAIT, |s| s.samples >= 9_600).await.expect("stats");
    assert_eq!(stats.sample_rate, Some(16_000));
    assert!(stats.peak_rms > 6_000.0);
    assert!(stats.loud_frames >= 18);
    let session = bot.wait_for_session(WAIT).await.expect("session");
    let (rate, recorded) = bot.recorder().session_audio(session.id()).expect("recorded");
    assert_eq!(rate, 16_000);
    assert_eq!(recorded.len(), pcm.len());

    client.wait_rtvi("bot-stopped-speaking").await;

    // Silence is not echoed; with echo off nothing comes back either.
    bot.set_echo(false);
    for chunk in pcm.chunks(512) {
        client.send_audio(chunk, 16_000).await;
    }
    assert!(
        !matches!(client.next_within(Duration::from_millis(400)).await, Some(WsEvent::Audio(_))),
        "no echo when echo is off"
    );
}

#[tokio::test]
async fn function_calls_both_ways() {
    let bot = ws_bot().await;
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    let session = bot.wait_for_session(WAIT).await.expect("session");

    let call = session.start_function_call("get_weather", json!({"city": "Paris"})).expect("call");
    assert_eq!(call, "call-1");
    assert_eq!(
        client.next_rtvi().await,
        json!({"label":"rtvi-ai","type":"llm-function-call-started","data":{"function_name":"get_weather"}})
    );
    let in_progress = client.next_rtvi().await;
    assert_eq!(
        in_progress["data"],
        json!({"tool_call_id":"call-1","function_name":"get_weather","arguments":{"city":"Paris"}})
    );
    client
        .send_json(&rtvi(
            "llm-function-call-result",
            "fr-1",
            json!({"function_name":"get_weather","tool_call_id":"call-1","arguments":{"city":"Paris"},"result":{"temp":21}}),
        ))
        .await;
    assert_eq!(
        client.next_rtvi().await["data"],
        json!({"tool_call_id":"call-1","cancelled":false,"function_name":"get_weather","result":{"temp":21}})
    );
    let result =
        bot.recorder().wait_for_function_call_result("call-1", WAIT).await.expect("result");
    assert_eq!(result.result, json!({"temp": 21}));

    // The client can trigger one too; an incomplete result is refused like the server does.
    client
        .send_json(&client_message(
            "m-fn",
            "fn-call",
            json!({"function_name": "lookup", "arguments": {}}),
        ))
        .await;
    assert_eq!(client.next_rtvi().await["type"], "llm-function-call-started");
    let in_progress = client.next_rtvi().await;
    assert_eq!(in_progress["data"]["tool_call_id"], "call-2");
    assert_eq!(client.next_rtvi().await["data"]["d"], json!({"tool_call_id": "call-2"}));
    client
        .send_json(&rtvi(
            "llm-function-call-result",
            "fr-2",
            json!({"tool_call_id": "call-2", "result": "x"}),
        ))
        .await;
    let refused = client.next_rtvi().await;
    assert_eq!(refused["type"], "error-response");
    assert_eq!(refused["id"], "fr-2");

    session.cancel_function_call("call-2").expect("cancel");
    let stopped = client.next_rtvi().await;
    assert_eq!(stopped["data"]["cancelled"], true);
}

#[tokio::test]
async fn handlers_hooks_and_pushed_messages() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .on_client_message("weather", |request| async move {
            let city = request.d.and_then(|d| d.get("city").cloned()).unwrap_or(Value::Null);
            request.session.send_server_message(json!({"looking_up": city})).expect("push");
            Reply::response(json!({"temp": 21}))
        })
        .on_client_message("nope", |_| async { Reply::error("not today") })
        .on_client_message("quiet", |_| async { Reply::Silent })
        .on_client_message("boom", |_| async { panic!("handler bug") })
        .on_bot_ready(|session| async move {
            session.send_server_message(json!({"welcome": true})).expect("welcome");
        })
        .start()
        .await
        .expect("bot");
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    assert_eq!(client.next_rtvi().await["data"], json!({"welcome": true}));

    client.send_json(&client_message("w", "weather", json!({"city": "Paris"}))).await;
    assert_eq!(client.next_rtvi().await["data"], json!({"looking_up": "Paris"}));
    assert_eq!(client.next_rtvi().await["data"], json!({"t": "weather", "d": {"temp": 21}}));
    client.send_json(&client_message("n", "nope", Value::Null)).await;
    assert_eq!(client.next_rtvi().await["data"]["error"], "not today");
    client.send_json(&client_message("q", "quiet", Value::Null)).await;
    client.send_json(&client_message("b", "boom", Value::Null)).await;
    let panicked = client.next_rtvi().await;
    assert_eq!(panicked["id"], "b", "the silent handler sent nothing");
    assert_eq!(panicked["type"], "error-response");

    // The bot survives its handler's panic.
    let session = bot.wait_for_session(WAIT).await.expect("session");
    session.send(pipecat_testkit::rtvi::ServerMessage::BotLlmStarted).expect("send");
    assert_eq!(client.next_rtvi().await["type"], "bot-llm-started");
    session.play_tone(Duration::from_millis(100), 300.0).expect("tone");
    client.wait_rtvi("bot-started-speaking").await;
}

#[tokio::test]
async fn bad_input_is_answered_like_the_runner_and_never_kills_the_bot() {
    let bot = ws_bot().await;
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;

    // Unknown type, missing id, missing t, wrong label, not JSON, not protobuf, a text message.
    client
        .send_json(&rtvi("append-to-context", "atc-1", json!({"role": "user", "content": "x"})))
        .await;
    assert_eq!(
        client.next_rtvi().await,
        json!({"label":"rtvi-ai","type":"error-response","id":"atc-1","data":{"error":"Unsupported type append-to-context"}})
    );
    client
        .send_json(&json!({"label": "rtvi-ai", "type": "client-message", "data": {"t": "ping"}}))
        .await;
    let error = client.next_rtvi().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["data"]["fatal"], false);
    assert!(
        error["data"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Invalid RTVI transport message"))
    );
    client.send_json(&rtvi("client-message", "no-t", json!({"d": 1}))).await;
    let invalid = client.next_rtvi().await;
    assert_eq!(invalid["type"], "error-response");
    assert!(invalid["data"]["error"].as_str().is_some_and(|e| e.starts_with("Invalid message:")));
    client.send_json(&rtvi("dtmf", "d-1", json!({"button": "1"}))).await;
    assert_eq!(client.next_rtvi().await["type"], "error-response");
    client.send_json(&rtvi("dtmf", "d-2", json!({"buttons": ["1", "#"]}))).await;
    client
        .send_json(
            &json!({"label": "other", "type": "client-message", "id": "x", "data": {"t": "ping"}}),
        )
        .await;
    client.send_bytes(pipecat_frames::encode_message("{nope")).await;
    client.send_bytes(vec![0x0f, 0xff, 0x22, 0x10, 0x01]).await;
    client.send_bytes(vec![]).await;
    client.ws.send_text("hello?").await;
    client
        .send_bytes(pipecat_frames::encode(pipecat_frames::FrameKind::Audio(
            pipecat_frames::proto::AudioRawFrame {
                sample_rate: 0,
                num_channels: 0,
                audio: vec![1u8, 2, 3].into(),
                ..Default::default()
            },
        )))
        .await;
    client
        .send_json(&rtvi(
            "raw-audio",
            "ra",
            json!({"base64Audio": "AAAB", "sampleRate": 16000, "numChannels": 1}),
        ))
        .await;
    client.send_json(&rtvi("ui-event", "ui", json!({"event": "click"}))).await;

    // Still alive: the next ping is the next thing answered.
    client.send_json(&client_message("alive", "ping", Value::Null)).await;
    let pong = client.next_rtvi().await;
    assert_eq!(pong["id"], "alive");

    let invalid = bot.recorder().invalid_inputs();
    let kinds: Vec<InvalidKind> = invalid.iter().map(|i| i.kind).collect();
    for kind in [
        InvalidKind::InvalidEnvelope,
        InvalidKind::InvalidData,
        InvalidKind::NotRtvi,
        InvalidKind::NotJson,
        InvalidKind::UndecodableFrame,
        InvalidKind::BadFrame,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    assert_eq!(bot.recorder().messages_of_type("dtmf").len(), 2);
    assert_eq!(bot.recorder().messages_of_type("ui-event").len(), 1);
}

trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl SendText
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn send_text(&mut self, text: &str) {
        use futures::SinkExt;
        self.send(Message::text(text)).await.expect("send");
    }
}

#[tokio::test]
async fn late_and_missing_bot_ready() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .bot_ready(BotReadyMode::Delayed(Duration::from_millis(400)))
        .start()
        .await
        .expect("bot");
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.send_json(&client_ready("cr")).await;
    assert!(client.next_within(Duration::from_millis(200)).await.is_none(), "not yet");
    assert_eq!(client.next_rtvi().await["type"], "bot-ready");

    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .bot_ready(BotReadyMode::Never)
        .start()
        .await
        .expect("bot");
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.send_json(&client_ready("cr-x")).await;
    assert!(client.next_within(Duration::from_millis(500)).await.is_none(), "never");
    // The test can still release it.
    bot.wait_for_session(WAIT).await.expect("session").send_bot_ready().expect("ready");
    let ready = client.next_rtvi().await;
    assert_eq!(ready["type"], "bot-ready");
    assert_eq!(ready["id"], "cr-x");
}

#[tokio::test]
async fn garbage_before_ready_then_a_working_session() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .garbage_before_ready(true)
        .start()
        .await
        .expect("bot");
    let mut client = WsClient::connect(&bot.ws_url()).await;
    let mut garbage = 0;
    let mut rtvi_types = Vec::new();
    for _ in 0..Garbage::ALL.len() {
        match client.next().await {
            Some(WsEvent::Garbage) | Some(WsEvent::BadMessage(_)) => garbage += 1,
            Some(WsEvent::Audio(frame)) => {
                assert_eq!(frame.sample_rate, 0);
                garbage += 1
            }
            Some(WsEvent::Rtvi(v)) => rtvi_types.push(v),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(garbage, 5);
    assert_eq!(rtvi_types.len(), 3, "wrong label, unknown type, bad data: JSON but not usable");
    assert_eq!(client.handshake().await["type"], "bot-ready");
    let sent = bot.recorder().sent_types();
    assert!(sent.iter().filter(|t| t.starts_with("garbage/")).count() == Garbage::ALL.len());
}

#[tokio::test]
async fn endings_close_1000_or_drop_the_connection() {
    let bot = ws_bot().await;

    // disconnect-bot: close 1000.
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    client.send_json(&rtvi("disconnect-bot", "db", json!({}))).await;
    let close = client.wait_end().await.expect("a close frame").expect("with a code");
    assert_eq!(u16::from(close.code), 1000);
    let session = bot.sessions().pop().expect("session");
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::DisconnectBot);

    // A fatal error: error, then close 1000.
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    client.send_json(&client_message("e", "error", json!({"error": "kaput", "fatal": true}))).await;
    assert_eq!(client.next_rtvi().await["type"], "server-response");
    assert_eq!(client.next_rtvi().await["data"], json!({"error": "kaput", "fatal": true}));
    let close = client.wait_end().await.expect("close").expect("code");
    assert_eq!(u16::from(close.code), 1000);

    // Abrupt close: the TCP connection ends without a close frame.
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    let session = bot.wait_for_sessions(3, WAIT).await.expect("sessions").pop().expect("third");
    session.close_abruptly().expect("abrupt");
    assert!(client.wait_end().await.is_err(), "no close frame");
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::Abrupt);
    assert!(session.send_server_message(json!({})).is_err(), "nothing more on an ended session");

    // A chosen close code.
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    client.send_json(&client_message("c", "close", json!({"code": 4001, "reason": "bye"}))).await;
    let close = client.wait_end().await.expect("close").expect("code");
    assert_eq!(u16::from(close.code), 4001);
    assert_eq!(close.reason.as_str(), "bye");

    // The client leaving ends the session too.
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    let session = bot.wait_for_sessions(5, WAIT).await.expect("sessions").pop().expect("fifth");
    let _ = futures::SinkExt::close(&mut client.ws).await;
    drop(client);
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::ClientDisconnected);
    // Every session ends (the bot waits up to a second for each client's close reply).
    for session in bot.sessions() {
        session.wait_ended(WAIT).await.expect("ended");
    }
    assert!(bot.active_sessions().is_empty());
}

#[tokio::test]
async fn end_silence_and_oversize() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .end_silence(Duration::from_secs(2))
        .start()
        .await
        .expect("bot");
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    client.send_json(&client_message("o", "oversize", json!({"bytes": 1_100_000}))).await;
    assert_eq!(client.next_rtvi().await["data"]["d"]["bytes"], 1_100_000);
    let big = client.next_rtvi().await;
    let size = big.to_string().len();
    assert!((1_099_000..=1_101_000).contains(&size), "{size}");

    client.send_json(&client_message("end", "end", Value::Null)).await;
    assert_eq!(client.next_rtvi().await["data"]["d"], json!({"ending": true}));
    match client.next().await {
        Some(WsEvent::Audio(frame)) => assert_eq!(frame.audio.len(), 96_000),
        other => panic!("expected the trailing silence, got {other:?}"),
    }
    let close = client.wait_end().await.expect("close").expect("code");
    assert_eq!(u16::from(close.code), 1000);
}

#[tokio::test]
async fn token_auth_closes_with_4003_or_refuses_with_403() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .websocket_token_auth(true)
        .start()
        .await
        .expect("bot");
    let start = start_ws(&bot).await;
    let token = start["token"].as_str().expect("a token").to_owned();

    let mut client = WsClient::connect(&bot.ws_url()).await;
    let close = client.wait_end().await.expect("close frame").expect("code");
    assert_eq!(u16::from(close.code), 4003);

    let mut client = WsClient::connect(&format!("{}?token={token}", bot.ws_url())).await;
    assert_eq!(client.handshake().await["type"], "bot-ready");
    // One-time: the same token again is refused.
    let mut again = WsClient::connect(&format!("{}/{token}", bot.ws_url())).await;
    assert_eq!(u16::from(again.wait_end().await.expect("close").expect("code").code), 4003);
    // As a path segment, a fresh token works.
    let fresh = start_ws(&bot).await["token"].as_str().expect("token").to_owned();
    let mut client = WsClient::connect(&format!("{}/{fresh}", bot.ws_url())).await;
    assert_eq!(client.handshake().await["type"], "bot-ready");
    let rejected =
        bot.recorder().events().iter().filter(|e| e.kind == BotEventKind::TokenRejected).count();
    assert_eq!(rejected, 2);

    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .websocket_token_auth(true)
        .token_rejection(TokenRejection::Http403)
        .start()
        .await
        .expect("bot");
    let refused = tokio_tungstenite::connect_async(bot.ws_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    // With a Bearer header it is accepted.
    let token = start_ws(&bot).await["token"].as_str().expect("token").to_owned();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            bot.ws_url(),
        )
        .expect("request");
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("accepted");
    let mut client = WsClient { ws };
    assert_eq!(client.handshake().await["type"], "bot-ready");
}

#[tokio::test]
async fn shutdown_and_drop_stop_everything() {
    let bot = ws_bot().await;
    let addr = bot.addr();
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    bot.shutdown().await;
    let close = client.wait_end().await.expect("close").expect("code");
    assert_eq!(u16::from(close.code), 1001);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");

    let bot = ws_bot().await;
    let addr = bot.addr();
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    let recorder = bot.recorder().clone();
    drop(bot);
    assert!(client.wait_end().await.is_err(), "dropped without a goodbye");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "listener closed");
    let ended = recorder
        .events()
        .iter()
        .any(|e| e.kind == BotEventKind::SessionEnded { reason: EndReason::Shutdown });
    assert!(ended);
}

/// One session: handshake, a ping, the client leaves; waits until the bot saw the end.
async fn one_session(bot: &TestBot, n: usize) {
    let mut client = WsClient::connect(&bot.ws_url()).await;
    client.handshake().await;
    client.send_json(&client_message(&format!("m{n}"), "ping", json!({"n": n}))).await;
    client.next_rtvi().await;
    drop(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !bot.active_sessions().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the session did not end");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_bounded_history_forgets_the_oldest_sessions() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .history(History::LastSessions(1))
        .start()
        .await
        .unwrap();
    for n in 0..5 {
        one_session(&bot, n).await;
    }
    let kept: std::collections::HashSet<String> =
        bot.recorder().messages().into_iter().map(|m| m.session_id).collect();
    assert_eq!(kept.len(), 1, "one ended session is remembered: {kept:?}");
    assert_eq!(bot.recorder().client_messages("ping").len(), 1);
    assert!(bot.sessions().len() <= 2, "{} session handles kept", bot.sessions().len());
    bot.shutdown().await;

    // The default remembers everything.
    let bot = ws_bot().await;
    for n in 0..3 {
        one_session(&bot, n).await;
    }
    assert_eq!(bot.recorder().client_messages("ping").len(), 3);
    assert_eq!(bot.sessions().len(), 3);
    bot.shutdown().await;
}
