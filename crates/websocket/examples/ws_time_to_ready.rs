//! Measures the time from `start_bot_and_connect` to `ready` over the WebSocket transport.
//!
//! ```text
//! cargo run -p pipecat-websocket --example ws_time_to_ready -- http://localhost:7860/start [runs]
//! ```
//!
//! Each run POSTs `{"transport": "websocket"}` to the start URL, connects to the `wsUrl` it
//! answers, sends `client-ready` and waits for `bot-ready`; then disconnects and waits for the
//! bot to notice before the next run. Prints every run and the median, min and max.

use pipecat_websocket::AudioBuilder;
use std::time::{Duration, Instant};

use pipecat_core::{ApiRequest, PipecatClient};
use pipecat_websocket::WebSocketTransport;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: ws_time_to_ready <start URL, e.g. http://localhost:7860/start> [runs]");
        std::process::exit(2);
    };
    let runs: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(20).max(1);

    // Silence up, bot audio discarded: the measurement needs no sound card.
    let client = PipecatClient::builder(WebSocketTransport::builder().without_audio().build()?)
        .bot_ready_timeout(Duration::from_secs(20))
        .build();
    let request = ApiRequest::new(url).request_data(json!({"transport": "websocket"}));

    let mut times = Vec::with_capacity(runs);
    for run in 1..=runs {
        let started = Instant::now();
        let ready = client.start_bot_and_connect(request.clone()).await?;
        let elapsed = started.elapsed();
        println!("run {run:2}: {:7.2} ms (bot RTVI {})", ms(elapsed), ready.version);
        times.push(elapsed);
        client.disconnect().await?;
        // Let the bot tear the session down so runs do not overlap.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    times.sort();
    let median =
        if runs % 2 == 1 { times[runs / 2] } else { (times[runs / 2 - 1] + times[runs / 2]) / 2 };
    println!(
        "start_bot_and_connect -> ready over {runs} runs: median {:.2} ms, min {:.2} ms, max {:.2} ms",
        ms(median),
        ms(times[0]),
        ms(times[runs - 1]),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
