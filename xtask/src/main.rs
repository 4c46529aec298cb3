//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! Subcommands:
//! - `test-all`: everything CI checks (system packages, peer-bot venvs, fmt, clippy, tests,
//!   the interop tests once per pipecat-ai release, docs).
//! - `demo`: the README's main command.
//! - `bench`: the criterion benchmarks; `bench peers`: this SDK next to minimal Python
//!   clients against the same real bot (see `bench_peers.rs`).
//! - `peer-venv`: create or refresh the Python venvs of the real pipecat-ai peer bot.
//! - `codegen`: regenerate the checked-in protobuf code of the WebSocket transport.
//! - `fuzz`: the cargo-fuzz targets of `fuzz/` (see `fuzz.rs`).

mod bench_peers;
mod codegen;
mod fuzz;
mod system;
mod venv;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test-all") => test_all(),
        Some("demo") => demo(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("peer-venv") => peer_venv(&args[1..]),
        Some("daily-venv") => venv::DAILY.ensure().map(|python| {
            println!("daily-python python: {}", python.display());
        }),
        Some("deps") => system::ensure_packages(),
        Some("codegen") if args.get(1).is_some_and(|a| a == "--check") => codegen::check(),
        Some("codegen") => codegen::write(),
        Some("fuzz") => fuzz::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test-all | demo | bench | peer-venv | daily-venv | deps | codegen | fuzz>\n\n\
                 test-all   fmt, clippy, tests (interop against pipecat-ai included) and docs\n\
                 demo       a live session against a local bot (the README's first command)\n\
                 bench      criterion benchmarks (`bench peers [RUNS]`: this SDK next to minimal\n\
                 \x20          aiortc and websockets clients against the same pipecat-ai bot)\n\
                 peer-venv  create the pipecat-ai venv used by the interop tests\n\
                 \x20          (a version such as 1.3.0 for that release, --all for all)\n\
                 daily-venv create the daily-python venv used by the Daily sidecar tests\n\
                 deps       install (as root) or list the Debian packages the build needs\n\
                 codegen    regenerate crates/frames/src/proto/pipecat.rs from frames.proto\n\
                 \x20          (--check: fail if the checked-in file is stale)\n\
                 fuzz       run the fuzz targets of fuzz/, one or all: [TARGET] [--time S] [--runs N]"
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

/// `peer-venv [VERSION... | --all]`: the default release's venv, the named ones, or all.
fn peer_venv(args: &[String]) -> Result<(), String> {
    let releases: Vec<&venv::PeerRelease> = match args {
        [] => vec![&venv::PIPECAT_RELEASES[0]],
        [all] if all == "--all" => venv::PIPECAT_RELEASES.iter().collect(),
        versions => versions.iter().map(|v| venv::pipecat_release(v)).collect::<Result<_, _>>()?,
    };
    for release in releases {
        let python = release.venv.ensure()?;
        println!("peer-bot python (pipecat-ai {}): {}", release.version, python.display());
    }
    Ok(())
}

/// Everything CI runs, in the order that fails fastest.
fn test_all() -> Result<(), String> {
    system::ensure_packages()?;
    codegen::check()?;
    // Every release's venv, each handed to the tests through its own variable.
    let peer_pythons: Vec<(&str, PathBuf)> = venv::PIPECAT_RELEASES
        .iter()
        .map(|r| r.venv.ensure().map(|python| (r.python_env, python)))
        .collect::<Result<_, _>>()?;
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
    // The same packages and features for every test step: one build serves them all (a
    // narrower selection, such as `--test interop` alone, resolves differently and rebuilds).
    let test = || {
        let mut command = cargo();
        command
            .args(["test", "--workspace", "--all-features"])
            // One test at a time: the interop tests each run a real pipecat-ai bot (Python,
            // aiortc) and on a 2-core machine two of them at once starve each other's timers.
            // (An environment variable, because criterion benches reject libtest's flag.)
            .env("RUST_TEST_THREADS", "1")
            .env(venv::DAILY_PYTHON_ENV, &daily_python);
        for (env, python) in &peer_pythons {
            command.env(env, python);
        }
        command
    };
    // Every test but the interop tests' release matrix (the CLI's peer-bot tests run the
    // default release here)...
    let filters: Vec<String> = venv::PIPECAT_RELEASES.iter().map(|r| r.test_filter()).collect();
    let mut skip_releases = vec!["--"];
    for filter in &filters {
        skip_releases.extend(["--skip", filter]);
    }
    step("cargo test", test().args(["--lib", "--bins", "--tests"]).args(&skip_releases))?;
    // (criterion benches take no libtest arguments: they run on their own)
    step("cargo test --benches --examples", test().args(["--benches", "--examples"]))?;
    // ...which runs one pipecat-ai release at a time, so the log shows what each costs.
    for (release, filter) in venv::PIPECAT_RELEASES.iter().zip(&filters) {
        step(
            &format!("interop tests against pipecat-ai {}", release.version),
            test().args(["--tests", "--", filter]),
        )?;
    }
    step("cargo test --doc", cargo().args(["test", "--workspace", "--doc", "--all-features"]))?;
    step(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    fuzz::smoke()?;
    println!("xtask: test-all passed");
    Ok(())
}

fn demo(extra: &[String]) -> Result<(), String> {
    system::ensure_packages()?;
    step("demo", cargo().args(["run", "--quiet", "-p", "pipecat-cli", "--", "demo"]).args(extra))
}

fn bench(extra: &[String]) -> Result<(), String> {
    system::ensure_packages()?;
    if extra.first().is_some_and(|a| a == "peers") {
        return bench_peers::run(&extra[1..]);
    }
    step("cargo bench", cargo().args(["bench", "--workspace"]).args(extra))
}

/// The target directory: `$CARGO_TARGET_DIR` (relative to the workspace root if relative),
/// else `<root>/target`. The Python venvs are cached there.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
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

/// Runs one step, echoing it and how long it took, and turns a non-zero exit into an error
/// naming the step.
fn step(name: &str, command: &mut Command) -> Result<(), String> {
    println!("xtask: == {name}");
    let started = Instant::now();
    let status = command.status().map_err(|e| format!("{name}: could not start: {e}"))?;
    println!("xtask: == {name}: {} ({status})", minutes(started.elapsed()));
    if status.success() { Ok(()) } else { Err(format!("{name} failed ({status})")) }
}

/// `3m07s`.
fn minutes(d: Duration) -> String {
    let secs = d.as_secs();
    format!("{}m{:02}s", secs / 60, secs % 60)
}
