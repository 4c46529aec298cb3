//! Fault injection: the SDK's client against the testkit bot through a [`FaultProxy`] that
//! resets, stalls, stops reading or trickles. Each fault ends in a typed error within the
//! bound stated in the test, and the client's tasks are gone afterwards.

use std::time::Duration;

use pipecat_core::{ApiRequest, ClientEvent, Error, HttpError, PipecatClient, TransportError};
use pipecat_core::{TimeoutKind, TransportState};
use pipecat_media::{AudioFormat, NullSink, ToneSource};
use pipecat_testkit::{BotTransport, Fault, FaultProxy, TestBot};
use pipecat_websocket::{AudioBuilder as _, WebSocketParams, WebSocketTransport};
use serde_json::json;

/// A WebSocket client whose keepalive is `keepalive`, sending a tone.
fn ws_client(keepalive: Duration) -> PipecatClient {
    let transport = WebSocketTransport::builder()
        .audio_source(ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3).unwrap())
        .audio_sink(NullSink::new(AudioFormat::MONO_24K))
        .keepalive(Some(keepalive))
        .build()
        .unwrap();
    PipecatClient::builder(transport).send_timeout(Duration::from_secs(1)).build()
}

async fn bot_and_proxy() -> (TestBot, FaultProxy) {
    let bot = TestBot::builder().transports([BotTransport::WebSocket]).start().await.unwrap();
    let proxy = FaultProxy::start(bot.addr()).await.unwrap();
    (bot, proxy)
}

fn ws_params(proxy: &FaultProxy) -> WebSocketParams {
    WebSocketParams::new(format!("ws://{}/ws-client", proxy.addr()))
}

/// The fatal error that ended the session, waited for at most `bound`. It subscribes at
/// once, before the returned future is first polled, so nothing is missed.
fn fatal_within(
    client: &PipecatClient,
    bound: Duration,
) -> impl std::future::Future<Output = Error> + use<> {
    let mut events = client.events();
    let mut state = client.watch_state();
    async move { fatal_from(&mut events, &mut state, bound).await }
}

async fn fatal_from(
    events: &mut pipecat_core::EventStream,
    state: &mut tokio::sync::watch::Receiver<TransportState>,
    bound: Duration,
) -> Error {
    let error = tokio::time::timeout(bound, async {
        loop {
            match events.recv().await {
                Some(ClientEvent::Error(e)) if e.fatal => {
                    return e.error.as_deref().cloned().expect("a typed error");
                }
                Some(_) => {}
                None => panic!("the events ended without a fatal error"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no fatal error within {bound:?}"));
    tokio::time::timeout(bound, state.wait_for(|s| *s == TransportState::Disconnected))
        .await
        .expect("disconnected in time")
        .unwrap();
    error
}

/// The runtime's live tasks settle back to `baseline` (the client's tasks are all gone).
async fn tasks_settle(baseline: usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > baseline {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} tasks alive, {baseline} before the client",
            metrics.num_alive_tasks()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// A TCP reset after ready: a lost connection without a code, within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_reset_after_ready_is_a_lost_connection() {
    let (bot, proxy) = bot_and_proxy().await;
    let baseline = alive_tasks();
    let client = ws_client(Duration::from_secs(10));
    client.connect(ws_params(&proxy)).await.unwrap();
    let ended = fatal_within(&client, Duration::from_secs(5));
    proxy.set(Fault::Reset);
    let error = ended.await;
    assert!(
        matches!(error, Error::Transport(TransportError::ConnectionLost { code: None, .. })),
        "{error:?}"
    );
    drop(client);
    drop(proxy);
    bot.shutdown().await;
    tasks_settle(baseline).await;
}

/// A connection that goes silent after ready (no FIN, nothing more arrives): lost after the
/// keepalive's misses (3 × 300 ms), within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_half_open_connection_is_lost_after_the_keepalive_misses() {
    let (bot, proxy) = bot_and_proxy().await;
    let baseline = alive_tasks();
    let client = ws_client(Duration::from_millis(300));
    client.connect(ws_params(&proxy)).await.unwrap();
    let ended = fatal_within(&client, Duration::from_secs(5));
    proxy.set(Fault::Stall);
    let error = ended.await;
    let Error::Transport(TransportError::ConnectionLost { code: None, reason }) = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("nothing received") || reason.contains("stopped reading"), "{reason}");
    drop(client);
    drop(proxy);
    bot.shutdown().await;
    tasks_settle(baseline).await;
}

/// A server that stops reading while still sending: sends back up and fail with the send
/// timeout (1 s), and the session is declared lost once nothing could be written for the
/// keepalive's misses (3 × 300 ms); all within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_times_out_sends_and_ends_the_session() {
    let (bot, proxy) = bot_and_proxy().await;
    let baseline = alive_tasks();
    let client = ws_client(Duration::from_millis(300));
    client.connect(ws_params(&proxy)).await.unwrap();
    let ended = fatal_within(&client, Duration::from_secs(10));
    proxy.set(Fault::StopReadingClient);
    // Fill the socket buffers with large messages until a send fails (bounded).
    let payload = json!("x".repeat(512 * 1024));
    let mut failure = None;
    for _ in 0..200 {
        if let Err(e) = client.send_client_message("big", payload.clone()).await {
            failure = Some(e);
            break;
        }
    }
    let failure = failure.expect("a send fails once the server stops reading");
    assert!(
        matches!(
            failure,
            Error::Timeout { what: TimeoutKind::Send, .. }
                | Error::NotReady { .. }
                | Error::Disconnected
        ) || matches!(failure, Error::Transport(TransportError::NotConnected)),
        "{failure:?}"
    );
    let error = ended.await;
    let Error::Transport(TransportError::ConnectionLost { reason, .. }) = &error else {
        panic!("{error:?}")
    };
    // Whichever the client notices first: its writes stall, or its pings go unanswered
    // (the server reads none of them).
    assert!(reason.contains("stopped reading") || reason.contains("pings unanswered"), "{reason}");
    drop(client);
    drop(proxy);
    bot.shutdown().await;
    tasks_settle(baseline).await;
}

fn start_request(proxy: &FaultProxy) -> ApiRequest {
    ApiRequest::new(format!("http://{}/start", proxy.addr()))
        .request_data(json!({"transport": "websocket"}))
        .timeout(Duration::from_secs(1))
}

/// A start endpoint that never answers: the start request's own limit (1 s), within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_endpoint_that_never_answers_times_out() {
    let (bot, proxy) = bot_and_proxy().await;
    proxy.set(Fault::Stall);
    let client = ws_client(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let error = client.start_bot(start_request(&proxy)).await.unwrap_err();
    assert!(matches!(error, Error::StartBot(HttpError::Timeout { .. })), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    bot.shutdown().await;
}

/// A start endpoint that trickles its answer a byte every 50 ms: the limit covers the whole
/// answer (1 s), within 3 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_endpoint_that_trickles_times_out() {
    let (bot, proxy) = bot_and_proxy().await;
    proxy.set(Fault::Trickle(Duration::from_millis(50)));
    let client = ws_client(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let error = client.start_bot(start_request(&proxy)).await.unwrap_err();
    assert!(matches!(error, Error::StartBot(HttpError::Timeout { .. })), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    bot.shutdown().await;
}

/// A SmallWebRTC offer endpoint that hangs: the transport's signalling limit (1 s), within
/// 3 s, and nothing is left running.
#[cfg(feature = "webrtc")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_endpoint_that_hangs_times_out() {
    use pipecat_small_webrtc::{SmallWebRtcParams, SmallWebRtcTransport};
    let bot = TestBot::builder().transports([BotTransport::WebRtc]).start().await.unwrap();
    let proxy = FaultProxy::start(bot.addr()).await.unwrap();
    let baseline = alive_tasks();
    proxy.set(Fault::Stall);
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .without_audio()
        .signalling_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let client = PipecatClient::builder(transport).build();
    let started = tokio::time::Instant::now();
    let params = SmallWebRtcParams::offer_url(format!("http://{}/api/offer", proxy.addr()));
    let error = client.connect(params).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(
        matches!(&error, Error::Transport(TransportError::Http(HttpError::Timeout { .. })))
            || matches!(&error, Error::Transport(TransportError::ConnectFailed { .. })),
        "{error:?}"
    );
    drop(client);
    drop(proxy);
    bot.shutdown().await;
    tasks_settle(baseline).await;
}
