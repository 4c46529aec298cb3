//! A source whose inner source can be replaced while it runs, with mute.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::AudioSource;
use crate::convert::AudioConverter;
use crate::error::MediaError;
use crate::frame::{AudioFormat, AudioFrame};

/// A source in a fixed output format whose inner source (a microphone, a file...) can be
/// swapped at any time through its [`SourceSwitch`], without the consumer noticing: frames
/// keep their format and a continuous timeline.
///
/// **Mute produces silence**: while muted, frames keep flowing at the same pace with every
/// sample zero, so a transport's timing and the bot's VAD see a live but silent microphone
/// (like a muted WebRTC track). The inner source keeps being read so a device's buffer does
/// not fill up.
///
/// When the inner source ends, this source ends too. A replacement that arrives while a
/// frame is awaited takes effect at once (the old source is dropped).
///
/// ```
/// use pipecat_media::{AudioFormat, AudioSource, SilenceSource, SwitchableSource, ToneSource};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), pipecat_media::MediaError> {
/// let tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.5)?.paced(false);
/// let (mut mic, switch) = SwitchableSource::new(Box::new(tone), AudioFormat::MONO_16K)?;
/// assert!(mic.next_frame().await?.unwrap().rms() > 0.1);
/// switch.set_muted(true);
/// assert_eq!(mic.next_frame().await?.unwrap().rms(), 0.0);
/// switch.set_muted(false);
/// switch.replace(Box::new(SilenceSource::new(AudioFormat::STEREO_48K)?.paced(false)))?;
/// let frame = mic.next_frame().await?.unwrap();
/// assert_eq!(frame.format(), AudioFormat::MONO_16K);
/// # Ok(()) }
/// ```
pub struct SwitchableSource {
    inner: Box<dyn AudioSource>,
    converter: AudioConverter,
    replacements: mpsc::UnboundedReceiver<Box<dyn AudioSource>>,
    control: Arc<Control>,
    next_timestamp: Duration,
}

enum Step {
    Replace(Box<dyn AudioSource>),
    Frame(Result<Option<AudioFrame>, MediaError>),
}

#[derive(Debug, Default)]
struct Control {
    muted: AtomicBool,
}

/// Controls a [`SwitchableSource`]: replace its inner source, mute it. Cloneable, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct SourceSwitch {
    replacements: mpsc::UnboundedSender<Box<dyn AudioSource>>,
    control: Arc<Control>,
}

impl std::fmt::Debug for SwitchableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchableSource")
            .field("format", &self.converter.target())
            .field("inner_format", &self.inner.format())
            .field("muted", &self.control.muted.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SwitchableSource {
    /// Wraps `initial`, converting everything it (and its replacements) produce to `output`.
    ///
    /// # Errors
    /// [`MediaError::InvalidFormat`] if `output` is not a valid format.
    pub fn new(
        initial: Box<dyn AudioSource>,
        output: AudioFormat,
    ) -> Result<(Self, SourceSwitch), MediaError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let control = Arc::new(Control::default());
        let source = Self {
            inner: initial,
            converter: AudioConverter::new(output)?,
            replacements: rx,
            control: control.clone(),
            next_timestamp: Duration::ZERO,
        };
        Ok((source, SourceSwitch { replacements: tx, control }))
    }

    /// Applies pending replacements without waiting.
    fn take_replacements(&mut self) {
        while let Ok(next) = self.replacements.try_recv() {
            self.install(next);
        }
    }

    fn install(&mut self, next: Box<dyn AudioSource>) {
        tracing::debug!(from = %self.inner.format(), to = %next.format(), "switching audio source");
        self.inner = next;
        // The old source's buffered tail belongs to a device that is gone.
        self.converter.reset();
    }
}

#[async_trait]
impl AudioSource for SwitchableSource {
    fn format(&self) -> AudioFormat {
        self.converter.target()
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        self.take_replacements();
        loop {
            let step = tokio::select! {
                biased;
                Some(next) = self.replacements.recv() => Step::Replace(next),
                result = self.inner.next_frame() => Step::Frame(result),
            };
            let result = match step {
                Step::Replace(next) => {
                    self.install(next);
                    continue;
                }
                Step::Frame(result) => result,
            };
            let converted = match result? {
                Some(frame) => self.converter.process(frame)?,
                // End of the inner stream: flush what the resampler still holds.
                None => match self.converter.finish()? {
                    Some(tail) => Some(tail),
                    None => return Ok(None),
                },
            };
            // The converter may need more input before producing anything.
            let Some(mut frame) = converted else { continue };
            if self.control.muted.load(Ordering::Relaxed) {
                frame.samples_mut().fill(0);
            }
            frame.set_timestamp(self.next_timestamp);
            self.next_timestamp += frame.duration();
            return Ok(Some(frame));
        }
    }
}

impl SourceSwitch {
    /// Replaces the inner source; takes effect before the next frame.
    ///
    /// # Errors
    /// [`MediaError::Closed`] if the [`SwitchableSource`] was dropped.
    pub fn replace(&self, source: Box<dyn AudioSource>) -> Result<(), MediaError> {
        self.replacements.send(source).map_err(|_| MediaError::Closed)
    }

    /// Mutes (frames become silence) or unmutes.
    pub fn set_muted(&self, muted: bool) {
        self.control.muted.store(muted, Ordering::Relaxed);
    }

    /// True while muted.
    pub fn is_muted(&self) -> bool {
        self.control.muted.load(Ordering::Relaxed)
    }

    /// True once the [`SwitchableSource`] was dropped.
    pub fn is_closed(&self) -> bool {
        self.replacements.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{MemorySource, SilenceSource, ToneSource};

    #[tokio::test]
    async fn switching_keeps_format_and_timeline() {
        let tone = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.5).unwrap().paced(false);
        let (mut s, switch) = SwitchableSource::new(Box::new(tone), AudioFormat::MONO_16K).unwrap();
        let a = s.next_frame().await.unwrap().unwrap();
        assert!(a.rms() > 0.3);
        let silence = SilenceSource::new(AudioFormat::STEREO_48K).unwrap().paced(false);
        switch.replace(Box::new(silence)).unwrap();
        let mut end = a.end_timestamp();
        for _ in 0..10 {
            let f = s.next_frame().await.unwrap().unwrap();
            assert_eq!(f.format(), AudioFormat::MONO_16K);
            assert_eq!(f.timestamp(), end);
            assert_eq!(f.rms(), 0.0);
            end = f.end_timestamp();
        }
        drop(s);
        assert!(switch.is_closed());
        assert!(
            switch.replace(Box::new(SilenceSource::new(AudioFormat::MONO_16K).unwrap())).is_err()
        );
    }

    #[tokio::test]
    async fn replacement_unblocks_a_waiting_read() {
        // The first source never produces anything: a dead device.
        let (dead, _keep_open) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
        let (mut s, switch) = SwitchableSource::new(Box::new(dead), AudioFormat::MONO_16K).unwrap();
        let reader = tokio::spawn(async move { s.next_frame().await.map(|f| f.map(|f| f.rms())) });
        tokio::task::yield_now().await;
        let tone = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.5).unwrap().paced(false);
        switch.replace(Box::new(tone)).unwrap();
        let rms = reader.await.unwrap().unwrap().unwrap();
        assert!(rms > 0.3);
    }

    #[tokio::test]
    async fn mute_gives_silence_and_inner_end_ends() {
        let tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.5)
            .unwrap()
            .paced(false)
            .limit(Duration::from_millis(200));
        let (mut s, switch) = SwitchableSource::new(Box::new(tone), AudioFormat::MONO_16K).unwrap();
        switch.set_muted(true);
        assert!(switch.is_muted());
        let mut frames = 0;
        let mut total = 0;
        for _ in 0..100 {
            match s.next_frame().await.unwrap() {
                Some(f) => {
                    assert_eq!(f.rms(), 0.0);
                    frames += 1;
                    total += f.samples_per_channel();
                }
                None => break,
            }
        }
        assert!(frames > 0);
        assert_eq!(total, 3200); // 200 ms at 16 kHz, tail included
    }
}
