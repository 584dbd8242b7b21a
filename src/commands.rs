//! The commands, top to bottom: each turns a parsed invocation into an exit code, and is the one
//! place that renders its outcome into logs and output.

use std::ffi::OsString;
use std::io::Write as _;
use std::time::SystemTime;

use crate::{error, info, warn};

use crate::app::logs::AppLogs;
use crate::app::runtime::Runtime;
use crate::certs::exports::PythonPath;
use crate::certs::hook::HookStatus;
use crate::certs::summary::{self, SummaryEvent};
use crate::certs::{Mode, Outcome, Report};
use crate::certs::{watch, worker};
use crate::cli::UsageError;
use crate::config::{self, Config};
use crate::init::{self, Signals};
use crate::plan::{Plan, Trust};
use crate::{events, exit, health, log};

/// A command line that could not be understood.
pub fn usage_error(usage: &UsageError) -> u8 {
    // The environment still decides the log format of the complaint.
    log::init(match Config::from_env() {
        Ok(config) => config.log,
        Err(rejected) => rejected.log,
    });
    error!("{usage}");
    usage.code
}

/// The environment, with logging set up from it; a rejected one is reported and ends the run.
fn configure() -> Result<Config, u8> {
    match Config::from_env() {
        Ok(config) => {
            log::init(config.log);
            Ok(config)
        }
        Err(rejected) => {
            log::init(rejected.log);
            for invalid in &rejected.errors {
                error!("{invalid}");
            }
            error!("nothing was started: fix the environment variables above");
            Err(exit::USAGE)
        }
    }
}

/// The entrypoint: certificates (in the worker), then the child under supervision.
pub fn run(command: Option<Vec<OsString>>) -> u8 {
    // Before anything slow: a SIGTERM arriving during start-up must queue, not vanish.
    let signals = Signals::block();
    let config = match configure() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let signals = match signals {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot block signals for forwarding: {e}");
            return exit::FAILURE;
        }
    };
    let plan = Plan::build(&config, command, SystemTime::now(), Mode::Write);
    // The worker logged the pass (verdicts, summary); a worker that failed did not.
    if let Err(e) = &plan.certs {
        error!("{e}");
        summary::log_summary(None, Outcome::Failed, &plan.settings.bundle, None);
    }
    if !plan.errors.is_empty() {
        for e in &plan.errors {
            error!("{e}");
        }
        error!("nothing was started");
        return exit::USAGE;
    }
    if let Some(problem) = plan.bundle_problem() {
        // A failed worker's error is already logged above.
        if plan.certs.is_ok() {
            error!("{problem}");
        }
        error!("custom CAs are not exported: the service starts with the system trust only");
    }
    for name in plan.unset.iter().filter(|name| **name != "PYTHONPATH") {
        warn!(
            "{name} named {}, which is not exported this time: removed from the child's environment",
            plan.settings.bundle.display()
        );
    }
    log_exports(&plan);
    log_hook(&plan);
    log_app_logs(&plan.app_logs);
    for warning in &plan.warnings {
        warn!("{warning}");
    }
    if let Some((code, problem)) = &plan.command_problem {
        error!("{problem}");
        return *code;
    }
    let reloads = watch(&config, &plan, &signals);
    // The supervisor keeps nothing of the certificate pass, only what it launches.
    let (launch, prestart) = (plan.launch, plan.prestart.map(|task| task.launch));
    init::run(prestart.as_ref(), &launch, &signals, reloads)
}

/// `VARDR_CERTS_WATCH=true`: the watcher process, and what PID 1 does when it rebuilds the
/// bundle. Only a bundle the child was given can be kept up to date.
fn watch(config: &Config, plan: &Plan, signals: &Signals) -> Option<init::Reloads> {
    if !config.watch.enabled {
        return None;
    }
    let report = match &plan.certs {
        Ok(report) if report.exported() => report,
        _ => {
            warn!(
                "VARDR_CERTS_WATCH=true, but no CA bundle was given to the app (see above): \
                 not watching {}",
                config.certs.dir.display()
            );
            return None;
        }
    };
    // Started again by PID 1 if it dies: it keeps copies of what it needs, a few paths.
    let (settings, profile, watching) = (plan.settings.clone(), plan.runtime.profile, config.watch);
    let points = report.watch.clone();
    let start =
        move || watch::start(&settings, profile, watching, &points).map(|w| (w.rebuilt, w.pid));
    let reloads = init::Reloads::new(Box::new(start), config.watch.reload, signals);
    match reloads {
        Ok(reloads) => Some(reloads),
        Err(e) => {
            error!(
                "cannot start the certificate watcher: {e}; the CA bundle will not follow \
                 changes in {}",
                config.certs.dir.display()
            );
            None
        }
    }
}

/// `vardr-init --dry-run`: the plan on stdout; nothing written, nothing started.
pub fn dry_run(json: bool, command: Option<Vec<OsString>>) -> u8 {
    let config = match configure() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = SystemTime::now();
    let plan = Plan::build(&config, command, now, Mode::Check);
    let printed = if json {
        output(&format!("{}\n", plan.to_json(now)))
    } else {
        output(&plan.to_text())
    };
    if plan.would_start() {
        printed
    } else {
        exit::USAGE
    }
}

/// `vardr-init certs`: the certificate step alone (in the worker), its summary on stdout.
pub fn certs(json: bool) -> u8 {
    let config = match configure() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = SystemTime::now();
    // For an init container or CI: the Python the default command would start, if any.
    let python = crate::app::find_python(config.path.as_deref());
    let runtime = Runtime::find(
        config.certs.tls_profile,
        python.as_deref().map(std::path::Path::as_os_str),
        config.path.as_deref(),
    );
    let result = worker::run(&config.certs, runtime.profile, now, Mode::Write);
    let code = match &result {
        Err(e) => {
            error!("{e}");
            exit::FAILURE
        }
        Ok(report) => {
            summary::log_verdicts(report);
            if !report.refusals.is_empty() {
                for refusal in &report.refusals {
                    error!("{refusal}");
                }
                error!("nothing written");
                exit::USAGE
            } else if let crate::certs::BundleStatus::Problem(problem) = &report.bundle {
                error!("{problem}");
                exit::FAILURE
            } else {
                0
            }
        }
    };
    let report = result.as_ref().ok();
    let outcome = report.map_or(Outcome::Failed, Report::outcome);
    let bundle = &config.certs.bundle;
    // Who the bundle reaches, in the environment the default command would run in.
    let found = crate::app::clients::find(
        runtime.python.as_deref(),
        config.certs.python_path.as_deref(),
        config.path.as_deref(),
    );
    let clients = Trust::decide(&config.certs, report).coverage(&found, bundle);
    let printed = if json {
        let summary = SummaryEvent::new(report, outcome, bundle, None, events::timestamp(now));
        output(&format!(
            "{}\n",
            events::line(&CertsOutput {
                summary,
                clients: &clients
            })
        ))
    } else {
        let summary = summary::text(report, outcome, bundle, None);
        let clients = crate::plan::clients_text(&clients);
        output(&format!(
            "{summary}\nTLS clients and how each gets the bundle:\n{clients}"
        ))
    };
    code.max(printed)
}

/// `vardr-init certs --json`: the summary event, and the clients it reaches.
#[derive(serde::Serialize)]
struct CertsOutput<'a> {
    #[serde(flatten)]
    summary: SummaryEvent<'a>,
    clients: &'a [crate::plan::Covered],
}

/// `vardr-init health`: never exits 2, which Docker reserves in a HEALTHCHECK.
pub fn health(url: Option<String>, timeout: Option<String>) -> u8 {
    let unhealthy = |message: String| {
        let _ = writeln!(std::io::stderr(), "unhealthy: {message}");
        exit::FAILURE
    };
    let target = match url {
        Some(url) => match health::parse_url(&url) {
            Ok(target) => target,
            Err(e) => return unhealthy(format!("bad --url: {e}")),
        },
        None => match config::listen_from_env().map_err(|e| e.to_string()) {
            Ok(listen) => match health::Target::for_listen(&listen) {
                Ok(target) => target,
                Err(e) => return unhealthy(format!("where uvicorn listens: {e}")),
            },
            Err(e) => return unhealthy(e),
        },
    };
    let timeout = match timeout {
        Some(timeout) => match health::parse_timeout(&timeout) {
            Ok(timeout) => timeout,
            Err(e) => return unhealthy(format!("bad --timeout: {e}")),
        },
        None => health::DEFAULT_TIMEOUT,
    };
    match health::pid1_state() {
        Some(health::Pid1State::Draining) => {
            return unhealthy("draining (VARDR_STOP_DELAY)".to_owned());
        }
        Some(health::Pid1State::TrustDown) => {
            return unhealthy(
                "live trust is down: the certificate watcher keeps dying, so the CA bundle no \
                 longer follows the certificates (VARDR_CERTS_WATCH=true); see vardr-init's log"
                    .to_owned(),
            );
        }
        None => {}
    }
    health::run(&target, timeout)
}

/// Writes a command's output on stdout: 0, or 1 when stdout is closed or full (`println!` would
/// panic there, and a panic is an abort in release builds).
pub fn output(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) => {
            // --help and --version run before logging is set up; otherwise this is a no-op.
            log::init(config::LogSettings::default());
            error!("cannot write to stdout: {e}");
            exit::FAILURE
        }
    }
}

fn log_exports(plan: &Plan) {
    for export in &plan.exports {
        if let Some(old) = &export.replaced {
            info!(
                "{} was {}, the system bundle merged into {}: replaced by the merged bundle",
                export.name,
                old.to_string_lossy(),
                plan.settings.bundle.display()
            );
        }
        if export.user_value {
            info!(
                "{} is set to {} by the environment: kept (custom CAs reach clients that use it \
                 only if that file holds them)",
                export.name,
                export.value.to_string_lossy()
            );
        }
    }
    let names: Vec<&str> = plan
        .exports
        .iter()
        .filter(|e| !e.user_value)
        .map(|e| e.name)
        .collect();
    if !names.is_empty() {
        info!(
            "Exporting {} = {}",
            names.join(", "),
            plan.settings.bundle.display()
        );
    }
}

/// The Python hook: on (and where), not in place (why), or an old copy dropped from `PYTHONPATH`.
/// With `VARDR_JSON_LOGS=true`, whose format the app's lines have when it is not JSON (JSON is
/// said by the hook's line).
fn log_app_logs(logs: &AppLogs) {
    match logs {
        AppLogs::UsersOwn(_) => info!("App logs: {}", logs.describe()),
        AppLogs::NoHook => warn!("App logs: {}", logs.describe()),
        AppLogs::Text | AppLogs::Json => {}
    }
}

fn log_hook(plan: &Plan) {
    let hook = &plan.hook;
    match (&hook.status, &hook.python_path) {
        (HookStatus::Ready, _) => info!(
            "Python hook: {} (PYTHONPATH starts with {})",
            plan.hook_does(),
            hook.dir.display()
        ),
        (HookStatus::Problem(problem), _) => warn!("{problem}"),
        (HookStatus::Off, PythonPath::Set(_) | PythonPath::Unset) => warn!(
            "PYTHONPATH named the Python hook {}, which is not in place this time: dropped from              the child's PYTHONPATH",
            hook.dir.display()
        ),
        (HookStatus::Off, PythonPath::Inherited) => {}
    }
}
