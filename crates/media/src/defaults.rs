//! The default microphone and speaker, or a clear error naming the headless alternatives.

use crate::error::MediaError;
use crate::frame::AudioFormat;
use crate::sink::AudioSink;
use crate::source::AudioSource;

const HEADLESS_SOURCES: &str =
    "use a headless source instead: WavFileSource, MemorySource, ToneSource or SilenceSource";
const HEADLESS_SINKS: &str =
    "use a headless sink instead: WavFileSink, MemorySink (pulled by the program) or NullSink";

/// The default microphone as a source yielding `format` (converted from the device's own).
///
/// For mute and device switching use `AudioDevices::microphone` (feature `devices`).
///
/// # Errors
/// [`MediaError::NoDefaultIo`] when this build has no device support (feature `devices`
/// off) or the default microphone cannot be opened (no sound card, permission...), with a
/// message naming the headless sources to use instead; the device error is its `source()`.
pub fn default_input(format: AudioFormat) -> Result<Box<dyn AudioSource>, MediaError> {
    format.validate()?;
    #[cfg(feature = "devices")]
    {
        let devices = crate::devices::AudioDevices::new();
        match devices.microphone(&crate::devices::DeviceSelector::Default, format) {
            Ok((source, _mic)) => Ok(Box::new(source)),
            Err(e) => Err(MediaError::NoDefaultIo {
                reason: format!("no default microphone could be opened ({e}); {HEADLESS_SOURCES}"),
                cause: Some(e),
            }),
        }
    }
    #[cfg(not(feature = "devices"))]
    {
        Err(MediaError::NoDefaultIo {
            reason: format!(
                "pipecat-media was built without the `devices` feature, so there is no \
                 microphone; {HEADLESS_SOURCES}"
            ),
            cause: Some(crate::devices::AudioDeviceError::Disabled),
        })
    }
}

/// The default speaker as a sink (frames of any format are converted to the device's).
///
/// For device switching and playout statistics use `AudioDevices::speaker` (feature
/// `devices`).
///
/// # Errors
/// [`MediaError::NoDefaultIo`] as for [`default_input`], naming the headless sinks.
pub fn default_output() -> Result<Box<dyn AudioSink>, MediaError> {
    #[cfg(feature = "devices")]
    {
        let devices = crate::devices::AudioDevices::new();
        match devices.open_output(&crate::devices::DeviceSelector::Default, Default::default()) {
            Ok(sink) => Ok(Box::new(sink)),
            Err(e) => Err(MediaError::NoDefaultIo {
                reason: format!("no default speaker could be opened ({e}); {HEADLESS_SINKS}"),
                cause: Some(e),
            }),
        }
    }
    #[cfg(not(feature = "devices"))]
    {
        Err(MediaError::NoDefaultIo {
            reason: format!(
                "pipecat-media was built without the `devices` feature, so there is no \
                 speaker; {HEADLESS_SINKS}"
            ),
            cause: Some(crate::devices::AudioDeviceError::Disabled),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a usable sound card (CI) or without the feature, the error names the
    /// headless types. With a working default device this test has nothing to check.
    #[test]
    fn failure_names_the_headless_types() {
        match default_input(AudioFormat::MONO_16K) {
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("WavFileSource") && text.contains("MemorySource"), "{text}");
                assert!(std::error::Error::source(&e).is_some());
            }
        }
        match default_output() {
            Ok(_) => {}
            Err(e) => assert!(e.to_string().contains("MemorySink"), "{e}"),
        }
        assert!(default_input(AudioFormat::new(16_000, 0)).is_err());
    }
}
