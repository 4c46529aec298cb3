//! The `sidecar` backend.
//!
//! - With a **fake bridge** (tests/fixtures/fake_bridge.py, synthetic, plain `python3`): the
//!   protocol, the handshake, process management (shutdown, SIGTERM then SIGKILL, death, the
//!   health check) and a whole session through the transport.
//! - With the **real bridge and daily-python** (the venv of `cargo xtask daily-venv`, or
//!   `PIPECAT_DAILY_PYTHON`): the bridge starts and completes its handshake, and a join to an
//!   unreachable room fails with a typed error within a bound. That is as far as a machine
//!   without access to Daily's cloud can go.
#![cfg(feature = "sidecar")]

use pipecat_daily::AudioBuilder;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pipecat_core::{
    ConnectionParams, Transport, TransportError, TransportEvent, TransportEventSink,
};
use pipecat_daily::backend::sidecar::{
    BridgeProcess, PROTOCOL_VERSION, PYTHON_ENV, SidecarBackend, SidecarConfig,
};
use pipecat_daily::backend::{BackendError, JoinFailure};
use pipecat_daily::{DailyTransport, daily_error};
use pipecat_media::{AudioFormat, MemorySink, MemorySource};
use pipecat_rtvi::ClientEnvelope;
use serde_json::json;

/// The Python with daily-python: `PIPECAT_DAILY_PYTHON`, else the venv `cargo xtask daily-venv`
/// creates under target/daily-venv.
fn daily_python() -> PathBuf {
    if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/daily-venv");
    // Resolve `..` on the file system (not textually: Python finds its venv from this path),
    // but keep the interpreter itself unresolved (it is a symlink out of the venv).
    let venv = std::fs::canonicalize(&venv).unwrap_or(venv);
    let python =
        if cfg!(windows) { venv.join("Scripts/python.exe") } else { venv.join("bin/python") };
    assert!(
        python.exists(),
        "no daily-python venv at {}: run `cargo xtask daily-venv` (or set {PYTHON_ENV} to a Python \
         with `pip install daily-python`)",
        python.display()
    );
    python
}

/// Plain Python for the fake bridge (it needs nothing installed).
fn plain_python() -> PathBuf {
    std::env::var_os(PYTHON_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

fn fake(mode: &str) -> SidecarConfig {
    SidecarConfig::default()
        .python(plain_python())
        .bridge_script(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_bridge.py"),
        )
        .env("FAKE_BRIDGE_MODE", mode)
        .startup_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(5))
        .shutdown_grace(Duration::from_millis(300))
}

/// Whether any process of the bridge's group (it runs in its own) is alive.
fn group_alive(pgid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits up to `limit` for the bridge and everything it started to be gone.
async fn gone_within(pgid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

async fn next(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<(u64, TransportEvent)>,
) -> TransportEvent {
    loop {
        let (_, event) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event")
            .expect("open");
        // Levels, and the media engine's own audio tracks (the local one and the virtual
        // speaker's "bot"), come whenever audio flows.
        let engine_track = |t: &pipecat_core::media::TrackInfo| {
            t.participant.as_ref().is_some_and(|p| p.local || p.id == "bot")
        };
        let skip = match &event {
            TransportEvent::LocalAudioLevel(_) | TransportEvent::RemoteAudioLevel(_) => true,
            TransportEvent::TrackStarted(t) | TransportEvent::TrackStopped(t) => engine_track(t),
            _ => false,
        };
        if !skip {
            return event;
        }
    }
}

fn room() -> ConnectionParams {
    ConnectionParams::from_json(json!({"dailyRoom": "https://acme.daily.co/fake-room"})).unwrap()
}

#[tokio::test]
async fn fake_bridge_session_through_the_transport() {
    let backend = SidecarBackend::new(fake("normal"));
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_16K).unwrap();
    let transport =
        DailyTransport::builder(backend).audio_source(source).audio_sink(sink).build().unwrap();
    let (events_sink, mut events) = TransportEventSink::new(1);
    transport.connect(room(), events_sink).await.unwrap();
    assert_eq!(transport.max_message_size(), 8192);
    assert!(matches!(next(&mut events).await, TransportEvent::BotConnected(p) if p.id == "bot-1"));
    assert!(matches!(next(&mut events).await, TransportEvent::TrackStarted(_)));

    let ready = ClientEnvelope::client_ready();
    transport.send_client_ready(ready.to_json().unwrap()).await.unwrap();
    match next(&mut events).await {
        TransportEvent::Message(text) => {
            assert!(text.contains("bot-ready") && text.contains(&ready.id))
        }
        other => panic!("{other:?}"),
    }
    mic.push(&vec![100; 3200]).unwrap();
    // Bot audio (5 × 20 ms) reached the sink.
    let start = Instant::now();
    while speaker.stats().depth < Duration::from_millis(100)
        && start.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(speaker.stats().depth >= Duration::from_millis(100), "{:?}", speaker.stats());
    transport.disconnect().await.unwrap();
    assert!(!transport.is_connected());
}

#[tokio::test]
async fn handshake_failures_are_typed() {
    match BridgeProcess::spawn(&fake("wrong-protocol")).await {
        Err(BackendError::ProtocolMismatch { expected, found }) => {
            assert_eq!((expected, found.as_str()), (PROTOCOL_VERSION, "99"))
        }
        other => panic!("{other:?}"),
    }
    match BridgeProcess::spawn(&fake("crash")).await {
        Err(BackendError::Unavailable { reason, .. }) => {
            assert!(reason.contains("simulated"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match BridgeProcess::spawn(&fake("normal").python("/nonexistent/python3")).await {
        Err(BackendError::Unavailable { reason, .. }) => {
            assert!(reason.contains(PYTHON_ENV), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bridge_handshake_ping_and_graceful_shutdown() {
    let bridge = BridgeProcess::spawn(&fake("normal")).await.unwrap();
    assert_eq!(bridge.hello().protocol, PROTOCOL_VERSION);
    let pid = bridge.pid();
    assert!(bridge.is_running() && group_alive(pid));
    bridge.ping(Duration::from_secs(5)).await.unwrap();
    // stderr is captured.
    let start = Instant::now();
    while bridge.stderr_tail().is_empty() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bridge.stderr_tail(), ["fake bridge: ready"]);
    bridge.shutdown().await;
    assert!(gone_within(pid, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_stubborn_bridge_is_killed_after_the_grace_period() {
    // Dropped: SIGTERM (ignored), then SIGKILL.
    let bridge = BridgeProcess::spawn(&fake("stubborn")).await.unwrap();
    let pid = bridge.pid();
    let start = Instant::now();
    drop(bridge);
    assert!(gone_within(pid, Duration::from_secs(10)).await, "pid {pid} survived");
    assert!(start.elapsed() >= Duration::from_millis(250), "killed before the grace period");

    // Shut down: the request and SIGTERM are ignored, SIGKILL is not.
    let bridge = BridgeProcess::spawn(&fake("stubborn")).await.unwrap();
    let pid = bridge.pid();
    tokio::time::timeout(Duration::from_secs(10), bridge.shutdown())
        .await
        .expect("bounded shutdown");
    assert!(gone_within(pid, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_bridge_that_dies_mid_call_is_reported() {
    let transport =
        DailyTransport::builder(SidecarBackend::new(fake("die-after-join"))).build().unwrap();
    let (sink, mut events) = TransportEventSink::new(1);
    transport.connect(room(), sink).await.unwrap();
    loop {
        match next(&mut events).await {
            TransportEvent::Failed(TransportError::ConnectionLost { reason, .. }) => {
                assert!(reason.contains("exited"), "{reason}");
                break;
            }
            TransportEvent::BotConnected(_) | TransportEvent::TrackStarted(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(!transport.is_connected());
    transport.disconnect().await.unwrap();
}

#[tokio::test]
async fn an_unresponsive_bridge_fails_its_health_check() {
    let config = fake("hang-after-join")
        .health_interval(Some(Duration::from_millis(200)))
        .request_timeout(Duration::from_millis(500));
    let transport = DailyTransport::builder(SidecarBackend::new(config))
        .leave_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (sink, mut events) = TransportEventSink::new(1);
    transport.connect(room(), sink).await.unwrap();
    loop {
        match next(&mut events).await {
            TransportEvent::Failed(TransportError::ConnectionLost { reason, .. }) => {
                assert!(reason.contains("stopped answering"), "{reason}");
                break;
            }
            TransportEvent::BotConnected(_) | TransportEvent::TrackStarted(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let start = Instant::now();
    transport.disconnect().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn daily_python_bridge_starts_and_completes_its_handshake() {
    let backend = SidecarBackend::new(SidecarConfig::default().python(daily_python()));
    let bridge =
        backend.check().await.expect("the real bridge starts (is daily-python installed?)");
    let hello = bridge.hello().clone();
    assert_eq!(hello.protocol, PROTOCOL_VERSION);
    assert!(!hello.daily_python.is_empty() && hello.daily_python != "unknown", "{hello:?}");
    eprintln!("daily-python {} on Python {}", hello.daily_python, hello.python);
    let rtt = bridge.ping(Duration::from_secs(10)).await.unwrap();
    assert!(rtt < Duration::from_secs(10));
    let pid = bridge.pid();
    bridge.shutdown().await;
    assert!(gone_within(pid, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn daily_python_join_to_an_unreachable_room_fails_typed_within_a_bound() {
    const BOUND: Duration = Duration::from_secs(90);
    let config =
        SidecarConfig::default().python(daily_python()).join_timeout(Duration::from_secs(75));
    let transport = DailyTransport::builder(SidecarBackend::new(config))
        .join_timeout(Duration::from_secs(80))
        .build()
        .unwrap();
    let (sink, _events) = TransportEventSink::new(1);
    // `.invalid` never resolves (RFC 6761), with or without internet access.
    let params = ConnectionParams::from_json(
        json!({"dailyRoom": "https://pipecat-offline-check.invalid/no-such-room"}),
    )
    .unwrap();
    let start = Instant::now();
    let error = tokio::time::timeout(BOUND, transport.connect(params, sink))
        .await
        .expect("the join ends within the bound")
        .expect_err("an unreachable room cannot be joined");
    let elapsed = start.elapsed();
    eprintln!("join failed after {elapsed:?}: {error}");
    match (&error, daily_error(&error)) {
        (
            TransportError::ConnectFailed { .. },
            Some(BackendError::JoinFailed { kind, message }),
        ) => {
            assert_eq!(*kind, JoinFailure::RoomLookup, "{message}");
            assert!(message.contains("RoomLookup"), "{message}");
        }
        (TransportError::Timeout { what, .. }, _) => assert!(what.contains("joining"), "{what}"),
        _ => panic!("not a typed join failure: {error:?}"),
    }
    assert!(!transport.is_connected());
    transport.disconnect().await.unwrap();
}
