//! [`MediaEngine`]: a transport's media, kept across its sessions, and [`MediaSession`]: the
//! pipelines of one session.

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use pipecat_core::media::{MediaControl, MediaDeviceInfo, MediaState};
use pipecat_core::{TransportError, TransportEventSink};
use pipecat_media::{AudioSink, AudioSource, MediaError};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::devices::{Devices, Side};
use crate::downlink::{self, BotAudio};
use crate::options::AudioOptions;
use crate::uplink::{self, MicWire, TrackSinks, UplinkSpec};

/// Why a transport builder could not build. The same type for every transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The uplink sample rate is not usable.
    #[error("invalid input sample rate {0} Hz")]
    InvalidSampleRate(u32),
    /// The frame duration is zero, longer than a second, or shorter than one sample.
    #[error("invalid audio frame duration {0:?} (must be at least one sample and at most 1 s)")]
    InvalidFrameDuration(std::time::Duration),
    /// The audio path could not be set up.
    #[error("could not set up the audio path")]
    Audio(#[source] MediaError),
    /// The TLS configuration could not be built.
    #[error("TLS configuration failed")]
    Tls(#[source] pipecat_core::ErrorSource),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client")]
    HttpClient(#[source] pipecat_core::ErrorSource),
}

/// The media of one transport, kept across its sessions: the user's source and the bot's
/// sink (behind switches, so devices can replace them mid-session), the device states and
/// events, and the microphone switch. It implements [`MediaControl`], which a transport hands
/// out through `Transport::media`.
pub struct MediaEngine {
    spec: UplinkSpec,
    source: Arc<Mutex<Box<dyn AudioSource>>>,
    sink: Arc<Mutex<Box<dyn AudioSink>>>,
    mic_enabled: watch::Sender<bool>,
    devices: Devices,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("uplink", &self.spec)
            .field("mic_enabled", &*self.mic_enabled.borrow())
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl MediaEngine {
    /// The media of a transport named `transport` whose wire takes the microphone as `spec`
    /// says. Devices are not opened here but by `init_devices` or [`MediaEngine::prepare`].
    ///
    /// # Errors
    /// [`BuildError::InvalidSampleRate`] or [`BuildError::InvalidFrameDuration`] for an unusable
    /// spec; [`BuildError::Audio`] when the audio path cannot be set up.
    pub fn new(
        options: AudioOptions,
        spec: UplinkSpec,
        transport: &'static str,
    ) -> Result<Self, BuildError> {
        spec.format
            .validate()
            .map_err(|_| BuildError::InvalidSampleRate(spec.format.sample_rate))?;
        if spec.frame_duration > std::time::Duration::from_secs(1)
            || spec.format.frames_in(spec.frame_duration) == 0
        {
            return Err(BuildError::InvalidFrameDuration(spec.frame_duration));
        }
        let ends = Devices::build(
            options.input,
            options.output,
            spec,
            transport,
            #[cfg(feature = "devices")]
            options.devices,
        )
        .map_err(BuildError::Audio)?;
        Ok(MediaEngine {
            spec,
            source: Arc::new(Mutex::new(ends.source)),
            sink: Arc::new(Mutex::new(ends.sink)),
            mic_enabled: watch::Sender::new(options.mic_enabled),
            devices: ends.media,
        })
    }

    /// The uplink spec the engine was built for.
    pub fn uplink_spec(&self) -> UplinkSpec {
        self.spec
    }

    /// Where device events go (the client's transport-level sink, from `Transport::attach`).
    pub fn attach(&self, events: TransportEventSink) {
        self.devices.attach(events);
    }

    /// The sink given to [`attach`](Self::attach), if any: where events outliving a session
    /// go (tracks stopping as the session ends).
    pub fn attached(&self) -> Option<TransportEventSink> {
        self.devices.attached()
    }

    /// Opens what is not open yet before a connection is made, so no connection is made for a
    /// session that would have no audio path.
    ///
    /// # Errors
    /// [`TransportError::Media`] naming the device error and the headless alternatives.
    pub async fn prepare(&self) -> Result<(), TransportError> {
        if self.devices.is_ready() { Ok(()) } else { self.devices.init(false).await }
    }

    /// Watches the microphone switch (for wires that announce it, like SmallWebRTC's
    /// `trackStatus`).
    pub fn watch_mic(&self) -> watch::Receiver<bool> {
        self.mic_enabled.subscribe()
    }

    /// Starts the bot-audio pipeline of a session whose events go to `events`. The microphone
    /// starts with [`MediaSession::start_mic`], once the wire can carry it.
    pub fn start_session(&self, events: TransportEventSink) -> MediaSession {
        let span = tracing::Span::current();
        let (bot_audio, rx) = BotAudio::new(events.clone(), self.attached());
        let downlink =
            tokio::spawn(downlink::run(self.sink.clone(), rx, bot_audio.clone()).instrument(span));
        MediaSession {
            events,
            transport_events: self.attached(),
            source: self.source.clone(),
            spec: self.spec,
            mic_enabled: self.mic_enabled.subscribe(),
            drop_stale: self.devices.selected_mic().is_some(),
            ready: watch::Sender::new(false),
            bot_audio,
            tasks: vec![downlink],
        }
    }

    /// Closes the audio sink (a WAV file gets its final header, an in-memory sink's stream
    /// ends). Call it when done with the transport, after the last session; the sink may
    /// refuse audio afterwards.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the sink fails to close.
    pub async fn close_sink(&self) -> Result<(), TransportError> {
        self.sink
            .lock()
            .await
            .close()
            .await
            .map_err(|e| TransportError::media("the audio sink failed to close", e))
    }
}

#[async_trait]
impl MediaControl for MediaEngine {
    /// Opens the microphone and speaker (the devices chosen, or the defaults) unless already
    /// open; a program-given source or sink counts as open. Reports `initializing`, then
    /// `granted` or `error` per device, and the device lists. During a session, it re-opens a
    /// device that failed.
    async fn init_devices(&self) -> Result<(), TransportError> {
        self.devices.init(true).await
    }

    async fn enable_mic(&self, enabled: bool) -> Result<(), TransportError> {
        self.mic_enabled.send_replace(enabled);
        Ok(())
    }

    fn is_mic_enabled(&self) -> bool {
        *self.mic_enabled.borrow()
    }

    /// The microphones of this machine (feature `devices`). Blocking: a few milliseconds, a
    /// server round trip with PulseAudio.
    fn available_mics(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        self.devices.available(Side::Mic)
    }

    /// The speakers of this machine (feature `devices`); blocking, as `available_mics`.
    fn available_speakers(&self) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        self.devices.available(Side::Speaker)
    }

    /// Opens the microphone `device_id` and sends from it from the next frame on,
    /// mid-session too; replaces a program-given source as well. On failure the current
    /// source stays in use and a device error event is reported too.
    async fn update_mic(&self, device_id: &str) -> Result<(), TransportError> {
        self.devices.update(Side::Mic, device_id).await
    }

    /// Opens the speaker `device_id` and plays the bot from the next frame on (audio queued
    /// for the previous speaker is dropped), mid-session too.
    async fn update_speaker(&self, device_id: &str) -> Result<(), TransportError> {
        self.devices.update(Side::Speaker, device_id).await
    }

    fn selected_mic(&self) -> Option<MediaDeviceInfo> {
        self.devices.selected_mic()
    }

    fn selected_speaker(&self) -> Option<MediaDeviceInfo> {
        self.devices.selected_speaker()
    }

    /// The states of the microphone and speaker (the camera is always `uninitialized`).
    fn media_state(&self) -> MediaState {
        self.devices.media_state()
    }
}

impl Drop for MediaEngine {
    /// The transport is gone: its sink is finished (a WAV file gets its header and the last
    /// converted samples, an in-memory sink's stream ends, a custom sink sees `close`), even
    /// if the program never called [`close_sink`](Self::close_sink).
    fn drop(&mut self) {
        let sink = Arc::clone(&self.sink);
        // Most sinks close without waiting: done before the drop returns.
        let closed_now = match sink.try_lock() {
            Ok(mut sink) => sink.close().now_or_never().map(|result| {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "the audio sink failed to close");
                }
            }),
            Err(_) => None,
        };
        // One that must wait (or is still in use) closes on the runtime, if there is one.
        if closed_now.is_none()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = sink.lock().await.close().await {
                    tracing::warn!(error = %e, "the audio sink failed to close");
                }
            });
        }
    }
}

/// The media pipelines of one session: bot audio from its start, the microphone from
/// [`start_mic`](Self::start_mic). Dropping it stops them; [`stop`](Self::stop) also waits.
pub struct MediaSession {
    events: TransportEventSink,
    transport_events: Option<TransportEventSink>,
    source: Arc<Mutex<Box<dyn AudioSource>>>,
    spec: UplinkSpec,
    mic_enabled: watch::Receiver<bool>,
    drop_stale: bool,
    ready: watch::Sender<bool>,
    bot_audio: BotAudio,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("generation", &self.events.generation())
            .field("ready", &*self.ready.borrow())
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// Starts the microphone pipeline into `wire` (once; a second call is ignored). It stops
    /// when `ended` resolves (the transport's connection is over, whoever ended it), when the
    /// source ends, or with [`stop`](Self::stop): a source blocked in `next_frame` is not left
    /// running after its session.
    pub fn start_mic(
        &mut self,
        wire: impl MicWire,
        ended: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        if self.tasks.len() > 1 {
            return;
        }
        let span = tracing::Span::current();
        let (captured_tx, captured_rx) = uplink::capture_channel();
        let tracks =
            TrackSinks { session: self.events.clone(), transport: self.transport_events.clone() };
        let capture = tokio::spawn(
            uplink::capture(
                self.source.clone(),
                self.spec,
                self.mic_enabled.clone(),
                self.drop_stale,
                captured_tx,
                self.events.clone(),
            )
            .instrument(span.clone()),
        );
        let up = tokio::spawn(
            uplink::uplink(captured_rx, self.ready.subscribe(), Box::new(wire), self.spec, tracks)
                .instrument(span.clone()),
        );
        let handles = [capture.abort_handle(), up.abort_handle()];
        let watcher = tokio::spawn(
            async move {
                ended.await;
                tracing::debug!("connection over: the microphone pipeline stops");
                for handle in handles {
                    handle.abort();
                }
            }
            .instrument(span),
        );
        self.tasks.extend([capture, up, watcher]);
    }

    /// The bot answered `client-ready`: audio held back until now goes out.
    pub fn bot_ready(&self) {
        self.ready.send_replace(true);
    }

    /// The bot's audio pipeline: the wire feeds it through [`BotAudio::stream`].
    pub fn bot_audio(&self) -> &BotAudio {
        &self.bot_audio
    }

    /// The bot was interrupted: drops buffered bot audio now.
    pub fn flush_bot_audio(&self) {
        self.bot_audio.flush();
    }

    /// Stops the pipelines and waits for them (the source and sink are free afterwards).
    pub async fn stop(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
