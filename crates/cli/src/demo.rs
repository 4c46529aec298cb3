//! `pipecat demo`: a complete voice session against a bot started in this process.

use std::time::Duration;

use pipecat_testkit::{BotTransport, History, TestBot};
use serde_json::json;

use crate::args::{DemoArgs, InputSpec, TestBotArgs, TransportArg};
use crate::error::CliError;
use crate::session::{self, SessionPlan, Step};
use crate::target::{self, Target};

/// Time limit of each startup step against the in-process bot.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for each reaction of the bot before going on.
const REACTION: Duration = Duration::from_secs(5);

/// Runs the demo.
pub(crate) async fn run(args: DemoArgs) -> Result<(), CliError> {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket, BotTransport::WebRtc])
        .start()
        .await
        .map_err(|e| CliError::local(format!("cannot start the demo bot: {e}")))?;
    if !args.view.json {
        println!(
            "pipecat demo: a scripted test bot (pipecat-testkit) is listening on {}; \
             this client talks to it over {} like any Pipecat bot.",
            bot.base_url(),
            args.transport.runner_name()
        );
    }
    let request =
        target::start_request(&bot.start_url(), args.transport, None, &[]).timeout(READY_TIMEOUT);
    let plan = SessionPlan {
        target: Target::Start { request, transport: args.transport },
        input: args.input.clone(),
        output: args.output,
        steps: script(&args.input, args.transport),
        end_after_steps: true,
        duration: None,
        ready_timeout: READY_TIMEOUT,
        ice_servers: Vec::new(),
        json: args.view.json,
        record: args.view.record,
        weather_function: true,
        functions: Vec::new(),
        function_timeout: pipecat::DEFAULT_FUNCTION_CALL_TIMEOUT,
    };
    let result = session::run(plan).await;
    bot.shutdown().await;
    result
}

/// What the demo does once the bot is ready.
fn script(input: &InputSpec, transport: TransportArg) -> Vec<Step> {
    let mut steps = Vec::new();
    match input {
        InputSpec::Silence => {}
        InputSpec::Tone(hz) => {
            steps.push(Step::Say(format!(
                "the user \"speaks\": a {hz} Hz tone for {:.0} s; the bot echoes it back",
                crate::audio::TONE_LENGTH.as_secs_f64()
            )));
            steps.push(Step::WaitFor("bot-stopped-speaking", REACTION));
        }
        InputSpec::Wav(path) => {
            steps.push(Step::Say(format!(
                "the user speaks {}; the bot echoes it back",
                path.display()
            )));
            steps.push(Step::WaitFor("bot-started-speaking", REACTION));
        }
        InputSpec::Mic(_) => {
            steps.push(Step::Say("say something: the bot echoes it back".into()));
            steps.push(Step::WaitFor("bot-stopped-speaking", Duration::from_secs(15)));
        }
    }
    steps.extend([
        Step::Say("a request the bot answers (send_client_request)".into()),
        Step::Request("ping".into(), Some(json!({ "from": "pipecat demo" }))),
        Step::Say("the bot pushes a message of its own (server-message)".into()),
        Step::ClientMessage("server-msg".into(), Some(json!({ "hello": "from the bot" }))),
        Step::WaitFor("server-message", REACTION),
        Step::Say("typed text for the bot's LLM (send_text)".into()),
        Step::SendText("Hello, bot!".into()),
        Step::WaitFor("bot-output", REACTION),
        Step::Say("the bot's LLM calls a function this client implements".into()),
        Step::ClientMessage(
            "fn-call".into(),
            Some(json!({ "function_name": "get_weather", "arguments": { "city": "Paris" } })),
        ),
        Step::WaitFor("llm-function-call-stopped", REACTION),
        Step::Say(format!(
            "that was a complete session over {}; try `pipecat connect --start URL` with your own bot",
            transport.runner_name()
        )),
    ]);
    steps
}

/// `pipecat test-bot`: the demo's bot as a server, until Ctrl-C.
pub(crate) async fn serve(args: TestBotArgs) -> Result<(), CliError> {
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket, BotTransport::WebRtc])
        // Nothing reads the received audio back; the history is bounded by the flag.
        .record_audio(std::time::Duration::ZERO)
        .history(History::LastSessions(args.keep_sessions))
        .start()
        .await
        .map_err(|e| CliError::local(format!("cannot start the test bot: {e}")))?;
    if args.json {
        println!(
            "{}",
            json!({
                "type": "test-bot",
                "base_url": bot.base_url(),
                "start_url": bot.start_url(),
                "ws_url": bot.ws_url(),
                "offer_url": bot.offer_url(),
            })
        );
    } else {
        println!("pipecat test bot listening on {}", bot.base_url());
        println!(
            "  start:  POST {}  (body {{\"transport\": \"webrtc\" | \"websocket\"}})",
            bot.start_url()
        );
        println!("  ws:     {}", bot.ws_url());
        println!("  offer:  {}", bot.offer_url());
        println!("try: pipecat connect --start {} --input tone --output none", bot.start_url());
        println!("Ctrl-C stops it.");
    }
    let _ = tokio::signal::ctrl_c().await;
    bot.shutdown().await;
    Ok(())
}
