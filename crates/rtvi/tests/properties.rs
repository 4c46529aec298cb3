//! Property tests: generated messages of every variant round-trip encode -> decode to equal
//! values, and arbitrary input never makes the decoders panic.

use std::collections::BTreeMap;

use pipecat_rtvi::{
    A11yNode, A11ySelection, A11ySnapshot, About, AudioLevel, BotLlmMarker, BotOutput, BotReady,
    BotTtsAudio, Capabilities, CharactersMetric, ClientEnvelope, ClientMessage, ClientMessageData,
    ClientReady, DisconnectBot, Dtmf, DtmfKey, ErrorData, ErrorResponse, FileData, FileSource,
    FunctionCallInProgress, FunctionCallResult, FunctionCallStarted, FunctionCallStopped,
    InputType, JobGroupEvent, LegacyFunctionCall, MetricValue, Metrics, RawAudio, RawAudioBatch,
    SearchOrigin, SearchResponse, SearchResult, SendFile, SendFileOptions, SendText,
    SendTextOptions, ServerEnvelope, ServerMessage, ServerResponse, SpokenProgress, SpokenStatus,
    SttUsage, SttUsageValue, TextData, TokenUsage, Transcription, TtfaMetric, TtfatMetric,
    UiCancelJobGroup, UiCommand, UiEvent, UiJobGroup, UiSnapshot, UnknownMessage, UserInput,
};
use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// Leaves.

/// Characters that stress JSON string encoding: escapes, controls, separators, multi-byte.
const TRICKY: &[char] = &[
    '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{1}', '\u{1f}', '\u{7f}', '\u{2028}', '\u{2029}',
    '\u{feff}', 'é', 'ß', '€', '中', '🙂', '𝄞', '{', '}', '[', ']', ':', ',',
];

/// Arbitrary strings: any unicode scalar values mixed with the tricky characters.
fn text() -> impl Strategy<Value = String> {
    let c =
        prop_oneof![3 => any::<char>(), 2 => select(TRICKY), 3 => proptest::char::range('a', 'z')];
    vec(c, 0..12).prop_map(String::from_iter)
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1000i32..1000).prop_map(f64::from),
        Just(0.0),
        Just(-0.0),
    ]
}

/// Arbitrary JSON of bounded depth.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(text(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON for an optional member: `null` would read back as absent, so it is not generated.
fn some_json() -> impl Strategy<Value = Value> {
    json().prop_filter("not null", |v| !v.is_null())
}

fn opt_json() -> impl Strategy<Value = Option<Value>> {
    of(some_json())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    of(text())
}

/// Extra fields of an open object, avoiding the object's own field names.
fn extras(known: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    btree_map(
        text().prop_filter("not a known field", move |k| !known.contains(&k.as_str())),
        json(),
        0..3,
    )
    .prop_map(|m: BTreeMap<String, Value>| m.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// Shared payloads.

fn about() -> impl Strategy<Value = About> {
    const KNOWN: &[&str] =
        &["library", "library_version", "platform", "platform_version", "platform_details"];
    (text(), opt_text(), opt_text(), opt_text(), opt_json(), extras(KNOWN)).prop_map(
        |(library, library_version, platform, platform_version, platform_details, extra)| About {
            library,
            library_version,
            platform,
            platform_version,
            platform_details,
            extra,
        },
    )
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    (
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
    )
        .prop_map(|(audio_in, audio_out, video_in, screen_in, video_out, metrics)| {
            Capabilities { audio_in, audio_out, video_in, screen_in, video_out, metrics }
        })
}

fn text_data() -> impl Strategy<Value = TextData> {
    text().prop_map(|text| TextData { text })
}

fn transcription() -> impl Strategy<Value = Transcription> {
    (text(), opt_text(), opt_text(), any::<bool>()).prop_map(
        |(text, user_id, timestamp, is_final)| Transcription { text, user_id, timestamp, is_final },
    )
}

fn input_type() -> impl Strategy<Value = InputType> {
    prop_oneof![
        Just(InputType::Transcription),
        Just(InputType::Chat),
        Just(InputType::Backchannel),
        text().prop_map(|s| InputType::from(s.as_str())),
    ]
}

fn spoken_status() -> impl Strategy<Value = SpokenStatus> {
    prop_oneof![
        Just(SpokenStatus::New),
        Just(SpokenStatus::InProgress),
        Just(SpokenStatus::Completed),
        text().prop_map(|s| SpokenStatus::from(s.as_str())),
    ]
}

fn bot_output() -> impl Strategy<Value = BotOutput> {
    (
        text(),
        opt_text(),
        opt_text(),
        opt_text(),
        of(any::<i64>()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(spoken_status()),
        of((text(), text()).prop_map(|(accumulated_text, remaining_text)| SpokenProgress {
            accumulated_text,
            remaining_text,
        })),
    )
        .prop_map(
            |(
                text,
                output_type,
                text_type,
                aggregated_by,
                segment_id,
                spoken,
                will_be_spoken,
                spoken_status,
                spoken_progress,
            )| {
                BotOutput {
                    text,
                    output_type,
                    text_type,
                    aggregated_by,
                    segment_id,
                    spoken,
                    will_be_spoken,
                    spoken_status,
                    spoken_progress,
                }
            },
        )
}

fn metrics() -> impl Strategy<Value = Metrics> {
    const KNOWN: &[&str] =
        &["ttfb", "processing", "ttfa", "ttfat", "tokens", "stt_usage", "characters"];
    let value = || {
        (text(), opt_text(), finite()).prop_map(|(processor, model, value)| MetricValue {
            processor,
            model,
            value,
        })
    };
    let ttfa = (text(), opt_text(), finite(), finite(), finite()).prop_map(
        |(processor, model, ttfa, ttfb, leading_silence)| TtfaMetric {
            processor,
            model,
            ttfa,
            ttfb,
            leading_silence,
        },
    );
    let ttfat = (text(), opt_text(), finite(), finite(), finite()).prop_map(
        |(processor, model, ttfat, ttfb, thinking_time)| TtfatMetric {
            processor,
            model,
            ttfat,
            ttfb,
            thinking_time,
        },
    );
    const TOKEN_KNOWN: &[&str] = &["prompt_tokens", "completion_tokens", "total_tokens"];
    let tokens = (any::<u64>(), any::<u64>(), any::<u64>(), extras(TOKEN_KNOWN)).prop_map(
        |(prompt_tokens, completion_tokens, total_tokens, extra)| TokenUsage {
            prompt_tokens,
            completion_tokens,
            total_tokens,
            extra,
        },
    );
    let stt = (text(), opt_text(), finite()).prop_map(|(processor, model, audio_seconds)| {
        SttUsage { processor, model, value: SttUsageValue { audio_seconds } }
    });
    let characters = (text(), opt_text(), any::<u64>())
        .prop_map(|(processor, model, value)| CharactersMetric { processor, model, value });
    (
        of(vec(value(), 0..3)),
        of(vec(value(), 0..3)),
        of(vec(ttfa, 0..3)),
        of(vec(ttfat, 0..3)),
        of(vec(tokens, 0..3)),
        of(vec(stt, 0..3)),
        of(vec(characters, 0..3)),
        extras(KNOWN),
    )
        .prop_map(|(ttfb, processing, ttfa, ttfat, tokens, stt_usage, characters, extra)| {
            Metrics { ttfb, processing, ttfa, ttfat, tokens, stt_usage, characters, extra }
        })
}

fn search_response() -> impl Strategy<Value = SearchResponse> {
    let result = (text(), vec(finite(), 0..4))
        .prop_map(|(text, confidence)| SearchResult { text, confidence });
    let origin = (opt_text(), opt_text(), vec(result, 0..3))
        .prop_map(|(site_uri, site_title, results)| SearchOrigin { site_uri, site_title, results });
    (opt_text(), opt_text(), vec(origin, 0..3)).prop_map(
        |(search_result, rendered_content, origins)| SearchResponse {
            search_result,
            rendered_content,
            origins,
        },
    )
}

fn ui_job_group() -> impl Strategy<Value = UiJobGroup> {
    let event = prop_oneof![
        (text(), of(vec(text(), 0..3)), opt_text(), any::<bool>(), any::<i64>()).prop_map(
            |(job_id, workers, label, cancellable, at)| JobGroupEvent::GroupStarted {
                job_id,
                workers,
                label,
                cancellable,
                at
            }
        ),
        (text(), text(), opt_json(), any::<i64>()).prop_map(|(job_id, worker_name, data, at)| {
            JobGroupEvent::JobUpdate { job_id, worker_name, data, at }
        }),
        (text(), text(), text(), opt_json(), any::<i64>()).prop_map(
            |(job_id, worker_name, status, response, at)| {
                JobGroupEvent::JobCompleted { job_id, worker_name, status, response, at }
            }
        ),
        (text(), any::<i64>())
            .prop_map(|(job_id, at)| JobGroupEvent::GroupCompleted { job_id, at }),
    ];
    // Unknown kinds: any object without a known `kind`, or `null` (no data).
    let other = prop_oneof![
        btree_map(text(), json(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        (text(), btree_map(text(), json(), 0..3)).prop_map(|(kind, m)| {
            let mut map: Map<String, Value> = m.into_iter().collect();
            map.insert("kind".into(), Value::String(kind));
            Value::Object(map)
        }),
        Just(Value::Null),
    ]
    .prop_filter("not a known kind", |v| {
        !v.get("kind").and_then(Value::as_str).is_some_and(|k| JobGroupEvent::KINDS.contains(&k))
    });
    prop_oneof![3 => event.prop_map(UiJobGroup::Known), 1 => other.prop_map(UiJobGroup::Other)]
}

fn a11y_node() -> impl Strategy<Value = A11yNode> {
    const KNOWN: &[&str] =
        &["ref", "role", "name", "value", "state", "level", "colcount", "rowcount", "children"];
    let node = |children: BoxedStrategy<Option<Vec<A11yNode>>>| {
        (
            text(),
            text(),
            opt_text(),
            opt_text(),
            of(vec(text(), 0..3)),
            of(any::<i64>()),
            of(any::<i64>()),
            of(any::<i64>()),
            children,
            extras(KNOWN),
        )
            .prop_map(
                |(
                    node_ref,
                    role,
                    name,
                    value,
                    state,
                    level,
                    colcount,
                    rowcount,
                    children,
                    extra,
                )| A11yNode {
                    node_ref,
                    role,
                    name,
                    value,
                    state,
                    level,
                    colcount,
                    rowcount,
                    children,
                    extra,
                },
            )
    };
    node(Just(None).boxed())
        .prop_recursive(3, 12, 3, move |inner| node(of(vec(inner, 0..3)).boxed()))
}

fn dtmf_key() -> impl Strategy<Value = DtmfKey> {
    select("0123456789*#".chars().collect::<Vec<_>>()).prop_map(|c| DtmfKey::new(c).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Messages.

fn unknown(is_known: fn(&str) -> bool) -> impl Strategy<Value = UnknownMessage> {
    let message_type = prop_oneof![text(), "[a-z]{1,8}(-[a-z]{1,8}){0,3}"];
    (message_type.prop_filter("not a known type", move |t| !is_known(t)), opt_json())
        .prop_map(|(message_type, data)| UnknownMessage { message_type, data })
}

fn is_known_server_type(t: &str) -> bool {
    let text = serde_json::json!({"label": "rtvi-ai", "type": t}).to_string();
    !matches!(
        ServerEnvelope::parse(&text),
        Ok(ServerEnvelope { message: ServerMessage::Unknown(_), .. })
    )
}

fn is_known_client_type(t: &str) -> bool {
    let text = serde_json::json!({"label": "rtvi-ai", "type": t, "id": "1"}).to_string();
    !matches!(
        ClientEnvelope::parse(&text),
        Ok(ClientEnvelope { message: ClientMessage::Unknown(_), .. })
    )
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    use ServerMessage as S;
    let dataless = [
        S::UserStartedSpeaking,
        S::UserStoppedSpeaking,
        S::VadUserStartedSpeaking,
        S::VadUserStoppedSpeaking,
        S::UserMuteStarted,
        S::UserMuteStopped,
        S::BotStartedSpeaking,
        S::BotStoppedSpeaking,
        S::BotInterrupted,
        S::BotLlmStarted,
        S::BotLlmStopped,
        S::BotTtsStarted,
        S::BotTtsStopped,
    ];
    let mut all: Vec<BoxedStrategy<ServerMessage>> =
        dataless.into_iter().map(|m| Just(m).boxed()).collect();
    all.extend([
        (text(), of(about()), of(capabilities()))
            .prop_map(|(version, about, capabilities)| {
                S::BotReady(BotReady { version, about, capabilities })
            })
            .boxed(),
        (text(), any::<bool>())
            .prop_map(|(error, fatal)| S::Error(ErrorData { error, fatal }))
            .boxed(),
        text().prop_map(|error| S::ErrorResponse(ErrorResponse { error })).boxed(),
        (text(), opt_json()).prop_map(|(t, d)| S::ServerResponse(ServerResponse { t, d })).boxed(),
        json().prop_map(S::ServerMessage).boxed(),
        transcription().prop_map(S::UserTranscription).boxed(),
        (text(), input_type(), opt_text(), any::<bool>(), opt_text(), opt_text())
            .prop_map(|(text, input_type, timestamp, is_final, user_id, msg_id)| {
                S::UserInput(UserInput { text, input_type, timestamp, is_final, user_id, msg_id })
            })
            .boxed(),
        text_data().prop_map(S::UserLlmText).boxed(),
        text_data().prop_map(S::BotLlmText).boxed(),
        text_data().prop_map(S::BotTranscription).boxed(),
        text_data().prop_map(S::BotTtsText).boxed(),
        bot_output().prop_map(S::BotOutput).boxed(),
        transcription().prop_map(S::SttRawText).boxed(),
        text_data().prop_map(S::LlmRawText).boxed(),
        text_data().prop_map(S::TtsRawText).boxed(),
        (text(), opt_text(), text(), vec(text(), 0..3))
            .prop_map(|(text, kind, raw, markers)| {
                S::BotLlmMarker(BotLlmMarker { text, kind, raw, markers })
            })
            .boxed(),
        opt_text()
            .prop_map(|function_name| {
                S::LlmFunctionCallStarted(FunctionCallStarted { function_name })
            })
            .boxed(),
        (text(), opt_text(), opt_json())
            .prop_map(|(tool_call_id, function_name, arguments)| {
                S::LlmFunctionCallInProgress(FunctionCallInProgress {
                    tool_call_id,
                    function_name,
                    arguments,
                })
            })
            .boxed(),
        (text(), any::<bool>(), opt_text(), opt_json())
            .prop_map(|(tool_call_id, cancelled, function_name, result)| {
                S::LlmFunctionCallStopped(FunctionCallStopped {
                    tool_call_id,
                    cancelled,
                    function_name,
                    result,
                })
            })
            .boxed(),
        (text(), text(), json())
            .prop_map(|(function_name, tool_call_id, args)| {
                S::LlmFunctionCall(LegacyFunctionCall { function_name, tool_call_id, args })
            })
            .boxed(),
        search_response().prop_map(S::BotLlmSearchResponse).boxed(),
        metrics().prop_map(S::Metrics).boxed(),
        finite().prop_map(|value| S::UserAudioLevel(AudioLevel { value })).boxed(),
        finite().prop_map(|value| S::BotAudioLevel(AudioLevel { value })).boxed(),
        text_data().prop_map(S::SystemLog).boxed(),
        (text(), opt_json())
            .prop_map(|(command, payload)| S::UiCommand(UiCommand { command, payload }))
            .boxed(),
        ui_job_group().prop_map(S::UiJobGroup).boxed(),
        (text(), any::<u32>(), any::<u16>())
            .prop_map(|(audio, sample_rate, num_channels)| {
                S::BotTtsAudio(BotTtsAudio { audio, sample_rate, num_channels })
            })
            .boxed(),
        unknown(is_known_server_type).prop_map(S::Unknown).boxed(),
    ]);
    Union::new(all)
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    use ClientMessage as C;
    let source = prop_oneof![
        (text(), of(any::<u32>()), of(any::<u32>()))
            .prop_map(|(bytes, width, height)| FileSource::Bytes { bytes, width, height }),
        text().prop_map(|url| FileSource::Url { url }),
    ];
    let file = (text(), opt_text(), source).prop_map(|(format, name, source)| FileData {
        format,
        name,
        source,
    });
    let file_options = (of(any::<bool>()), of(any::<bool>()), opt_json()).prop_map(
        |(run_immediately, audio_response, custom_options)| SendFileOptions {
            run_immediately,
            audio_response,
            custom_options,
        },
    );
    let snapshot = (
        a11y_node(),
        any::<i64>(),
        of((text(), text(), of(any::<u64>()), of(any::<u64>())).prop_map(
            |(node_ref, text, start_offset, end_offset)| A11ySelection {
                node_ref,
                text,
                start_offset,
                end_offset,
            },
        )),
    )
        .prop_map(|(root, captured_at, selection)| UiSnapshot {
            tree: A11ySnapshot { root, captured_at, selection },
        });
    let all: Vec<BoxedStrategy<ClientMessage>> = vec![
        (text(), about())
            .prop_map(|(version, about)| C::ClientReady(ClientReady { version, about }))
            .boxed(),
        Just(C::DisconnectBot(DisconnectBot {})).boxed(),
        (text(), opt_json())
            .prop_map(|(t, d)| C::ClientMessage(ClientMessageData { t, d }))
            .boxed(),
        (
            text(),
            of((of(any::<bool>()), of(any::<bool>())).prop_map(
                |(run_immediately, audio_response)| SendTextOptions {
                    run_immediately,
                    audio_response,
                },
            )),
        )
            .prop_map(|(content, options)| C::SendText(SendText { content, options }))
            .boxed(),
        (text(), file, of(file_options))
            .prop_map(|(content, file, options)| C::SendFile(SendFile { content, file, options }))
            .boxed(),
        (text(), text(), json(), json())
            .prop_map(|(function_name, tool_call_id, arguments, result)| {
                C::LlmFunctionCallResult(FunctionCallResult {
                    function_name,
                    tool_call_id,
                    arguments,
                    result,
                })
            })
            .boxed(),
        vec(dtmf_key(), 0..12).prop_map(|buttons| C::Dtmf(Dtmf::Buttons { buttons })).boxed(),
        dtmf_key().prop_map(|button| C::Dtmf(Dtmf::Button { button })).boxed(),
        (text(), any::<u32>(), any::<u16>())
            .prop_map(|(base64_audio, sample_rate, num_channels)| {
                C::RawAudio(RawAudio { base64_audio, sample_rate, num_channels })
            })
            .boxed(),
        (vec(text(), 0..4), any::<u32>(), any::<u16>())
            .prop_map(|(base64_audio_batch, sample_rate, num_channels)| {
                C::RawAudioBatch(RawAudioBatch { base64_audio_batch, sample_rate, num_channels })
            })
            .boxed(),
        (text(), opt_json())
            .prop_map(|(event, payload)| C::UiEvent(UiEvent { event, payload }))
            .boxed(),
        snapshot.prop_map(C::UiSnapshot).boxed(),
        (text(), opt_text())
            .prop_map(|(job_id, reason)| C::UiCancelJobGroup(UiCancelJobGroup { job_id, reason }))
            .boxed(),
        unknown(is_known_client_type).prop_map(C::Unknown).boxed(),
    ];
    Union::new(all)
}

/// Text that is JSON-ish enough to get past the first byte: envelopes with random members.
fn envelope_like() -> impl Strategy<Value = String> {
    const TYPES: &[&str] = &[
        "bot-ready",
        "error",
        "error-response",
        "server-response",
        "server-message",
        "user-input",
        "bot-output",
        "metrics",
        "ui-command",
        "ui-job-group",
        "bot-llm-started",
        "llm-function-call-stopped",
        "bot-llm-search-response",
        "bot-tts-audio",
        "user-audio-level",
        "client-ready",
        "send-file",
        "dtmf",
        "ui-snapshot",
        "raw-audio-batch",
        "llm-function-call-result",
        "disconnect-bot",
        "future-type",
    ];
    let label = prop_oneof![4 => Just(Value::from("rtvi-ai")), 1 => json()];
    let message_type = prop_oneof![4 => select(TYPES).prop_map(Value::from), 1 => json()];
    (label, message_type, of(json()), of(json()), btree_map(text(), json(), 0..2)).prop_map(
        |(label, t, id, data, extra)| {
            let mut map: Map<String, Value> = extra.into_iter().collect();
            map.insert("label".into(), label);
            map.insert("type".into(), t);
            if let Some(id) = id {
                map.insert("id".into(), id);
            }
            if let Some(data) = data {
                map.insert("data".into(), data);
            }
            Value::Object(map).to_string()
        },
    )
}

/// Parses with both decoders; when one succeeds, its output must encode and decode again to
/// the same value.
fn decode_never_panics(text: &str) -> Result<(), TestCaseError> {
    if let Ok(envelope) = ServerEnvelope::parse(text) {
        let encoded = envelope.to_json().expect("a decoded message encodes");
        prop_assert_eq!(ServerEnvelope::parse(&encoded).expect("re-decodes"), envelope);
    }
    if let Ok(envelope) = ClientEnvelope::parse(text) {
        let encoded = envelope.to_json().expect("a decoded message encodes");
        prop_assert_eq!(ClientEnvelope::parse(&encoded).expect("re-decodes"), envelope);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2048,
        // Integration tests have no lib.rs for proptest to find: keep regressions beside this file.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn server_messages_round_trip(message in server_message(), id in of(text())) {
        let envelope = ServerEnvelope { id, message };
        let encoded = envelope.to_json().unwrap();
        prop_assert!(!encoded.contains("\"data\":null"), "{}", encoded);
        let decoded = ServerEnvelope::parse(&encoded).unwrap();
        prop_assert_eq!(&decoded, &envelope);
        prop_assert_eq!(decoded.to_json().unwrap(), encoded);
    }

    #[test]
    fn client_messages_round_trip(message in client_message(), id in text()) {
        let envelope = ClientEnvelope::with_id(id, message);
        let encoded = envelope.to_json().unwrap();
        prop_assert!(!encoded.contains("\"data\":null"), "{}", encoded);
        let decoded = ClientEnvelope::parse(&encoded).unwrap();
        prop_assert_eq!(&decoded, &envelope);
        prop_assert_eq!(decoded.to_json().unwrap(), encoded);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        decode_never_panics(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_json_ish_text_never_panics(text in r#"[ {}\[\]":,0-9a-z.eE+\-\\]{0,80}"#) {
        decode_never_panics(&text)?;
    }

    #[test]
    fn arbitrary_json_never_panics(value in json()) {
        decode_never_panics(&value.to_string())?;
    }

    #[test]
    fn arbitrary_envelopes_never_panic(text in envelope_like()) {
        decode_never_panics(&text)?;
    }

    #[test]
    fn corrupted_corpus_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let corpus = corpus_texts();
        let mut bytes = corpus[pick.index(corpus.len())].as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        decode_never_panics(&String::from_utf8_lossy(&bytes))?;
    }
}

fn corpus_texts() -> &'static [String] {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| {
        ["server.txt", "client.txt"]
            .iter()
            .flat_map(|name| {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/corpus")
                    .join(name);
                std::fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.split_once(' ').unwrap().1.to_owned())
            .collect()
    })
}
