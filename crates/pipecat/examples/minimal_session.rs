//! The smallest useful session: start a bot, wait until it is ready, exchange a message,
//! listen for a few seconds, disconnect.
//!
//! ```sh
//! cargo run -p pipecat --example minimal_session                                # test bot
//! cargo run -p pipecat --example minimal_session -- http://localhost:7860/start  # your bot
//! ```
//!
//! Audio: a one-second test tone goes up, bot audio is discarded (no sound card needed).

mod common;

use std::time::Duration;

use pipecat::prelude::*;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bot = common::Bot::from_args().await?;

    // The transport carries audio and messages; the WebSocket one needs no media setup.
    let mic = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3)?.limit(Duration::from_secs(1));
    let transport = WebSocketTransport::builder()
        .audio_source(mic)
        .audio_sink(NullSink::new(AudioFormat::MONO_24K))
        .build()?;
    let client = PipecatClient::builder(transport).build();
    let mut events = client.events();

    // POST /start {"transport": "websocket"}, connect with the answer, wait for bot-ready.
    let request = ApiRequest::new(&bot.start_url).request_data(json!({ "transport": "websocket" }));
    let ready = client.start_bot_and_connect(request).await?;
    println!("bot ready: RTVI {}", ready.version);

    if bot.is_test_bot {
        // The test bot answers `ping`; your bot answers what it was written to answer.
        let answer = client.send_client_request("ping", json!({ "hello": "bot" })).await?;
        println!("ping answered: {answer}");
    }
    client.send_text("Hello!").await?;

    // Watch the session for three seconds.
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::BotOutput(output) => println!("bot says: {}", output.text),
                ClientEvent::BotStartedSpeaking => println!("bot started speaking"),
                ClientEvent::BotStoppedSpeaking => println!("bot stopped speaking"),
                ClientEvent::Error(e) => println!("error: {}", e.message),
                _ => {}
            }
        }
    })
    .await;

    client.disconnect().await?;
    println!("state: {}", client.state());
    Ok(())
}
