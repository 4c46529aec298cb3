//! Client-side function calls: the bot's LLM asks for `get_weather`, this program answers.
//!
//! ```sh
//! cargo run -p pipecat --example function_calling                                # test bot
//! cargo run -p pipecat --example function_calling -- http://localhost:7860/start  # your bot
//! ```
//!
//! A registered handler always answers the bot: with its value, or with `{"error": ...}` if it
//! fails, panics or runs out of time. Your bot must report function names to the client
//! (`RTVIObserverParams(function_call_report_level={"*": "name"})` or higher), or no handler
//! can be chosen (the client then reports `FunctionCallUndispatched`).

mod common;

use std::time::Duration;

use pipecat::prelude::*;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bot = common::Bot::from_args().await?;
    // No audio: silence up, bot audio discarded (the default would be the sound card).
    let transport = WebSocketTransport::builder().without_audio().build()?;
    let client =
        PipecatClient::builder(transport).function_call_timeout(Duration::from_secs(10)).build();

    client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
        let city = call.arguments["city"].as_str().unwrap_or("somewhere").to_owned();
        println!("the bot asks for the weather in {city} (call {})", call.tool_call_id);
        // A real program would ask a weather service here.
        Ok::<_, String>(json!({ "city": city, "temperature_c": 21, "sky": "clear" }))
    });

    let mut events = client.events();
    let request = ApiRequest::new(&bot.start_url).request_data(json!({ "transport": "websocket" }));
    client.start_bot_and_connect(request).await?;

    if bot.is_test_bot {
        // The test bot makes its "LLM" call a function on request.
        client
            .send_client_message(
                "fn-call",
                json!({ "function_name": "get_weather", "arguments": { "city": "Paris" } }),
            )
            .await?;
    } else {
        client.send_text("What is the weather like in Paris?").await?;
    }

    let wait = if bot.is_test_bot { 5 } else { 30 };
    let _ = tokio::time::timeout(Duration::from_secs(wait), async {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::FunctionCallHandled { call, result, .. } => {
                    println!("answered {}: {result}", call.function_name);
                }
                ClientEvent::FunctionCallUndispatched { tool_call_id, reason } => {
                    println!("call {tool_call_id} not handled: {reason:?}");
                }
                ClientEvent::LlmFunctionCallStopped(stopped) => {
                    println!("the bot finished call {}", stopped.tool_call_id);
                    break;
                }
                ClientEvent::BotOutput(output) => println!("bot says: {}", output.text),
                _ => {}
            }
        }
    })
    .await;

    client.disconnect().await?;
    Ok(())
}
