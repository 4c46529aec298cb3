//! The Pipecat logic of one Daily session, as a synchronous state machine: which participant is
//! the bot, when `client-ready` may go, which client events a Daily event becomes.
//!
//! Rules (those of Pipecat's Daily transports):
//! - the **first remote participant** is the bot; later ones are plain participants. When the
//!   bot leaves, the next remote participant to show up is the bot;
//! - `client-ready` is **held** until the bot's microphone track is `playable` (so the bot hears
//!   the client from its first word), and sent once;
//! - only app-messages labelled `rtvi-ai` are RTVI messages;
//! - `call-state-updated` `left` with an error is a fatal error; `left` without one ends the
//!   session as a bot disconnect (or a connection loss when no bot was there); an `error` event
//!   is fatal;
//! - once leaving (the client called disconnect) or ended, events are ignored; malformed events
//!   are ignored.
//!
//! The [`crate::DailyTransport`] feeds it; it is public so custom backends and tests can drive
//! it directly.

use pipecat_core::media::{Participant, TrackInfo, TrackKind};
use pipecat_core::{TransportError, TransportEvent};
use serde_json::Value;

use crate::envelope::{self, InboundAppMessage};
use crate::event::{CallState, DailyEvent, DailyParticipant};

/// What the transport must do after a session step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionAction {
    /// Report this event to the client.
    Emit(TransportEvent),
    /// The held `client-ready` may go now: send this RTVI message (JSON text).
    SendReady(String),
    /// An app-message that is not RTVI arrived (not for the client; logged).
    IgnoredAppMessage(Value),
    /// The call is over (left, failed, or the backend went away): stop sending.
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Joined,
    Leaving,
    Ended,
}

/// The session state machine. See the module docs for its rules.
///
/// ```
/// use pipecat_core::TransportEvent;
/// use pipecat_daily::{DailyEvent, Session, SessionAction};
/// use serde_json::json;
///
/// let mut session = Session::new();
/// // client-ready is held: the bot is not even here.
/// assert_eq!(session.hold_ready("{\"type\":\"client-ready\"}".into()), None);
/// let bot = |mic: &str| DailyEvent::from_json(&json!({
///     "action": "participant-updated",
///     "participant": {"id": "bot", "info": {"isLocal": false}, "media": {"microphone": {"state": mic}}}
/// })).unwrap();
/// let actions = session.handle(&bot("loading"));
/// assert!(matches!(&actions[0], SessionAction::Emit(TransportEvent::BotConnected(p)) if p.id == "bot"));
/// let actions = session.handle(&bot("playable"));
/// assert!(actions.iter().any(|a| matches!(a, SessionAction::SendReady(_))));
/// ```
#[derive(Debug, Clone)]
pub struct Session {
    phase: Phase,
    bot: Option<DailyParticipant>,
    bot_audio_playable: bool,
    held_ready: Option<String>,
    ready_sent: bool,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session that has just joined the room.
    pub fn new() -> Self {
        Session {
            phase: Phase::Joined,
            bot: None,
            bot_audio_playable: false,
            held_ready: None,
            ready_sent: false,
        }
    }

    /// The bot, once a remote participant is in the room.
    pub fn bot(&self) -> Option<Participant> {
        self.bot.as_ref().map(DailyParticipant::to_participant)
    }

    /// Whether the bot's audio is playable.
    pub fn is_bot_audio_playable(&self) -> bool {
        self.bot_audio_playable
    }

    /// Whether `client-ready` has been released.
    pub fn is_ready_sent(&self) -> bool {
        self.ready_sent
    }

    /// Whether the session still takes events (neither leaving nor ended).
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// Whether the call ended by itself (left, failed, backend gone).
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The client is disconnecting: from now on events are ignored.
    pub fn set_leaving(&mut self) {
        if self.phase == Phase::Joined {
            self.phase = Phase::Leaving;
        }
    }

    /// Hands over `client-ready`: returns it when it may go now (the bot's audio is already
    /// playable), else keeps it until then and returns `None`. A second call replaces a held
    /// message; after release it is returned at once.
    pub fn hold_ready(&mut self, message: String) -> Option<String> {
        if self.bot_audio_playable || self.ready_sent {
            self.ready_sent = true;
            self.held_ready = None;
            Some(message)
        } else {
            self.held_ready = Some(message);
            None
        }
    }

    /// Seeds the session from the participants already in the room when the join completed
    /// (daily-core's `participants()` object, keyed by id with a `local` entry). Remote ones are
    /// treated as if they had just joined, in id order (the bot: the first of them).
    pub fn seed(&mut self, participants: &Value) -> Vec<SessionAction> {
        let Some(map) = participants.as_object() else { return Vec::new() };
        let mut remote: Vec<DailyParticipant> = map
            .iter()
            .filter(|(key, _)| key.as_str() != "local")
            .filter_map(|(_, p)| DailyParticipant::from_json(p))
            .filter(|p| !p.local)
            .collect();
        remote.sort_by(|a, b| a.id.cmp(&b.id));
        let mut actions = Vec::new();
        for participant in remote {
            actions.extend(self.handle(&DailyEvent::ParticipantJoined(participant)));
        }
        actions
    }

    /// One event from the backend.
    pub fn handle(&mut self, event: &DailyEvent) -> Vec<SessionAction> {
        if self.phase != Phase::Joined {
            return Vec::new();
        }
        match event {
            DailyEvent::ParticipantJoined(p) => self.participant(p, true),
            DailyEvent::ParticipantUpdated(p) => self.participant(p, false),
            DailyEvent::ParticipantLeft { participant, reason } => {
                self.participant_left(participant, reason.as_deref())
            }
            DailyEvent::AppMessage { data, .. } => match envelope::decode(data) {
                InboundAppMessage::Rtvi(text) => {
                    vec![SessionAction::Emit(TransportEvent::Message(text))]
                }
                InboundAppMessage::Other(value) => vec![SessionAction::IgnoredAppMessage(value)],
            },
            DailyEvent::CallStateUpdated { state: CallState::Left, error } => {
                self.phase = Phase::Ended;
                let mut actions = Vec::new();
                match error {
                    Some(error) => actions.push(SessionAction::Emit(TransportEvent::Failed(
                        TransportError::ConnectionLost {
                            code: None,
                            reason: format!("left the Daily call: {error}"),
                        },
                    ))),
                    None if self.bot.is_some() => {
                        actions.extend(self.stop_bot_track());
                        self.bot = None;
                        actions.push(SessionAction::Emit(TransportEvent::BotDisconnected {
                            reason: "left the Daily call".into(),
                        }));
                    }
                    // Left cleanly, without a bot to blame: a clean end, not a failure.
                    None => actions.push(SessionAction::Emit(TransportEvent::Closed {
                        reason: "left the Daily call".into(),
                    })),
                }
                actions.push(SessionAction::Ended);
                actions
            }
            DailyEvent::CallStateUpdated { .. } | DailyEvent::Other { .. } => Vec::new(),
            DailyEvent::Error { message } => {
                self.phase = Phase::Ended;
                vec![
                    SessionAction::Emit(TransportEvent::Failed(TransportError::Other {
                        message: format!("Daily error: {message}"),
                        source: None,
                    })),
                    SessionAction::Ended,
                ]
            }
        }
    }

    /// The backend went away (a sidecar that died, for example).
    pub fn backend_closed(&mut self, reason: &str) -> Vec<SessionAction> {
        if self.phase != Phase::Joined {
            return Vec::new();
        }
        self.phase = Phase::Ended;
        vec![
            SessionAction::Emit(TransportEvent::Failed(TransportError::ConnectionLost {
                code: None,
                reason: format!("the Daily backend stopped: {reason}"),
            })),
            SessionAction::Ended,
        ]
    }

    fn participant(&mut self, participant: &DailyParticipant, joined: bool) -> Vec<SessionAction> {
        if participant.local {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let is_bot = match &self.bot {
            None => {
                self.bot = Some(participant.clone());
                actions.push(SessionAction::Emit(TransportEvent::BotConnected(
                    participant.to_participant(),
                )));
                true
            }
            Some(bot) if bot.id == participant.id => true,
            Some(_) => {
                if joined {
                    actions.push(SessionAction::Emit(TransportEvent::ParticipantJoined(
                        participant.to_participant(),
                    )));
                }
                false
            }
        };
        if !is_bot {
            return actions;
        }
        let playable = participant.is_audio_playable();
        if playable && !self.bot_audio_playable {
            self.bot_audio_playable = true;
            actions.push(SessionAction::Emit(TransportEvent::TrackStarted(TrackInfo {
                kind: TrackKind::Audio,
                participant: Some(participant.to_participant()),
            })));
            if let Some(ready) = self.held_ready.take() {
                self.ready_sent = true;
                actions.push(SessionAction::SendReady(ready));
            }
        } else if !playable && self.bot_audio_playable && participant.microphone_state.is_some() {
            actions.extend(self.stop_bot_track());
        }
        actions
    }

    fn participant_left(
        &mut self,
        participant: &DailyParticipant,
        reason: Option<&str>,
    ) -> Vec<SessionAction> {
        if participant.local {
            return Vec::new();
        }
        if self.bot.as_ref().is_some_and(|bot| bot.id == participant.id) {
            let mut actions = self.stop_bot_track();
            self.bot = None;
            let reason = match reason {
                Some(reason) => format!("the bot left the Daily room ({reason})"),
                None => "the bot left the Daily room".to_owned(),
            };
            actions.push(SessionAction::Emit(TransportEvent::BotDisconnected { reason }));
            actions
        } else {
            vec![SessionAction::Emit(TransportEvent::ParticipantLeft(participant.to_participant()))]
        }
    }

    fn stop_bot_track(&mut self) -> Vec<SessionAction> {
        if !self.bot_audio_playable {
            return Vec::new();
        }
        self.bot_audio_playable = false;
        vec![SessionAction::Emit(TransportEvent::TrackStopped(TrackInfo {
            kind: TrackKind::Audio,
            participant: self.bot.as_ref().map(DailyParticipant::to_participant),
        }))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn participant(id: &str, local: bool, mic: &str) -> Value {
        json!({
            "id": id,
            "info": {"isLocal": local, "userName": format!("{id}-name")},
            "media": {"microphone": {"state": mic}}
        })
    }

    fn event(action: &str, participant: Value) -> DailyEvent {
        DailyEvent::from_json(&json!({"action": action, "participant": participant})).unwrap()
    }

    /// The actions as short strings, like the C++ transport's tests.
    fn describe(actions: &[SessionAction]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                SessionAction::Emit(TransportEvent::BotConnected(p)) => {
                    format!("bot-connected:{}", p.id)
                }
                SessionAction::Emit(TransportEvent::BotDisconnected { .. }) => {
                    "bot-disconnected".into()
                }
                SessionAction::Emit(TransportEvent::ParticipantJoined(p)) => {
                    format!("participant-joined:{}", p.id)
                }
                SessionAction::Emit(TransportEvent::ParticipantLeft(p)) => {
                    format!("participant-left:{}", p.id)
                }
                SessionAction::Emit(TransportEvent::Message(m)) => format!("message:{m}"),
                SessionAction::Emit(TransportEvent::Failed(e)) => format!("failed:{e}"),
                SessionAction::Emit(TransportEvent::Closed { .. }) => "closed".into(),
                SessionAction::Emit(TransportEvent::TrackStarted(_)) => "track-started".into(),
                SessionAction::Emit(TransportEvent::TrackStopped(_)) => "track-stopped".into(),
                SessionAction::Emit(other) => format!("other:{other:?}"),
                SessionAction::SendReady(m) => format!("send-ready:{m}"),
                SessionAction::IgnoredAppMessage(_) => "ignored".into(),
                SessionAction::Ended => "ended".into(),
            })
            .collect()
    }

    fn run(session: &mut Session, events: &[DailyEvent]) -> Vec<String> {
        events.iter().flat_map(|e| describe(&session.handle(e))).collect()
    }

    #[test]
    fn first_remote_participant_is_the_bot() {
        let mut s = Session::new();
        let out = run(
            &mut s,
            &[
                event("participant-joined", participant("me", true, "off")),
                event("participant-joined", participant("bot", false, "off")),
                event("participant-joined", participant("user", false, "off")),
                event("participant-updated", participant("user", false, "off")),
                event("participant-left", participant("user", false, "off")),
                event("participant-left", participant("bot", false, "off")),
            ],
        );
        assert_eq!(
            out,
            [
                "bot-connected:bot",
                "participant-joined:user",
                "participant-left:user",
                "bot-disconnected"
            ]
        );
        assert!(s.bot().is_none());
        // The next remote participant is the new bot.
        let out = run(&mut s, &[event("participant-joined", participant("bot2", false, "off"))]);
        assert_eq!(out, ["bot-connected:bot2"]);
        assert_eq!(s.bot().unwrap().name.as_deref(), Some("bot2-name"));
    }

    #[test]
    fn ready_is_held_until_bot_audio_is_playable_and_sent_once() {
        let mut s = Session::new();
        run(&mut s, &[event("participant-joined", participant("bot", false, "loading"))]);
        assert_eq!(s.hold_ready("R".into()), None);
        let out = run(
            &mut s,
            &[
                event("participant-joined", participant("user", false, "playable")),
                event("participant-updated", participant("bot", false, "playable")),
                event("participant-updated", participant("bot", false, "playable")),
            ],
        );
        assert_eq!(out, ["participant-joined:user", "track-started", "send-ready:R"]);
        assert!(s.is_ready_sent());
    }

    #[test]
    fn ready_goes_at_once_when_bot_audio_already_plays() {
        let mut s = Session::new();
        run(&mut s, &[event("participant-joined", participant("bot", false, "playable"))]);
        assert_eq!(s.hold_ready("R".into()).as_deref(), Some("R"));
    }

    #[test]
    fn other_participants_audio_does_not_release_ready() {
        let mut s = Session::new();
        run(&mut s, &[event("participant-joined", participant("bot", false, "off"))]);
        assert_eq!(s.hold_ready("R".into()), None);
        let out =
            run(&mut s, &[event("participant-joined", participant("user", false, "playable"))]);
        assert_eq!(out, ["participant-joined:user"]);
        assert!(!s.is_ready_sent());
    }

    #[test]
    fn bot_track_stops_and_restarts() {
        let mut s = Session::new();
        let out = run(
            &mut s,
            &[
                event("participant-joined", participant("bot", false, "playable")),
                event("participant-updated", participant("bot", false, "off")),
                event("participant-updated", participant("bot", false, "playable")),
                event("participant-left", participant("bot", false, "playable")),
            ],
        );
        assert_eq!(
            out,
            [
                "bot-connected:bot",
                "track-started",
                "track-stopped",
                "track-started",
                "track-stopped",
                "bot-disconnected"
            ]
        );
    }

    #[test]
    fn seeds_from_participants_snapshot() {
        let mut s = Session::new();
        let snapshot = json!({
            "local": participant("me", true, "off"),
            "b-user": participant("b-user", false, "off"),
            "a-bot": participant("a-bot", false, "playable"),
        });
        let out: Vec<_> = describe(&s.seed(&snapshot));
        assert_eq!(out, ["bot-connected:a-bot", "track-started", "participant-joined:b-user"]);
        assert_eq!(s.hold_ready("R".into()).as_deref(), Some("R"));
        assert!(s.seed(&json!("nope")).is_empty());
    }

    #[test]
    fn forwards_only_rtvi_app_messages() {
        let mut s = Session::new();
        let rtvi = DailyEvent::AppMessage {
            data: json!({"label": "rtvi-ai", "type": "bot-ready"}),
            from: Some("bot".into()),
        };
        let other = DailyEvent::AppMessage { data: json!({"label": "other"}), from: None };
        let out = run(&mut s, &[rtvi, other]);
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with("message:") && out[0].contains("bot-ready"));
        assert_eq!(out[1], "ignored");
    }

    #[test]
    fn unexpected_left_without_error_disconnects_the_bot() {
        let mut s = Session::new();
        run(&mut s, &[event("participant-joined", participant("bot", false, "off"))]);
        let left = DailyEvent::CallStateUpdated { state: CallState::Left, error: None };
        assert_eq!(run(&mut s, std::slice::from_ref(&left)), ["bot-disconnected", "ended"]);
        assert!(s.is_ended());
        assert!(run(&mut s, &[left]).is_empty());
    }

    #[test]
    fn left_without_bot_or_error_is_a_clean_close() {
        let mut s = Session::new();
        let joined = DailyEvent::CallStateUpdated { state: CallState::Joined, error: None };
        let left = DailyEvent::CallStateUpdated { state: CallState::Left, error: None };
        assert_eq!(run(&mut s, &[joined, left]), ["closed", "ended"]);
    }

    #[test]
    fn left_with_error_is_fatal() {
        let mut s = Session::new();
        let out = run(
            &mut s,
            &[DailyEvent::CallStateUpdated {
                state: CallState::Left,
                error: Some("Room closed".into()),
            }],
        );
        assert_eq!(out, ["failed:connection lost: left the Daily call: Room closed", "ended"]);
    }

    #[test]
    fn error_event_is_fatal_and_ends() {
        let mut s = Session::new();
        let out = run(
            &mut s,
            &[
                DailyEvent::Error { message: "Ejected".into() },
                DailyEvent::CallStateUpdated { state: CallState::Left, error: None },
            ],
        );
        assert_eq!(out, ["failed:Daily error: Ejected", "ended"]);
    }

    #[test]
    fn events_ignored_while_leaving() {
        let mut s = Session::new();
        run(&mut s, &[event("participant-joined", participant("bot", false, "off"))]);
        s.set_leaving();
        let out = run(
            &mut s,
            &[
                event("participant-left", participant("bot", false, "off")),
                DailyEvent::AppMessage {
                    data: json!({"label": "rtvi-ai", "type": "bot-output"}),
                    from: None,
                },
                DailyEvent::CallStateUpdated { state: CallState::Left, error: None },
                DailyEvent::Error { message: "x".into() },
            ],
        );
        assert!(out.is_empty());
        assert!(!s.is_ended());
        assert!(s.backend_closed("gone").is_empty());
    }

    #[test]
    fn backend_closed_is_a_connection_loss_once() {
        let mut s = Session::new();
        let out = describe(&s.backend_closed("exit status 1"));
        assert_eq!(
            out,
            ["failed:connection lost: the Daily backend stopped: exit status 1", "ended"]
        );
        assert!(s.backend_closed("again").is_empty());
    }
}
