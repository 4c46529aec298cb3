//! The WebSocket transport's wire, one behaviour per test, against an in-test
//! tokio-tungstenite server on loopback (`common::TestServer`).
//!
//! These tests stay on a raw server rather than the testkit bot: they check the wire itself,
//! frame by frame (binary protobuf frames and their exact audio format and order, the URI the
//! handshake asked for, handshakes that stall or are refused with 403, close frames with any
//! code at any moment, TCP dropped with no close frame, WebSocket pings, garbage that is not
//! protobuf), which a bot that speaks the protocol correctly cannot show or provoke.
//! End-to-end behaviour against the testkit bot is in `crates/testkit/tests/sdk_e2e.rs`.

mod common;

use pipecat_websocket::AudioBuilder;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Events, Liveness, Mode, ProbeSource, RecordingSink, TestServer, eventually};
use futures::SinkExt;
use pipecat_core::{ConnectionParams, Transport, TransportError, TransportEvent};
use pipecat_media::{AudioFormat, MemorySource, ToneSource};
use pipecat_websocket::proto::frame::Frame as Kind;
use pipecat_websocket::{MAX_MESSAGE_SIZE, WebSocketParams, WebSocketTransport, codec};
use serde_json::json;
use tokio::sync::Semaphore;

const CLIENT_READY: &str =
    r#"{"label":"rtvi-ai","type":"client-ready","id":"cr-1","data":{"version":"2.2.0"}}"#;

/// A transport whose microphone is a probe (no audio) and whose sink records.
fn quiet_transport() -> (WebSocketTransport, Arc<common::Recorded>) {
    let (sink, rec) = RecordingSink::new();
    let transport = common::builder()
        .audio_source(ProbeSource(Arc::new(Liveness::default())))
        .audio_sink(sink)
        .build()
        .unwrap();
    (transport, rec)
}

fn params(value: serde_json::Value) -> ConnectionParams {
    ConnectionParams::from_json(value).unwrap()
}

#[tokio::test]
async fn rtvi_travels_as_binary_protobuf_message_frames() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;

    transport.send_client_ready(CLIENT_READY.into()).await.unwrap();
    // `recv_frame` panics on anything but a binary message holding a pipecat.Frame.
    match conn.recv_frame().await {
        Kind::Message(m) => assert_eq!(m.data, CLIENT_READY),
        other => panic!("expected a MessageFrame, got {other:?}"),
    }

    let bot_ready =
        json!({"label":"rtvi-ai","type":"bot-ready","id":"cr-1","data":{"version":"2.2.0"}});
    conn.send_rtvi(bot_ready.clone()).await;
    let got: serde_json::Value = serde_json::from_str(&events.wait_message().await).unwrap();
    assert_eq!(got, bot_ready);
    assert!(matches!(
        events.drain().first(),
        None | Some(TransportEvent::Message(_) | TransportEvent::BotConnected(_))
    ));
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_token_is_percent_encoded_into_the_query() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let p: ConnectionParams =
        WebSocketParams::new(server.url("/ws-client")).with_token("t/1 +").into();
    transport.connect(p, Events::new().sink).await.unwrap();
    assert_eq!(server.accept().await.uri, "/ws-client?token=t%2F1%20%2B");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_token_is_appended_to_an_existing_query() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let p = params(json!({"wsUrl": server.url("/ws-client?room=a"), "token": "abc"}));
    transport.connect(p, Events::new().sink).await.unwrap();
    assert_eq!(server.accept().await.uri, "/ws-client?room=a&token=abc");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_start_response_with_a_null_token_connects_without_one() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    // What pipecat's runner answers to POST /start {"transport": "websocket"}.
    let answer = json!({"wsUrl": server.url("/ws-client"), "sessionId": "0f9c", "token": null});
    let request = pipecat_core::ApiRequest::new("http://127.0.0.1:1/start");
    let p = transport.map_start_response(answer, &request).unwrap();
    assert_eq!(p.start_request.as_ref(), Some(&request));
    transport.connect(p, Events::new().sink).await.unwrap();
    assert_eq!(server.accept().await.uri, "/ws-client");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn unknown_keys_and_an_empty_token_are_ignored() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let p = params(json!({"ws_url": server.url("/x"), "other": {"deep": [1]}, "token": ""}));
    transport.connect(p, Events::new().sink).await.unwrap();
    assert_eq!(server.accept().await.uri, "/x");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn invalid_params_are_typed_errors() {
    let (transport, _) = quiet_transport();
    let request = pipecat_core::ApiRequest::new("http://127.0.0.1:1/start");
    let bad = [
        json!({}),
        json!({"sessionId": "x"}),
        json!({"wsUrl": 42}),
        json!({"wsUrl": "ws://127.0.0.1:1/ws", "token": 7}),
        json!({"wsUrl": "https://127.0.0.1/ws"}),
        json!({"wsUrl": "not a url"}),
    ];
    for value in bad {
        let err = transport.connect(params(value.clone()), Events::new().sink).await.unwrap_err();
        assert!(matches!(err, TransportError::InvalidParams(_)), "{value}: {err:?}");
        let err = transport.map_start_response(value.clone(), &request).unwrap_err();
        assert!(matches!(err, TransportError::InvalidParams(_)), "{value}: {err:?}");
    }
    let err = transport.map_start_response(json!(["wsUrl"]), &request).unwrap_err();
    assert!(matches!(err, TransportError::InvalidParams(_)));
    // Nothing was connected.
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_failure() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (transport, _) = quiet_transport();
    let p: ConnectionParams = WebSocketParams::new(format!("ws://127.0.0.1:{port}/ws")).into();
    let err = transport.connect(p, Events::new().sink).await.unwrap_err();
    assert!(matches!(err, TransportError::ConnectFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn a_stalled_handshake_times_out() {
    let server = TestServer::start_with(Mode::Stall).await;
    let transport = common::builder()
        .audio_source(ProbeSource(Arc::new(Liveness::default())))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = transport.connect(server.params(), Events::new().sink).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn http_403_at_the_handshake_is_an_authentication_error() {
    let server = TestServer::start_with(Mode::Refuse403).await;
    let (transport, _) = quiet_transport();
    let p: ConnectionParams =
        WebSocketParams::new(server.url("/ws-client")).with_token("secret-token").into();
    let err = transport.connect(p, Events::new().sink).await.unwrap_err();
    assert!(matches!(err, TransportError::Authentication(_)), "{err:?}");
    assert!(!err.to_string().contains("secret-token"), "token leaked: {err}");
}

#[tokio::test]
async fn audio_before_ready_is_held_then_flushed_in_order() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;

    for i in 1..=5i16 {
        mic.push(&[i * 100; 320]).unwrap();
    }
    eventually("the source to be read", || mic.buffered().is_zero()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Nothing but RTVI may have left: the next frame is this marker, not audio.
    transport.send_message(r#"{"marker":1}"#.into()).await.unwrap();
    assert!(matches!(conn.recv_frame().await, Kind::Message(m) if m.data.contains("marker")));

    transport.bot_ready();
    for i in 1..=5i16 {
        let frame = conn.recv_audio().await;
        assert_eq!(frame.format(), AudioFormat::MONO_16K);
        assert_eq!(frame.samples_per_channel(), 320);
        assert!(frame.samples().iter().all(|&s| s == i * 100), "frame {i} out of order");
    }
    // After ready, audio flows straight through.
    mic.push(&[777; 320]).unwrap();
    assert!(conn.recv_audio().await.samples().iter().all(|&s| s == 777));
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn pre_ready_buffer_is_bounded_and_drops_the_oldest() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder()
        .audio_source(source)
        .frame_duration(Duration::from_millis(20))
        .pre_ready_buffer(Duration::from_millis(60))
        .build()
        .unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    for i in 1..=10i16 {
        mic.push(&[i; 320]).unwrap();
    }
    eventually("the source to be read", || mic.buffered().is_zero()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    transport.bot_ready();
    for want in 8..=10i16 {
        assert_eq!(conn.recv_audio().await.samples()[0], want);
    }
    mic.push(&[99; 320]).unwrap();
    assert_eq!(conn.recv_audio().await.samples()[0], 99, "held frames beyond the bound were sent");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn audio_up_is_mono_at_the_input_rate_in_frames_of_the_set_duration() {
    let mut server = TestServer::start().await;
    let tone = ToneSource::new(AudioFormat::STEREO_48K, 440.0, 0.5).unwrap().paced(false);
    let transport = common::builder()
        .audio_source(tone)
        .input_sample_rate(24_000)
        .frame_duration(Duration::from_millis(40))
        .build()
        .unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    transport.bot_ready();
    let mut conn = server.accept().await;
    let mut energy = 0.0f32;
    for _ in 0..10 {
        let frame = conn.recv_audio().await;
        assert_eq!(frame.format(), AudioFormat::MONO_24K);
        assert_eq!(frame.samples_per_channel(), 960);
        energy = energy.max(frame.rms());
    }
    assert!(energy > 0.2, "the tone did not come through: rms {energy}");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn muted_microphone_sends_silence() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    assert!(transport.media().unwrap().is_mic_enabled());
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    transport.bot_ready();
    let mut conn = server.accept().await;

    transport.media().unwrap().enable_mic(false).await.unwrap();
    assert!(!transport.media().unwrap().is_mic_enabled());
    mic.push(&[1234; 320]).unwrap();
    let frame = conn.recv_audio().await;
    assert_eq!(frame.samples_per_channel(), 320, "muted audio still flows");
    assert!(frame.samples().iter().all(|&s| s == 0), "muted audio must be silence");

    transport.media().unwrap().enable_mic(true).await.unwrap();
    mic.push(&[1234; 320]).unwrap();
    assert!(conn.recv_audio().await.samples().iter().all(|&s| s == 1234));
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn bot_audio_reaches_the_sink_in_its_declared_format() {
    let mut server = TestServer::start().await;
    let (transport, rec) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    let formats = [(24_000, 1u16), (16_000, 1), (48_000, 2), (8_000, 1), (44_100, 2)];
    for (i, &(rate, channels)) in formats.iter().enumerate() {
        let frames = rate as usize / 25; // 40 ms
        let samples = vec![(i as i16 + 1) * 10; frames * usize::from(channels)];
        conn.send_audio(samples, rate, channels).await;
    }
    eventually("all bot frames in the sink", || rec.frames.lock().unwrap().len() == formats.len())
        .await;
    let frames = rec.frames.lock().unwrap().clone();
    for (i, (frame, &(rate, channels))) in frames.iter().zip(&formats).enumerate() {
        assert_eq!(frame.format(), AudioFormat::new(rate, channels));
        assert_eq!(frame.duration(), Duration::from_millis(40));
        assert!(frame.samples().iter().all(|&s| s == (i as i16 + 1) * 10));
    }
    let started = events.wait(|e| matches!(e, TransportEvent::TrackStarted(_))).await;
    assert!(
        matches!(started, TransportEvent::TrackStarted(t) if t.participant.as_ref().is_some_and(|p| !p.local))
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn interruption_frame_drops_queued_bot_audio_and_flushes_the_sink() {
    let mut server = TestServer::start().await;
    let (mut sink, rec) = RecordingSink::new();
    let gate = Arc::new(Semaphore::new(0));
    sink.gate = Some(gate.clone());
    let transport = common::builder()
        .audio_source(ProbeSource(Arc::new(Liveness::default())))
        .audio_sink(sink)
        .build()
        .unwrap();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;

    // Ten frames: the first blocks in the sink, nine wait in the queue.
    for i in 0..10i16 {
        conn.send_audio(vec![i; 960], 24_000, 1).await;
    }
    conn.send_bytes(codec::encode_interruption()).await;
    // A message after the interruption: once it is here, the interruption was handled.
    conn.send_rtvi(json!({"label":"rtvi-ai","type":"bot-interrupted"})).await;
    events.wait_message().await;
    gate.add_permits(100);
    eventually("the sink flushed", || rec.flushes.load(Ordering::SeqCst) >= 1).await;

    // Audio after the interruption plays.
    conn.send_audio(vec![500; 960], 24_000, 1).await;
    eventually("new audio in the sink", || {
        rec.frames.lock().unwrap().iter().any(|f| f.samples()[0] == 500)
    })
    .await;
    let written: Vec<i16> = rec.frames.lock().unwrap().iter().map(|f| f.samples()[0]).collect();
    assert!(written.len() <= 2, "queued audio was not dropped: {written:?}");
    assert_eq!(written.last(), Some(&500));
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn bot_interrupted_flushes_the_sink_at_once() {
    let mut server = TestServer::start().await;
    let (transport, rec) = quiet_transport();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let _conn = server.accept().await;
    transport.bot_interrupted();
    eventually("the sink flushed", || rec.flushes.load(Ordering::SeqCst) == 1).await;
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn bot_interrupted_and_bot_ready_without_a_session_are_no_ops() {
    let mut server = TestServer::start().await;
    let (transport, rec) = quiet_transport();
    // Never connected.
    transport.bot_interrupted();
    transport.bot_ready();
    // Connected once, then disconnected.
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let _conn = server.accept().await;
    transport.disconnect().await.unwrap();
    transport.bot_interrupted();
    transport.bot_ready();
    assert_eq!(rec.flushes.load(Ordering::SeqCst), 0, "no session, nothing to flush");
}

#[tokio::test]
async fn a_normal_close_is_a_bot_disconnect_after_the_messages_before_it() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    conn.send_rtvi(json!({"label":"rtvi-ai","type":"bot-stopped-speaking"})).await;
    conn.close(1000, "").await;
    assert!(events.wait_message().await.contains("bot-stopped-speaking"));
    let end = events.wait_end().await;
    assert!(matches!(end, TransportEvent::BotDisconnected { .. }), "{end:?}");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_bot_close_stops_every_session_task_before_the_client_disconnects() {
    let mut server = TestServer::start().await;
    let probe = Arc::new(Liveness::default());
    let transport = common::builder().audio_source(ProbeSource(probe.clone())).build().unwrap();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    eventually("audio capture running", || probe.waiting.load(Ordering::SeqCst) == 1).await;
    conn.close(1000, "").await;
    events.wait_end().await;
    // The session's tasks stop on their own, even before the client disconnects.
    eventually("audio capture stopped", || probe.waiting.load(Ordering::SeqCst) == 0).await;
    assert!(!transport.is_connected());
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    transport.disconnect().await.unwrap();
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn close_4003_is_an_authentication_error() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    server.accept().await.close(4003, "bad token").await;
    let end = events.wait_end().await;
    assert!(matches!(end, TransportEvent::Failed(TransportError::Authentication(_))), "{end:?}");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn other_close_codes_are_a_lost_connection_with_the_code() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    server.accept().await.close(1011, "internal").await;
    let end = events.wait_end().await;
    assert!(
        matches!(
            end,
            TransportEvent::Failed(TransportError::ConnectionLost { code: Some(1011), .. })
        ),
        "{end:?}"
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn abrupt_drop_is_a_fatal_connection_loss() {
    let mut server = TestServer::start().await;
    let probe = Arc::new(Liveness::default());
    let transport = common::builder().audio_source(ProbeSource(probe.clone())).build().unwrap();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let conn = server.accept().await;
    eventually("audio capture running", || probe.waiting.load(Ordering::SeqCst) == 1).await;
    drop(conn); // TCP closed with no close frame.
    let end = events.wait_end().await;
    assert!(
        matches!(end, TransportEvent::Failed(TransportError::ConnectionLost { code: None, .. })),
        "{end:?}"
    );
    eventually("audio capture stopped", || probe.waiting.load(Ordering::SeqCst) == 0).await;
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn garbage_from_the_server_gives_warnings_not_a_crash() {
    let mut server = TestServer::start().await;
    let (transport, rec) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;

    let warning = |e: &TransportEvent| matches!(e, TransportEvent::Warning(_));
    conn.send_bytes(vec![0xff, 0xff, 0xff, 0x01]).await; // not protobuf
    events.wait(warning).await;
    conn.send_bytes(Vec::new()).await; // an empty Frame
    events.wait(warning).await;
    conn.ws
        .send(tokio_tungstenite::tungstenite::Message::Text("{\"label\":\"rtvi-ai\"}".into()))
        .await
        .unwrap();
    events.wait(warning).await;
    // Audio the media layer refuses: zero rate, odd byte count.
    let bad_rate = pipecat_websocket::proto::AudioRawFrame {
        audio: vec![0u8; 4].into(),
        sample_rate: 0,
        num_channels: 1,
        ..Default::default()
    };
    conn.send_bytes(codec::encode(Kind::Audio(bad_rate))).await;
    events.wait(warning).await;
    let odd = pipecat_websocket::proto::AudioRawFrame {
        audio: vec![0u8; 3].into(),
        sample_rate: 16_000,
        num_channels: 1,
        ..Default::default()
    };
    conn.send_bytes(codec::encode(Kind::Audio(odd))).await;
    events.wait(warning).await;
    // Text and transcription frames are valid but not for us: ignored silently.
    conn.send_bytes(codec::encode(Kind::Text(Default::default()))).await;

    // The session goes on.
    conn.send_rtvi(json!({"label":"rtvi-ai","type":"server-message","data":{}})).await;
    assert!(events.wait_message().await.contains("server-message"));
    assert!(rec.frames.lock().unwrap().is_empty());
    transport.send_message("{}".into()).await.unwrap();
    assert!(matches!(conn.recv_frame().await, Kind::Message(_)));
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn messages_over_one_mebibyte_are_refused() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    assert_eq!(transport.max_message_size(), MAX_MESSAGE_SIZE);
    assert_eq!(MAX_MESSAGE_SIZE, 1024 * 1024);
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;

    let too_big = "x".repeat(MAX_MESSAGE_SIZE + 1);
    let err = transport.send_message(too_big).await.unwrap_err();
    assert!(
        matches!(err, TransportError::MessageTooLarge { size, max } if size == MAX_MESSAGE_SIZE + 1 && max == MAX_MESSAGE_SIZE)
    );
    let just_fits = "y".repeat(MAX_MESSAGE_SIZE);
    transport.send_message(just_fits).await.unwrap();
    assert!(
        matches!(conn.recv_frame().await, Kind::Message(m) if m.data.len() == MAX_MESSAGE_SIZE)
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn disconnect_closes_with_1000() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    assert!(transport.is_connected());
    let (closed, ()) = tokio::join!(conn.expect_close(), async {
        transport.disconnect().await.unwrap();
    });
    assert_eq!(closed, Some(1000));
    assert!(!transport.is_connected());
}

#[tokio::test]
async fn disconnect_returns_only_once_every_task_stopped() {
    let mut server = TestServer::start().await;
    let probe = Arc::new(Liveness::default());
    let transport = common::builder().audio_source(ProbeSource(probe.clone())).build().unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let _conn = server.accept().await;
    eventually("audio capture running", || probe.waiting.load(Ordering::SeqCst) == 1).await;
    transport.disconnect().await.unwrap();
    assert_eq!(probe.waiting.load(Ordering::SeqCst), 0, "a task outlived disconnect");
}

#[tokio::test]
async fn disconnect_is_idempotent_and_leaves_nothing_to_send_on() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let _conn = server.accept().await;
    transport.disconnect().await.unwrap();
    transport.disconnect().await.unwrap();
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
}

#[tokio::test]
async fn a_client_disconnect_is_neither_a_bot_disconnect_nor_a_failure() {
    let mut server = TestServer::start().await;
    let (transport, _) = quiet_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    let (_, ()) = tokio::join!(conn.expect_close(), async {
        transport.disconnect().await.unwrap();
    });
    // Anything the session reported late has had time to arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ends: Vec<_> = events
        .drain()
        .into_iter()
        .filter(|e| matches!(e, TransportEvent::BotDisconnected { .. } | TransportEvent::Failed(_)))
        .collect();
    assert!(ends.is_empty(), "{ends:?}");
}

#[tokio::test]
async fn a_second_session_on_the_same_transport_works() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    for round in 1..=2i16 {
        transport.connect(server.params(), Events::new().sink).await.unwrap();
        let mut conn = server.accept().await;
        transport.bot_ready();
        transport.send_message(format!("{{\"round\":{round}}}")).await.unwrap();
        assert!(
            matches!(conn.recv_frame().await, Kind::Message(m) if m.data.contains(&round.to_string()))
        );
        mic.push(&[round; 320]).unwrap();
        assert_eq!(conn.next_audio().await.samples()[0], round);
        transport.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn dropping_the_transport_stops_its_tasks() {
    let mut server = TestServer::start().await;
    let probe = Arc::new(Liveness::default());
    let transport = common::builder().audio_source(ProbeSource(probe.clone())).build().unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let _conn = server.accept().await;
    eventually("audio capture running", || probe.waiting.load(Ordering::SeqCst) == 1).await;
    drop(transport);
    eventually("audio capture stopped", || probe.waiting.load(Ordering::SeqCst) == 0).await;
}

/// A transport with a 200 ms keepalive.
fn keepalive_transport() -> WebSocketTransport {
    common::builder()
        .audio_source(ProbeSource(Arc::new(Liveness::default())))
        .keepalive(Some(Duration::from_millis(200)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn keepalive_pings_spare_a_server_that_answers_them() {
    let mut server = TestServer::start().await;
    // A server that reads (and so answers pings) keeps the connection.
    let transport = keepalive_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    let reader = tokio::spawn(async move {
        use futures::StreamExt;
        let mut pings = 0;
        while let Some(Ok(msg)) = conn.ws.next().await {
            if msg.is_ping() {
                pings += 1;
            }
        }
        pings
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(transport.is_connected(), "a live server must not be dropped");
    transport.disconnect().await.unwrap();
    assert!(reader.await.unwrap() >= 3, "pings were not sent");
    assert!(!events.drain().iter().any(|e| matches!(e, TransportEvent::Failed(_))));
}

#[tokio::test]
async fn keepalive_ends_the_session_with_a_silent_server() {
    let mut server = TestServer::start().await;
    // A server that stops reading: three silent intervals end the session.
    let transport = keepalive_transport();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let _silent = server.accept().await;
    let end = events.wait_end().await;
    assert!(
        matches!(end, TransportEvent::Failed(TransportError::ConnectionLost { code: None, ref reason }) if reason.contains("nothing received")),
        "{end:?}"
    );
    transport.disconnect().await.unwrap();
}

/// With audio going up every 20 ms, a send fails as soon as the server's close frame has been
/// read; the close code must still decide how the connection ended, every time.
#[tokio::test]
async fn a_close_code_wins_over_a_send_failing_while_audio_flows() {
    let expected = |code: u16, end: &TransportEvent| match code {
        1000 => matches!(end, TransportEvent::BotDisconnected { .. }),
        4003 => matches!(end, TransportEvent::Failed(TransportError::Authentication(_))),
        _ => matches!(
            end,
            TransportEvent::Failed(TransportError::ConnectionLost { code: Some(c), .. }) if *c == code
        ),
    };
    for round in 0..3 {
        for code in [1000, 1011, 4003] {
            let mut server = TestServer::start().await;
            let source = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3).unwrap().paced(true);
            let transport = common::builder().audio_source(source).build().unwrap();
            let mut events = Events::new();
            transport.connect(server.params(), events.sink.clone()).await.unwrap();
            let mut conn = server.accept().await;
            transport.bot_ready();
            for _ in 0..3 {
                conn.next_audio().await;
            }
            conn.close(code, "closing").await;
            let end = events.wait_end().await;
            assert!(expected(code, &end), "round {round}, close {code}: {end:?}");
            transport.disconnect().await.unwrap();
        }
    }
}
