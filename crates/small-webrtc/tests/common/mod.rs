//! Shared by the integration tests: the bot is `pipecat_testkit::TestBot` serving SmallWebRTC
//! on loopback (a webrtc-rs answerer behind its offer endpoint), and the tests read what it saw
//! from its `Recorder`. No test here needs a raw server of its own: the wire-level
//! misbehaviour they exercise (refused or malformed offer answers, dropped peer connections,
//! `peerLeft`, renegotiation requests) is the testkit's.

#![allow(dead_code)]

use std::time::Duration;

use pipecat_core::{ConnectionParams, TransportEvent, TransportEventSink};
use pipecat_small_webrtc::{RecoveryConfig, SmallWebRtcParams};
use pipecat_testkit::{BotEventKind, BotTransport, Recorder, SessionHandle, TestBot};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub(crate) const WAIT: Duration = Duration::from_secs(15);

/// A testkit bot serving SmallWebRTC only.
pub(crate) async fn bot() -> TestBot {
    TestBot::builder().transports([BotTransport::WebRtc]).start().await.expect("testkit bot")
}

/// The bot's newest session.
pub(crate) async fn session(bot: &TestBot) -> SessionHandle {
    bot.wait_for_session(WAIT).await.expect("a bot session")
}

/// Waits until `check` holds on what the bot recorded.
pub(crate) async fn wait_for(bot: &TestBot, what: &str, mut check: impl FnMut(&Recorder) -> bool) {
    bot.recorder()
        .wait_until(what, WAIT, |r| check(r).then_some(()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Collects transport events, with the generation each was emitted under.
pub(crate) struct Events {
    pub(crate) rx: mpsc::UnboundedReceiver<(u64, TransportEvent)>,
    pub(crate) seen: Vec<(u64, TransportEvent)>,
}

impl Events {
    pub(crate) fn new(generation: u64) -> (TransportEventSink, Events) {
        let (sink, rx) = TransportEventSink::new(generation);
        (sink, Events { rx, seen: Vec::new() })
    }

    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        f: impl FnMut(&TransportEvent) -> bool,
    ) -> TransportEvent {
        self.wait_tagged(what, f).await.1
    }

    /// The first event (seen before or arriving) matching `f`, with its generation.
    pub(crate) async fn wait_tagged(
        &mut self,
        what: &str,
        mut f: impl FnMut(&TransportEvent) -> bool,
    ) -> (u64, TransportEvent) {
        if let Some(e) = self.seen.iter().find(|e| f(&e.1)) {
            return e.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no event: {what}; saw {:?}", self.brief()))
                .expect("event channel open");
            self.seen.push(event.clone());
            if f(&event.1) {
                return event;
            }
        }
    }

    /// Everything that arrived so far (kept for later waits too).
    pub(crate) fn drain(&mut self) -> Vec<TransportEvent> {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event);
        }
        self.seen.iter().map(|e| e.1.clone()).collect()
    }

    pub(crate) fn brief(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|e| &e.1)
            .filter(|e| {
                !matches!(
                    e,
                    TransportEvent::RemoteAudioLevel(_) | TransportEvent::LocalAudioLevel(_)
                )
            })
            .map(|e| format!("{e:?}").chars().take(120).collect())
            .collect()
    }
}

pub(crate) fn rtvi(kind: &str, id: &str, data: Value) -> String {
    json!({"label": "rtvi-ai", "type": kind, "id": id, "data": data}).to_string()
}

/// A `client-message` the testkit bot answers with a `server-response` of the same id.
pub(crate) fn ping(id: &str) -> String {
    rtvi("client-message", id, json!({"t": "ping", "d": {}}))
}

pub(crate) fn is_message_with_id(e: &TransportEvent, id: &str) -> bool {
    matches!(e, TransportEvent::Message(m) if m.contains(&format!("\"id\":\"{id}\"")))
}

/// The bot's direct offer endpoint.
pub(crate) fn params(bot: &TestBot) -> ConnectionParams {
    SmallWebRtcParams::offer_url(bot.offer_url()).into()
}

pub(crate) fn quick_recovery(attempts: u32) -> RecoveryConfig {
    RecoveryConfig {
        max_attempts: attempts,
        disconnected_grace: Duration::from_secs(2),
        retry_delay: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(5),
    }
}

/// The `trackStatus` signalling messages the bot received, in order: (receiver index, enabled).
pub(crate) fn track_statuses(recorder: &Recorder) -> Vec<(u64, bool)> {
    recorder
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            BotEventKind::TrackStatus { receiver_index, enabled } => {
                Some((receiver_index, enabled))
            }
            _ => None,
        })
        .collect()
}

/// How many of the bot's data channels closed.
pub(crate) fn closed_channels(recorder: &Recorder) -> usize {
    recorder
        .events()
        .iter()
        .filter(|e| matches!(e.kind, BotEventKind::DataChannelClosed { .. }))
        .count()
}
