//! Starting the child, and foreseeing (for `--dry-run`, and before a run) whether it can be.

use std::ffi::OsStr;
use std::io::{self, Read as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::config::vars::DEFAULT_PATH;
use crate::error;
use crate::exit;
use crate::sys::{self, Pid};

use super::Launch;

/// Starts the child. On failure, logs why and returns the exit code (127, 126 or 1).
pub(super) fn spawn(launch: &Launch, take_terminal: bool, non_default: u64) -> Result<Pid, u8> {
    let mut command = Command::new(&launch.program);
    command.args(&launch.args).envs(
        launch
            .set_env
            .iter()
            .map(|(name, value)| (name, value.as_os_str())),
    );
    for name in &launch.unset_env {
        command.env_remove(name);
    }
    // SAFETY: prepare_child makes only async-signal-safe calls, as pre_exec requires.
    unsafe { command.pre_exec(move || sys::prepare_child(take_terminal, non_default)) };
    match command.spawn() {
        // The `Child` handle is dropped unused: all waiting goes through `reap_zombies`.
        Ok(child) => Pid::try_from(child.id()).map_err(|_| exit::FAILURE),
        Err(e) => {
            let (code, message) = not_started(&launch.program, &e);
            error!("{message}");
            Err(code)
        }
    }
}

/// Why `program` could not be started, as an exit code (127 not found, 126 not executable, 1
/// otherwise) and a message that says what to do.
fn not_started(program: &OsStr, e: &io::Error) -> (u8, String) {
    let program = program.to_string_lossy();
    let looked_up = !program.contains('/');
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::NotFound, _) if looked_up => (
            exit::NOT_FOUND,
            format!(
                "command not found: {program:?} is not in any directory of PATH; give its full path or fix PATH"
            ),
        ),
        (io::ErrorKind::NotFound, _) => (
            exit::NOT_FOUND,
            format!(
                "command not found: {program:?} does not exist (or it is a script whose #! interpreter does not exist)"
            ),
        ),
        (io::ErrorKind::PermissionDenied, _) => (
            exit::NOT_EXECUTABLE,
            format!(
                "command not executable: {program:?}: {e}; check that it is a file, has the execute bit, and is not on a noexec mount"
            ),
        ),
        (_, Some(libc::ENOEXEC)) => (
            exit::NOT_EXECUTABLE,
            format!(
                "command not executable: {program:?} is neither a binary for this machine nor a script starting with #!"
            ),
        ),
        _ => (exit::FAILURE, format!("cannot start {program:?}: {e}")),
    }
}

/// What starting `program` would end with, found without starting it (for `--dry-run`, and
/// before a run): `Err` with the exit code and message [`spawn`] would give, for what can be
/// known from the file system: not found, not executable, not a binary or script, a script whose
/// `#!` interpreter is missing. `path` is the `PATH` the child is looked up in.
pub fn foresee(program: &OsStr, path: Option<&OsStr>) -> Result<(), (u8, String)> {
    let fail = |errno: i32| Err(not_started(program, &io::Error::from_raw_os_error(errno)));
    if program.is_empty() {
        return fail(libc::ENOENT);
    }
    if program.as_encoded_bytes().contains(&b'/') {
        return check_file(Path::new(program)).or_else(fail);
    }
    // execvp's rule: the first directory where it can be run; else EACCES if one refused, else
    // ENOENT.
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut refused = false;
    for dir in std::env::split_paths(path) {
        match check_file(&dir.join(program)) {
            Ok(()) => return Ok(()),
            Err(libc::EACCES) | Err(libc::ENOEXEC) => refused = true,
            Err(_) => {}
        }
    }
    fail(if refused { libc::EACCES } else { libc::ENOENT })
}

/// Whether `exec` of this file can get as far as running it; else the errno it would fail with.
fn check_file(file: &Path) -> Result<(), i32> {
    let meta = std::fs::metadata(file).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    if meta.is_dir() || sys::can_execute(file).is_err() {
        return Err(libc::EACCES);
    }
    let mut head = [0u8; 256];
    let read = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..read];
    if head.starts_with(b"\x7fELF") {
        return Ok(());
    }
    let Some(line) = head.strip_prefix(b"#!") else {
        return Err(libc::ENOEXEC);
    };
    // The interpreter: the first word of the #! line.
    let interpreter = line
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .trim_ascii()
        .split(|b| b.is_ascii_whitespace())
        .next()
        .unwrap_or_default();
    let interpreter = Path::new(OsStr::from_bytes(interpreter));
    match std::fs::metadata(interpreter) {
        Ok(_) => Ok(()),
        Err(_) => Err(libc::ENOENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a run's spawn would say, foreseen: found, not found, not executable, not a program.
    #[test]
    fn foresee_agrees_with_exec() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path.into_os_string()
        };
        let script = write("ok.sh", "#!/bin/sh\nexit 0\n", 0o755);
        let no_x = write("no-x.sh", "#!/bin/sh\n", 0o644);
        let text = write("text", "hello\n", 0o755);
        let orphan = write("orphan", "#!/nonexistent/interpreter\n", 0o755);
        let code =
            |program: &OsStr, path: Option<&OsStr>| foresee(program, path).err().map(|e| e.0);
        assert_eq!(code(&script, None), None);
        assert_eq!(code(OsStr::new("sh"), None), None);
        assert_eq!(
            code(OsStr::new("ok.sh"), Some(dir.path().as_os_str())),
            None
        );
        assert_eq!(code(OsStr::new("no-such-cmd-vardr"), None), Some(127));
        assert_eq!(code(&orphan, None), Some(127));
        assert_eq!(code(&no_x, None), Some(126));
        assert_eq!(code(&text, None), Some(126));
        assert_eq!(code(dir.path().as_os_str(), None), Some(126));
        assert_eq!(
            code(OsStr::new("no-x.sh"), Some(dir.path().as_os_str())),
            Some(126)
        );
    }
}
