//! Start response -> connection parameters, for every transport: the start endpoint's JSON
//! answer goes through each transport's own `map_start_response` (as `PipecatClient` does
//! after `start_bot`), then through the parameter parsing its `connect` does.
//!
//! Input: the start endpoint URL on the first line, the answer body after it (a body
//! without a first line is answered by `http://localhost:7860/start`).
//!
//! Invariants: no panic; an answer a transport accepts also connects (its parameters parse
//! again and resolve to a URL); typed parameters survive the trip through `ConnectionParams`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pipecat_core::{ApiRequest, ConnectionParams, Transport};
use pipecat_daily::DailyParams;
use pipecat_daily::backend::ScriptedBackend;
use pipecat_daily::{AudioBuilder as _, DailyTransport};
use pipecat_small_webrtc::{SmallWebRtcParams, SmallWebRtcTransport};
use pipecat_websocket::{WebSocketParams, WebSocketTransport};
use serde_json::Value;

/// The offer URL template a SmallWebRTC transport may be configured with.
const TEMPLATE: &str = "http://localhost:7860/sessions/:sessionId/api/offer";

struct Transports {
    websocket: WebSocketTransport,
    webrtc: SmallWebRtcTransport,
    webrtc_template: SmallWebRtcTransport,
    daily: DailyTransport,
}

fn transports() -> &'static Transports {
    static TRANSPORTS: OnceLock<Transports> = OnceLock::new();
    TRANSPORTS.get_or_init(|| Transports {
        websocket: WebSocketTransport::new(),
        webrtc: SmallWebRtcTransport::builder().without_audio().build().expect("builds"),
        webrtc_template: SmallWebRtcTransport::builder()
            .without_audio()
            .offer_url_template(TEMPLATE)
            .build()
            .expect("builds"),
        daily: DailyTransport::builder(ScriptedBackend::new().0)
            .without_audio()
            .build()
            .expect("builds"),
    })
}

fuzz_target!(|data: &[u8]| {
    let (endpoint, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => match std::str::from_utf8(&data[..at]) {
            Ok(endpoint) => (endpoint, &data[at + 1..]),
            Err(_) => return,
        },
        None => ("http://localhost:7860/start", data),
    };
    let Ok(answer) = serde_json::from_slice::<Value>(body) else { return };
    let request = ApiRequest::new(endpoint);
    let t = transports();

    if let Ok(params) = t.websocket.map_start_response(answer.clone(), &request) {
        let _ = format!("{params:?}");
        let typed =
            WebSocketParams::from_connection_params(&params).expect("accepted params parse");
        let url = typed.url().expect("accepted params give a URL");
        assert!(matches!(url.scheme(), "ws" | "wss"));
        let _ = (format!("{typed:?}"), pipecat_websocket::redact_url(&url));
        let back = WebSocketParams::from_connection_params(&typed.clone().into()).expect("typed");
        assert_eq!(back.url().expect("typed"), url);
    }

    for (transport, template) in [(&t.webrtc, None), (&t.webrtc_template, Some(TEMPLATE))] {
        if let Ok(params) = transport.map_start_response(answer.clone(), &request) {
            assert_eq!(params.start_request.as_ref(), Some(&request));
            let _ = format!("{params:?}");
            let typed =
                SmallWebRtcParams::from_connection_params(&params).expect("accepted params parse");
            let offer = typed.resolve(template).expect("accepted params resolve");
            let generic: ConnectionParams = typed.clone().into();
            let back = SmallWebRtcParams::from_connection_params(&generic).expect("typed");
            assert_eq!(back.resolve(template).expect("typed").endpoint, offer.endpoint);
        }
    }

    if let Ok(params) = t.daily.map_start_response(answer, &request) {
        let _ = format!("{params:?}");
        let typed = DailyParams::from_connection_params(&params).expect("accepted params parse");
        assert!(!typed.room_url.room_name().is_empty());
        assert!(typed.token.as_deref().is_none_or(|t| !t.trim().is_empty()));
        let back = DailyParams::from_connection_params(&typed.clone().into()).expect("typed");
        assert_eq!(back, typed);
    }
});
