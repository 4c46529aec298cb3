//! Device layer on whatever machine runs the tests: enumeration must work, and opening the
//! default devices either works or fails with a typed error (never a panic). On a machine
//! without a sound card (CI) it is the error path that runs.
#![cfg(feature = "devices")]

use std::time::Duration;

use futures::StreamExt;
use pipecat_media::{
    AudioDeviceError, AudioDeviceState, AudioDevices, AudioFormat, AudioSource, DeviceDirection,
    DeviceEvent, DeviceSelector, InputConfig, OutputConfig,
};

#[test]
fn enumeration_works() {
    let devices = AudioDevices::new();
    println!("host: {}", devices.host_name());
    let inputs = devices.inputs().expect("listing inputs");
    let outputs = devices.outputs().expect("listing outputs");
    for d in inputs.iter().chain(&outputs) {
        println!("{:?} {} {:?} default={}", d.direction, d.id, d.name, d.is_default);
        assert!(!d.id.is_empty());
        assert!(d.id.contains(':'), "ids are host:device, got {}", d.id);
    }
    assert!(inputs.iter().all(|d| d.direction == DeviceDirection::Input));
    assert!(outputs.iter().all(|d| d.direction == DeviceDirection::Output));
    assert!(inputs.iter().filter(|d| d.is_default).count() <= 1);
}

#[test]
fn unknown_devices_are_not_found() {
    let devices = AudioDevices::new();
    let sel = DeviceSelector::Id("no-such-device-7f3a".into());
    let err = devices.open_input(&sel, InputConfig::default()).unwrap_err();
    assert!(
        matches!(err, AudioDeviceError::NotFound { direction: DeviceDirection::Input, .. }),
        "{err}"
    );
    let sel = DeviceSelector::Name("No Such Device 7f3a".into());
    let err = devices.open_output(&sel, OutputConfig::default()).unwrap_err();
    assert!(matches!(err, AudioDeviceError::NotFound { direction: DeviceDirection::Output, .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_microphone_opens_or_fails_cleanly() {
    let devices = AudioDevices::new();
    let mut events = devices.events();
    match devices.microphone(&DeviceSelector::Default, AudioFormat::MONO_16K) {
        Ok((mut source, mic)) => {
            println!("default microphone opened: {:?}", mic.device());
            assert_eq!(mic.state(), AudioDeviceState::Granted);
            let frame = tokio::time::timeout(Duration::from_secs(10), source.next_frame())
                .await
                .expect("a running microphone delivers frames")
                .unwrap()
                .unwrap();
            assert_eq!(frame.format(), AudioFormat::MONO_16K);
        }
        Err(err) => {
            println!("default microphone unavailable (expected without a sound card): {err}");
            assert!(
                matches!(
                    err,
                    AudioDeviceError::NotAvailable { .. }
                        | AudioDeviceError::NotFound { .. }
                        | AudioDeviceError::HostUnavailable { .. }
                        | AudioDeviceError::UnsupportedConfig { .. }
                        | AudioDeviceError::StreamFailed { .. }
                        | AudioDeviceError::InUse { .. }
                        | AudioDeviceError::PermissionDenied { .. }
                ),
                "{err:?}"
            );
            if let Ok(info) = devices.find(DeviceDirection::Input, &DeviceSelector::Default) {
                // The failure is recorded as the device's media state and published.
                let state = devices.media_state(DeviceDirection::Input, &info.id);
                assert_eq!(state, AudioDeviceState::Error(err.clone()));
                let mut saw_error = false;
                for _ in 0..4 {
                    match tokio::time::timeout(Duration::from_secs(1), events.next()).await {
                        Ok(Some(DeviceEvent::Error { error, .. })) => {
                            assert_eq!(error, err);
                            saw_error = true;
                            break;
                        }
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
                assert!(saw_error, "the error is published as a DeviceEvent");
            }
        }
    }
}

#[test]
fn default_speaker_opens_or_fails_cleanly() {
    let devices = AudioDevices::new();
    match devices.open_output(&DeviceSelector::Default, OutputConfig::default()) {
        Ok(sink) => println!("default speaker opened: {:?}", sink.info()),
        Err(err) => {
            println!("default speaker unavailable (expected without a sound card): {err}");
            assert!(!matches!(err, AudioDeviceError::Disabled));
            assert!(!err.to_string().is_empty());
        }
    }
}
