//! Helpers shared by the testkit's integration tests: raw clients for both transports.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pipecat_frames::{FrameKind, proto};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// An RTVI client message as JSON.
pub fn rtvi(message_type: &str, id: &str, data: Value) -> Value {
    json!({"label": "rtvi-ai", "type": message_type, "id": id, "data": data})
}

pub fn client_ready(id: &str) -> Value {
    rtvi("client-ready", id, json!({"version": "2.2.0", "about": {"library": "raw-test"}}))
}

pub fn client_message(id: &str, t: &str, d: Value) -> Value {
    rtvi("client-message", id, json!({"t": t, "d": d}))
}

/// What a raw WebSocket client received.
#[derive(Debug)]
pub enum WsEvent {
    Rtvi(Value),
    /// A message frame whose data is not JSON.
    BadMessage(String),
    Audio(proto::AudioRawFrame),
    Interruption,
    /// A WebSocket message that is not a decodable frame, or a frame with nothing set.
    Garbage,
    Close(Option<CloseFrame>),
    /// The connection ended without a close frame.
    Gone(String),
}

pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        WsClient { ws }
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_bytes(pipecat_frames::encode_message(&value.to_string())).await;
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.expect("send");
    }

    pub async fn send_audio(&mut self, samples: &[i16], sample_rate: u32) {
        let audio: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let frame = FrameKind::Audio(proto::AudioRawFrame {
            id: 0,
            name: "audio".into(),
            audio: audio.into(),
            sample_rate,
            num_channels: 1,
            pts: None,
        });
        self.send_bytes(pipecat_frames::encode(frame)).await;
    }

    /// The next event, or `None` after `WAIT`.
    pub async fn next(&mut self) -> Option<WsEvent> {
        self.next_within(WAIT).await
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<WsEvent> {
        loop {
            let message = match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(WsEvent::Gone("stream ended".into())),
                Ok(Some(Err(e))) => return Some(WsEvent::Gone(e.to_string())),
                Ok(Some(Ok(message))) => message,
            };
            return Some(match message {
                Message::Binary(bytes) => match pipecat_frames::decode(&bytes) {
                    Ok(FrameKind::Message(m)) => match serde_json::from_str(&m.data) {
                        Ok(value) => WsEvent::Rtvi(value),
                        Err(_) => WsEvent::BadMessage(m.data),
                    },
                    Ok(FrameKind::Audio(a)) => WsEvent::Audio(a),
                    Ok(FrameKind::Interruption(_)) => WsEvent::Interruption,
                    _ => WsEvent::Garbage,
                },
                Message::Text(_) => WsEvent::Garbage,
                Message::Close(frame) => WsEvent::Close(frame),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            });
        }
    }

    /// The next RTVI message, skipping audio.
    pub async fn next_rtvi(&mut self) -> Value {
        loop {
            match self.next().await {
                Some(WsEvent::Rtvi(v)) => return v,
                Some(WsEvent::Audio(_)) => continue,
                other => panic!("expected an RTVI message, got {other:?}"),
            }
        }
    }

    /// Skips everything until an RTVI message of `message_type`.
    pub async fn wait_rtvi(&mut self, message_type: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(WsEvent::Rtvi(v)) if v["type"] == message_type => return v,
                Some(WsEvent::Close(_)) | Some(WsEvent::Gone(_)) | None => {
                    panic!("no {message_type} before the end")
                }
                Some(_) => continue,
            }
        }
    }

    /// Sends client-ready and returns bot-ready.
    pub async fn handshake(&mut self) -> Value {
        self.send_json(&client_ready("cr-1")).await;
        self.wait_rtvi("bot-ready").await
    }

    /// Waits for the end of the connection; returns the close frame if there was one.
    pub async fn wait_end(&mut self) -> Result<Option<CloseFrame>, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(WsEvent::Close(frame)) => return Ok(frame),
                Some(WsEvent::Gone(e)) => return Err(e),
                None => panic!("the connection did not end"),
                Some(_) => continue,
            }
        }
    }
}

/// A sine tone, mono PCM16.
pub fn tone(ms: u32, hz: f64, rate: u32, amplitude: f64) -> Vec<i16> {
    let n = (rate * ms / 1000) as usize;
    (0..n)
        .map(|i| {
            (amplitude
                * 32767.0
                * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                as i16
        })
        .collect()
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

pub fn pcm(bytes: &[u8]) -> Vec<i16> {
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// POSTs JSON; returns status and body text.
pub async fn post_json(url: &str, body: &Value) -> (u16, String) {
    let response = tokio::time::timeout(WAIT, reqwest::Client::new().post(url).json(body).send())
        .await
        .expect("timed out")
        .expect("request failed");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

pub async fn request(method: reqwest::Method, url: &str, body: &str) -> (u16, String) {
    let response = tokio::time::timeout(
        WAIT,
        reqwest::Client::new()
            .request(method, url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send(),
    )
    .await
    .expect("timed out")
    .expect("request failed");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[cfg(feature = "webrtc")]
pub mod rtc;
