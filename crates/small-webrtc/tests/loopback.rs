//! Hermetic end-to-end tests: the transport against a webrtc-rs answerer behind a tiny local
//! HTTP offer endpoint (axum on 127.0.0.1), playing the part of a SmallWebRTC bot.
//!
//! Every wait is bounded; nothing asserts on speed.

use std::time::Duration;

use axum::http::StatusCode;
use pipecat_core::{ConnectionParams, Transport, TransportError, TransportEvent};
use pipecat_media::{AudioFormat, MemorySink, ToneSource};
use pipecat_small_webrtc::{SmallWebRtcError, SmallWebRtcParams, SmallWebRtcTransport};
use serde_json::{Value, json};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ping_track_status_renegotiate_restart_and_peer_left() {
    let (bot, addr) = Bot::start().await;
    let (sink, handle) = MemorySink::new(AudioFormat::MONO_48K).unwrap();
    let source = ToneSource::new(AudioFormat::MONO_16K, 300.0, 0.3).unwrap().paced(true);
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(Box::new(source))
        .audio_sink(Box::new(sink))
        .recovery(quick_recovery(3))
        .build()
        .unwrap();
    let (events_sink, mut events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(addr), events_sink))
        .await
        .unwrap()
        .unwrap();

    // The offer had the expected shape: first offer, no pc_id, no restart, candidates stripped.
    let first = bot.log(|l| l.offers[0].clone());
    assert_eq!(first["type"], "offer");
    assert_eq!(first["pc_id"], Value::Null);
    assert_eq!(first["restart_pc"], false);
    let sdp = first["sdp"].as_str().unwrap();
    assert!(!sdp.contains("a=candidate"), "trickle mode sends candidates by PATCH");
    let kinds: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).map(|l| &l[2..7]).collect();
    assert_eq!(
        kinds,
        ["audio", "video", "video", "appli"],
        "audio first, then camera, screen, data"
    );
    assert!(sdp.contains("opus/48000/2"));

    // On open: trackStatus for each transceiver, then pings.
    bot.wait_for("trackStatus x3", |l| track_statuses(l).len() >= 3).await;
    assert_eq!(bot.log(track_statuses)[..3], [(0, true), (1, false), (2, false)]);
    bot.wait_for("trickled candidates", |l| !l.patches.is_empty()).await;
    let patch = bot.log(|l| l.patches[0].clone());
    assert!(patch["pc_id"].as_str().unwrap().starts_with("TestBot#"));
    assert!(patch["candidates"][0]["candidate"].as_str().unwrap().starts_with("candidate:"));
    assert_eq!(patch["candidates"][0]["sdp_mid"], "0");
    assert_eq!(patch["candidates"][0]["sdp_mline_index"], 0);

    // The SCTP negotiation gave the answerer's 256 KiB.
    assert_eq!(transport.max_message_size(), 262_144);
    let big = "x".repeat(262_145);
    assert!(matches!(
        transport.send_message(big).await,
        Err(TransportError::MessageTooLarge { .. })
    ));

    // RTVI both ways.
    transport
        .send_client_ready(rtvi("client-ready", "cr-1", json!({"version": "2.2.0"})))
        .await
        .unwrap();
    events.wait_for("bot-ready", |e| is_message_with_id(e, "cr-1")).await;
    events.wait_for("bot connected", |e| matches!(e, TransportEvent::BotConnected(_))).await;

    // Audio both ways, with levels.
    bot.wait_for("mic audio", |l| l.audio_packets > 20).await;
    let frame = tokio::time::timeout(WAIT, handle.next_frame()).await.unwrap().expect("bot audio");
    assert_eq!(frame.format(), AudioFormat::MONO_48K);
    events
        .wait_for("local level", |e| matches!(e, TransportEvent::LocalAudioLevel(l) if *l > 0.3))
        .await;
    events
        .wait_for("remote level", |e| matches!(e, TransportEvent::RemoteAudioLevel(l) if *l > 0.3))
        .await;

    // Mute and unmute announce themselves.
    transport.enable_mic(false).await.unwrap();
    assert!(!transport.is_mic_enabled());
    bot.wait_for("mic off", |l| track_statuses(l).contains(&(0, false))).await;
    transport.enable_mic(true).await.unwrap();
    bot.wait_for("mic on again", |l| {
        track_statuses(l).iter().filter(|s| **s == (0, true)).count() >= 2
    })
    .await;

    // The keepalive keeps going (at least 3 pings in 2.5 s, whatever the machine's speed).
    let before = bot.log(pings);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(bot.log(pings) >= before + 2, "pings keep flowing");

    // Server-requested renegotiation: a new offer on the same pc_id, restart_pc false.
    let pc_id = transport.stats().pc_id.expect("pc_id");
    bot.send(r#"{"type":"signalling","message":{"type":"renegotiate"}}"#).await;
    bot.wait_for("renegotiation offer", |l| l.offers.len() >= 2).await;
    let reneg = bot.log(|l| l.offers[1].clone());
    assert_eq!(reneg["pc_id"], pc_id.as_str());
    assert_eq!(reneg["restart_pc"], false);
    let deadline = tokio::time::Instant::now() + WAIT;
    while transport.stats().renegotiations < 1 {
        assert!(tokio::time::Instant::now() < deadline, "renegotiation never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    transport
        .send_message(rtvi("client-message", "after-reneg", json!({"t": "ping"})))
        .await
        .unwrap();
    events.wait_for("reply after renegotiation", |e| is_message_with_id(e, "after-reneg")).await;
    assert_eq!(transport.stats().pc_id.as_deref(), Some(pc_id.as_str()));

    // The link breaks: a new peer connection with restart_pc true, a new pc_id, same session.
    bot.drop_pc().await;
    events
        .wait_for("reconnecting", |e| {
            matches!(e, TransportEvent::Reconnecting { attempt: 1, max_attempts: 3 })
        })
        .await;
    events.wait_for("reconnected", |e| matches!(e, TransportEvent::Reconnected)).await;
    let restart = bot.log(|l| l.offers.last().cloned().unwrap());
    assert_eq!(restart["restart_pc"], true);
    assert_eq!(restart["pc_id"], pc_id.as_str());
    let new_id = transport.stats().pc_id.unwrap();
    assert_ne!(new_id, pc_id);
    assert_eq!(transport.stats().reconnections, 1);
    // The new channel announced the tracks again and messages flow without a new client-ready.
    bot.wait_for("trackStatus on the new channel", |l| track_statuses(l).len() >= 8).await;
    transport
        .send_message(rtvi("client-message", "after-restart", json!({"t": "ping"})))
        .await
        .unwrap();
    events.wait_for("reply after restart", |e| is_message_with_id(e, "after-restart")).await;
    let ready_count = bot.log(|l| l.messages.iter().filter(|m| m.contains("client-ready")).count());
    assert_eq!(ready_count, 1, "no second client-ready after recovery");

    // peerLeft is the bot leaving.
    bot.send(r#"{"type":"signalling","message":{"type":"peerLeft"}}"#).await;
    events
        .wait_for("bot disconnected", |e| matches!(e, TransportEvent::BotDisconnected { .. }))
        .await;

    let closed_before = bot.log(|l| l.closed_channels);
    transport.disconnect().await.unwrap();
    transport.disconnect().await.unwrap(); // idempotent
    // Our peer connection really went away: the bot's end of the channel closed.
    bot.wait_for("our channel closed", |l| l.closed_channels > closed_before).await;
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_gives_up_with_a_typed_error_and_a_second_session_works() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .without_audio()
        .video_transceivers(false)
        .recovery(quick_recovery(2))
        .build()
        .unwrap();
    let (sink, mut events) = Events::new(1);
    // A full offer request: its headers go with every offer, its data inside the body.
    let request = pipecat_core::ApiRequest::new(format!("http://{addr}/api/offer"))
        .header("X-Test", "yes")
        .request_data(json!({"user": "u1"}));
    let full = SmallWebRtcParams { webrtc_request: Some(request), ..Default::default() };
    transport.connect(full.into(), sink).await.unwrap();
    let first = bot.log(|l| l.offers[0].clone());
    assert_eq!(first["request_data"], json!({"user": "u1"}));
    assert_eq!(bot.log(|l| l.offer_headers[0].clone()).as_deref(), Some("yes"));
    bot.wait_for("trackStatus", |l| !track_statuses(l).is_empty()).await;
    // Audio-only layout: one trackStatus on open.
    assert_eq!(bot.log(track_statuses), [(0, true)]);

    // The bot's endpoint now refuses every offer, and its peer connection dies.
    *bot.canned.lock().unwrap() =
        Some((StatusCode::SERVICE_UNAVAILABLE, json!({"detail": "down"})));
    bot.drop_pc().await;
    events
        .wait_for("attempt 1", |e| {
            matches!(e, TransportEvent::Reconnecting { attempt: 1, max_attempts: 2 })
        })
        .await;
    events
        .wait_for("attempt 2", |e| matches!(e, TransportEvent::Reconnecting { attempt: 2, .. }))
        .await;
    let failed = events.wait_for("failed", |e| matches!(e, TransportEvent::Failed(_))).await;
    // Restart offers carried the same request data and headers.
    let restart = bot.log(|l| l.offers.last().cloned().unwrap());
    assert_eq!(restart["restart_pc"], true);
    assert_eq!(restart["request_data"], json!({"user": "u1"}));
    assert!(bot.log(|l| l.offer_headers.iter().all(|h| h.as_deref() == Some("yes"))));
    match failed {
        TransportEvent::Failed(TransportError::ReconnectFailed { attempts, reason }) => {
            assert_eq!(attempts, 2);
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    transport.disconnect().await.unwrap();

    // A second session on the same transport.
    *bot.canned.lock().unwrap() = None;
    let (sink, mut events) = Events::new(2);
    transport.connect(params(addr), sink).await.unwrap();
    transport.send_message(rtvi("client-message", "s2", json!({"t": "ping"}))).await.unwrap();
    events.wait_for("second session reply", |e| is_message_with_id(e, "s2")).await;
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_gathering_sends_candidates_in_the_offer_and_no_patch() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .without_audio()
        .wait_for_ice_gathering(Duration::from_secs(2))
        .build()
        .unwrap();
    let (sink, mut events) = Events::new(1);
    let session = SmallWebRtcParams::session(
        pipecat_core::ApiRequest::new(format!("http://{addr}/start")),
        "sess-1",
    );
    transport.connect(session.into(), sink).await.unwrap();
    let offer = bot.log(|l| l.offers[0].clone());
    assert!(offer["sdp"].as_str().unwrap().contains("a=candidate"));
    transport.send_message(rtvi("client-message", "g", json!({"t": "x"}))).await.unwrap();
    events.wait_for("reply", |e| is_message_with_id(e, "g")).await;
    assert!(bot.log(|l| l.patches.is_empty()));
    assert_eq!(transport.stats().candidate_patches, 0);
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_answers_and_http_errors_are_typed() {
    let (bot, addr) = Bot::start().await;
    let transport =
        SmallWebRtcTransport::builder().loopback_only().without_audio().build().unwrap();
    let cases = [
        (StatusCode::OK, json!({"sdp": "", "type": "answer", "pc_id": "x"})),
        (StatusCode::OK, json!({"sdp": "garbage", "type": "answer", "pc_id": "x"})),
        (StatusCode::OK, json!({"type": "answer"})),
        (StatusCode::OK, json!([1, 2])),
        (
            StatusCode::OK,
            json!({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "answer", "pc_id": "x"}),
        ),
    ];
    for (status, body) in cases {
        *bot.canned.lock().unwrap() = Some((status, body.clone()));
        let (sink, _events) = Events::new(1);
        let err = transport.connect(params(addr), sink).await.expect_err("bad answer");
        let TransportError::ConnectFailed { source: Some(source), .. } = &err else {
            panic!("{body}: {err:?}");
        };
        assert!(
            matches!(
                source.downcast_ref::<SmallWebRtcError>(),
                Some(SmallWebRtcError::InvalidAnswer { .. })
            ),
            "{body}: {err:?}"
        );
        transport.disconnect().await.unwrap();
    }
    *bot.canned.lock().unwrap() =
        Some((StatusCode::NOT_FOUND, json!({"detail": "Invalid or not-yet-ready session_id"})));
    let (sink, _events) = Events::new(1);
    match transport.connect(params(addr), sink).await {
        Err(TransportError::Http(e)) => {
            assert_eq!(e.status(), Some(404));
            assert!(e.to_string().contains("not-yet-ready"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Nothing listening: unreachable, quickly and typed.
    let (sink, _events) = Events::new(1);
    let closed: ConnectionParams =
        SmallWebRtcParams::offer_url("http://127.0.0.1:9/api/offer").into();
    assert!(matches!(transport.connect(closed, sink).await, Err(TransportError::Http(_))));
    // No offer URL at all.
    let (sink, _events) = Events::new(1);
    assert!(matches!(
        transport.connect(ConnectionParams::default(), sink).await,
        Err(TransportError::InvalidParams(_))
    ));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_connect_leaves_nothing_behind() {
    let (bot, addr) = Bot::start().await;
    let transport =
        SmallWebRtcTransport::builder().loopback_only().without_audio().build().unwrap();
    // Give up on the connect almost at once (as a client-side timeout would).
    let (sink, _events) = Events::new(1);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(1), transport.connect(params(addr), sink)).await;
    assert!(abandoned.is_err(), "connect cannot finish in 1 ms");
    transport.disconnect().await.unwrap();
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    // If the bot got that far, its channel closes again; either way a new session works.
    let (sink, mut events) = Events::new(2);
    transport.connect(params(addr), sink).await.unwrap();
    transport.send_message(rtvi("client-message", "fresh", json!({"t": "ping"}))).await.unwrap();
    events.wait_for("reply", |e| is_message_with_id(e, "fresh")).await;
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}
