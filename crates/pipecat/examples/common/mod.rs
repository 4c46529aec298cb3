//! Shared by the examples: which bot to talk to. With a `http(s)://` argument, that start
//! endpoint (pipecat's runner: `http://localhost:7860/start`); without one, a scripted test
//! bot started right here (pipecat-testkit), so every example runs with nothing else.

#![allow(dead_code)]

use pipecat_testkit::{BotTransport, TestBot};

/// The bot an example talks to.
pub(crate) struct Bot {
    /// Its start endpoint.
    pub(crate) start_url: String,
    /// `true` for the in-process test bot (it answers the test commands `fn-call`, `tone`...).
    pub(crate) is_test_bot: bool,
    _test_bot: Option<TestBot>,
}

impl Bot {
    /// The bot named on the command line, or a new in-process test bot.
    pub(crate) async fn from_args() -> Result<Bot, Box<dyn std::error::Error>> {
        if let Some(url) = std::env::args().skip(1).find(|a| a.starts_with("http")) {
            return Ok(Bot { start_url: url, is_test_bot: false, _test_bot: None });
        }
        let bot = TestBot::builder()
            .transports([BotTransport::WebSocket, BotTransport::WebRtc])
            .start()
            .await?;
        println!("(no start URL given: talking to an in-process test bot at {})", bot.base_url());
        Ok(Bot { start_url: bot.start_url(), is_test_bot: true, _test_bot: Some(bot) })
    }

    /// Whether the bot runs on this machine: SmallWebRTC then needs loopback candidates.
    pub(crate) fn is_local(&self) -> bool {
        let host = self.start_url.split("://").nth(1).unwrap_or_default();
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]")
    }
}
