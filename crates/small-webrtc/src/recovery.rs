//! Peer-connection recovery: when to rebuild the peer connection with `restart_pc: true`.
//!
//! aiortc does not recover from a plain ICE restart, so (like the JS transport) a broken link
//! is replaced by a brand-new peer connection offered with the old `pc_id` and
//! `restart_pc: true`; the server swaps it in under the running bot session.

use std::time::Duration;

use tokio::time::Instant;

/// When and how often the transport rebuilds a broken peer connection.
///
/// ```
/// use std::time::Duration;
/// use pipecat_small_webrtc::RecoveryConfig;
/// let config = RecoveryConfig { max_attempts: 5, ..RecoveryConfig::default() };
/// assert_eq!(config.disconnected_grace, Duration::from_secs(5));
/// let off = RecoveryConfig::disabled();
/// assert_eq!(off.max_attempts, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// Rebuild attempts per failure before the session ends (0 turns recovery off).
    pub max_attempts: u32,
    /// How long ICE may stay `disconnected` before it counts as broken.
    pub disconnected_grace: Duration,
    /// The pause between two failed attempts.
    pub retry_delay: Duration,
    /// The time limit of one attempt (offer, answer, data channel open).
    pub attempt_timeout: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_attempts: 3,
            disconnected_grace: Duration::from_secs(5),
            retry_delay: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(15),
        }
    }
}

impl RecoveryConfig {
    /// No recovery: a broken link ends the session.
    pub fn disabled() -> Self {
        RecoveryConfig { max_attempts: 0, ..RecoveryConfig::default() }
    }
}

/// What the link monitor saw of the peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkSignal {
    /// ICE (or the peer connection) is up.
    Up,
    /// ICE lost contact, maybe for a moment.
    Disconnected,
    /// ICE or DTLS failed, or the peer connection closed under us.
    Failed,
    /// Our data channel closed while we did not close it.
    ChannelClosed,
}

/// Why the link is considered broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakReason {
    Failed,
    DisconnectedTooLong,
    ChannelClosed,
}

impl BreakReason {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BreakReason::Failed => "the peer connection failed",
            BreakReason::DisconnectedTooLong => "ICE stayed disconnected past the grace period",
            BreakReason::ChannelClosed => "the data channel closed",
        }
    }
}

/// Turns link signals into "broken now" decisions, with the disconnected grace period.
#[derive(Debug, Clone)]
pub(crate) struct LinkMonitor {
    grace: Duration,
    disconnected_since: Option<Instant>,
}

impl LinkMonitor {
    pub(crate) fn new(grace: Duration) -> Self {
        LinkMonitor { grace, disconnected_since: None }
    }

    /// Feeds a signal; returns a reason when the link is broken now.
    pub(crate) fn observe(&mut self, signal: LinkSignal, now: Instant) -> Option<BreakReason> {
        match signal {
            LinkSignal::Up => {
                self.disconnected_since = None;
                None
            }
            LinkSignal::Disconnected => {
                self.disconnected_since.get_or_insert(now);
                self.check(now)
            }
            LinkSignal::Failed => Some(BreakReason::Failed),
            LinkSignal::ChannelClosed => Some(BreakReason::ChannelClosed),
        }
    }

    /// When the grace period of a disconnection runs out, if one is running.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.disconnected_since.map(|since| since + self.grace)
    }

    /// Whether the grace period has run out at `now`.
    pub(crate) fn check(&self, now: Instant) -> Option<BreakReason> {
        match self.deadline() {
            Some(deadline) if now >= deadline => Some(BreakReason::DisconnectedTooLong),
            _ => None,
        }
    }

    /// Forgets everything (a new peer connection starts clean).
    pub(crate) fn reset(&mut self) {
        self.disconnected_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_breaks_at_once_disconnection_after_grace() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(5);
        let mut m = LinkMonitor::new(grace);
        assert_eq!(m.observe(LinkSignal::Up, t0), None);
        assert_eq!(m.deadline(), None);

        assert_eq!(m.observe(LinkSignal::Disconnected, t0), None);
        assert_eq!(m.deadline(), Some(t0 + grace));
        // A repeated "disconnected" does not move the deadline.
        assert_eq!(m.observe(LinkSignal::Disconnected, t0 + Duration::from_secs(2)), None);
        assert_eq!(m.deadline(), Some(t0 + grace));
        assert_eq!(m.check(t0 + Duration::from_secs(4)), None);
        assert_eq!(m.check(t0 + grace), Some(BreakReason::DisconnectedTooLong));

        // Coming back within the grace period clears it.
        let mut m = LinkMonitor::new(grace);
        m.observe(LinkSignal::Disconnected, t0);
        m.observe(LinkSignal::Up, t0 + Duration::from_secs(1));
        assert_eq!(m.deadline(), None);
        assert_eq!(m.check(t0 + Duration::from_secs(60)), None);

        assert_eq!(m.observe(LinkSignal::Failed, t0), Some(BreakReason::Failed));
        assert_eq!(m.observe(LinkSignal::ChannelClosed, t0), Some(BreakReason::ChannelClosed));
        m.observe(LinkSignal::Disconnected, t0);
        m.reset();
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn defaults_match_the_js_transport() {
        let c = RecoveryConfig::default();
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.disconnected_grace, Duration::from_secs(5));
        assert_eq!(c.retry_delay, Duration::from_secs(2));
    }
}
