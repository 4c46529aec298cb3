//! What the CLI tests share: running the built `pipecat` binary with a time limit, and
//! reading what it wrote.

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The limit of one CLI run (a loaded machine builds and runs much slower than a quiet one).
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a run produced.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The exit code (`-1` when killed by a signal).
    pub(crate) fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Panics with the output unless the exit code is `code`.
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "exit code {} instead of {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.code(),
            self.stdout,
            self.stderr
        );
        self
    }

    /// Every stdout line parsed as JSON (panics on a line that is not).
    pub(crate) fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", self.stderr))
            })
            .collect()
    }
}

/// Kills the child if the test panics or returns early.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Runs `pipecat <args>`; kills it after `limit`.
pub(crate) fn run_cli_within(args: &[&str], limit: Duration) -> Run {
    run_cli_with_env(args, &[], limit)
}

/// Runs `pipecat <args>` with these environment variables set (`Some`) or removed (`None`)
/// on top of the test's own; kills it after `limit`.
pub(crate) fn run_cli_with_env(
    args: &[&str],
    env: &[(&str, Option<&str>)],
    limit: Duration,
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipecat"));
    command.args(args).env("RUST_LOG", "error");
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pipecat binary starts");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let mut guard = KillOnDrop(Some(child));
    let deadline = Instant::now() + limit;
    let status = loop {
        let child = guard.0.as_mut().expect("child");
        if let Some(status) = child.try_wait().expect("wait") {
            guard.0 = None;
            break status;
        }
        if Instant::now() >= deadline {
            drop(guard);
            panic!(
                "pipecat {args:?} did not finish within {limit:?}; stdout:\n{}",
                stdout.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `pipecat <args>` within [`RUN_LIMIT`].
pub(crate) fn run_cli(args: &[&str]) -> Run {
    run_cli_within(args, RUN_LIMIT)
}

/// The events of a `--json` run with `type == kind`.
pub(crate) fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// Checks the shape every `--json` line has: a kebab-case `type` and an RFC 3339 UTC
/// `timestamp`.
pub(crate) fn assert_json_shape(lines: &[Value]) {
    assert!(!lines.is_empty(), "no JSON lines");
    for line in lines {
        let kind = line["type"].as_str().unwrap_or_else(|| panic!("no type: {line}"));
        assert!(
            !kind.is_empty() && kind.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "type {kind:?} is not kebab-case"
        );
        let ts = line["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {line}"));
        assert!(ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T", "timestamp {ts:?}");
        assert!(line["elapsed_ms"].is_u64(), "no elapsed_ms: {line}");
    }
}

/// The states of the `transport-state-changed` events, in order.
pub(crate) fn states(lines: &[Value]) -> Vec<String> {
    of_type(lines, "transport-state-changed")
        .iter()
        .map(|l| l["state"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The final `session-summary` line.
pub(crate) fn summary(lines: &[Value]) -> &Value {
    lines.iter().rev().find(|l| l["type"] == "session-summary").expect("a session-summary line")
}

/// A stereo recording: (left, right) samples.
pub(crate) fn read_stereo(path: &Path) -> (Vec<i16>, Vec<i16>, u32) {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a readable WAV: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.channels, 2, "the recording is stereo");
    assert_eq!(spec.bits_per_sample, 16);
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.expect("a sample")).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right, spec.sample_rate)
}

/// The peak absolute sample.
pub(crate) fn peak(samples: &[i16]) -> i32 {
    samples.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0)
}

/// The JSON lines of a file.
pub(crate) fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Checks a `--record` directory: the stereo WAV, and RTVI messages both ways including the
/// given types. Returns the left (user) and right (bot) channels.
pub(crate) fn check_recording(
    dir: &Path,
    out_types: &[&str],
    in_types: &[&str],
) -> (Vec<i16>, Vec<i16>) {
    let (left, right, rate) = read_stereo(&dir.join("session.wav"));
    assert_eq!(rate, 24_000);
    assert_eq!(left.len(), right.len());
    assert!(!left.is_empty(), "the recording has audio");
    let messages = read_jsonl(&dir.join("messages.jsonl"));
    let types = |direction: &str| -> Vec<String> {
        messages
            .iter()
            .filter(|m| m["direction"] == direction)
            .map(|m| {
                assert!(m["timestamp"].is_string() && m["elapsed_ms"].is_u64(), "{m}");
                assert_eq!(m["message"]["label"], "rtvi-ai", "{m}");
                m["type"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    };
    let (out, inbound) = (types("out"), types("in"));
    for t in out_types {
        assert!(out.iter().any(|x| x == t), "no outbound {t} in {out:?}");
    }
    for t in in_types {
        assert!(inbound.iter().any(|x| x == t), "no inbound {t} in {inbound:?}");
    }
    let events = read_jsonl(&dir.join("events.jsonl"));
    assert_json_shape(&events);
    (left, right)
}
