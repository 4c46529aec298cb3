//! Opt-in **ABI smoke test** of the `ffi` backend: not a Daily compatibility test.
//!
//! It loads a daily-core library, creates the context, a call client and virtual devices, and
//! joins a room that cannot exist; the join must fail with a typed room-lookup error (or time
//! out) within a bound, and the backend must be usable again afterwards. Nothing here reaches
//! Daily's cloud.
//!
//! Run it with the official SDK:
//!
//! ```text
//! DAILY_CORE_LIB=/path/to/daily-core-sdk/lib/libdaily_core.so \
//!   cargo test -p pipecat-daily --features ffi --test ffi_smoke -- --ignored
//! ```
//!
//! or, where only daily-python is available, with its extension module (which embeds the same
//! C API but needs libpython's symbols loaded first):
//!
//! ```text
//! DAILY_CORE_LIB=target/daily-venv/lib/python3.11/site-packages/daily/daily.abi3.so \
//! PIPECAT_DAILY_CORE_PRELOAD=/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 \
//!   cargo test -p pipecat-daily --features ffi --test ffi_smoke -- --ignored
//! ```
#![cfg(feature = "ffi")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pipecat_core::{ConnectionParams, Transport, TransportError, TransportEventSink};
use pipecat_daily::backend::ffi::{FfiBackend, FfiConfig, LIBRARY_ENV};
use pipecat_daily::backend::{BackendError, JoinFailure};
use pipecat_daily::{DailyTransport, daily_error};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "opt-in: needs a libdaily_core (set DAILY_CORE_LIB); see the file's docs"]
async fn ffi_join_to_an_unreachable_room_fails_typed() {
    let library = std::env::var_os(LIBRARY_ENV).map(PathBuf::from).unwrap_or_else(|| {
        panic!("set {LIBRARY_ENV} to a libdaily_core (this test is opt-in: run with --ignored)")
    });
    let mut config = FfiConfig::default().library(library).join_timeout(Duration::from_secs(75));
    if let Some(preload) = std::env::var_os("PIPECAT_DAILY_CORE_PRELOAD") {
        for path in std::env::split_paths(&preload) {
            config = config.preload(path);
        }
    }
    let transport = DailyTransport::builder(FfiBackend::new(config))
        .join_timeout(Duration::from_secs(80))
        .build()
        .unwrap();
    let (sink, _events) = TransportEventSink::new(1);
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));

    for attempt in 1..=2 {
        let params = ConnectionParams::from_json(
            json!({"url": "https://pipecat-offline-check.invalid/abi-smoke"}),
        )
        .unwrap();
        let start = Instant::now();
        let error =
            transport.connect(params, sink.clone()).await.expect_err("the room cannot be joined");
        eprintln!("attempt {attempt}: failed after {:?}: {error}", start.elapsed());
        match (&error, daily_error(&error)) {
            (_, Some(BackendError::JoinFailed { kind, message })) => {
                assert_eq!(*kind, JoinFailure::RoomLookup, "{message}")
            }
            (TransportError::Timeout { .. }, _) => {}
            _ => panic!("not a typed join failure: {error:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(90));
    }
    transport.disconnect().await.unwrap();
}
