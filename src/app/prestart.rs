//! The pre-start task: `VARDR_PRESTART` (a command, split like `UVICORN_OPTS`) or tiangolo's
//! `PRE_START_PATH` (a file). It runs once, after the certificate pass and before the app,
//! supervised like the app (see `init::run`).
//!
//! How a `PRE_START_PATH` file runs, decided by what it is, since a shell-less image cannot
//! source it as tiangolo's `start.sh` did: `.py` with the app's Python; `.sh` with `/bin/sh`
//! (none in distroless: then nothing starts, exit 2, saying so); anything else as itself, so an
//! executable with its own `#!` line runs like any command.

use std::ffi::OsString;
use std::path::Path;

/// The pre-start command and the variable it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub argv: Vec<OsString>,
    pub source: &'static str,
}

/// The pre-start task, if one is asked for, or why it cannot run (exit 2). `python` is the
/// app's interpreter, for a `.py` file; `shell` where `/bin/sh` is looked for (tests use another
/// root).
pub fn task(
    prestart: &[String],
    path: Option<&Path>,
    python: Option<&Path>,
    shell: &Path,
) -> Result<Option<Task>, String> {
    match (prestart.is_empty(), path) {
        (true, None) => Ok(None),
        (false, Some(_)) => {
            Err("VARDR_PRESTART and PRE_START_PATH are both set: unset one".to_owned())
        }
        (false, None) => Ok(Some(Task {
            argv: prestart.iter().map(OsString::from).collect(),
            source: "VARDR_PRESTART",
        })),
        (true, Some(file)) => file_task(file, python, shell).map(Some),
    }
}

fn file_task(file: &Path, python: Option<&Path>, shell: &Path) -> Result<Task, String> {
    let refuse = |why: &str| format!("PRE_START_PATH={} {why}", file.display());
    if !file.is_file() {
        return Err(refuse("is not a file"));
    }
    let interpreter = match file.extension().and_then(|e| e.to_str()) {
        Some("py") => {
            Some(python.ok_or_else(|| refuse("needs Python, and there is none on PATH"))?)
        }
        Some("sh") if shell.exists() => Some(shell),
        Some("sh") => {
            return Err(refuse("is a shell script and this image has no /bin/sh"));
        }
        _ => None,
    };
    let mut argv: Vec<OsString> = interpreter.map(OsString::from).into_iter().collect();
    argv.push(file.into());
    Ok(Task {
        argv,
        source: "PRE_START_PATH",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_file_and_the_conflicts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "").expect("write");
            path
        };
        let (py, sh, exe) = (write("m.py"), write("m.sh"), write("migrate"));
        let python = Path::new("/venv/bin/python3");
        let shell = dir.path().join("sh");
        let argv = |file: &Path, shell: &Path| {
            task(&[], Some(file), Some(python), shell).map(|t| t.map(|t| t.argv))
        };
        assert_eq!(
            argv(&py, &shell),
            Ok(Some(vec![python.into(), py.clone().into()]))
        );
        assert_eq!(argv(&exe, &shell), Ok(Some(vec![exe.clone().into()])));
        let error = argv(&sh, &shell).expect_err("no shell");
        assert!(error.contains("/bin/sh"), "{error}");
        std::fs::write(&shell, "").expect("write");
        assert_eq!(
            argv(&sh, &shell),
            Ok(Some(vec![shell.clone().into(), sh.clone().into()]))
        );
        assert!(argv(&dir.path().join("missing.py"), &shell).is_err());
        assert!(argv(dir.path(), &shell).is_err());
        let words = ["alembic".to_owned(), "upgrade".to_owned()];
        assert!(task(&words, Some(&py), Some(python), &shell).is_err());
        let t = task(&words, None, None, &shell).expect("ok").expect("task");
        assert_eq!((t.argv.len(), t.source), (2, "VARDR_PRESTART"));
        assert_eq!(task(&[], None, None, &shell), Ok(None));
        assert!(
            task(&[], Some(&py), None, &shell).is_err(),
            "a .py needs Python"
        );
    }
}
