//! Helpers shared by the integration tests: the corpus loader and JSON comparison.

#![allow(dead_code)]

use std::fmt::Debug;
use std::path::PathBuf;

use serde_json::{Number, Value};

/// One corpus line: the expected variant name and the wire text.
pub(crate) struct Example {
    /// The file and line, for messages.
    pub(crate) at: String,
    /// The expected variant (the name in the enum's `Debug` output).
    pub(crate) variant: String,
    /// The message as sent on the wire.
    pub(crate) wire: String,
}

/// The path of a file under `tests/corpus`.
pub(crate) fn corpus_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus").join(name)
}

/// Loads `tests/corpus/<name>`: lines of `<Variant> <json>`, `#` comments and blanks skipped.
pub(crate) fn load(name: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(corpus_path(name)).expect("corpus file");
    let examples: Vec<Example> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(i, line)| {
            let (variant, wire) = line.split_once(' ').expect("`<Variant> <json>`");
            Example { at: format!("{name}:{}", i + 1), variant: variant.into(), wire: wire.into() }
        })
        .collect();
    assert!(!examples.is_empty(), "empty corpus {name}");
    examples
}

/// The lines of the section 1.5 trace: (`>` client or `<` server, wire text).
pub(crate) fn trace() -> Vec<(char, String)> {
    let text = std::fs::read_to_string(corpus_path("trace-1.5.txt")).expect("trace file");
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (dir, wire) = line.split_once(' ').expect("`> json` or `< json`");
            (dir.chars().next().expect("direction"), wire.to_owned())
        })
        .collect()
}

/// Every corpus message of both directions, the trace included.
pub(crate) fn all_wire_texts() -> Vec<String> {
    let mut all: Vec<String> = load("server.txt").into_iter().map(|e| e.wire).collect();
    all.extend(load("client.txt").into_iter().map(|e| e.wire));
    all.extend(trace().into_iter().map(|(_, wire)| wire));
    all
}

/// The variant name of an enum value: its `Debug` text up to the first `(`, ` ` or `{`.
pub(crate) fn variant_name<T: Debug>(value: &T) -> String {
    let debug = format!("{value:?}");
    debug.split(['(', ' ', '{']).next().unwrap_or_default().to_owned()
}

/// Numbers normalised so that `1` and `1.0` compare equal: integral floats become integers.
pub(crate) fn normalise(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::Number(normalise_number(n)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalise).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalise(v))).collect())
        }
        other => other,
    }
}

fn normalise_number(n: Number) -> Number {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Number::from(f as i64),
        _ => n,
    }
}

/// Parses JSON text into a normalised [`Value`].
pub(crate) fn json(text: &str) -> Value {
    normalise(serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// Asserts that two JSON texts are equal as normalised values.
pub(crate) fn assert_same_json(expected: &str, actual: &str, context: &str) {
    assert_eq!(json(expected), json(actual), "{context}\n expected {expected}\n   actual {actual}");
}

/// Asserts that no `null` appears anywhere in a JSON text (as a value, at any depth).
pub(crate) fn assert_no_null(text: &str) {
    fn walk(value: &Value, path: &str, text: &str) {
        match value {
            Value::Null => panic!("null at {path} in {text}"),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{path}[{i}]"), text))
            }
            Value::Object(map) => {
                map.iter().for_each(|(k, v)| walk(v, &format!("{path}.{k}"), text))
            }
            _ => {}
        }
    }
    let value: Value = serde_json::from_str(text).expect("encoded output is JSON");
    walk(&value, "$", text);
}
