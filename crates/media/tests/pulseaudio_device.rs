//! Real, clocked device streams through a private PulseAudio daemon with a null sink: a tone
//! is played to the sink and captured back from its monitor.
//!
//! The daemon is the testkit's ([`pipecat_testkit::pulseaudio`]); the audio part runs in a
//! child process in its environment. The test skips, saying why, only when `pulseaudio` is
//! not installed (`crates/media/scripts/install-pulseaudio.sh`).
#![cfg(feature = "pulseaudio")]

use std::time::Duration;

use pipecat_testkit::pulseaudio::PulseAudio;

const TEST_NAME: &str = "pulseaudio_null_sink_round_trip";

#[test]
fn pulseaudio_null_sink_round_trip() {
    if PulseAudio::is_child() {
        return child::run();
    }
    let Some(daemon) = PulseAudio::start(&["vsink"]).expect("pulseaudio") else {
        println!(
            "SKIPPED {TEST_NAME}: `pulseaudio` and `pactl` are not installed \
             (run crates/media/scripts/install-pulseaudio.sh)"
        );
        return;
    };
    daemon.pactl(&["set-default-source", "vsink.monitor"]).expect("pactl");
    if let Err(e) = daemon.run_test(TEST_NAME, &[], Duration::from_secs(60)) {
        panic!("{e}");
    }
}

/// The part that runs inside the daemon's environment.
mod child {
    use std::time::Duration;

    use pipecat_media::analysis::{goertzel_power, zero_crossing_frequency};
    use pipecat_media::{
        AudioDeviceState, AudioDevices, AudioFormat, AudioFrame, AudioSink, AudioSource,
        DeviceSelector, InputConfig, OutputConfig, ToneSource,
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
        assert_eq!(speaker.state(), AudioDeviceState::Granted);
        assert_eq!(mic.state(), AudioDeviceState::Granted);
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
        assert_eq!(handle.state(), AudioDeviceState::Granted);
    }
}
