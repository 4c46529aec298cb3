//! One voice session, as `connect` and `demo` run it: audio ends, transport, client, the
//! live view, the actions once ready, the end, the recording and the exit status.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pipecat::rtvi::About;
use pipecat::small_webrtc::{IceServer, SmallWebRtcParams, SmallWebRtcTransport};
use pipecat::websocket::{WebSocketParams, WebSocketTransport};
use pipecat::{
    ApiRequest, ClientEvent, ConnectionParams, EventStream, FunctionCall, PipecatClient, Transport,
    TransportState,
};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::args::{InputSpec, OutputSpec, TargetArgs, TransportArg};
use crate::audio::{
    AudioCounters, DeviceHandles, Tap, TapSink, TapSource, close_shared, open_input, open_output,
};
use crate::clock::Clock;
use crate::error::{CliError, one_line};
use crate::observe::{MessageObserver, ObservedTransport};
use crate::record::{Direction, Recording};
use crate::view::Console;

/// How long the end of a session may take to show (events still in flight).
const SETTLE: Duration = Duration::from_secs(5);

/// Where the bot is and how to reach it.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// POST a start endpoint, then connect with its answer.
    Start {
        /// The start request.
        request: ApiRequest,
        /// The transport asked for.
        transport: TransportArg,
    },
    /// A WebSocket URL.
    WebSocket(WebSocketParams),
    /// A SmallWebRTC offer endpoint.
    Offer(Box<SmallWebRtcParams>, String),
}

impl Target {
    /// From `--start` / `--ws-url` / `--offer-url` and their options.
    pub(crate) fn from_args(args: &TargetArgs) -> Result<Self, CliError> {
        if let Some(url) = &args.start {
            let request = start_request(url, args.transport, args.body.clone(), &args.headers)
                .timeout(args.ready_timeout);
            return Ok(Target::Start { request, transport: args.transport });
        }
        if let Some(url) = &args.ws_url {
            let mut params = WebSocketParams::new(url.clone());
            if let Some(token) = &args.token {
                params = params.with_token(token.clone());
            }
            // Checked now, for a usage error rather than a failed start.
            params.url().map_err(|e| CliError::usage(format!("--ws-url: {e}")))?;
            return Ok(Target::WebSocket(params));
        }
        if let Some(url) = &args.offer_url {
            check_http_url(url, "--offer-url")?;
            let mut request = ApiRequest::new(url.clone()).timeout(args.ready_timeout);
            for (name, value) in &args.headers {
                request = request.header(name.clone(), value.clone());
            }
            if let Some(body) = &args.body {
                request = request.request_data(body.clone());
            }
            let params = SmallWebRtcParams { webrtc_request: Some(request), ..Default::default() };
            return Ok(Target::Offer(Box::new(params), url.clone()));
        }
        Err(CliError::usage("give --start, --ws-url or --offer-url"))
    }

    /// The transport this target needs.
    pub(crate) fn transport(&self) -> TransportArg {
        match self {
            Target::Start { transport, .. } => *transport,
            Target::WebSocket(_) => TransportArg::Websocket,
            Target::Offer(..) => TransportArg::Webrtc,
        }
    }

    /// The URL the session begins with.
    fn url(&self) -> &str {
        match self {
            Target::Start { request, .. } => &request.endpoint,
            Target::WebSocket(params) => &params.ws_url,
            Target::Offer(_, url) => url,
        }
    }

    /// Whether the bot runs on this machine (SmallWebRTC then uses loopback candidates).
    pub(crate) fn is_loopback(&self) -> bool {
        is_loopback_url(self.url())
    }

    /// For people: where and how (no query strings, which may hold tokens).
    fn describe(&self) -> String {
        let url = self.url().split(['?', '#']).next().unwrap_or_default();
        match self {
            Target::Start { transport, .. } => {
                format!("POST {url} (transport {})", transport.runner_name())
            }
            Target::WebSocket(_) => format!("WebSocket {url}"),
            Target::Offer(..) => format!("SmallWebRTC offer {url}"),
        }
    }
}

/// The start request: `body` (default `{}`) with `transport` added to an object that lacks
/// it, and the headers.
pub(crate) fn start_request(
    url: &str,
    transport: TransportArg,
    body: Option<Value>,
    headers: &[(String, String)],
) -> ApiRequest {
    let mut body = body.unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut body {
        map.entry("transport").or_insert_with(|| transport.runner_name().into());
    }
    let mut request = ApiRequest::new(url).request_data(body);
    for (name, value) in headers {
        request = request.header(name.clone(), value.clone());
    }
    request
}

/// Fails with a usage error unless `url` is an http(s) URL with a host.
pub(crate) fn check_http_url(url: &str, flag: &str) -> Result<(), CliError> {
    match pipecat::url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(CliError::usage(format!("{flag} needs an http:// or https:// URL"))),
        Err(e) => Err(CliError::usage(format!("{flag}: invalid URL: {e}"))),
    }
}

/// Whether `url`'s host is this machine.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = pipecat::url::Url::parse(url) else { return false };
    match url.host() {
        Some(pipecat::url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(pipecat::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(pipecat::url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A transport of `kind` over the given audio ends.
pub(crate) fn build_transport(
    kind: TransportArg,
    loopback: bool,
    ice_servers: &[String],
    source: TapSource,
    sink: TapSink,
    connect_timeout: Duration,
) -> Result<Box<dyn Transport>, CliError> {
    Ok(match kind {
        TransportArg::Websocket => Box::new(
            WebSocketTransport::builder()
                .audio_source(source)
                .audio_sink(sink)
                .connect_timeout(connect_timeout)
                .build()
                .map_err(|e| {
                    CliError::local(format!("cannot build the WebSocket transport: {e}"))
                })?,
        ),
        TransportArg::Webrtc => {
            let mut builder = SmallWebRtcTransport::builder()
                .audio_source(Box::new(source))
                .audio_sink(Box::new(sink))
                .connect_timeout(connect_timeout);
            if loopback {
                builder = builder.loopback_only();
            }
            if !ice_servers.is_empty() {
                builder = builder.ice_servers(ice_servers.iter().map(IceServer::new).collect());
            }
            Box::new(builder.build().map_err(|e| {
                CliError::local(format!("cannot build the SmallWebRTC transport: {e}"))
            })?)
        }
    })
}

/// A client over `transport` with every time limit set to `limit`.
pub(crate) fn build_client(transport: Box<dyn Transport>, limit: Duration) -> PipecatClient {
    PipecatClient::builder_shared(Arc::from(transport))
        .start_bot_timeout(limit)
        .connect_timeout(limit)
        .bot_ready_timeout(limit)
        .about(About::library("pipecat-cli", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Starts the session the target describes; resolves on `bot-ready`.
pub(crate) async fn start(client: &PipecatClient, target: &Target) -> pipecat::Result<()> {
    match target {
        Target::Start { request, .. } => client.start_bot_and_connect(request.clone()).await?,
        Target::WebSocket(params) => client.connect(params.clone()).await?,
        Target::Offer(params, _) => client.connect(ConnectionParams::from(*params.clone())).await?,
    };
    Ok(())
}

/// Something to do once the bot is ready.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// `send-text`.
    SendText(String),
    /// A fire-and-forget `client-message`.
    ClientMessage(String, Option<Value>),
    /// A `client-message` whose answer is awaited (and shown).
    Request(String, Option<Value>),
    /// Wait (at most the duration) for an event of this name.
    WaitFor(&'static str, Duration),
    /// A line of narration.
    Say(String),
}

/// Everything one session needs.
#[derive(Debug, Clone)]
pub(crate) struct SessionPlan {
    /// The bot.
    pub(crate) target: Target,
    /// `--input`.
    pub(crate) input: InputSpec,
    /// `--output`.
    pub(crate) output: OutputSpec,
    /// What to do once ready.
    pub(crate) steps: Vec<Step>,
    /// End the session when the steps are done (the demo) rather than on `duration`, the
    /// bot or Ctrl-C.
    pub(crate) end_after_steps: bool,
    /// `--duration`.
    pub(crate) duration: Option<Duration>,
    /// Time limit of each startup step.
    pub(crate) ready_timeout: Duration,
    /// `--ice-server`.
    pub(crate) ice_servers: Vec<String>,
    /// `--json`.
    pub(crate) json: bool,
    /// `--record`.
    pub(crate) record: Option<PathBuf>,
    /// Answer the `get_weather` function call (the demo's).
    pub(crate) weather_function: bool,
}

/// Facts about the session gathered from its events.
#[derive(Debug, Default)]
struct Facts {
    fatal: Option<String>,
    bot_left: Option<String>,
}

impl Facts {
    fn observe(&mut self, event: &ClientEvent) {
        match event {
            ClientEvent::Error(e) if e.fatal => {
                self.fatal.get_or_insert_with(|| e.message.clone());
            }
            ClientEvent::BotDisconnected { reason } => {
                self.bot_left.get_or_insert_with(|| reason.clone());
            }
            _ => {}
        }
    }
}

/// How the session came to an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// `--duration` elapsed.
    Duration,
    /// Ctrl-C.
    Interrupted,
    /// The steps were done (demo).
    Steps,
    /// The session ended by itself (the bot left, or a failure).
    ByItself,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Duration => "duration",
            End::Interrupted => "interrupted",
            End::Steps => "done",
            End::ByItself => "bot",
        }
    }
}

/// Feeds the recording's message log.
struct RecordObserver {
    recording: Arc<Recording>,
    clock: Clock,
}

impl MessageObserver for RecordObserver {
    fn outbound(&self, text: &str) {
        self.recording.messages.message(&self.clock, Direction::Out, text);
    }
    fn inbound(&self, text: &str) {
        self.recording.messages.message(&self.clock, Direction::In, text);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one session to its end. `Ok` is a clean end.
pub(crate) async fn run(plan: SessionPlan) -> Result<(), CliError> {
    let clock = Clock::start();
    let recording = match &plan.record {
        Some(dir) => Some(Arc::new(Recording::create(dir)?)),
        None => None,
    };
    let counters = Arc::new(AudioCounters::default());
    let tap = Tap::new(Arc::clone(&counters), recording.clone());
    let mut handles = DeviceHandles::default();
    let source = TapSource::new(open_input(&plan.input, false, &mut handles)?, tap.clone());
    let (sink, sink_handle) = TapSink::new(open_output(&plan.output, &mut handles)?, tap);
    let mut transport = build_transport(
        plan.target.transport(),
        plan.target.is_loopback(),
        &plan.ice_servers,
        source,
        sink,
        plan.ready_timeout,
    )?;
    if let Some(recording) = &recording {
        let observer = RecordObserver { recording: Arc::clone(recording), clock };
        transport = Box::new(ObservedTransport::new(transport, Arc::new(observer)));
    }
    let client = build_client(transport, plan.ready_timeout);
    if plan.weather_function {
        client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
            let city = call.arguments.get("city").and_then(Value::as_str).unwrap_or("Paris");
            Ok::<_, String>(json!({ "city": city, "temperature_c": 21, "sky": "clear" }))
        });
    }

    let console = Arc::new(Mutex::new(Console::new(plan.json, clock, recording.clone())));
    let facts = Arc::new(Mutex::new(Facts::default()));
    // The steps wait for events the view has shown, so the narration stays in order.
    let (shown, steps_events) = tokio::sync::broadcast::channel(1024);
    let view =
        tokio::spawn(show_events(client.events(), Arc::clone(&console), Arc::clone(&facts), shown));

    lock(&console).note("you", &format!("connecting: {}", plan.target.describe()));
    if let Err(e) = start(&client, &plan.target).await {
        let reason = one_line(&e.to_string());
        let _ = tokio::time::timeout(SETTLE, view).await;
        lock(&console).finish();
        let _ = close_shared(&sink_handle).await;
        if let Some(recording) = &recording {
            let _ = recording.finish();
        }
        return Err(CliError::Start(reason));
    }
    let time_to_ready = clock.elapsed();

    let mut steps = tokio::spawn(run_steps(
        client.clone(),
        plan.steps.clone(),
        steps_events,
        Arc::clone(&console),
    ));
    let mut state = client.watch_state();
    let mut steps_result = None;
    let end = tokio::select! {
        () = sleep_or_forever(plan.duration), if !plan.end_after_steps => End::Duration,
        Ok(()) = tokio::signal::ctrl_c() => End::Interrupted,
        _ = state.wait_for(|s| !matches!(s, TransportState::Ready)) => End::ByItself,
        done = &mut steps, if plan.end_after_steps => {
            steps_result = Some(done.unwrap_or_else(|e| Err(format!("the steps stopped: {e}"))));
            End::Steps
        }
    };
    steps.abort();
    if end != End::ByItself {
        lock(&console).note("you", &format!("ending the session ({})", end_reason(end)));
    }
    let disconnect_error = client.disconnect().await.err();
    let _ = tokio::time::timeout(SETTLE, view).await;
    let closed = close_shared(&sink_handle).await;

    let facts = std::mem::take(&mut *lock(&facts));
    let outcome: Result<(), CliError> = match (end, facts.fatal, facts.bot_left) {
        (_, Some(fatal), _) => Err(CliError::Session(one_line(&fatal))),
        (End::ByItself, None, None) => Err(CliError::Session(match disconnect_error {
            Some(e) => one_line(&e.to_string()),
            None => "the connection ended unexpectedly".into(),
        })),
        _ => match steps_result {
            Some(Err(e)) => Err(CliError::Session(one_line(&e))),
            _ => Ok(()),
        },
    };
    let mut outcome = outcome;
    if let Err(e) = closed
        && outcome.is_ok()
    {
        outcome = Err(CliError::local(format!("cannot finish the output file: {e}")));
    }
    let mut recorded = None;
    if let Some(recording) = &recording {
        match recording.finish() {
            Ok(()) => recorded = Some(recording.dir().to_path_buf()),
            Err(e) if outcome.is_ok() => outcome = Err(e),
            Err(_) => {}
        }
    }

    let mut console = lock(&console);
    let session = clock.elapsed().saturating_sub(time_to_ready);
    console.note(
        "done",
        &format!(
            "ready after {:.3} s, session {:.1} s; audio up {} frames ({:.1} s), down {} frames ({:.1} s)",
            time_to_ready.as_secs_f64(),
            session.as_secs_f64(),
            counters.up.frames(),
            counters.up.audio().as_secs_f64(),
            counters.down.frames(),
            counters.down.audio().as_secs_f64(),
        ),
    );
    if let Some(dir) = &recorded {
        console.note("done", &format!("recorded to {}", dir.display()));
    }
    let mut summary = Map::new();
    summary.insert("ok".into(), outcome.is_ok().into());
    summary.insert("end".into(), end.as_str().into());
    if let Err(e) = &outcome {
        summary.insert("error".into(), e.to_string().into());
    }
    summary.insert("time_to_ready_ms".into(), millis(time_to_ready).into());
    summary.insert("session_ms".into(), millis(session).into());
    summary.insert("frames_up".into(), counters.up.frames().into());
    summary.insert("frames_down".into(), counters.down.frames().into());
    summary.insert("audio_up_ms".into(), millis(counters.up.audio()).into());
    summary.insert("audio_down_ms".into(), millis(counters.down.audio()).into());
    console.json_line("session-summary", summary);
    console.finish();
    outcome
}

fn end_reason(end: End) -> &'static str {
    match end {
        End::Duration => "--duration elapsed",
        End::Interrupted => "Ctrl-C",
        End::Steps => "demo complete",
        End::ByItself => "the session ended",
    }
}

/// Milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Shows every event until the session is over.
async fn show_events(
    mut events: EventStream,
    console: Arc<Mutex<Console>>,
    facts: Arc<Mutex<Facts>>,
    shown: broadcast::Sender<&'static str>,
) {
    while let Some(event) = events.recv().await {
        lock(&facts).observe(&event);
        lock(&console).event(&event);
        // Nobody listening (no steps, or they are done) is fine.
        let _ = shown.send(event.name());
        if matches!(event, ClientEvent::Disconnected) {
            break;
        }
    }
}

/// Runs the steps in order; the first failure ends them.
async fn run_steps(
    client: PipecatClient,
    steps: Vec<Step>,
    mut shown: broadcast::Receiver<&'static str>,
    console: Arc<Mutex<Console>>,
) -> Result<(), String> {
    let note = |tag: &str, text: String| lock(&console).note(tag, &text);
    for step in steps {
        match step {
            Step::Say(text) => note("demo", text),
            Step::SendText(text) => {
                note("you", format!("send-text {text:?}"));
                client.send_text(text).await.map_err(|e| format!("send-text failed: {e}"))?;
            }
            Step::ClientMessage(t, d) => {
                note("you", format!("client-message {t}{}", show_data(d.as_ref())));
                client
                    .send_client_message(t.clone(), d)
                    .await
                    .map_err(|e| format!("client-message {t} failed: {e}"))?;
            }
            Step::Request(t, d) => {
                note("you", format!("request {t}{}", show_data(d.as_ref())));
                let answer = client
                    .send_client_request(t.clone(), d)
                    .await
                    .map_err(|e| format!("request {t} failed: {e}"))?;
                note("you", format!("request {t} answered: {answer}"));
            }
            Step::WaitFor(name, limit) => {
                let found = tokio::time::timeout(limit, async {
                    loop {
                        match shown.recv().await {
                            Ok(event) if event == name => return true,
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return false,
                        }
                    }
                })
                .await;
                if !matches!(found, Ok(true)) {
                    note(
                        "demo",
                        format!("no {name} within {:.1} s; going on", limit.as_secs_f64()),
                    );
                }
            }
        }
    }
    Ok(())
}

/// ` <json>` for a message's data, or nothing.
fn show_data(d: Option<&Value>) -> String {
    d.map(|d| format!(" {d}")).unwrap_or_default()
}

/// Everything a `connect` command line asks for, as a plan.
pub(crate) fn connect_plan(
    args: &crate::args::ConnectArgs,
    actions: Vec<crate::args::Action>,
) -> Result<SessionPlan, CliError> {
    let target = Target::from_args(&args.target)?;
    let steps = actions
        .into_iter()
        .map(|action| match action {
            crate::args::Action::SendText(text) => Step::SendText(text),
            crate::args::Action::ClientMessage(t, d) => Step::ClientMessage(t, d),
        })
        .collect();
    Ok(SessionPlan {
        target,
        input: args.input.clone().unwrap_or_else(crate::audio::default_input),
        output: args.output.clone().unwrap_or_else(crate::audio::default_output),
        steps,
        end_after_steps: false,
        duration: args.duration,
        ready_timeout: args.target.ready_timeout,
        ice_servers: args.target.ice_servers.clone(),
        json: args.view.json,
        record: args.view.record.clone(),
        weather_function: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_bodies_name_the_transport() {
        let r = start_request("http://h/start", TransportArg::Websocket, None, &[]);
        assert_eq!(r.request_data, Some(json!({"transport": "websocket"})));
        let r = start_request(
            "http://h/start",
            TransportArg::Webrtc,
            Some(json!({"transport": "daily", "body": {"x": 1}})),
            &[("X-Key".into(), "v".into())],
        );
        assert_eq!(r.request_data, Some(json!({"transport": "daily", "body": {"x": 1}})));
        assert_eq!(r.headers["X-Key"], "v");
        let r = start_request("http://h/start", TransportArg::Webrtc, Some(json!([1])), &[]);
        assert_eq!(r.request_data, Some(json!([1])));
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback_url("http://localhost:8080/start"));
        assert!(is_loopback_url("http://127.0.0.1:1/api/offer"));
        assert!(is_loopback_url("ws://[::1]:80/ws"));
        assert!(!is_loopback_url("https://bot.example.com/start"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_http_url("http://localhost/api/offer", "--offer-url").is_ok());
        assert!(check_http_url("ws://localhost/x", "--offer-url").is_err());
        assert!(check_http_url("nope", "--offer-url").is_err());
    }
}
