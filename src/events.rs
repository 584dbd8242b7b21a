//! The contract's JSON events, serialised one way: each event is a struct tagged with its
//! `type` (serde's internal tagging writes the tag first) and written with serde_json as one line.
//! The events: `log` ([`LogEvent`]), `certificate_import_summary`
//! ([`crate::certs::summary::SummaryEvent`]) and the dry-run `plan` ([`crate::plan`]).

use std::time::SystemTime;

use serde::Serialize;

/// The event as one line of JSON, without the newline.
pub fn line<T: Serialize>(event: &T) -> String {
    // Our events hold strings, numbers and lossy paths only: serialising cannot fail. Should it
    // ever, an empty line is logged rather than a panic in PID 1.
    serde_json::to_string(event).unwrap_or_default()
}

/// RFC 3339 UTC, to the second: `2024-01-15T10:30:00Z`.
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `{"type":"log","timestamp":"...","level":"INFO","message":"..."}`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "log")]
pub struct LogEvent<'a> {
    pub timestamp: String,
    pub level: &'static str,
    pub message: &'a str,
}
