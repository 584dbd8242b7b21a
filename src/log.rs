//! Log lines on stderr, in the contract's two formats.
//!
//! Text: `[Vardr] message` (warnings and errors carry `WARN:` / `ERROR:`, debug lines `DEBUG:`).
//! JSON: `{"type":"log","timestamp":"2024-01-15T10:30:00Z","level":"INFO","message":"..."}`, one
//! object per line, RFC 3339 UTC timestamps to the second.
//!
//! The crate logs through `tracing`'s macros; this module is the subscriber behind them. It is a
//! plain `Subscriber` rather than `tracing-subscriber`'s registry: vardr-init is single-threaded and
//! uses no spans, so a registry would only add size to PID 1. Each line is written with a single
//! `write` so it never interleaves with the child's output on the same stderr, and write errors
//! (a closed stderr) are ignored: losing a log line must never take the service down.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogSettings;

static SETTINGS: OnceLock<LogSettings> = OnceLock::new();

/// Installs the global logger. Later calls are ignored (tests may call it more than once).
pub fn init(settings: LogSettings) {
    let _ = SETTINGS.set(settings);
    let _ = tracing::subscriber::set_global_default(Logger { settings });
}

/// Whether logs are JSON lines (events other than `log` are then written with [`write_line`]).
pub fn json() -> bool {
    SETTINGS.get().is_some_and(|s| s.json)
}

/// Writes one line (a JSON event) on stderr in a single write, like every log line.
pub fn write_line(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&bytes);
}

struct Logger {
    settings: LogSettings,
}

impl Subscriber for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.settings.level
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.settings.level.into())
    }

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = *event.metadata().level();
        let line = if self.settings.json {
            json_line(level, SystemTime::now(), &fields.message)
        } else {
            text_line(level, &fields.message)
        };
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    // No spans: ids are never looked up, so one constant id is enough.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The event's message, with any structured fields appended as ` key=value`.
#[derive(Default)]
struct Fields {
    message: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.message, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.message, " {}={value}", field.name());
        }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

fn text_line(level: Level, message: &str) -> String {
    // A message is one line; a stray newline (from a file name, say) must not forge a second.
    let message = message.replace(['\n', '\r'], " ");
    match level {
        Level::INFO => format!("[Vardr] {message}\n"),
        _ => format!("[Vardr] {}: {message}\n", level_name(level)),
    }
}

fn json_line(level: Level, time: SystemTime, message: &str) -> String {
    // Written by hand, not through a map, to keep the contract's key order; serde_json escapes.
    let timestamp = humantime::format_rfc3339_seconds(time);
    format!(
        "{{\"type\":\"log\",\"timestamp\":\"{timestamp}\",\"level\":\"{}\",\"message\":{}}}\n",
        level_name(level),
        serde_json::Value::from(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_line_matches_the_contract() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_705_314_600);
        let line = json_line(Level::INFO, time, "say \"hi\"\nnext\u{1b}");
        assert_eq!(
            line,
            "{\"type\":\"log\",\"timestamp\":\"2024-01-15T10:30:00Z\",\"level\":\"INFO\",\
             \"message\":\"say \\\"hi\\\"\\nnext\\u001b\"}\n"
        );
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["message"], "say \"hi\"\nnext\u{1b}");
    }

    #[test]
    fn text_line_is_one_line_with_prefix() {
        assert_eq!(text_line(Level::INFO, "started"), "[Vardr] started\n");
        assert_eq!(text_line(Level::WARN, "a\nb"), "[Vardr] WARN: a b\n");
    }
}
