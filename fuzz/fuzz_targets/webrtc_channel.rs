//! SmallWebRTC data channel: every message the bot sends on it (RTVI JSON, or the
//! transport's `signalling` messages), sorted as the channel reader does.
//!
//! Invariants: no panic; RTVI text is passed on unchanged, and only valid JSON is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_rtvi::ServerEnvelope;
use pipecat_small_webrtc::fuzzing::{ChannelMessage, channel_message};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match channel_message(data) {
        ChannelMessage::Rtvi(text) => {
            assert_eq!(text.as_bytes(), data);
            assert!(serde_json::from_str::<Value>(&text).is_ok());
            // What the client does with it next.
            let _ = ServerEnvelope::parse(&text);
        }
        ChannelMessage::Dropped => {
            assert!(
                std::str::from_utf8(data)
                    .map_or(true, |t| serde_json::from_str::<Value>(t).is_err())
            );
        }
        ChannelMessage::Renegotiate | ChannelMessage::PeerLeft | ChannelMessage::OtherSignal(_) => {
        }
    }
});
