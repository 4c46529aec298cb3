//! `cargo xtask bench peers [RUNS]`: this SDK next to minimal Python clients, against the same
//! real pipecat-ai bot, in one run.
//!
//! For each transport it starts the peer bot (`tests/peer_bot/bot.py`, pipecat-ai of the
//! default release, loopback only) and runs, one after another against it, this SDK's
//! `time_to_ready` example (release build) and the matching client of
//! `tests/peer_bot/minimal_clients.py` (aiortc over SmallWebRTC, websockets over WebSocket),
//! `RUNS` sessions each (default 20), twice in alternating order so neither always goes
//! first. Each prints a `RESULT` line (median call -> ready, median request round trip);
//! the table at the end gives the figures and the SDK / Python ratios.
//!
//! The figures are measurements, not checks: nothing here fails on a slow result.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::venv;

/// How long the bot may take to serve `/status` after it starts.
const BOT_START_LIMIT: Duration = Duration::from_secs(90);
/// How long it gets to exit after SIGTERM before it is killed.
const BOT_STOP_GRACE: Duration = Duration::from_secs(5);

/// What one client measured.
#[derive(Debug, Clone, Copy)]
struct Figures {
    ready_ms: f64,
    rtt_ms: f64,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let runs: u32 = match args {
        [] => 20,
        [n] => n.parse().ok().filter(|n| *n > 0).ok_or("usage: cargo xtask bench peers [RUNS]")?,
        _ => return Err("usage: cargo xtask bench peers [RUNS]".into()),
    };
    let python = venv::PIPECAT_RELEASES[0].venv.ensure()?;
    crate::step(
        "build the time_to_ready example (release)",
        crate::cargo().args(["build", "--release", "-p", "pipecat", "--example", "time_to_ready"]),
    )?;
    let sdk = crate::target_dir().join("release/examples/time_to_ready");
    let root = crate::workspace_root();
    let clients = root.join("tests/peer_bot/minimal_clients.py");

    let mut rows = Vec::new();
    for (transport, python_client) in [("webrtc", "aiortc"), ("websocket", "websockets")] {
        let bot = Bot::start(&python, root, transport)?;
        let start_url = format!("http://localhost:{}/start", bot.port);
        let mut sdk_args = vec![transport.to_owned(), start_url.clone(), runs.to_string()];
        let mut py_args = vec![
            clients.display().to_string(),
            transport.to_owned(),
            start_url.clone(),
            runs.to_string(),
        ];
        if transport == "webrtc" {
            sdk_args.push("--loopback".into());
            py_args.push("--loopback".into());
        }
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 0..2 {
            let sdk_first = round == 0;
            for sdk_turn in [sdk_first, !sdk_first] {
                if sdk_turn {
                    ours.push(measure(&format!("this SDK, {transport}"), &sdk, &sdk_args)?);
                } else {
                    theirs.push(measure(
                        &format!("{python_client}, {transport}"),
                        &python,
                        &py_args,
                    )?);
                }
            }
        }
        drop(bot);
        rows.push((transport, python_client, mean(&ours), mean(&theirs)));
    }

    println!(
        "\nxtask: side by side, pipecat-ai {} peer bot, loopback, {runs} sessions x 2 rounds each (medians, averaged over the rounds)",
        venv::PIPECAT_RELEASES[0].version
    );
    println!(
        "{:<26} {:>14} {:>14} {:>13} {:>11}",
        "client", "call->ready", "request RTT", "ready ratio", "RTT ratio"
    );
    for (transport, python_client, ours, theirs) in rows {
        println!(
            "{:<26} {:>11.2} ms {:>11.3} ms {:>13} {:>11}",
            format!("{python_client} ({transport})"),
            theirs.ready_ms,
            theirs.rtt_ms,
            "",
            ""
        );
        println!(
            "{:<26} {:>11.2} ms {:>11.3} ms {:>12.2}x {:>10.2}x",
            format!("this SDK ({transport})"),
            ours.ready_ms,
            ours.rtt_ms,
            ours.ready_ms / theirs.ready_ms,
            ours.rtt_ms / theirs.rtt_ms
        );
    }
    Ok(())
}

fn mean(figures: &[Figures]) -> Figures {
    let n = figures.len().max(1) as f64;
    Figures {
        ready_ms: figures.iter().map(|f| f.ready_ms).sum::<f64>() / n,
        rtt_ms: figures.iter().map(|f| f.rtt_ms).sum::<f64>() / n,
    }
}

/// Runs one client to its end, echoing its output, and reads its `RESULT` line.
fn measure(name: &str, program: &Path, args: &[String]) -> Result<Figures, String> {
    println!("xtask: == {name}");
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: could not start {}: {e}", program.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{name}: {e}"))?;
        println!("    {line}");
        if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(parse_result(json).ok_or_else(|| format!("{name}: bad result {json}"))?);
        }
    }
    let status = child.wait().map_err(|e| format!("{name}: {e}"))?;
    if !status.success() {
        return Err(format!("{name} failed ({status})"));
    }
    result.ok_or_else(|| format!("{name} printed no RESULT line"))
}

/// `{"ready_ms": 37.2, "rtt_ms": 1.1, "runs": 20}`: the two numbers (xtask has no JSON
/// parser, and this one shape is all it reads).
fn parse_result(json: &str) -> Option<Figures> {
    let number = |key: &str| -> Option<f64> {
        let rest = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let end = rest.find(|c: char| c != '.' && c != '-' && !c.is_ascii_digit())?;
        rest[..end].parse().ok()
    };
    Some(Figures { ready_ms: number("ready_ms")?, rtt_ms: number("rtt_ms")? })
}

/// The peer bot on a free loopback port, stopped (SIGTERM, then SIGKILL) when dropped.
struct Bot {
    child: Child,
    port: u16,
}

impl Bot {
    fn start(python: &PathBuf, root: &Path, transport: &str) -> Result<Bot, String> {
        let port = free_port()?;
        let mut command = Command::new(python);
        command
            .arg(root.join("tests/peer_bot/bot.py"))
            .args(["--host", "localhost", "--port", &port.to_string(), "-t", transport])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if transport == "webrtc" {
            command.arg("--loopback-ice");
        }
        let child = command.spawn().map_err(|e| format!("starting the peer bot: {e}"))?;
        let bot = Bot { child, port };
        let started = Instant::now();
        while !status_ok(port) {
            if started.elapsed() > BOT_START_LIMIT {
                return Err(format!(
                    "the peer bot did not serve /status within {BOT_START_LIMIT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(bot)
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + BOT_STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("a free port: {e}"))
}

/// Whether `GET /status` answers 200 on the port.
fn status_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_numbers_of_a_result_line() {
        let f = parse_result(r#"{"ready_ms": 37.25, "rtt_ms": 1.155, "runs": 20}"#).unwrap();
        assert_eq!((f.ready_ms, f.rtt_ms), (37.25, 1.155));
        let f = parse_result(r#"{"ready_ms":8.4,"rtt_ms":0.81,"runs":5}"#).unwrap();
        assert_eq!((f.ready_ms, f.rtt_ms), (8.4, 0.81));
        assert!(parse_result(r#"{"ready_ms": 8.4, "rtt_ms": null}"#).is_none());
    }
}
