//! The environment, read once.
//!
//! Every variable of the contract that this build understands is parsed here into a typed
//! [`Config`]; nothing else in the crate calls `std::env::var`. Parsing is a pure function of a
//! lookup, so it is tested without touching the process environment.
//!
//! An empty value counts as unset (compose files and Helm charts often render `VAR=`). A bad value
//! is never guessed at: it is reported with the variable's name, what was given and what is
//! allowed, and startup stops with exit 2 before anything runs. All bad variables are reported at
//! once, so a user fixes them in one round.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

pub mod vars;

use vars::{Variable, var};

/// Everything the environment decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub log: LogSettings,
    /// `VARDR_STOP_TIMEOUT`: `None` means off (the default, and `0`).
    pub stop_timeout: Option<Duration>,
    /// `HOST`: uvicorn's `--host`.
    pub host: String,
    /// `PORT`: uvicorn's `--port` and the health probe's port.
    pub port: u16,
    /// `WORKERS`: uvicorn's `--workers`.
    pub workers: Workers,
    pub certs: CertSettings,
    pub app: AppSettings,
    /// `PATH`, where the Python interpreter is looked up.
    pub path: Option<OsString>,
    pub lifecycle: Lifecycle,
    pub tiangolo: Tiangolo,
    pub watch: WatchSettings,
}

/// Live trust: whether the bundle follows the certificates after start, and what the app gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSettings {
    /// `VARDR_CERTS_WATCH`.
    pub enabled: bool,
    /// `VARDR_CERTS_RELOAD`.
    pub reload: Reload,
    /// `VARDR_CERTS_DEBOUNCE`: quiet time after the last change before a pass (a Kubernetes
    /// swap is several events within milliseconds).
    pub debounce: Duration,
    /// `VARDR_CERTS_RECHECK`: a pass at this interval whatever inotify says (`None`: off), for
    /// volumes where inotify is silent (network and FUSE file systems, some bind mounts).
    pub recheck: Option<Duration>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            enabled: false,
            reload: Reload::None,
            debounce: Duration::from_millis(250),
            recheck: Some(Duration::from_secs(60)),
        }
    }
}

/// `VARDR_CERTS_RELOAD`: what the app gets after the bundle was rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The file only: code that builds new TLS contexts reads it.
    None,
    /// SIGHUP to the child (uvicorn with `--workers` rolls its workers).
    Hup,
    /// The child is stopped gracefully and started again.
    Restart,
}

impl Reload {
    pub fn as_str(self) -> &'static str {
        match self {
            Reload::None => "none",
            Reload::Hup => "hup",
            Reload::Restart => "restart",
        }
    }
}

/// What happens around the app: a task before it, a pause before stopping it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lifecycle {
    /// `VARDR_PRESTART`, split with shell word rules: a command run once before the app.
    pub prestart: Vec<String>,
    /// `PRE_START_PATH` (tiangolo's name): a file run before the app.
    pub pre_start_path: Option<PathBuf>,
    /// `VARDR_PRESTART_TIMEOUT`: `None` means off.
    pub prestart_timeout: Option<Duration>,
    /// `VARDR_STOP_DELAY`: how long to keep serving after the first SIGTERM; `None` means off.
    pub stop_delay: Option<Duration>,
}

/// The variables of tiangolo's `uvicorn-gunicorn-fastapi` image, read with its meaning (its
/// `gunicorn_conf.py` and `start-reload.sh`); the app side maps them onto uvicorn's flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tiangolo {
    /// `LOG_LEVEL`: uvicorn's `--log-level`.
    pub log_level: Option<String>,
    /// `ACCESS_LOG`: `Some("")` when set to empty, which turns the access log off there.
    pub access_log: Option<String>,
    /// `KEEP_ALIVE`: seconds, uvicorn's `--timeout-keep-alive`.
    pub keep_alive: Option<u32>,
    /// `GRACEFUL_TIMEOUT`: seconds, uvicorn's `--timeout-graceful-shutdown`.
    pub graceful_timeout: Option<u32>,
    /// `BIND`: where to listen instead of `HOST`/`PORT`.
    pub bind: Option<Bind>,
    /// `MAX_WORKERS`, `WORKERS_PER_CORE`, `WEB_CONCURRENCY`: the worker count.
    pub max_workers: Option<u32>,
    pub workers_per_core: Option<f64>,
    pub web_concurrency: Option<u32>,
    /// Set variables that only gunicorn understood: each gets a warning.
    pub gunicorn_only: Vec<&'static str>,
    /// Whether `HOST`, `PORT` and `WORKERS` were set: ours win over `BIND` and the worker
    /// variables above.
    pub host_set: bool,
    pub port_set: bool,
    pub workers_set: bool,
}

/// gunicorn's `--bind` as tiangolo's `BIND` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// `HOST`, `HOST:PORT`, `[V6]:PORT`: the port is `None` when not given.
    Tcp { host: String, port: Option<u16> },
    /// `unix:PATH`: uvicorn's `--uds`.
    Unix(PathBuf),
}

/// The certificate step's inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSettings {
    /// `VARDR_CERTS_DIR`: custom CAs.
    pub dir: PathBuf,
    /// `VARDR_CA_BUNDLE`: the merged bundle.
    pub bundle: PathBuf,
    /// `VARDR_SYSTEM_CA_BUNDLE`: `None` means detect it.
    pub system_bundle: Option<PathBuf>,
    /// `VARDR_CERTS_STRICT`: a rejected file stops startup.
    pub strict: bool,
    /// `VARDR_EXTRA_CA_VARS` (on by default): also export the variables of clients that ignore
    /// `SSL_CERT_FILE` (see [`CA_VARS`]).
    pub extra_vars: bool,
    /// `VARDR_PYTHON_HOOK` (on by default): the Python hook beside the bundle, first on the
    /// child's `PYTHONPATH`, makes `certifi.where()` name the bundle (see `certs::hook`).
    pub python_hook: bool,
    /// What the hook does to the app's `logging` (`VARDR_JSON_LOGS`): decided by the plan, which
    /// knows whether a logging configuration of the user's own wins.
    pub python_logs: PythonLogs,
    /// The `PYTHONPATH` the child would inherit: the hook's directory goes before it.
    pub python_path: Option<OsString>,
    /// The values the user set for the CA variables vardr-init exports (see [`CA_VARS`]).
    pub inherited: Vec<(&'static str, OsString)>,
    /// `VARDR_TLS_PROFILE`: whose verifier the verdicts match; `None` (`auto`) means the runtime
    /// the command starts (see [`crate::app::runtime`]).
    pub tls_profile: Option<TlsProfile>,
    /// A run that watches (`VARDR_CERTS_WATCH=true`) builds the bundle even with no custom CA
    /// accepted: the child gets a path whose content follows the certificates directory, so
    /// CAs mounted later reach it too.
    pub keep_bundle: bool,
}

/// What the Python hook does to the app's `logging`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PythonLogs {
    /// Nothing: the app's logging is as it configures it.
    #[default]
    AsConfigured,
    /// JSON lines in vardr-init's event schema (`VARDR_JSON_LOGS=true`).
    Json,
}

/// Variables vardr-init points at the bundle: always the first [`CLASSIC_CA_VARS`], the rest
/// unless `VARDR_EXTRA_CA_VARS=false`: the clients that read one of these and not
/// `SSL_CERT_FILE` (botocore, grpcio, pip, httplib2, Node.js, git).
pub const CA_VARS: [&str; 9] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "HTTPLIB2_CA_CERTS",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];
/// How many of [`CA_VARS`] are exported whatever `VARDR_EXTRA_CA_VARS` says.
pub const CLASSIC_CA_VARS: usize = 3;

/// The default command's inputs: which app, and how uvicorn runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSettings {
    /// `VARDR_APP_DIR`: where discovery looks.
    pub dir: PathBuf,
    /// `APP_MODULE`, or `MODULE_NAME` / `VARIABLE_NAME`.
    pub target: AppTarget,
    /// `UVICORN_OPTS`, split with shell word rules.
    pub uvicorn_opts: Vec<String>,
    /// What uvicorn reads from the environment itself.
    pub uvicorn_env: UvicornEnv,
    /// `UVICORN_LOG_CONFIG`: uvicorn's own variable for `--log-config` (a logging configuration
    /// of the user's, which wins over `VARDR_JSON_LOGS` in the app).
    pub uvicorn_log_config: Option<OsString>,
}

/// The `UVICORN_*` variables uvicorn reads itself (click's `auto_envvar_prefix`; an option on
/// the command line wins) that decide how many processes it runs, which `VARDR_CERTS_RELOAD=hup`
/// depends on. Read as click reads them; a value click would refuse is refused here first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UvicornEnv {
    /// `UVICORN_RELOAD`: `--reload`, one process whatever the worker count.
    pub reload: bool,
    /// `UVICORN_WORKERS`: `--workers` when the command line has none (before `WEB_CONCURRENCY`).
    pub workers: Option<u32>,
}

/// What the user said about the app; discovery fills in the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppTarget {
    pub module: Option<String>,
    pub variable: Option<String>,
    /// The variable that set it, for logs: `APP_MODULE` or `MODULE_NAME`.
    pub set_by: Option<&'static str>,
}

/// How much to log: `Level::ERROR` < `WARN` < `INFO` < `DEBUG`; a setting lets through its
/// level and those before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(u8);

impl Level {
    pub const ERROR: Level = Level(1);
    pub const WARN: Level = Level(2);
    pub const INFO: Level = Level(3);
    pub const DEBUG: Level = Level(4);
}

/// How and how much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// `VARDR_JSON_LOGS`: one JSON object per line instead of `[Vardr] ...` text.
    pub json: bool,
    /// `VARDR_LOG_LEVEL`: the most verbose level written.
    pub level: Level,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            json: false,
            level: Level::INFO,
        }
    }
}

/// `WORKERS`: a fixed count, or `auto` (sized from the cgroup CPU limit when the app starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    Count(NonZeroU32),
    Auto,
}

/// One variable with a value this build will not accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidVar {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for InvalidVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: expected {}",
            self.name, self.value, self.expected
        )?;
        if [TIMEOUT_FORM, DEBOUNCE_FORM, RECHECK_FORM].contains(&self.expected)
            && rounds_to_zero(&self.value)
        {
            // The text is not 0, but it would be read as 0, which means off (or no debounce).
            f.write_str(" (it is below 1 ns, the resolution, so it would be read as 0: write 0 if 0 is meant)")?;
        }
        write!(f, "; fix or unset {}", self.name)
    }
}

/// The environment was rejected. `log` is what could be read of the logging variables, so the
/// errors themselves are reported in the format the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub log: LogSettings,
    pub errors: Vec<InvalidVar>,
}

const BOOL_FORM: &str = "true or false (also 1/0, yes/no, on/off)";
const CLICK_BOOL_FORM: &str =
    "a boolean as uvicorn reads it: true/false, 1/0, yes/no, on/off, t/f, y/n";
const LEVEL_FORM: &str = "one of error, warn, info, debug";
const TIMEOUT_FORM: &str =
    "a number of seconds from 0 to 86400, such as 10 or 2.5 (0 turns it off)";
/// A day: far beyond any orchestrator's grace period, and far from `Instant` overflow.
const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const PORT_FORM: &str = "an integer from 1 to 65535";
const WORKERS_FORM: &str = "an integer from 1 to 1024 (digits only) or auto";
/// The most worker processes `WORKERS`, `WEB_CONCURRENCY` or tiangolo's formula may give: the
/// CPUs a process can be pinned to (`CPU_SETSIZE`), and far more than any container runs.
pub const MAX_WORKERS: u32 = 1024;
const HOST_FORM: &str =
    "a host name or IP address: printable ASCII without spaces, not starting with -";
const APP_MODULE_FORM: &str = "module:variable, such as main:app or app.main:api";
const PROFILE_FORM: &str = "auto, python3.N (such as python3.13) or openssl";
const MODULE_FORM: &str = "a dotted Python module name, such as main or app.main";
const VARIABLE_FORM: &str = "a Python name, such as app";
const UVICORN_LEVEL_FORM: &str = "critical, error, warning, info, debug or trace";
const SECONDS_FORM: &str = "a whole number of seconds, such as 5";
const BIND_FORM: &str = "HOST[:PORT], [IPV6]:PORT or unix:PATH";
const COUNT_FORM: &str = "a positive integer, such as 4";
const WORKER_COUNT_FORM: &str = "an integer from 1 to 1024, such as 4";
const PER_CORE_FORM: &str = "a positive number, such as 0.5";
const RELOAD_FORM: &str = "none, hup or restart";
const DEBOUNCE_FORM: &str = "a number of seconds from 0 to 60, such as 0.25";
const RECHECK_FORM: &str =
    "a number of seconds from 1 to 86400, such as 60 (0 turns the re-check off)";
const OPTS_FORM: &str = "arguments split like a shell would (balanced quotes, no trailing backslash), such as \
     --root-path \"/my api\" --log-level debug";

impl Config {
    /// Reads the process environment. The only caller of `std::env` in the crate.
    pub fn from_env() -> Result<Config, Rejected> {
        let mut config = Config::from_lookup(env_var)?;
        // Exported to a child that may chdir: a relative bundle path would lose its trust.
        if config.certs.bundle.is_relative()
            && let Ok(cwd) = std::env::current_dir()
        {
            config.certs.bundle = cwd.join(&config.certs.bundle);
        }
        Ok(config)
    }

    /// Builds the configuration from any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Config, Rejected> {
        let mut vars = Vars {
            lookup,
            errors: Vec::new(),
        };
        let log = LogSettings {
            json: vars.parse(var!("VARDR_JSON_LOGS"), parse_bool, false),
            level: vars.parse(var!("VARDR_LOG_LEVEL"), parse_level, Level::INFO),
        };
        let watch = WatchSettings {
            enabled: vars.parse(var!("VARDR_CERTS_WATCH"), parse_bool, false),
            reload: vars.parse(var!("VARDR_CERTS_RELOAD"), parse_reload, Reload::None),
            debounce: vars.parse(
                var!("VARDR_CERTS_DEBOUNCE"),
                parse_debounce,
                WatchSettings::default().debounce,
            ),
            recheck: vars.parse(
                var!("VARDR_CERTS_RECHECK"),
                parse_recheck,
                WatchSettings::default().recheck,
            ),
        };
        let config = Config {
            log,
            stop_timeout: vars.parse(var!("VARDR_STOP_TIMEOUT"), parse_stop_timeout, None),
            host: vars.parse(var!("HOST"), parse_host, "0.0.0.0".to_owned()),
            port: vars.parse(var!("PORT"), parse_port, 8000),
            workers: vars.parse(
                var!("WORKERS"),
                parse_workers,
                Workers::Count(NonZeroU32::MIN),
            ),
            certs: CertSettings {
                dir: vars.path(var!("VARDR_CERTS_DIR")),
                bundle: vars.path(var!("VARDR_CA_BUNDLE")),
                system_bundle: vars.os(var!("VARDR_SYSTEM_CA_BUNDLE")).map(PathBuf::from),
                strict: vars.parse(var!("VARDR_CERTS_STRICT"), parse_bool, false),
                extra_vars: vars.parse(var!("VARDR_EXTRA_CA_VARS"), parse_bool, true),
                python_hook: vars.parse(var!("VARDR_PYTHON_HOOK"), parse_bool, true),
                python_logs: PythonLogs::AsConfigured,
                python_path: vars.inherited("PYTHONPATH"),
                inherited: CA_VARS
                    .iter()
                    .filter_map(|&name| vars.inherited(name).map(|value| (name, value)))
                    .collect(),
                tls_profile: vars.parse(var!("VARDR_TLS_PROFILE"), parse_profile, None),
                keep_bundle: watch.enabled,
            },
            app: AppSettings {
                dir: vars.path(var!("VARDR_APP_DIR")),
                target: app_target(&mut vars),
                uvicorn_opts: vars.parse(var!("UVICORN_OPTS"), parse_opts, Vec::new()),
                uvicorn_env: UvicornEnv {
                    reload: vars.parse(var!("UVICORN_RELOAD"), parse_click_bool, false),
                    workers: vars.parse(var!("UVICORN_WORKERS"), parse_worker_count, None),
                },
                uvicorn_log_config: vars.os(var!("UVICORN_LOG_CONFIG")),
            },
            path: vars.os(var!("PATH")),
            lifecycle: Lifecycle {
                prestart: vars.parse(var!("VARDR_PRESTART"), parse_opts, Vec::new()),
                pre_start_path: vars.os(var!("PRE_START_PATH")).map(PathBuf::from),
                prestart_timeout: vars.parse(
                    var!("VARDR_PRESTART_TIMEOUT"),
                    parse_stop_timeout,
                    None,
                ),
                stop_delay: vars.parse(var!("VARDR_STOP_DELAY"), parse_stop_timeout, None),
            },
            tiangolo: tiangolo(&mut vars),
            watch,
        };
        if vars.errors.is_empty() {
            Ok(config)
        } else {
            Err(Rejected {
                log,
                errors: vars.errors,
            })
        }
    }
}

impl Config {
    /// Where the default command's uvicorn listens (see [`Listen::choose`]).
    pub fn listen(&self) -> Listen {
        let t = &self.tiangolo;
        Listen::choose(
            t.host_set.then(|| self.host.clone()),
            t.port_set.then_some(self.port),
            t.bind.as_ref(),
        )
    }
}

/// Where uvicorn listens, and the variable each part came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp {
        host: String,
        port: u16,
        host_from: &'static str,
        port_from: &'static str,
    },
    /// `BIND=unix:PATH`: uvicorn's `--uds`.
    Unix(PathBuf),
}

impl Listen {
    /// The one place that decides the address: `HOST` and `PORT` win over tiangolo's `BIND`,
    /// then 0.0.0.0:8000; `BIND=unix:PATH` counts only when neither is set. The run's
    /// `--host`/`--port`/`--uds` and `vardr-init health` both follow it.
    pub fn choose(host: Option<String>, port: Option<u16>, bind: Option<&Bind>) -> Listen {
        let (bind_host, bind_port) = match bind {
            Some(Bind::Unix(path)) if host.is_none() && port.is_none() => {
                return Listen::Unix(path.clone());
            }
            Some(Bind::Tcp { host, port }) => (Some(host), *port),
            _ => (None, None),
        };
        let (host, host_from) = match (host, bind_host) {
            (Some(host), _) => (host, "HOST"),
            (None, Some(host)) => (host.clone(), "BIND"),
            (None, None) => ("0.0.0.0".to_owned(), "default"),
        };
        let (port, port_from) = match (port, bind_port) {
            (Some(port), _) => (port, "PORT"),
            (None, Some(port)) => (port, "BIND"),
            (None, None) => (8000, "default"),
        };
        Listen::Tcp {
            host,
            port,
            host_from,
            port_from,
        }
    }

    /// What uvicorn makes of it once `UVICORN_OPTS` (which comes last, so it wins) is added:
    /// its last `--host`, `--port` (that is a port), `--uds`; a socket wins over a host and
    /// port, as in uvicorn.
    pub fn with_opts(self, opts: &[String]) -> Listen {
        if let Some(path) = option_values(opts, "--uds").last() {
            return Listen::Unix(PathBuf::from(path));
        }
        let Listen::Tcp {
            mut host,
            mut port,
            mut host_from,
            mut port_from,
        } = self
        else {
            return self;
        };
        if let Some(value) = option_values(opts, "--host").last() {
            (host, host_from) = (value.to_owned(), "UVICORN_OPTS");
        }
        if let Some(value) = option_values(opts, "--port").filter_map(parse_port).last() {
            (port, port_from) = (value, "UVICORN_OPTS");
        }
        Listen::Tcp {
            host,
            port,
            host_from,
            port_from,
        }
    }
}

/// The values of `--name VALUE` and `--name=VALUE` among `words`, in order (a `--name` with no
/// word after it has none): what uvicorn's command line gives an option, the last one winning.
pub fn option_values<'a>(words: &'a [String], name: &'a str) -> impl Iterator<Item = &'a str> {
    let mut it = words.iter();
    std::iter::from_fn(move || {
        loop {
            let word = it.next()?;
            match word.strip_prefix(name) {
                Some("") => return it.next().map(String::as_str),
                Some(rest) => {
                    if let Some(value) = rest.strip_prefix('=') {
                        return Some(value);
                    }
                }
                None => {}
            }
        }
    })
}

/// The process environment: one function, so that each `Vars` method is compiled once for it.
fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// Where uvicorn listens, for the health probe: only `HOST`, `PORT`, `BIND` and `UVICORN_OPTS`
/// are read, so a bad value elsewhere does not fail a healthcheck.
pub fn listen_from_env() -> Result<Listen, InvalidVar> {
    let mut vars = Vars {
        lookup: env_var,
        errors: Vec::new(),
    };
    let host = vars.parse(var!("HOST"), |t| parse_host(t).map(Some), None);
    let port = vars.parse(var!("PORT"), |t| parse_port(t).map(Some), None);
    let bind = vars.parse(var!("BIND"), |t| parse_bind(t).map(Some), None);
    let opts = vars.parse(var!("UVICORN_OPTS"), parse_opts, Vec::new());
    match vars.errors.pop() {
        Some(invalid) => Err(invalid),
        None => Ok(Listen::choose(host, port, bind.as_ref()).with_opts(&opts)),
    }
}

fn tiangolo<F: Fn(&str) -> Option<OsString>>(vars: &mut Vars<F>) -> Tiangolo {
    let set = |vars: &Vars<F>, var| vars.os(var).is_some();
    Tiangolo {
        log_level: vars.parse(var!("LOG_LEVEL"), parse_uvicorn_level, None),
        // tiangolo's `${ACCESS_LOG-"-"}`: set and empty is a value (no access log), the one
        // variable where empty does not mean unset.
        access_log: vars
            .raw(var!("ACCESS_LOG"))
            .map(|v| v.to_string_lossy().into_owned()),
        keep_alive: vars.parse(var!("KEEP_ALIVE"), parse_some, None),
        graceful_timeout: vars.parse(var!("GRACEFUL_TIMEOUT"), parse_some, None),
        bind: vars.parse(var!("BIND"), |t| parse_bind(t).map(Some), None),
        max_workers: vars.parse(var!("MAX_WORKERS"), parse_count, None),
        workers_per_core: vars
            .parse(var!("WORKERS_PER_CORE"), parse_per_core, None)
            .map(|per_core| per_core.as_secs_f64()),
        web_concurrency: vars.parse(var!("WEB_CONCURRENCY"), parse_worker_count, None),
        gunicorn_only: vars::VARIABLES
            .iter()
            .filter(|var| var.section == vars::Section::Gunicorn && set(vars, var))
            .map(|var| var.name)
            .collect(),
        host_set: set(vars, var!("HOST")),
        port_set: set(vars, var!("PORT")),
        workers_set: set(vars, var!("WORKERS")),
    }
}

/// `APP_MODULE` wins over `MODULE_NAME` / `VARIABLE_NAME` (the names tiangolo's images used).
fn app_target<F: Fn(&str) -> Option<OsString>>(vars: &mut Vars<F>) -> AppTarget {
    if let Some((module, variable)) = vars.parse(var!("APP_MODULE"), parse_app_module, None) {
        return AppTarget {
            module: Some(module),
            variable: Some(variable),
            set_by: Some("APP_MODULE"),
        };
    }
    let module = vars.parse(var!("MODULE_NAME"), parse_module, None);
    let variable = vars.parse(var!("VARIABLE_NAME"), parse_variable, None);
    AppTarget {
        set_by: module.is_some().then_some("MODULE_NAME"),
        module,
        variable,
    }
}

/// Records a bad value; apart from [`Vars::parse`], which is copied for each type it returns.
fn reject(errors: &mut Vec<InvalidVar>, name: &'static str, expected: &'static str, raw: &OsStr) {
    errors.push(InvalidVar {
        name,
        value: raw.to_string_lossy().into_owned(),
        expected,
    });
}

/// A lookup that collects every bad value instead of stopping at the first.
struct Vars<F> {
    lookup: F,
    errors: Vec<InvalidVar>,
}

impl<F: Fn(&str) -> Option<OsString>> Vars<F> {
    /// `var`'s value read by `parse`; unset, empty or bad (then recorded with the registry's
    /// form): `default`.
    fn parse<T>(
        &mut self,
        var: &'static Variable,
        // A function pointer, not a generic: one copy of this per value type, not per parser.
        parse: fn(&str) -> Option<T>,
        default: T,
    ) -> T {
        let Some(raw) = (self.lookup)(var.name) else {
            return default;
        };
        let parsed = match raw.to_str() {
            Some("") => return default,
            Some(text) => parse(text),
            None => None,
        };
        parsed.unwrap_or_else(|| {
            reject(&mut self.errors, var.name, var.form, &raw);
            default
        })
    }

    /// A raw value (paths may be any bytes); empty counts as unset.
    fn os(&self, var: &Variable) -> Option<OsString> {
        self.inherited(var.name)
    }

    /// The raw value, empty included (`ACCESS_LOG=` is a value).
    fn raw(&self, var: &Variable) -> Option<OsString> {
        (self.lookup)(var.name)
    }

    /// A variable of the child's that vardr-init reads to keep or extend, not a setting of its
    /// own (see [`vars`]); empty counts as unset.
    fn inherited(&self, name: &str) -> Option<OsString> {
        (self.lookup)(name).filter(|value| !value.is_empty())
    }

    /// A path whose default is the registry's.
    fn path(&self, var: &Variable) -> PathBuf {
        let default = match var.default {
            vars::Unset::Value(path) | vars::Unset::Words(path) => path,
        };
        PathBuf::from(self.os(var).unwrap_or_else(|| default.into()))
    }
}

/// Whose certificate verifier the verdicts promise to match (`VARDR_TLS_PROFILE`; the rules are
/// in `certs::rules`).
/// It crosses the pipe as its name (`python3.13`): string code the binary has anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TlsProfile {
    /// CPython 3.`minor` with OpenSSL 3 and `ssl.create_default_context()`.
    Python { minor: u8 },
    /// No known runtime: only what every OpenSSL 3 client refuses rejects; the rest warns.
    OpenSsl,
}

impl TlsProfile {
    /// `python3.N` (N from 8) or `openssl`.
    pub fn parse(text: &str) -> Option<TlsProfile> {
        if text == "openssl" {
            return Some(TlsProfile::OpenSsl);
        }
        let minor = text.strip_prefix("python3.")?;
        // Digits only, no leading zero: `python3.08` is a typo, not python3.8.
        if minor.starts_with('0') || !minor.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let minor: u8 = minor.parse().ok()?;
        (8..=99)
            .contains(&minor)
            .then_some(TlsProfile::Python { minor })
    }
}

impl From<TlsProfile> for String {
    fn from(profile: TlsProfile) -> String {
        profile.to_string()
    }
}

impl TryFrom<String> for TlsProfile {
    type Error = String;

    fn try_from(name: String) -> Result<TlsProfile, String> {
        TlsProfile::parse(&name).ok_or(name)
    }
}

impl fmt::Display for TlsProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsProfile::Python { minor } => write!(f, "python3.{minor}"),
            TlsProfile::OpenSsl => f.write_str("openssl"),
        }
    }
}

/// `auto` is `None`: the runtime the command starts decides.
fn parse_profile(text: &str) -> Option<Option<TlsProfile>> {
    if text == "auto" {
        return Some(None);
    }
    TlsProfile::parse(text).map(Some)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A boolean as click reads one from the environment: trimmed, any case, also `t/f`, `y/n`.
fn parse_click_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "y" => Some(true),
        "f" | "n" | "" => Some(false),
        other => parse_bool(other),
    }
}

fn parse_level(text: &str) -> Option<Level> {
    match text.to_ascii_lowercase().as_str() {
        "error" => Some(Level::ERROR),
        "warn" | "warning" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        _ => None,
    }
}

/// Seconds as `N` or `N.F`, read exactly as decimal digits (to the nanosecond). Signs,
/// exponents, `inf` and `nan` (which `f64::from_str` would take) are refused: a duration is
/// written by people, and a typo must not become "never". Shared with `health --timeout`.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || rounds_to_zero(text) {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    // Nanoseconds: the first nine digits of the fraction, right-padded; finer ones cannot matter.
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0, |n, b| n * 10 + u32::from(b - b'0'));
    Some(Duration::new(seconds, nanos))
}

/// A decimal that is not 0 but is below the nanosecond, the resolution of every duration: read
/// as 0, it would mean "off" where the user asked for a tiny value.
fn rounds_to_zero(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    zeros(whole)
        && zeros(&fraction[..fraction.len().min(9)])
        && fraction
            .bytes()
            .skip(9)
            .any(|b| b.is_ascii_digit() && b != b'0')
}

fn parse_stop_timeout(text: &str) -> Option<Option<Duration>> {
    let timeout = parse_seconds(text).filter(|t| *t <= MAX_STOP_TIMEOUT)?;
    Some((!timeout.is_zero()).then_some(timeout))
}

fn parse_reload(text: &str) -> Option<Reload> {
    match text.to_ascii_lowercase().as_str() {
        "none" => Some(Reload::None),
        "hup" => Some(Reload::Hup),
        "restart" => Some(Reload::Restart),
        _ => None,
    }
}

fn parse_debounce(text: &str) -> Option<Duration> {
    parse_seconds(text).filter(|d| *d <= Duration::from_secs(60))
}

/// At least a second: a re-check is a fork and a read of every input, not a busy loop.
fn parse_recheck(text: &str) -> Option<Option<Duration>> {
    let every = parse_seconds(text).filter(|t| *t <= MAX_STOP_TIMEOUT)?;
    match every {
        Duration::ZERO => Some(None),
        every if every < Duration::from_secs(1) => None,
        every => Some(Some(every)),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    let port: u16 = parse_some(text)?.and_then(|n| n.try_into().ok())?;
    (port != 0).then_some(port)
}

fn parse_workers(text: &str) -> Option<Workers> {
    if text.eq_ignore_ascii_case("auto") {
        return Some(Workers::Auto);
    }
    parse_worker_count(text)?
        .and_then(NonZeroU32::new)
        .map(Workers::Count)
}

/// A worker count, 1 to [`MAX_WORKERS`], digits only.
fn parse_worker_count(text: &str) -> Option<Option<u32>> {
    parse_count(text).filter(|n| n.is_some_and(|n| n <= MAX_WORKERS))
}

/// A host goes to uvicorn as the word after `--host`: one starting with `-` reads as an option
/// (to vardr-init's own reading of the command line too), and a control or non-ASCII character
/// is no host name uvicorn can bind nor one the health probe can send.
fn parse_host(text: &str) -> Option<String> {
    (!text.starts_with('-') && text.bytes().all(|b| b.is_ascii_graphic())).then(|| text.to_owned())
}

/// `module:variable` as `APP_MODULE` takes it (also for `[tool.fastapi] entrypoint`).
pub fn split_app_module(text: &str) -> Option<(String, String)> {
    parse_app_module(text).flatten()
}

fn parse_app_module(text: &str) -> Option<Option<(String, String)>> {
    let (module, variable) = text.split_once(':')?;
    // uvicorn accepts an attribute path after the colon (`main:app.api`).
    let attributes = variable
        .split('.')
        .all(|name| parse_variable(name).is_some());
    (parse_module(module).is_some() && attributes)
        .then(|| Some((module.to_owned(), variable.to_owned())))
}

fn parse_module(text: &str) -> Option<Option<String>> {
    text.split('.')
        .all(|name| parse_variable(name).is_some())
        .then(|| Some(text.to_owned()))
}

fn parse_variable(text: &str) -> Option<Option<String>> {
    let mut chars = text.chars();
    let first = chars.next()?;
    ((first.is_alphabetic() || first == '_') && chars.all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| Some(text.to_owned()))
}

/// A whole number written as digits only (`from_str` would also take a leading `+`).
fn parse_some(text: &str) -> Option<Option<u32>> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(Some)
}

/// A positive whole number.
fn parse_count(text: &str) -> Option<Option<u32>> {
    parse_some(text).filter(|&n| n != Some(0))
}

fn parse_uvicorn_level(text: &str) -> Option<Option<String>> {
    let level = text.to_ascii_lowercase();
    ["critical", "error", "warning", "info", "debug", "trace"]
        .contains(&level.as_str())
        .then_some(Some(level))
}

/// A positive decimal number up to 1024, read like seconds (exactly, no signs or exponents).
fn parse_per_core(text: &str) -> Option<Option<Duration>> {
    let per_core = parse_seconds(text)?;
    (!per_core.is_zero() && per_core <= Duration::from_secs(1024)).then_some(Some(per_core))
}

/// gunicorn's bind forms, one address: `unix:PATH`, `[V6]:PORT`, `[V6]`, `HOST:PORT`, `HOST`.
pub fn parse_bind(text: &str) -> Option<Bind> {
    if let Some(path) = text.strip_prefix("unix:") {
        // `--uds -x` would read as an option: a relative path that starts with - is ./-x.
        return (!path.is_empty() && !path.starts_with('-'))
            .then(|| Bind::Unix(PathBuf::from(path)));
    }
    if text.contains([' ', ',', '\t']) {
        return None;
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            v6.parse::<std::net::Ipv6Addr>().ok()?;
            match after {
                "" => (v6, None),
                _ => (v6, Some(after.strip_prefix(':')?)),
            }
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        },
    };
    let port = match port {
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => Some(parse_port(port)?),
        Some(_) => return None,
        None => None,
    };
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Some(Bind::Tcp {
        host: parse_host(host)?,
        port,
    })
}

/// Shell word rules without a shell: quotes and backslashes are honoured, nothing is expanded.
fn parse_opts(text: &str) -> Option<Vec<String>> {
    shlex::split(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Rejected> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        })
    }

    fn rejected_names(vars: &[(&str, &str)]) -> Vec<&'static str> {
        match config(vars) {
            Ok(config) => panic!("accepted {vars:?} as {config:?}"),
            Err(rejected) => rejected.errors.iter().map(|e| e.name).collect(),
        }
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        let defaults = config(&[]).expect("defaults");
        assert_eq!(defaults.log, LogSettings::default());
        assert_eq!(defaults.stop_timeout, None);
        assert_eq!(defaults.host, "0.0.0.0");
        assert_eq!(defaults.port, 8000);
        assert_eq!(defaults.workers, Workers::Count(NonZeroU32::MIN));
        assert_eq!(defaults.certs.dir, PathBuf::from("/certs"));
        assert_eq!(
            defaults.certs.bundle,
            PathBuf::from("/tmp/custom_ca_bundle.pem")
        );
        assert_eq!(defaults.certs.system_bundle, None);
        assert!(!defaults.certs.strict && defaults.certs.extra_vars && defaults.certs.python_hook);
        assert!(defaults.certs.inherited.is_empty());
        assert_eq!(defaults.app.dir, PathBuf::from("/app"));
        assert_eq!(defaults.app.target, AppTarget::default());
        assert!(defaults.app.uvicorn_opts.is_empty());
        let empty = [
            "VARDR_JSON_LOGS",
            "VARDR_LOG_LEVEL",
            "VARDR_STOP_TIMEOUT",
            "HOST",
            "PORT",
            "WORKERS",
            "VARDR_CERTS_DIR",
            "VARDR_CA_BUNDLE",
            "VARDR_SYSTEM_CA_BUNDLE",
            "VARDR_CERTS_STRICT",
            "VARDR_EXTRA_CA_VARS",
            "VARDR_TLS_PROFILE",
            "SSL_CERT_FILE",
            "VARDR_APP_DIR",
            "APP_MODULE",
            "MODULE_NAME",
            "VARIABLE_NAME",
            "UVICORN_OPTS",
        ]
        .map(|name| (name, ""));
        assert_eq!(config(&empty), Ok(defaults));
    }

    #[test]
    fn app_target_and_uvicorn_opts() {
        let c = config(&[
            ("APP_MODULE", "app.main:api"),
            ("MODULE_NAME", "ignored"),
            ("UVICORN_OPTS", r#"--root-path "/my api" --log-level debug"#),
        ])
        .expect("valid");
        assert_eq!(c.app.target.module.as_deref(), Some("app.main"));
        assert_eq!(c.app.target.variable.as_deref(), Some("api"));
        assert_eq!(c.app.target.set_by, Some("APP_MODULE"));
        assert_eq!(
            c.app.uvicorn_opts,
            ["--root-path", "/my api", "--log-level", "debug"]
        );
        let c = config(&[("VARIABLE_NAME", "service")]).expect("valid");
        assert_eq!(c.app.target.module, None);
        assert_eq!(c.app.target.variable.as_deref(), Some("service"));
        let c = config(&[("SSL_CERT_FILE", "/etc/mine.pem"), ("PIP_CERT", "/x")]).expect("ok");
        assert_eq!(
            c.certs.inherited,
            [
                ("SSL_CERT_FILE", OsString::from("/etc/mine.pem")),
                ("PIP_CERT", OsString::from("/x"))
            ]
        );
    }

    #[test]
    fn parses_good_values() {
        let c = config(&[
            ("VARDR_JSON_LOGS", "TRUE"),
            ("VARDR_LOG_LEVEL", "Debug"),
            ("VARDR_STOP_TIMEOUT", "2.5"),
            ("HOST", "::"),
            ("PORT", "65535"),
            ("WORKERS", "4"),
        ])
        .expect("valid");
        assert!(c.log.json);
        assert_eq!(c.log.level, Level::DEBUG);
        assert_eq!(c.stop_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(c.host, "::");
        assert_eq!(c.port, 65535);
        assert_eq!(c.workers, Workers::Count(NonZeroU32::new(4).expect("4")));
        assert_eq!(
            config(&[("WORKERS", "auto")]).map(|c| c.workers),
            Ok(Workers::Auto)
        );
        assert_eq!(
            config(&[("VARDR_STOP_TIMEOUT", "10")]).map(|c| c.stop_timeout),
            Ok(Some(Duration::from_secs(10)))
        );
        assert_eq!(
            config(&[("VARDR_STOP_TIMEOUT", "0")]).map(|c| c.stop_timeout),
            Ok(None)
        );
        assert_eq!(
            config(&[("VARDR_STOP_TIMEOUT", "86400")]).map(|c| c.stop_timeout),
            Ok(Some(Duration::from_secs(86400)))
        );
        assert_eq!(
            config(&[("VARDR_STOP_TIMEOUT", "0.0")]).map(|c| c.stop_timeout),
            Ok(None)
        );
        // The finest durations that are not 0, and zeros written long, are read as written.
        for (name, text, read) in [
            (
                "VARDR_STOP_TIMEOUT",
                "0.000000001",
                Some(Duration::from_nanos(1)),
            ),
            (
                "VARDR_STOP_TIMEOUT",
                "0.0000000019",
                Some(Duration::from_nanos(1)),
            ),
            ("VARDR_STOP_TIMEOUT", "0.00000000000", None),
            (
                "VARDR_STOP_DELAY",
                "0.000000001",
                Some(Duration::from_nanos(1)),
            ),
        ] {
            let c = config(&[(name, text)]).expect("valid");
            let got = [c.stop_timeout, c.lifecycle.stop_delay];
            assert!(got.contains(&read), "{name}={text}: {got:?}");
        }
        assert_eq!(
            config(&[("VARDR_CERTS_DEBOUNCE", "0.0000000000")]).map(|c| c.watch.debounce),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            config(&[("WORKERS", "1024"), ("WEB_CONCURRENCY", "1024")])
                .map(|c| (c.workers, c.tiangolo.web_concurrency)),
            Ok((
                Workers::Count(NonZeroU32::new(1024).expect("1024")),
                Some(1024)
            ))
        );
        assert_eq!(config(&[("PORT", "080")]).map(|c| c.port), Ok(80));
        assert_eq!(
            config(&[("VARDR_TLS_PROFILE", "python3.10")]).map(|c| c.certs.tls_profile),
            Ok(Some(TlsProfile::Python { minor: 10 }))
        );
        for off in ["false", "0", "no", "OFF"] {
            assert_eq!(
                config(&[("VARDR_JSON_LOGS", off)]).map(|c| c.log.json),
                Ok(false)
            );
        }
    }

    #[test]
    fn rejects_bad_values_by_name() {
        for (name, value) in [
            ("WORKERS", "abc"),
            ("WORKERS", "0"),
            ("WORKERS", "-2"),
            ("WORKERS", "1.5"),
            ("VARDR_STOP_TIMEOUT", "-1"),
            ("VARDR_STOP_TIMEOUT", "abc"),
            ("VARDR_STOP_TIMEOUT", "inf"),
            ("VARDR_STOP_TIMEOUT", "NaN"),
            ("VARDR_STOP_TIMEOUT", "1e3"),
            ("VARDR_STOP_TIMEOUT", "+5"),
            ("VARDR_STOP_TIMEOUT", "5."),
            ("VARDR_STOP_TIMEOUT", ".5"),
            ("VARDR_STOP_TIMEOUT", "10s"),
            ("VARDR_STOP_TIMEOUT", "99999999999999999999999"),
            ("VARDR_STOP_TIMEOUT", "9300000000000000000"),
            ("VARDR_STOP_TIMEOUT", "86400.5"),
            ("PORT", "0"),
            ("PORT", "70000"),
            ("PORT", "http"),
            ("HOST", "a b"),
            ("VARDR_JSON_LOGS", "maybe"),
            ("VARDR_LOG_LEVEL", "trace"),
            ("VARDR_LOG_LEVEL", "loud"),
            ("VARDR_CERTS_STRICT", "sometimes"),
            ("VARDR_TLS_PROFILE", "python2.7"),
            ("VARDR_TLS_PROFILE", "python3"),
            ("VARDR_TLS_PROFILE", "openssl3"),
            ("APP_MODULE", "main"),
            ("APP_MODULE", "main:"),
            ("APP_MODULE", ":app"),
            ("APP_MODULE", "my app:app"),
            ("MODULE_NAME", "my-app"),
            ("VARIABLE_NAME", "2app"),
            ("UVICORN_OPTS", "--root-path \"/my api"),
            ("UVICORN_OPTS", "--reload \\"),
            ("VARDR_CERTS_WATCH", "maybe"),
            ("VARDR_CERTS_RELOAD", "sighup"),
            ("VARDR_CERTS_DEBOUNCE", "61"),
            ("VARDR_CERTS_DEBOUNCE", "-1"),
            ("VARDR_CERTS_RECHECK", "0.5"),
            ("VARDR_CERTS_RECHECK", "86401"),
            ("VARDR_CERTS_RECHECK", "1m"),
            // Not 0, but below the nanosecond: read as 0 it would mean off.
            ("VARDR_STOP_TIMEOUT", "0.0000000001"),
            ("VARDR_CERTS_RECHECK", "0.0000000001"),
            ("VARDR_CERTS_DEBOUNCE", "0.0000000001"),
            ("VARDR_STOP_DELAY", "0.0000000001"),
            ("VARDR_PRESTART_TIMEOUT", "0.00000000005"),
            ("PORT", "+5"),
            ("PORT", "-0"),
            ("WORKERS", "+5"),
            ("WORKERS", "1025"),
            ("WORKERS", "86401"),
            ("WEB_CONCURRENCY", "1025"),
            ("WEB_CONCURRENCY", "+5"),
            ("HOST", "--reload"),
            ("HOST", "-h"),
            ("HOST", "h\u{7f}"),
            ("HOST", "h\u{e9}"),
            ("BIND", "--reload:80"),
            ("BIND", "unix:--workers=4"),
            ("VARDR_TLS_PROFILE", "python3.08"),
            ("VARDR_TLS_PROFILE", "python3.+8"),
            ("VARDR_TLS_PROFILE", "python3.013"),
            ("UVICORN_RELOAD", "maybe"),
            ("UVICORN_RELOAD", "2"),
            ("UVICORN_WORKERS", "+3"),
            ("UVICORN_WORKERS", "0"),
            ("UVICORN_WORKERS", "1025"),
        ] {
            assert_eq!(rejected_names(&[(name, value)]), [name], "{name}={value}");
        }
    }

    /// uvicorn's own variables, read as click reads them.
    #[test]
    fn uvicorn_variables() {
        assert_eq!(
            config(&[]).map(|c| c.app.uvicorn_env),
            Ok(UvicornEnv::default())
        );
        for (text, reload) in [("true", true), ("T", true), (" yes", true), ("y", true)]
            .into_iter()
            .chain([("false", false), ("0", false), ("n", false), ("OFF", false)])
        {
            let c = config(&[("UVICORN_RELOAD", text)]).expect("valid");
            assert_eq!(c.app.uvicorn_env.reload, reload, "UVICORN_RELOAD={text}");
        }
        let c = config(&[("UVICORN_WORKERS", "3")]).expect("valid");
        assert_eq!(c.app.uvicorn_env.workers, Some(3));
    }

    #[test]
    fn watch_settings() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.watch, WatchSettings::default());
        assert!(!c.watch.enabled && !c.certs.keep_bundle);
        assert_eq!(c.watch.reload, Reload::None);
        let c = config(&[
            ("VARDR_CERTS_WATCH", "true"),
            ("VARDR_CERTS_RELOAD", "HUP"),
            ("VARDR_CERTS_DEBOUNCE", "0.1"),
            ("VARDR_CERTS_RECHECK", "0"),
        ])
        .expect("valid");
        // A watching run keeps its bundle even with no custom CA accepted.
        assert!(c.watch.enabled && c.certs.keep_bundle);
        assert_eq!(c.watch.reload, Reload::Hup);
        assert_eq!(c.watch.debounce, Duration::from_millis(100));
        assert_eq!(c.watch.recheck, None);
        let c = config(&[
            ("VARDR_CERTS_RELOAD", "restart"),
            ("VARDR_CERTS_RECHECK", "1.5"),
        ]);
        let c = c.expect("valid");
        assert_eq!(c.watch.reload, Reload::Restart);
        assert_eq!(c.watch.recheck, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn reports_every_bad_variable_and_keeps_good_log_settings() {
        let rejected = config(&[
            ("WORKERS", "abc"),
            ("VARDR_STOP_TIMEOUT", "-1"),
            ("VARDR_JSON_LOGS", "true"),
        ])
        .expect_err("two bad values");
        let names: Vec<_> = rejected.errors.iter().map(|e| e.name).collect();
        assert_eq!(names, ["VARDR_STOP_TIMEOUT", "WORKERS"]);
        assert!(
            rejected.log.json,
            "a valid VARDR_JSON_LOGS still applies to the error report"
        );
        let tiny = config(&[("VARDR_STOP_TIMEOUT", "0.0000000001")]).expect_err("tiny");
        let message = tiny.errors[0].to_string();
        assert!(
            message.contains("VARDR_STOP_TIMEOUT=\"0.0000000001\"")
                && message.contains("read as 0: write 0"),
            "{message}"
        );
        let message = rejected.errors[1].to_string();
        assert!(message.contains("WORKERS=\"abc\""), "{message}");
        assert!(message.contains(WORKERS_FORM), "{message}");
    }

    #[test]
    fn tiangolos_variables_with_his_meaning() {
        let tcp = |host: &str, port| {
            Some(Bind::Tcp {
                host: host.to_owned(),
                port,
            })
        };
        assert_eq!(parse_bind("127.0.0.1:9001"), tcp("127.0.0.1", Some(9001)));
        assert_eq!(parse_bind("0.0.0.0"), tcp("0.0.0.0", None));
        assert_eq!(parse_bind(":80"), tcp("0.0.0.0", Some(80)));
        assert_eq!(parse_bind("[::1]:8080"), tcp("::1", Some(8080)));
        assert_eq!(parse_bind("[::]"), tcp("::", None));
        assert_eq!(
            parse_bind("unix:/tmp/app.sock"),
            Some(Bind::Unix(PathBuf::from("/tmp/app.sock")))
        );
        for bad in [
            "a:b:c",
            "h:0",
            "h:+80",
            "[::1",
            "[nope]:80",
            "unix:",
            "a:80 b:81",
            "a,b",
        ] {
            assert_eq!(parse_bind(bad), None, "{bad}");
        }
        let c = config(&[
            ("LOG_LEVEL", "WARNING"),
            ("ACCESS_LOG", ""),
            ("KEEP_ALIVE", "5"),
            ("MAX_WORKERS", "4"),
            ("WORKERS_PER_CORE", "0.5"),
            ("TIMEOUT", "120"),
            ("HOST", "::"),
        ])
        .expect("valid");
        let t = &c.tiangolo;
        assert_eq!(t.log_level.as_deref(), Some("warning"));
        assert_eq!(
            t.access_log.as_deref(),
            Some(""),
            "set to empty is a value here"
        );
        assert_eq!((t.keep_alive, t.max_workers), (Some(5), Some(4)));
        assert_eq!(t.workers_per_core, Some(0.5));
        assert_eq!(t.gunicorn_only, ["TIMEOUT"]);
        assert!(t.host_set && !t.port_set && !t.workers_set);
        assert_eq!(config(&[]).map(|c| c.tiangolo), Ok(Tiangolo::default()));
        for (name, value) in [
            ("MAX_WORKERS", "0"),
            ("WEB_CONCURRENCY", "-1"),
            ("WORKERS_PER_CORE", "0"),
            ("WORKERS_PER_CORE", "1e3"),
            ("KEEP_ALIVE", "+5"),
            ("VARDR_STOP_DELAY", "soon"),
            ("VARDR_PRESTART_TIMEOUT", "-1"),
            ("VARDR_PRESTART", "alembic 'upgrade"),
        ] {
            assert_eq!(rejected_names(&[(name, value)]), [name], "{name}={value}");
        }
    }

    /// One decision of the address for the run and the health probe: HOST and PORT win over
    /// BIND, BIND=unix counts only without them, UVICORN_OPTS wins last.
    #[test]
    fn the_listen_address_and_its_precedence() {
        let tcp = |host: &str, port, host_from, port_from| Listen::Tcp {
            host: host.to_owned(),
            port,
            host_from,
            port_from,
        };
        let listen = |vars: &[(&str, &str)]| config(vars).expect("valid").listen();
        assert_eq!(listen(&[]), tcp("0.0.0.0", 8000, "default", "default"));
        assert_eq!(
            listen(&[("BIND", "127.0.0.1:9001")]),
            tcp("127.0.0.1", 9001, "BIND", "BIND")
        );
        assert_eq!(
            listen(&[("BIND", "127.0.0.1:9001"), ("PORT", "80")]),
            tcp("127.0.0.1", 80, "BIND", "PORT")
        );
        assert_eq!(
            listen(&[("BIND", "10.0.0.1"), ("HOST", "::")]),
            tcp("::", 8000, "HOST", "default")
        );
        assert_eq!(
            listen(&[("BIND", "unix:/run/app.sock")]),
            Listen::Unix(PathBuf::from("/run/app.sock"))
        );
        assert_eq!(
            listen(&[("BIND", "unix:/run/app.sock"), ("PORT", "81")]),
            tcp("0.0.0.0", 81, "default", "PORT")
        );
        let opts = |words: &[&str], base: Listen| {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            base.with_opts(&words)
        };
        let base = || tcp("0.0.0.0", 8000, "default", "default");
        assert_eq!(
            opts(&["--port", "9", "--host=::1"], base()),
            tcp("::1", 9, "UVICORN_OPTS", "UVICORN_OPTS")
        );
        assert_eq!(
            opts(&["--uds=/s", "--port", "9"], base()),
            Listen::Unix(PathBuf::from("/s"))
        );
        assert_eq!(opts(&["--portx", "9", "--port"], base()), base());
    }

    #[test]
    fn non_utf8_is_rejected_not_lossily_accepted() {
        use std::os::unix::ffi::OsStringExt;
        let rejected = Config::from_lookup(|name| {
            (name == "PORT").then(|| OsString::from_vec(vec![b'8', 0xff]))
        })
        .expect_err("not UTF-8");
        assert_eq!(rejected.errors[0].name, "PORT");
    }
}
