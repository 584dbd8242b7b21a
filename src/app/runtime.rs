//! Which Python the run starts, and so whose verifier the certificate verdicts must match, found
//! without starting it (no process is spawned on a normal start).
//!
//! The interpreter is the default command's Python, or the program after `--` when it is a
//! Python (`python`, `python3`, `python3.13`...) or a script whose `#!` line names one (a
//! `uvicorn` or `fastapi` console script). Its version comes from, in order:
//! 1. the file the path resolves to, when its name is `pythonX.Y` (Debian's and the python.org
//!    images' `python3 -> python3.13`, a venv's `bin/python -> /usr/local/bin/python3.13`);
//! 2. the `pyvenv.cfg` of the venv the interpreter sits in (`version` or uv's `version_info`);
//! 3. a single `lib/pythonX.Y` directory beside the resolved interpreter's `bin`.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::certs::rules::Profile;

/// The verdicts' runtime: the profile and how it was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// As `VARDR_TLS_PROFILE` names it: `python3.13`, `openssl`.
    #[serde(serialize_with = "as_text")]
    pub profile: Profile,
    /// The interpreter the run starts, when one was found (also with `VARDR_TLS_PROFILE` set:
    /// the TLS clients of its environment are listed from it).
    pub python: Option<PathBuf>,
    /// How the profile was decided, in words.
    pub source: String,
}

fn as_text<S: serde::Serializer>(profile: &Profile, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(profile)
}

impl Runtime {
    /// The runtime for `program` (the command's first word; `None`: no command can start),
    /// unless `VARDR_TLS_PROFILE` names one.
    pub fn find(
        setting: Option<Profile>,
        program: Option<&OsStr>,
        path: Option<&OsStr>,
    ) -> Runtime {
        let python = program.and_then(|p| interpreter(p, path));
        if let Some(profile) = setting {
            return Runtime {
                profile,
                python,
                source: "VARDR_TLS_PROFILE".to_owned(),
            };
        }
        let Some(python) = python else {
            return Runtime {
                profile: Profile::OpenSsl,
                python: None,
                source: "the command runs no Python: the rules every OpenSSL client applies"
                    .to_owned(),
            };
        };
        match version(&python) {
            Some((minor, how)) => Runtime {
                profile: Profile::Python { minor },
                source: format!("{} ({how})", python.display()),
                python: Some(python),
            },
            None => Runtime {
                profile: Profile::OpenSsl,
                source: format!(
                    "{}: its version could not be told (set VARDR_TLS_PROFILE=python3.N); the \
                     rules every OpenSSL client applies",
                    python.display()
                ),
                python: Some(python),
            },
        }
    }
}

/// The Python interpreter `program` runs as, if any: itself, or its script's `#!` interpreter.
fn interpreter(program: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    let file = super::find_program(program, path)?;
    if is_python_name(file.file_name()?) {
        return Some(file);
    }
    // A console script (`uvicorn`, `fastapi`): `#!/venv/bin/python` or `#!/usr/bin/env python3`.
    let mut head = [0u8; 256];
    let n = std::fs::File::open(&file).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(OsStr::from_bytes);
    let first = words.next()?;
    let named = if Path::new(first).file_name() == Some(OsStr::new("env")) {
        words.find(|w| !w.as_bytes().starts_with(b"-"))?
    } else {
        first
    };
    let resolved = super::find_program(named, path)?;
    is_python_name(resolved.file_name()?).then_some(resolved)
}

/// `python`, `python3`, `python3.13`, `python3.13t`.
pub fn is_python_name(name: &OsStr) -> bool {
    let Some(rest) = name.as_bytes().strip_prefix(b"python") else {
        return false;
    };
    rest.iter()
        .all(|b| b.is_ascii_digit() || *b == b'.' || *b == b't')
}

/// The minor version of the Python 3 at `python` and how it was told.
fn version(python: &Path) -> Option<(u8, String)> {
    let resolved = std::fs::canonicalize(python).ok()?;
    if let Some(minor) = resolved.file_name().and_then(minor_of_name) {
        let how = if resolved == python {
            "its name".to_owned()
        } else {
            format!("resolves to {}", resolved.display())
        };
        return Some((minor, how));
    }
    // A venv: bin/python, with pyvenv.cfg one level up.
    let cfg = python.parent()?.parent()?.join("pyvenv.cfg");
    if let Ok(text) = std::fs::read_to_string(&cfg) {
        let minor = text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            if key != "version" && key != "version_info" {
                return None;
            }
            let mut parts = value.trim().split('.');
            (parts.next()? == "3").then_some(())?;
            parts.next()?.parse().ok()
        });
        if let Some(minor) = minor {
            return Some((minor, format!("{}", cfg.display())));
        }
    }
    // The standard library beside it: PREFIX/bin/python, PREFIX/lib/python3.N.
    let lib = resolved.parent()?.parent()?.join("lib");
    let mut minors = std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .filter_map(|entry| minor_of_name(&entry.file_name()));
    let minor = minors.next()?;
    if minors.next().is_some() {
        return None; // several: which one is not known
    }
    Some((minor, format!("{}/python3.{minor}", lib.display())))
}

/// `python3.13` (or `python3.13t`, free-threaded) → 13.
fn minor_of_name(name: &OsStr) -> Option<u8> {
    let rest = name.as_bytes().strip_prefix(b"python3.")?;
    let digits = rest.strip_suffix(b"t").unwrap_or(rest);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn exe(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn found(program: &str, path: &Path) -> Runtime {
        Runtime::find(None, Some(OsStr::new(program)), Some(path.as_os_str()))
    }

    #[test]
    fn the_version_comes_from_the_resolved_name_a_venv_or_the_library() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        // Debian and the python.org images: python3 -> python3.13.
        exe(&root.join("usr/bin/python3.13"), "");
        symlink("python3.13", root.join("usr/bin/python3")).expect("symlink");
        let r = found("python3", &root.join("usr/bin"));
        assert_eq!(r.profile, Profile::Python { minor: 13 });
        // A venv whose python is a copy: pyvenv.cfg says (uv writes version_info).
        exe(&root.join("venv/bin/python"), "");
        std::fs::write(
            root.join("venv/pyvenv.cfg"),
            "home = /x\nversion_info = 3.12.1\n",
        )
        .expect("cfg");
        assert_eq!(
            found("python", &root.join("venv/bin")).profile,
            Profile::Python { minor: 12 }
        );
        // A plain build: bin/python3 with lib/python3.11 beside it.
        exe(&root.join("opt/bin/python3"), "");
        std::fs::create_dir_all(root.join("opt/lib/python3.11")).expect("lib");
        assert_eq!(
            found("python3", &root.join("opt/bin")).profile,
            Profile::Python { minor: 11 }
        );
        // Nothing tells: the generic rules, saying so.
        exe(&root.join("bare/bin/python3"), "");
        let r = found("python3", &root.join("bare/bin"));
        assert_eq!(r.profile, Profile::OpenSsl);
        assert!(r.source.contains("VARDR_TLS_PROFILE"), "{}", r.source);
    }

    #[test]
    fn a_console_script_names_its_python_and_other_programs_have_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("bin");
        exe(&bin.join("python3.12"), "");
        exe(
            &bin.join("uvicorn"),
            &format!("#!{}\nimport uvicorn\n", bin.join("python3.12").display()),
        );
        exe(&bin.join("fastapi"), "#!/usr/bin/env -S python3.12\n");
        exe(&bin.join("node"), "\x7fELF");
        assert_eq!(
            found("uvicorn", &bin).profile,
            Profile::Python { minor: 12 }
        );
        assert_eq!(
            found("fastapi", &bin).profile,
            Profile::Python { minor: 12 }
        );
        let node = found("node", &bin);
        assert_eq!((node.profile, node.python), (Profile::OpenSsl, None));
        let set = Runtime::find(Some(Profile::Python { minor: 13 }), None, None);
        assert_eq!(set.source, "VARDR_TLS_PROFILE");
    }
}
