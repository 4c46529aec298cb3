//! The `pipecat` binary against the real pipecat-ai 1.14.0 peer bot (tests/peer_bot/bot.py),
//! over both transports, through the interop harness. Each test starts its own bot on a free
//! loopback port and runs several commands against it; dropping the harness stops the bot.

mod common;

use common::{assert_json_shape, check_recording, of_type, peak, run_cli, states, summary};
use pipecat_interop_tests::PeerBot;
use serde_json::json;

fn peer_bot(transport: &str, extra: &[&str]) -> PeerBot {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    match runtime.block_on(PeerBot::start(transport, extra)) {
        Ok(bot) => bot,
        Err(e) => panic!("{e}"),
    }
}

/// `connect` with the tone, a client message, typed text and a recording; then a session
/// the bot ends; then a fatal error; then `load -n 3`.
fn exercise(bot: &PeerBot, transport: &str) {
    let start = bot.start_url();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec");

    // 1. A recorded session that ends after --duration.
    let run = run_cli(&[
        "connect",
        "--start",
        &start,
        "--transport",
        transport,
        "--input",
        "tone",
        "--output",
        "none",
        "--client-message",
        r#"ping={"x":1}"#,
        "--send-text",
        "hello there",
        "--duration",
        "4",
        "--record",
        record.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    let lines = run.json_lines();
    assert_json_shape(&lines);
    let ready = of_type(&lines, "bot-ready");
    assert_eq!(ready.len(), 1, "{}", bot.log_tail(20));
    assert_eq!(ready[0]["version"], "2.2.0");
    assert_eq!(ready[0]["about"]["library"], "pipecat-ai");
    assert!(
        of_type(&lines, "server-response")
            .iter()
            .any(|r| r["t"] == "ping" && r["d"]["pong"] == true),
        "the bot answered ping"
    );
    assert!(
        of_type(&lines, "bot-output").iter().any(|o| o["data"]["text"] == "echo: hello there"),
        "the bot answered the typed text"
    );
    assert!(!of_type(&lines, "bot-started-speaking").is_empty(), "the bot echoed the tone");
    let s = summary(&lines);
    assert_eq!(s["ok"], true);
    assert_eq!(s["end"], "duration");
    assert!(s["frames_down"].as_u64().unwrap() > 0);
    let (user, bot_side) = check_recording(
        &record,
        &["client-ready", "client-message", "send-text"],
        &["bot-ready", "server-response", "user-input", "bot-output"],
    );
    assert!(peak(&user) > 3000, "the tone is on the left channel");
    assert!(peak(&bot_side) > 3000, "the echo is on the right channel");

    // 2. The bot ends the session: a clean end.
    let run = run_cli(&[
        "connect",
        "--start",
        &start,
        "--transport",
        transport,
        "--input",
        "silence",
        "--output",
        "none",
        "--client-message",
        "end",
        "--json",
    ]);
    run.expect_code(0);
    let lines = run.json_lines();
    assert_eq!(of_type(&lines, "bot-disconnected").len(), 1);
    assert_eq!(states(&lines).last().map(String::as_str), Some("disconnected"));
    assert_eq!(summary(&lines)["end"], "bot");

    // 3. A fatal error from the bot: exit 1 with one line.
    let fatal = format!("error={}", json!({"error": "peer boom", "fatal": true}));
    let run = run_cli(&[
        "connect",
        "--start",
        &start,
        "--transport",
        transport,
        "--input",
        "silence",
        "--output",
        "none",
        "--client-message",
        &fatal,
        "--duration",
        "20",
    ]);
    run.expect_code(1);
    let reason = run.stderr.lines().rfind(|l| l.starts_with("pipecat:")).unwrap_or_default();
    assert!(reason.contains("peer boom"), "{}", run.stderr);

    // 4. Three concurrent sessions.
    let run = run_cli(&[
        "load",
        "--start",
        &start,
        "--transport",
        transport,
        "-n",
        "3",
        "--duration",
        "2",
        "--json",
    ]);
    run.expect_code(0);
    let load = &run.json_lines()[0];
    assert_eq!(load["sessions"], 3);
    assert_eq!(load["ready"], 3, "{load}");
    assert_eq!(load["failed"], 0, "{load}");
    assert!(load["time_to_ready_ms"]["max"].is_u64());
}

#[test]
fn cli_against_the_peer_bot_over_websocket() {
    let bot = peer_bot("websocket", &[]);
    exercise(&bot, "websocket");
}

#[test]
fn cli_against_the_peer_bot_over_webrtc() {
    let bot = peer_bot("webrtc", &["--loopback-ice"]);
    exercise(&bot, "webrtc");
}
