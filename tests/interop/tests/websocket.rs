//! The WebSocket transport against the real pipecat-ai 1.14.0 peer bot, through the public
//! client API. Each test starts its own bot on a free loopback port.

use std::sync::Arc;
use std::time::Duration;

use pipecat_core::rtvi::InputType;
use pipecat_core::{
    ClientEvent, ConnectionParams, Error, ErrorOrigin, EventStream, FunctionCall, PipecatClient,
    TransportError, TransportState,
};
use pipecat_interop_tests::PeerBot;
use pipecat_media::{
    AudioFormat, MemorySink, MemorySource, ToneGenerator, ToneSource, WavFileSink, WavFileSource,
    analysis,
};
use pipecat_websocket::{WebSocketParams, WebSocketTransport};
use serde_json::{Value, json};

/// Bound on every wait for the bot.
const WAIT: Duration = Duration::from_secs(20);

async fn bot(extra: &[&str]) -> PeerBot {
    init_tracing();
    match PeerBot::start("websocket", extra).await {
        Ok(bot) => bot,
        Err(e) => panic!("{e}"),
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,pipecat_websocket=info".into()),
        )
        .with_test_writer()
        .try_init();
}

fn client(transport: WebSocketTransport) -> PipecatClient {
    PipecatClient::builder(transport)
        .bot_ready_timeout(WAIT)
        .connect_timeout(WAIT)
        .request_timeout(WAIT)
        .build()
}

/// A client whose transport sends silence and discards bot audio.
fn quiet_client() -> PipecatClient {
    client(WebSocketTransport::builder().without_audio().build().unwrap())
}

/// The next event `pick` accepts, within [`WAIT`]; `what` names it in the failure.
async fn expect<T>(
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

/// Waits until the client is `state`.
async fn wait_state(client: &PipecatClient, state: TransportState) {
    let mut watch = client.watch_state();
    let reached = tokio::time::timeout(WAIT, watch.wait_for(|s| *s == state)).await;
    assert!(reached.is_ok(), "state {state} not reached (now {})", client.state());
}

fn assert_peer_bot_ready(ready: &pipecat_core::rtvi::BotReady) {
    assert_eq!(ready.version, "2.2.0");
    let about = ready.about.as_ref().expect("bot-ready about");
    assert_eq!(about.library, "pipecat-ai");
    assert_eq!(about.library_version.as_deref(), Some("1.14.0"));
    let caps = ready.capabilities.as_ref().expect("bot-ready capabilities (RTVI 2.2.0)");
    assert_eq!(caps.audio_in, Some(true));
    assert_eq!(caps.audio_out, Some(true));
    assert_eq!(caps.video_in, Some(false));
}

#[tokio::test]
async fn start_bot_and_connect_reaches_ready() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    let ready = client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    assert_peer_bot_ready(&ready);
    assert_eq!(client.state(), TransportState::Ready);
    let started = expect(&mut events, "bot-started", |e| match e {
        ClientEvent::BotStarted(answer) => Some(answer.clone()),
        _ => None,
    })
    .await;
    assert!(started["wsUrl"].as_str().is_some_and(|u| u.starts_with("ws://localhost:")));
    assert!(started["token"].is_null(), "no --ws-auth: the runner sends token null");
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
}

#[tokio::test]
async fn connect_directly_reaches_ready() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let params = WebSocketParams::new(format!("ws://localhost:{}/ws-client", bot.port()));
    let ready = client.connect(params).await.expect("ready");
    assert_peer_bot_ready(&ready);
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn start_bot_then_connect_reaches_ready() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let answer = client.start_bot(bot.start_request()).await.expect("start answer");
    assert_eq!(client.state(), TransportState::Authenticated);
    let params = ConnectionParams::from_json(answer).unwrap();
    let ready = client.connect(params).await.expect("ready");
    assert_peer_bot_ready(&ready);
    assert!(client.bot_ready_data().is_some());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn token_auth_accepts_the_start_token_and_refuses_a_bad_one() {
    let bot = bot(&["--ws-auth", "token"]).await;
    let client = quiet_client();
    let answer = client.start_bot(bot.start_request()).await.expect("start answer");
    assert!(answer["token"].as_str().is_some_and(|t| !t.is_empty()), "{answer}");
    let ready = client.connect(ConnectionParams::from_json(answer.clone()).unwrap()).await;
    assert_peer_bot_ready(&ready.expect("ready with the runner's token"));
    client.disconnect().await.unwrap();

    // The token is one-time: using it again is refused (HTTP 403 / close 4003).
    let err = client.connect(ConnectionParams::from_json(answer).unwrap()).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(TransportError::Authentication(_))),
        "expected an authentication error, got {err:?}"
    );
    assert_eq!(client.state(), TransportState::Disconnected);
}

#[tokio::test]
async fn client_request_response_and_error_response() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");

    let pong = client.send_client_request("ping", json!({"x": 1})).await.expect("pong");
    assert_eq!(pong, json!({"pong": true, "echo": {"x": 1}}));

    let err = client.send_client_request("fail", json!({"error": "nope"})).await.unwrap_err();
    assert!(matches!(&err, Error::ErrorResponse { message } if message == "nope"), "{err:?}");

    // An unscripted `t` is echoed.
    let echo = client.send_client_request("something-else", json!({"a": [1, 2]})).await.unwrap();
    assert_eq!(echo, json!({"a": [1, 2]}));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn server_message_reaches_the_client() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    let reply = client.send_client_request("server-msg", json!({"hello": "world"})).await;
    assert_eq!(reply.unwrap(), json!({"sent": true}));
    let message = expect(&mut events, "server-message", |e| match e {
        ClientEvent::ServerMessage(data) => Some(data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message, json!({"hello": "world"}));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn send_text_interrupts_and_gets_the_bots_text() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    client.send_text("typed text").await.unwrap();

    expect(&mut events, "bot-interrupted", |e| {
        matches!(e, ClientEvent::BotInterrupted).then_some(())
    })
    .await;
    let input = expect(&mut events, "user-input", |e| match e {
        ClientEvent::UserInput(input) => Some(input.clone()),
        _ => None,
    })
    .await;
    assert_eq!(input.text, "typed text");
    assert_eq!(input.input_type, InputType::Chat);
    assert!(input.is_final);
    expect(&mut events, "bot-llm-started", |e| {
        matches!(e, ClientEvent::BotLlmStarted).then_some(())
    })
    .await;
    let text = expect(&mut events, "bot-llm-text", |e| match e {
        ClientEvent::BotLlmText(t) => Some(t.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "echo: typed text");
    expect(&mut events, "bot-llm-stopped", |e| {
        matches!(e, ClientEvent::BotLlmStopped).then_some(())
    })
    .await;
    let output = expect(&mut events, "bot-output", |e| match e {
        ClientEvent::BotOutput(o) => Some(o.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(output, "echo: typed text");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn function_call_round_trip_reaches_stopped_with_our_result() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    client.register_function_call_handler("get_weather", |call: FunctionCall| async move {
        let city = call.arguments["city"].as_str().unwrap_or("nowhere").to_owned();
        Ok::<_, String>(json!({"city": city, "temp": 21}))
    });
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    let reply = client
        .send_client_request(
            "fn-call",
            json!({"function_name": "get_weather", "tool_call_id": "call-7", "arguments": {"city": "Paris"}}),
        )
        .await
        .unwrap();
    assert_eq!(reply, json!({"tool_call_id": "call-7"}));
    let stopped = expect(&mut events, "llm-function-call-stopped", |e| match e {
        ClientEvent::LlmFunctionCallStopped(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_eq!(stopped.tool_call_id, "call-7");
    assert!(!stopped.cancelled);
    assert_eq!(stopped.function_name.as_deref(), Some("get_weather"));
    assert_eq!(stopped.result, Some(json!({"city": "Paris", "temp": 21})));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn non_fatal_error_is_reported_and_the_session_goes_on() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    client.send_client_request("error", json!({"error": "boom", "fatal": false})).await.unwrap();
    let error = expect(&mut events, "error", |e| match e {
        ClientEvent::Error(err) if err.origin == ErrorOrigin::Bot => Some(err.clone()),
        _ => None,
    })
    .await;
    assert_eq!(error.message, "boom");
    assert!(!error.fatal);
    assert_eq!(client.state(), TransportState::Ready);
    assert!(client.send_client_request("ping", Value::Null).await.is_ok());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn fatal_error_ends_the_session() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    // The reply may or may not beat the end of the session.
    let _ = client.send_client_request("error", json!({"error": "kaboom", "fatal": true})).await;
    let error = expect(&mut events, "fatal error", |e| match e {
        ClientEvent::Error(err) if err.fatal => Some(err.clone()),
        _ => None,
    })
    .await;
    assert_eq!(error.origin, ErrorOrigin::Bot);
    assert_eq!(error.message, "kaboom");
    wait_state(&client, TransportState::Disconnected).await;
    assert!(matches!(
        client.send_client_request("ping", Value::Null).await,
        Err(Error::NotReady { .. })
    ));
}

#[tokio::test]
async fn disconnect_bot_ends_the_session_through_bot_disconnected() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    client.disconnect_bot().await.unwrap();
    let reason = expect(&mut events, "bot-disconnected", |e| match e {
        ClientEvent::BotDisconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("1000"), "{reason}");
    expect(&mut events, "disconnected", |e| matches!(e, ClientEvent::Disconnected).then_some(()))
        .await;
    wait_state(&client, TransportState::Disconnected).await;
}

#[tokio::test]
async fn bot_end_is_a_bot_disconnect_too() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    assert_eq!(
        client.send_client_request("end", Value::Null).await.unwrap(),
        json!({"ending": true})
    );
    expect(&mut events, "bot-disconnected", |e| {
        matches!(e, ClientEvent::BotDisconnected { .. }).then_some(())
    })
    .await;
    wait_state(&client, TransportState::Disconnected).await;
}

#[tokio::test]
async fn client_disconnect_then_a_second_session_on_the_same_client() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let first = client.start_bot_and_connect(bot.start_request()).await.expect("first ready");
    assert_peer_bot_ready(&first);
    assert!(client.send_client_request("ping", json!(1)).await.is_ok());
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
    // The bot noticed: its session ended.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !bot.log().contains("client disconnected") {
        assert!(tokio::time::Instant::now() < deadline, "the bot never saw the disconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let second = client.start_bot_and_connect(bot.start_request()).await.expect("second ready");
    assert_peer_bot_ready(&second);
    let pong = client.send_client_request("ping", json!(2)).await.unwrap();
    assert_eq!(pong["echo"], json!(2));
    client.disconnect().await.unwrap();
    // A third time through reconnect(), which re-posts the last start request.
    client.reconnect().await.expect("third ready");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_tone_sent_up_comes_back_down_with_its_energy_and_frequency() {
    const HZ: f64 = 440.0;
    let bot = bot(&[]).await;
    // The "microphone": 1.5 s of a 440 Hz tone at 48 kHz (converted to 16 kHz by the
    // transport), in real time. The "speaker": an in-memory sink at 24 kHz.
    let tone = ToneSource::new(AudioFormat::MONO_48K, HZ as f32, 0.3)
        .unwrap()
        .limit(Duration::from_millis(1500));
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let transport =
        WebSocketTransport::builder().audio_source(tone).audio_sink(sink).build().unwrap();
    let client = client(transport);
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");

    // Collect the echo until 1 s of loud audio came back.
    let mut loud: Vec<i16> = Vec::new();
    let collected = tokio::time::timeout(WAIT, async {
        while loud.len() < 24_000 {
            let Some(frame) = speaker.next_frame().await else { break };
            if frame.rms() > 0.05 {
                loud.extend_from_slice(frame.samples());
            }
        }
    })
    .await;
    client.disconnect().await.unwrap();
    assert!(collected.is_ok(), "only {} loud samples came back", loud.len());
    assert!(loud.len() >= 24_000, "only {} loud samples came back", loud.len());

    let rms = pipecat_media::rms_i16(&loud);
    // Sent at 0.3 of full scale: a sine's RMS is 0.3 / sqrt(2), about 0.21.
    assert!((0.15..0.26).contains(&rms), "echo RMS {rms}");
    let at_tone = analysis::goertzel_power(&loud, 24_000, HZ);
    let elsewhere = analysis::goertzel_power(&loud, 24_000, 1000.0)
        .max(analysis::goertzel_power(&loud, 24_000, 220.0));
    assert!(at_tone > 100.0 * elsewhere, "no {HZ} Hz peak: {at_tone} vs {elsewhere}");
    let measured = analysis::zero_crossing_frequency(&loud, 24_000);
    eprintln!(
        "echo: {} samples, rms {rms:.3}, {HZ} Hz power {at_tone:.2e} vs {elsewhere:.2e}, \
         zero-crossing frequency {measured:.1} Hz",
        loud.len()
    );
    assert!((measured - HZ).abs() < 10.0, "echo frequency {measured} Hz");
}

/// The loud part of `samples` (20 ms windows above 0.05 RMS) without its first and last
/// window, where the resamplers' ramps and low-level ringing would skew a zero-crossing count.
fn loud_middle(samples: &[i16], rate: u32) -> Vec<i16> {
    let window = (rate / 50) as usize;
    let loud: Vec<&[i16]> =
        samples.chunks(window).filter(|w| pipecat_media::rms_i16(w) > 0.05).collect();
    let inner = if loud.len() > 2 { &loud[1..loud.len() - 1] } else { &loud[..] };
    inner.iter().flat_map(|w| w.iter().copied()).collect()
}

/// Checks that `loud` is a tone of `hz` sent at 0.3 of full scale.
fn assert_tone(what: &str, loud: &[i16], rate: u32, hz: f64) {
    let rms = pipecat_media::rms_i16(loud);
    let at_tone = analysis::goertzel_power(loud, rate, hz);
    let elsewhere = analysis::goertzel_power(loud, rate, 1000.0).max(analysis::goertzel_power(
        loud,
        rate,
        hz / 2.0,
    ));
    let measured = analysis::zero_crossing_frequency(loud, rate);
    eprintln!(
        "{what}: {} samples, rms {rms:.3}, {hz} Hz power {at_tone:.2e} vs {elsewhere:.2e}, \
         zero-crossing frequency {measured:.1} Hz",
        loud.len()
    );
    // A sine at 0.3 of full scale has an RMS of 0.3 / sqrt(2), about 0.21.
    assert!((0.15..0.26).contains(&rms), "{what}: RMS {rms}");
    assert!(at_tone > 100.0 * elsewhere, "{what}: no {hz} Hz peak: {at_tone} vs {elsewhere}");
    assert!((measured - hz).abs() < 5.0, "{what}: frequency {measured} Hz");
}

#[tokio::test]
async fn a_wav_file_streamed_up_comes_back_into_a_wav_file() {
    const HZ: f64 = 440.0;
    // The "microphone": a WAV file, 1.5 s of a 440 Hz tone at 48 kHz written with hound,
    // streamed in real time (converted to 16 kHz by the transport).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tone-440.wav");
    let output = dir.path().join("echo.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&input, spec).unwrap();
    let tone = ToneGenerator::new(AudioFormat::MONO_48K, HZ as f32, 0.3)
        .unwrap()
        .frame(72_000, Duration::ZERO);
    for &s in tone.samples() {
        writer.write_sample(s).unwrap();
    }
    writer.finalize().unwrap();

    let bot = bot(&[]).await;
    // The "speaker": a WAV file at 24 kHz.
    let transport = Arc::new(
        WebSocketTransport::builder()
            .audio_source(WavFileSource::open(&input).unwrap())
            .audio_sink(WavFileSink::create(&output, AudioFormat::MONO_24K).unwrap())
            .build()
            .unwrap(),
    );
    let client = PipecatClient::builder_shared(transport.clone())
        .bot_ready_timeout(WAIT)
        .connect_timeout(WAIT)
        .request_timeout(WAIT)
        .build();
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");

    // Tracks and levels as the client reports them; the local track stops when the file ends.
    let is_local =
        |t: &pipecat_core::media::TrackInfo| t.participant.as_ref().is_some_and(|p| p.local);
    let mut bot_track = false;
    let mut local_stopped = false;
    let mut loud_local = 0;
    let mut loud_remote = 0;
    let finished = tokio::time::timeout(WAIT, async {
        // Until the file ended and the echo went quiet (no loud bot level for 1 s).
        loop {
            let next = if local_stopped && loud_remote >= 12 {
                match tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
                    Ok(event) => event,
                    Err(_) => break,
                }
            } else {
                events.recv().await
            };
            match next {
                Some(ClientEvent::TrackStarted(t)) if !is_local(&t) => bot_track = true,
                Some(ClientEvent::TrackStopped(t)) if is_local(&t) => local_stopped = true,
                Some(ClientEvent::LocalAudioLevel(l)) if l > 0.5 => loud_local += 1,
                Some(ClientEvent::RemoteAudioLevel(l)) if l > 0.5 => loud_remote += 1,
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    client.disconnect().await.unwrap();
    transport.close_audio_sink().await.unwrap();
    assert!(
        finished.is_ok(),
        "no end of the echo within {WAIT:?} (loud bot levels: {loud_remote})"
    );
    assert!(
        bot_track && local_stopped,
        "track events: bot {bot_track}, local stop {local_stopped}"
    );
    // 1.5 s of tone: about 15 local levels; the echo as many.
    assert!(loud_local >= 12, "{loud_local} loud local levels");
    assert!(loud_remote >= 12, "{loud_remote} loud bot levels");

    let mut reader = hound::WavReader::open(&output).unwrap();
    assert_eq!((reader.spec().sample_rate, reader.spec().channels), (24_000, 1));
    let recorded: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let loud = loud_middle(&recorded, 24_000);
    assert!(loud.len() >= 24_000, "only {} loud samples in the recording", loud.len());
    assert_tone("WAV echo", &loud, 24_000, HZ);
}

#[tokio::test]
async fn pcm_pushed_by_the_program_comes_back_to_an_in_memory_sink() {
    const HZ: f64 = 523.25;
    let bot = bot(&[]).await;
    // The program pushes 1.2 s of PCM at 24 kHz, paced by the source; the bot's audio is
    // pulled from memory.
    let (source, mic) = MemorySource::new(AudioFormat::MONO_24K).unwrap();
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let transport = WebSocketTransport::builder()
        .audio_source(source.paced(true))
        .audio_sink(sink)
        .build()
        .unwrap();
    let client = client(transport);
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    let pcm = ToneGenerator::new(AudioFormat::MONO_24K, HZ as f32, 0.3)
        .unwrap()
        .frame(28_800, Duration::ZERO);
    mic.push(pcm.samples()).unwrap();

    let mut heard: Vec<i16> = Vec::new();
    let collected = tokio::time::timeout(WAIT, async {
        while loud_middle(&heard, 24_000).len() < 24_000 {
            let Some(frame) = speaker.next_frame().await else { break };
            heard.extend_from_slice(frame.samples());
        }
    })
    .await;
    client.disconnect().await.unwrap();
    let loud = loud_middle(&heard, 24_000);
    assert!(collected.is_ok() && loud.len() >= 24_000, "only {} loud samples", loud.len());
    assert_tone("in-memory echo", &loud, 24_000, HZ);
}

/// The time from `start_bot_and_connect` to `ready`, median of 20 runs. A measurement, not a
/// test (ignored by default):
/// `cargo test -p pipecat-interop-tests --test websocket -- --ignored --nocapture time_to_ready`
#[tokio::test]
#[ignore = "a measurement; run it explicitly"]
async fn time_to_ready_median_of_20() {
    let bot = bot(&[]).await;
    let client = quiet_client();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        client.start_bot_and_connect(bot.start_request()).await.expect("ready");
        times.push(started.elapsed());
        client.disconnect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    times.sort();
    let median = (times[9] + times[10]) / 2;
    eprintln!(
        "start_bot_and_connect -> ready, 20 runs: median {:.2} ms (min {:.2} ms, max {:.2} ms)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3
    );
}
