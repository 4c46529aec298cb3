//! The testkit's SmallWebRTC side, driven by a raw webrtc-rs offerer.

#![cfg(feature = "webrtc")]

mod common;

use std::time::Duration;

use common::rtc::{DcEvent, RtcClient};
use common::*;
use pipecat_testkit::{BotEventKind, BotTransport, EndReason, InvalidKind, TestBot};
use serde_json::{Value, json};

async fn webrtc_bot() -> TestBot {
    TestBot::builder().transports([BotTransport::WebRtc]).start().await.expect("bot")
}

/// Connects a client through `/start` and `/sessions/{id}/api/offer`, up to an open channel.
async fn connect(bot: &TestBot, start_body: Value) -> (RtcClient, String) {
    let (status, body) = post_json(&bot.start_url(), &start_body).await;
    assert_eq!(status, 200, "{body}");
    let session_id = serde_json::from_str::<Value>(&body).expect("json")["sessionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut client = RtcClient::new().await;
    let url = format!("{}/sessions/{session_id}/api/offer", bot.base_url());
    client.negotiate(&url, None).await;
    client.wait_open().await;
    (client, session_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_session_over_the_sessions_route() {
    let bot = webrtc_bot().await;
    let (mut client, session_id) = connect(&bot, json!({"body": {"who": "test"}})).await;
    let pc_id = client.pc_id.clone().expect("pc_id");
    assert!(pc_id.starts_with("SmallWebRTCConnection#0-"), "{pc_id}");
    let _keepalive = client.keepalive(Duration::from_secs(1));

    client
        .send(&json!({"type": "signalling", "message": {"type": "trackStatus", "receiver_index": 0, "enabled": true}}))
        .await;
    client.send(&client_ready("cr-1")).await;
    let ready = client.wait_for("bot-ready").await;
    assert_eq!(ready["id"], "cr-1");
    assert_eq!(ready["data"]["version"], "2.2.0");

    client.send(&client_message("m-ping", "ping", json!({"x": 1}))).await;
    let pong = client.wait_for("server-response").await;
    assert_eq!(pong["data"], json!({"t": "ping", "d": {"pong": true, "echo": {"x": 1}}}));

    // Audio: Opus up, decoded by the bot, echoed back as Opus on its own track.
    client.send_tone(800, 440.0).await;
    let session = bot.wait_for_session(WAIT).await.expect("session");
    let stats = bot
        .recorder()
        .wait_for_audio(WAIT, |s| s.loud_frames >= 20)
        .await
        .expect("bot heard the tone");
    assert_eq!(stats.sample_rate, Some(48_000));
    client.wait_for("bot-started-speaking").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let heard = client.audio();
        let loud = heard.chunks(960).filter(|c| rms(c) > 3_000.0).count();
        if loud >= 10 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no echo heard ({} samples)", heard.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.wait_for("bot-stopped-speaking").await;

    let events = bot.recorder().events();
    assert!(
        events.iter().any(|e| e.kind == BotEventKind::DataChannelOpen { label: "chat".into() })
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == BotEventKind::TrackStatus { receiver_index: 0, enabled: true })
    );
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        BotEventKind::PeerConnectionCreated { request_data: Some(data), .. } if data == &json!({"who": "test"})
    )));
    assert!(bot.recorder().pings(session.id()) >= 1);

    client.send(&rtvi("disconnect-bot", "db-1", json!({}))).await;
    let left = client.wait_for("peerLeft").await;
    assert_eq!(left, json!({"type": "signalling", "message": {"type": "peerLeft"}}));
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::DisconnectBot);

    // The runner forgets the /start session once its bot ended.
    let url = format!("{}/sessions/{session_id}/api/offer", bot.base_url());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) =
            request(reqwest::Method::POST, &url, r#"{"sdp":"x","type":"offer"}"#).await;
        if status == 404 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await;
}

/// The bot's side of the connect timeline: each step recorded once, under the session, in
/// the order the handshakes happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bots_connect_timeline_is_recorded_in_order() {
    let bot = webrtc_bot().await;
    let (mut client, _) = connect(&bot, json!({})).await;
    client.send(&client_ready("cr-t")).await;
    client.wait_for("bot-ready").await;
    let session = bot.wait_for_session(WAIT).await.expect("session");
    let events: Vec<_> = bot
        .recorder()
        .events()
        .into_iter()
        .filter(|e| e.session_id.as_deref() == Some(session.id()))
        .collect();
    let at = |name: &str, matches: &dyn Fn(&BotEventKind) -> bool| {
        let found: Vec<_> = events.iter().filter(|e| matches(&e.kind)).collect();
        assert_eq!(found.len(), 1, "{name} recorded {} times: {events:#?}", found.len());
        found[0].at
    };
    let steps = [
        at("created", &|k| matches!(k, BotEventKind::PeerConnectionCreated { .. })),
        at("ice", &|k| matches!(k, BotEventKind::IceConnected { .. })),
        at("dtls", &|k| matches!(k, BotEventKind::PeerConnectionConnected { .. })),
        at("channel", &|k| matches!(k, BotEventKind::DataChannelOpen { .. })),
        at("client-ready", &|k| matches!(k, BotEventKind::ClientReady { .. })),
        at("bot-ready", &|k| matches!(k, BotEventKind::BotReadySent)),
    ];
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "out of order: {steps:?}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalling_validation_matches_the_runner() {
    let bot = webrtc_bot().await;
    let base = bot.base_url();
    let offer = bot.offer_url();

    let (status, body) = request(reqwest::Method::POST, &offer, "{}").await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"missing\""));
    let (status, _) = request(reqwest::Method::POST, &offer, "not json").await;
    assert_eq!(status, 422);
    let (status, body) =
        request(reqwest::Method::PATCH, &offer, r#"{"pc_id":"nope","candidates":[]}"#).await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({"detail": "Peer connection not found"})
    );
    let (status, _) = request(reqwest::Method::PATCH, &offer, r#"{"pc_id":"nope"}"#).await;
    assert_eq!(status, 422);

    // A garbage SDP gets 200 and an empty answer, like aiortc's runner.
    let (status, body) = post_json(&offer, &json!({"sdp": "garbage", "type": "offer"})).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["sdp"], "");
    assert_eq!(answer["type"], "answer");
    assert!(
        bot.recorder().events().iter().any(|e| matches!(e.kind, BotEventKind::InvalidOffer { .. }))
    );
    let (status, _) = post_json(&offer, &json!({"sdp": "v=0", "type": "answer"})).await;
    assert_eq!(status, 500);

    let (status, body) =
        request(reqwest::Method::POST, &format!("{base}/sessions/unknown/api/offer"), "{}").await;
    assert_eq!(status, 404);
    assert_eq!(body, "Invalid or not-yet-ready session_id");

    let (_, started) = post_json(&bot.start_url(), &json!({})).await;
    let id = serde_json::from_str::<Value>(&started).expect("json")["sessionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let session_offer = format!("{base}/sessions/{id}/api/offer");
    let (status, body) =
        request(reqwest::Method::POST, &session_offer, r#"{"type":"offer"}"#).await;
    assert_eq!((status, body.as_str()), (400, "Invalid WebRTC request"));
    let (status, body) =
        request(reqwest::Method::PATCH, &session_offer, r#"{"pc_id":"nope","candidates":[]}"#)
            .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Invalid WebRTC request"),
        "the proxy turns 404 into 400"
    );
    let (status, _) =
        request(reqwest::Method::GET, &format!("{base}/sessions/{id}/anything/else"), "").await;
    assert_eq!(status, 200);
    assert!(bot.sessions().is_empty(), "no bot session from bad offers");
}

/// Splits the `a=candidate` lines out of an SDP.
fn strip_candidates(sdp: &str) -> (String, Vec<String>) {
    let mut kept = Vec::new();
    let mut candidates = Vec::new();
    for line in sdp.lines() {
        if let Some(candidate) = line.strip_prefix("a=") {
            if candidate.starts_with("candidate:") {
                candidates.push(candidate.to_owned());
                continue;
            }
            if candidate == "end-of-candidates" {
                continue;
            }
        }
        kept.push(line);
    }
    (kept.join("\r\n") + "\r\n", candidates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_candidates_renegotiation_and_restart() {
    let bot = webrtc_bot().await;

    // Offer without candidates, then trickle them by PATCH.
    let mut client = RtcClient::new().await;
    let (sdp, candidates) = strip_candidates(&client.offer().await);
    assert!(!candidates.is_empty());
    let (status, body) =
        post_json(&bot.offer_url(), &RtcClient::offer_body(&sdp, None, false)).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("json");
    let pc_id = answer["pc_id"].as_str().expect("pc_id").to_owned();
    client
        .pc
        .set_remote_description(
            webrtc::peer_connection::RTCSessionDescription::answer(
                answer["sdp"].as_str().expect("sdp").to_owned(),
            )
            .expect("answer"),
        )
        .await
        .expect("remote");
    client.pc_id = Some(pc_id.clone());
    let mut patch: Vec<Value> = candidates
        .iter()
        .map(|c| json!({"candidate": c, "sdp_mid": "0", "sdp_mline_index": 0}))
        .collect();
    patch.push(json!({"candidate": "", "sdp_mid": "0", "sdp_mline_index": 0}));
    let (status, body) = request(
        reqwest::Method::PATCH,
        &bot.offer_url(),
        &json!({"pc_id": pc_id, "candidates": patch}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"status":"success"}"#);
    client.wait_open().await;
    let _keepalive = client.keepalive(Duration::from_secs(1));
    client.send(&client_ready("cr")).await;
    client.wait_for("bot-ready").await;

    // The bot asks for a renegotiation; the client re-offers on the same peer connection.
    let session = bot.wait_for_session(WAIT).await.expect("session");
    assert_eq!(session.pc_id().as_deref(), Some(pc_id.as_str()));
    assert!(session.request_renegotiate().expect("request"));
    assert!(!session.request_renegotiate().expect("again"), "one at a time");
    client.wait_for("renegotiate").await;
    let again = client.negotiate(&bot.offer_url(), None).await;
    assert_eq!(again["pc_id"], pc_id.as_str(), "same pc_id on renegotiation");
    client.send(&client_message("after-reneg", "ping", Value::Null)).await;
    assert_eq!(client.wait_for("server-response").await["id"], "after-reneg");

    // The client restarts its peer connection: new pc, same bot session, no new bot-ready.
    let mut fresh = RtcClient::new().await;
    fresh.pc_id = Some(pc_id.clone());
    let restarted = fresh.negotiate(&bot.offer_url(), Some(("restart_pc", json!(true)))).await;
    let new_pc_id = restarted["pc_id"].as_str().expect("pc_id").to_owned();
    assert_ne!(new_pc_id, pc_id);
    fresh.wait_open().await;
    let _keepalive2 = fresh.keepalive(Duration::from_secs(1));
    fresh.send(&client_message("on-new-pc", "ping", Value::Null)).await;
    let pong = fresh.wait_for("server-response").await;
    assert_eq!(pong["id"], "on-new-pc");
    assert_eq!(bot.sessions().len(), 1, "still one bot session");
    assert_eq!(session.pc_id().as_deref(), Some(new_pc_id.as_str()));
    assert!(bot.recorder().events().iter().any(|e| e.kind
        == BotEventKind::PeerConnectionRestarted {
            old_pc_id: pc_id.clone(),
            new_pc_id: new_pc_id.clone()
        }));
    assert_eq!(bot.recorder().messages_of_type("client-ready").len(), 1);
    // The old pc_id still finds the session for PATCH, as on the real server.
    let (status, _) = request(
        reqwest::Method::PATCH,
        &bot.offer_url(),
        &json!({"pc_id": pc_id, "candidates": []}).to_string(),
    )
    .await;
    assert_eq!(status, 200);

    client.close().await;
    fresh.close().await;
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::ClientDisconnected);
    // Gone from the signalling map.
    let (status, _) = request(
        reqwest::Method::PATCH,
        &bot.offer_url(),
        &json!({"pc_id": new_pc_id, "candidates": []}).to_string(),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaviour_over_webrtc() {
    let bot = webrtc_bot().await;
    let (mut client, _) = connect(&bot, json!({})).await;
    let _keepalive = client.keepalive(Duration::from_secs(1));
    client.send(&client_ready("cr")).await;
    client.wait_for("bot-ready").await;
    let session = bot.wait_for_session(WAIT).await.expect("session");

    // peerLeft without leaving.
    session.peer_left().expect("peer left");
    client.wait_for("peerLeft").await;
    client.send(&client_message("still", "ping", Value::Null)).await;
    assert_eq!(client.wait_for("server-response").await["id"], "still");

    // Garbage, then a working ping.
    client.send(&client_message("g", "garbage", Value::Null)).await;
    let mut binary = 0;
    let mut texts = Vec::new();
    loop {
        match client.next_within(WAIT).await {
            Some(DcEvent::Binary(_)) => binary += 1,
            Some(DcEvent::Text(text)) => {
                let done = text.contains("\"id\":\"g\"") && text.contains("server-response");
                texts.push(text);
                if done {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(binary, 1);
    assert!(texts.iter().any(|t| t == "{this is not json"));
    assert!(texts.iter().any(|t| t == "{}"));

    // A bad client: garbage on the data channel does not hurt the bot.
    client.send_text("not json at all").await;
    client.send(&json!({"no": "type"})).await;
    client.send(&json!({"type": "signalling", "message": {"type": "bogus"}})).await;
    client.dc.send(bytes::BytesMut::from(&[0xffu8, 0xfe][..])).await.expect("binary");
    client.send(&client_message("ok", "ping", Value::Null)).await;
    assert_eq!(client.wait_for("server-response").await["id"], "ok");
    let kinds: Vec<InvalidKind> = bot.recorder().invalid_inputs().iter().map(|i| i.kind).collect();
    for kind in [
        InvalidKind::NotJson,
        InvalidKind::InvalidEnvelope,
        InvalidKind::BadSignalling,
        InvalidKind::NotUtf8,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }

    // A fatal error: error, then peerLeft.
    client.send(&client_message("f", "error", json!({"error": "kaput", "fatal": true}))).await;
    let error = client.wait_for("error").await;
    assert_eq!(error["data"], json!({"error": "kaput", "fatal": true}));
    client.wait_for("peerLeft").await;
    assert_eq!(session.wait_ended(WAIT).await.expect("ended"), EndReason::FatalError);
    client.close().await;

    // Abrupt close: the peer connection goes away with no peerLeft.
    let (mut client, _) = connect(&bot, json!({})).await;
    let _keepalive = client.keepalive(Duration::from_secs(1));
    client.send(&client_ready("cr")).await;
    client.wait_for("bot-ready").await;
    client.send(&client_message("a", "abrupt-close", Value::Null)).await;
    loop {
        match client.next_within(WAIT).await {
            Some(DcEvent::Closed) => break,
            Some(DcEvent::Text(text)) => assert!(!text.contains("peerLeft"), "no goodbye"),
            Some(DcEvent::Binary(_)) => {}
            None => panic!("the channel did not close"),
        }
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_pc_then_restart_keeps_the_session() {
    let bot = webrtc_bot().await;
    let (mut client, _) = connect(&bot, json!({})).await;
    let _keepalive = client.keepalive(Duration::from_secs(1));
    client.send(&client_ready("cr")).await;
    client.wait_for("bot-ready").await;
    let old = client.pc_id.clone().expect("pc_id");

    client.send(&client_message("d", "drop-pc", json!({"mode": "silent"}))).await;
    assert_eq!(client.wait_for("error-response").await["id"], "d");
    client.send(&client_message("d2", "drop-pc", Value::Null)).await;
    let response = client.wait_for("server-response").await;
    assert_eq!(response["data"]["d"], json!({"dropping": old.as_str(), "mode": "close"}));
    loop {
        match client.next_within(WAIT).await {
            Some(DcEvent::Closed) => break,
            Some(_) => {}
            None => panic!("not dropped"),
        }
    }
    let session = bot.wait_for_session(WAIT).await.expect("session");
    assert!(!session.is_ended(), "the session outlives its peer connection");

    let mut fresh = RtcClient::new().await;
    fresh.pc_id = Some(old.clone());
    fresh.negotiate(&bot.offer_url(), Some(("restart_pc", json!(true)))).await;
    fresh.wait_open().await;
    let _keepalive = fresh.keepalive(Duration::from_secs(1));
    fresh.send(&client_message("back", "ping", Value::Null)).await;
    assert_eq!(fresh.wait_for("server-response").await["id"], "back");
    client.close().await;
    fresh.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_keepalive_holds_messages_like_pipecat() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebRtc])
        .ping_liveness(Some(Duration::from_millis(300)))
        .start()
        .await
        .expect("bot");
    let (mut client, _) = connect(&bot, json!({})).await;
    client.send_text("ping: 1").await;
    client.send(&client_ready("cr")).await;
    client.wait_for("bot-ready").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.send(&client_message("lost", "ping", Value::Null)).await;
    assert!(client.next_within(Duration::from_millis(500)).await.is_none(), "held, never answered");
    client.send_text("ping: 2").await;
    client.send(&client_message("found", "ping", Value::Null)).await;
    assert_eq!(client.wait_for("server-response").await["id"], "found");
    assert!(bot.recorder().events().iter().any(|e| e.kind == BotEventKind::PingLapsed));
    assert!(
        bot.recorder().invalid_inputs().iter().any(|i| i.kind == InvalidKind::HeldWhilePingLapsed)
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_bot_closes_peer_connections() {
    let bot = webrtc_bot().await;
    let (mut client, _) = connect(&bot, json!({})).await;
    client.send(&client_ready("cr")).await;
    client.wait_for("bot-ready").await;
    drop(bot);
    loop {
        match client.next_within(WAIT).await {
            Some(DcEvent::Closed) => break,
            Some(_) => {}
            None => panic!("the bot's peer connection stayed up"),
        }
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_and_candidate_patches_are_recorded_with_bodies_headers_and_sessions() {
    let bot = webrtc_bot().await;
    let mut client = RtcClient::new().await;
    let answer = client.negotiate(&bot.offer_url(), Some(("request_data", json!({"u": 1})))).await;
    let pc_id = answer["pc_id"].as_str().expect("pc_id").to_owned();
    let patch = json!({"pc_id": pc_id, "candidates": []});
    let (status, _) = request(reqwest::Method::PATCH, &bot.offer_url(), &patch.to_string()).await;
    assert_eq!(status, 200);
    let unknown = json!({"pc_id": "nope", "candidates": []}).to_string();
    let (status, _) = request(reqwest::Method::PATCH, &bot.offer_url(), &unknown).await;
    assert_eq!(status, 404);
    let session = bot.wait_for_session(WAIT).await.expect("session");

    let offers = bot.recorder().offers();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].path, "/api/offer");
    assert_eq!(offers[0].status, 200);
    assert_eq!(offers[0].body["type"], "offer");
    assert_eq!(offers[0].body["request_data"], json!({"u": 1}));
    assert!(offers[0].body["sdp"].as_str().expect("sdp").starts_with("v=0"));
    assert_eq!(offers[0].header("Content-Type"), Some("application/json"));
    assert_eq!(offers[0].session_id.as_deref(), Some(session.id()));
    let patches = bot.recorder().candidate_patches();
    assert_eq!(patches.len(), 2);
    assert_eq!(patches[0].body, patch);
    assert_eq!(patches[0].session_id.as_deref(), Some(session.id()));
    assert_eq!((patches[1].status, patches[1].session_id.as_deref()), (404, None));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_failure_answers_every_offer_and_can_be_switched_off() {
    let bot = TestBot::builder()
        .transports([BotTransport::WebRtc])
        .offer_failure(503, json!({"detail": "down"}))
        .start()
        .await
        .expect("bot");
    let offer = json!({"sdp": "v=0", "type": "offer"});
    let (status, body) = post_json(&bot.offer_url(), &offer).await;
    assert_eq!(status, 503);
    assert_eq!(serde_json::from_str::<Value>(&body).expect("json"), json!({"detail": "down"}));
    let (_, started) = post_json(&bot.start_url(), &json!({})).await;
    let id = serde_json::from_str::<Value>(&started).expect("json")["sessionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let session_offer = format!("{}/sessions/{id}/api/offer", bot.base_url());
    let (status, _) = post_json(&session_offer, &offer).await;
    assert_eq!(status, 503, "the sessions route too");
    let statuses: Vec<u16> = bot.recorder().offers().iter().map(|o| o.status).collect();
    assert_eq!(statuses, [503, 503], "failed offers are recorded");

    // A malformed answer with status 200, set while the bot runs.
    bot.set_offer_failure(Some((200, json!({"type": "answer"}))));
    let (status, body) = post_json(&bot.offer_url(), &offer).await;
    assert_eq!((status, body.as_str()), (200, r#"{"type":"answer"}"#));

    bot.set_offer_failure(None);
    let mut client = RtcClient::new().await;
    client.negotiate(&bot.offer_url(), None).await;
    client.wait_open().await;
    assert!(bot.wait_for_session(WAIT).await.is_ok(), "offers are answered again");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_data_channel_is_recorded() {
    let bot = webrtc_bot().await;
    let (client, _) = connect(&bot, json!({})).await;
    let session = bot.wait_for_session(WAIT).await.expect("session");
    client.close().await;
    let closed = bot
        .recorder()
        .wait_for_event("the channel to close", WAIT, |e| {
            e.kind == BotEventKind::DataChannelClosed { label: "chat".into() }
        })
        .await
        .expect("closed");
    assert_eq!(closed.session_id.as_deref(), Some(session.id()));
}
