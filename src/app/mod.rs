//! The default command: which app, which interpreter, and the uvicorn argv that runs it.
//!
//! `PYTHON -m uvicorn MODULE:VAR --host HOST --port PORT [--workers N] [--app-dir DIR]
//! [--timeout-graceful-shutdown S] [tiangolo's options] UVICORN_OPTS...`: `UVICORN_OPTS` comes
//! last so that any option the user repeats there wins (uvicorn keeps the last value of an
//! option); an option it repeats is not passed by vardr-init at all, so the argv says it once.
//! Each option passed is a [`Flag`] that names the variable it came from (`--dry-run` shows it).
//!
//! The app: `APP_MODULE` (or `MODULE_NAME`), else `[tool.fastapi] entrypoint` in
//! `VARDR_APP_DIR/pyproject.toml` ([`pyproject`]), else discovery ([`discover`]); those two read
//! the app's files, so they run in a forked worker ([`discover::find`]).

pub mod clients;
pub mod cpus;
pub mod discover;
pub mod logs;
pub mod prestart;
pub mod pyproject;
pub mod runtime;

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::vars::{self, DEFAULT_PATH};
use crate::config::{Config, Listen, UvicornEnv, Workers, option_values};
use crate::init::ExitPolicy;

/// uvicorn's exit conventions, for the supervisor: a server that runs until it is stopped.
pub const EXIT_POLICY: ExitPolicy = ExitPolicy::Server { name: "uvicorn" };

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
    /// The options vardr-init passes before `UVICORN_OPTS`, with where each came from.
    pub flags: Vec<Flag>,
    /// Variables read but not (all) used: said before the run and in the dry run.
    pub warnings: Vec<String>,
    pub argv: Vec<OsString>,
}

/// One uvicorn option vardr-init passes, and the variable (or rule) it came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Flag {
    pub option: &'static str,
    pub value: Option<String>,
    pub source: &'static str,
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
        // Read in the app discovery worker: pyproject.toml, else the source.
        _ => match discover::find(&config.app.dir, target.variable.as_deref()) {
            Ok(found) => Some((
                found.module,
                found.variable,
                found.source,
                not_cwd(&found.sys_path).then_some(found.sys_path),
            )),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let (Some(python), Some((module, variable, source, app_dir))) = (python, app) else {
        return Err(errors);
    };

    let opts = &config.app.uvicorn_opts;
    let mut flags = Flags {
        opts,
        list: Vec::new(),
        warnings: Vec::new(),
    };
    listen(config, &mut flags);
    let (workers, from) = workers(config);
    // WEB_CONCURRENCY and UVICORN_WORKERS reach uvicorn too, which reads them when --workers is
    // not given: passed, the argv says what runs.
    let uvicorn_env = &config.app.uvicorn_env;
    if workers > 1 || config.tiangolo.web_concurrency.is_some() || uvicorn_env.workers.is_some() {
        flags.push("--workers", Some(workers.to_string()), from);
    }
    if let Some(dir) = &app_dir {
        flags.push(
            "--app-dir",
            Some(dir.display().to_string()),
            "the app's location",
        );
    }
    let graceful = match (config.stop_timeout, config.tiangolo.graceful_timeout) {
        (Some(stop), _) => graceful_timeout(stop).map(|s| (s, "VARDR_STOP_TIMEOUT")),
        (None, Some(seconds)) => Some((u64::from(seconds), "GRACEFUL_TIMEOUT")),
        (None, None) => None,
    };
    let graceful_timeout = graceful.and_then(|(seconds, from)| {
        flags
            .push(
                "--timeout-graceful-shutdown",
                Some(seconds.to_string()),
                from,
            )
            .then_some(seconds)
    });
    tiangolo(config, &mut flags);

    let mut argv: Vec<OsString> = vec![
        python.clone().into(),
        "-m".into(),
        "uvicorn".into(),
        format!("{module}:{variable}").into(),
    ];
    for flag in &flags.list {
        argv.push(flag.option.into());
        argv.extend(flag.value.iter().map(OsString::from));
    }
    argv.extend(opts.iter().map(OsString::from));
    if uvicorn_env.reload {
        let note = "UVICORN_RELOAD is set: uvicorn runs its reloader, one process, whatever \
                    --workers says";
        flags.warnings.push(note.to_owned());
    }
    // What uvicorn will run, UVICORN_OPTS and uvicorn's own variables included.
    let web_concurrency = config.tiangolo.web_concurrency;
    let workers = uvicorn_workers(&argv, uvicorn_env, web_concurrency).unwrap_or(workers);
    Ok(Uvicorn {
        python,
        module,
        variable,
        source,
        app_dir,
        workers,
        graceful_timeout,
        flags: flags.list,
        warnings: flags.warnings,
        argv,
    })
}

/// The options being collected: one that `UVICORN_OPTS` also gives is left to it.
struct Flags<'a> {
    opts: &'a [String],
    list: Vec<Flag>,
    warnings: Vec<String>,
}

impl Flags<'_> {
    /// Adds the option unless `UVICORN_OPTS` has it; says whether it was added.
    fn push(&mut self, option: &'static str, value: Option<String>, source: &'static str) -> bool {
        // --access-log and --no-access-log are one setting.
        let repeated = has_option(self.opts, option)
            || (option == "--no-access-log" && has_option(self.opts, "--access-log"));
        if !repeated {
            self.list.push(Flag {
                option,
                value,
                source,
            });
        }
        !repeated
    }
}

/// `--host`/`--port`, or `--uds`, where [`Config::listen`] says.
fn listen(config: &Config, flags: &mut Flags<'_>) {
    let t = &config.tiangolo;
    if t.bind.is_some() && (t.host_set || t.port_set) {
        let note = "BIND ignored: HOST or PORT is set";
        flags.warnings.push(note.to_owned());
    }
    match config.listen() {
        Listen::Unix(path) => {
            flags.push("--uds", Some(path.display().to_string()), "BIND");
        }
        Listen::Tcp {
            host,
            port,
            host_from,
            port_from,
        } => {
            flags.push("--host", Some(host), host_from);
            flags.push("--port", Some(port.to_string()), port_from);
        }
    }
}

/// The worker count and where it came from: `WORKERS`, else tiangolo's `WEB_CONCURRENCY`, else
/// his formula when `WORKERS_PER_CORE` or `MAX_WORKERS` is set: `max(int(per_core * CPUs), 2)`,
/// at most `MAX_WORKERS`. CPUs are counted as `WORKERS=auto` counts them (the cgroup limit),
/// where his `multiprocessing.cpu_count()` saw the host's.
fn workers(config: &Config) -> (u32, &'static str) {
    let t = &config.tiangolo;
    match (config.workers, t.workers_set) {
        (Workers::Auto, true) => return (cpus::auto_workers().get(), "WORKERS=auto"),
        (Workers::Count(n), true) => return (n.get(), "WORKERS"),
        _ => {}
    }
    // uvicorn prefers its own variable to WEB_CONCURRENCY.
    if let Some(n) = config.app.uvicorn_env.workers {
        return (n, "UVICORN_WORKERS");
    }
    if let Some(n) = t.web_concurrency {
        return (n, "WEB_CONCURRENCY");
    }
    if t.workers_per_core.is_none() && t.max_workers.is_none() {
        return (1, "default");
    }
    let cpus = f64::from(cpus::auto_workers().get());
    // Truncated like Python's int(); the product is at most 1024 * u32::MAX, and `as` saturates.
    let by_cores = (t.workers_per_core.unwrap_or(1.0) * cpus) as u32;
    let count = by_cores.clamp(2, crate::config::MAX_WORKERS);
    match t.max_workers {
        Some(max) => (count.min(max), "WORKERS_PER_CORE, MAX_WORKERS"),
        None => (count, "WORKERS_PER_CORE"),
    }
}

/// tiangolo's remaining variables, and a warning for each that only gunicorn understood.
fn tiangolo(config: &Config, flags: &mut Flags<'_>) {
    let t = &config.tiangolo;
    if let Some(level) = &t.log_level {
        flags.push("--log-level", Some(level.clone()), "LOG_LEVEL");
    }
    match t.access_log.as_deref() {
        Some("") => {
            flags.push("--no-access-log", None, "ACCESS_LOG");
        }
        None | Some("-") => {}
        Some(path) => flags.warnings.push(format!(
            "ACCESS_LOG={path:?} ignored: uvicorn logs access to stdout"
        )),
    }
    if let Some(seconds) = t.keep_alive {
        flags.push(
            "--timeout-keep-alive",
            Some(seconds.to_string()),
            "KEEP_ALIVE",
        );
    }
    if config.stop_timeout.is_some() && t.graceful_timeout.is_some() {
        let note = "GRACEFUL_TIMEOUT ignored: VARDR_STOP_TIMEOUT wins";
        flags.warnings.push(note.to_owned());
    }
    for var in vars::VARIABLES {
        if t.gunicorn_only.contains(&var.name) {
            // The registry's help line of a gunicorn-only variable says what to do instead.
            let (name, instead) = (var.name, var.help);
            flags
                .warnings
                .push(format!("{name} is gunicorn's, ignored: {instead}"));
        }
    }
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

/// How many worker processes the command's uvicorn runs, read from its command line: `None`
/// when it is not uvicorn (`uvicorn ...`, `python -m uvicorn ...`) nor `fastapi run|dev`.
/// `--reload` (and `fastapi dev`) is one process whatever `--workers` says; without
/// `--workers`, uvicorn reads `WEB_CONCURRENCY`. uvicorn's command line (not `fastapi`'s) also
/// reads `UVICORN_RELOAD` and `UVICORN_WORKERS` (`env`), which an option on the command line
/// overrides. What the SIGHUP policy needs: a single uvicorn process exits on SIGHUP, its
/// `--workers` manager rolls the workers.
pub fn uvicorn_workers(
    argv: &[OsString],
    env: &UvicornEnv,
    web_concurrency: Option<u32>,
) -> Option<u32> {
    let words: Vec<String> = argv
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let program = Path::new(argv.first()?).file_name()?;
    // The module or script, and the arguments after it.
    let (tool, args) = if runtime::is_python_name(program) {
        let at = words.iter().position(|w| w == "-m")?;
        (words.get(at + 1)?.as_str(), words.get(at + 2..)?)
    } else {
        (program.to_str()?, &words[1..])
    };
    let (reload, env) = match tool {
        "uvicorn" => (env.reload, *env),
        "fastapi" => (
            args.first().is_none_or(|sub| sub != "run"),
            UvicornEnv::default(),
        ),
        _ => return None,
    };
    if reload || has_option(args, "--reload") {
        return Some(1);
    }
    let given = option_values(args, "--workers").filter_map(|v| v.parse().ok());
    Some(
        given
            .last()
            .or(env.workers)
            .or(web_concurrency)
            .unwrap_or(1),
    )
}

/// `python3`, then `python`, as [`find_program`] finds them.
pub fn find_python(path: Option<&OsStr>) -> Option<PathBuf> {
    ["python3", "python"]
        .iter()
        .find_map(|name| find_program(name.as_ref(), path))
}

/// The one lookup of a program on `PATH`, as `execvp` finds it: a name with a slash as it is,
/// else the first executable regular file of that name in `PATH`'s absolute directories (`PATH`
/// unset: [`DEFAULT_PATH`]). The interpreter of the default command, of a command's `#!` line,
/// and the TLS clients' programs are all found with it.
pub fn find_program(program: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_encoded_bytes().contains(&b'/') {
        let file = PathBuf::from(program);
        return is_executable_file(&file).then_some(file);
    }
    let path = path.unwrap_or(DEFAULT_PATH.as_ref());
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

/// A regular file with an execute bit.
fn is_executable_file(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `VARDR_CERTS_RELOAD=hup` is checked against: uvicorn's process count, from argv.
    #[test]
    fn uvicorn_workers_from_the_command_line() {
        let workers = |argv: &str, web: Option<u32>| {
            let argv: Vec<OsString> = argv.split(' ').map(OsString::from).collect();
            uvicorn_workers(&argv, &UvicornEnv::default(), web)
        };
        assert_eq!(workers("uvicorn main:app", None), Some(1));
        assert_eq!(
            workers("/venv/bin/uvicorn main:app --workers 4", None),
            Some(4)
        );
        assert_eq!(workers("uvicorn main:app --workers=3", None), Some(3));
        assert_eq!(workers("uvicorn main:app", Some(2)), Some(2));
        assert_eq!(workers("uvicorn main:app --workers 1", Some(2)), Some(1));
        assert_eq!(
            workers("uvicorn main:app --workers 4 --reload", None),
            Some(1)
        );
        assert_eq!(workers("python3 -m uvicorn m:a --workers 2", None), Some(2));
        assert_eq!(workers("/usr/bin/python3.13 -m uvicorn m:a", None), Some(1));
        assert_eq!(workers("fastapi run --workers 2", None), Some(2));
        assert_eq!(workers("fastapi run", None), Some(1));
        assert_eq!(workers("fastapi dev --workers 2", None), Some(1));
        assert_eq!(
            workers("python -m fastapi run main.py --workers 3", None),
            Some(3)
        );
        assert_eq!(
            workers("gunicorn -k uvicorn.workers.UvicornWorker m:a", None),
            None
        );
        assert_eq!(workers("python3 -m http.server", None), None);
        assert_eq!(workers("python3 app.py", None), None);
        // uvicorn's own variables: UVICORN_RELOAD is one process, UVICORN_WORKERS counts before
        // WEB_CONCURRENCY; the command line wins; `fastapi` reads neither.
        let with = |argv: &str, reload, env_workers| {
            let argv: Vec<OsString> = argv.split(' ').map(OsString::from).collect();
            let env = UvicornEnv {
                reload,
                workers: env_workers,
            };
            uvicorn_workers(&argv, &env, Some(5))
        };
        assert_eq!(with("uvicorn m:a --workers 2", true, None), Some(1));
        assert_eq!(with("python3 -m uvicorn m:a", false, Some(3)), Some(3));
        assert_eq!(with("uvicorn m:a --workers 2", false, Some(3)), Some(2));
        assert_eq!(with("uvicorn m:a", false, None), Some(5));
        assert_eq!(with("fastapi run --workers 2", true, Some(3)), Some(2));
        assert_eq!(with("fastapi run", false, Some(3)), Some(5));
    }

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
        // A name with a slash is taken as it is, as execvp takes it; PATH is not searched.
        let named = b.join("python3");
        assert_eq!(
            find_program(named.as_os_str(), Some("/nonexistent".as_ref())),
            Some(named)
        );
        let not_executable = a.join("python3");
        assert_eq!(find_program(not_executable.as_os_str(), Some(&path)), None);
    }

    #[test]
    fn help_states_the_path_searched_when_path_is_unset() {
        assert!(vars::get("PATH").help.contains(DEFAULT_PATH));
    }
}
