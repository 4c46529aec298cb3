//! A machine with only loopback and no multicast route (a bare network namespace, a locked
//! down container): a loopback-only transport still builds its peer connection and reaches
//! the bot. The test re-runs itself in such a namespace (`unshare -rn`, loopback brought up);
//! it skips, saying why, where unprivileged namespaces are not allowed.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "PIPECAT_SMALL_WEBRTC_NETNS_CHILD";
const TEST_NAME: &str = "a_loopback_only_session_works_without_multicast";

#[test]
fn a_loopback_only_session_works_without_multicast() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    let probe = Command::new("unshare").args(["-rn", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("SKIPPED {TEST_NAME}: no unprivileged network namespaces here (unshare -rn)");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let mut run = Command::new("unshare")
        .args(["-rn", "sh", "-c", r#"ip link set lo up && exec "$0" "$@""#])
        .arg(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .spawn()
        .expect("unshare");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            let _ = run.wait();
            panic!("the session in the namespace did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the session in the namespace failed ({status})");
}

fn child() {
    use pipecat_core::{ApiRequest, PipecatClient};
    use pipecat_small_webrtc::{AudioBuilder, SmallWebRtcTransport};
    use pipecat_testkit::{BotTransport, TestBot};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let bot = TestBot::builder().transports([BotTransport::WebRtc]).start().await.unwrap();
        let transport =
            SmallWebRtcTransport::builder().loopback_only().without_audio().build().unwrap();
        let client = PipecatClient::builder(transport).build();
        let start = ApiRequest::new(bot.start_url())
            .request_data(serde_json::json!({ "transport": "webrtc" }));
        let ready =
            tokio::time::timeout(Duration::from_secs(30), client.start_bot_and_connect(start))
                .await
                .expect("ready in time");
        if let Err(e) = &ready {
            panic!("no session in a loopback-only namespace: {e}");
        }
        client.disconnect().await.unwrap();
        bot.shutdown().await;
    });
}
