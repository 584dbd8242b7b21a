//! What a run will do, decided before anything starts.
//!
//! A [`Plan`] is computed from the [`Config`] and the command line and then executed by the
//! supervisor. Later stages (the certificate bundle, app discovery) add their decisions here, so
//! that a dry run can print exactly what a real run executes.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::time::Duration;

use crate::config::Config;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The program to execute (looked up on `PATH` when it has no `/`), then its arguments.
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Hard-kill deadline after the first forwarded SIGTERM/SIGINT.
    pub stop_timeout: Option<Duration>,
}

impl Plan {
    /// The plan for `vardr-init -- COMMAND...`. `command` is never empty (the CLI refuses that).
    pub fn for_command(config: &Config, command: Vec<OsString>) -> Plan {
        let mut words = command.into_iter();
        Plan {
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            stop_timeout: config.stop_timeout,
        }
    }

    /// The command line as a user could paste it into a shell.
    pub fn command_line(&self) -> CommandLine<'_> {
        CommandLine(self)
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
