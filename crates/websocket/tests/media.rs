//! The transport's media: levels, track events, media states and device errors, headless
//! WAV and in-memory audio, against the in-test server. Device tests run on whatever machine
//! runs them: without a sound card (CI), opening a device is the error path.

mod common;

use std::time::Duration;

use common::{Events, TestServer, eventually};
use pipecat_core::media::{DeviceKind, DeviceState, TrackInfo};
use pipecat_core::{Transport, TransportError, TransportEvent};
use pipecat_media::analysis::{goertzel_power, zero_crossing_frequency};
use pipecat_media::{
    AudioFormat, MemorySink, MemorySource, ToneGenerator, WavFileSink, WavFileSource,
};
use pipecat_websocket::WebSocketTransport;

/// `ms` of a 440 Hz sine at half of full scale (about -9 dBFS: a level near 0.85).
fn tone(rate: u32, ms: u32) -> Vec<i16> {
    let format = AudioFormat::new(rate, 1);
    let frames = format.frames_in(Duration::from_millis(u64::from(ms)));
    ToneGenerator::new(format, 440.0, 0.5).unwrap().frame(frames, Duration::ZERO).into_samples()
}

/// The next `n` levels of one kind (local or remote).
async fn levels(events: &mut Events, remote: bool, n: usize) -> Vec<f32> {
    let mut out = Vec::new();
    while out.len() < n {
        match events
            .wait(|e| {
                matches!(
                    (remote, e),
                    (false, TransportEvent::LocalAudioLevel(_))
                        | (true, TransportEvent::RemoteAudioLevel(_))
                )
            })
            .await
        {
            TransportEvent::LocalAudioLevel(l) | TransportEvent::RemoteAudioLevel(l) => {
                out.push(l);
            }
            _ => unreachable!(),
        }
    }
    out
}

fn is_local(track: &TrackInfo) -> bool {
    track.participant.as_ref().is_some_and(|p| p.local)
}

#[tokio::test]
async fn levels_are_high_for_a_tone_and_near_zero_for_silence_both_ways() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();

    // Local: what is sent, 100 ms windows of 16 kHz audio.
    mic.push(&tone(16_000, 300)).unwrap();
    let loud = levels(&mut events, false, 3).await;
    assert!(loud.iter().all(|&l| l > 0.7), "tone levels {loud:?}");
    mic.push(&[0; 8_000]).unwrap(); // 500 ms of silence
    let quiet = levels(&mut events, false, 5).await;
    assert!(quiet[2..].iter().all(|&l| l < 0.05), "silence levels {quiet:?}");

    // Remote: the bot's audio, whatever its rate (40 ms frames at 24 kHz here).
    let bot_tone = tone(24_000, 320);
    for chunk in bot_tone.chunks(960) {
        conn.send_audio(chunk.to_vec(), 24_000, 1).await;
    }
    let loud = levels(&mut events, true, 3).await;
    assert!(loud.iter().all(|&l| l > 0.7), "bot tone levels {loud:?}");
    for _ in 0..13 {
        conn.send_audio(vec![0; 960], 24_000, 1).await;
    }
    let quiet = levels(&mut events, true, 5).await;
    assert!(quiet[2..].iter().all(|&l| l < 0.05), "bot silence levels {quiet:?}");
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_muted_microphone_meters_silence() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).mic_enabled(false).build().unwrap();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let _conn = server.accept().await;
    mic.push(&tone(16_000, 300)).unwrap();
    let muted = levels(&mut events, false, 3).await;
    assert!(muted.iter().all(|&l| l == 0.0), "the level is measured after mute: {muted:?}");
    transport.enable_mic(true).await.unwrap();
    mic.push(&tone(16_000, 300)).unwrap();
    let live = levels(&mut events, false, 3).await;
    assert!(live.iter().all(|&l| l > 0.7), "{live:?}");
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
async fn the_local_track_stops_when_the_session_stops() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    let mut events = Events::new();
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();
    mic.push(&[5; 320]).unwrap();
    conn.next_audio().await;
    events.wait(|e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t))).await;
    // Not attached: the end of the track goes to the session's sink.
    transport.disconnect().await.unwrap();
    let (generation, _) =
        events.wait_tagged(|e| matches!(e, TransportEvent::TrackStopped(t) if is_local(t))).await;
    assert_eq!(generation, 1);
}

#[tokio::test]
async fn program_given_audio_ends_are_granted_and_no_device_is_selected() {
    let (source, _mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let (sink, _speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let transport =
        WebSocketTransport::builder().audio_source(source).audio_sink(sink).build().unwrap();
    let mut events = Events::new();
    transport.attach(events.transport_sink());
    assert_eq!(transport.media_state().mic, DeviceState::Uninitialized);
    transport.init_devices().await.unwrap();
    let state = transport.media_state();
    assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
    assert_eq!(state.cam, DeviceState::Uninitialized);
    assert_eq!(transport.selected_mic(), None);
    assert_eq!(transport.selected_speaker(), None);
    let (generation, changed) =
        events.wait_tagged(|e| matches!(e, TransportEvent::MediaStateChanged(_))).await;
    assert_eq!(generation, 0, "device events are not tied to a session");
    assert!(
        matches!(changed, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Granted)
    );
    // Again: nothing to do, nothing reported.
    transport.init_devices().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again: Vec<_> = events
        .drain()
        .into_iter()
        .filter(
            |e| matches!(e, TransportEvent::MediaStateChanged(s) if s.mic != DeviceState::Granted),
        )
        .collect();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn without_audio_sends_paced_silence_and_discards_the_bot() {
    let mut server = TestServer::start().await;
    let transport = WebSocketTransport::builder().without_audio().build().unwrap();
    transport.connect(server.params(), Events::new().sink).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();
    let started = tokio::time::Instant::now();
    for _ in 0..10 {
        let frame = conn.next_audio().await;
        assert_eq!(frame.format(), AudioFormat::MONO_16K);
        assert!(frame.samples().iter().all(|&s| s == 0));
    }
    // Paced: ten 20 ms frames take most of 200 ms (the first comes at once).
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    conn.send_audio(vec![1000; 960], 24_000, 1).await;
    transport.send_message(r#"{"still":"up"}"#.into()).await.unwrap();
    assert_eq!(conn.recv_rtvi().await["still"], "up");
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

/// On this machine the default devices either open, or fail with a typed error naming the
/// headless alternatives, an `error` media state and a device error event. Without a sound
/// card (CI) it is the error path that runs.
#[cfg(feature = "devices")]
#[tokio::test]
async fn default_devices_open_or_fail_with_a_typed_error_naming_the_headless_types() {
    let transport = WebSocketTransport::new();
    let mut events = Events::new();
    transport.attach(events.transport_sink());
    match transport.init_devices().await {
        Ok(()) => {
            println!(
                "default devices opened: {:?} {:?}",
                transport.selected_mic(),
                transport.selected_speaker()
            );
            let state = transport.media_state();
            assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
            assert!(transport.selected_mic().is_some_and(|d| d.kind == DeviceKind::Mic));
            events.wait(|e| matches!(e, TransportEvent::MicUpdated(_))).await;
        }
        Err(err) => {
            println!("default devices unavailable (expected without a sound card): {err}");
            let TransportError::Media(text) = &err else { panic!("not a media error: {err:?}") };
            for name in ["WavFileSource", "MemorySource", "ToneSource", "SilenceSource"] {
                assert!(text.contains(name), "{text}");
            }
            let initializing = events
                .wait(|e| matches!(e, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Initializing))
                .await;
            assert!(matches!(initializing, TransportEvent::MediaStateChanged(_)));
            let error = events.wait(|e| matches!(e, TransportEvent::DeviceError(_))).await;
            let TransportEvent::DeviceError(error) = error else { unreachable!() };
            assert!(matches!(error.device, DeviceKind::Mic | DeviceKind::Speaker), "{error:?}");
            assert!(!error.details.is_empty());
            let state = transport.media_state();
            let failed = [&state.mic, &state.speaker]
                .into_iter()
                .filter(|s| matches!(s, DeviceState::Error { .. }))
                .count();
            assert!(failed >= 1, "{state:?}");
            if let DeviceState::Error { reason, details } = &state.mic {
                let changed = events
                    .wait(|e| matches!(e, TransportEvent::MediaStateChanged(s) if matches!(s.mic, DeviceState::Error { .. })))
                    .await;
                assert!(
                    matches!(changed, TransportEvent::MediaStateChanged(s) if s.mic == state.mic)
                );
                println!("microphone state: error {reason:?}: {details}");
                assert_eq!(transport.selected_mic(), None);
            }

            // Connecting with these defaults fails the same way, before any connection.
            let server = TestServer::start().await;
            let err = transport.connect(server.params(), Events::new().sink).await.unwrap_err();
            assert!(
                matches!(&err, TransportError::Media(t) if t.contains("MemorySource") || t.contains("MemorySink")),
                "{err:?}"
            );
            assert!(!transport.is_connected());
        }
    }
}

#[cfg(feature = "devices")]
#[tokio::test]
async fn devices_are_listed_with_the_clients_vocabulary() {
    let transport = WebSocketTransport::builder().without_audio().build().unwrap();
    let mics = transport.available_mics().expect("listing works without a sound card");
    let speakers = transport.available_speakers().expect("listing");
    println!("mics: {mics:?}\nspeakers: {speakers:?}");
    assert!(mics.iter().all(|d| d.kind == DeviceKind::Mic && d.id.contains(':')));
    assert!(speakers.iter().all(|d| d.kind == DeviceKind::Speaker));
    assert!(mics.iter().filter(|d| d.is_default).count() <= 1);
}

#[cfg(feature = "devices")]
#[tokio::test]
async fn switching_to_an_unknown_device_is_a_typed_error_and_the_session_goes_on() {
    let mut server = TestServer::start().await;
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = common::builder().audio_source(source).build().unwrap();
    let mut events = Events::new();
    transport.attach(events.transport_sink());
    transport.connect(server.params(), events.sink.clone()).await.unwrap();
    let mut conn = server.accept().await;
    transport.bot_ready();

    let err = transport.update_mic("no-such-microphone-7f3a").await.unwrap_err();
    let TransportError::Media(text) = &err else { panic!("{err:?}") };
    assert!(text.contains("no-such-microphone-7f3a"), "{text}");
    let error = events.wait(|e| matches!(e, TransportEvent::DeviceError(_))).await;
    assert!(
        matches!(&error, TransportEvent::DeviceError(d) if d.device == DeviceKind::Mic && d.kind == pipecat_core::media::DeviceErrorKind::NotFound),
        "{error:?}"
    );
    let err = transport.update_speaker("no-such-speaker-7f3a").await.unwrap_err();
    assert!(matches!(err, TransportError::Media(_)), "{err:?}");
    let error = events.wait(|e| matches!(e, TransportEvent::DeviceError(_))).await;
    assert!(matches!(&error, TransportEvent::DeviceError(d) if d.device == DeviceKind::Speaker));

    // The program's source is still in use and granted.
    assert_eq!(transport.selected_mic(), None);
    assert_eq!(transport.media_state().mic, DeviceState::Granted);
    mic.push(&[321; 320]).unwrap();
    assert!(conn.next_audio().await.samples().iter().all(|&s| s == 321));
    transport.disconnect().await.unwrap();
}

#[cfg(not(feature = "devices"))]
#[tokio::test]
async fn without_the_devices_feature_defaults_are_a_clear_error() {
    let server = TestServer::start().await;
    let transport = WebSocketTransport::new();
    let mut events = Events::new();
    transport.attach(events.transport_sink());
    let err = transport.connect(server.params(), Events::new().sink).await.unwrap_err();
    let TransportError::Media(text) = &err else { panic!("{err:?}") };
    assert!(text.contains("`devices` feature"), "{text}");
    assert!(text.contains("MemorySource") && text.contains("without_audio"), "{text}");
    assert!(matches!(transport.media_state().mic, DeviceState::Error { .. }));
    events
        .wait(|e| matches!(e, TransportEvent::DeviceError(d) if d.device == DeviceKind::Mic))
        .await;
    assert!(matches!(transport.available_mics(), Err(TransportError::Unsupported { .. })));
    assert!(matches!(transport.update_mic("x").await, Err(TransportError::Unsupported { .. })));
    // A given source and sink need no feature.
    let transport = WebSocketTransport::builder()
        .audio_source(MemorySource::new(AudioFormat::MONO_16K).unwrap().0)
        .audio_sink(pipecat_media::NullSink::new(AudioFormat::MONO_24K))
        .build()
        .unwrap();
    transport.init_devices().await.unwrap();
}
