//! Daily sidecar bridge: the JSON lines `daily-python` (through the bridge script) writes on
//! its stdout, classified as the sidecar backend's reader does, with events and the join
//! answer carried on into the Daily session as the transport does.
//!
//! Invariants: no panic; speaker audio comes in whole frames of the speaker format with
//! timestamps that follow each other (within rounding); a refused handshake says why.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pipecat_daily::backend::JoinInfo;
use pipecat_daily::fuzzing::{BridgeOutput, bridge_lines};
use pipecat_daily::{DailyEvent, Session};
use pipecat_media::AudioFormat;

const SPEAKER: AudioFormat = AudioFormat::new(48_000, 2);

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new();
    let mut previous_end = Duration::ZERO;
    for output in bridge_lines(data, SPEAKER) {
        match output {
            BridgeOutput::Hello(Ok(hello)) => {
                let _ = format!("{hello:?}");
            }
            BridgeOutput::Hello(Err(error)) => assert!(!error.to_string().is_empty()),
            BridgeOutput::Reply { result: Ok(answer), .. } => {
                // A join answer: `{"join": …, "participants": {…}}`.
                let participants = answer.get("participants").filter(|p| p.is_object()).cloned();
                let info = JoinInfo::from_raw(
                    answer.get("join").cloned().unwrap_or(serde_json::Value::Null),
                    participants,
                );
                if let Some(participants) = &info.participants {
                    let _ = session.seed(participants);
                }
            }
            BridgeOutput::Reply { result: Err(message), .. } => {
                let _ = pipecat_daily::JoinFailure::classify(&message);
            }
            BridgeOutput::Event(event) => {
                if let Some(event) = DailyEvent::from_json(&event) {
                    let _ = session.handle(&event);
                }
            }
            BridgeOutput::Speaker(frame) => {
                assert_eq!(frame.format(), SPEAKER);
                assert_eq!(frame.samples().len() % usize::from(SPEAKER.channels), 0);
                // Stamped from the samples delivered so far: no drift, at most a nanosecond
                // of rounding past the previous frame's end.
                let gap = frame.timestamp().checked_sub(previous_end).expect("in order");
                assert!(gap <= Duration::from_nanos(1), "{gap:?}");
                previous_end = frame.end_timestamp();
            }
            BridgeOutput::Fatal(_) | BridgeOutput::Skipped => {}
        }
    }
});
