//! What the child gets: the CA variables pointing at the bundle, and the policy for values the
//! user set. Pure decisions over paths; nothing here reads a certificate.

use std::ffi::OsString;
use std::path::Path;

use crate::config::{CA_VARS, CertSettings, DEFAULT_CA_VARS};

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
        DEFAULT_CA_VARS
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
