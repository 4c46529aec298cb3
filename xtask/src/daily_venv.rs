//! The Python venv with `daily-python` used by pipecat-daily's sidecar tests (`cargo xtask
//! daily-venv`).
//!
//! It lives under `target/daily-venv` so `cargo clean` removes it and CI caches it with the
//! build. The tests find its interpreter through [`PYTHON_ENV`] or, unset, at that default
//! path; they fail with a message naming `cargo xtask daily-venv` when it is missing.
//!
//! Wiring in main.rs: `Some("daily-venv") => daily_venv::ensure().map(|p| println!(…))`, and in
//! `test-all`: `let daily_python = daily_venv::ensure()?;` then run
//! `cargo test -p pipecat-daily --all-features` with `.env(daily_venv::PYTHON_ENV, &daily_python)`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned daily-python the sidecar bridge is tested with (wheels: Linux x86_64/aarch64
/// with glibc >= 2.28, macOS 13+, Windows x86_64; CPython >= 3.8).
pub(crate) const DAILY_PYTHON_REQUIREMENT: &str = "daily-python==0.36.0";

/// Environment variable through which the pipecat-daily tests find the venv's interpreter.
pub(crate) const PYTHON_ENV: &str = "PIPECAT_DAILY_PYTHON";

/// Creates the venv if it is missing, broken, or was built for another requirement; returns
/// its interpreter.
pub(crate) fn ensure() -> Result<PathBuf, String> {
    let dir = workspace_root()?.join("target").join("daily-venv");
    let python = venv_python(&dir);
    let stamp = dir.join("daily-requirement.txt");
    let stamped = std::fs::read_to_string(&stamp).ok().as_deref() == Some(DAILY_PYTHON_REQUIREMENT);
    if python.exists() && stamped && imports_daily(&python) {
        return Ok(python);
    }
    println!(
        "xtask: creating the daily-python venv in {} ({DAILY_PYTHON_REQUIREMENT})",
        dir.display()
    );
    let host_python = find_host_python()?;
    run(Command::new(&host_python).args(["-m", "venv", "--clear"]).arg(&dir), "create the venv")
        .map_err(|e| {
            format!("{e}\n(on Debian: `apt-get install python3-venv`, then run this again)")
        })?;
    run(
        Command::new(&python).args(["-m", "pip", "install", "--quiet", "--upgrade", "pip"]),
        "upgrade pip",
    )?;
    run(
        Command::new(&python).args(["-m", "pip", "install", "--quiet", DAILY_PYTHON_REQUIREMENT]),
        "install daily-python",
    )
    .map_err(|e| {
        format!(
            "{e}\n(daily-python ships binary wheels only: Linux x86_64/aarch64 with glibc >= 2.28, \
             macOS 13+, Windows x86_64)"
        )
    })?;
    if !imports_daily(&python) {
        return Err(format!("daily-python was installed in {} but does not import", dir.display()));
    }
    std::fs::write(&stamp, DAILY_PYTHON_REQUIREMENT)
        .map_err(|e| format!("write {}: {e}", stamp.display()))?;
    Ok(python)
}

/// The venv's interpreter. The directory is resolved on the file system first: Python finds
/// its venv from the path it was started with, so it must not contain `..`.
fn venv_python(dir: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    }
}

fn imports_daily(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import daily; daily.Daily.init()"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn find_host_python() -> Result<PathBuf, String> {
    for candidate in [
        "python3.13",
        "python3.12",
        "python3.11",
        "python3.10",
        "python3.9",
        "python3.8",
        "python3",
        "python",
    ] {
        let ok = Command::new(candidate)
            .args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(PathBuf::from(candidate));
        }
    }
    Err("daily-python needs Python >= 3.8 on PATH (python3)".into())
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("could not {what}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("could not {what} ({status})")) }
}

/// The workspace root: xtask's manifest dir is `<root>/xtask`.
fn workspace_root() -> Result<&'static Path, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| "xtask must live one level below the workspace root".to_owned())
}
