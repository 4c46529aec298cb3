//! Client options and their defaults.

use std::time::Duration;

use pipecat_rtvi::About;

/// Default limit for the transport to connect.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit for `bot-ready` to arrive after the transport connected.
pub const DEFAULT_BOT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit for the answer to a client request (as client-js).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for a function-call handler.
pub const DEFAULT_FUNCTION_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit for the transport to accept one outbound message.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit for the transport to disconnect; the session counts as ended after it
/// either way.
pub const DEFAULT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of events a slow [`crate::EventStream`] subscriber may fall behind before
/// it loses the oldest.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// The options of a [`crate::PipecatClient`], set through [`crate::ClientBuilder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Disconnect when the bot leaves (default `true`).
    pub disconnect_on_bot_disconnect: bool,
    /// Limit of a start request that has no `timeout` of its own (default 30 s, the
    /// [`crate::http::DEFAULT_HTTP_TIMEOUT`]).
    pub start_bot_timeout: Duration,
    /// Limit for the transport to connect (default 30 s).
    pub connect_timeout: Duration,
    /// Limit for `bot-ready`, counted from the transport being up, sending `client-ready`
    /// included (default 30 s).
    pub bot_ready_timeout: Duration,
    /// Limit for the answer to a client request (default 10 s).
    pub request_timeout: Duration,
    /// Limit for a function-call handler; after it an error result is sent (default 30 s).
    pub function_call_timeout: Duration,
    /// Answer a named function call that has no handler (and no catch-all) with an error
    /// result, instead of leaving it to the bot (default `false`: the bot also announces
    /// the functions it runs itself, which must get no answer from the client).
    pub reply_to_unhandled_function_calls: bool,
    /// Limit for the transport to accept one message (default 10 s).
    pub send_timeout: Duration,
    /// Limit for the transport to disconnect (default 5 s).
    pub disconnect_timeout: Duration,
    /// How far an event subscriber may fall behind (default 1024 events).
    pub event_capacity: usize,
    /// The `about` sent in `client-ready` (default: `pipecat-core`, its version and the
    /// platform).
    pub about: About,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            disconnect_on_bot_disconnect: true,
            start_bot_timeout: crate::http::DEFAULT_HTTP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            bot_ready_timeout: DEFAULT_BOT_READY_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            function_call_timeout: DEFAULT_FUNCTION_CALL_TIMEOUT,
            reply_to_unhandled_function_calls: false,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            disconnect_timeout: DEFAULT_DISCONNECT_TIMEOUT,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            // Name the SDK, not the message crate (About::this_library says pipecat-rtvi).
            about: About::library(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        }
    }
}
