//! The command line (clap derive) and the parsers of its values.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

/// The `pipecat` command-line client for Pipecat voice-AI bots.
#[derive(Debug, Parser)]
#[command(
    name = "pipecat",
    version,
    about = "Talk to Pipecat voice-AI bots from a terminal: demo, connect, record, load test.",
    long_about = "Talk to Pipecat voice-AI bots from a terminal.\n\n\
        `pipecat demo` runs a complete voice session against a bot started inside this \
        program (no Python, key or sound card needed). `pipecat connect` talks to any bot \
        over SmallWebRTC or WebSocket, with the microphone, a WAV file or silence as input, \
        and can record the session. `pipecat load` runs many sessions at once.\n\n\
        Exit status: 0 on a clean end, 1 when a session fails after it was ready (or load \
        sessions fail), 2 for usage errors, 3 when a session could not start."
)]
pub(crate) struct Cli {
    /// SDK log filter for stderr, in RUST_LOG syntax (`info`, `pipecat_websocket=debug`...).
    /// Default: the RUST_LOG variable, else the SDK's warnings and other libraries' errors.
    #[arg(long, global = true, value_name = "FILTER")]
    pub(crate) log: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a complete voice session against a bot started inside this program: a tone (or
    /// WAV) up, the echo down, a few messages and a function call, printed as they happen.
    Demo(DemoArgs),
    /// Hold a voice session with any Pipecat bot.
    Connect(Box<ConnectArgs>),
    /// Run N concurrent sessions against a bot and print latency and error statistics.
    Load(LoadArgs),
    /// List the audio devices (needs the `devices` feature).
    Devices,
    /// Serve the scripted test bot of `demo` on a loopback port until Ctrl-C, to point
    /// `connect`, `load` or any other Pipecat client at.
    TestBot(TestBotArgs),
}

/// `pipecat test-bot`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TestBotArgs {
    /// Print the endpoints as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Remember the last N ended sessions (messages, events, audio statistics). The default,
    /// 0, keeps only running sessions, so a long-running bot stays bounded.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) keep_sessions: usize,
}

/// The two open transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportArg {
    /// SmallWebRTC: HTTP offer/answer, Opus audio, RTVI on a data channel.
    #[value(alias = "small-webrtc")]
    Webrtc,
    /// WebSocket: pipecat's protobuf frames, PCM16 audio.
    #[value(alias = "ws")]
    Websocket,
}

impl TransportArg {
    /// The pipecat runner's name for it (the `transport` of a `/start` body).
    pub(crate) fn runner_name(self) -> &'static str {
        match self {
            TransportArg::Webrtc => "webrtc",
            TransportArg::Websocket => "websocket",
        }
    }
}

/// Output options shared by `demo` and `connect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ViewArgs {
    /// Print one JSON object per line for every client event (with `type` and `timestamp`)
    /// instead of the readable view. Nothing is skipped: a burst waits in memory until
    /// stdout takes it.
    #[arg(long)]
    pub(crate) json: bool,

    /// Record the session into DIR: `session.wav` (stereo, user left, bot right),
    /// `messages.jsonl` (every RTVI message both ways) and `events.jsonl` (the client events,
    /// as `--json` prints them).
    #[arg(long, value_name = "DIR")]
    pub(crate) record: Option<PathBuf>,
}

/// `pipecat demo`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// The transport to the in-process bot.
    #[arg(long, value_enum, default_value_t = TransportArg::Websocket)]
    pub(crate) transport: TransportArg,

    /// What the "user" says: `tone`, `tone:HZ`, `silence`, a WAV file, or `mic` / `mic:NAME`.
    #[arg(long, value_name = "INPUT", default_value = "tone", value_parser = parse_input)]
    pub(crate) input: InputSpec,

    /// Where the bot's audio goes: `none`, a WAV file, or `speaker` / `speaker:NAME`.
    #[arg(long, value_name = "OUTPUT", default_value = "none", value_parser = parse_output)]
    pub(crate) output: OutputSpec,

    /// Output and recording.
    #[command(flatten)]
    pub(crate) view: ViewArgs,
}

/// Where and how to reach a bot.
#[derive(Debug, Clone, Args)]
#[group(skip)]
pub(crate) struct TargetArgs {
    /// The bot's start endpoint (pipecat's runner: `http://localhost:8080/start`). It is
    /// POSTed, and its answer tells the transport where to connect. A URL on this machine
    /// (localhost, 127.0.0.1, ::1) makes SmallWebRTC use loopback candidates only.
    #[arg(long, value_name = "URL")]
    pub(crate) start: Option<String>,

    /// Connect straight to a WebSocket bot (`ws://localhost:7860/ws-client`), no start
    /// request.
    #[arg(long, value_name = "URL", conflicts_with_all = ["transport", "body"])]
    pub(crate) ws_url: Option<String>,

    /// Connect straight to a SmallWebRTC offer endpoint (`http://localhost:7860/api/offer`),
    /// no start request.
    #[arg(long, value_name = "URL", conflicts_with_all = ["transport"])]
    pub(crate) offer_url: Option<String>,

    /// The transport to ask for with `--start`.
    #[arg(long, value_enum, default_value_t = TransportArg::Webrtc)]
    pub(crate) transport: TransportArg,

    /// The JSON body of the start request (default `{"transport": <transport>}`; a body
    /// object without `transport` gets it added). With `--offer-url` it is the offer's
    /// `request_data`.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub(crate) body: Option<Value>,

    /// An HTTP header for the start (or offer) request, as `Name: value`. Repeatable.
    #[arg(long = "header", short = 'H', value_name = "K:V", value_parser = parse_header,
          conflicts_with = "ws_url")]
    pub(crate) headers: Vec<(String, String)>,

    /// A session token for `--ws-url` (sent as the `token` query parameter).
    #[arg(long, value_name = "TOKEN", requires = "ws_url")]
    pub(crate) token: Option<String>,

    /// A STUN/TURN server for SmallWebRTC (`stun:stun.l.google.com:19302`), used unless the
    /// start answer brings its own. Repeatable. Bots on this machine need none.
    #[arg(long = "ice-server", value_name = "URL")]
    pub(crate) ice_servers: Vec<String>,

    /// Time limit, in seconds, for the start request, the connection and `bot-ready`, each.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub(crate) ready_timeout: Duration,
}

/// `pipecat connect`.
#[derive(Debug, Clone, Args)]
#[command(group(
    clap::ArgGroup::new("target").required(true).multiple(false).args(["start", "ws_url", "offer_url"])
))]
pub(crate) struct ConnectArgs {
    /// The bot.
    #[command(flatten)]
    pub(crate) target: TargetArgs,

    /// What goes to the bot: `mic` (or `mic:NAME`), a WAV file, `silence`, `tone` (or
    /// `tone:HZ`: one second of a sine, 440 Hz by default). Default: `mic` when built with
    /// devices, else `silence`. A WAV file or the tone is followed by silence once it ends.
    #[arg(long, value_name = "INPUT", value_parser = parse_input)]
    pub(crate) input: Option<InputSpec>,

    /// Where the bot's audio goes: `speaker` (or `speaker:NAME`), a WAV file, `none`.
    /// Default: `speaker` when built with devices, else `none`.
    #[arg(long, value_name = "OUTPUT", value_parser = parse_output)]
    pub(crate) output: Option<OutputSpec>,

    /// Text to send to the bot's LLM (`send-text`) once it is ready. Repeatable; sent in
    /// command-line order with the client messages.
    #[arg(long = "send-text", value_name = "TEXT")]
    pub(crate) send_text: Vec<String>,

    /// A `client-message` to send once the bot is ready, as `TYPE` or `TYPE=JSON`
    /// (`ping={"n":1}`). Repeatable.
    #[arg(long = "client-message", value_name = "T[=JSON]", value_parser = parse_client_message)]
    pub(crate) client_message: Vec<(String, Option<Value>)>,

    /// End the session after SECS seconds of being ready. Without it the session lasts until
    /// the bot ends it (or Ctrl-C).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub(crate) duration: Option<Duration>,

    /// Answer the bot's function call NAME with this JSON result. Repeatable. Calls without
    /// an answer are shown (`function call ... not handled`) and left to the bot.
    #[arg(long = "function", value_name = "NAME=JSON", value_parser = crate::functions::parse_fixed)]
    pub(crate) functions: Vec<(String, crate::functions::FunctionAnswer)>,

    /// Answer the bot's function call NAME by running CMD (`sh -c`): the call's arguments as
    /// JSON on stdin, the result from stdout (JSON, or else text); a failing exit answers
    /// with an error. Killed after --function-timeout. Repeatable.
    #[arg(long = "function-command", value_name = "NAME=CMD", value_parser = crate::functions::parse_command)]
    pub(crate) function_commands: Vec<(String, crate::functions::FunctionAnswer)>,

    /// The time limit of one function call's answer, in seconds (an error result after it).
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub(crate) function_timeout: Duration,

    /// Output and recording.
    #[command(flatten)]
    pub(crate) view: ViewArgs,
}

/// `pipecat load`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadArgs {
    /// The bot's start endpoint; each session POSTs it. A URL on this machine makes
    /// SmallWebRTC use loopback candidates only.
    #[arg(long, value_name = "URL")]
    pub(crate) start: String,

    /// The transport each session asks for.
    #[arg(long, value_enum, default_value_t = TransportArg::Webrtc)]
    pub(crate) transport: TransportArg,

    /// The JSON body of the start requests (as for `connect`).
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub(crate) body: Option<Value>,

    /// An HTTP header for the start requests, as `Name: value`. Repeatable.
    #[arg(long = "header", short = 'H', value_name = "K:V", value_parser = parse_header)]
    pub(crate) headers: Vec<(String, String)>,

    /// How many sessions run at once.
    #[arg(short = 'n', long = "sessions", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) sessions: u32,

    /// What each session sends: a WAV file (looped), `silence` or `tone` (`tone:HZ`), as for
    /// `connect` (a device cannot serve many sessions: no `mic`).
    #[arg(long, value_name = "INPUT", default_value = "silence", value_parser = parse_load_input)]
    pub(crate) input: InputSpec,

    /// Where each session's bot audio goes: `none`, or a WAV file per session (`out.wav`
    /// becomes `out-1.wav`, `out-2.wav`...). No `speaker`.
    #[arg(long, value_name = "OUTPUT", default_value = "none", value_parser = parse_load_output)]
    pub(crate) output: OutputSpec,

    /// A STUN/TURN server for SmallWebRTC, as for `connect`. Repeatable. A start URL on this
    /// machine (localhost, 127.0.0.1, ::1) uses loopback candidates and needs none.
    #[arg(long = "ice-server", value_name = "URL")]
    pub(crate) ice_servers: Vec<String>,

    /// How long each session stays connected once ready, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub(crate) duration: Duration,

    /// Spread the session starts evenly over SECS seconds (default: all at once).
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_secs)]
    pub(crate) ramp_up: Duration,

    /// Time limit, in seconds, for each session's start request, connection and
    /// `bot-ready`.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub(crate) ready_timeout: Duration,

    /// Print the summary as one JSON object (sessions, time to ready, errors by kind, audio
    /// frames and sessions short of audio, the process's CPU and memory in total and per
    /// session, and every session). On a terminal, live progress goes to stderr either way.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where the user's audio comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InputSpec {
    /// A microphone: the default, or one whose name contains the text.
    Mic(Option<String>),
    /// A WAV file.
    Wav(PathBuf),
    /// Silence.
    Silence,
    /// A sine tone at this frequency.
    Tone(f32),
}

/// Where the bot's audio goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OutputSpec {
    /// A speaker: the default, or one whose name contains the text.
    Speaker(Option<String>),
    /// A WAV file.
    Wav(PathBuf),
    /// Nowhere.
    None,
}

/// The default tone frequency.
pub(crate) const DEFAULT_TONE_HZ: f32 = 440.0;

/// One thing `connect` does once the bot is ready.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// `send-text`.
    SendText(String),
    /// `client-message` `{t, d}`.
    ClientMessage(String, Option<Value>),
}

/// The `--send-text` and `--client-message` actions of `connect` in command-line order.
pub(crate) fn ordered_actions(args: &ConnectArgs, matches: Option<&ArgMatches>) -> Vec<Action> {
    let index = |id: &str| -> Vec<usize> {
        matches.and_then(|m| m.indices_of(id)).map(Iterator::collect).unwrap_or_default()
    };
    let text_at = index("send_text");
    let message_at = index("client_message");
    let mut actions: Vec<(usize, Action)> = Vec::new();
    for (i, text) in args.send_text.iter().enumerate() {
        let at = text_at.get(i).copied().unwrap_or(usize::MAX / 2 + i);
        actions.push((at, Action::SendText(text.clone())));
    }
    for (i, (t, d)) in args.client_message.iter().enumerate() {
        let at = message_at.get(i).copied().unwrap_or(usize::MAX / 4 + i);
        actions.push((at, Action::ClientMessage(t.clone(), d.clone())));
    }
    actions.sort_by_key(|(at, _)| *at);
    actions.into_iter().map(|(_, action)| action).collect()
}

// ---- Value parsers ----

fn parse_input(text: &str) -> Result<InputSpec, String> {
    match text {
        "mic" | "microphone" => Ok(InputSpec::Mic(None)),
        "silence" => Ok(InputSpec::Silence),
        "tone" => Ok(InputSpec::Tone(DEFAULT_TONE_HZ)),
        "" => Err("empty input".into()),
        _ => {
            if let Some(name) = text.strip_prefix("mic:") {
                return Ok(InputSpec::Mic(Some(name.to_owned())));
            }
            if let Some(hz) = text.strip_prefix("tone:") {
                let hz: f32 = hz.parse().map_err(|_| format!("invalid tone frequency {hz:?}"))?;
                if !(20.0..=20_000.0).contains(&hz) {
                    return Err(format!("tone frequency {hz} Hz is outside 20-20000 Hz"));
                }
                return Ok(InputSpec::Tone(hz));
            }
            wav_path(text).map(InputSpec::Wav).ok_or_else(|| {
                format!(
                    "unknown input {text:?}: use mic, mic:NAME, silence, tone, tone:HZ or FILE.wav"
                )
            })
        }
    }
}

fn parse_load_input(text: &str) -> Result<InputSpec, String> {
    match parse_input(text)? {
        spec @ (InputSpec::Wav(_) | InputSpec::Silence | InputSpec::Tone(_)) => Ok(spec),
        InputSpec::Mic(_) => {
            Err("load sessions cannot share a microphone: use a WAV file, silence or tone".into())
        }
    }
}

fn parse_load_output(text: &str) -> Result<OutputSpec, String> {
    match parse_output(text)? {
        spec @ (OutputSpec::None | OutputSpec::Wav(_)) => Ok(spec),
        OutputSpec::Speaker(_) => {
            Err("load sessions cannot share a speaker: use none or a WAV file".into())
        }
    }
}

fn parse_output(text: &str) -> Result<OutputSpec, String> {
    match text {
        "speaker" => Ok(OutputSpec::Speaker(None)),
        "none" | "null" => Ok(OutputSpec::None),
        "" => Err("empty output".into()),
        _ => {
            if let Some(name) = text.strip_prefix("speaker:") {
                return Ok(OutputSpec::Speaker(Some(name.to_owned())));
            }
            wav_path(text).map(OutputSpec::Wav).ok_or_else(|| {
                format!("unknown output {text:?}: use speaker, speaker:NAME, none or FILE.wav")
            })
        }
    }
}

/// A path that names a WAV file (by extension).
fn wav_path(text: &str) -> Option<PathBuf> {
    let path = PathBuf::from(text);
    let is_wav = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
    is_wav.then_some(path)
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) =
        text.split_once(':').ok_or_else(|| format!("header {text:?} is not `Name: value`"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("invalid header name {name:?}"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn parse_client_message(text: &str) -> Result<(String, Option<Value>), String> {
    let (t, d) = match text.split_once('=') {
        Some((t, d)) => {
            let d = serde_json::from_str(d).map_err(|e| {
                format!("invalid JSON after `{t}=` ({e}); quote strings: {t}='\"text\"'")
            })?;
            (t, Some(d))
        }
        None => (text, None),
    };
    if t.is_empty() {
        return Err("the message type (before `=`) is empty".into());
    }
    Ok((t.to_owned(), d))
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=365.0 * 86_400.0).contains(&secs) {
        return Err(format!("{text:?} is not a usable number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};
    use serde_json::json;

    use super::*;

    fn parse(args: &[&str]) -> Result<(Cli, ArgMatches), clap::Error> {
        let matches = Cli::command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        Ok((cli, matches))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connect_keeps_the_order_of_actions() {
        let (cli, matches) = parse(&[
            "pipecat",
            "connect",
            "--start",
            "http://localhost:8080/start",
            "--client-message",
            "ping={\"n\":1}",
            "--send-text",
            "hello",
            "--client-message",
            "end",
        ])
        .unwrap();
        let Command::Connect(args) = cli.command else { panic!("not connect") };
        let sub = matches.subcommand_matches("connect");
        assert_eq!(
            ordered_actions(&args, sub),
            vec![
                Action::ClientMessage("ping".into(), Some(json!({"n": 1}))),
                Action::SendText("hello".into()),
                Action::ClientMessage("end".into(), None),
            ]
        );
        assert_eq!(args.target.transport, TransportArg::Webrtc);
    }

    #[test]
    fn a_target_is_required_and_unique() {
        assert!(parse(&["pipecat", "connect"]).is_err());
        assert!(
            parse(&["pipecat", "connect", "--ws-url", "ws://x/ws", "--offer-url", "http://x"])
                .is_err()
        );
        assert!(
            parse(&["pipecat", "connect", "--ws-url", "ws://x/ws", "--transport", "webrtc"])
                .is_err()
        );
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(parse_input("tone:300").unwrap(), InputSpec::Tone(300.0));
        assert_eq!(parse_input("a/b.WAV").unwrap(), InputSpec::Wav("a/b.WAV".into()));
        assert_eq!(parse_input("mic:USB").unwrap(), InputSpec::Mic(Some("USB".into())));
        assert!(parse_input("nope").is_err());
        assert!(parse_input("tone:5").is_err());
        assert_eq!(parse_load_input("tone:300").unwrap(), InputSpec::Tone(300.0));
        assert!(parse_load_input("mic").is_err());
        assert!(parse_load_output("speaker").is_err());
        assert_eq!(parse_output("none").unwrap(), OutputSpec::None);
        assert_eq!(parse_output("out.wav").unwrap(), OutputSpec::Wav("out.wav".into()));
        assert_eq!(
            parse_header("Authorization: Bearer a:b").unwrap(),
            ("Authorization".into(), "Bearer a:b".into())
        );
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header(": v").is_err());
        assert_eq!(parse_client_message("ping").unwrap(), ("ping".into(), None));
        assert!(parse_client_message("ping={").is_err());
        assert!(parse_client_message("=1").is_err());
        assert_eq!(parse_secs("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_json("{").is_err());
    }

    #[test]
    fn load_counts_sessions() {
        let (cli, _) = parse(&["pipecat", "load", "--start", "http://x/start", "-n", "3"]).unwrap();
        let Command::Load(args) = cli.command else { panic!("not load") };
        assert_eq!(args.sessions, 3);
        assert_eq!(args.input, InputSpec::Silence);
        assert!(parse(&["pipecat", "load", "--start", "http://x/start", "-n", "0"]).is_err());
    }
}
