//! Starting a session: opening devices, the start request, connecting the transport and
//! taking `bot-ready`.

use super::*;

impl Inner {
    /// The transport's media init; a transport without media has nothing to open.
    async fn init_transport_devices(&self) -> std::result::Result<(), TransportError> {
        match self.transport.media() {
            Some(media) => media.init_devices().await,
            None => Ok(()),
        }
    }

    pub(crate) async fn init_devices(self: &Arc<Self>) -> Result<()> {
        let delegate = {
            let shared = self.lock();
            matches!(
                shared.state(),
                TransportState::Authenticated | TransportState::Connected | TransportState::Ready
            )
        };
        if delegate {
            // Mid-session re-init is the recovery path after a device error: the session
            // state is left alone.
            return self.init_transport_devices().await.map_err(Error::from);
        }
        let (handle, ()) = self.begin(Op::Init, |_| Ok(())).await?;
        let guard = EndIfDropped::new(self, handle.id);
        let result =
            self.guarded(&handle, self.init_transport_devices().instrument(handle.span.clone()));
        match result.await? {
            Ok(()) => {
                let done = {
                    let mut shared = self.lock();
                    let current = shared.attempt.as_ref().is_some_and(|a| a.id == handle.id);
                    if current && shared.state() == TransportState::Initializing {
                        self.transition(&mut shared, TransportState::Initialized);
                        // `initialized` is a rest state: the attempt is over.
                        shared.attempt = None;
                    }
                    current
                };
                guard.disarm();
                if done { Ok(()) } else { Err(self.ended(&handle).await) }
            }
            Err(e) => Err(self.fail(&handle, Error::from(e)).await),
        }
    }

    pub(crate) async fn start_bot(
        self: &Arc<Self>,
        request: ApiRequest,
    ) -> Result<(AttemptHandle, Value)> {
        let (handle, ()) = self
            .begin(Op::StartBot, |shared| {
                shared.last_start = Some(LastStart::Request(request.clone()));
                shared.started = None;
                Ok(())
            })
            .await?;
        let guard = EndIfDropped::new(self, handle.id);
        tracing::info!(
            parent: &handle.span,
            endpoint = %loggable_endpoint(&request.endpoint),
            "starting the bot"
        );
        let body =
            request.request_data.clone().unwrap_or_else(|| Value::Object(Default::default()));
        let post = http::send_json(
            &self.http,
            reqwest::Method::POST,
            &request,
            &body,
            self.options.start_bot_timeout,
        );
        match self.guarded(&handle, post.instrument(handle.span.clone())).await? {
            Err(e) => Err(self.fail(&handle, Error::StartBot(e)).await),
            Ok(answer) => {
                let done = {
                    let mut shared = self.lock();
                    let current = shared.attempt.as_ref().is_some_and(|a| a.id == handle.id)
                        && shared.state() == TransportState::Authenticating;
                    if current {
                        self.transition(&mut shared, TransportState::Authenticated);
                        shared.started = Some((answer.clone(), request));
                        self.emit(ClientEvent::BotStarted(answer.clone()));
                    }
                    current
                };
                if done {
                    guard.disarm();
                    Ok((handle, answer))
                } else {
                    Err(self.ended(&handle).await)
                }
            }
        }
    }

    /// The parameters of a connect, under the lock.
    fn resolve_params(
        &self,
        shared: &mut Shared,
        source: &ConnectSource,
    ) -> Result<ConnectionParams> {
        match source {
            ConnectSource::Params(params) => {
                let mut params = params.clone();
                shared.last_start = Some(LastStart::Params(params.clone()));
                // After start_bot, explicit parameters still come from that start (SmallWebRTC
                // derives its offer URL and headers from the request).
                if let Some((_, request)) = shared.started.take()
                    && params.start_request.is_none()
                {
                    params.start_request = Some(request);
                }
                Ok(params)
            }
            ConnectSource::Started => {
                let Some((answer, request)) = shared.started.take() else {
                    return Err(Error::InvalidParams(
                        "nothing to connect with: no start answer (call start_bot, or connect \
                         with parameters)"
                            .into(),
                    ));
                };
                // The transport maps the answer with its own rules (sessionId, wsUrl...).
                self.transport.map_start_response(answer, &request).map_err(Error::from)
            }
        }
    }

    /// Connects; with `continuing`, only if that attempt is still in `authenticated`.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        source: ConnectSource,
        continuing: Option<&AttemptHandle>,
    ) -> Result<BotReady> {
        let (handle, params) = match continuing {
            Some(handle) => {
                // Decide under the lock, act (and wait) after it.
                let resolved = {
                    let mut shared = self.lock();
                    let current = shared.attempt.as_ref().is_some_and(|a| a.id == handle.id);
                    match shared.state() {
                        // The attempt ended (a disconnect) between start and connect.
                        _ if !current => None,
                        TransportState::Authenticated => {
                            let params = self.resolve_params(&mut shared, &source);
                            if params.is_ok() {
                                self.transition(&mut shared, TransportState::Connecting);
                            }
                            Some(params)
                        }
                        // Another connect took this start over.
                        state => Some(Err(Error::AlreadyStarted { state })),
                    }
                };
                match resolved {
                    None => return Err(self.ended(handle).await),
                    Some(Err(e @ Error::AlreadyStarted { .. })) => return Err(e),
                    Some(Err(e)) => return Err(self.fail(handle, e).await),
                    Some(Ok(params)) => (handle.clone(), params),
                }
            }
            None => {
                // A start answer the transport cannot map ends the attempt it belongs to.
                let mut failed = None;
                let begun = self
                    .begin(Op::Connect, |shared| {
                        self.resolve_params(shared, &source).inspect_err(|_| {
                            failed = shared
                                .attempt
                                .as_ref()
                                .filter(|_| shared.state() == TransportState::Authenticated)
                                .map(Self::handle_of);
                        })
                    })
                    .await;
                match (begun, failed) {
                    (Ok(begun), _) => begun,
                    (Err(e), Some(handle)) => return Err(self.fail(&handle, e).await),
                    (Err(e), None) => return Err(e),
                }
            }
        };
        let guard = EndIfDropped::new(self, handle.id);
        let result = self.run_connect(handle.clone(), params).instrument(handle.span).await;
        if result.is_ok() {
            guard.disarm();
        }
        result
    }

    /// The connect steps of an attempt in `connecting`: transport, `client-ready`,
    /// `bot-ready`.
    async fn run_connect(
        self: &Arc<Self>,
        handle: AttemptHandle,
        params: ConnectionParams,
    ) -> Result<BotReady> {
        tracing::info!("connecting");
        // The client's side of the connect timeline (each transport logs its own steps).
        let started = Instant::now();
        let sink = self.sink.with_generation(handle.id);
        let limit = self.options.connect_timeout;
        let connect = tokio::time::timeout(limit, self.transport.connect(params, sink));
        match self.guarded(&handle, connect).await? {
            Err(_) => {
                return Err(self
                    .fail(&handle, Error::Timeout { what: TimeoutKind::Connect, after: limit })
                    .await);
            }
            Ok(Err(e)) => return Err(self.fail(&handle, Error::from(e)).await),
            Ok(Ok(())) => {}
        }
        let transport_up = started.elapsed();

        // The bot-ready limit counts from the transport being up, client-ready included
        // (Daily holds client-ready until the bot's audio plays).
        let limit = self.options.bot_ready_timeout;
        let deadline = Instant::now() + limit;
        let timed_out = Error::Timeout { what: TimeoutKind::BotReady, after: limit };
        let ready = ClientEnvelope::client_ready_with(self.options.about.clone());
        let json = match ready.to_json_checked(self.transport.max_message_size()) {
            Ok(json) => json,
            Err(e) => return Err(self.fail(&handle, Error::from(e)).await),
        };
        let current = match self.lock().attempt_mut(handle.id) {
            Some(attempt) => {
                attempt.client_ready_id = Some(ready.id.clone());
                true
            }
            None => false,
        };
        if !current {
            return Err(self.ended(&handle).await);
        }
        let send = tokio::time::timeout_at(deadline, self.transport.send_client_ready(json));
        match self.guarded(&handle, send).await? {
            Err(_) => return Err(self.fail(&handle, timed_out).await),
            Ok(Err(e)) => return Err(self.fail(&handle, Error::from(e)).await),
            Ok(Ok(())) => {}
        }
        let client_ready_sent = started.elapsed();

        let (ready_tx, ready_rx) = oneshot::channel();
        // `None`: the attempt ended meanwhile; `Some(true)`: a bot-ready came early.
        let connected = {
            let mut shared = self.lock();
            let connecting = shared.state() == TransportState::Connecting;
            let early = match shared.attempt_mut(handle.id) {
                Some(attempt) if connecting => Some(attempt.early_ready.take()),
                _ => None,
            };
            early.map(|early| {
                self.transition(&mut shared, TransportState::Connected);
                self.emit(ClientEvent::Connected);
                tracing::info!("connected; waiting for bot-ready");
                if let Some(attempt) = shared.attempt_mut(handle.id) {
                    attempt.ready_tx = Some(ready_tx);
                }
                early.is_some_and(|bot_ready| {
                    self.apply_bot_ready(&mut shared, handle.id, bot_ready)
                })
            })
        };
        let Some(ready_now) = connected else {
            return Err(self.ended(&handle).await);
        };
        if ready_now {
            self.transport.bot_ready();
        }
        match self.guarded(&handle, tokio::time::timeout_at(deadline, ready_rx)).await? {
            Ok(Ok(bot_ready)) => {
                tracing::debug!(
                    transport_connected_ms = ms(transport_up),
                    client_ready_sent_ms = ms(client_ready_sent),
                    bot_ready_ms = ms(started.elapsed()),
                    "connect timeline"
                );
                Ok(bot_ready)
            }
            Ok(Err(_)) => Err(self.ended(&handle).await),
            Err(_) => Err(self.fail(&handle, timed_out).await),
        }
    }

    /// Handles `bot-ready` for attempt `id`: in `connected` it makes the session ready; while
    /// still `connecting` (it overtook `send_client_ready`) it is kept for later. Returns
    /// whether the session became ready (the caller then tells the transport, unlocked).
    pub(crate) fn on_bot_ready(&self, shared: &mut Shared, id: u64, bot_ready: BotReady) -> bool {
        match shared.state() {
            TransportState::Connected => self.apply_bot_ready(shared, id, bot_ready),
            TransportState::Connecting => {
                if let Some(attempt) = shared.attempt_mut(id) {
                    attempt.early_ready = Some(bot_ready);
                }
                false
            }
            _ => {
                self.emit(ClientEvent::ProtocolWarning(ProtocolWarning::Unexpected {
                    message_type: "bot-ready".into(),
                }));
                false
            }
        }
    }

    fn apply_bot_ready(&self, shared: &mut Shared, id: u64, bot_ready: BotReady) -> bool {
        if shared.attempt_mut(id).is_none() || !self.transition(shared, TransportState::Ready) {
            return false;
        }
        let warning = match bot_ready.protocol_version() {
            Ok(version) => {
                shared.bot_version = Some(version);
                let compatibility = version.compatibility();
                (compatibility != Compatibility::Compatible)
                    .then_some(ProtocolWarning::BotVersion { version, compatibility })
            }
            Err(_) => {
                shared.bot_version = None;
                Some(ProtocolWarning::InvalidBotVersion { version: bot_ready.version.clone() })
            }
        };
        tracing::info!(version = %bot_ready.version, "bot ready");
        shared.bot_ready = Some(bot_ready.clone());
        self.emit(ClientEvent::BotReady(bot_ready.clone()));
        if let Some(warning) = warning {
            tracing::warn!(?warning, "bot protocol version");
            self.emit(ClientEvent::ProtocolWarning(warning));
        }
        if let Some(tx) = shared.attempt_mut(id).and_then(|a| a.ready_tx.take()) {
            let _ = tx.send(bot_ready);
        }
        true
    }
}

/// Milliseconds with a tenth, for timeline logs.
fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
