//! Daily call events: daily-core's event JSON (from the `ffi` backend, or rebuilt by the
//! sidecar bridge), one per line, parsed and fed to the Daily session state machine with the
//! client's own steps mixed in.
//!
//! Input: JSON lines. The first line is also read as the join answer (the participants
//! snapshot and the room's limits). The lines `ready`, `leave` and `closed` are the client
//! handing over `client-ready`, disconnecting, and the backend going away.
//!
//! Invariants: no panic; `client-ready` is released at most once and only once handed over;
//! an ended session does nothing more, and says `Ended` once, last; the bot's audio track
//! is started and stopped alternately.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_core::TransportEvent;
use pipecat_daily::backend::JoinInfo;
use pipecat_daily::{DailyEvent, DailyParticipant, Session, SessionAction};
use serde_json::Value;

/// What the session did so far, checked after every step.
#[derive(Default)]
struct Checks {
    handed: bool,
    released: usize,
    ended: usize,
    tracks: i64,
}

impl Checks {
    fn step(&mut self, session: &Session, was_active: bool, actions: &[SessionAction]) {
        if !was_active {
            assert!(actions.is_empty(), "an inactive session acted: {actions:?}");
        }
        for (i, action) in actions.iter().enumerate() {
            match action {
                SessionAction::SendReady(_) => {
                    assert!(self.handed, "client-ready released before it was handed over");
                    self.released += 1;
                }
                SessionAction::Ended => {
                    self.ended += 1;
                    assert_eq!(i, actions.len() - 1, "Ended is the last action");
                }
                SessionAction::Emit(TransportEvent::TrackStarted(_)) => self.tracks += 1,
                SessionAction::Emit(TransportEvent::TrackStopped(_)) => self.tracks -= 1,
                _ => {}
            }
        }
        assert!(self.released <= 1, "client-ready released twice");
        assert!(self.ended <= 1, "the session ended twice");
        assert!((0..=1).contains(&self.tracks), "bot track started/stopped out of turn");
        assert_eq!(self.ended == 1, session.is_ended());
        assert_eq!(session.is_bot_audio_playable(), self.tracks == 1);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new();
    let mut checks = Checks::default();
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        let was_active = session.is_active();
        let actions = match line {
            // The transport hands `client-ready` over once per session.
            b"ready" if !checks.handed => {
                checks.handed = true;
                if session.hold_ready("{}".into()).is_some() {
                    checks.released += 1;
                }
                Vec::new()
            }
            b"leave" => {
                session.set_leaving();
                assert!(!session.is_active());
                Vec::new()
            }
            b"closed" => session.backend_closed("gone"),
            _ => {
                let Ok(value) = serde_json::from_slice::<Value>(line) else { continue };
                let mut actions = Vec::new();
                if n == 0 {
                    let info = JoinInfo::from_raw(value.clone(), None);
                    assert!(info.max_message_size.is_none_or(|s| s > 0));
                    actions.extend(session.seed(&value));
                }
                if let Some(participant) = DailyParticipant::from_json(&value) {
                    assert!(!participant.id.is_empty());
                    let _ = (participant.is_audio_playable(), participant.to_participant());
                }
                if let Some(event) = DailyEvent::from_json(&value) {
                    if let DailyEvent::ParticipantJoined(p)
                    | DailyEvent::ParticipantUpdated(p)
                    | DailyEvent::ParticipantLeft { participant: p, .. } = &event
                    {
                        assert!(!p.id.is_empty());
                    }
                    actions.extend(session.handle(&event));
                }
                actions
            }
        };
        checks.step(&session, was_active, &actions);
    }
});
