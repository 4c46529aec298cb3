//! [`PipecatClient`], the handle applications hold, and its [`ClientBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pipecat_rtvi::{
    A11ySnapshot, About, BotReady, ClientEnvelope, ClientMessage, ProtocolVersion, SendFile,
    SendTextOptions, UiSnapshot, dtmf_messages,
};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::callbacks::ClientCallbacks;
use crate::events::EventStream;
use crate::function_calls::FunctionCallHandler;
use crate::lossless::LosslessEventStream;
use crate::media::{MediaDeviceInfo, MediaState};
use crate::options::ClientOptions;
use crate::session::{ConnectSource, EndKind, EndTarget, Inner, LastStart, lock};
use crate::{ApiRequest, ConnectionParams, Error, Result, Transport, TransportState};

/// A Pipecat client: one bot session at a time over one transport, many sessions in a row.
///
/// Cheap to clone (all clones drive the same client) and `Send + Sync`. Clients share
/// nothing: any number can run in one process. Dropping the last clone ends an open session
/// in the background.
///
/// Three ways to start a session, each resolving once the bot sent `bot-ready`:
/// [`start_bot_and_connect`](Self::start_bot_and_connect), [`connect`](Self::connect), and
/// [`start_bot`](Self::start_bot) then [`reconnect`](Self::reconnect) (which connects with
/// the start answer). See the crate docs for a complete example.
#[derive(Clone)]
pub struct PipecatClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for PipecatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipecatClient")
            .field("id", &self.inner.id)
            .field("transport", &self.inner.transport.name())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl PipecatClient {
    /// A builder for a client over `transport`.
    pub fn builder<T: Transport>(transport: T) -> ClientBuilder {
        ClientBuilder::new(Arc::new(transport))
    }

    /// A builder for a client over a transport the application also keeps a handle to.
    /// One transport serves one client.
    pub fn builder_shared(transport: Arc<dyn Transport>) -> ClientBuilder {
        ClientBuilder::new(transport)
    }

    // ---- Introspection ----

    /// A short id of this client (in its tracing spans).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The transport's name (`websocket`, `small-webrtc`...).
    pub fn transport_name(&self) -> &'static str {
        self.inner.transport.name()
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The current state (synchronous).
    pub fn state(&self) -> TransportState {
        self.inner.state()
    }

    /// A watch of the state, for waiting on a change without an event stream.
    pub fn watch_state(&self) -> watch::Receiver<TransportState> {
        self.inner.watch_state()
    }

    /// `true` in `connected` and `ready`.
    pub fn is_connected(&self) -> bool {
        self.state().is_connected()
    }

    /// `true` in `ready`: the bot answered and messages may be sent.
    pub fn is_ready(&self) -> bool {
        self.state() == TransportState::Ready
    }

    /// The `bot-ready` data of the current session.
    pub fn bot_ready_data(&self) -> Option<BotReady> {
        self.inner.lock().bot_ready.clone()
    }

    /// The bot's protocol version in the current session (`None` before `bot-ready` or if
    /// the bot sent an unparseable version).
    pub fn bot_version(&self) -> Option<ProtocolVersion> {
        self.inner.lock().bot_version
    }

    /// A new subscription to the client's events. Subscribe before starting a session to
    /// see all of its events; a subscription never slows the session (see [`EventStream`]).
    ///
    /// It is lossy: a subscriber more than [`ClientOptions::event_capacity`] events behind
    /// loses the oldest and gets a [`crate::ClientEvent::Lagged`], which suits user
    /// interfaces. Recorders, machine-readable output and tests that must see every event use
    /// [`events_lossless`](Self::events_lossless).
    pub fn events(&self) -> EventStream {
        self.inner.ensure_background();
        EventStream::new(self.inner.subscribe())
    }

    /// A new subscription that loses nothing: every event from now on, in the order
    /// [`events`](Self::events) delivers them, never [`crate::ClientEvent::Lagged`]. It never
    /// slows the session either; what its reader has not taken yet waits in memory, without
    /// a bound (see [`LosslessEventStream`] for the trade-off).
    pub fn events_lossless(&self) -> LosslessEventStream {
        self.inner.ensure_background();
        self.inner.subscribe_lossless()
    }

    // ---- Lifecycle ----

    /// Opens the local devices ahead of a session: `initializing`, then `initialized`.
    /// During a session it re-opens them without touching the state (the recovery path
    /// after a device error).
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`] while a session starts or ends elsewhere; the transport's
    /// error (the state then goes `error` → `disconnected`).
    pub async fn init_devices(&self) -> Result<()> {
        self.inner.ensure_background();
        self.inner.init_devices().await
    }

    /// POSTs `request` to the bot's start endpoint (`authenticating`, then `authenticated`),
    /// emits [`crate::ClientEvent::BotStarted`] and returns the JSON answer. Connect with it
    /// through [`reconnect`](Self::reconnect), or use
    /// [`start_bot_and_connect`](Self::start_bot_and_connect) for both steps.
    ///
    /// A request without its own `timeout` uses [`ClientOptions::start_bot_timeout`].
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`]; [`Error::StartBot`] with the HTTP status and the server's
    /// message, or the unreachable / timeout / non-JSON cause (the state then goes `error` →
    /// `disconnected`); [`Error::Disconnected`] if `disconnect()` interrupted it.
    pub async fn start_bot(&self, request: ApiRequest) -> Result<Value> {
        self.inner.ensure_background();
        self.inner.start_bot(request).await.map(|(_, answer)| answer)
    }

    /// Connects with `params` and resolves when `bot-ready` arrives:
    /// `connecting` → `connected` → `ready`. Also continues a session begun by
    /// [`start_bot`](Self::start_bot), replacing its answer with `params`.
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`]; [`Error::Transport`] / [`Error::InvalidParams`] from the
    /// transport; [`Error::Timeout`] (connect or bot-ready); [`Error::BotError`] (a fatal
    /// error before ready); [`Error::BotDisconnected`]; [`Error::Disconnected`]. Every error
    /// leaves the client `disconnected` and clean.
    pub async fn connect(&self, params: impl Into<ConnectionParams>) -> Result<BotReady> {
        self.inner.ensure_background();
        self.inner.connect(ConnectSource::Params(params.into()), None).await
    }

    /// Connects without new parameters, like client-js `connect()` with none:
    /// - after [`start_bot`](Self::start_bot) (state `authenticated`): with its answer,
    ///   mapped by the transport;
    /// - after a session that began with a start request: POSTs that request again and
    ///   connects with the fresh answer (an ended bot session cannot be rejoined);
    /// - after a session that began with [`connect`](Self::connect): with the same
    ///   parameters.
    ///
    /// # Errors
    /// As [`connect`](Self::connect) and [`start_bot`](Self::start_bot);
    /// [`Error::InvalidParams`] when nothing was started before.
    pub async fn reconnect(&self) -> Result<BotReady> {
        self.inner.ensure_background();
        self.inner.wait_settled().await;
        let plan = {
            let shared = self.inner.lock();
            if shared.state() == TransportState::Authenticated {
                None
            } else {
                match &shared.last_start {
                    Some(last) => Some(last.clone()),
                    None => {
                        return Err(Error::InvalidParams(
                            "nothing to reconnect with: no earlier start request or parameters"
                                .into(),
                        ));
                    }
                }
            }
        };
        match plan {
            None => self.inner.connect(ConnectSource::Started, None).await,
            Some(LastStart::Request(request)) => self.start_bot_and_connect(request).await,
            Some(LastStart::Params(params)) => {
                self.inner.connect(ConnectSource::Params(params), None).await
            }
        }
    }

    /// [`start_bot`](Self::start_bot), then connects with the answer (mapped by the
    /// transport), resolving when `bot-ready` arrives.
    ///
    /// # Errors
    /// As [`start_bot`](Self::start_bot) and [`connect`](Self::connect).
    pub async fn start_bot_and_connect(&self, request: ApiRequest) -> Result<BotReady> {
        self.inner.ensure_background();
        let (handle, _) = self.inner.start_bot(request).await?;
        self.inner.connect(ConnectSource::Started, Some(&handle)).await
    }

    /// Ends the session: `disconnecting` → `disconnected`. Pending requests fail with
    /// [`Error::Disconnected`], a pending `connect` too; the transport is closed (within
    /// [`ClientOptions::disconnect_timeout`]). Safe in any state; a no-op when nothing is
    /// active.
    ///
    /// # Errors
    /// The transport's disconnect error; the client is `disconnected` regardless.
    pub async fn disconnect(&self) -> Result<()> {
        self.inner.ensure_background();
        if self.state().is_ending() {
            self.inner.wait_settled().await;
            return Ok(());
        }
        self.inner.end(EndTarget::Current, EndKind::Orderly(Error::Disconnected)).await?;
        // Another end may have been in progress.
        self.inner.wait_settled().await;
        Ok(())
    }

    // ---- Messages (need `ready`) ----

    /// Sends `client-message` `{t, d}`, fire and forget.
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::MessageTooLarge`]; the transport's error.
    pub async fn send_client_message(
        &self,
        t: impl Into<String>,
        d: impl Into<Option<Value>>,
    ) -> Result<()> {
        self.inner.send_ready(ClientEnvelope::client_message(t, d.into())).await
    }

    /// Sends `client-message` `{t, d}` and waits for the bot's `server-response` with the
    /// same id; returns its `d` (`Value::Null` when absent). Waits at most
    /// [`ClientOptions::request_timeout`].
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::ErrorResponse`] with the bot's text;
    /// [`Error::Timeout`]; [`Error::Disconnected`] when the session ends first;
    /// [`Error::MessageTooLarge`]; the transport's error.
    pub async fn send_client_request(
        &self,
        t: impl Into<String>,
        d: impl Into<Option<Value>>,
    ) -> Result<Value> {
        self.inner.request(t.into(), d.into(), self.inner.options.request_timeout).await
    }

    /// [`send_client_request`](Self::send_client_request) with its own time limit.
    ///
    /// # Errors
    /// As [`send_client_request`](Self::send_client_request).
    pub async fn send_client_request_with_timeout(
        &self,
        t: impl Into<String>,
        d: impl Into<Option<Value>>,
        timeout: Duration,
    ) -> Result<Value> {
        self.inner.request(t.into(), d.into(), timeout).await
    }

    /// Sends `send-text`: text for the LLM as if the user said it (the bot's defaults: run
    /// now, speak the reply).
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::MessageTooLarge`]; the transport's error.
    pub async fn send_text(&self, content: impl Into<String>) -> Result<()> {
        self.inner.send_ready(ClientEnvelope::send_text(content, None)).await
    }

    /// Sends `send-text` with options (`run_immediately`, `audio_response`).
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub async fn send_text_with_options(
        &self,
        content: impl Into<String>,
        options: SendTextOptions,
    ) -> Result<()> {
        self.inner.send_ready(ClientEnvelope::send_text(content, Some(options))).await
    }

    /// Asks the bot to end the session gracefully (`disconnect-bot`). The bot leaves; the
    /// client reacts to that ([`ClientOptions::disconnect_on_bot_disconnect`]).
    ///
    /// # Errors
    /// [`Error::NotReady`]; the transport's error.
    pub async fn disconnect_bot(&self) -> Result<()> {
        self.inner.send_ready(ClientEnvelope::disconnect_bot()).await
    }

    /// Sends telephone keys (`0`-`9`, `*`, `#`) in the shape the bot's protocol version
    /// understands: one message for 2.1+, one per key for 2.0.x.
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::InvalidInput`] for other characters;
    /// [`Error::Unsupported`] for bots below 2.0 (also an `UnsupportedFeature` event); the
    /// transport's error.
    pub async fn send_dtmf(&self, keys: &str) -> Result<()> {
        let version = self.ready_bot_version()?;
        let messages =
            dtmf_messages(version, keys).map_err(|e| self.inner.report_unsupported(e.into()))?;
        for message in messages {
            self.inner.send_ready(ClientEnvelope::new(message)).await?;
        }
        Ok(())
    }

    /// Sends a `ui-event`.
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::MessageTooLarge`]; the transport's error.
    pub async fn send_ui_event(
        &self,
        event: impl Into<String>,
        payload: impl Into<Option<Value>>,
    ) -> Result<()> {
        self.inner.send_ready(ClientEnvelope::ui_event(event, payload.into())).await
    }

    /// Sends `ui-cancel-job-group`.
    ///
    /// # Errors
    /// [`Error::NotReady`]; the transport's error.
    pub async fn cancel_ui_job_group(
        &self,
        job_id: impl Into<String>,
        reason: Option<String>,
    ) -> Result<()> {
        self.inner.send_ready(ClientEnvelope::cancel_job_group(job_id, reason)).await
    }

    /// Sends a `ui-snapshot` (an accessibility tree of the application's UI).
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::MessageTooLarge`]; the transport's error.
    pub async fn send_ui_snapshot(&self, tree: A11ySnapshot) -> Result<()> {
        let message = ClientMessage::UiSnapshot(UiSnapshot { tree });
        self.inner.send_ready(ClientEnvelope::new(message)).await
    }

    /// Sends `send-file` (RTVI 2.2+): a file or image for the LLM. Bots of older protocols
    /// (pipecat-ai 1.12 and earlier) have no such message, so it is refused here instead of
    /// being sent into an "Unsupported type" reply.
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::Unsupported`] for bots below 2.2.0 (also an
    /// `UnsupportedFeature` event); [`Error::MessageTooLarge`] (large files belong behind a
    /// URL); the transport's error.
    pub async fn send_file(&self, file: SendFile) -> Result<()> {
        let version = self.ready_bot_version()?;
        version.check_send_file().map_err(|e| self.inner.report_unsupported(e.into()))?;
        self.inner.send_ready(ClientEnvelope::new(ClientMessage::SendFile(file))).await
    }

    /// The bot's protocol version for deciding what may be sent, once the session is ready
    /// (an unknown version counts as the oldest supported protocol).
    fn ready_bot_version(&self) -> Result<ProtocolVersion> {
        let shared = self.inner.lock();
        self.inner.ready_attempt(&shared)?;
        Ok(shared.gating_version())
    }

    /// Sends any client message with a fresh id and returns the id (replies to it arrive
    /// as events).
    ///
    /// # Errors
    /// [`Error::NotReady`]; [`Error::MessageTooLarge`]; the transport's error.
    pub async fn send_message(&self, message: ClientMessage) -> Result<String> {
        let envelope = ClientEnvelope::new(message);
        let id = envelope.id.clone();
        self.inner.send_ready(envelope).await?;
        Ok(id)
    }

    // ---- Function calls ----

    /// Registers `handler` for the LLM function `name` (replacing an earlier one). It runs
    /// on `llm-function-call-in-progress` (and the deprecated `llm-function-call`) when the
    /// bot names the function; its result, or `{"error": ...}` when it fails, panics or
    /// exceeds [`ClientOptions::function_call_timeout`], is always sent back as
    /// `llm-function-call-result`.
    ///
    /// ```
    /// # use pipecat_core::{FunctionCall, PipecatClient};
    /// # fn demo(client: &PipecatClient) {
    /// client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
    ///     let city = call.arguments["city"].as_str().unwrap_or("Paris").to_owned();
    ///     Ok::<_, String>(serde_json::json!({ "city": city, "temp_c": 21 }))
    /// });
    /// # }
    /// ```
    pub fn register_function_call_handler(
        &self,
        name: impl Into<String>,
        handler: impl FunctionCallHandler,
    ) {
        lock(&self.inner.functions).register(name.into(), Arc::new(handler));
    }

    /// Removes the handler of `name`; `true` if there was one.
    pub fn unregister_function_call_handler(&self, name: &str) -> bool {
        lock(&self.inner.functions).unregister(name)
    }

    /// Registers a handler for every named function without a handler of its own.
    ///
    /// The bot also announces the functions it runs itself; with a catch-all those get a
    /// result from the client too. Use it only when all functions are client-side.
    pub fn register_catch_all_function_call_handler(&self, handler: impl FunctionCallHandler) {
        lock(&self.inner.functions).set_catch_all(Some(Arc::new(handler)));
    }

    /// Removes the catch-all handler.
    pub fn unregister_catch_all_function_call_handler(&self) {
        lock(&self.inner.functions).set_catch_all(None);
    }

    /// Removes every handler, the catch-all included.
    pub fn unregister_all_function_call_handlers(&self) {
        lock(&self.inner.functions).clear();
    }

    // ---- Media (the transport's media control; see `Transport::media`) ----

    /// Turns the microphone on or off (off sends silence at the same pace).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a transport without media (also an `UnsupportedFeature`
    /// event) or the transport's error.
    pub async fn enable_mic(&self, enabled: bool) -> Result<()> {
        let media = self.inner.media_control("enable_mic")?;
        self.inner.media(media.enable_mic(enabled).await)
    }

    /// Whether the microphone is on (`false` for a transport without media).
    pub fn is_mic_enabled(&self) -> bool {
        self.inner.transport.media().is_some_and(|m| m.is_mic_enabled())
    }

    /// The microphones available.
    ///
    /// # Errors
    /// [`Error::Unsupported`] (also an `UnsupportedFeature` event) or the transport's error.
    pub fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>> {
        let media = self.inner.media_control("available_mics")?;
        self.inner.media(media.available_mics())
    }

    /// The speakers available.
    ///
    /// # Errors
    /// [`Error::Unsupported`] (also an `UnsupportedFeature` event) or the transport's error.
    pub fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>> {
        let media = self.inner.media_control("available_speakers")?;
        self.inner.media(media.available_speakers())
    }

    /// Switches the microphone (mid-session too).
    ///
    /// # Errors
    /// [`Error::Unsupported`] (also an `UnsupportedFeature` event) or the transport's error.
    pub async fn update_mic(&self, device_id: &str) -> Result<()> {
        let media = self.inner.media_control("update_mic")?;
        self.inner.media(media.update_mic(device_id).await)
    }

    /// Switches the speaker (mid-session too).
    ///
    /// # Errors
    /// [`Error::Unsupported`] (also an `UnsupportedFeature` event) or the transport's error.
    pub async fn update_speaker(&self, device_id: &str) -> Result<()> {
        let media = self.inner.media_control("update_speaker")?;
        self.inner.media(media.update_speaker(device_id).await)
    }

    /// The microphone in use.
    pub fn selected_mic(&self) -> Option<MediaDeviceInfo> {
        self.inner.transport.media().and_then(|m| m.selected_mic())
    }

    /// The speaker in use.
    pub fn selected_speaker(&self) -> Option<MediaDeviceInfo> {
        self.inner.transport.media().and_then(|m| m.selected_speaker())
    }

    /// The states of the local devices (all `uninitialized` for a transport without media).
    pub fn media_state(&self) -> MediaState {
        self.inner.transport.media().map(|m| m.media_state()).unwrap_or_default()
    }
}

/// Builds a [`PipecatClient`]; every option has a default (see [`ClientOptions`]).
///
/// `build()` may be called outside a Tokio runtime; the client's background tasks then start
/// on its first async call.
#[must_use]
pub struct ClientBuilder {
    transport: Arc<dyn Transport>,
    options: ClientOptions,
    callbacks: Option<Arc<dyn ClientCallbacks>>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("transport", &self.transport.name())
            .field("options", &self.options)
            .field("callbacks", &self.callbacks.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder over `transport` with default options.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        ClientBuilder { transport, options: ClientOptions::default(), callbacks: None, http: None }
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Disconnect when the bot leaves (default `true`).
    pub fn disconnect_on_bot_disconnect(mut self, enabled: bool) -> Self {
        self.options.disconnect_on_bot_disconnect = enabled;
        self
    }

    /// Limit of start requests without their own (default 30 s).
    pub fn start_bot_timeout(mut self, limit: Duration) -> Self {
        self.options.start_bot_timeout = limit;
        self
    }

    /// Limit for the transport to connect (default 30 s).
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.options.connect_timeout = limit;
        self
    }

    /// Limit for `bot-ready` once the transport is up (default 30 s).
    pub fn bot_ready_timeout(mut self, limit: Duration) -> Self {
        self.options.bot_ready_timeout = limit;
        self
    }

    /// Default limit of client requests (default 10 s).
    pub fn request_timeout(mut self, limit: Duration) -> Self {
        self.options.request_timeout = limit;
        self
    }

    /// Limit of function-call handlers (default 30 s).
    pub fn function_call_timeout(mut self, limit: Duration) -> Self {
        self.options.function_call_timeout = limit;
        self
    }

    /// Answer function calls that have no handler with an error result (default off). Off,
    /// such a call is reported as
    /// [`ClientEvent::FunctionCallUndispatched`](crate::ClientEvent::FunctionCallUndispatched)
    /// with [`UndispatchedReason::NoHandler`](crate::UndispatchedReason::NoHandler) and left to
    /// the bot, which runs its own functions and waits for the client's otherwise; on, it also gets
    /// `{"error": "no handler for <name> in the client"}` at once, so the bot's LLM does not
    /// wait. Turn it on when every function of the bot is meant to run in the client.
    pub fn reply_to_unhandled_function_calls(mut self, on: bool) -> Self {
        self.options.reply_to_unhandled_function_calls = on;
        self
    }

    /// Limit for the transport to accept a message (default 10 s).
    pub fn send_timeout(mut self, limit: Duration) -> Self {
        self.options.send_timeout = limit;
        self
    }

    /// Limit for the transport to disconnect (default 5 s).
    pub fn disconnect_timeout(mut self, limit: Duration) -> Self {
        self.options.disconnect_timeout = limit;
        self
    }

    /// How many events an [`EventStream`] subscriber may fall behind (default 1024); a
    /// [`LosslessEventStream`] has no such limit.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.options.event_capacity = capacity;
        self
    }

    /// The `about` to send in `client-ready` (to name the application).
    pub fn about(mut self, about: About) -> Self {
        self.options.about = about;
        self
    }

    /// Callbacks for the client's events.
    pub fn callbacks(mut self, callbacks: impl ClientCallbacks) -> Self {
        self.callbacks = Some(Arc::new(callbacks));
        self
    }

    /// The HTTP client for start requests (to share a connection pool or set a proxy).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client and attaches the transport to it.
    pub fn build(self) -> PipecatClient {
        let http = self.http.unwrap_or_default();
        PipecatClient { inner: Inner::new(self.transport, self.options, http, self.callbacks) }
    }
}

impl From<Map<String, Value>> for ConnectionParams {
    fn from(values: Map<String, Value>) -> Self {
        ConnectionParams { values, start_request: None }
    }
}

impl TryFrom<Value> for ConnectionParams {
    type Error = crate::TransportError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        ConnectionParams::from_json(value)
    }
}
