//! Headless audio: a WAV file is the user's voice, the bot's voice goes to another WAV file.
//! No sound card: for servers, CI and batch tests of a bot.
//!
//! ```sh
//! cargo run -p pipecat --example headless_wav                          # test bot, generated input
//! cargo run -p pipecat --example headless_wav -- question.wav answer.wav http://localhost:7860/start
//! ```
//!
//! The first `.wav` argument is read (default: a generated two-second tone), the second is
//! written (default `bot.wav`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use pipecat::prelude::*;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bot = common::Bot::from_args().await?;
    let wavs: Vec<PathBuf> =
        std::env::args().skip(1).filter(|a| a.ends_with(".wav")).map(PathBuf::from).collect();
    let input = match wavs.first() {
        Some(path) => path.clone(),
        None => write_tone(&std::env::temp_dir().join("pipecat-example-tone.wav")).await?,
    };
    let output = wavs.get(1).cloned().unwrap_or_else(|| PathBuf::from("bot.wav"));

    // The file is read in real time, as a microphone would deliver it.
    let source = WavFileSource::open(&input)?;
    let length = source.duration();
    let transport = WebSocketTransport::builder()
        .audio_source(source)
        .audio_sink(WavFileSink::create(&output, AudioFormat::MONO_24K)?)
        .build()?;
    let transport = std::sync::Arc::new(transport);
    let client = PipecatClient::builder_shared(transport.clone()).build();

    let request = ApiRequest::new(&bot.start_url).request_data(json!({ "transport": "websocket" }));
    client.start_bot_and_connect(request).await?;
    println!("sending {} ({:.1} s) to the bot", input.display(), length.as_secs_f64());

    // The whole input, plus time for the bot to answer.
    tokio::time::sleep(length + Duration::from_secs(2)).await;
    client.disconnect().await?;
    transport.close_audio_sink().await?; // writes the WAV header
    println!("the bot's audio is in {}", output.display());
    Ok(())
}

/// Writes two seconds of a 440 Hz tone: the default input.
async fn write_tone(path: &std::path::Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let mut tone = ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3)?
        .paced(false)
        .limit(Duration::from_secs(2));
    let mut file = WavFileSink::create(path, AudioFormat::MONO_16K)?;
    while let Some(frame) = tone.next_frame().await? {
        file.write(frame).await?;
    }
    file.close().await?;
    Ok(path.to_path_buf())
}
