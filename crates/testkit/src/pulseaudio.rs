//! A private PulseAudio daemon for device tests: real, clocked audio devices on a machine
//! without a sound card.
//!
//! [`PulseAudio::start`] runs `pulseaudio` with its own `XDG_RUNTIME_DIR` and `HOME` in a
//! temporary directory, with the null sinks asked for (each has a `.monitor` source: what is
//! played on the sink can be recorded from it, a real echo path). It is stopped on drop
//! (SIGTERM, SIGKILL after a 3 s grace period), even when the test panics.
//!
//! Audio libraries find the server through the environment, and changing the environment of
//! a running test is unsafe, so the audio part of a test runs in a child process: the same
//! test binary, re-run with the daemon's environment ([`PulseAudio::run_test`]); the child
//! knows it is one by [`PulseAudio::is_child`].
//!
//! ```no_run
//! use std::time::Duration;
//! use pipecat_testkit::pulseaudio::PulseAudio;
//!
//! #[test]
//! fn plays_on_a_null_sink() {
//!     if PulseAudio::is_child() {
//!         // ... open the default devices and check the audio ...
//!         return;
//!     }
//!     let Some(daemon) = PulseAudio::start(&["speaker"]).unwrap() else {
//!         println!("SKIPPED: pulseaudio is not installed");
//!         return;
//!     };
//!     daemon.pactl(&["set-default-sink", "speaker"]).unwrap();
//!     daemon.run_test("plays_on_a_null_sink", &[], Duration::from_secs(60)).unwrap();
//! }
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Set in the child process a test re-runs itself as.
const CHILD_ENV: &str = "PIPECAT_TESTKIT_PULSE_CHILD";
/// The daemon's process id, in the child's environment.
const DAEMON_PID_ENV: &str = "PIPECAT_TESTKIT_PULSE_PID";
/// How long the daemon may take to open its socket.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How long the daemon gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(100);

/// Why the daemon or a test under it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PulseAudioError {
    /// A process could not be started or waited for.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The daemon exited or did not open its socket in time.
    #[error("pulseaudio did not start: {reason}; daemon log:\n{log}")]
    NotStarted {
        /// What happened.
        reason: String,
        /// The daemon's log.
        log: String,
    },
    /// `pactl` failed.
    #[error("pactl {args} failed ({status}); daemon log:\n{log}")]
    Pactl {
        /// Its arguments.
        args: String,
        /// Its exit status.
        status: ExitStatus,
        /// The daemon's log.
        log: String,
    },
    /// The test run in the daemon's environment failed or ran out of time.
    #[error("the test under pulseaudio {outcome}; daemon log:\n{log}")]
    Test {
        /// How it ended.
        outcome: String,
        /// The daemon's log.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PulseAudioError {
    let what = what.into();
    move |source| PulseAudioError::Io { what, source }
}

/// A running private PulseAudio daemon; stopped on drop.
#[derive(Debug)]
pub struct PulseAudio {
    child: Child,
    pactl: PathBuf,
    runtime: PathBuf,
    home: PathBuf,
    log: PathBuf,
    // Last: removed after the daemon stopped.
    _dir: tempfile::TempDir,
}

impl PulseAudio {
    /// Whether this process is the child a test re-ran itself as (see [`run_test`](Self::run_test)).
    pub fn is_child() -> bool {
        std::env::var_os(CHILD_ENV).is_some()
    }

    /// In the child: the daemon's process id (to stop it mid-test, as a lost sound server).
    pub fn daemon_pid_from_env() -> Option<u32> {
        std::env::var(DAEMON_PID_ENV).ok()?.parse().ok()
    }

    /// Starts a daemon with one mono 48 kHz null sink per name. `Ok(None)` when `pulseaudio`
    /// or `pactl` is not installed (the caller skips, saying so).
    pub fn start(sinks: &[&str]) -> Result<Option<PulseAudio>, PulseAudioError> {
        let (Some(binary), Some(pactl)) = (find_in_path("pulseaudio"), find_in_path("pactl"))
        else {
            return Ok(None);
        };
        let dir = tempfile::tempdir().map_err(io("create a temporary directory"))?;
        let runtime = dir.path().join("run");
        let home = dir.path().join("home");
        for path in [&runtime, &home] {
            std::fs::create_dir_all(path).map_err(io(format!("create {}", path.display())))?;
        }
        // PulseAudio insists on a private runtime directory.
        let status =
            Command::new("chmod").arg("700").arg(&runtime).status().map_err(io("chmod"))?;
        if !status.success() {
            return Err(PulseAudioError::NotStarted {
                reason: format!("chmod 700 failed ({status})"),
                log: String::new(),
            });
        }
        let log = runtime.join("pulseaudio.log");
        let log_file = std::fs::File::create(&log).map_err(io("create the daemon log"))?;
        let mut args: Vec<String> = [
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--log-target=stderr",
            "--load=module-native-protocol-unix auth-anonymous=1",
        ]
        .map(String::from)
        .into();
        args.extend(
            sinks
                .iter()
                .map(|s| format!("--load=module-null-sink sink_name={s} rate=48000 channels=1")),
        );
        let child = Command::new(&binary)
            .args(&args)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", &home)
            .env_remove("PULSE_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(io("spawn pulseaudio"))?;
        let mut daemon = PulseAudio { child, pactl, runtime, home, log, _dir: dir };
        let socket = daemon.runtime.join("pulse/native");
        let deadline = Instant::now() + START_LIMIT;
        while !socket.exists() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(daemon.not_started(format!("it exited early ({status})")));
            }
            if Instant::now() > deadline {
                return Err(
                    daemon.not_started(format!("no {} within {START_LIMIT:?}", socket.display()))
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(Some(daemon))
    }

    fn not_started(&self, reason: String) -> PulseAudioError {
        PulseAudioError::NotStarted { reason, log: self.log_text() }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The environment that reaches this daemon.
    fn environment<'a>(&'a self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("HOME", &self.home)
            .env_remove("PULSE_SERVER")
    }

    /// Runs `pactl` against this daemon (`set-default-sink`, `set-default-source`, ...).
    pub fn pactl(&self, args: &[&str]) -> Result<(), PulseAudioError> {
        let status = self
            .environment(Command::new(&self.pactl).args(args))
            .status()
            .map_err(io("run pactl"))?;
        if status.success() {
            Ok(())
        } else {
            Err(PulseAudioError::Pactl { args: args.join(" "), status, log: self.log_text() })
        }
    }

    /// Re-runs the current test binary's test `name` alone in this daemon's environment
    /// (plus `env`), killing it after `limit`. `Ok` when it passed.
    pub fn run_test(
        &self,
        name: &str,
        env: &[(&str, &str)],
        limit: Duration,
    ) -> Result<(), PulseAudioError> {
        let exe = std::env::current_exe().map_err(io("find the test binary"))?;
        let mut command = Command::new(exe);
        command
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env(DAEMON_PID_ENV, self.pid().to_string())
            .envs(env.iter().copied());
        let mut child = self.environment(&mut command).spawn().map_err(io("re-run the test"))?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().map_err(io("wait for the test"))? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(PulseAudioError::Test {
                        outcome: format!("failed ({status})"),
                        log: self.log_text(),
                    })
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PulseAudioError::Test {
                    outcome: format!("did not finish in {limit:?}"),
                    log: self.log_text(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for PulseAudio {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM through kill(1): signalling from Rust directly would need unsafe code.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}
