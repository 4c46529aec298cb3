//! HTTP signalling: the offer POST, the answer check, and trickle ICE by PATCH in batches.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pipecat_core::{ApiRequest, HttpError, TransportError, http::send_json};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::error::SmallWebRtcError;

/// How often gathered candidates are PATCHed (the JS transport's period).
pub(crate) const TRICKLE_PERIOD: Duration = Duration::from_millis(200);

/// The offer body the server's `SmallWebRTCRequest` reads.
#[derive(Debug, Serialize)]
pub(crate) struct OfferBody<'a> {
    pub(crate) sdp: &'a str,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// `null` on the first offer of a session.
    pub(crate) pc_id: Option<&'a str>,
    pub(crate) restart_pc: bool,
    /// Only the snake_case spelling is honoured by the runner's direct `/api/offer` route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_data: Option<&'a Value>,
}

/// A checked SDP answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) sdp: String,
    pub(crate) pc_id: String,
}

/// Checks the offer endpoint's answer: `{sdp, type: "answer", pc_id}` with an SDP that at
/// least looks like one (the server answers garbage offers with 200 and an empty SDP).
pub(crate) fn parse_answer(value: &Value) -> Result<Answer, SmallWebRtcError> {
    let invalid = |reason: String| SmallWebRtcError::InvalidAnswer { reason };
    let Value::Object(map) = value else {
        return Err(invalid(format!("expected a JSON object, got {}", short(value))));
    };
    match map.get("type") {
        Some(Value::String(t)) if t == "answer" => {}
        Some(other) => return Err(invalid(format!("type is {}, not \"answer\"", short(other)))),
        None => return Err(invalid("no type".into())),
    }
    let sdp = match map.get("sdp") {
        Some(Value::String(s)) => s,
        Some(other) => return Err(invalid(format!("sdp is {}, not a string", short(other)))),
        None => return Err(invalid("no sdp".into())),
    };
    if sdp.trim().is_empty() {
        return Err(invalid("the SDP is empty (the server could not use our offer)".into()));
    }
    if !sdp.trim_start().starts_with("v=0") || !sdp.lines().any(|l| l.starts_with("m=")) {
        return Err(invalid("the SDP has no v=0 line or no media section".into()));
    }
    let pc_id = match map.get("pc_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => return Err(invalid(format!("pc_id is {}, not a string", short(other)))),
        None => return Err(invalid("no pc_id".into())),
    };
    Ok(Answer { sdp: sdp.clone(), pc_id })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// One trickled candidate, as the server's PATCH handler reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CandidateJson {
    /// The SDP attribute value, `candidate:…`.
    pub(crate) candidate: String,
    pub(crate) sdp_mid: String,
    pub(crate) sdp_mline_index: u16,
}

impl CandidateJson {
    /// The end-of-candidates marker (an empty candidate) is never trickled: the server learns
    /// nothing from it, and pipecat-ai before 1.7 answers a PATCH holding one with 400.
    fn is_end_of_candidates(&self) -> bool {
        self.candidate.trim().is_empty()
    }
}

/// Counters of what signalling did, for diagnostics and tests.
#[derive(Debug, Default)]
pub(crate) struct SignallingCounters {
    pub(crate) offers: AtomicU64,
    pub(crate) patch_requests: AtomicU64,
    pub(crate) candidates_sent: AtomicU64,
    pub(crate) patch_failures: AtomicU64,
}

/// Sends offers and candidates to one offer endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Signaller {
    http: reqwest::Client,
    request: ApiRequest,
    timeout: Duration,
    pub(crate) counters: Arc<SignallingCounters>,
}

impl Signaller {
    pub(crate) fn new(
        http: reqwest::Client,
        request: ApiRequest,
        timeout: Duration,
        counters: Arc<SignallingCounters>,
    ) -> Self {
        Signaller { http, request, timeout, counters }
    }

    /// The endpoint for logs: without query string or user info, which may carry secrets.
    pub(crate) fn endpoint(&self) -> String {
        redact(&self.request.endpoint)
    }

    /// POSTs an offer and returns the checked answer.
    pub(crate) async fn offer(
        &self,
        sdp: &str,
        pc_id: Option<&str>,
        restart_pc: bool,
    ) -> Result<Answer, TransportError> {
        let body = OfferBody {
            sdp,
            kind: "offer",
            pc_id,
            restart_pc,
            request_data: self.request.request_data.as_ref(),
        };
        let body = serde_json::to_value(&body)
            .map_err(|e| TransportError::other("could not encode the offer", e))?;
        // The HTTP body is the offer; `request_data` of the request travels inside it.
        let mut request = self.request.clone();
        request.request_data = None;
        self.counters.offers.fetch_add(1, Ordering::Relaxed);
        let answer =
            send_json(&self.http, reqwest::Method::POST, &request, &body, self.timeout).await?;
        Ok(parse_answer(&answer)?)
    }

    /// PATCHes one batch of candidates for `pc_id`.
    pub(crate) async fn patch_candidates(
        &self,
        pc_id: &str,
        candidates: &[CandidateJson],
    ) -> Result<(), HttpError> {
        let body = serde_json::json!({ "pc_id": pc_id, "candidates": candidates });
        let mut request = self.request.clone();
        request.request_data = None;
        self.counters.patch_requests.fetch_add(1, Ordering::Relaxed);
        match send_json(&self.http, reqwest::Method::PATCH, &request, &body, self.timeout).await {
            Ok(_) => {
                self.counters.candidates_sent.fetch_add(candidates.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.counters.patch_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// `scheme://host:port/path` of a URL: what is safe to log.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), port_suffix(&u)) + u.path()
        }
        Err(_) => "<invalid URL>".to_owned(),
    }
}

fn port_suffix(u: &url::Url) -> String {
    u.port().map(|p| format!(":{p}")).unwrap_or_default()
}

/// Trickles candidates: collects them from `candidates`, waits until the answer gave a
/// `pc_id`, then every `period` sends what has accumulated as one batch through `send`.
/// Ends when `candidates` closes (the last batch is still sent) or `pc_id` is dropped. An
/// empty end-of-candidates marker is dropped, never sent.
pub(crate) async fn run_trickle<F, Fut>(
    mut candidates: mpsc::UnboundedReceiver<CandidateJson>,
    mut pc_id: watch::Receiver<Option<String>>,
    period: Duration,
    mut send: F,
) where
    F: FnMut(String, Vec<CandidateJson>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut pending: Vec<CandidateJson> = Vec::new();
    let mut open = true;
    // Before the answer: only collect (the server cannot take candidates without a pc_id).
    let id = loop {
        if let Some(id) = pc_id.borrow_and_update().clone() {
            break id;
        }
        tokio::select! {
            c = candidates.recv(), if open => match c {
                Some(c) if c.is_end_of_candidates() => {}
                Some(c) => pending.push(c),
                None => open = false,
            },
            changed = pc_id.changed() => if changed.is_err() { return },
        }
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            c = candidates.recv(), if open => match c {
                Some(c) if c.is_end_of_candidates() => {}
                Some(c) => pending.push(c),
                None => open = false,
            },
            _ = tick.tick() => {
                if !pending.is_empty() {
                    send(id.clone(), std::mem::take(&mut pending)).await;
                }
                if !open {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    const SDP: &str =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";

    #[test]
    fn logged_endpoints_hide_queries_and_credentials() {
        assert_eq!(
            redact("https://u:p@h.example:8443/a/offer?token=s3cret"),
            "https://h.example:8443/a/offer"
        );
        assert_eq!(redact("http://localhost/api/offer"), "http://localhost/api/offer");
        assert_eq!(redact("nope"), "<invalid URL>");
    }

    #[test]
    fn valid_answer_is_accepted() {
        let a = parse_answer(
            &json!({"sdp": SDP, "type": "answer", "pc_id": "SmallWebRTCConnection#0-x"}),
        )
        .unwrap();
        assert_eq!(a.pc_id, "SmallWebRTCConnection#0-x");
        assert_eq!(a.sdp, SDP);
    }

    #[test]
    fn empty_or_garbage_answers_are_typed_errors() {
        let cases = [
            json!(null),
            json!("v=0"),
            json!([]),
            json!({}),
            json!({"sdp": "", "type": "answer", "pc_id": "p"}),
            json!({"sdp": "   ", "type": "answer", "pc_id": "p"}),
            json!({"sdp": "hello", "type": "answer", "pc_id": "p"}),
            json!({"sdp": "v=0\r\ns=-\r\n", "type": "answer", "pc_id": "p"}),
            json!({"sdp": SDP, "type": "offer", "pc_id": "p"}),
            json!({"sdp": SDP, "pc_id": "p"}),
            json!({"sdp": SDP, "type": "answer"}),
            json!({"sdp": SDP, "type": "answer", "pc_id": ""}),
            json!({"sdp": SDP, "type": "answer", "pc_id": 3}),
            json!({"sdp": 5, "type": "answer", "pc_id": "p"}),
        ];
        for case in cases {
            let got = parse_answer(&case);
            assert!(matches!(got, Err(SmallWebRtcError::InvalidAnswer { .. })), "{case}: {got:?}");
        }
    }

    #[test]
    fn offer_body_shape() {
        let data = json!({"user": 1});
        let body = OfferBody {
            sdp: "v=0",
            kind: "offer",
            pc_id: None,
            restart_pc: false,
            request_data: Some(&data),
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"sdp": "v=0", "type": "offer", "pc_id": null, "restart_pc": false, "request_data": {"user": 1}})
        );
        let body = OfferBody {
            sdp: "v=0",
            kind: "offer",
            pc_id: Some("p"),
            restart_pc: true,
            request_data: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"sdp": "v=0", "type": "offer", "pc_id": "p", "restart_pc": true})
        );
    }

    fn cand(n: u16) -> CandidateJson {
        CandidateJson {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
            sdp_mid: "0".into(),
            sdp_mline_index: 0,
        }
    }

    type Sent = Arc<Mutex<Vec<(tokio::time::Instant, String, Vec<CandidateJson>)>>>;

    fn recorder(sent: Sent) -> impl FnMut(String, Vec<CandidateJson>) -> std::future::Ready<()> {
        move |id, batch| {
            sent.lock().unwrap().push((tokio::time::Instant::now(), id, batch));
            std::future::ready(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn trickle_waits_for_the_answer_then_sends_in_batches() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (id_tx, id_rx) = watch::channel(None);
        let sent: Sent = Arc::default();
        let task = tokio::spawn(run_trickle(rx, id_rx, TRICKLE_PERIOD, recorder(sent.clone())));

        // Gathered before the answer: held back.
        for n in 1..=3 {
            tx.send(cand(n)).unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(sent.lock().unwrap().is_empty(), "nothing may go out before the pc_id is known");

        let answered = tokio::time::Instant::now();
        id_tx.send(Some("pc-1".into())).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Two more within one period, then one after a quiet while.
        tx.send(cand(4)).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(cand(5)).unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        tx.send(cand(6)).unwrap();
        drop(tx);
        task.await.unwrap();

        let sent = sent.lock().unwrap();
        let batches: Vec<Vec<u16>> = sent
            .iter()
            .map(|(_, _, b)| {
                b.iter()
                    .map(|c| c.candidate[10..].split(' ').next().unwrap().parse().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(batches, vec![vec![1, 2, 3], vec![4, 5], vec![6]]);
        assert!(sent.iter().all(|(_, id, _)| id == "pc-1"));
        // The first batch goes at once; later ones on the 200 ms grid, never in between.
        assert_eq!(sent[0].0, answered);
        assert_eq!(sent[1].0 - answered, TRICKLE_PERIOD);
    }

    #[tokio::test(start_paused = true)]
    async fn trickle_never_sends_an_end_of_candidates_marker() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (id_tx, id_rx) = watch::channel(None);
        let sent: Sent = Arc::default();
        let task = tokio::spawn(run_trickle(rx, id_rx, TRICKLE_PERIOD, recorder(sent.clone())));
        let end = |candidate: &str| CandidateJson {
            candidate: candidate.into(),
            sdp_mid: "0".into(),
            sdp_mline_index: 0,
        };
        // Before the answer and after it; alone in a period, and beside a real candidate.
        tx.send(end("")).unwrap();
        tx.send(cand(1)).unwrap();
        id_tx.send(Some("pc-1".into())).unwrap();
        tokio::time::sleep(TRICKLE_PERIOD * 2).await;
        tx.send(end(" ")).unwrap();
        tokio::time::sleep(TRICKLE_PERIOD * 2).await;
        tx.send(cand(2)).unwrap();
        tx.send(end("")).unwrap();
        drop(tx);
        task.await.unwrap();

        let sent = sent.lock().unwrap();
        let batches: Vec<&Vec<CandidateJson>> = sent.iter().map(|(_, _, b)| b).collect();
        assert_eq!(batches, [&vec![cand(1)], &vec![cand(2)]], "no empty candidate, no empty batch");
    }

    #[tokio::test(start_paused = true)]
    async fn trickle_stops_without_an_answer() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (id_tx, id_rx) = watch::channel(None);
        let sent: Sent = Arc::default();
        let task = tokio::spawn(run_trickle(rx, id_rx, TRICKLE_PERIOD, recorder(sent.clone())));
        tx.send(cand(1)).unwrap();
        drop(id_tx);
        task.await.unwrap();
        assert!(sent.lock().unwrap().is_empty());
    }
}
