//! Audio from a WAV file.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::{AudioSource, DEFAULT_FRAME_DURATION, Pacer, frames_per_chunk};
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Frames read from a WAV file (PCM 8/16/24/32-bit integer or 32-bit float, converted to
/// PCM16), paced in real time by default, optionally looping.
///
/// Reads are small buffered reads done inline (a few kilobytes per frame), which is fine on
/// an async executor for local files.
///
/// ```no_run
/// use pipecat_media::{AudioSource, WavFileSource};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let mut prompt = WavFileSource::open("question.wav")?.looping(false);
/// while let Some(frame) = prompt.next_frame().await? {
///     // hand the frame to a transport...
/// #   let _ = frame;
/// }
/// # Ok(()) }
/// ```
pub struct WavFileSource {
    reader: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
    format: AudioFormat,
    path: PathBuf,
    total_frames: u32,
    chunk: usize,
    looping: bool,
    produced: usize,
    ended: bool,
    pacer: Pacer,
}

impl std::fmt::Debug for WavFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFileSource")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("looping", &self.looping)
            .finish_non_exhaustive()
    }
}

impl WavFileSource {
    /// Opens a WAV file: 20 ms frames, paced, not looping.
    ///
    /// # Errors
    /// [`MediaError::Io`] if the file cannot be opened, [`MediaError::Wav`] for a malformed or
    /// unsupported file, [`MediaError::InvalidFormat`] for a rate or channel count out of range.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MediaError> {
        let path = path.as_ref().to_path_buf();
        let reader = hound::WavReader::open(&path)?;
        let spec = reader.spec();
        let supported = matches!(
            (spec.sample_format, spec.bits_per_sample),
            (hound::SampleFormat::Int, 1..=32) | (hound::SampleFormat::Float, 32)
        );
        if !supported {
            return Err(MediaError::Wav {
                reason: format!(
                    "unsupported sample encoding: {:?} {} bits",
                    spec.sample_format, spec.bits_per_sample
                ),
            });
        }
        let format = AudioFormat::new(spec.sample_rate, spec.channels);
        format.validate()?;
        let total_frames = reader.duration();
        tracing::debug!(path = %path.display(), %format, frames = total_frames, "opened WAV source");
        Ok(Self {
            reader,
            spec,
            format,
            path,
            total_frames,
            chunk: frames_per_chunk(format, DEFAULT_FRAME_DURATION),
            looping: false,
            produced: 0,
            ended: false,
            pacer: Pacer::new(true),
        })
    }

    /// Start again from the beginning at end of file, forever (an empty file still ends).
    #[must_use]
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// Release frames in real time (default) or as fast as they are read.
    #[must_use]
    pub fn paced(mut self, paced: bool) -> Self {
        self.pacer.set_enabled(paced);
        self
    }

    /// Length of each frame (at least one sample).
    #[must_use]
    pub fn frame_duration(mut self, duration: Duration) -> Self {
        self.chunk = frames_per_chunk(self.format, duration);
        self
    }

    /// Length of the file's audio (one pass).
    pub fn duration(&self) -> Duration {
        self.format.duration_of_frames(self.total_frames as usize)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends up to `want` samples to `out`; returns how many were read.
    fn read_samples(&mut self, want: usize, out: &mut Vec<i16>) -> Result<usize, MediaError> {
        let before = out.len();
        match self.spec.sample_format {
            hound::SampleFormat::Float => {
                for s in self.reader.samples::<f32>().take(want) {
                    let v = s?;
                    out.push((v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16);
                }
            }
            hound::SampleFormat::Int => {
                let bits = u32::from(self.spec.bits_per_sample);
                for s in self.reader.samples::<i32>().take(want) {
                    let v = s?;
                    let v = if bits <= 16 { v << (16 - bits) } else { v >> (bits - 16) };
                    out.push(v.clamp(-32_768, 32_767) as i16);
                }
            }
        }
        Ok(out.len() - before)
    }
}

#[async_trait]
impl AudioSource for WavFileSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        if self.ended {
            return Ok(None);
        }
        let channels = usize::from(self.format.channels);
        let want = self.chunk * channels;
        let mut samples = Vec::with_capacity(want);
        // At most one rewind per frame: enough since a frame is shorter than any non-empty
        // file pass would need to be for two rewinds, and an empty file must not spin.
        for attempt in 0..2 {
            let remaining = want - samples.len();
            self.read_samples(remaining, &mut samples)?;
            if samples.len() == want || !self.looping || self.total_frames == 0 || attempt == 1 {
                break;
            }
            self.reader.seek(0)?;
        }
        // A truncated file can end mid-frame: keep whole frames only.
        samples.truncate(samples.len() / channels * channels);
        if samples.is_empty() {
            self.ended = true;
            return Ok(None);
        }
        let ts = self.format.duration_of_frames(self.produced);
        self.pacer.wait_until(ts).await;
        self.produced += samples.len() / channels;
        Ok(Some(AudioFrame::from_parts(samples, self.format, ts)))
    }
}
