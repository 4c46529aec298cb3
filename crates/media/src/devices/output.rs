//! Playback to a cpal output device through a playout buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use super::host::{StateReporter, open_error};
use super::input::{buffer_candidates, pick_config, worth_retrying};
use super::{AudioDeviceError, AudioDeviceState, DeviceInfo, OutputConfig};
use crate::convert::AudioConverter;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};
use crate::playout::{AtomicPlayoutStats, PlayoutBuffer, PlayoutStats};
use crate::sink::AudioSink;

/// Shared between the async writer and the real-time callback: atomics only.
#[derive(Debug, Default)]
struct Control {
    /// Bumped by every flush.
    flush_generation: AtomicU64,
    /// Samples written into the ring before the latest flush: the callback discards up to here.
    discard_until: AtomicU64,
    stats: AtomicPlayoutStats,
}

/// A running playback stream, as an [`AudioSink`] in the device's format (frames in any
/// format are converted). Bot audio goes through a bounded SPSC ring into a
/// [`PlayoutBuffer`] owned by the sound card callback, which pulls it at the device's pace
/// (silence on under-run). [`flush`](AudioSink::flush) drops everything not yet played at
/// once. Dropping the sink stops the stream.
pub struct DeviceSink {
    // Kept alive for the stream to run.
    _stream: cpal::Stream,
    producer: rtrb::Producer<i16>,
    format: AudioFormat,
    info: DeviceInfo,
    converter: AudioConverter,
    control: Arc<Control>,
    written: u64,
    reporter: StateReporter,
}

impl std::fmt::Debug for DeviceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSink")
            .field("device", &self.info.id)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// What the real-time callback owns: all storage is allocated before the stream starts.
struct Playback {
    consumer: rtrb::Consumer<i16>,
    playout: PlayoutBuffer,
    scratch: Vec<i16>,
    control: Arc<Control>,
    seen_generation: u64,
    discard_target: u64,
    read: u64,
}

impl Playback {
    fn fill<T>(&mut self, data: &mut [T])
    where
        T: SizedSample + FromSample<i16>,
    {
        let generation = self.control.flush_generation.load(Ordering::Acquire);
        if generation != self.seen_generation {
            // Load after the generation: the writer stores the target before bumping it.
            self.seen_generation = generation;
            self.discard_target = self.control.discard_until.load(Ordering::Acquire);
            self.playout.flush();
        }
        if self.read < self.discard_target {
            let n = ((self.discard_target - self.read) as usize).min(self.consumer.slots());
            if let Ok(chunk) = self.consumer.read_chunk(n) {
                chunk.commit_all();
                self.read += n as u64;
            }
        }
        if self.read >= self.discard_target {
            let n = self.consumer.slots();
            if let Ok(chunk) = self.consumer.read_chunk(n) {
                // The ring holds whole frames and its size is a multiple of the channel
                // count, so the wrap point never splits a frame.
                let (a, b) = chunk.as_slices();
                self.playout.push(a);
                self.playout.push(b);
                chunk.commit_all();
                self.read += n as u64;
            }
        }
        let step = self.scratch.len();
        for out in data.chunks_mut(step) {
            let pcm = &mut self.scratch[..out.len()];
            self.playout.pull(pcm);
            for (o, &s) in out.iter_mut().zip(pcm.iter()) {
                *o = T::from_sample_(s);
            }
        }
        self.control.stats.store(&self.playout.stats());
    }
}

fn build_output<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut playback: Playback,
    reporter: StateReporter,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<i16> + Send + 'static,
{
    device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| playback.fill(data),
        move |err| reporter.stream_error(&err),
        None,
    )
}

impl DeviceSink {
    pub(crate) fn open(
        device: &cpal::Device,
        info: DeviceInfo,
        config: OutputConfig,
        reporter: StateReporter,
    ) -> Result<Self, AudioDeviceError> {
        let id = info.id.clone();
        let supported =
            pick_config(device, config.preferred_format, false).map_err(|e| open_error(&e, &id))?;
        let format = AudioFormat::new(supported.sample_rate(), supported.channels());
        let unsupported = |e: MediaError| AudioDeviceError::UnsupportedConfig {
            device: id.clone(),
            reason: e.to_string(),
        };
        let converter = AudioConverter::new(format).map_err(unsupported)?;
        let channels = usize::from(format.channels);
        // Room for the playout bound plus a second of slack, in whole frames.
        let ring_frames = format.frames_in(config.playout.max_depth + Duration::from_secs(1));
        let sample_format = supported.sample_format();
        let candidates = buffer_candidates(&supported, config.device_buffer);
        let mut attempt = 0;
        let (stream, producer, control) = loop {
            let buffer_size = candidates[attempt];
            let (producer, consumer) = rtrb::RingBuffer::new(ring_frames * channels);
            let control = Arc::new(Control::default());
            let playback = Playback {
                consumer,
                playout: PlayoutBuffer::new(format, config.playout)
                    .map_err(unsupported)?
                    .without_logging(),
                // Callback buffers are usually 5..50 ms; bigger ones are handled in steps.
                scratch: vec![0; format.samples_in(Duration::from_millis(100)).max(channels)],
                control: control.clone(),
                seen_generation: 0,
                discard_target: 0,
                read: 0,
            };
            let stream_config = cpal::StreamConfig { buffer_size, ..supported.config() };
            macro_rules! build {
                ($t:ty) => {
                    build_output::<$t>(device, &stream_config, playback, reporter.clone())
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
                Ok(stream) => break (stream, producer, control),
                Err(e) if worth_retrying(&e) && attempt + 1 < candidates.len() => {
                    tracing::debug!(device = %id, ?buffer_size, error = %e, "retrying with another buffer size");
                    attempt += 1;
                }
                Err(e) => return Err(open_error(&e, &id)),
            }
        };
        stream.play().map_err(|e| open_error(&e, &id))?;
        tracing::info!(device = %id, %format, ?sample_format, buffer = ?candidates[attempt], "speaker open");
        reporter.set(AudioDeviceState::Granted);
        Ok(Self {
            _stream: stream,
            producer,
            format,
            info,
            converter,
            control,
            written: 0,
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

    /// Playout counters as last published by the sound card callback (depth in ms,
    /// under-runs, drops, flushes).
    pub fn stats(&self) -> PlayoutStats {
        self.control.stats.load()
    }
}

#[async_trait]
impl AudioSink for DeviceSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        let Some(out) = self.converter.process(frame)? else { return Ok(()) };
        let channels = usize::from(self.format.channels);
        let samples = out.samples();
        // Whole frames only; if the callback has stalled and the ring is full, drop the rest.
        let n = samples.len().min(self.producer.slots() / channels * channels);
        if self.producer.push_entire_slice(&samples[..n]).is_ok() {
            self.written += n as u64;
        }
        if n < samples.len() {
            self.control.stats.add_dropped(((samples.len() - n) / channels) as u64);
            tracing::debug!(device = %self.info.id, "speaker ring full, audio dropped");
        }
        Ok(())
    }

    fn flush(&mut self) {
        self.converter.reset();
        // Target first, then the generation the callback watches (see Playback::fill).
        self.control.discard_until.store(self.written, Ordering::Release);
        self.control.flush_generation.fetch_add(1, Ordering::AcqRel);
    }
}
