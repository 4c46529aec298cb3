//! RTVI decode: every text message a bot sends (any transport) goes through
//! `ServerEnvelope::parse`; test bots decode the client's with `ClientEnvelope::parse`.
//!
//! Invariants: no panic; whatever decodes encodes, and the encoding decodes to the same
//! message; a bot-ready version that parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_rtvi::{ClientEnvelope, ProtocolVersion, ServerEnvelope, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Ok(envelope) = ServerEnvelope::parse(text) {
        match &envelope.message {
            ServerMessage::BotReady(ready) => {
                if let Ok(version) = ready.protocol_version() {
                    let _ = (version.compatibility(), version.dtmf_format());
                    let back: ProtocolVersion =
                        version.to_string().parse().expect("a parsed version prints back");
                    assert_eq!(back, version);
                }
            }
            ServerMessage::BotOutput(output) => {
                let _ = output.kind();
            }
            ServerMessage::UiCommand(command) => {
                let _ = command.standard();
            }
            _ => {}
        }
        let _ = envelope.message.message_type();
        let encoded = envelope.to_json().expect("a decoded server message encodes");
        let again = ServerEnvelope::parse(&encoded)
            .unwrap_or_else(|e| panic!("re-decoding {encoded} failed: {e}"));
        assert_eq!(again, envelope, "{encoded}");
    }

    if let Ok(envelope) = ClientEnvelope::parse(text) {
        let encoded = envelope.to_json().expect("a decoded client message encodes");
        let again = ClientEnvelope::parse(&encoded)
            .unwrap_or_else(|e| panic!("re-decoding {encoded} failed: {e}"));
        assert_eq!(again, envelope, "{encoded}");
    }
});
