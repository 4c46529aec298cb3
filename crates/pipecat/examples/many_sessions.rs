//! Many sessions in one process: N clients at once, each with its own transport and audio,
//! sharing nothing. The core of a load test or a bot-to-bot evaluation.
//!
//! ```sh
//! cargo run -p pipecat --example many_sessions                 # 10 sessions, test bot
//! cargo run -p pipecat --example many_sessions -- 50 http://localhost:7860/start
//! ```
//!
//! For a ready-made load test with statistics, see `pipecat load` (crate `pipecat-cli`).

mod common;

use std::time::{Duration, Instant};

use pipecat::prelude::*;
use serde_json::json;
use tokio::task::JoinSet;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bot = common::Bot::from_args().await?;
    let sessions: usize =
        std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10).clamp(1, 1000);

    let mut tasks = JoinSet::new();
    for n in 0..sessions {
        let start_url = bot.start_url.clone();
        tasks.spawn(async move {
            // A different tone per session, so the audio of each is recognisable.
            let hz = 200.0 + 20.0 * n as f32;
            let (sink, bot_audio) = MemorySink::new(AudioFormat::MONO_24K)?;
            let transport = WebSocketTransport::builder()
                .audio_source(
                    ToneSource::new(AudioFormat::MONO_16K, hz, 0.3)?.limit(Duration::from_secs(1)),
                )
                .audio_sink(sink)
                .build()?;
            let client = PipecatClient::builder(transport)
                .bot_ready_timeout(Duration::from_secs(20))
                .build();
            let started = Instant::now();
            let request =
                ApiRequest::new(start_url).request_data(json!({ "transport": "websocket" }));
            client.start_bot_and_connect(request).await?;
            let ready_after = started.elapsed();
            tokio::time::sleep(Duration::from_secs(2)).await;
            client.disconnect().await?;
            let echoed = bot_audio.take_all().len();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((n, ready_after, echoed))
        });
    }

    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok((n, ready_after, samples)) => {
                ok += 1;
                println!(
                    "session {n:>3}: ready after {:>6.1} ms, {samples} samples of bot audio",
                    ready_after.as_secs_f64() * 1000.0
                );
            }
            Err(e) => println!("a session failed: {e}"),
        }
    }
    println!("{ok} of {sessions} sessions completed");
    Ok(())
}
