//! The client against a mockall mock of `Transport`: exact calls and their order.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{bot_ready, drain, msg, params, states};
use mockall::Sequence;
use mockall::predicate::eq;
use pipecat_core::media::{DeviceKind, MediaControl, MediaDeviceInfo, MediaState};
use pipecat_core::rtvi::ClientEnvelope;
use pipecat_core::{
    ApiRequest, ConnectionParams, PipecatClient, Transport, TransportError, TransportEventSink,
    TransportState,
};
use serde_json::Value;

mockall::mock! {
    pub Wire {}

    #[async_trait]
    impl Transport for Wire {
        fn name(&self) -> &'static str;
        fn attach(&self, events: TransportEventSink);
        fn map_start_response(
            &self,
            response: Value,
            start_request: &ApiRequest,
        ) -> Result<ConnectionParams, TransportError>;
        async fn connect(
            &self,
            params: ConnectionParams,
            events: TransportEventSink,
        ) -> Result<(), TransportError>;
        async fn send_client_ready(&self, message: String) -> Result<(), TransportError>;
        async fn send_message(&self, message: String) -> Result<(), TransportError>;
        fn bot_ready(&self);
        fn bot_interrupted(&self);
        async fn disconnect(&self) -> Result<(), TransportError>;
        fn max_message_size(&self) -> usize;
        fn media<'a>(&'a self) -> Option<&'a (dyn MediaControl + 'a)>;
    }
}

mockall::mock! {
    pub Media {}

    #[async_trait]
    impl MediaControl for Media {
        async fn init_devices(&self) -> Result<(), TransportError>;
        async fn enable_mic(&self, enabled: bool) -> Result<(), TransportError>;
        fn is_mic_enabled(&self) -> bool;
        fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>, TransportError>;
        fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>, TransportError>;
        async fn update_mic(&self, device_id: &str) -> Result<(), TransportError>;
        async fn update_speaker(&self, device_id: &str) -> Result<(), TransportError>;
        fn selected_mic(&self) -> Option<MediaDeviceInfo>;
        fn selected_speaker(&self) -> Option<MediaDeviceInfo>;
        fn media_state(&self) -> MediaState;
    }
}

type SinkSlot = Arc<Mutex<Option<TransportEventSink>>>;

/// A mock that connects, answers client-ready with bot-ready and expects the calls of one
/// session in order.
fn session_mock(seq: &mut Sequence) -> (MockWire, SinkSlot) {
    let slot: SinkSlot = Arc::default();
    let mut mock = MockWire::new();
    mock.expect_name().return_const("mock");
    mock.expect_max_message_size().return_const(64 * 1024_usize);
    mock.expect_attach().times(1).return_const(());
    let connect_slot = slot.clone();
    mock.expect_connect()
        .times(1)
        .in_sequence(seq)
        .withf(|params, events| *params == common::params() && events.generation() == 1)
        .returning(move |_, events| {
            *connect_slot.lock().unwrap() = Some(events);
            Ok(())
        });
    let ready_slot = slot.clone();
    mock.expect_send_client_ready().times(1).in_sequence(seq).returning(move |message| {
        let envelope = ClientEnvelope::parse(&message).unwrap();
        assert_eq!(envelope.message.message_type(), "client-ready");
        let sink = ready_slot.lock().unwrap().clone().unwrap();
        sink.emit(pipecat_core::TransportEvent::Message(bot_ready(&envelope.id, "2.2.0")));
        Ok(())
    });
    mock.expect_bot_ready().times(1).in_sequence(seq).return_const(());
    (mock, slot)
}

#[tokio::test(start_paused = true)]
async fn connect_and_disconnect_call_the_transport_in_order() {
    let mut seq = Sequence::new();
    let (mut mock, _slot) = session_mock(&mut seq);
    mock.expect_disconnect().times(1).in_sequence(&mut seq).returning(|| Ok(()));
    let client = PipecatClient::builder(mock).build();
    let mut events = client.events();
    client.connect(params()).await.unwrap();
    client.disconnect().await.unwrap();
    assert_eq!(
        states(&drain(&mut events).await),
        [
            TransportState::Connecting,
            TransportState::Connected,
            TransportState::Ready,
            TransportState::Disconnecting,
            TransportState::Disconnected
        ]
    );
    // Dropping the client checks the expectations (times) of the mock.
}

#[tokio::test(start_paused = true)]
async fn bot_interrupted_and_fatal_error_reach_the_transport() {
    let mut seq = Sequence::new();
    let (mut mock, slot) = session_mock(&mut seq);
    mock.expect_bot_interrupted().times(1).in_sequence(&mut seq).return_const(());
    mock.expect_disconnect().times(1).in_sequence(&mut seq).returning(|| Ok(()));
    let client = PipecatClient::builder(mock).build();
    client.connect(params()).await.unwrap();
    let sink = slot.lock().unwrap().clone().unwrap();
    sink.emit(pipecat_core::TransportEvent::Message(msg("bot-interrupted", None, None)));
    sink.emit(pipecat_core::TransportEvent::Message(msg(
        "error",
        None,
        Some(serde_json::json!({"error": "fatal", "fatal": true})),
    )));
    common::settle().await;
    assert_eq!(client.state(), TransportState::Disconnected);
}

#[tokio::test(start_paused = true)]
async fn media_calls_are_delegated() {
    let mic = MediaDeviceInfo {
        id: "m2".into(),
        name: "USB mic".into(),
        kind: DeviceKind::Mic,
        is_default: false,
    };
    let mut mock = MockMedia::new();
    mock.expect_enable_mic().with(eq(false)).times(1).returning(|_| Ok(()));
    mock.expect_is_mic_enabled().times(1).return_const(false);
    let list = vec![mic.clone()];
    mock.expect_available_mics().times(1).returning(move || Ok(list.clone()));
    mock.expect_available_speakers()
        .times(1)
        .returning(|| Err(TransportError::Media { message: "no output".into(), source: None }));
    mock.expect_update_mic().withf(|id| id == "m2").times(1).returning(|_| Ok(()));
    mock.expect_update_speaker().withf(|id| id == "s1").times(1).returning(|_| Ok(()));
    mock.expect_selected_mic().times(1).return_const(Some(mic.clone()));
    mock.expect_selected_speaker().times(1).return_const(None);
    mock.expect_media_state().times(1).return_const(MediaState::default());
    let media: &'static MockMedia = Box::leak(Box::new(mock));
    let mut wire = MockWire::new();
    wire.expect_name().return_const("mock");
    wire.expect_attach().return_const(());
    wire.expect_media().returning(move || Some(media as &dyn MediaControl));
    let client = PipecatClient::builder(wire).build();

    client.enable_mic(false).await.unwrap();
    assert!(!client.is_mic_enabled());
    assert_eq!(client.available_mics().unwrap(), vec![mic.clone()]);
    assert!(matches!(
        client.available_speakers(),
        Err(pipecat_core::Error::Transport(TransportError::Media { .. }))
    ));
    client.update_mic("m2").await.unwrap();
    client.update_speaker("s1").await.unwrap();
    assert_eq!(client.selected_mic(), Some(mic));
    assert_eq!(client.selected_speaker(), None);
    assert_eq!(client.media_state(), MediaState::default());
}
