//! The Debian packages the workspace needs to build and test.

use std::process::Command;

/// Build-time packages: cpal needs the ALSA headers, the bundled libopus needs cmake, and both
/// find their libraries through pkg-config. PulseAudio gives the device test of pipecat-media a
/// real clocked sound server on machines without a sound card (the test starts its own daemon
/// with a null sink).
const PACKAGES: &[&str] =
    &["libasound2-dev", "cmake", "pkg-config", "pulseaudio", "pulseaudio-utils"];

/// Installs the missing packages when running as root; otherwise fails with the exact command.
pub(crate) fn ensure_packages() -> Result<(), String> {
    if !is_debian() {
        // Other systems: cargo reports the missing library itself; nothing to check here.
        return Ok(());
    }
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        return Err(format!("missing Debian packages; run:\n    sudo sh -c '{command}'"));
    }
    println!("xtask: installing {}", missing.join(" "));
    let status = Command::new("sh")
        .args(["-c", &command])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("could not run apt-get: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("`{command}` failed ({status})")) }
}

fn is_debian() -> bool {
    std::path::Path::new("/etc/debian_version").exists()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}
