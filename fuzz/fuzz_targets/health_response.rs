//! The health probe's response parser (`health::parse_response`), fed the bytes a server sends.
//! The verdict must not depend on how TCP cuts the stream: the whole input at once, byte by byte
//! and in chunks of 7 give the same result. A status returned is a final one (not 1xx interim),
//! a three-digit code, and its text is printable ASCII (it ends up on a terminal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vardr_init::health::{Status, parse_response};

type Outcome = Result<Option<Status>, String>;

/// Parses `data` as it would arrive in `chunk`-byte reads and stops where the probe stops: at a
/// status or an error.
fn feed(data: &[u8], chunk: usize) -> Outcome {
    let mut end = 0;
    for piece in data.chunks(chunk) {
        end += piece.len();
        match parse_response(&data[..end]) {
            Ok(None) => {}
            other => return other,
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let whole = feed(data, data.len().max(1));
    if let Ok(Some(status)) = &whole {
        // Any three digits, `000` included: a status under 200 that is not 101 is never
        // success, and only interim ones are skipped.
        assert!(status.code <= 999, "{status:?}");
        assert!(
            !(100..200).contains(&status.code) || status.code == 101,
            "interim: {status:?}"
        );
        let printable = |text: &str| text.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        assert!(printable(&status.reason), "{status:?}");
        assert!(status.location.as_deref().is_none_or(printable), "{status:?}");
    }
    if let Err(error) = &whole {
        assert!(!error.contains(['\r', '\n']), "{error:?}");
    }
    assert_eq!(feed(data, 1), whole, "byte by byte");
    assert_eq!(feed(data, 7), whole, "in chunks of 7");
});
