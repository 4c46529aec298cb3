//! The scenarios every transport runs, defined once: each is an `async fn(Kind, Release)`,
//! and `over_every_transport!` makes one test of it per transport and release. Where a
//! release cannot do something (no DTMF on 1.3, no `send-file` below RTVI 2.2.0, no
//! `user-input` below 1.14, no `bot-interrupted` on 1.3), the scenario asserts what the
//! client does instead.

use std::time::Duration;

use pipecat_core::rtvi::{
    ClientMessage, FileData, FileSource, InputType, SendFile, SendFileOptions,
};
use pipecat_core::{
    ClientEvent, ConnectionParams, Error, ErrorOrigin, EventStream, FunctionCall, PipecatClient,
    ProtocolWarning, TransportState,
};
use pipecat_media::{
    AudioFormat, MemorySink, PlayoutConfig, ToneGenerator, ToneSource, WavFileSink, WavFileSource,
};
use pipecat_websocket::AudioOptions;
use serde_json::{Value, json};

use crate::common::*;

/// `mod <scenario> { mod websocket { pipecat_<version>... } mod small_webrtc { ... } }`.
macro_rules! over_every_transport {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        mod $name {
            mod websocket {
                for_each_release!($(#[$meta])* super::super::$name, crate::common::Kind::WebSocket);
            }
            mod small_webrtc {
                for_each_release!($(#[$meta])* super::super::$name, crate::common::Kind::SmallWebRtc);
            }
        }
    )*};
}

over_every_transport!(
    start_bot_and_connect_reaches_ready,
    connect_directly_reaches_ready,
    start_bot_then_connect_reaches_ready,
    client_request_response_and_error_response,
    server_message_reaches_the_client,
    send_text_gets_the_bots_text,
    transcription_reaches_the_client,
    function_call_round_trip_reaches_stopped_with_our_result,
    non_fatal_error_is_reported_and_the_session_goes_on,
    fatal_error_ends_the_session,
    disconnect_bot_ends_the_session_through_bot_disconnected,
    bot_end_is_a_bot_disconnect_too,
    client_disconnect_then_a_second_session_on_the_same_client,
    a_tone_sent_up_comes_back_down_with_its_energy_and_frequency,
    a_wav_file_streamed_up_comes_back_into_a_wav_file,
    an_interruption_flushes_the_bots_audio,
    dtmf_follows_the_bots_version,
    send_file_follows_the_bots_version,
    #[ignore = "a measurement; run it explicitly"]
    time_to_ready_median_of_20,
);

/// A bot on `release` and a client without audio, ready through `/start`, with the events
/// from before the start.
async fn ready_session(kind: Kind, release: Release) -> (PeerBot, PipecatClient, EventStream) {
    let bot = kind.bot(release, &[]).await;
    let client = kind.quiet_client();
    let events = client.events();
    let ready = client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    assert_bot_ready(&ready, release);
    (bot, client, events)
}

async fn start_bot_and_connect_reaches_ready(kind: Kind, release: Release) {
    let (bot, client, mut events) = ready_session(kind, release).await;
    assert_eq!(client.state(), TransportState::Ready);
    expect(&mut events, "bot-started", |e| matches!(e, ClientEvent::BotStarted(_)).then_some(()))
        .await;
    // What came before bot-ready: 1.0-1.3 reject our 2.2.0 client-ready with an
    // error-response carrying its id. That is a protocol warning, never an error.
    let mut before_ready = Vec::new();
    expect(&mut events, "bot-ready", |e| {
        before_ready.push(e.clone());
        matches!(e, ClientEvent::BotReady(_)).then_some(())
    })
    .await;
    let rejected: Vec<&str> = before_ready
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ProtocolWarning(ProtocolWarning::ClientReadyRejected { message }) => {
                Some(message.as_str())
            }
            _ => None,
        })
        .collect();
    if release.rejects_client_ready() {
        assert_eq!(rejected.len(), 1, "{before_ready:?}");
        assert!(rejected[0].contains("not compatible"), "{}", rejected[0]);
        assert!(rejected[0].contains(release.rtvi_version()), "{}", rejected[0]);
    } else {
        assert!(rejected.is_empty(), "{before_ready:?}");
    }
    let errors: Vec<&ClientEvent> = before_ready
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error(_) | ClientEvent::MessageError { .. }))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // The session works.
    assert!(client.send_client_request("ping", json!(1)).await.is_ok());
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
    drop(bot);
}

async fn connect_directly_reaches_ready(kind: Kind, release: Release) {
    let bot = kind.bot(release, &[]).await;
    let client = kind.quiet_client();
    let ready = client.connect(kind.direct_params(&bot)).await.expect("ready");
    assert_bot_ready(&ready, release);
    assert!(client.send_client_request("ping", json!("direct")).await.is_ok());
    client.disconnect().await.unwrap();
}

async fn start_bot_then_connect_reaches_ready(kind: Kind, release: Release) {
    let bot = kind.bot(release, &[]).await;
    let client = kind.quiet_client();
    // start_bot, then connect with its answer (and the request it answers: SmallWebRTC
    // derives the session's offer URL from it).
    let answer = client.start_bot(bot.start_request()).await.expect("start answer");
    assert_eq!(client.state(), TransportState::Authenticated);
    let mut params = ConnectionParams::from_json(answer).unwrap();
    params.start_request = Some(bot.start_request());
    let ready = client.connect(params).await.expect("ready");
    assert_bot_ready(&ready, release);
    assert!(client.bot_ready_data().is_some());
    client.disconnect().await.unwrap();

    // start_bot, then reconnect() without parameters: the transport maps the answer itself.
    client.start_bot(bot.start_request()).await.expect("start answer");
    let ready = client.reconnect().await.expect("ready");
    assert_bot_ready(&ready, release);
    client.disconnect().await.unwrap();
}

async fn client_request_response_and_error_response(kind: Kind, release: Release) {
    let (_bot, client, _events) = ready_session(kind, release).await;
    let pong = client.send_client_request("ping", json!({"x": 1})).await.expect("pong");
    assert_eq!(pong, json!({"pong": true, "echo": {"x": 1}}));

    let err = client.send_client_request("fail", json!({"error": "nope"})).await.unwrap_err();
    assert!(matches!(&err, Error::ErrorResponse { message } if message == "nope"), "{err:?}");

    // An unscripted `t` is echoed.
    let echo = client.send_client_request("something-else", json!({"a": [1, 2]})).await.unwrap();
    assert_eq!(echo, json!({"a": [1, 2]}));
    client.disconnect().await.unwrap();
}

async fn server_message_reaches_the_client(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
    let reply = client.send_client_request("server-msg", json!({"hello": "world"})).await;
    assert_eq!(reply.unwrap(), json!({"sent": true}));
    let expected = json!({"hello": "world"});
    expect(&mut events, "server-message", |e| is_server_message(e, &expected).then_some(())).await;
    client.disconnect().await.unwrap();
}

/// `send-text` interrupts the bot, which answers like an LLM (text it does not speak). Only
/// 1.14 echoes the typed text as `user-input`; only 1.12 and later say `bot-interrupted`;
/// before 1.14 the `bot-output` of unspoken text waits until the bot next speaks; 1.3 sends
/// the v1 `bot-output`. The 2.2-only fields of `bot-output` stay optional.
async fn send_text_gets_the_bots_text(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
    client.send_text("typed text").await.unwrap();

    let mut before_llm = Vec::new();
    expect(&mut events, "bot-llm-started", |e| {
        before_llm.push(e.clone());
        matches!(e, ClientEvent::BotLlmStarted).then_some(())
    })
    .await;
    let interrupted = before_llm.iter().any(|e| matches!(e, ClientEvent::BotInterrupted));
    assert_eq!(interrupted, release.sends_bot_interrupted(), "{release}: {before_llm:?}");
    let input = before_llm.iter().find_map(|e| match e {
        ClientEvent::UserInput(input) => Some(input.clone()),
        _ => None,
    });
    if release.sends_user_input() {
        let input = input.expect("user-input");
        assert_eq!(input.text, "typed text");
        assert_eq!(input.input_type, InputType::Chat);
        assert!(input.is_final);
    } else {
        assert!(input.is_none(), "{release} has no user-input: {input:?}");
    }
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
    if !release.sends_unspoken_bot_output() {
        // The reply is not spoken: its bot-output waits until the bot next speaks.
        let quiet = collect_for(&mut events, Duration::from_millis(1000)).await;
        assert!(
            !quiet.iter().any(|e| matches!(e, ClientEvent::BotOutput(_))),
            "{release} holds the bot-output of unspoken text: {quiet:?}"
        );
        let reply = client.send_client_request("tone", json!({"ms": 200})).await;
        assert_eq!(reply.unwrap(), json!({"samples": 4800}));
    }
    let output = expect(&mut events, "bot-output", |e| match e {
        ClientEvent::BotOutput(o) => Some(o.clone()),
        _ => None,
    })
    .await;
    assert_eq!(output.text, "echo: typed text");
    assert_eq!(output.kind(), Some("sentence"), "{output:?}");
    if release == Release::V1_14_0 {
        assert_eq!(output.output_type.as_deref(), Some("sentence"), "{output:?}");
    } else {
        // No 2.2-only field: the kind comes as `aggregated_by`, and no speaking status.
        assert_eq!(output.aggregated_by.as_deref(), Some("sentence"), "{output:?}");
        assert!(output.output_type.is_none() && output.text_type.is_none(), "{output:?}");
        assert!(output.spoken_status.is_none(), "{output:?}");
    }
    if release.sends_v1_bot_output() {
        // v1: `spoken`, none of the v2 fields.
        assert_eq!(output.spoken, Some(false), "{output:?}");
        assert!(output.will_be_spoken.is_none() && output.segment_id.is_none(), "{output:?}");
    }
    assert_eq!(client.state(), TransportState::Ready);
    client.disconnect().await.unwrap();
}

/// A transcription (interim, then final) reaches the client as `user-transcription` on every
/// release; 1.14 also sends it as `user-input`, which the older ones do not have.
async fn transcription_reaches_the_client(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
    let reply = client.send_client_request("transcript", json!({"text": "hello there bot"})).await;
    assert_eq!(reply.unwrap(), json!({"text": "hello there bot"}));
    let mut seen = Vec::new();
    let last = expect(&mut events, "final user-transcription", |e| {
        seen.push(e.clone());
        match e {
            ClientEvent::UserTranscript(t) if t.is_final => Some(t.clone()),
            _ => None,
        }
    })
    .await;
    assert_eq!(last.text, "hello there bot");
    assert_eq!(last.user_id.as_deref(), Some("peer-user"));
    let interim: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            ClientEvent::UserTranscript(t) if !t.is_final => Some(t.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(interim, ["hello t"], "the interim before the final");
    // Anything still in flight (1.14's user-input may follow its user-transcription).
    seen.extend(collect_for(&mut events, Duration::from_millis(500)).await);
    let inputs: Vec<(&str, bool)> = seen
        .iter()
        .filter_map(|e| match e {
            ClientEvent::UserInput(u) if u.input_type == InputType::Transcription => {
                Some((u.text.as_str(), u.is_final))
            }
            _ => None,
        })
        .collect();
    if release.sends_user_input() {
        assert!(inputs.contains(&("hello there bot", true)), "{inputs:?}");
    } else {
        assert!(inputs.is_empty(), "{release} has no user-input: {inputs:?}");
    }
    client.disconnect().await.unwrap();
}

async fn function_call_round_trip_reaches_stopped_with_our_result(kind: Kind, release: Release) {
    let bot = kind.bot(release, &[]).await;
    let client = kind.quiet_client();
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

async fn non_fatal_error_is_reported_and_the_session_goes_on(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
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

async fn fatal_error_ends_the_session(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
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

async fn disconnect_bot_ends_the_session_through_bot_disconnected(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
    client.disconnect_bot().await.unwrap();
    let reason = expect(&mut events, "bot-disconnected", |e| match e {
        ClientEvent::BotDisconnected { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    kind.assert_bot_left(&reason);
    expect(&mut events, "disconnected", |e| matches!(e, ClientEvent::Disconnected).then_some(()))
        .await;
    wait_state(&client, TransportState::Disconnected).await;
}

async fn bot_end_is_a_bot_disconnect_too(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
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

async fn client_disconnect_then_a_second_session_on_the_same_client(kind: Kind, release: Release) {
    let (bot, client, _events) = ready_session(kind, release).await;
    assert!(client.send_client_request("ping", json!(1)).await.is_ok());
    client.disconnect().await.unwrap();
    assert_eq!(client.state(), TransportState::Disconnected);
    // The bot noticed: its session ended.
    eventually("the bot saw the disconnect", || bot.log().contains("client disconnected")).await;

    let second = client.start_bot_and_connect(bot.start_request()).await.expect("second ready");
    assert_bot_ready(&second, release);
    let pong = client.send_client_request("ping", json!(2)).await.unwrap();
    assert_eq!(pong["echo"], json!(2));
    client.disconnect().await.unwrap();
    // A third time through reconnect(), which re-posts the last start request.
    let third = client.reconnect().await.expect("third ready");
    assert_bot_ready(&third, release);
    client.disconnect().await.unwrap();
}

async fn a_tone_sent_up_comes_back_down_with_its_energy_and_frequency(
    kind: Kind,
    release: Release,
) {
    const HZ: f64 = 440.0;
    let bot = kind.bot(release, &[]).await;
    // The "microphone": 2 s of a 440 Hz tone at 48 kHz, in real time. The "speaker": an
    // in-memory sink at 24 kHz.
    let tone = ToneSource::new(AudioFormat::MONO_48K, HZ as f32, 0.3)
        .unwrap()
        .limit(Duration::from_millis(2000));
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let (client, _transport) = kind.client(AudioOptions::none().source(tone).sink(sink));
    let mut events = client.events();
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
    assert!(collected.is_ok(), "only {} loud samples came back", loud.len());
    // Both levels were reported, and the bot's audio track started.
    expect(&mut events, "remote track", |e| {
        matches!(e, ClientEvent::TrackStarted(_)).then_some(())
    })
    .await;
    expect(&mut events, "local level", |e| {
        matches!(e, ClientEvent::LocalAudioLevel(l) if *l > 0.5).then_some(())
    })
    .await;
    expect(&mut events, "remote level", |e| {
        matches!(e, ClientEvent::RemoteAudioLevel(l) if *l > 0.5).then_some(())
    })
    .await;
    client.disconnect().await.unwrap();
    assert_echo("echo", &loud, HZ, &kind.echo_tolerance());
}

async fn a_wav_file_streamed_up_comes_back_into_a_wav_file(kind: Kind, release: Release) {
    const HZ: f64 = 440.0;
    // The "microphone": a WAV file, 1.5 s of a 440 Hz tone at 48 kHz written with hound,
    // streamed in real time. The "speaker": a WAV file at 24 kHz.
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

    let bot = kind.bot(release, &[]).await;
    let audio = AudioOptions::none()
        .source(WavFileSource::open(&input).unwrap())
        .sink(WavFileSink::create(&output, AudioFormat::MONO_24K).unwrap());
    let (client, transport) = kind.client(audio);
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");

    // Tracks and levels as the client reports them; the local track stops when the file ends.
    let is_local =
        |t: &pipecat_core::media::TrackInfo| t.participant.as_ref().is_some_and(|p| p.local);
    let tolerance = kind.echo_tolerance();
    let mut bot_track = false;
    let mut local_started = false;
    let mut local_stopped = false;
    let mut loud_local = 0;
    let mut loud_remote = 0;
    let finished = tokio::time::timeout(WAIT, async {
        // Until the file ended and the echo went quiet: no loud bot level for 1 s (over
        // SmallWebRTC the bot keeps sending silence, so events never stop).
        let mut last_loud = tokio::time::Instant::now();
        loop {
            if local_stopped
                && loud_remote >= tolerance.loud_levels
                && last_loud.elapsed() > Duration::from_secs(1)
            {
                break;
            }
            let next = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                Ok(event) => event,
                Err(_) => continue,
            };
            match next {
                Some(ClientEvent::TrackStarted(t)) if is_local(&t) => local_started = true,
                Some(ClientEvent::TrackStarted(_)) => bot_track = true,
                Some(ClientEvent::TrackStopped(t)) if is_local(&t) => local_stopped = true,
                Some(ClientEvent::LocalAudioLevel(l)) if l > 0.5 => loud_local += 1,
                Some(ClientEvent::RemoteAudioLevel(l)) if l > 0.5 => {
                    loud_remote += 1;
                    last_loud = tokio::time::Instant::now();
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    client.disconnect().await.unwrap();
    transport.close_audio_sink().await;
    assert!(
        finished.is_ok(),
        "no end of the echo within {WAIT:?} (loud bot levels: {loud_remote})"
    );
    assert!(
        bot_track && local_started && local_stopped,
        "track events: bot {bot_track}, local start {local_started}, local stop {local_stopped}"
    );
    // 1.5 s of tone: about 15 local levels; the echo about as many.
    assert!(loud_local >= 12, "{loud_local} loud local levels");
    assert!(loud_remote >= tolerance.loud_levels, "{loud_remote} loud bot levels");

    let mut reader = hound::WavReader::open(&output).unwrap();
    assert_eq!((reader.spec().sample_rate, reader.spec().channels), (24_000, 1));
    let recorded: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let loud = loud_middle(&recorded, 24_000);
    assert!(loud.len() >= 24_000, "only {} loud samples in the recording", loud.len());
    assert_echo("WAV echo", &loud, HZ, &tolerance);
}

/// The bot talks (a 4 s tone into a sink nobody plays out, so its audio piles up), then is
/// interrupted. The client drops the queued bot audio on `bot-interrupted` and, over
/// WebSocket, on the protobuf `InterruptionFrame`, which is all 1.3 sends. Over SmallWebRTC
/// 1.3 tells the client nothing, so the tone stays queued.
async fn an_interruption_flushes_the_bots_audio(kind: Kind, release: Release) {
    let bot = kind.bot(release, &["--no-echo"]).await;
    let config = PlayoutConfig::default().with_max_depth(Duration::from_secs(10));
    let (sink, speaker) = MemorySink::with_config(AudioFormat::MONO_24K, config).unwrap();
    let (client, _transport) = kind.client(AudioOptions::none().sink(sink));
    let mut events = client.events();
    client.start_bot_and_connect(bot.start_request()).await.expect("ready");
    let reply = client.send_client_request("tone", json!({"ms": 4000, "hz": 440})).await;
    assert_eq!(reply.unwrap(), json!({"samples": 96_000}));
    // Half a second of the tone has arrived (a level comes about every 100 ms of bot audio).
    let mut loud_levels = 0;
    expect(&mut events, "half a second of the tone", |e| {
        if matches!(e, ClientEvent::RemoteAudioLevel(l) if *l > 0.5) {
            loud_levels += 1;
        }
        (loud_levels >= 5).then_some(())
    })
    .await;
    assert_eq!(speaker.stats().flushes, 0);

    let reply = client.send_client_request("interrupt", Value::Null).await;
    assert_eq!(reply.unwrap(), json!({"interrupted": true}));
    let flushed = kind == Kind::WebSocket || release.sends_bot_interrupted();
    if flushed {
        eventually("bot audio flushed", || speaker.stats().flushes >= 1).await;
    }
    let later = collect_for(&mut events, Duration::from_millis(1000)).await;
    let interrupted = later.iter().any(|e| matches!(e, ClientEvent::BotInterrupted));
    assert_eq!(interrupted, release.sends_bot_interrupted(), "{release}: bot-interrupted");
    // What is queued now: after a flush, at most what was in flight (the bot stopped
    // talking, SmallWebRTC pads with silence); without one, the tone heard so far.
    let queued = speaker.take_all();
    let loud_ms = 20 * queued.chunks(480).filter(|w| pipecat_media::rms_i16(w) > 0.05).count();
    let stats = speaker.stats();
    if flushed {
        assert!(loud_ms <= 200, "{loud_ms} ms of the tone still queued: {stats:?}");
    } else {
        assert_eq!(stats.flushes, 0, "nothing tells the client on {release}: {stats:?}");
        assert!(loud_ms >= 400, "only {loud_ms} ms of the tone queued: {stats:?}");
    }
    assert_eq!(client.state(), TransportState::Ready);
    client.disconnect().await.unwrap();
}

/// DTMF reaches bots of RTVI 2.0.0 and later (one batched message from 2.1.0, one frame per
/// key on the bot's side); 1.3 (RTVI 1.4.0) has no DTMF, and the client refuses it.
async fn dtmf_follows_the_bots_version(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
    let result = client.send_dtmf("12#").await;
    if release.accepts_dtmf() {
        result.unwrap();
        for key in ["1", "2", "#"] {
            let expected = json!({"dtmf": key});
            expect(&mut events, &format!("dtmf {key} at the bot"), |e| {
                is_server_message(e, &expected).then_some(())
            })
            .await;
        }
    } else {
        assert_refused(result, "dtmf", release, &mut events).await;
    }
    assert!(client.send_client_request("ping", Value::Null).await.is_ok());
    client.disconnect().await.unwrap();
}

/// Checks that the client refused `feature` by the bot's version: the typed error naming the
/// bot's protocol, and the `unsupported-feature` event.
async fn assert_refused(
    result: Result<(), Error>,
    feature: &str,
    release: Release,
    events: &mut EventStream,
) {
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { feature: f, reason }
            if f == feature && reason.contains(release.rtvi_version())),
        "{err:?}"
    );
    expect(events, "unsupported-feature", |e| {
        matches!(e, ClientEvent::UnsupportedFeature { feature: f, .. } if f == feature)
            .then_some(())
    })
    .await;
}

/// `send-file` reaches bots of RTVI 2.2.0; older ones answer it with "Unsupported type", so
/// the client refuses it by their version. Sent raw anyway, it gets that answer.
async fn send_file_follows_the_bots_version(kind: Kind, release: Release) {
    let (_bot, client, mut events) = ready_session(kind, release).await;
    let file = SendFile {
        content: "see the notes".into(),
        file: FileData {
            format: "text/plain".into(),
            name: Some("notes.txt".into()),
            source: FileSource::Url { url: "pipecat:interop-notes".into() },
        },
        // Not now: no LLM would answer, and nothing fetches the URL.
        options: Some(SendFileOptions {
            run_immediately: Some(false),
            audio_response: Some(false),
            custom_options: None,
        }),
    };
    if release.accepts_send_file() {
        client.send_file(file).await.unwrap();
        let expected = json!({"file": {
            "text": "see the notes",
            "format": "text/plain",
            "name": "notes.txt",
            "type": "url",
            "file": "pipecat:interop-notes",
        }});
        expect(&mut events, "the file at the bot", |e| {
            is_server_message(e, &expected).then_some(())
        })
        .await;
    } else {
        assert_refused(client.send_file(file.clone()).await, "send-file", release, &mut events)
            .await;
        // What the refusal spares the caller.
        let id = client.send_message(ClientMessage::SendFile(file)).await.unwrap();
        let message = expect(&mut events, "error-response to send-file", |e| match e {
            ClientEvent::MessageError { id: Some(of), message } if *of == id => {
                Some(message.clone())
            }
            _ => None,
        })
        .await;
        assert!(message.contains("Unsupported type"), "{message}");
    }
    assert!(client.send_client_request("ping", Value::Null).await.is_ok());
    client.disconnect().await.unwrap();
}

/// The time from `start_bot_and_connect` to `ready`, median of 20 runs. A measurement, not a
/// test (ignored by default):
/// `cargo test -p pipecat-interop-tests --test interop -- --ignored --nocapture time_to_ready`
async fn time_to_ready_median_of_20(kind: Kind, release: Release) {
    let bot = kind.bot(release, &[]).await;
    let client = kind.quiet_client();
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        client.start_bot_and_connect(bot.start_request()).await.expect("ready");
        times.push(started.elapsed());
        client.disconnect().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    times.sort();
    let median = (times[9] + times[10]) / 2;
    eprintln!(
        "start_bot_and_connect -> ready over {kind:?} on {release}, 20 runs: median {:.1} ms \
         (min {:.1} ms, max {:.1} ms)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3
    );
}
