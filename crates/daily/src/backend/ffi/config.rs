//! How the `ffi` backend finds and runs daily-core: the library path, time limits, log level
//! and what the client reports about itself to Daily.

use std::ffi::c_int;
use std::path::PathBuf;
use std::time::Duration;

/// The daily-core-sdk version whose `daily_core.h` this backend's C declarations follow.
pub const SDK_VERSION: &str = "0.22.0";
/// Environment variable naming the library.
pub const LIBRARY_ENV: &str = "DAILY_CORE_LIB";
/// Library name sent to Daily by default: the one Daily's own C++ Pipecat client sends for
/// daily-core-sdk. Whether a Rust wrapper should send something else is an open question for
/// Daily.
pub const DEFAULT_ABOUT_LIBRARY: &str = "daily-core-sdk";

/// daily-core log levels (`DailyLogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LogLevel {
    /// Nothing (daily-core still prints some errors to stdout).
    #[default]
    Off,
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information.
    Info,
    /// Debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    pub(super) fn as_c(self) -> c_int {
        match self {
            LogLevel::Off => 0,
            LogLevel::Error => 1,
            LogLevel::Warn => 2,
            LogLevel::Info => 3,
            LogLevel::Debug => 4,
            LogLevel::Trace => 5,
        }
    }
}

/// Where the library is and how to run it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FfiConfig {
    /// The `libdaily_core` shared library (default: `$DAILY_CORE_LIB`).
    pub library: Option<PathBuf>,
    /// Libraries to load first with global symbol visibility (Unix): only for the ABI smoke
    /// test against daily-python's module, which needs libpython's symbols. Leave empty for
    /// the real SDK.
    pub preload: Vec<PathBuf>,
    /// Time limit of each daily-core request but join (default 30 s).
    pub request_timeout: Duration,
    /// Time limit of the join request (default 45 s).
    pub join_timeout: Duration,
    /// daily-core's log level (default off).
    pub log_level: LogLevel,
    /// The client library name reported to Daily.
    pub about_library: String,
    /// The client library version reported to Daily.
    pub about_version: String,
}

impl Default for FfiConfig {
    fn default() -> Self {
        FfiConfig {
            library: None,
            preload: Vec::new(),
            request_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(45),
            log_level: LogLevel::Off,
            about_library: DEFAULT_ABOUT_LIBRARY.into(),
            about_version: SDK_VERSION.into(),
        }
    }
}

impl FfiConfig {
    /// The defaults with `DAILY_CORE_LIB` applied.
    pub fn from_env() -> Self {
        FfiConfig {
            library: std::env::var_os(LIBRARY_ENV).filter(|p| !p.is_empty()).map(PathBuf::from),
            ..FfiConfig::default()
        }
    }

    /// The library to load.
    #[must_use]
    pub fn library(mut self, path: impl Into<PathBuf>) -> Self {
        self.library = Some(path.into());
        self
    }

    /// A library to load first, globally (ABI smoke tests only).
    #[must_use]
    pub fn preload(mut self, path: impl Into<PathBuf>) -> Self {
        self.preload.push(path.into());
        self
    }

    /// Another request time limit.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Another join time limit.
    #[must_use]
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }
}
