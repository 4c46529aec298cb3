//! `pipecat`: the command-line client of the Pipecat Rust SDK.
//!
//! - `pipecat demo`: a complete voice session against a bot started in this process.
//! - `pipecat connect`: a voice session with any Pipecat bot (microphone, WAV or silence in;
//!   speaker, WAV or nothing out), shown live or as JSON lines, optionally recorded.
//! - `pipecat load`: N concurrent sessions and their statistics.
//! - `pipecat devices`: the audio devices.
//!
//! Run `pipecat help <command>` for the options.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod audio;
mod clock;
mod demo;
mod error;
mod functions;
mod load;
mod observe;
mod record;
mod session;
mod target;
mod view;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::error::{CliError, one_line};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::local(format!("cannot start the async runtime: {e}"))),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Connect(args) => {
                let actions = args::ordered_actions(&args, matches.subcommand_matches("connect"));
                session::run(session::connect_plan(&args, actions)?).await
            }
            Command::Load(args) => load::run(args).await,
            Command::Devices => audio::list_devices(),
            Command::TestBot(args) => demo::serve(args).await,
        }
    });
    // Background tasks of ended sessions must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(error: &CliError) -> ExitCode {
    eprintln!("pipecat: error: {}", one_line(&error.to_string()));
    error.exit_code()
}

/// The default log filter: the SDK's warnings, only errors of the libraries below it
/// (webrtc-rs is chatty about things that sort themselves out).
const DEFAULT_LOG: &str = "error,pipecat_core=warn,pipecat_websocket=warn,\
                           pipecat_small_webrtc=warn,pipecat_media=warn,pipecat_daily=warn";

/// SDK logs on stderr: `--log`, else `RUST_LOG`, else [`DEFAULT_LOG`]; in colour only on a
/// terminal (see [`colour`]).
fn init_logging(filter: Option<&str>) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
    };
    let ansi = colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Whether to colour what goes to a stream: only a terminal, and only while `NO_COLOR` is
/// unset or empty (<https://no-color.org>). A file or a pipe gets plain text.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None), "a file or a pipe gets no colour");
        assert!(!colour(false, Some(OsStr::new(""))));
    }
}
