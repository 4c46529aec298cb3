//! Daily app-messages: the payload (`msgData`) of every app-message in the room, sorted into
//! RTVI (for the client) and everything else, as the Daily session does.
//!
//! Invariants: no panic; what is passed on as RTVI is a JSON object labelled `rtvi-ai` that
//! the outgoing encoder accepts and that classifies as RTVI again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_daily::envelope::{self, InboundAppMessage};
use pipecat_rtvi::{RTVI_LABEL, ServerEnvelope};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // Send errors from daily-core are classified by their text.
        let _ = envelope::is_too_large_error(text);
    }
    let Ok(payload) = serde_json::from_slice::<Value>(data) else { return };
    match envelope::decode(&payload) {
        InboundAppMessage::Rtvi(text) => {
            let value = envelope::encode(&text).expect("RTVI text re-encodes as a payload");
            assert_eq!(value.get("label").and_then(Value::as_str), Some(RTVI_LABEL));
            match &payload {
                Value::String(inner) => {
                    assert_eq!(Some(&value), serde_json::from_str::<Value>(inner).ok().as_ref());
                }
                other => assert_eq!(&value, other),
            }
            assert!(matches!(envelope::decode(&value), InboundAppMessage::Rtvi(t) if t == text));
            let _ = ServerEnvelope::parse(&text);
        }
        InboundAppMessage::Other(value) => assert_eq!(value, payload),
        _ => {}
    }
});
