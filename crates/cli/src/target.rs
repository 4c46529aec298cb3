//! The bot a command talks to and the session factory `connect`, `demo` and `load` share:
//! the target from the command line, the start request, the transport and the client.

use std::sync::Arc;
use std::time::Duration;

use pipecat::AudioBuilder;
use pipecat::rtvi::About;
use pipecat::small_webrtc::{IceServer, SmallWebRtcParams, SmallWebRtcTransport};
use pipecat::websocket::{WebSocketParams, WebSocketTransport};
use pipecat::{ApiRequest, ConnectionParams, PipecatClient, Transport};
use serde_json::{Value, json};

use crate::args::{TargetArgs, TransportArg};
use crate::audio::{TapSink, TapSource};
use crate::error::CliError;

/// Where the bot is and how to reach it.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// POST a start endpoint, then connect with its answer.
    Start {
        /// The start request.
        request: ApiRequest,
        /// The transport asked for.
        transport: TransportArg,
    },
    /// A WebSocket URL.
    WebSocket(WebSocketParams),
    /// A SmallWebRTC offer endpoint.
    Offer(Box<SmallWebRtcParams>, String),
}

impl Target {
    /// From `--start` / `--ws-url` / `--offer-url` and their options.
    pub(crate) fn from_args(args: &TargetArgs) -> Result<Self, CliError> {
        if let Some(url) = &args.start {
            let request = start_request(url, args.transport, args.body.clone(), &args.headers)
                .timeout(args.ready_timeout);
            return Ok(Target::Start { request, transport: args.transport });
        }
        if let Some(url) = &args.ws_url {
            let mut params = WebSocketParams::new(url.clone());
            if let Some(token) = &args.token {
                params = params.with_token(token.clone());
            }
            // Checked now, for a usage error rather than a failed start.
            params.url().map_err(|e| CliError::usage(format!("--ws-url: {e}")))?;
            return Ok(Target::WebSocket(params));
        }
        if let Some(url) = &args.offer_url {
            check_http_url(url, "--offer-url")?;
            let mut request = ApiRequest::new(url.clone()).timeout(args.ready_timeout);
            for (name, value) in &args.headers {
                request = request.header(name.clone(), value.clone());
            }
            if let Some(body) = &args.body {
                request = request.request_data(body.clone());
            }
            let params = SmallWebRtcParams { webrtc_request: Some(request), ..Default::default() };
            return Ok(Target::Offer(Box::new(params), url.clone()));
        }
        Err(CliError::usage("give --start, --ws-url or --offer-url"))
    }

    /// The transport this target needs.
    pub(crate) fn transport(&self) -> TransportArg {
        match self {
            Target::Start { transport, .. } => *transport,
            Target::WebSocket(_) => TransportArg::Websocket,
            Target::Offer(..) => TransportArg::Webrtc,
        }
    }

    /// The URL the session begins with.
    fn url(&self) -> &str {
        match self {
            Target::Start { request, .. } => &request.endpoint,
            Target::WebSocket(params) => &params.ws_url,
            Target::Offer(_, url) => url,
        }
    }

    /// Whether the bot runs on this machine (SmallWebRTC then uses loopback candidates).
    pub(crate) fn is_loopback(&self) -> bool {
        is_loopback_url(self.url())
    }

    /// For people: where and how (no query strings, which may hold tokens).
    pub(crate) fn describe(&self) -> String {
        let url = self.url().split(['?', '#']).next().unwrap_or_default();
        match self {
            Target::Start { transport, .. } => {
                format!("POST {url} (transport {})", transport.runner_name())
            }
            Target::WebSocket(_) => format!("WebSocket {url}"),
            Target::Offer(..) => format!("SmallWebRTC offer {url}"),
        }
    }
}

/// The start request: `body` (default `{}`) with `transport` added to an object that lacks
/// it, and the headers.
pub(crate) fn start_request(
    url: &str,
    transport: TransportArg,
    body: Option<Value>,
    headers: &[(String, String)],
) -> ApiRequest {
    let mut body = body.unwrap_or_else(|| json!({}));
    if let Value::Object(map) = &mut body {
        map.entry("transport").or_insert_with(|| transport.runner_name().into());
    }
    let mut request = ApiRequest::new(url).request_data(body);
    for (name, value) in headers {
        request = request.header(name.clone(), value.clone());
    }
    request
}

/// Fails with a usage error unless `url` is an http(s) URL with a host.
pub(crate) fn check_http_url(url: &str, flag: &str) -> Result<(), CliError> {
    match pipecat::url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(CliError::usage(format!("{flag} needs an http:// or https:// URL"))),
        Err(e) => Err(CliError::usage(format!("{flag}: invalid URL: {e}"))),
    }
}

/// Whether `url`'s host is this machine.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = pipecat::url::Url::parse(url) else { return false };
    match url.host() {
        Some(pipecat::url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(pipecat::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(pipecat::url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A transport of `kind` over the given audio ends.
pub(crate) fn build_transport(
    kind: TransportArg,
    loopback: bool,
    ice_servers: &[String],
    source: TapSource,
    sink: TapSink,
    connect_timeout: Duration,
) -> Result<Box<dyn Transport>, CliError> {
    Ok(match kind {
        TransportArg::Websocket => Box::new(
            WebSocketTransport::builder()
                .audio_source(source)
                .audio_sink(sink)
                .connect_timeout(connect_timeout)
                .build()
                .map_err(|e| {
                    CliError::local(format!("cannot build the WebSocket transport: {e}"))
                })?,
        ),
        TransportArg::Webrtc => {
            let mut builder = SmallWebRtcTransport::builder()
                .audio_source(source)
                .audio_sink(sink)
                .connect_timeout(connect_timeout);
            if loopback {
                builder = builder.loopback_only();
            }
            if !ice_servers.is_empty() {
                builder = builder.ice_servers(ice_servers.iter().map(IceServer::new).collect());
            }
            Box::new(builder.build().map_err(|e| {
                CliError::local(format!("cannot build the SmallWebRTC transport: {e}"))
            })?)
        }
    })
}

/// A client over `transport` with every startup limit set to `limit`, and `function_limit`
/// for answering a function call.
pub(crate) fn build_client(
    transport: Box<dyn Transport>,
    limit: Duration,
    function_limit: Duration,
) -> PipecatClient {
    PipecatClient::builder_shared(Arc::from(transport))
        .start_bot_timeout(limit)
        .connect_timeout(limit)
        .bot_ready_timeout(limit)
        .function_call_timeout(function_limit)
        .about(About::library("pipecat-cli", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Starts the session the target describes; resolves on `bot-ready`.
pub(crate) async fn start(client: &PipecatClient, target: &Target) -> pipecat::Result<()> {
    match target {
        Target::Start { request, .. } => client.start_bot_and_connect(request.clone()).await?,
        Target::WebSocket(params) => client.connect(params.clone()).await?,
        Target::Offer(params, _) => client.connect(ConnectionParams::from(*params.clone())).await?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_bodies_name_the_transport() {
        let r = start_request("http://h/start", TransportArg::Websocket, None, &[]);
        assert_eq!(r.request_data, Some(json!({"transport": "websocket"})));
        let r = start_request(
            "http://h/start",
            TransportArg::Webrtc,
            Some(json!({"transport": "daily", "body": {"x": 1}})),
            &[("X-Key".into(), "v".into())],
        );
        assert_eq!(r.request_data, Some(json!({"transport": "daily", "body": {"x": 1}})));
        assert_eq!(r.headers["X-Key"], "v");
        let r = start_request("http://h/start", TransportArg::Webrtc, Some(json!([1])), &[]);
        assert_eq!(r.request_data, Some(json!([1])));
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback_url("http://localhost:8080/start"));
        assert!(is_loopback_url("http://127.0.0.1:1/api/offer"));
        assert!(is_loopback_url("ws://[::1]:80/ws"));
        assert!(!is_loopback_url("https://bot.example.com/start"));
        assert!(!is_loopback_url("not a url"));
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_http_url("http://localhost/api/offer", "--offer-url").is_ok());
        assert!(check_http_url("ws://localhost/x", "--offer-url").is_err());
        assert!(check_http_url("nope", "--offer-url").is_err());
    }
}
