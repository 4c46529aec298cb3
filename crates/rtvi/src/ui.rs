//! The UI agent protocol (RTVI 1.3.0+): commands and job groups from the bot, events,
//! snapshots and cancellations from the client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `ui-command` data: a server-driven UI command.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UiCommand {
    /// The command name, for example `toast` or `navigate`.
    pub command: String,
    /// The command's arguments.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub payload: Option<Value>,
}

impl UiCommand {
    /// Decodes one of the standard commands; `None` for custom commands or payloads that do
    /// not match the standard shape.
    pub fn standard(&self) -> Option<StandardUiCommand> {
        let payload = self.payload.clone().unwrap_or(Value::Object(Map::new()));
        let tagged = serde_json::json!({ "command": self.command, "payload": payload });
        serde_json::from_value(tagged).ok()
    }
}

/// The standard UI commands the server's UIWorker and client-react know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "payload", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StandardUiCommand {
    /// Show a notification.
    Toast(Toast),
    /// Go to a view.
    Navigate(Navigate),
    /// Scroll an element into view.
    ScrollTo(Target),
    /// Highlight an element.
    Highlight(Target),
    /// Focus an element.
    Focus(Target),
    /// Click an element.
    Click(Target),
    /// Set an input's value.
    SetInputValue(SetInputValue),
    /// Select text in an element.
    SelectText(SelectText),
}

/// `toast` arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Toast {
    /// Title.
    pub title: String,
    /// Subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// Body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Image to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// How long to show it, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// `navigate` arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Navigate {
    /// The view.
    pub view: String,
    /// View parameters.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub params: Option<Value>,
}

/// An element target: by snapshot `ref` or by id, plus command-specific options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Target {
    /// Snapshot node reference.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub node_ref: Option<String>,
    /// Element id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Scroll behaviour (`scroll_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    /// Highlight duration, ms (`highlight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// `set_input_value` arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SetInputValue {
    /// The value.
    pub value: String,
    /// Snapshot node reference.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub node_ref: Option<String>,
    /// Element id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Replace the current value (default) rather than append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
}

/// `select_text` arguments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SelectText {
    /// Snapshot node reference.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub node_ref: Option<String>,
    /// Element id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// Selection start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_offset: Option<u64>,
    /// Selection end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<u64>,
}

/// `ui-job-group` data: a known job-group event, or an unknown `kind` kept as JSON.
///
/// The data of a `ui-job-group` message must be a JSON object. One whose `kind` is a known
/// kind must have that kind's shape (decoding fails otherwise); one of any other `kind`, or
/// without one, is kept in [`UiJobGroup::Other`]. `Other(Value::Null)` stands for a message
/// without data (and is encoded without it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UiJobGroup {
    /// A known event.
    Known(JobGroupEvent),
    /// An event of a kind this crate does not know. Do not put a known `kind` here: it
    /// would decode as [`UiJobGroup::Known`].
    Other(Value),
}

impl<'de> Deserialize<'de> for UiJobGroup {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let kind = value.get("kind").and_then(Value::as_str);
        if kind.is_some_and(|kind| JobGroupEvent::KINDS.contains(&kind)) {
            serde_json::from_value(value).map(UiJobGroup::Known).map_err(serde::de::Error::custom)
        } else {
            Ok(UiJobGroup::Other(value))
        }
    }
}

/// The job-group events, discriminated on `kind`. Times `at` are epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobGroupEvent {
    /// A group of jobs started.
    GroupStarted {
        /// Group id.
        job_id: String,
        /// The workers involved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workers: Option<Vec<String>>,
        /// A label for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// The client may cancel the group.
        #[serde(default = "default_true")]
        cancellable: bool,
        /// Epoch ms.
        at: i64,
    },
    /// A worker reported progress.
    JobUpdate {
        /// Group id.
        job_id: String,
        /// The worker.
        worker_name: String,
        /// Progress data.
        #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
        data: Option<Value>,
        /// Epoch ms.
        at: i64,
    },
    /// A worker finished.
    JobCompleted {
        /// Group id.
        job_id: String,
        /// The worker.
        worker_name: String,
        /// Completion status.
        status: String,
        /// The worker's response.
        #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
        response: Option<Value>,
        /// Epoch ms.
        at: i64,
    },
    /// The whole group finished.
    GroupCompleted {
        /// Group id.
        job_id: String,
        /// Epoch ms.
        at: i64,
    },
}

impl JobGroupEvent {
    /// The `kind` strings of the known events.
    pub const KINDS: [&'static str; 4] =
        ["group_started", "job_update", "job_completed", "group_completed"];
}

fn default_true() -> bool {
    true
}

/// `ui-event` data: a UI event from the client.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UiEvent {
    /// Event name.
    pub event: String,
    /// Event data.
    #[serde(default, skip_serializing_if = "crate::envelope::is_absent")]
    pub payload: Option<Value>,
}

/// `ui-snapshot` data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UiSnapshot {
    /// The accessibility tree.
    pub tree: A11ySnapshot,
}

/// An accessibility-tree snapshot of the client's UI.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct A11ySnapshot {
    /// The root node.
    pub root: A11yNode,
    /// Capture time, epoch ms.
    pub captured_at: i64,
    /// The current text selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<A11ySelection>,
}

/// One node of an accessibility tree; extra keys are allowed and kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct A11yNode {
    /// Node reference.
    #[serde(rename = "ref")]
    pub node_ref: String,
    /// ARIA role.
    pub role: String,
    /// Accessible name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// States such as `focused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Vec<String>>,
    /// Heading level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i64>,
    /// Table column count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colcount: Option<i64>,
    /// Table row count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rowcount: Option<i64>,
    /// Child nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<A11yNode>>,
    /// Other keys.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A text selection in a snapshot.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct A11ySelection {
    /// Node reference.
    #[serde(rename = "ref")]
    pub node_ref: String,
    /// Selected text.
    pub text: String,
    /// Selection start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_offset: Option<u64>,
    /// Selection end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<u64>,
}

/// `ui-cancel-job-group` data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UiCancelJobGroup {
    /// Group id.
    pub job_id: String,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
