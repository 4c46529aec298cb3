//! `pipecat load`: N concurrent sessions against one bot, live progress on a terminal, and a
//! summary of how they went: time to ready, errors by kind, audio frames against what the
//! time held should have carried, and the process's CPU and memory per session.

mod progress;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipecat::media::WavFileSource;
use pipecat::{ClientEvent, Error, HttpError, PipecatClient, TimeoutKind, TransportState};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::args::{InputSpec, LoadArgs, OutputSpec};
use crate::audio::{
    AudioCounters, DeviceHandles, Tap, TapSink, TapSource, open_input, open_output,
};
use crate::error::{CliError, one_line};
use pipecat::DEFAULT_FUNCTION_CALL_TIMEOUT;

use crate::session::millis;
use crate::target::{
    build_client, build_transport, check_http_url, is_loopback_url, start_request,
};
use progress::{Live, Monitor, Phase, ProcessFigures};

/// Audio a session may come short of what its held time should carry before it counts as
/// short: the frames in flight when the session ends (three 20 ms frames).
const SHORT_AUDIO_TOLERANCE: Duration = Duration::from_millis(60);

/// How one session went.
#[derive(Debug, Clone, Default)]
struct Report {
    index: u32,
    time_to_ready: Option<Duration>,
    /// From ready until the session began to disconnect: what the audio up should cover.
    held: Duration,
    error: Option<(String, String)>,
    frames_up: u64,
    frames_down: u64,
    audio_up: Duration,
    audio_down: Duration,
}

/// `out.wav` as session `index`'s file: `out-<index>.wav`.
fn numbered(path: &std::path::Path, index: u32) -> std::path::PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}

/// Runs the load test and prints its summary.
pub(crate) async fn run(args: LoadArgs) -> Result<(), CliError> {
    check_http_url(&args.start, "--start")?;
    if let InputSpec::Wav(path) = &args.input {
        WavFileSource::open(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    }
    let args = Arc::new(args);
    if !args.json {
        println!(
            "load: {} session(s) over {} against {}, {:.1} s each once ready",
            args.sessions,
            args.transport.runner_name(),
            args.start,
            args.duration.as_secs_f64()
        );
    }
    let started = Instant::now();
    let live = Arc::new(Live::default());
    let show_progress = std::io::stderr().is_terminal();
    let monitor = Monitor::start(Arc::clone(&live), args.sessions, show_progress);
    let mut tasks = JoinSet::new();
    for index in 1..=args.sessions {
        let delay = args.ramp_up.mul_f64(f64::from(index - 1) / f64::from(args.sessions));
        let args = Arc::clone(&args);
        let live = Arc::clone(&live);
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            one_session(index, &args, &live).await
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        reports.push(joined.unwrap_or_else(|e| Report {
            error: Some(("panic".into(), e.to_string())),
            ..Report::default()
        }));
    }
    reports.sort_by_key(|r| r.index);
    let process = monitor.finish().await;
    let summary = summarize(&args, &reports, started.elapsed(), process);
    if args.json {
        println!("{summary}");
    } else {
        print_summary(&summary);
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 { Err(CliError::Load { failed, total: reports.len() }) } else { Ok(()) }
}

/// One session: start, hold for `duration`, end; never fails, reports instead.
async fn one_session(index: u32, args: &LoadArgs, live: &Live) -> Report {
    let mut report = Report { index, ..Report::default() };
    let counters = Arc::new(AudioCounters::default());
    live.watch_audio(Arc::clone(&counters));
    live.enter(Phase::Starting);
    let result = session_inner(args, &counters, &mut report, live).await;
    if let Err((kind, message)) = result {
        report.error = Some((kind, one_line(&message)));
    }
    // Failed: never ready. Done: was ready (a failure after that is in the report).
    live.enter(if report.time_to_ready.is_none() { Phase::Failed } else { Phase::Done });
    report.frames_up = counters.up.frames();
    report.frames_down = counters.down.frames();
    report.audio_up = counters.up.audio();
    report.audio_down = counters.down.audio();
    report
}

async fn session_inner(
    args: &LoadArgs,
    counters: &Arc<AudioCounters>,
    report: &mut Report,
    live: &Live,
) -> Result<(), (String, String)> {
    let local = |e: CliError| ("local".to_owned(), e.to_string());
    let tap = Tap::new(Arc::clone(counters), None);
    let mut handles = DeviceHandles::default();
    let source =
        TapSource::new(open_input(&args.input, true, &mut handles).map_err(local)?, tap.clone());
    let output = match &args.output {
        OutputSpec::Wav(path) => OutputSpec::Wav(numbered(path, report.index)),
        other => other.clone(),
    };
    let (sink, _) = TapSink::new(open_output(&output, &mut handles).map_err(local)?, tap);
    let transport = build_transport(
        args.transport,
        is_loopback_url(&args.start),
        &args.ice_servers,
        source,
        sink,
        args.ready_timeout,
    )
    .map_err(local)?;
    let client = build_client(transport, args.ready_timeout, DEFAULT_FUNCTION_CALL_TIMEOUT);
    let fatal = watch_fatal(&client);
    let request = start_request(&args.start, args.transport, args.body.clone(), &args.headers)
        .timeout(args.ready_timeout);

    let t0 = Instant::now();
    if let Err(e) = client.start_bot_and_connect(request).await {
        return Err((error_kind(&e), e.to_string()));
    }
    report.time_to_ready = Some(t0.elapsed());
    live.enter(Phase::Ready);

    let ready_at = Instant::now();
    let mut state = client.watch_state();
    let ended_early = tokio::select! {
        () = tokio::time::sleep(args.duration) => false,
        _ = state.wait_for(|s| *s != TransportState::Ready) => true,
    };
    report.held = ready_at.elapsed();
    let _ = client.disconnect().await;
    let fatal = tokio::time::timeout(Duration::from_secs(5), fatal)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    match (ended_early, fatal) {
        (_, Some(message)) => Err(("session-error".into(), message)),
        (true, None) => Err(("ended-early".into(), "the session ended before --duration".into())),
        (false, None) => Ok(()),
    }
}

/// The first fatal error of the client's session, collected in the background.
fn watch_fatal(client: &PipecatClient) -> tokio::task::JoinHandle<Option<String>> {
    let mut events = client.events();
    tokio::spawn(async move {
        let mut fatal = None;
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::Error(e) if e.fatal => {
                    fatal.get_or_insert(e.message);
                }
                ClientEvent::Disconnected => break,
                _ => {}
            }
        }
        fatal
    })
}

/// A short, stable name for the kind of a startup error.
fn error_kind(error: &Error) -> String {
    match error {
        Error::StartBot(HttpError::Status { status, .. }) => format!("start-http-{status}"),
        Error::StartBot(HttpError::Timeout { .. }) => "start-timeout".into(),
        Error::StartBot(HttpError::Unreachable { .. }) => "start-unreachable".into(),
        Error::StartBot(_) => "start-failed".into(),
        Error::Timeout { what: TimeoutKind::Connect, .. } => "connect-timeout".into(),
        Error::Timeout { what: TimeoutKind::BotReady, .. } => "bot-ready-timeout".into(),
        Error::Timeout { .. } => "timeout".into(),
        Error::Transport(_) => "transport".into(),
        Error::InvalidParams(_) => "invalid-params".into(),
        Error::BotError { .. } => "bot-error".into(),
        Error::BotDisconnected { .. } => "bot-disconnected".into(),
        Error::Disconnected => "disconnected".into(),
        _ => "other".into(),
    }
}

/// The nearest-rank percentile `p` (0..=1) of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // The rank is within 1..=len: the casts cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// How much audio up a session lacks against its held time, when more than the tolerance.
fn short_up(report: &Report) -> Option<Duration> {
    let expected = report.time_to_ready.map(|_| report.held)?;
    let missing = expected.saturating_sub(report.audio_up);
    (missing > SHORT_AUDIO_TOLERANCE).then_some(missing)
}

/// The process's use over the run, in total and per session.
fn process_summary(process: Option<ProcessFigures>, sessions: usize) -> Value {
    let Some(p) = process else { return Value::Null };
    let per = sessions.max(1) as f64;
    let cpu_percent = 100.0 * p.cpu_time.as_secs_f64() / p.wall.as_secs_f64().max(1e-3);
    let kib = |bytes: u64| bytes / 1024;
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "cpu_ms": millis(p.cpu_time),
        "cpu_percent_of_a_core": round(cpu_percent),
        "rss_start_kib": kib(p.rss_start),
        "rss_peak_kib": kib(p.rss_peak),
        "per_session": {
            "cpu_percent_of_a_core": round(cpu_percent / per),
            "rss_kib": kib(p.rss_peak.saturating_sub(p.rss_start) / sessions.max(1) as u64),
        },
    })
}

fn summarize(
    args: &LoadArgs,
    reports: &[Report],
    wall: Duration,
    process: Option<ProcessFigures>,
) -> Value {
    let mut ready: Vec<Duration> = reports.iter().filter_map(|r| r.time_to_ready).collect();
    ready.sort();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (kind, _) in reports.iter().filter_map(|r| r.error.as_ref()) {
        *errors.entry(kind.clone()).or_default() += 1;
    }
    let ms = |d: Option<Duration>| d.map(millis);
    json!({
        "type": "load-summary",
        "start": args.start,
        "transport": args.transport.runner_name(),
        "sessions": reports.len(),
        "ready": ready.len(),
        "failed": reports.iter().filter(|r| r.error.is_some()).count(),
        "wall_ms": millis(wall),
        "time_to_ready_ms": {
            "p50": ms(percentile(&ready, 0.50)),
            "p95": ms(percentile(&ready, 0.95)),
            "max": ms(ready.last().copied()),
        },
        "errors": errors,
        "audio": {
            "frames_up": reports.iter().map(|r| r.frames_up).sum::<u64>(),
            "frames_down": reports.iter().map(|r| r.frames_down).sum::<u64>(),
            "sessions_short_up": reports.iter().filter(|r| short_up(r).is_some()).count(),
        },
        "process": process_summary(process, reports.len()),
        "per_session": reports.iter().map(|r| json!({
            "index": r.index,
            "ready": r.time_to_ready.is_some(),
            "time_to_ready_ms": ms(r.time_to_ready),
            "frames_up": r.frames_up,
            "frames_down": r.frames_down,
            "held_ms": millis(r.held),
            "audio_up_ms": millis(r.audio_up),
            "audio_up_short_ms": short_up(r).map(millis),
            "audio_down_ms": millis(r.audio_down),
            "error": r.error.as_ref().map(|(kind, message)| json!({ "kind": kind, "message": message })),
        })).collect::<Vec<_>>(),
    })
}

fn print_summary(summary: &Value) {
    let secs =
        |v: &Value| v.as_u64().map_or("-".to_owned(), |ms| format!("{:.3} s", ms as f64 / 1000.0));
    let ttr = &summary["time_to_ready_ms"];
    println!(
        "sessions: {} run, {} ready, {} failed (wall time {})",
        summary["sessions"],
        summary["ready"],
        summary["failed"],
        secs(&summary["wall_ms"])
    );
    println!(
        "time to ready: p50 {}  p95 {}  max {}",
        secs(&ttr["p50"]),
        secs(&ttr["p95"]),
        secs(&ttr["max"])
    );
    match summary["errors"].as_object() {
        Some(errors) if !errors.is_empty() => {
            println!("errors by kind:");
            for (kind, count) in errors {
                println!("  {kind}: {count}");
            }
        }
        _ => println!("errors: none"),
    }
    let audio = &summary["audio"];
    println!(
        "audio: {} frames up, {} down; {} session(s) short of audio up for the time held",
        audio["frames_up"], audio["frames_down"], audio["sessions_short_up"]
    );
    let p = &summary["process"];
    if p.is_object() {
        println!(
            "process: {:.2} % of a core, RSS {} -> {} KiB peak; per session {:.3} % of a core, {} KiB",
            p["cpu_percent_of_a_core"].as_f64().unwrap_or(0.0),
            p["rss_start_kib"],
            p["rss_peak_kib"],
            p["per_session"]["cpu_percent_of_a_core"].as_f64().unwrap_or(0.0),
            p["per_session"]["rss_kib"],
        );
    }
    println!("per session:     ready      frames up   frames down   audio up   audio down");
    for s in summary["per_session"].as_array().into_iter().flatten() {
        let error =
            s["error"]["message"].as_str().map(|m| format!("  error: {m}")).unwrap_or_default();
        println!(
            "  #{:<5} {:>12} {:>12} {:>13} {:>10} {:>12}{error}",
            s["index"].to_string(),
            secs(&s["time_to_ready_ms"]),
            s["frames_up"].to_string(),
            s["frames_down"].to_string(),
            secs(&s["audio_up_ms"]),
            secs(&s["audio_down_ms"]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let d = |ms| Duration::from_millis(ms);
        let values: Vec<Duration> = (1..=20).map(d).collect();
        assert_eq!(percentile(&values, 0.5), Some(d(10)));
        assert_eq!(percentile(&values, 0.95), Some(d(19)));
        assert_eq!(percentile(&values, 1.0), Some(d(20)));
        assert_eq!(percentile(&[d(7)], 0.95), Some(d(7)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn startup_errors_have_kinds() {
        let e = Error::StartBot(HttpError::Status {
            endpoint: "http://x".into(),
            status: 503,
            message: "busy".into(),
        });
        assert_eq!(error_kind(&e), "start-http-503");
        let e = Error::Timeout { what: TimeoutKind::BotReady, after: Duration::from_secs(1) };
        assert_eq!(error_kind(&e), "bot-ready-timeout");
        assert_eq!(error_kind(&Error::Disconnected), "disconnected");
    }
}
