//! `metrics` data: per-processor timings and usage, each list optional.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `metrics` data. Every list is optional; kinds this crate does not know stay in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Time to first byte, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb: Option<Vec<MetricValue>>,
    /// Processing time, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<Vec<MetricValue>>,
    /// Time to first audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfa: Option<Vec<TtfaMetric>>,
    /// Time to first answer token (thinking models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfat: Option<Vec<TtfatMetric>>,
    /// LLM token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<TokenUsage>>,
    /// STT usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stt_usage: Option<Vec<SttUsage>>,
    /// TTS characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<Vec<CharactersMetric>>,
    /// Metric kinds this crate does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A timing of one processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricValue {
    /// The processor, for example `OpenAILLMService#0`.
    pub processor: String,
    /// The model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The value in seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub value: f64,
}

/// Time-to-first-audio of one processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TtfaMetric {
    /// The processor.
    pub processor: String,
    /// The model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Time to first audio, seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub ttfa: f64,
    /// Time to first byte, seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub ttfb: f64,
    /// Leading silence, seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub leading_silence: f64,
}

/// Time-to-first-answer-token of one processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TtfatMetric {
    /// The processor.
    pub processor: String,
    /// The model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Time to first answer token, seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub ttfat: f64,
    /// Time to first byte, seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub ttfb: f64,
    /// Thinking time, seconds.
    #[serde(serialize_with = "crate::finite::f64")]
    pub thinking_time: f64,
}

/// LLM token usage (the server sends no processor key here).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// Cache, reasoning and audio token counts, and anything newer.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// STT usage of one processor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SttUsage {
    /// The processor.
    pub processor: String,
    /// The model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The usage.
    pub value: SttUsageValue,
}

/// The usage figures of [`SttUsage`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SttUsageValue {
    /// Seconds of audio transcribed.
    #[serde(serialize_with = "crate::finite::f64")]
    pub audio_seconds: f64,
}

/// TTS characters of one processor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CharactersMetric {
    /// The processor.
    pub processor: String,
    /// The model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Characters synthesised.
    pub value: u64,
}
