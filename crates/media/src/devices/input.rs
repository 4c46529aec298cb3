//! Capture from a cpal input device.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::host::{StateReporter, open_error};
use super::{AudioDeviceError, AudioDeviceState, DeviceInfo, InputConfig};
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};
use crate::source::{AudioSource, frames_per_chunk};

/// How often the async side looks into the capture ring. Well under a 10 ms frame, and the
/// callback never has to wake anyone.
const POLL: Duration = Duration::from_millis(5);

/// A running capture stream, as an [`AudioSource`] in the device's format (use
/// [`AudioDevices::microphone`](crate::AudioDevices::microphone) to get a fixed format plus
/// mute and switching). Dropping it stops the stream.
///
/// If the stream fails, the error is reported as a [`DeviceEvent`](crate::DeviceEvent) and in
/// [`state`](Self::state); `next_frame` then simply waits (a dead microphone yields nothing),
/// and the program can switch to another device.
pub struct DeviceSource {
    // Kept alive for the stream to run; cpal streams are Send.
    _stream: cpal::Stream,
    consumer: rtrb::Consumer<i16>,
    format: AudioFormat,
    info: DeviceInfo,
    chunk: usize,
    produced: usize,
    overflow: Arc<AtomicU64>,
    reporter: StateReporter,
}

impl std::fmt::Debug for DeviceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSource")
            .field("device", &self.info.id)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Picks the device configuration: the preferred format when supported, else the default.
pub(crate) fn pick_config(
    device: &cpal::Device,
    preferred: Option<AudioFormat>,
    input: bool,
) -> Result<cpal::SupportedStreamConfig, cpal::Error> {
    if let Some(want) = preferred {
        let ranges: Vec<cpal::SupportedStreamConfigRange> = if input {
            device.supported_input_configs().map(Iterator::collect).unwrap_or_default()
        } else {
            device.supported_output_configs().map(Iterator::collect).unwrap_or_default()
        };
        let usable = |r: &&cpal::SupportedStreamConfigRange| {
            r.channels() == want.channels && r.contains_rate(want.sample_rate)
        };
        // Prefer formats that convert to and from PCM16 without loss or work.
        let best = ranges
            .iter()
            .filter(usable)
            .find(|r| matches!(r.sample_format(), SampleFormat::I16 | SampleFormat::F32))
            .or_else(|| ranges.iter().find(usable));
        if let Some(range) = best {
            return Ok(range.with_sample_rate(want.sample_rate));
        }
    }
    if input { device.default_input_config() } else { device.default_output_config() }
}

/// Device periods to try, best first: the requested one clamped to the supported range, then
/// the host's default.
pub(crate) fn buffer_candidates(
    supported: &cpal::SupportedStreamConfig,
    period: Option<Duration>,
) -> Vec<cpal::BufferSize> {
    let mut sizes = Vec::with_capacity(2);
    if let Some(period) = period
        && let cpal::SupportedBufferSize::Range { min, max } = *supported.buffer_size()
    {
        let frames = u32::try_from(AudioFormat::new(supported.sample_rate(), 1).frames_in(period))
            .unwrap_or(u32::MAX);
        sizes.push(cpal::BufferSize::Fixed(frames.clamp(min.max(1), max.max(min).max(1))));
    }
    // With an unknown range a fixed size is a guess; the default is the safe choice.
    sizes.push(cpal::BufferSize::Default);
    sizes
}

/// Errors after which another buffer size may work.
pub(crate) fn worth_retrying(error: &cpal::Error) -> bool {
    matches!(
        error.kind(),
        cpal::ErrorKind::UnsupportedConfig
            | cpal::ErrorKind::InvalidInput
            | cpal::ErrorKind::BackendError
    )
}

impl DeviceSource {
    pub(crate) fn open(
        device: &cpal::Device,
        info: DeviceInfo,
        config: InputConfig,
        reporter: StateReporter,
    ) -> Result<Self, AudioDeviceError> {
        let id = info.id.clone();
        let supported =
            pick_config(device, config.preferred_format, true).map_err(|e| open_error(&e, &id))?;
        let format = AudioFormat::new(supported.sample_rate(), supported.channels());
        format.validate().map_err(|e| AudioDeviceError::UnsupportedConfig {
            device: id.clone(),
            reason: e.to_string(),
        })?;
        let channels = usize::from(format.channels);
        // A whole number of frames, so reads and writes never split one.
        let capacity = format.frames_in(config.buffer).max(4096) * channels;
        let sample_format = supported.sample_format();
        let candidates = buffer_candidates(&supported, config.device_buffer);
        let mut attempt = 0;
        let (stream, consumer, overflow) = loop {
            let buffer_size = candidates[attempt];
            let (producer, consumer) = rtrb::RingBuffer::new(capacity);
            let overflow = Arc::new(AtomicU64::new(0));
            let capture = Capture { producer, overflow: overflow.clone(), channels };
            let stream_config = cpal::StreamConfig { buffer_size, ..supported.config() };
            macro_rules! build {
                ($t:ty) => {
                    build_input::<$t>(device, &stream_config, capture, reporter.clone())
                };
            }
            let built = match sample_format {
                SampleFormat::I8 => build!(i8),
                SampleFormat::I16 => build!(i16),
                SampleFormat::I32 => build!(i32),
                SampleFormat::I64 => build!(i64),
                SampleFormat::U8 => build!(u8),
                SampleFormat::U16 => build!(u16),
                SampleFormat::U32 => build!(u32),
                SampleFormat::U64 => build!(u64),
                SampleFormat::F32 => build!(f32),
                SampleFormat::F64 => build!(f64),
                other => {
                    return Err(AudioDeviceError::UnsupportedConfig {
                        device: id,
                        reason: format!("sample format {other:?} is not supported"),
                    });
                }
            };
            match built {
                Ok(stream) => break (stream, consumer, overflow),
                Err(e) if worth_retrying(&e) && attempt + 1 < candidates.len() => {
                    tracing::debug!(device = %id, ?buffer_size, error = %e, "retrying with another buffer size");
                    attempt += 1;
                }
                Err(e) => return Err(open_error(&e, &id)),
            }
        };
        stream.play().map_err(|e| open_error(&e, &id))?;
        tracing::info!(device = %id, %format, ?sample_format, buffer = ?candidates[attempt], "microphone open");
        reporter.set(AudioDeviceState::Granted);
        Ok(Self {
            _stream: stream,
            consumer,
            format,
            info,
            chunk: frames_per_chunk(format, config.frame_duration),
            produced: 0,
            overflow,
            reporter,
        })
    }

    /// The device.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device's media state.
    pub fn state(&self) -> AudioDeviceState {
        self.reporter.state()
    }

    /// Captured frames dropped because nobody read them in time.
    pub fn dropped_frames(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }
}

/// What the real-time callback owns.
struct Capture {
    producer: rtrb::Producer<i16>,
    overflow: Arc<AtomicU64>,
    channels: usize,
}

impl Capture {
    /// Real-time path: convert and copy into the ring, never block or allocate.
    fn write<T>(&mut self, data: &[T])
    where
        T: SizedSample,
        i16: FromSample<T>,
    {
        let room = self.producer.slots() / self.channels * self.channels;
        let n = data.len().min(room) / self.channels * self.channels;
        if n < data.len() {
            self.overflow.fetch_add(((data.len() - n) / self.channels) as u64, Ordering::Relaxed);
        }
        if let Ok(chunk) = self.producer.write_chunk_uninit(n) {
            chunk.fill_from_iter(data[..n].iter().map(|&s| i16::from_sample_(s)));
        }
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut capture: Capture,
    reporter: StateReporter,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    i16: FromSample<T>,
{
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _: &cpal::InputCallbackInfo| capture.write(data),
        move |err| reporter.stream_error(&err),
        None,
    )
}

#[async_trait]
impl AudioSource for DeviceSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let want = self.chunk * usize::from(self.format.channels);
        while self.consumer.slots() < want {
            tokio::time::sleep(POLL).await;
        }
        let mut samples = Vec::with_capacity(want);
        if let Ok(chunk) = self.consumer.read_chunk(want) {
            let (a, b) = chunk.as_slices();
            samples.extend_from_slice(a);
            samples.extend_from_slice(b);
            chunk.commit_all();
        }
        let ts = self.format.duration_of_frames(self.produced);
        self.produced += self.chunk;
        Ok(Some(AudioFrame::from_parts(samples, self.format, ts)))
    }
}
