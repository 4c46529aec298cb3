//! What only the SmallWebRTC transport has: the offer URLs and trickle ICE, waiting for ICE
//! gathering, server-requested renegotiation, `restart_pc` recovery, and the microphone
//! toggle announced on the data channel. What touches the offer URL again after connecting
//! (renegotiation, recovery) runs through both: `/sessions/{id}/api/offer`
//! (`via_session_offer_url`) and `/api/offer` (`via_api_offer`).

use std::time::Duration;

use pipecat_core::rtvi::BotReady;
use pipecat_core::{ClientEvent, Error, ErrorOrigin, PipecatClient, Transport, TransportState};
use pipecat_media::{AudioFormat, ToneSource};
use pipecat_small_webrtc::{AudioBuilder, RecoveryConfig, SmallWebRtcParams, SmallWebRtcTransport};
use serde_json::{Value, json};

use crate::common::*;

const KIND: Kind = Kind::SmallWebRtc;

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

/// `mod <scenario> { mod via_session_offer_url { pipecat_<version>... } mod via_api_offer {
/// ... } }`.
macro_rules! over_both_offer_urls {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            mod via_session_offer_url {
                for_each_release!(super::super::$name, super::super::Route::Session);
            }
            mod via_api_offer {
                for_each_release!(super::super::$name, super::super::Route::Direct);
            }
        }
    )*};
}

over_both_offer_urls!(
    server_requested_renegotiation_keeps_the_peer_connection,
    recovery_that_runs_out_of_attempts_ends_in_disconnected,
    mic_toggle_is_announced_and_the_session_goes_on,
    restart_pc_recovery_after_the_server_closes_its_peer_connection,
    restart_pc_recovery_after_ice_goes_silent,
);

per_release!(
    the_session_offer_url_takes_the_offer_and_the_candidates,
    api_offer_takes_trickled_candidates_without_a_failed_patch,
    wait_for_ice_gathering_connects_without_patches,
);

fn client(transport: SmallWebRtcTransport) -> PipecatClient {
    crate::common::client(std::sync::Arc::new(transport))
}

/// A client without audio, and its transport.
fn quiet_client() -> (PipecatClient, SmallWebRtcTransport) {
    let transport = rtc_builder().build().unwrap();
    (client(transport.clone()), transport)
}

/// How many offers the bot's access log shows on `path`.
fn offers_on(bot: &PeerBot, path_prefix: &str) -> usize {
    bot.log().lines().filter(|l| l.contains(&format!("\"POST {path_prefix}"))).count()
}

async fn the_session_offer_url_takes_the_offer_and_the_candidates(release: Release) {
    let bot = KIND.bot(release, &[]).await;
    let (client, transport) = quiet_client();
    let started = start_and_connect(&client, &bot).await;
    let session = started["sessionId"].as_str().expect("sessionId").to_owned();
    // The offer went to /sessions/{id}/api/offer, derived from the /start endpoint.
    eventually("offer on the session URL", || {
        offers_on(&bot, &format!("/sessions/{session}/api/offer")) == 1
    })
    .await;
    assert!(transport.stats().pc_id.is_some_and(|id| id.starts_with("SmallWebRTCConnection")));
    // Candidates were trickled to the same session URL, and taken.
    eventually("trickled candidates", || transport.stats().candidates_sent > 0).await;
    assert!(bot.log().contains(&format!("\"PATCH /sessions/{session}/api/offer")));
    assert_eq!(transport.stats().patch_failures, 0, "{:?}", transport.stats());
    // The keepalive runs: past the server's 3 s liveness window, the bot still answers.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(transport.stats().pings >= 3, "{:?}", transport.stats());
    assert!(client.send_client_request("ping", json!(1)).await.is_ok());
    // aiortc advertises 256 KiB; the SCTP negotiation agrees.
    assert_eq!(transport.max_message_size(), 262_144);
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
}

/// Candidates go by PATCH after the answer, and the server takes every one: no empty
/// end-of-candidates marker is sent (pipecat-ai before 1.7, 1.3 among them, answers it 400).
async fn api_offer_takes_trickled_candidates_without_a_failed_patch(release: Release) {
    let bot = KIND.bot(release, &[]).await;
    let (client, transport) = quiet_client();
    let mut events = client.events();
    let params = SmallWebRtcParams::offer_url(format!("{}/api/offer", bot.base_url()));
    let ready = client.connect(params).await.expect("ready");
    assert_bot_ready(&ready, release);
    assert_eq!(offers_on(&bot, "/api/offer"), 1);
    eventually("trickled candidates", || transport.stats().candidates_sent > 0).await;
    // Gathering is over (loopback only: one host candidate) well within a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = transport.stats();
    assert!(stats.candidate_patches >= 1);
    assert_eq!(stats.patch_failures, 0, "{stats:?}");
    let log = bot.log();
    assert!(log.contains("\"PATCH /api/offer"));
    assert!(!log.contains("\"PATCH /api/offer HTTP/1.1\" 4"), "a PATCH was refused:\n{log}");
    let warnings: Vec<String> = collect_for(&mut events, Duration::from_millis(100))
        .await
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::TransportWarning(w) => Some(w),
            _ => None,
        })
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    client.disconnect().await.unwrap();
}

async fn wait_for_ice_gathering_connects_without_patches(release: Release) {
    let bot = KIND.bot(release, &[]).await;
    let transport = rtc_builder().wait_for_ice_gathering(Duration::from_secs(2)).build().unwrap();
    let client = client(transport.clone());
    let ready = client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    assert_bot_ready(&ready, release);
    assert_eq!(transport.stats().candidate_patches, 0);
    assert!(client.send_client_request("ping", json!("g")).await.is_ok());
    client.disconnect().await.unwrap();
}

async fn server_requested_renegotiation_keeps_the_peer_connection(route: Route, release: Release) {
    let bot = KIND.bot(release, &[]).await;
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
async fn restart_keeps_the_bot_session(
    route: Route,
    release: Release,
    mode: &str,
    recovery: RecoveryConfig,
) {
    let bot = KIND.bot(release, &[]).await;
    let transport = rtc_builder().recovery(recovery).build().unwrap();
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

async fn restart_pc_recovery_after_the_server_closes_its_peer_connection(
    route: Route,
    release: Release,
) {
    restart_keeps_the_bot_session(route, release, "close", RecoveryConfig::default()).await;
}

async fn restart_pc_recovery_after_ice_goes_silent(route: Route, release: Release) {
    // Only ICE consent failure tells: a short grace keeps the test quick.
    let recovery =
        RecoveryConfig { disconnected_grace: Duration::from_secs(2), ..RecoveryConfig::default() };
    restart_keeps_the_bot_session(route, release, "silent", recovery).await;
}

async fn recovery_that_runs_out_of_attempts_ends_in_disconnected(route: Route, release: Release) {
    let mut bot = KIND.bot(release, &[]).await;
    let recovery = RecoveryConfig {
        max_attempts: 2,
        retry_delay: Duration::from_millis(300),
        ..RecoveryConfig::default()
    };
    let transport = rtc_builder().recovery(recovery).build().unwrap();
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

async fn mic_toggle_is_announced_and_the_session_goes_on(route: Route, release: Release) {
    let bot = KIND.bot(release, &[]).await;
    let tone = ToneSource::new(AudioFormat::MONO_16K, 300.0, 0.3).unwrap();
    let transport = rtc_builder().audio_source(tone).build().unwrap();
    let client = client(transport.clone());
    route.connect(&client, &bot).await;
    client.enable_mic(false).await.unwrap();
    assert!(!client.is_mic_enabled());
    client.enable_mic(true).await.unwrap();
    assert!(client.is_mic_enabled());
    assert!(client.send_client_request("ping", Value::Null).await.is_ok());
    client.disconnect().await.unwrap();
}
