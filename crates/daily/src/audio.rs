//! Microphone audio recorded before the bot is ready, to be sent as RTVI `raw-audio-batch`
//! messages (Pipecat's `bufferLocalAudioUntilBotReady`).
//!
//! While the bot is not yet listening, what the user says would be lost. With the option on,
//! the transport records the microphone from the join until `client-ready` is released, and
//! sends the recording just before `client-ready`, in the JS transport's format: 16 kHz mono
//! PCM16 in 512-sample chunks, base64, up to 10 chunks per message (fewer when the room's
//! message size limit needs it).

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use pipecat_media::{AudioConverter, AudioFormat, AudioFrame, MediaError};
use pipecat_rtvi::{ClientEnvelope, ClientMessage, RawAudioBatch};

/// The format of buffered audio: 16 kHz mono.
pub const BUFFER_FORMAT: AudioFormat = AudioFormat::MONO_16K;
/// Samples per chunk (32 ms at 16 kHz), as the JS transport.
pub const CHUNK_SAMPLES: usize = 512;
/// Chunks per `raw-audio-batch` message at most, as the JS transport.
pub const CHUNKS_PER_MESSAGE: usize = 10;
/// Default limit of the recording; older audio is dropped beyond it.
pub const DEFAULT_MAX_BUFFERED: Duration = Duration::from_secs(10);

/// A bounded recording of the microphone, turned into `raw-audio-batch` messages.
///
/// ```
/// use pipecat_daily::audio::PreReadyBuffer;
/// use pipecat_media::{AudioFormat, AudioFrame};
/// use std::time::Duration;
///
/// let mut buffer = PreReadyBuffer::new(Duration::from_secs(10))?;
/// for i in 0..50 {
///     // One second of 16 kHz mono in 20 ms frames.
///     buffer.push(AudioFrame::new(vec![100; 320], AudioFormat::MONO_16K, Duration::from_millis(20 * i))?)?;
/// }
/// let messages = buffer.into_messages(64 * 1024);
/// assert_eq!(messages.len(), 4); // 32 chunks of 512 samples (the tail is padded), 10 per message
/// assert!(messages[0].contains("\"type\":\"raw-audio-batch\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PreReadyBuffer {
    converter: AudioConverter,
    pending: Vec<i16>,
    chunks: VecDeque<Vec<i16>>,
    max_chunks: usize,
    dropped_chunks: usize,
}

impl PreReadyBuffer {
    /// A recording keeping at most `max` of audio (the most recent).
    ///
    /// # Errors
    /// Never in practice ([`MediaError`] if the fixed buffer format were invalid).
    pub fn new(max: Duration) -> Result<Self, MediaError> {
        let max_chunks = BUFFER_FORMAT.frames_in(max).div_ceil(CHUNK_SAMPLES).max(1);
        Ok(PreReadyBuffer {
            converter: AudioConverter::new(BUFFER_FORMAT)?,
            pending: Vec::with_capacity(CHUNK_SAMPLES),
            chunks: VecDeque::new(),
            max_chunks,
            dropped_chunks: 0,
        })
    }

    /// Records one microphone frame (any format; converted to 16 kHz mono).
    ///
    /// # Errors
    /// A [`MediaError`] from the converter.
    pub fn push(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        if let Some(frame) = self.converter.process(frame)? {
            self.append(frame.samples());
        }
        Ok(())
    }

    fn append(&mut self, samples: &[i16]) {
        for &sample in samples {
            self.pending.push(sample);
            if self.pending.len() == CHUNK_SAMPLES {
                let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_SAMPLES));
                if self.chunks.len() == self.max_chunks {
                    self.chunks.pop_front();
                    self.dropped_chunks += 1;
                }
                self.chunks.push_back(chunk);
            }
        }
    }

    /// Recorded audio, in whole and partial chunks.
    pub fn buffered(&self) -> Duration {
        BUFFER_FORMAT.duration_of_samples(self.chunks.len() * CHUNK_SAMPLES + self.pending.len())
    }

    /// Chunks dropped because the recording was full.
    pub fn dropped_chunks(&self) -> usize {
        self.dropped_chunks
    }

    /// Ends the recording: the `raw-audio-batch` messages (JSON text, each with a fresh id), in
    /// order, each at most `max_message_size` bytes when a single chunk fits. The last partial
    /// chunk is padded with silence.
    pub fn into_messages(mut self, max_message_size: usize) -> Vec<String> {
        if let Ok(Some(tail)) = self.converter.finish() {
            self.append(tail.samples());
        }
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(CHUNK_SAMPLES, 0);
            if self.chunks.len() == self.max_chunks {
                self.chunks.pop_front();
            }
            self.chunks.push_back(last);
        }
        let encoded: Vec<String> = self.chunks.iter().map(|c| encode_chunk(c)).collect();
        let mut messages = Vec::new();
        let mut start = 0;
        while start < encoded.len() {
            let mut count = CHUNKS_PER_MESSAGE.min(encoded.len() - start);
            loop {
                let json = batch_json(&encoded[start..start + count]);
                if json.len() <= max_message_size || count == 1 {
                    messages.push(json);
                    break;
                }
                count -= 1;
            }
            start += count;
        }
        messages
    }
}

fn encode_chunk(samples: &[i16]) -> String {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn batch_json(chunks: &[String]) -> String {
    let message = ClientEnvelope::new(ClientMessage::RawAudioBatch(RawAudioBatch {
        base64_audio_batch: chunks.to_vec(),
        sample_rate: BUFFER_FORMAT.sample_rate,
        num_channels: BUFFER_FORMAT.channels,
    }));
    // Strings and integers always encode.
    message.to_json().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_rtvi::ClientEnvelope;

    fn frame(samples: usize, format: AudioFormat, value: i16) -> AudioFrame {
        AudioFrame::new(vec![value; samples * usize::from(format.channels)], format, Duration::ZERO)
            .unwrap()
    }

    #[test]
    fn chunks_and_batches_like_the_js_transport() {
        let mut b = PreReadyBuffer::new(Duration::from_secs(10)).unwrap();
        // 25 chunks exactly.
        for _ in 0..25 {
            b.push(frame(512, AudioFormat::MONO_16K, 7)).unwrap();
        }
        assert_eq!(b.buffered(), Duration::from_millis(800));
        let messages = b.into_messages(usize::MAX);
        assert_eq!(messages.len(), 3);
        let decoded: Vec<_> = messages.iter().map(|m| ClientEnvelope::parse(m).unwrap()).collect();
        let sizes: Vec<usize> = decoded
            .iter()
            .map(|e| match &e.message {
                ClientMessage::RawAudioBatch(batch) => {
                    assert_eq!((batch.sample_rate, batch.num_channels), (16_000, 1));
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&batch.base64_audio_batch[0])
                        .unwrap();
                    assert_eq!(bytes.len(), CHUNK_SAMPLES * 2);
                    assert_eq!(i16::from_le_bytes([bytes[0], bytes[1]]), 7);
                    batch.base64_audio_batch.len()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [10, 10, 5]);
        assert_ne!(decoded[0].id, decoded[1].id);
    }

    #[test]
    fn converts_other_formats_and_pads_the_tail() {
        let mut b = PreReadyBuffer::new(Duration::from_secs(10)).unwrap();
        // 100 ms of 48 kHz stereo.
        for _ in 0..5 {
            b.push(frame(960, AudioFormat::STEREO_48K, 1000)).unwrap();
        }
        let messages = b.into_messages(usize::MAX);
        assert_eq!(messages.len(), 1);
        let ClientMessage::RawAudioBatch(batch) =
            ClientEnvelope::parse(&messages[0]).unwrap().message
        else {
            panic!()
        };
        // 1600 samples at 16 kHz (plus resampler tail) in 512-sample chunks.
        assert!(
            (3..=5).contains(&batch.base64_audio_batch.len()),
            "{}",
            batch.base64_audio_batch.len()
        );
    }

    #[test]
    fn bounded_to_the_most_recent_audio() {
        let mut b = PreReadyBuffer::new(Duration::from_millis(100)).unwrap();
        for _ in 0..20 {
            b.push(frame(512, AudioFormat::MONO_16K, 1)).unwrap();
        }
        // 100 ms = 1600 samples = 4 chunks (rounded up).
        assert_eq!(b.buffered(), BUFFER_FORMAT.duration_of_samples(4 * CHUNK_SAMPLES));
        assert_eq!(b.dropped_chunks(), 16);
    }

    #[test]
    fn respects_the_message_size_limit() {
        let mut b = PreReadyBuffer::new(Duration::from_secs(10)).unwrap();
        for _ in 0..10 {
            b.push(frame(512, AudioFormat::MONO_16K, 3)).unwrap();
        }
        // One chunk is ~1.4 KB of base64: 4 KB fits two.
        let messages = b.into_messages(4096);
        assert_eq!(messages.len(), 5);
        assert!(messages.iter().all(|m| m.len() <= 4096));
    }

    #[test]
    fn empty_recording_sends_nothing() {
        assert!(
            PreReadyBuffer::new(Duration::from_secs(1)).unwrap().into_messages(1000).is_empty()
        );
    }
}
