//! The command line, parsed into one plain value.
//!
//! Grammar:
//! `vardr-init [--dry-run [--json]] [-- CMD [ARG...]]`, `vardr-init certs [--json]`,
//! `vardr-init health [--url URL] [--timeout SECS]`, `--help`, `--version`.
//! Everything after the first `--` belongs to the command, byte for byte (`OsString`, no
//! re-parsing), so a command's own `--help` or `--` reaches it untouched.

use std::ffi::OsString;
use std::fmt;

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Version,
    /// Prepare the certificates and supervise `command`, or uvicorn when it is `None`.
    Run {
        command: Option<Vec<OsString>>,
    },
    /// Print the plan of that run; write and start nothing.
    DryRun {
        json: bool,
        command: Option<Vec<OsString>>,
    },
    /// Only build the bundle and print the summary.
    Certs {
        json: bool,
    },
    /// Probe the app over HTTP. Values are checked by [`crate::health`], which never exits 2.
    Health {
        url: Option<String>,
        timeout: Option<String>,
    },
}

/// The command line could not be understood: exit [`UsageError::code`], with [`USAGE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    /// 2, except for `health`: Docker reserves a HEALTHCHECK's exit 2, so a probe says 1.
    pub code: u8,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {USAGE} (see vardr-init --help)", self.message)
    }
}

pub const USAGE: &str = "usage: vardr-init [--dry-run [--json]] [-- CMD [ARG...]] | \
                         vardr-init certs [--json] | \
                         vardr-init health [--url URL] [--timeout SECS]";

/// `--help` before the environment.
const HELP_HEAD: &str = "\
vardr-init: container entrypoint (PID 1) for Python web services

usage: vardr-init [--dry-run [--json]] [-- CMD [ARG...]]
       vardr-init certs [--json]
       vardr-init health [--url URL] [--timeout SECS]

  vardr-init                   prepare the CA bundle, find the FastAPI app, run it with uvicorn
  vardr-init -- CMD [ARG...]   prepare the CA bundle, then run CMD (no shell) instead of uvicorn
                               Either way vardr-init supervises the child: it forwards signals
                               to it, reaps zombies, and exits with its status (128+N if signal
                               N killed it).
  --dry-run [--json]           print the whole plan (certificate verdicts, bundle reuse or
                               rebuild, exported variables, argv); write and start nothing.
                               Exit 0 if a run would start, 2 if not
  certs [--json]               only build the bundle and print the summary (init containers, CI)
  health [--url URL] [--timeout SECS]
                               GET /health where uvicorn listens (HOST, PORT, BIND), 3 s timeout;
                               exit 0 on 2xx, 1 otherwise (for HEALTHCHECK without curl)
  -h, --help                   this text
  -V, --version                the version, the commit and the target it was built for
";

/// `--help` after the environment.
const HELP_TAIL: &str = "\
Exit status: the child's; 128+N if it died of signal N; 2 bad usage or configuration (nothing
started); 126 command not executable; 127 command not found; 1 any other failure of vardr-init.
";

/// `--help`: the usage, the environment from the registry ([`crate::config::vars`]), the exit
/// status.
pub fn help() -> String {
    let mut text = String::from(HELP_HEAD);
    text.push('\n');
    text.push_str(&crate::config::vars::help());
    text.push('\n');
    text.push_str(HELP_TAIL);
    text
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_args(args);
    let mut dry_run = false;
    let mut json = false;
    let mut first = true;
    loop {
        // lexopt folds `--` away; peek at the raw argument so the command starts exactly there.
        if let Some(mut raw) = parser.try_raw_args()
            && raw.next_if(|arg| arg == "--").is_some()
        {
            let command: Vec<OsString> = raw.collect();
            if command.is_empty() {
                return Err(usage("no command after --"));
            }
            return finish(dry_run, json, Some(command));
        }
        let arg = match parser.next() {
            Ok(Some(arg)) => arg,
            Ok(None) => return finish(dry_run, json, None),
            Err(error) => return Err(usage(error.to_string())),
        };
        let flag = match arg {
            Short('h') | Long("help") if first => Some((Invocation::Help, "--help")),
            Short('V') | Long("version") if first => Some((Invocation::Version, "--version")),
            Value(word) if first && word == "certs" => return certs(parser),
            Value(word) if first && word == "health" => return health(parser),
            Long("dry-run") => {
                dry_run = true;
                None
            }
            Long("json") => {
                json = true;
                None
            }
            Value(word) => {
                return Err(usage(format!(
                    "unexpected argument {word:?}: put the program to run after --, as in \
                     `vardr-init -- {}`",
                    word.to_string_lossy()
                )));
            }
            option => return Err(usage(option.unexpected().to_string())),
        };
        if parser.optional_value().is_some() {
            return Err(usage("this option takes no value"));
        }
        if let Some((invocation, name)) = flag {
            // Each of these is complete on its own.
            return match parser.next() {
                Ok(None) => Ok(invocation),
                _ => Err(usage(format!("{name} takes no other arguments"))),
            };
        }
        first = false;
    }
}

fn finish(
    dry_run: bool,
    json: bool,
    command: Option<Vec<OsString>>,
) -> Result<Invocation, UsageError> {
    match (dry_run, json) {
        (true, json) => Ok(Invocation::DryRun { json, command }),
        (false, true) => Err(usage("--json goes with --dry-run (or certs)")),
        (false, false) => Ok(Invocation::Run { command }),
    }
}

fn certs(mut parser: lexopt::Parser) -> Result<Invocation, UsageError> {
    let mut json = false;
    loop {
        match parser.next() {
            Ok(Some(lexopt::Arg::Long("json"))) => json = true,
            Ok(None) => return Ok(Invocation::Certs { json }),
            Ok(Some(arg)) => return Err(usage(format!("certs: {}", arg.unexpected()))),
            Err(error) => return Err(usage(format!("certs: {error}"))),
        }
        if parser.optional_value().is_some() {
            return Err(usage("certs: --json takes no value"));
        }
    }
}

fn health(mut parser: lexopt::Parser) -> Result<Invocation, UsageError> {
    let (mut url, mut timeout) = (None, None);
    let health_usage = |message: String| UsageError {
        message: format!("health: {message}"),
        code: 1,
    };
    loop {
        let slot = match parser.next() {
            Ok(Some(lexopt::Arg::Long("url"))) => &mut url,
            Ok(Some(lexopt::Arg::Long("timeout"))) => &mut timeout,
            Ok(None) => return Ok(Invocation::Health { url, timeout }),
            Ok(Some(arg)) => return Err(health_usage(arg.unexpected().to_string())),
            Err(error) => return Err(health_usage(error.to_string())),
        };
        match parser.value().map(|v| v.into_string()) {
            Ok(Ok(value)) => *slot = Some(value),
            Ok(Err(value)) => return Err(health_usage(format!("{value:?} is not UTF-8"))),
            Err(error) => return Err(health_usage(error.to_string())),
        }
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError {
        message: message.into(),
        code: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn words(args: &[&str]) -> Option<Vec<OsString>> {
        Some(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn command_after_double_dash_is_taken_verbatim() {
        let run = |args: &[&str]| Invocation::Run {
            command: words(args),
        };
        assert_eq!(
            parse_strs(&["--", "sleep", "10"]),
            Ok(run(&["sleep", "10"]))
        );
        assert_eq!(
            parse_strs(&["--", "python3", "--help", "--", "-x"]),
            Ok(run(&["python3", "--help", "--", "-x"]))
        );
        assert_eq!(parse_strs(&["--", "--version"]), Ok(run(&["--version"])));
        assert_eq!(parse_strs(&[]), Ok(Invocation::Run { command: None }));
    }

    #[test]
    fn dry_run_with_or_without_a_command() {
        assert_eq!(
            parse_strs(&["--dry-run"]),
            Ok(Invocation::DryRun {
                json: false,
                command: None
            })
        );
        assert_eq!(
            parse_strs(&["--dry-run", "--json", "--", "sh", "-c", "x"]),
            Ok(Invocation::DryRun {
                json: true,
                command: words(&["sh", "-c", "x"])
            })
        );
        assert_eq!(
            parse_strs(&["--json", "--dry-run"]),
            Ok(Invocation::DryRun {
                json: true,
                command: None
            })
        );
    }

    #[test]
    fn subcommands() {
        assert_eq!(
            parse_strs(&["certs"]),
            Ok(Invocation::Certs { json: false })
        );
        assert_eq!(
            parse_strs(&["certs", "--json"]),
            Ok(Invocation::Certs { json: true })
        );
        assert_eq!(
            parse_strs(&["health"]),
            Ok(Invocation::Health {
                url: None,
                timeout: None
            })
        );
        assert_eq!(
            parse_strs(&["health", "--url", "http://x/y", "--timeout=1.5"]),
            Ok(Invocation::Health {
                url: Some("http://x/y".into()),
                timeout: Some("1.5".into())
            })
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_strs(&["--help"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&["-h"]), Ok(Invocation::Help));
        assert_eq!(parse_strs(&["--version"]), Ok(Invocation::Version));
        assert_eq!(parse_strs(&["-V"]), Ok(Invocation::Version));
    }

    #[test]
    fn usage_errors_say_what_was_wrong() {
        for (args, needle) in [
            (&["--frobnicate"][..], "--frobnicate"),
            (&["-x"][..], "-x"),
            (&["--help=yes"][..], "no value"),
            (&["--help", "--version"][..], "--help"),
            (&["sleep", "10"][..], "sleep"),
            (&["--"][..], "no command after --"),
            (&["--json"][..], "--dry-run"),
            (&["--dry-run", "certs"][..], "certs"),
            (&["certs", "--verbose"][..], "--verbose"),
        ] {
            let error = parse_strs(args).expect_err("usage error");
            assert_eq!(error.code, 2, "{args:?}");
            let error = error.to_string();
            assert!(error.contains(needle), "{args:?}: {error}");
            assert!(error.contains(USAGE), "{args:?}: {error}");
        }
    }

    #[test]
    fn health_usage_errors_exit_1_not_2() {
        for args in [&["health", "--url"][..], &["health", "--verbose"][..]] {
            assert_eq!(parse_strs(args).expect_err("usage").code, 1, "{args:?}");
        }
    }
}
