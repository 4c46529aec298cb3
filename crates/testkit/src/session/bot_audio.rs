//! Bot audio: the client's audio echoed back, tones and queued audio, and the pacer that sends
//! it in chunks between `bot-started-speaking` and `bot-stopped-speaking`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use pipecat_rtvi::ServerMessage;

use super::{Outbound, SessionCore};
use crate::audio::{self, Resampler};
use crate::error::TestkitError;
use crate::util::lock;

/// Echo stays open this long after the last non-silent user audio.
const ECHO_HANGOVER: Duration = Duration::from_millis(500);
/// `bot-stopped-speaking` after this long without speech audio (`BOT_VAD_STOP_SECS`).
const BOT_STOP_SPEAKING: Duration = Duration::from_millis(350);
/// Longest tone the `tone` command plays.
pub(super) const MAX_TONE: Duration = Duration::from_secs(10);

impl SessionCore {
    /// Queues bot audio (mono PCM16 at `sample_rate`), resampled to the output rate.
    pub(super) fn queue_audio(
        &self,
        samples: &[i16],
        sample_rate: u32,
    ) -> Result<(), TestkitError> {
        if self.is_closing() {
            return Err(TestkitError::SessionEnded);
        }
        let out = Resampler::new(sample_rate, self.plan.sample_rate).process(samples);
        lock(&self.audio_out).push(&out);
        Ok(())
    }

    /// Queues a tone; returns its length in samples at the output rate.
    pub(super) fn play_tone(&self, duration: Duration, hz: f64) -> Result<usize, TestkitError> {
        let pcm = audio::tone(duration.min(MAX_TONE), hz, self.plan.sample_rate);
        self.queue_audio(&pcm, self.plan.sample_rate)?;
        Ok(pcm.len())
    }

    pub(super) fn handle_raw_audio(&self, chunks: &[String], sample_rate: u32, channels: u16) {
        for chunk in chunks {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(chunk) {
                self.handle_audio(&audio::from_le_bytes(&bytes), sample_rate, channels);
            }
        }
    }

    /// Handles client audio: records it and, with echo on, queues it back.
    pub(super) fn handle_audio(&self, samples: &[i16], sample_rate: u32, channels: u16) {
        if !(1_000..=384_000).contains(&sample_rate) || samples.is_empty() {
            return;
        }
        let channels = channels.max(1);
        self.recorder.audio(&self.id, samples, sample_rate, channels);
        if !self.echo.load(Ordering::Relaxed) || self.is_closing() {
            return;
        }
        let mono = audio::to_mono(samples, channels);
        let now = Instant::now();
        let out = {
            let mut state = lock(&self.state);
            if !audio::is_silence(&mono) {
                state.echo_open_until = Some(now + ECHO_HANGOVER);
            }
            if state.echo_open_until.is_none_or(|until| now >= until) {
                return;
            }
            let resampler = state
                .resampler
                .get_or_insert_with(|| Resampler::new(sample_rate, self.plan.sample_rate));
            if resampler.input_rate() != sample_rate {
                *resampler = Resampler::new(sample_rate, self.plan.sample_rate);
            }
            resampler.process(&mono)
        };
        lock(&self.audio_out).push(&out);
    }

    pub(super) async fn pace_audio(self: Arc<Self>) {
        let chunk_len =
            (u128::from(self.plan.sample_rate) * self.plan.chunk.as_millis() / 1_000) as usize;
        let mut ticker = tokio::time::interval(self.plan.chunk);
        // Late ticks (a busy machine) are made up at once: the bot keeps real time on
        // average, so its echo never falls behind what it was sent.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            ticker.tick().await;
            if self.is_closing() {
                // No more bot audio once the session is ending.
                continue;
            }
            let chunk = lock(&self.audio_out).take_chunk(chunk_len);
            let now = Instant::now();
            match chunk {
                Some(chunk) => {
                    let started = {
                        let mut state = lock(&self.state);
                        state.last_speech = Some(now);
                        !std::mem::replace(&mut state.speaking, true)
                    };
                    if started {
                        self.emit(ServerMessage::BotStartedSpeaking);
                    }
                    let _ = self.push(Outbound::Audio(chunk));
                }
                None => {
                    let stopped = {
                        let mut state = lock(&self.state);
                        let quiet = state
                            .last_speech
                            .is_none_or(|last| now.duration_since(last) >= BOT_STOP_SPEAKING);
                        if state.speaking && quiet {
                            state.speaking = false;
                            true
                        } else {
                            false
                        }
                    };
                    if stopped {
                        self.emit(ServerMessage::BotStoppedSpeaking);
                    }
                    if self.plan.auto_silence {
                        let _ = self.push(Outbound::Audio(vec![0; chunk_len]));
                    }
                }
            }
        }
    }
}
