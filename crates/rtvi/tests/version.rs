//! Version rules: `major.minor.patch` parsing, compatibility, DTMF format and `send-file`
//! support by version, and DTMF key validation.

use pipecat_rtvi::{
    CLIENT_PROTOCOL_VERSION, ClientEnvelope, ClientMessage, Compatibility, Dtmf, DtmfFormat,
    DtmfKey, LEGACY_MAJOR, ProtocolVersion, RtviError, SEND_FILE_MIN_VERSION, dtmf_messages,
};

fn v(text: &str) -> Result<ProtocolVersion, RtviError> {
    text.parse()
}

#[test]
fn parses_major_minor_patch() {
    assert_eq!(v("2.2.0").unwrap(), ProtocolVersion::new(2, 2, 0));
    assert_eq!(v("1.0.0").unwrap(), ProtocolVersion::new(1, 0, 0));
    assert_eq!(v("0.3.0").unwrap(), ProtocolVersion::new(0, 3, 0));
    assert_eq!(v("10.20.30").unwrap(), ProtocolVersion::new(10, 20, 30));
    assert_eq!(v("02.01.00").unwrap(), ProtocolVersion::new(2, 1, 0), "leading zeros are digits");
    let max = format!("{0}.{0}.{0}", u64::MAX);
    assert_eq!(v(&max).unwrap(), ProtocolVersion::new(u64::MAX, u64::MAX, u64::MAX));
    for version in [
        ProtocolVersion::new(2, 2, 0),
        ProtocolVersion::new(0, 0, 0),
        ProtocolVersion::new(7, 0, 12),
    ] {
        assert_eq!(v(&version.to_string()).unwrap(), version, "Display round-trips");
    }
    assert_eq!(CLIENT_PROTOCOL_VERSION.to_string(), "2.2.0");
}

#[test]
fn rejects_everything_else_with_invalid_version() {
    let too_big = format!("{}.0.0", u128::from(u64::MAX) + 1);
    let huge = format!("2.{}.0", "9".repeat(40));
    let cases = [
        "2.1",
        "2.1.0.1",
        "",
        "a.b.c",
        "-1.0.0",
        "+1.0.0",
        "2",
        "2.",
        "2.1.",
        ".2.1",
        "2..1",
        "2.1.0.",
        "1.0.0-beta",
        "v2.1.0",
        "2.1.x",
        "2 .1.0",
        "2. 1.0",
        "2.1.0 1",
        "1_0.0.0",
        "٢.١.٠",
        "2,1,0",
        "0x2.1.0",
        "2.1.-0",
        "2.1.+0",
        &too_big,
        &huge,
    ];
    for text in cases {
        match v(text) {
            Err(RtviError::InvalidVersion(echo)) => assert_eq!(echo, text),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn surrounding_whitespace_is_tolerated() {
    // Lenient in: a stray newline around an otherwise exact version is accepted.
    assert_eq!(v(" 2.2.0\n").unwrap(), ProtocolVersion::new(2, 2, 0));
}

#[test]
fn orders_numerically() {
    assert!(v("2.10.0").unwrap() > v("2.9.9").unwrap());
    assert!(v("10.0.0").unwrap() > v("9.99.99").unwrap());
    assert!(v("2.0.1").unwrap() < v("2.1.0").unwrap());
}

#[test]
fn compatibility_two_is_compatible_one_is_legacy_others_incompatible() {
    let cases = [
        ("2.0.0", Compatibility::Compatible),
        ("2.1.0", Compatibility::Compatible),
        ("2.2.0", Compatibility::Compatible),
        ("2.3.0", Compatibility::Compatible),
        ("2.99.7", Compatibility::Compatible),
        ("1.0.0", Compatibility::Legacy),
        ("1.2.0", Compatibility::Legacy),
        ("1.4.0", Compatibility::Legacy),
        ("0.3.0", Compatibility::Incompatible),
        ("0.0.1", Compatibility::Incompatible),
        ("3.0.0", Compatibility::Incompatible),
        ("18446744073709551615.0.0", Compatibility::Incompatible),
    ];
    for (text, expected) in cases {
        let compat = v(text).unwrap().compatibility();
        assert_eq!(compat, expected, "{text}");
        assert_eq!(compat.is_compatible(), expected == Compatibility::Compatible);
    }
    assert_eq!(LEGACY_MAJOR, 1);
}

#[test]
fn dtmf_format_by_version() {
    let cases = [
        ("0.0.0", DtmfFormat::Unsupported),
        ("1.4.0", DtmfFormat::Unsupported),
        ("1.99.99", DtmfFormat::Unsupported),
        ("2.0.0", DtmfFormat::PerKey),
        ("2.0.7", DtmfFormat::PerKey),
        ("2.1.0", DtmfFormat::Batched),
        ("2.1.3", DtmfFormat::Batched),
        ("2.2.0", DtmfFormat::Batched),
        ("3.0.0", DtmfFormat::Batched),
    ];
    for (text, expected) in cases {
        assert_eq!(v(text).unwrap().dtmf_format(), expected, "{text}");
    }
}

#[test]
fn send_file_needs_2_2_0() {
    assert_eq!(SEND_FILE_MIN_VERSION, ProtocolVersion::new(2, 2, 0));
    for text in ["2.2.0", "2.2.1", "2.3.0", "3.0.0"] {
        assert!(v(text).unwrap().supports_send_file(), "{text}");
        assert!(v(text).unwrap().check_send_file().is_ok(), "{text}");
    }
    // pipecat-ai 1.12 (2.1.0), 1.3 (1.4.0) and older answer "Unsupported type send-file".
    for text in ["2.1.0", "2.1.9", "2.0.0", "1.4.0", "0.3.0"] {
        assert!(!v(text).unwrap().supports_send_file(), "{text}");
        match v(text).unwrap().check_send_file() {
            Err(e @ RtviError::SendFileUnsupported { .. }) => {
                assert!(e.to_string().contains(text), "{e}");
                assert!(e.to_string().contains("2.2.0"), "{e}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn dtmf_messages_follow_the_bot_version() {
    let batched = dtmf_messages(ProtocolVersion::new(2, 1, 0), "12#*0").unwrap();
    assert_eq!(batched.len(), 1);
    let json = ClientEnvelope::with_id("d", batched[0].clone()).to_json().unwrap();
    assert_eq!(
        json,
        r##"{"label":"rtvi-ai","type":"dtmf","id":"d","data":{"buttons":["1","2","#","*","0"]}}"##
    );

    let per_key = dtmf_messages(ProtocolVersion::new(2, 0, 0), "9*#").unwrap();
    let encoded: Vec<String> =
        per_key.into_iter().map(|m| ClientEnvelope::with_id("d", m).to_json().unwrap()).collect();
    assert_eq!(
        encoded,
        [
            r#"{"label":"rtvi-ai","type":"dtmf","id":"d","data":{"button":"9"}}"#,
            r#"{"label":"rtvi-ai","type":"dtmf","id":"d","data":{"button":"*"}}"#,
            r##"{"label":"rtvi-ai","type":"dtmf","id":"d","data":{"button":"#"}}"##,
        ]
    );

    for version in [ProtocolVersion::new(1, 2, 0), ProtocolVersion::new(0, 3, 0)] {
        match dtmf_messages(version, "1") {
            Err(RtviError::DtmfUnsupported { version: echo }) => {
                assert_eq!(echo, version.to_string())
            }
            other => panic!("{other:?}"),
        }
    }
    // Bad keys are reported before the version is looked at.
    assert!(matches!(
        dtmf_messages(ProtocolVersion::new(1, 0, 0), "A"),
        Err(RtviError::InvalidDtmf(_))
    ));
}

#[test]
fn dtmf_key_validation() {
    let valid: Vec<char> = "0123456789*#".chars().collect();
    for c in &valid {
        assert_eq!(DtmfKey::new(*c).unwrap().as_char(), *c);
        assert_eq!(DtmfKey::new(*c).unwrap().to_string(), c.to_string());
    }
    for c in ['A', 'a', 'D', ' ', '+', '-', 'w', ',', '٣', '０', '\0', '🙂'] {
        assert_eq!(DtmfKey::new(c), None, "{c:?}");
    }
    assert_eq!(DtmfKey::parse_sequence("0123456789*#").unwrap().len(), 12);
    for bad in ["", "12A", " 1", "1 ", "1,2", "#\n", "１"] {
        match DtmfKey::parse_sequence(bad) {
            Err(RtviError::InvalidDtmf(echo)) => assert_eq!(echo, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn dtmf_decoding_validates_keys() {
    let parse = |data: &str| {
        ClientEnvelope::parse(&format!(
            r#"{{"label":"rtvi-ai","type":"dtmf","id":"d","data":{data}}}"#
        ))
    };
    let ClientMessage::Dtmf(Dtmf::Buttons { buttons }) =
        parse(r##"{"buttons":["1","#"]}"##).unwrap().message
    else {
        panic!()
    };
    assert_eq!(buttons.iter().map(|k| k.as_char()).collect::<String>(), "1#");
    let ClientMessage::Dtmf(Dtmf::Button { button }) = parse(r#"{"button":"0"}"#).unwrap().message
    else {
        panic!()
    };
    assert_eq!(button.as_char(), '0');
    for bad in [
        r#"{"buttons":["12"]}"#,
        r#"{"buttons":["A"]}"#,
        r#"{"buttons":[1]}"#,
        r#"{"buttons":"12"}"#,
        r#"{"button":""}"#,
        r#"{"button":"**"}"#,
        r#"{"button":5}"#,
        r#"{}"#,
        r#"["1"]"#,
    ] {
        assert!(matches!(parse(bad), Err(RtviError::InvalidData { .. })), "{bad}");
    }
}
