//! vardr-init: the container entrypoint (PID 1) of hardened FastAPI images.
//!
//! The flow, one module per stage: the command line ([`cli`]) and the environment ([`config`])
//! are parsed into plain values, [`log`] is set up from them, and a [`plan`] decides everything
//! without writing: the certificate pass ([`certs`]), the app and its uvicorn argv ([`app`],
//! [`discover`], [`cpus`]). `--dry-run` prints the plan; a run applies the certificate step and
//! hands the child to [`supervise`], the init. [`health`] is the HTTP probe. [`sys`] holds the
//! system calls.
//!
//! `main.rs` only calls [`main`]; everything else is here, so tests and later commands reuse it.

pub mod app;
pub mod certs;
pub mod cli;
pub mod config;
pub mod health;
pub mod init;
pub mod log;
pub mod plan;
pub mod sys;

use std::ffi::OsString;
use std::io::Write as _;
use std::time::SystemTime;

use tracing::{error, info, warn};

use crate::certs::Outcome;
use crate::cli::Invocation;
use crate::config::Config;
use crate::init::Signals;
use crate::plan::Plan;

/// Exit codes of vardr-init itself (the child's own status passes through unchanged).
pub mod exit {
    /// Any other failure of vardr-init.
    pub const FAILURE: u8 = 1;
    /// Bad usage or configuration: nothing was started.
    pub const USAGE: u8 = 2;
    /// The command exists but cannot be executed (the shell's and tini's convention).
    pub const NOT_EXECUTABLE: u8 = 126;
    /// The command does not exist.
    pub const NOT_FOUND: u8 = 127;
}

/// Runs vardr-init with the arguments after the program name; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    match cli::parse(args) {
        Ok(Invocation::Help) => output(cli::HELP),
        Ok(Invocation::Version) => output(&format!("vardr-init {}\n", env!("CARGO_PKG_VERSION"))),
        Ok(Invocation::Run { command }) => run(command),
        Ok(Invocation::DryRun { json, command }) => dry_run(json, command),
        Ok(Invocation::Certs { json }) => certs(json),
        Ok(Invocation::Health { url, timeout }) => health(url, timeout),
        Err(usage) => {
            // The environment still decides the log format of the complaint.
            log::init(match Config::from_env() {
                Ok(config) => config.log,
                Err(rejected) => rejected.log,
            });
            error!("{usage}");
            usage.code
        }
    }
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

/// The entrypoint: certificates, then the child under supervision.
fn run(command: Option<Vec<OsString>>) -> u8 {
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
    let mut plan = Plan::build(&config, command, SystemTime::now());
    log_verdicts(&plan.certs);
    if !plan.errors.is_empty() {
        if !plan.certs.results.is_empty() {
            report_summary(&plan.certs, Outcome::Failed);
        }
        for e in &plan.errors {
            error!("{e}");
        }
        error!("nothing was started");
        return exit::USAGE;
    }
    let result = match &plan.bundle_problem {
        Some(problem) => Err(problem.clone()),
        None => plan.certs.apply(),
    };
    match result {
        Ok(bundle) => {
            report_summary(&plan.certs, plan.certs.success());
            if bundle.is_some() {
                log_exports(&plan);
            }
        }
        Err(e) => {
            // Strict mode stopped at the plan already when the failure was foreseeable.
            report_summary(&plan.certs, Outcome::Failed);
            error!("{e}");
            if config.certs.strict {
                error!("nothing was started (VARDR_CERTS_STRICT=true)");
                return exit::USAGE;
            }
            error!("custom CAs are not exported: the service starts with the system trust only");
            plan.exports.clear();
            plan.unset = certs::stale_variables(&config.certs);
        }
    }
    for name in &plan.unset {
        warn!(
            "{name} named {}, which is not exported this time: removed from the child's environment",
            plan.certs.bundle.display()
        );
    }
    // The supervisor keeps nothing of the certificate pass: with thousands of CAs its bundle
    // bytes and verdicts are megabytes that PID 1 would otherwise hold for the container's life.
    drop(std::mem::replace(
        &mut plan.certs,
        certs::Pass::empty(&config.certs),
    ));
    init::run(&plan, &signals)
}

/// `vardr-init --dry-run`: the plan on stdout; nothing written, nothing started.
fn dry_run(json: bool, command: Option<Vec<OsString>>) -> u8 {
    let config = match configure() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = SystemTime::now();
    let plan = Plan::build(&config, command, now);
    let printed = if json {
        output(&format!("{}\n", plan.to_json(now)))
    } else {
        output(&plan.to_text())
    };
    if !plan.errors.is_empty() {
        exit::USAGE
    } else {
        printed
    }
}

/// `vardr-init certs`: the certificate step alone, its summary on stdout.
fn certs(json: bool) -> u8 {
    let config = match configure() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let now = SystemTime::now();
    let pass = certs::prepare(&config.certs, now);
    log_verdicts(&pass);
    let strict_failure = config.certs.strict && pass.failed() > 0;
    let (code, outcome) = if strict_failure {
        error!(
            "VARDR_CERTS_STRICT=true and {} files were rejected: nothing written",
            pass.failed()
        );
        (exit::USAGE, Outcome::Failed)
    } else {
        match pass.apply() {
            Ok(_) => (0, pass.success()),
            Err(e) => {
                error!("{e}");
                (exit::FAILURE, Outcome::Failed)
            }
        }
    };
    let printed = if json {
        output(&format!("{}\n", pass.summary_json(outcome, now)))
    } else {
        output(&format!("{}\n", summary_text(&pass, outcome)))
    };
    code.max(printed)
}

/// `vardr-init health`: never exits 2, which Docker reserves in a HEALTHCHECK.
fn health(url: Option<String>, timeout: Option<String>) -> u8 {
    let unhealthy = |message: String| {
        let _ = writeln!(std::io::stderr(), "unhealthy: {message}");
        exit::FAILURE
    };
    let target = match url {
        Some(url) => match health::parse_url(&url) {
            Ok(target) => target,
            Err(e) => return unhealthy(format!("bad --url: {e}")),
        },
        None => match config::port_from_env() {
            Ok(port) => health::Target::default_for_port(port),
            Err(e) => return unhealthy(e.to_string()),
        },
    };
    let timeout = match timeout {
        Some(timeout) => match health::parse_timeout(&timeout) {
            Ok(timeout) => timeout,
            Err(e) => return unhealthy(format!("bad --timeout: {e}")),
        },
        None => health::DEFAULT_TIMEOUT,
    };
    health::run(&target, timeout)
}

/// Writes a command's output on stdout: 0, or 1 when stdout is closed or full (`println!` would
/// panic there, and a panic is an abort in release builds).
fn output(text: &str) -> u8 {
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

/// The pass's one summary: the contract's JSON event in JSON mode, a text line otherwise.
fn report_summary(pass: &certs::Pass, outcome: Outcome) {
    if log::json() {
        log::write_line(&pass.summary_json(outcome, SystemTime::now()));
    } else {
        info!("{}", summary_text(pass, outcome));
    }
}

fn log_verdicts(pass: &certs::Pass) {
    for warning in &pass.warnings {
        warn!("{warning}");
    }
    if matches!(pass.action, certs::Action::Reuse) {
        info!("Certificates unchanged, skipping import");
        return;
    }
    for result in &pass.results {
        if result.accepted {
            info!("Accepted {}: {}", result.name, result.detail);
        } else {
            warn!("Rejected {}: {}", result.name, result.detail);
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
                plan.certs.bundle.display()
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
    let names: Vec<&str> = plan.child_env().map(|(name, _)| name).collect();
    if !names.is_empty() {
        info!(
            "Exporting {} = {}",
            names.join(", "),
            plan.certs.bundle.display()
        );
    }
}

/// The summary for people: `vardr-init certs` without `--json`, and the run's text log.
fn summary_text(pass: &certs::Pass, outcome: Outcome) -> String {
    let what = match outcome {
        Outcome::Built => format!("built {}", pass.bundle.display()),
        Outcome::Reused => format!("reused {} (unchanged)", pass.bundle.display()),
        Outcome::Failed => "no bundle written".to_owned(),
        Outcome::None => "no bundle needed (no accepted custom CA)".to_owned(),
    };
    format!(
        "Certificate import: {} accepted, {} rejected; {what}: {} system + {} custom \
         certificates, {} duplicates dropped",
        pass.successful(),
        pass.failed(),
        pass.system_certificates,
        pass.custom_certificates,
        pass.duplicates
    )
}
