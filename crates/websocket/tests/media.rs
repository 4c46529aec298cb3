//! The WebSocket wire of the media engine, against the in-test server: PCM frames up (muted
//! ones zeroed, none without audio), held audio released on ready, the bot's frames down to
//! a WAV file. The engine's own behaviour (levels, tracks, devices, media states) is tested
//! once, in `crates/media-engine/tests/engine.rs`.

mod common;

use pipecat_websocket::AudioBuilder;
use std::time::Duration;

use common::{Events, TestServer, eventually};
use pipecat_core::media::TrackInfo;
use pipecat_core::{Transport, TransportEvent};
use pipecat_media::analysis::{goertzel_power, zero_crossing_frequency};
use pipecat_media::{AudioFormat, MemorySource, ToneGenerator, WavFileSink, WavFileSource};
use pipecat_websocket::WebSocketTransport;
use pipecat_websocket::proto::frame::Frame as Kind;

/// `ms` of a 440 Hz sine at half of full scale (about -9 dBFS: a level near 0.85).
fn tone(rate: u32, ms: u32) -> Vec<i16> {
    let format = AudioFormat::new(rate, 1);
    let frames = format.frames_in(Duration::from_millis(u64::from(ms)));
    ToneGenerator::new(format, 440.0, 0.5).unwrap().frame(frames, Duration::ZERO).into_samples()
}

fn is_local(track: &TrackInfo) -> bool {
    track.participant.as_ref().is_some_and(|p| p.local)
}

#[tokio::test]
async fn a_muted_microphone_sends_zeroed_pcm_frames() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).mic_enabled(false).build().unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();
    mic.push(&tone(16_000, 100)).unwrap();
    let frame = conn.next_audio().await;
    assert_eq!(frame.format(), AudioFormat::MONO_16K);
    assert!(frame.samples().iter().all(|&s| s == 0), "a muted frame carried sound");
    transport.media().unwrap().enable_mic(true).await.unwrap();
    mic.push(&tone(16_000, 100)).unwrap();
    let mut live = false;
    for _ in 0..10 {
        if conn.next_audio().await.samples().iter().any(|&s| s != 0) {
            live = true;
            break;
        }
    }
    assert!(live, "unmuted audio never arrived");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn tracks_start_with_audio_and_stop_with_the_source_or_the_session() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    let mut events = Events::new();
    transport.attach(events.transport_sink());
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;

    // Audio held before bot-ready is not sent: no local track yet.
    mic.push(&[100; 640]).unwrap();
    eventually("the source to be read", || mic.buffered().is_zero()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !events.drain().iter().any(|e| matches!(e, TransportEvent::TrackStarted(_))),
        "a track started before anything was sent"
    );
    transport.bot_ready();
    let (generation, started) =
        events.wait_tagged(|e| matches!(e, TransportEvent::TrackStarted(_))).await;
    assert!(matches!(&started, TransportEvent::TrackStarted(t) if is_local(t)), "{started:?}");
    assert_eq!(generation, 1, "TrackStarted belongs to the session");
    conn.next_audio().await;

    // The bot's track starts with its first frame.
    conn.send_audio(vec![0; 960], 24_000, 1).await;
    let bot = events.wait(|e| matches!(e, TransportEvent::TrackStarted(t) if !is_local(t))).await;
    assert!(
        matches!(&bot, TransportEvent::TrackStarted(t) if t.participant.as_ref().is_some_and(|p| p.id == "bot"))
    );

    // The source ends: the local track stops, the session goes on.
    mic.finish();
    let (generation, stopped) =
        events.wait_tagged(|e| matches!(e, TransportEvent::TrackStopped(_))).await;
    assert!(matches!(&stopped, TransportEvent::TrackStopped(t) if is_local(t)), "{stopped:?}");
    assert_eq!(generation, 0, "TrackStopped goes to the transport-level sink");
    assert!(transport.is_connected());

    // The session ends: the bot's track stops, reported where the client still listens.
    transport.disconnect().await.unwrap();
    let (generation, stopped) =
        events.wait_tagged(|e| matches!(e, TransportEvent::TrackStopped(_))).await;
    assert!(matches!(&stopped, TransportEvent::TrackStopped(t) if !is_local(t)), "{stopped:?}");
    assert_eq!(generation, 0);
}

#[tokio::test]
async fn without_audio_sends_nothing_up_and_discards_the_bot() {
    let mut server = TestServer::start().await;
    let transport = WebSocketTransport::builder().without_audio().build().unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();
    conn.send_audio(vec![1000; 960], 24_000, 1).await;
    transport.send_message(r#"{"still":"up"}"#.into()).await.unwrap();
    // The first frame the server gets is the message: no audio (not even silence) went up.
    let Kind::Message(message) = conn.recv_frame().await else {
        panic!("a session without audio sent audio")
    };
    assert!(message.data.contains("still"), "{}", message.data);
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_wav_file_goes_up_and_the_echo_is_recorded_to_a_wav_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    let output = dir.path().join("echo.wav");
    // 600 ms of 440 Hz at 48 kHz stereo: the transport sends 16 kHz mono.
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&input, spec).unwrap();
    for s in tone(48_000, 600) {
        writer.write_sample(s).unwrap();
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();

    let mut server = TestServer::start().await;
    let transport = WebSocketTransport::builder()
        .audio_source(WavFileSource::open(&input).unwrap().paced(false))
        .audio_sink(WavFileSink::create(&output, AudioFormat::MONO_24K).unwrap())
        .build()
        .unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();
    // Echo every frame back, as 16 kHz mono bot audio, until the file's 600 ms came through.
    let mut echoed = Duration::ZERO;
    while echoed < Duration::from_millis(580) {
        let frame = conn.next_audio().await;
        assert_eq!(frame.format(), AudioFormat::MONO_16K);
        echoed += frame.duration();
        conn.send_audio(frame.into_samples(), 16_000, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    transport.disconnect().await.unwrap();
    transport.close_audio_sink().await.unwrap();

    let mut reader = hound::WavReader::open(&output).unwrap();
    assert_eq!(reader.spec().sample_rate, 24_000);
    assert_eq!(reader.spec().channels, 1);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert!(samples.len() > 24_000 / 2, "only {} samples recorded", samples.len());
    // Skip the resamplers' ramps at both ends.
    let middle = &samples[2_400..samples.len() - 2_400];
    let rms = pipecat_media::rms_i16(middle);
    assert!((0.3..0.4).contains(&rms), "echo RMS {rms}");
    let freq = zero_crossing_frequency(middle, 24_000);
    assert!((freq - 440.0).abs() < 5.0, "echo at {freq} Hz");
    assert!(goertzel_power(middle, 24_000, 440.0) > 100.0 * goertzel_power(middle, 24_000, 1000.0));
}

/// A reused transport's paced source does not send the gap between two sessions as a burst:
/// the second session's first half second carries about half a second of audio.
#[tokio::test]
async fn a_second_session_gets_no_burst_of_the_idle_gap() {
    let mut server = TestServer::start().await;
    let source = pipecat_media::ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    for session in 0..2 {
        transport.connect(server.params(), Events::new().sink).await.unwrap();
        let mut conn = server.accept().await;
        transport.bot_ready();
        conn.next_audio().await;
        let started = tokio::time::Instant::now();
        let mut audio = Duration::ZERO;
        while started.elapsed() < Duration::from_millis(500) {
            audio += conn.next_audio().await.duration();
        }
        // Real time is 500 ms; a replayed 1.5 s gap would be 2 s.
        assert!(audio < Duration::from_millis(900), "session {session}: {audio:?} in 500 ms");
        transport.disconnect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}

/// A plain disconnect and drop leave a complete WAV file: nobody has to close the sink.
#[tokio::test]
async fn the_wav_sink_is_complete_after_a_plain_disconnect_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("bot.wav");
    let mut server = TestServer::start().await;
    let transport = WebSocketTransport::builder()
        .without_audio()
        .audio_sink(WavFileSink::create(&output, AudioFormat::MONO_24K).unwrap())
        .build()
        .unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    for chunk in tone(24_000, 400).chunks(960) {
        conn.send_audio(chunk.to_vec(), 24_000, 1).await;
    }
    transport.send_message(r#"{"sync":1}"#.into()).await.unwrap();
    conn.recv_frame().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    transport.disconnect().await.unwrap();
    drop(transport);
    let reader = hound::WavReader::open(&output).expect("a complete WAV file");
    assert_eq!(reader.spec().sample_rate, 24_000);
    assert!(reader.duration() >= 24_000 * 3 / 10, "{} samples", reader.duration());
}
