//! Malformed things the bot sends on purpose, to test how a client copes.

/// Malformed things the bot can send, to test how a client copes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Garbage {
    /// WebSocket: a binary message that is not a protobuf `pipecat.Frame`.
    /// SmallWebRTC: a binary data-channel message that is not UTF-8.
    NotProtobuf,
    /// WebSocket: a text WebSocket message (the protocol is binary only).
    /// SmallWebRTC: a text message that is neither JSON nor a keepalive.
    TextMessage,
    /// WebSocket: a `pipecat.Frame` with no frame set. SmallWebRTC: the JSON `{}`.
    EmptyFrame,
    /// An RTVI-channel message that is not JSON.
    NotJson,
    /// JSON with a label other than `rtvi-ai`.
    WrongLabel,
    /// An RTVI message of a type no client knows.
    UnknownType,
    /// A known RTVI type (`server-response`) with data of the wrong shape.
    BadData,
    /// WebSocket: an audio frame with an odd byte count and a sample rate of 0.
    /// SmallWebRTC: not sent (media garbage is not possible over SRTP).
    BadAudio,
}

impl Garbage {
    /// Every kind of garbage, in the order
    /// [`SessionHandle::send_all_garbage`](super::SessionHandle::send_all_garbage) sends them.
    pub const ALL: &'static [Garbage] = &[
        Garbage::NotProtobuf,
        Garbage::TextMessage,
        Garbage::EmptyFrame,
        Garbage::NotJson,
        Garbage::WrongLabel,
        Garbage::UnknownType,
        Garbage::BadData,
        Garbage::BadAudio,
    ];

    /// A short name, used in the recorder's sent log (`garbage/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Garbage::NotProtobuf => "not-protobuf",
            Garbage::TextMessage => "text-message",
            Garbage::EmptyFrame => "empty-frame",
            Garbage::NotJson => "not-json",
            Garbage::WrongLabel => "wrong-label",
            Garbage::UnknownType => "unknown-type",
            Garbage::BadData => "bad-data",
            Garbage::BadAudio => "bad-audio",
        }
    }

    /// The text these RTVI-channel kinds carry (the same on both transports).
    pub(crate) fn rtvi_text(self) -> Option<&'static str> {
        match self {
            Garbage::NotJson => Some("{this is not json"),
            Garbage::WrongLabel => {
                Some(r#"{"label":"not-rtvi","type":"server-message","data":{"garbage":true}}"#)
            }
            Garbage::UnknownType => {
                Some(r#"{"label":"rtvi-ai","type":"testkit-unknown-type","data":{"x":[1,2,3]}}"#)
            }
            Garbage::BadData => Some(
                r#"{"label":"rtvi-ai","type":"server-response","id":"garbage","data":[1,2,3]}"#,
            ),
            _ => None,
        }
    }
}
