//! What every interop test shares: the transports under test, clients, bounded waits and the
//! checks of the bot's answers that depend on its release.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use pipecat_core::rtvi::BotReady;
use pipecat_core::{
    ClientEvent, ConnectionParams, EventStream, PipecatClient, Transport, TransportState,
};
pub(crate) use pipecat_interop_tests::{PeerBot, Release};
use pipecat_media::analysis;
use pipecat_small_webrtc::{SmallWebRtcParams, SmallWebRtcTransport, SmallWebRtcTransportBuilder};
use pipecat_websocket::{AudioBuilder, AudioOptions, WebSocketParams, WebSocketTransport};
use serde_json::Value;

/// Bound on every wait for the bot.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A transport the shared scenarios run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `pipecat-websocket`: protobuf frames on the runner's `/ws-client`.
    WebSocket,
    /// `pipecat-small-webrtc`: the runner's `/api/offer`, aiortc on the bot's side. The bot
    /// runs with `--loopback-ice` and the transport offers 127.0.0.1 only.
    SmallWebRtc,
}

/// A transport of either kind, kept for what only it can tell.
#[derive(Clone)]
pub(crate) enum AnyTransport {
    WebSocket(Arc<WebSocketTransport>),
    SmallWebRtc(SmallWebRtcTransport),
}

impl AnyTransport {
    /// Finishes the audio sink (a WAV file gets its header).
    pub(crate) async fn close_audio_sink(&self) {
        match self {
            AnyTransport::WebSocket(t) => t.close_audio_sink().await.unwrap(),
            AnyTransport::SmallWebRtc(t) => t.close_audio_sink().await.unwrap(),
        }
    }
}

/// How close an echo of a tone sent at 0.3 of full scale must come back.
pub(crate) struct EchoTolerance {
    /// Its RMS (a sine at 0.3 of full scale has about 0.21).
    pub(crate) rms: Range<f32>,
    /// Hz off the tone, measured as the median over 100 ms windows (robust to a dropout of
    /// the bot's output under load, which pads late audio with silence).
    pub(crate) hz: f64,
    /// Loud (> 0.5) bot audio levels to expect from 1.5 s of tone (about 15 come).
    pub(crate) loud_levels: usize,
}

impl Kind {
    /// The runner's name of the transport (`-t` and `/start {"transport": ...}`).
    pub(crate) fn runner_name(self) -> &'static str {
        match self {
            Kind::WebSocket => "websocket",
            Kind::SmallWebRtc => "webrtc",
        }
    }

    /// A peer bot on `release` serving this transport, with `extra` flags.
    pub(crate) async fn bot(self, release: Release, extra: &[&str]) -> PeerBot {
        init_tracing();
        let mut args = Vec::new();
        if self == Kind::SmallWebRtc {
            args.push("--loopback-ice");
        }
        args.extend_from_slice(extra);
        match PeerBot::start_release(release, self.runner_name(), &args).await {
            Ok(bot) => bot,
            Err(e) => panic!("{e}"),
        }
    }

    /// A transport with `audio`.
    pub(crate) fn transport(self, audio: AudioOptions) -> AnyTransport {
        match self {
            Kind::WebSocket => AnyTransport::WebSocket(Arc::new(
                WebSocketTransport::builder().audio(audio).build().unwrap(),
            )),
            Kind::SmallWebRtc => {
                AnyTransport::SmallWebRtc(rtc_builder().audio(audio).build().unwrap())
            }
        }
    }

    /// A client whose transport has `audio`, and the transport.
    pub(crate) fn client(self, audio: AudioOptions) -> (PipecatClient, AnyTransport) {
        let transport = self.transport(audio);
        let shared: Arc<dyn Transport> = match &transport {
            AnyTransport::WebSocket(t) => t.clone(),
            AnyTransport::SmallWebRtc(t) => Arc::new(t.clone()),
        };
        (client(shared), transport)
    }

    /// A client without audio either way.
    pub(crate) fn quiet_client(self) -> PipecatClient {
        self.client(AudioOptions::none()).0
    }

    /// Parameters that connect straight to the runner, without `/start`: `/ws-client` or
    /// `/api/offer`.
    pub(crate) fn direct_params(self, bot: &PeerBot) -> ConnectionParams {
        match self {
            Kind::WebSocket => {
                WebSocketParams::new(format!("ws://localhost:{}/ws-client", bot.port())).into()
            }
            Kind::SmallWebRtc => {
                SmallWebRtcParams::offer_url(format!("{}/api/offer", bot.base_url())).into()
            }
        }
    }

    /// Checks the reason of a `bot-disconnected` after the bot ended the session.
    pub(crate) fn assert_bot_left(self, reason: &str) {
        match self {
            // The runner closes the WebSocket normally.
            Kind::WebSocket => assert!(reason.contains("1000"), "{reason}"),
            // The bot's connection sends `peerLeft` on the data channel.
            Kind::SmallWebRtc => assert_eq!(reason, "peerLeft"),
        }
    }

    /// How close the echo of a tone comes back over this transport.
    pub(crate) fn echo_tolerance(self) -> EchoTolerance {
        match self {
            // PCM both ways: only resampling in between.
            Kind::WebSocket => EchoTolerance { rms: 0.15..0.26, hz: 10.0, loud_levels: 12 },
            // Two Opus hops and three resamplings in between.
            Kind::SmallWebRtc => EchoTolerance { rms: 0.12..0.28, hz: 10.0, loud_levels: 10 },
        }
    }
}

/// The SmallWebRTC builder of the tests: loopback only (the bot, with `--loopback-ice`,
/// offers 127.0.0.1 and nothing else), no audio unless a test gives a source or sink.
pub(crate) fn rtc_builder() -> SmallWebRtcTransportBuilder {
    SmallWebRtcTransport::builder().loopback_only().without_audio()
}

/// A client of `transport` with every wait bounded by [`WAIT`].
pub(crate) fn client(transport: Arc<dyn Transport>) -> PipecatClient {
    PipecatClient::builder_shared(transport)
        .bot_ready_timeout(WAIT)
        .connect_timeout(WAIT)
        .request_timeout(WAIT)
        .build()
}

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,pipecat_websocket=info,pipecat_small_webrtc=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The next event `pick` accepts, within [`WAIT`]; `what` names it in the failure.
pub(crate) async fn expect<T>(
    events: &mut EventStream,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("event stream ended before {what}"),
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

/// Every event that arrives within `window`.
pub(crate) async fn collect_for(events: &mut EventStream, window: Duration) -> Vec<ClientEvent> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(window, async {
        while let Some(event) = events.recv().await {
            seen.push(event);
        }
    })
    .await;
    seen
}

/// `start_bot_and_connect` to ready, and the `/start` answer (from the `bot-started` event).
pub(crate) async fn start_and_connect(client: &PipecatClient, bot: &PeerBot) -> Value {
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    expect(&mut events, "bot-started", |e| match e {
        ClientEvent::BotStarted(answer) => Some(answer.clone()),
        _ => None,
    })
    .await
}

/// Waits until the client is `state`.
pub(crate) async fn wait_state(client: &PipecatClient, state: TransportState) {
    let mut watch = client.watch_state();
    let reached = tokio::time::timeout(WAIT, watch.wait_for(|s| *s == state)).await;
    assert!(reached.is_ok(), "state {state} not reached (now {})", client.state());
}

/// Polls `check` until it holds, within [`WAIT`].
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks a `bot-ready` of the peer bot on `release`: its protocol, its library, and the
/// 2.2-only `capabilities` only where the release has them.
pub(crate) fn assert_bot_ready(ready: &BotReady, release: Release) {
    assert_eq!(ready.version, release.rtvi_version(), "{release}");
    let about = ready.about.as_ref().expect("bot-ready about");
    assert_eq!(about.library, "pipecat-ai");
    assert_eq!(about.library_version.as_deref(), Some(release.version()));
    if release.sends_capabilities() {
        let caps = ready.capabilities.as_ref().expect("bot-ready capabilities (RTVI 2.2.0)");
        assert_eq!(caps.audio_in, Some(true));
        assert_eq!(caps.audio_out, Some(true));
        assert_eq!(caps.video_in, Some(false));
    } else {
        assert!(ready.capabilities.is_none(), "{release} has no capabilities: {ready:?}");
    }
}

/// The loud part of `samples` (20 ms windows above 0.05 RMS) without its first and last
/// window, where the resamplers' ramps and low-level ringing would skew a zero-crossing count.
pub(crate) fn loud_middle(samples: &[i16], rate: u32) -> Vec<i16> {
    let window = (rate / 50) as usize;
    let loud: Vec<&[i16]> =
        samples.chunks(window).filter(|w| pipecat_media::rms_i16(w) > 0.05).collect();
    let inner = if loud.len() > 2 { &loud[1..loud.len() - 1] } else { &loud[..] };
    inner.iter().flat_map(|w| w.iter().copied()).collect()
}

/// Checks that `loud` (24 kHz) is the echo of a tone of `hz` sent at 0.3 of full scale.
pub(crate) fn assert_echo(what: &str, loud: &[i16], hz: f64, tolerance: &EchoTolerance) {
    const RATE: u32 = 24_000;
    let rms = pipecat_media::rms_i16(loud);
    let at_tone = analysis::goertzel_power(loud, RATE, hz);
    let elsewhere = analysis::goertzel_power(loud, RATE, 1000.0).max(analysis::goertzel_power(
        loud,
        RATE,
        hz / 2.0,
    ));
    let mut per_window: Vec<f64> =
        loud.chunks_exact(2_400).map(|w| analysis::zero_crossing_frequency(w, RATE)).collect();
    assert!(!per_window.is_empty(), "{what}: only {} samples", loud.len());
    per_window.sort_by(f64::total_cmp);
    let measured = per_window[per_window.len() / 2];
    eprintln!(
        "{what}: {} samples, rms {rms:.3}, {hz} Hz power {at_tone:.2e} vs {elsewhere:.2e}, \
         zero-crossing frequency {measured:.1} Hz",
        loud.len()
    );
    assert!(tolerance.rms.contains(&rms), "{what}: RMS {rms}");
    assert!(at_tone > 100.0 * elsewhere, "{what}: no {hz} Hz peak: {at_tone} vs {elsewhere}");
    assert!((measured - hz).abs() < tolerance.hz, "{what}: frequency {measured} Hz");
}

/// `true` for a `server-message` whose data is `expected`.
pub(crate) fn is_server_message(event: &ClientEvent, expected: &Value) -> bool {
    matches!(event, ClientEvent::ServerMessage(data) if data == expected)
}
