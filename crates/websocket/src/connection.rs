//! The socket: opening it (TCP, TLS, WebSocket handshake), the reader and writer tasks, and
//! how the end of a connection maps to transport events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use pipecat_core::{TransportError, TransportEvent, TransportEventSink};
use pipecat_media_engine::BotAudioStream;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, trace, warn};
use url::Url;

use crate::codec::{self, CodecError};
use crate::params::redact_url;
use crate::proto::frame::Frame as Kind;

/// The open socket.
pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The close code pipecat's runner uses to refuse a token or an origin.
pub const CLOSE_CODE_AUTH: u16 = 4003;

/// The largest message accepted from the bot. Bot audio comes in 40 ms frames, and the 2 s of
/// silence at the end of a session is one 96 000-byte frame; this leaves a wide margin.
pub(crate) const MAX_INBOUND_MESSAGE: usize = 16 * 1024 * 1024;

/// Time given to the TCP close after the close handshake before the reader gives up on it.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// How long a writer whose send failed waits for the reader to say how the connection ended.
const WRITE_FAILURE_GRACE: Duration = Duration::from_secs(2);

/// Opens the WebSocket: TCP, TLS for `wss://` with `tls`, then the HTTP upgrade.
pub(crate) async fn open(
    url: &Url,
    tls: &Arc<ClientConfig>,
    timeout: Duration,
) -> Result<WsStream, TransportError> {
    let shown = redact_url(url);
    let connector =
        if url.scheme() == "wss" { Connector::Rustls(tls.clone()) } else { Connector::Plain };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_INBOUND_MESSAGE))
        .max_frame_size(Some(MAX_INBOUND_MESSAGE));
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        url.as_str(),
        Some(config),
        true,
        Some(connector),
    );
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(TransportError::Timeout {
            what: format!("WebSocket connection to {shown}"),
            after: timeout,
        }),
        Ok(Err(e)) => Err(map_connect_error(e, &shown)),
        Ok(Ok((stream, response))) => {
            debug!(status = %response.status(), "WebSocket handshake done");
            Ok(stream)
        }
    }
}

/// A connect error, with TLS and HTTP refusals spelled out. `shown` is the redacted URL.
fn map_connect_error(error: tungstenite::Error, shown: &str) -> TransportError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                .unwrap_or_default();
            let detail = if body.is_empty() { String::new() } else { format!(": {body}") };
            if status.as_u16() == 401 || status.as_u16() == 403 {
                TransportError::Authentication(format!(
                    "{shown} refused the WebSocket handshake with HTTP {status}{detail}"
                ))
            } else {
                TransportError::ConnectFailed {
                    message: format!(
                        "{shown} answered the WebSocket handshake with HTTP {status}{detail}"
                    ),
                    source: None,
                }
            }
        }
        tungstenite::Error::Io(io) => {
            let tls = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
            let message = match tls {
                Some(tls) => format!(
                    "TLS handshake with {shown} failed: {tls} (certificates are checked against \
                     the webpki roots unless a TLS config is given to the transport builder)"
                ),
                None => format!("could not connect to {shown}: {io}"),
            };
            TransportError::connect_failed(message, io)
        }
        tungstenite::Error::Tls(tls) => {
            let message = format!("TLS setup for {shown} failed: {tls}");
            TransportError::connect_failed(message, tls)
        }
        other => {
            let message = format!("WebSocket handshake with {shown} failed: {other}");
            TransportError::connect_failed(message, other)
        }
    }
}

/// State shared by the tasks of one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnectionState {
    /// The client asked to disconnect: the end of the connection is expected, not an event.
    pub(crate) disconnecting: AtomicBool,
    /// The end of the connection was reported (only the first task to see it reports it).
    ended: AtomicBool,
}

impl ConnectionState {
    /// Reports how the connection ended, once, unless the client is disconnecting.
    fn report_end(&self, events: &TransportEventSink, event: TransportEvent) {
        if self.disconnecting.load(Ordering::Acquire) || self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        match &event {
            TransportEvent::BotDisconnected { reason } => info!(%reason, "bot disconnected"),
            TransportEvent::Failed(error) => warn!(%error, "connection failed"),
            _ => {}
        }
        events.emit(event);
    }
}

/// What the writer sends, besides audio.
#[derive(Debug)]
pub(crate) enum Control {
    /// An encoded frame (an RTVI message).
    Frame(Vec<u8>),
    /// Start the close handshake with code 1000.
    Close,
}

/// When the writer pings, and how long it may fail to write before the connection counts as
/// lost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterTiming {
    /// The keepalive ping interval, if any.
    pub(crate) keepalive: Option<Duration>,
    /// How long a write may wait (a server that stopped reading).
    pub(crate) stall_limit: Duration,
}

/// Writes RTVI messages (first) and audio to the socket until told to close or the socket
/// fails. A write failure ends the session as a lost connection.
pub(crate) async fn writer(
    mut sink: SplitSink<WsStream, Message>,
    mut control: mpsc::Receiver<Control>,
    mut audio: mpsc::Receiver<Vec<u8>>,
    timing: WriterTiming,
    state: Arc<ConnectionState>,
    shutdown: watch::Sender<bool>,
    events: TransportEventSink,
) {
    let WriterTiming { keepalive, stall_limit } = timing;
    let mut audio_open = true;
    // Without keepalive the ticker still exists but is never polled.
    let period = keepalive.unwrap_or(Duration::from_secs(3600));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
            biased;
            _ = ping.tick(), if keepalive.is_some() => {
                trace!("keepalive ping");
                Message::Ping(prost::bytes::Bytes::new())
            }
            item = control.recv() => match item {
                Some(Control::Frame(bytes)) => Message::Binary(bytes.into()),
                Some(Control::Close) | None => {
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    if let Err(e) = sink.send(Message::Close(Some(frame))).await {
                        debug!(error = %e, "close frame not sent");
                    }
                    return;
                }
            },
            item = audio.recv(), if audio_open => match item {
                Some(bytes) => Message::Binary(bytes.into()),
                None => {
                    audio_open = false;
                    continue;
                }
            },
        };
        let sent = match tokio::time::timeout(stall_limit, sink.send(message)).await {
            Ok(sent) => sent,
            Err(_) => {
                let error = TransportError::ConnectionLost {
                    code: None,
                    reason: format!(
                        "the server stopped reading: nothing could be written for {stall_limit:?}"
                    ),
                };
                state.report_end(&events, TransportEvent::Failed(error));
                shutdown.send_replace(true);
                return;
            }
        };
        if let Err(e) = sent {
            // A send fails as soon as the server's close frame has been read, so the reader
            // decides how the connection ended (the close code wins); only if it has not
            // within the grace period is the failed send the reason.
            debug!(error = %e, "send failed; waiting for the reader's verdict");
            let mut ended = shutdown.subscribe();
            let verdict = tokio::time::timeout(WRITE_FAILURE_GRACE, ended.wait_for(|s| *s));
            if verdict.await.is_err() {
                let error = TransportError::ConnectionLost {
                    code: None,
                    reason: format!("sending on the WebSocket failed: {e}"),
                };
                state.report_end(&events, TransportEvent::Failed(error));
                shutdown.send_replace(true);
            }
            return;
        }
    }
}

/// Reads the socket until it closes: RTVI messages become events, bot audio goes to the
/// media engine, interruptions flush it. Garbage is reported as warnings and skipped. At the end,
/// reports how the connection ended and stops the session's other tasks.
pub(crate) async fn reader(
    mut stream: SplitStream<WsStream>,
    mut bot_audio: BotAudioStream,
    idle_limit: Option<Duration>,
    state: Arc<ConnectionState>,
    shutdown: watch::Sender<bool>,
    events: TransportEventSink,
) {
    let mut audio_clock = Duration::ZERO;
    let end = loop {
        let next = match idle_limit {
            None => stream.next().await,
            Some(limit) => match tokio::time::timeout(limit, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    break TransportEvent::Failed(TransportError::ConnectionLost {
                        code: None,
                        reason: format!(
                            "nothing received from the server for {limit:?} (keepalive pings \
                             unanswered)"
                        ),
                    });
                }
            },
        };
        let Some(item) = next else {
            break TransportEvent::Failed(TransportError::ConnectionLost {
                code: None,
                reason: "the connection closed without a close frame".into(),
            });
        };
        match item {
            Ok(Message::Binary(bytes)) => match codec::decode(&bytes) {
                Ok(Kind::Message(message)) => {
                    trace!(len = message.data.len(), "RTVI message in");
                    events.emit(TransportEvent::Message(message.data));
                }
                Ok(Kind::Audio(raw)) => match codec::audio_frame(&raw, audio_clock) {
                    Ok(frame) => {
                        audio_clock += frame.duration();
                        bot_audio.push(frame);
                    }
                    Err(e) => garbage(&events, &e),
                },
                Ok(Kind::Interruption(_)) => {
                    debug!("interruption frame: dropping buffered bot audio");
                    bot_audio.flush();
                }
                Ok(Kind::Text(_) | Kind::Transcription(_)) => {
                    debug!("ignored a text/transcription frame (not part of the client protocol)");
                }
                Err(e) => garbage(&events, &e),
            },
            Ok(Message::Text(text)) => {
                warn!(len = text.len(), "ignored a text WebSocket message");
                events.emit(TransportEvent::Warning(format!(
                    "ignored a text WebSocket message of {} bytes: pipecat's protobuf protocol \
                     is binary",
                    text.len()
                )));
            }
            Ok(Message::Close(frame)) => {
                // Reported at once: the close code is the verdict, whatever a send does now.
                let end = close_event(frame.as_ref());
                state.report_end(&events, end.clone());
                drain_after_close(&mut stream).await;
                break end;
            }
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Err(e) => {
                break TransportEvent::Failed(TransportError::ConnectionLost {
                    code: None,
                    reason: format!("the connection broke: {e}"),
                });
            }
        }
    };
    state.report_end(&events, end);
    shutdown.send_replace(true);
}

/// Reports a binary message that is not a usable frame.
fn garbage(events: &TransportEventSink, error: &CodecError) {
    warn!(%error, "ignored an unusable binary message");
    events.emit(TransportEvent::Warning(format!("ignored a binary WebSocket message: {error}")));
}

/// Keeps reading briefly after a close frame, so the reply goes out and the server's TCP
/// close is seen.
async fn drain_after_close(stream: &mut SplitStream<WsStream>) {
    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
}

/// The event for a close frame received from the server.
pub(crate) fn close_event(frame: Option<&CloseFrame>) -> TransportEvent {
    let Some(frame) = frame else {
        return TransportEvent::BotDisconnected {
            reason: "the bot closed the connection (no close code)".into(),
        };
    };
    let code = u16::from(frame.code);
    let reason =
        if frame.reason.is_empty() { String::new() } else { format!(": {}", frame.reason) };
    match frame.code {
        CloseCode::Normal | CloseCode::Away => TransportEvent::BotDisconnected {
            reason: format!("the bot closed the connection (code {code}{reason})"),
        },
        _ if code == CLOSE_CODE_AUTH => TransportEvent::Failed(TransportError::Authentication(
            format!("the server closed the connection with code {code}{reason}"),
        )),
        _ => TransportEvent::Failed(TransportError::ConnectionLost {
            code: Some(code),
            reason: format!("the server closed the connection with code {code}{reason}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(code: u16, reason: &str) -> CloseFrame {
        CloseFrame { code: CloseCode::from(code), reason: reason.into() }
    }

    #[test]
    fn close_codes_map_to_events() {
        assert!(matches!(close_event(None), TransportEvent::BotDisconnected { .. }));
        assert!(matches!(
            close_event(Some(&frame(1000, ""))),
            TransportEvent::BotDisconnected { .. }
        ));
        assert!(matches!(
            close_event(Some(&frame(1001, "bye"))),
            TransportEvent::BotDisconnected { reason } if reason.contains("bye")
        ));
        assert!(matches!(
            close_event(Some(&frame(4003, ""))),
            TransportEvent::Failed(TransportError::Authentication(_))
        ));
        assert!(matches!(
            close_event(Some(&frame(1011, "oops"))),
            TransportEvent::Failed(TransportError::ConnectionLost { code: Some(1011), .. })
        ));
    }
}
