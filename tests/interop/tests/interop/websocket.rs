//! What only the WebSocket transport has: the `/start` answer's URL and token, the runner's
//! one-time tokens (`--ws-auth`), and PCM pushed by the program.

use std::time::Duration;

use pipecat_core::{ConnectionParams, Error, TransportError, TransportState};
use pipecat_media::{AudioFormat, MemorySink, MemorySource, ToneGenerator};
use pipecat_websocket::AudioOptions;

use crate::common::*;

const KIND: Kind = Kind::WebSocket;

per_release!(
    start_answer_names_the_websocket_url_and_the_token,
    session_tokens_follow_the_runner,
    pcm_pushed_by_the_program_comes_back_to_an_in_memory_sink,
);

async fn start_answer_names_the_websocket_url_and_the_token(release: Release) {
    let bot = KIND.bot(release, &[]).await;
    let client = KIND.quiet_client();
    let started = start_and_connect(&client, &bot).await;
    assert!(started["wsUrl"].as_str().is_some_and(|u| u.starts_with("ws://localhost:")));
    // No --ws-auth: the runner sends token null, except 1.3's fixed "mock_token", which the
    // client sends back as `?token=mock_token` and the runner ignores.
    assert_eq!(started["token"].as_str(), release.websocket_start_token(), "{started}");
    client.disconnect().await.unwrap();
}

/// With `--ws-auth token` (1.12 and later) the `/start` token opens `/ws-client` once; a
/// second use is refused (HTTP 403 / close 4003). 1.3's runner has no such option: its
/// `/start` always answers `"mock_token"`, and any number of sessions use it.
async fn session_tokens_follow_the_runner(release: Release) {
    let extra: &[&str] = if release.has_ws_auth() { &["--ws-auth", "token"] } else { &[] };
    let bot = KIND.bot(release, extra).await;
    let client = KIND.quiet_client();
    let answer = client.start_bot(bot.start_request()).await.expect("start answer");
    let token = answer["token"].as_str().unwrap_or_default().to_owned();
    assert!(!token.is_empty(), "{answer}");
    let ready = client.connect(ConnectionParams::from_json(answer.clone()).unwrap()).await;
    assert_bot_ready(&ready.expect("ready with the runner's token"), release);
    client.disconnect().await.unwrap();

    let again = client.connect(ConnectionParams::from_json(answer).unwrap()).await;
    if release.has_ws_auth() {
        let err = again.unwrap_err();
        assert!(
            matches!(err, Error::Transport(TransportError::Authentication(_))),
            "expected an authentication error, got {err:?}"
        );
        assert_eq!(client.state(), TransportState::Disconnected);
    } else {
        assert_eq!(Some(token.as_str()), release.websocket_start_token());
        assert_bot_ready(&again.expect("ready with the same mock token"), release);
        client.disconnect().await.unwrap();
    }
}

async fn pcm_pushed_by_the_program_comes_back_to_an_in_memory_sink(release: Release) {
    const HZ: f64 = 523.25;
    let bot = KIND.bot(release, &[]).await;
    // The program pushes 1.2 s of PCM at 24 kHz, paced by the source; the bot's audio is
    // pulled from memory.
    let (source, mic) = MemorySource::new(AudioFormat::MONO_24K).unwrap();
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let (client, _transport) =
        KIND.client(AudioOptions::none().source(source.paced(true)).sink(sink));
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
    assert_echo("in-memory echo", &loud, HZ, &KIND.echo_tolerance());
}
