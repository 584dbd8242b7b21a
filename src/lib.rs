//! vardr-init: the container entrypoint (PID 1) of hardened FastAPI images.
//!
//! The flow, one module per stage: the command line ([`cli`]) and the environment ([`config`])
//! are parsed into plain values and [`log`] is set up from them; a [`plan`] decides everything:
//! the certificate pass runs in a short-lived worker process ([`certs`]), and the app side
//! ([`app`]) finds the app, in a worker too, and builds the uvicorn launch. `--dry-run` prints the
//! plan; a run hands its launch to the init ([`init`]), which supervises the child. [`commands`]
//! holds those orchestrations; [`health`] is the HTTP probe; [`events`] the contract's JSON
//! events; [`sys`] every system call (all the crate's `unsafe`); [`worker`] the forked workers
//! that read what a volume or the app provides; [`exit`] the exit codes.
//!
//! Layers, each importing only those below it: `commands` > `plan` > `certs`, `app`, `init`,
//! `health` > `config`, `log`, `events`, `worker`, `sys`, `exit`.
//!
//! `main.rs` only calls [`main`]; everything else is here, so tests and later commands reuse it.

pub mod app;
pub mod certs;
pub mod cli;
pub mod commands;
pub mod config;
pub mod events;
pub mod exit;
pub mod health;
pub mod init;
pub mod log;
pub mod plan;
pub mod sys;
pub mod worker;

use std::ffi::OsString;

use crate::cli::Invocation;

/// What `--version` prints: the version, the commit and the target it was built for (from
/// build.rs; nothing time-dependent, so builds of one commit stay byte-identical).
pub const VERSION_LINE: &str = concat!(
    "vardr-init ",
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VARDR_BUILD_COMMIT"),
    ", ",
    env!("VARDR_BUILD_TARGET"),
    ")\n"
);

/// Runs vardr-init with the arguments after the program name; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> u8 {
    match cli::parse(args) {
        Ok(Invocation::Help) => commands::output(&cli::help()),
        Ok(Invocation::Version) => commands::output(VERSION_LINE),
        Ok(Invocation::Run { command }) => commands::run(command),
        Ok(Invocation::DryRun { json, command }) => commands::dry_run(json, command),
        Ok(Invocation::Certs { json }) => commands::certs(json),
        Ok(Invocation::Health { url, timeout }) => commands::health(url, timeout),
        Err(usage) => commands::usage_error(&usage),
    }
}
