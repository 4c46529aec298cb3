//! What a program says about a session's audio: [`AudioOptions`], taken by every transport
//! builder through [`AudioBuilder`].

#[cfg(feature = "devices")]
use pipecat_media::AudioDevices;
use pipecat_media::{AudioSink, AudioSource, DeviceSelector};

/// Where the microphone side's audio comes from.
pub(crate) enum InputChoice {
    /// A source given by the program.
    Source(Box<dyn AudioSource>),
    /// No microphone audio at all (`without_audio`).
    Nothing,
    /// A device: the default one unless picked by id or name.
    Device(DeviceSelector),
}

/// Where the bot's audio goes.
pub(crate) enum OutputChoice {
    /// A sink given by the program.
    Sink(Box<dyn AudioSink>),
    /// Bot audio discarded (`without_audio`).
    Discard,
    /// A device: the default one unless picked by id or name.
    Device(DeviceSelector),
}

impl std::fmt::Debug for InputChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source(s) => write!(f, "source ({})", s.format()),
            Self::Nothing => f.write_str("no audio"),
            Self::Device(selector) => write!(f, "microphone ({selector})"),
        }
    }
}

impl std::fmt::Debug for OutputChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sink(s) => write!(f, "sink ({})", s.format()),
            Self::Discard => f.write_str("discard"),
            Self::Device(selector) => write!(f, "speaker ({selector})"),
        }
    }
}

/// The audio of a transport's sessions: where the user's audio comes from, where the bot's
/// goes, and whether the microphone starts on. The same type for every transport.
///
/// The default is the default microphone and speaker (feature `devices`), opened by
/// `init_devices` or at the latest by `connect`; without the feature, or on a machine where
/// they cannot be opened, `connect` fails with an error naming the headless alternatives.
///
/// ```
/// use pipecat_media::{AudioFormat, NullSink, ToneSource};
/// use pipecat_media_engine::AudioOptions;
///
/// let options = AudioOptions::default()
///     .source(ToneSource::new(AudioFormat::MONO_16K, 440.0, 0.3)?)
///     .sink(NullSink::new(AudioFormat::MONO_24K))
///     .mic_enabled(false);
/// # let _ = options;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct AudioOptions {
    pub(crate) input: InputChoice,
    pub(crate) output: OutputChoice,
    #[cfg(feature = "devices")]
    pub(crate) devices: Option<AudioDevices>,
    pub(crate) mic_enabled: bool,
}

impl std::fmt::Debug for AudioOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioOptions")
            .field("input", &self.input)
            .field("output", &self.output)
            .field("mic_enabled", &self.mic_enabled)
            .finish_non_exhaustive()
    }
}

impl Default for AudioOptions {
    /// The default microphone and speaker, microphone on.
    fn default() -> Self {
        AudioOptions {
            input: InputChoice::Device(DeviceSelector::Default),
            output: OutputChoice::Device(DeviceSelector::Default),
            #[cfg(feature = "devices")]
            devices: None,
            mic_enabled: true,
        }
    }
}

impl AudioOptions {
    /// No audio either way (see [`without_audio`](Self::without_audio)).
    pub fn none() -> Self {
        AudioOptions::default().without_audio()
    }

    /// Where the user's audio comes from (any format: it is converted): a
    /// [`WavFileSource`](pipecat_media::WavFileSource), a
    /// [`MemorySource`](pipecat_media::MemorySource) fed by the program, a
    /// [`ToneSource`](pipecat_media::ToneSource), a
    /// [`SilenceSource`](pipecat_media::SilenceSource), or your own.
    ///
    /// The source is kept across sessions; each session reads it from where the last one
    /// stopped (a file goes on where it was; a paced source resumes in real time from the
    /// new session's start, so the gap between sessions is neither sent as a burst nor
    /// skipped in a file). `update_mic` can still replace it with a microphone. The sink is
    /// kept too, and closed when the transport is dropped (a WAV file is then complete).
    pub fn source(mut self, source: impl AudioSource + 'static) -> Self {
        self.input = InputChoice::Source(Box::new(source));
        self
    }

    /// Where the bot's audio goes (sinks take any format): a
    /// [`WavFileSink`](pipecat_media::WavFileSink), a
    /// [`MemorySink`](pipecat_media::MemorySink) read by the program, a
    /// [`NullSink`](pipecat_media::NullSink), or your own.
    pub fn sink(mut self, sink: impl AudioSink + 'static) -> Self {
        self.output = OutputChoice::Sink(Box::new(sink));
        self
    }

    /// No audio: nothing is sent up (no microphone, no silence) and the bot's audio is
    /// discarded. For text-only sessions, tests and load generators. Replaces any source,
    /// sink or device chosen before; a source or device given afterwards wins.
    pub fn without_audio(mut self) -> Self {
        self.input = InputChoice::Nothing;
        self.output = OutputChoice::Discard;
        self
    }

    /// The microphone to use, by id (as `available_mics` lists them) or name (an exact
    /// case-insensitive match, else the first name containing the text), or the default one.
    #[cfg(feature = "devices")]
    pub fn mic_device(mut self, selector: DeviceSelector) -> Self {
        self.input = InputChoice::Device(selector);
        self
    }

    /// The speaker to use, by id or name, or the default one.
    #[cfg(feature = "devices")]
    pub fn speaker_device(mut self, selector: DeviceSelector) -> Self {
        self.output = OutputChoice::Device(selector);
        self
    }

    /// The audio devices to list and open microphones with (default: the machine's default
    /// audio host, created when first needed). Share one [`AudioDevices`] with the rest of
    /// the program to see the same microphone states and events. Speakers are opened on a
    /// device layer of their own each (cpal's PulseAudio host cannot run two playback streams
    /// on one connection, which switching speakers needs).
    #[cfg(feature = "devices")]
    pub fn audio_devices(mut self, devices: AudioDevices) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Whether the microphone starts enabled. Default `true`.
    pub fn mic_enabled(mut self, enabled: bool) -> Self {
        self.mic_enabled = enabled;
        self
    }
}

/// The audio options of a transport builder, the same methods on every transport: implement
/// [`audio_options`](Self::audio_options) and the rest comes with the trait.
///
/// ```
/// use pipecat_media::{AudioFormat, NullSink, SilenceSource};
/// use pipecat_media_engine::{AudioBuilder, AudioOptions};
///
/// #[derive(Default)]
/// struct MyTransportBuilder {
///     audio: AudioOptions,
/// }
///
/// impl AudioBuilder for MyTransportBuilder {
///     fn audio_options(&mut self) -> &mut AudioOptions {
///         &mut self.audio
///     }
/// }
///
/// let builder = MyTransportBuilder::default()
///     .audio_source(SilenceSource::new(AudioFormat::MONO_16K)?)
///     .audio_sink(NullSink::new(AudioFormat::MONO_24K));
/// # let _ = builder;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AudioBuilder: Sized {
    /// The builder's audio options.
    fn audio_options(&mut self) -> &mut AudioOptions;

    /// Replaces every audio option at once.
    #[must_use]
    fn audio(mut self, options: AudioOptions) -> Self {
        *self.audio_options() = options;
        self
    }

    /// See [`AudioOptions::source`].
    #[must_use]
    fn audio_source(mut self, source: impl AudioSource + 'static) -> Self {
        let options = std::mem::take(self.audio_options());
        *self.audio_options() = options.source(source);
        self
    }

    /// See [`AudioOptions::sink`].
    #[must_use]
    fn audio_sink(mut self, sink: impl AudioSink + 'static) -> Self {
        let options = std::mem::take(self.audio_options());
        *self.audio_options() = options.sink(sink);
        self
    }

    /// See [`AudioOptions::without_audio`].
    #[must_use]
    fn without_audio(mut self) -> Self {
        let options = std::mem::take(self.audio_options());
        *self.audio_options() = options.without_audio();
        self
    }

    /// See [`AudioOptions::mic_device`].
    #[cfg(feature = "devices")]
    #[must_use]
    fn mic_device(mut self, selector: DeviceSelector) -> Self {
        let options = std::mem::take(self.audio_options());
        *self.audio_options() = options.mic_device(selector);
        self
    }

    /// See [`AudioOptions::speaker_device`].
    #[cfg(feature = "devices")]
    #[must_use]
    fn speaker_device(mut self, selector: DeviceSelector) -> Self {
        let options = std::mem::take(self.audio_options());
        *self.audio_options() = options.speaker_device(selector);
        self
    }

    /// See [`AudioOptions::audio_devices`].
    #[cfg(feature = "devices")]
    #[must_use]
    fn audio_devices(mut self, devices: AudioDevices) -> Self {
        let options = std::mem::take(self.audio_options());
        *self.audio_options() = options.audio_devices(devices);
        self
    }

    /// See [`AudioOptions::mic_enabled`].
    #[must_use]
    fn mic_enabled(mut self, enabled: bool) -> Self {
        self.audio_options().mic_enabled = enabled;
        self
    }
}
