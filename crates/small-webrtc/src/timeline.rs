//! When each step of a connection attempt happened: the transport logs it at debug level
//! when the data channel opens, and keeps the last one in [`SmallWebRtcStats`].
//!
//! [`SmallWebRtcStats`]: crate::SmallWebRtcStats

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The steps of one connection attempt (a first connection, a restart or a recovery), each
/// as the time since the attempt began; `None` for a step that did not happen (or, for the
/// ICE and DTLS steps, whose event arrived after the channel opened).
///
/// Read it from [`SmallWebRtcStats::last_connect`]; with `RUST_LOG=pipecat_small_webrtc=debug`
/// every attempt logs it as one `connect timeline` line.
///
/// [`SmallWebRtcStats::last_connect`]: crate::SmallWebRtcStats::last_connect
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectTimeline {
    /// The peer connection, its transceivers and data channel were built.
    pub peer_built: Option<Duration>,
    /// The offer was created and applied locally (candidates gathered, when waiting for them).
    pub offer_created: Option<Duration>,
    /// The server's answer arrived (the offer POST returned).
    pub answer_received: Option<Duration>,
    /// The answer was applied.
    pub answer_applied: Option<Duration>,
    /// ICE began its connectivity checks.
    pub ice_checking: Option<Duration>,
    /// ICE found a working pair.
    pub ice_connected: Option<Duration>,
    /// DTLS was up (the peer connection reached `connected`).
    pub dtls_connected: Option<Duration>,
    /// The data channel opened (the server acknowledged it): the transport is connected.
    pub channel_open: Option<Duration>,
}

/// Which step a [`Recorder::mark`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    PeerBuilt,
    OfferCreated,
    AnswerReceived,
    AnswerApplied,
    IceChecking,
    IceConnected,
    DtlsConnected,
    ChannelOpen,
}

/// Fills a [`ConnectTimeline`] from the attempt's start; the first mark of a step wins.
#[derive(Debug)]
pub(crate) struct Recorder {
    started: Instant,
    timeline: ConnectTimeline,
}

impl Recorder {
    pub(crate) fn start() -> Recorder {
        Recorder { started: Instant::now(), timeline: ConnectTimeline::default() }
    }

    pub(crate) fn mark(&mut self, step: Step) {
        let t = &mut self.timeline;
        let slot = match step {
            Step::PeerBuilt => &mut t.peer_built,
            Step::OfferCreated => &mut t.offer_created,
            Step::AnswerReceived => &mut t.answer_received,
            Step::AnswerApplied => &mut t.answer_applied,
            Step::IceChecking => &mut t.ice_checking,
            Step::IceConnected => &mut t.ice_connected,
            Step::DtlsConnected => &mut t.dtls_connected,
            Step::ChannelOpen => &mut t.channel_open,
        };
        slot.get_or_insert_with(|| self.started.elapsed());
    }

    pub(crate) fn timeline(&self) -> ConnectTimeline {
        self.timeline
    }
}

impl fmt::Display for ConnectTimeline {
    /// `peer 1.2 ms, offer 1.5 ms, answer 9.8 ms, ...`: each step's time since the start,
    /// in order, leaving out the steps that did not happen.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps = [
            ("peer", self.peer_built),
            ("offer", self.offer_created),
            ("answer", self.answer_received),
            ("applied", self.answer_applied),
            ("ice-checking", self.ice_checking),
            ("ice-connected", self.ice_connected),
            ("dtls", self.dtls_connected),
            ("channel-open", self.channel_open),
        ];
        let mut first = true;
        for (name, at) in steps {
            let Some(at) = at else { continue };
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{name} {:.1} ms", at.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_mark_of_a_step_wins_and_display_lists_steps_in_order() {
        let mut t = ConnectTimeline {
            peer_built: Some(Duration::from_micros(1200)),
            channel_open: Some(Duration::from_millis(45)),
            ..Default::default()
        };
        assert_eq!(t.to_string(), "peer 1.2 ms, channel-open 45.0 ms");
        t.channel_open = None;
        assert_eq!(t.to_string(), "peer 1.2 ms");
        assert_eq!(ConnectTimeline::default().to_string(), "");

        let mut r = Recorder::start();
        r.mark(Step::IceChecking);
        let first = r.timeline().ice_checking;
        std::thread::sleep(Duration::from_millis(2));
        r.mark(Step::IceChecking);
        assert_eq!(r.timeline().ice_checking, first);
        assert!(r.timeline().channel_open.is_none());
    }
}
