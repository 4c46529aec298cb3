//! Lenient in, strict out: unknown types and fields, missing optional fields, deprecated types,
//! `null` never encoded, and typed envelope errors.

mod common;

use common::{assert_no_null, assert_same_json, json};
use pipecat_rtvi::{
    A11ySnapshot, AudioLevel, BotLlmMarker, BotOutput, BotReady, BotTtsAudio, ClientEnvelope,
    ClientMessage, ClientMessageData, ClientReady, DisconnectBot, Dtmf, ErrorData, ErrorResponse,
    FunctionCallInProgress, FunctionCallResult, FunctionCallStarted, FunctionCallStopped,
    InputType, JobGroupEvent, LegacyFunctionCall, MetricValue, Metrics, ProtocolVersion, RawAudio,
    RawAudioBatch, RtviError, SearchOrigin, SearchResponse, SearchResult, SendFile,
    SendTextOptions, ServerEnvelope, ServerMessage, ServerResponse, TextData, Transcription,
    UiCancelJobGroup, UiCommand, UiEvent, UiJobGroup, UiSnapshot, UnknownMessage, UserInput,
    dtmf_messages,
};
use serde_json::{Value, json};

fn server(text: &str) -> ServerMessage {
    ServerEnvelope::parse(text).unwrap_or_else(|e| panic!("{e}: {text}")).message
}

#[test]
fn unknown_server_types_round_trip_losslessly() {
    let cases = [
        r#"{"label":"rtvi-ai","type":"bot-emotion","data":{"emotion":"happy","nested":{"a":[1,2.5,null,"x"]}}}"#,
        r#"{"label":"rtvi-ai","type":"bot-emotion","id":"e-1","data":[1,"two",{"three":3}]}"#,
        r#"{"label":"rtvi-ai","type":"future","data":"text with ünïcödé and \"escapes\"\n"}"#,
        r#"{"label":"rtvi-ai","type":"future","data":12345678901234567890}"#,
        r#"{"label":"rtvi-ai","type":"future","data":-0.5}"#,
        r#"{"label":"rtvi-ai","type":"future","data":false}"#,
        r#"{"label":"rtvi-ai","type":"future-no-data"}"#,
        r#"{"label":"rtvi-ai","type":"","data":{}}"#,
        r#"{"label":"rtvi-ai","type":"Bot-Ready","data":{"version":"2.2.0"}}"#,
    ];
    for text in cases {
        let envelope = ServerEnvelope::parse(text).unwrap();
        let ServerMessage::Unknown(unknown) = &envelope.message else { panic!("{text}") };
        let wire = json(text);
        assert_eq!(unknown.message_type, wire["type"].as_str().unwrap());
        assert_eq!(unknown.data.clone().map(common::normalise), wire.get("data").cloned());
        assert_same_json(text, &envelope.to_json().unwrap(), text);
    }
}

#[test]
fn unknown_client_types_round_trip_losslessly() {
    let text =
        r#"{"label":"rtvi-ai","type":"client-future","id":"cf-1","data":{"k":[true,{"v":1.25}]}}"#;
    let envelope = ClientEnvelope::parse(text).unwrap();
    let ClientMessage::Unknown(unknown) = &envelope.message else { panic!() };
    assert_eq!(unknown.message_type, "client-future");
    assert_eq!(envelope.id, "cf-1");
    assert_same_json(text, &envelope.to_json().unwrap(), text);
}

#[test]
fn unknown_message_with_null_data_encodes_without_data() {
    let unknown = |data| {
        ServerEnvelope::new(ServerMessage::Unknown(UnknownMessage {
            message_type: "x".into(),
            data,
        }))
    };
    assert_eq!(unknown(Some(Value::Null)).to_json().unwrap(), r#"{"label":"rtvi-ai","type":"x"}"#);
    assert_eq!(unknown(None).to_json().unwrap(), r#"{"label":"rtvi-ai","type":"x"}"#);
    // A `null` data member decodes as absent.
    let ServerMessage::Unknown(u) = server(r#"{"label":"rtvi-ai","type":"x","data":null}"#) else {
        panic!()
    };
    assert_eq!(u.data, None);
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let text = r#"{"label":"rtvi-ai","type":"bot-ready","id":"cr-1","ts":1763781000,"meta":{"deep":[[[]]]},
        "data":{"version":"2.2.0","extra":true,"capabilities":{"audio_in":true,"holograms":true}}}"#;
    let ServerMessage::BotReady(ready) = server(text) else { panic!() };
    assert_eq!(ready.version, "2.2.0");
    assert_eq!(ready.capabilities.unwrap().audio_in, Some(true));

    let text = r#"{"label":"rtvi-ai","type":"bot-output","data":{"text":"hi","spoken_status":"new","emoji":"🙂",
        "spoken_progress":{"accumulated_text":"h","remaining_text":"i","percent":50}}}"#;
    let ServerMessage::BotOutput(out) = server(text) else { panic!() };
    assert_eq!(out.spoken_progress.unwrap().remaining_text, "i");

    let text = r#"{"label":"rtvi-ai","type":"metrics","data":{"ttfb":[{"processor":"p","value":0.5,"unit":"s"}]}}"#;
    let ServerMessage::Metrics(metrics) = server(text) else { panic!() };
    assert_eq!(metrics.ttfb.unwrap()[0].value, 0.5);

    let text = r#"{"label":"rtvi-ai","type":"send-text","id":"x","extra":1,"data":{"content":"hi","lang":"fr","options":{"run_immediately":false,"priority":9}}}"#;
    let ClientMessage::SendText(send) = ClientEnvelope::parse(text).unwrap().message else {
        panic!()
    };
    assert_eq!(send.options.unwrap().run_immediately, Some(false));

    // Ignored fields are dropped on output (except where a type keeps extras, see below).
    let text = r#"{"label":"rtvi-ai","type":"error","data":{"error":"e","fatal":true,"code":42}}"#;
    let encoded = ServerEnvelope::parse(text).unwrap().to_json().unwrap();
    assert_eq!(encoded, r#"{"label":"rtvi-ai","type":"error","data":{"error":"e","fatal":true}}"#);
}

#[test]
fn open_objects_keep_their_extra_fields() {
    // `about`, `metrics`, token usage and accessibility nodes are open: extras survive.
    let texts = [
        r#"{"label":"rtvi-ai","type":"bot-ready","data":{"version":"2.2.0","about":{"library":"x","gpu":"a100"}}}"#,
        r#"{"label":"rtvi-ai","type":"metrics","data":{"smart_turn":[{"p":1}],"tokens":[{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"audio_tokens":4}]}}"#,
    ];
    for text in texts {
        assert_same_json(text, &ServerEnvelope::parse(text).unwrap().to_json().unwrap(), text);
    }
    let text = r#"{"label":"rtvi-ai","type":"ui-snapshot","id":"s","data":{"tree":{"root":{"ref":"e0","role":"main","aria-live":"polite"},"captured_at":1}}}"#;
    assert_same_json(text, &ClientEnvelope::parse(text).unwrap().to_json().unwrap(), text);
}

#[test]
fn missing_optional_fields_are_fine() {
    let ServerMessage::BotReady(ready) =
        server(r#"{"label":"rtvi-ai","type":"bot-ready","data":{"version":"2.2.0"}}"#)
    else {
        panic!()
    };
    assert_eq!(ready, BotReady { version: "2.2.0".into(), ..BotReady::default() });

    let ServerMessage::BotOutput(out) =
        server(r#"{"label":"rtvi-ai","type":"bot-output","data":{"text":"hi"}}"#)
    else {
        panic!()
    };
    assert_eq!(out, BotOutput { text: "hi".into(), ..BotOutput::default() });
    assert_eq!(out.kind(), None);

    let ServerMessage::UserInput(input) = server(
        r#"{"label":"rtvi-ai","type":"user-input","data":{"text":"hi","input_type":"voice-note"}}"#,
    ) else {
        panic!()
    };
    assert_eq!(input.input_type, InputType::Other("voice-note".into()));
    assert_eq!(
        (input.timestamp, input.is_final, input.user_id, input.msg_id),
        (None, false, None, None)
    );

    let ServerMessage::UserTranscription(t) =
        server(r#"{"label":"rtvi-ai","type":"user-transcription","data":{"text":"hi"}}"#)
    else {
        panic!()
    };
    assert_eq!(t, Transcription { text: "hi".into(), ..Transcription::default() });

    // Payloads whose fields are all optional decode from an absent or null `data`.
    for text in [
        r#"{"label":"rtvi-ai","type":"llm-function-call-started"}"#,
        r#"{"label":"rtvi-ai","type":"llm-function-call-started","data":null}"#,
        r#"{"label":"rtvi-ai","type":"llm-function-call-started","data":{"function_name":null}}"#,
    ] {
        assert_eq!(
            server(text),
            ServerMessage::LlmFunctionCallStarted(FunctionCallStarted::default())
        );
    }
    assert_eq!(
        server(r#"{"label":"rtvi-ai","type":"metrics","data":{}}"#),
        ServerMessage::Metrics(Metrics::default())
    );
    assert_eq!(
        server(r#"{"label":"rtvi-ai","type":"server-message"}"#),
        ServerMessage::ServerMessage(Value::Null)
    );

    // `null` for an optional member is the same as leaving it out.
    let with_nulls =
        r#"{"label":"rtvi-ai","type":"server-response","id":null,"data":{"t":"x","d":null}}"#;
    let envelope = ServerEnvelope::parse(with_nulls).unwrap();
    assert_eq!(
        envelope,
        ServerEnvelope::new(ServerMessage::ServerResponse(ServerResponse {
            t: "x".into(),
            d: None
        }))
    );

    let ClientMessage::ClientMessage(m) = ClientEnvelope::parse(
        r#"{"label":"rtvi-ai","type":"client-message","id":"1","data":{"t":"x"}}"#,
    )
    .unwrap()
    .message
    else {
        panic!()
    };
    assert_eq!(m.d, None);
}

#[test]
fn deprecated_types_parse() {
    let ServerMessage::BotTranscription(t) = server(
        r#"{"label":"rtvi-ai","type":"bot-transcription","data":{"text":"Hello from the bot."}}"#,
    ) else {
        panic!()
    };
    assert_eq!(t.text, "Hello from the bot.");

    let ServerMessage::LlmFunctionCall(call) = server(
        r#"{"label":"rtvi-ai","type":"llm-function-call","data":{"function_name":"get_weather","tool_call_id":"call-1","args":{"city":"Paris"}}}"#,
    ) else {
        panic!()
    };
    assert_eq!(call.function_name, "get_weather");
    assert_eq!(call.tool_call_id, "call-1");
    assert_eq!(call.args, json!({"city": "Paris"}));

    let ServerMessage::UserTranscription(t) = server(
        r#"{"label":"rtvi-ai","type":"user-transcription","data":{"text":"hi","user_id":"u","timestamp":"2026-11-22T03:10:00Z","final":true}}"#,
    ) else {
        panic!()
    };
    assert!(t.is_final);
    assert_eq!(t.timestamp.as_deref(), Some("2026-11-22T03:10:00Z"));

    assert!(matches!(
        server(r#"{"label":"rtvi-ai","type":"bot-llm-text","data":{"text":"x"}}"#),
        ServerMessage::BotLlmText(_)
    ));
    assert!(matches!(
        server(r#"{"label":"rtvi-ai","type":"bot-tts-text","data":{"text":"x"}}"#),
        ServerMessage::BotTtsText(_)
    ));
}

/// One message of every server variant, each payload default-constructed.
fn default_server_messages() -> Vec<ServerMessage> {
    vec![
        ServerMessage::BotReady(BotReady::default()),
        ServerMessage::Error(ErrorData::default()),
        ServerMessage::ErrorResponse(ErrorResponse::default()),
        ServerMessage::ServerResponse(ServerResponse::default()),
        ServerMessage::ServerMessage(Value::default()),
        ServerMessage::UserStartedSpeaking,
        ServerMessage::UserStoppedSpeaking,
        ServerMessage::VadUserStartedSpeaking,
        ServerMessage::VadUserStoppedSpeaking,
        ServerMessage::UserMuteStarted,
        ServerMessage::UserMuteStopped,
        ServerMessage::BotStartedSpeaking,
        ServerMessage::BotStoppedSpeaking,
        ServerMessage::BotInterrupted,
        ServerMessage::UserTranscription(Transcription::default()),
        ServerMessage::UserInput(UserInput {
            text: String::new(),
            input_type: InputType::Chat,
            timestamp: None,
            is_final: false,
            user_id: None,
            msg_id: None,
        }),
        ServerMessage::UserLlmText(TextData::default()),
        ServerMessage::BotLlmStarted,
        ServerMessage::BotLlmStopped,
        ServerMessage::BotLlmText(TextData::default()),
        ServerMessage::BotTranscription(TextData::default()),
        ServerMessage::BotTtsStarted,
        ServerMessage::BotTtsStopped,
        ServerMessage::BotTtsText(TextData::default()),
        ServerMessage::BotOutput(BotOutput::default()),
        ServerMessage::SttRawText(Transcription::default()),
        ServerMessage::LlmRawText(TextData::default()),
        ServerMessage::TtsRawText(TextData::default()),
        ServerMessage::BotLlmMarker(BotLlmMarker::default()),
        ServerMessage::LlmFunctionCallStarted(FunctionCallStarted::default()),
        ServerMessage::LlmFunctionCallInProgress(FunctionCallInProgress::default()),
        ServerMessage::LlmFunctionCallStopped(FunctionCallStopped::default()),
        ServerMessage::LlmFunctionCall(LegacyFunctionCall::default()),
        ServerMessage::BotLlmSearchResponse(SearchResponse {
            origins: vec![SearchOrigin {
                results: vec![SearchResult::default()],
                ..SearchOrigin::default()
            }],
            ..SearchResponse::default()
        }),
        ServerMessage::Metrics(Metrics {
            ttfb: Some(vec![MetricValue::default()]),
            ..Metrics::default()
        }),
        ServerMessage::UserAudioLevel(AudioLevel::default()),
        ServerMessage::BotAudioLevel(AudioLevel::default()),
        ServerMessage::SystemLog(TextData::default()),
        ServerMessage::UiCommand(UiCommand::default()),
        ServerMessage::UiJobGroup(UiJobGroup::Other(Value::Null)),
        ServerMessage::UiJobGroup(UiJobGroup::Known(JobGroupEvent::JobUpdate {
            job_id: String::new(),
            worker_name: String::new(),
            data: Some(Value::Null),
            at: 0,
        })),
        ServerMessage::BotTtsAudio(BotTtsAudio::default()),
        ServerMessage::Unknown(UnknownMessage {
            message_type: "x".into(),
            data: Some(Value::Null),
        }),
    ]
}

/// One message of every client variant, each payload default-constructed.
fn default_client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::ClientReady(ClientReady::default()),
        ClientMessage::DisconnectBot(DisconnectBot::default()),
        ClientMessage::ClientMessage(ClientMessageData::default()),
        ClientMessage::SendText(Default::default()),
        ClientMessage::SendFile(SendFile::default()),
        ClientMessage::LlmFunctionCallResult(FunctionCallResult::default()),
        ClientMessage::Dtmf(Dtmf::Buttons { buttons: vec![] }),
        ClientMessage::RawAudio(RawAudio::default()),
        ClientMessage::RawAudioBatch(RawAudioBatch::default()),
        ClientMessage::UiEvent(UiEvent::default()),
        ClientMessage::UiSnapshot(UiSnapshot { tree: A11ySnapshot::default() }),
        ClientMessage::UiCancelJobGroup(UiCancelJobGroup::default()),
    ]
}

#[test]
fn default_constructed_messages_never_encode_null() {
    for message in default_server_messages() {
        let encoded = ServerEnvelope::new(message.clone()).to_json().unwrap();
        assert_no_null(&encoded);
        assert_eq!(json(&encoded)["type"], message.message_type());
    }
    for message in default_client_messages() {
        let encoded = ClientEnvelope::new(message).to_json().unwrap();
        assert_no_null(&encoded);
    }
}

#[test]
fn builders_never_encode_null() {
    let mut built = vec![
        ClientEnvelope::client_ready(),
        ClientEnvelope::client_ready_with(pipecat_rtvi::About::default()),
        ClientEnvelope::client_message("ping", None),
        ClientEnvelope::client_message("ping", Some(Value::Null)),
        ClientEnvelope::client_message("ping", Some(json!({"x": 1}))),
        ClientEnvelope::send_text("hi", None),
        ClientEnvelope::send_text("hi", Some(SendTextOptions::default())),
        ClientEnvelope::send_text(
            "hi",
            Some(SendTextOptions { run_immediately: Some(false), audio_response: None }),
        ),
        ClientEnvelope::disconnect_bot(),
        ClientEnvelope::function_call_result("f", "c", Value::Null, Value::Null),
        ClientEnvelope::function_call_result("f", "c", json!({"a": 1}), json!("ok")),
        ClientEnvelope::ui_event("clicked", None),
        ClientEnvelope::ui_event("clicked", Some(Value::Null)),
        ClientEnvelope::cancel_job_group("jg", None),
        ClientEnvelope::cancel_job_group("jg", Some("why".into())),
    ];
    for version in [ProtocolVersion::new(2, 0, 0), ProtocolVersion::new(2, 2, 0)] {
        built.extend(dtmf_messages(version, "12#*").unwrap().into_iter().map(ClientEnvelope::new));
    }
    for envelope in built {
        let encoded = envelope.to_json_checked(64 * 1024).unwrap();
        assert_no_null(&encoded);
        assert_eq!(json(&encoded)["id"], envelope.id.as_str());
    }
    // `null` function-call arguments and results are left out, not sent as null.
    let encoded = ClientEnvelope::with_id(
        "1",
        ClientMessage::LlmFunctionCallResult(FunctionCallResult::default()),
    )
    .to_json()
    .unwrap();
    assert_eq!(
        encoded,
        r#"{"label":"rtvi-ai","type":"llm-function-call-result","id":"1","data":{"function_name":"","tool_call_id":""}}"#
    );
}

#[test]
fn non_finite_floats_are_encode_errors_not_null() {
    let bad = [
        ServerMessage::UserAudioLevel(AudioLevel { value: f64::NAN }),
        ServerMessage::BotAudioLevel(AudioLevel { value: f64::INFINITY }),
        ServerMessage::Metrics(Metrics {
            processing: Some(vec![MetricValue {
                value: f64::NEG_INFINITY,
                ..MetricValue::default()
            }]),
            ..Metrics::default()
        }),
        ServerMessage::BotLlmSearchResponse(SearchResponse {
            origins: vec![SearchOrigin {
                results: vec![SearchResult { text: "t".into(), confidence: vec![0.5, f64::NAN] }],
                ..SearchOrigin::default()
            }],
            ..SearchResponse::default()
        }),
    ];
    for message in bad {
        let result = ServerEnvelope::new(message).to_json();
        assert!(matches!(result, Err(RtviError::Encode(_))), "{result:?}");
    }
}

fn both_parsers(text: &str) -> [Result<(), RtviError>; 2] {
    [ServerEnvelope::parse(text).map(drop), ClientEnvelope::parse(text).map(drop)]
}

#[test]
fn wrong_or_missing_label_is_wrong_label() {
    let cases: [(&str, Option<&str>); 9] = [
        (r#"{"label":"rtvi","type":"bot-ready","data":{"version":"2.2.0"}}"#, Some("rtvi")),
        (r#"{"label":"RTVI-AI","type":"bot-llm-started"}"#, Some("RTVI-AI")),
        (r#"{"label":"","type":"bot-llm-started"}"#, Some("")),
        (r#"{"label":"rtvi-ai ","type":"bot-llm-started"}"#, Some("rtvi-ai ")),
        (r#"{"label":5,"type":"bot-llm-started"}"#, Some("5")),
        (r#"{"label":["rtvi-ai"],"type":"bot-llm-started"}"#, Some(r#"["rtvi-ai"]"#)),
        (r#"{"label":null,"type":"bot-llm-started"}"#, None),
        (r#"{"type":"bot-llm-started"}"#, None),
        (r#"{"type":"signalling","message":{"type":"peerLeft"}}"#, None),
    ];
    for (text, found) in cases {
        for result in both_parsers(text) {
            match result {
                Err(RtviError::WrongLabel { found: f }) => {
                    assert_eq!(f.as_deref(), found, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
    // An escaped spelling of the right label is the right label.
    assert!(ServerEnvelope::parse(r#"{"label":"rtvi\u002dai","type":"bot-llm-started"}"#).is_ok());
}

#[test]
fn text_that_is_not_json_is_not_json() {
    for text in [
        "",
        " ",
        "hello",
        "{",
        "{\"label\"",
        "{'label':'rtvi-ai'}",
        "ping: 1763781000",
        "{\"label\":\"rtvi-ai\",\"type\":\"x\"} trailing",
        "\u{feff}{}",
        "[1,2",
    ] {
        for result in both_parsers(text) {
            assert!(matches!(result, Err(RtviError::NotJson(_))), "{text:?}: {result:?}");
        }
    }
}

#[test]
fn json_that_is_not_an_object_is_an_invalid_envelope() {
    for text in [
        "[]",
        r#"["rtvi-ai","bot-llm-started"]"#,
        r#"["rtvi-ai","bot-ready","cr-1",{"version":"2.2.0"}]"#,
        "42",
        "-1.5",
        r#""rtvi-ai""#,
        "null",
        "true",
        " \n[\"rtvi-ai\"] ",
    ] {
        for result in both_parsers(text) {
            assert!(matches!(result, Err(RtviError::InvalidEnvelope(_))), "{text:?}: {result:?}");
        }
    }
}

#[test]
fn missing_or_non_string_type_is_an_invalid_envelope() {
    for text in [
        r#"{"label":"rtvi-ai"}"#,
        r#"{"label":"rtvi-ai","data":{"version":"2.2.0"}}"#,
        r#"{"label":"rtvi-ai","type":5}"#,
        r#"{"label":"rtvi-ai","type":null}"#,
        r#"{"label":"rtvi-ai","type":["bot-ready"]}"#,
        r#"{"label":"rtvi-ai","type":{"name":"bot-ready"}}"#,
        r#"{"label":"rtvi-ai","type":true}"#,
        r#"{"label":"rtvi-ai","type":"bot-ready","type":"error"}"#,
        r#"{"label":"rtvi-ai","type":"bot-llm-started","id":true}"#,
        r#"{"label":"rtvi-ai","type":"bot-llm-started","id":{"n":1}}"#,
    ] {
        for result in both_parsers(text) {
            assert!(matches!(result, Err(RtviError::InvalidEnvelope(_))), "{text}: {result:?}");
        }
    }
}

#[test]
fn envelope_details_lenient_in() {
    // Whitespace around and inside the envelope, keys in any order.
    let text = " \r\n\t{ \"data\" : { \"text\" : \"x\" } , \"type\" : \"system-log\", \"label\" : \"rtvi-ai\" }\n";
    assert_eq!(server(text), ServerMessage::SystemLog(TextData { text: "x".into() }));
    // A numeric id from a lenient peer is kept as its decimal text.
    let envelope = ServerEnvelope::parse(
        r#"{"label":"rtvi-ai","type":"error-response","id":17,"data":{"error":"e"}}"#,
    )
    .unwrap();
    assert_eq!(envelope.id.as_deref(), Some("17"));
    // Payload-less types ignore whatever data they are given.
    assert_eq!(
        server(r#"{"label":"rtvi-ai","type":"bot-interrupted","data":{"why":"barge-in"}}"#),
        ServerMessage::BotInterrupted
    );
    // A client message without id decodes (as the empty id); the server would reject it.
    let envelope =
        ClientEnvelope::parse(r#"{"label":"rtvi-ai","type":"disconnect-bot","data":{}}"#).unwrap();
    assert_eq!(envelope.id, "");
}

#[test]
fn invalid_data_names_the_message_type() {
    let err =
        ServerEnvelope::parse(r#"{"label":"rtvi-ai","type":"bot-llm-text","data":{"text":2}}"#)
            .unwrap_err();
    match err {
        RtviError::InvalidData { message_type, .. } => assert_eq!(message_type, "bot-llm-text"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bot_ready_is_a_bot_ready_whatever_its_version() {
    for (data, version) in [
        (r#","data":{"version":2}"#, "2"),
        (r#","data":{"version":null}"#, ""),
        (r#","data":{}"#, ""),
        ("", ""),
        (r#","data":{"version":"1.4.0"}"#, "1.4.0"),
    ] {
        let text = format!(r#"{{"label":"rtvi-ai","type":"bot-ready","id":"r"{data}}}"#);
        match ServerEnvelope::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}")).message {
            ServerMessage::BotReady(ready) => assert_eq!(ready.version, version, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}
