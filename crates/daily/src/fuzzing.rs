//! Hooks for the coverage-guided fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API).
//!
//! The envelope, event, params and session parsers are public already; the only private one
//! is the sidecar bridge's line parser, exposed here as [`bridge_lines`]: the routing of
//! `read_stdout` without a child process.

use pipecat_media::{AudioFormat, AudioFrame};
use serde_json::Value;

use crate::backend::BackendError;
use crate::backend::sidecar::{self, BridgeHello, BridgeLine};

/// What the sidecar backend does with one line of the bridge's stdout.
#[derive(Debug)]
pub enum BridgeOutput {
    /// The handshake (or why it is unusable); only the first one counts.
    Hello(Result<BridgeHello, BackendError>),
    /// The bridge failed; the call is over.
    Fatal(String),
    /// The answer to request `id`: its result, or daily-core's error text.
    Reply {
        /// The request id.
        id: u64,
        /// The result, or the error text.
        result: Result<Value, String>,
    },
    /// A daily-core event, handed to the transport as is.
    Event(Value),
    /// Bot audio, stamped after the audio delivered before it.
    Speaker(AudioFrame),
    /// A line that is skipped (not JSON, unknown type, malformed, PCM that is not whole
    /// frames of `speaker_format`).
    Skipped,
}

/// Splits `input` into lines as the backend reads them and classifies each, keeping the
/// speaker clock as the backend does.
pub fn bridge_lines(input: &[u8], speaker_format: AudioFormat) -> Vec<BridgeOutput> {
    let mut samples = 0u64;
    input
        .split_inclusive(|b| *b == b'\n')
        .map(|line| match sidecar::parse_line(line) {
            BridgeLine::NotJson | BridgeLine::Ignored => BridgeOutput::Skipped,
            BridgeLine::Hello(hello) => BridgeOutput::Hello(hello),
            BridgeLine::Fatal(error) => BridgeOutput::Fatal(error),
            BridgeLine::Response { id, result } => BridgeOutput::Reply { id, result },
            BridgeLine::Event(event) => BridgeOutput::Event(event),
            BridgeLine::Speaker(pcm) => {
                match sidecar::speaker_frame(&pcm, speaker_format, samples) {
                    Some(frame) => {
                        samples = samples.saturating_add(frame.samples().len() as u64);
                        BridgeOutput::Speaker(frame)
                    }
                    None => BridgeOutput::Skipped,
                }
            }
        })
        .collect()
}
