//! The lossless event subscription against the scripted fake transport: a burst far beyond
//! the event capacity reaches it whole and in order, in the order the broadcast sees, while
//! a lossy subscriber of the same client lags.

mod common;

use std::time::Duration;

use common::*;
use pipecat_core::{ClientEvent, LosslessEventStream, PipecatClient};
use serde_json::json;

const BURST: u64 = 20_000;

/// The next event within 10 s.
async fn next(events: &mut LosslessEventStream) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
}

#[tokio::test]
async fn a_burst_reaches_the_lossless_subscriber_whole_and_in_order() {
    let fake = FakeTransport::default();
    let client = PipecatClient::builder(fake.clone()).event_capacity(16).build();
    let mut lossy = client.events();
    let mut lossless = client.events_lossless();
    client.connect(params()).await.expect("connect");

    // The whole burst arrives before anybody reads.
    for n in 0..BURST {
        fake.bot_says(msg("server-message", None, Some(json!({"n": n}))));
    }
    // The client takes it in while nobody reads; all of it waits in the subscription.
    tokio::time::timeout(Duration::from_secs(10), async {
        while (lossless.backlog() as u64) < BURST {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the client took the burst in within 10 s");
    client.disconnect().await.expect("disconnect");

    let mut seen = 0;
    loop {
        match next(&mut lossless).await {
            ClientEvent::ServerMessage(data) => {
                assert_eq!(data["n"], seen, "server-message {seen} out of order or missing");
                seen += 1;
            }
            ClientEvent::Lagged { missed } => panic!("the lossless stream lagged by {missed}"),
            ClientEvent::Disconnected => break,
            _ => {}
        }
    }
    assert_eq!(seen, BURST);
    assert_eq!(lossless.backlog(), 0);

    // The same burst overran the broadcast: what a lossy subscriber got is a lag, then the
    // newest events, in the same order as the lossless one.
    let events = drain(&mut lossy).await;
    let missed: u64 = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Lagged { missed } => Some(*missed),
            _ => None,
        })
        .sum();
    assert!(missed > 0, "the broadcast of capacity 16 did not lag under {BURST} events");
    assert!(matches!(events.last(), Some(ClientEvent::Disconnected)), "{:?}", events.last());
}

#[tokio::test]
async fn the_lossless_stream_ends_with_the_client() {
    let client = PipecatClient::builder(FakeTransport::default()).build();
    let mut events = client.events_lossless();
    client.connect(params()).await.expect("connect");
    drop(client);
    let mut last = None;
    while let Some(event) =
        tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("ends in 10 s")
    {
        last = Some(event.name());
    }
    assert!(last.is_some(), "the session's events came before the end");
}
