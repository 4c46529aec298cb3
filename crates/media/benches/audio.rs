//! CPU cost of one second of full-duplex voice audio: Opus encode and decode at 48 kHz mono in
//! 20 ms frames, and the resampling a WebSocket session does (device 48 kHz to 16 kHz up,
//! 24 kHz to 48 kHz down). Every measurement processes exactly one second of audio, so the
//! reported time is the CPU time per second of conversation.
//!
//! Run: `cargo bench -p pipecat-media --bench audio`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pipecat_media::{
    AudioConverter, AudioFormat, AudioFrame, OpusConfig, OpusDecoder, OpusEncoder, ToneGenerator,
};

/// One second of a tone as 20 ms frames.
fn second_of(format: AudioFormat) -> Vec<AudioFrame> {
    let mut tone = ToneGenerator::new(format, 440.0, 0.3).expect("valid tone");
    let frame = format.frames_in(Duration::from_millis(20));
    (0..50).map(|i| tone.frame(frame, Duration::from_millis(20 * i))).collect()
}

fn resample_second(conv: &mut AudioConverter, frames: &[AudioFrame]) -> usize {
    frames
        .iter()
        .filter_map(|f| conv.process(f.clone()).expect("resample"))
        .map(|f| f.samples().len())
        .sum()
}

fn benches(c: &mut Criterion) {
    let mic48 = second_of(AudioFormat::MONO_48K);
    let bot24 = second_of(AudioFormat::MONO_24K);
    let bot16 = second_of(AudioFormat::MONO_16K);

    let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
    let packets: Vec<Vec<u8>> =
        mic48.iter().map(|f| enc.encode(f.samples()).expect("encode")).collect();

    let mut group = c.benchmark_group("one_second_of_audio");

    group.bench_function("opus_encode_48k_mono_20ms", |b| {
        let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
        b.iter(|| {
            for f in &mic48 {
                black_box(enc.encode(f.samples()).expect("encode"));
            }
        });
    });

    // Lower complexity is not cheaper here: below 7 libopus skips its signal analysis, picks
    // SILK/hybrid for this tone instead of CELT and did ~2.5x the work (2026-12-04). Kept to
    // show the trade-off; the transports keep libopus's default.
    group.bench_function("opus_encode_48k_mono_20ms_complexity_5", |b| {
        let config = OpusConfig::default().with_complexity(Some(5));
        let mut enc = OpusEncoder::new(config).expect("encoder");
        b.iter(|| {
            for f in &mic48 {
                black_box(enc.encode(f.samples()).expect("encode"));
            }
        });
    });

    group.bench_function("opus_decode_48k_mono_20ms", |b| {
        let mut dec = OpusDecoder::new(AudioFormat::MONO_48K).expect("decoder");
        b.iter(|| {
            for p in &packets {
                black_box(dec.decode(p).expect("decode"));
            }
        });
    });

    for (name, input, target) in [
        ("resample_48k_to_16k", &mic48, AudioFormat::MONO_16K),
        ("resample_48k_to_24k", &mic48, AudioFormat::MONO_24K),
        ("resample_16k_to_48k", &bot16, AudioFormat::MONO_48K),
        ("resample_24k_to_48k", &bot24, AudioFormat::MONO_48K),
    ] {
        group.bench_function(name, |b| {
            let mut conv = AudioConverter::new(target).expect("converter");
            b.iter(|| black_box(resample_second(&mut conv, input)));
        });
    }

    // SmallWebRTC: mic encoded up, bot decoded down (device at 48 kHz: no resampling).
    group.bench_function("full_duplex_webrtc_opus", |b| {
        let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
        let mut dec = OpusDecoder::new(AudioFormat::MONO_48K).expect("decoder");
        b.iter(|| {
            for (f, p) in mic48.iter().zip(&packets) {
                black_box(enc.encode(f.samples()).expect("encode"));
                black_box(dec.decode(p).expect("decode"));
            }
        });
    });

    // WebSocket: mic 48k -> 16k up, bot 24k -> 48k down.
    group.bench_function("full_duplex_websocket_resample", |b| {
        let mut up = AudioConverter::new(AudioFormat::MONO_16K).expect("converter");
        let mut down = AudioConverter::new(AudioFormat::MONO_48K).expect("converter");
        b.iter(|| {
            black_box(resample_second(&mut up, &mic48));
            black_box(resample_second(&mut down, &bot24));
        });
    });

    // Everything above at once: the worst case a client pays per second of conversation.
    group.bench_function("full_duplex_all", |b| {
        let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
        let mut dec = OpusDecoder::new(AudioFormat::MONO_48K).expect("decoder");
        let mut up = AudioConverter::new(AudioFormat::MONO_16K).expect("converter");
        let mut down = AudioConverter::new(AudioFormat::MONO_48K).expect("converter");
        b.iter(|| {
            for (f, p) in mic48.iter().zip(&packets) {
                black_box(enc.encode(f.samples()).expect("encode"));
                black_box(dec.decode(p).expect("decode"));
            }
            black_box(resample_second(&mut up, &mic48));
            black_box(resample_second(&mut down, &bot24));
        });
    });

    group.finish();
}

criterion_group! {
    name = audio;
    // Small samples: the machine is shared and each iteration is already a full second.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(audio);
