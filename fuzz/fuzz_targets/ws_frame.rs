//! WebSocket transport: one binary WebSocket message from the bot, decoded as a protobuf
//! `pipecat.Frame` and, for audio, turned into a PCM frame, as the connection's reader does.
//!
//! Invariants: no panic; a decoded frame re-encodes to bytes that decode to the same frame; a
//! usable audio frame survives `encode_audio` and `audio_frame` unchanged; an RTVI message
//! frame round-trips through `encode_message`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pipecat_websocket::codec;
use pipecat_websocket::proto::frame::Frame as Kind;

fuzz_target!(|data: &[u8]| {
    let Ok(kind) = codec::decode(data) else { return };
    let again = codec::decode(&codec::encode(kind.clone())).expect("a decoded frame re-encodes");
    assert_eq!(again, kind);
    match kind {
        Kind::Audio(raw) => {
            // The reader keeps a running clock of the bot audio it received.
            let clock = Duration::from_secs(3600);
            if let Ok(frame) = codec::audio_frame(&raw, clock) {
                let _ = clock + frame.duration();
                let Ok(Kind::Audio(back)) = codec::decode(&codec::encode_audio(&frame)) else {
                    panic!("an encoded audio frame decodes as audio");
                };
                assert_eq!(codec::audio_frame(&back, clock).as_ref(), Ok(&frame));
            }
        }
        Kind::Message(message) => {
            let Ok(Kind::Message(back)) = codec::decode(&codec::encode_message(&message.data))
            else {
                panic!("an encoded message frame decodes as a message");
            };
            assert_eq!(back, message);
        }
        _ => {}
    }
});
