//! The SmallWebRTC wire of the media engine, against the testkit bot of `common`: no audio
//! without a source, the local Opus track and the bot's track. The engine's own behaviour
//! (levels, tracks, devices, media states) is tested once, in
//! `crates/media-engine/tests/engine.rs`.

use pipecat_small_webrtc::AudioBuilder;
use std::time::Duration;

use pipecat_core::media::{DeviceState, TrackInfo};
use pipecat_core::{Transport, TransportEvent};
use pipecat_media::{AudioFormat, NullSink, ToneSource};
use pipecat_small_webrtc::SmallWebRtcTransport;

mod common;
use common::*;

fn is_local(track: &TrackInfo) -> bool {
    track.participant.as_ref().is_some_and(|p| p.local)
}

fn quiet_transport() -> SmallWebRtcTransport {
    SmallWebRtcTransport::builder().loopback_only().without_audio().build().unwrap()
}

/// A transport whose microphone is a paced tone that ends after 600 ms.
fn short_tone_transport() -> SmallWebRtcTransport {
    let source = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3)
        .unwrap()
        .paced(true)
        .limit(Duration::from_millis(600));
    SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(Box::new(source))
        .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_audio_the_microphone_and_speaker_are_granted() {
    let bot = bot().await;
    let transport = quiet_transport();
    let (sink, _events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(&bot), sink)).await.unwrap().unwrap();
    let state = transport.media().unwrap().media_state();
    assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_audio_the_bot_audio_still_arrives() {
    let bot = bot().await;
    let transport = quiet_transport();
    let (sink, mut events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(&bot), sink)).await.unwrap().unwrap();
    // The testkit bot sends silence when idle; it arrives (and is discarded).
    events.wait_for("bot audio", |e| matches!(e, TransportEvent::RemoteAudioLevel(_))).await;
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_audio_nothing_is_sent_and_no_local_track_starts() {
    let bot = bot().await;
    let transport = quiet_transport();
    let (sink, mut events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(&bot), sink)).await.unwrap().unwrap();
    events.wait_for("bot audio", |e| matches!(e, TransportEvent::RemoteAudioLevel(_))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bot.recorder().audio_stats().frames, 0, "without_audio sends no audio");
    assert!(
        !events.drain().iter().any(|e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t))),
        "no local track without audio"
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_and_bot_tracks_start_with_the_session() {
    let bot = bot().await;
    let transport = short_tone_transport();
    let (session, mut events) = Events::new(1);
    transport.attach(session.with_generation(0));
    tokio::time::timeout(WAIT, transport.connect(params(&bot), session)).await.unwrap().unwrap();

    let (generation, _) = events
        .wait_tagged(
            "local track started",
            |e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t)),
        )
        .await;
    assert_eq!(generation, 1, "TrackStarted belongs to the session");
    let bot_track = events
        .wait_for(
            "bot track started",
            |e| matches!(e, TransportEvent::TrackStarted(t) if !is_local(t)),
        )
        .await;
    assert!(matches!(
        &bot_track,
        TransportEvent::TrackStarted(t) if t.participant.as_ref().is_some_and(|p| p.id == "bot")
    ));
    bot.recorder().wait_for_audio(WAIT, |a| a.frames > 5).await.expect("our audio at the bot");
    transport.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_track_stops_with_the_source_and_the_session_goes_on() {
    let bot = bot().await;
    let transport = short_tone_transport();
    let (session, mut events) = Events::new(1);
    transport.attach(session.with_generation(0));
    tokio::time::timeout(WAIT, transport.connect(params(&bot), session)).await.unwrap().unwrap();

    // The source ends: the local track stops, on the transport-level sink.
    let (generation, _) = events
        .wait_tagged(
            "local track stopped",
            |e| matches!(e, TransportEvent::TrackStopped(t) if is_local(t)),
        )
        .await;
    assert_eq!(generation, 0, "TrackStopped goes to the transport-level sink");
    transport.send_message(ping("m1")).await.unwrap();
    events.wait_for("the bot's reply", |e| is_message_with_id(e, "m1")).await;
    transport.disconnect().await.unwrap();
}
