//! [`TestBot`]: the loopback server, its builder, and what its sessions share.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipecat_rtvi::{About, Capabilities};
use serde_json::Value;
use tokio::sync::watch;

use crate::error::TestkitError;
use crate::recorder::{EndReason, History, Recorder};
use crate::script::{
    self, BotReadyMode, ClientMessageRequest, FunctionCallReportLevel, Reply, Script,
    TokenRejection,
};
use crate::session::{AudioPlan, SessionCore, SessionHandle, SessionIo};
use crate::util::{Tasks, lock};

/// A transport the test bot serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BotTransport {
    /// Pipecat's WebSocket transport: protobuf frames on `/ws-client`.
    WebSocket,
    /// SmallWebRTC: HTTP offer/answer on `/api/offer` and `/sessions/{id}/api/offer`.
    WebRtc,
}

impl BotTransport {
    /// The runner's name for it: `websocket` or `webrtc`.
    pub fn as_str(self) -> &'static str {
        match self {
            BotTransport::WebSocket => "websocket",
            BotTransport::WebRtc => "webrtc",
        }
    }
}

impl fmt::Display for BotTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub(crate) transports: Vec<BotTransport>,
    pub(crate) token_auth: bool,
    pub(crate) token_rejection: TokenRejection,
    pub(crate) start_failure: Option<(u16, Value)>,
    pub(crate) start_delay: Option<Duration>,
    pub(crate) required_headers: Vec<(String, String)>,
    pub(crate) ice_servers: Option<Value>,
}

/// What the server, its sessions and their tasks share.
pub(crate) struct BotShared {
    pub(crate) script: Arc<Script>,
    pub(crate) server: ServerConfig,
    pub(crate) recorder: Recorder,
    pub(crate) echo: Arc<AtomicBool>,
    pub(crate) tasks: Tasks,
    pub(crate) tokens: Mutex<HashMap<String, Instant>>,
    pub(crate) start_sessions: Mutex<HashMap<String, Value>>,
    #[cfg(feature = "webrtc")]
    pub(crate) webrtc: crate::webrtc::Hub,
    /// What every SmallWebRTC offer is answered with instead of an answer, if anything.
    #[cfg(feature = "webrtc")]
    pub(crate) offer_failure: Mutex<Option<(u16, Value)>>,
    addr: SocketAddr,
    sessions: Mutex<Vec<Arc<SessionCore>>>,
    sessions_changed: watch::Sender<usize>,
    shutdown: watch::Sender<bool>,
}

impl BotShared {
    /// The WebSocket URL `/start` hands out.
    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/ws-client", self.addr)
    }

    /// Starts and registers a session (with its SmallWebRTC `pc_id`, if any).
    pub(crate) fn start_session(
        &self,
        transport: BotTransport,
        plan: AudioPlan,
        pc_id: Option<&str>,
    ) -> SessionIo {
        let io = SessionCore::start(
            transport,
            Arc::clone(&self.script),
            self.recorder.clone(),
            Arc::clone(&self.echo),
            plan,
            pc_id,
        );
        let mut sessions = lock(&self.sessions);
        // Ended sessions out of the history go with their records.
        sessions.retain(|core| !core.is_ended() || self.recorder.remembers(core.id()));
        sessions.push(Arc::clone(&io.core));
        drop(sessions);
        self.sessions_changed.send_modify(|n| *n += 1);
        io
    }

    /// A receiver that turns `true` when the bot shuts down.
    pub(crate) fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn sessions(&self) -> Vec<SessionHandle> {
        lock(&self.sessions).iter().map(|core| SessionHandle { core: Arc::clone(core) }).collect()
    }

    /// Stops everything now: ends sessions, closes peer connections, aborts tasks.
    fn stop_now(&self) {
        self.shutdown.send_replace(true);
        for core in lock(&self.sessions).iter() {
            core.finished(EndReason::Shutdown);
        }
        #[cfg(feature = "webrtc")]
        self.webrtc.close_all();
        self.tasks.abort_all();
    }
}

/// Builds a [`TestBot`]. Every option has a default that behaves like the Python peer bot on
/// pipecat-ai 1.14's development runner.
#[must_use]
pub struct TestBotBuilder {
    script: Script,
    server: ServerConfig,
    record_audio: Duration,
    history: History,
    #[cfg(feature = "webrtc")]
    offer_failure: Option<(u16, Value)>,
}

impl fmt::Debug for TestBotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestBotBuilder")
            .field("script", &self.script)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Default for TestBotBuilder {
    fn default() -> Self {
        let transports = if cfg!(feature = "webrtc") {
            vec![BotTransport::WebRtc, BotTransport::WebSocket]
        } else {
            vec![BotTransport::WebSocket]
        };
        TestBotBuilder {
            script: Script::default(),
            server: ServerConfig {
                transports,
                token_auth: false,
                token_rejection: TokenRejection::default(),
                start_failure: None,
                start_delay: None,
                required_headers: Vec::new(),
                ice_servers: None,
            },
            record_audio: Duration::from_secs(10),
            history: History::All,
            #[cfg(feature = "webrtc")]
            offer_failure: None,
        }
    }
}

impl TestBotBuilder {
    /// The transports to serve (default: both, or WebSocket only without the `webrtc`
    /// feature). With exactly one, `/start` behaves like the runner started with `-t`: that
    /// transport is the default and others are refused with 400. SmallWebRTC is ignored
    /// without the `webrtc` feature.
    pub fn transports(mut self, transports: impl IntoIterator<Item = BotTransport>) -> Self {
        let mut list: Vec<BotTransport> = transports
            .into_iter()
            .filter(|t| cfg!(feature = "webrtc") || *t != BotTransport::WebRtc)
            .collect();
        list.dedup();
        self.server.transports = list;
        self
    }

    /// When the bot answers `client-ready` (default: at once).
    pub fn bot_ready(mut self, mode: BotReadyMode) -> Self {
        self.script.bot_ready = mode;
        self
    }

    /// The RTVI protocol version the bot speaks (default `2.2.0`). An older one such as
    /// `2.0.0` changes the DTMF format the bot accepts; another major makes the bot answer
    /// `client-ready` with the runner's incompatibility `error-response`.
    pub fn protocol_version(mut self, version: impl Into<String>) -> Self {
        self.script.version = version.into();
        self
    }

    /// What `bot-ready` says about the bot (default: library `pipecat-testkit`).
    pub fn about(mut self, about: About) -> Self {
        self.script.about = about;
        self
    }

    /// The capabilities in `bot-ready` (default: audio in and out, nothing else); `None`
    /// leaves them out, like a pre-2.2 bot.
    pub fn capabilities(mut self, capabilities: Option<Capabilities>) -> Self {
        self.script.capabilities = capabilities;
        self
    }

    /// Echo the user's audio back as bot speech (default on). Silence is not echoed: the echo
    /// opens on sound and closes 0.5 s after it, like the Python peer bot's.
    pub fn echo_audio(mut self, echo: bool) -> Self {
        self.script.echo = echo;
        self
    }

    /// Answer the built-in `client-message` commands (`ping`, `tone`, `server-msg`,
    /// `transcript`, `bot-text`, `fn-call`, `fail`, `error`, `end`, `metrics`, `user-speaking`,
    /// `interrupt`, `renegotiate`, `drop-pc`, and the testkit's `garbage`, `oversize`,
    /// `abrupt-close`, `close`, `peer-left`; see the crate docs). Default on; off, every
    /// client message without a handler is echoed back as `server-response`.
    pub fn builtin_commands(mut self, on: bool) -> Self {
        self.script.builtin_commands = on;
        self
    }

    /// Handles `client-message`s with this `t` (before the built-in commands). The handler's
    /// [`Reply`] becomes `server-response` or `error-response`; a panicking handler becomes an
    /// `error-response`, never a dead bot.
    pub fn on_client_message<F, Fut>(mut self, t: impl Into<String>, handler: F) -> Self
    where
        F: Fn(ClientMessageRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.script.handlers.insert(t.into(), script::handler(handler));
        self
    }

    /// Runs `hook` when a session starts (a client connected), alongside the session.
    pub fn on_session_start<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SessionHandle) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.script.on_session_start.push(script::hook(hook));
        self
    }

    /// Runs `hook` once the bot has sent `bot-ready` on a session (script a session from
    /// there: push messages, start function calls, misbehave).
    pub fn on_bot_ready<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SessionHandle) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.script.on_bot_ready.push(script::hook(hook));
        self
    }

    /// How much the function-call events reveal (default [`FunctionCallReportLevel::Full`]).
    pub fn function_call_report_level(mut self, level: FunctionCallReportLevel) -> Self {
        self.script.function_call_report_level = level;
        self
    }

    /// Misbehaviour: send every kind of [`crate::Garbage`] as soon as a client connects,
    /// before `bot-ready`.
    pub fn garbage_before_ready(mut self, on: bool) -> Self {
        self.script.garbage_before_ready = on;
        self
    }

    /// WebSocket: silence sent before the close frame when the bot ends a session (the real
    /// bot sends 2 s in one frame). Default none, to keep tests fast.
    pub fn end_silence(mut self, duration: Duration) -> Self {
        self.script.end_silence = duration;
        self
    }

    /// SmallWebRTC: once a client has sent one `ping`, messages arriving after this long
    /// without another are held and never handled, as pipecat does (default 3 s; `None`
    /// turns the rule off).
    pub fn ping_liveness(mut self, window: Option<Duration>) -> Self {
        self.script.ping_liveness = window;
        self
    }

    /// WebSocket: require the one-time token `/start` hands out (`?token=`, `Authorization:
    /// Bearer`, or `/ws-client/{token}`), like the runner's `--ws-auth token`.
    pub fn websocket_token_auth(mut self, on: bool) -> Self {
        self.server.token_auth = on;
        self
    }

    /// How a bad token is refused (default: close code 4003).
    pub fn token_rejection(mut self, rejection: TokenRejection) -> Self {
        self.server.token_rejection = rejection;
        self
    }

    /// Misbehaviour: `/start` answers with this HTTP status and JSON body.
    pub fn start_failure(mut self, status: u16, body: Value) -> Self {
        self.server.start_failure = Some((status, body));
        self
    }

    /// Misbehaviour (SmallWebRTC): every offer, on `/api/offer` and `/sessions/{id}/api/offer`,
    /// is answered with this HTTP status and JSON body instead of an SDP answer: a refusing
    /// endpoint (`503`), or a malformed answer with status `200`. The offers are still
    /// recorded ([`Recorder::offers`]); trickle PATCHes are handled as usual. Switch it on
    /// and off while the bot runs with [`TestBot::set_offer_failure`].
    #[cfg(feature = "webrtc")]
    pub fn offer_failure(mut self, status: u16, body: Value) -> Self {
        self.offer_failure = Some((status, body));
        self
    }

    /// Misbehaviour: `/start` answers only after this delay.
    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.server.start_delay = Some(delay);
        self
    }

    /// `/start` requires this header (else 401 `{"detail":"Unauthorized"}`); repeatable.
    pub fn require_start_header(mut self, name: &str, value: &str) -> Self {
        self.server.required_headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// ICE servers `/start` hands to SmallWebRTC clients as `iceConfig.iceServers` (a JSON
    /// array like `[{"urls": ["stun:..."]}]`). The bot itself never uses them: it stays on
    /// loopback.
    pub fn ice_servers(mut self, servers: Value) -> Self {
        self.server.ice_servers = Some(servers);
        self
    }

    /// How much received audio to keep per session for [`Recorder::session_audio`]
    /// (default the first 10 s; zero keeps none, which suits load tests with many sessions).
    pub fn record_audio(mut self, duration: Duration) -> Self {
        self.record_audio = duration;
        self
    }

    /// How much of the sessions it served the bot remembers (default [`History::All`]; a
    /// long-running bot wants [`History::LastSessions`]).
    pub fn history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving. Needs a Tokio runtime.
    ///
    /// # Errors
    /// [`TestkitError::Bind`] if the listener cannot be bound.
    pub async fn start(self) -> Result<TestBot, TestkitError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(TestkitError::Bind)?;
        let addr = listener.local_addr().map_err(TestkitError::Bind)?;
        let echo = Arc::new(AtomicBool::new(self.script.echo));
        let shared = Arc::new(BotShared {
            script: Arc::new(self.script),
            server: self.server,
            recorder: Recorder::new(self.record_audio, self.history),
            echo,
            tasks: Tasks::default(),
            tokens: Mutex::new(HashMap::new()),
            start_sessions: Mutex::new(HashMap::new()),
            #[cfg(feature = "webrtc")]
            webrtc: crate::webrtc::Hub::default(),
            #[cfg(feature = "webrtc")]
            offer_failure: Mutex::new(self.offer_failure),
            addr,
            sessions: Mutex::new(Vec::new()),
            sessions_changed: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        });
        let app = crate::http::router(Arc::clone(&shared));
        let mut shutdown = shared.subscribe_shutdown();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|down| *down).await;
        });
        shared.tasks.spawn(async move {
            if let Err(e) = serve.await {
                tracing::warn!("testkit bot server stopped: {e}");
            }
        });
        tracing::debug!(%addr, "testkit bot listening");
        Ok(TestBot { shared })
    }
}

/// An in-process RTVI bot on loopback, serving pipecat's development-runner endpoints for
/// both transports. Dropping it stops everything it started.
///
/// See the [crate docs](crate) for an example.
pub struct TestBot {
    shared: Arc<BotShared>,
}

impl fmt::Debug for TestBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestBot").field("addr", &self.shared.addr).finish_non_exhaustive()
    }
}

impl TestBot {
    /// A builder with the defaults.
    pub fn builder() -> TestBotBuilder {
        TestBotBuilder::default()
    }

    /// Starts a bot with the defaults.
    ///
    /// # Errors
    /// [`TestkitError::Bind`].
    pub async fn start() -> Result<TestBot, TestkitError> {
        TestBotBuilder::default().start().await
    }

    /// The address the bot listens on (always `127.0.0.1`).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The `/start` endpoint (POST `{"transport": "websocket"}` or `{"transport": "webrtc"}`).
    pub fn start_url(&self) -> String {
        format!("{}/start", self.base_url())
    }

    /// The WebSocket endpoint, `ws://127.0.0.1:<port>/ws-client`. (The real runner
    /// advertises `wss://` unless it runs on `localhost`; the testkit has no TLS.)
    pub fn ws_url(&self) -> String {
        self.shared.ws_url()
    }

    /// The direct SmallWebRTC offer endpoint, `http://127.0.0.1:<port>/api/offer`.
    pub fn offer_url(&self) -> String {
        format!("{}/api/offer", self.base_url())
    }

    /// The log of everything the bot saw and did.
    pub fn recorder(&self) -> &Recorder {
        &self.shared.recorder
    }

    /// Turns the audio echo on or off for every session, from now on.
    pub fn set_echo(&self, echo: bool) {
        self.shared.echo.store(echo, Ordering::Relaxed);
    }

    /// Misbehaviour (SmallWebRTC), from now on: `Some((status, body))` answers every offer
    /// with that HTTP status and JSON body, as [`TestBotBuilder::offer_failure`] does; `None`
    /// answers offers normally again. Handy to make a running session's recovery fail.
    #[cfg(feature = "webrtc")]
    pub fn set_offer_failure(&self, failure: Option<(u16, Value)>) {
        *lock(&self.shared.offer_failure) = failure;
    }

    /// Every session so far, ended ones included, oldest first.
    pub fn sessions(&self) -> Vec<SessionHandle> {
        self.shared.sessions()
    }

    /// The sessions still running.
    pub fn active_sessions(&self) -> Vec<SessionHandle> {
        self.sessions().into_iter().filter(|s| !s.is_ended()).collect()
    }

    /// Waits until at least one session exists; returns the newest.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_session(&self, timeout: Duration) -> Result<SessionHandle, TestkitError> {
        let mut sessions = self.wait_for_sessions(1, timeout).await?;
        sessions.pop().ok_or(TestkitError::Timeout { what: "a session".into(), timeout })
    }

    /// Waits until at least `count` sessions exist (ended ones included); returns them all.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_sessions(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<SessionHandle>, TestkitError> {
        let mut changes = self.shared.sessions_changed.subscribe();
        let waited = tokio::time::timeout(timeout, changes.wait_for(|n| *n >= count)).await.is_ok();
        if waited {
            Ok(self.sessions())
        } else {
            Err(TestkitError::Timeout { what: format!("{count} session(s)"), timeout })
        }
    }

    /// Shuts the bot down gracefully: each running session says goodbye (WebSocket close
    /// 1001; SmallWebRTC `peerLeft`), then everything stops. Bounded: at most about two
    /// seconds.
    pub async fn shutdown(self) {
        let sessions = self.active_sessions();
        self.shared.shutdown.send_replace(true);
        for session in sessions {
            let _ = session.wait_ended(Duration::from_secs(2)).await;
        }
        self.shared.stop_now();
    }
}

impl Drop for TestBot {
    fn drop(&mut self) {
        self.shared.stop_now();
    }
}
