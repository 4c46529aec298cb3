//! The WebSocket transport, server side: one bot session per connection to `/ws-client`.
//! Every message is a binary protobuf `pipecat.Frame`; RTVI rides as JSON text in
//! `MessageFrame.data`; audio is PCM16 (16 kHz in, 24 kHz out, 40 ms chunks).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pipecat_frames::{FrameError, FrameKind, proto};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::BotTransport;
use crate::audio;
use crate::bot::BotShared;
use crate::recorder::{BotEventKind, EndReason, InvalidKind};
use crate::session::{AudioPlan, Ending, Garbage, Inbound, Outbound, SessionCore};

/// The bot's output sample rate on WebSocket (pipecat's default).
pub(crate) const OUTPUT_SAMPLE_RATE: u32 = 24_000;
/// Output chunk length (`audio_out_10ms_chunks` = 4).
const OUTPUT_CHUNK: Duration = Duration::from_millis(40);
/// How long the bot waits for the client's close frame after sending its own.
const CLOSE_HANDSHAKE_WAIT: Duration = Duration::from_secs(1);
/// Bytes that are not a protobuf message (an invalid wire type, then a truncated field).
pub(crate) const NOT_PROTOBUF: &[u8] = &[0x0f, 0xff, 0x22, 0x10, 0x01];

/// The audio plan of a WebSocket session.
pub(crate) fn audio_plan() -> AudioPlan {
    AudioPlan { sample_rate: OUTPUT_SAMPLE_RATE, chunk: OUTPUT_CHUNK, auto_silence: false }
}

/// Writes outbound items as frames; counts frame ids like pipecat does.
struct Writer {
    next_id: u64,
}

impl Writer {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The WebSocket messages for one outbound item (empty: nothing to send).
    fn messages(&mut self, out: &Outbound) -> Vec<Message> {
        match out {
            Outbound::Rtvi(text) => {
                vec![Message::Binary(
                    pipecat_frames::encode(FrameKind::Message(proto::MessageFrame {
                        data: text.clone(),
                    }))
                    .into(),
                )]
            }
            Outbound::Audio(samples) => vec![self.audio(samples)],
            Outbound::Interruption => {
                let id = self.id();
                vec![Message::Binary(
                    pipecat_frames::encode(FrameKind::Interruption(proto::InterruptionFrame {
                        id,
                        name: format!("InterruptionFrame#{id}"),
                    }))
                    .into(),
                )]
            }
            Outbound::Garbage(garbage) => self.garbage(*garbage),
            Outbound::Signalling(_) | Outbound::DropPeerConnection | Outbound::End(_) => vec![],
        }
    }

    fn audio(&mut self, samples: &[i16]) -> Message {
        let id = self.id();
        Message::Binary(
            pipecat_frames::encode(FrameKind::Audio(proto::AudioRawFrame {
                id,
                name: format!("OutputAudioRawFrame#{id}"),
                audio: audio::to_le_bytes(samples).into(),
                sample_rate: OUTPUT_SAMPLE_RATE,
                num_channels: 1,
                pts: None,
            }))
            .into(),
        )
    }

    fn garbage(&mut self, garbage: Garbage) -> Vec<Message> {
        if let Some(text) = garbage.rtvi_text() {
            return self.messages(&Outbound::Rtvi(text.to_owned()));
        }
        match garbage {
            Garbage::NotProtobuf => vec![Message::Binary(NOT_PROTOBUF.to_vec().into())],
            Garbage::TextMessage => {
                vec![Message::text(
                    r#"{"label":"rtvi-ai","type":"server-message","data":{"over":"a text frame"}}"#,
                )]
            }
            // A `pipecat.Frame` with nothing set encodes to no bytes at all.
            Garbage::EmptyFrame => vec![Message::Binary(Vec::new().into())],
            Garbage::BadAudio => vec![Message::Binary(
                pipecat_frames::encode(FrameKind::Audio(proto::AudioRawFrame {
                    id: 0,
                    name: String::new(),
                    audio: vec![1u8, 2, 3].into(),
                    sample_rate: 0,
                    num_channels: 0,
                    pts: None,
                }))
                .into(),
            )],
            _ => vec![],
        }
    }
}

/// Decodes one binary message from the client and hands it to the session.
fn handle_binary(
    core: &SessionCore,
    inbound: &tokio::sync::mpsc::UnboundedSender<Inbound>,
    bytes: &[u8],
) {
    let recorder = core.recorder();
    match pipecat_frames::decode(bytes) {
        Ok(FrameKind::Message(message)) => {
            let _ = inbound.send(Inbound::Text(message.data));
        }
        Ok(FrameKind::Audio(audio)) => {
            let channels = u16::try_from(audio.num_channels).unwrap_or(0);
            if !(1_000..=384_000).contains(&audio.sample_rate) || !(1..=32).contains(&channels) {
                let detail = format!(
                    "audio frame with sample_rate {} and num_channels {}",
                    audio.sample_rate, audio.num_channels
                );
                recorder.invalid(core.id(), InvalidKind::BadFrame, detail, &[]);
                return;
            }
            let samples = audio::from_le_bytes(&audio.audio);
            let _ =
                inbound.send(Inbound::Audio { samples, sample_rate: audio.sample_rate, channels });
        }
        // Pushed into the pipeline by the real server; nothing a client would see.
        Ok(FrameKind::Text(_) | FrameKind::Transcription(_) | FrameKind::Interruption(_)) => {}
        Err(FrameError::Empty) => recorder.invalid(
            core.id(),
            InvalidKind::BadFrame,
            "a Frame with nothing set".into(),
            bytes,
        ),
        Err(FrameError::Decode(e)) => {
            recorder.invalid(core.id(), InvalidKind::UndecodableFrame, e.to_string(), bytes);
        }
    }
}

/// Runs one WebSocket bot session until it ends.
pub(crate) async fn run_session<S>(mut ws: WebSocketStream<S>, bot: Arc<BotShared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = bot.start_session(BotTransport::WebSocket, audio_plan(), None);
    let core = io.core;
    let inbound = io.inbound;
    let mut outbound = io.outbound;
    let mut ended = core.subscribe_ended();
    let mut shutdown = bot.subscribe_shutdown();
    let mut writer = Writer { next_id: 0 };

    let reason = loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Binary(bytes))) => handle_binary(&core, &inbound, &bytes),
                Some(Ok(Message::Text(text))) => core.recorder().invalid(
                    core.id(),
                    InvalidKind::UndecodableFrame,
                    "a text WebSocket message (the protocol is binary protobuf)".into(),
                    text.as_bytes(),
                ),
                Some(Ok(Message::Ping(_))) => {
                    // tungstenite queued the pong; send it now.
                    if ws.flush().await.is_err() {
                        break EndReason::ClientDisconnected;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break EndReason::ClientDisconnected,
            },
            out = outbound.recv() => {
                let Some(out) = out else { break EndReason::Shutdown };
                if let Outbound::End(ending) = out {
                    break say_goodbye(&mut ws, &core, &mut writer, ending).await;
                }
                let mut failed = false;
                for message in writer.messages(&out) {
                    if let Err(e) = ws.send(message).await {
                        core.recorder().event(
                            Some(core.id()),
                            BotEventKind::SendFailed { detail: e.to_string() },
                        );
                        failed = true;
                        break;
                    }
                }
                if failed {
                    // The socket is broken: the client is gone.
                    break EndReason::ClientDisconnected;
                }
            }
            _ = crate::util::watch_until(&mut ended, Option::is_some) => break EndReason::Shutdown,
            _ = crate::util::watch_until(&mut shutdown, |down| *down) => {
                let _ = ws.close(Some(CloseFrame { code: CloseCode::Away, reason: "".into() })).await;
                break EndReason::Shutdown;
            }
        }
    };
    core.finished(reason);
    // Dropping the stream closes the TCP connection.
}

/// Ends the session the requested way; returns the end reason.
async fn say_goodbye<S>(
    ws: &mut WebSocketStream<S>,
    core: &SessionCore,
    writer: &mut Writer,
    ending: Ending,
) -> EndReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (code, reason, end) = match ending {
        Ending::Abrupt => return EndReason::Abrupt,
        Ending::Graceful(end) => {
            let silence = core.script().end_silence;
            if !silence.is_zero() {
                let samples = (silence.as_secs_f64() * f64::from(OUTPUT_SAMPLE_RATE)) as usize;
                let _ = ws.send(writer.audio(&vec![0; samples])).await;
            }
            (1000, String::new(), end)
        }
        Ending::CloseCode(code, reason) => (code, reason, EndReason::CloseCode(code)),
    };
    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
    if ws.send(Message::Close(Some(frame))).await.is_ok() {
        // Wait (bounded) for the client's close frame, so the close handshake completes.
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE_WAIT, async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_protobuf_really_is_not() {
        assert!(matches!(pipecat_frames::decode(NOT_PROTOBUF), Err(FrameError::Decode(_))));
    }

    #[test]
    fn garbage_maps_to_messages() {
        let mut writer = Writer { next_id: 0 };
        for &garbage in Garbage::ALL {
            let messages = writer.garbage(garbage);
            assert_eq!(messages.len(), 1, "{garbage:?}");
        }
        // Text garbage is a text WebSocket message; the rest is binary.
        assert!(matches!(writer.garbage(Garbage::TextMessage)[0], Message::Text(_)));
        assert!(matches!(writer.garbage(Garbage::NotJson)[0], Message::Binary(_)));
    }

    #[test]
    fn audio_frames_look_like_pipecats() {
        let mut writer = Writer { next_id: 0 };
        let Message::Binary(bytes) = writer.audio(&[0; 960]) else { panic!("not binary") };
        let Ok(FrameKind::Audio(audio)) = pipecat_frames::decode(&bytes) else {
            panic!("not audio")
        };
        assert_eq!(audio.audio.len(), 1_920);
        assert_eq!(audio.sample_rate, 24_000);
        assert_eq!(audio.num_channels, 1);
        assert_eq!(audio.pts, None);
        assert_eq!(audio.name, "OutputAudioRawFrame#1");
    }
}
