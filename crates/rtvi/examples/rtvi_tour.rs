//! A tour of the RTVI message layer: replays the trace of a real pipecat-ai 1.14.0 session,
//! decoding each bot message and building each client message with the SDK's builders.
//!
//! Run it with `cargo run -p pipecat-rtvi --example rtvi_tour`.

use pipecat_rtvi::{
    ClientEnvelope, ProtocolVersion, SendTextOptions, ServerEnvelope, ServerMessage, dtmf_messages,
};
use serde_json::json;

const BOT_SIDE: &[&str] = &[
    r#"{"label":"rtvi-ai","type":"bot-ready","id":"cr-1","data":{"version":"2.2.0","about":{"library":"pipecat-ai","library_version":"1.14.0"},"capabilities":{"audio_in":true,"audio_out":true,"video_in":false,"screen_in":false,"video_out":false,"metrics":false}}}"#,
    r#"{"label":"rtvi-ai","type":"server-response","id":"m-ping","data":{"t":"ping","d":{"pong":true,"echo":{"x":1}}}}"#,
    r#"{"label":"rtvi-ai","type":"user-input","data":{"text":"hello there bot","input_type":"transcription","timestamp":"2026-11-22T03:10:00Z","final":true,"user_id":"peer-user"}}"#,
    r#"{"label":"rtvi-ai","type":"bot-output","data":{"text":"Hello from the bot.","output_type":"sentence","segment_id":66,"will_be_spoken":false,"spoken_status":"new"}}"#,
    r#"{"label":"rtvi-ai","type":"llm-function-call-in-progress","data":{"tool_call_id":"call-1","function_name":"get_weather","arguments":{"city":"Paris"}}}"#,
    r#"{"label":"rtvi-ai","type":"error","data":{"error":"boom","fatal":false}}"#,
    r#"{"label":"rtvi-ai","type":"some-future-message","data":{"anything":[1,2,3]}}"#,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("client -> bot");
    let ready = ClientEnvelope::client_ready();
    println!("  {}", ready.to_json_checked(64 * 1024)?);
    let text = ClientEnvelope::send_text(
        "typed text",
        Some(SendTextOptions { run_immediately: Some(true), audio_response: Some(false) }),
    );
    println!("  {}", text.to_json()?);
    println!("  {}", ClientEnvelope::client_message("ping", Some(json!({"x": 1}))).to_json()?);

    println!("bot -> client");
    let mut bot_version = None;
    for line in BOT_SIDE {
        let envelope = ServerEnvelope::parse(line)?;
        let summary = match &envelope.message {
            ServerMessage::BotReady(ready) => {
                let version = ready.protocol_version()?;
                bot_version = Some(version);
                format!("bot ready, protocol {version} ({:?})", version.compatibility())
            }
            ServerMessage::ServerResponse(r) => format!("response to {:?}: {:?}", r.t, r.d),
            ServerMessage::UserInput(input) => format!("user said {:?}", input.text),
            ServerMessage::BotOutput(out) => {
                format!("bot output {:?} ({:?})", out.text, out.kind())
            }
            ServerMessage::LlmFunctionCallInProgress(call) => {
                format!("function call {:?} {:?}", call.function_name, call.arguments)
            }
            ServerMessage::Error(e) => format!("error {:?} fatal={}", e.error, e.fatal),
            ServerMessage::Unknown(u) => {
                format!("unknown type {:?} kept: {:?}", u.message_type, u.data)
            }
            other => other.message_type().to_string(),
        };
        println!("  {summary}");
    }

    let version = bot_version.unwrap_or(ProtocolVersion::new(2, 2, 0));
    let dtmf = dtmf_messages(version, "12#")?;
    println!("dtmf for a {version} bot: {} message(s)", dtmf.len());
    for message in dtmf {
        println!("  {}", ClientEnvelope::new(message).to_json()?);
    }
    Ok(())
}
