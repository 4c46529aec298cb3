//! Device enumeration, selection, per-device state and events over a cpal host.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use cpal::traits::{DeviceTrait, HostTrait};
use futures::Stream;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::handles::{Microphone, Speaker};
use super::input::DeviceSource;
use super::output::DeviceSink;
use super::{
    AudioDeviceError, AudioDeviceState, DeviceDirection, DeviceEvent, DeviceInfo, DeviceSelector,
    InputConfig, OutputConfig,
};
use crate::frame::AudioFormat;
use crate::sink::SwitchableSink;
use crate::source::SwitchableSource;

type StateMap = HashMap<(DeviceDirection, String), AudioDeviceState>;

struct Inner {
    host: cpal::Host,
    events: broadcast::Sender<DeviceEvent>,
    states: Mutex<StateMap>,
}

/// The audio devices of the machine (cpal's default host: ALSA on Linux, or PulseAudio
/// when the `pulseaudio` feature is on and a server is reachable). Cheap to clone; all
/// clones share state and events.
///
/// Listing and opening are blocking calls (a few milliseconds; with PulseAudio a round trip
/// to the server). From latency-sensitive async code, run them in
/// `tokio::task::spawn_blocking`. Streams run on the audio backend's own threads.
///
/// ```no_run
/// use pipecat_media::{AudioDevices, AudioFormat, DeviceSelector};
/// # fn main() -> Result<(), pipecat_media::AudioDeviceError> {
/// let devices = AudioDevices::new();
/// for d in devices.inputs()? {
///     println!("{} {} {}", d.id, d.name, if d.is_default { "(default)" } else { "" });
/// }
/// let (mic_source, mic) = devices.microphone(&DeviceSelector::Default, AudioFormat::MONO_16K)?;
/// mic.set_enabled(false); // mute: the source now yields silence
/// # drop(mic_source); Ok(()) }
/// ```
#[derive(Clone)]
pub struct AudioDevices {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AudioDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDevices").field("host", &self.host_name()).finish_non_exhaustive()
    }
}

impl Default for AudioDevices {
    fn default() -> Self {
        Self::new()
    }
}

/// A stream of [`DeviceEvent`]s (events missed by a slow reader are skipped).
pub struct DeviceEvents {
    inner: BoxStream<'static, DeviceEvent>,
}

impl std::fmt::Debug for DeviceEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceEvents").finish_non_exhaustive()
    }
}

impl Stream for DeviceEvents {
    type Item = DeviceEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DeviceEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl AudioDevices {
    /// The machine's default audio host. Never fails: without any sound card, listing
    /// works and opening a device returns a typed error.
    pub fn new() -> Self {
        let host = cpal::default_host();
        tracing::debug!(host = host.id().name(), "audio host selected");
        let (events, _) = broadcast::channel(64);
        Self { inner: Arc::new(Inner { host, events, states: Mutex::new(HashMap::new()) }) }
    }

    /// The cpal host's name ("ALSA", "PulseAudio", "CoreAudio", "WASAPI"...).
    pub fn host_name(&self) -> &'static str {
        self.inner.host.id().name()
    }

    /// Capture devices, the default first if the host lists it apart.
    ///
    /// # Errors
    /// [`AudioDeviceError::HostUnavailable`] if the host cannot enumerate.
    pub fn inputs(&self) -> Result<Vec<DeviceInfo>, AudioDeviceError> {
        Ok(self.list(DeviceDirection::Input)?.into_iter().map(|(_, i)| i).collect())
    }

    /// Playback devices, the default first if the host lists it apart.
    ///
    /// # Errors
    /// [`AudioDeviceError::HostUnavailable`] if the host cannot enumerate.
    pub fn outputs(&self) -> Result<Vec<DeviceInfo>, AudioDeviceError> {
        Ok(self.list(DeviceDirection::Output)?.into_iter().map(|(_, i)| i).collect())
    }

    /// Resolves a selector to a device without opening it.
    ///
    /// # Errors
    /// [`AudioDeviceError::NotFound`] if nothing matches.
    pub fn find(
        &self,
        direction: DeviceDirection,
        selector: &DeviceSelector,
    ) -> Result<DeviceInfo, AudioDeviceError> {
        self.resolve(direction, selector).map(|(_, info)| info)
    }

    /// Opens a capture device as a [`DeviceSource`] in the device's own format.
    ///
    /// # Errors
    /// [`AudioDeviceError`] describing why (not found, busy, permission, not available...).
    pub fn open_input(
        &self,
        selector: &DeviceSelector,
        config: InputConfig,
    ) -> Result<DeviceSource, AudioDeviceError> {
        let (device, info) = self.resolve(DeviceDirection::Input, selector)?;
        let reporter = self.reporter(&info);
        reporter.set(AudioDeviceState::Initializing);
        DeviceSource::open(&device, info, config, reporter.clone())
            .inspect_err(|e| reporter.fail(e))
    }

    /// Opens a playback device as a [`DeviceSink`].
    ///
    /// # Errors
    /// [`AudioDeviceError`] describing why.
    pub fn open_output(
        &self,
        selector: &DeviceSelector,
        config: OutputConfig,
    ) -> Result<DeviceSink, AudioDeviceError> {
        let (device, info) = self.resolve(DeviceDirection::Output, selector)?;
        let reporter = self.reporter(&info);
        reporter.set(AudioDeviceState::Initializing);
        DeviceSink::open(&device, info, config, reporter.clone()).inspect_err(|e| reporter.fail(e))
    }

    /// Opens a microphone for a session: a [`SwitchableSource`] in `format` (give it to the
    /// transport) and a [`Microphone`] handle to mute it or move it to another device.
    ///
    /// # Errors
    /// As [`open_input`](Self::open_input).
    pub fn microphone(
        &self,
        selector: &DeviceSelector,
        format: AudioFormat,
    ) -> Result<(SwitchableSource, Microphone), AudioDeviceError> {
        let config = InputConfig { preferred_format: Some(format), ..InputConfig::default() };
        let device = self.open_input(selector, config)?;
        let info = device.info().clone();
        let (source, switch) = SwitchableSource::new(Box::new(device), format).map_err(|e| {
            AudioDeviceError::UnsupportedConfig { device: info.id.clone(), reason: e.to_string() }
        })?;
        Ok((source, Microphone::new(self.clone(), switch, info, config)))
    }

    /// Opens a speaker for a session: a [`SwitchableSink`] (give it to the transport) and a
    /// [`Speaker`] handle to move it to another device.
    ///
    /// # Errors
    /// As [`open_output`](Self::open_output).
    pub fn speaker(
        &self,
        selector: &DeviceSelector,
        config: OutputConfig,
    ) -> Result<(SwitchableSink, Speaker), AudioDeviceError> {
        let device = self.open_output(selector, config)?;
        let info = device.info().clone();
        let (sink, switch) = SwitchableSink::new(Box::new(device));
        Ok((sink, Speaker::new(self.clone(), switch, info, config)))
    }

    /// The media state of a device, by id ([`AudioDeviceState::Uninitialized`] if never opened).
    pub fn media_state(&self, direction: DeviceDirection, device_id: &str) -> AudioDeviceState {
        self.inner
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(direction, device_id.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Device events from now on: state changes, stream errors, switches.
    pub fn events(&self) -> DeviceEvents {
        let rx = self.inner.events.subscribe();
        let inner = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "device event reader lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        DeviceEvents { inner: Box::pin(inner) }
    }

    pub(crate) fn emit(&self, event: DeviceEvent) {
        // No subscriber is fine.
        let _ = self.inner.events.send(event);
    }

    pub(crate) fn reporter(&self, info: &DeviceInfo) -> StateReporter {
        StateReporter {
            inner: self.inner.clone(),
            direction: info.direction,
            device: info.id.clone(),
        }
    }

    fn list(
        &self,
        direction: DeviceDirection,
    ) -> Result<Vec<(cpal::Device, DeviceInfo)>, AudioDeviceError> {
        let host = &self.inner.host;
        let default = match direction {
            DeviceDirection::Input => host.default_input_device(),
            DeviceDirection::Output => host.default_output_device(),
        };
        let default_id = default.as_ref().map(device_id);
        let devices = match direction {
            DeviceDirection::Input => host.input_devices().map(|d| d.collect::<Vec<_>>()),
            DeviceDirection::Output => host.output_devices().map(|d| d.collect::<Vec<_>>()),
        }
        .map_err(|e| AudioDeviceError::HostUnavailable { reason: e.to_string() })?;
        let mut out: Vec<(cpal::Device, DeviceInfo)> = devices
            .into_iter()
            .map(|d| {
                let info = describe(&d, direction, default_id.as_deref());
                (d, info)
            })
            .collect();
        if let (Some(d), Some(id)) = (default, default_id)
            && !out.iter().any(|(_, i)| i.id == id)
        {
            let info = describe(&d, direction, Some(&id));
            out.insert(0, (d, info));
        }
        Ok(out)
    }

    fn resolve(
        &self,
        direction: DeviceDirection,
        selector: &DeviceSelector,
    ) -> Result<(cpal::Device, DeviceInfo), AudioDeviceError> {
        let not_found = || AudioDeviceError::NotFound { direction, selector: selector.to_string() };
        if *selector == DeviceSelector::Default {
            let host = &self.inner.host;
            let device = match direction {
                DeviceDirection::Input => host.default_input_device(),
                DeviceDirection::Output => host.default_output_device(),
            }
            .ok_or_else(not_found)?;
            let id = device_id(&device);
            let info = describe(&device, direction, Some(&id));
            return Ok((device, info));
        }
        let all = self.list(direction)?;
        let index = match selector {
            DeviceSelector::Id(want) => all.iter().position(|(_, i)| {
                i.id == *want || i.id.split_once(':').is_some_and(|(_, raw)| raw == want)
            }),
            DeviceSelector::Name(want) => {
                let want = want.to_lowercase();
                all.iter()
                    .position(|(_, i)| i.name.to_lowercase() == want)
                    .or_else(|| all.iter().position(|(_, i)| i.name.to_lowercase().contains(&want)))
            }
            _ => None,
        };
        index.map(|i| all.into_iter().nth(i).expect("index from position")).ok_or_else(not_found)
    }
}

fn device_id(device: &cpal::Device) -> String {
    device.id().map(|id| id.to_string()).unwrap_or_else(|_| device.to_string())
}

fn describe(
    device: &cpal::Device,
    direction: DeviceDirection,
    default_id: Option<&str>,
) -> DeviceInfo {
    let id = device_id(device);
    let name = device.description().map(|d| d.name().to_string()).unwrap_or_else(|_| id.clone());
    DeviceInfo { is_default: default_id == Some(id.as_str()), id, name, direction }
}

/// Records a device's state and publishes changes and errors as events. Used from the
/// async side and from cpal's error callback (not its real-time data callback).
#[derive(Clone)]
pub(crate) struct StateReporter {
    inner: Arc<Inner>,
    direction: DeviceDirection,
    device: String,
}

impl StateReporter {
    pub(crate) fn set(&self, state: AudioDeviceState) {
        let changed = {
            let mut states = self.inner.states.lock().unwrap_or_else(|e| e.into_inner());
            let key = (self.direction, self.device.clone());
            let changed = states.get(&key) != Some(&state);
            states.insert(key, state.clone());
            changed
        };
        if changed {
            tracing::debug!(direction = %self.direction, device = %self.device, state = %state, "media state");
            let _ = self.inner.events.send(DeviceEvent::StateChanged {
                direction: self.direction,
                device: self.device.clone(),
                state,
            });
        }
    }

    pub(crate) fn state(&self) -> AudioDeviceState {
        self.inner
            .states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(self.direction, self.device.clone()))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn fail(&self, error: &AudioDeviceError) {
        tracing::warn!(direction = %self.direction, device = %self.device, %error, "audio device error");
        self.set(AudioDeviceState::Error(error.clone()));
        let _ = self.inner.events.send(DeviceEvent::Error {
            direction: self.direction,
            device: self.device.clone(),
            error: error.clone(),
        });
    }

    /// For cpal's error callback: xruns and similar hiccups are logged, not failures.
    pub(crate) fn stream_error(&self, error: &cpal::Error) {
        use cpal::ErrorKind as K;
        match error.kind() {
            K::Xrun => tracing::trace!(device = %self.device, "audio xrun"),
            K::RealtimeDenied | K::DeviceChanged => {
                tracing::debug!(device = %self.device, %error, "audio stream notice");
            }
            _ => self.fail(&map_cpal_error(error, &self.device, true)),
        }
    }
}

/// Maps a cpal error to ours; `running` says whether a stream was already up.
pub(crate) fn map_cpal_error(error: &cpal::Error, device: &str, running: bool) -> AudioDeviceError {
    use cpal::ErrorKind as K;
    let device = device.to_string();
    let reason = error.to_string();
    match error.kind() {
        K::DeviceBusy => AudioDeviceError::InUse { device, reason },
        K::PermissionDenied => AudioDeviceError::PermissionDenied { device, reason },
        K::DeviceNotAvailable if !running => AudioDeviceError::NotAvailable { device, reason },
        K::UnsupportedConfig | K::InvalidInput => {
            AudioDeviceError::UnsupportedConfig { device, reason }
        }
        K::HostUnavailable => AudioDeviceError::HostUnavailable { reason },
        _ => AudioDeviceError::StreamFailed { device, reason },
    }
}

/// The error to report when opening fails before the stream exists.
pub(crate) fn open_error(error: &cpal::Error, device: &str) -> AudioDeviceError {
    map_cpal_error(error, device, false)
}
