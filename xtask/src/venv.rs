//! The Python venv of the real pipecat-ai peer bot used by the interop tests.
//!
//! It lives under `target/peer-venv` so `cargo clean` removes it and CI caches it with the build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned server the interop tests prove the SDK against.
pub(crate) const PIPECAT_REQUIREMENT: &str = "pipecat-ai[webrtc,websocket,runner]==1.14.0";

/// Environment variable through which the interop tests find the venv's interpreter.
pub(crate) const PYTHON_ENV: &str = "PIPECAT_PEER_PYTHON";

/// Creates the venv if it is missing or was built for another requirement; returns its python.
pub(crate) fn ensure() -> Result<PathBuf, String> {
    let dir = workspace_root().join("target").join("peer-venv");
    let python = dir.join("bin").join("python");
    let stamp = dir.join("pipecat-requirement.txt");
    if python.exists()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(PIPECAT_REQUIREMENT)
    {
        return Ok(python);
    }
    println!("xtask: creating the peer-bot venv in {} ({PIPECAT_REQUIREMENT})", dir.display());
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
        Command::new(&python).args(["-m", "pip", "install", "--quiet", PIPECAT_REQUIREMENT]),
        "install pipecat-ai",
    )?;
    std::fs::write(&stamp, PIPECAT_REQUIREMENT).map_err(|e| format!("write {stamp:?}: {e}"))?;
    Ok(python)
}

fn find_host_python() -> Result<PathBuf, String> {
    for candidate in ["python3.13", "python3.12", "python3.11", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Ok(PathBuf::from(candidate));
        }
    }
    Err("pipecat-ai needs Python >= 3.11 on PATH (python3)".into())
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("could not {what}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("could not {what} ({status})")) }
}

/// The workspace root: xtask's manifest dir is `<root>/xtask`.
pub(crate) fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root")
}
