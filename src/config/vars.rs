//! The public surface: every variable a user sets, declared once.
//!
//! [`VARIABLES`] drives the reading (a name that is not here does not compile: see [`var!`]),
//! the environment part of `--help` (grouped by [`Section`]), and `tests/surface.rs`, which fails
//! when README.md or docs/contract.md document another set of variables or other defaults.
//! Adding a variable is one line here, plus the line of `Config::from_lookup` that reads it.
//!
//! Not here: values the child inherits that vardr-init only reads to keep or extend them (the
//! user's own [`super::CA_VARS`] and `PYTHONPATH`); they are no settings of vardr-init.

use super::{
    APP_MODULE_FORM, BIND_FORM, BOOL_FORM, CLICK_BOOL_FORM, COUNT_FORM, DEBOUNCE_FORM, HOST_FORM,
    LEVEL_FORM, MODULE_FORM, OPTS_FORM, PER_CORE_FORM, PORT_FORM, PROFILE_FORM, RECHECK_FORM,
    RELOAD_FORM, SECONDS_FORM, TIMEOUT_FORM, UVICORN_LEVEL_FORM, VARIABLE_FORM, WORKER_COUNT_FORM,
    WORKERS_FORM,
};

/// One environment variable of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// What an unset (or empty) variable means.
    pub default: Unset,
    /// The allowed form, as a bad value's error states it; empty: any value is taken as it is.
    pub form: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    pub section: Section,
}

/// What an unset variable means: a value it could be set to with the same effect (a unit test
/// checks that setting it changes nothing), or words for a behaviour no value spells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unset {
    /// README and the contract write it in backquotes: `8000`, `false`, `0`.
    Value(&'static str),
    /// `auto`, `discovered`, or nothing (`""`): documented in words, never in backquotes.
    Words(&'static str),
}

/// Where a variable is listed in `--help`, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Certificates,
    LiveTrust,
    App,
    Lifecycle,
    Logging,
    Tiangolo,
    Gunicorn,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Certificates,
        Section::LiveTrust,
        Section::App,
        Section::Lifecycle,
        Section::Logging,
        Section::Tiangolo,
        Section::Gunicorn,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Certificates => "Certificates",
            Section::LiveTrust => "Live trust (rebuild the bundle when the CAs change)",
            Section::App => "The app and uvicorn",
            Section::Lifecycle => "Start and stop",
            Section::Logging => "Logs",
            Section::Tiangolo => "tiangolo's image's variables, mapped onto uvicorn",
            Section::Gunicorn => "gunicorn's only: a warning each",
        }
    }
}

use Section::*;
use Unset::{Value, Words};

const fn v(
    name: &'static str,
    default: Unset,
    form: &'static str,
    help: &'static str,
    section: Section,
) -> Variable {
    Variable {
        name,
        default,
        form,
        help,
        section,
    }
}

/// Where programs are looked up when `PATH` is unset: where distroless and the official Python
/// images keep python3 (PATH's help line names it).
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[rustfmt::skip]
pub const VARIABLES: &[Variable] = &[
    v("VARDR_CERTS_DIR", Value("/certs"), "", "custom CAs: PEM or DER, any names, Kubernetes layouts", Certificates),
    v("VARDR_CA_BUNDLE", Value("/tmp/custom_ca_bundle.pem"), "", "where the merged bundle is written", Certificates),
    v("VARDR_SYSTEM_CA_BUNDLE", Words("auto"), "", "the system bundle: SSL_CERT_FILE, else the distro's paths", Certificates),
    v("VARDR_CERTS_STRICT", Value("false"), BOOL_FORM, "true: a rejected CA or a bundle problem stops startup (exit 2)", Certificates),
    v("VARDR_EXTRA_CA_VARS", Value("true"), BOOL_FORM, "false: only SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE", Certificates),
    v("VARDR_PYTHON_HOOK", Value("true"), BOOL_FORM, "false: no Python hook (certifi.where() the bundle, JSON app logs)", Certificates),
    v("VARDR_TLS_PROFILE", Value("auto"), PROFILE_FORM, "the CAs' judge: auto (the run's Python), python3.N or openssl", Certificates),
    v("VARDR_CERTS_WATCH", Value("false"), BOOL_FORM, "true: rebuild the bundle when the CAs change after start", LiveTrust),
    v("VARDR_CERTS_RELOAD", Value("none"), RELOAD_FORM, "after a rebuild: none, hup (SIGHUP to the child) or restart", LiveTrust),
    v("VARDR_CERTS_DEBOUNCE", Value("0.25"), DEBOUNCE_FORM, "seconds of quiet after a change before the rebuild (at most 60)", LiveTrust),
    v("VARDR_CERTS_RECHECK", Value("60"), RECHECK_FORM, "seconds between re-checks whatever inotify says (0: off)", LiveTrust),
    v("VARDR_APP_DIR", Value("/app"), "", "where the app is discovered", App),
    v("APP_MODULE", Words("discovered"), APP_MODULE_FORM, "module:variable, instead of discovery", App),
    v("MODULE_NAME", Words(""), MODULE_FORM, "the app's module (variable app), instead of discovery", App),
    v("VARIABLE_NAME", Words(""), VARIABLE_FORM, "the app's variable in the discovered or named module", App),
    v("HOST", Value("0.0.0.0"), HOST_FORM, "uvicorn --host", App),
    v("PORT", Value("8000"), PORT_FORM, "uvicorn --port, and the health probe's", App),
    v("WORKERS", Value("1"), WORKERS_FORM, "uvicorn --workers; auto: the cgroup CPU limit", App),
    v("UVICORN_OPTS", Words("empty"), OPTS_FORM, "more uvicorn arguments, split like a shell would (none is run)", App),
    v("UVICORN_RELOAD", Words("unset"), CLICK_BOOL_FORM, "uvicorn's own: its reloader, one process", App),
    v("UVICORN_WORKERS", Words("unset"), WORKER_COUNT_FORM, "uvicorn's own: --workers, before WEB_CONCURRENCY", App),
    v("UVICORN_LOG_CONFIG", Words("unset"), "", "uvicorn's own: --log-config; it wins over VARDR_JSON_LOGS in the app", App),
    v("PATH", Words(""), "", "where python3, then python, is found (/usr/local/bin:/usr/bin:/bin)", App),
    v("VARDR_STOP_TIMEOUT", Value("0"), TIMEOUT_FORM, "seconds from a forwarded SIGTERM/SIGINT to SIGKILL (0: off)", Lifecycle),
    v("VARDR_STOP_DELAY", Value("0"), TIMEOUT_FORM, "seconds to serve on after SIGTERM before forwarding it (0: off)", Lifecycle),
    v("VARDR_PRESTART", Words("empty"), OPTS_FORM, "a command run before the app, split like UVICORN_OPTS", Lifecycle),
    v("PRE_START_PATH", Words("empty"), "", "a file run before the app (.py with its Python, .sh with /bin/sh)", Lifecycle),
    v("VARDR_PRESTART_TIMEOUT", Value("0"), TIMEOUT_FORM, "seconds before the pre-start task gets SIGTERM (0: off)", Lifecycle),
    v("VARDR_JSON_LOGS", Value("false"), BOOL_FORM, "true: JSON lines, vardr-init's and the app's logging records", Logging),
    v("VARDR_LOG_LEVEL", Value("info"), LEVEL_FORM, "error, warn, info or debug", Logging),
    v("LOG_LEVEL", Words("unset"), UVICORN_LEVEL_FORM, "uvicorn --log-level", Tiangolo),
    v("ACCESS_LOG", Words("unset"), "", "set to empty: --no-access-log", Tiangolo),
    v("KEEP_ALIVE", Words("unset"), SECONDS_FORM, "uvicorn --timeout-keep-alive", Tiangolo),
    v("GRACEFUL_TIMEOUT", Words("unset"), SECONDS_FORM, "uvicorn --timeout-graceful-shutdown", Tiangolo),
    v("BIND", Words("unset"), BIND_FORM, "HOST[:PORT], [IPV6]:PORT or unix:PATH (--uds); HOST, PORT win", Tiangolo),
    v("WEB_CONCURRENCY", Words("unset"), WORKER_COUNT_FORM, "uvicorn --workers (WORKERS wins)", Tiangolo),
    v("WORKERS_PER_CORE", Words("unset"), PER_CORE_FORM, "--workers = max(int(this x CPUs), 2), at most MAX_WORKERS", Tiangolo),
    v("MAX_WORKERS", Words("unset"), COUNT_FORM, "the most workers WORKERS_PER_CORE gives", Tiangolo),
    v("TIMEOUT", Words("unset"), "", "uvicorn has no worker timeout", Gunicorn),
    v("WORKER_CLASS", Words("unset"), "", "use UVICORN_OPTS=--loop/--http", Gunicorn),
    v("GUNICORN_CONF", Words("unset"), "", "use UVICORN_OPTS", Gunicorn),
    v("GUNICORN_CMD_ARGS", Words("unset"), "", "use UVICORN_OPTS", Gunicorn),
    v("ERROR_LOG", Words("unset"), "", "errors go to stderr", Gunicorn),
];

/// The registry's entry for `name`; evaluated at compile time by [`var!`], where a name that is
/// not declared is a build error.
pub const fn get(name: &str) -> &'static Variable {
    let mut i = 0;
    while i < VARIABLES.len() {
        if eq(VARIABLES[i].name.as_bytes(), name.as_bytes()) {
            return &VARIABLES[i];
        }
        i += 1;
    }
    panic!("not in config::vars::VARIABLES")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `var!("PORT")`: the registry's entry, found when the crate is compiled.
macro_rules! var {
    ($name:literal) => {{
        const VAR: &$crate::config::vars::Variable = $crate::config::vars::get($name);
        VAR
    }};
}
pub(crate) use var;

/// The environment part of `--help`: each section's variables, one line each.
pub fn help() -> String {
    let mut out = String::from("Environment (an empty value means the default):\n");
    for section in Section::ALL {
        out.push_str("\n  ");
        out.push_str(section.title());
        out.push_str(":\n");
        for var in VARIABLES.iter().filter(|v| v.section == section) {
            let default = match var.default {
                Value(value) | Words(value) => value,
            };
            let pad = 24usize.saturating_sub(var.name.len() + 1);
            out.push_str("    ");
            out.push_str(var.name);
            out.extend(std::iter::repeat_n(' ', pad + 1));
            out.push_str(var.help);
            if !default.is_empty() && !matches!(default, "empty" | "unset") {
                out.push_str(" [");
                out.push_str(default);
                out.push(']');
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::config::Config;

    #[test]
    fn each_name_is_declared_once_and_read() {
        for (i, var) in VARIABLES.iter().enumerate() {
            assert!(
                VARIABLES[..i].iter().all(|other| other.name != var.name),
                "{} is declared twice",
                var.name
            );
        }
        let asked = RefCell::new(Vec::new());
        let _ = Config::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        });
        let asked = asked.into_inner();
        for var in VARIABLES {
            assert!(
                asked.iter().any(|name| name == var.name),
                "{} is declared but Config::from_lookup never reads it",
                var.name
            );
        }
    }

    /// A default the registry states as a value is the default: setting it changes nothing.
    #[test]
    fn a_stated_default_is_the_default() {
        let unset = Config::from_lookup(|_| None).expect("defaults");
        let mut checked = 0;
        for var in VARIABLES {
            let Unset::Value(value) = var.default else {
                continue;
            };
            let mut set = Config::from_lookup(|name| (name == var.name).then(|| value.into()))
                .unwrap_or_else(|e| panic!("{}={value}: {e:?}", var.name));
            // Whether HOST, PORT, WORKERS were set at all is kept on purpose (they then win
            // over BIND and the worker variables): only the values must be the defaults.
            let t = &mut set.tiangolo;
            (t.host_set, t.port_set, t.workers_set) = (false, false, false);
            assert_eq!(set, unset, "{}={value}", var.name);
            checked += 1;
        }
        assert!(checked > 15, "too few values checked: {checked}");
    }

    #[test]
    fn a_bad_value_is_reported_with_the_registry_form() {
        let rejected =
            Config::from_lookup(|name| (name == "PORT").then(|| "x".into())).expect_err("PORT=x");
        assert_eq!(rejected.errors[0].expected, get("PORT").form);
    }

    #[test]
    fn help_names_every_variable_once_in_its_section() {
        let help = help();
        for var in VARIABLES {
            let lines = help
                .lines()
                .filter(|line| line.split_whitespace().next() == Some(var.name))
                .count();
            assert_eq!(lines, 1, "{} in --help:\n{help}", var.name);
        }
        assert!(help.lines().all(|line| line.len() <= 100), "{help}");
    }
}
