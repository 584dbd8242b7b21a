//! The Python hook: code that asks certifi for its CA file gets the merged bundle, and with
//! `VARDR_JSON_LOGS=true` the app's `logging` records are JSON lines.
//!
//! Many libraries (httplib2, elastic-transport, httpx without `trust_env`, code of the app's own)
//! load `certifi.where()`, a file inside the venv that no variable can redirect. So beside the
//! bundle, vardr-init keeps a directory of its own, `<bundle>.python`, holding one file,
//! `sitecustomize.py` ([`TEXT`]), and the child gets that directory first on `PYTHONPATH`: Python
//! runs the file at start, and from the moment `certifi` is imported, `certifi.where()` names the
//! bundle. Nothing is written into the app's venv or image, and an image run with another
//! entrypoint has no `PYTHONPATH` pointing anywhere.
//!
//! What goes on `sys.path` must be writable by this user alone, like the bundle itself: the
//! directory is created here with mode 0755 and is used only while it is a real directory (not a
//! symlink) owned by this user that no one else may write, and so is its `__pycache__`, made here
//! for the same reason (Python would otherwise create it under the umask). A directory that fails
//! the check is a problem that turns the hook off, never something written through. The hook
//! compiles itself into that `__pycache__` once, also under `PYTHONDONTWRITEBYTECODE` (which the
//! images set), so that later Python starts skip the compile.
//!
//! The same file carries the app's JSON logs ([`PythonLogs::Json`]): from `logging`'s import on,
//! the root logger writes JSON on stderr, and uvicorn's default logging configuration is turned
//! into JSON once `uvicorn.config` is imported (a `--log-config` of the user's is another object,
//! left alone). So the hook is put in place when a bundle is exported or JSON logs are wanted,
//! and it does only what it was put there for.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store;
use crate::config::{CertSettings, PythonLogs};
use crate::sys;

/// The hook's Python source; `__VARDR_BUNDLE__` stands for the bundle's path (or `None`), and
/// `__VARDR_JSON_LOGS__` for whether it makes the app's logs JSON.
const TEXT: &str = include_str!("sitecustomize.py");

/// The file Python runs at start from a directory on `PYTHONPATH`.
pub const FILE: &str = "sitecustomize.py";

/// Where the hook lives for `bundle`: `<bundle>.python`, beside it.
pub fn dir(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".python");
    PathBuf::from(name)
}

/// What became of the hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookStatus {
    /// Not wanted (`VARDR_PYTHON_HOOK=false`), or nothing to do: no bundle to name and no JSON
    /// logs.
    Off,
    /// In place (in a dry run: can be put in place): [`dir`] goes first on `PYTHONPATH`.
    Ready,
    /// It cannot be put in place, and why: the bundle is exported all the same, and
    /// `certifi.where()` keeps certifi's own file.
    Problem(String),
}

/// The hook's file: `certifi.where()` names `bundle` when there is one; the logs as `logs` says.
pub fn text(bundle: Option<&Path>, logs: PythonLogs) -> String {
    let bundle = bundle.map_or_else(
        || "None".to_owned(),
        |b| bytes_literal(b.as_os_str().as_bytes()),
    );
    let json = match logs {
        PythonLogs::AsConfigured => "False",
        PythonLogs::Json => "True",
    };
    TEXT.replace("__VARDR_BUNDLE__", &bundle)
        .replace("__VARDR_JSON_LOGS__", json)
}

/// Whether the hook has work to do: a bundle for certifi, or JSON logs.
pub fn wanted(settings: &CertSettings, exported: bool) -> bool {
    settings.python_hook && (exported || settings.python_logs == PythonLogs::Json)
}

/// A Python bytes literal of `bytes` (a path may be any bytes; the hook decodes it with
/// `os.fsdecode`, as Python decodes paths).
fn bytes_literal(bytes: &[u8]) -> String {
    let mut literal = String::from("b\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                literal.push('\\');
                literal.push(char::from(b));
            }
            0x20..=0x7e => literal.push(char::from(b)),
            _ => literal.push_str(&format!("\\x{b:02x}")),
        }
    }
    literal.push('"');
    literal
}

/// Puts the hook in place beside `settings.bundle` (`write`), or checks that it can be (a dry
/// run); `exported`: the bundle is given to the app, and certifi is to name it.
pub fn ensure(settings: &CertSettings, exported: bool, write: bool) -> HookStatus {
    let bundle = &settings.bundle;
    let dir = dir(bundle);
    let text = text(exported.then_some(bundle.as_path()), settings.python_logs);
    match install(&dir, &text, write) {
        Ok(()) => HookStatus::Ready,
        Err(problem) => {
            let lost = match (exported, settings.python_logs) {
                (true, PythonLogs::Json) => {
                    "certifi.where() keeps certifi's own CA file and the app's logs are not JSON"
                }
                (true, PythonLogs::AsConfigured) => "certifi.where() keeps certifi's own CA file",
                (false, _) => "the app's logs are not JSON",
            };
            HookStatus::Problem(format!(
                "the Python hook cannot be put in {}: {problem}; {lost} (remove that path, or \
                 point VARDR_CA_BUNDLE into a directory of this user's; VARDR_PYTHON_HOOK=false \
                 turns the hook off)",
                dir.display()
            ))
        }
    }
}

fn install(dir: &Path, text: &str, write: bool) -> Result<(), String> {
    let file = dir.join(FILE);
    let cache = dir.join("__pycache__");
    if !own_directory(dir)? {
        if !write {
            return sys::can_write(store::parent(dir))
                .map_err(|e| format!("{} cannot be created: {e}", dir.display()));
        }
        make_directory(dir)?;
    }
    if !own_directory(&cache)? && write {
        make_directory(&cache)?;
    }
    if store::holds(&file, text.as_bytes()) {
        return Ok(());
    }
    if !write {
        return sys::can_write(dir).map_err(|e| format!("{FILE} cannot be written: {e}"));
    }
    store::write_atomic(&file, text.as_bytes(), |read| match read {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{} reads back different from what was written",
            file.display()
        )),
    })?;
    // Bytecode of the old text goes: a rewrite within the second it was compiled in would look
    // current to Python (its check is the source's size and mtime, in seconds).
    for entry in fs::read_dir(&cache).into_iter().flatten().flatten() {
        let _ = fs::remove_file(entry.path());
    }
    Ok(())
}

/// Whether `dir` is a directory that only this user may write (`false`: absent). Anything else
/// there is an error: it is not put on `sys.path`.
fn own_directory(dir: &Path) -> Result<bool, String> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("cannot inspect {}: {e}", dir.display())),
    };
    let shown = dir.display();
    let kind = meta.file_type();
    if !kind.is_dir() {
        let kind = match kind {
            k if k.is_symlink() => "symlink",
            k if k.is_file() => "file",
            _ => super::scan::kind_of(&meta),
        };
        return Err(format!(
            "{shown} is a {kind}, not a directory vardr-init made"
        ));
    }
    if meta.uid() != sys::geteuid() {
        return Err(format!(
            "{shown} belongs to uid {}, not to this user",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{shown} is writable by others (mode {:o})",
            meta.mode() & 0o777
        ));
    }
    Ok(true)
}

/// Creates `dir` with mode 0755 whatever the umask; one that appeared meanwhile is checked.
fn make_directory(dir: &Path) -> Result<(), String> {
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display())),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match own_directory(dir)? {
            true => Ok(()),
            false => Err(format!("{} vanished while it was made", dir.display())),
        },
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_bundle_path_is_a_python_bytes_literal() {
        assert_eq!(bytes_literal(b"/tmp/b.pem"), r#"b"/tmp/b.pem""#);
        assert_eq!(bytes_literal(b"a\"b\\c\n\xff"), r#"b"a\"b\\c\x0a\xff""#);
        let bundle = Path::new("/tmp/custom_ca_bundle.pem");
        let text = text(Some(bundle), PythonLogs::AsConfigured);
        assert!(
            text.contains(r#"BUNDLE = b"/tmp/custom_ca_bundle.pem""#),
            "{text}"
        );
        assert!(text.contains("JSON_LOGS = False"), "{text}");
        assert!(!text.contains("__VARDR_"));
        let text = super::text(None, PythonLogs::Json);
        assert!(text.contains("BUNDLE = None") && text.contains("JSON_LOGS = True"));
    }

    fn settings(bundle: &Path, logs: PythonLogs) -> CertSettings {
        let bundle = bundle.as_os_str().to_owned();
        let config = crate::config::Config::from_lookup(|name| {
            (name == "VARDR_CA_BUNDLE").then(|| bundle.clone())
        });
        let mut settings = config.expect("config").certs;
        settings.python_logs = logs;
        settings
    }

    #[test]
    fn wanted_for_a_bundle_or_json_logs() {
        let json = settings(Path::new("/b.pem"), PythonLogs::Json);
        let plain = settings(Path::new("/b.pem"), PythonLogs::AsConfigured);
        assert!(wanted(&json, false) && wanted(&json, true) && wanted(&plain, true));
        assert!(!wanted(&plain, false));
        let off = CertSettings {
            python_hook: false,
            ..json
        };
        assert!(!wanted(&off, true));
    }

    #[test]
    fn installs_once_and_refuses_what_it_did_not_make() {
        let root = tempfile::tempdir().expect("tempdir");
        let bundle = root.path().join("bundle.pem");
        let dir = dir(&bundle);
        let text = || text(Some(&bundle), PythonLogs::AsConfigured);
        let ensure = |write| ensure(&settings(&bundle, PythonLogs::AsConfigured), true, write);
        // A dry run writes nothing.
        assert_eq!(ensure(false), HookStatus::Ready);
        assert!(!dir.exists());
        assert_eq!(ensure(true), HookStatus::Ready);
        let file = dir.join(FILE);
        assert_eq!(fs::read_to_string(&file).expect("hook"), text());
        for made in [&dir, &dir.join("__pycache__")] {
            let mode = fs::metadata(made).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{}", made.display());
        }
        // Up to date: left alone (the same inode).
        let inode = fs::metadata(&file).expect("meta").ino();
        assert_eq!(ensure(true), HookStatus::Ready);
        assert_eq!(fs::metadata(&file).expect("meta").ino(), inode);
        // Changed: rewritten.
        fs::write(&file, "print('planted')").expect("write");
        assert_eq!(ensure(true), HookStatus::Ready);
        assert_eq!(fs::read_to_string(&file).expect("hook"), text());
        // Writable by others: not used, not repaired.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let HookStatus::Problem(problem) = ensure(true) else {
            panic!("a world-writable hook directory was used");
        };
        assert!(problem.contains("writable by others"), "{problem}");
        // A symlink: not followed.
        fs::remove_dir_all(&dir).expect("rm");
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("mkdir");
        symlink(&elsewhere, &dir).expect("symlink");
        let HookStatus::Problem(problem) = ensure(true) else {
            panic!("a symlinked hook directory was used");
        };
        assert!(problem.contains("symlink"), "{problem}");
        assert_eq!(fs::read_dir(&elsewhere).expect("list").count(), 0);
    }
}
