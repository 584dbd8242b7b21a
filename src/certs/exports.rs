//! What the child gets: the CA variables pointing at the bundle, and the policy for values the
//! user set. Pure decisions over paths; nothing here reads a certificate.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config::{CA_VARS, CLASSIC_CA_VARS, CertSettings};

/// One variable the child gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub name: &'static str,
    pub value: OsString,
    /// The user had set it: their value is kept and this says so in the logs.
    pub user_value: bool,
    /// The user's value that pointed at the system bundle (or ours) and was replaced.
    pub replaced: Option<OsString>,
}

/// The CA variables for the child when `bundle` is exported. A value the user set wins, unless
/// it names the system bundle merged into ours (images often point `REQUESTS_CA_BUNDLE` at the
/// distro bundle): the merged bundle holds all of that file and the custom CAs besides.
pub fn exports(settings: &CertSettings, system: Option<&Path>, bundle: &Path) -> Vec<Export> {
    let count = if settings.extra_vars {
        CA_VARS.len()
    } else {
        CLASSIC_CA_VARS
    };
    let canonical_bundle = &bundle.canonicalize().ok();
    let canonical_system = &system.and_then(|s| s.canonicalize().ok());
    CA_VARS[..count]
        .iter()
        .map(|&name| {
            let user = settings
                .inherited
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| Path::new(value));
            let superseded = |value: &Path| {
                if value == bundle || system == Some(value) {
                    return true;
                }
                // Resolved once per path, not once per comparison: this runs on every start.
                let value = value.canonicalize().ok();
                value.is_some() && (value == *canonical_bundle || value == *canonical_system)
            };
            match user {
                Some(value) if !superseded(value) => Export {
                    name,
                    value: value.as_os_str().to_owned(),
                    user_value: true,
                    replaced: None,
                },
                _ => Export {
                    name,
                    value: bundle.as_os_str().to_owned(),
                    user_value: false,
                    replaced: user
                        .filter(|value| *value != bundle)
                        .map(|value| value.as_os_str().to_owned()),
                },
            }
        })
        .collect()
}

/// The inherited CA variables that name our bundle path: when no bundle is exported this time
/// (no custom CA any more, or the write failed), they would keep the child reading an old
/// bundle, with CAs since removed from the certs directory, so they are removed from its
/// environment.
pub fn stale_variables(settings: &CertSettings) -> Vec<&'static str> {
    settings
        .inherited
        .iter()
        .filter(|(_, value)| same_file(Path::new(value), &settings.bundle))
        .map(|(name, _)| *name)
        .collect()
}

/// Whether two paths name the same file (the same path, or the same canonical path).
pub fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

/// What the child's `PYTHONPATH` becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PythonPath {
    /// As inherited (or unset).
    Inherited,
    /// This value: the hook's directory first (when it is on), then the inherited entries.
    Set(OsString),
    /// Removed: it held only an old copy of the hook's directory.
    Unset,
}

/// The child's `PYTHONPATH`: with the hook `on`, the hook's directory `dir` first, then the
/// inherited entries. An inherited entry that names `dir` is dropped either way: it comes from an
/// environment copied from a running container, and a hook that is off this time must not run.
pub fn python_path(settings: &CertSettings, dir: &Path, on: bool) -> PythonPath {
    let inherited = settings.python_path.as_deref();
    let entries: Vec<&Path> = inherited
        .map(|value| {
            value
                .as_encoded_bytes()
                .split(|&b| b == b':')
                .map(|part| Path::new(std::ffi::OsStr::from_bytes(part)))
                .collect()
        })
        .unwrap_or_default();
    let kept: Vec<&Path> = entries
        .iter()
        .copied()
        .filter(|entry| entry.as_os_str().is_empty() || !same_file(entry, dir))
        .collect();
    if !on && kept.len() == entries.len() {
        return PythonPath::Inherited;
    }
    let mut value = OsString::new();
    let first = on.then_some(dir);
    for (i, entry) in first.into_iter().chain(kept.iter().copied()).enumerate() {
        if i > 0 {
            value.push(":");
        }
        value.push(entry);
    }
    match (on, kept.is_empty()) {
        (false, true) => PythonPath::Unset,
        _ => PythonPath::Set(value),
    }
}
