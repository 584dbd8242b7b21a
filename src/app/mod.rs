//! The default command: which app, which interpreter, and the uvicorn argv that runs it.
//!
//! `PYTHON -m uvicorn MODULE:VAR --host HOST --port PORT [--workers N] [--app-dir DIR]
//! [--timeout-graceful-shutdown S] UVICORN_OPTS...`: `UVICORN_OPTS` comes last so that any
//! option the user repeats there wins (uvicorn keeps the last value of an option).

pub mod cpus;
pub mod discover;
pub mod runtime;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, Workers};
use crate::init::ExitPolicy;

/// uvicorn's exit conventions, for the supervisor: a server that runs until it is stopped.
pub const EXIT_POLICY: ExitPolicy = ExitPolicy::Server { name: "uvicorn" };

/// Used when `PATH` is unset: where distroless and the official Python images keep python3.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The uvicorn launch, with where each part came from (dry-run shows it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uvicorn {
    pub python: PathBuf,
    pub module: String,
    pub variable: String,
    /// How the app was chosen: `discovered in FILE`, or the variable that named it.
    pub source: String,
    pub app_dir: Option<PathBuf>,
    pub workers: u32,
    pub graceful_timeout: Option<u64>,
    pub argv: Vec<OsString>,
}

/// Builds the uvicorn command, or every reason it cannot be built.
pub fn uvicorn(config: &Config) -> Result<Uvicorn, Vec<String>> {
    let mut errors = Vec::new();
    let python = find_python(config.path.as_deref());
    if python.is_none() {
        errors.push(format!(
            "no Python interpreter: neither python3 nor python is an executable file in PATH={}; \
             install Python in the image or fix PATH",
            config
                .path
                .as_deref()
                .map_or(DEFAULT_PATH.into(), |p| p.to_string_lossy())
        ));
    }
    let target = &config.app.target;
    let cwd = std::env::current_dir().ok();
    let not_cwd = |dir: &Path| match (&cwd, dir.canonicalize()) {
        (Some(cwd), Ok(dir)) => *cwd != dir,
        _ => true,
    };
    let app = match (&target.module, target.set_by) {
        (Some(module), Some(set_by)) => {
            // A module named by the user is imported relative to VARDR_APP_DIR, like a found one.
            let dir = &config.app.dir;
            Some((
                module.clone(),
                target.variable.clone().unwrap_or_else(|| "app".to_owned()),
                format!("set by {set_by}"),
                (dir.is_dir() && not_cwd(dir)).then(|| dir.clone()),
            ))
        }
        _ => match discover::discover(&config.app.dir, target.variable.as_deref()) {
            Ok(found) => Some((
                found.module,
                found.variable,
                format!("discovered in {}", found.file.display()),
                not_cwd(&found.sys_path).then_some(found.sys_path),
            )),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        },
    };
    let (Some(python), Some((module, variable, source, app_dir))) = (python, app) else {
        return Err(errors);
    };

    let workers = match config.workers {
        Workers::Count(n) => n.get(),
        Workers::Auto => cpus::auto_workers().get(),
    };
    let opts = &config.app.uvicorn_opts;
    let graceful_timeout = config
        .stop_timeout
        .filter(|_| !has_option(opts, "--timeout-graceful-shutdown"))
        .and_then(graceful_timeout);

    let mut argv: Vec<OsString> = vec![
        python.clone().into(),
        "-m".into(),
        "uvicorn".into(),
        format!("{module}:{variable}").into(),
        "--host".into(),
        config.host.clone().into(),
        "--port".into(),
        config.port.to_string().into(),
    ];
    if workers > 1 {
        argv.extend(["--workers".into(), workers.to_string().into()]);
    }
    if let Some(dir) = &app_dir {
        argv.extend(["--app-dir".into(), dir.clone().into()]);
    }
    if let Some(seconds) = graceful_timeout {
        argv.extend([
            "--timeout-graceful-shutdown".into(),
            seconds.to_string().into(),
        ]);
    }
    argv.extend(opts.iter().map(OsString::from));
    Ok(Uvicorn {
        python,
        module,
        variable,
        source,
        app_dir,
        workers,
        graceful_timeout,
        argv,
    })
}

/// uvicorn's own graceful shutdown, a little inside vardr-init's hard deadline, so connections
/// are closed cleanly before the SIGKILL: a tenth earlier, at least a second; none under 2 s.
pub fn graceful_timeout(stop_timeout: Duration) -> Option<u64> {
    let margin = (stop_timeout / 10).max(Duration::from_secs(1));
    let seconds = stop_timeout.saturating_sub(margin).as_secs();
    (seconds >= 1).then_some(seconds)
}

/// `--name VALUE` or `--name=VALUE` among the user's options.
fn has_option(opts: &[String], name: &str) -> bool {
    opts.iter().any(|o| {
        o == name
            || o.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// `python3`, then `python`, in the directories of `PATH`: the first executable regular file.
pub fn find_python(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let path = path.unwrap_or(DEFAULT_PATH.as_ref());
    ["python3", "python"].iter().find_map(|name| {
        std::env::split_paths(path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| {
                candidate
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graceful_timeout_is_inside_the_deadline() {
        let secs = |s: f64| graceful_timeout(Duration::from_secs_f64(s));
        assert_eq!(secs(30.0), Some(27));
        assert_eq!(secs(10.0), Some(9));
        assert_eq!(secs(5.0), Some(4));
        assert_eq!(secs(2.0), Some(1));
        assert_eq!(secs(1.5), None);
        assert_eq!(secs(0.5), None);
    }

    #[test]
    fn options_are_recognised_in_both_forms() {
        let opts = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let name = "--timeout-graceful-shutdown";
        assert!(has_option(
            &opts(&["--timeout-graceful-shutdown", "5"]),
            name
        ));
        assert!(has_option(&opts(&["--timeout-graceful-shutdown=5"]), name));
        assert!(!has_option(&opts(&["--timeout-graceful-shutdownx"]), name));
        assert!(!has_option(&opts(&["--root-path", "/x"]), name));
    }

    #[test]
    fn python_is_looked_up_in_path_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir(d).expect("mkdir");
        }
        let exe = |p: &Path| {
            std::fs::write(p, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        };
        std::fs::write(a.join("python3"), "not executable").expect("write");
        exe(&b.join("python3"));
        exe(&a.join("python"));
        let path = std::env::join_paths([&a, &b]).expect("join");
        // python3 anywhere beats python earlier in PATH; a non-executable file is skipped.
        assert_eq!(find_python(Some(&path)), Some(b.join("python3")));
        assert_eq!(find_python(Some("relative:/nonexistent".as_ref())), None);
    }
}
