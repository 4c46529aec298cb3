//! Python venvs under the target directory for the tests that drive real Python peers: the
//! pipecat-ai peer bot (interop tests, one venv per release) and daily-python (pipecat-daily's
//! sidecar tests).
//!
//! They live under the target directory (`$CARGO_TARGET_DIR`, else `target/`) so `cargo
//! clean` removes them and CI caches them with the build. A stamp file records the
//! requirement a venv was built for; a venv without the right stamp, or that fails its import
//! check, is rebuilt.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One pinned venv.
pub(crate) struct PythonVenv {
    /// Directory name under `target/`.
    pub(crate) dir: &'static str,
    /// The pip requirement, pinned.
    pub(crate) requirement: &'static str,
    /// The oldest Python minor version (3.x) the requirement supports.
    pub(crate) min_minor: u32,
    /// Python code that must run in the venv for it to count as working.
    pub(crate) import_check: &'static str,
    /// Added to an install failure: where the package has wheels.
    pub(crate) install_hint: &'static str,
}

/// One pipecat-ai release the interop tests prove the SDK against: its venv, and the
/// environment variable through which the tests find its interpreter. The interop harness
/// (`tests/interop/src/lib.rs`, `Release`) uses the same directory and variable names.
pub(crate) struct PeerRelease {
    /// The pipecat-ai version.
    pub(crate) version: &'static str,
    /// Environment variable naming the interpreter for the tests.
    pub(crate) python_env: &'static str,
    /// The pinned venv.
    pub(crate) venv: PythonVenv,
}

impl PeerRelease {
    /// The name the interop tests of this release end with (`pipecat_1_3_0`): the filter
    /// that runs only them (and `--skip` of it, everything else).
    pub(crate) fn test_filter(&self) -> String {
        format!("pipecat_{}", self.version.replace('.', "_"))
    }
}

/// A pipecat-ai release with the extras the peer bot needs, checked to import at that version.
macro_rules! pipecat_release {
    ($version:literal, $dir:literal, $env:literal) => {
        PeerRelease {
            version: $version,
            python_env: $env,
            venv: PythonVenv {
                dir: $dir,
                requirement: concat!("pipecat-ai[webrtc,websocket,runner]==", $version),
                min_minor: 11,
                import_check: concat!(
                    "import pipecat, pipecat.runner.run; assert pipecat.version() == '",
                    $version,
                    "'"
                ),
                install_hint: "pipecat-ai needs Python >= 3.11",
            },
        }
    };
}

/// The real servers the interop tests prove the SDK against, newest (the default) first.
pub(crate) const PIPECAT_RELEASES: [PeerRelease; 3] = [
    pipecat_release!("1.14.0", "peer-venv", "PIPECAT_PEER_PYTHON"),
    pipecat_release!("1.12.0", "peer-venv-1.12.0", "PIPECAT_PEER_PYTHON_1_12_0"),
    pipecat_release!("1.3.0", "peer-venv-1.3.0", "PIPECAT_PEER_PYTHON_1_3_0"),
];

/// The release of `version`, or an error listing the known ones.
pub(crate) fn pipecat_release(version: &str) -> Result<&'static PeerRelease, String> {
    PIPECAT_RELEASES.iter().find(|r| r.version == version).ok_or_else(|| {
        let known: Vec<&str> = PIPECAT_RELEASES.iter().map(|r| r.version).collect();
        format!("no peer-bot venv for pipecat-ai {version} (known: {})", known.join(", "))
    })
}

/// daily-python for pipecat-daily's sidecar tests (binary wheels only).
pub(crate) const DAILY: PythonVenv = PythonVenv {
    dir: "daily-venv",
    requirement: "daily-python==0.36.0",
    min_minor: 8,
    import_check: "import daily; daily.Daily.init()",
    install_hint: "daily-python ships binary wheels only: Linux x86_64/aarch64 with glibc >= \
                   2.28, macOS 13+, Windows x86_64",
};

/// Environment variable through which the pipecat-daily tests find the daily-python interpreter.
pub(crate) const DAILY_PYTHON_ENV: &str = "PIPECAT_DAILY_PYTHON";

impl PythonVenv {
    /// Creates the venv if it is missing, broken or built for another requirement; returns its
    /// interpreter.
    pub(crate) fn ensure(&self) -> Result<PathBuf, String> {
        let dir = crate::target_dir().join(self.dir);
        let stamp = dir.join("requirement.txt");
        let python = venv_python(&dir);
        let stamped = std::fs::read_to_string(&stamp).ok().as_deref() == Some(self.requirement);
        if stamped && python.exists() && self.works(&python) {
            return Ok(python);
        }
        println!("xtask: creating the venv {} ({})", dir.display(), self.requirement);
        let host_python = self.find_host_python()?;
        run(
            Command::new(&host_python).args(["-m", "venv", "--clear"]).arg(&dir),
            "create the venv",
        )
        .map_err(|e| {
            format!("{e}\n(on Debian: `apt-get install python3-venv`, then run this again)")
        })?;
        let python = venv_python(&dir);
        run(
            Command::new(&python).args(["-m", "pip", "install", "--quiet", "--upgrade", "pip"]),
            "upgrade pip",
        )?;
        run(
            Command::new(&python).args(["-m", "pip", "install", "--quiet", self.requirement]),
            &format!("install {}", self.requirement),
        )
        .map_err(|e| format!("{e}\n({})", self.install_hint))?;
        if !self.works(&python) {
            return Err(format!(
                "{} was installed in {} but does not import",
                self.requirement,
                dir.display()
            ));
        }
        std::fs::write(&stamp, self.requirement)
            .map_err(|e| format!("write {}: {e}", stamp.display()))?;
        Ok(python)
    }

    fn works(&self, python: &Path) -> bool {
        quiet(Command::new(python).args(["-c", self.import_check]))
    }

    fn find_host_python(&self) -> Result<PathBuf, String> {
        let check = format!(
            "import sys; sys.exit(0 if sys.version_info >= (3, {}) else 1)",
            self.min_minor
        );
        // The plain `python3` first: version shims (pyenv) may exist for interpreters that are
        // not active, and probing them prints noise.
        let candidates = ["python3", "python3.13", "python3.12", "python3.11", "python"];
        candidates
            .iter()
            .find(|c| quiet(Command::new(c).args(["-c", &check])))
            .map(PathBuf::from)
            .ok_or_else(|| {
                format!(
                    "{} needs Python >= 3.{} on PATH (python3)",
                    self.requirement, self.min_minor
                )
            })
    }
}

/// The venv's interpreter. The directory is resolved first: Python finds its venv from the path
/// it was started with, so that path must not contain `..`.
fn venv_python(dir: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    }
}

/// Runs a probe without output; `true` if it succeeded.
fn quiet(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("could not {what}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("could not {what} ({status})")) }
}
