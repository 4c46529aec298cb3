//! The Daily transport's session logic, end to end through the core `Transport` trait, against
//! the synthetic scripted backend. Deterministic: Tokio's paused clock, no network.

use pipecat_daily::AudioBuilder;
use std::time::Duration;

use pipecat_core::{
    ApiRequest, ConnectionParams, Transport, TransportError, TransportEvent, TransportEventSink,
};
use pipecat_daily::backend::scripted::parse_script;
use pipecat_daily::backend::{
    BackendError, JoinFailure, JoinInfo, ScriptStep, ScriptedBackend, ScriptedHandle,
};
use pipecat_daily::{DailyTransport, Recipient, daily_error};
use pipecat_media::{AudioFormat, AudioFrame, MemorySink, MemorySource};
use pipecat_rtvi::{ClientEnvelope, ServerEnvelope, ServerMessage};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

type Events = UnboundedReceiver<(u64, TransportEvent)>;

const ROOM: &str = "https://acme.daily.co/pipecat-test";

fn params() -> ConnectionParams {
    ConnectionParams::from_json(json!({"dailyRoom": ROOM, "dailyToken": "tok", "sessionId": "s1"}))
        .unwrap()
}

fn bot(action: &str, mic: &str) -> ScriptStep {
    ScriptStep::participant(action, "bot-1", "Pipecat Bot", mic)
}

fn bot_ready_reply() -> Vec<ScriptStep> {
    vec![ScriptStep::app_message(
        json!({"label": "rtvi-ai", "type": "bot-ready", "id": "$id", "data": {"version": "2.2.0", "about": {"library": "pipecat-ai"}}}),
        "bot-1",
    )]
}

fn client_ready() -> (String, String) {
    let ready = ClientEnvelope::client_ready();
    (ready.id.clone(), ready.to_json().unwrap())
}

/// The next event other than audio levels, within 10 s of (paused) time.
async fn next(events: &mut Events) -> TransportEvent {
    loop {
        let (_, event) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .expect("the event channel is open");
        if !is_media_noise(&event) {
            return event;
        }
    }
}

/// Levels, and the media engine's own audio tracks (the local one and the virtual speaker's
/// "bot"), which come whenever audio flows.
fn is_media_noise(event: &TransportEvent) -> bool {
    let engine_track = |t: &pipecat_core::media::TrackInfo| {
        t.participant.as_ref().is_some_and(|p| p.local || p.id == "bot")
    };
    match event {
        TransportEvent::LocalAudioLevel(_) | TransportEvent::RemoteAudioLevel(_) => true,
        TransportEvent::TrackStarted(t) | TransportEvent::TrackStopped(t) => engine_track(t),
        _ => false,
    }
}

/// No event other than audio levels within 1 s of (paused) time.
async fn quiet(events: &mut Events) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return,
            Ok(None) => return,
            Ok(Some((
                _,
                TransportEvent::LocalAudioLevel(_) | TransportEvent::RemoteAudioLevel(_),
            ))) => {}
            Ok(Some((_, other))) => panic!("unexpected event {other:?}"),
        }
    }
}

async fn connect(backend: ScriptedBackend) -> (DailyTransport, Events) {
    let transport = DailyTransport::builder(backend).build().unwrap();
    let (sink, events) = TransportEventSink::new(1);
    transport.connect(params(), sink).await.expect("connect");
    (transport, events)
}

#[tokio::test(start_paused = true)]
async fn full_session_join_bot_ready_messages_bot_leaves_disconnect() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend
        .after_join(vec![
            ScriptStep::Event(json!({"action": "call-state-updated", "state": "joined"})),
            ScriptStep::Event(json!({"action": "participant-joined", "participant": {"id": "me", "info": {"isLocal": true}}})),
            ScriptStep::Wait(Duration::from_millis(200)),
            bot("participant-joined", "loading"),
            ScriptStep::Wait(Duration::from_millis(300)),
            bot("participant-updated", "playable"),
        ])
        .reply_to("client-ready", bot_ready_reply());
    let (transport, mut events) = connect(backend).await;
    assert!(transport.is_connected());
    assert!(transport.is_synthetic());
    let request = &handle.join_requests()[0];
    assert_eq!(request.room_url, ROOM);
    assert_eq!(request.token.as_deref(), Some("tok"));

    // The client sends client-ready right away; the transport holds it.
    let (ready_id, ready) = client_ready();
    transport.send_client_ready(ready).await.unwrap();
    assert!(handle.sent().is_empty(), "client-ready must wait for the bot's audio");

    match next(&mut events).await {
        TransportEvent::BotConnected(p) => {
            assert_eq!(
                (p.id.as_str(), p.name.as_deref(), p.local),
                ("bot-1", Some("Pipecat Bot"), false)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(handle.sent().is_empty());
    assert!(
        matches!(next(&mut events).await, TransportEvent::TrackStarted(t) if t.participant.as_ref().unwrap().id == "bot-1")
    );
    // Released once, broadcast, as the RTVI object itself; the bot answers with bot-ready.
    match next(&mut events).await {
        TransportEvent::Message(text) => {
            let envelope = ServerEnvelope::parse(&text).unwrap();
            assert_eq!(envelope.id.as_deref(), Some(ready_id.as_str()));
            assert!(matches!(envelope.message, ServerMessage::BotReady(_)));
        }
        other => panic!("{other:?}"),
    }
    let sent = handle.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, Recipient::All);
    assert_eq!(sent[0].0["label"], "rtvi-ai");
    assert_eq!(sent[0].0["type"], "client-ready");
    assert_eq!(sent[0].0["id"], ready_id.as_str());
    assert_eq!(transport.bot().unwrap().id, "bot-1");
    transport.bot_ready();

    // Client to bot.
    let message = ClientEnvelope::client_message("ping", Some(json!({"x": 1}))).to_json().unwrap();
    transport.send_message(message).await.unwrap();
    assert_eq!(handle.sent_types(), ["client-ready", "client-message"]);
    assert_eq!(handle.sent()[1].0["data"]["t"], "ping");

    // Bot to client: RTVI goes up, other app-messages do not.
    handle.emit(json!({"action": "app-message", "from": "bot-1", "msgData": {"label": "chat", "text": "hi"}}));
    handle.emit(json!({"action": "app-message", "from": "bot-1", "msgData": {"label": "rtvi-ai", "type": "server-message", "data": {"hello": "world"}}}));
    match next(&mut events).await {
        TransportEvent::Message(text) => {
            assert!(text.contains("server-message") && text.contains("world"))
        }
        other => panic!("{other:?}"),
    }

    // Another participant comes and goes; then the bot leaves.
    handle.emit(json!({"action": "participant-joined", "participant": {"id": "u2", "info": {"isLocal": false, "userName": "Eve"}}}));
    assert!(
        matches!(next(&mut events).await, TransportEvent::ParticipantJoined(p) if p.id == "u2")
    );
    handle.emit(json!({"action": "participant-left", "participant": {"id": "u2", "info": {"isLocal": false}}, "reason": "leftCall"}));
    assert!(matches!(next(&mut events).await, TransportEvent::ParticipantLeft(p) if p.id == "u2"));
    handle.emit(json!({"action": "participant-left", "participant": {"id": "bot-1", "info": {"isLocal": false}}, "reason": "leftCall"}));
    assert!(matches!(next(&mut events).await, TransportEvent::TrackStopped(_)));
    match next(&mut events).await {
        TransportEvent::BotDisconnected { reason } => {
            assert!(reason.contains("leftCall"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(transport.bot().is_none());

    // Disconnect: leaves once, idempotent, nothing sent afterwards.
    transport.disconnect().await.unwrap();
    assert_eq!(handle.leaves(), 1);
    assert!(!transport.is_connected());
    assert!(matches!(
        transport.send_message(ClientEnvelope::disconnect_bot().to_json().unwrap()).await,
        Err(TransportError::NotConnected)
    ));
    transport.disconnect().await.unwrap();
    assert_eq!(handle.leaves(), 1);
    // Events after leaving are not reported.
    assert!(!handle.emit(json!({"action": "error", "message": "late"})));
    quiet(&mut events).await;
}

#[tokio::test(start_paused = true)]
async fn ready_goes_at_once_when_the_room_snapshot_has_the_bot_playing() {
    let (backend, handle) = ScriptedBackend::new();
    let snapshot = json!({
        "local": {"id": "me", "info": {"isLocal": true}},
        "bot-1": {"id": "bot-1", "info": {"isLocal": false, "userName": "Bot"}, "media": {"microphone": {"state": "playable"}}}
    });
    let backend = backend
        .join_result(Ok(JoinInfo { participants: Some(snapshot), ..JoinInfo::default() }))
        .reply_to("client-ready", bot_ready_reply());
    let (transport, mut events) = connect(backend).await;
    // Reported during connect, before it returned.
    assert!(
        matches!(events.try_recv().unwrap().1, TransportEvent::BotConnected(p) if p.id == "bot-1")
    );
    assert!(matches!(events.try_recv().unwrap().1, TransportEvent::TrackStarted(_)));
    let (_, ready) = client_ready();
    transport.send_client_ready(ready).await.unwrap();
    assert_eq!(handle.sent_types(), ["client-ready"]);
    assert!(
        matches!(next(&mut events).await, TransportEvent::Message(m) if m.contains("bot-ready"))
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn other_participants_audio_does_not_release_client_ready() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.after_join(vec![
        bot("participant-joined", "off"),
        ScriptStep::participant("participant-joined", "user-2", "Eve", "playable"),
    ]);
    let (transport, mut events) = connect(backend).await;
    let (_, ready) = client_ready();
    transport.send_client_ready(ready).await.unwrap();
    assert!(matches!(next(&mut events).await, TransportEvent::BotConnected(_)));
    assert!(matches!(next(&mut events).await, TransportEvent::ParticipantJoined(_)));
    quiet(&mut events).await;
    assert!(handle.sent().is_empty());
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn join_failures_are_typed() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend
        .join_result(Err(BackendError::JoinFailed {
            kind: JoinFailure::RoomLookup,
            message: "Connection(Api(RoomLookup(RoomInfoFetchFailed(…))))".into(),
        }))
        .join_result(Err(BackendError::JoinFailed {
            kind: JoinFailure::Authentication,
            message: "meeting token rejected".into(),
        }))
        .join_result(Err(BackendError::Unavailable {
            backend: "scripted",
            reason: "no engine".into(),
        }));
    let transport = DailyTransport::builder(backend).build().unwrap();
    let (sink, _events) = TransportEventSink::new(1);

    let error = transport.connect(params(), sink.clone()).await.unwrap_err();
    assert!(matches!(error, TransportError::ConnectFailed { .. }), "{error:?}");
    assert!(
        error.to_string().contains(ROOM) && error.to_string().contains("room lookup failed"),
        "{error}"
    );
    assert!(matches!(
        daily_error(&error),
        Some(BackendError::JoinFailed { kind: JoinFailure::RoomLookup, .. })
    ));

    let error = transport.connect(params(), sink.clone()).await.unwrap_err();
    assert!(matches!(error, TransportError::Authentication(_)), "{error:?}");

    let error = transport.connect(params(), sink.clone()).await.unwrap_err();
    assert!(matches!(daily_error(&error), Some(BackendError::Unavailable { .. })), "{error:?}");

    assert!(!transport.is_connected());
    // Each failed join was cleaned up with a leave.
    assert_eq!(handle.leaves(), 3);
    assert!(matches!(
        transport.send_client_ready("{}".into()).await,
        Err(TransportError::NotConnected)
    ));
}

#[tokio::test(start_paused = true)]
async fn join_timeout_is_bounded_and_typed() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.join_delay(Duration::from_secs(3600));
    let transport =
        DailyTransport::builder(backend).join_timeout(Duration::from_secs(5)).build().unwrap();
    let (sink, _events) = TransportEventSink::new(1);
    let start = tokio::time::Instant::now();
    let error = transport.connect(params(), sink).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    match error {
        TransportError::Timeout { what, after } => {
            assert!(what.contains("joining"), "{what}");
            assert_eq!(after, Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(handle.leaves(), 1);
}

#[tokio::test(start_paused = true)]
async fn invalid_params_are_typed_and_nothing_is_joined() {
    let (backend, handle) = ScriptedBackend::new();
    let transport = DailyTransport::builder(backend).build().unwrap();
    let (sink, _events) = TransportEventSink::new(1);
    for bad in [
        json!({"sessionId": "s"}),
        json!({"dailyRoom": "http://acme.daily.co/r"}),
        json!({"dailyRoom": 42}),
        json!({"dailyRoom": "https://acme.daily.co/"}),
    ] {
        let error = transport
            .connect(ConnectionParams::from_json(bad.clone()).unwrap(), sink.clone())
            .await
            .unwrap_err();
        assert!(matches!(error, TransportError::InvalidParams(_)), "{bad}: {error:?}");
    }
    assert!(handle.join_requests().is_empty());

    // The start response is checked when it is mapped, and keeps its request.
    let start = ApiRequest::new("http://localhost:8080/start");
    assert!(matches!(
        transport.map_start_response(json!({"sessionId": "s"}), &start),
        Err(TransportError::InvalidParams(_))
    ));
    let mapped = transport
        .map_start_response(json!({"dailyRoom": ROOM, "dailyToken": null}), &start)
        .unwrap();
    assert_eq!(mapped.start_request, Some(start));
    assert_eq!(mapped.values["dailyRoom"], ROOM);
}

#[tokio::test(start_paused = true)]
async fn left_with_error_is_fatal_and_ends_the_session() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.after_join(vec![bot("participant-joined", "playable")]);
    let (transport, mut events) = connect(backend).await;
    assert!(matches!(next(&mut events).await, TransportEvent::BotConnected(_)));
    assert!(matches!(next(&mut events).await, TransportEvent::TrackStarted(_)));
    handle.emit(json!({"action": "call-state-updated", "state": "left", "error": "Meeting ended"}));
    match next(&mut events).await {
        TransportEvent::Failed(TransportError::ConnectionLost { reason, .. }) => {
            assert!(reason.contains("Meeting ended"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!transport.is_connected());
    assert!(matches!(transport.send_message("{}".into()).await, Err(TransportError::NotConnected)));
    transport.disconnect().await.unwrap();
    assert_eq!(handle.leaves(), 1);
}

#[tokio::test(start_paused = true)]
async fn left_without_error_disconnects_the_bot() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.after_join(vec![bot("participant-joined", "off")]);
    let (transport, mut events) = connect(backend).await;
    assert!(matches!(next(&mut events).await, TransportEvent::BotConnected(_)));
    handle.emit(json!({"action": "call-state-updated", "state": "left"}));
    assert!(matches!(next(&mut events).await, TransportEvent::BotDisconnected { .. }));
    assert!(!transport.is_connected());
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn error_event_and_backend_death_are_fatal() {
    let (backend, handle) = ScriptedBackend::new();
    let (transport, mut events) = connect(backend).await;
    handle.emit(json!({"action": "error", "message": "Ejected from the room"}));
    match next(&mut events).await {
        TransportEvent::Failed(e) => assert!(e.to_string().contains("Ejected"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Only once: the left that follows is not reported again.
    handle.emit(json!({"action": "call-state-updated", "state": "left"}));
    quiet(&mut events).await;
    transport.disconnect().await.unwrap();

    // A new session on the same transport; then the backend dies.
    let (sink, mut events) = TransportEventSink::new(2);
    transport.connect(params(), sink).await.unwrap();
    handle.close("bridge exited with status 1");
    match next(&mut events).await {
        TransportEvent::Failed(TransportError::ConnectionLost { reason, .. }) => {
            assert!(reason.contains("status 1"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    transport.disconnect().await.unwrap();
    assert_eq!(handle.join_requests().len(), 2);
    assert_eq!(handle.leaves(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_message_size_comes_from_the_room() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend
        .join_result(Ok(JoinInfo::from_raw(
            json!({"domainConfig": {"max_app_message_size": 4096}}),
            None,
        )))
        .fail_next_send(BackendError::MessageTooLarge {
            message: "Unable to send too large message".into(),
        });
    let (transport, _events) = connect(backend).await;
    assert_eq!(transport.max_message_size(), 4096);

    let big = ClientEnvelope::client_message("t", Some(json!("x".repeat(5000)))).to_json().unwrap();
    match transport.send_message(big).await {
        Err(TransportError::MessageTooLarge { size, max }) => {
            assert_eq!((size > 5000, max), (true, 4096))
        }
        other => panic!("{other:?}"),
    }
    assert!(handle.sent().is_empty());
    // Daily's own refusal maps to the same error.
    let small = ClientEnvelope::client_message("t", None).to_json().unwrap();
    assert!(matches!(
        transport.send_message(small.clone()).await,
        Err(TransportError::MessageTooLarge { .. })
    ));
    transport.send_message(small).await.unwrap();
    transport.disconnect().await.unwrap();

    // Without a room limit, the fallback.
    let (backend, _) = ScriptedBackend::new();
    let (transport, _events) = connect(backend).await;
    assert_eq!(transport.max_message_size(), pipecat_daily::FALLBACK_MAX_MESSAGE_SIZE);
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn microphone_audio_goes_to_the_virtual_mic_and_mute_sends_silence() {
    let (backend, handle) = ScriptedBackend::new();
    let (source, mic) = MemorySource::new(AudioFormat::MONO_48K).unwrap();
    let transport = DailyTransport::builder(backend).audio_source(source).build().unwrap();
    let (sink, mut events) = TransportEventSink::new(1);
    transport.connect(params(), sink).await.unwrap();
    assert_eq!(handle.join_requests()[0].mic_format, AudioFormat::MONO_16K);

    // 200 ms at 48 kHz: about 3200 samples at 16 kHz reach the backend (minus resampler delay).
    mic.push(&vec![3000; 9600]).unwrap();
    let mut level = None;
    while level.is_none() {
        let (_, event) =
            tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        if let TransportEvent::LocalAudioLevel(l) = event {
            level = Some(l);
        }
    }
    assert!(level.unwrap() > 0.1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, written) = handle.mic_written();
    assert!((2500..=3200).contains(&written), "{written}");

    // Muted: the virtual microphone keeps getting audio at the same pace, as silence.
    transport.media().unwrap().enable_mic(false).await.unwrap();
    assert!(!transport.media().unwrap().is_mic_enabled());
    mic.push(&vec![3000; 9600]).unwrap();
    // Levels of the audio before the mute may still be queued; a silent one must follow.
    loop {
        let (_, event) =
            tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        if matches!(event, TransportEvent::LocalAudioLevel(l) if l == 0.0) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(handle.mic_written().1 > written, "muted audio still flows (as silence)");
    transport.media().unwrap().enable_mic(true).await.unwrap();
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bot_audio_goes_to_the_sink_and_is_flushed_on_interruption() {
    let (backend, handle) = ScriptedBackend::new();
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_16K).unwrap();
    let transport = DailyTransport::builder(backend).audio_sink(sink).build().unwrap();
    let (events_sink, mut events) = TransportEventSink::new(1);
    transport.connect(params(), events_sink).await.unwrap();

    for i in 0..10u64 {
        let frame =
            AudioFrame::new(vec![2000; 320], AudioFormat::MONO_16K, Duration::from_millis(20 * i))
                .unwrap();
        assert!(handle.speaker(frame));
    }
    let mut level = None;
    while level.is_none() {
        let (_, event) =
            tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
        if let TransportEvent::RemoteAudioLevel(l) = event {
            level = Some(l);
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(speaker.stats().depth > Duration::ZERO);
    transport.bot_interrupted();
    // The engine's bot-audio task flushes at once (a moment of paused time lets it run).
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(speaker.stats().flushes, 1);
    assert_eq!(speaker.stats().depth, Duration::ZERO);
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn pre_ready_audio_is_sent_as_raw_audio_batches_before_client_ready() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.after_join(vec![bot("participant-joined", "loading")]);
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = DailyTransport::builder(backend)
        .audio_source(source)
        .buffer_audio_until_bot_ready(true)
        .build()
        .unwrap();
    let (sink, mut events) = TransportEventSink::new(1);
    transport.connect(params(), sink).await.unwrap();
    assert!(matches!(next(&mut events).await, TransportEvent::BotConnected(_)));
    let (_, ready) = client_ready();
    transport.send_client_ready(ready).await.unwrap();

    // One second of speech while the bot starts.
    mic.push(&vec![500; 16_000]).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(handle.sent().is_empty());
    handle.emit(json!({"action": "participant-updated", "participant": {"id": "bot-1", "info": {"isLocal": false}, "media": {"microphone": {"state": "playable"}}}}));
    assert!(matches!(next(&mut events).await, TransportEvent::TrackStarted(_)));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let types = handle.sent_types();
    assert_eq!(types.last().map(String::as_str), Some("client-ready"), "{types:?}");
    let batches: Vec<Value> = handle
        .sent()
        .into_iter()
        .map(|(m, _)| m)
        .filter(|m| m["type"] == "raw-audio-batch")
        .collect();
    assert_eq!(batches.len(), types.len() - 1);
    let chunks: usize =
        batches.iter().map(|b| b["data"]["base64AudioBatch"].as_array().unwrap().len()).sum();
    // 16000 samples in 512-sample chunks: 32 (the last one padded), 10 per message.
    assert_eq!(chunks, 32);
    assert_eq!(batches.len(), 4);
    assert_eq!(batches[0]["data"]["sampleRate"], 16_000);
    assert_eq!(batches[0]["data"]["numChannels"], 1);
    // The live microphone went to Daily as well.
    assert!(handle.mic_written().1 >= 15_000);
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn pre_ready_buffering_is_off_by_default() {
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.after_join(vec![bot("participant-joined", "loading")]);
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = DailyTransport::builder(backend).audio_source(source).build().unwrap();
    let (sink, mut events) = TransportEventSink::new(1);
    transport.connect(params(), sink).await.unwrap();
    let (_, ready) = client_ready();
    transport.send_client_ready(ready).await.unwrap();
    mic.push(&vec![500; 16_000]).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    handle.emit(json!({"action": "participant-updated", "participant": {"id": "bot-1", "info": {"isLocal": false}, "media": {"microphone": {"state": "playable"}}}}));
    assert!(matches!(next(&mut events).await, TransportEvent::BotConnected(_)));
    assert!(matches!(next(&mut events).await, TransportEvent::TrackStarted(_)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(handle.sent_types(), ["client-ready"]);
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn replays_the_synthetic_fixture() {
    let script = parse_script(include_str!("fixtures/bot_session.synthetic.jsonl")).unwrap();
    let (backend, handle) = ScriptedBackend::new();
    let backend = backend.after_join(script).reply_to("client-ready", bot_ready_reply());
    let (sink, speaker) = MemorySink::new(AudioFormat::MONO_16K).unwrap();
    let transport = DailyTransport::builder(backend).audio_sink(sink).build().unwrap();
    let (events_sink, mut events) = TransportEventSink::new(1);
    transport.connect(params(), events_sink).await.unwrap();
    let (_, ready) = client_ready();
    transport.send_client_ready(ready).await.unwrap();

    assert!(
        matches!(next(&mut events).await, TransportEvent::BotConnected(p) if p.id == "bot-7f3a")
    );
    assert!(matches!(next(&mut events).await, TransportEvent::TrackStarted(_)));
    assert!(
        matches!(next(&mut events).await, TransportEvent::Message(m) if m.contains("bot-ready"))
    );
    quiet(&mut events).await;
    // 100 ms of synthetic bot audio reached the sink.
    assert!(speaker.stats().depth >= Duration::from_millis(60), "{:?}", speaker.stats());
    assert_eq!(handle.sent_types(), ["client-ready"]);
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn join_request_carries_join_options() {
    let (backend, handle) = ScriptedBackend::new();
    let transport = DailyTransport::builder(backend)
        .user_name("Rust client")
        .mic_format(AudioFormat::MONO_24K)
        .speaker_format(AudioFormat::MONO_24K)
        .echo_cancellation(false)
        .build()
        .unwrap();
    let (sink, _events) = TransportEventSink::new(1);
    let params = ConnectionParams::from_json(json!({
        "url": ROOM, "token": "", "userName": "Ada",
        "clientSettings": {"publishing": {"microphone": {"sendSettings": {"bitrate": 32000}}}}
    }))
    .unwrap();
    transport.connect(params, sink).await.unwrap();
    let request = handle.join_requests().remove(0);
    assert_eq!(request.token, None);
    assert_eq!(request.user_name.as_deref(), Some("Ada"));
    assert_eq!(request.mic_format, AudioFormat::MONO_24K);
    assert_eq!(
        request.client_settings["publishing"]["microphone"]["sendSettings"]["bitrate"],
        32000
    );
    assert_eq!(request.client_settings["publishing"]["camera"]["isPublishing"], false);
    assert!(
        request.client_settings["inputs"]["microphone"]["settings"]
            .get("customConstraints")
            .is_none()
    );
    transport.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dropping_the_transport_stops_its_tasks() {
    let (backend, handle) = ScriptedBackend::new();
    let (source, mic) = MemorySource::new(AudioFormat::MONO_16K).unwrap();
    let transport = DailyTransport::builder(backend).audio_source(source).build().unwrap();
    let (sink, _events) = TransportEventSink::new(1);
    transport.connect(params(), sink).await.unwrap();
    drop(transport);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The microphone task is gone: the source was dropped with it.
    assert!(mic.is_closed());
    let _: &ScriptedHandle = &handle;
}
