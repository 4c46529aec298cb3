//! Soak: one client, many connect / request / disconnect cycles against the testkit bot, per
//! transport; prints what the process holds every 10 % of the run.
//!
//! `cargo bench -p pipecat-testkit --bench soak -- [CYCLES] [websocket|webrtc|both]`
//! (default 1000 under `cargo bench`, 10 under `cargo test --benches`; both). With
//! `PIPECAT_SOAK_START=<start URL>` the bot is that one (for example `pipecat test-bot` in
//! another process), so the figures are the client's alone.

use std::time::{Duration, Instant};

use pipecat_core::{ApiRequest, PipecatClient};
use pipecat_media::{AudioFormat, NullSink, ToneSource};
use pipecat_testkit::process_stats::ProcessStats;
use pipecat_testkit::{BotTransport, History, TestBot};
use pipecat_websocket::AudioBuilder as _;
use serde_json::json;

fn client(transport: &str) -> PipecatClient {
    match transport {
        "websocket" => PipecatClient::builder(
            pipecat_websocket::WebSocketTransport::builder()
                .audio_source(ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3).unwrap())
                .audio_sink(NullSink::new(AudioFormat::MONO_24K))
                .build()
                .unwrap(),
        )
        .build(),
        _ => PipecatClient::builder(
            pipecat_small_webrtc::SmallWebRtcTransport::builder()
                .loopback_only()
                .audio_source(ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3).unwrap())
                .audio_sink(NullSink::new(AudioFormat::MONO_48K))
                .build()
                .unwrap(),
        )
        .build(),
    }
}

async fn soak(transport: &str, cycles: usize) {
    let kind =
        if transport == "websocket" { BotTransport::WebSocket } else { BotTransport::WebRtc };
    let bot = TestBot::builder()
        .transports([kind])
        .record_audio(Duration::ZERO)
        .history(History::LastSessions(0))
        .start()
        .await
        .expect("bot");
    let start_url = std::env::var("PIPECAT_SOAK_START").unwrap_or_else(|_| bot.start_url());
    let client = client(transport);
    let started = Instant::now();
    let first = ProcessStats::now();
    println!("{transport}: start: {first}");
    let step = (cycles / 10).max(1);
    for cycle in 1..=cycles {
        let start = ApiRequest::new(&start_url).request_data(json!({ "transport": transport }));
        client.start_bot_and_connect(start).await.expect("ready");
        client.send_client_request("ping", json!({})).await.expect("reply");
        client.disconnect().await.expect("disconnect");
        if cycle % step == 0 {
            println!("{transport}: {cycle:>5} cycles: {}", ProcessStats::now());
        }
    }
    println!(
        "{transport}: {cycles} cycles in {:.1} s ({:.1} ms each)",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1000.0 / cycles as f64
    );
    drop(client);
    bot.shutdown().await;
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` (test-all) does not, and then a
    // few cycles show the bench still runs without spending minutes on it.
    let benching = std::env::args().any(|a| a == "--bench");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let default_cycles = if benching { 1000 } else { 10 };
    let cycles = args.first().and_then(|a| a.parse().ok()).unwrap_or(default_cycles);
    let which = args.get(1).map_or("both", String::as_str).to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for transport in ["websocket", "webrtc"] {
            if which == "both" || which == transport {
                soak(transport, cycles).await;
            }
        }
    });
}
