//! An in-test pipecat-like WebSocket server on 127.0.0.1:0 and helpers around the transport.

#![allow(dead_code, unreachable_pub)]

use pipecat_websocket::AudioBuilder;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use pipecat_core::{ConnectionParams, TransportEvent, TransportEventSink};
use pipecat_media::{AudioFormat, AudioFrame, AudioSink, AudioSource, MediaError, NullSink};
use pipecat_websocket::proto::frame::Frame as Kind;
use pipecat_websocket::{WebSocketTransport, WebSocketTransportBuilder, codec};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A transport builder whose bot audio is discarded (the tests choose the source; without
/// one the default microphone is used).
pub fn builder() -> WebSocketTransportBuilder {
    WebSocketTransport::builder().audio_sink(NullSink::new(AudioFormat::MONO_24K))
}

/// How an accepted connection is served.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Complete the WebSocket handshake.
    Accept,
    /// Refuse the handshake with HTTP 403.
    Refuse403,
    /// Accept TCP and never answer the handshake.
    Stall,
}

/// A WebSocket server; every accepted connection comes out of [`TestServer::accept`].
pub struct TestServer {
    pub port: u16,
    conns: mpsc::UnboundedReceiver<ServerConn<TcpStream>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Mode::Accept).await
    }

    pub async fn start_with(mode: Mode) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, conns) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stalled = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                match mode {
                    Mode::Stall => stalled.push(stream),
                    _ => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            if let Some(conn) = handshake(stream, mode == Mode::Refuse403).await {
                                let _ = tx.send(conn);
                            }
                        });
                    }
                }
            }
        });
        TestServer { port, conns, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    pub fn params(&self) -> ConnectionParams {
        ConnectionParams::from_json(json!({"wsUrl": self.url("/ws")})).unwrap()
    }

    pub async fn accept(&mut self) -> ServerConn<TcpStream> {
        tokio::time::timeout(WAIT, self.conns.recv()).await.expect("no connection").unwrap()
    }
}

/// The server side of a WebSocket handshake, recording the request URI.
pub async fn handshake<S>(stream: S, refuse: bool) -> Option<ServerConn<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let uri = Arc::new(Mutex::new(String::new()));
    let seen = uri.clone();
    #[allow(clippy::result_large_err)] // the signature tungstenite asks for
    let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        *seen.lock().unwrap() = req.uri().to_string();
        if refuse {
            let mut err = ErrorResponse::new(Some("forbidden".into()));
            *err.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
            return Err(err);
        }
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, callback).await.ok()?;
    let uri = uri.lock().unwrap().clone();
    Some(ServerConn { ws, uri })
}

/// One accepted connection.
pub struct ServerConn<S> {
    pub ws: WebSocketStream<S>,
    /// The request URI (path and query).
    pub uri: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerConn<S> {
    /// The next frame of any kind; panics on anything but a binary pipecat frame.
    pub async fn recv_frame(&mut self) -> Kind {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no frame in time")
                .expect("connection ended")
                .expect("read error");
            match msg {
                Message::Binary(bytes) => {
                    return codec::decode(&bytes).expect("not a pipecat frame");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// The next RTVI message, skipping audio.
    pub async fn recv_rtvi(&mut self) -> serde_json::Value {
        loop {
            if let Kind::Message(m) = self.recv_frame().await {
                return serde_json::from_str(&m.data).expect("RTVI JSON");
            }
        }
    }

    /// The next audio frame, skipping nothing (panics on another kind).
    pub async fn recv_audio(&mut self) -> AudioFrame {
        match self.recv_frame().await {
            Kind::Audio(raw) => codec::audio_frame(&raw, Duration::ZERO).unwrap(),
            other => panic!("expected audio, got {other:?}"),
        }
    }

    /// The next audio frame, skipping RTVI messages.
    pub async fn next_audio(&mut self) -> AudioFrame {
        loop {
            if let Kind::Audio(raw) = self.recv_frame().await {
                return codec::audio_frame(&raw, Duration::ZERO).unwrap();
            }
        }
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn send_rtvi(&mut self, value: serde_json::Value) {
        self.send_bytes(codec::encode_message(&value.to_string())).await;
    }

    pub async fn send_audio(&mut self, samples: Vec<i16>, rate: u32, channels: u16) {
        let frame =
            AudioFrame::new(samples, AudioFormat::new(rate, channels), Duration::ZERO).unwrap();
        self.send_bytes(codec::encode_audio(&frame)).await;
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
        self.ws.send(Message::Close(Some(frame))).await.unwrap();
        // Wait for the client's reply so the handshake completes.
        let _ =
            tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = self.ws.next().await {} })
                .await;
    }

    /// Waits for the client's close frame; returns its code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("no close in time");
            match msg {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    }
}

/// An event sink and its receiver, with helpers.
pub struct Events {
    pub sink: TransportEventSink,
    rx: mpsc::UnboundedReceiver<(u64, TransportEvent)>,
}

impl Events {
    pub fn new() -> Events {
        let (sink, rx) = TransportEventSink::new(1);
        Events { sink, rx }
    }

    /// The next event that `keep` accepts (others are skipped).
    pub async fn wait(&mut self, keep: impl Fn(&TransportEvent) -> bool) -> TransportEvent {
        self.wait_tagged(keep).await.1
    }

    /// As [`Events::wait`], with the generation the event was sent with (0: the sink given
    /// to `attach`, see [`Events::transport_sink`]).
    pub async fn wait_tagged(
        &mut self,
        keep: impl Fn(&TransportEvent) -> bool,
    ) -> (u64, TransportEvent) {
        tokio::time::timeout(WAIT, async {
            loop {
                let (generation, event) = self.rx.recv().await.expect("event channel closed");
                if keep(&event) {
                    return (generation, event);
                }
            }
        })
        .await
        .expect("event did not come in time")
    }

    /// A sink on the same channel with generation 0, for `Transport::attach` (as the client
    /// does).
    pub fn transport_sink(&self) -> TransportEventSink {
        self.sink.with_generation(0)
    }

    /// The next event that ends a session (BotDisconnected or Failed).
    pub async fn wait_end(&mut self) -> TransportEvent {
        self.wait(|e| {
            matches!(e, TransportEvent::BotDisconnected { .. } | TransportEvent::Failed(_))
        })
        .await
    }

    /// The next RTVI message event's text.
    pub async fn wait_message(&mut self) -> String {
        match self.wait(|e| matches!(e, TransportEvent::Message(_))).await {
            TransportEvent::Message(m) => m,
            _ => unreachable!(),
        }
    }

    /// Everything received so far, without waiting.
    pub fn drain(&mut self) -> Vec<TransportEvent> {
        let mut out = Vec::new();
        while let Ok((_, e)) = self.rx.try_recv() {
            out.push(e);
        }
        out
    }
}

/// What a [`RecordingSink`] saw.
#[derive(Debug, Default)]
pub struct Recorded {
    pub frames: Mutex<Vec<AudioFrame>>,
    pub flushes: AtomicUsize,
    /// Set while a task is inside `write`.
    pub in_use: AtomicBool,
}

/// A sink that records frames as written (format included) and counts flushes. With a gate,
/// each write waits for a permit.
pub struct RecordingSink {
    pub rec: Arc<Recorded>,
    pub gate: Option<Arc<Semaphore>>,
}

impl RecordingSink {
    pub fn new() -> (RecordingSink, Arc<Recorded>) {
        let rec = Arc::new(Recorded::default());
        (RecordingSink { rec: rec.clone(), gate: None }, rec)
    }
}

#[async_trait]
impl AudioSink for RecordingSink {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_24K
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.rec.frames.lock().unwrap().push(frame);
        Ok(())
    }

    fn flush(&mut self) {
        self.rec.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts live `next_frame` futures of a source, to prove that tasks stopped.
#[derive(Debug, Default)]
pub struct Liveness {
    pub waiting: AtomicUsize,
}

struct WaitGuard(Arc<Liveness>);

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A source that never produces audio and records whether someone waits on it.
pub struct ProbeSource(pub Arc<Liveness>);

#[async_trait]
impl AudioSource for ProbeSource {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_16K
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        self.0.waiting.fetch_add(1, Ordering::SeqCst);
        let _guard = WaitGuard(self.0.clone());
        futures::future::pending::<()>().await;
        Ok(None)
    }
}

/// Polls `cond` until it holds (bounded by [`WAIT`]).
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
