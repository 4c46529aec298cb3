//! `cargo xtask codegen`: the Rust types of pipecat's WebSocket wire format.
//!
//! The WebSocket transport speaks pipecat's protobuf `pipecat.Frame` (see
//! `crates/frames/proto/frames.proto`, a verbatim copy of the file shipped in the pinned
//! `pipecat-ai` wheel). Its Rust code is generated with prost and checked in, so building the
//! SDK needs neither `protoc` nor this generator:
//!
//! 1. `protox` parses the `.proto` into a `FileDescriptorSet` (pure Rust, no `protoc`);
//! 2. `prost_build::Config::compile_fds` turns that into Rust, one file per package
//!    (`pipecat` gives `pipecat.rs`);
//! 3. `rustfmt` formats it with the workspace's `rustfmt.toml`, so `cargo fmt --check` accepts
//!    the checked-in file whether the crate `include!`s it or declares it as a module.
//!
//! [`write()`] replaces the checked-in file; [`check`] regenerates into a temporary directory and
//! fails if the checked-in file differs (run by `cargo xtask test-all`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The protobuf source, relative to the workspace root.
const PROTO: &str = "crates/frames/proto/frames.proto";

/// The checked-in generated code, relative to the workspace root. prost-build names the file
/// after the proto package (`package pipecat;`).
const GENERATED: &str = "crates/frames/src/proto/pipecat.rs";

/// Regenerates the checked-in Rust code from the proto file.
pub(crate) fn write() -> Result<(), String> {
    let root = crate::workspace_root();
    let code = generate(root)?;
    let target = root.join(GENERATED);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    std::fs::write(&target, code).map_err(|e| format!("write {}: {e}", target.display()))?;
    println!("xtask: wrote {}", target.display());
    Ok(())
}

/// Fails if the checked-in generated code is not what the generator produces today.
pub(crate) fn check() -> Result<(), String> {
    println!("xtask: == codegen check");
    let root = crate::workspace_root();
    let fresh = generate(root)?;
    let target = root.join(GENERATED);
    let current = std::fs::read_to_string(&target).unwrap_or_default();
    if current == fresh {
        Ok(())
    } else {
        Err(format!("generated code is stale: run cargo xtask codegen ({GENERATED})"))
    }
}

/// Runs protox, prost-build and rustfmt, and returns the formatted code of `pipecat.rs`.
fn generate(root: &Path) -> Result<String, String> {
    let proto = root.join(PROTO);
    let include = proto.parent().expect("the proto path has a parent");
    let descriptors = protox::compile([&proto], [include])
        .map_err(|e| format!("parse {}: {e}", proto.display()))?;

    let out = TempDir::new()?;
    prost_build::Config::new()
        .out_dir(out.path())
        // Audio payloads decode as `Bytes`, so a frame read from a `Bytes` buffer (what
        // tungstenite hands over) shares it instead of copying the PCM.
        .bytes([".pipecat.AudioRawFrame.audio"])
        .compile_fds(descriptors)
        .map_err(|e| format!("prost-build: {e}"))?;

    let file = out.path().join("pipecat.rs");
    rustfmt(root, &file)?;
    std::fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))
}

/// Formats `file` in place the way `cargo fmt` formats the workspace.
fn rustfmt(root: &Path, file: &Path) -> Result<(), String> {
    let output = Command::new("rustfmt")
        .args(["--edition", "2024", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run rustfmt (rustup component add rustfmt): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("rustfmt failed: {}", String::from_utf8_lossy(&output.stderr)))
    }
}

/// A uniquely named directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir()
            .join(format!("pipecat-xtask-codegen-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
