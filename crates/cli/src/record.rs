//! `--record DIR`: a stereo WAV of the conversation (user left, bot right), a JSONL log of
//! every RTVI message both ways, and a JSONL copy of the client events.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use pipecat::media::{AudioConverter, AudioFormat, AudioFrame};
use serde_json::{Value, json};

use crate::clock::{Clock, now_rfc3339};
use crate::error::CliError;

/// The sample rate of the recording (pipecat's bot output rate).
pub(crate) const RECORDING_RATE: u32 = 24_000;

/// The file names inside the recording directory.
pub(crate) const WAV_FILE: &str = "session.wav";
/// The RTVI message log.
pub(crate) const MESSAGES_FILE: &str = "messages.jsonl";
/// The client event log.
pub(crate) const EVENTS_FILE: &str = "events.jsonl";

/// Everything `--record` writes.
pub(crate) struct Recording {
    /// The stereo WAV.
    pub(crate) audio: StereoRecorder,
    /// The RTVI messages.
    pub(crate) messages: JsonlLog,
    /// The client events.
    pub(crate) events: JsonlLog,
    dir: PathBuf,
}

impl Recording {
    /// Creates `dir` (and parents) and the three files in it.
    pub(crate) fn create(dir: &Path) -> Result<Self, CliError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError::usage(format!("cannot create the recording directory {}: {e}", dir.display()))
        })?;
        Ok(Recording {
            audio: StereoRecorder::create(&dir.join(WAV_FILE))?,
            messages: JsonlLog::create(&dir.join(MESSAGES_FILE))?,
            events: JsonlLog::create(&dir.join(EVENTS_FILE))?,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes everything out and closes the WAV.
    pub(crate) fn finish(&self) -> Result<(), CliError> {
        self.messages.flush()?;
        self.events.flush()?;
        self.audio.finish()
    }
}

/// Which side of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// What the user sent (left channel).
    User = 0,
    /// What the bot sent (right channel).
    Bot = 1,
}

/// Direction of an RTVI message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client to bot.
    Out,
    /// Bot to client.
    In,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

/// A JSON-lines file; each write is one line, flushed at once (a killed process leaves a
/// usable file).
pub(crate) struct JsonlLog {
    file: Mutex<BufWriter<File>>,
    path: PathBuf,
}

impl JsonlLog {
    /// Creates (or truncates) `path`.
    pub(crate) fn create(path: &Path) -> Result<Self, CliError> {
        let file = File::create(path)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", path.display())))?;
        Ok(JsonlLog { file: Mutex::new(BufWriter::new(file)), path: path.to_path_buf() })
    }

    /// Appends one line.
    pub(crate) fn write(&self, value: &Value) {
        let mut file = lock(&self.file);
        // A full disk should not end the session; the final flush reports it.
        let _ = serde_json::to_writer(&mut *file, value);
        let _ = file.write_all(b"\n");
        let _ = file.flush();
    }

    /// Logs one RTVI message: `{"timestamp", "elapsed_ms", "direction", "type", "message"}`;
    /// text that is not JSON is kept as a string under `raw`.
    pub(crate) fn message(&self, clock: &Clock, direction: Direction, text: &str) {
        let mut line = json!({
            "timestamp": now_rfc3339(),
            "elapsed_ms": clock.elapsed_ms(),
            "direction": direction.as_str(),
        });
        match serde_json::from_str::<Value>(text) {
            Ok(message) => {
                line["type"] = message.get("type").cloned().unwrap_or(Value::Null);
                line["message"] = message;
            }
            Err(_) => line["raw"] = Value::String(text.to_owned()),
        }
        self.write(&line);
    }

    fn flush(&self) -> Result<(), CliError> {
        lock(&self.file)
            .flush()
            .map_err(|e| CliError::local(format!("cannot write {}: {e}", self.path.display())))
    }
}

/// Audio further behind the clock than this is padded with silence; closer, it is appended
/// (so the jitter of frame delivery does not cut the audio into pieces).
const SLACK_MS: u64 = 120;

/// A stereo WAV of the conversation, placed on the wall clock: each side's audio is written
/// where it happened, silence fills the gaps, and the two sides stay aligned.
pub(crate) struct StereoRecorder {
    state: Mutex<RecorderState>,
    path: PathBuf,
}

struct RecorderState {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    start: Instant,
    sides: [SideBuffer; 2],
    /// Sample frames written to the file.
    written: u64,
    error: Option<String>,
}

struct SideBuffer {
    converter: Option<AudioConverter>,
    pending: VecDeque<i16>,
}

impl SideBuffer {
    /// The position after the last pending sample.
    fn end(&self, written: u64) -> u64 {
        written + self.pending.len() as u64
    }
}

impl StereoRecorder {
    /// Creates the WAV file (24 kHz, 16-bit, stereo).
    pub(crate) fn create(path: &Path) -> Result<Self, CliError> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: RECORDING_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", path.display())))?;
        let side = || SideBuffer {
            converter: AudioConverter::new(AudioFormat::new(RECORDING_RATE, 1)).ok(),
            pending: VecDeque::new(),
        };
        Ok(StereoRecorder {
            state: Mutex::new(RecorderState {
                writer: Some(writer),
                start: Instant::now(),
                sides: [side(), side()],
                written: 0,
                error: None,
            }),
            path: path.to_path_buf(),
        })
    }

    /// Adds audio of one side, as it happens.
    pub(crate) fn push(&self, side: Side, frame: &AudioFrame) {
        let mut state = lock(&self.state);
        if state.writer.is_none() {
            return;
        }
        let now = state.now_pos();
        let written = state.written;
        let buffer = &mut state.sides[side as usize];
        let Some(converted) = buffer.converter.as_mut().and_then(|c| c.process(frame.clone()).ok())
        else {
            return;
        };
        let Some(converted) = converted else { return };
        let end = buffer.end(written);
        if now > end + slack() {
            // A gap: this side was silent until now.
            let gap = usize::try_from(now - end).unwrap_or(0);
            buffer.pending.extend(std::iter::repeat_n(0, gap));
        }
        buffer.pending.extend(converted.samples());
        state.drain(now);
    }

    /// Pads both sides to the same length, writes everything and finalises the file.
    pub(crate) fn finish(&self) -> Result<(), CliError> {
        let mut state = lock(&self.state);
        let written = state.written;
        let longest = state.sides.iter().map(|s| s.end(written)).max().unwrap_or(written);
        for side in &mut state.sides {
            let end = side.end(written);
            side.pending
                .extend(std::iter::repeat_n(0, usize::try_from(longest - end).unwrap_or(0)));
        }
        state.write_ready();
        if let Some(writer) = state.writer.take()
            && let Err(e) = writer.finalize()
        {
            state.error.get_or_insert_with(|| e.to_string());
        }
        match state.error.take() {
            Some(e) => Err(CliError::local(format!("cannot write {}: {e}", self.path.display()))),
            None => Ok(()),
        }
    }
}

fn slack() -> u64 {
    u64::from(RECORDING_RATE) * SLACK_MS / 1000
}

impl RecorderState {
    /// The wall clock as a sample position.
    fn now_pos(&self) -> u64 {
        let micros = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX / 2);
        micros.saturating_mul(u64::from(RECORDING_RATE)) / 1_000_000
    }

    /// Pads a side that fell behind the clock with silence, then writes what both sides
    /// have.
    fn drain(&mut self, now: u64) {
        let written = self.written;
        let horizon = now.saturating_sub(slack());
        for side in &mut self.sides {
            let end = side.end(written);
            if end < horizon {
                side.pending
                    .extend(std::iter::repeat_n(0, usize::try_from(horizon - end).unwrap_or(0)));
            }
        }
        self.write_ready();
    }

    /// Writes the frames both sides have.
    fn write_ready(&mut self) {
        let ready = self.sides[0].pending.len().min(self.sides[1].pending.len());
        if ready == 0 {
            return;
        }
        let Some(writer) = self.writer.as_mut() else { return };
        let [left, right] = &mut self.sides;
        for (l, r) in left.pending.drain(..ready).zip(right.pending.drain(..ready)) {
            if let Err(e) = writer.write_sample(l).and_then(|()| writer.write_sample(r)) {
                self.error.get_or_insert_with(|| e.to_string());
                break;
            }
        }
        self.written += ready as u64;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data: keep recording.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn sides_are_aligned_and_padded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        let recorder = StereoRecorder::create(&path).unwrap();
        let user = AudioFrame::new(vec![1000; 320], AudioFormat::MONO_16K, Duration::ZERO).unwrap();
        let bot = AudioFrame::new(vec![-1000; 480], AudioFormat::MONO_24K, Duration::ZERO).unwrap();
        for _ in 0..5 {
            recorder.push(Side::User, &user);
        }
        recorder.push(Side::Bot, &bot);
        recorder.finish().unwrap();
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.spec().sample_rate, RECORDING_RATE);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples.len() % 2, 0);
        // About 100 ms of user audio (resampling keeps a little back until the end).
        let frames = samples.len() / 2;
        assert!((2000..=2400 + 480).contains(&frames), "{frames} frames");
        assert!(samples.iter().step_by(2).any(|&s| s > 500), "user audio on the left");
        assert!(samples.iter().skip(1).step_by(2).any(|&s| s < -500), "bot audio on the right");
    }

    #[test]
    fn messages_are_logged_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let log = JsonlLog::create(&path).unwrap();
        let clock = Clock::start();
        log.message(
            &clock,
            Direction::Out,
            r#"{"label":"rtvi-ai","type":"client-ready","id":"1"}"#,
        );
        log.message(&clock, Direction::In, "not json");
        log.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["direction"], "out");
        assert_eq!(lines[0]["type"], "client-ready");
        assert_eq!(lines[0]["message"]["id"], "1");
        assert_eq!(lines[1]["direction"], "in");
        assert_eq!(lines[1]["raw"], "not json");
    }
}
