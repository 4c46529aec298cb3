//! Bot audio: the WebSocket bot declares the rate and channel count of every audio frame it
//! sends, and the audio sinks convert whatever arrives to their own format
//! (`AudioConverter`: resampling and remixing, restarted when the bot's format changes).
//!
//! Input: a byte choosing the sink format, then frames of `[rate: u32 LE][channels: u8]
//! [frames: u16 LE][PCM16 LE …]`, the declared values mapped into what the media layer accepts
//! (1..=384 kHz, 1..=32 channels, up to 1024 frames); missing PCM is silence.
//!
//! Invariants: no panic, no error for valid frames; every output frame is in the sink's
//! format; output never runs far ahead of input.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pipecat_media::{
    AudioConverter, AudioFormat, AudioFrame, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};

const SINKS: [AudioFormat; 4] = [
    AudioFormat::MONO_16K,
    AudioFormat::new(24_000, 1),
    AudioFormat::MONO_48K,
    AudioFormat::STEREO_48K,
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, mut rest)) = data.split_first() else { return };
    let sink = SINKS[usize::from(choice) % SINKS.len()];
    let mut converter = AudioConverter::new(sink).expect("a valid sink format");
    let mut clock = Duration::ZERO;
    // Input and output seconds of the current format run (a format change starts over).
    let (mut seconds_in, mut seconds_out) = (0.0f64, 0.0f64);
    let check = |frame: Option<AudioFrame>, seconds_out: &mut f64| {
        if let Some(frame) = frame {
            assert_eq!(frame.format(), sink);
            *seconds_out += frame.duration().as_secs_f64();
        }
    };
    for _ in 0..8 {
        let Some((header, body)) = rest.split_first_chunk::<7>() else { break };
        let rate = MIN_SAMPLE_RATE
            + u32::from_le_bytes([header[0], header[1], header[2], header[3]])
                % (MAX_SAMPLE_RATE - MIN_SAMPLE_RATE + 1);
        let channels = 1 + u16::from(header[4]) % MAX_CHANNELS;
        let frames = usize::from(u16::from_le_bytes([header[5], header[6]]) % 1025);
        let wanted = frames * usize::from(channels) * 2;
        let (pcm, next) = body.split_at(wanted.min(body.len()));
        rest = next;
        let mut bytes = pcm.to_vec();
        bytes.resize(wanted, 0);
        let format = AudioFormat::new(rate, channels);
        let frame = AudioFrame::from_le_bytes(&bytes, format, clock).expect("a valid frame");
        clock += frame.duration();
        if converter.input_format() != Some(format) {
            (seconds_in, seconds_out) = (0.0, 0.0);
        }
        seconds_in += frame.duration().as_secs_f64();
        let out = converter.process(frame).expect("valid frames convert");
        check(out, &mut seconds_out);
        // At most one resampler block (10 ms) plus rounding ahead of the input.
        assert!(seconds_out <= seconds_in + 0.011, "{seconds_out} s out of {seconds_in} s in");
    }
    let tail = converter.finish().expect("the converter flushes");
    check(tail, &mut seconds_out);
    assert!(seconds_out <= seconds_in + 0.011, "{seconds_out} s out of {seconds_in} s in");
});
