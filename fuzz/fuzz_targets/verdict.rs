//! A file's bytes -> verdict (`certs::verdict::judge`), the code that meets whatever is mounted
//! at /certs. Beyond "never panics": an accepted file holds no private key and only CAs valid
//! now, each of which is accepted again on its own, unchanged; a file with a private key anywhere
//! is rejected for that reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use vardr_init::certs::rules::Profile;
use vardr_init::certs::verdict::{Reason, Verdict, has_private_key, judge};

/// 2027-01-15: inside the validity of the seed corpus's CAs (2020 to 2040), fixed so that a
/// crash reproduces whatever the day.
const NOW: i64 = 1_800_000_000;

/// The strictest rules (Python 3.13), and the most lenient (any OpenSSL client) on every input.
const PROFILES: [Profile; 2] = [Profile::Python { minor: 13 }, Profile::OpenSsl];

fuzz_target!(|data: &[u8]| {
    for profile in PROFILES {
        check(data, profile);
    }
});

fn check(data: &[u8], profile: Profile) {
    let verdict = judge(data, NOW, profile);
    let key = has_private_key(data);
    match verdict {
        Verdict::Accepted(cas) => {
            assert!(!key, "accepted a file holding a private key");
            assert!(!cas.is_empty(), "accepted a file without a certificate");
            for ca in &cas {
                assert_eq!(ca.sha256, <[u8; 32]>::from(Sha256::digest(&ca.der)));
                assert!(ca.not_after >= NOW, "accepted an expired CA");
                assert_eq!(
                    judge(&ca.der, NOW, profile),
                    Verdict::Accepted(vec![ca.clone()]),
                    "an accepted CA is not accepted alone, as DER"
                );
            }
        }
        Verdict::Rejected(reason) => {
            if key {
                assert!(
                    matches!(reason, Reason::PrivateKey(_)),
                    "a file with a private key rejected for another reason: {reason}"
                );
            }
            assert!(!reason.to_string().is_empty());
        }
    }
}
