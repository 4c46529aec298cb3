//! `cargo xtask fuzz`: the coverage-guided fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer).
//!
//! ```text
//! cargo xtask fuzz [TARGET] [--time S] [--runs N]
//! cargo xtask fuzz --smoke
//! ```
//!
//! Runs one target, or every target one after another, for `S` seconds each (default 60)
//! and/or `N` executions each, then prints the executions per target. `test-all` calls
//! [`smoke`] (also `--smoke`): every target for a few seconds from its seeds alone.
//!
//! The targets are built once (`cargo fuzz build`, nightly, release with debug assertions and
//! overflow checks, no sanitizer: the SDK is safe Rust, so panics are what is hunted, and
//! without ASan the parsers run two to three times faster), then their binaries run directly.
//! Each target starts from its checked-in seeds (`fuzz/corpus/<target>/`) plus a working
//! corpus kept under the fuzz target dir, so coverage grows from run to run without touching
//! the repository (the smoke run's working corpus starts empty each time, so that step keeps
//! its length). A crash leaves its input in `fuzz/artifacts/<target>/` and fails the
//! command with the line that replays it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds per target of `cargo xtask fuzz` without `--time`.
const DEFAULT_SECONDS: u64 = 60;
/// Seconds per target in `test-all`.
const SMOKE_SECONDS: u64 = 5;
/// An input that takes longer than this (seconds) is reported as a hang.
const INPUT_TIMEOUT: u64 = 10;

/// How long each target runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit {
    seconds: Option<u64>,
    runs: Option<u64>,
}

/// What one target did.
#[derive(Debug)]
struct Outcome {
    target: String,
    executions: u64,
    elapsed: Duration,
}

/// `cargo xtask fuzz [TARGET] [--time S] [--runs N]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if args == ["--smoke"] {
        return smoke();
    }
    let (target, limit) = parse_args(args)?;
    let all = targets()?;
    let chosen = match target {
        Some(t) if all.contains(&t) => vec![t],
        Some(t) => {
            return Err(format!("no fuzz target {t:?}; the targets are: {}", all.join(", ")));
        }
        None => all,
    };
    ensure_tools()?;
    let bin = build()?;
    let mut outcomes = Vec::new();
    for target in &chosen {
        let work = target_dir().join("corpus").join(target);
        outcomes.push(run_target(&bin.join(target), target, &work, limit, false)?);
    }
    report(&outcomes);
    Ok(())
}

/// `test-all`'s step: every target for [`SMOKE_SECONDS`] from its seeds (with a fresh
/// working corpus, so the step takes as long tomorrow as today).
pub(crate) fn smoke() -> Result<(), String> {
    println!("xtask: == cargo fuzz (every target for {SMOKE_SECONDS} s)");
    ensure_tools()?;
    let bin = build()?;
    let limit = Limit { seconds: Some(SMOKE_SECONDS), runs: None };
    let mut outcomes = Vec::new();
    for target in targets()? {
        let work = target_dir().join("smoke-corpus").join(&target);
        let _ = std::fs::remove_dir_all(&work);
        outcomes.push(run_target(&bin.join(&target), &target, &work, limit, true)?);
    }
    report(&outcomes);
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(Option<String>, Limit), String> {
    let usage = "usage: cargo xtask fuzz [TARGET] [--time SECONDS] [--runs EXECUTIONS] | --smoke";
    let mut target = None;
    let mut limit = Limit { seconds: None, runs: None };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive whole number\n{usage}"))
        };
        match arg.as_str() {
            "--time" => limit.seconds = Some(number("--time")?),
            "--runs" => limit.runs = Some(number("--runs")?),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{usage}"));
            }
            other if target.is_none() => target = Some(other.to_owned()),
            other => return Err(format!("one target at a time (got {other:?} too)\n{usage}")),
        }
    }
    if limit.seconds.is_none() && limit.runs.is_none() {
        limit.seconds = Some(DEFAULT_SECONDS);
    }
    Ok((target, limit))
}

fn fuzz_dir() -> PathBuf {
    crate::workspace_root().join("fuzz")
}

/// The fuzz build's target dir: under `CARGO_TARGET_DIR` when that is set (shared builds),
/// else `fuzz/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("fuzz"),
        None => fuzz_dir().join("target"),
    }
}

/// The targets: the files of `fuzz/fuzz_targets/`, sorted.
fn targets() -> Result<Vec<String>, String> {
    let dir = fuzz_dir().join("fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// `rustup run nightly …`: cargo-fuzz needs a nightly compiler, whatever toolchain runs xtask.
fn nightly(program: &str) -> Command {
    let mut command = Command::new("rustup");
    command.args(["run", "nightly", program]);
    // What the stable cargo running xtask set must not leak into the nightly build.
    for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO", "CARGO_TARGET_DIR"] {
        command.env_remove(var);
    }
    command
}

fn succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs the nightly toolchain and cargo-fuzz when missing, or says what to run.
fn ensure_tools() -> Result<(), String> {
    const NIGHTLY: &str = "rustup toolchain install nightly --profile minimal";
    const CARGO_FUZZ: &str = "cargo install cargo-fuzz";
    if !succeeds(Command::new("rustup").arg("--version")) {
        return Err(format!(
            "cargo fuzz needs rustup (https://rustup.rs) for a nightly toolchain; then run \
             `{NIGHTLY}` and `{CARGO_FUZZ}`"
        ));
    }
    if !succeeds(nightly("rustc").arg("--version")) {
        println!("xtask: installing the nightly toolchain for cargo fuzz: {NIGHTLY}");
        let installed = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return Err(format!("cargo fuzz needs a nightly toolchain; run `{NIGHTLY}`"));
        }
    }
    if !succeeds(nightly("cargo").args(["fuzz", "--version"])) {
        println!("xtask: installing cargo-fuzz: {CARGO_FUZZ}");
        let installed =
            crate::cargo().args(["install", "cargo-fuzz"]).status().is_ok_and(|s| s.success());
        if !installed || !succeeds(nightly("cargo").args(["fuzz", "--version"])) {
            return Err(format!("cargo fuzz is not installed; run `{CARGO_FUZZ}`"));
        }
    }
    Ok(())
}

/// The host's target triple (cargo-fuzz builds for it; its binaries land under it).
fn host() -> Result<String, String> {
    let output = nightly("rustc").arg("-vV").output().map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV names no host triple".into())
}

/// Builds every target once; returns where the binaries are.
fn build() -> Result<PathBuf, String> {
    let host = host()?;
    let target_dir = target_dir();
    crate::step(
        "cargo fuzz build",
        nightly("cargo")
            .args(["fuzz", "build", "--sanitizer", "none", "--target", &host, "--target-dir"])
            .arg(&target_dir)
            .current_dir(crate::workspace_root()),
    )?;
    Ok(target_dir.join(host).join("release"))
}

/// Runs one target's binary from its seeds and the working corpus `work` (where new inputs
/// go); a crash, a hang or a failure to start is an error.
fn run_target(
    binary: &Path,
    target: &str,
    work: &Path,
    limit: Limit,
    quiet: bool,
) -> Result<Outcome, String> {
    let seeds = fuzz_dir().join("corpus").join(target);
    let artifacts = fuzz_dir().join("artifacts").join(target);
    for dir in [work, artifacts.as_path()] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut command = Command::new(binary);
    // New inputs go to the first corpus directory: the working one, not the seeds.
    command.arg(work).arg(&seeds);
    command.arg(format!("-artifact_prefix={}/", artifacts.display()));
    command.args([format!("-timeout={INPUT_TIMEOUT}"), "-print_final_stats=1".into()]);
    if let Some(seconds) = limit.seconds {
        command.arg(format!("-max_total_time={seconds}"));
    }
    if let Some(runs) = limit.runs {
        command.arg(format!("-runs={runs}"));
    }
    println!("xtask: fuzz {target} ({})", describe(limit));
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("fuzz {target}: could not start {}: {e}", binary.display()))?;
    let stderr = child.stderr.take().ok_or("fuzz: no stderr pipe")?;
    let mut executions = 0;
    let mut crash_input = None;
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            executions = n.trim().parse().unwrap_or(0);
        }
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            crash_input = Some(path.trim().to_owned());
        }
        if !quiet {
            eprintln!("{line}");
        }
        tail.push(line);
        if tail.len() > 60 {
            tail.remove(0);
        }
    }
    let status = child.wait().map_err(|e| format!("fuzz {target}: {e}"))?;
    let elapsed = started.elapsed();
    if status.success() {
        return Ok(Outcome { target: target.to_owned(), executions, elapsed });
    }
    if quiet {
        eprintln!("{}", tail.join("\n"));
    }
    Err(match crash_input {
        Some(input) => format!(
            "fuzz {target} found a crash ({status}); its input is {input}; replay it with\n    {} {input}",
            binary.display()
        ),
        None => format!("fuzz {target} failed ({status})"),
    })
}

fn describe(limit: Limit) -> String {
    match (limit.seconds, limit.runs) {
        (Some(s), Some(n)) => format!("{n} executions or {s} s"),
        (Some(s), None) => format!("{s} s"),
        (None, Some(n)) => format!("{n} executions"),
        (None, None) => "until stopped".into(),
    }
}

/// The executions per target, and in all.
fn report(outcomes: &[Outcome]) {
    println!("xtask: fuzz results (0 crashes)");
    println!("    {:<16} {:>14} {:>9} {:>10}", "target", "executions", "seconds", "exec/s");
    let mut total = 0;
    for o in outcomes {
        let seconds = o.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 { o.executions as f64 / seconds } else { 0.0 };
        println!("    {:<16} {:>14} {:>9.0} {:>10.0}", o.target, o.executions, seconds, rate);
        total += o.executions;
    }
    let seconds: f64 = outcomes.iter().map(|o| o.elapsed.as_secs_f64()).sum();
    println!("    {:<16} {:>14} {:>9.0}", "total", total, seconds);
}
