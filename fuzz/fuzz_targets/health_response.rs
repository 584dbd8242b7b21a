//! The health probe's response parser (`health::ResponseHead`), fed the bytes a server sends.
//! The verdict must not depend on how TCP cuts the stream: the whole input at once, byte by byte
//! and in chunks of 7 give the same result. A status returned is a final one (not 1xx interim),
//! a three-digit code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vardr_init::health::{ResponseHead, Status};

type Outcome = Result<Option<Status>, String>;

/// Feeds `data` in `chunk`-byte reads and stops where the probe stops: at a status or an error.
fn feed(data: &[u8], chunk: usize) -> Outcome {
    let mut head = ResponseHead::default();
    for piece in data.chunks(chunk) {
        match head.push(piece) {
            Ok(None) => {}
            other => return other.map_err(|e| e.to_string()),
        }
    }
    Ok(None)
}

fuzz_target!(|data: &[u8]| {
    let whole = feed(data, data.len().max(1));
    if let Ok(Some(status)) = &whole {
        // httparse takes any three digits, `000` included: a status under 200 that is not 101 is
        // never success, and only interim ones are skipped.
        assert!(status.code <= 999, "{status:?}");
        assert!(
            !(100..200).contains(&status.code) || status.code == 101,
            "interim: {status:?}"
        );
        assert!(!status.reason.contains(['\r', '\n']), "{status:?}");
    }
    assert_eq!(feed(data, 1), whole, "byte by byte");
    assert_eq!(feed(data, 7), whole, "in chunks of 7");
});
