//! What a session and its transport hand each other: outbound items, the client's input, how
//! bot audio is paced, and the channels of a new session.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Garbage, SessionCore};
use crate::recorder::EndReason;

/// How the bot leaves a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The normal goodbye: WebSocket close 1000; SmallWebRTC `peerLeft` then close.
    Graceful(EndReason),
    /// Drop the connection with no goodbye.
    Abrupt,
    /// WebSocket close with this code and reason.
    CloseCode(u16, String),
}

/// What a session hands to its transport, in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// RTVI JSON text (or raw text on the RTVI channel).
    Rtvi(String),
    /// A SmallWebRTC signalling message (JSON text). WebSocket transports drop it.
    Signalling(
        #[cfg_attr(
            not(feature = "webrtc"),
            expect(dead_code, reason = "only the SmallWebRTC answerer sends signalling")
        )]
        String,
    ),
    /// Bot audio: mono PCM16 at the session's output rate.
    Audio(Vec<i16>),
    /// WebSocket: a protobuf `InterruptionFrame`. SmallWebRTC transports drop it.
    Interruption,
    /// Transport-level garbage.
    Garbage(Garbage),
    /// SmallWebRTC: close the current peer connection without `peerLeft` (the session lives
    /// on, waiting for a `restart_pc`).
    DropPeerConnection,
    /// End the session.
    End(Ending),
}

/// What a transport hands to its session.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Text from the client's RTVI channel.
    Text(String),
    /// Client audio, interleaved PCM16.
    Audio {
        /// The samples.
        samples: Vec<i16>,
        /// Sample rate in Hz.
        sample_rate: u32,
        /// Channel count.
        channels: u16,
    },
}

/// How a session's bot audio is paced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AudioPlan {
    /// Output sample rate.
    pub(crate) sample_rate: u32,
    /// Chunk length.
    pub(crate) chunk: Duration,
    /// Send silence when idle (SmallWebRTC does, WebSocket does not).
    pub(crate) auto_silence: bool,
}

/// The channels a transport drives a new session with.
pub(crate) struct SessionIo {
    /// The session.
    pub(crate) core: Arc<SessionCore>,
    /// What to send to the client.
    pub(crate) outbound: mpsc::UnboundedReceiver<Outbound>,
    /// Where to put what the client sent.
    pub(crate) inbound: mpsc::UnboundedSender<Inbound>,
}
