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
//! The test starts its own `pulseaudio` (own `XDG_RUNTIME_DIR` and `HOME` in a temporary
//! directory) and stops it afterwards (SIGTERM, SIGKILL after 3 s). cpal finds the server
//! through the environment, and changing the environment of a running test is unsafe, so the
//! audio part runs in a child process: this test binary, re-run with the daemon's environment.
//! It skips, saying why, only when the `pulseaudio` binary is not installed
//! (`crates/media/scripts/install-pulseaudio.sh`).
#![cfg(feature = "pulseaudio")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "PIPECAT_WEBSOCKET_PULSE_CHILD";
/// The daemon's process id, for the child to stop it mid-session.
const DAEMON_PID_ENV: &str = "PIPECAT_WEBSOCKET_PULSE_PID";
const TEST_NAME: &str = "default_devices_through_the_transport_with_pulseaudio";

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A daemon this test started; stopped on drop, even if the test panics.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(binary: &Path, runtime: &Path, home: &Path) -> Daemon {
        let log = runtime.join("pulseaudio.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--log-target=stderr",
                "--load=module-null-sink sink_name=voice rate=48000 channels=1",
                "--load=module-null-sink sink_name=room rate=48000 channels=1",
                "--load=module-null-sink sink_name=room2 rate=48000 channels=1",
                "--load=module-native-protocol-unix auth-anonymous=1",
            ])
            .env("XDG_RUNTIME_DIR", runtime)
            .env("HOME", home)
            .env_remove("PULSE_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn pulseaudio");
        let mut daemon = Daemon { child, log };
        let socket = runtime.join("pulse/native");
        for _ in 0..100 {
            if socket.exists() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("pulseaudio exited early ({status}):\n{}", daemon.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("pulseaudio did not create {} in 10 s:\n{}", socket.display(), daemon.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM through kill(1): signalling from Rust directly would need unsafe code.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..30 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn default_devices_through_the_transport_with_pulseaudio() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child::run();
    }
    let (Some(pulseaudio), Some(pactl)) = (find_in_path("pulseaudio"), find_in_path("pactl"))
    else {
        println!(
            "SKIPPED {TEST_NAME}: `pulseaudio` and `pactl` are not installed \
             (run crates/media/scripts/install-pulseaudio.sh)"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = dir.path().join("run");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    // PulseAudio insists on a private runtime directory.
    Command::new("chmod").arg("700").arg(&runtime).status().expect("chmod");

    let daemon = Daemon::start(&pulseaudio, &runtime, &home);
    for args in [["set-default-sink", "room"], ["set-default-source", "voice.monitor"]] {
        let status = Command::new(&pactl)
            .args(args)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", &home)
            .env_remove("PULSE_SERVER")
            .status()
            .expect("pactl");
        assert!(status.success(), "pactl {args:?} failed; daemon log:\n{}", daemon.log_text());
    }

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env(DAEMON_PID_ENV, daemon.child.id().to_string())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", &home)
        .env_remove("PULSE_SERVER")
        .spawn()
        .expect("re-run the test binary");
    let mut status = None;
    for _ in 0..900 {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the audio test did not finish in 90 s; daemon log:\n{}", daemon.log_text());
    };
    assert!(status.success(), "audio test failed ({status}); daemon log:\n{}", daemon.log_text());
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
    use pipecat_websocket::WebSocketTransport;
    use pipecat_websocket::codec;
    use pipecat_websocket::proto::frame::Frame as Kind;
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

        let mics = transport.available_mics().expect("mics");
        let speakers = transport.available_speakers().expect("speakers");
        println!("mics: {mics:?}\nspeakers: {speakers:?}");
        let voice_id = id_ending(&speakers, "voice");
        let room_monitor = id_ending(&mics, "room.monitor");
        let room2 = id_ending(&speakers, "room2");
        let room2_monitor = id_ending(&mics, "room2.monitor");

        // The defaults: voice.monitor as the microphone, room as the speaker.
        transport.init_devices().await.expect("the default devices open");
        let state = transport.media_state();
        assert_eq!((&state.mic, &state.speaker), (&DeviceState::Granted, &DeviceState::Granted));
        let mic = transport.selected_mic().expect("a microphone in use");
        let speaker = transport.selected_speaker().expect("a speaker in use");
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
        transport.update_speaker(&room2).await.expect("switch the speaker");
        assert_eq!(transport.selected_speaker().map(|d| d.id), Some(room2.clone()));
        events.wait(|e| matches!(e, TransportEvent::SpeakerUpdated(d) if d.id == room2)).await;
        // The microphone in use, again: nothing to do.
        transport.update_mic(&mic.id).await.expect("same microphone");
        assert!(transport.is_connected());
        let mut ear2 =
            devices.open_input(&DeviceSelector::Id(room2_monitor), ear_config).expect("ear 2");
        let (loud, rate) =
            speak_and_listen(&mut voice, &mut ear2, 660.0, 1500, Duration::from_secs(3)).await;
        check_tone("echo on the switched speaker", &loud, rate, 660.0, 1.2);
        assert_eq!(transport.media_state().speaker, DeviceState::Granted);

        // Nothing failed on the way.
        let errors: Vec<_> = events
            .drain()
            .into_iter()
            .filter(|e| matches!(e, TransportEvent::DeviceError(_)))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");

        // The sound server goes away mid-session: both devices fail, reported as typed device
        // errors and `error` states; the session itself goes on.
        let pid = std::env::var(super::DAEMON_PID_ENV).expect("the daemon's pid");
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
        let state = transport.media_state();
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
