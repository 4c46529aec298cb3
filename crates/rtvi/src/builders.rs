//! Constructors for the client messages an SDK sends, each with a fresh id.

use serde_json::Value;

use crate::{
    About, CLIENT_PROTOCOL_VERSION, ClientEnvelope, ClientMessage, ClientMessageData, ClientReady,
    DisconnectBot, FunctionCallResult, SendText, SendTextOptions, UiCancelJobGroup, UiEvent,
};

impl ClientEnvelope {
    /// `client-ready` declaring [`CLIENT_PROTOCOL_VERSION`] and [`About::this_library`].
    pub fn client_ready() -> Self {
        Self::client_ready_with(About::this_library())
    }

    /// `client-ready` with a custom `about` (for an app that wants to name itself).
    pub fn client_ready_with(about: About) -> Self {
        Self::new(ClientMessage::ClientReady(ClientReady {
            version: CLIENT_PROTOCOL_VERSION.to_string(),
            about,
        }))
    }

    /// `client-message` `{t, d}`.
    pub fn client_message(t: impl Into<String>, d: Option<Value>) -> Self {
        Self::new(ClientMessage::ClientMessage(ClientMessageData { t: t.into(), d }))
    }

    /// `send-text`; `None` options leave the server defaults (run now, speak the reply).
    pub fn send_text(content: impl Into<String>, options: Option<SendTextOptions>) -> Self {
        Self::new(ClientMessage::SendText(SendText { content: content.into(), options }))
    }

    /// `disconnect-bot`.
    pub fn disconnect_bot() -> Self {
        Self::new(ClientMessage::DisconnectBot(DisconnectBot {}))
    }

    /// `llm-function-call-result`.
    pub fn function_call_result(
        function_name: impl Into<String>,
        tool_call_id: impl Into<String>,
        arguments: Value,
        result: Value,
    ) -> Self {
        Self::new(ClientMessage::LlmFunctionCallResult(FunctionCallResult {
            function_name: function_name.into(),
            tool_call_id: tool_call_id.into(),
            arguments,
            result,
        }))
    }

    /// `ui-event`.
    pub fn ui_event(event: impl Into<String>, payload: Option<Value>) -> Self {
        Self::new(ClientMessage::UiEvent(UiEvent { event: event.into(), payload }))
    }

    /// `ui-cancel-job-group`.
    pub fn cancel_job_group(job_id: impl Into<String>, reason: Option<String>) -> Self {
        Self::new(ClientMessage::UiCancelJobGroup(UiCancelJobGroup {
            job_id: job_id.into(),
            reason,
        }))
    }
}

impl crate::Compatibility {
    /// `true` for [`crate::Compatibility::Compatible`].
    pub fn is_compatible(self) -> bool {
        self == crate::Compatibility::Compatible
    }
}
