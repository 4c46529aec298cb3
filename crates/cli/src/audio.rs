//! The audio ends of a session: sources and sinks from `--input` / `--output`, wrapped in
//! taps that count frames and feed the recording.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pipecat::async_trait::async_trait;
use pipecat::media::{
    AudioFormat, AudioFrame, AudioSink, AudioSource, MediaError, NullSink, SilenceSource,
    ToneSource, WavFileSink, WavFileSource,
};
use tokio::sync::Mutex;

use crate::args::{InputSpec, OutputSpec};
use crate::error::CliError;
use crate::record::{Side, StereoRecorder};

/// The format generated input is produced in (what pipecat bots take).
const INPUT_FORMAT: AudioFormat = AudioFormat::MONO_16K;
/// The format bot audio is stored in when written to a file.
const OUTPUT_FILE_FORMAT: AudioFormat = AudioFormat::MONO_24K;
/// How long `tone` sounds before it turns to silence.
pub(crate) const TONE_LENGTH: Duration = Duration::from_secs(1);
/// The tone's amplitude (0..1).
const TONE_AMPLITUDE: f32 = 0.3;

/// Frames and audio time through one tap.
#[derive(Debug, Default)]
pub(crate) struct Counter {
    frames: AtomicU64,
    micros: AtomicU64,
}

impl Counter {
    fn add(&self, frame: &AudioFrame) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(frame.duration().as_micros()).unwrap_or(0);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Frames so far.
    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Audio time so far.
    pub(crate) fn audio(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }
}

/// What the taps of one session count: frames read from the input (up) and written to the
/// output (down).
#[derive(Debug, Default)]
pub(crate) struct AudioCounters {
    /// Frames the transport took from the input.
    pub(crate) up: Counter,
    /// Frames of bot audio the transport delivered.
    pub(crate) down: Counter,
}

/// What a tap does with each frame.
#[derive(Clone)]
pub(crate) struct Tap {
    counters: Arc<AudioCounters>,
    recorder: Option<Arc<crate::record::Recording>>,
}

impl Tap {
    /// A tap counting into `counters` and recording into `recorder`, if any.
    pub(crate) fn new(
        counters: Arc<AudioCounters>,
        recorder: Option<Arc<crate::record::Recording>>,
    ) -> Self {
        Tap { counters, recorder }
    }

    fn audio(&self) -> Option<&StereoRecorder> {
        self.recorder.as_deref().map(|r| &r.audio)
    }
}

/// The user's audio, counted and recorded; after a finite input ends, silence follows (a
/// bot's input should not stall).
pub(crate) struct TapSource {
    inner: Box<dyn AudioSource>,
    after: Option<Box<dyn AudioSource>>,
    tap: Tap,
}

impl TapSource {
    /// Taps `inner`.
    pub(crate) fn new(inner: Box<dyn AudioSource>, tap: Tap) -> Self {
        TapSource { inner, after: None, tap }
    }
}

#[async_trait]
impl AudioSource for TapSource {
    fn format(&self) -> AudioFormat {
        self.inner.format()
    }

    async fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let frame = match &mut self.after {
            Some(after) => after.next_frame().await?,
            None => match self.inner.next_frame().await? {
                Some(frame) => Some(frame),
                None => {
                    let mut silence = Box::new(SilenceSource::new(self.inner.format())?);
                    let frame = silence.next_frame().await?;
                    self.after = Some(silence);
                    frame
                }
            },
        };
        if let Some(frame) = &frame {
            self.tap.counters.up.add(frame);
            if let Some(recorder) = self.tap.audio() {
                recorder.push(Side::User, frame);
            }
        }
        Ok(frame)
    }
}

/// The real sink, closable by the session when it ends (the transport keeps the tap).
pub(crate) type SharedSink = Arc<Mutex<Option<Box<dyn AudioSink>>>>;

/// The bot's audio, counted and recorded on its way to the real sink.
pub(crate) struct TapSink {
    inner: SharedSink,
    format: AudioFormat,
    tap: Tap,
}

impl TapSink {
    /// Taps `inner`; the returned handle closes it.
    pub(crate) fn new(inner: Box<dyn AudioSink>, tap: Tap) -> (Self, SharedSink) {
        let format = inner.format();
        let shared: SharedSink = Arc::new(Mutex::new(Some(inner)));
        (TapSink { inner: Arc::clone(&shared), format, tap }, shared)
    }
}

#[async_trait]
impl AudioSink for TapSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn write(&mut self, frame: AudioFrame) -> Result<(), MediaError> {
        self.tap.counters.down.add(&frame);
        if let Some(recorder) = self.tap.audio() {
            recorder.push(Side::Bot, &frame);
        }
        match self.inner.lock().await.as_mut() {
            Some(sink) => sink.write(frame).await,
            // Closed by the session: the audio is no longer wanted.
            None => Ok(()),
        }
    }

    fn flush(&mut self) {
        if let Ok(mut sink) = self.inner.try_lock()
            && let Some(sink) = sink.as_mut()
        {
            sink.flush();
        }
    }

    async fn close(&mut self) -> Result<(), MediaError> {
        close_shared(&self.inner).await
    }
}

/// Closes the real sink behind a tap (a WAV file gets its header). Later writes are dropped.
pub(crate) async fn close_shared(sink: &SharedSink) -> Result<(), MediaError> {
    let taken = sink.lock().await.take();
    match taken {
        Some(mut sink) => sink.close().await,
        None => Ok(()),
    }
}

/// Device handles that must live as long as the session.
#[derive(Default)]
pub(crate) struct DeviceHandles {
    #[cfg(feature = "devices")]
    _mic: Option<pipecat::media::Microphone>,
    #[cfg(feature = "devices")]
    _speaker: Option<pipecat::media::Speaker>,
}

/// The source for `--input`. WAV files are read in real time; `tone` sounds for
/// [`TONE_LENGTH`]; the tap turns an ended input into silence.
pub(crate) fn open_input(
    spec: &InputSpec,
    looping: bool,
    handles: &mut DeviceHandles,
) -> Result<Box<dyn AudioSource>, CliError> {
    let bad = |e: MediaError| CliError::usage(format!("unusable input: {e}"));
    Ok(match spec {
        InputSpec::Silence => Box::new(SilenceSource::new(INPUT_FORMAT).map_err(bad)?),
        InputSpec::Tone(hz) => Box::new(
            ToneSource::new(INPUT_FORMAT, *hz, TONE_AMPLITUDE).map_err(bad)?.limit(TONE_LENGTH),
        ),
        InputSpec::Wav(path) => Box::new(
            WavFileSource::open(path)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?
                .looping(looping),
        ),
        InputSpec::Mic(name) => open_mic(name.as_deref(), handles)?,
    })
}

/// The sink for `--output`.
pub(crate) fn open_output(
    spec: &OutputSpec,
    handles: &mut DeviceHandles,
) -> Result<Box<dyn AudioSink>, CliError> {
    Ok(match spec {
        OutputSpec::None => Box::new(NullSink::new(OUTPUT_FILE_FORMAT)),
        OutputSpec::Wav(path) => Box::new(
            WavFileSink::create(path, OUTPUT_FILE_FORMAT)
                .map_err(|e| CliError::usage(format!("cannot create {}: {e}", path.display())))?,
        ),
        OutputSpec::Speaker(name) => open_speaker(name.as_deref(), handles)?,
    })
}

#[cfg(feature = "devices")]
fn selector(name: Option<&str>) -> pipecat::media::DeviceSelector {
    match name {
        Some(name) => pipecat::media::DeviceSelector::Name(name.to_owned()),
        None => pipecat::media::DeviceSelector::Default,
    }
}

#[cfg(feature = "devices")]
fn open_mic(
    name: Option<&str>,
    handles: &mut DeviceHandles,
) -> Result<Box<dyn AudioSource>, CliError> {
    let devices = pipecat::media::AudioDevices::new();
    let (source, mic) = devices.microphone(&selector(name), INPUT_FORMAT).map_err(|e| {
        CliError::usage(format!(
            "no microphone ({e}); use --input FILE.wav, silence or tone (see `pipecat devices`)"
        ))
    })?;
    handles._mic = Some(mic);
    Ok(Box::new(source))
}

#[cfg(feature = "devices")]
fn open_speaker(
    name: Option<&str>,
    handles: &mut DeviceHandles,
) -> Result<Box<dyn AudioSink>, CliError> {
    let devices = pipecat::media::AudioDevices::new();
    let (sink, speaker) = devices.speaker(&selector(name), Default::default()).map_err(|e| {
        CliError::usage(format!(
            "no speaker ({e}); use --output FILE.wav or none (see `pipecat devices`)"
        ))
    })?;
    handles._speaker = Some(speaker);
    Ok(Box::new(sink))
}

#[cfg(not(feature = "devices"))]
fn open_mic(_: Option<&str>, _: &mut DeviceHandles) -> Result<Box<dyn AudioSource>, CliError> {
    Err(CliError::usage(
        "this pipecat was built without audio devices (feature `devices`); use --input \
         FILE.wav, silence or tone",
    ))
}

#[cfg(not(feature = "devices"))]
fn open_speaker(_: Option<&str>, _: &mut DeviceHandles) -> Result<Box<dyn AudioSink>, CliError> {
    Err(CliError::usage(
        "this pipecat was built without audio devices (feature `devices`); use --output \
         FILE.wav or none",
    ))
}

/// The default `--input` of `connect`.
pub(crate) fn default_input() -> InputSpec {
    if cfg!(feature = "devices") { InputSpec::Mic(None) } else { InputSpec::Silence }
}

/// The default `--output` of `connect`.
pub(crate) fn default_output() -> OutputSpec {
    if cfg!(feature = "devices") { OutputSpec::Speaker(None) } else { OutputSpec::None }
}

/// `pipecat devices`: the audio devices, one a line.
pub(crate) fn list_devices() -> Result<(), CliError> {
    #[cfg(feature = "devices")]
    {
        let devices = pipecat::media::AudioDevices::new();
        println!("audio host: {}", devices.host_name());
        let show = |title: &str, list: Result<Vec<pipecat::media::DeviceInfo>, _>| match list {
            Ok(list) if list.is_empty() => println!("{title}: none"),
            Ok(list) => {
                println!("{title}:");
                for device in list {
                    let default = if device.is_default { " (default)" } else { "" };
                    println!("  {}  {}{default}", device.id, device.name);
                }
            }
            Err(e) => println!("{title}: cannot list ({e})"),
        };
        show("inputs", devices.inputs());
        show("outputs", devices.outputs());
        Ok(())
    }
    #[cfg(not(feature = "devices"))]
    {
        Err(CliError::usage("this pipecat was built without audio devices (feature `devices`)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_input_turns_to_silence_and_is_counted() {
        let counters = Arc::new(AudioCounters::default());
        let tone = ToneSource::new(INPUT_FORMAT, 440.0, 0.3)
            .unwrap()
            .paced(false)
            .limit(Duration::from_millis(40));
        let mut source = TapSource::new(Box::new(tone), Tap::new(counters.clone(), None));
        for _ in 0..4 {
            let frame = tokio::time::timeout(Duration::from_secs(5), source.next_frame())
                .await
                .unwrap()
                .unwrap()
                .expect("a frame");
            assert_eq!(frame.format(), INPUT_FORMAT);
        }
        assert_eq!(counters.up.frames(), 4);
        assert_eq!(counters.up.audio(), Duration::from_millis(80));
    }

    #[tokio::test]
    async fn a_closed_sink_drops_audio() {
        let counters = Arc::new(AudioCounters::default());
        let (mut sink, shared) = TapSink::new(
            Box::new(NullSink::new(OUTPUT_FILE_FORMAT)),
            Tap::new(counters.clone(), None),
        );
        let frame = AudioFrame::silence(OUTPUT_FILE_FORMAT, 480, Duration::ZERO).unwrap();
        sink.write(frame.clone()).await.unwrap();
        close_shared(&shared).await.unwrap();
        sink.write(frame).await.unwrap();
        sink.flush();
        assert_eq!(counters.down.frames(), 2);
    }

    #[test]
    fn missing_files_are_usage_errors() {
        let mut handles = DeviceHandles::default();
        let err = open_input(&InputSpec::Wav("/nonexistent/x.wav".into()), false, &mut handles)
            .err()
            .expect("an error");
        assert!(matches!(err, CliError::Usage(_)), "{err}");
        let err = open_output(&OutputSpec::Wav("/nonexistent/dir/x.wav".into()), &mut handles)
            .err()
            .expect("an error");
        assert!(matches!(err, CliError::Usage(_)), "{err}");
    }
}
