//! Decoding and encoding throughput of a realistic mix of server messages.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipecat_rtvi::{ClientEnvelope, ServerEnvelope};

/// One conversational turn as pipecat-ai 1.14.0 sends it (section 1.5 of the protocol notes),
/// weighted toward the chatty streaming messages.
const TURN: &[&str] = &[
    r#"{"label":"rtvi-ai","type":"user-started-speaking"}"#,
    r#"{"label":"rtvi-ai","type":"user-input","data":{"text":"what is the weather in Paris","input_type":"transcription","timestamp":"2026-11-22T03:10:00.000Z","final":false,"user_id":"u1"}}"#,
    r#"{"label":"rtvi-ai","type":"user-transcription","data":{"text":"what is the weather in Paris today","user_id":"u1","timestamp":"2026-11-22T03:10:00.500Z","final":true}}"#,
    r#"{"label":"rtvi-ai","type":"user-stopped-speaking"}"#,
    r#"{"label":"rtvi-ai","type":"bot-llm-started"}"#,
    r#"{"label":"rtvi-ai","type":"llm-function-call-in-progress","data":{"tool_call_id":"call-1","function_name":"get_weather","arguments":{"city":"Paris"}}}"#,
    r#"{"label":"rtvi-ai","type":"bot-llm-text","data":{"text":"It is "}}"#,
    r#"{"label":"rtvi-ai","type":"bot-llm-text","data":{"text":"21 degrees "}}"#,
    r#"{"label":"rtvi-ai","type":"bot-llm-text","data":{"text":"and sunny."}}"#,
    r#"{"label":"rtvi-ai","type":"bot-output","data":{"text":"It is 21 degrees and sunny.","output_type":"sentence","text_type":"sentence","aggregated_by":"sentence","segment_id":66,"spoken":true,"will_be_spoken":true,"spoken_status":"new"}}"#,
    r#"{"label":"rtvi-ai","type":"bot-started-speaking"}"#,
    r#"{"label":"rtvi-ai","type":"bot-tts-text","data":{"text":"It"}}"#,
    r#"{"label":"rtvi-ai","type":"bot-output","data":{"text":"It is 21 degrees and sunny.","output_type":"sentence","segment_id":66,"will_be_spoken":true,"spoken_status":"in-progress","spoken_progress":{"accumulated_text":"It is","remaining_text":" 21 degrees and sunny."}}}"#,
    r#"{"label":"rtvi-ai","type":"metrics","data":{"ttfb":[{"processor":"OpenAILLMService#0","model":"gpt-4o","value":0.412}],"processing":[{"processor":"CartesiaTTSService#0","value":0.083}]}}"#,
    r#"{"label":"rtvi-ai","type":"bot-stopped-speaking"}"#,
    r#"{"label":"rtvi-ai","type":"server-response","id":"m-1","data":{"t":"ping","d":{"pong":true}}}"#,
];

fn codec(c: &mut Criterion) {
    let bytes: usize = TURN.iter().map(|m| m.len()).sum();
    let decoded: Vec<ServerEnvelope> =
        TURN.iter().map(|m| ServerEnvelope::parse(m).expect("valid")).collect();

    let mut group = c.benchmark_group("server-messages");
    group.throughput(Throughput::Elements(TURN.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for m in TURN {
                std::hint::black_box(ServerEnvelope::parse(std::hint::black_box(m)).unwrap());
            }
        })
    });
    group.bench_function("encode", |b| {
        b.iter(|| {
            for m in &decoded {
                std::hint::black_box(m.to_json().unwrap());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("server-bytes");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for m in TURN {
                std::hint::black_box(ServerEnvelope::parse(m).unwrap());
            }
        })
    });
    group.finish();

    c.bench_function("client-message/encode-checked", |b| {
        let msg = ClientEnvelope::client_message("ping", Some(serde_json::json!({"x": 1})));
        b.iter(|| std::hint::black_box(msg.to_json_checked(64 * 1024).unwrap()))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
