//! Real, clocked device streams through a private PulseAudio daemon with a null sink: a tone
//! is played to the sink and captured back from its monitor.
//!
//! The test starts its own `pulseaudio` (with its own `XDG_RUNTIME_DIR` and `HOME` in a
//! temporary directory) and stops it afterwards (SIGTERM, then SIGKILL after a grace period).
//! Because cpal finds the server through the environment, and changing the environment of a
//! running test process is unsafe, the audio part runs in a child process: this same test
//! binary, re-executed with the daemon's environment. It skips, saying why, only when the
//! `pulseaudio` binary is not installed (`crates/media/scripts/install-pulseaudio.sh`).
#![cfg(feature = "pulseaudio")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "PIPECAT_MEDIA_PULSE_CHILD";
const TEST_NAME: &str = "pulseaudio_null_sink_round_trip";

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A daemon we started; stopped on drop, even if the test panics.
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
                "--load=module-null-sink sink_name=vsink rate=48000 channels=1",
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
        // SIGTERM through kill(1): sending signals from Rust directly would need unsafe code.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..30 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill(); // SIGKILL after the 3 s grace period
        let _ = self.child.wait();
    }
}

#[test]
fn pulseaudio_null_sink_round_trip() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child::run();
    }
    let Some(pulseaudio) = find_in_path("pulseaudio") else {
        println!(
            "SKIPPED {TEST_NAME}: the `pulseaudio` binary is not installed \
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
    Command::new("chmod").args(["700"]).arg(&runtime).status().expect("chmod");

    let daemon = Daemon::start(&pulseaudio, &runtime, &home);
    if let Some(pactl) = find_in_path("pactl") {
        let _ = Command::new(pactl)
            .args(["set-default-source", "vsink.monitor"])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", &home)
            .status();
    }

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", &home)
        .env_remove("PULSE_SERVER")
        .spawn()
        .expect("re-run the test binary");
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.try_wait().expect("wait for child") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the audio test did not finish in 60 s; daemon log:\n{}", daemon.log_text());
    };
    assert!(status.success(), "audio test failed ({status}); daemon log:\n{}", daemon.log_text());
}

/// The part that runs inside the daemon's environment.
mod child {
    use std::time::Duration;

    use pipecat_media::analysis::{goertzel_power, zero_crossing_frequency};
    use pipecat_media::{
        AudioDevices, AudioFormat, AudioFrame, AudioSink, AudioSource, DeviceSelector, InputConfig,
        MediaState, OutputConfig, ToneSource,
    };

    pub(super) fn run() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(45), scenario())
                .await
                .expect("device scenario timed out");
        });
    }

    async fn scenario() {
        let devices = AudioDevices::new();
        assert_eq!(devices.host_name(), "PulseAudio", "cpal should pick the PulseAudio host");
        let outputs = devices.outputs().expect("outputs");
        let inputs = devices.inputs().expect("inputs");
        println!("outputs: {outputs:?}\ninputs: {inputs:?}");
        let sink_id =
            outputs.iter().find(|d| d.id.ends_with("vsink")).expect("null sink").id.clone();
        let monitor_id =
            inputs.iter().find(|d| d.id.ends_with("vsink.monitor")).expect("monitor").id.clone();

        let mut speaker = devices
            .open_output(
                &DeviceSelector::Id(sink_id.clone()),
                OutputConfig::default().with_preferred_format(AudioFormat::MONO_48K),
            )
            .expect("open the null sink");
        let mut mic = devices
            .open_input(
                &DeviceSelector::Id(monitor_id.clone()),
                InputConfig::default().with_preferred_format(AudioFormat::MONO_48K),
            )
            .expect("open the monitor");
        assert_eq!(speaker.state(), MediaState::Granted);
        assert_eq!(mic.state(), MediaState::Granted);
        println!("speaker {} mic {}", speaker.format(), mic.format());

        // Play 1.5 s of 440 Hz (paced, written at 24 kHz: the sink converts) while capturing.
        let player = tokio::spawn(async move {
            let mut tone = ToneSource::new(AudioFormat::MONO_24K, 440.0, 0.5)
                .unwrap()
                .limit(Duration::from_millis(1500));
            while let Some(frame) = tone.next_frame().await.unwrap() {
                speaker.write(frame).await.unwrap();
            }
            speaker
        });
        let mut captured: Vec<AudioFrame> = Vec::new();
        // 150 frames of 20 ms = 3 s of capture: the tone plus silence before and after.
        for _ in 0..150 {
            captured.push(mic.next_frame().await.unwrap().expect("capture never ends"));
        }
        let mut speaker = player.await.unwrap();
        let rate = mic.format().sample_rate;
        let channels = usize::from(mic.format().channels);
        let mono: Vec<i16> = captured.iter().flat_map(|f| f.to_mono().into_samples()).collect();

        // Plausible sample count: exactly what 150 frames of 20 ms hold.
        assert_eq!(mono.len(), 150 * mic.format().frames_in(Duration::from_millis(20)));
        assert!(captured.iter().all(|f| f.samples().len() % channels == 0));
        // Energy: the loud part is the tone, about 1.5 s of it.
        let window = rate as usize / 50;
        let loud: Vec<i16> = mono
            .chunks(window)
            .filter(|w| pipecat_media::rms_i16(w) > 0.1)
            .flatten()
            .copied()
            .collect();
        let loud_secs = loud.len() as f64 / f64::from(rate);
        println!("captured {} s, loud {loud_secs:.2} s", mono.len() as f64 / f64::from(rate));
        // 1.5 s of tone was played; allow a window of slack at each end.
        assert!(loud_secs > 1.0 && loud_secs < 2.0, "loud part {loud_secs} s");
        let freq = zero_crossing_frequency(&loud, rate);
        assert!((freq - 440.0).abs() < 10.0, "captured tone at {freq} Hz");
        assert!(goertzel_power(&loud, rate, 440.0) > 50.0 * goertzel_power(&loud, rate, 1000.0));
        let stats = speaker.stats();
        println!("speaker stats: {stats:?}; mic dropped {}", mic.dropped_frames());
        assert!(stats.played_frames > 0);

        // Flush through the real-time callback: queue 1 s unpaced, flush, the buffer empties.
        let burst = pipecat_media::ToneGenerator::new(AudioFormat::MONO_48K, 440.0, 0.5)
            .unwrap()
            .frame(48_000, Duration::ZERO);
        speaker.write(burst).await.unwrap();
        let mut saw_depth = false;
        for _ in 0..100 {
            if speaker.stats().depth > Duration::from_millis(100) {
                saw_depth = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(saw_depth, "queued audio shows up as playout depth");
        let flushes = speaker.stats().flushes;
        speaker.flush();
        let mut flushed = false;
        for _ in 0..200 {
            let s = speaker.stats();
            if s.flushes > flushes && s.depth < Duration::from_millis(50) {
                flushed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(flushed, "flush empties the playout buffer: {:?}", speaker.stats());
        drop(speaker);
        drop(mic);

        // A session microphone: mute gives silence at the same pace, switching keeps frames
        // flowing in the same format.
        let (mut source, handle) = devices
            .microphone(&DeviceSelector::Id(monitor_id.clone()), AudioFormat::MONO_16K)
            .expect("microphone");
        handle.set_enabled(false);
        for _ in 0..5 {
            let f = source.next_frame().await.unwrap().unwrap();
            assert_eq!(f.format(), AudioFormat::MONO_16K);
            assert_eq!(f.rms(), 0.0);
        }
        handle.set_enabled(true);
        let info = handle.switch_device(&DeviceSelector::Id(monitor_id.clone())).expect("switch");
        assert_eq!(handle.device(), info);
        let mut end = Duration::ZERO;
        for _ in 0..5 {
            let f = source.next_frame().await.unwrap().unwrap();
            assert_eq!(f.format(), AudioFormat::MONO_16K);
            assert!(f.timestamp() >= end);
            end = f.end_timestamp();
        }
        assert_eq!(handle.state(), MediaState::Granted);
    }
}
