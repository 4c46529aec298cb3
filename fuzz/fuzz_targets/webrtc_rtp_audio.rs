//! SmallWebRTC bot audio: the Opus payloads of the bot's audio track, with their RTP sequence
//! numbers, through the track's decoder (loss concealment, late and duplicate packets).
//!
//! Input: packets of `[seq: u16 LE][length: u16 LE][payload …]`.
//!
//! Invariants: no panic; frames are 48 kHz mono with contiguous timestamps; one packet
//! yields at most its own 120 ms plus 100 ms of concealment.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pipecat_media::AudioFormat;
use pipecat_small_webrtc::fuzzing::RtpAudio;

fuzz_target!(|data: &[u8]| {
    let mut decoder = RtpAudio::new().expect("an Opus decoder");
    let mut rest = data;
    let mut end = Duration::ZERO;
    while let Some((header, body)) = rest.split_first_chunk::<4>() {
        let seq = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]])).min(body.len());
        let (payload, next) = body.split_at(len);
        rest = next;
        let (frames, _skipped) = decoder.push(seq, payload);
        let mut produced = Duration::ZERO;
        for frame in frames {
            assert_eq!(frame.format(), AudioFormat::MONO_48K);
            assert_eq!(frame.timestamp(), end, "bot audio timestamps are contiguous");
            end = frame.end_timestamp();
            produced += frame.duration();
        }
        assert!(produced <= Duration::from_millis(220), "{produced:?} from one packet");
    }
});
