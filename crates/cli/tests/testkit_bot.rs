//! The `pipecat` binary against the in-process test bot (pipecat-testkit), over both
//! transports: `demo`, `connect` (JSON output, recording, exit codes) and `load`.

mod common;

use std::time::Duration;

use common::{
    assert_json_shape, check_recording, of_type, peak, run_cli, run_cli_within, states, summary,
};
use pipecat_testkit::{BotReadyMode, BotTransport, TestBot};
use serde_json::json;

/// A test bot serving both transports, on a runtime that keeps serving while the test
/// thread waits for the CLI.
fn bot() -> (tokio::runtime::Runtime, TestBot) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let bot = runtime
        .block_on(
            TestBot::builder().transports([BotTransport::WebSocket, BotTransport::WebRtc]).start(),
        )
        .expect("the test bot starts");
    (runtime, bot)
}

fn shutdown(runtime: tokio::runtime::Runtime, bot: TestBot) {
    runtime.block_on(bot.shutdown());
    runtime.shutdown_timeout(Duration::from_secs(2));
}

#[test]
fn demo_over_websocket_prints_json_events() {
    let run = run_cli(&["demo", "--json"]);
    run.expect_code(0);
    let lines = run.json_lines();
    assert_json_shape(&lines);
    assert_eq!(
        states(&lines),
        [
            "authenticating",
            "authenticated",
            "connecting",
            "connected",
            "ready",
            "disconnecting",
            "disconnected"
        ]
    );
    let ready = of_type(&lines, "bot-ready");
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["version"], "2.2.0");
    let pong = of_type(&lines, "server-response");
    assert!(pong.iter().any(|r| r["t"] == "ping" && r["d"]["pong"] == true), "{pong:?}");
    assert!(of_type(&lines, "server-message").iter().any(|m| m["data"]["hello"] == "from the bot"));
    assert!(
        of_type(&lines, "bot-output").iter().any(|o| o["data"]["text"] == "echo: Hello, bot!"),
        "the bot answered the typed text"
    );
    let handled = of_type(&lines, "function-call-handled");
    assert_eq!(handled.len(), 1);
    assert_eq!(handled[0]["function_name"], "get_weather");
    assert_eq!(handled[0]["result"]["city"], "Paris");
    assert!(!of_type(&lines, "bot-started-speaking").is_empty(), "the tone was echoed");
    let summary = summary(&lines);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["end"], "done");
    assert!(summary["frames_up"].as_u64().unwrap() > 0);
    assert!(summary["frames_down"].as_u64().unwrap() > 0);
}

#[test]
fn demo_over_webrtc_prints_a_readable_session() {
    let run = run_cli(&["demo", "--transport", "webrtc"]);
    run.expect_code(0);
    for expected in [
        "connecting -> connected",
        "ready: RTVI 2.2.0",
        "started speaking",
        "request ping answered",
        "says: \"echo: Hello, bot!\"",
        "answered get_weather",
        "ready -> disconnecting",
    ] {
        assert!(run.stdout.contains(expected), "no {expected:?} in\n{}", run.stdout);
    }
}

#[test]
fn connect_over_websocket_records_both_directions() {
    let (runtime, bot) = bot();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec");
    let out = dir.path().join("bot.wav");
    let run = run_cli(&[
        "connect",
        "--start",
        &bot.start_url(),
        "--transport",
        "websocket",
        "--input",
        "tone",
        "--output",
        out.to_str().unwrap(),
        "--client-message",
        r#"ping={"n":1}"#,
        "--send-text",
        "hi",
        "--duration",
        "2.5",
        "--record",
        record.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    let lines = run.json_lines();
    assert_json_shape(&lines);
    assert!(states(&lines).contains(&"ready".to_owned()));
    assert!(of_type(&lines, "server-response").iter().any(|r| r["d"]["echo"]["n"] == 1));
    assert_eq!(summary(&lines)["end"], "duration");

    let (user, bot_side) = check_recording(
        &record,
        &["client-ready", "client-message", "send-text"],
        &["bot-ready", "server-response", "bot-output"],
    );
    assert!(peak(&user) > 3000, "the tone is on the left channel");
    assert!(peak(&bot_side) > 3000, "the echo is on the right channel");
    let reader = hound::WavReader::open(&out).expect("the output WAV is readable");
    assert!(reader.duration() > 12_000, "about a second of echo in --output");
    shutdown(runtime, bot);
}

#[test]
fn connect_over_webrtc_ends_cleanly_when_the_bot_leaves() {
    let (runtime, bot) = bot();
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec");
    let run = run_cli(&[
        "connect",
        "--offer-url",
        &bot.offer_url(),
        "--input",
        "silence",
        "--output",
        "none",
        "--client-message",
        "end",
        "--record",
        record.to_str().unwrap(),
        "--json",
    ]);
    run.expect_code(0);
    let lines = run.json_lines();
    assert_json_shape(&lines);
    assert_eq!(of_type(&lines, "bot-disconnected").len(), 1);
    assert_eq!(states(&lines).last().map(String::as_str), Some("disconnected"));
    assert_eq!(summary(&lines)["end"], "bot");
    check_recording(
        &record,
        &["client-ready", "client-message"],
        &["bot-ready", "server-response"],
    );
    shutdown(runtime, bot);
}

#[test]
fn a_fatal_bot_error_exits_1_with_one_line() {
    let (runtime, bot) = bot();
    let fatal = json!({"error": "boom", "fatal": true}).to_string();
    let message = format!("error={fatal}");
    let run = run_cli(&[
        "connect",
        "--ws-url",
        &bot.ws_url(),
        "--input",
        "silence",
        "--output",
        "none",
        "--client-message",
        &message,
        "--json",
    ]);
    run.expect_code(1);
    let errors = run.json_lines();
    assert!(of_type(&errors, "error").iter().any(|e| e["fatal"] == true && e["message"] == "boom"));
    let stderr: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("pipecat:")).collect();
    assert_eq!(stderr.len(), 1, "{}", run.stderr);
    assert!(stderr[0].ends_with("fatal error from the bot: boom"), "{}", stderr[0]);
    shutdown(runtime, bot);
}

#[test]
fn a_fatal_bot_error_before_ready_reads_as_after_ready_and_exits_3() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let bot = runtime
        .block_on(
            TestBot::builder()
                .transports([BotTransport::WebSocket])
                .bot_ready(BotReadyMode::Never)
                .on_session_start(|session| async move {
                    let _ = session.send_error("boom", true);
                })
                .start(),
        )
        .expect("the test bot starts");
    let run =
        run_cli(&["connect", "--ws-url", &bot.ws_url(), "--input", "silence", "--output", "none"]);
    run.expect_code(3);
    let stderr: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("pipecat:")).collect();
    assert_eq!(stderr.len(), 1, "{}", run.stderr);
    // The wording a_fatal_bot_error_exits_1_with_one_line sees after ready.
    assert!(stderr[0].ends_with("fatal error from the bot: boom"), "{}", stderr[0]);
    shutdown(runtime, bot);
}

#[test]
fn function_calls_are_answered_by_a_fixed_result_or_a_command() {
    let (runtime, bot) = bot();
    let call = |name: &str, id: &str| {
        let d = json!({"function_name": name, "tool_call_id": id, "arguments": {"city": "Oslo"}});
        format!("fn-call={d}")
    };
    let run = run_cli(&[
        "connect",
        "--ws-url",
        &bot.ws_url(),
        "--input",
        "silence",
        "--output",
        "none",
        "--function",
        r#"get_weather={"temp_c":21}"#,
        "--function-command",
        "echo_city=cat",
        "--client-message",
        &call("get_weather", "t1"),
        "--client-message",
        &call("echo_city", "t2"),
        "--client-message",
        &call("nobody_answers", "t3"),
        "--duration",
        "2",
        "--json",
    ]);
    run.expect_code(0);
    let results = bot.recorder().function_call_results();
    let result_of =
        |id: &str| results.iter().find(|r| r.tool_call_id == id).map(|r| r.result.clone());
    assert_eq!(result_of("t1"), Some(json!({"temp_c": 21})));
    assert_eq!(result_of("t2"), Some(json!({"city": "Oslo"})));
    assert_eq!(result_of("t3"), None, "a call without an answer is left to the bot");
    let lines = run.json_lines();
    assert!(
        of_type(&lines, "function-call-undispatched").iter().any(|e| e["tool_call_id"] == "t3"),
        "the unanswered call is reported"
    );
    shutdown(runtime, bot);
}

#[test]
fn startup_failures_exit_3_and_usage_errors_exit_2() {
    // Nothing listens on port 1.
    let run = run_cli_within(
        &[
            "connect",
            "--start",
            "http://127.0.0.1:1/start",
            "--input",
            "silence",
            "--output",
            "none",
        ],
        Duration::from_secs(60),
    );
    run.expect_code(3);
    assert!(
        run.stderr
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("pipecat: error: could not start")
    );

    run_cli(&[
        "connect",
        "--ws-url",
        "ws://127.0.0.1:1/ws",
        "--offer-url",
        "http://127.0.0.1:1/api/offer",
    ])
    .expect_code(2);
    run_cli(&["connect", "--start", "http://127.0.0.1:1/start", "--input", "/nonexistent/in.wav"])
        .expect_code(2);
    run_cli(&["connect", "--start", "http://127.0.0.1:1/start", "--client-message", "x={"])
        .expect_code(2);
    run_cli(&["load", "--start", "http://127.0.0.1:1/start", "-n", "0"]).expect_code(2);
}

#[test]
fn load_runs_three_sessions_over_both_transports() {
    let (runtime, bot) = bot();
    let run = run_cli(&[
        "load",
        "--start",
        &bot.start_url(),
        "-n",
        "3",
        "--transport",
        "websocket",
        "--duration",
        "1",
        "--json",
    ]);
    run.expect_code(0);
    let summary = &run.json_lines()[0];
    assert_eq!(summary["type"], "load-summary");
    assert_eq!(summary["sessions"], 3);
    assert_eq!(summary["ready"], 3);
    assert_eq!(summary["failed"], 0);
    assert!(summary["time_to_ready_ms"]["p50"].is_u64());
    assert!(summary["time_to_ready_ms"]["p95"].is_u64());
    assert!(summary["time_to_ready_ms"]["max"].is_u64());
    let sessions = summary["per_session"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    assert!(sessions.iter().all(|s| s["frames_up"].as_u64().unwrap() > 0));
    // Every session held about its --duration, and its audio up covered the time held.
    for s in sessions {
        assert!(s["held_ms"].as_u64().unwrap() >= 1000, "{s}");
        assert!(s["audio_up_short_ms"].is_null(), "{s}");
    }
    assert_eq!(summary["audio"]["sessions_short_up"], 0);
    let total_up: u64 = sessions.iter().map(|s| s["frames_up"].as_u64().unwrap()).sum();
    assert_eq!(summary["audio"]["frames_up"], total_up);
    let process = &summary["process"];
    assert!(process["cpu_ms"].is_u64(), "{process}");
    assert!(
        process["rss_peak_kib"].as_u64().unwrap() >= process["rss_start_kib"].as_u64().unwrap()
    );
    assert!(process["per_session"]["cpu_percent_of_a_core"].is_f64(), "{process}");
    assert!(process["per_session"]["rss_kib"].is_u64(), "{process}");

    let run = run_cli(&["load", "--start", &bot.start_url(), "-n", "3", "--duration", "1"]);
    run.expect_code(0);
    assert!(run.stdout.contains("sessions: 3 run, 3 ready, 0 failed"), "{}", run.stdout);
    assert!(run.stdout.contains("time to ready: p50"), "{}", run.stdout);
    assert!(run.stdout.contains("errors: none"), "{}", run.stdout);
    assert!(run.stdout.contains("audio: "), "{}", run.stdout);
    assert!(run.stdout.contains("process: "), "{}", run.stdout);
    // Not a terminal: no progress bar on stderr.
    assert!(!run.stderr.contains("starting,"), "{}", run.stderr);
    shutdown(runtime, bot);
}

#[test]
fn load_takes_the_media_and_network_flags_of_connect() {
    let (runtime, bot) = bot();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bot.wav");
    let run = run_cli(&[
        "load",
        "--start",
        &bot.start_url(),
        "-n",
        "2",
        "--transport",
        "websocket",
        "--input",
        "tone:300",
        "--output",
        out.to_str().unwrap(),
        "--ice-server",
        "stun:127.0.0.1:3478",
        "--duration",
        "1",
        "--json",
    ]);
    run.expect_code(0);
    for index in 1..=2 {
        let file = dir.path().join(format!("bot-{index}.wav"));
        let reader = hound::WavReader::open(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert!(reader.duration() > 0, "{file:?} is empty");
    }
    // A device cannot serve many sessions: a usage error that says so.
    let run = run_cli(&["load", "--start", &bot.start_url(), "--input", "mic"]);
    run.expect_code(2);
    assert!(run.stderr.contains("cannot share a microphone"), "{}", run.stderr);
    shutdown(runtime, bot);
}

#[test]
fn load_counts_errors_by_kind() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bot = runtime
        .block_on(TestBot::builder().start_failure(503, json!({"detail": "busy"})).start())
        .unwrap();
    let run =
        run_cli(&["load", "--start", &bot.start_url(), "-n", "2", "--duration", "1", "--json"]);
    run.expect_code(1);
    let summary = &run.json_lines()[0];
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["errors"]["start-http-503"], 2);
    assert!(run.stderr.contains("2 of 2 sessions failed"), "{}", run.stderr);
    shutdown(runtime, bot);
}
