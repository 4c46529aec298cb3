//! JS-style callbacks instead of an event stream: implement the `ClientCallbacks` methods you
//! need, the others do nothing. Over SmallWebRTC this time.
//!
//! ```sh
//! cargo run -p pipecat --example custom_callbacks                                # test bot
//! cargo run -p pipecat --example custom_callbacks -- http://localhost:7860/start  # your bot
//! ```

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pipecat::ErrorEvent;
use pipecat::prelude::*;
use pipecat::rtvi::{BotOutput, BotReady, UserInput};
use serde_json::{Value, json};

/// Prints what happens and counts the bot's sentences.
struct Printer {
    sentences: Arc<AtomicUsize>,
}

impl ClientCallbacks for Printer {
    fn on_transport_state_changed(&self, state: TransportState, previous: TransportState) {
        println!("[state] {previous} -> {state}");
    }

    fn on_bot_ready(&self, ready: &BotReady) {
        let library = ready.about.as_ref().map(|a| a.library.as_str()).unwrap_or("?");
        println!("[bot] ready: RTVI {} ({library})", ready.version);
    }

    fn on_user_input(&self, input: &UserInput) {
        println!("[user] {}", input.text);
    }

    fn on_bot_output(&self, output: &BotOutput) {
        println!("[bot] {}", output.text);
        self.sentences.fetch_add(1, Ordering::Relaxed);
    }

    fn on_server_message(&self, data: &Value) {
        println!("[bot] message: {data}");
    }

    fn on_bot_started_speaking(&self) {
        println!("[bot] speaking");
    }

    fn on_error(&self, error: &ErrorEvent) {
        println!("[error] {} (fatal: {})", error.message, error.fatal);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bot = common::Bot::from_args().await?;
    let sentences = Arc::new(AtomicUsize::new(0));

    let mut transport = SmallWebRtcTransport::builder()
        .audio_source(Box::new(
            ToneSource::new(AudioFormat::MONO_48K, 330.0, 0.3)?.limit(Duration::from_secs(1)),
        ))
        .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)));
    if bot.is_local() {
        transport = transport.loopback_only();
    }
    let client = PipecatClient::builder(transport.build()?)
        .callbacks(Printer { sentences: sentences.clone() })
        .build();

    let request = ApiRequest::new(&bot.start_url).request_data(json!({ "transport": "webrtc" }));
    client.start_bot_and_connect(request).await?;
    if bot.is_test_bot {
        client.send_client_message("server-msg", json!({ "note": "pushed by the bot" })).await?;
    }
    client.send_text("Tell me something.").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    client.disconnect().await?;
    println!("the bot said {} sentence(s)", sentences.load(Ordering::Relaxed));
    Ok(())
}
