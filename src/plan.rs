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

use crate::app::clients::{self, CaSource, Found};
use crate::app::logs::AppLogs;
use crate::app::runtime::Runtime;
use crate::app::{self, Uvicorn};
use crate::certs::exports::{self, Export, PythonPath};
use crate::certs::hook::{self, HookStatus};
use crate::certs::summary::{lossy, verdict_map};
use crate::certs::worker::{self, Reporting, WorkerError};
use crate::certs::{BundleStatus, FileVerdict, Mode, Planned, Report};
use crate::config::{CertSettings, Config, PythonLogs, Reload, WatchSettings};
use crate::events;
use crate::init::{ExitPolicy, Launch};

/// The Python hook beside the bundle, as the plan uses it.
#[derive(Debug)]
pub struct Hook {
    /// `VARDR_PYTHON_HOOK`.
    pub enabled: bool,
    pub dir: PathBuf,
    /// `Off` also when no bundle is exported, or the worker failed.
    pub status: HookStatus,
    /// The child's `PYTHONPATH`.
    pub python_path: PythonPath,
}

/// What the child's environment gets from a certificate pass.
#[derive(Debug)]
pub struct Trust {
    /// The CA variables (the user's own values kept are listed too).
    pub exports: Vec<Export>,
    /// Inherited CA variables removed (and `PYTHONPATH`, when it held only an old hook).
    pub unset: Vec<&'static str>,
    pub hook: Hook,
}

impl Trust {
    /// From the pass's report (`None`: the worker failed, and nothing is exported).
    pub fn decide(settings: &CertSettings, report: Option<&Report>) -> Trust {
        let exported = report.filter(|r| r.exported());
        let (exports, mut unset) = match exported {
            Some(report) => (
                exports::exports(settings, report.system.as_deref(), &settings.bundle),
                Vec::new(),
            ),
            None => (Vec::new(), exports::stale_variables(settings)),
        };
        let status = report.map_or(HookStatus::Off, |r| r.hook.clone());
        let dir = hook::dir(&settings.bundle);
        let python_path = exports::python_path(settings, &dir, status == HookStatus::Ready);
        if python_path == PythonPath::Unset {
            unset.push("PYTHONPATH");
        }
        Trust {
            exports,
            unset,
            hook: Hook {
                enabled: settings.python_hook,
                dir,
                status,
                python_path,
            },
        }
    }

    /// How each of the clients `found` gets the bundle `bundle`.
    pub fn coverage(&self, found: &[Found], bundle: &Path) -> Vec<Covered> {
        found
            .iter()
            .map(|f| {
                let (coverage, detail) = self.reach(f.known.reads, bundle);
                let reads: Vec<&str> = f.known.reads.iter().map(|r| r.name()).collect();
                Covered {
                    client: f.known.name,
                    version: f.version.clone(),
                    at: f.at.clone(),
                    reads: reads.join(", then "),
                    coverage,
                    detail,
                }
            })
            .collect()
    }

    /// Whether a client that reads `reads` (the first one set wins) gets the bundle, and how (or
    /// what to do).
    fn reach(&self, reads: &[CaSource], bundle: &Path) -> (Coverage, String) {
        if self.exports.is_empty() {
            let none = "no bundle is exported: the system trust applies as is";
            return (Coverage::NoBundle, none.to_owned());
        }
        let shown = bundle.display();
        // What the client would have read, but was opted out of.
        let mut skipped = Vec::new();
        for source in reads {
            match *source {
                CaSource::Variable(name) => match self.exports.iter().find(|e| e.name == name) {
                    Some(e) if e.user_value => {
                        let value = e.value.to_string_lossy();
                        let detail = format!(
                            "{name}={value} is your own: kept (the custom CAs reach it only if \
                             that file holds them)"
                        );
                        return (Coverage::UserValue, detail);
                    }
                    Some(_) => {
                        return (
                            Coverage::Exported,
                            with_skipped(format!("{name}={shown}"), &skipped),
                        );
                    }
                    None => skipped.push(format!(
                        "{name} is not exported (VARDR_EXTRA_CA_VARS=false)"
                    )),
                },
                CaSource::Certifi => match &self.hook.status {
                    HookStatus::Ready => {
                        let detail = format!(
                            "certifi.where() returns {shown} (the Python hook {}, first on \
                             PYTHONPATH)",
                            self.hook.dir.display()
                        );
                        return (Coverage::Hook, with_skipped(detail, &skipped));
                    }
                    HookStatus::Problem(problem) => return (Coverage::NotReached, problem.clone()),
                    HookStatus::Off => skipped.push(
                        "certifi.where() is certifi's own file (VARDR_PYTHON_HOOK=false)"
                            .to_owned(),
                    ),
                },
                CaSource::Own { file, fix } => {
                    let detail =
                        format!("it reads its own {file}, which no variable redirects: {fix}");
                    return (Coverage::NotReached, detail);
                }
            }
        }
        let detail = format!(
            "{}: undo the opt-out, or point it at {shown} yourself",
            skipped.join("; ")
        );
        (Coverage::OptedOut, detail)
    }

    /// The variables vardr-init sets for the child: the CA variables it points at the bundle
    /// (not the user's own), and `PYTHONPATH`.
    fn set_env(exports: &[Export], hook: &Hook) -> Vec<(&'static str, OsString)> {
        let python_path = match &hook.python_path {
            PythonPath::Set(value) => Some(("PYTHONPATH", value.clone())),
            _ => None,
        };
        exports
            .iter()
            .filter(|e| !e.user_value)
            .map(|e| (e.name, e.value.clone()))
            .chain(python_path)
            .collect()
    }
}

/// How one TLS client of the app's environment gets the bundle: `--dry-run`'s and `certs`'s
/// `clients`.
#[derive(Debug, Serialize)]
pub struct Covered {
    pub client: &'static str,
    pub version: Option<String>,
    /// Where it was found: the site-packages directory, or the program.
    #[serde(serialize_with = "lossy_buf")]
    pub at: PathBuf,
    /// The variables or files it takes its CAs from, in its order (the first one set wins).
    pub reads: String,
    pub coverage: Coverage,
    /// How it gets the bundle, or why not and what to do.
    pub detail: String,
}

/// Whether a client gets the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// The variable it reads names the bundle.
    Exported,
    /// The variable it reads is the user's own, and kept.
    UserValue,
    /// `certifi.where()` names the bundle, through the Python hook.
    Hook,
    /// The user turned off what would reach it (`VARDR_EXTRA_CA_VARS`, `VARDR_PYTHON_HOOK`).
    OptedOut,
    /// Nothing vardr-init does reaches it: the detail says what the user can do.
    NotReached,
    /// No bundle is exported (no custom CA accepted, or it could not be written).
    NoBundle,
}

/// `detail`, and what was passed over to get there.
fn with_skipped(detail: String, skipped: &[String]) -> String {
    match skipped {
        [] => detail,
        _ => format!("{detail}; {}", skipped.join("; ")),
    }
}

fn lossy_buf<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// The pre-start task's launch and the variable that asked for it.
#[derive(Debug)]
pub struct Prestart {
    pub launch: Launch,
    pub source: &'static str,
}

#[derive(Debug)]
pub struct Plan {
    /// The certificate settings of every pass of this run, the watcher's included (the
    /// certificates directory, the bundle's path).
    pub settings: CertSettings,
    /// How the app's Python logs (`VARDR_JSON_LOGS`).
    pub app_logs: AppLogs,
    /// The worker's report, or why there is none.
    pub certs: Result<Report, WorkerError>,
    /// The CA variables the child gets (the user's own values kept are listed too).
    pub exports: Vec<Export>,
    /// Inherited CA variables removed from the child's environment: they name our bundle path,
    /// and no bundle is exported this time.
    pub unset: Vec<&'static str>,
    /// The Python hook (`certifi.where()` names the bundle) and the `PYTHONPATH` it makes.
    pub hook: Hook,
    /// The TLS clients of the app's environment and how each gets the bundle (a dry run only).
    pub clients: Vec<Covered>,
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
        let default_command = command.is_none();
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
        let app_logs = AppLogs::decide(config, &argv, default_command);
        // Every pass of this run (the watcher's too) puts the hook in place for these logs.
        let settings = CertSettings {
            python_logs: app_logs.python(),
            ..config.certs.clone()
        };
        let settings = &settings;
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
        if let Ok(report) = &certs {
            // Strict mode's reasons first: they are about what was found before the app.
            errors.splice(0..0, report.refusals.iter().cloned());
        }
        let trust = Trust::decide(settings, certs.as_ref().ok());
        // Only a dry run lists the TLS clients of the app's environment.
        let clients = match mode {
            Mode::Check => {
                let found = clients::find(
                    runtime.python.as_deref(),
                    settings.python_path.as_deref(),
                    config.path.as_deref(),
                );
                trust.coverage(&found, &settings.bundle)
            }
            Mode::Write | Mode::Refresh => Vec::new(),
        };
        let set_env = Trust::set_env(&trust.exports, &trust.hook);
        let Trust {
            exports,
            unset,
            hook,
        } = trust;
        let mut words = argv.into_iter();
        let launch = Launch {
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            set_env,
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
            settings: settings.clone(),
            app_logs,
            certs,
            exports,
            unset,
            hook,
            clients,
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
            self.settings.dir.display(),
            self.runtime.profile,
            self.runtime.source
        );
        let report = self.certs.as_ref().ok();
        let results = report.map_or(&[][..], |r| &r.summary.results);
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
        let bundle = self.settings.bundle.display();
        if let Some(c) = report {
            let system = match (&c.system, c.summary.results.is_empty()) {
                (Some(path), _) => path.display().to_string(),
                (None, true) => "not read (no custom certificates to merge)".to_owned(),
                (None, false) => "none found".to_owned(),
            };
            let _ = writeln!(out, "System bundle: {system}");
            let action = match c.planned {
                Planned::Nothing => "none: nothing to add to the system trust".to_owned(),
                Planned::Reuse => format!(
                    "reuse {bundle} (inputs unchanged: {} system + {} custom certificates)",
                    c.summary.system_certificates, c.summary.custom_certificates
                ),
                Planned::Build | Planned::Same => format!(
                    "build {bundle}: {} system + {} custom certificates ({} duplicates dropped)",
                    c.summary.system_certificates,
                    c.summary.custom_certificates,
                    c.summary.duplicates
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
        let python_path = match &self.hook.python_path {
            PythonPath::Set(value) => Some(value),
            _ => None,
        };
        if self.exports.is_empty() && self.unset.is_empty() && python_path.is_none() {
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
        if let Some(value) = python_path {
            let _ = writeln!(out, "  PYTHONPATH={}", value.to_string_lossy());
        }
        let _ = writeln!(out, "Python hook: {}", self.hook_text());
        let _ = writeln!(out, "App logs: {}", self.app_logs.describe());
        if !self.clients.is_empty() {
            let _ = writeln!(out, "TLS clients and how each gets the bundle:");
            out.push_str(&clients_text(&self.clients));
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

    /// The Python hook's line of the text plan.
    fn hook_text(&self) -> String {
        let hook = &self.hook;
        match &hook.status {
            HookStatus::Ready => format!(
                "on: {} ({}, first on PYTHONPATH)",
                self.hook_does(),
                hook.dir.join(hook::FILE).display()
            ),
            HookStatus::Problem(problem) => format!("off: {problem}"),
            HookStatus::Off if !hook.enabled => "off (VARDR_PYTHON_HOOK=false)".to_owned(),
            HookStatus::Off => "off (no bundle is exported, no JSON logs)".to_owned(),
        }
    }

    /// What the hook in place does: certifi names the bundle (one the child gets), the app's
    /// logs are JSON.
    pub fn hook_does(&self) -> String {
        let certifi = (!self.exports.is_empty())
            .then(|| format!("certifi.where() names {}", self.settings.bundle.display()));
        let logs = (self.settings.python_logs == PythonLogs::Json)
            .then(|| "the app's logging writes JSON lines".to_owned());
        certifi
            .into_iter()
            .chain(logs)
            .collect::<Vec<_>>()
            .join("; ")
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
                dir: Some(&self.settings.dir),
                bundle: Some(&self.settings.bundle),
                action: report.map_or("failed", |r| r.planned.as_str()),
                system_bundle: report.and_then(|r| r.system.as_deref()),
                system_certificates: report.map_or(0, |r| r.summary.system_certificates),
                total_certificates: report.map_or(0, |r| r.summary.custom_certificates),
                duplicates: report.map_or(0, |r| r.summary.duplicates),
                successful_imports: report.map_or(0, Report::successful),
                failed_imports: report.map_or(0, Report::failed),
                results: report.map_or(&[], |r| &r.summary.results),
                warnings: report.map_or_else(Vec::new, |r| {
                    let files = r.summary.results.iter().flat_map(|result| {
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
                .chain(match &self.hook.python_path {
                    PythonPath::Set(value) => Some(("PYTHONPATH", value.to_string_lossy().into())),
                    _ => None,
                })
                .collect(),
            clients: &self.clients,
            python_hook: HookJson {
                enabled: self.hook.enabled,
                status: match self.hook.status {
                    HookStatus::Ready => "on",
                    HookStatus::Off => "off",
                    HookStatus::Problem(_) => "problem",
                },
                dir: Some(&self.hook.dir),
                problem: match &self.hook.status {
                    HookStatus::Problem(problem) => Some(problem),
                    _ => None,
                },
            },
            app_logs: self.app_logs.to_json(),
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

/// The clients' lines of the text plan and of `vardr-init certs`.
pub fn clients_text(clients: &[Covered]) -> String {
    let mut out = String::new();
    for c in clients {
        let version = c
            .version
            .as_deref()
            .map_or(String::new(), |v| format!(" {v}"));
        let coverage = match c.coverage {
            Coverage::Exported | Coverage::Hook => "yes",
            Coverage::UserValue => "your value",
            Coverage::OptedOut => "no (opted out)",
            Coverage::NotReached => "NO",
            Coverage::NoBundle => "no bundle",
        };
        let _ = writeln!(out, "  {}{version}: {coverage}: {}", c.client, c.detail);
    }
    out
}

/// Why `VARDR_CERTS_RELOAD=hup` cannot work with this command: a single uvicorn process (no
/// `--workers` above 1, or `--reload`) handles only SIGINT and SIGTERM, and dies of SIGHUP.
fn reload_problem(config: &Config, argv: &[OsString]) -> Option<String> {
    if config.watch.reload != Reload::Hup {
        return None;
    }
    let env = &config.app.uvicorn_env;
    let workers = app::uvicorn_workers(argv, env, config.tiangolo.web_concurrency)?;
    (workers <= 1).then(|| {
        if env.reload {
            return "VARDR_CERTS_RELOAD=hup needs uvicorn with more than one worker, and \
                    UVICORN_RELOAD runs its reloader, a single process whatever --workers says: \
                    it would die of the SIGHUP; unset UVICORN_RELOAD, or use \
                    VARDR_CERTS_RELOAD=restart"
                .to_owned();
        }
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
    python_hook: HookJson<'a>,
    /// How the app's Python logs (`VARDR_JSON_LOGS`).
    app_logs: crate::app::logs::AppLogsJson,
    /// The TLS clients found in the app's environment, and how each gets the bundle.
    clients: &'a [Covered],
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

/// The Python hook: whether it is wanted, whether it would be in place, where.
#[derive(Serialize)]
struct HookJson<'a> {
    enabled: bool,
    /// `on`, `off` (not wanted, or nothing to do: no bundle exported, no JSON logs), `problem`.
    status: &'static str,
    #[serde(serialize_with = "lossy")]
    dir: Option<&'a Path>,
    problem: Option<&'a String>,
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
