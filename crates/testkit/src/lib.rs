//! In-process RTVI bots on loopback, for testing Pipecat clients: the server side of both
//! Pipecat wire formats, shaped like pipecat-ai 1.14's development runner.
//!
//! A [`TestBot`] listens on `127.0.0.1:<free port>` and serves:
//!
//! | Endpoint | What |
//! |---|---|
//! | `POST /start` | `{"transport":"websocket"}` → `{"wsUrl","sessionId","token"}`; `{"transport":"webrtc"}` (the default) → `{"sessionId"}` plus `iceConfig` when configured |
//! | `GET /status` | `{"status":"ready","transports":[…]}` |
//! | `WS /ws-client`, `/ws-client/{token}` | binary protobuf `pipecat.Frame`s: RTVI JSON in `MessageFrame.data`, PCM16 audio (16 kHz in, 24 kHz out in 40 ms chunks) |
//! | `POST/PATCH /api/offer`, `/sessions/{id}/api/offer` | SmallWebRTC signalling (feature `webrtc`, on by default): offer → answer with `pc_id`, renegotiation, `restart_pc`, trickled candidates |
//!
//! Each WebSocket connection and each new SmallWebRTC offer starts a bot session that behaves
//! like the Python peer bot the SDK's interop tests run against pipecat-ai (see
//! `tests/peer_bot/bot.py` in the repository):
//!
//! - `client-ready` → `bot-ready` (protocol `2.2.0`, `about`, `capabilities`), with the
//!   runner's version checks (`error-response` for an unknown or incompatible version).
//! - Audio echo: WebSocket PCM back at 24 kHz; SmallWebRTC Opus decoded and re-encoded on the
//!   bot's own track (which sends silence when idle), with `bot-started-speaking` /
//!   `bot-stopped-speaking`.
//! - `send-text` → `bot-interrupted`, `user-input` (chat, with `msg_id`), an `echo: …` LLM
//!   reply (`bot-llm-started`, `bot-llm-text`, `bot-transcription`, `bot-llm-stopped`,
//!   `bot-output`).
//! - `disconnect-bot` ends the session (WebSocket close 1000; SmallWebRTC `peerLeft`).
//! - `client-message` commands, by `t`: `ping` → `{pong, echo}`; `tone` `{ms, hz}`;
//!   `server-msg`; `transcript` `{text}`; `bot-text` `{text}`; `fn-call`
//!   `{function_name, tool_call_id, arguments}`; `fail` `{error}` → `error-response`;
//!   `error` `{error, fatal}`; `end`; `metrics`; `user-speaking`; `interrupt`;
//!   `renegotiate` and `drop-pc` (SmallWebRTC); and the testkit's own misbehaviour
//!   triggers `garbage`, `oversize` `{bytes}`, `abrupt-close`, `close` `{code, reason}`,
//!   `peer-left`. Anything else is echoed back as `server-response`. Register your own
//!   with [`TestBotBuilder::on_client_message`].
//! - Unsupported types get the runner's `error-response` (`Unsupported type …`), malformed
//!   ones `Invalid message: …` or an RTVI `error`; garbage never crashes the bot.
//!
//! Tests push to the client at any time through a [`SessionHandle`] (server messages,
//! function calls, interruptions, tones, errors, endings, misbehaviour) and assert on what
//! the client sent through the [`Recorder`]. Every wait takes a timeout.
//!
//! Misbehaviour on offer: late or missing `bot-ready` ([`BotReadyMode`]), garbage frames
//! ([`Garbage`]), oversize messages, abrupt close (TCP dropped without a close frame; peer
//! connection closed without `peerLeft`), fatal errors, arbitrary close codes, `peerLeft`
//! without leaving, renegotiation requests, a dropped peer connection, close code 4003 (or
//! HTTP 403) for a bad token, a failing or slow `/start`, and SmallWebRTC offers answered with
//! a canned status and body ([`TestBotBuilder::offer_failure`], [`TestBot::set_offer_failure`]).
//!
//! Besides RTVI traffic, the [`Recorder`] keeps what a transport's wire tests check: the
//! `/start` requests, the SmallWebRTC offers and trickle PATCHes with their JSON bodies and
//! headers ([`Recorder::offers`], [`Recorder::candidate_patches`]), keepalive pings,
//! `trackStatus` messages, data channels opening and closing ([`BotEventKind`]).
//!
//! ```
//! use std::time::Duration;
//! use pipecat_core::{ApiRequest, PipecatClient};
//! use pipecat_testkit::{BotTransport, Reply, TestBot};
//! use pipecat_websocket::AudioBuilder;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A bot with a scripted reply of its own, on top of the built-in commands.
//! let bot = TestBot::builder()
//!     .transports([BotTransport::WebSocket])
//!     .on_client_message("weather", |request| async move {
//!         Reply::response(json!({ "city": request.d, "temp": 21 }))
//!     })
//!     .start()
//!     .await?;
//!
//! // The app under test talks to it like to any Pipecat bot (here: the SDK's own client).
//! let transport = pipecat_websocket::WebSocketTransport::builder().without_audio().build()?;
//! let client = PipecatClient::builder(transport).build();
//! let start = ApiRequest::new(bot.start_url()).request_data(json!({ "transport": "websocket" }));
//! client.start_bot_and_connect(start).await?;
//! let answer = client.send_client_request("weather", json!("Paris")).await?;
//! assert_eq!(answer["temp"], 21);
//!
//! // The test drives the bot's side at any time, and checks what the client sent.
//! let session = bot.wait_for_session(Duration::from_secs(5)).await?;
//! session.send_server_message(json!({ "hello": "client" }))?;
//! let asked = bot.recorder().wait_for_client_message("weather", Duration::from_secs(5)).await?;
//! assert_eq!(asked.data.as_ref().map(|d| &d["d"]), Some(&json!("Paris")));
//!
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod audio;
mod bot;
mod error;
mod fault;
mod http;
pub mod process_stats;
pub mod pulseaudio;
mod recorder;
mod script;
mod session;
mod util;
#[cfg(feature = "webrtc")]
mod webrtc;
mod websocket;

pub use bot::{BotTransport, TestBot, TestBotBuilder};
pub use error::TestkitError;
pub use fault::{Fault, FaultProxy};
pub use recorder::{
    AudioStats, BotEvent, BotEventKind, EndReason, History, InvalidInput, InvalidKind,
    ReceivedMessage, Recorder, SentMessage, SignallingRequest, StartRequest,
};
pub use script::{
    BOT_PROTOCOL_VERSION, BotReadyMode, ClientMessageRequest, FunctionCallReportLevel, Reply,
    TokenRejection,
};
pub use session::{Garbage, MAX_OVERSIZE_BYTES, SessionHandle};

/// Re-exported so tests need no second dependency to build or read messages.
pub use pipecat_rtvi as rtvi;
