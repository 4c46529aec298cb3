//! Audio into a WAV file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::AudioSink;
use crate::convert::AudioConverter;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// Writes 16-bit PCM WAV in a fixed format, converting frames in other formats.
///
/// [`close`](AudioSink::close) finalises the header; dropping the sink finalises it too but
/// cannot report errors. [`flush`](AudioSink::flush) only drops what the converter holds:
/// audio already written stays in the file.
///
/// ```
/// use pipecat_media::{AudioFormat, AudioFrame, AudioSink, WavFileSink, WavFileSource};
/// use std::time::Duration;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("bot.wav");
/// let mut sink = WavFileSink::create(&path, AudioFormat::MONO_24K)?;
/// sink.write(AudioFrame::silence(AudioFormat::MONO_24K, 480, Duration::ZERO)?).await?;
/// sink.close().await?;
/// assert_eq!(WavFileSource::open(&path)?.duration(), Duration::from_millis(20));
/// # Ok(()) }
/// ```
pub struct WavFileSink {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    format: AudioFormat,
    converter: AudioConverter,
    path: PathBuf,
    frames: u64,
}

impl std::fmt::Debug for WavFileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFileSink")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl WavFileSink {
    /// Creates (or truncates) `path` for 16-bit PCM in `format`.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] for a bad format, [`MediaError::Io`] if the file cannot
    /// be created.
    pub fn create(path: impl AsRef<Path>, format: AudioFormat) -> Result<Self, MediaError> {
        format.validate()?;
        let path = path.as_ref().to_path_buf();
        let spec = hound::WavSpec {
            channels: format.channels,
            sample_rate: format.sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec)?;
        tracing::debug!(path = %path.display(), %format, "created WAV sink");
        Ok(Self {
            writer: Some(writer),
            format,
            converter: AudioConverter::new(format)?,
            path,
            frames: 0,
        })
    }

    /// Audio written so far.
    pub fn duration_written(&self) -> Duration {
        self.format.duration_of_frames(self.frames as usize)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_samples(&mut self, samples: &[i16]) -> Result<(), MediaError> {
        let writer = self.writer.as_mut().ok_or(MediaError::Closed)?;
        let mut w = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w.write_sample(s);
        }
        w.flush()?;
        self.frames += (samples.len() / usize::from(self.format.channels)) as u64;
        Ok(())
    }
}

#[async_trait]
impl AudioSink for WavFileSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        if self.writer.is_none() {
            return Err(MediaError::Closed);
        }
        if let Some(out) = self.converter.process(frame)? {
            self.write_samples(out.samples())?;
        }
        Ok(())
    }

    fn flush(&mut self) {
        self.converter.reset();
    }

    async fn close(&mut self) -> Result<(), MediaError> {
        self.finish()
    }
}

impl WavFileSink {
    /// Writes what conversion still holds and the final header; once.
    fn finish(&mut self) -> Result<(), MediaError> {
        if self.writer.is_none() {
            return Ok(());
        }
        if let Some(tail) = self.converter.finish()? {
            self.write_samples(tail.samples())?;
        }
        if let Some(writer) = self.writer.take() {
            writer.finalize()?;
        }
        Ok(())
    }
}

impl Drop for WavFileSink {
    /// A sink dropped without `close` still leaves a complete file.
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!(path = %self.path.display(), error = %e, "the WAV file could not be finished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{AudioSource, ToneSource, WavFileSource};

    async fn read_all(mut src: WavFileSource) -> Vec<AudioFrame> {
        let mut frames = Vec::new();
        for _ in 0..10_000 {
            match src.next_frame().await.unwrap() {
                Some(f) => frames.push(f),
                None => break,
            }
        }
        frames
    }

    #[tokio::test]
    async fn round_trip_through_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let mut tone = ToneSource::new(AudioFormat::STEREO_48K, 440.0, 0.5)
            .unwrap()
            .paced(false)
            .limit(Duration::from_millis(500));
        let mut sink = WavFileSink::create(&path, AudioFormat::STEREO_48K).unwrap();
        let mut written = Vec::new();
        while let Some(f) = tone.next_frame().await.unwrap() {
            written.extend_from_slice(f.samples());
            sink.write(f).await.unwrap();
        }
        sink.close().await.unwrap();
        assert_eq!(sink.duration_written(), Duration::from_millis(500));
        // Writing after close fails cleanly.
        let late = AudioFrame::silence(AudioFormat::STEREO_48K, 10, Duration::ZERO).unwrap();
        assert!(matches!(sink.write(late).await, Err(MediaError::Closed)));

        let src = WavFileSource::open(&path).unwrap().paced(false);
        assert_eq!(src.format(), AudioFormat::STEREO_48K);
        assert_eq!(src.duration(), Duration::from_millis(500));
        let frames = read_all(src).await;
        assert_eq!(frames.len(), 25);
        assert_eq!(frames[1].timestamp(), Duration::from_millis(20));
        let read: Vec<i16> = frames.iter().flat_map(|f| f.samples().iter().copied()).collect();
        assert_eq!(read, written);
    }

    #[tokio::test]
    async fn converts_on_write_and_loops_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conv.wav");
        let mut sink = WavFileSink::create(&path, AudioFormat::MONO_16K).unwrap();
        let mut tone = ToneSource::new(AudioFormat::STEREO_48K, 440.0, 0.5)
            .unwrap()
            .paced(false)
            .limit(Duration::from_millis(100));
        while let Some(f) = tone.next_frame().await.unwrap() {
            sink.write(f).await.unwrap();
        }
        sink.close().await.unwrap();
        let src = WavFileSource::open(&path).unwrap();
        assert_eq!(src.format(), AudioFormat::MONO_16K);
        assert_eq!(src.duration(), Duration::from_millis(100));
        // Looping: 100 ms file, read 12 frames of 20 ms = 240 ms without an end.
        let mut src = src.paced(false).looping(true);
        for _ in 0..12 {
            let f = src.next_frame().await.unwrap().unwrap();
            assert_eq!(f.samples_per_channel(), 320);
        }
    }

    #[tokio::test]
    async fn bad_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.wav");
        std::fs::write(&garbage, b"RIFF\x10\x00\x00\x00WAVEnot really").unwrap();
        let err = WavFileSource::open(&garbage).unwrap_err();
        assert!(matches!(err, MediaError::Wav { .. }), "{err:?}");
        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        assert!(WavFileSource::open(&empty).is_err());
        assert!(matches!(
            WavFileSource::open(dir.path().join("missing.wav")),
            Err(MediaError::Io(_))
        ));
        assert!(
            WavFileSink::create(dir.path().join("x.wav"), AudioFormat::new(16_000, 0)).is_err()
        );
        // A valid file with no samples ends at once, even when looping.
        let silent = dir.path().join("silent.wav");
        let mut sink = WavFileSink::create(&silent, AudioFormat::MONO_16K).unwrap();
        sink.close().await.unwrap();
        let mut src = WavFileSource::open(&silent).unwrap().looping(true).paced(false);
        assert!(src.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reads_other_encodings() {
        let dir = tempfile::tempdir().unwrap();
        for (bits, fmt) in [
            (8, hound::SampleFormat::Int),
            (24, hound::SampleFormat::Int),
            (32, hound::SampleFormat::Float),
        ] {
            let path = dir.path().join(format!("enc{bits}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8_000,
                bits_per_sample: bits,
                sample_format: fmt,
            };
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            for i in 0..160 {
                let half = i < 80; // half full-scale positive, half negative
                match (fmt, bits) {
                    (hound::SampleFormat::Float, _) => {
                        w.write_sample(if half { 0.5f32 } else { -0.5 }).unwrap()
                    }
                    (_, 8) => w.write_sample(if half { 64i8 } else { -64 }).unwrap(),
                    _ => w.write_sample(if half { 1 << 22 } else { -(1 << 22) }).unwrap(),
                }
            }
            w.finalize().unwrap();
            let mut src = WavFileSource::open(&path).unwrap().paced(false);
            let f = src.next_frame().await.unwrap().unwrap();
            assert_eq!(f.samples_per_channel(), 160);
            assert!((i32::from(f.samples()[0]) - 16_384).abs() <= 1, "{bits}: {}", f.samples()[0]);
            assert!(
                (i32::from(f.samples()[100]) + 16_384).abs() <= 1,
                "{bits}: {}",
                f.samples()[100]
            );
        }
    }
}
