//! The media engine's behaviour, once for every transport: levels, mute, the pre-ready
//! hold, tracks, media states and device errors, the end of the microphone pipeline, and the
//! bot-audio flush. The wire is a channel ([`ChannelWire`]) and bot audio is pushed by hand,
//! as a transport's wire would. Device tests run on whatever machine runs them: without a
//! sound card (CI), opening a device is the error path.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_core::media::{DeviceKind, DeviceState, MediaControl, Participant, TrackInfo};
use pipecat_core::{TransportError, TransportEvent, TransportEventSink};
use pipecat_media::{
    AudioFormat, AudioFrame, AudioSink, AudioSource, MediaError, MemorySink, MemorySource,
    ToneGenerator,
};
use pipecat_media_engine::{AudioOptions, MediaEngine, MicWire, UplinkSpec, WireClosed};
use tokio::sync::mpsc;

/// Every wait of these tests.
const WAIT: Duration = Duration::from_secs(5);

/// The WebSocket transport's uplink: 16 kHz mono, 20 ms frames, 1 s held until ready.
const SPEC: UplinkSpec = UplinkSpec {
    format: AudioFormat::MONO_16K,
    frame_duration: Duration::from_millis(20),
    hold_until_ready: Some(Duration::from_secs(1)),
};

fn engine(options: AudioOptions, spec: UplinkSpec) -> MediaEngine {
    MediaEngine::new(options, spec, "websocket").expect("a valid spec")
}

/// The wire: every frame handed over goes to the test.
struct ChannelWire(mpsc::UnboundedSender<AudioFrame>);

#[async_trait]
impl MicWire for ChannelWire {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), WireClosed> {
        self.0.send(frame).map_err(|_| WireClosed)
    }
}

fn wire() -> (ChannelWire, mpsc::UnboundedReceiver<AudioFrame>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ChannelWire(tx), rx)
}

async fn next_frame(frames: &mut mpsc::UnboundedReceiver<AudioFrame>) -> AudioFrame {
    tokio::time::timeout(WAIT, frames.recv()).await.expect("a frame in time").expect("a frame")
}

/// Events of one sink, waited for with a bound.
struct Events(mpsc::UnboundedReceiver<(u64, TransportEvent)>);

impl Events {
    fn new(generation: u64) -> (TransportEventSink, Events) {
        let (sink, rx) = TransportEventSink::new(generation);
        (sink, Events(rx))
    }

    /// The next event matching `pred`, with its sink's generation.
    async fn wait(
        &mut self,
        what: &str,
        pred: impl Fn(&TransportEvent) -> bool,
    ) -> (u64, TransportEvent) {
        let found = tokio::time::timeout(WAIT, async {
            while let Some((generation, event)) = self.0.recv().await {
                if pred(&event) {
                    return Some((generation, event));
                }
            }
            None
        })
        .await;
        found.ok().flatten().unwrap_or_else(|| panic!("timed out waiting for {what}"))
    }

    fn drain(&mut self) -> Vec<TransportEvent> {
        std::iter::from_fn(|| self.0.try_recv().ok().map(|(_, e)| e)).collect()
    }

    /// The next `n` levels, local or remote.
    async fn levels(&mut self, remote: bool, n: usize) -> Vec<f32> {
        let mut out = Vec::new();
        while out.len() < n {
            match self
                .wait("a level", |e| {
                    matches!(
                        (remote, e),
                        (false, TransportEvent::LocalAudioLevel(_))
                            | (true, TransportEvent::RemoteAudioLevel(_))
                    )
                })
                .await
                .1
            {
                TransportEvent::LocalAudioLevel(l) | TransportEvent::RemoteAudioLevel(l) => {
                    out.push(l);
                }
                _ => unreachable!(),
            }
        }
        out
    }
}

fn is_local(track: &TrackInfo) -> bool {
    track.participant.as_ref().is_some_and(|p| p.local)
}

fn bot() -> Participant {
    Participant { id: "bot".into(), name: None, local: false }
}

/// `ms` of a 440 Hz sine at half of full scale (a level near 0.85).
fn tone(format: AudioFormat, ms: u32) -> Vec<i16> {
    let frames = format.frames_in(Duration::from_millis(u64::from(ms)));
    ToneGenerator::new(format, 440.0, 0.5).unwrap().frame(frames, Duration::ZERO).into_samples()
}

fn bot_frame(samples: Vec<i16>) -> AudioFrame {
    AudioFrame::new(samples, AudioFormat::MONO_24K, Duration::ZERO).unwrap()
}

#[tokio::test]
async fn the_microphone_is_converted_to_the_wires_format_and_frame_duration() {
    let (source, mic) = MemorySource::new(AudioFormat::new(48_000, 2)).unwrap();
    let engine = engine(AudioOptions::none().source(source), SPEC);
    let (events, _rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, mut frames) = wire();
    session.start_mic(wire, std::future::pending());
    session.bot_ready();
    mic.push(&tone(AudioFormat::new(48_000, 2), 100)).unwrap();
    for _ in 0..3 {
        let frame = next_frame(&mut frames).await;
        assert_eq!(frame.format(), AudioFormat::MONO_16K);
        assert_eq!(frame.duration(), Duration::from_millis(20));
    }
    session.stop().await;
}

#[tokio::test]
async fn levels_are_high_for_a_tone_and_near_zero_for_silence_both_ways() {
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let engine = engine(AudioOptions::none().source(source), SPEC);
    let (events, mut rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, _frames) = wire();
    session.start_mic(wire, std::future::pending());
    session.bot_ready();

    // Local: what is sent, in 100 ms windows.
    mic.push(&tone(AudioFormat::MONO_16K, 300)).unwrap();
    let loud = rx.levels(false, 3).await;
    assert!(loud.iter().all(|&l| l > 0.7), "tone levels {loud:?}");
    mic.push(&[0; 8_000]).unwrap(); // 500 ms of silence
    let quiet = rx.levels(false, 5).await;
    assert!(quiet[2..].iter().all(|&l| l < 0.05), "silence levels {quiet:?}");

    // Remote: the bot's audio, whatever its rate (40 ms frames at 24 kHz here).
    let mut stream = session.bot_audio().stream(bot());
    for chunk in tone(AudioFormat::MONO_24K, 320).chunks(960) {
        stream.push(bot_frame(chunk.to_vec()));
    }
    let loud = rx.levels(true, 3).await;
    assert!(loud.iter().all(|&l| l > 0.7), "bot tone levels {loud:?}");
    for _ in 0..13 {
        stream.push(bot_frame(vec![0; 960]));
    }
    let quiet = rx.levels(true, 5).await;
    assert!(quiet[2..].iter().all(|&l| l < 0.05), "bot silence levels {quiet:?}");
    session.stop().await;
}

#[tokio::test]
async fn a_muted_microphone_sends_zeroed_frames_at_the_sources_pace_and_meters_silence() {
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let engine = engine(AudioOptions::none().source(source).mic_enabled(false), SPEC);
    let (events, mut rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, mut frames) = wire();
    session.start_mic(wire, std::future::pending());
    session.bot_ready();
    mic.push(&tone(AudioFormat::MONO_16K, 300)).unwrap();
    let muted = rx.levels(false, 3).await;
    assert!(muted.iter().all(|&l| l == 0.0), "the level is measured after mute: {muted:?}");
    // The frames keep flowing, zeroed: the bot's input keeps its clock.
    for _ in 0..15 {
        assert!(next_frame(&mut frames).await.samples().iter().all(|&s| s == 0));
    }
    engine.enable_mic(true).await.unwrap();
    assert!(engine.is_mic_enabled());
    mic.push(&tone(AudioFormat::MONO_16K, 300)).unwrap();
    let live = rx.levels(false, 3).await;
    assert!(live.iter().all(|&l| l > 0.7), "{live:?}");
    session.stop().await;
}

#[tokio::test]
async fn audio_before_ready_is_held_and_the_local_track_starts_with_the_first_frame_sent() {
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let engine = engine(AudioOptions::none().source(source), SPEC);
    let (transport_events, mut transport_rx) = Events::new(0);
    engine.attach(transport_events);
    let (events, mut rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, mut frames) = wire();
    session.start_mic(wire, std::future::pending());

    mic.push(&[100; 640]).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(frames.try_recv().is_err(), "audio went out before the bot was ready");
    assert!(
        !rx.drain().iter().any(|e| matches!(e, TransportEvent::TrackStarted(_))),
        "a track started before anything was sent"
    );
    session.bot_ready();
    for _ in 0..2 {
        assert!(next_frame(&mut frames).await.samples().iter().all(|&s| s == 100));
    }
    let (generation, _) = rx
        .wait("local track", |e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t)))
        .await;
    assert_eq!(generation, 1, "TrackStarted belongs to the session");

    // The source ends: the local track stops, on the transport-level sink.
    mic.finish();
    let (generation, _) = transport_rx
        .wait(
            "local track stopped",
            |e| matches!(e, TransportEvent::TrackStopped(t) if is_local(t)),
        )
        .await;
    assert_eq!(generation, 0, "TrackStopped goes to the transport-level sink");
    session.stop().await;
}

#[tokio::test]
async fn the_bots_track_starts_with_its_first_frame_and_stops_with_its_stream() {
    let engine = engine(AudioOptions::none(), SPEC);
    let (transport_events, mut transport_rx) = Events::new(0);
    engine.attach(transport_events);
    let (events, mut rx) = Events::new(1);
    let session = engine.start_session(events);
    let mut stream = session.bot_audio().stream(bot());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.drain().is_empty(), "no track before the first frame");
    stream.push(bot_frame(vec![0; 960]));
    let (_, started) = rx
        .wait("bot track", |e| matches!(e, TransportEvent::TrackStarted(t) if !is_local(t)))
        .await;
    assert!(matches!(
        &started,
        TransportEvent::TrackStarted(t) if t.participant.as_ref().is_some_and(|p| p.id == "bot")
    ));
    drop(stream);
    let (generation, _) = transport_rx
        .wait("bot track stopped", |e| matches!(e, TransportEvent::TrackStopped(t) if !is_local(t)))
        .await;
    assert_eq!(generation, 0, "reported where the client still listens");
    session.stop().await;
}

#[tokio::test]
async fn the_local_track_stops_when_the_session_stops() {
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let engine = engine(AudioOptions::none().source(source), SPEC);
    let (events, mut rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, mut frames) = wire();
    session.start_mic(wire, std::future::pending());
    session.bot_ready();
    mic.push(&[5; 320]).unwrap();
    next_frame(&mut frames).await;
    rx.wait("local track", |e| matches!(e, TransportEvent::TrackStarted(t) if is_local(t))).await;
    session.stop().await;
    // Not attached: the end of the track goes to the session's sink.
    let (generation, _) = rx
        .wait(
            "local track stopped",
            |e| matches!(e, TransportEvent::TrackStopped(t) if is_local(t)),
        )
        .await;
    assert_eq!(generation, 1);
}

/// A source that never yields, and counts the reads in progress.
#[derive(Clone, Default)]
struct StuckSource(Arc<AtomicUsize>);

struct ReadGuard(Arc<AtomicUsize>);

impl Drop for ReadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl AudioSource for StuckSource {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_16K
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let _guard = ReadGuard(self.0.clone());
        std::future::pending::<()>().await;
        Ok(None)
    }
}

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_microphone_pipeline_stops_when_its_connection_ends() {
    let source = StuckSource::default();
    let reads = source.0.clone();
    let engine = engine(AudioOptions::none().source(source), SPEC);
    let (events, _rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, _frames) = wire();
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
    session.start_mic(wire, async move {
        let _ = ended_rx.await;
    });
    eventually("the source to be read", || reads.load(Ordering::SeqCst) == 1).await;
    // The connection ends by itself (the server closed it): nothing has been sent, so the
    // wire never reported closed; the source must still be let go.
    ended_tx.send(()).unwrap();
    eventually("the read to be dropped", || reads.load(Ordering::SeqCst) == 0).await;
    drop(session);
}

/// A sink that counts flushes.
#[derive(Clone, Default)]
struct FlushCounter(Arc<AtomicUsize>);

#[async_trait]
impl AudioSink for FlushCounter {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_24K
    }

    async fn write(&mut self, _frame: AudioFrame) -> Result<(), MediaError> {
        Ok(())
    }

    fn flush(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_interruption_flushes_the_sink_at_once() {
    let sink = FlushCounter::default();
    let flushes = sink.0.clone();
    let engine = engine(AudioOptions::none().sink(sink), SPEC);
    let (events, _rx) = Events::new(1);
    let session = engine.start_session(events);
    let mut stream = session.bot_audio().stream(bot());
    stream.push(bot_frame(vec![7; 960]));
    session.flush_bot_audio();
    eventually("the sink flushed", || flushes.load(Ordering::SeqCst) == 1).await;
    session.stop().await;
}

#[tokio::test]
async fn program_given_audio_ends_are_granted_and_no_device_is_selected() {
    let (source, _mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let (sink, _speaker) = MemorySink::new(AudioFormat::MONO_24K).unwrap();
    let engine = engine(AudioOptions::none().source(source).sink(sink), SPEC);
    let (transport_events, mut rx) = Events::new(0);
    engine.attach(transport_events);
    assert_eq!(engine.media_state().mic, DeviceState::Uninitialized);
    engine.init_devices().await.unwrap();
    let state = engine.media_state();
    assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
    assert_eq!(state.cam, DeviceState::Uninitialized);
    assert_eq!(engine.selected_mic(), None);
    assert_eq!(engine.selected_speaker(), None);
    let (generation, changed) =
        rx.wait("media state", |e| matches!(e, TransportEvent::MediaStateChanged(_))).await;
    assert_eq!(generation, 0, "device events are not tied to a session");
    assert!(
        matches!(changed, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Granted)
    );
    // Again: nothing to do, nothing reported.
    engine.init_devices().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again: Vec<_> = rx
        .drain()
        .into_iter()
        .filter(
            |e| matches!(e, TransportEvent::MediaStateChanged(s) if s.mic != DeviceState::Granted),
        )
        .collect();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn an_unusable_spec_is_a_typed_build_error() {
    let bad_rate = UplinkSpec { format: AudioFormat::new(0, 1), ..SPEC };
    assert!(matches!(
        MediaEngine::new(AudioOptions::none(), bad_rate, "websocket"),
        Err(pipecat_media_engine::BuildError::InvalidSampleRate(0))
    ));
    let too_long = UplinkSpec { frame_duration: Duration::from_secs(2), ..SPEC };
    assert!(matches!(
        MediaEngine::new(AudioOptions::none(), too_long, "websocket"),
        Err(pipecat_media_engine::BuildError::InvalidFrameDuration(_))
    ));
}

/// On this machine the default devices either open, or fail with a typed error naming the
/// headless alternatives, an `error` media state and a device error event. Without a sound
/// card (CI) it is the error path that runs.
#[cfg(feature = "devices")]
#[tokio::test]
async fn default_devices_open_or_fail_with_a_typed_error_naming_the_headless_types() {
    let engine = engine(AudioOptions::default(), SPEC);
    let (transport_events, mut rx) = Events::new(0);
    engine.attach(transport_events);
    match engine.init_devices().await {
        Ok(()) => {
            println!("default devices opened: {:?}", engine.selected_mic());
            let state = engine.media_state();
            assert_eq!((state.mic, state.speaker), (DeviceState::Granted, DeviceState::Granted));
            assert!(engine.selected_mic().is_some_and(|d| d.kind == DeviceKind::Mic));
            rx.wait("mic updated", |e| matches!(e, TransportEvent::MicUpdated(_))).await;
        }
        Err(err) => {
            println!("default devices unavailable (expected without a sound card): {err}");
            let TransportError::Media { message: text, .. } = &err else {
                panic!("not a media error: {err:?}")
            };
            for name in ["WavFileSource", "MemorySource", "ToneSource", "SilenceSource"] {
                assert!(text.contains(name), "{text}");
            }
            rx.wait("initializing", |e| {
                matches!(e, TransportEvent::MediaStateChanged(s) if s.mic == DeviceState::Initializing)
            })
            .await;
            let (_, error) =
                rx.wait("device error", |e| matches!(e, TransportEvent::DeviceError(_))).await;
            let TransportEvent::DeviceError(error) = error else { unreachable!() };
            assert!(matches!(error.device, DeviceKind::Mic | DeviceKind::Speaker), "{error:?}");
            assert!(!error.details.is_empty());
            let state = engine.media_state();
            let failed = [&state.mic, &state.speaker]
                .into_iter()
                .filter(|s| matches!(s, DeviceState::Error { .. }))
                .count();
            assert!(failed >= 1, "{state:?}");
            if matches!(state.mic, DeviceState::Error { .. }) {
                assert_eq!(engine.selected_mic(), None);
            }
            // A session would fail the same way, before any connection is made.
            assert!(matches!(engine.prepare().await, Err(TransportError::Media { .. })));
        }
    }
}

#[cfg(feature = "devices")]
#[tokio::test]
async fn devices_are_listed_with_the_clients_vocabulary() {
    let engine = engine(AudioOptions::none(), SPEC);
    let mics = engine.available_mics().expect("listing works without a sound card");
    let speakers = engine.available_speakers().expect("listing");
    println!("mics: {mics:?}\nspeakers: {speakers:?}");
    assert!(mics.iter().all(|d| d.kind == DeviceKind::Mic && d.id.contains(':')));
    assert!(speakers.iter().all(|d| d.kind == DeviceKind::Speaker));
    assert!(mics.iter().filter(|d| d.is_default).count() <= 1);
}

#[cfg(feature = "devices")]
#[tokio::test]
async fn switching_to_an_unknown_device_is_a_typed_error_and_the_given_source_stays() {
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let engine = engine(AudioOptions::none().source(source), SPEC);
    let (transport_events, mut rx) = Events::new(0);
    engine.attach(transport_events);
    // As a transport connects: what is not open yet opens first.
    engine.prepare().await.unwrap();
    let (events, _session_rx) = Events::new(1);
    let mut session = engine.start_session(events);
    let (wire, mut frames) = wire();
    session.start_mic(wire, std::future::pending());
    session.bot_ready();

    let err = engine.update_mic("no-such-microphone-7f3a").await.unwrap_err();
    let TransportError::Media { message: text, .. } = &err else { panic!("{err:?}") };
    assert!(text.contains("no-such-microphone-7f3a"), "{text}");
    let (_, error) = rx.wait("mic error", |e| matches!(e, TransportEvent::DeviceError(_))).await;
    assert!(
        matches!(&error, TransportEvent::DeviceError(d) if d.device == DeviceKind::Mic && d.kind == pipecat_core::media::DeviceErrorKind::NotFound),
        "{error:?}"
    );
    let err = engine.update_speaker("no-such-speaker-7f3a").await.unwrap_err();
    assert!(matches!(err, TransportError::Media { .. }), "{err:?}");
    let (_, error) =
        rx.wait("speaker error", |e| matches!(e, TransportEvent::DeviceError(_))).await;
    assert!(matches!(&error, TransportEvent::DeviceError(d) if d.device == DeviceKind::Speaker));

    // The program's source is still in use and granted.
    assert_eq!(engine.selected_mic(), None);
    assert_eq!(engine.media_state().mic, DeviceState::Granted);
    mic.push(&[321; 320]).unwrap();
    assert!(next_frame(&mut frames).await.samples().iter().all(|&s| s == 321));
    session.stop().await;
}

#[cfg(not(feature = "devices"))]
#[tokio::test]
async fn without_the_devices_feature_defaults_are_a_clear_error_naming_the_transport() {
    let engine = engine(AudioOptions::default(), SPEC);
    let (transport_events, mut rx) = Events::new(0);
    engine.attach(transport_events);
    let err = engine.prepare().await.unwrap_err();
    let TransportError::Media { message: text, .. } = &err else { panic!("{err:?}") };
    assert!(text.contains("`devices` feature of pipecat-websocket"), "{text}");
    assert!(text.contains("MemorySource") && text.contains("without_audio"), "{text}");
    assert!(matches!(engine.media_state().mic, DeviceState::Error { .. }));
    rx.wait(
        "mic error",
        |e| matches!(e, TransportEvent::DeviceError(d) if d.device == DeviceKind::Mic),
    )
    .await;
    assert!(matches!(engine.available_mics(), Err(TransportError::Unsupported { .. })));
    assert!(matches!(engine.update_mic("x").await, Err(TransportError::Unsupported { .. })));
    // A given source and sink need no feature.
    let engine = engine_with_given_ends();
    engine.init_devices().await.unwrap();
}

#[cfg(not(feature = "devices"))]
fn engine_with_given_ends() -> MediaEngine {
    let options = AudioOptions::none()
        .source(MemorySource::new(AudioFormat::MONO_16K).unwrap().0)
        .sink(pipecat_media::NullSink::new(AudioFormat::MONO_24K));
    engine(options, SPEC)
}

/// A sink that counts `close` calls.
#[derive(Clone, Default)]
struct CloseCounter(Arc<AtomicUsize>);

#[async_trait]
impl AudioSink for CloseCounter {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_24K
    }

    async fn write(&mut self, _frame: AudioFrame) -> Result<(), MediaError> {
        Ok(())
    }

    fn flush(&mut self) {}

    async fn close(&mut self) -> Result<(), MediaError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn dropping_the_engine_closes_its_sink_once_and_sessions_do_not() {
    let sink = CloseCounter::default();
    let closes = sink.0.clone();
    let transport_media = engine(AudioOptions::none().sink(sink), SPEC);
    for generation in 1..=2 {
        let (events, _rx) = Events::new(generation);
        let session = transport_media.start_session(events);
        session.bot_audio().stream(bot()).push(bot_frame(vec![1; 960]));
        session.stop().await;
    }
    assert_eq!(closes.load(Ordering::SeqCst), 0, "a reused transport keeps its sink open");
    drop(transport_media);
    assert_eq!(closes.load(Ordering::SeqCst), 1, "the sink is closed when the transport goes");

    // Closed by the program first: closing again on drop is the sink's no-op.
    let sink = CloseCounter::default();
    let closes = sink.0.clone();
    let closed_first = engine(AudioOptions::none().sink(sink), SPEC);
    closed_first.close_sink().await.unwrap();
    drop(closed_first);
    assert_eq!(closes.load(Ordering::SeqCst), 2);
}
