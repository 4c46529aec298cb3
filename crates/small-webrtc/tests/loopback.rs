//! Hermetic end-to-end tests of the SmallWebRTC wire: the transport against the testkit bot
//! (`pipecat_testkit::TestBot`) on 127.0.0.1, one behaviour per test.
//!
//! Every wait is bounded; nothing asserts on speed.

use pipecat_small_webrtc::AudioBuilder;
use std::time::Duration;

use pipecat_core::{ApiRequest, ConnectionParams, Transport, TransportError, TransportEvent};
use pipecat_media::{AudioFormat, MemorySink, MemorySinkHandle, ToneSource};
use pipecat_small_webrtc::{SmallWebRtcError, SmallWebRtcParams, SmallWebRtcTransport};
use pipecat_testkit::{EndReason, TestBot};
use serde_json::{Value, json};

mod common;
use common::*;

/// A transport with a paced 300 Hz microphone at 16 kHz, a memory speaker at 48 kHz, and
/// `attempts` quick recovery attempts.
fn audio_transport(attempts: u32) -> (SmallWebRtcTransport, MemorySinkHandle) {
    let (sink, handle) = MemorySink::new(AudioFormat::MONO_48K).unwrap();
    let source = ToneSource::new(AudioFormat::MONO_16K, 300.0, 0.3).unwrap().paced(true);
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(Box::new(source))
        .audio_sink(Box::new(sink))
        .recovery(quick_recovery(attempts))
        .build()
        .unwrap();
    (transport, handle)
}

/// A transport without audio.
fn quiet_transport() -> SmallWebRtcTransport {
    SmallWebRtcTransport::builder().loopback_only().without_audio().build().unwrap()
}

/// Connects `transport` to the bot's offer endpoint.
async fn connect(transport: &SmallWebRtcTransport, params: ConnectionParams) -> Events {
    let (sink, events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params, sink)).await.unwrap().unwrap();
    events
}

/// An audio transport, connected.
async fn connected(bot: &TestBot) -> (SmallWebRtcTransport, MemorySinkHandle, Events) {
    let (transport, speaker) = audio_transport(3);
    let events = connect(&transport, params(bot)).await;
    (transport, speaker, events)
}

/// Sends a ping `client-message` and waits for the bot's reply.
async fn round_trip(transport: &SmallWebRtcTransport, events: &mut Events, id: &str) {
    transport.send_message(ping(id)).await.unwrap();
    events.wait_for("the bot's reply", |e| is_message_with_id(e, id)).await;
}

/// The bot drops the peer connection under the session; waits until the transport restarted
/// it (with a recovery of 3 attempts).
async fn drop_and_restart(bot: &TestBot, transport: &SmallWebRtcTransport, events: &mut Events) {
    session(bot).await.drop_peer_connection().unwrap();
    events
        .wait_for("reconnecting", |e| {
            matches!(e, TransportEvent::Reconnecting { attempt: 1, max_attempts: 3 })
        })
        .await;
    events.wait_for("reconnected", |e| matches!(e, TransportEvent::Reconnected)).await;
    assert_eq!(transport.stats().reconnections, 1);
}

/// A transport whose offers carry a header and request data (a full offer request).
fn full_request(bot: &TestBot) -> ConnectionParams {
    let request = ApiRequest::new(bot.offer_url())
        .header("X-Test", "yes")
        .request_data(json!({"user": "u1"}));
    SmallWebRtcParams { webrtc_request: Some(request), ..Default::default() }.into()
}

// ----- the offer -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_offer_has_no_pc_id_no_restart_and_no_candidates() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    let first = bot.recorder().offers()[0].body.clone();
    assert_eq!(first["type"], "offer");
    assert_eq!(first["pc_id"], Value::Null);
    assert_eq!(first["restart_pc"], false);
    let sdp = first["sdp"].as_str().unwrap();
    assert!(!sdp.contains("a=candidate"), "trickle mode sends candidates by PATCH");
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offer_lists_audio_then_camera_screen_and_data_with_opus() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    let first = bot.recorder().offers()[0].body.clone();
    let sdp = first["sdp"].as_str().unwrap();
    let kinds: Vec<&str> = sdp.lines().filter(|l| l.starts_with("m=")).map(|l| &l[2..7]).collect();
    assert_eq!(
        kinds,
        ["audio", "video", "video", "appli"],
        "audio first, then camera, screen, data"
    );
    assert!(sdp.contains("opus/48000/2"));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_are_trickled_by_patch_for_our_pc_id() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    wait_for(&bot, "trickled candidates", |r| !r.candidate_patches().is_empty()).await;
    let patch = bot.recorder().candidate_patches()[0].body.clone();
    assert_eq!(patch["pc_id"].as_str(), transport.stats().pc_id.as_deref());
    assert!(patch["candidates"][0]["candidate"].as_str().unwrap().starts_with("candidate:"));
    assert_eq!(patch["candidates"][0]["sdp_mid"], "0");
    assert_eq!(patch["candidates"][0]["sdp_mline_index"], 0);
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_offer_request_sends_its_headers_and_data_with_the_offer() {
    let bot = bot().await;
    let transport = quiet_transport();
    let _events = connect(&transport, full_request(&bot)).await;
    let first = bot.recorder().offers()[0].clone();
    assert_eq!(first.body["request_data"], json!({"user": "u1"}));
    assert_eq!(first.header("x-test"), Some("yes"));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_gathering_sends_candidates_in_the_offer_and_no_patch() {
    let bot = bot().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .without_audio()
        .wait_for_ice_gathering(Duration::from_secs(2))
        .build()
        .unwrap();
    // Through `/start` and the sessions route, as a client of a runner would.
    let started: Value = reqwest::Client::new()
        .post(bot.start_url())
        .json(&json!({"transport": "webrtc"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = started["sessionId"].as_str().unwrap();
    let params = SmallWebRtcParams::session(ApiRequest::new(bot.start_url()), session_id);
    let mut events = connect(&transport, params.into()).await;
    let offer = bot.recorder().offers()[0].clone();
    assert_eq!(offer.path, format!("/sessions/{session_id}/api/offer"));
    assert!(offer.body["sdp"].as_str().unwrap().contains("a=candidate"));
    round_trip(&transport, &mut events, "g").await;
    assert!(bot.recorder().candidate_patches().is_empty());
    assert_eq!(transport.stats().candidate_patches, 0);
    transport.disconnect().await.unwrap();
}

// ----- the open channel -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_status_is_announced_for_each_transceiver_on_open() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    wait_for(&bot, "trackStatus x3", |r| track_statuses(r).len() >= 3).await;
    assert_eq!(track_statuses(bot.recorder())[..3], [(0, true), (1, false), (2, false)]);
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_video_transceivers_one_track_status_is_announced() {
    let bot = bot().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .without_audio()
        .video_transceivers(false)
        .build()
        .unwrap();
    let mut events = connect(&transport, params(&bot)).await;
    wait_for(&bot, "trackStatus", |r| !track_statuses(r).is_empty()).await;
    // Once a message made the round trip, every trackStatus sent on open has arrived.
    round_trip(&transport, &mut events, "after-open").await;
    assert_eq!(track_statuses(bot.recorder()), [(0, true)]);
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_pings_keep_flowing() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    let session = session(&bot).await;
    wait_for(&bot, "a first ping", |r| r.pings(session.id()) >= 1).await;
    let before = bot.recorder().pings(session.id());
    wait_for(&bot, "two more pings", |r| r.pings(session.id()) >= before + 2).await;
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_keeps_its_timeline_with_every_step_in_order() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    let t = transport.stats().last_connect.expect("a timeline once connected");
    let steps = [
        ("peer", t.peer_built),
        ("offer", t.offer_created),
        ("answer", t.answer_received),
        ("applied", t.answer_applied),
        ("channel-open", t.channel_open),
    ];
    let mut previous = std::time::Duration::ZERO;
    for (name, at) in steps {
        let at = at.unwrap_or_else(|| panic!("no {name} step in {t}"));
        assert!(at >= previous, "{name} before the step ahead of it: {t}");
        previous = at;
    }
    // ICE and DTLS come between the answer and the open channel when their events arrive
    // first (they are reported on another task, so they may come after).
    for (name, at) in [("ice", t.ice_connected), ("dtls", t.dtls_connected)] {
        if let Some(at) = at {
            assert!(at >= t.answer_received.unwrap(), "{name} before the answer: {t}");
        }
    }
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_max_message_size_comes_from_the_sctp_negotiation() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    // The testkit's answerer advertises 256 KiB, as aiortc does.
    assert_eq!(transport.max_message_size(), 262_144);
    let big = "x".repeat(262_145);
    assert!(matches!(
        transport.send_message(big).await,
        Err(TransportError::MessageTooLarge { .. })
    ));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtvi_travels_both_ways() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    transport
        .send_client_ready(rtvi("client-ready", "cr-1", json!({"version": "2.2.0"})))
        .await
        .unwrap();
    events.wait_for("bot-ready", |e| is_message_with_id(e, "cr-1")).await;
    events.wait_for("bot connected", |e| matches!(e, TransportEvent::BotConnected(_))).await;
    let ready = bot.recorder().wait_for_message("client-ready", WAIT).await.unwrap();
    assert_eq!(ready.id, "cr-1");
    transport.disconnect().await.unwrap();
}

// ----- audio -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_both_ways_with_levels() {
    let bot = bot().await;
    let (transport, speaker, mut events) = connected(&bot).await;
    bot.recorder().wait_for_audio(WAIT, |a| a.frames > 20).await.expect("mic audio at the bot");
    session(&bot).await.play_tone(Duration::from_secs(3), 440.0).unwrap();
    let frame = tokio::time::timeout(WAIT, speaker.next_frame()).await.unwrap().expect("bot audio");
    assert_eq!(frame.format(), AudioFormat::MONO_48K);
    events
        .wait_for("local level", |e| matches!(e, TransportEvent::LocalAudioLevel(l) if *l > 0.3))
        .await;
    events
        .wait_for("remote level", |e| matches!(e, TransportEvent::RemoteAudioLevel(l) if *l > 0.3))
        .await;
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_and_unmute_announce_track_status() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    wait_for(&bot, "trackStatus on open", |r| track_statuses(r).contains(&(0, true))).await;
    let media = transport.media().unwrap();
    media.enable_mic(false).await.unwrap();
    assert!(!media.is_mic_enabled());
    wait_for(&bot, "mic off", |r| track_statuses(r).contains(&(0, false))).await;
    media.enable_mic(true).await.unwrap();
    wait_for(&bot, "mic on again", |r| {
        track_statuses(r).iter().filter(|s| **s == (0, true)).count() >= 2
    })
    .await;
    transport.disconnect().await.unwrap();
}

// ----- renegotiation and recovery -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_requested_renegotiation_keeps_the_pc_id() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    let pc_id = transport.stats().pc_id.expect("pc_id");
    assert!(session(&bot).await.request_renegotiate().unwrap());
    wait_for(&bot, "renegotiation offer", |r| r.offers().len() >= 2).await;
    let reneg = bot.recorder().offers()[1].body.clone();
    assert_eq!(reneg["pc_id"], pc_id.as_str());
    assert_eq!(reneg["restart_pc"], false);
    let deadline = tokio::time::Instant::now() + WAIT;
    while transport.stats().renegotiations < 1 {
        assert!(tokio::time::Instant::now() < deadline, "renegotiation never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    round_trip(&transport, &mut events, "after-reneg").await;
    assert_eq!(transport.stats().pc_id.as_deref(), Some(pc_id.as_str()));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_peer_connection_is_restarted_with_a_new_pc_id_in_the_same_session() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    let pc_id = transport.stats().pc_id.expect("pc_id");
    drop_and_restart(&bot, &transport, &mut events).await;
    let restart = bot.recorder().offers().last().cloned().unwrap().body;
    assert_eq!(restart["restart_pc"], true);
    assert_eq!(restart["pc_id"], pc_id.as_str());
    let new_id = transport.stats().pc_id.unwrap();
    assert_ne!(new_id, pc_id);
    assert_eq!(bot.sessions().len(), 1, "the bot session went on");
    assert_eq!(session(&bot).await.pc_id().as_deref(), Some(new_id.as_str()));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_connection_announces_its_tracks_again() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    wait_for(&bot, "trackStatus x3", |r| track_statuses(r).len() >= 3).await;
    drop_and_restart(&bot, &transport, &mut events).await;
    wait_for(&bot, "trackStatus on the new channel", |r| track_statuses(r).len() >= 6).await;
    assert_eq!(track_statuses(bot.recorder())[3..6], [(0, true), (1, false), (2, false)]);
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_after_a_restart_without_a_new_client_ready() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    transport
        .send_client_ready(rtvi("client-ready", "cr-1", json!({"version": "2.2.0"})))
        .await
        .unwrap();
    events.wait_for("bot-ready", |e| is_message_with_id(e, "cr-1")).await;
    drop_and_restart(&bot, &transport, &mut events).await;
    round_trip(&transport, &mut events, "after-restart").await;
    assert_eq!(
        bot.recorder().messages_of_type("client-ready").len(),
        1,
        "no second client-ready after recovery"
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_offers_carry_the_request_headers_and_data() {
    let bot = bot().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .without_audio()
        .recovery(quick_recovery(3))
        .build()
        .unwrap();
    let mut events = connect(&transport, full_request(&bot)).await;
    drop_and_restart(&bot, &transport, &mut events).await;
    let offers = bot.recorder().offers();
    let restart = offers.last().unwrap();
    assert_eq!(restart.body["restart_pc"], true);
    assert_eq!(restart.body["request_data"], json!({"user": "u1"}));
    assert!(offers.iter().all(|o| o.header("x-test") == Some("yes")));
    transport.disconnect().await.unwrap();
}

/// Makes every offer fail with 503 and drops the peer connection; returns the event that
/// ended the session.
async fn give_up(bot: &TestBot, events: &mut Events) -> TransportEvent {
    bot.set_offer_failure(Some((503, json!({"detail": "down"}))));
    session(bot).await.drop_peer_connection().unwrap();
    events
        .wait_for("attempt 1", |e| {
            matches!(e, TransportEvent::Reconnecting { attempt: 1, max_attempts: 2 })
        })
        .await;
    events
        .wait_for("attempt 2", |e| matches!(e, TransportEvent::Reconnecting { attempt: 2, .. }))
        .await;
    events.wait_for("failed", |e| matches!(e, TransportEvent::Failed(_))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_gives_up_with_a_typed_error_after_its_attempts() {
    let bot = bot().await;
    let (transport, _speaker) = audio_transport(2);
    let mut events = connect(&transport, params(&bot)).await;
    match give_up(&bot, &mut events).await {
        TransportEvent::Failed(TransportError::ReconnectFailed { attempts, reason }) => {
            assert_eq!(attempts, 2);
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let restart = bot.recorder().offers().last().cloned().unwrap();
    assert_eq!((restart.status, restart.body["restart_pc"].clone()), (503, json!(true)));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_works_after_recovery_gave_up() {
    let bot = bot().await;
    let (transport, _speaker) = audio_transport(2);
    let mut events = connect(&transport, params(&bot)).await;
    give_up(&bot, &mut events).await;
    transport.disconnect().await.unwrap();

    bot.set_offer_failure(None);
    let (sink, mut events) = Events::new(2);
    transport.connect(params(&bot), sink).await.unwrap();
    round_trip(&transport, &mut events, "s2").await;
    transport.disconnect().await.unwrap();
}

// ----- the end of a session -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_left_is_the_bot_leaving() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    session(&bot).await.peer_left().unwrap();
    events
        .wait_for("bot disconnected", |e| matches!(e, TransportEvent::BotDisconnected { .. }))
        .await;
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_closes_our_peer_connection() {
    let bot = bot().await;
    let (transport, _speaker, mut events) = connected(&bot).await;
    round_trip(&transport, &mut events, "open").await;
    let session = session(&bot).await;
    let closed_before = closed_channels(bot.recorder());
    transport.disconnect().await.unwrap();
    // Our peer connection really went away: the bot's end of the channel closed.
    wait_for(&bot, "our channel closed", |r| closed_channels(r) > closed_before).await;
    assert_eq!(session.wait_ended(WAIT).await.unwrap(), EndReason::ClientDisconnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_is_idempotent_and_leaves_nothing_to_send_on() {
    let bot = bot().await;
    let (transport, _speaker, _events) = connected(&bot).await;
    transport.disconnect().await.unwrap();
    transport.disconnect().await.unwrap();
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_connect_leaves_nothing_behind() {
    let bot = bot().await;
    let transport = quiet_transport();
    // Give up on the connect almost at once (as a client-side timeout would).
    let (sink, _events) = Events::new(1);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(1), transport.connect(params(&bot), sink)).await;
    assert!(abandoned.is_err(), "connect cannot finish in 1 ms");
    transport.disconnect().await.unwrap();
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    // If the bot got that far, its channel closes again; either way a new session works.
    let (sink, mut events) = Events::new(2);
    transport.connect(params(&bot), sink).await.unwrap();
    round_trip(&transport, &mut events, "fresh").await;
    transport.disconnect().await.unwrap();
}

// ----- failures to connect -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_invalid_answer_errors() {
    let bot = bot().await;
    let transport = quiet_transport();
    let cases = [
        json!({"sdp": "", "type": "answer", "pc_id": "x"}),
        json!({"sdp": "garbage", "type": "answer", "pc_id": "x"}),
        json!({"type": "answer"}),
        json!([1, 2]),
        json!({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "answer", "pc_id": "x"}),
    ];
    for body in cases {
        bot.set_offer_failure(Some((200, body.clone())));
        let (sink, _events) = Events::new(1);
        let err = transport.connect(params(&bot), sink).await.expect_err("bad answer");
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_error_from_the_offer_endpoint_is_typed_with_its_status_and_message() {
    let bot = bot().await;
    let transport = quiet_transport();
    // The runner's sessions route answers an unknown session with 404 and this text.
    let unknown = SmallWebRtcParams::session(ApiRequest::new(bot.start_url()), "no-such-session");
    let (sink, _events) = Events::new(1);
    match transport.connect(unknown.into(), sink).await {
        Err(TransportError::Http(e)) => {
            assert_eq!(e.status(), Some(404));
            assert!(e.to_string().contains("not-yet-ready"), "{e}");
        }
        other => panic!("unexpected {other:?}"),
    }
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_offer_endpoint_is_an_http_error() {
    let transport = quiet_transport();
    // Nothing listens on the discard port.
    let (sink, _events) = Events::new(1);
    let closed: ConnectionParams =
        SmallWebRtcParams::offer_url("http://127.0.0.1:9/api/offer").into();
    assert!(matches!(transport.connect(closed, sink).await, Err(TransportError::Http(_))));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_without_an_offer_url_is_invalid_params() {
    let transport = quiet_transport();
    let (sink, _events) = Events::new(1);
    assert!(matches!(
        transport.connect(ConnectionParams::default(), sink).await,
        Err(TransportError::InvalidParams(_))
    ));
}
