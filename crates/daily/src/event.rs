//! Daily call events, in the JSON shape daily-core delivers them (`{"action": …, …}`), parsed
//! into types. Every backend hands the transport events of this shape: the `ffi` backend gets
//! them from daily-core itself, the `sidecar` bridge rebuilds them from daily-python's
//! callbacks, and the scripted backend replays synthetic ones.
//!
//! Parsing is lenient: unknown actions become [`DailyEvent::Other`], malformed events (no
//! `action`, a participant without an id) are `None` and ignored.

use pipecat_core::media::Participant;
use serde_json::Value;

/// A participant as daily-core describes it:
/// `{"id": …, "info": {"isLocal": …, "userName": …, "userId": …}, "media": {"microphone": {"state": …}}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyParticipant {
    /// The participant's session id in the call.
    pub id: String,
    /// The display name, if any.
    pub user_name: Option<String>,
    /// The application user id, if any.
    pub user_id: Option<String>,
    /// `true` for ourselves.
    pub local: bool,
    /// The state of the participant's microphone track (`"playable"`, `"loading"`, `"off"`, …).
    pub microphone_state: Option<String>,
}

impl DailyParticipant {
    /// Reads a participant object; `None` without a non-empty `id`.
    pub fn from_json(value: &Value) -> Option<Self> {
        let id = value.get("id")?.as_str().filter(|s| !s.is_empty())?.to_owned();
        let info = value.get("info");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        Some(DailyParticipant {
            id,
            user_name: text(info.and_then(|i| i.get("userName"))),
            user_id: text(info.and_then(|i| i.get("userId"))),
            local: info.and_then(|i| i.get("isLocal")).and_then(Value::as_bool).unwrap_or(false),
            microphone_state: text(
                value.get("media").and_then(|m| m.get("microphone")).and_then(|m| m.get("state")),
            ),
        })
    }

    /// Whether the participant's microphone audio can be played (the track is up).
    pub fn is_audio_playable(&self) -> bool {
        self.microphone_state.as_deref() == Some("playable")
    }

    /// The SDK's participant type.
    pub fn to_participant(&self) -> Participant {
        Participant { id: self.id.clone(), name: self.user_name.clone(), local: self.local }
    }
}

/// The state of the call, from `call-state-updated`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallState {
    /// Created, not joined.
    Initialized,
    /// Joining.
    Joining,
    /// In the call.
    Joined,
    /// Leaving.
    Leaving,
    /// Out of the call (left, ejected, or failed).
    Left,
    /// A state this crate does not know.
    Other(String),
}

impl CallState {
    fn parse(text: &str) -> Self {
        match text {
            "initialized" | "new" => CallState::Initialized,
            "joining" => CallState::Joining,
            "joined" => CallState::Joined,
            "leaving" => CallState::Leaving,
            "left" => CallState::Left,
            other => CallState::Other(other.to_owned()),
        }
    }
}

/// One daily-core event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DailyEvent {
    /// Someone joined (daily-core also reports ourselves).
    ParticipantJoined(DailyParticipant),
    /// Someone's state changed (tracks, name, …).
    ParticipantUpdated(DailyParticipant),
    /// Someone left.
    ParticipantLeft {
        /// Who.
        participant: DailyParticipant,
        /// Why, when reported (`"leftCall"`, `"hidden"`, …).
        reason: Option<String>,
    },
    /// An app-message arrived.
    AppMessage {
        /// The payload (`msgData`).
        data: Value,
        /// The sender's participant id (`from`), when reported.
        from: Option<String>,
    },
    /// The call state changed.
    CallStateUpdated {
        /// The new state.
        state: CallState,
        /// The error that ended the call, with `left`.
        error: Option<String>,
    },
    /// daily-core reported an error; the call cannot go on.
    Error {
        /// What happened.
        message: String,
    },
    /// Any other action (`active-speaker-changed`, `network-stats-updated`, …).
    Other {
        /// The `action` value.
        action: String,
    },
}

impl DailyEvent {
    /// Parses one event object; `None` for a malformed one.
    ///
    /// ```
    /// use pipecat_daily::{DailyEvent, CallState};
    /// let event = DailyEvent::from_json(&serde_json::json!({
    ///     "action": "call-state-updated", "state": "left", "error": "Room closed"
    /// }));
    /// assert_eq!(event, Some(DailyEvent::CallStateUpdated {
    ///     state: CallState::Left,
    ///     error: Some("Room closed".into()),
    /// }));
    /// assert_eq!(DailyEvent::from_json(&serde_json::json!({"action": "participant-joined"})), None);
    /// ```
    pub fn from_json(value: &Value) -> Option<Self> {
        let action = value.get("action")?.as_str()?;
        let participant = || value.get("participant").and_then(DailyParticipant::from_json);
        let text = |key: &str| {
            value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        };
        Some(match action {
            "participant-joined" => DailyEvent::ParticipantJoined(participant()?),
            "participant-updated" => DailyEvent::ParticipantUpdated(participant()?),
            "participant-left" => DailyEvent::ParticipantLeft {
                participant: participant()?,
                reason: text("reason").or_else(|| text("leftReason")),
            },
            "app-message" => DailyEvent::AppMessage {
                data: value.get("msgData").cloned().unwrap_or(Value::Null),
                from: text("from").or_else(|| text("fromId")),
            },
            "call-state-updated" => DailyEvent::CallStateUpdated {
                state: CallState::parse(value.get("state")?.as_str()?),
                error: error_text(value.get("error")),
            },
            "error" => DailyEvent::Error {
                message: text("message").unwrap_or_else(|| "unknown Daily error".to_owned()),
            },
            other => DailyEvent::Other { action: other.to_owned() },
        })
    }
}

/// An `error` member as text: a string, or a non-null value's JSON (`{"msg": …}` → its `msg`).
fn error_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => match map.get("msg").or_else(|| map.get("message")) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => Some(Value::Object(map.clone()).to_string()),
        },
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn participant_fields() {
        let p = DailyParticipant::from_json(&json!({
            "id": "bot-1",
            "info": {"isLocal": false, "userName": "Pipecat", "userId": "u1"},
            "media": {"microphone": {"state": "playable"}}
        }))
        .unwrap();
        assert_eq!(p.id, "bot-1");
        assert_eq!(p.user_name.as_deref(), Some("Pipecat"));
        assert_eq!(p.user_id.as_deref(), Some("u1"));
        assert!(!p.local);
        assert!(p.is_audio_playable());
        let core = p.to_participant();
        assert_eq!(
            (core.id.as_str(), core.name.as_deref(), core.local),
            ("bot-1", Some("Pipecat"), false)
        );

        let bare = DailyParticipant::from_json(&json!({"id": "x"})).unwrap();
        assert!(!bare.local && !bare.is_audio_playable() && bare.user_name.is_none());
        assert_eq!(DailyParticipant::from_json(&json!({"id": ""})), None);
        assert_eq!(DailyParticipant::from_json(&json!({"id": 5})), None);
        assert_eq!(DailyParticipant::from_json(&json!("bot")), None);
    }

    #[test]
    fn actions() {
        let p = json!({"id": "b", "info": {"isLocal": false}});
        assert!(matches!(
            DailyEvent::from_json(&json!({"action": "participant-joined", "participant": p})),
            Some(DailyEvent::ParticipantJoined(_))
        ));
        assert!(matches!(
            DailyEvent::from_json(&json!({"action": "participant-updated", "participant": p})),
            Some(DailyEvent::ParticipantUpdated(_))
        ));
        assert_eq!(
            DailyEvent::from_json(
                &json!({"action": "participant-left", "participant": p, "reason": "leftCall"})
            ),
            Some(DailyEvent::ParticipantLeft {
                participant: DailyParticipant::from_json(&p).unwrap(),
                reason: Some("leftCall".into())
            })
        );
        assert_eq!(
            DailyEvent::from_json(
                &json!({"action": "app-message", "msgData": {"a": 1}, "from": "b"})
            ),
            Some(DailyEvent::AppMessage { data: json!({"a": 1}), from: Some("b".into()) })
        );
        assert_eq!(
            DailyEvent::from_json(&json!({"action": "call-state-updated", "state": "joined"})),
            Some(DailyEvent::CallStateUpdated { state: CallState::Joined, error: None })
        );
        assert_eq!(
            DailyEvent::from_json(&json!({"action": "error", "message": "Ejected"})),
            Some(DailyEvent::Error { message: "Ejected".into() })
        );
        assert_eq!(
            DailyEvent::from_json(&json!({"action": "active-speaker-changed"})),
            Some(DailyEvent::Other { action: "active-speaker-changed".into() })
        );
    }

    #[test]
    fn malformed_events_are_none() {
        for bad in [
            json!({}),
            json!({"action": 5}),
            json!([]),
            json!("participant-joined"),
            json!({"action": "participant-joined"}),
            json!({"action": "participant-left", "participant": {"name": "x"}}),
            json!({"action": "call-state-updated"}),
            json!({"action": "call-state-updated", "state": 3}),
        ] {
            assert_eq!(DailyEvent::from_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn call_state_error_shapes() {
        let parse = |error: Value| match DailyEvent::from_json(
            &json!({"action": "call-state-updated", "state": "left", "error": error}),
        ) {
            Some(DailyEvent::CallStateUpdated { error, .. }) => error,
            other => panic!("{other:?}"),
        };
        assert_eq!(parse(json!("Room closed")), Some("Room closed".into()));
        assert_eq!(parse(json!({"msg": "Ejected"})), Some("Ejected".into()));
        assert_eq!(parse(json!(null)), None);
        assert_eq!(parse(json!("")), None);
        assert_eq!(parse(json!({"code": 3})), Some(r#"{"code":3}"#.into()));
    }
}
