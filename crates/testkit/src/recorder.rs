//! What the bot saw and did, for tests to assert on: every message from the client, the
//! audio it sent, what the bot sent back, and session events. Every wait is bounded.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipecat_rtvi::{ClientEnvelope, ClientMessage};
use serde_json::Value;
use tokio::sync::watch;

use crate::BotTransport;
use crate::error::TestkitError;
use crate::util::lock;

/// An RTVI message the bot received from a client (any well-formed RTVI envelope with a
/// `type`, even one whose `data` the bot rejected).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// The session it arrived on.
    pub session_id: String,
    /// When, since the bot started.
    pub at: Duration,
    /// The envelope `type`.
    pub message_type: String,
    /// The envelope `id` (empty if the client sent none).
    pub id: String,
    /// The envelope `data`, as sent.
    pub data: Option<Value>,
    /// The message decoded with `pipecat-rtvi`; `None` when its data did not decode (the bot
    /// then answered with `error-response`).
    pub envelope: Option<ClientEnvelope>,
    /// The text as received.
    pub raw: String,
}

impl ReceivedMessage {
    /// For a `client-message`, its `t`.
    pub fn client_message_type(&self) -> Option<&str> {
        match &self.envelope {
            Some(ClientEnvelope { message: ClientMessage::ClientMessage(m), .. }) => Some(&m.t),
            _ => None,
        }
    }
}

/// A message the bot sent (RTVI JSON, or a WebRTC signalling message).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SentMessage {
    /// The session it was sent on.
    pub session_id: String,
    /// When, since the bot started.
    pub at: Duration,
    /// The message's `type` (for signalling messages, `signalling/<type>`).
    pub message_type: String,
    /// The JSON text.
    pub json: String,
}

/// Why a piece of client input was not handled as an RTVI message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidKind {
    /// A WebSocket message that is not a protobuf `pipecat.Frame` (or a text WebSocket message).
    UndecodableFrame,
    /// A `pipecat.Frame` with no frame set, or an audio frame the bot cannot use.
    BadFrame,
    /// Text that is not JSON, or JSON that is not an object.
    NotJson,
    /// JSON without the `rtvi-ai` label (ignored, as the real server does).
    NotRtvi,
    /// An RTVI envelope without a string `type` or `id` (answered with an RTVI `error`).
    InvalidEnvelope,
    /// A known message type whose data is invalid (answered with `error-response`).
    InvalidData,
    /// A binary data-channel message that is not UTF-8.
    NotUtf8,
    /// A signalling message the bot does not understand.
    BadSignalling,
    /// A data-channel message that arrived while the client's keepalive had lapsed: the real
    /// server queues it and never handles it.
    HeldWhilePingLapsed,
}

/// A piece of client input the bot could not use.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InvalidInput {
    /// The session it arrived on.
    pub session_id: String,
    /// When, since the bot started.
    pub at: Duration,
    /// What was wrong.
    pub kind: InvalidKind,
    /// Details.
    pub detail: String,
    /// The start of the input, lossily decoded (at most 256 bytes).
    pub excerpt: String,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The client went away (WebSocket closed, peer connection closed or failed).
    ClientDisconnected,
    /// The client sent `disconnect-bot`.
    DisconnectBot,
    /// The bot ended the session gracefully (`end`, [`crate::SessionHandle::end`]).
    BotEnded,
    /// The bot reported a fatal error and ended the session.
    FatalError,
    /// The bot dropped the connection without a goodbye.
    Abrupt,
    /// The bot closed the WebSocket with a chosen close code.
    CloseCode(u16),
    /// The whole test bot shut down.
    Shutdown,
}

/// Something that happened in the bot.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BotEventKind {
    /// A client connected and a bot session started.
    SessionStarted {
        /// The transport it came over.
        transport: BotTransport,
    },
    /// The client sent `client-ready`.
    ClientReady {
        /// The version it declared, if any.
        version: Option<String>,
    },
    /// The bot sent `bot-ready`.
    BotReadySent,
    /// The session ended.
    SessionEnded {
        /// Why.
        reason: EndReason,
    },
    /// A WebSocket connection was refused for a bad or missing token.
    TokenRejected,
    /// A SmallWebRTC peer connection was created for an offer.
    PeerConnectionCreated {
        /// Its `pc_id`.
        pc_id: String,
        /// The offer's `request_data` (on `/sessions/{id}/api/offer` also `requestData`, or
        /// else the `/start` body), as the bot would get it.
        request_data: Option<Value>,
    },
    /// ICE of a SmallWebRTC peer connection found a working pair (with `at`, the bot's side
    /// of the connect timeline: PeerConnectionCreated when the answer is made, then this,
    /// PeerConnectionConnected, DataChannelOpen, ClientReady, BotReadySent).
    IceConnected {
        /// Its `pc_id`.
        pc_id: String,
    },
    /// DTLS of a SmallWebRTC peer connection is up (the connection reached `connected`).
    PeerConnectionConnected {
        /// Its `pc_id`.
        pc_id: String,
    },
    /// A new offer was applied to an existing peer connection.
    Renegotiated {
        /// The `pc_id`.
        pc_id: String,
    },
    /// The client restarted its peer connection (`restart_pc`).
    PeerConnectionRestarted {
        /// The previous `pc_id`.
        old_pc_id: String,
        /// The new `pc_id`.
        new_pc_id: String,
    },
    /// The bot answered an offer it could not apply with an empty SDP (as the real runner does).
    InvalidOffer {
        /// Why the offer was rejected.
        detail: String,
    },
    /// Trickled ICE candidates arrived by PATCH.
    IceCandidates {
        /// The `pc_id`.
        pc_id: String,
        /// How many candidates (end-of-candidates markers included).
        count: usize,
    },
    /// The client's data channel opened.
    DataChannelOpen {
        /// Its label (`chat` for the JS and Rust clients).
        label: String,
    },
    /// A data channel of the client's closed (whoever closed it: the client going away, the
    /// bot dropping or replacing the peer connection).
    DataChannelClosed {
        /// Its label.
        label: String,
    },
    /// The client sent a `signalling` `trackStatus` message.
    TrackStatus {
        /// The transceiver index (0 mic, 1 camera, 2 screen).
        receiver_index: u64,
        /// Whether the track is on.
        enabled: bool,
    },
    /// The client's data-channel keepalive lapsed (no `ping` for the liveness window): inbound
    /// messages are held until the next ping, as the real server does.
    PingLapsed,
    /// Sending something to the client failed.
    SendFailed {
        /// What failed.
        detail: String,
    },
}

/// An event with its session and time.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BotEvent {
    /// The session, if the event belongs to one.
    pub session_id: Option<String>,
    /// When, since the bot started.
    pub at: Duration,
    /// What happened.
    pub kind: BotEventKind,
}

/// Counters and levels of the audio a client sent.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AudioStats {
    /// Audio frames received (WebSocket frames, decoded Opus packets, `raw-audio` chunks).
    pub frames: u64,
    /// Samples per channel received.
    pub samples: u64,
    /// Total duration received.
    pub duration: Duration,
    /// The sample rate of the last frame.
    pub sample_rate: Option<u32>,
    /// The channel count of the last frame.
    pub channels: Option<u16>,
    /// RMS of the last frame (PCM16 scale, 0 to 32767).
    pub last_rms: f32,
    /// The highest frame RMS seen.
    pub peak_rms: f32,
    /// Frames with sound in them (an RMS of at least [`AudioStats::LOUD_RMS`]).
    pub loud_frames: u64,
}

impl AudioStats {
    /// The RMS from which a frame counts as loud (speech is typically well above this).
    pub const LOUD_RMS: f32 = 300.0;

    fn add(&mut self, samples: &[i16], sample_rate: u32, channels: u16) {
        let channels = channels.max(1);
        let per_channel = samples.len() / usize::from(channels);
        let level = crate::audio::rms(samples);
        self.frames += 1;
        self.samples += per_channel as u64;
        if sample_rate > 0 {
            self.duration += Duration::from_secs_f64(per_channel as f64 / f64::from(sample_rate));
        }
        self.sample_rate = Some(sample_rate);
        self.channels = Some(channels);
        self.last_rms = level;
        self.peak_rms = self.peak_rms.max(level);
        if level >= Self::LOUD_RMS {
            self.loud_frames += 1;
        }
    }

    fn merge(&mut self, other: &AudioStats) {
        self.frames += other.frames;
        self.samples += other.samples;
        self.duration += other.duration;
        if other.sample_rate.is_some() {
            self.sample_rate = other.sample_rate;
            self.channels = other.channels;
            self.last_rms = other.last_rms;
        }
        self.peak_rms = self.peak_rms.max(other.peak_rms);
        self.loud_frames += other.loud_frames;
    }
}

/// A `POST /start` the bot answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StartRequest {
    /// When, since the bot started.
    pub at: Duration,
    /// The JSON body (`{}` when there was none or it was not JSON, as the runner treats it).
    pub body: Value,
    /// The request headers, names lower-cased. Values that are not UTF-8 are left out.
    pub headers: Vec<(String, String)>,
    /// The transport asked for (after defaults).
    pub transport: String,
    /// The session id the bot returned, if it accepted the request.
    pub session_id: Option<String>,
}

impl StartRequest {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// A SmallWebRTC signalling request the bot received: an offer (`POST /api/offer` or
/// `/sessions/{id}/api/offer`) or a trickle-ICE `PATCH` on the same routes. Recorded whatever
/// the answer was (a validation error, a failure from
/// [`TestBotBuilder::offer_failure`](crate::TestBotBuilder::offer_failure), a 404), once
/// it was answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignallingRequest {
    /// The session it went to (the one an answered offer created, renegotiated or restarted,
    /// the one whose `pc_id` a PATCH named), if any.
    pub session_id: Option<String>,
    /// When it was answered, since the bot started.
    pub at: Duration,
    /// The request path (`/api/offer`, `/sessions/<id>/api/offer`).
    pub path: String,
    /// The JSON body as sent (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The request headers, names lower-cased. Values that are not UTF-8 are left out.
    pub headers: Vec<(String, String)>,
    /// The HTTP status the bot answered with.
    pub status: u16,
}

impl SignallingRequest {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }
}

/// With a bounded history, how many signalling requests that belong to no session (refused
/// or failed offers, PATCHes for unknown `pc_id`s) are kept, newest last.
#[cfg(feature = "webrtc")]
const MAX_UNATTACHED_SIGNALLING: usize = 64;

/// How much a test bot remembers of the sessions it served (see
/// [`TestBotBuilder::history`](crate::TestBotBuilder::history)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum History {
    /// Everything, for the bot's lifetime: what a test inspects afterwards (the default).
    #[default]
    All,
    /// Running sessions, and the last `n` that ended: when one more ends, what the oldest
    /// recorded (messages, events, invalid input, audio, pings, its session handle) is
    /// forgotten. `LastSessions(0)` keeps only running sessions: a long-running bot (the
    /// CLI's `pipecat test-bot`) stays bounded.
    LastSessions(usize),
}

/// Start requests a bounded history keeps at least (they outlive their sessions briefly).
const MIN_STARTS_KEPT: usize = 16;

#[derive(Default)]
struct State {
    received: Vec<ReceivedMessage>,
    sent: Vec<SentMessage>,
    invalid: Vec<InvalidInput>,
    events: Vec<BotEvent>,
    starts: Vec<StartRequest>,
    offers: Vec<SignallingRequest>,
    patches: Vec<SignallingRequest>,
    audio: HashMap<String, AudioStats>,
    pcm: HashMap<String, (u32, Vec<i16>)>,
    pings: HashMap<String, u64>,
    /// Sessions that ended, oldest first (only with a bounded history).
    ended: VecDeque<String>,
}

impl State {
    /// Drops everything recorded for `session_id`.
    fn forget(&mut self, session_id: &str) {
        self.received.retain(|m| m.session_id != session_id);
        self.sent.retain(|m| m.session_id != session_id);
        self.invalid.retain(|m| m.session_id != session_id);
        self.events.retain(|e| e.session_id.as_deref() != Some(session_id));
        self.starts.retain(|s| s.session_id.as_deref() != Some(session_id));
        self.offers.retain(|s| s.session_id.as_deref() != Some(session_id));
        self.patches.retain(|s| s.session_id.as_deref() != Some(session_id));
        self.audio.remove(session_id);
        self.pcm.remove(session_id);
        self.pings.remove(session_id);
    }
}

/// Drops the oldest requests without a session beyond `keep`.
#[cfg(feature = "webrtc")]
fn trim_unattached(list: &mut Vec<SignallingRequest>, keep: usize) {
    let unattached = list.iter().filter(|r| r.session_id.is_none()).count();
    let mut excess = unattached.saturating_sub(keep);
    list.retain(|r| {
        if excess > 0 && r.session_id.is_none() {
            excess -= 1;
            return false;
        }
        true
    });
}

struct Inner {
    epoch: Instant,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    pcm_cap: Duration,
    history: History,
}

/// The log of everything one test bot saw and did, shared by all its sessions.
///
/// Cheap to clone; every clone sees the same log. The `wait_*` methods wait for something to
/// be recorded, with a timeout, and fail with [`TestkitError::Timeout`].
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("Recorder")
            .field("received", &state.received.len())
            .field("sent", &state.sent.len())
            .field("invalid", &state.invalid.len())
            .field("events", &state.events.len())
            .finish()
    }
}

impl Recorder {
    /// An empty log that keeps up to `pcm_cap` of received audio per session, and the
    /// sessions `history` says.
    pub(crate) fn new(pcm_cap: Duration, history: History) -> Self {
        Recorder {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                state: Mutex::new(State::default()),
                version: watch::Sender::new(0),
                pcm_cap,
                history,
            }),
        }
    }

    /// Session `session_id` ended: with a bounded history, what the oldest ended sessions
    /// beyond it recorded is forgotten.
    pub(crate) fn session_ended(&self, session_id: &str) {
        let History::LastSessions(keep) = self.inner.history else { return };
        let mut state = lock(&self.inner.state);
        state.ended.push_back(session_id.to_owned());
        while state.ended.len() > keep {
            let Some(oldest) = state.ended.pop_front() else { break };
            state.forget(&oldest);
        }
    }

    /// Whether an ended session is still in the history.
    pub(crate) fn remembers(&self, session_id: &str) -> bool {
        match self.inner.history {
            History::All => true,
            History::LastSessions(_) => {
                lock(&self.inner.state).ended.iter().any(|id| id == session_id)
            }
        }
    }

    fn now(&self) -> Duration {
        self.inner.epoch.elapsed()
    }

    fn update(&self, f: impl FnOnce(&mut State, Duration)) {
        let at = self.now();
        f(&mut lock(&self.inner.state), at);
        self.inner.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    // ----- recording (crate-internal) -----

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn received(
        &self,
        session_id: &str,
        message_type: &str,
        id: &str,
        data: Option<Value>,
        envelope: Option<ClientEnvelope>,
        raw: &str,
    ) {
        self.update(|s, at| {
            s.received.push(ReceivedMessage {
                session_id: session_id.to_owned(),
                at,
                message_type: message_type.to_owned(),
                id: id.to_owned(),
                data,
                envelope,
                raw: raw.to_owned(),
            })
        });
    }

    pub(crate) fn sent(&self, session_id: &str, message_type: &str, json: &str) {
        self.update(|s, at| {
            s.sent.push(SentMessage {
                session_id: session_id.to_owned(),
                at,
                message_type: message_type.to_owned(),
                json: json.to_owned(),
            })
        });
    }

    pub(crate) fn invalid(&self, session_id: &str, kind: InvalidKind, detail: String, raw: &[u8]) {
        let excerpt = String::from_utf8_lossy(&raw[..raw.len().min(256)]).into_owned();
        tracing::debug!(session_id, ?kind, %detail, "testkit bot: invalid client input");
        self.update(|s, at| {
            s.invalid.push(InvalidInput {
                session_id: session_id.to_owned(),
                at,
                kind,
                detail,
                excerpt,
            })
        });
    }

    pub(crate) fn event(&self, session_id: Option<&str>, kind: BotEventKind) {
        tracing::debug!(session_id, ?kind, "testkit bot event");
        self.update(|s, at| {
            s.events.push(BotEvent { session_id: session_id.map(str::to_owned), at, kind })
        });
    }

    pub(crate) fn start_request(&self, mut request: StartRequest) {
        // A start is not always followed by a session (and a WebSocket session gets an id of
        // its own): with a bounded history, only the latest starts are kept.
        let keep = match self.inner.history {
            History::All => None,
            History::LastSessions(n) => Some(n.max(MIN_STARTS_KEPT)),
        };
        self.update(|s, at| {
            request.at = at;
            s.starts.push(request);
            if let Some(keep) = keep
                && s.starts.len() > keep
            {
                let excess = s.starts.len() - keep;
                s.starts.drain(..excess);
            }
        });
    }

    /// Records a SmallWebRTC offer (`patch` false) or trickle PATCH (`patch` true).
    #[cfg(feature = "webrtc")]
    pub(crate) fn signalling(&self, patch: bool, mut request: SignallingRequest) {
        let bounded = self.inner.history != History::All;
        self.update(|s, at| {
            request.at = at;
            let list = if patch { &mut s.patches } else { &mut s.offers };
            list.push(request);
            if bounded {
                trim_unattached(list, MAX_UNATTACHED_SIGNALLING);
            }
        });
    }

    pub(crate) fn audio(&self, session_id: &str, samples: &[i16], sample_rate: u32, channels: u16) {
        let cap = self.inner.pcm_cap;
        self.update(|s, _| {
            s.audio.entry(session_id.to_owned()).or_default().add(samples, sample_rate, channels);
            if cap.is_zero() || sample_rate == 0 {
                return;
            }
            let mono = crate::audio::to_mono(samples, channels);
            let (rate, pcm) =
                s.pcm.entry(session_id.to_owned()).or_insert_with(|| (sample_rate, Vec::new()));
            if *rate != sample_rate {
                // A new rate starts a new recording: mixing rates would make it unplayable.
                *rate = sample_rate;
                pcm.clear();
            }
            let max = (cap.as_secs_f64() * f64::from(sample_rate)) as usize;
            let room = max.saturating_sub(pcm.len());
            pcm.extend_from_slice(&mono[..mono.len().min(room)]);
        });
    }

    /// Counts a SmallWebRTC keepalive `ping` from the client.
    #[cfg(feature = "webrtc")]
    pub(crate) fn ping(&self, session_id: &str) {
        self.update(|s, _| *s.pings.entry(session_id.to_owned()).or_default() += 1);
    }

    // ----- reading -----

    /// Every RTVI message received, in order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        lock(&self.inner.state).received.clone()
    }

    /// The received RTVI messages of one `type` (`client-ready`, `send-text`...).
    pub fn messages_of_type(&self, message_type: &str) -> Vec<ReceivedMessage> {
        lock(&self.inner.state)
            .received
            .iter()
            .filter(|m| m.message_type == message_type)
            .cloned()
            .collect()
    }

    /// The received `client-message`s with this `t`.
    pub fn client_messages(&self, t: &str) -> Vec<ReceivedMessage> {
        lock(&self.inner.state)
            .received
            .iter()
            .filter(|m| m.client_message_type() == Some(t))
            .cloned()
            .collect()
    }

    /// The `llm-function-call-result` data the clients sent, in order.
    pub fn function_call_results(&self) -> Vec<pipecat_rtvi::FunctionCallResult> {
        lock(&self.inner.state)
            .received
            .iter()
            .filter_map(|m| match &m.envelope {
                Some(ClientEnvelope {
                    message: ClientMessage::LlmFunctionCallResult(r), ..
                }) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Everything the bot sent, in order.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        lock(&self.inner.state).sent.clone()
    }

    /// The `type`s of everything the bot sent, in order (handy in assertions).
    pub fn sent_types(&self) -> Vec<String> {
        lock(&self.inner.state).sent.iter().map(|m| m.message_type.clone()).collect()
    }

    /// Client input the bot could not use.
    pub fn invalid_inputs(&self) -> Vec<InvalidInput> {
        lock(&self.inner.state).invalid.clone()
    }

    /// Session and connection events.
    pub fn events(&self) -> Vec<BotEvent> {
        lock(&self.inner.state).events.clone()
    }

    /// The `POST /start` requests answered.
    pub fn start_requests(&self) -> Vec<StartRequest> {
        lock(&self.inner.state).starts.clone()
    }

    /// The SmallWebRTC offers received, in order: first offers, renegotiations and restarts
    /// (`restart_pc`), with their JSON bodies and headers.
    pub fn offers(&self) -> Vec<SignallingRequest> {
        lock(&self.inner.state).offers.clone()
    }

    /// The trickle-ICE `PATCH`es received, in order, with their JSON bodies (`pc_id` and
    /// `candidates`) and headers.
    pub fn candidate_patches(&self) -> Vec<SignallingRequest> {
        lock(&self.inner.state).patches.clone()
    }

    /// Audio received over all sessions.
    pub fn audio_stats(&self) -> AudioStats {
        let state = lock(&self.inner.state);
        let mut total = AudioStats::default();
        for stats in state.audio.values() {
            total.merge(stats);
        }
        total
    }

    /// Audio received on one session.
    pub fn session_audio_stats(&self, session_id: &str) -> AudioStats {
        lock(&self.inner.state).audio.get(session_id).cloned().unwrap_or_default()
    }

    /// The audio one session received, mixed to mono, with its sample rate (kept up to the
    /// builder's `record_audio` limit; `None` if there is none).
    pub fn session_audio(&self, session_id: &str) -> Option<(u32, Vec<i16>)> {
        lock(&self.inner.state).pcm.get(session_id).cloned()
    }

    /// Data-channel keepalive `ping`s received on one session (SmallWebRTC).
    pub fn pings(&self, session_id: &str) -> u64 {
        lock(&self.inner.state).pings.get(session_id).copied().unwrap_or_default()
    }

    // ----- waiting -----

    /// Waits until `check` returns `Some`, re-running it whenever something is recorded.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`] (naming `what`) if `timeout` passes first.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Recorder) -> Option<T>,
    ) -> Result<T, TestkitError> {
        let mut changes = self.inner.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(value) = check(self) {
                return Ok(value);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as `self`; treat its loss like a timeout anyway.
                Ok(Err(_)) | Err(_) => {
                    return match check(self) {
                        Some(value) => Ok(value),
                        None => Err(TestkitError::Timeout { what: what.to_owned(), timeout }),
                    };
                }
            }
        }
    }

    /// Waits for the first received RTVI message of a `type`.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_message(
        &self,
        message_type: &str,
        timeout: Duration,
    ) -> Result<ReceivedMessage, TestkitError> {
        self.wait_until(&format!("a {message_type} message"), timeout, |r| {
            lock(&r.inner.state).received.iter().find(|m| m.message_type == message_type).cloned()
        })
        .await
    }

    /// Waits for the first received `client-message` with this `t`.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_client_message(
        &self,
        t: &str,
        timeout: Duration,
    ) -> Result<ReceivedMessage, TestkitError> {
        self.wait_until(&format!("a client-message {t:?}"), timeout, |r| {
            lock(&r.inner.state)
                .received
                .iter()
                .find(|m| m.client_message_type() == Some(t))
                .cloned()
        })
        .await
    }

    /// Waits until `count` messages of a `type` have been received; returns them all.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_messages(
        &self,
        message_type: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, TestkitError> {
        self.wait_until(&format!("{count} {message_type} messages"), timeout, |r| {
            let found = r.messages_of_type(message_type);
            (found.len() >= count).then_some(found)
        })
        .await
    }

    /// Waits for the client's `llm-function-call-result` for a tool call.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_function_call_result(
        &self,
        tool_call_id: &str,
        timeout: Duration,
    ) -> Result<pipecat_rtvi::FunctionCallResult, TestkitError> {
        self.wait_until(&format!("the result of tool call {tool_call_id:?}"), timeout, |r| {
            r.function_call_results().into_iter().find(|f| f.tool_call_id == tool_call_id)
        })
        .await
    }

    /// Waits until the audio received over all sessions satisfies `check`.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_audio(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&AudioStats) -> bool,
    ) -> Result<AudioStats, TestkitError> {
        self.wait_until("client audio", timeout, |r| {
            let stats = r.audio_stats();
            check(&stats).then_some(stats)
        })
        .await
    }

    /// Waits for the first event `check` accepts.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_event(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&BotEvent) -> bool,
    ) -> Result<BotEvent, TestkitError> {
        self.wait_until(what, timeout, |r| {
            lock(&r.inner.state).events.iter().find(|e| check(e)).cloned()
        })
        .await
    }

    /// Waits until the bot has sent a message of a `type`; returns the first one.
    ///
    /// # Errors
    /// [`TestkitError::Timeout`].
    pub async fn wait_for_sent(
        &self,
        message_type: &str,
        timeout: Duration,
    ) -> Result<SentMessage, TestkitError> {
        self.wait_until(&format!("the bot to send {message_type}"), timeout, |r| {
            lock(&r.inner.state).sent.iter().find(|m| m.message_type == message_type).cloned()
        })
        .await
    }
}

#[cfg(all(test, feature = "webrtc"))]
mod tests {
    use super::*;

    fn request(session_id: Option<&str>) -> SignallingRequest {
        SignallingRequest {
            session_id: session_id.map(str::to_owned),
            at: Duration::ZERO,
            path: "/api/offer".into(),
            body: Value::Null,
            headers: vec![("x-test".into(), "yes".into())],
            status: 200,
        }
    }

    #[test]
    fn signalling_requests_are_kept_in_order_and_by_kind() {
        let recorder = Recorder::new(Duration::ZERO, History::All);
        recorder.signalling(false, request(Some("a")));
        recorder.signalling(true, request(Some("a")));
        recorder.signalling(false, request(None));
        let offers = recorder.offers();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].session_id.as_deref(), Some("a"));
        assert_eq!(offers[1].session_id, None);
        assert_eq!(offers[0].header("X-Test"), Some("yes"));
        assert_eq!(recorder.candidate_patches().len(), 1);
    }

    #[test]
    fn a_bounded_history_forgets_signalling_with_its_session_and_caps_the_rest() {
        let recorder = Recorder::new(Duration::ZERO, History::LastSessions(0));
        recorder.signalling(false, request(Some("a")));
        recorder.signalling(true, request(Some("a")));
        recorder.signalling(false, request(Some("b")));
        recorder.session_ended("a");
        assert_eq!(recorder.offers().len(), 1);
        assert!(recorder.candidate_patches().is_empty());
        for _ in 0..MAX_UNATTACHED_SIGNALLING + 5 {
            recorder.signalling(false, request(None));
        }
        let offers = recorder.offers();
        assert_eq!(offers.len(), MAX_UNATTACHED_SIGNALLING + 1);
        assert_eq!(offers[0].session_id.as_deref(), Some("b"), "a session's offer stays");
    }
}
