//! The cache: a key over everything that decides the bundle, and the record stored beside it.
//! On a match with an intact bundle, nothing is parsed or written.

use std::path::Path;

use data_encoding::HEXLOWER;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rules::Profile;
use super::scan::{self, Content};
use super::store;
use super::summary::Summary;
use crate::config::CertSettings;

/// SHA-256 over everything that decides the bundle but the system bundle's bytes. Each field is
/// length-prefixed and each input's content tagged (bytes, or a rejection found before reading),
/// so no two different input sets produce the same byte stream. The system bundle's bytes are not
/// hashed: a reused bundle must begin with them, byte for byte (see [`Record::load`]).
pub fn key(
    settings: &CertSettings,
    profile: Profile,
    system: Option<&Path>,
    inputs: &[scan::Input],
) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(concat!("vardr-init ", env!("CARGO_PKG_VERSION")).as_bytes());
    field(settings.bundle.as_os_str().as_encoded_bytes());
    // The verdicts are the runtime's: another runtime, another pass.
    field(profile.to_string().as_bytes());
    // A watching run keeps a bundle with no custom CA; another run has none to reuse then.
    if settings.keep_bundle {
        field(b"keep");
    }
    match system {
        Some(path) => field(path.as_os_str().as_encoded_bytes()),
        None => field(b"no system bundle"),
    }
    for input in inputs {
        field(&input.name);
        match &input.content {
            Content::Bytes(bytes) => {
                field(b"B");
                field(bytes);
            }
            Content::Unusable(reason) => {
                field(b"U");
                field(reason.to_string().as_bytes());
            }
        }
    }
    HEXLOWER.encode(&hash.finalize())
}

/// The cache record stored beside the bundle: the key it was built for, the hash of the bundle
/// after its system part (so a truncated or edited bundle is rebuilt), how the system part was
/// made, and the pass's [`Summary`] (which says until when its verdicts hold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub custom_sha256: String,
    pub system: SystemPart,
    pub summary: Summary,
}

/// How the bundle's system part was made from the system bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemPart {
    /// Its certificates, and nothing else, as they were: the bundle begins with the system bundle
    /// byte for byte (Debian's, and every bundle of certificate blocks only).
    Verbatim,
    /// Filtered (comments, keys or undecodable blocks left out): a reuse needs the system bundle
    /// to hash to `source` and the whole bundle to `bundle`.
    Filtered { source: String, bundle: String },
}

/// Version 5: one JSON line after this one (4 was a line per field).
const RECORD_MAGIC: &str = "vardr-init certificate cache 5";

impl Record {
    pub fn to_text(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{RECORD_MAGIC}\n{json}\n")
    }

    /// The record for `key` if it is ours, current at `now`, and its bundle is intact: the bundle
    /// begins with `system` (the system bundle as it is now) byte for byte, and the rest has the
    /// recorded hash. Comparing the system part instead of hashing it (in the key and here) is
    /// what makes a reuse cheap: no SHA-256 over the system bundle on every start, no parse.
    pub fn load(bundle: &Path, key: &str, now: i64, system: &[u8]) -> Option<Record> {
        let text = store::read_own(&store::cache_path(bundle), 64 * 1024 * 1024)?;
        let json = text
            .strip_prefix(RECORD_MAGIC.as_bytes())?
            .strip_prefix(b"\n")?;
        let record: Record = serde_json::from_slice(json).ok()?;
        let stale = record.summary.next_change.is_some_and(|at| now >= at);
        if record.key != key || stale {
            return None;
        }
        let intact = match &record.system {
            // A reuse of a filtered bundle costs a pass of SHA-256 over each file, still no parse.
            SystemPart::Filtered {
                source,
                bundle: whole,
            } => {
                let mut bundle_hash = Sha256::new();
                store::stream_own(bundle, store::MAX_BUNDLE_BYTES, |chunk| {
                    bundle_hash.update(chunk)
                })?;
                HEXLOWER.encode(&Sha256::digest(system)) == *source
                    && HEXLOWER.encode(&bundle_hash.finalize()) == *whole
            }
            SystemPart::Verbatim => {
                let mut hash = Sha256::new();
                let mut offset = 0;
                let mut system_matches = true;
                let read = store::stream_own(bundle, store::MAX_BUNDLE_BYTES, |chunk| {
                    // The part of this chunk still within the system part (none once past it).
                    let within = system.len().saturating_sub(offset).min(chunk.len());
                    let (system_part, rest) = chunk.split_at(within);
                    let expected = &system[offset.min(system.len())..][..within];
                    system_matches = system_matches && store::same_bytes(system_part, expected);
                    hash.update(rest);
                    offset += chunk.len();
                })?;
                system_matches
                    && read >= system.len() as u64
                    && HEXLOWER.encode(&hash.finalize()) == record.custom_sha256
            }
        };
        intact.then_some(record)
    }
}
