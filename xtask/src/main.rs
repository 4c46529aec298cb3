//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! Subcommands:
//! - `test-all`: everything CI checks (system packages, peer-bot venv, fmt, clippy, tests, docs).
//! - `demo`: the README's main command.
//! - `bench`: the criterion benchmarks.
//! - `peer-venv`: create or refresh the Python venv of the real pipecat-ai peer bot.
//! - `codegen`: regenerate the checked-in protobuf code of the WebSocket transport.

mod codegen;
mod system;
mod venv;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test-all") => test_all(),
        Some("demo") => demo(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("peer-venv") => venv::PIPECAT.ensure().map(|python| {
            println!("peer-bot python: {}", python.display());
        }),
        Some("daily-venv") => venv::DAILY.ensure().map(|python| {
            println!("daily-python python: {}", python.display());
        }),
        Some("deps") => system::ensure_packages(),
        Some("codegen") if args.get(1).is_some_and(|a| a == "--check") => codegen::check(),
        Some("codegen") => codegen::write(),
        _ => {
            eprintln!(
                "usage: cargo xtask <test-all | demo | bench | peer-venv | daily-venv | deps | codegen>\n\n\
                 test-all   fmt, clippy, tests (interop against pipecat-ai included) and docs\n\
                 demo       a live session against a local bot (the README's first command)\n\
                 bench      criterion benchmarks\n\
                 peer-venv  create the pipecat-ai venv used by the interop tests\n\
                 daily-venv create the daily-python venv used by the Daily sidecar tests\n\
                 deps       install (as root) or list the Debian packages the build needs\n\
                 codegen    regenerate crates/websocket/src/proto/pipecat.rs from frames.proto\n\
                 \x20          (--check: fail if the checked-in file is stale)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Everything CI runs, in the order that fails fastest.
fn test_all() -> Result<(), String> {
    system::ensure_packages()?;
    codegen::check()?;
    let python = venv::PIPECAT.ensure()?;
    let daily_python = venv::DAILY.ensure()?;
    step("cargo fmt --check", cargo().args(["fmt", "--all", "--check"]))?;
    step(
        "cargo clippy",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    step(
        "cargo clippy --all-features",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "cargo test",
        cargo()
            .args(["test", "--workspace", "--all-targets", "--all-features"])
            // One test at a time: the interop tests each run a real pipecat-ai bot (Python,
            // aiortc) and on a 2-core machine two of them at once starve each other's timers.
            // (An environment variable, because criterion benches reject libtest's flag.)
            .env("RUST_TEST_THREADS", "1")
            .env(venv::PIPECAT_PYTHON_ENV, &python)
            .env(venv::DAILY_PYTHON_ENV, &daily_python),
    )?;
    step("cargo test --doc", cargo().args(["test", "--workspace", "--doc", "--all-features"]))?;
    step(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    println!("xtask: test-all passed");
    Ok(())
}

fn demo(extra: &[String]) -> Result<(), String> {
    system::ensure_packages()?;
    step("demo", cargo().args(["run", "--quiet", "-p", "pipecat-cli", "--", "demo"]).args(extra))
}

fn bench(extra: &[String]) -> Result<(), String> {
    system::ensure_packages()?;
    step("cargo bench", cargo().args(["bench", "--workspace"]).args(extra))
}

/// The workspace root: xtask's manifest dir is `<root>/xtask`.
pub(crate) fn workspace_root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs one step, echoing it, and turns a non-zero exit into an error naming the step.
fn step(name: &str, command: &mut Command) -> Result<(), String> {
    println!("xtask: == {name}");
    let status = command.status().map_err(|e| format!("{name}: could not start: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{name} failed ({status})")) }
}
