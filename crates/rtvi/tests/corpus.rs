//! The example corpus: every message of protocol.md sections 1.3-1.6 and the full section 1.5
//! trace decode to the expected typed variant and encode back to equal JSON.

mod common;

use std::collections::BTreeSet;

use common::{Example, assert_no_null, assert_same_json, load, trace, variant_name};
use pipecat_rtvi::{
    ClientEnvelope, ClientMessage, Compatibility, InputType, JobGroupEvent, ProtocolVersion,
    RtviError, ServerEnvelope, ServerMessage, SpokenStatus, StandardUiCommand, UiJobGroup,
};

/// Every server -> client type of the section 1.4 table.
const SERVER_TYPES: &[&str] = &[
    "bot-ready",
    "error",
    "error-response",
    "server-response",
    "server-message",
    "user-started-speaking",
    "user-stopped-speaking",
    "vad-user-started-speaking",
    "vad-user-stopped-speaking",
    "user-mute-started",
    "user-mute-stopped",
    "bot-started-speaking",
    "bot-stopped-speaking",
    "bot-interrupted",
    "user-transcription",
    "user-input",
    "user-llm-text",
    "bot-llm-started",
    "bot-llm-stopped",
    "bot-llm-text",
    "bot-transcription",
    "bot-tts-started",
    "bot-tts-stopped",
    "bot-tts-text",
    "bot-output",
    "stt-raw-text",
    "llm-raw-text",
    "tts-raw-text",
    "bot-llm-marker",
    "llm-function-call-started",
    "llm-function-call-in-progress",
    "llm-function-call-stopped",
    "llm-function-call",
    "bot-llm-search-response",
    "metrics",
    "user-audio-level",
    "bot-audio-level",
    "system-log",
    "ui-command",
    "ui-job-group",
    "bot-tts-audio",
];

/// Every client -> server type of the section 1.3 table.
const CLIENT_TYPES: &[&str] = &[
    "client-ready",
    "disconnect-bot",
    "client-message",
    "send-text",
    "send-file",
    "llm-function-call-result",
    "dtmf",
    "raw-audio",
    "raw-audio-batch",
    "ui-event",
    "ui-snapshot",
    "ui-cancel-job-group",
];

fn check_server(example: &Example) -> ServerEnvelope {
    let envelope = ServerEnvelope::parse(&example.wire)
        .unwrap_or_else(|e| panic!("{}: {e}\n {}", example.at, example.wire));
    assert_eq!(variant_name(&envelope.message), example.variant, "{}", example.at);
    let encoded = envelope.to_json().expect("encodes");
    assert_same_json(&example.wire, &encoded, &example.at);
    // Decoding the encoded text gives the same typed value.
    assert_eq!(ServerEnvelope::parse(&encoded).expect("re-decodes"), envelope, "{}", example.at);
    envelope
}

fn check_client(example: &Example) -> ClientEnvelope {
    let envelope = ClientEnvelope::parse(&example.wire)
        .unwrap_or_else(|e| panic!("{}: {e}\n {}", example.at, example.wire));
    assert_eq!(variant_name(&envelope.message), example.variant, "{}", example.at);
    let encoded = envelope.to_json().expect("encodes");
    assert_same_json(&example.wire, &encoded, &example.at);
    assert_eq!(ClientEnvelope::parse(&encoded).expect("re-decodes"), envelope, "{}", example.at);
    envelope
}

#[test]
fn server_corpus_decodes_to_expected_variants_and_round_trips() {
    let mut seen = BTreeSet::new();
    for example in load("server.txt") {
        let envelope = check_server(&example);
        let wire_type = common::json(&example.wire)["type"].as_str().unwrap().to_owned();
        assert_eq!(envelope.message.message_type(), wire_type, "{}", example.at);
        if !matches!(envelope.message, ServerMessage::Unknown(_)) {
            seen.insert(wire_type);
        }
    }
    let expected: BTreeSet<String> = SERVER_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(seen, expected, "the corpus covers every server message type, typed");
}

#[test]
fn client_corpus_decodes_to_expected_variants_and_round_trips() {
    let mut seen = BTreeSet::new();
    for example in load("client.txt") {
        let envelope = check_client(&example);
        let wire = common::json(&example.wire);
        assert_eq!(envelope.id, wire["id"].as_str().unwrap(), "{}", example.at);
        assert_eq!(envelope.message.message_type(), wire["type"].as_str().unwrap());
        if !matches!(envelope.message, ClientMessage::Unknown(_)) {
            seen.insert(wire["type"].as_str().unwrap().to_owned());
        }
    }
    let expected: BTreeSet<String> = CLIENT_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(seen, expected, "the corpus covers every client message type, typed");
}

#[test]
fn server_ids_are_kept_exactly_where_sent() {
    for example in load("server.txt") {
        let envelope = ServerEnvelope::parse(&example.wire).unwrap();
        let wire_id =
            common::json(&example.wire).get("id").map(|id| id.as_str().unwrap().to_owned());
        assert_eq!(envelope.id, wire_id, "{}", example.at);
        if envelope.id.is_none() {
            let encoded = common::json(&envelope.to_json().unwrap());
            assert!(encoded.get("id").is_none(), "no id key at all: {}", example.at);
        }
    }
}

#[test]
fn trace_1_5_in_full() {
    let expected = [
        ('>', "ClientReady"),
        ('<', "BotReady"),
        ('>', "ClientMessage"),
        ('<', "ServerResponse"),
        ('<', "ServerMessage"),
        ('<', "UserInput"),
        ('<', "UserTranscription"),
        ('<', "BotLlmStarted"),
        ('<', "BotLlmText"),
        ('<', "BotTranscription"),
        ('<', "BotLlmStopped"),
        ('<', "BotOutput"),
        ('>', "SendText"),
        ('<', "BotInterrupted"),
        ('<', "UserInput"),
        ('<', "LlmFunctionCallStarted"),
        ('<', "LlmFunctionCallInProgress"),
        ('>', "LlmFunctionCallResult"),
        ('<', "LlmFunctionCallStopped"),
        ('<', "ErrorResponse"),
        ('<', "ErrorResponse"),
        ('<', "Error"),
        ('<', "BotStartedSpeaking"),
        ('<', "BotStoppedSpeaking"),
        ('>', "DisconnectBot"),
    ];
    let lines = trace();
    assert_eq!(lines.len(), expected.len() + 1, "25 RTVI messages and the signalling line");
    for (i, ((dir, wire), (want_dir, variant))) in lines.iter().zip(expected).enumerate() {
        assert_eq!(*dir, want_dir, "line {}", i + 1);
        let example = Example {
            at: format!("trace line {}", i + 1),
            variant: variant.into(),
            wire: wire.clone(),
        };
        if *dir == '>' {
            check_client(&example);
        } else {
            check_server(&example);
        }
    }
    // The last line is the transport's signalling message: not RTVI, so no label.
    let (dir, signalling) = lines.last().unwrap();
    assert_eq!(*dir, '<');
    assert!(matches!(
        ServerEnvelope::parse(signalling),
        Err(RtviError::WrongLabel { found: None })
    ));
}

#[test]
fn trace_1_5_fields_read_as_documented() {
    let lines = trace();
    let server = |n: usize| ServerEnvelope::parse(&lines[n - 1].1).unwrap();
    let client = |n: usize| ClientEnvelope::parse(&lines[n - 1].1).unwrap();

    let ready = client(1);
    let ClientMessage::ClientReady(hello) = &ready.message else { panic!() };
    assert_eq!(hello.version, "2.2.0");
    assert_eq!(hello.about.library, "rust-probe");

    let bot = server(2);
    assert_eq!(bot.id.as_deref(), Some(ready.id.as_str()), "bot-ready echoes the client-ready id");
    let ServerMessage::BotReady(bot) = bot.message else { panic!() };
    let version = bot.protocol_version().unwrap();
    assert_eq!(version, ProtocolVersion::new(2, 2, 0));
    assert_eq!(version.compatibility(), Compatibility::Compatible);
    assert_eq!(bot.about.unwrap().library_version.as_deref(), Some("1.14.0"));
    let caps = bot.capabilities.unwrap();
    assert_eq!(
        (caps.audio_in, caps.video_out, caps.metrics),
        (Some(true), Some(false), Some(false))
    );

    let response = server(4);
    assert_eq!(response.id.as_deref(), Some("m-ping"));
    let ServerMessage::ServerResponse(r) = response.message else { panic!() };
    assert_eq!(r.t, "ping");
    assert_eq!(r.d.unwrap()["echo"]["x"], 1);

    let ServerMessage::UserInput(heard) = server(6).message else { panic!() };
    assert_eq!((heard.input_type, heard.is_final), (InputType::Transcription, false));
    assert_eq!(heard.timestamp.as_deref(), Some("…Z"));

    let ServerMessage::UserTranscription(t) = server(7).message else { panic!() };
    assert!(t.is_final);
    assert_eq!(t.user_id.as_deref(), Some("peer-user"));

    let ServerMessage::BotOutput(out) = server(12).message else { panic!() };
    assert_eq!(out.kind(), Some("sentence"));
    assert_eq!(
        (out.segment_id, out.spoken, out.will_be_spoken),
        (Some(66), Some(false), Some(false))
    );
    assert_eq!(out.spoken_status, Some(SpokenStatus::New));

    let ClientMessage::SendText(text) = client(13).message else { panic!() };
    let options = text.options.unwrap();
    assert_eq!((options.run_immediately, options.audio_response), (Some(true), Some(false)));

    let ServerMessage::UserInput(chat) = server(15).message else { panic!() };
    assert_eq!(chat.input_type, InputType::Chat);
    assert_eq!(chat.msg_id.as_deref(), Some("st-1"), "chat user-input carries the send-text id");

    let ServerMessage::LlmFunctionCallInProgress(call) = server(17).message else { panic!() };
    let ClientMessage::LlmFunctionCallResult(result) = client(18).message else { panic!() };
    assert_eq!(result.tool_call_id, call.tool_call_id);
    assert_eq!(Some(result.arguments), call.arguments);

    let ServerMessage::LlmFunctionCallStopped(stopped) = server(19).message else { panic!() };
    assert!(!stopped.cancelled);
    assert_eq!(stopped.result, Some(result.result));

    let unsupported = server(21);
    assert_eq!(unsupported.id.as_deref(), Some("atc-1"));
    let ServerMessage::ErrorResponse(e) = unsupported.message else { panic!() };
    assert_eq!(e.error, "Unsupported type append-to-context");

    let ServerMessage::Error(e) = server(22).message else { panic!() };
    assert_eq!((e.error.as_str(), e.fatal), ("boom", false));
}

#[test]
fn ui_commands_decode_to_standard_commands() {
    let mut standard = Vec::new();
    for example in load("server.txt") {
        if let ServerMessage::UiCommand(command) =
            ServerEnvelope::parse(&example.wire).unwrap().message
        {
            standard.push((command.command.clone(), command.standard()));
        }
    }
    let names: Vec<(&str, String)> = standard
        .iter()
        .map(|(name, decoded)| {
            (name.as_str(), decoded.as_ref().map(variant_name).unwrap_or_default())
        })
        .collect();
    assert_eq!(
        names,
        [
            ("toast", "Toast".to_owned()),
            ("navigate", "Navigate".to_owned()),
            ("scroll_to", "ScrollTo".to_owned()),
            ("highlight", "Highlight".to_owned()),
            ("focus", "Focus".to_owned()),
            ("click", "Click".to_owned()),
            ("set_input_value", "SetInputValue".to_owned()),
            ("select_text", "SelectText".to_owned()),
            ("confetti", String::new()),
        ]
    );
    let Some(StandardUiCommand::Toast(toast)) = &standard[0].1 else { panic!() };
    assert_eq!((toast.title.as_str(), toast.duration_ms), ("Order placed", Some(4000)));
    let Some(StandardUiCommand::SetInputValue(set)) = &standard[6].1 else { panic!() };
    assert_eq!((set.node_ref.as_deref(), set.replace), (Some("e9"), Some(true)));
}

#[test]
fn ui_job_groups_decode_known_kinds_and_keep_others() {
    let mut kinds = Vec::new();
    for example in load("server.txt") {
        if let ServerMessage::UiJobGroup(group) =
            ServerEnvelope::parse(&example.wire).unwrap().message
        {
            kinds.push(match group {
                UiJobGroup::Known(event) => variant_name(&event),
                UiJobGroup::Other(value) => format!("Other:{}", value["kind"].as_str().unwrap()),
            });
        }
    }
    assert_eq!(
        kinds,
        ["GroupStarted", "JobUpdate", "JobCompleted", "GroupCompleted", "Other:group_paused"]
    );
    assert_eq!(
        JobGroupEvent::KINDS,
        ["group_started", "job_update", "job_completed", "group_completed"]
    );
}

#[test]
fn unknown_types_keep_type_and_data_losslessly() {
    for example in load("server.txt").into_iter().filter(|e| e.variant == "Unknown") {
        let wire = common::json(&example.wire);
        let ServerMessage::Unknown(unknown) = ServerEnvelope::parse(&example.wire).unwrap().message
        else {
            panic!("{}", example.at)
        };
        assert_eq!(unknown.message_type, wire["type"].as_str().unwrap());
        assert_eq!(unknown.data.map(common::normalise), wire.get("data").cloned());
    }
    for example in load("client.txt").into_iter().filter(|e| e.variant == "Unknown") {
        let ClientMessage::Unknown(unknown) = ClientEnvelope::parse(&example.wire).unwrap().message
        else {
            panic!("{}", example.at)
        };
        assert_eq!(unknown.message_type, common::json(&example.wire)["type"].as_str().unwrap());
    }
}

#[test]
fn corpus_round_trips_without_nulls_except_inside_free_form_data() {
    // Only free-form JSON (server-message data, `d`, results, UI payloads) may hold a null;
    // the corpus has exactly one, inside a server-message.
    for example in load("server.txt").into_iter().chain(load("client.txt")) {
        if example.wire.contains("null") {
            assert_eq!(example.variant, "ServerMessage", "{}", example.at);
            continue;
        }
        let encoded = match ServerEnvelope::parse(&example.wire) {
            Ok(server) if example.at.starts_with("server") => server.to_json().unwrap(),
            _ => ClientEnvelope::parse(&example.wire).unwrap().to_json().unwrap(),
        };
        assert_no_null(&encoded);
    }
}
