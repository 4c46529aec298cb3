//! The `sidecar` backend: `daily-python` in a child process, driven through this crate's own
//! bridge script ([`BRIDGE_SCRIPT`], `crates/daily/bridge/daily_bridge.py`).
//!
//! # Setup
//!
//! ```text
//! python3 -m venv .venv && .venv/bin/pip install daily-python
//! export PIPECAT_DAILY_PYTHON=$PWD/.venv/bin/python
//! ```
//!
//! daily-python has wheels for Linux x86_64/aarch64 (glibc ≥ 2.28), macOS 13+ and Windows
//! x86_64, CPython ≥ 3.8. The bridge script is embedded in this crate and written to a
//! temporary file when a call starts (`PIPECAT_DAILY_BRIDGE` points at another copy).
//!
//! # Protocol (version [`PROTOCOL_VERSION`])
//!
//! JSON lines: commands on the child's stdin, answers/events on its stdout. The bridge's first
//! line is `{"type":"hello","protocol":1,…}`; a different protocol is a
//! [`BackendError::ProtocolMismatch`]. Requests carry an `id` and get
//! `{"type":"response","id":…,"ok":…}`; events come as `{"type":"event","event":{"action":…}}`
//! in daily-core's shape; microphone and speaker PCM travel as base64 in `mic` / `speaker`
//! lines. daily-core's own log lines go to stderr (the bridge moves fd 1 there), which this
//! side captures: it is logged at debug level (target `pipecat_daily::bridge`) and its last
//! lines are quoted in errors.
//!
//! # Process management
//!
//! One child per call. It is asked to shut down on leave; otherwise (and on drop) it gets
//! SIGTERM, then SIGKILL after a grace period. It exits by itself when its stdin closes, so it
//! does not outlive this process. While joined, a ping every `health_interval` checks it still
//! answers; a bridge that stops answering is killed and the call reported lost.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use pipecat_media::{AudioFormat, AudioFrame};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::requests::{Requests, Response};
use super::{
    BackendChannels, BackendError, DailyBackend, JoinFailure, JoinInfo, JoinRequest, lock,
};
use crate::envelope::{self, Recipient};

/// The bridge protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The bridge script, embedded.
pub const BRIDGE_SCRIPT: &str = include_str!("../../bridge/daily_bridge.py");
/// Environment variable naming the Python interpreter (one with `daily-python` installed).
pub const PYTHON_ENV: &str = "PIPECAT_DAILY_PYTHON";
/// Environment variable naming another copy of the bridge script.
pub const BRIDGE_ENV: &str = "PIPECAT_DAILY_BRIDGE";
/// Longest line accepted from the bridge.
const MAX_LINE: u64 = 8 * 1024 * 1024;

const NAME: &str = "sidecar";

/// How to run the bridge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SidecarConfig {
    /// The Python interpreter (default: `$PIPECAT_DAILY_PYTHON`, else `python3`).
    pub python: PathBuf,
    /// The bridge script (default: `$PIPECAT_DAILY_BRIDGE`, else the embedded copy).
    pub bridge_script: Option<PathBuf>,
    /// Time limit for the bridge to start and say hello (default 20 s).
    pub startup_timeout: Duration,
    /// Time limit for joining, inside the bridge (default 45 s).
    pub join_timeout: Duration,
    /// Time limit of other requests (default 30 s).
    pub request_timeout: Duration,
    /// Time between SIGTERM and SIGKILL, and for a graceful shutdown (default 2 s).
    pub shutdown_grace: Duration,
    /// Health checks while joined (default every 10 s; `None`: off).
    pub health_interval: Option<Duration>,
    /// Stderr lines kept for error messages (default 50).
    pub stderr_lines: usize,
    /// Extra environment variables for the bridge (`PYTHONPATH`, proxies, …).
    pub env: Vec<(OsString, OsString)>,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        SidecarConfig {
            python: PathBuf::from("python3"),
            bridge_script: None,
            startup_timeout: Duration::from_secs(20),
            join_timeout: Duration::from_secs(45),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(2),
            health_interval: Some(Duration::from_secs(10)),
            stderr_lines: 50,
            env: Vec::new(),
        }
    }
}

impl SidecarConfig {
    /// The defaults, with `PIPECAT_DAILY_PYTHON` and `PIPECAT_DAILY_BRIDGE` applied.
    pub fn from_env() -> Self {
        let mut config = SidecarConfig::default();
        if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
            config.python = PathBuf::from(python);
        }
        if let Some(script) = std::env::var_os(BRIDGE_ENV).filter(|p| !p.is_empty()) {
            config.bridge_script = Some(PathBuf::from(script));
        }
        config
    }

    /// Another interpreter.
    #[must_use]
    pub fn python(mut self, python: impl Into<PathBuf>) -> Self {
        self.python = python.into();
        self
    }

    /// Another bridge script.
    #[must_use]
    pub fn bridge_script(mut self, script: impl Into<PathBuf>) -> Self {
        self.bridge_script = Some(script.into());
        self
    }

    /// Another startup time limit.
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Another join time limit.
    #[must_use]
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }

    /// Another request time limit.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Another shutdown grace period.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Adds an environment variable for the bridge.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Another health-check interval (`None`: off).
    #[must_use]
    pub fn health_interval(mut self, interval: Option<Duration>) -> Self {
        self.health_interval = interval;
        self
    }
}

/// What the bridge said when it started.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BridgeHello {
    /// Its protocol version.
    pub protocol: u32,
    /// The bridge script's version.
    #[serde(default)]
    pub bridge_version: String,
    /// The installed daily-python version.
    #[serde(default)]
    pub daily_python: String,
    /// The Python version.
    #[serde(default)]
    pub python: String,
}

/// Where the bridge's events and audio go while a call is on.
struct Routes {
    channels: BackendChannels,
    speaker_format: AudioFormat,
    speaker_samples: u64,
}

/// State shared between a [`BridgeProcess`] and its reader tasks.
struct BridgeShared {
    pid: u32,
    writer: mpsc::Sender<String>,
    /// The bridge's requests. Their closed state is the bridge's: a request started while it
    /// closes fails at once instead of waiting for an answer that cannot come.
    requests: Requests,
    routes: Mutex<Option<Routes>>,
    stderr_tail: Mutex<VecDeque<String>>,
    stderr_lines: usize,
    child: Mutex<Option<Child>>,
}

impl BridgeShared {
    fn tail(&self) -> String {
        let tail = lock(&self.stderr_tail);
        let lines: Vec<&str> = tail.iter().rev().take(5).map(String::as_str).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }

    fn closed_reason(&self) -> String {
        self.requests.closed_reason().unwrap_or_else(|| "the bridge process exited".into())
    }

    /// Marks the bridge gone: fails pending requests, tells the call.
    fn close(&self, reason: String) {
        if !self.requests.close(reason.clone()) {
            return;
        }
        if let Some(routes) = lock(&self.routes).take() {
            routes.channels.closed(reason);
        }
    }

    async fn request(
        &self,
        operation: &'static str,
        mut fields: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Value, BackendError> {
        let pending = self.requests.start()?;
        fields.insert("id".into(), pending.id().into());
        fields.insert("cmd".into(), operation.into());
        let line = Value::Object(fields).to_string();
        if self.writer.send(line).await.is_err() {
            // Dropping `pending` withdraws the request.
            return Err(BackendError::Closed { reason: self.closed_reason() });
        }
        pending.wait(operation, timeout).await
    }

    /// SIGTERM, then SIGKILL after `grace` if still running. Does not block the caller.
    fn terminate(self: &Arc<Self>, grace: Duration) {
        let shared = self.clone();
        std::thread::spawn(move || {
            if !shared.is_running() {
                return;
            }
            signal_group(shared.pid, "TERM");
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if !shared.is_running() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            shared.kill();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && shared.is_running() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    /// SIGKILL to the bridge and everything it started.
    fn kill(&self) {
        signal_group(self.pid, "KILL");
        if let Some(child) = lock(&self.child).as_mut() {
            let _ = child.start_kill();
        }
    }

    /// Whether the bridge, or anything it started, still runs. Reaps the child when it exited.
    fn is_running(&self) -> bool {
        let child_running = match lock(&self.child).as_mut() {
            None => false,
            Some(child) => matches!(child.try_wait(), Ok(None)),
        };
        child_running || group_alive(self.pid)
    }
}

/// Sends a signal to the bridge's process group with the system's `kill` (no unsafe code).
/// The bridge runs in its own group, so interpreter wrappers (pyenv shims, …) and the real
/// interpreter they start are signalled together.
#[cfg(unix)]
fn signal_group(pgid: u32, signal: &str) {
    if pgid == 0 {
        return;
    }
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(not(unix))]
fn signal_group(_pgid: u32, _signal: &str) {}

/// Whether any process of the group is alive.
#[cfg(unix)]
fn group_alive(pgid: u32) -> bool {
    pgid != 0
        && std::process::Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[cfg(not(unix))]
fn group_alive(_pgid: u32) -> bool {
    false
}

/// A running bridge process. Dropping it terminates the process (SIGTERM, then SIGKILL).
pub struct BridgeProcess {
    shared: Arc<BridgeShared>,
    hello: BridgeHello,
    grace: Duration,
    tasks: Vec<JoinHandle<()>>,
    _script: Option<tempfile::TempPath>,
}

impl std::fmt::Debug for BridgeProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeProcess")
            .field("pid", &self.shared.pid)
            .field("hello", &self.hello)
            .finish()
    }
}

impl BridgeProcess {
    /// Starts the bridge and waits for its handshake.
    ///
    /// # Errors
    /// [`BackendError::Unavailable`] when the interpreter cannot start or daily-python is
    /// missing, [`BackendError::ProtocolMismatch`], or [`BackendError::Timeout`] when it does
    /// not say hello within `startup_timeout`.
    pub async fn spawn(config: &SidecarConfig) -> Result<Self, BackendError> {
        let unavailable = |reason: String| BackendError::Unavailable { backend: NAME, reason };
        let (script_path, temp) = match &config.bridge_script {
            Some(path) => (path.clone(), None),
            None => {
                let temp = write_script()
                    .map_err(|e| unavailable(format!("cannot write the bridge script: {e}")))?;
                (temp.to_path_buf(), Some(temp))
            }
        };
        let mut command = Command::new(&config.python);
        command
            .arg("-u")
            .arg(&script_path)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| {
                unavailable(format!(
                    "cannot start {}: {e} (it must be a Python >= 3.8 with `pip install daily-python`; set {PYTHON_ENV})",
                    config.python.display()
                ))
            })?;
        let pid = child.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(unavailable("the bridge's pipes are missing".into()));
        };
        let (writer, lines) = mpsc::channel::<String>(256);
        let shared = Arc::new(BridgeShared {
            pid,
            writer,
            requests: Requests::new(),
            routes: Mutex::new(None),
            stderr_tail: Mutex::new(VecDeque::new()),
            stderr_lines: config.stderr_lines.max(1),
            child: Mutex::new(Some(child)),
        });
        let (hello_tx, hello_rx) = oneshot::channel();
        let tasks = vec![
            tokio::spawn(write_lines(stdin, lines)),
            tokio::spawn(read_stderr(shared.clone(), stderr)),
            tokio::spawn(read_stdout(shared.clone(), stdout, hello_tx)),
        ];
        let mut process = BridgeProcess {
            shared,
            hello: BridgeHello {
                protocol: 0,
                bridge_version: String::new(),
                daily_python: String::new(),
                python: String::new(),
            },
            grace: config.shutdown_grace,
            tasks,
            _script: temp,
        };
        match tokio::time::timeout(config.startup_timeout, hello_rx).await {
            Ok(Ok(Ok(hello))) => {
                if hello.protocol != PROTOCOL_VERSION {
                    return Err(BackendError::ProtocolMismatch {
                        expected: PROTOCOL_VERSION,
                        found: hello.protocol.to_string(),
                    });
                }
                tracing::debug!(target: "pipecat_daily::bridge", pid, daily_python = %hello.daily_python, python = %hello.python, "bridge ready");
                process.hello = hello;
                Ok(process)
            }
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) => {
                // The reader ended without a hello: the process died. Give stderr a moment.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(unavailable(format!(
                    "the bridge exited before its handshake: {}",
                    process.shared.tail()
                )))
            }
            Err(_) => Err(BackendError::Timeout {
                operation: "bridge startup",
                after: config.startup_timeout,
            }),
        }
    }

    /// The handshake.
    pub fn hello(&self) -> &BridgeHello {
        &self.hello
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// The last lines the bridge wrote to stderr (daily-core's logs among them).
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.shared.stderr_tail).iter().cloned().collect()
    }

    /// Whether the bridge (or anything it started) still runs.
    pub fn is_running(&self) -> bool {
        self.shared.is_running()
    }

    /// Health check: a `ping` round trip; returns its duration.
    ///
    /// # Errors
    /// [`BackendError::Timeout`] or [`BackendError::Closed`].
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, BackendError> {
        let start = Instant::now();
        let answer = self.shared.request("ping", Map::new(), timeout).await?;
        if answer.get("pong").and_then(Value::as_bool) != Some(true) {
            return Err(BackendError::Protocol(format!("unexpected ping answer {answer}")));
        }
        Ok(start.elapsed())
    }

    /// Asks the bridge to leave and exit, then makes sure it did (SIGTERM, SIGKILL).
    pub async fn shutdown(mut self) {
        let grace = self.grace;
        if !self.shared.is_closed() {
            let _ = self.shared.request("shutdown", Map::new(), grace).await;
        }
        // Exit on request, else SIGTERM, else SIGKILL; the whole group.
        'stop: for step in ["request", "TERM", "KILL"] {
            match step {
                "TERM" => signal_group(self.shared.pid, "TERM"),
                "KILL" => self.shared.kill(),
                _ => {}
            }
            let deadline = tokio::time::Instant::now() + grace;
            while tokio::time::Instant::now() < deadline {
                if !self.shared.is_running() {
                    break 'stop;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        lock(&self.shared.child).take();
        self.shared.close("the bridge was shut down".into());
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if lock(&self.shared.child).is_some() {
            self.shared.terminate(self.grace);
        }
    }
}

fn write_script() -> std::io::Result<tempfile::TempPath> {
    use std::io::Write;
    let mut file =
        tempfile::Builder::new().prefix("pipecat-daily-bridge-").suffix(".py").tempfile()?;
    file.write_all(BRIDGE_SCRIPT.as_bytes())?;
    file.flush()?;
    Ok(file.into_temp_path())
}

async fn write_lines(mut stdin: tokio::process::ChildStdin, mut lines: mpsc::Receiver<String>) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    // Dropping stdin closes it: the bridge exits on EOF.
}

/// Reads one line of at most [`MAX_LINE`] bytes; `Ok(None)` at end of stream.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let read = (&mut *reader).take(MAX_LINE).read_until(b'\n', buf).await?;
    if read == 0 {
        return Ok(None);
    }
    let complete = buf.last() == Some(&b'\n');
    if !complete && read as u64 >= MAX_LINE {
        // Too long: skip the rest of it.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let n = (&mut *reader).take(MAX_LINE).read_until(b'\n', &mut rest).await?;
            if n == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(false));
    }
    Ok(Some(true))
}

async fn read_stderr(shared: Arc<BridgeShared>, stderr: tokio::process::ChildStderr) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    while let Ok(Some(_)) = read_line(&mut reader, &mut buf).await {
        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        tracing::debug!(target: "pipecat_daily::bridge", pid = shared.pid, "{line}");
        let mut tail = lock(&shared.stderr_tail);
        if tail.len() == shared.stderr_lines {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// One line of the bridge's stdout, classified (what [`read_stdout`] acts on).
#[derive(Debug, Clone)]
pub(crate) enum BridgeLine {
    /// Not JSON: logged and skipped.
    NotJson,
    /// The handshake, or why it is unusable.
    Hello(Result<BridgeHello, BackendError>),
    /// The bridge cannot go on.
    Fatal(String),
    /// The answer to request `id`: its result, or the error text.
    Response { id: u64, result: Result<Value, String> },
    /// A daily-core event (`{"action": …}`).
    Event(Value),
    /// Speaker PCM, base64-decoded (little-endian PCM16).
    Speaker(Vec<u8>),
    /// Anything else (unknown types, malformed known ones): skipped.
    Ignored,
}

/// Classifies one line from the bridge (without its newline, or with it: JSON ignores it).
pub(crate) fn parse_line(line: &[u8]) -> BridgeLine {
    let Ok(message) = serde_json::from_slice::<Value>(line) else {
        return BridgeLine::NotJson;
    };
    match message.get("type").and_then(Value::as_str) {
        Some("hello") => {
            BridgeLine::Hello(serde_json::from_value::<BridgeHello>(message.clone()).map_err(
                |_| BackendError::ProtocolMismatch {
                    expected: PROTOCOL_VERSION,
                    found: message.get("protocol").map_or_else(|| "none".into(), Value::to_string),
                },
            ))
        }
        Some("fatal") => BridgeLine::Fatal(
            message.get("error").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
        ),
        Some("response") => match response(&message) {
            Some((id, result)) => BridgeLine::Response { id, result },
            None => BridgeLine::Ignored,
        },
        Some("event") => match message.get("event") {
            Some(event) => BridgeLine::Event(event.clone()),
            None => BridgeLine::Ignored,
        },
        Some("speaker") => {
            let Some(pcm) = message.get("pcm").and_then(Value::as_str) else {
                return BridgeLine::Ignored;
            };
            match base64::engine::general_purpose::STANDARD.decode(pcm) {
                Ok(bytes) => BridgeLine::Speaker(bytes),
                Err(_) => BridgeLine::Ignored,
            }
        }
        _ => BridgeLine::Ignored,
    }
}

/// The speaker frame of `pcm` in `format`, stamped after the `samples_so_far` samples already
/// delivered; `None` for PCM that is not whole frames of that format.
pub(crate) fn speaker_frame(
    pcm: &[u8],
    format: AudioFormat,
    samples_so_far: u64,
) -> Option<AudioFrame> {
    let ts = format.duration_of_samples(usize::try_from(samples_so_far).unwrap_or(usize::MAX));
    AudioFrame::from_le_bytes(pcm, format, ts).ok()
}

async fn read_stdout(
    shared: Arc<BridgeShared>,
    stdout: tokio::process::ChildStdout,
    hello: oneshot::Sender<Result<BridgeHello, BackendError>>,
) {
    let mut hello = Some(hello);
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        match read_line(&mut reader, &mut buf).await {
            Ok(Some(true)) => {}
            Ok(Some(false)) => {
                tracing::warn!(target: "pipecat_daily::bridge", "skipped an over-long line from the bridge");
                continue;
            }
            Ok(None) | Err(_) => break,
        }
        match parse_line(&buf) {
            BridgeLine::NotJson => {
                tracing::warn!(target: "pipecat_daily::bridge", "ignoring a line from the bridge that is not JSON");
            }
            BridgeLine::Hello(parsed) => {
                if let Some(tx) = hello.take() {
                    let _ = tx.send(parsed);
                }
            }
            BridgeLine::Fatal(error) => {
                if let Some(tx) = hello.take() {
                    let _ = tx.send(Err(BackendError::Unavailable {
                        backend: NAME,
                        reason: error.clone(),
                    }));
                }
                shared.close(format!("the bridge failed: {error}"));
            }
            BridgeLine::Response { id, result } => {
                // An answer nobody waits for (given up, or no request of ours) is dropped.
                shared.requests.complete(id, result);
            }
            BridgeLine::Event(event) => {
                if let Some(routes) = lock(&shared.routes).as_ref() {
                    routes.channels.event(event);
                }
            }
            BridgeLine::Speaker(bytes) => {
                let mut routes = lock(&shared.routes);
                if let Some(routes) = routes.as_mut()
                    && let Some(frame) =
                        speaker_frame(&bytes, routes.speaker_format, routes.speaker_samples)
                {
                    routes.speaker_samples =
                        routes.speaker_samples.saturating_add(frame.samples().len() as u64);
                    routes.channels.speaker(frame);
                }
            }
            BridgeLine::Ignored => {}
        }
    }
    // The process closed its stdout: it is exiting.
    if let Some(tx) = hello.take() {
        drop(tx);
    }
    let tail = shared.tail();
    let reason = if tail.is_empty() {
        "the bridge process exited".to_owned()
    } else {
        format!("the bridge process exited: {tail}")
    };
    shared.close(reason);
}

/// A `response` line: `{"type":"response","id":N,"ok":true,"result":…}`, or with `"ok":false`
/// and an `error`.
fn response(message: &Value) -> Option<(u64, Response)> {
    let id = message.get("id").and_then(Value::as_u64)?;
    let result = if message.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(message.get("result").cloned().unwrap_or(Value::Null))
    } else {
        Err(match message.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "unknown error".into(),
        })
    };
    Some((id, result))
}

/// The `sidecar` backend. See the module docs.
///
/// ```no_run
/// use pipecat_daily::backend::sidecar::{SidecarBackend, SidecarConfig};
/// use pipecat_daily::DailyTransport;
///
/// let backend = SidecarBackend::new(SidecarConfig::from_env().python("/opt/venv/bin/python"));
/// let transport = DailyTransport::builder(backend).build();
/// # drop(transport);
/// ```
pub struct SidecarBackend {
    config: SidecarConfig,
    call: tokio::sync::Mutex<Option<BridgeProcess>>,
    current: Mutex<Option<Arc<BridgeShared>>>,
    health: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SidecarBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarBackend").field("config", &self.config).finish()
    }
}

impl SidecarBackend {
    /// A backend with this configuration.
    pub fn new(config: SidecarConfig) -> Self {
        SidecarBackend {
            config,
            call: tokio::sync::Mutex::new(None),
            current: Mutex::new(None),
            health: Mutex::new(None),
        }
    }

    /// A backend configured from the environment ([`SidecarConfig::from_env`]).
    pub fn from_env() -> Self {
        Self::new(SidecarConfig::from_env())
    }

    /// The configuration.
    pub fn config(&self) -> &SidecarConfig {
        &self.config
    }

    /// Starts a bridge outside any call, to check the setup (interpreter, daily-python,
    /// handshake). Drop or [`BridgeProcess::shutdown`] it when done.
    ///
    /// # Errors
    /// As [`BridgeProcess::spawn`].
    pub async fn check(&self) -> Result<BridgeProcess, BackendError> {
        BridgeProcess::spawn(&self.config).await
    }

    fn bridge(&self) -> Result<Arc<BridgeShared>, BackendError> {
        lock(&self.current).clone().ok_or(BackendError::NotJoined)
    }

    fn stop_health(&self) {
        if let Some(task) = lock(&self.health).take() {
            task.abort();
        }
    }
}

async fn health_loop(
    shared: Arc<BridgeShared>,
    interval: Duration,
    timeout: Duration,
    grace: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        if shared.is_closed() {
            return;
        }
        if let Err(e) = shared.request("ping", Map::new(), timeout).await {
            tracing::warn!(target: "pipecat_daily::bridge", "bridge health check failed: {e}");
            shared.close(format!("the bridge stopped answering: {e}"));
            shared.terminate(grace);
            return;
        }
    }
}

#[async_trait]
impl DailyBackend for SidecarBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn join(
        &self,
        request: JoinRequest,
        channels: BackendChannels,
    ) -> Result<JoinInfo, BackendError> {
        let mut call = self.call.lock().await;
        if let Some(old) = call.take() {
            self.stop_health();
            *lock(&self.current) = None;
            old.shutdown().await;
        }
        let bridge = BridgeProcess::spawn(&self.config).await?;
        *lock(&bridge.shared.routes) =
            Some(Routes { channels, speaker_format: request.speaker_format, speaker_samples: 0 });
        let mut fields = Map::new();
        fields.insert("url".into(), request.room_url.clone().into());
        fields.insert("token".into(), request.token.clone().map_or(Value::Null, Value::from));
        fields.insert("client_settings".into(), Value::Object(request.client_settings.clone()));
        fields.insert(
            "subscription_profiles".into(),
            Value::Object(request.subscription_profiles.clone()),
        );
        fields
            .insert("user_name".into(), request.user_name.clone().map_or(Value::Null, Value::from));
        fields.insert("mic_device".into(), request.mic_device.clone().into());
        fields.insert("speaker_device".into(), request.speaker_device.clone().into());
        fields.insert(
            "mic".into(),
            json!({"sample_rate": request.mic_format.sample_rate, "channels": request.mic_format.channels}),
        );
        fields.insert(
            "speaker".into(),
            json!({"sample_rate": request.speaker_format.sample_rate, "channels": request.speaker_format.channels}),
        );
        match bridge.shared.request("join", fields, self.config.join_timeout).await {
            Ok(answer) => {
                let participants = answer.get("participants").filter(|p| p.is_object()).cloned();
                let info = JoinInfo::from_raw(
                    answer.get("join").cloned().unwrap_or(Value::Null),
                    participants,
                );
                *lock(&self.current) = Some(bridge.shared.clone());
                if let Some(interval) = self.config.health_interval {
                    let task = tokio::spawn(health_loop(
                        bridge.shared.clone(),
                        interval,
                        self.config.request_timeout,
                        self.config.shutdown_grace,
                    ));
                    *lock(&self.health) = Some(task);
                }
                *call = Some(bridge);
                Ok(info)
            }
            Err(error) => {
                lock(&bridge.shared.routes).take();
                bridge.shutdown().await;
                Err(match error {
                    BackendError::Request { message, .. } => {
                        BackendError::JoinFailed { kind: JoinFailure::classify(&message), message }
                    }
                    BackendError::Timeout { after, .. } => {
                        BackendError::Timeout { operation: "join", after }
                    }
                    other => other,
                })
            }
        }
    }

    async fn leave(&self) -> Result<(), BackendError> {
        let mut call = self.call.lock().await;
        self.stop_health();
        *lock(&self.current) = None;
        let Some(bridge) = call.take() else { return Ok(()) };
        lock(&bridge.shared.routes).take();
        let result = if bridge.shared.is_closed() {
            Ok(())
        } else {
            bridge.shared.request("leave", Map::new(), self.config.request_timeout).await.map(drop)
        };
        bridge.shutdown().await;
        match result {
            Err(BackendError::Closed { .. }) => Ok(()),
            other => other,
        }
    }

    async fn send_app_message(
        &self,
        message: Value,
        recipient: Recipient,
    ) -> Result<(), BackendError> {
        let bridge = self.bridge()?;
        let mut fields = Map::new();
        fields.insert("message".into(), message);
        fields.insert(
            "participant".into(),
            recipient.participant_id().map_or(Value::Null, |p| Value::String(p.to_owned())),
        );
        match bridge.request("send_app_message", fields, self.config.request_timeout).await {
            Err(BackendError::Request { message, .. })
                if envelope::is_too_large_error(&message) =>
            {
                Err(BackendError::MessageTooLarge { message })
            }
            other => other.map(drop),
        }
    }

    fn write_mic(&self, frame: &AudioFrame) -> Result<(), BackendError> {
        let bridge = self.bridge()?;
        let pcm = base64::engine::general_purpose::STANDARD.encode(frame.to_le_bytes());
        let line = json!({"cmd": "mic", "pcm": pcm}).to_string();
        bridge.writer.try_send(line).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BackendError::Request {
                operation: "write_mic",
                message: "the bridge is behind; microphone audio dropped".into(),
            },
            mpsc::error::TrySendError::Closed(_) => {
                BackendError::Closed { reason: bridge.closed_reason() }
            }
        })
    }
}

impl Drop for SidecarBackend {
    fn drop(&mut self) {
        self.stop_health();
        // Dropping the bridge process terminates it.
        if let Ok(mut call) = self.call.try_lock() {
            call.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_lines() {
        let ok = json!({"type": "response", "id": 3, "ok": true, "result": {"x": 1}});
        assert_eq!(response(&ok), Some((3, Ok(json!({"x": 1})))));
        let no_result = json!({"type": "response", "id": 4, "ok": true});
        assert_eq!(response(&no_result), Some((4, Ok(Value::Null))));
        let failed = json!({"type": "response", "id": 5, "ok": false, "error": "no room"});
        assert_eq!(response(&failed), Some((5, Err("no room".into()))));
        let odd = json!({"type": "response", "id": 6, "ok": false, "error": {"code": 1}});
        assert_eq!(response(&odd), Some((6, Err(r#"{"code":1}"#.into()))));
        let bare = json!({"type": "response", "id": 7});
        assert_eq!(response(&bare), Some((7, Err("unknown error".into()))));
        assert_eq!(response(&json!({"type": "response", "ok": true})), None);
    }

    #[test]
    fn bridge_lines_are_classified_without_panicking() {
        let hello = br#"{"type":"hello","protocol":1,"bridge_version":"1","python":"3.12"}"#;
        assert!(matches!(parse_line(hello), BridgeLine::Hello(Ok(h)) if h.protocol == 1));
        assert!(matches!(
            parse_line(br#"{"type":"hello","protocol":"x"}"#),
            BridgeLine::Hello(Err(BackendError::ProtocolMismatch { found, .. })) if found == "\"x\""
        ));
        assert!(
            matches!(parse_line(b"{\"type\":\"fatal\"}\n"), BridgeLine::Fatal(e) if e == "unknown")
        );
        assert!(matches!(
            parse_line(br#"{"type":"response","id":3,"ok":true}"#),
            BridgeLine::Response { id: 3, result: Ok(Value::Null) }
        ));
        assert!(matches!(
            parse_line(br#"{"type":"response","id":4,"ok":false,"error":{"code":1}}"#),
            BridgeLine::Response { id: 4, result: Err(e) } if e == r#"{"code":1}"#
        ));
        assert!(matches!(parse_line(br#"{"type":"response","id":-1}"#), BridgeLine::Ignored));
        assert!(matches!(
            parse_line(br#"{"type":"event","event":{"action":"x"}}"#),
            BridgeLine::Event(e) if e["action"] == "x"
        ));
        assert!(
            matches!(parse_line(br#"{"type":"speaker","pcm":"AAAB"}"#), BridgeLine::Speaker(b) if b == [0, 0, 1])
        );
        assert!(matches!(parse_line(br#"{"type":"speaker","pcm":"!"}"#), BridgeLine::Ignored));
        assert!(matches!(parse_line(b"daily-core says hi"), BridgeLine::NotJson));
        assert!(matches!(parse_line(b"[1]"), BridgeLine::Ignored));
    }

    #[test]
    fn speaker_frames_need_whole_frames_and_are_stamped() {
        let stereo = AudioFormat::new(48_000, 2);
        assert!(speaker_frame(&[0, 0, 1], stereo, 0).is_none());
        assert!(speaker_frame(&[0, 0], stereo, 0).is_none());
        let frame = speaker_frame(&[0; 8], stereo, 96_000).unwrap();
        assert_eq!(frame.timestamp(), Duration::from_secs(1));
        assert!(speaker_frame(&[0; 4], stereo, u64::MAX).is_some());
        assert!(speaker_frame(&[0; 2], AudioFormat::new(0, 1), 0).is_none());
    }
}
