//! The cache: a key over everything that decides the bundle, and the record stored beside it.
//! On a match with an intact bundle, nothing is parsed or written.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::rules::Profile;
use super::scan::{self, Content};
use super::summary::FileResult;
use super::{hex, store};
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
    hex(&hash.finalize())
}

/// The cache record stored beside the bundle: the key it was built for, the hash of the bundle
/// after its system part (so a truncated or edited bundle is rebuilt), until when its verdicts
/// hold, and the summary.
pub struct Record {
    pub key: String,
    pub custom_sha256: String,
    pub valid_until: i64,
    pub system_certificates: usize,
    pub custom_certificates: usize,
    pub duplicates: usize,
    pub results: Vec<FileResult>,
    pub system: SystemPart,
}

/// How the bundle's system part was made from the system bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemPart {
    /// Its certificates, and nothing else, as they were: the bundle begins with the system bundle
    /// byte for byte (Debian's, and every bundle of certificate blocks only).
    Verbatim,
    /// Filtered (comments, keys or undecodable blocks left out): a reuse needs the system bundle
    /// to hash to `source` and the whole bundle to `bundle`.
    Filtered { source: String, bundle: String },
}

/// Version 4: results are typed verdicts with their warnings, for a runtime profile.
const RECORD_MAGIC: &str = "vardr-init certificate cache 4";

impl Record {
    pub fn to_text(&self) -> String {
        let results = serde_json::to_string(&self.results).unwrap_or_default();
        format!(
            "{RECORD_MAGIC}\nkey {}\ncustom {}\nvalid-until {}\ncounts {} {} {}\nsystem {}\nresults {}\n",
            self.key,
            self.custom_sha256,
            self.valid_until,
            self.system_certificates,
            self.custom_certificates,
            self.duplicates,
            match &self.system {
                SystemPart::Verbatim => "verbatim".to_owned(),
                SystemPart::Filtered { source, bundle } => format!("filtered {source} {bundle}"),
            },
            results,
        )
    }

    /// The record for `key` if it is ours, current, and its bundle is intact: the bundle begins
    /// with `system` (the system bundle as it is now) byte for byte, and the rest has the recorded
    /// hash. Comparing the system part instead of hashing it (in the key and here) is what makes
    /// a reuse cheap: no SHA-256 over the system bundle, twice, on every start.
    pub fn load(bundle: &Path, key: &str, now: i64, system: &[u8]) -> Option<Record> {
        let mut reader = system;
        Record::load_from(bundle, key, now, &mut reader, system.len() as u64)
    }

    /// [`Record::load`] with the system bundle read from `system` (`system_len` bytes, and not
    /// one more) as the comparison goes, in small pieces: a cache hit then holds neither file
    /// whole, and touches a few pages of memory instead of hundreds.
    pub fn load_from(
        bundle: &Path,
        key: &str,
        now: i64,
        system: &mut dyn Read,
        system_len: u64,
    ) -> Option<Record> {
        let text = store::read_own(&store::cache_path(bundle), 64 * 1024 * 1024)?;
        let record = Record::parse(std::str::from_utf8(&text).ok()?)?;
        if record.key != key || now >= record.valid_until {
            return None;
        }
        if let SystemPart::Filtered {
            source,
            bundle: whole,
        } = &record.system
        {
            // Both files hashed as they are read: a reuse of a filtered bundle costs a pass of
            // SHA-256 over each, still no parse.
            let mut source_hash = Sha256::new();
            let mut piece = [0u8; 8 * 1024];
            let mut left = system_len;
            while left > 0 {
                let n = system.read(&mut piece).ok()?;
                if n == 0 {
                    return None;
                }
                source_hash.update(&piece[..n]);
                left = left.saturating_sub(n as u64);
            }
            let mut bundle_hash = Sha256::new();
            store::stream_own(bundle, store::MAX_BUNDLE_BYTES, |chunk| {
                bundle_hash.update(chunk)
            })?;
            let intact =
                hex(&source_hash.finalize()) == *source && hex(&bundle_hash.finalize()) == *whole;
            return intact.then_some(record);
        }
        let mut hash = Sha256::new();
        let mut offset = 0u64;
        let mut system_matches = true;
        let mut piece = [0u8; 8 * 1024];
        let read = store::stream_own(bundle, store::MAX_BUNDLE_BYTES, |chunk| {
            // The part of this chunk that is still within the system part (none once past it).
            let within = usize::try_from(system_len.saturating_sub(offset)).unwrap_or(usize::MAX);
            let (system_part, rest) = chunk.split_at(within.min(chunk.len()));
            for expected in system_part.chunks(piece.len()) {
                let got = &mut piece[..expected.len()];
                system_matches = system_matches
                    && system.read_exact(got).is_ok()
                    && store::same_bytes(got, expected);
            }
            hash.update(rest);
            offset += chunk.len() as u64;
        })?;
        // The system bundle must end where its compared part does (it may have grown since).
        let ended = matches!(system.read(&mut piece[..1]), Ok(0));
        let intact = system_matches
            && ended
            && read >= system_len
            && hex(&hash.finalize()) == record.custom_sha256;
        intact.then_some(record)
    }

    fn parse(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        if lines.next()? != RECORD_MAGIC {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
        let key = field("key")?.to_owned();
        let custom_sha256 = field("custom")?.to_owned();
        let valid_until = field("valid-until")?.parse().ok()?;
        let counts: Vec<usize> = field("counts")?
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [system_certificates, custom_certificates, duplicates] = counts[..] else {
            return None;
        };
        let system = match field("system")?.split(' ').collect::<Vec<_>>()[..] {
            ["verbatim"] => SystemPart::Verbatim,
            ["filtered", source, bundle] => SystemPart::Filtered {
                source: source.to_owned(),
                bundle: bundle.to_owned(),
            },
            _ => return None,
        };
        let results = serde_json::from_slice(field("results")?.as_bytes()).ok()?;
        Some(Record {
            system,
            key,
            custom_sha256,
            valid_until,
            system_certificates,
            custom_certificates,
            duplicates,
            results,
        })
    }
}
