//! The session lifecycle: [`TransportState`] and its explicit transition table.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a client's session is in its lifecycle.
///
/// Serialises (and displays) as the names of the Pipecat documentation: `idle`,
/// `initializing`, ... `error`.
///
/// Unlike client-js, `ready` means `bot-ready` was *received*; `connected` means the transport
/// is up and `client-ready` was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportState {
    /// The client was built; no attempt has started.
    Idle,
    /// `init_devices()` is running.
    Initializing,
    /// `init_devices()` finished.
    Initialized,
    /// `start_bot()` is POSTing to the start endpoint.
    Authenticating,
    /// `start_bot()` got a 2xx JSON answer.
    Authenticated,
    /// The transport is establishing its connection.
    Connecting,
    /// The transport is up and `client-ready` was sent; the bot pipeline is initialising.
    Connected,
    /// `bot-ready` was received: the session is fully usable.
    Ready,
    /// A disconnect is in progress.
    Disconnecting,
    /// The session has ended (a new one may start).
    Disconnected,
    /// A fatal error; the client moves on to `disconnected` by itself and cleans up.
    Error,
}

use TransportState::*;

/// The transition table: every state with the states it may move to. Any other transition
/// is a bug and is refused.
///
/// | from | to |
/// |---|---|
/// | `idle` | `initializing`, `authenticating`, `connecting` |
/// | `initializing` | `initialized`, `error`, `disconnecting` |
/// | `initialized` | `initializing`, `authenticating`, `connecting`, `disconnecting` |
/// | `authenticating` | `authenticated`, `error`, `disconnecting` |
/// | `authenticated` | `authenticating`, `connecting`, `error`, `disconnecting` |
/// | `connecting` | `connected`, `error`, `disconnecting` |
/// | `connected` | `ready`, `error`, `disconnecting` |
/// | `ready` | `error`, `disconnecting` |
/// | `disconnecting` | `disconnected` |
/// | `error` | `disconnected` |
/// | `disconnected` | `initializing`, `authenticating`, `connecting` |
///
/// Orderly ends (`disconnect()`, the bot leaving) go through `disconnecting`; failures
/// (timeouts, transport failures, fatal bot errors, failed start requests, unusable
/// parameters) go through `error`. `init_devices()` during a session does not change the
/// state.
pub const TRANSITIONS: &[(TransportState, &[TransportState])] = &[
    (Idle, &[Initializing, Authenticating, Connecting]),
    (Initializing, &[Initialized, Error, Disconnecting]),
    (Initialized, &[Initializing, Authenticating, Connecting, Disconnecting]),
    (Authenticating, &[Authenticated, Error, Disconnecting]),
    (Authenticated, &[Authenticating, Connecting, Error, Disconnecting]),
    (Connecting, &[Connected, Error, Disconnecting]),
    (Connected, &[Ready, Error, Disconnecting]),
    (Ready, &[Error, Disconnecting]),
    (Disconnecting, &[Disconnected]),
    (Error, &[Disconnected]),
    (Disconnected, &[Initializing, Authenticating, Connecting]),
];

/// Whether the lifecycle allows moving from `from` to `to` (see [`TRANSITIONS`]).
///
/// ```
/// use pipecat_core::{TransportState, can_transition};
/// assert!(can_transition(TransportState::Connected, TransportState::Ready));
/// assert!(!can_transition(TransportState::Idle, TransportState::Ready));
/// ```
pub fn can_transition(from: TransportState, to: TransportState) -> bool {
    from.successors().contains(&to)
}

impl TransportState {
    /// Every state, in lifecycle order.
    pub const ALL: [TransportState; 11] = [
        Idle,
        Initializing,
        Initialized,
        Authenticating,
        Authenticated,
        Connecting,
        Connected,
        Ready,
        Disconnecting,
        Disconnected,
        Error,
    ];

    /// The documented name (`"idle"`, `"ready"`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Idle => "idle",
            Initializing => "initializing",
            Initialized => "initialized",
            Authenticating => "authenticating",
            Authenticated => "authenticated",
            Connecting => "connecting",
            Connected => "connected",
            Ready => "ready",
            Disconnecting => "disconnecting",
            Disconnected => "disconnected",
            Error => "error",
        }
    }

    /// The states this one may move to.
    pub fn successors(self) -> &'static [TransportState] {
        TRANSITIONS.iter().find(|(from, _)| *from == self).map(|(_, to)| *to).unwrap_or(&[])
    }

    /// `true` in `connected` and `ready` (the transport is up).
    pub fn is_connected(self) -> bool {
        matches!(self, Connected | Ready)
    }

    /// `true` when no session is active and a new one may start: `idle`, `initialized`,
    /// `disconnected` (and `authenticated`, which a `connect` continues).
    pub fn can_start(self) -> bool {
        matches!(self, Idle | Initialized | Authenticated | Disconnected)
    }

    /// `true` while a session is ending (`disconnecting`, `error`).
    pub fn is_ending(self) -> bool {
        matches!(self, Disconnecting | Error)
    }
}

impl fmt::Display for TransportState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid state transition from {from} to {to}")]
pub struct InvalidTransition {
    /// The current state.
    pub from: TransportState,
    /// The state asked for.
    pub to: TransportState,
}

/// The current state, changed only through the table.
#[derive(Debug)]
pub(crate) struct StateMachine {
    state: TransportState,
}

impl StateMachine {
    pub(crate) fn new() -> Self {
        StateMachine { state: Idle }
    }

    pub(crate) fn state(&self) -> TransportState {
        self.state
    }

    /// Moves to `to` and returns the previous state, or refuses and changes nothing.
    pub(crate) fn transition(
        &mut self,
        to: TransportState,
    ) -> Result<TransportState, InvalidTransition> {
        let from = self.state;
        if !can_transition(from, to) {
            return Err(InvalidTransition { from, to });
        }
        self.state = to;
        Ok(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_display() {
        for state in TransportState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(state.to_string(), state.as_str());
            let back: TransportState = serde_json::from_str(&json).unwrap();
            assert_eq!(back, state);
        }
        assert_eq!(TransportState::Authenticated.to_string(), "authenticated");
    }

    #[test]
    fn every_state_has_a_row_and_the_table_is_closed() {
        for state in TransportState::ALL {
            assert_eq!(TRANSITIONS.iter().filter(|(from, _)| *from == state).count(), 1);
            assert!(!state.successors().contains(&state), "{state} loops to itself");
        }
        // Every state but idle can be reached.
        for state in TransportState::ALL.into_iter().filter(|s| *s != Idle) {
            assert!(
                TransportState::ALL.iter().any(|from| can_transition(*from, state)),
                "{state} is unreachable"
            );
        }
    }

    #[test]
    fn canonical_sequences_are_allowed() {
        let paths: &[&[TransportState]] = &[
            &[Idle, Initializing, Initialized, Connecting, Connected, Ready, Disconnecting],
            &[Idle, Authenticating, Authenticated, Connecting, Connected, Ready, Error],
            &[Error, Disconnected, Connecting, Error, Disconnected, Authenticating],
            &[Disconnecting, Disconnected, Initializing, Error, Disconnected],
        ];
        for path in paths {
            let mut machine = StateMachine { state: path[0] };
            for next in &path[1..] {
                machine.transition(*next).unwrap();
            }
        }
    }

    #[test]
    fn invalid_transitions_are_refused_and_change_nothing() {
        let mut refused = 0;
        for from in TransportState::ALL {
            for to in TransportState::ALL {
                let mut machine = StateMachine { state: from };
                match machine.transition(to) {
                    Ok(previous) => {
                        assert_eq!(previous, from);
                        assert_eq!(machine.state(), to);
                    }
                    Err(e) => {
                        refused += 1;
                        assert_eq!(e, InvalidTransition { from, to });
                        assert_eq!(machine.state(), from);
                    }
                }
            }
        }
        let allowed: usize = TRANSITIONS.iter().map(|(_, to)| to.len()).sum();
        assert_eq!(refused + allowed, 121);
        for (from, to) in [
            (Idle, Ready),
            (Idle, Disconnected),
            (Ready, Connected),
            (Disconnecting, Error),
            (Error, Ready),
            (Disconnected, Ready),
            (Connecting, Authenticating),
            (Ready, Ready),
        ] {
            assert!(!can_transition(from, to), "{from} -> {to} must be refused");
        }
    }
}
