//! Malformed input gives typed errors, never a panic: truncated JSON, wrong field types for
//! every typed payload, numbers out of range, and nesting deep enough to overflow a recursive
//! decoder.

mod common;

use common::{Example, load};
use pipecat_rtvi::{ClientEnvelope, RtviError, ServerEnvelope};
use serde_json::{Map, Value};

fn parse_as(example: &Example, text: &str) -> Result<(), RtviError> {
    if example.at.starts_with("server") {
        ServerEnvelope::parse(text).map(drop)
    } else {
        ClientEnvelope::parse(text).map(drop)
    }
}

#[test]
fn every_prefix_of_every_corpus_message_is_not_json() {
    let mut checked = 0;
    for text in common::all_wire_texts() {
        for (end, _) in text.char_indices() {
            let prefix = &text[..end];
            for result in
                [ServerEnvelope::parse(prefix).map(drop), ClientEnvelope::parse(prefix).map(drop)]
            {
                assert!(matches!(result, Err(RtviError::NotJson(_))), "{prefix:?}: {result:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked} prefixes");
}

/// Keys whose values are free-form JSON (any type is right) or discriminators (a wrong type
/// there turns the data into an unknown kind, which is kept, not rejected).
const FREE_FORM: &[&str] = &[
    "d",
    "payload",
    "arguments",
    "result",
    "args",
    "params",
    "response",
    "custom_options",
    "platform_details",
    "data",
    "kind",
    "build",
    "team",
    "smart_turn",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "prompt_audio_tokens",
    "data-testid",
    "bbox",
];

/// A value of another JSON type that no typed field of `value`'s type accepts.
fn wrong_type(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::from(5),
        Value::Number(_) => Value::from("1"),
        Value::Bool(_) => Value::from("yes"),
        Value::Array(_) => Value::Object(Map::from_iter([("x".to_owned(), Value::from(1))])),
        Value::Object(_) => Value::from("x"),
        Value::Null => Value::from(1),
    }
}

/// Every variant of `data` with exactly one typed node replaced by a value of the wrong type,
/// with the path of the replaced node.
fn mutations(data: &Value) -> Vec<(String, Value)> {
    fn walk(
        node: &Value,
        path: &str,
        rebuild: &dyn Fn(Value) -> Value,
        out: &mut Vec<(String, Value)>,
    ) {
        if !path.is_empty() {
            out.push((path.to_owned(), rebuild(wrong_type(node))));
        }
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    if FREE_FORM.contains(&key.as_str()) {
                        continue;
                    }
                    let replace = |new: Value| {
                        let mut map = map.clone();
                        map.insert(key.clone(), new);
                        rebuild(Value::Object(map))
                    };
                    walk(child, &format!("{path}.{key}"), &replace, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let replace = |new: Value| {
                        let mut items = items.clone();
                        items[i] = new;
                        rebuild(Value::Array(items))
                    };
                    walk(child, &format!("{path}[{i}]"), &replace, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, "", &|v| v, &mut out);
    out
}

/// Corpus examples with a typed payload (not free-form, not unknown, not payload-less).
fn typed_examples() -> Vec<(Example, Value)> {
    load("server.txt")
        .into_iter()
        .chain(load("client.txt"))
        .filter(|e| !["Unknown", "ServerMessage"].contains(&e.variant.as_str()))
        .filter_map(|e| {
            let wire = common::json(&e.wire);
            let data = wire.get("data")?.clone();
            // The unknown job-group kind is kept as JSON: nothing in it is typed.
            (data.get("kind") != Some(&Value::from("group_paused"))).then_some((e, wire))
        })
        .collect()
}

#[test]
fn wrong_field_types_in_every_typed_payload_are_invalid_data() {
    let mut checked = 0;
    for (example, wire) in typed_examples() {
        let message_type = wire["type"].as_str().unwrap().to_owned();
        for (path, data) in mutations(&wire["data"]) {
            // A bot-ready's version is read leniently (a bot-ready is a bot-ready; the client
            // warns about the version): see lenient.rs.
            if message_type == "bot-ready" && path == ".version" {
                continue;
            }
            let mut bad = wire.clone();
            bad["data"] = data;
            let text = bad.to_string();
            match parse_as(&example, &text) {
                Err(RtviError::InvalidData { message_type: t, .. }) => assert_eq!(t, message_type),
                other => {
                    panic!("{}: data{path} of the wrong type gave {other:?}\n {text}", example.at)
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked} mutations");
}

#[test]
fn data_of_the_wrong_json_type_is_invalid_data() {
    for (example, wire) in typed_examples() {
        for data in [r#"[]"#, r#"["x",true]"#, r#""text""#, "7", "true"] {
            let mut bad = wire.clone();
            bad["data"] = serde_json::from_str(data).unwrap();
            let result = parse_as(&example, &bad.to_string());
            assert!(
                matches!(result, Err(RtviError::InvalidData { .. })),
                "{}: data {data}: {result:?}",
                example.at
            );
        }
    }
}

#[test]
fn missing_required_fields_are_invalid_data() {
    let cases = [
        ("server", r#"{"label":"rtvi-ai","type":"error","data":{"fatal":true}}"#),
        ("server", r#"{"label":"rtvi-ai","type":"server-response","data":{"d":1}}"#),
        ("server", r#"{"label":"rtvi-ai","type":"user-input","data":{"text":"hi"}}"#),
        ("server", r#"{"label":"rtvi-ai","type":"llm-function-call-in-progress","data":{}}"#),
        (
            "server",
            r#"{"label":"rtvi-ai","type":"ui-job-group","data":{"kind":"job_update","job_id":"j","at":1}}"#,
        ),
        ("server", r#"{"label":"rtvi-ai","type":"bot-tts-audio","data":{"audio":""}}"#),
        ("client", r#"{"label":"rtvi-ai","type":"client-message","id":"1","data":{"d":1}}"#),
        (
            "client",
            r#"{"label":"rtvi-ai","type":"client-ready","id":"1","data":{"version":"2.2.0"}}"#,
        ),
        (
            "client",
            r#"{"label":"rtvi-ai","type":"send-file","id":"1","data":{"content":"x","file":{"format":"image/png"}}}"#,
        ),
        (
            "client",
            r#"{"label":"rtvi-ai","type":"send-file","id":"1","data":{"file":{"format":"image/png","source":{"type":"blob"}}}}"#,
        ),
        (
            "client",
            r#"{"label":"rtvi-ai","type":"ui-snapshot","id":"1","data":{"tree":{"root":{"ref":"e0"},"captured_at":1}}}"#,
        ),
    ];
    for (side, text) in cases {
        let result = if side == "server" {
            ServerEnvelope::parse(text).map(drop)
        } else {
            ClientEnvelope::parse(text).map(drop)
        };
        assert!(matches!(result, Err(RtviError::InvalidData { .. })), "{text}: {result:?}");
    }
}

#[test]
fn numbers_out_of_range_are_errors() {
    let two_64 = "18446744073709551616";
    let server = [
        r#"{"label":"rtvi-ai","type":"user-audio-level","data":{"value":1e400}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"user-audio-level","data":{"value":-1e400}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"metrics","data":{"ttfb":[{"processor":"p","value":1e400}]}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"bot-llm-search-response","data":{"origins":[{"results":[{"text":"t","confidence":[1e400]}]}]}}"#.to_owned(),
        format!(r#"{{"label":"rtvi-ai","type":"metrics","data":{{"tokens":[{{"prompt_tokens":{two_64},"completion_tokens":1,"total_tokens":1}}]}}}}"#),
        r#"{"label":"rtvi-ai","type":"metrics","data":{"tokens":[{"prompt_tokens":-1,"completion_tokens":1,"total_tokens":1}]}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"metrics","data":{"tokens":[{"prompt_tokens":1.5,"completion_tokens":1,"total_tokens":1}]}}"#.to_owned(),
        format!(r#"{{"label":"rtvi-ai","type":"metrics","data":{{"characters":[{{"processor":"p","value":{two_64}}}]}}}}"#),
        r#"{"label":"rtvi-ai","type":"bot-output","data":{"text":"x","segment_id":9223372036854775808}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"bot-tts-audio","data":{"audio":"","sample_rate":4294967296,"num_channels":1}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"bot-tts-audio","data":{"audio":"","sample_rate":24000,"num_channels":65536}}"#.to_owned(),
        format!(r#"{{"label":"rtvi-ai","type":"ui-job-group","data":{{"kind":"group_completed","job_id":"j","at":{two_64}}}}}"#),
        // Free-form JSON and unknown types cannot hold a number beyond f64 either.
        r#"{"label":"rtvi-ai","type":"server-message","data":{"x":1e400}}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"future","data":[1e400]}"#.to_owned(),
        r#"{"label":"rtvi-ai","type":"bot-llm-started","id":1e400}"#.to_owned(),
    ];
    for text in &server {
        let result = ServerEnvelope::parse(text);
        assert!(result.is_err(), "{text}: {result:?}");
    }
    let client = [
        format!(r#"{{"label":"rtvi-ai","type":"raw-audio","id":"1","data":{{"base64Audio":"","sampleRate":{two_64},"numChannels":1}}}}"#),
        r#"{"label":"rtvi-ai","type":"send-file","id":"1","data":{"file":{"format":"image/png","source":{"type":"bytes","bytes":"","width":4294967296}}}}"#.to_owned(),
        format!(r#"{{"label":"rtvi-ai","type":"ui-snapshot","id":"1","data":{{"tree":{{"root":{{"ref":"e","role":"r"}},"captured_at":{two_64}}}}}}}"#),
        format!(r#"{{"label":"rtvi-ai","type":"ui-snapshot","id":"1","data":{{"tree":{{"root":{{"ref":"e","role":"r"}},"captured_at":1,"selection":{{"ref":"e","text":"t","start_offset":{two_64}}}}}}}}}"#),
        r#"{"label":"rtvi-ai","type":"client-message","id":"1","data":{"t":"x","d":1e400}}"#.to_owned(),
    ];
    for text in &client {
        let result = ClientEnvelope::parse(text);
        assert!(matches!(result, Err(RtviError::InvalidData { .. })), "{text}: {result:?}");
    }
    // Members that are skipped (unknown fields, the data of payload-less types) are only
    // checked to be JSON, not decoded, so their numbers are not range-checked.
    assert!(
        ServerEnvelope::parse(r#"{"label":"rtvi-ai","type":"bot-llm-started","data":{"x":1e400}}"#)
            .is_ok()
    );
    // u64::MAX itself is in range.
    let max = format!(
        r#"{{"label":"rtvi-ai","type":"metrics","data":{{"characters":[{{"processor":"p","value":{}}}]}}}}"#,
        u64::MAX
    );
    assert!(ServerEnvelope::parse(&max).is_ok());
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

fn assert_too_deep(result: Result<(), RtviError>, what: &str) {
    match result {
        Err(RtviError::NotJson(e)) => {
            let message = e.to_string();
            assert!(
                message.contains("deeper than 127") || message.contains("recursion limit"),
                "{what}: {message}"
            );
        }
        other => panic!("{what}: {other:?}"),
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [200, 10_000, 100_000] {
        for deep in [nested_arrays(depth), nested_objects(depth)] {
            let server = [
                format!(r#"{{"label":"rtvi-ai","type":"server-message","data":{deep}}}"#),
                format!(r#"{{"label":"rtvi-ai","type":"server-message","data":{{"x":{deep}}}}}"#),
                format!(r#"{{"label":"rtvi-ai","type":"future-type","data":{deep}}}"#),
                format!(r#"{{"label":"rtvi-ai","type":"bot-llm-started","data":{deep}}}"#),
                format!(r#"{{"label":"rtvi-ai","type":"bot-ready","data":{deep}}}"#),
                format!(
                    r#"{{"label":"rtvi-ai","type":"bot-ready","data":{{"version":"2.2.0","about":{{"library":"x","more":{deep}}}}}}}"#
                ),
                format!(
                    r#"{{"label":"rtvi-ai","type":"bot-ready","data":{{"version":"2.2.0","ignored":{deep}}}}}"#
                ),
                format!(
                    r#"{{"label":"rtvi-ai","type":"server-response","id":"1","data":{{"t":"x","d":{deep}}}}}"#
                ),
                format!(r#"{{"label":"rtvi-ai","type":"ui-job-group","data":{deep}}}"#),
                format!(r#"{{"label":"rtvi-ai","type":"metrics","data":{{"x":{deep}}}}}"#),
                // Also outside `data`: an unknown envelope field.
                format!(r#"{{"label":"rtvi-ai","type":"bot-llm-started","extra":{deep}}}"#),
            ];
            for text in &server {
                assert_too_deep(ServerEnvelope::parse(text).map(drop), &text[..60]);
            }
            let client = [
                format!(
                    r#"{{"label":"rtvi-ai","type":"client-message","id":"1","data":{{"t":"x","d":{deep}}}}}"#
                ),
                format!(
                    r#"{{"label":"rtvi-ai","type":"ui-event","id":"1","data":{{"event":"e","payload":{deep}}}}}"#
                ),
                format!(r#"{{"label":"rtvi-ai","type":"disconnect-bot","id":"1","data":{deep}}}"#),
            ];
            for text in &client {
                assert_too_deep(ClientEnvelope::parse(text).map(drop), &text[..60]);
            }
            // The whole message nested: not an object (arrays), or too deep (objects).
            let result = ServerEnvelope::parse(&deep).map(drop);
            if deep.starts_with('[') {
                assert!(matches!(result, Err(RtviError::InvalidEnvelope(_))), "{result:?}");
            } else {
                assert_too_deep(result, "deep envelope");
            }
            // Truncated deep nesting: not JSON.
            let result = ServerEnvelope::parse(&deep[..deep.len() / 2]);
            assert!(matches!(result, Err(RtviError::NotJson(_))), "{result:?}");
        }
    }
}

#[test]
fn nesting_limit_is_exactly_127_levels_envelope_included() {
    // serde_json parses 127 levels; the envelope object is level 1, so `data` may nest 126.
    let at_limit =
        format!(r#"{{"label":"rtvi-ai","type":"server-message","data":{}}}"#, nested_arrays(126));
    let envelope = ServerEnvelope::parse(&at_limit).unwrap();
    common::assert_same_json(&at_limit, &envelope.to_json().unwrap(), "at the limit");
    let over =
        format!(r#"{{"label":"rtvi-ai","type":"server-message","data":{}}}"#, nested_arrays(127));
    assert_too_deep(ServerEnvelope::parse(&over).map(drop), "one level over");
    // The same holds where nesting is skipped rather than decoded.
    let skipped = |levels| {
        format!(
            r#"{{"label":"rtvi-ai","type":"bot-llm-started","x":{},"data":{{}}}}"#,
            nested_arrays(levels)
        )
    };
    assert!(ServerEnvelope::parse(&skipped(126)).is_ok());
    assert_too_deep(ServerEnvelope::parse(&skipped(127)).map(drop), "skipped, one level over");
    // Brackets inside strings do not count.
    let in_string = format!(
        r#"{{"label":"rtvi-ai","type":"system-log","data":{{"text":"{}\"{}"}}}}"#,
        "[".repeat(300),
        "{".repeat(300)
    );
    assert!(ServerEnvelope::parse(&in_string).is_ok());
}

#[test]
fn deep_accessibility_trees_are_errors() {
    let depth = 10_000;
    let tree = format!(
        "{}{}",
        r#"{"ref":"e","role":"group","children":["#.repeat(depth),
        "]}".repeat(depth)
    );
    let text = format!(
        r#"{{"label":"rtvi-ai","type":"ui-snapshot","id":"1","data":{{"tree":{{"root":{tree},"captured_at":1}}}}}}"#
    );
    assert_too_deep(ClientEnvelope::parse(&text).map(drop), "deep tree");
    // A realistic depth is fine.
    let depth = 30;
    let tree = format!(
        "{}{}{}",
        r#"{"ref":"e","role":"group","children":["#.repeat(depth),
        r#"{"ref":"leaf","role":"text"}"#,
        "]}".repeat(depth)
    );
    let text = format!(
        r#"{{"label":"rtvi-ai","type":"ui-snapshot","id":"1","data":{{"tree":{{"root":{tree},"captured_at":1}}}}}}"#
    );
    assert!(ClientEnvelope::parse(&text).is_ok());
}

#[test]
fn invalid_utf8_escapes_and_control_characters_are_errors() {
    let cases = [
        "{\"label\":\"rtvi-ai\",\"type\":\"system-log\",\"data\":{\"text\":\"\\ud800\"}}",
        "{\"label\":\"rtvi-ai\",\"type\":\"system-log\",\"data\":{\"text\":\"a\u{1}b\"}}",
        "{\"label\":\"rtvi-ai\",\"type\":\"system-log\",\"data\":{\"text\":\"\\x41\"}}",
        "{\"label\":\"rtvi-ai\",\"type\":\"system-log\",\"data\":{\"text\":\"x\",}}",
        "{\"label\":\"rtvi-ai\",\"type\":\"system-log\",\"data\":{\"text\":NaN}}",
    ];
    for text in cases {
        assert!(ServerEnvelope::parse(text).is_err(), "{text}");
    }
}
