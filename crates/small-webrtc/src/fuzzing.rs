//! Hooks for the coverage-guided fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API).
//!
//! What this transport reads from the bot is private: the offer endpoint's answer (checked,
//! then its SDP parsed by webrtc-rs), the data channel's text messages and the Opus packets of
//! the bot's audio track. These functions run exactly that code.

use pipecat_media::{AudioFrame, MediaError};
use serde_json::Value;

use crate::SmallWebRtcError;
use crate::audio::BotAudioDecoder;
use crate::keepalive::{self, Inbound, ServerSignal};
use crate::{peer, signalling};

/// An offer-endpoint answer the transport would apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP, as sent.
    pub sdp: String,
    /// The server's peer connection id.
    pub pc_id: String,
}

/// Checks an offer endpoint's JSON answer and parses its SDP, as the transport does before
/// handing it to the peer connection.
///
/// # Errors
/// [`SmallWebRtcError::InvalidAnswer`] for an answer the transport refuses.
pub fn offer_answer(body: &Value) -> Result<Answer, SmallWebRtcError> {
    let answer = signalling::parse_answer(body)?;
    peer::answer_description(answer.sdp.clone())?;
    Ok(Answer { sdp: answer.sdp, pc_id: answer.pc_id })
}

/// What the transport makes of one data-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    /// The server asks for a new offer.
    Renegotiate,
    /// The bot is leaving.
    PeerLeft,
    /// Another signalling type (ignored).
    OtherSignal(String),
    /// RTVI JSON text for the client.
    Rtvi(String),
    /// Not UTF-8, or not JSON: dropped.
    Dropped,
}

/// Sorts one data-channel message (its raw bytes) as the channel reader does.
pub fn channel_message(bytes: &[u8]) -> ChannelMessage {
    let Ok(text) = std::str::from_utf8(bytes) else { return ChannelMessage::Dropped };
    match keepalive::classify(text) {
        Inbound::Signal(ServerSignal::Renegotiate) => ChannelMessage::Renegotiate,
        Inbound::Signal(ServerSignal::PeerLeft) => ChannelMessage::PeerLeft,
        Inbound::Signal(ServerSignal::Other(kind)) => ChannelMessage::OtherSignal(kind),
        Inbound::Rtvi(text) => ChannelMessage::Rtvi(text),
        Inbound::NotJson => ChannelMessage::Dropped,
    }
}

/// The bot audio track's decoder: Opus RTP payloads, in arrival order, to 48 kHz mono PCM
/// (late and duplicate packets dropped, short gaps concealed).
pub struct RtpAudio(BotAudioDecoder);

impl RtpAudio {
    /// A decoder at the start of a track.
    ///
    /// # Errors
    /// A [`MediaError`] if libopus cannot make a decoder.
    pub fn new() -> Result<Self, MediaError> {
        BotAudioDecoder::new().map(RtpAudio)
    }

    /// Decodes the payload of the RTP packet with sequence number `seq`: the frames it
    /// produced (concealment first), and why it was skipped if it was not Opus.
    pub fn push(&mut self, seq: u16, payload: &[u8]) -> (Vec<AudioFrame>, Option<MediaError>) {
        let decoded = self.0.push(seq, payload);
        (decoded.frames, decoded.error)
    }
}
