//! Track started/stopped events for the local audio (what a transport sends) and the bot's
//! audio (what it receives), and the participants they belong to.

use pipecat_core::media::{Participant, TrackInfo, TrackKind};
use pipecat_core::{TransportEvent, TransportEventSink};

/// The bot, as a participant, on a wire that gives it no id of its own.
pub fn bot_participant() -> Participant {
    Participant { id: "bot".into(), name: None, local: false }
}

/// The local user.
pub fn local_participant() -> Participant {
    Participant { id: "local".into(), name: None, local: true }
}

/// The audio track of `bot`.
pub fn bot_audio_track(bot: Participant) -> TrackInfo {
    TrackInfo { kind: TrackKind::Audio, participant: Some(bot) }
}

/// The local audio track (the microphone, or whatever source the program gave).
pub fn local_audio_track() -> TrackInfo {
    TrackInfo { kind: TrackKind::Audio, participant: Some(local_participant()) }
}

/// Reports a track as started once, and as stopped when dropped (if it started): the task
/// that owns it ends, is aborted, or its session stops.
///
/// `TrackStarted` goes to the session's sink. `TrackStopped` goes to the transport-level sink
/// when there is one: a client stops listening to a session's own sink as soon as the session
/// ends, which is exactly when most tracks stop.
#[derive(Debug)]
pub struct TrackGuard {
    info: TrackInfo,
    session: TransportEventSink,
    transport: Option<TransportEventSink>,
    started: bool,
}

impl TrackGuard {
    /// A guard for `info`: `TrackStarted` goes to `session`, `TrackStopped` to `transport`
    /// (else `session`).
    pub fn new(
        info: TrackInfo,
        session: TransportEventSink,
        transport: Option<TransportEventSink>,
    ) -> Self {
        TrackGuard { info, session, transport, started: false }
    }

    /// Reports the track as started, the first time only.
    pub fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.session.emit(TransportEvent::TrackStarted(self.info.clone()));
        }
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if self.started {
            let event = TransportEvent::TrackStopped(self.info.clone());
            match &self.transport {
                Some(sink) => sink.emit(event),
                None => self.session.emit(event),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_once_and_stopped_on_drop_on_the_transport_sink() {
        let (session, mut session_rx) = TransportEventSink::new(3);
        let transport = session.with_generation(0);
        let mut guard = TrackGuard::new(local_audio_track(), session, Some(transport));
        guard.start();
        guard.start();
        drop(guard);
        let mut seen = Vec::new();
        while let Ok(event) = session_rx.try_recv() {
            seen.push(event);
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(
            matches!(&seen[0], (3, TransportEvent::TrackStarted(t)) if t == &local_audio_track())
        );
        assert!(
            matches!(&seen[1], (0, TransportEvent::TrackStopped(t)) if t == &local_audio_track())
        );
    }

    #[test]
    fn a_track_that_never_started_never_stops() {
        let (session, mut rx) = TransportEventSink::new(1);
        drop(TrackGuard::new(bot_audio_track(bot_participant()), session, None));
        assert!(rx.try_recv().is_err());
    }
}
