//! The WebSocket end of the microphone pipeline: each frame the media engine hands over
//! becomes a protobuf `AudioRawFrame` (PCM16) queued for the socket writer.

use async_trait::async_trait;
use pipecat_media::AudioFrame;
use pipecat_media_engine::{MicWire, WireClosed};
use tokio::sync::mpsc;

use crate::codec;

/// Encodes microphone frames for the socket writer; a full writer queue paces the pipeline.
#[derive(Debug)]
pub(crate) struct PcmWire(pub(crate) mpsc::Sender<Vec<u8>>);

#[async_trait]
impl MicWire for PcmWire {
    async fn send(&mut self, frame: AudioFrame) -> Result<(), WireClosed> {
        self.0.send(codec::encode_audio(&frame)).await.map_err(|_| WireClosed)
    }
}
