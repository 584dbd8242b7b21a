//! The system bundle: which file it is, and whether it may be copied into ours.

use std::path::{Path, PathBuf};

use super::exports::same_file;
use super::{scan, store};
use crate::config::CertSettings;

/// Where distributions keep the PEM bundle of their trusted roots, most common first.
pub const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Wolfi
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora, Amazon Linux
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+ (the file behind the above)
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine (LibreSSL), BSDs
];

/// Whether `path` is, or resolves to, a system bundle: the one in use or any distribution path.
/// Ours must never be one of them, or the next start would read our output back as the system
/// trust (and a removed custom CA would stay trusted for ever).
pub fn is_system_bundle(path: &Path, in_use: Option<&Path>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut systems = in_use
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(Path::new));
    // The same file: the same path, or the same (device, inode) once symlinks are followed (a
    // hard link too). One stat each; this runs on every start.
    let Ok(meta) = std::fs::metadata(path) else {
        // Absent (the common first start): only its name could make it one.
        return systems.any(|system| system == path);
    };
    let id = (meta.dev(), meta.ino());
    systems.any(|system| {
        system == path || std::fs::metadata(system).is_ok_and(|m| (m.dev(), m.ino()) == id)
    })
}

/// Where the system bundle may be, in order: `VARDR_SYSTEM_CA_BUNDLE` alone (whether it exists
/// or not: a missing one is reported), or the original `SSL_CERT_FILE` (unless it is our own
/// output) and then the distribution paths, those that exist.
fn candidates(settings: &CertSettings) -> impl Iterator<Item = PathBuf> + '_ {
    let explicit = settings.system_bundle.clone();
    let auto = explicit.is_none().then(|| {
        let ssl_cert_file = settings
            .inherited
            .iter()
            .find(|(name, _)| *name == "SSL_CERT_FILE")
            .map(|(_, value)| PathBuf::from(value))
            .filter(|path| !same_file(path, &settings.bundle));
        // Looked at in order, only as far as needed: a stat each.
        ssl_cert_file
            .into_iter()
            .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
            .filter(|path| path.exists())
    });
    explicit.into_iter().chain(auto.into_iter().flatten())
}

/// The system bundle [`find`] would take if it reads and passes: the first candidate. A watching
/// run watches where it is, or would appear, whether [`find`] took it or not.
pub fn first_candidate(settings: &CertSettings) -> Option<PathBuf> {
    candidates(settings).next()
}

/// `VARDR_SYSTEM_CA_BUNDLE`, or the original `SSL_CERT_FILE` unless it is our own output, or
/// the first distribution path that exists. `None` (with a warning) is not an error.
pub fn find(settings: &CertSettings, warnings: &mut Vec<String>) -> Option<(PathBuf, Vec<u8>)> {
    for path in candidates(settings) {
        match scan::read_capped(&path, store::MAX_BUNDLE_BYTES) {
            Ok(bytes) => match problem(&bytes) {
                None => return Some((path, bytes)),
                Some(problem) => warnings.push(format!(
                    "system bundle {} {problem}: not used",
                    path.display()
                )),
            },
            Err(reason) => warnings.push(format!("system bundle {}: {reason}", path.display())),
        }
    }
    warnings.push(match &settings.system_bundle {
        Some(path) => format!(
            "VARDR_SYSTEM_CA_BUNDLE={} could not be used: the bundle will hold only the custom \
             CAs, so public TLS sites will fail verification",
            path.display()
        ),
        None => format!(
            "no system CA bundle found (tried SSL_CERT_FILE and {}): the bundle will hold only \
             the custom CAs; set VARDR_SYSTEM_CA_BUNDLE if the image keeps it elsewhere",
            SYSTEM_BUNDLES.join(", ")
        ),
    });
    None
}

/// Why a system bundle cannot be used at all, judged cheaply on every start that has custom CAs:
/// it must be text. What of it is kept (certificates OpenSSL decodes; never a key, text or
/// another block) is decided when a bundle is built, in the merge, which a cache hit skips: a
/// reused bundle begins with the system bundle byte for byte, so it can only be one that needed
/// no filtering.
fn problem(bytes: &[u8]) -> Option<&'static str> {
    if std::str::from_utf8(bytes).is_err() {
        Some("is not text (a PEM bundle is)")
    } else {
        None
    }
}
