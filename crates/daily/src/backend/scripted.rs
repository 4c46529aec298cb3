//! A **synthetic** Daily backend for tests, examples and offline demos: it never talks to
//! Daily. It replays scripted daily-core-shaped events, answers RTVI messages by rule (for
//! example `client-ready` → `bot-ready`), and records everything the transport sends.
//!
//! The event shapes follow what daily-core emits (field names observed from daily-core output,
//! daily-python's event mapping and Daily's C++ Pipecat client); the sequences themselves are
//! made up. Nothing here is a recording of a real Daily session.
//!
//! Scripts can be written in code ([`ScriptStep`]) or as JSON lines ([`parse_script`]):
//!
//! ```text
//! # SYNTHETIC: hand-written, not recorded from Daily.
//! {"event": {"action": "participant-joined", "participant": {"id": "bot", "info": {"isLocal": false}}}}
//! {"wait_ms": 200}
//! {"speaker_ms": 20}
//! {"close": "sidecar exited"}
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use pipecat_media::{AudioFrame, MIN_SAMPLE_RATE};
use serde_json::Value;

use super::{BackendChannels, BackendError, DailyBackend, JoinInfo, JoinRequest};
use crate::envelope::Recipient;

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScriptStep {
    /// Deliver a daily-core event. In replies, every JSON string `"$id"` is replaced by the id
    /// of the RTVI message being answered.
    Event(Value),
    /// Wait (Tokio time: deterministic under a paused test clock).
    Wait(Duration),
    /// Deliver this much bot audio (a 440 Hz tone, in the join's speaker format), in 20 ms
    /// frames.
    Speaker(Duration),
    /// Stop, as a dying sidecar would.
    Close(String),
}

impl ScriptStep {
    /// A `participant-joined` (or `participant-updated`) event for a remote participant with a
    /// microphone state (`"off"`, `"loading"`, `"playable"`).
    pub fn participant(action: &str, id: &str, name: &str, microphone: &str) -> Self {
        ScriptStep::Event(serde_json::json!({
            "action": action,
            "participant": {
                "id": id,
                "info": {"isLocal": false, "userName": name},
                "media": {"microphone": {"state": microphone}}
            }
        }))
    }

    /// An app-message from `from` carrying `payload`.
    pub fn app_message(payload: Value, from: &str) -> Self {
        ScriptStep::Event(
            serde_json::json!({"action": "app-message", "msgData": payload, "from": from}),
        )
    }
}

/// Why a JSON-lines script could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// A line is not JSON.
    #[error("script line {line}: not JSON: {reason}")]
    NotJson {
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        reason: String,
    },
    /// A line is JSON but no known step.
    #[error("script line {line}: unknown step (expected event, wait_ms, speaker_ms or close)")]
    UnknownStep {
        /// 1-based line number.
        line: usize,
    },
}

/// Reads a JSON-lines script. Blank lines and lines starting with `#` or `//` are comments.
///
/// ```
/// use pipecat_daily::backend::scripted::{parse_script, ScriptStep};
/// let steps = parse_script("# SYNTHETIC\n{\"wait_ms\": 5}\n{\"close\": \"gone\"}\n")?;
/// assert_eq!(steps.len(), 2);
/// assert!(matches!(steps[1], ScriptStep::Close(_)));
/// # Ok::<(), pipecat_daily::backend::scripted::ScriptError>(())
/// ```
///
/// # Errors
/// [`ScriptError`] naming the first bad line.
pub fn parse_script(text: &str) -> Result<Vec<ScriptStep>, ScriptError> {
    let mut steps = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("//") {
            continue;
        }
        let value: Value = serde_json::from_str(trimmed)
            .map_err(|e| ScriptError::NotJson { line, reason: e.to_string() })?;
        let step = if let Some(event) = value.get("event").filter(|e| e.is_object()) {
            ScriptStep::Event(event.clone())
        } else if let Some(ms) = value.get("wait_ms").and_then(Value::as_u64) {
            ScriptStep::Wait(Duration::from_millis(ms))
        } else if let Some(ms) = value.get("speaker_ms").and_then(Value::as_u64) {
            ScriptStep::Speaker(Duration::from_millis(ms))
        } else if let Some(reason) = value.get("close").and_then(Value::as_str) {
            ScriptStep::Close(reason.to_owned())
        } else {
            return Err(ScriptError::UnknownStep { line });
        };
        steps.push(step);
    }
    Ok(steps)
}

#[derive(Default)]
struct State {
    join_results: VecDeque<Result<JoinInfo, BackendError>>,
    join_delay: Duration,
    after_join: Vec<ScriptStep>,
    replies: Vec<(String, Vec<ScriptStep>)>,
    send_failures: VecDeque<BackendError>,
    channels: Option<BackendChannels>,
    speaker_format: Option<pipecat_media::AudioFormat>,
    join_requests: Vec<JoinRequest>,
    sent: Vec<(Value, Recipient)>,
    mic_frames: usize,
    mic_samples: usize,
    leaves: usize,
    generation: u64,
}

/// The synthetic backend. Build it, keep its [`ScriptedHandle`], give it to the transport.
///
/// ```
/// use pipecat_daily::backend::{ScriptedBackend, ScriptStep};
/// use pipecat_daily::DailyTransport;
///
/// let (backend, handle) = ScriptedBackend::new();
/// let backend = backend
///     .after_join(vec![ScriptStep::participant("participant-joined", "bot", "Pipecat", "playable")])
///     .reply_to("client-ready", vec![ScriptStep::app_message(
///         serde_json::json!({"label": "rtvi-ai", "type": "bot-ready", "id": "$id", "data": {"version": "2.2.0"}}),
///         "bot",
///     )]);
/// let transport = DailyTransport::builder(backend).build();
/// assert!(handle.sent().is_empty());
/// # drop(transport);
/// ```
#[derive(Clone)]
pub struct ScriptedBackend {
    state: Arc<Mutex<State>>,
}

/// Inspects and drives a [`ScriptedBackend`] from a test while the transport owns it.
#[derive(Clone)]
pub struct ScriptedHandle {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere (a failing test) must not hide the state from the next assertion.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ScriptedBackend {
    /// A backend whose joins succeed with an empty room.
    pub fn new() -> (Self, ScriptedHandle) {
        let state = Arc::new(Mutex::new(State::default()));
        (ScriptedBackend { state: state.clone() }, ScriptedHandle { state })
    }

    /// The answer of the next join (queued: one per join; then joins succeed by default).
    #[must_use]
    pub fn join_result(self, result: Result<JoinInfo, BackendError>) -> Self {
        lock(&self.state).join_results.push_back(result);
        self
    }

    /// Joins take this long (Tokio time), to exercise join timeouts.
    #[must_use]
    pub fn join_delay(self, delay: Duration) -> Self {
        lock(&self.state).join_delay = delay;
        self
    }

    /// Steps played after each join: events up to the first wait are delivered before the
    /// join returns (as daily-core reports the room during the join), the rest in the
    /// background.
    #[must_use]
    pub fn after_join(self, steps: Vec<ScriptStep>) -> Self {
        lock(&self.state).after_join = steps;
        self
    }

    /// Steps played whenever the transport sends an RTVI message of type `message_type`;
    /// `"$id"` in their events becomes the sent message's id.
    #[must_use]
    pub fn reply_to(self, message_type: &str, steps: Vec<ScriptStep>) -> Self {
        lock(&self.state).replies.push((message_type.to_owned(), steps));
        self
    }

    /// The next send fails with this error (queued: one per send).
    #[must_use]
    pub fn fail_next_send(self, error: BackendError) -> Self {
        lock(&self.state).send_failures.push_back(error);
        self
    }
}

impl ScriptedHandle {
    /// Delivers an event now (no-op when not joined). Returns whether it was delivered.
    pub fn emit(&self, event: Value) -> bool {
        lock(&self.state).channels.as_ref().is_some_and(|c| c.event(event))
    }

    /// Delivers bot audio now. Returns whether it was delivered.
    pub fn speaker(&self, frame: AudioFrame) -> bool {
        lock(&self.state).channels.as_ref().is_some_and(|c| c.speaker(frame))
    }

    /// Stops, as a dying sidecar would.
    pub fn close(&self, reason: &str) {
        let mut state = lock(&self.state);
        if let Some(channels) = state.channels.take() {
            channels.closed(reason);
        }
    }

    /// Plays steps now, in the background (needs a Tokio runtime).
    pub fn play(&self, steps: Vec<ScriptStep>) {
        let state = self.state.clone();
        let generation = lock(&state).generation;
        tokio::spawn(play(state, generation, steps, None));
    }

    /// The app-messages sent so far, with their recipients.
    pub fn sent(&self) -> Vec<(Value, Recipient)> {
        lock(&self.state).sent.clone()
    }

    /// The `type`s of the RTVI messages sent so far.
    pub fn sent_types(&self) -> Vec<String> {
        lock(&self.state)
            .sent
            .iter()
            .filter_map(|(m, _)| m.get("type").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// The join requests received so far.
    pub fn join_requests(&self) -> Vec<JoinRequest> {
        lock(&self.state).join_requests.clone()
    }

    /// Microphone frames and samples written so far.
    pub fn mic_written(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.mic_frames, state.mic_samples)
    }

    /// How many times the transport left.
    pub fn leaves(&self) -> usize {
        lock(&self.state).leaves
    }

    /// Whether a call is in progress.
    pub fn is_joined(&self) -> bool {
        lock(&self.state).channels.is_some()
    }
}

/// Plays steps for the join of `generation` (stops if the call changed). `reply_id` replaces
/// `"$id"`.
async fn play(
    state: Arc<Mutex<State>>,
    generation: u64,
    steps: Vec<ScriptStep>,
    reply_id: Option<String>,
) {
    for step in steps {
        let (channels, format) = {
            let s = lock(&state);
            if s.generation != generation {
                return;
            }
            match &s.channels {
                Some(c) => (c.clone(), s.speaker_format),
                None => return,
            }
        };
        match step {
            ScriptStep::Event(mut event) => {
                if let Some(id) = &reply_id {
                    substitute_id(&mut event, id);
                }
                channels.event(event);
            }
            ScriptStep::Wait(d) => tokio::time::sleep(d).await,
            ScriptStep::Speaker(total) => {
                let Some(format) = format else { continue };
                let frame_len = format.frames_in(Duration::from_millis(20)).max(1);
                let frames = total.as_millis().div_ceil(20);
                let mut phase = 0f32;
                let step = 2.0 * std::f32::consts::PI * 440.0
                    / format.sample_rate.max(MIN_SAMPLE_RATE) as f32;
                for i in 0..frames {
                    let mut samples = Vec::with_capacity(frame_len * usize::from(format.channels));
                    for _ in 0..frame_len {
                        let v = (phase.sin() * 8000.0) as i16;
                        phase = (phase + step) % (2.0 * std::f32::consts::PI);
                        samples.extend(std::iter::repeat_n(v, usize::from(format.channels)));
                    }
                    let ts = Duration::from_millis(20 * u64::try_from(i).unwrap_or(u64::MAX));
                    if let Ok(frame) = AudioFrame::new(samples, format, ts) {
                        channels.speaker(frame);
                    }
                }
            }
            ScriptStep::Close(reason) => {
                let mut s = lock(&state);
                if s.generation == generation {
                    s.channels = None;
                }
                channels.closed(reason);
                return;
            }
        }
    }
}

fn substitute_id(value: &mut Value, id: &str) {
    match value {
        Value::String(s) if s == "$id" => *s = id.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_id(v, id)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute_id(v, id)),
        _ => {}
    }
}

#[async_trait]
impl DailyBackend for ScriptedBackend {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn is_synthetic(&self) -> bool {
        true
    }

    async fn join(
        &self,
        request: JoinRequest,
        channels: BackendChannels,
    ) -> Result<JoinInfo, BackendError> {
        let delay = lock(&self.state).join_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (result, immediate, rest, generation) = {
            let mut s = lock(&self.state);
            s.join_requests.push(request.clone());
            let result = s.join_results.pop_front().unwrap_or_else(|| Ok(JoinInfo::default()));
            result.as_ref().map_err(Clone::clone)?;
            s.generation += 1;
            s.channels = Some(channels.clone());
            s.speaker_format = Some(request.speaker_format);
            let split = s
                .after_join
                .iter()
                .position(|step| !matches!(step, ScriptStep::Event(_)))
                .unwrap_or(s.after_join.len());
            let immediate: Vec<Value> = s.after_join[..split]
                .iter()
                .filter_map(|step| match step {
                    ScriptStep::Event(e) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            (result, immediate, s.after_join[split..].to_vec(), s.generation)
        };
        for event in immediate {
            channels.event(event);
        }
        if !rest.is_empty() {
            tokio::spawn(play(self.state.clone(), generation, rest, None));
        }
        result
    }

    async fn leave(&self) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        s.leaves += 1;
        s.generation += 1;
        s.channels = None;
        Ok(())
    }

    async fn send_app_message(
        &self,
        message: Value,
        recipient: Recipient,
    ) -> Result<(), BackendError> {
        let (steps, generation, id) = {
            let mut s = lock(&self.state);
            if s.channels.is_none() {
                return Err(BackendError::NotJoined);
            }
            if let Some(error) = s.send_failures.pop_front() {
                return Err(error);
            }
            s.sent.push((message.clone(), recipient));
            let message_type = message.get("type").and_then(Value::as_str).unwrap_or_default();
            let steps: Vec<ScriptStep> = s
                .replies
                .iter()
                .filter(|(t, _)| t == message_type)
                .flat_map(|(_, steps)| steps.clone())
                .collect();
            let id = message.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            (steps, s.generation, id)
        };
        if !steps.is_empty() {
            tokio::spawn(play(self.state.clone(), generation, steps, Some(id)));
        }
        Ok(())
    }

    fn write_mic(&self, frame: &AudioFrame) -> Result<(), BackendError> {
        let mut s = lock(&self.state);
        if s.channels.is_none() {
            return Err(BackendError::NotJoined);
        }
        s.mic_frames += 1;
        s.mic_samples += frame.samples().len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendEvent;
    use pipecat_media::AudioFormat;
    use serde_json::{Map, json};

    fn request() -> JoinRequest {
        JoinRequest {
            room_url: "https://acme.daily.co/r".into(),
            token: None,
            client_settings: Map::new(),
            subscription_profiles: Map::new(),
            user_name: None,
            mic_device: "mic".into(),
            speaker_device: "speaker".into(),
            mic_format: AudioFormat::MONO_16K,
            speaker_format: AudioFormat::MONO_16K,
        }
    }

    #[test]
    fn parse_script_steps_and_errors() {
        let steps = parse_script(
            "# SYNTHETIC\n\n// comment\n{\"event\": {\"action\": \"x\"}}\n{\"wait_ms\": 10}\n{\"speaker_ms\": 40}\n{\"close\": \"bye\"}\n",
        )
        .unwrap();
        assert_eq!(
            steps,
            [
                ScriptStep::Event(json!({"action": "x"})),
                ScriptStep::Wait(Duration::from_millis(10)),
                ScriptStep::Speaker(Duration::from_millis(40)),
                ScriptStep::Close("bye".into())
            ]
        );
        assert!(matches!(parse_script("{"), Err(ScriptError::NotJson { line: 1, .. })));
        assert_eq!(parse_script("\n{\"x\": 1}"), Err(ScriptError::UnknownStep { line: 2 }));
    }

    #[test]
    fn id_substitution_is_deep() {
        let mut v = json!({"a": "$id", "b": ["$id", {"c": "$id"}], "d": "$idx"});
        substitute_id(&mut v, "42");
        assert_eq!(v, json!({"a": "42", "b": ["42", {"c": "42"}], "d": "$idx"}));
    }

    #[tokio::test(start_paused = true)]
    async fn replays_records_and_replies() {
        let (backend, handle) = ScriptedBackend::new();
        let backend = backend
            .after_join(vec![
                ScriptStep::Event(json!({"action": "first"})),
                ScriptStep::Wait(Duration::from_millis(100)),
                ScriptStep::Speaker(Duration::from_millis(40)),
                ScriptStep::Event(json!({"action": "later"})),
            ])
            .reply_to("ping", vec![ScriptStep::Event(json!({"action": "pong", "id": "$id"}))]);
        let (channels, mut rx) = BackendChannels::new(8);
        assert!(
            backend
                .write_mic(&AudioFrame::silence(AudioFormat::MONO_16K, 1, Duration::ZERO).unwrap())
                .is_err()
        );
        backend.join(request(), channels).await.unwrap();
        // The first event is there before join returned.
        assert_eq!(rx.events.try_recv().unwrap(), BackendEvent::Daily(json!({"action": "first"})));
        assert!(rx.events.try_recv().is_err());
        assert_eq!(
            rx.events.recv().await.unwrap(),
            BackendEvent::Daily(json!({"action": "later"}))
        );
        assert_eq!(rx.speaker.recv().await.unwrap().samples_per_channel(), 320);
        assert_eq!(rx.speaker.recv().await.unwrap().samples_per_channel(), 320);

        backend
            .send_app_message(json!({"type": "ping", "id": "abc"}), Recipient::All)
            .await
            .unwrap();
        assert_eq!(
            rx.events.recv().await.unwrap(),
            BackendEvent::Daily(json!({"action": "pong", "id": "abc"}))
        );
        assert_eq!(handle.sent_types(), ["ping"]);
        backend
            .write_mic(&AudioFrame::silence(AudioFormat::MONO_16K, 320, Duration::ZERO).unwrap())
            .unwrap();
        assert_eq!(handle.mic_written(), (1, 320));

        handle.close("gone");
        assert_eq!(rx.events.recv().await.unwrap(), BackendEvent::Closed { reason: "gone".into() });
        assert!(!handle.is_joined());
        backend.leave().await.unwrap();
        assert_eq!(handle.leaves(), 1);
    }

    #[tokio::test]
    async fn queued_join_failures_and_send_failures() {
        let (backend, handle) = ScriptedBackend::new();
        let backend = backend
            .join_result(Err(BackendError::NotJoined))
            .fail_next_send(BackendError::MessageTooLarge { message: "too large".into() });
        let (channels, _rx) = BackendChannels::new(1);
        assert!(backend.join(request(), channels.clone()).await.is_err());
        assert!(!handle.is_joined());
        backend.join(request(), channels).await.unwrap();
        assert!(matches!(
            backend.send_app_message(json!({}), Recipient::All).await,
            Err(BackendError::MessageTooLarge { .. })
        ));
        assert!(backend.send_app_message(json!({}), Recipient::All).await.is_ok());
        assert_eq!(handle.join_requests().len(), 2);
    }
}
