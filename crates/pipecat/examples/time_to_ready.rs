//! Measures a running bot from this SDK: the time from `start_bot_and_connect` to `ready`,
//! then the round trip of client requests on the ready session, over N sessions in a row.
//!
//! ```sh
//! target/peer-venv/bin/python tests/peer_bot/bot.py --host localhost --port 8765 -t webrtc --loopback-ice &
//! cargo run --release -p pipecat --example time_to_ready -- webrtc http://localhost:8765/start 20 --loopback
//! ```
//!
//! Arguments: the transport (`webrtc` or `websocket`), the start URL, the number of runs
//! (default 20); `--loopback` binds and offers 127.0.0.1 only (SmallWebRTC, for a bot on this
//! machine started with `--loopback-ice`); `--requests N` client requests per session (`ping`,
//! default 10). Every run prints its time (and, over SmallWebRTC, the transport's connect
//! timeline); the last line is `RESULT {"ready_ms": <median>, "rtt_ms": <median>, "runs": N}`,
//! the same as `tests/peer_bot/minimal_clients.py` prints, which `cargo xtask bench peers`
//! reads. No audio flows: this measures signalling and handshakes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipecat::prelude::*;
use pipecat::small_webrtc::SmallWebRtcTransport;
use serde_json::json;

struct Args {
    transport: String,
    start_url: String,
    runs: usize,
    requests: usize,
    loopback: bool,
}

fn parse_args() -> Result<Args, String> {
    let usage =
        "usage: time_to_ready <webrtc|websocket> <start URL> [runs] [--loopback] [--requests N]";
    let mut positional = Vec::new();
    let mut requests = 10;
    let mut loopback = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--loopback" => loopback = true,
            "--requests" => {
                requests = args.next().and_then(|n| n.parse().ok()).ok_or(usage)?;
            }
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other}\n{usage}"));
            }
            _ => positional.push(arg),
        }
    }
    let [transport, start_url, rest @ ..] = positional.as_slice() else {
        return Err(usage.into());
    };
    if transport != "webrtc" && transport != "websocket" {
        return Err(usage.into());
    }
    let runs = match rest {
        [] => 20,
        [n] => n.parse::<usize>().map_err(|_| usage.to_owned())?.max(1),
        _ => return Err(usage.into()),
    };
    Ok(Args {
        transport: transport.clone(),
        start_url: start_url.clone(),
        runs,
        requests,
        loopback,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }

    // No audio either way: no sound card needed, and nothing but the handshake is measured.
    let (transport, webrtc): (Arc<dyn Transport>, Option<Arc<SmallWebRtcTransport>>) =
        if args.transport == "webrtc" {
            let mut builder = SmallWebRtcTransport::builder().without_audio();
            if args.loopback {
                builder = builder.loopback_only();
            }
            let transport = Arc::new(builder.build()?);
            (transport.clone(), Some(transport))
        } else {
            (Arc::new(WebSocketTransport::builder().without_audio().build()?), None)
        };
    let client = PipecatClient::builder_shared(transport)
        .connect_timeout(Duration::from_secs(30))
        .bot_ready_timeout(Duration::from_secs(30))
        .build();
    let request =
        ApiRequest::new(&args.start_url).request_data(json!({ "transport": args.transport }));

    let mut ready_times = Vec::with_capacity(args.runs);
    let mut rtts = Vec::with_capacity(args.runs * args.requests);
    for run in 1..=args.runs {
        let started = Instant::now();
        client.start_bot_and_connect(request.clone()).await?;
        let elapsed = started.elapsed();
        ready_times.push(elapsed);
        let timeline = webrtc
            .as_ref()
            .and_then(|t| t.stats().last_connect)
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        println!("run {run:2}: {:.1} ms{timeline}", ms(elapsed));
        for n in 0..args.requests {
            let sent = Instant::now();
            client.send_client_request("ping", json!({ "n": n })).await?;
            rtts.push(sent.elapsed());
        }
        client.disconnect().await?;
        // Let the bot finish the previous session before the next one starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let rtt = (!rtts.is_empty()).then(|| (ms(median(&mut rtts)) * 1000.0).round() / 1000.0);
    let result = json!({
        "ready_ms": (ms(median(&mut ready_times)) * 100.0).round() / 100.0,
        "rtt_ms": rtt,
        "runs": args.runs,
    });
    println!("RESULT {result}");
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    let n = times.len();
    if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2 }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
