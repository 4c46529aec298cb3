//! The SDK's lossless event subscription against the testkit bot over a real loopback
//! WebSocket: a burst of server messages far beyond the event capacity reaches it whole and
//! in order while the reader is busy elsewhere (issue 13, defect 4).

use std::time::Duration;

use pipecat_core::{ClientEvent, PipecatClient};
use pipecat_testkit::{BotTransport, TestBot};
use pipecat_websocket::{AudioBuilder as _, WebSocketParams, WebSocketTransport};
use serde_json::json;

const BURST: u64 = 20_000;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_server_messages_reaches_the_lossless_subscriber_in_order() {
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    let sent_tx = std::sync::Mutex::new(Some(sent_tx));
    let bot = TestBot::builder()
        .transports([BotTransport::WebSocket])
        .on_bot_ready(move |session| {
            let sent = sent_tx.lock().unwrap().take();
            async move {
                for n in 0..BURST {
                    session.send_server_message(json!({"n": n})).expect("the session is open");
                }
                session.send_server_message(json!({"last": true})).expect("the session is open");
                if let Some(sent) = sent {
                    let _ = sent.send(());
                }
            }
        })
        .start()
        .await
        .expect("bot");
    let transport = WebSocketTransport::builder().without_audio().build().expect("transport");
    let client = PipecatClient::builder(transport).event_capacity(64).build();
    let mut lossy = client.events();
    let mut lossless = client.events_lossless();
    client.connect(WebSocketParams::new(bot.ws_url())).await.expect("ready");

    // Nobody reads while the bot sends the burst and the client takes it in.
    tokio::time::timeout(WAIT, sent_rx).await.expect("the bot sent the burst").expect("sent");
    let mut seen = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            match lossless.recv().await.expect("the stream is open") {
                ClientEvent::ServerMessage(data) if data["last"] == true => break,
                ClientEvent::ServerMessage(data) => {
                    assert_eq!(data["n"], seen, "server-message {seen} out of order or missing");
                    seen += 1;
                }
                ClientEvent::Lagged { missed } => panic!("the lossless stream lagged by {missed}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {seen} of {BURST} server-messages within {WAIT:?}"));
    assert_eq!(seen, BURST);

    // The broadcast of the same client, read as late, lost most of the burst.
    let lagged = tokio::time::timeout(WAIT, async {
        loop {
            match lossy.recv().await.expect("the stream is open") {
                ClientEvent::Lagged { missed } => return missed,
                ClientEvent::ServerMessage(data) if data["last"] == true => return 0,
                _ => {}
            }
        }
    })
    .await
    .expect("the lossy stream delivered the burst's end");
    assert!(lagged > 0, "the lossy subscription of capacity 64 kept up with {BURST} events");

    client.disconnect().await.expect("disconnect");
    bot.shutdown().await;
}
