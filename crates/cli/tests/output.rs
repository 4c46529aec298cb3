//! What the `pipecat` binary writes: `--json` and `--record` lose nothing under a burst of
//! the in-process test bot (issue 13, defect 4); logs on a file or a pipe carry no colour
//! codes (defect 6); protocol warnings in `--json` are structured, not Rust debug text
//! (defect 7).

mod common;

use std::time::Duration;

use common::{RUN_LIMIT, Run, of_type, run_cli_with_env};
use pipecat_testkit::{BotTransport, TestBot, TestBotBuilder};
use serde_json::{Value, json};

/// Server messages the bot pushes at once, far beyond the client's event capacity (1024).
const BURST: u64 = 20_000;

/// The WebSocket test bot `builder` makes, on a runtime that keeps serving while the test
/// thread waits for the CLI.
fn serve(builder: TestBotBuilder) -> (tokio::runtime::Runtime, TestBot) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let bot = runtime
        .block_on(builder.transports([BotTransport::WebSocket]).start())
        .expect("the test bot starts");
    (runtime, bot)
}

fn shutdown(runtime: tokio::runtime::Runtime, bot: TestBot) {
    runtime.block_on(bot.shutdown());
    runtime.shutdown_timeout(Duration::from_secs(2));
}

/// `pipecat connect --ws-url <ws_url>` without audio devices, with `extra` arguments, under
/// `env` (see [`run_cli_with_env`]).
fn connect(ws_url: &str, extra: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut args = vec!["connect", "--ws-url", ws_url, "--input", "silence", "--output", "none"];
    args.extend_from_slice(extra);
    run_cli_with_env(&args, env, RUN_LIMIT)
}

/// A bot that pushes [`BURST`] numbered `server-message`s, then `{"last": true}`, as soon as
/// it is ready.
fn bursting_bot() -> (tokio::runtime::Runtime, TestBot) {
    serve(TestBot::builder().on_bot_ready(|session| async move {
        for n in 0..BURST {
            let _ = session.send_server_message(json!({"n": n}));
        }
        let _ = session.send_server_message(json!({"last": true}));
    }))
}

/// Checks that `lines` hold every message of the burst, in order, and no `lagged`.
fn assert_whole_burst(lines: &[Value], what: &str) {
    let lagged = of_type(lines, "lagged");
    let missed: u64 = lagged.iter().filter_map(|l| l["missed"].as_u64()).sum();
    assert!(lagged.is_empty(), "{what} lagged {} times, {missed} events lost", lagged.len());
    let messages = of_type(lines, "server-message");
    assert!(
        messages.last().is_some_and(|m| m["data"]["last"] == true),
        "the burst did not finish within the session ({} messages in {what})",
        messages.len()
    );
    let numbered: Vec<u64> = messages.iter().filter_map(|m| m["data"]["n"].as_u64()).collect();
    assert_eq!(numbered.len() as u64, BURST, "server-messages in {what}");
    assert!(numbered.iter().copied().eq(0..BURST), "{what}: the burst is out of order");
}

#[test]
fn json_output_and_the_recording_lose_nothing_under_a_burst() {
    let (runtime, bot) = bursting_bot();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec");
    let run = connect(
        &bot.ws_url(),
        &["--duration", "4", "--record", record.to_str().unwrap(), "--json"],
        &[],
    );
    run.expect_code(0);
    assert_whole_burst(&run.json_lines(), "--json");
    let recorded = std::fs::read_to_string(record.join("events.jsonl")).expect("events.jsonl");
    let recorded: Vec<Value> =
        recorded.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_whole_burst(&recorded, "events.jsonl");
    shutdown(runtime, bot);
}

/// Runs a `connect` that fails at once (nothing listens on port 1) with debug logs on a piped
/// stderr, under `env`; returns that stderr.
fn piped_logs(env: &[(&str, Option<&str>)]) -> String {
    let run = connect("ws://127.0.0.1:1/ws", &["--log", "debug"], env);
    run.expect_code(3);
    assert!(run.stderr.contains("DEBUG"), "no debug log line on stderr:\n{}", run.stderr);
    run.stderr
}

#[test]
fn logs_on_a_pipe_carry_no_colour_codes() {
    let stderr = piped_logs(&[("NO_COLOR", None)]);
    assert!(!stderr.contains('\x1b'), "ANSI codes on a piped stderr:\n{stderr:?}");
}

#[test]
fn no_color_is_honoured() {
    for value in ["1", "true"] {
        let stderr = piped_logs(&[("NO_COLOR", Some(value))]);
        assert!(!stderr.contains('\x1b'), "ANSI codes with NO_COLOR={value}:\n{stderr:?}");
    }
}

#[test]
fn a_protocol_warning_in_json_is_structured() {
    let (runtime, bot) = serve(TestBot::builder().protocol_version("1.0.0"));
    let run = connect(&bot.ws_url(), &["--duration", "0.5", "--json"], &[]);
    run.expect_code(0);
    let lines = run.json_lines();
    let warnings = of_type(&lines, "protocol-warning");
    let legacy = warnings
        .iter()
        .find(|w| w["kind"] == "bot-version")
        .unwrap_or_else(|| panic!("no bot-version warning in {warnings:?}"));
    assert_eq!(legacy["version"], "1.0.0");
    assert_eq!(legacy["compatibility"], "legacy");
    assert_eq!(legacy["client_version"], "2.2.0");
    for warning in &warnings {
        let text = warning.to_string();
        assert!(!text.contains("ProtocolVersion {") && !text.contains(" { "), "Debug: {text}");
        assert!(warning["description"].is_string(), "{text}");
    }
    shutdown(runtime, bot);
}
