//! The transport's media: media states and device errors, track events, and audio that keeps
//! flowing through a failed device switch, against the hermetic fake bot of `common`. Device
//! tests run on whatever machine runs them: without a sound card (CI), opening a device is the
//! error path.

use std::time::Duration;

use pipecat_core::media::{DeviceKind, DeviceState, TrackInfo};
use pipecat_core::{Transport, TransportError, TransportEvent};
use pipecat_media::{AudioFormat, MemorySink, MemorySource, NullSink, ToneSource};
use pipecat_small_webrtc::SmallWebRtcTransport;

mod common;
use common::*;

fn is_local(track: &TrackInfo) -> bool {
    track.participant.as_ref().is_some_and(|p| p.local)
}

/// A paced 48 kHz tone, as a live microphone would deliver it.
fn live_tone() -> Box<ToneSource> {
    Box::new(ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3).unwrap().paced(true))
}

#[tokio::test]
async fn program_given_audio_ends_are_granted_and_no_device_is_selected() {
    let (source, _mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let (sink, _speaker) = MemorySink::new(AudioFormat::MONO_48K).unwrap();
    let transport = SmallWebRtcTransport::builder()
        .audio_source(Box::new(source))
        .audio_sink(Box::new(sink))
        .build()
        .unwrap();
    let (transport_sink, mut events) = Events::new(0);
    transport.attach(transport_sink);
    assert_eq!(transport.media_state().mic, DeviceState::Uninitialized);
    transport.init_devices().await.unwrap();
    let state = transport.media_state();
    assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
    assert_eq!(state.cam, DeviceState::Uninitialized);
    assert_eq!(transport.selected_mic(), None);
    assert_eq!(transport.selected_speaker(), None);
    let (generation, changed) = events
        .wait_tagged("media state", |e| matches!(e, TransportEvent::MediaStateChanged(_)))
        .await;
    assert_eq!(generation, 0, "device events are not tied to a session");
    assert!(
        matches!(changed, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Granted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_audio_connects_and_sends_nothing() {
    let (bot, addr) = Bot::start().await;
    let transport =
        SmallWebRtcTransport::builder().loopback_only().without_audio().build().unwrap();
    let (sink, mut events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(addr), sink)).await.unwrap().unwrap();
    let state = transport.media_state();
    assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
    // The bot's audio still arrives (and is discarded).
    events.wait_for("bot audio", |e| matches!(e, TransportEvent::RemoteAudioLevel(_))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bot.log(|l| l.audio_packets), 0, "without_audio sends no audio");
    assert!(
        !events.drain().iter().any(|e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t))),
        "no local track without audio"
    );
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracks_start_with_audio_and_stop_with_the_source() {
    let (bot, addr) = Bot::start().await;
    let source = ToneSource::new(AudioFormat::MONO_48K, 440.0, 0.3)
        .unwrap()
        .paced(true)
        .limit(Duration::from_millis(600));
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(Box::new(source))
        .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
        .build()
        .unwrap();
    let (session, mut events) = Events::new(1);
    transport.attach(session.with_generation(0));
    tokio::time::timeout(WAIT, transport.connect(params(addr), session)).await.unwrap().unwrap();

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
    bot.wait_for("our audio", |l| l.audio_packets > 5).await;

    // The source ends: the local track stops, on the transport-level sink; the session goes on.
    let (generation, _) = events
        .wait_tagged(
            "local track stopped",
            |e| matches!(e, TransportEvent::TrackStopped(t) if is_local(t)),
        )
        .await;
    assert_eq!(generation, 0, "TrackStopped goes to the transport-level sink");
    transport.send_message(rtvi("client-message", "m1", serde_json::json!({}))).await.unwrap();
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_track_stops_when_the_session_stops() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(live_tone())
        .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
        .build()
        .unwrap();
    let (session, mut events) = Events::new(1);
    tokio::time::timeout(WAIT, transport.connect(params(addr), session)).await.unwrap().unwrap();
    events
        .wait_for(
            "local track started",
            |e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t)),
        )
        .await;
    // Not attached: the end of the track goes to the session's sink.
    transport.disconnect().await.unwrap();
    let (generation, _) = events
        .wait_tagged(
            "local track stopped",
            |e| matches!(e, TransportEvent::TrackStopped(t) if is_local(t)),
        )
        .await;
    assert_eq!(generation, 1);
    bot.shutdown_peers().await;
}

/// On this machine the default devices either open, or fail with a typed error naming the
/// headless alternatives, an `error` media state and a device error event. Without a sound
/// card (CI) it is the error path that runs.
#[cfg(feature = "devices")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_devices_open_or_fail_with_a_typed_error_naming_the_headless_types() {
    let transport = SmallWebRtcTransport::builder().loopback_only().build().unwrap();
    let (transport_sink, mut events) = Events::new(0);
    transport.attach(transport_sink);
    match transport.init_devices().await {
        Ok(()) => {
            println!(
                "default devices opened: {:?} {:?}",
                transport.selected_mic(),
                transport.selected_speaker()
            );
            let state = transport.media_state();
            assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
            assert!(transport.selected_mic().is_some_and(|d| d.kind == DeviceKind::Mic));
            events.wait_for("mic updated", |e| matches!(e, TransportEvent::MicUpdated(_))).await;
        }
        Err(err) => {
            println!("default devices unavailable (expected without a sound card): {err}");
            let TransportError::Media(text) = &err else { panic!("not a media error: {err:?}") };
            for name in [
                "SmallWebRtcTransportBuilder::audio_source",
                "WavFileSource",
                "MemorySource",
                "ToneSource",
                "SilenceSource",
                "without_audio",
            ] {
                assert!(text.contains(name), "{text}");
            }
            events
                .wait_for("initializing", |e| {
                    matches!(e, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Initializing)
                })
                .await;
            let error = events
                .wait_for("device error", |e| matches!(e, TransportEvent::DeviceError(_)))
                .await;
            let TransportEvent::DeviceError(error) = error else { unreachable!() };
            assert!(matches!(error.device, DeviceKind::Mic | DeviceKind::Speaker), "{error:?}");
            assert!(!error.details.is_empty());
            let state = transport.media_state();
            let failed = [&state.mic, &state.speaker]
                .into_iter()
                .filter(|s| matches!(s, DeviceState::Error { .. }))
                .count();
            assert!(failed >= 1, "{state:?}");
            if matches!(state.mic, DeviceState::Error { .. }) {
                assert_eq!(transport.selected_mic(), None);
            }

            // Connecting with these defaults fails the same way, before any offer is made.
            let (bot, addr) = Bot::start().await;
            let (session, _session_events) = Events::new(1);
            let err = transport.connect(params(addr), session).await.unwrap_err();
            assert!(
                matches!(&err, TransportError::Media(t) if t.contains("MemorySource") || t.contains("MemorySink")),
                "{err:?}"
            );
            assert_eq!(bot.log(|l| l.offers.len()), 0, "no offer for a session without audio");
        }
    }
}

#[cfg(feature = "devices")]
#[tokio::test]
async fn devices_are_listed_with_the_clients_vocabulary() {
    let transport = SmallWebRtcTransport::builder().without_audio().build().unwrap();
    let mics = transport.available_mics().expect("listing works without a sound card");
    let speakers = transport.available_speakers().expect("listing");
    println!("mics: {mics:?}\nspeakers: {speakers:?}");
    assert!(mics.iter().all(|d| d.kind == DeviceKind::Mic));
    assert!(speakers.iter().all(|d| d.kind == DeviceKind::Speaker));
    assert!(mics.iter().filter(|d| d.is_default).count() <= 1);
}

#[cfg(feature = "devices")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_an_unknown_device_is_a_typed_error_and_audio_keeps_flowing() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder()
        .loopback_only()
        .audio_source(live_tone())
        .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
        .build()
        .unwrap();
    let (session, mut events) = Events::new(1);
    transport.attach(session.with_generation(0));
    tokio::time::timeout(WAIT, transport.connect(params(addr), session)).await.unwrap().unwrap();
    bot.wait_for("our audio", |l| l.audio_packets > 5).await;

    let err = transport.update_mic("no-such-microphone-7f3a").await.unwrap_err();
    let TransportError::Media(text) = &err else { panic!("{err:?}") };
    assert!(text.contains("no-such-microphone-7f3a"), "{text}");
    let error =
        events.wait_for("mic device error", |e| matches!(e, TransportEvent::DeviceError(_))).await;
    assert!(
        matches!(&error, TransportEvent::DeviceError(d) if d.device == DeviceKind::Mic && d.kind == pipecat_core::media::DeviceErrorKind::NotFound),
        "{error:?}"
    );
    let err = transport.update_speaker("no-such-speaker-7f3a").await.unwrap_err();
    assert!(matches!(err, TransportError::Media(_)), "{err:?}");
    events
        .wait_for(
            "speaker device error",
            |e| matches!(e, TransportEvent::DeviceError(d) if d.device == DeviceKind::Speaker),
        )
        .await;

    // The program's source is still in use and granted, and its audio still reaches the bot.
    assert_eq!(transport.selected_mic(), None);
    assert_eq!(transport.media_state().mic, DeviceState::Granted);
    let before = bot.log(|l| l.audio_packets);
    bot.wait_for("more audio after the failed switch", |l| l.audio_packets > before + 10).await;
    transport.disconnect().await.unwrap();
    bot.shutdown_peers().await;
}

#[cfg(not(feature = "devices"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_devices_feature_defaults_are_a_clear_error() {
    let (bot, addr) = Bot::start().await;
    let transport = SmallWebRtcTransport::builder().loopback_only().build().unwrap();
    let (transport_sink, mut events) = Events::new(0);
    transport.attach(transport_sink);
    let (session, _session_events) = Events::new(1);
    let err = transport.connect(params(addr), session).await.unwrap_err();
    let TransportError::Media(text) = &err else { panic!("{err:?}") };
    assert!(text.contains("`devices` feature"), "{text}");
    assert!(text.contains("pipecat-small-webrtc"), "{text}");
    assert!(text.contains("MemorySource") && text.contains("without_audio"), "{text}");
    assert!(matches!(transport.media_state().mic, DeviceState::Error { .. }));
    events
        .wait_for(
            "mic device error",
            |e| matches!(e, TransportEvent::DeviceError(d) if d.device == DeviceKind::Mic),
        )
        .await;
    assert_eq!(bot.log(|l| l.offers.len()), 0);
    assert!(matches!(transport.available_mics(), Err(TransportError::Unsupported { .. })));
    assert!(matches!(transport.update_mic("x").await, Err(TransportError::Unsupported { .. })));
    // A given source and sink need no feature.
    let transport = SmallWebRtcTransport::builder()
        .audio_source(Box::new(MemorySource::new(AudioFormat::MONO_16K).unwrap().0))
        .audio_sink(Box::new(NullSink::new(AudioFormat::MONO_48K)))
        .build()
        .unwrap();
    transport.init_devices().await.unwrap();
}
