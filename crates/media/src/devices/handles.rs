//! Session-level handles: a microphone you can mute and move, a speaker you can move.

use std::sync::{Arc, Mutex, MutexGuard};

use super::host::AudioDevices;
use super::{
    AudioDeviceError, AudioDeviceState, DeviceDirection, DeviceEvent, DeviceInfo, DeviceSelector,
    InputConfig, OutputConfig,
};
use crate::sink::SinkSwitch;
use crate::source::SourceSwitch;

/// Controls the microphone behind a [`SwitchableSource`](crate::SwitchableSource) made by
/// [`AudioDevices::microphone`]. Cloneable, `Send + Sync`.
///
/// Disabling (muting) makes the source yield silence at the same pace; the device keeps
/// running so unmuting is instant.
#[derive(Debug, Clone)]
pub struct Microphone {
    devices: AudioDevices,
    switch: SourceSwitch,
    current: Arc<Mutex<DeviceInfo>>,
    config: InputConfig,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Microphone {
    pub(crate) fn new(
        devices: AudioDevices,
        switch: SourceSwitch,
        info: DeviceInfo,
        config: InputConfig,
    ) -> Self {
        Self { devices, switch, current: Arc::new(Mutex::new(info)), config }
    }

    /// Opens another device and swaps it in while the session runs. On failure the current
    /// device stays in use and the error is returned (and published as an event).
    ///
    /// # Errors
    /// [`AudioDeviceError`] from opening the new device, or [`AudioDeviceError::StreamFailed`] if the
    /// source was dropped.
    pub fn switch_device(&self, selector: &DeviceSelector) -> Result<DeviceInfo, AudioDeviceError> {
        let source = self.devices.open_input(selector, self.config)?;
        let info = source.info().clone();
        self.switch.replace(Box::new(source)).map_err(|e| AudioDeviceError::StreamFailed {
            device: info.id.clone(),
            reason: e.to_string(),
        })?;
        *lock(&self.current) = info.clone();
        self.devices.emit(DeviceEvent::Switched { device: info.clone() });
        Ok(info)
    }

    /// Enables (unmutes) or disables (mutes) the microphone.
    pub fn set_enabled(&self, enabled: bool) {
        if self.switch.is_muted() == enabled {
            self.switch.set_muted(!enabled);
            self.devices.emit(DeviceEvent::MicMuted { muted: !enabled });
        }
    }

    /// True unless muted.
    pub fn is_enabled(&self) -> bool {
        !self.switch.is_muted()
    }

    /// The device in use.
    pub fn device(&self) -> DeviceInfo {
        lock(&self.current).clone()
    }

    /// Media state of the device in use.
    pub fn state(&self) -> AudioDeviceState {
        let id = lock(&self.current).id.clone();
        self.devices.media_state(DeviceDirection::Input, &id)
    }
}

/// Controls the speaker behind a [`SwitchableSink`](crate::SwitchableSink) made by
/// [`AudioDevices::speaker`]. Cloneable, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Speaker {
    devices: AudioDevices,
    switch: SinkSwitch,
    current: Arc<Mutex<DeviceInfo>>,
    config: OutputConfig,
}

impl Speaker {
    pub(crate) fn new(
        devices: AudioDevices,
        switch: SinkSwitch,
        info: DeviceInfo,
        config: OutputConfig,
    ) -> Self {
        Self { devices, switch, current: Arc::new(Mutex::new(info)), config }
    }

    /// Opens another device and swaps it in (audio queued for the old one is dropped). On
    /// failure the current device stays in use.
    ///
    /// # Errors
    /// [`AudioDeviceError`] from opening the new device, or [`AudioDeviceError::StreamFailed`] if the
    /// sink was dropped.
    pub fn switch_device(&self, selector: &DeviceSelector) -> Result<DeviceInfo, AudioDeviceError> {
        let sink = self.devices.open_output(selector, self.config)?;
        let info = sink.info().clone();
        self.switch.replace(Box::new(sink)).map_err(|e| AudioDeviceError::StreamFailed {
            device: info.id.clone(),
            reason: e.to_string(),
        })?;
        *lock(&self.current) = info.clone();
        self.devices.emit(DeviceEvent::Switched { device: info.clone() });
        Ok(info)
    }

    /// The device in use.
    pub fn device(&self) -> DeviceInfo {
        lock(&self.current).clone()
    }

    /// Media state of the device in use.
    pub fn state(&self) -> AudioDeviceState {
        let id = lock(&self.current).id.clone();
        self.devices.media_state(DeviceDirection::Output, &id)
    }
}
