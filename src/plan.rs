//! What a run will do, decided before anything starts.
//!
//! [`Plan::build`] has the certificate worker judge (and, in a run, write) the bundle, decides the
//! child's environment from the worker's report, finds the app and checks that the command can
//! start. A run then hands [`Plan::launch`] to the supervisor; `--dry-run` prints the very same
//! value. Nothing is changed after the fact: what the report says decides the launch.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::app::runtime::Runtime;
use crate::app::{self, Uvicorn};
use crate::certs::exports::{self, Export};
use crate::certs::summary::{lossy, verdict_map};
use crate::certs::worker::{self, Reporting, WorkerError};
use crate::certs::{BundleStatus, FileVerdict, Mode, Planned, Report};
use crate::config::{Config, Reload, WatchSettings};
use crate::events;
use crate::init::{ExitPolicy, Launch};

/// The pre-start task's launch and the variable that asked for it.
#[derive(Debug)]
pub struct Prestart {
    pub launch: Launch,
    pub source: &'static str,
}

#[derive(Debug)]
pub struct Plan {
    pub certs_dir: PathBuf,
    pub bundle: PathBuf,
    /// The worker's report, or why there is none.
    pub certs: Result<Report, WorkerError>,
    /// The CA variables the child gets (the user's own values kept are listed too).
    pub exports: Vec<Export>,
    /// Inherited CA variables removed from the child's environment: they name our bundle path,
    /// and no bundle is exported this time.
    pub unset: Vec<&'static str>,
    /// `None` when the command was given after `--`.
    pub uvicorn: Option<Uvicorn>,
    /// Whose certificate verifier the verdicts match: the Python the command starts.
    pub runtime: Runtime,
    pub launch: Launch,
    /// The pre-start task, run before `launch` with the same environment.
    pub prestart: Option<Prestart>,
    /// Said before a run starts (and by the dry run): variables read but not (all) used.
    pub warnings: Vec<String>,
    /// Why a run would not start: exit 2.
    pub errors: Vec<String>,
    /// Why the command cannot be started: a run exits with this code (127 or 126).
    pub command_problem: Option<(u8, String)>,
    /// Live trust: whether the bundle is kept up to date after start, and the reload policy.
    pub watch: WatchSettings,
}

impl Plan {
    /// The plan for `vardr-init [-- COMMAND...]`; `command` is `None` for the default (uvicorn).
    /// `mode` says whether the worker writes the bundle.
    pub fn build(
        config: &Config,
        command: Option<Vec<OsString>>,
        now: SystemTime,
        mode: Mode,
    ) -> Plan {
        let mut errors = Vec::new();
        let (uvicorn, argv, policy) = match command {
            Some(command) => (None, command, ExitPolicy::Status),
            None => match app::uvicorn(config) {
                Ok(uvicorn) => {
                    let argv = uvicorn.argv.clone();
                    (Some(uvicorn), argv, app::EXIT_POLICY)
                }
                Err(why) => {
                    errors.extend(why);
                    (None, Vec::new(), app::EXIT_POLICY)
                }
            },
        };
        if config.watch.enabled {
            errors.extend(reload_problem(config, &argv));
        }
        let starts = errors.is_empty();
        let settings = &config.certs;
        let program = argv.first().map(OsString::as_os_str);
        let runtime = Runtime::find(settings.tls_profile, program, config.path.as_deref());
        let profile = runtime.profile;
        let certs = match mode {
            // A run: the worker logs the pass itself; PID 1 gets only what decides the launch.
            // One that will not start (the app cannot be found) writes nothing either.
            Mode::Write | Mode::Refresh => {
                let mode = if starts { Mode::Write } else { Mode::Check };
                worker::run_as(settings, profile, now, mode, Reporting::Logged { starts })
            }
            Mode::Check => worker::run(settings, profile, now, mode),
        };
        let exported = match &certs {
            Ok(report) => {
                // Strict mode's reasons first: they are about what was found before the app.
                errors.splice(0..0, report.refusals.iter().cloned());
                report.exported()
            }
            Err(_) => false,
        };
        let (exports, unset) = match (&certs, exported) {
            (Ok(report), true) => (
                exports::exports(settings, report.system.as_deref(), &settings.bundle),
                Vec::new(),
            ),
            _ => (Vec::new(), exports::stale_variables(settings)),
        };
        let mut words = argv.into_iter();
        let launch = Launch {
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            set_env: exports
                .iter()
                .filter(|e| !e.user_value)
                .map(|e| (e.name, e.value.clone()))
                .collect(),
            unset_env: unset.clone(),
            stop_timeout: config.stop_timeout,
            stop_delay: config.lifecycle.stop_delay,
            run_timeout: None,
            policy,
        };
        let (prestart, mut warnings) =
            Plan::prestart(config, uvicorn.as_ref(), &launch, &mut errors);
        warnings.extend(uvicorn.iter().flat_map(|u| u.warnings.iter().cloned()));
        if config.watch.reload != Reload::None && !config.watch.enabled {
            warnings.push(format!(
                "VARDR_CERTS_RELOAD={} does nothing without VARDR_CERTS_WATCH=true",
                config.watch.reload.as_str()
            ));
        }
        let command_problem = if errors.is_empty() {
            let programs = prestart.iter().map(|p| &p.launch.program);
            programs
                .chain([&launch.program])
                .find_map(|program| crate::init::foresee(program, config.path.as_deref()).err())
        } else {
            None
        };
        let mut plan = Plan {
            certs_dir: settings.dir.clone(),
            bundle: settings.bundle.clone(),
            certs,
            exports,
            unset,
            uvicorn,
            runtime,
            launch,
            prestart,
            warnings,
            errors,
            command_problem,
            watch: config.watch,
        };
        if settings.strict
            && let Some(problem) = plan.bundle_problem()
        {
            plan.errors
                .insert(0, format!("VARDR_CERTS_STRICT=true and {problem}"));
        }
        plan
    }

    /// The watched directories, as the worker found them.
    fn watched(&self) -> &[PathBuf] {
        self.certs.as_ref().map_or(&[], |r| &r.watch)
    }

    /// The pre-start task, with the app's environment and Python.
    fn prestart(
        config: &Config,
        uvicorn: Option<&Uvicorn>,
        main: &Launch,
        errors: &mut Vec<String>,
    ) -> (Option<Prestart>, Vec<String>) {
        let life = &config.lifecycle;
        let path = life.pre_start_path.as_deref();
        let python = match uvicorn {
            Some(u) => Some(u.python.clone()),
            None => app::find_python(config.path.as_deref()),
        };
        let shell = Path::new("/bin/sh");
        let task = match app::prestart::task(&life.prestart, path, python.as_deref(), shell) {
            Ok(task) => task,
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let prestart = task.map(|task| {
            let mut words = task.argv.into_iter();
            Prestart {
                launch: Launch {
                    program: words.next().unwrap_or_default(),
                    args: words.collect(),
                    set_env: main.set_env.clone(),
                    unset_env: main.unset_env.clone(),
                    stop_timeout: main.stop_timeout,
                    stop_delay: None,
                    run_timeout: life.prestart_timeout,
                    policy: ExitPolicy::Status,
                },
                source: task.source,
            }
        });
        // The warnings start here: the uvicorn side's are added after.
        (prestart, Vec::new())
    }

    /// Why the custom CAs will not reach the child although some were accepted (or the worker
    /// failed): the service starts on the system trust only.
    pub fn bundle_problem(&self) -> Option<String> {
        match &self.certs {
            Ok(report) => match &report.bundle {
                BundleStatus::Problem(problem) => Some(problem.clone()),
                _ => None,
            },
            Err(e) => Some(e.to_string()),
        }
    }

    pub fn would_start(&self) -> bool {
        self.errors.is_empty() && self.command_problem.is_none()
    }

    /// Why a run would not start, as the dry run says it: the errors (exit 2), then a command
    /// that cannot start, with the code a run exits with.
    fn reasons_not_to_start(&self) -> Vec<String> {
        let command = self.command_problem.as_ref();
        let command = command.map(|(code, problem)| format!("{problem} (a run exits {code})"));
        self.errors.iter().cloned().chain(command).collect()
    }

    /// The plan for a human: `vardr-init --dry-run`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Certificates in {}, judged for {}: {}",
            self.certs_dir.display(),
            self.runtime.profile,
            self.runtime.source
        );
        let report = self.certs.as_ref().ok();
        let results = report.map_or(&[][..], |r| &r.results);
        if results.is_empty() && report.is_some() {
            let _ = writeln!(
                out,
                "  none (no custom CAs: the system trust store applies)"
            );
        }
        for result in results {
            let verdict = match result.verdict {
                FileVerdict::Accepted(_) => "SUCCESS",
                FileVerdict::Rejected(_) => "FAILED ",
            };
            let _ = writeln!(out, "  {verdict} {}: {}", result.name, result.detail());
            for warning in &result.warnings {
                let _ = writeln!(out, "    warning: {warning}");
            }
        }
        for warning in report.map_or(&[][..], |r| &r.warnings) {
            let _ = writeln!(out, "  warning: {warning}");
        }
        let bundle = self.bundle.display();
        if let Some(c) = report {
            let system = match (&c.system, c.results.is_empty()) {
                (Some(path), _) => path.display().to_string(),
                (None, true) => "not read (no custom certificates to merge)".to_owned(),
                (None, false) => "none found".to_owned(),
            };
            let _ = writeln!(out, "System bundle: {system}");
            let action = match c.planned {
                Planned::Nothing => "none: nothing to add to the system trust".to_owned(),
                Planned::Reuse => format!(
                    "reuse {bundle} (inputs unchanged: {} system + {} custom certificates)",
                    c.system_certificates, c.custom_certificates
                ),
                Planned::Build | Planned::Same => format!(
                    "build {bundle}: {} system + {} custom certificates ({} duplicates dropped)",
                    c.system_certificates, c.custom_certificates, c.duplicates
                ),
            };
            let _ = writeln!(out, "Bundle: {action}");
        }
        if let Some(problem) = self.bundle_problem() {
            let _ = writeln!(
                out,
                "  warning: {problem}: the service would start with the system trust only"
            );
        }
        let _ = writeln!(out, "Environment for the child:");
        if self.exports.is_empty() && self.unset.is_empty() {
            let _ = writeln!(out, "  (nothing added)");
        }
        for name in &self.unset {
            let _ = writeln!(
                out,
                "  {name} removed (it names {bundle}, which is not exported this time)"
            );
        }
        for export in &self.exports {
            let note = if export.user_value {
                "  (your value, kept)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {}={}{note}",
                export.name,
                export.value.to_string_lossy()
            );
        }
        if let Some(u) = &self.uvicorn {
            let _ = writeln!(out, "App: {}:{} ({})", u.module, u.variable, u.source);
        }
        if let Some(u) = &self.uvicorn {
            let _ = writeln!(out, "uvicorn options (UVICORN_OPTS wins):");
            for flag in &u.flags {
                let value = flag
                    .value
                    .as_deref()
                    .map_or(String::new(), |v| format!(" {v}"));
                let _ = writeln!(out, "  {}{value}  ({})", flag.option, flag.source);
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
        if let Some(task) = &self.prestart {
            let limit = match task.launch.run_timeout {
                Some(t) => format!("SIGTERM after {}s", events::seconds(t)),
                None => "no time limit".to_owned(),
            };
            let _ = writeln!(
                out,
                "Pre-start ({}): {} ({limit})",
                task.source,
                task.launch.command_line()
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "Command: {}", self.launch.command_line());
        }
        let stop = match self.launch.stop_timeout {
            Some(t) => format!("SIGKILL {}s after SIGTERM/SIGINT", events::seconds(t)),
            None => "off (the child takes as long as it needs)".to_owned(),
        };
        let _ = writeln!(out, "Stop timeout: {stop}");
        let delay = match self.launch.stop_delay {
            Some(t) => format!("{}s after the first SIGTERM", events::seconds(t)),
            None => "off".to_owned(),
        };
        let _ = writeln!(out, "Stop delay: {delay}");
        let watch = &self.watch;
        if watch.enabled {
            let every = match watch.recheck {
                Some(every) => format!("every {}s", events::seconds(every)),
                None => "off".to_owned(),
            };
            let dirs: Vec<String> = self
                .watched()
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            let _ = writeln!(
                out,
                "Certificates watch: on, reload {}, debounce {}s, re-check {every}: {}",
                watch.reload.as_str(),
                events::seconds(watch.debounce),
                dirs.join(", ")
            );
        } else {
            let _ = writeln!(out, "Certificates watch: off");
        }
        for error in self.reasons_not_to_start() {
            let _ = writeln!(out, "Error: {error}");
        }
        let verdict = if self.would_start() {
            "yes"
        } else {
            "no (exit 2)"
        };
        let _ = writeln!(out, "Would start: {verdict}");
        out
    }

    /// The plan for a program: `vardr-init --dry-run --json` (documented in docs/contract.md).
    pub fn to_json(&self, now: SystemTime) -> String {
        let report = self.certs.as_ref().ok();
        let argv: Vec<String> = if self.errors.is_empty() {
            std::iter::once(&self.launch.program)
                .chain(&self.launch.args)
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        } else {
            Vec::new()
        };
        let errors = self.reasons_not_to_start();
        events::line(&PlanEvent {
            timestamp: events::timestamp(now),
            version: env!("CARGO_PKG_VERSION"),
            would_start: self.would_start(),
            errors,
            exit_code: self.command_problem.as_ref().map(|(code, _)| *code),
            certificates: CertificatesJson {
                dir: Some(&self.certs_dir),
                bundle: Some(&self.bundle),
                action: report.map_or("failed", |r| r.planned.as_str()),
                system_bundle: report.and_then(|r| r.system.as_deref()),
                system_certificates: report.map_or(0, |r| r.system_certificates),
                total_certificates: report.map_or(0, |r| r.custom_certificates),
                duplicates: report.map_or(0, |r| r.duplicates),
                successful_imports: report.map_or(0, Report::successful),
                failed_imports: report.map_or(0, Report::failed),
                results: report.map_or(&[], |r| &r.results),
                warnings: report.map_or_else(Vec::new, |r| {
                    let files = r.results.iter().flat_map(|result| {
                        result
                            .warnings
                            .iter()
                            .map(|w| format!("{}: {w}", result.name))
                    });
                    r.warnings.iter().cloned().chain(files).collect()
                }),
                runtime: &self.runtime,
            },
            environment: self
                .exports
                .iter()
                .map(|e| (e.name, e.value.to_string_lossy().into_owned()))
                .collect(),
            user_values_kept: self
                .exports
                .iter()
                .filter(|e| e.user_value)
                .map(|e| e.name)
                .collect(),
            unset: &self.unset,
            bundle_problem: self.bundle_problem(),
            app: self.uvicorn.as_ref().map(|u| AppJson {
                module: &u.module,
                variable: &u.variable,
                source: &u.source,
                app_dir: u.app_dir.as_deref(),
                python: Some(&u.python),
                workers: u.workers,
                timeout_graceful_shutdown: u.graceful_timeout,
                flags: &u.flags,
            }),
            argv,
            stop_timeout: self.launch.stop_timeout.map(|t| t.as_secs_f64()),
            stop_delay: self.launch.stop_delay.map(|t| t.as_secs_f64()),
            prestart: self.prestart.as_ref().map(|task| PrestartJson {
                argv: std::iter::once(&task.launch.program)
                    .chain(&task.launch.args)
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                source: task.source,
                timeout: task.launch.run_timeout.map(|t| t.as_secs_f64()),
            }),
            warnings: &self.warnings,
            watch: WatchJson {
                enabled: self.watch.enabled,
                reload: self.watch.reload.as_str(),
                debounce: self.watch.debounce.as_secs_f64(),
                recheck: self.watch.recheck.map(|t| t.as_secs_f64()),
                dirs: self
                    .watched()
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect(),
            },
        })
    }
}

/// Why `VARDR_CERTS_RELOAD=hup` cannot work with this command: a single uvicorn process (no
/// `--workers` above 1, or `--reload`) handles only SIGINT and SIGTERM, and dies of SIGHUP.
fn reload_problem(config: &Config, argv: &[OsString]) -> Option<String> {
    if config.watch.reload != Reload::Hup {
        return None;
    }
    let workers = app::uvicorn_workers(argv, config.tiangolo.web_concurrency)?;
    (workers <= 1).then(|| {
        "VARDR_CERTS_RELOAD=hup needs uvicorn with more than one worker, and this one runs a \
         single process (WORKERS=1, or --reload): it would die of the SIGHUP, as uvicorn \
         without --workers handles only SIGINT and SIGTERM; set WORKERS=2 or more, or use \
         VARDR_CERTS_RELOAD=restart"
            .to_owned()
    })
}

/// `vardr-init --dry-run --json`: `"type":"plan"` first, like every event.
#[derive(Serialize)]
#[serde(tag = "type", rename = "plan")]
struct PlanEvent<'a> {
    timestamp: String,
    version: &'static str,
    would_start: bool,
    errors: Vec<String>,
    /// What a run would exit with when the command cannot start (127, 126).
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<u8>,
    certificates: CertificatesJson<'a>,
    environment: std::collections::BTreeMap<&'static str, String>,
    user_values_kept: Vec<&'static str>,
    unset: &'a [&'static str],
    bundle_problem: Option<String>,
    app: Option<AppJson<'a>>,
    argv: Vec<String>,
    stop_timeout: Option<f64>,
    stop_delay: Option<f64>,
    prestart: Option<PrestartJson>,
    warnings: &'a [String],
    watch: WatchJson,
}

/// Live trust's settings, and what a run would watch.
#[derive(Serialize)]
struct WatchJson {
    enabled: bool,
    reload: &'static str,
    debounce: f64,
    recheck: Option<f64>,
    dirs: Vec<String>,
}

#[derive(Serialize)]
struct PrestartJson {
    argv: Vec<String>,
    source: &'static str,
    timeout: Option<f64>,
}

#[derive(Serialize)]
struct CertificatesJson<'a> {
    #[serde(serialize_with = "lossy")]
    dir: Option<&'a Path>,
    #[serde(serialize_with = "lossy")]
    bundle: Option<&'a Path>,
    action: &'static str,
    #[serde(serialize_with = "lossy")]
    system_bundle: Option<&'a Path>,
    system_certificates: usize,
    total_certificates: usize,
    duplicates: usize,
    successful_imports: usize,
    failed_imports: usize,
    #[serde(serialize_with = "verdict_map")]
    results: &'a [crate::certs::FileResult],
    /// The pass's warnings, then each accepted file's (`NAME: warning`).
    warnings: Vec<String>,
    runtime: &'a Runtime,
}

#[derive(Serialize)]
struct AppJson<'a> {
    module: &'a str,
    variable: &'a str,
    source: &'a str,
    #[serde(serialize_with = "lossy")]
    app_dir: Option<&'a Path>,
    #[serde(serialize_with = "lossy")]
    python: Option<&'a Path>,
    workers: u32,
    timeout_graceful_shutdown: Option<u64>,
    /// Each option vardr-init passes and the variable it came from.
    flags: &'a [crate::app::Flag],
}
