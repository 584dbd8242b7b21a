//! The contract's JSON events, serialised one way: each event is a struct tagged with its
//! `type` (serde's internal tagging writes the tag first) and written with serde_json as one line.
//! The events: `log` ([`LogEvent`]), `certificate_import_summary`
//! ([`crate::certs::summary::SummaryEvent`]) and the dry-run `plan` ([`crate::plan`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The event as one line of JSON, without the newline.
pub fn line<T: Serialize>(event: &T) -> String {
    // Our events hold strings, numbers and lossy paths only: serialising cannot fail. Should it
    // ever, an empty line is logged rather than a panic in PID 1.
    serde_json::to_string(event).unwrap_or_default()
}

/// RFC 3339 UTC, to the second: `2024-01-15T10:30:00Z`.
pub fn timestamp(time: SystemTime) -> String {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => date(i64::try_from(since.as_secs()).unwrap_or(i64::MAX)),
        Err(before) => date(-i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX)),
    }
}

/// Unix seconds in RFC 3339 UTC. humantime panics before 1970 and fails from year 10000 on (a
/// clock set wrong, a certificate's odd date): those are written as plain Unix seconds.
pub fn date(unix_seconds: i64) -> String {
    match u64::try_from(unix_seconds) {
        Ok(secs) if secs < 253_402_300_800 => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
        }
        _ => format!("@{unix_seconds} (Unix seconds)"),
    }
}

/// A duration in seconds as people write it: `10`, `2.5`, `0.001` (decimal digits, no float
/// formatting: the exact value, and no float formatter in the binary).
pub fn seconds(duration: Duration) -> String {
    let whole = duration.as_secs();
    match duration.subsec_nanos() {
        0 => whole.to_string(),
        nanos => {
            let fraction = format!("{nanos:09}");
            format!("{whole}.{}", fraction.trim_end_matches('0'))
        }
    }
}

/// `{"type":"log","timestamp":"...","level":"INFO","message":"..."}`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "log")]
pub struct LogEvent<'a> {
    pub timestamp: String,
    pub level: &'static str,
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_written_as_decimals() {
        assert_eq!(seconds(Duration::from_secs(10)), "10");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5");
        assert_eq!(seconds(Duration::from_nanos(1_000_000_001)), "1.000000001");
        assert_eq!(seconds(Duration::ZERO), "0");
    }

    #[test]
    fn dates_out_of_humantime_range_do_not_panic() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_705_314_600), "2024-01-15T10:30:00Z");
        assert_eq!(date(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(date(253_402_300_800), "@253402300800 (Unix seconds)");
        assert_eq!(date(-1), "@-1 (Unix seconds)");
        assert_eq!(
            timestamp(UNIX_EPOCH - Duration::from_secs(5)),
            "@-5 (Unix seconds)"
        );
    }
}
