//! One session: the task that owns the current peer connection, negotiates it, watches its
//! health, renegotiates on request, rebuilds it when it breaks, and tears it down.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use pipecat_core::media::Participant;
use pipecat_core::{TransportError, TransportEvent, TransportEventSink};
use pipecat_media_engine::BotAudio;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{RTCIceConnectionState, RTCPeerConnectionState};

use crate::audio::OutSlot;
use crate::error::SmallWebRtcError;
use crate::keepalive::{MIC_INDEX, ServerSignal, ping_message, track_status};
use crate::peer::{MediaContext, Peer, PeerEvent, PeerOptions};
use crate::recovery::{LinkMonitor, LinkSignal, RecoveryConfig};
use crate::signalling::{Signaller, TRICKLE_PERIOD, run_trickle};
use crate::timeline::{ConnectTimeline, Recorder, Step};

/// Messages sent while the link is being rebuilt wait here (the server queues 50 too).
const MAX_QUEUED_WHILE_RECOVERING: usize = 50;

/// The largest RTVI message before the data channel's SCTP association says otherwise (the
/// WebRTC data-channel minimum every peer supports).
pub const FALLBACK_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// The HTTP status of a restart offer the server refused for good: any 4xx but 408 (timeout)
/// and 429 (rate limit), which are worth another attempt.
fn restart_refusal(error: &TransportError) -> Option<u16> {
    match error {
        TransportError::Http(http) => {
            http.status().filter(|s| (400..500).contains(s) && *s != 408 && *s != 429)
        }
        _ => None,
    }
}

/// How long a broken link waits for the bot's `peerLeft` still in flight before recovering.
const PEER_LEFT_SETTLE: Duration = Duration::from_secs(1);

/// The data channel as senders see it.
pub(crate) enum Link {
    /// Not open yet.
    Connecting,
    /// Open: messages go straight out.
    Open(Arc<dyn DataChannel>),
    /// Being rebuilt: messages wait for the new channel.
    Recovering(VecDeque<String>),
    /// Gone for good.
    Closed,
}

/// Counters shared by every session of one transport.
#[derive(Debug, Default)]
pub(crate) struct SessionCounters {
    pub(crate) renegotiations: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) reconnections: AtomicU64,
    pub(crate) pings: AtomicU64,
    /// The newest attempt's timeline, once its channel opened.
    pub(crate) last_connect: std::sync::Mutex<Option<ConnectTimeline>>,
}

/// What the session shares with the transport's methods and its helper tasks.
pub(crate) struct Shared {
    pub(crate) events: TransportEventSink,
    pub(crate) link: tokio::sync::Mutex<Link>,
    pub(crate) pc_id: std::sync::Mutex<Option<String>>,
    /// The media engine's microphone switch (announced by `trackStatus`).
    pub(crate) mic_enabled: watch::Receiver<bool>,
    /// The session's bot-audio pipeline (flushed when the bot is interrupted).
    pub(crate) bot_audio: BotAudio,
    pub(crate) video_transceivers: bool,
    pub(crate) max_message_size: Arc<AtomicUsize>,
    pub(crate) counters: Arc<SessionCounters>,
    /// Turns true once the link is closed for good (the microphone pipeline stops on it).
    pub(crate) closed: watch::Sender<bool>,
}

impl Shared {
    /// The link is closed for good: nothing is sent any more.
    pub(crate) async fn close_link(&self) {
        *self.link.lock().await = Link::Closed;
        self.closed.send_replace(true);
    }

    /// Resolves once the link is closed for good.
    pub(crate) fn link_closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closed = self.closed.subscribe();
        async move {
            let _ = closed.wait_for(|closed| *closed).await;
        }
    }

    /// Sends a message now, queues it during recovery, or fails.
    pub(crate) async fn send(&self, message: String) -> Result<(), TransportError> {
        let mut link = self.link.lock().await;
        match &mut *link {
            Link::Open(channel) => channel.send_text(&message).await.map_err(|e| {
                TransportError::ConnectionLost { code: None, reason: format!("data channel: {e}") }
            }),
            Link::Recovering(queue) if queue.len() < MAX_QUEUED_WHILE_RECOVERING => {
                queue.push_back(message);
                Ok(())
            }
            Link::Recovering(_) => Err(TransportError::NotConnected),
            Link::Connecting | Link::Closed => Err(TransportError::NotConnected),
        }
    }

    /// Sends a transport message (keepalive, trackStatus) if the channel is open; never queued.
    pub(crate) async fn send_if_open(&self, message: &str) -> bool {
        let link = self.link.lock().await;
        match &*link {
            Link::Open(channel) => channel.send_text(message).await.is_ok(),
            _ => false,
        }
    }

    /// The keepalive: one ping now and then every `period` until the task is stopped.
    pub(crate) async fn run_keepalive(self: Arc<Self>, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.send_if_open(&ping_message(std::time::SystemTime::now())).await {
                self.counters.pings.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn set_pc_id(&self, id: Option<String>) {
        *self.pc_id.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }
}

/// The session's settings.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub(crate) peer: PeerOptions,
    pub(crate) wait_for_gathering: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) recovery: RecoveryConfig,
}

/// Why an attempt to (re)connect did not succeed.
enum AttemptError {
    Stopped,
    Failed(TransportError),
}

impl From<TransportError> for AttemptError {
    fn from(e: TransportError) -> Self {
        AttemptError::Failed(e)
    }
}

impl From<SmallWebRtcError> for AttemptError {
    fn from(e: SmallWebRtcError) -> Self {
        AttemptError::Failed(e.into())
    }
}

/// The session task's state.
pub(crate) struct Session {
    config: SessionConfig,
    shared: Arc<Shared>,
    signaller: Signaller,
    media: MediaContext,
    out: Arc<OutSlot>,
    events_tx: mpsc::UnboundedSender<PeerEvent>,
    events_rx: mpsc::UnboundedReceiver<PeerEvent>,
    stop: watch::Receiver<bool>,
    peer: Option<Peer>,
    pc_id: Option<String>,
    generation: u64,
    monitor: LinkMonitor,
    bot_left: bool,
    dead: bool,
}

impl Session {
    pub(crate) fn new(
        config: SessionConfig,
        shared: Arc<Shared>,
        signaller: Signaller,
        bot_audio: BotAudio,
        out: Arc<OutSlot>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let media = MediaContext {
            bot_audio,
            events: shared.events.clone(),
            bot: Participant { id: "bot".into(), name: Some("bot".into()), local: false },
        };
        let monitor = LinkMonitor::new(config.recovery.disconnected_grace);
        Session {
            config,
            shared,
            signaller,
            media,
            out,
            events_tx,
            events_rx,
            stop,
            peer: None,
            pc_id: None,
            generation: 0,
            monitor,
            bot_left: false,
            dead: false,
        }
    }

    /// Connects, reports through `ready`, then runs the session until stopped.
    pub(crate) async fn run(mut self, ready: oneshot::Sender<Result<(), TransportError>>) {
        let limit = self.config.connect_timeout;
        let first = match self.attempt(false, limit).await {
            Ok(()) => Ok(()),
            Err(AttemptError::Stopped) => Err(TransportError::NotConnected),
            Err(AttemptError::Failed(e)) => Err(e),
        };
        let connected = first.is_ok();
        if connected {
            let id = self.pc_id.clone().unwrap_or_default();
            self.shared.events.emit(TransportEvent::BotConnected(Participant {
                id,
                name: Some("bot".into()),
                local: false,
            }));
        }
        let _ = ready.send(first);
        if connected {
            self.supervise().await;
        }
        self.shutdown().await;
    }

    async fn supervise(&mut self) {
        let mut stop = self.stop.clone();
        loop {
            let deadline = self.monitor.deadline();
            tokio::select! {
                _ = stopped(&mut stop) => return,
                event = self.events_rx.recv() => {
                    let Some(event) = event else { return };
                    self.handle(event).await;
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() => {
                    if let Some(reason) = self.monitor.check(Instant::now()) {
                        self.recover(reason.describe()).await;
                    }
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    async fn handle(&mut self, event: PeerEvent) {
        if self.dead {
            return;
        }
        let current = self.generation;
        let signal = match event {
            PeerEvent::Ice(g, state) if g == current => match state {
                RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                    LinkSignal::Up
                }
                RTCIceConnectionState::Disconnected => LinkSignal::Disconnected,
                RTCIceConnectionState::Failed | RTCIceConnectionState::Closed => LinkSignal::Failed,
                _ => return,
            },
            PeerEvent::State(g, state) if g == current => match state {
                RTCPeerConnectionState::Connected => LinkSignal::Up,
                RTCPeerConnectionState::Disconnected => LinkSignal::Disconnected,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    LinkSignal::Failed
                }
                _ => return,
            },
            PeerEvent::ChannelClosed(g) if g == current => LinkSignal::ChannelClosed,
            PeerEvent::Signal(g, signal) if g == current => {
                match signal {
                    ServerSignal::Renegotiate => self.renegotiate().await,
                    ServerSignal::PeerLeft => {
                        tracing::info!("the bot left (peerLeft)");
                        self.bot_left = true;
                        self.shared
                            .events
                            .emit(TransportEvent::BotDisconnected { reason: "peerLeft".into() });
                    }
                    ServerSignal::Other(kind) => {
                        tracing::debug!(kind, "unknown signalling message ignored");
                    }
                }
                return;
            }
            // Late news of a replaced peer connection.
            _ => return,
        };
        if self.bot_left {
            // The bot closes its side after peerLeft: nothing to recover.
            if signal == LinkSignal::ChannelClosed {
                self.shared.close_link().await;
            }
            return;
        }
        if let Some(reason) = self.monitor.observe(signal, Instant::now()) {
            // A channel close comes after every message the channel delivered; a peer or ICE
            // state change does not, and the bot's `peerLeft` may still be in flight.
            if signal != LinkSignal::ChannelClosed && self.bot_left_in_flight().await {
                tracing::info!("the bot left (peerLeft) as the link went down");
                self.bot_left = true;
                self.shared.close_link().await;
                self.shared
                    .events
                    .emit(TransportEvent::BotDisconnected { reason: "peerLeft".into() });
                return;
            }
            self.recover(reason.describe()).await;
        }
    }

    /// Waits briefly for the current data channel to drain: `true` if the bot's `peerLeft`
    /// arrives before the channel reports closed (the bot closed its peer connection right
    /// after saying goodbye), `false` on the close or after [`PEER_LEFT_SETTLE`].
    async fn bot_left_in_flight(&mut self) -> bool {
        let generation = self.generation;
        let deadline = tokio::time::Instant::now() + PEER_LEFT_SETTLE;
        loop {
            match tokio::time::timeout_at(deadline, self.events_rx.recv()).await {
                Ok(Some(PeerEvent::Signal(g, ServerSignal::PeerLeft))) if g == generation => {
                    return true;
                }
                Ok(Some(PeerEvent::ChannelClosed(g))) if g == generation => return false,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// The server asked for a new offer on the same peer connection (same pc_id).
    async fn renegotiate(&mut self) {
        let Some(peer) = self.peer.as_ref() else { return };
        tracing::info!("renegotiating on the same peer connection");
        let wait = self.config.wait_for_gathering;
        let pc_id = self.pc_id.clone();
        let signaller = self.signaller.clone();
        let work = async {
            let sdp = peer.make_offer(wait).await?;
            let answer = signaller.offer(&sdp, pc_id.as_deref(), false).await?;
            peer.apply_answer(answer.sdp).await?;
            Ok::<String, TransportError>(answer.pc_id)
        };
        let mut stop = self.stop.clone();
        let result = tokio::select! {
            r = work => r,
            _ = stopped(&mut stop) => return,
        };
        match result {
            Ok(new_id) => {
                if self.pc_id.as_deref() != Some(new_id.as_str()) {
                    tracing::warn!("the server changed pc_id on renegotiation");
                    self.shared.set_pc_id(Some(new_id.clone()));
                    self.pc_id = Some(new_id);
                }
                self.shared.counters.renegotiations.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // Half-done negotiation leaves the connection unusable: rebuild it.
                self.shared
                    .events
                    .emit(TransportEvent::Warning(format!("renegotiation failed: {e}")));
                self.recover("renegotiation failed").await;
            }
        }
    }

    /// Rebuilds the peer connection with `restart_pc: true` until it works or the attempts
    /// run out; then the session ends with [`TransportError::ReconnectFailed`].
    async fn recover(&mut self, reason: &str) {
        let max = self.config.recovery.max_attempts;
        tracing::warn!(reason, max_attempts = max, "link broken");
        self.out.set(None);
        {
            let mut link = self.shared.link.lock().await;
            if !matches!(*link, Link::Recovering(_)) {
                *link = Link::Recovering(VecDeque::new());
            }
        }
        if max == 0 {
            self.fail(TransportError::ConnectionLost { code: None, reason: reason.to_owned() })
                .await;
            return;
        }
        let mut last = reason.to_owned();
        for attempt in 1..=max {
            self.shared.events.emit(TransportEvent::Reconnecting { attempt, max_attempts: max });
            self.shared.counters.restarts.fetch_add(1, Ordering::Relaxed);
            match self.attempt(true, self.config.recovery.attempt_timeout).await {
                Ok(()) => {
                    tracing::info!(attempt, "peer connection rebuilt");
                    self.shared.counters.reconnections.fetch_add(1, Ordering::Relaxed);
                    self.shared.events.emit(TransportEvent::Reconnected);
                    return;
                }
                Err(AttemptError::Stopped) => return,
                Err(AttemptError::Failed(e)) => {
                    tracing::warn!(attempt, error = %e, "peer connection restart failed");
                    match restart_refusal(&e) {
                        // The server no longer knows the session: the bot has ended (its
                        // `peerLeft` was lost with the closing connection).
                        Some(404) => {
                            self.dead = true;
                            self.close_peer().await;
                            self.shared.close_link().await;
                            self.shared.events.emit(TransportEvent::BotDisconnected {
                                reason: "the bot session has ended".into(),
                            });
                            return;
                        }
                        // Another refusal will not change on a retry (client-js retries
                        // them blindly): give up now, with the server's status.
                        Some(_) => {
                            self.fail(TransportError::ReconnectFailed {
                                attempts: attempt,
                                reason: e.to_string(),
                            })
                            .await;
                            return;
                        }
                        None => last = e.to_string(),
                    }
                }
            }
            if attempt < max {
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(self.config.recovery.retry_delay) => {}
                    _ = stopped(&mut stop) => return,
                }
            }
        }
        self.fail(TransportError::ReconnectFailed { attempts: max, reason: last }).await;
    }

    /// Ends the session with an error; the client then disconnects (and stops us).
    async fn fail(&mut self, error: TransportError) {
        self.dead = true;
        self.close_peer().await;
        self.shared.close_link().await;
        self.shared.events.emit(TransportEvent::Failed(error));
    }

    /// One attempt: a new peer connection, offer, answer, open data channel, within `limit`.
    async fn attempt(&mut self, restart: bool, limit: Duration) -> Result<(), AttemptError> {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return Err(AttemptError::Stopped);
        }
        self.close_peer().await;
        let outcome = tokio::select! {
            r = tokio::time::timeout(limit, self.establish(restart)) => match r {
                Ok(r) => r,
                Err(_) => Err(AttemptError::Failed(TransportError::Timeout {
                    what: "SmallWebRTC connection".into(),
                    after: limit,
                })),
            },
            _ = stopped(&mut stop) => Err(AttemptError::Stopped),
        };
        if outcome.is_err() {
            self.close_peer().await;
        }
        outcome
    }

    async fn establish(&mut self, restart: bool) -> Result<(), AttemptError> {
        self.generation += 1;
        let generation = self.generation;
        let mut timeline = Recorder::start();
        let (candidates_tx, candidates_rx) = mpsc::unbounded_channel();
        let peer = Peer::build(
            generation,
            &self.config.peer,
            self.events_tx.clone(),
            candidates_tx,
            self.media.clone(),
        )
        .await?;
        let (pc_id_tx, pc_id_rx) = watch::channel(None);
        if self.config.wait_for_gathering.is_none() {
            let signaller = self.signaller.clone();
            let events = self.shared.events.clone();
            peer.spawn(run_trickle(candidates_rx, pc_id_rx, TRICKLE_PERIOD, move |id, batch| {
                let signaller = signaller.clone();
                let events = events.clone();
                async move {
                    // A warning, never a failure: ICE goes on with the candidates the server
                    // has (and its own), and a connection that cannot form fails on its own.
                    if let Err(e) = signaller.patch_candidates(&id, &batch).await {
                        tracing::warn!(error = %e, "trickle ICE PATCH failed");
                        events.emit(TransportEvent::Warning(format!(
                            "trickle ICE PATCH of {} candidate(s) failed: {e}",
                            batch.len()
                        )));
                    }
                }
            }));
        }
        self.peer = Some(peer);
        let peer = self.peer.as_ref().ok_or(AttemptError::Stopped)?;
        timeline.mark(Step::PeerBuilt);

        let sdp = peer.make_offer(self.config.wait_for_gathering).await?;
        timeline.mark(Step::OfferCreated);
        tracing::debug!(endpoint = %self.signaller.endpoint(), restart, "posting offer");
        let answer = self.signaller.offer(&sdp, self.pc_id.as_deref(), restart).await?;
        timeline.mark(Step::AnswerReceived);
        peer.apply_answer(answer.sdp).await?;
        timeline.mark(Step::AnswerApplied);
        tracing::info!(pc_id = %answer.pc_id, restart, "answer applied");
        self.pc_id = Some(answer.pc_id.clone());
        self.shared.set_pc_id(Some(answer.pc_id.clone()));
        pc_id_tx.send_replace(Some(answer.pc_id));
        self.out.set(Some(peer.out_track().await));

        // Wait for our data channel to open.
        loop {
            let Some(event) = self.events_rx.recv().await else {
                return Err(AttemptError::Stopped);
            };
            match event {
                PeerEvent::ChannelOpen(g) if g == generation => {
                    timeline.mark(Step::ChannelOpen);
                    break;
                }
                PeerEvent::Ice(g, RTCIceConnectionState::Checking) if g == generation => {
                    timeline.mark(Step::IceChecking);
                }
                PeerEvent::Ice(
                    g,
                    RTCIceConnectionState::Connected | RTCIceConnectionState::Completed,
                ) if g == generation => timeline.mark(Step::IceConnected),
                PeerEvent::State(g, RTCPeerConnectionState::Connected) if g == generation => {
                    timeline.mark(Step::DtlsConnected);
                }
                PeerEvent::State(
                    g,
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed,
                )
                | PeerEvent::Ice(g, RTCIceConnectionState::Failed)
                    if g == generation =>
                {
                    return Err(
                        SmallWebRtcError::PeerConnectionLost { state: "failed".into() }.into()
                    );
                }
                PeerEvent::ChannelClosed(g) if g == generation => {
                    return Err(SmallWebRtcError::PeerConnectionLost {
                        state: "closed its data channel".into(),
                    }
                    .into());
                }
                PeerEvent::Signal(g, ServerSignal::PeerLeft) if g == generation => {
                    self.bot_left = true;
                    self.shared
                        .events
                        .emit(TransportEvent::BotDisconnected { reason: "peerLeft".into() });
                    return Err(
                        SmallWebRtcError::PeerConnectionLost { state: "left".into() }.into()
                    );
                }
                _ => {}
            }
        }
        let timeline = timeline.timeline();
        tracing::debug!(restart, %timeline, "connect timeline");
        *self.shared.counters.last_connect.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(timeline);
        let peer = self.peer.as_ref().ok_or(AttemptError::Stopped)?;
        let size = peer.max_message_size().await.unwrap_or(FALLBACK_MAX_MESSAGE_SIZE);
        self.shared.max_message_size.store(size, Ordering::Relaxed);
        self.monitor.reset();
        self.open_link(peer.channel.clone()).await;
        Ok(())
    }

    /// The channel is open: announce our tracks, ping at once, flush what waited, go live.
    async fn open_link(&self, channel: Arc<dyn DataChannel>) {
        let mut link = self.shared.link.lock().await;
        let mic = *self.shared.mic_enabled.borrow();
        let mut intro = vec![track_status(MIC_INDEX, mic)];
        if self.shared.video_transceivers {
            intro.push(track_status(1, false));
            intro.push(track_status(2, false));
        }
        intro.push(ping_message(std::time::SystemTime::now()));
        for message in &intro {
            if let Err(e) = channel.send_text(message).await {
                tracing::debug!(error = %e, "could not send on the new data channel");
            }
        }
        if let Link::Recovering(queue) = std::mem::replace(&mut *link, Link::Connecting) {
            for message in queue {
                let _ = channel.send_text(&message).await;
            }
        }
        *link = Link::Open(channel);
    }

    async fn close_peer(&mut self) {
        if let Some(peer) = self.peer.take() {
            peer.close().await;
        }
    }

    async fn shutdown(&mut self) {
        self.out.set(None);
        self.close_peer().await;
        self.shared.close_link().await;
        tracing::debug!("session ended");
    }
}

/// Resolves once the session is told to stop (or its stop switch is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
