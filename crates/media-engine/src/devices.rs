//! A transport's audio ends and the local devices behind them.
//!
//! The microphone side is always a [`SwitchableSource`] converting to the wire's uplink format
//! and the speaker side a [`SwitchableSink`]: what is inside them (a program-given headless
//! source or sink, or a device opened here) can be replaced at any time, mid-session too,
//! without the session noticing.
//!
//! Where audio comes from and goes to:
//! - a source or sink given to the builder is used as is (its media state is `granted` once
//!   the transport initialises its media);
//! - a device picked by id or name (feature `devices`) is opened by
//!   [`Devices::init`] (from `init_devices` or `connect`) or by `update_mic` /
//!   `update_speaker`;
//! - with neither, the default device is used (feature `devices`); when it cannot be opened,
//!   or the feature is off, `init_devices` / `connect` fail with a message naming the
//!   headless alternatives.
//!
//! Device states and errors are reported as [`TransportEvent`]s on the sink given to
//! `attach` (they belong to the transport, not to a session). Opening reports
//! `initializing`, then `granted` or `error` (with a [`TransportEvent::DeviceError`]);
//! a stream that fails later (a device unplugged, the sound server gone) is noticed through
//! the device layer's event stream (feature `devices`) and reported the same way.

use std::sync::{Arc, Mutex as StdMutex, MutexGuard};

use async_trait::async_trait;
use pipecat_core::media::{
    DeviceError, DeviceErrorKind, DeviceKind, DeviceState, MediaDeviceInfo, MediaState,
};
use pipecat_core::{TransportError, TransportEvent, TransportEventSink};
use pipecat_media::{
    AudioDeviceError, AudioFormat, AudioFrame, AudioSink, AudioSource, DeviceSelector, MediaError,
    NullSink, SwitchableSink, SwitchableSource,
};
#[cfg(feature = "devices")]
use pipecat_media::{SilenceSource, SinkSwitch, SourceSwitch};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::options::{InputChoice, OutputChoice};
use crate::uplink::UplinkSpec;

/// The headless sources, named in every error about a missing microphone.
pub(crate) const HEADLESS_SOURCES: &str = "use a headless source instead: the transport \
     builder's `audio_source` with a WavFileSource, MemorySource, ToneSource or SilenceSource \
     (or `without_audio()` for a session without audio)";

/// The headless sinks, named in every error about a missing speaker.
pub(crate) const HEADLESS_SINKS: &str = "use a headless sink instead: the transport builder's \
     `audio_sink` with a WavFileSink, MemorySink (pulled by the program) or NullSink (or \
     `without_audio()` for a session without audio)";

/// Which side of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The microphone (audio up).
    Mic,
    /// The speaker (audio down).
    Speaker,
}

impl Side {
    fn kind(self) -> DeviceKind {
        match self {
            Side::Mic => DeviceKind::Mic,
            Side::Speaker => DeviceKind::Speaker,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Side::Mic => "microphone",
            Side::Speaker => "speaker",
        }
    }

    fn headless(self) -> &'static str {
        match self {
            Side::Mic => HEADLESS_SOURCES,
            Side::Speaker => HEADLESS_SINKS,
        }
    }
}

/// What backs one side.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Backing {
    /// A source or sink the program gave; no device involved.
    Given,
    /// A device, by selector: opened on init (again after an error).
    Device(DeviceSelector),
}

/// Mutable media state, behind one lock.
#[derive(Debug)]
struct State {
    mic: Backing,
    speaker: Backing,
    /// The device states as reported to the client.
    media: MediaState,
    /// The devices in use (`None` for a program-given source or sink).
    mic_device: Option<MediaDeviceInfo>,
    speaker_device: Option<MediaDeviceInfo>,
    /// The device lists last reported, so unchanged lists are not reported again.
    #[cfg(feature = "devices")]
    reported_mics: Option<Vec<MediaDeviceInfo>>,
    #[cfg(feature = "devices")]
    reported_speakers: Option<Vec<MediaDeviceInfo>>,
}

impl State {
    fn backing(&self, side: Side) -> &Backing {
        match side {
            Side::Mic => &self.mic,
            Side::Speaker => &self.speaker,
        }
    }

    fn state_mut(&mut self, side: Side) -> &mut DeviceState {
        match side {
            Side::Mic => &mut self.media.mic,
            Side::Speaker => &mut self.media.speaker,
        }
    }

    fn device_mut(&mut self, side: Side) -> &mut Option<MediaDeviceInfo> {
        match side {
            Side::Mic => &mut self.mic_device,
            Side::Speaker => &mut self.speaker_device,
        }
    }
}

/// The device side of a transport's media: the switches of its source and sink, the device
/// states, and the devices.
pub(crate) struct Devices {
    shared: Arc<Shared>,
    /// Serialises opening and switching (init, update_mic, update_speaker).
    ops: Mutex<()>,
}

/// What the device watcher shares with the transport.
struct Shared {
    #[cfg(feature = "devices")]
    source_switch: SourceSwitch,
    #[cfg(feature = "devices")]
    sink_switch: SinkSwitch,
    #[cfg(feature = "devices")]
    input: UplinkSpec,
    /// The transport's name, for "unsupported" and "no `devices` feature" errors.
    transport: &'static str,
    state: StdMutex<State>,
    events: StdMutex<Option<TransportEventSink>>,
    #[cfg(feature = "devices")]
    devices: std::sync::OnceLock<pipecat_media::AudioDevices>,
    /// The tasks forwarding device failures: one for the shared device layer (microphones),
    /// one per speaker's own device layer.
    #[cfg(feature = "devices")]
    watchers: StdMutex<Watchers>,
}

/// The device watcher tasks.
#[cfg(feature = "devices")]
#[derive(Debug, Default)]
struct Watchers {
    shared_started: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices").field("state", &*self.shared.lock()).finish_non_exhaustive()
    }
}

#[cfg(feature = "devices")]
impl Drop for Devices {
    fn drop(&mut self) {
        let mut watchers = self.shared.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for task in watchers.tasks.drain(..) {
            task.abort();
        }
    }
}

/// A placeholder microphone until a device is opened, and the microphone of a session
/// without audio: produces nothing.
struct PendingSource(AudioFormat);

#[async_trait]
impl AudioSource for PendingSource {
    fn format(&self) -> AudioFormat {
        self.0
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        std::future::pending::<()>().await;
        Ok(None)
    }
}

/// A transport's audio ends, built from the program's choices.
pub(crate) struct AudioEnds {
    pub(crate) source: Box<dyn AudioSource>,
    pub(crate) sink: Box<dyn AudioSink>,
    pub(crate) media: Devices,
}

impl Devices {
    /// Wraps the chosen source and sink in their switches. Devices are not opened here.
    pub(crate) fn build(
        input: InputChoice,
        output: OutputChoice,
        config: UplinkSpec,
        transport: &'static str,
        #[cfg(feature = "devices")] devices: Option<pipecat_media::AudioDevices>,
    ) -> Result<AudioEnds, MediaError> {
        let format = config.format;
        let (initial_source, mic): (Box<dyn AudioSource>, Backing) = match input {
            InputChoice::Source(source) => (source, Backing::Given),
            InputChoice::Nothing => (Box::new(PendingSource(format)), Backing::Given),
            InputChoice::Device(selector) => {
                (Box::new(PendingSource(format)), Backing::Device(selector))
            }
        };
        let (initial_sink, speaker): (Box<dyn AudioSink>, Backing) = match output {
            OutputChoice::Sink(sink) => (sink, Backing::Given),
            OutputChoice::Discard => {
                (Box::new(NullSink::new(AudioFormat::MONO_48K)), Backing::Given)
            }
            OutputChoice::Device(selector) => {
                (Box::new(NullSink::new(AudioFormat::MONO_48K)), Backing::Device(selector))
            }
        };
        let (source, source_switch) = SwitchableSource::new(initial_source, format)?;
        let (sink, sink_switch) = SwitchableSink::new(initial_sink);
        #[cfg(feature = "devices")]
        let device_cell = std::sync::OnceLock::new();
        #[cfg(feature = "devices")]
        if let Some(devices) = devices {
            let _ = device_cell.set(devices);
        }
        #[cfg(not(feature = "devices"))]
        let _ = (source_switch, sink_switch);
        let shared = Arc::new(Shared {
            #[cfg(feature = "devices")]
            source_switch,
            #[cfg(feature = "devices")]
            sink_switch,
            #[cfg(feature = "devices")]
            input: config,
            transport,
            state: StdMutex::new(State {
                mic,
                speaker,
                media: MediaState::default(),
                mic_device: None,
                speaker_device: None,
                #[cfg(feature = "devices")]
                reported_mics: None,
                #[cfg(feature = "devices")]
                reported_speakers: None,
            }),
            events: StdMutex::new(None),
            #[cfg(feature = "devices")]
            devices: device_cell,
            #[cfg(feature = "devices")]
            watchers: StdMutex::new(Watchers::default()),
        });
        Ok(AudioEnds {
            source: Box::new(source),
            sink: Box::new(sink),
            media: Devices { shared, ops: Mutex::new(()) },
        })
    }

    /// Where device events go (the client's transport-level sink).
    pub(crate) fn attach(&self, events: TransportEventSink) {
        *self.shared.events.lock().unwrap_or_else(|e| e.into_inner()) = Some(events);
    }

    /// The sink given to `attach`, if any.
    pub(crate) fn attached(&self) -> Option<TransportEventSink> {
        self.shared.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The device states.
    pub(crate) fn media_state(&self) -> MediaState {
        self.shared.lock().media.clone()
    }

    /// The microphone device in use (`None` for a program-given source).
    pub(crate) fn selected_mic(&self) -> Option<MediaDeviceInfo> {
        self.shared.lock().mic_device.clone()
    }

    /// The speaker device in use (`None` for a program-given sink).
    pub(crate) fn selected_speaker(&self) -> Option<MediaDeviceInfo> {
        self.shared.lock().speaker_device.clone()
    }

    /// `true` when both sides are ready for a session (`granted`).
    pub(crate) fn is_ready(&self) -> bool {
        let state = self.shared.lock();
        state.media.mic == DeviceState::Granted && state.media.speaker == DeviceState::Granted
    }

    /// Opens what is not open yet: program-given ends become `granted`, devices are opened
    /// (again after an error). Both sides are tried; the first failure is returned. With
    /// `report_lists`, the device lists are reported too (when they changed).
    ///
    /// # Errors
    /// [`TransportError::Media`] naming the device error and the headless alternatives.
    pub(crate) async fn init(&self, report_lists: bool) -> Result<(), TransportError> {
        let _op = self.ops.lock().await;
        #[cfg(feature = "devices")]
        self.ensure_watcher();
        let mic = self.init_side(Side::Mic).await;
        let speaker = self.init_side(Side::Speaker).await;
        if report_lists {
            self.report_lists().await;
        }
        match (mic, speaker) {
            // Both sides failed: say so at once, the user has two things to fix.
            (
                Err(TransportError::Media { message: mic, source }),
                Err(TransportError::Media { message: speaker, .. }),
            ) => Err(TransportError::Media { message: format!("{mic}. Also: {speaker}"), source }),
            (mic, speaker) => mic.and(speaker),
        }
    }

    async fn init_side(&self, side: Side) -> Result<(), TransportError> {
        let backing = {
            let state = self.shared.lock();
            let current = match side {
                Side::Mic => &state.media.mic,
                Side::Speaker => &state.media.speaker,
            };
            if *current == DeviceState::Granted {
                return Ok(());
            }
            state.backing(side).clone()
        };
        match backing {
            Backing::Given => {
                self.shared.set_state(side, DeviceState::Granted);
                Ok(())
            }
            Backing::Device(selector) => {
                self.shared.set_state(side, DeviceState::Initializing);
                match self.open(side, selector.clone()).await {
                    Ok(info) => {
                        self.shared.installed(side, info);
                        Ok(())
                    }
                    Err(error) => {
                        let message = open_failure(side, &selector, &error, self.shared.transport);
                        warn!(device = side.noun(), error = %error, "audio device not opened");
                        self.shared.failed(side, &error);
                        Err(TransportError::media(message, error))
                    }
                }
            }
        }
    }

    /// Switches one side to the device `id` (mid-session too). On failure the current
    /// source or sink stays in use and the error is also reported as a device error event.
    ///
    /// # Errors
    /// [`TransportError::Media`] when the device cannot be found or opened;
    /// [`TransportError::Unsupported`] without the `devices` feature.
    pub(crate) async fn update(&self, side: Side, id: &str) -> Result<(), TransportError> {
        #[cfg(not(feature = "devices"))]
        {
            let _ = id;
            Err(TransportError::unsupported(
                format!("{} selection (needs the `devices` feature)", side.noun()),
                self.shared.transport,
            ))
        }
        #[cfg(feature = "devices")]
        {
            let _op = self.ops.lock().await;
            self.ensure_watcher();
            let selector = DeviceSelector::Id(id.to_owned());
            let current = {
                let state = self.shared.lock();
                let granted = match side {
                    Side::Mic => state.media.mic == DeviceState::Granted,
                    Side::Speaker => state.media.speaker == DeviceState::Granted,
                };
                let device = match side {
                    Side::Mic => state.mic_device.clone(),
                    Side::Speaker => state.speaker_device.clone(),
                };
                device.filter(|_| granted)
            };
            // Opening the device already in use again would fail on exclusive hardware.
            if let Some(current) = current
                && self.find(side, selector.clone()).await.is_ok_and(|info| info.id == current.id)
            {
                debug!(device = side.noun(), id = %current.id, "already in use");
                return Ok(());
            }
            match self.open(side, selector.clone()).await {
                Ok(info) => {
                    {
                        let mut state = self.shared.lock();
                        match side {
                            Side::Mic => state.mic = Backing::Device(selector),
                            Side::Speaker => state.speaker = Backing::Device(selector),
                        }
                    }
                    self.shared.installed(side, info);
                    Ok(())
                }
                Err(error) => {
                    warn!(device = side.noun(), %error, "device switch failed; keeping the current one");
                    self.shared.emit(TransportEvent::DeviceError(core_error(side, &error)));
                    let message =
                        format!("the {} {selector} could not be opened: {error}", side.noun());
                    Err(TransportError::media(message, error))
                }
            }
        }
    }

    /// The devices of one side (blocking: a few milliseconds, a server round trip with
    /// PulseAudio).
    ///
    /// # Errors
    /// [`TransportError::Media`] when the audio host cannot list devices;
    /// [`TransportError::Unsupported`] without the `devices` feature.
    pub(crate) fn available(&self, side: Side) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        #[cfg(not(feature = "devices"))]
        {
            Err(TransportError::unsupported(
                format!("{} listing (needs the `devices` feature)", side.noun()),
                self.shared.transport,
            ))
        }
        #[cfg(feature = "devices")]
        {
            self.shared.list(side)
        }
    }

    /// Reports the device lists when they changed since last reported.
    async fn report_lists(&self) {
        #[cfg(feature = "devices")]
        {
            let shared = self.shared.clone();
            let lists = tokio::task::spawn_blocking(move || {
                (shared.list(Side::Mic).ok(), shared.list(Side::Speaker).ok())
            })
            .await;
            let Ok((mics, speakers)) = lists else { return };
            let mut events = Vec::new();
            {
                let mut state = self.shared.lock();
                if let Some(mics) = mics
                    && state.reported_mics.as_ref() != Some(&mics)
                {
                    state.reported_mics = Some(mics.clone());
                    events.push(TransportEvent::AvailableMicsUpdated(mics));
                }
                if let Some(speakers) = speakers
                    && state.reported_speakers.as_ref() != Some(&speakers)
                {
                    state.reported_speakers = Some(speakers.clone());
                    events.push(TransportEvent::AvailableSpeakersUpdated(speakers));
                }
            }
            for event in events {
                self.shared.emit(event);
            }
        }
    }

    /// Opens the device of `side` and swaps it in; returns what it is.
    async fn open(
        &self,
        side: Side,
        selector: DeviceSelector,
    ) -> Result<MediaDeviceInfo, AudioDeviceError> {
        #[cfg(not(feature = "devices"))]
        {
            let _ = (side, selector);
            Err(AudioDeviceError::Disabled)
        }
        #[cfg(feature = "devices")]
        {
            let shared = self.shared.clone();
            let (info, host) =
                tokio::task::spawn_blocking(move || shared.open_blocking(side, &selector))
                    .await
                    .unwrap_or_else(|e| {
                        Err(AudioDeviceError::StreamFailed {
                            device: side.noun().to_owned(),
                            reason: format!("the thread opening the device failed: {e}"),
                        })
                    })?;
            if let Some(host) = host {
                self.watch(host.events());
            }
            Ok(info)
        }
    }

    /// Resolves a selector without opening the device.
    #[cfg(feature = "devices")]
    async fn find(
        &self,
        side: Side,
        selector: DeviceSelector,
    ) -> Result<MediaDeviceInfo, AudioDeviceError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            shared.devices().find(direction(side), &selector).map(|info| device_info(side, &info))
        })
        .await
        .unwrap_or(Err(AudioDeviceError::NotFound {
            direction: direction(side),
            selector: "the device (lookup failed)".into(),
        }))
    }

    /// Starts forwarding the failures of the shared device layer's streams, once.
    #[cfg(feature = "devices")]
    fn ensure_watcher(&self) {
        let mut watchers = self.shared.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if watchers.shared_started {
            return;
        }
        watchers.shared_started = true;
        // Subscribing may create the device layer: off the runtime's threads.
        let weak = Arc::downgrade(&self.shared);
        watchers.tasks.push(tokio::spawn(async move {
            let Some(shared) = weak.upgrade() else { return };
            let Ok(stream) = tokio::task::spawn_blocking(move || shared.devices().events()).await
            else {
                return;
            };
            watch_devices(weak, stream).await;
        }));
    }

    /// Forwards the failures of the streams of another device layer (a speaker's own).
    #[cfg(feature = "devices")]
    fn watch(&self, stream: pipecat_media::DeviceEvents) {
        let mut watchers = self.shared.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.tasks.retain(|task| !task.is_finished());
        watchers.tasks.push(tokio::spawn(watch_devices(Arc::downgrade(&self.shared), stream)));
    }
}

/// The error text of a failed open: what failed, and for the default device the headless
/// alternatives.
fn open_failure(
    side: Side,
    selector: &DeviceSelector,
    error: &AudioDeviceError,
    transport: &str,
) -> String {
    match (selector, error) {
        (_, AudioDeviceError::Disabled) => format!(
            "this build has no `devices` feature, so there is no {}; {} (or enable the \
             `devices` feature of pipecat-{transport})",
            side.noun(),
            side.headless()
        ),
        (DeviceSelector::Default, _) => {
            format!("no default {} could be opened ({error}); {}", side.noun(), side.headless())
        }
        _ => format!(
            "the {} {selector} could not be opened ({error}); {}",
            side.noun(),
            side.headless()
        ),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, event: TransportEvent) {
        match self.events.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(events) => events.emit(event),
            None => debug!(?event, "device event not reported: the transport is not attached"),
        }
    }

    /// Sets a side's state; returns the new media state if it changed (to report).
    fn update_state(&self, side: Side, new: DeviceState) -> Option<MediaState> {
        let mut state = self.lock();
        let slot = state.state_mut(side);
        if *slot == new {
            return None;
        }
        *slot = new;
        Some(state.media.clone())
    }

    /// Sets a side's state; reports the new media state when it changed.
    fn set_state(&self, side: Side, new: DeviceState) {
        if let Some(media) = self.update_state(side, new) {
            self.emit(TransportEvent::MediaStateChanged(media));
        }
    }

    /// A device was opened and swapped in: `granted`, and the device change reported.
    fn installed(&self, side: Side, info: MediaDeviceInfo) {
        info!(device = side.noun(), id = %info.id, name = %info.name, "audio device in use");
        let changed = {
            let mut state = self.lock();
            let slot = state.device_mut(side);
            let changed = slot.as_ref() != Some(&info);
            *slot = Some(info.clone());
            changed
        };
        self.set_state(side, DeviceState::Granted);
        if changed {
            self.emit(match side {
                Side::Mic => TransportEvent::MicUpdated(info),
                Side::Speaker => TransportEvent::SpeakerUpdated(info),
            });
        }
    }

    /// A device failed: a device error event and the `error` state.
    fn failed(&self, side: Side, error: &AudioDeviceError) {
        let core = core_error(side, error);
        // The state first: whoever sees the event reads the new state.
        let changed = self.update_state(
            side,
            DeviceState::Error { reason: core.kind, details: core.details.clone() },
        );
        self.emit(TransportEvent::DeviceError(core));
        if let Some(media) = changed {
            self.emit(TransportEvent::MediaStateChanged(media));
        }
    }
}

#[cfg(feature = "devices")]
impl Shared {
    fn devices(&self) -> &pipecat_media::AudioDevices {
        self.devices.get_or_init(pipecat_media::AudioDevices::new)
    }

    fn list(&self, side: Side) -> Result<Vec<MediaDeviceInfo>, TransportError> {
        let devices = self.devices();
        let listed = match side {
            Side::Mic => devices.inputs(),
            Side::Speaker => devices.outputs(),
        };
        listed
            .map(|list| list.iter().map(|d| device_info(side, d)).collect())
            .map_err(|e| TransportError::media(format!("cannot list {}s: {}", side.noun(), e), e))
    }

    /// Opens a device and replaces the current source or sink with it (blocking). A speaker
    /// is opened on a device layer of its own, returned so its failures can be watched.
    ///
    /// Why: cpal's PulseAudio host cannot create a second playback stream on one server
    /// connection while the first runs ("Invalid argument"), and switching speakers needs
    /// the new stream open before the old one closes.
    fn open_blocking(
        &self,
        side: Side,
        selector: &DeviceSelector,
    ) -> Result<(MediaDeviceInfo, Option<pipecat_media::AudioDevices>), AudioDeviceError> {
        let switch_failed = |id: &str, e: MediaError| AudioDeviceError::StreamFailed {
            device: id.to_owned(),
            reason: format!("the transport's audio path is gone: {e}"),
        };
        match side {
            Side::Mic => {
                let config = pipecat_media::InputConfig::default()
                    .with_preferred_format(self.input.format)
                    .with_frame_duration(self.input.frame_duration);
                let source = self.devices().open_input(selector, config)?;
                let info = device_info(side, source.info());
                self.source_switch
                    .replace(Box::new(source))
                    .map_err(|e| switch_failed(&info.id, e))?;
                Ok((info, None))
            }
            Side::Speaker => {
                let host = pipecat_media::AudioDevices::new();
                let sink = host.open_output(selector, pipecat_media::OutputConfig::default())?;
                let info = device_info(side, sink.info());
                self.sink_switch.replace(Box::new(sink)).map_err(|e| switch_failed(&info.id, e))?;
                Ok((info, Some(host)))
            }
        }
    }
}

/// Forwards the failures of the devices in use until the transport is gone.
#[cfg(feature = "devices")]
async fn watch_devices(shared: std::sync::Weak<Shared>, mut stream: pipecat_media::DeviceEvents) {
    use futures::StreamExt;
    use pipecat_media::DeviceEvent;

    while let Some(event) = stream.next().await {
        let Some(shared) = shared.upgrade() else { return };
        let DeviceEvent::Error { direction: dir, device, error } = event else { continue };
        let side = match dir {
            pipecat_media::DeviceDirection::Input => Side::Mic,
            pipecat_media::DeviceDirection::Output => Side::Speaker,
        };
        // Only a device in use that was working: failures while opening are reported by
        // the code that opens.
        let in_use = {
            let state = shared.lock();
            let granted = match side {
                Side::Mic => state.media.mic == DeviceState::Granted,
                Side::Speaker => state.media.speaker == DeviceState::Granted,
            };
            let current = match side {
                Side::Mic => state.mic_device.as_ref(),
                Side::Speaker => state.speaker_device.as_ref(),
            };
            granted && current.is_some_and(|d| d.id == device)
        };
        if in_use {
            warn!(device = side.noun(), id = %device, %error, "audio device failed");
            if side == Side::Mic {
                // A dead microphone yields nothing; like a muted one, send silence so the
                // bot's input clock keeps running until it is re-opened or replaced.
                let format = shared.input.format;
                if let Ok(silence) = SilenceSource::new(format) {
                    let silence = silence.frame_duration(shared.input.frame_duration);
                    let _ = shared.source_switch.replace(Box::new(silence));
                }
            }
            shared.failed(side, &error);
        }
    }
}

#[cfg(feature = "devices")]
fn direction(side: Side) -> pipecat_media::DeviceDirection {
    match side {
        Side::Mic => pipecat_media::DeviceDirection::Input,
        Side::Speaker => pipecat_media::DeviceDirection::Output,
    }
}

/// A device as the client reports it.
#[cfg(feature = "devices")]
fn device_info(side: Side, info: &pipecat_media::DeviceInfo) -> MediaDeviceInfo {
    MediaDeviceInfo {
        id: info.id.clone(),
        name: info.name.clone(),
        kind: side.kind(),
        is_default: info.is_default,
    }
}

/// A device error as the client reports it.
pub(crate) fn core_error(side: Side, error: &AudioDeviceError) -> DeviceError {
    DeviceError { device: side.kind(), kind: error_kind(error), details: error.to_string() }
}

/// The client's name for what went wrong.
pub(crate) fn error_kind(error: &AudioDeviceError) -> DeviceErrorKind {
    match error {
        // No device at all: no sound card, no audio system, no device support in this build.
        AudioDeviceError::NotFound { .. }
        | AudioDeviceError::NotAvailable { .. }
        | AudioDeviceError::HostUnavailable { .. }
        | AudioDeviceError::Disabled => DeviceErrorKind::NotFound,
        AudioDeviceError::InUse { .. } => DeviceErrorKind::InUse,
        AudioDeviceError::PermissionDenied { .. } => DeviceErrorKind::Permission,
        AudioDeviceError::UnsupportedConfig { .. } => DeviceErrorKind::UnsupportedConfig,
        AudioDeviceError::StreamFailed { .. } => DeviceErrorKind::StreamFailure,
        _ => DeviceErrorKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_media::DeviceDirection;

    #[test]
    fn device_errors_map_to_the_client_kinds() {
        let cases = [
            (
                AudioDeviceError::NotFound {
                    direction: DeviceDirection::Input,
                    selector: "x".into(),
                },
                DeviceErrorKind::NotFound,
            ),
            (
                AudioDeviceError::NotAvailable { device: "d".into(), reason: "r".into() },
                DeviceErrorKind::NotFound,
            ),
            (
                AudioDeviceError::InUse { device: "d".into(), reason: "r".into() },
                DeviceErrorKind::InUse,
            ),
            (
                AudioDeviceError::PermissionDenied { device: "d".into(), reason: "r".into() },
                DeviceErrorKind::Permission,
            ),
            (
                AudioDeviceError::UnsupportedConfig { device: "d".into(), reason: "r".into() },
                DeviceErrorKind::UnsupportedConfig,
            ),
            (
                AudioDeviceError::StreamFailed { device: "d".into(), reason: "r".into() },
                DeviceErrorKind::StreamFailure,
            ),
            (AudioDeviceError::HostUnavailable { reason: "r".into() }, DeviceErrorKind::NotFound),
            (AudioDeviceError::Disabled, DeviceErrorKind::NotFound),
        ];
        for (error, kind) in cases {
            let core = core_error(Side::Speaker, &error);
            assert_eq!(core.kind, kind, "{error}");
            assert_eq!(core.device, DeviceKind::Speaker);
            assert_eq!(core.details, error.to_string());
        }
    }

    #[test]
    fn failures_name_the_headless_alternatives() {
        let error = AudioDeviceError::NotAvailable {
            device: "alsa:default".into(),
            reason: "no card".into(),
        };
        let text = open_failure(Side::Mic, &DeviceSelector::Default, &error, "websocket");
        assert!(text.starts_with("no default microphone could be opened"), "{text}");
        for name in
            ["WavFileSource", "MemorySource", "ToneSource", "SilenceSource", "without_audio"]
        {
            assert!(text.contains(name), "{text}");
        }
        let text = open_failure(
            Side::Speaker,
            &DeviceSelector::Default,
            &AudioDeviceError::Disabled,
            "daily",
        );
        assert!(text.contains("`devices` feature of pipecat-daily"), "{text}");
        for name in ["WavFileSink", "MemorySink", "NullSink"] {
            assert!(text.contains(name), "{text}");
        }
        let text =
            open_failure(Side::Mic, &DeviceSelector::Name("USB".into()), &error, "websocket");
        assert!(text.contains("name \"USB\""), "{text}");
    }
}
