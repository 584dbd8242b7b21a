//! The command line, parsed into one plain value.
//!
//! Grammar: `vardr-init [-h|--help] [-V|--version] [-- CMD [ARG...]]`. Everything after the first
//! `--` belongs to the command, byte for byte (`OsString`, no re-parsing), so a command's own
//! `--help` or `--` reaches it untouched.

use std::ffi::OsString;
use std::fmt;

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Version,
    /// Supervise this command: program then arguments, never empty.
    Run {
        command: Vec<OsString>,
    },
}

/// The command line could not be understood. Exit 2, with [`USAGE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {USAGE} (see vardr-init --help)", self.0)
    }
}

pub const USAGE: &str = "usage: vardr-init [--help] [--version] [-- CMD [ARG...]]";

pub const HELP: &str = "\
vardr-init: container entrypoint (PID 1) for Python web services

usage: vardr-init [--help] [--version] [-- CMD [ARG...]]

  vardr-init -- CMD [ARG...]   run CMD (no shell) as the supervised child: forward signals to it,
                               reap zombies, exit with its status (128+N if signal N killed it)
  -h, --help                   this text
  -V, --version                the version

Environment (an empty value means the default):
  VARDR_STOP_TIMEOUT  seconds (at most 86400) after the first forwarded SIGTERM/SIGINT before the
                      child's process group gets SIGKILL (default 0: off)
  VARDR_JSON_LOGS     true: JSON lines on stderr (default false: \"[Vardr] ...\" text)
  VARDR_LOG_LEVEL     error, warn, info or debug (default info)
  HOST, PORT, WORKERS uvicorn settings, validated at start (defaults 0.0.0.0, 8000, 1)

Exit status: the child's; 128+N if it died of signal N; 2 bad usage or configuration; 126 command
not executable; 127 command not found; 1 any other failure of vardr-init.
";

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    use lexopt::Arg::{Long, Short, Value};

    let mut parser = lexopt::Parser::from_args(args);
    // lexopt folds `--` away; peek at the raw argument so the command starts exactly there.
    if let Some(mut raw) = parser.try_raw_args()
        && raw.next_if(|arg| arg == "--").is_some()
    {
        let command: Vec<OsString> = raw.collect();
        if command.is_empty() {
            return Err(UsageError("no command after --".into()));
        }
        return Ok(Invocation::Run { command });
    }
    // Otherwise the first argument alone decides: each accepted form is complete on its own.
    let (invocation, flag) = match parser.next() {
        Ok(Some(Short('h') | Long("help"))) => (Invocation::Help, "--help"),
        Ok(Some(Short('V') | Long("version"))) => (Invocation::Version, "--version"),
        Ok(Some(Value(word))) => {
            return Err(UsageError(format!(
                "unexpected argument {word:?}: put the program to run after --, as in \
                 `vardr-init -- {}`",
                word.to_string_lossy()
            )));
        }
        Ok(Some(option)) => return Err(UsageError(option.unexpected().to_string())),
        Ok(None) => {
            return Err(UsageError(
                "no command given: put the program to run after --, as in \
                 `vardr-init -- python3 -m uvicorn main:app`"
                    .into(),
            ));
        }
        Err(error) => return Err(UsageError(error.to_string())),
    };
    if parser.optional_value().is_some() {
        return Err(UsageError(format!("option {flag} takes no value")));
    }
    Ok(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> Invocation {
        Invocation::Run {
            command: args.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn command_after_double_dash_is_taken_verbatim() {
        assert_eq!(
            parse_strs(&["--", "sleep", "10"]),
            Ok(run(&["sleep", "10"]))
        );
        assert_eq!(
            parse_strs(&["--", "python3", "--help", "--", "-x"]),
            Ok(run(&["python3", "--help", "--", "-x"]))
        );
        assert_eq!(parse_strs(&["--", "--version"]), Ok(run(&["--version"])));
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
            (&["--help=yes"][..], "--help"),
            (&["sleep", "10"][..], "sleep"),
            (&[][..], "no command given"),
            (&["--"][..], "no command after --"),
        ] {
            let error = parse_strs(args).expect_err("usage error").to_string();
            assert!(error.contains(needle), "{args:?}: {error}");
            assert!(error.contains(USAGE), "{args:?}: {error}");
        }
    }
}
