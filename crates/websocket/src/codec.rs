//! The wire format: pipecat's protobuf `pipecat.Frame`, one per binary WebSocket message.
//!
//! RTVI messages ride as JSON text in `MessageFrame.data`; audio is raw PCM16 little-endian in
//! `AudioRawFrame`, with its rate and channel count; the bot signals a barge-in with an empty
//! `InterruptionFrame`. These functions are public so that test servers (and curious users)
//! speak exactly what the transport speaks. The plain protobuf framing comes from
//! `pipecat-frames`, which the testkit's bot shares; this module adds the audio conversion.

use std::time::Duration;

use pipecat_frames::{FrameError, FrameKind as Kind, proto};
use pipecat_media::{AudioFormat, AudioFrame};
use prost::bytes::Bytes;

pub use pipecat_frames::{encode, encode_message};

/// The `name` our audio frames carry, as the JS client does.
pub const AUDIO_FRAME_NAME: &str = "audio";

/// Why a binary message is not a usable pipecat frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes are not a `pipecat.Frame`, or one with no kind set.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An audio frame whose rate, channel count or length is unusable.
    #[error("unusable audio frame: {0}")]
    InvalidAudio(String),
}

/// Decodes one binary WebSocket message into the frame kind it carries.
///
/// ```
/// use pipecat_websocket::codec;
/// use pipecat_websocket::proto::frame::Frame;
///
/// let bytes = codec::encode_message(r#"{"label":"rtvi-ai","type":"bot-ready"}"#);
/// match codec::decode(&bytes)? {
///     Frame::Message(m) => assert!(m.data.contains("bot-ready")),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert!(codec::decode(b"\xff\xff\xff").is_err());
/// # Ok::<(), pipecat_websocket::codec::CodecError>(())
/// ```
///
/// # Errors
/// [`CodecError::Frame`] for bytes that are not protobuf or a frame with no kind set.
pub fn decode(bytes: &[u8]) -> Result<Kind, CodecError> {
    Ok(pipecat_frames::decode(bytes)?)
}

/// Encodes PCM16 audio as an `AudioRawFrame` (id 0, name `"audio"`, no pts).
pub fn encode_audio(frame: &AudioFrame) -> Vec<u8> {
    let mut pcm = Vec::new();
    frame.write_le_bytes(&mut pcm);
    encode(Kind::Audio(proto::AudioRawFrame {
        id: 0,
        name: AUDIO_FRAME_NAME.to_owned(),
        audio: Bytes::from(pcm),
        sample_rate: frame.sample_rate(),
        num_channels: u32::from(frame.channels()),
        pts: None,
    }))
}

/// Encodes an (empty) `InterruptionFrame`, as the bot sends on a barge-in.
pub fn encode_interruption() -> Vec<u8> {
    encode(Kind::Interruption(proto::InterruptionFrame { id: 0, name: String::new() }))
}

/// Turns a received `AudioRawFrame` into an [`AudioFrame`] in the format the frame declares.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame};
/// use pipecat_websocket::codec;
/// use pipecat_websocket::proto::frame::Frame;
/// use std::time::Duration;
///
/// let sent = AudioFrame::new(vec![1, -1, 2, -2], AudioFormat::new(24_000, 2), Duration::ZERO)?;
/// let Frame::Audio(raw) = codec::decode(&codec::encode_audio(&sent))? else { unreachable!() };
/// let got = codec::audio_frame(&raw, Duration::ZERO)?;
/// assert_eq!(got, sent);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`CodecError::InvalidAudio`] for a rate or channel count the media layer refuses, an odd
/// byte count or a partial frame.
pub fn audio_frame(
    raw: &proto::AudioRawFrame,
    timestamp: Duration,
) -> Result<AudioFrame, CodecError> {
    let channels = u16::try_from(raw.num_channels)
        .map_err(|_| CodecError::InvalidAudio(format!("{} channels", raw.num_channels)))?;
    let format = AudioFormat::new(raw.sample_rate, channels);
    AudioFrame::from_le_bytes(&raw.audio, format, timestamp)
        .map_err(|e| CodecError::InvalidAudio(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_round_trip_keeps_format() {
        let frame =
            AudioFrame::new(vec![0, 1, -1, 300], AudioFormat::MONO_16K, Duration::ZERO).unwrap();
        let Ok(Kind::Audio(raw)) = decode(&encode_audio(&frame)) else { panic!("not audio") };
        assert_eq!((raw.sample_rate, raw.num_channels, raw.name.as_str()), (16_000, 1, "audio"));
        assert_eq!(raw.audio.len(), 8);
        assert_eq!(audio_frame(&raw, Duration::ZERO).unwrap(), frame);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(decode(&[]), Err(CodecError::Frame(FrameError::Empty))));
        assert!(matches!(decode(b"\x0a\xff"), Err(CodecError::Frame(FrameError::Decode(_)))));
        assert!(matches!(decode(&encode_interruption()), Ok(Kind::Interruption(_))));
        let bad = [
            proto::AudioRawFrame { sample_rate: 0, num_channels: 1, ..Default::default() },
            proto::AudioRawFrame { sample_rate: 16_000, num_channels: 0, ..Default::default() },
            proto::AudioRawFrame {
                sample_rate: 16_000,
                num_channels: 70_000,
                ..Default::default()
            },
            proto::AudioRawFrame {
                sample_rate: 16_000,
                num_channels: 1,
                audio: Bytes::from_static(&[1, 2, 3]),
                ..Default::default()
            },
            proto::AudioRawFrame {
                sample_rate: 16_000,
                num_channels: 2,
                audio: Bytes::from_static(&[1, 2]),
                ..Default::default()
            },
        ];
        for raw in bad {
            assert!(matches!(audio_frame(&raw, Duration::ZERO), Err(CodecError::InvalidAudio(_))));
        }
    }
}
