//! Measures the time from `start_bot_and_connect` to `ready` over SmallWebRTC: N sessions in a
//! row against a running bot, then the median, min and max.
//!
//! ```sh
//! target/peer-venv/bin/python tests/peer_bot/bot.py --host localhost --port 8765 -t webrtc --loopback-ice &
//! cargo run --release -p pipecat-small-webrtc --example webrtc_time_to_ready -- http://localhost:8765/start 20 --loopback
//! ```
//!
//! Arguments: the start URL (default `http://localhost:7860/start`), the number of runs
//! (default 20), and `--loopback` to bind and offer 127.0.0.1 only (for a bot on this machine
//! started with `--loopback-ice`).
//!
//! Each run prints the transport's connect timeline (`SmallWebRtcStats::last_connect`);
//! `RUST_LOG=pipecat_core=debug` also logs the client's side (client-ready sent, bot-ready).

use pipecat_small_webrtc::AudioBuilder;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipecat_core::{ApiRequest, PipecatClient};
use pipecat_small_webrtc::SmallWebRtcTransport;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loopback = args.iter().any(|a| a == "--loopback");
    let mut positional = args.iter().filter(|a| !a.starts_with("--"));
    let Some(start_url) = positional.next().cloned() else {
        eprintln!(
            "usage: webrtc_time_to_ready <start URL, e.g. http://localhost:7860/start> [runs] [--loopback]"
        );
        std::process::exit(2);
    };
    let runs: usize = positional.next().map(|n| n.parse()).transpose()?.unwrap_or(20).max(1);

    // No audio: this measures the time to `bot-ready` only.
    let mut builder = SmallWebRtcTransport::builder().without_audio();
    if loopback {
        builder = builder.loopback_only();
    }
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let transport = Arc::new(builder.build()?);
    let client = PipecatClient::builder_shared(transport.clone())
        .connect_timeout(Duration::from_secs(30))
        .bot_ready_timeout(Duration::from_secs(30))
        .build();
    let request =
        ApiRequest::new(&start_url).request_data(serde_json::json!({"transport": "webrtc"}));

    let mut times = Vec::with_capacity(runs);
    for run in 1..=runs {
        let started = Instant::now();
        client.start_bot_and_connect(request.clone()).await?;
        let elapsed = started.elapsed();
        times.push(elapsed);
        let timeline = transport.stats().last_connect.map(|t| t.to_string()).unwrap_or_default();
        println!("run {run:2}: {:.1} ms ({timeline})", elapsed.as_secs_f64() * 1e3);
        client.disconnect().await?;
        // Let the bot finish the previous session before the next one starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    times.sort();
    let median = if runs.is_multiple_of(2) {
        (times[runs / 2 - 1] + times[runs / 2]) / 2
    } else {
        times[runs / 2]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "start_bot_and_connect -> ready over SmallWebRTC, {runs} runs: median {:.1} ms (min {:.1} ms, max {:.1} ms)",
        ms(median),
        ms(times[0]),
        ms(times[runs - 1])
    );
    Ok(())
}
