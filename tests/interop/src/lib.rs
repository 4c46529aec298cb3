//! The harness of the interop tests: the real pipecat-ai peer bot (`tests/peer_bot/bot.py`)
//! started on a free loopback port, whatever the transport under test, on one of the
//! pipecat-ai [`Release`]s the SDK is proven against.
//!
//! ```no_run
//! use pipecat_interop_tests::{PeerBot, Release};
//!
//! # async fn demo() -> Result<(), pipecat_interop_tests::PeerBotError> {
//! let bot = PeerBot::start_release(Release::V1_3_0, "websocket", &[]).await?;
//! let request = bot.start_request(); // POST /start {"transport": "websocket"}
//! println!("bot at {}, log in {}", bot.base_url(), bot.log_path().display());
//! # let _ = request;
//! // Dropping `bot` stops the process (SIGTERM, then SIGKILL after a grace period).
//! # Ok(()) }
//! ```
//!
//! Each release has its own venv, which `cargo xtask peer-venv <version>` (and `test-all`)
//! creates under the target directory; the tests find its interpreter through the release's
//! environment variable ([`Release::python_env`]), else at its default place
//! ([`Release::venv_dir`] under `$CARGO_TARGET_DIR`, else `<workspace>/target`). Everything
//! the bot logs goes to a file under `<target>/peer-bot-logs/`, named in failures.

#![forbid(unsafe_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pipecat_core::ApiRequest;
use serde_json::json;

/// The environment variable naming the peer bot's Python interpreter for the default
/// release ([`Release::DEFAULT`]); see [`Release::python_env`] for the others.
pub const PYTHON_ENV: &str = "PIPECAT_PEER_PYTHON";

/// A pipecat-ai release the interop tests run the peer bot on, and what the client sees
/// differ between them (read from the release wheels and checked by the tests; the table in
/// `docs/releases.md` says what the client does about each).
///
/// Deliberately exhaustive: adding a release makes every `match` over it (the tests' list of
/// releases among them) fail to compile until it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// pipecat-ai 1.14.0: RTVI 2.2.0, the current protocol.
    V1_14_0,
    /// pipecat-ai 1.12.0: RTVI 2.1.0.
    V1_12_0,
    /// pipecat-ai 1.3.0: RTVI 1.4.0 (a legacy major).
    V1_3_0,
}

impl Release {
    /// Every release the tests cover, newest first.
    pub const ALL: [Release; 3] = [Release::V1_14_0, Release::V1_12_0, Release::V1_3_0];

    /// The release [`PeerBot::start`] runs, with the venv `cargo xtask peer-venv` creates.
    pub const DEFAULT: Release = Release::V1_14_0;

    /// The pipecat-ai version, `"1.14.0"`.
    pub fn version(self) -> &'static str {
        match self {
            Release::V1_14_0 => "1.14.0",
            Release::V1_12_0 => "1.12.0",
            Release::V1_3_0 => "1.3.0",
        }
    }

    /// The RTVI protocol version its `bot-ready` reports.
    pub fn rtvi_version(self) -> &'static str {
        match self {
            Release::V1_14_0 => "2.2.0",
            Release::V1_12_0 => "2.1.0",
            Release::V1_3_0 => "1.4.0",
        }
    }

    /// The environment variable naming its Python: [`PYTHON_ENV`] for the default
    /// release, `PIPECAT_PEER_PYTHON_<version with underscores>` for the others (what
    /// `cargo xtask test-all` sets).
    pub fn python_env(self) -> &'static str {
        match self {
            Release::V1_14_0 => PYTHON_ENV,
            Release::V1_12_0 => "PIPECAT_PEER_PYTHON_1_12_0",
            Release::V1_3_0 => "PIPECAT_PEER_PYTHON_1_3_0",
        }
    }

    /// The directory of its venv in the target directory (where `cargo xtask peer-venv`
    /// puts it).
    pub fn venv_dir(self) -> &'static str {
        match self {
            Release::V1_14_0 => "peer-venv",
            Release::V1_12_0 => "peer-venv-1.12.0",
            Release::V1_3_0 => "peer-venv-1.3.0",
        }
    }

    /// `bot-ready` carries `capabilities` (RTVI 2.2.0).
    pub fn sends_capabilities(self) -> bool {
        self == Release::V1_14_0
    }

    /// The bot sends `user-input` (typed and spoken user turns, RTVI 2.2.0); older ones
    /// send only `user-transcription`, and nothing for typed text.
    pub fn sends_user_input(self) -> bool {
        self == Release::V1_14_0
    }

    /// The bot sends `bot-interrupted`; 1.3 only has the transport's interruption (the
    /// protobuf `InterruptionFrame` on WebSocket, nothing on SmallWebRTC).
    pub fn sends_bot_interrupted(self) -> bool {
        self != Release::V1_3_0
    }

    /// The bot answers our 2.2.0 `client-ready` with an `error-response` (a protocol
    /// major other than its own) before its `bot-ready`.
    pub fn rejects_client_ready(self) -> bool {
        self == Release::V1_3_0
    }

    /// The bot sends the `bot-output` of text it does not speak at once; 1.12 and older hold
    /// it until the bot next starts speaking.
    pub fn sends_unspoken_bot_output(self) -> bool {
        self == Release::V1_14_0
    }

    /// `bot-output` is the v1 message (`text`, `spoken`, `aggregated_by`).
    pub fn sends_v1_bot_output(self) -> bool {
        self == Release::V1_3_0
    }

    /// The bot takes `dtmf` messages (RTVI 2.0.0 and later).
    pub fn accepts_dtmf(self) -> bool {
        self != Release::V1_3_0
    }

    /// The bot takes `send-file` (RTVI 2.2.0); older ones answer "Unsupported type".
    pub fn accepts_send_file(self) -> bool {
        self == Release::V1_14_0
    }

    /// The runner has `--ws-auth` (one-time WebSocket session tokens).
    pub fn has_ws_auth(self) -> bool {
        self != Release::V1_3_0
    }

    /// The `token` of the runner's WebSocket `/start` answer without `--ws-auth`: `null`,
    /// or 1.3's fixed `"mock_token"` (which its `/ws-client` ignores).
    pub fn websocket_start_token(self) -> Option<&'static str> {
        (self == Release::V1_3_0).then_some("mock_token")
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pipecat-ai {}", self.version())
    }
}

/// How long the bot may take to answer `GET /status` (it needs about 1.5 s; a loaded
/// machine much more).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the bot gets to exit after SIGTERM before it is killed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Attempts at finding a port nobody took in the meantime.
const START_ATTEMPTS: u32 = 3;

/// Why the peer bot could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerBotError {
    /// The release's venv is missing.
    #[error(
        "the peer bot's Python for {release} is missing at {path}: run `cargo xtask peer-venv \
         {version}` (or set {env} to a python with pipecat-ai[webrtc,websocket,runner]=={version})",
        version = release.version(),
        env = release.python_env()
    )]
    PythonMissing {
        /// The release asked for.
        release: Release,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The process or its log file could not be created.
    #[error("could not start the peer bot: {0}")]
    Spawn(#[from] std::io::Error),
    /// The bot exited before it was ready.
    #[error("the peer bot exited during startup ({status}); its log ({log}) ends with:\n{tail}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The log file.
        log: String,
        /// The end of the log.
        tail: String,
    },
    /// The bot did not answer `/status` in time.
    #[error(
        "the peer bot did not answer GET /status within {after:?}; its log ({log}) ends with:\n{tail}"
    )]
    StartupTimeout {
        /// The time limit.
        after: Duration,
        /// The log file.
        log: String,
        /// The end of the log.
        tail: String,
    },
}

/// A running peer bot. Dropping it stops the process.
#[derive(Debug)]
pub struct PeerBot {
    child: Option<Child>,
    port: u16,
    transport: String,
    release: Release,
    log_path: PathBuf,
}

impl PeerBot {
    /// [`start_release`](Self::start_release) on [`Release::DEFAULT`].
    ///
    /// # Errors
    /// As [`start_release`](Self::start_release).
    pub async fn start(transport: &str, extra_args: &[&str]) -> Result<PeerBot, PeerBotError> {
        Self::start_release(Release::DEFAULT, transport, extra_args).await
    }

    /// Starts `bot.py -t <transport> --host localhost --port <free port> <extra_args>` in
    /// `release`'s venv and waits until `GET /status` answers. `transport` is the runner's
    /// name: `"websocket"` or `"webrtc"` (the bot drops `-t websocket` on runners that do
    /// not know it); `extra_args` go to the bot (`--no-echo`, `--loopback-ice`, `--ws-auth
    /// token`...).
    ///
    /// # Errors
    /// [`PeerBotError`]: no venv, a process that cannot start or exits, no answer in time.
    pub async fn start_release(
        release: Release,
        transport: &str,
        extra_args: &[&str],
    ) -> Result<PeerBot, PeerBotError> {
        let python = peer_python(release)?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut bot = Self::spawn(&python, release, transport, port, extra_args)?;
            match bot.wait_ready().await {
                Ok(()) => return Ok(bot),
                // Someone took the port between our check and the bot's bind: try another.
                Err(e @ PeerBotError::Exited { .. }) if bot.log().contains("already in use") => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free port").into()))
    }

    fn spawn(
        python: &Path,
        release: Release,
        transport: &str,
        port: u16,
        extra_args: &[&str],
    ) -> Result<PeerBot, PeerBotError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = target_dir().join("peer-bot-logs");
        std::fs::create_dir_all(&dir)?;
        let log_path = dir.join(format!(
            "{transport}-{}-{}-{port}-{}.log",
            release.version(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let log = File::create(&log_path)?;
        let child = Command::new(python)
            .arg(bot_script())
            .args(["--host", "localhost", "--port", &port.to_string(), "-t", transport])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env("PYTHONUNBUFFERED", "1")
            .spawn()?;
        tracing::info!(
            pid = child.id(),
            port,
            transport,
            release = release.version(),
            log = %log_path.display(),
            "peer bot started"
        );
        Ok(PeerBot { child: Some(child), port, transport: transport.to_owned(), release, log_path })
    }

    async fn wait_ready(&mut self) -> Result<(), PeerBotError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(std::io::Error::other)?;
        let url = format!("{}/status", self.base_url());
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(PeerBotError::Exited {
                    status,
                    log: self.log_path.display().to_string(),
                    tail: self.log_tail(30),
                });
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PeerBotError::StartupTimeout {
                    after: STARTUP_TIMEOUT,
                    log: self.log_path.display().to_string(),
                    tail: self.log_tail(30),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The port the bot listens on (loopback).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The transport the bot serves (`-t`).
    pub fn transport(&self) -> &str {
        &self.transport
    }

    /// The pipecat-ai release the bot runs on.
    pub fn release(&self) -> Release {
        self.release
    }

    /// `http://localhost:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// The runner's start endpoint, `http://localhost:<port>/start`.
    pub fn start_url(&self) -> String {
        format!("{}/start", self.base_url())
    }

    /// `POST /start` with `{"transport": <transport>}`: what `start_bot` sends.
    pub fn start_request(&self) -> ApiRequest {
        ApiRequest::new(self.start_url()).request_data(json!({ "transport": self.transport }))
    }

    /// The file the bot's output goes to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the bot logged so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `true` while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the bot at once (SIGKILL): it says goodbye to nobody, as a crashed server would.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the bot: SIGTERM, then SIGKILL after [`SHUTDOWN_GRACE`]. Also done on drop.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(pid = child.id(), "peer bot ignored SIGTERM: killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PeerBot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

/// The peer bot script.
pub fn bot_script() -> PathBuf {
    workspace_root().join("tests").join("peer_bot").join("bot.py")
}

/// The target directory: `$CARGO_TARGET_DIR` (relative to the workspace root if relative),
/// else `<workspace>/target`. The venvs and the bot logs live there.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The peer bot's Python for `release`: its environment variable
/// ([`Release::python_env`]), else the venv `cargo xtask peer-venv <version>` creates.
///
/// # Errors
/// [`PeerBotError::PythonMissing`] when that file does not exist.
pub fn peer_python(release: Release) -> Result<PathBuf, PeerBotError> {
    let path = std::env::var_os(release.python_env())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let bin = if cfg!(windows) { "Scripts/python.exe" } else { "bin/python" };
            target_dir().join(release.venv_dir()).join(bin)
        });
    if path.exists() { Ok(path) } else { Err(PeerBotError::PythonMissing { release, path }) }
}

/// A loopback TCP port that was free a moment ago (never pipecat's default 7860).
fn free_port() -> std::io::Result<u16> {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if port != 7860 {
            return Ok(port);
        }
    }
}
