//! Audio for Pipecat clients: frames, sources and sinks, devices, Opus, resampling, WAV,
//! levels and a playout buffer. This crate knows nothing of RTVI or networking; the
//! transports build on it.
//!
//! # The pieces
//!
//! * [`AudioFrame`] / [`AudioFormat`]: interleaved PCM16 with rate, channels and a timestamp.
//! * [`AudioSource`] (async, object safe): [`WavFileSource`], [`MemorySource`] (pushed by the
//!   program), [`SilenceSource`], [`ToneSource`], [`SwitchableSource`] (replace the inner
//!   source live, mute), and with feature `devices` a microphone (`DeviceSource`).
//! * [`AudioSink`] (async, object safe, `flush()` on interruption): [`WavFileSink`],
//!   [`MemorySink`] (pulled by the program), [`NullSink`], [`SwitchableSink`], and with
//!   feature `devices` a speaker (`DeviceSink`).
//! * [`AudioConverter`]: streaming resampling (rubato) and channel mixing between any formats.
//! * [`OpusEncoder`] / [`OpusDecoder`] / [`OpusStreamEncoder`], [`FrameChunker`].
//! * [`PlayoutBuffer`]: bounded, adaptive, flushable jitter buffer for bot audio.
//! * [`LevelMeter`]: 0..1 levels every 100 ms.
//! * [`default_input`] / [`default_output`]: the default devices, or a clear error.
//!
//! # Features
//!
//! * `devices`: microphones and speakers through cpal (`AudioDevices`, `Microphone`,
//!   `Speaker`). Needs ALSA headers (`libasound2-dev`) to build on Linux.
//! * `pulseaudio`: implies `devices`; cpal talks to PulseAudio (or PipeWire's pulse server)
//!   natively and prefers it to ALSA whenever a server is reachable. Recommended on Linux
//!   desktops; pure Rust, no libpulse needed.
//!
//! # Example: a headless session's audio
//!
//! ```
//! use pipecat_media::{AudioFormat, AudioSink, AudioSource, AudioConverter, MemorySink, ToneSource};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
//! // "Microphone": a test tone at 48 kHz; the WebSocket transport wants 16 kHz.
//! let mut mic = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3)?
//!     .paced(false)
//!     .limit(Duration::from_millis(200));
//! let mut to_bot = AudioConverter::new(AudioFormat::MONO_16K)?;
//! let mut sent = 0;
//! while let Some(frame) = mic.next_frame().await? {
//!     if let Some(pcm16k) = to_bot.process(frame)? {
//!         sent += pcm16k.to_le_bytes().len(); // what goes on the wire
//!     }
//! }
//! assert!(sent > 0);
//!
//! // "Speaker": the program pulls bot audio like a sound card would.
//! let (mut speaker, playback) = MemorySink::new(AudioFormat::MONO_48K)?;
//! let bot_audio = pipecat_media::AudioFrame::new(vec![1000; 2400], AudioFormat::MONO_24K, Duration::ZERO)?;
//! speaker.write(bot_audio).await?; // converted from 24 kHz
//! let mut buf = [0i16; 480];
//! playback.pull(&mut buf);
//! # Ok(()) }
//! ```

pub mod analysis;
mod chunk;
mod convert;
mod defaults;
mod devices;
mod error;
mod frame;
mod level;
mod opus;
mod playout;
mod sink;
mod source;
#[cfg(test)]
mod test_util;

pub use chunk::FrameChunker;
pub use convert::{AudioConverter, mix_channels};
pub use defaults::{default_input, default_output};
pub use devices::{
    AudioDeviceError, AudioDeviceState, DEFAULT_DEVICE_BUFFER, DeviceDirection, DeviceEvent,
    DeviceInfo, DeviceSelector, InputConfig, OutputConfig,
};
#[cfg(feature = "devices")]
pub use devices::{AudioDevices, DeviceEvents, DeviceSink, DeviceSource, Microphone, Speaker};
pub use error::MediaError;
pub use frame::{AudioFormat, AudioFrame, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
pub use level::{LEVEL_FLOOR_DBFS, LevelMeter, rms_i16, rms_to_level};
pub use opus::{
    OPUS_SAMPLE_RATES, OpusApplication, OpusConfig, OpusDecoder, OpusEncoder, OpusError,
    OpusFrameDuration, OpusPacket, OpusStreamEncoder,
};
pub use playout::{PlayoutBuffer, PlayoutConfig, PlayoutStats};
pub use sink::{
    AudioSink, MemorySink, MemorySinkHandle, NullSink, SinkSwitch, SwitchableSink, WavFileSink,
};
pub use source::{
    AudioSource, DEFAULT_FRAME_DURATION, MemorySource, MemorySourceHandle, SilenceSource,
    SourceSwitch, SwitchableSource, ToneGenerator, ToneSource, WavFileSource, source_stream,
};

/// The version of the bundled libopus, e.g. `"libopus 1.6.1"`.
pub fn opus_version() -> &'static str {
    ::opus::version()
}

#[cfg(test)]
mod api_tests {
    use super::*;

    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_handles_are_sync() {
        assert_send::<Box<dyn AudioSource>>();
        assert_send::<Box<dyn AudioSink>>();
        assert_send::<OpusEncoder>();
        assert_send::<OpusDecoder>();
        assert_send::<AudioConverter>();
        assert_send::<PlayoutBuffer>();
        assert_send_sync::<MemorySourceHandle>();
        assert_send_sync::<MemorySinkHandle>();
        assert_send_sync::<SourceSwitch>();
        assert_send_sync::<SinkSwitch>();
        assert_send_sync::<MediaError>();
        #[cfg(feature = "devices")]
        {
            assert_send::<DeviceSource>();
            assert_send::<DeviceSink>();
            assert_send_sync::<AudioDevices>();
            assert_send_sync::<Microphone>();
            assert_send_sync::<Speaker>();
        }
    }

    #[test]
    fn bundled_libopus() {
        assert!(opus_version().starts_with("libopus"));
    }
}
