//! One voice session, as `connect` and `demo` run it: audio ends, transport, client, the
//! live view, the actions once ready, the end, the recording and the exit status.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pipecat::{
    ClientEvent, ErrorOrigin, EventStream, FunctionCall, LosslessEventStream, PipecatClient,
    TransportState,
};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::args::{InputSpec, OutputSpec};
use crate::audio::{
    AudioCounters, DeviceHandles, Tap, TapSink, TapSource, close_shared, open_input, open_output,
};
use crate::clock::Clock;
use crate::error::{CliError, one_line};
use crate::observe::{MessageObserver, ObservedTransport};
use crate::record::{Direction, Recording};
use crate::target::{Target, build_client, build_transport, start};
use crate::view::Console;

/// How long the end of a session may take to show (events still in flight), and how long
/// the view may go without showing anything before the command stops waiting for it.
const SETTLE: Duration = Duration::from_secs(5);

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
    /// `--function` and `--function-command`.
    pub(crate) functions: Vec<(String, crate::functions::FunctionAnswer)>,
    /// `--function-timeout`.
    pub(crate) function_timeout: Duration,
}

/// Facts about the session gathered from its events.
#[derive(Debug, Default)]
struct Facts {
    /// The first fatal error, as the command reports it.
    fatal: Option<CliError>,
    bot_left: Option<String>,
    /// The connection closed cleanly without the bot leaving.
    closed: Option<String>,
}

impl Facts {
    fn observe(&mut self, event: &ClientEvent) {
        match event {
            ClientEvent::Error(e) if e.fatal => {
                self.fatal.get_or_insert_with(|| match (e.origin, &e.error) {
                    (ErrorOrigin::Bot, Some(error)) => {
                        CliError::BotFatal { reason: one_line(&error.to_string()), ready: true }
                    }
                    _ => CliError::Session(one_line(&e.message)),
                });
            }
            ClientEvent::BotDisconnected { reason } => {
                self.bot_left.get_or_insert_with(|| reason.clone());
            }
            ClientEvent::ConnectionClosed { reason } => {
                self.closed.get_or_insert_with(|| reason.clone());
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

/// Everything that decides how a session went, gathered once it is over.
#[derive(Debug)]
struct Ending {
    end: End,
    facts: Facts,
    /// Why `disconnect` failed, if it did.
    disconnect_error: Option<String>,
    /// How the steps went, when the session ended on them.
    steps: Option<Result<(), String>>,
    /// Whether the output (file, device) was finished.
    output_closed: Result<(), String>,
    /// Whether the recording was finished (`Ok` without one).
    recording_finished: Result<(), CliError>,
}

/// How a session went: `Ok` is a clean end (exit 0). The first reason wins: a fatal error,
/// then an end nobody asked for (the connection dropped without the bot leaving), then a
/// failed step, then local output that could not be finished.
fn decide_outcome(ending: Ending) -> Result<(), CliError> {
    let Ending { end, facts, disconnect_error, steps, output_closed, recording_finished } = ending;
    if let Some(fatal) = facts.fatal {
        return Err(fatal);
    }
    if end == End::ByItself && facts.bot_left.is_none() && facts.closed.is_none() {
        return Err(CliError::Session(match disconnect_error {
            Some(e) => one_line(&e),
            None => "the connection ended unexpectedly".into(),
        }));
    }
    if let Some(Err(e)) = steps {
        return Err(CliError::Session(one_line(&e)));
    }
    if let Err(e) = output_closed {
        return Err(CliError::local(format!("cannot finish the output file: {e}")));
    }
    recording_finished
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
    let client = build_client(transport, plan.ready_timeout, plan.function_timeout);
    crate::functions::register(&client, &plan.functions);
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
    let events = Events::subscribe(&client, plan.json || plan.record.is_some());
    let progress = Arc::new(AtomicU64::new(0));
    let view = spawn_view(events, Arc::clone(&console), Arc::clone(&facts), shown, &progress);

    lock(&console).note("you", &format!("connecting: {}", plan.target.describe()));
    if let Err(e) = start(&client, &plan.target).await {
        let error = match &e {
            pipecat::Error::BotError { .. } => {
                CliError::BotFatal { reason: one_line(&e.to_string()), ready: false }
            }
            _ => CliError::Start(one_line(&e.to_string())),
        };
        settle_view(view, &progress).await;
        lock(&console).finish();
        let _ = close_shared(&sink_handle).await;
        if let Some(recording) = &recording {
            let _ = recording.finish();
        }
        return Err(error);
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
    settle_view(view, &progress).await;
    let closed = close_shared(&sink_handle).await;

    let mut recorded = None;
    let recording_finished = match &recording {
        Some(recording) => {
            let finished = recording.finish();
            if finished.is_ok() {
                recorded = Some(recording.dir().to_path_buf());
            }
            finished
        }
        None => Ok(()),
    };
    let facts = std::mem::take(&mut *lock(&facts));
    let outcome = decide_outcome(Ending {
        end,
        facts,
        disconnect_error: disconnect_error.map(|e| e.to_string()),
        steps: steps_result,
        output_closed: closed.map_err(|e| e.to_string()),
        recording_finished,
    });

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

/// The view's subscription: lossless whenever events are written out as JSON (`--json`,
/// `--record`: nothing may be missing there, and a burst waits in memory for the writer),
/// lossy for the readable view alone (which would rather skip than fall behind).
enum Events {
    Lossy(EventStream),
    Lossless(LosslessEventStream),
}

impl Events {
    fn subscribe(client: &PipecatClient, lossless: bool) -> Self {
        if lossless {
            Events::Lossless(client.events_lossless())
        } else {
            Events::Lossy(client.events())
        }
    }

    async fn recv(&mut self) -> Option<ClientEvent> {
        match self {
            Events::Lossy(events) => events.recv().await,
            Events::Lossless(events) => events.recv().await,
        }
    }
}

/// Runs the view on a thread of its own: a slow or stalled stdout (or recording) holds that
/// thread, never a worker of the runtime the session runs on.
fn spawn_view(
    events: Events,
    console: Arc<Mutex<Console>>,
    facts: Arc<Mutex<Facts>>,
    shown: broadcast::Sender<&'static str>,
    progress: &Arc<AtomicU64>,
) -> JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    let progress = Arc::clone(progress);
    tokio::task::spawn_blocking(move || {
        runtime.block_on(show_events(events, console, facts, shown, &progress));
    })
}

/// Waits for the view to show the session's last event: as long as it keeps showing events
/// (a lossless view may have a backlog to write), and [`SETTLE`] past its last progress.
async fn settle_view(mut view: JoinHandle<()>, progress: &AtomicU64) {
    loop {
        let before = progress.load(Ordering::Relaxed);
        if tokio::time::timeout(SETTLE, &mut view).await.is_ok() {
            return;
        }
        if progress.load(Ordering::Relaxed) == before {
            return;
        }
    }
}

/// Shows every event until the session is over, counting them in `progress`.
async fn show_events(
    mut events: Events,
    console: Arc<Mutex<Console>>,
    facts: Arc<Mutex<Facts>>,
    shown: broadcast::Sender<&'static str>,
    progress: &AtomicU64,
) {
    while let Some(event) = events.recv().await {
        lock(&facts).observe(&event);
        lock(&console).event(&event);
        progress.fetch_add(1, Ordering::Relaxed);
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
        functions: args.functions.iter().chain(&args.function_commands).cloned().collect(),
        function_timeout: args.function_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(end: End) -> Ending {
        Ending {
            end,
            facts: Facts::default(),
            disconnect_error: None,
            steps: None,
            output_closed: Ok(()),
            recording_finished: Ok(()),
        }
    }

    fn session_error(outcome: Result<(), CliError>) -> String {
        match outcome {
            Err(CliError::Session(reason)) => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_end_the_user_asked_for_is_clean() {
        for end in [End::Duration, End::Interrupted, End::Steps] {
            assert!(decide_outcome(ending(end)).is_ok(), "{end:?}");
        }
    }

    #[test]
    fn the_bot_leaving_is_a_clean_end() {
        let mut e = ending(End::ByItself);
        e.facts.bot_left = Some("bot ended the session".into());
        assert!(decide_outcome(e).is_ok());
    }

    #[test]
    fn a_clean_close_that_is_not_the_bots_is_a_clean_end() {
        let mut e = ending(End::ByItself);
        e.facts.observe(&ClientEvent::ConnectionClosed { reason: "left the call".into() });
        assert!(decide_outcome(e).is_ok());
    }

    #[test]
    fn a_connection_that_ends_by_itself_is_a_failure_with_its_reason() {
        assert_eq!(
            session_error(decide_outcome(ending(End::ByItself))),
            "the connection ended unexpectedly"
        );
        let mut e = ending(End::ByItself);
        e.disconnect_error = Some("transport: gone\nfor good".into());
        assert!(!session_error(decide_outcome(e)).contains('\n'));
    }

    #[test]
    fn a_fatal_error_wins_over_everything_else() {
        let mut e = ending(End::ByItself);
        e.facts.fatal = Some(CliError::Session("authentication rejected".into()));
        e.facts.bot_left = Some("left".into());
        e.steps = Some(Err("send-text failed".into()));
        e.output_closed = Err("disk full".into());
        assert_eq!(session_error(decide_outcome(e)), "authentication rejected");
    }

    #[test]
    fn a_fatal_bot_error_reads_the_same_before_and_after_ready() {
        let error = pipecat::Error::BotError { message: "out of credits".into() };
        let event = ClientEvent::Error(pipecat::ErrorEvent {
            origin: ErrorOrigin::Bot,
            message: "out of credits".into(),
            fatal: true,
            error: Some(std::sync::Arc::new(error.clone())),
        });
        let mut facts = Facts::default();
        facts.observe(&event);
        let after = decide_outcome(Ending { facts, ..ending(End::ByItself) }).unwrap_err();
        let before = CliError::BotFatal { reason: error.to_string(), ready: false };
        assert_eq!(after.to_string(), before.to_string());
        assert_eq!(after.to_string(), "fatal error from the bot: out of credits");
        assert_ne!(after.exit_code(), before.exit_code(), "the phase shows in the exit status");
    }

    #[test]
    fn a_failed_step_fails_the_session() {
        let mut e = ending(End::Steps);
        e.steps = Some(Err("request ping failed: timeout".into()));
        assert_eq!(session_error(decide_outcome(e)), "request ping failed: timeout");
    }

    #[test]
    fn unfinished_output_fails_an_otherwise_clean_session() {
        let mut e = ending(End::Duration);
        e.output_closed = Err("disk full".into());
        let Err(CliError::Local(text)) = decide_outcome(e) else { panic!() };
        assert!(text.contains("disk full"), "{text}");
        let mut e = ending(End::Duration);
        e.recording_finished = Err(CliError::local("cannot write events.jsonl"));
        assert!(matches!(decide_outcome(e), Err(CliError::Local(_))));
    }
}
