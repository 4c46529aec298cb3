//! The bot's scriptable behaviour: bot-ready timing, version and capabilities, echo, client
//! message handlers and hooks, and the misbehaviour switches.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use pipecat_rtvi::{About, Capabilities};
use serde_json::Value;

use crate::session::SessionHandle;

/// When the bot answers `client-ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BotReadyMode {
    /// At once, as a real bot does.
    #[default]
    Immediate,
    /// After a delay (a slow pipeline): tests the client's bot-ready timeout.
    Delayed(Duration),
    /// Never (a stuck pipeline). A test can still send it with
    /// [`SessionHandle::send_bot_ready`].
    Never,
}

/// How the bot refuses a WebSocket connection with a bad or missing token
/// (see [`crate::TestBotBuilder::websocket_token_auth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenRejection {
    /// Accept the WebSocket, then close it with code 4003 (what the pipecat runner's code
    /// asks for).
    #[default]
    Close4003,
    /// Refuse the handshake with HTTP 403 (what uvicorn actually does when the runner closes
    /// a WebSocket it has not accepted).
    Http403,
}

/// How much the function-call events reveal (pipecat's `RTVIFunctionCallReportLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FunctionCallReportLevel {
    /// No function-call events at all.
    Disabled,
    /// Only `tool_call_id` (pipecat's default: client handlers never fire).
    None,
    /// Adds `function_name`.
    Name,
    /// Adds `arguments`.
    Arguments,
    /// Adds `result` (the Python peer bot's setting, and the testkit default).
    #[default]
    Full,
}

impl FunctionCallReportLevel {
    pub(crate) fn names(self) -> bool {
        matches!(self, Self::Name | Self::Arguments | Self::Full)
    }
    pub(crate) fn arguments(self) -> bool {
        matches!(self, Self::Arguments | Self::Full)
    }
    pub(crate) fn results(self) -> bool {
        matches!(self, Self::Full)
    }
}

/// A `client-message` handed to a handler registered with
/// [`crate::TestBotBuilder::on_client_message`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientMessageRequest {
    /// The envelope id (the reply carries it).
    pub id: String,
    /// The message's `t`.
    pub t: String,
    /// The message's `d`.
    pub d: Option<Value>,
    /// The session, to send other messages from the handler.
    pub session: SessionHandle,
}

/// A handler's answer to a `client-message`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// `server-response` with this `d` (`None`: no `d`).
    Response(Option<Value>),
    /// `error-response` with this text.
    Error(String),
    /// No answer at all (the client's request will time out).
    Silent,
}

impl Reply {
    /// `server-response` with `d`.
    pub fn response(d: impl Into<Value>) -> Self {
        Reply::Response(Some(d.into()))
    }

    /// `error-response` with `error`.
    pub fn error(error: impl Into<String>) -> Self {
        Reply::Error(error.into())
    }
}

/// A registered client-message handler.
pub(crate) type Handler =
    Arc<dyn Fn(ClientMessageRequest) -> BoxFuture<'static, Reply> + Send + Sync>;

/// A hook run with a session (session start, after bot-ready).
pub(crate) type Hook = Arc<dyn Fn(SessionHandle) -> BoxFuture<'static, ()> + Send + Sync>;

pub(crate) fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(ClientMessageRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |request| Box::pin(f(request)))
}

pub(crate) fn hook<F, Fut>(f: F) -> Hook
where
    F: Fn(SessionHandle) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |session| Box::pin(f(session)))
}

/// The protocol version the bot speaks (pipecat-ai 1.14.0).
pub const BOT_PROTOCOL_VERSION: &str = "2.2.0";

/// Everything that decides how the bot behaves; built by [`crate::TestBotBuilder`].
#[derive(Clone)]
pub(crate) struct Script {
    pub(crate) bot_ready: BotReadyMode,
    pub(crate) version: String,
    pub(crate) about: About,
    pub(crate) capabilities: Option<Capabilities>,
    pub(crate) echo: bool,
    pub(crate) builtin_commands: bool,
    pub(crate) handlers: HashMap<String, Handler>,
    pub(crate) on_session_start: Vec<Hook>,
    pub(crate) on_bot_ready: Vec<Hook>,
    pub(crate) function_call_report_level: FunctionCallReportLevel,
    pub(crate) garbage_before_ready: bool,
    pub(crate) end_silence: Duration,
    pub(crate) ping_liveness: Option<Duration>,
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("bot_ready", &self.bot_ready)
            .field("version", &self.version)
            .field("echo", &self.echo)
            .field("handlers", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Script {
    fn default() -> Self {
        Script {
            bot_ready: BotReadyMode::Immediate,
            version: BOT_PROTOCOL_VERSION.to_owned(),
            about: About {
                library: "pipecat-testkit".to_owned(),
                library_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                ..About::default()
            },
            capabilities: Some(Capabilities {
                audio_in: Some(true),
                audio_out: Some(true),
                video_in: Some(false),
                screen_in: Some(false),
                video_out: Some(false),
                metrics: Some(false),
            }),
            echo: true,
            builtin_commands: true,
            handlers: HashMap::new(),
            on_session_start: Vec::new(),
            on_bot_ready: Vec::new(),
            function_call_report_level: FunctionCallReportLevel::Full,
            garbage_before_ready: false,
            end_silence: Duration::ZERO,
            ping_liveness: Some(Duration::from_secs(3)),
        }
    }
}
