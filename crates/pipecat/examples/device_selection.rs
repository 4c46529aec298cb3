//! Microphones and speakers: list them, pick one by name, switch mid-session, mute.
//!
//! ```sh
//! cargo run -p pipecat --example device_selection                       # default devices
//! cargo run -p pipecat --example device_selection -- --mic USB --speaker Headphones
//! cargo run -p pipecat --example device_selection -- http://localhost:7860/start
//! ```
//!
//! Needs the `devices` feature (on by default). On a machine without a sound card it lists
//! what there is, says why no device opened, and runs the session headless instead.

mod common;

use std::time::Duration;

use pipecat::media::{AudioDevices, DeviceSelector, Microphone, OutputConfig, Speaker};
use pipecat::prelude::*;
use serde_json::json;

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn selector(name: Option<String>) -> DeviceSelector {
    name.map_or(DeviceSelector::Default, DeviceSelector::Name)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bot = common::Bot::from_args().await?;
    let devices = AudioDevices::new();
    println!("audio host: {}", devices.host_name());
    for device in devices.inputs().unwrap_or_default() {
        println!("  mic      {:<40} {}", device.id, device.name);
    }
    for device in devices.outputs().unwrap_or_default() {
        println!("  speaker  {:<40} {}", device.id, device.name);
    }

    // A microphone handle mutes or moves the capture; its source goes to the transport.
    let mut builder = SmallWebRtcTransport::builder();
    let mut mic: Option<Microphone> = None;
    let mut speaker: Option<Speaker> = None;
    match devices.microphone(&selector(flag("--mic")), AudioFormat::MONO_48K) {
        Ok((source, handle)) => {
            println!("microphone: {}", handle.device().name);
            builder = builder.audio_source(Box::new(source));
            mic = Some(handle);
        }
        Err(e) => {
            println!("no microphone ({e}); sending a test tone instead");
            let tone = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3)?;
            builder = builder.audio_source(Box::new(tone.limit(Duration::from_secs(1))));
        }
    }
    match devices.speaker(&selector(flag("--speaker")), OutputConfig::default()) {
        Ok((sink, handle)) => {
            println!("speaker: {}", handle.device().name);
            builder = builder.audio_sink(Box::new(sink));
            speaker = Some(handle);
        }
        Err(e) => {
            println!("no speaker ({e}); discarding the bot's audio");
            builder = builder.audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)));
        }
    }
    if bot.is_local() {
        builder = builder.loopback_only();
    }
    let client = PipecatClient::builder(builder.build()?).build();

    let request = ApiRequest::new(&bot.start_url).request_data(json!({ "transport": "webrtc" }));
    client.start_bot_and_connect(request).await?;
    println!("connected; talk for five seconds (the test bot echoes you)");
    tokio::time::sleep(Duration::from_secs(5)).await;

    if let Some(mic) = &mic {
        mic.set_enabled(false);
        println!("microphone muted for a second");
        tokio::time::sleep(Duration::from_secs(1)).await;
        mic.set_enabled(true);
        // Moving to another device mid-session: the session does not notice.
        if let Err(e) = mic.switch_device(&DeviceSelector::Default) {
            println!("could not switch the microphone: {e}");
        }
    }
    if let Some(speaker) = &speaker {
        println!("playing on {}", speaker.device().name);
    }

    client.disconnect().await?;
    Ok(())
}
