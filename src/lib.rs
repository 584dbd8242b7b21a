//! vardr-init: the container entrypoint (PID 1) of hardened FastAPI images.
//!
//! The flow, one module per stage: the command line ([`cli`]) and the environment ([`config`])
//! are parsed into plain values, [`log`] is set up from them, a [`plan`] says what will run, and
//! [`supervise`] runs it as a proper init. [`sys`] holds the system calls.
//!
//! `main.rs` only calls [`main`]; everything else is here, so tests and later commands reuse it.

pub mod cli;
pub mod config;
pub mod log;
pub mod plan;
pub mod supervise;
pub mod sys;

use std::ffi::OsString;

use tracing::error;

use crate::cli::Invocation;
use crate::config::Config;
use crate::plan::Plan;
use crate::supervise::Signals;

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
    let command = match cli::parse(args) {
        Ok(Invocation::Help) => {
            print!("{}", cli::HELP);
            return 0;
        }
        Ok(Invocation::Version) => {
            println!("vardr-init {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Invocation::Run { command }) => Ok(command),
        Err(usage) => Err(usage),
    };

    // Before anything slow: a SIGTERM arriving during start-up must queue, not vanish.
    let signals = Signals::block();

    let config = Config::from_env();
    log::init(match &config {
        Ok(config) => config.log,
        Err(rejected) => rejected.log,
    });
    let command = match command {
        Ok(command) => command,
        Err(usage) => {
            error!("{usage}");
            return exit::USAGE;
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(rejected) => {
            for invalid in &rejected.errors {
                error!("{invalid}");
            }
            error!("nothing was started: fix the environment variables above");
            return exit::USAGE;
        }
    };
    let signals = match signals {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot block signals for forwarding: {e}");
            return exit::FAILURE;
        }
    };

    let plan = Plan::for_command(&config, command);
    supervise::run(&plan, &signals)
}
