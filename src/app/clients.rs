//! The TLS clients in the app's environment that find their CAs their own way, found without
//! starting Python: the distributions installed where the app's Python imports from (the
//! `*.dist-info` and `*.egg-info` names of its venv's and, where it sees them, its base's
//! site-packages, and of `PYTHONPATH`), and a few programs on `PATH`. Only directory names are
//! read, at most [`MAX_ENTRIES`] per directory; nothing is opened or parsed. `--dry-run` and
//! `vardr-init certs` say, from this, how each client gets the bundle.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Entries read per directory, at most: a site-packages holds hundreds.
pub const MAX_ENTRIES: usize = 20_000;

/// Where a client takes its CAs from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaSource {
    /// The file this variable names.
    Variable(&'static str),
    /// `certifi.where()`, a file inside the venv that no variable redirects.
    Certifi,
    /// A CA file of its own that nothing outside the code redirects; how to point it at the bundle.
    Own {
        file: &'static str,
        fix: &'static str,
    },
}

impl CaSource {
    /// As `--dry-run` names it.
    pub fn name(&self) -> &'static str {
        match self {
            CaSource::Variable(name) => name,
            CaSource::Certifi => "certifi.where()",
            CaSource::Own { file, .. } => file,
        }
    }
}

/// A client that has trust of its own: how it is known, and where it takes its CAs from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    /// As `--dry-run` names it.
    pub name: &'static str,
    /// How it is found: a distribution name (normalised) or a program.
    pub found_as: FoundAs,
    /// Where it takes its CAs from, in its own order: the first variable that is set wins, and
    /// certifi comes after the variables (read from each library's source).
    pub reads: &'static [CaSource],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoundAs {
    /// A Python distribution, by its normalised name (PEP 503: lower case, runs of `-_.` as `-`).
    Distribution(&'static str),
    /// A program on `PATH`.
    Program(&'static str),
    /// Python's own `ssl` module: whenever there is a Python.
    Stdlib,
}

const SSL_CERT_FILE: CaSource = CaSource::Variable("SSL_CERT_FILE");
const REQUESTS_CA_BUNDLE: CaSource = CaSource::Variable("REQUESTS_CA_BUNDLE");

/// A Python client of `name` that reads `reads`.
const fn python(name: &'static str, reads: &'static [CaSource]) -> Known {
    Known {
        name,
        found_as: FoundAs::Distribution(name),
        reads,
    }
}

/// The clients `--dry-run` looks for, in the order it lists them.
pub const KNOWN: &[Known] = &[
    // ssl.create_default_context(): OpenSSL's default paths.
    Known {
        name: "ssl (urllib.request, http.client)",
        found_as: FoundAs::Stdlib,
        reads: &[SSL_CERT_FILE],
    },
    python(
        "requests",
        &[
            REQUESTS_CA_BUNDLE,
            CaSource::Variable("CURL_CA_BUNDLE"),
            CaSource::Certifi,
        ],
    ),
    // trust_env=True, the default.
    python("httpx", &[SSL_CERT_FILE, CaSource::Certifi]),
    // The default context: urllib3 2, aiohttp (made once at import), websockets, pymongo (its
    // load_default_certs), elastic-transport (which also loads certifi.where() on top).
    python("urllib3", &[SSL_CERT_FILE]),
    python("aiohttp", &[SSL_CERT_FILE]),
    python("websockets", &[SSL_CERT_FILE]),
    python("pymongo", &[SSL_CERT_FILE]),
    python("elastic-transport", &[SSL_CERT_FILE]),
    // boto3 and every AWS SDK call; its own cacert.pem when certifi is not installed.
    python(
        "botocore",
        &[
            CaSource::Variable("AWS_CA_BUNDLE"),
            REQUESTS_CA_BUNDLE,
            CaSource::Certifi,
        ],
    ),
    // Every google-cloud gRPC client; otherwise the roots.pem in its wheel.
    python(
        "grpcio",
        &[CaSource::Variable("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")],
    ),
    // google-api-python-client's transport.
    python(
        "httplib2",
        &[CaSource::Variable("HTTPLIB2_CA_CERTS"), CaSource::Certifi],
    ),
    python("certifi", &[CaSource::Certifi]),
    // pip 24.2 and later also read OpenSSL's default paths (truststore).
    python("pip", &[CaSource::Variable("PIP_CERT"), REQUESTS_CA_BUNDLE]),
    python(
        "stripe",
        &[CaSource::Own {
            file: "stripe/data/ca-certificates.crt",
            fix: "set stripe.ca_bundle_path = os.environ[\"SSL_CERT_FILE\"] before its first call",
        }],
    ),
    // Added to Node.js's own roots.
    Known {
        name: "node",
        found_as: FoundAs::Program("node"),
        reads: &[CaSource::Variable("NODE_EXTRA_CA_CERTS")],
    },
    Known {
        name: "git",
        found_as: FoundAs::Program("git"),
        reads: &[CaSource::Variable("GIT_SSL_CAINFO")],
    },
    Known {
        name: "curl",
        found_as: FoundAs::Program("curl"),
        reads: &[CaSource::Variable("CURL_CA_BUNDLE")],
    },
];

/// One client found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub known: &'static Known,
    /// The installed version (from the distribution's directory name); none for programs.
    pub version: Option<String>,
    /// The directory it was found in, or the program.
    pub at: PathBuf,
}

/// The clients of [`KNOWN`] present for `python` (the interpreter the run starts, if any), with
/// `python_path` (the child's `PYTHONPATH` as inherited) and `path` (`PATH`).
pub fn find(
    python: Option<&Path>,
    python_path: Option<&OsStr>,
    path: Option<&OsStr>,
) -> Vec<Found> {
    let mut dists: Vec<(String, Option<String>, PathBuf)> = Vec::new();
    if let Some(python) = python {
        let extra = python_path.map(|p| std::env::split_paths(p).collect::<Vec<_>>());
        for dir in site_dirs(python)
            .into_iter()
            .chain(extra.into_iter().flatten())
        {
            distributions(&dir, &mut dists);
        }
    }
    let mut found = Vec::new();
    for known in KNOWN {
        match known.found_as {
            FoundAs::Stdlib => {
                if let Some(python) = python {
                    found.push(Found {
                        known,
                        version: None,
                        at: python.to_owned(),
                    });
                }
            }
            FoundAs::Distribution(name) => {
                if let Some((_, version, dir)) = dists.iter().find(|(n, ..)| n == name) {
                    found.push(Found {
                        known,
                        version: version.clone(),
                        at: dir.clone(),
                    });
                }
            }
            FoundAs::Program(program) => {
                if let Some(at) = super::find_program(OsStr::new(program), path) {
                    found.push(Found {
                        known,
                        version: None,
                        at,
                    });
                }
            }
        }
    }
    found
}

/// Where `python` imports installed distributions from, as its `site` module would set it up:
/// a venv's `lib/python3.N/site-packages` (and its base's, with
/// `include-system-site-packages = true`); for an interpreter outside a venv, its prefix's
/// `lib/python3.N/site-packages`, and Debian's `dist-packages` for `/usr` and `/usr/local`.
fn site_dirs(python: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let venv = python.parent().and_then(Path::parent);
    let cfg = venv.map(|v| v.join("pyvenv.cfg"));
    let cfg_text = cfg.as_deref().and_then(|c| read_small(c, 64 * 1024));
    if let (Some(venv), Some(text)) = (venv, &cfg_text) {
        dirs.extend(versioned(&venv.join("lib"), "site-packages"));
        let system = text.lines().any(|line| {
            line.split_once('=').is_some_and(|(k, v)| {
                k.trim() == "include-system-site-packages" && v.trim().eq_ignore_ascii_case("true")
            })
        });
        if !system {
            return dirs;
        }
    }
    let Some(prefix) = std::fs::canonicalize(python)
        .ok()
        .and_then(|p| p.parent()?.parent().map(Path::to_owned))
    else {
        return dirs;
    };
    dirs.extend(versioned(&prefix.join("lib"), "site-packages"));
    if prefix == Path::new("/usr") {
        dirs.push(PathBuf::from("/usr/lib/python3/dist-packages"));
        dirs.extend(versioned(Path::new("/usr/local/lib"), "dist-packages"));
    }
    dirs
}

/// `lib/python3.N/SUB` for each `python3.N` directory in `lib`.
fn versioned(lib: &Path, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(lib) else {
        return Vec::new();
    };
    entries
        .take(MAX_ENTRIES)
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(b"python3."))
        .map(|e| e.path().join(sub))
        .filter(|d| d.is_dir())
        .collect()
}

/// The distributions in `dir`, by their `NAME-VERSION.dist-info` (or `.egg-info`) directories.
fn distributions(dir: &Path, into: &mut Vec<(String, Option<String>, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.take(MAX_ENTRIES).flatten() {
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        let Some(stem) = text
            .strip_suffix(".dist-info")
            .or_else(|| text.strip_suffix(".egg-info"))
        else {
            continue;
        };
        let (dist, version) = match stem.split_once('-') {
            Some((dist, rest)) => (dist, rest.split('-').next().map(str::to_owned)),
            None => (stem, None),
        };
        let normalised = normalise(dist);
        if !into.iter().any(|(n, ..)| *n == normalised) {
            into.push((normalised, version, dir.to_owned()));
        }
    }
}

/// PEP 503's normalised name: lower case, each run of `-`, `_` and `.` one `-`.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A small text file (`pyvenv.cfg`), at most `limit` bytes.
fn read_small(path: &Path, limit: u64) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(limit)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_versions_read_from_the_directory_name() {
        assert_eq!(normalise("Elastic_Transport"), "elastic-transport");
        assert_eq!(normalise("a.-_b"), "a-b");
        let dir = tempfile::tempdir().expect("tempdir");
        let venv = dir.path();
        let site = venv.join("lib/python3.12/site-packages");
        for d in [
            "requests-2.34.2.dist-info",
            "elastic_transport-9.1.0.dist-info",
            "grpcio-1.76.0.dist-info",
            "certifi",
            "httplib2-0.31.0-py3.11.egg-info",
        ] {
            std::fs::create_dir_all(site.join(d)).expect("mkdir");
        }
        std::fs::create_dir_all(venv.join("bin")).expect("bin");
        std::fs::write(venv.join("bin/python"), "").expect("python");
        std::fs::write(venv.join("pyvenv.cfg"), "home = /nonexistent\n").expect("cfg");
        let found = find(
            Some(&venv.join("bin/python")),
            None,
            Some(OsStr::new("/nonexistent")),
        );
        let names: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|f| (f.known.name, f.version.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("ssl (urllib.request, http.client)", None),
                ("requests", Some("2.34.2")),
                ("elastic-transport", Some("9.1.0")),
                ("grpcio", Some("1.76.0")),
                ("httplib2", Some("0.31.0")),
            ]
        );
    }
}
