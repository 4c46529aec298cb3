//! Builders: fresh ids, the `client-ready` contents, and the size check at the exact boundary.

use std::collections::HashSet;

use pipecat_rtvi::{
    About, CLIENT_PROTOCOL_VERSION, ClientEnvelope, ClientMessage, DisconnectBot, RtviError,
    check_size, fresh_id,
};
use serde_json::{Value, json};

#[test]
fn fresh_ids_are_unique_across_threads() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100_000 / THREADS;
    let handles: Vec<_> =
        (0..THREADS)
            .map(|_| {
                std::thread::spawn(|| {
                    (0..PER_THREAD)
                        .map(|i| {
                            if i % 2 == 0 {
                                fresh_id()
                            } else {
                                ClientEnvelope::disconnect_bot().id
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
    let mut all = HashSet::with_capacity(THREADS * PER_THREAD);
    for handle in handles {
        for id in handle.join().unwrap() {
            assert!(!id.is_empty() && id.is_ascii(), "{id:?}");
            assert!(all.insert(id), "duplicate id");
        }
    }
    assert_eq!(all.len(), 100_000);
}

#[test]
fn every_builder_sets_a_fresh_id() {
    let built = [
        ClientEnvelope::client_ready(),
        ClientEnvelope::client_ready_with(About::library("my-app", "1.0.0")),
        ClientEnvelope::client_message("t", None),
        ClientEnvelope::send_text("hi", None),
        ClientEnvelope::disconnect_bot(),
        ClientEnvelope::function_call_result("f", "c", json!({}), json!({})),
        ClientEnvelope::ui_event("e", None),
        ClientEnvelope::cancel_job_group("j", None),
        ClientEnvelope::new(ClientMessage::DisconnectBot(DisconnectBot {})),
        ClientEnvelope::new(ClientMessage::DisconnectBot(DisconnectBot {})),
    ];
    let ids: HashSet<&str> = built.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), built.len());
    for envelope in &built {
        assert!(!envelope.id.is_empty());
        let wire: Value = serde_json::from_str(&envelope.to_json().unwrap()).unwrap();
        assert_eq!(wire["id"], envelope.id.as_str(), "the id is on the wire");
    }
    assert_eq!(
        ClientEnvelope::with_id("given", ClientMessage::DisconnectBot(DisconnectBot {})).id,
        "given"
    );
}

#[test]
fn client_ready_declares_2_2_0_and_this_library() {
    let ready = ClientEnvelope::client_ready();
    let ClientMessage::ClientReady(data) = &ready.message else { panic!() };
    assert_eq!(data.version, "2.2.0");
    assert_eq!(data.version, CLIENT_PROTOCOL_VERSION.to_string());
    assert_eq!(data.about.library, env!("CARGO_PKG_NAME"));
    assert_eq!(data.about.library, "pipecat-rtvi");
    assert_eq!(data.about.library_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(data.about.platform.as_deref(), Some(std::env::consts::OS));
    let details = data.about.platform_details.as_ref().unwrap();
    assert_eq!(details["arch"], std::env::consts::ARCH);

    let wire: Value = serde_json::from_str(&ready.to_json().unwrap()).unwrap();
    assert_eq!(wire["label"], "rtvi-ai");
    assert_eq!(wire["type"], "client-ready");
    assert_eq!(wire["data"]["version"], "2.2.0");
    assert_eq!(wire["data"]["about"]["library"], "pipecat-rtvi");
    assert_eq!(wire["data"]["about"]["library_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(wire["data"]["about"]["platform"], std::env::consts::OS);
    assert!(wire["data"]["about"].get("platform_version").is_none(), "unknown is omitted");

    // A custom `about` keeps the declared version.
    let custom = ClientEnvelope::client_ready_with(About::library("my-app", "3.4.5"));
    let ClientMessage::ClientReady(data) = &custom.message else { panic!() };
    assert_eq!((data.version.as_str(), data.about.library.as_str()), ("2.2.0", "my-app"));
    assert_eq!(data.about.platform.as_deref(), Some(std::env::consts::OS));
}

#[test]
fn size_check_counts_utf8_bytes_at_the_exact_boundary() {
    // Two-, three- and four-byte characters: the byte size is far above the char count.
    let envelope = ClientEnvelope::send_text("é€😀 ünïcödé ☕ 🙂🙂", None);
    let json = envelope.to_json().unwrap();
    let size = json.len();
    assert!(json.chars().count() < size, "multi-byte characters are present");

    assert_eq!(envelope.to_json_checked(size).unwrap(), json, "exactly max bytes passes");
    check_size(&json, size).unwrap();
    check_size(&json, size + 1).unwrap();
    match envelope.to_json_checked(size - 1) {
        Err(RtviError::MessageTooLarge { size: s, max }) => assert_eq!((s, max), (size, size - 1)),
        other => panic!("{other:?}"),
    }
    match check_size(&json, json.chars().count()) {
        Err(RtviError::MessageTooLarge { size: s, max }) => {
            assert_eq!((s, max), (size, json.chars().count()))
        }
        other => panic!("{other:?}"),
    }
    // Escapes count as they are sent.
    let escaped = ClientEnvelope::send_text("\"\\\n\u{1}", None).to_json().unwrap();
    assert!(escaped.contains(r#"\"\\\n\u0001"#));
    check_size(&escaped, escaped.len()).unwrap();
    assert!(check_size(&escaped, escaped.len() - 1).is_err());
    // Edge maxima.
    assert!(matches!(check_size("", 0), Ok(())));
    assert!(matches!(check_size("x", 0), Err(RtviError::MessageTooLarge { size: 1, max: 0 })));
}
