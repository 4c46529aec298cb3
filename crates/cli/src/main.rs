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
mod load;
mod observe;
mod record;
mod session;
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

/// SDK logs on stderr: `--log`, else `RUST_LOG`, else [`DEFAULT_LOG`].
fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
