//! What a run will do, decided before anything starts.
//!
//! [`Plan::build`] reads everything a run depends on (the certificates, the app, the interpreter)
//! and decides; it writes nothing. A run then executes the plan ([`crate::certs::Pass::apply`],
//! then the supervisor), and `--dry-run` prints the very same value, so what a dry run shows is
//! what a run does.

use std::ffi::{OsStr, OsString};
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime};

use crate::app::{self, Uvicorn};
use crate::certs::{self, Action, Export, Pass};
use crate::config::Config;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub certs: Pass,
    /// The CA variables the child gets once the bundle is built or reused.
    pub exports: Vec<Export>,
    /// Inherited CA variables removed from the child's environment: they name our bundle path,
    /// and no bundle is exported this time.
    pub unset: Vec<&'static str>,
    /// Why the planned bundle cannot be written (checked without writing).
    pub bundle_problem: Option<String>,
    /// `None` when the command was given after `--`.
    pub uvicorn: Option<Uvicorn>,
    /// The program to execute (looked up on `PATH` when it has no `/`), then its arguments.
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Hard-kill deadline after the first forwarded SIGTERM/SIGINT.
    pub stop_timeout: Option<Duration>,
    /// Why a run would not start (exit 2). Empty means it would.
    pub errors: Vec<String>,
}

impl Plan {
    /// The plan for `vardr-init [-- COMMAND...]`; `command` is `None` for the default (uvicorn).
    pub fn build(config: &Config, command: Option<Vec<OsString>>, now: SystemTime) -> Plan {
        let certs = certs::prepare(&config.certs, now);
        let mut errors = Vec::new();
        if config.certs.strict && certs.failed() > 0 {
            errors.push(format!(
                "VARDR_CERTS_STRICT=true and {} of {} files in {} were rejected: fix or remove them, \
                 or unset VARDR_CERTS_STRICT",
                certs.failed(),
                certs.results.len(),
                certs.dir.display()
            ));
        }
        let bundle_problem = match certs.action {
            Action::Build { .. } => certs::unwritable(&certs.bundle),
            Action::Nothing | Action::Reuse => None,
        };
        if let Some(problem) = &bundle_problem
            && config.certs.strict
        {
            errors.push(format!("VARDR_CERTS_STRICT=true and {problem}"));
        }
        let (exports, unset) = match (&certs.action, &bundle_problem) {
            (Action::Reuse | Action::Build { .. }, None) => (
                certs::exports(&config.certs, certs.system.as_deref(), &certs.bundle),
                Vec::new(),
            ),
            _ => (Vec::new(), certs::stale_variables(&config.certs)),
        };
        let (uvicorn, argv) = match command {
            Some(command) => (None, command),
            None => match app::uvicorn(config) {
                Ok(uvicorn) => {
                    let argv = uvicorn.argv.clone();
                    (Some(uvicorn), argv)
                }
                Err(why) => {
                    errors.extend(why);
                    (None, Vec::new())
                }
            },
        };
        let mut words = argv.into_iter();
        Plan {
            certs,
            exports,
            unset,
            bundle_problem,
            uvicorn,
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            stop_timeout: config.stop_timeout,
            errors,
        }
    }

    /// The plan for exactly `command`, with no certificate step (for tests of the supervisor).
    pub fn for_command(config: &Config, command: Vec<OsString>) -> Plan {
        let mut words = command.into_iter();
        Plan {
            certs: Pass::empty(&config.certs),
            exports: Vec::new(),
            unset: Vec::new(),
            bundle_problem: None,
            uvicorn: None,
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            stop_timeout: config.stop_timeout,
            errors: Vec::new(),
        }
    }

    /// The variables set for the child (the user's own values are already in its environment).
    pub fn child_env(&self) -> impl Iterator<Item = (&str, &OsStr)> {
        self.exports
            .iter()
            .filter(|e| !e.user_value)
            .map(|e| (e.name, e.value.as_os_str()))
    }

    /// The command line as a user could paste it into a shell.
    pub fn command_line(&self) -> CommandLine<'_> {
        CommandLine(self)
    }

    /// The plan for a human: `vardr-init --dry-run`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let c = &self.certs;
        let _ = writeln!(out, "Certificates in {}:", c.dir.display());
        if c.results.is_empty() {
            let _ = writeln!(
                out,
                "  none (no custom CAs: the system trust store applies)"
            );
        }
        for result in &c.results {
            let verdict = if result.accepted {
                "SUCCESS"
            } else {
                "FAILED "
            };
            let _ = writeln!(out, "  {verdict} {}: {}", result.name, result.detail);
        }
        for warning in &c.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
        let system = match (&c.system, c.results.is_empty()) {
            (Some(path), _) => path.display().to_string(),
            (None, true) => "not read (no custom certificates to merge)".to_owned(),
            (None, false) => "none found".to_owned(),
        };
        let _ = writeln!(out, "System bundle: {system}");
        let bundle = c.bundle.display();
        let action = match c.action {
            Action::Nothing => "none: nothing to add to the system trust".to_owned(),
            Action::Reuse => format!(
                "reuse {bundle} (inputs unchanged: {} system + {} custom certificates)",
                c.system_certificates, c.custom_certificates
            ),
            Action::Build { .. } => format!(
                "build {bundle}: {} system + {} custom certificates ({} duplicates dropped)",
                c.system_certificates, c.custom_certificates, c.duplicates
            ),
        };
        let _ = writeln!(out, "Bundle: {action}");
        if let Some(problem) = &self.bundle_problem {
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
        if self.errors.is_empty() {
            let _ = writeln!(out, "Command: {}", self.command_line());
        }
        let stop = match self.stop_timeout {
            Some(t) => format!("SIGKILL {}s after SIGTERM/SIGINT", t.as_secs_f64()),
            None => "off (the child takes as long as it needs)".to_owned(),
        };
        let _ = writeln!(out, "Stop timeout: {stop}");
        for error in &self.errors {
            let _ = writeln!(out, "Error: {error}");
        }
        let verdict = if self.errors.is_empty() {
            "yes"
        } else {
            "no (exit 2)"
        };
        let _ = writeln!(out, "Would start: {verdict}");
        out
    }

    /// The plan for a program: `vardr-init --dry-run --json` (documented in README).
    pub fn to_json(&self, now: SystemTime) -> serde_json::Value {
        use serde_json::{Value, json};
        let lossy = |s: &OsStr| Value::from(s.to_string_lossy());
        let c = &self.certs;
        let results: serde_json::Map<String, Value> = c
            .results
            .iter()
            .map(|r| (r.name.clone(), Value::from(r.verdict())))
            .collect();
        let environment: serde_json::Map<String, Value> = self
            .exports
            .iter()
            .map(|e| (e.name.to_owned(), lossy(&e.value)))
            .collect();
        let kept: Vec<&str> = self
            .exports
            .iter()
            .filter(|e| e.user_value)
            .map(|e| e.name)
            .collect();
        let argv: Vec<Value> = if self.errors.is_empty() {
            std::iter::once(&self.program)
                .chain(&self.args)
                .map(|a| lossy(a))
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "type": "plan",
            "timestamp": humantime::format_rfc3339_seconds(now).to_string(),
            "version": env!("CARGO_PKG_VERSION"),
            "would_start": self.errors.is_empty(),
            "errors": self.errors,
            "certificates": {
                "dir": lossy(c.dir.as_os_str()),
                "bundle": lossy(c.bundle.as_os_str()),
                "action": c.action_word(),
                "system_bundle": c.system.as_deref().map(|p| lossy(p.as_os_str())),
                "system_certificates": c.system_certificates,
                "total_certificates": c.custom_certificates,
                "duplicates": c.duplicates,
                "successful_imports": c.successful(),
                "failed_imports": c.failed(),
                "results": results,
                "warnings": c.warnings,
            },
            "environment": environment,
            "user_values_kept": kept,
            "unset": self.unset,
            "bundle_problem": self.bundle_problem,
            "app": self.uvicorn.as_ref().map(|u| json!({
                "module": u.module,
                "variable": u.variable,
                "source": u.source,
                "app_dir": u.app_dir.as_deref().map(|p| lossy(p.as_os_str())),
                "python": lossy(u.python.as_os_str()),
                "workers": u.workers,
                "timeout_graceful_shutdown": u.graceful_timeout,
            })),
            "argv": argv,
            "stop_timeout": self.stop_timeout.map(|t| t.as_secs_f64()),
        })
    }
}

pub struct CommandLine<'a>(&'a Plan);

impl fmt::Display for CommandLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_quoted(f, &self.0.program)?;
        for arg in &self.0.args {
            f.write_str(" ")?;
            write_quoted(f, arg)?;
        }
        Ok(())
    }
}

/// POSIX shell quoting, for display only (nothing is ever run through a shell).
fn write_quoted(f: &mut fmt::Formatter<'_>, word: &OsStr) -> fmt::Result {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        f.write_str(&word)
    } else {
        write!(f, "'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        let config = Config::from_lookup(|_| None).expect("defaults");
        let plan = Plan::for_command(
            &config,
            ["python3", "-c", "print('hi there')", "", "--port=8000"]
                .map(OsString::from)
                .into(),
        );
        assert_eq!(plan.program, "python3");
        assert_eq!(
            plan.command_line().to_string(),
            r#"python3 -c 'print('\''hi there'\'')' '' --port=8000"#
        );
    }
}
