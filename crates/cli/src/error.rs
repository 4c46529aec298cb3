//! The ways a command fails, each with its exit status and a one-line reason.

use std::process::ExitCode;

/// Exit status of a usage or input error (clap uses it for bad arguments too).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status when the session could not start: the start request, the connection or
/// `bot-ready` failed.
pub(crate) const EXIT_START: u8 = 3;
/// Exit status when a session that was ready ended with an error (a fatal bot error, a lost
/// connection), or when sessions of a load test failed.
pub(crate) const EXIT_SESSION: u8 = 1;

/// Why a command failed. `Display` is the one-line reason printed on stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The command line or an input it names is unusable (bad JSON, missing file...).
    #[error("{0}")]
    Usage(String),
    /// The session never became ready.
    #[error("could not start the session: {0}")]
    Start(String),
    /// The session ended with an error.
    #[error("the session failed: {0}")]
    Session(String),
    /// The bot reported a fatal error: worded the same before and after ready (the SDK's
    /// typed error), only the exit status tells the two apart.
    #[error("{reason}")]
    BotFatal {
        /// The SDK's error text (`fatal error from the bot: ...`).
        reason: String,
        /// Whether the session had been ready.
        ready: bool,
    },
    /// Some sessions of a load test failed (the summary was printed).
    #[error("{failed} of {total} sessions failed")]
    Load {
        /// Sessions that failed.
        failed: usize,
        /// Sessions run.
        total: usize,
    },
    /// A local problem: writing a recording, building the runtime.
    #[error("{0}")]
    Local(String),
}

impl CliError {
    /// The process exit status for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Start(_) | CliError::BotFatal { ready: false, .. } => EXIT_START,
            CliError::BotFatal { ready: true, .. } => EXIT_SESSION,
            CliError::Session(_) | CliError::Load { .. } | CliError::Local(_) => EXIT_SESSION,
        })
    }

    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// A local error.
    pub(crate) fn local(message: impl Into<String>) -> Self {
        CliError::Local(message.into())
    }
}

/// Makes a multi-line message fit on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let e = CliError::Start("timed out".into());
        assert_eq!(e.to_string(), "could not start the session: timed out");
        assert_eq!(e.exit_code(), ExitCode::from(EXIT_START));
    }
}
