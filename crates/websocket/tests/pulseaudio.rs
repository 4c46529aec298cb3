//! The transport on real, clocked devices: a private PulseAudio daemon with null sinks, the
//! transport's **default** microphone and speaker, and an echoing in-test server.
//!
//! ```text
//!  tone ──▶ null sink "voice" ──monitor (default source)──▶ transport mic ──▶ server
//!  server echo ──▶ transport speaker = null sink "room" (default sink) ──monitor──▶ checked
//! ```
//!
//! Mid-session the speaker is switched to the null sink "room2" and the echo is checked there,
//! on the same session.
//!
//! The daemon is the testkit's ([`pipecat_testkit::pulseaudio`]); the audio part runs in a
//! child process in its environment. The test skips, saying why, only when `pulseaudio` is
//! not installed (`crates/media/scripts/install-pulseaudio.sh`).
#![cfg(feature = "pulseaudio")]

mod common;

use std::time::Duration;

use pipecat_testkit::pulseaudio::PulseAudio;

const TEST_NAME: &str = "default_devices_through_the_transport_with_pulseaudio";

#[test]
fn default_devices_through_the_transport_with_pulseaudio() {
    if PulseAudio::is_child() {
        return child::run();
    }
    let Some(daemon) = PulseAudio::start(&["voice", "room", "room2"]).expect("pulseaudio") else {
        println!(
            "SKIPPED {TEST_NAME}: `pulseaudio` and `pactl` are not installed \
             (run crates/media/scripts/install-pulseaudio.sh)"
        );
        return;
    };
    for args in [["set-default-sink", "room"], ["set-default-source", "voice.monitor"]] {
        daemon.pactl(&args).expect("pactl");
    }
    if let Err(e) = daemon.run_test(TEST_NAME, &[], Duration::from_secs(90)) {
        panic!("{e}");
    }
}

/// The part that runs inside the daemon's environment.
mod child {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::{SinkExt, StreamExt};
    use pipecat_core::media::{DeviceErrorKind, DeviceKind, DeviceState};
    use pipecat_core::{Transport, TransportEvent};
    use pipecat_media::analysis::{goertzel_power, zero_crossing_frequency};
    use pipecat_media::{
        AudioDevices, AudioFormat, AudioSink, AudioSource, DeviceSelector, DeviceSink,
        DeviceSource, InputConfig, OutputConfig, ToneSource,
    };
    use pipecat_websocket::codec;
    use pipecat_websocket::proto::frame::Frame as Kind;
    use pipecat_websocket::{AudioBuilder, WebSocketTransport};
    use tokio_tungstenite::tungstenite::Message;

    use super::common::{Events, TestServer};

    pub(super) fn run() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(75), scenario())
                .await
                .expect("device scenario timed out");
        });
    }

    fn id_ending(list: &[pipecat_core::media::MediaDeviceInfo], suffix: &str) -> String {
        list.iter()
            .find(|d| d.id.ends_with(suffix))
            .unwrap_or_else(|| panic!("no device id ending in {suffix}: {list:?}"))
            .id
            .clone()
    }

    /// Plays `ms` of `hz` into `voice` (paced, like a person speaking) while recording `ear`
    /// for `listen`; returns the loud part of what was heard (mono, 20 ms windows above
    /// 0.05 RMS, without the first and last such window: the resamplers' low-level ringing
    /// at the tone's edges would add zero crossings) and its rate.
    async fn speak_and_listen(
        voice: &mut DeviceSink,
        ear: &mut DeviceSource,
        hz: f32,
        ms: u64,
        listen: Duration,
    ) -> (Vec<i16>, u32) {
        let mut tone = ToneSource::new(AudioFormat::MONO_48K, hz, 0.5)
            .unwrap()
            .limit(Duration::from_millis(ms));
        let format = ear.format();
        let mut heard = Vec::new();
        let deadline = tokio::time::Instant::now() + listen;
        let mut speaking = true;
        while tokio::time::Instant::now() < deadline {
            tokio::select! {
                frame = tone.next_frame(), if speaking => match frame.unwrap() {
                    Some(frame) => voice.write(frame).await.unwrap(),
                    None => speaking = false,
                },
                frame = ear.next_frame() => {
                    let frame = frame.unwrap().expect("capture never ends");
                    heard.extend(frame.to_mono().into_samples());
                }
            }
        }
        let rate = format.sample_rate;
        let window = format.frames_in(Duration::from_millis(20)).max(1);
        let loud: Vec<&[i16]> =
            heard.chunks(window).filter(|w| pipecat_media::rms_i16(w) > 0.05).collect();
        let inner = if loud.len() > 2 { &loud[1..loud.len() - 1] } else { &loud[..] };
        (inner.iter().flat_map(|w| w.iter().copied()).collect(), rate)
    }

    fn check_tone(what: &str, loud: &[i16], rate: u32, hz: f64, min_secs: f64) {
        let secs = loud.len() as f64 / f64::from(rate);
        let freq = zero_crossing_frequency(loud, rate);
        let rms = pipecat_media::rms_i16(loud);
        println!("{what}: {secs:.2} s loud, rms {rms:.3}, {freq:.1} Hz");
        assert!(secs >= min_secs, "{what}: only {secs:.2} s of the tone came back");
        // Played at half of full scale: a sine's RMS is about 0.35.
        assert!((0.3..0.4).contains(&rms), "{what}: RMS {rms}");
        assert!((freq - hz).abs() < 5.0, "{what}: heard {freq} Hz, played {hz} Hz");
        let other = if hz > 500.0 { 440.0 } else { 1000.0 };
        assert!(
            goertzel_power(loud, rate, hz) > 100.0 * goertzel_power(loud, rate, other),
            "{what}: no clear {hz} Hz peak"
        );
    }

    async fn scenario() {
        let devices = AudioDevices::new();
        assert_eq!(devices.host_name(), "PulseAudio", "cpal should pick the PulseAudio host");
        // The transport opens the defaults; it lists devices and opens microphones through
        // the same device layer as the test.
        let transport =
            WebSocketTransport::builder().audio_devices(devices.clone()).build().unwrap();
        let mut events = Events::new();
        transport.attach(events.transport_sink());

        let mics = transport.media().unwrap().available_mics().expect("mics");
        let speakers = transport.media().unwrap().available_speakers().expect("speakers");
        println!("mics: {mics:?}\nspeakers: {speakers:?}");
        let voice_id = id_ending(&speakers, "voice");
        let room_monitor = id_ending(&mics, "room.monitor");
        let room2 = id_ending(&speakers, "room2");
        let room2_monitor = id_ending(&mics, "room2.monitor");

        // The defaults: voice.monitor as the microphone, room as the speaker.
        transport.media().unwrap().init_devices().await.expect("the default devices open");
        let state = transport.media().unwrap().media_state();
        assert_eq!((&state.mic, &state.speaker), (&DeviceState::Granted, &DeviceState::Granted));
        let mic = transport.media().unwrap().selected_mic().expect("a microphone in use");
        let speaker = transport.media().unwrap().selected_speaker().expect("a speaker in use");
        assert!(mic.id.ends_with("voice.monitor") && mic.kind == DeviceKind::Mic, "{mic:?}");
        assert!(speaker.id.ends_with("room") && speaker.kind == DeviceKind::Speaker, "{speaker:?}");
        assert!(mic.is_default && speaker.is_default);
        // initializing -> granted, then the device in use.
        events
            .wait(|e| matches!(e, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Initializing))
            .await;
        events
            .wait(|e| matches!(e, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Granted))
            .await;
        events.wait(|e| matches!(e, TransportEvent::MicUpdated(d) if d == &mic)).await;
        events.wait(|e| matches!(e, TransportEvent::SpeakerUpdated(d) if d == &speaker)).await;
        events
            .wait(|e| matches!(e, TransportEvent::AvailableMicsUpdated(l) if l.len() == mics.len()))
            .await;

        // The test's own devices: a voice into the microphone, an ear on each speaker.
        let mut voice = devices
            .open_output(
                &DeviceSelector::Id(voice_id),
                OutputConfig::default().with_preferred_format(AudioFormat::MONO_48K),
            )
            .expect("open the voice sink");
        let ear_config = InputConfig::default().with_preferred_format(AudioFormat::MONO_48K);
        let mut ear =
            devices.open_input(&DeviceSelector::Id(room_monitor), ear_config).expect("ear");

        // A server that echoes every audio frame.
        let mut server = TestServer::start().await;
        transport.connect(server.params(), events.sink.clone()).await.expect("connect");
        let mut conn = server.accept().await;
        transport.bot_ready();
        let echoed = Arc::new(AtomicUsize::new(0));
        let counter = echoed.clone();
        let echo = tokio::spawn(async move {
            while let Some(Ok(message)) = conn.ws.next().await {
                if let Message::Binary(bytes) = message
                    && let Ok(Kind::Audio(_)) = codec::decode(&bytes)
                {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if conn.ws.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
            }
        });

        // Device source -> bot echo -> device sink.
        let (loud, rate) =
            speak_and_listen(&mut voice, &mut ear, 440.0, 1500, Duration::from_secs(3)).await;
        check_tone("echo on the default speaker", &loud, rate, 440.0, 1.2);
        events.wait(|e| matches!(e, TransportEvent::LocalAudioLevel(l) if *l > 0.5)).await;
        events.wait(|e| matches!(e, TransportEvent::RemoteAudioLevel(l) if *l > 0.5)).await;

        // Switch the speaker mid-session; the session goes on and the echo moves.
        transport.media().unwrap().update_speaker(&room2).await.expect("switch the speaker");
        assert_eq!(
            transport.media().unwrap().selected_speaker().map(|d| d.id),
            Some(room2.clone())
        );
        events.wait(|e| matches!(e, TransportEvent::SpeakerUpdated(d) if d.id == room2)).await;
        // The microphone in use, again: nothing to do.
        transport.media().unwrap().update_mic(&mic.id).await.expect("same microphone");
        assert!(transport.is_connected());
        let mut ear2 =
            devices.open_input(&DeviceSelector::Id(room2_monitor), ear_config).expect("ear 2");
        let (loud, rate) =
            speak_and_listen(&mut voice, &mut ear2, 660.0, 1500, Duration::from_secs(3)).await;
        check_tone("echo on the switched speaker", &loud, rate, 660.0, 1.2);
        assert_eq!(transport.media().unwrap().media_state().speaker, DeviceState::Granted);

        // Nothing failed on the way.
        let errors: Vec<_> = events
            .drain()
            .into_iter()
            .filter(|e| matches!(e, TransportEvent::DeviceError(_)))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");

        // The sound server goes away mid-session: both devices fail, reported as typed device
        // errors and `error` states; the session itself goes on.
        let pid = super::PulseAudio::daemon_pid_from_env().expect("the daemon's pid").to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "could not stop the daemon");
        let mut failed = Vec::new();
        while failed.len() < 2 {
            let event = events.wait(|e| matches!(e, TransportEvent::DeviceError(_))).await;
            println!("after the server left: {event:?}");
            if let TransportEvent::DeviceError(error) = event
                && !failed.contains(&error.device)
            {
                assert_eq!(error.kind, DeviceErrorKind::StreamFailure, "{error:?}");
                failed.push(error.device);
            }
        }
        let state = transport.media().unwrap().media_state();
        assert!(matches!(state.mic, DeviceState::Error { .. }), "{state:?}");
        assert!(matches!(state.speaker, DeviceState::Error { .. }), "{state:?}");
        assert!(transport.is_connected(), "a device failure must not end the session");
        transport.send_message(r#"{"still":"here"}"#.into()).await.expect("the session goes on");
        // The dead microphone is replaced by silence: audio keeps flowing up.
        let before = echoed.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = echoed.load(Ordering::SeqCst);
        assert!(after >= before + 15, "audio stopped flowing: {before} -> {after} frames");

        transport.disconnect().await.unwrap();
        echo.await.unwrap();
        let echoed = echoed.load(Ordering::SeqCst);
        println!("frames echoed: {echoed}");
        assert!(echoed > 200, "only {echoed} frames reached the server");
    }
}
