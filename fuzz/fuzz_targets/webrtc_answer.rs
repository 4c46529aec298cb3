//! SmallWebRTC offer endpoint: the JSON body that answers our offer POST, checked and its SDP
//! parsed (by webrtc-rs) as the transport does before applying it.
//!
//! Invariants: no panic; an accepted answer has a `v=0` SDP with a media section and a
//! non-empty `pc_id`; a refusal is `InvalidAnswer`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_small_webrtc::SmallWebRtcError;
use pipecat_small_webrtc::fuzzing::offer_answer;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    match offer_answer(&body) {
        Ok(answer) => {
            assert!(answer.sdp.trim_start().starts_with("v=0"));
            assert!(answer.sdp.lines().any(|l| l.starts_with("m=")));
            assert!(!answer.pc_id.is_empty());
        }
        Err(SmallWebRtcError::InvalidAnswer { reason }) => assert!(!reason.is_empty()),
        Err(other) => panic!("an answer is refused as InvalidAnswer, got {other:?}"),
    }
});
