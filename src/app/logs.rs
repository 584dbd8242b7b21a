//! The app's logs under `VARDR_JSON_LOGS=true`: the Python hook makes uvicorn's and the app's
//! `logging` records JSON lines in vardr-init's event schema, unless a logging configuration of
//! the user's own wins. Decided here, from the configuration and the command; printed by the
//! dry run and logged by the run as decided.

use std::ffi::OsString;

use serde::Serialize;

use crate::config::{Config, PythonLogs, option_values};

/// How the app's Python logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppLogs {
    /// `VARDR_JSON_LOGS=false`: as the app and uvicorn configure it.
    Text,
    /// JSON lines through the Python hook.
    Json,
    /// JSON was asked for, and a logging configuration of the user's own wins: where it is.
    UsersOwn(String),
    /// JSON was asked for, and `VARDR_PYTHON_HOOK=false`: nothing reaches the app's Python.
    NoHook,
}

impl AppLogs {
    /// For the command `argv` (the default command's built from `UVICORN_OPTS`, or the user's
    /// after `--`): uvicorn's `--log-config` on it, or `UVICORN_LOG_CONFIG` (which uvicorn reads
    /// when its command line has none), is the user's own configuration.
    pub fn decide(config: &Config, argv: &[OsString], default_command: bool) -> AppLogs {
        if !config.log.json {
            return AppLogs::Text;
        }
        if !config.certs.python_hook {
            return AppLogs::NoHook;
        }
        let words: Vec<String> = argv
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        if let Some(file) = option_values(&words, "--log-config").last() {
            let place = if default_command {
                "UVICORN_OPTS"
            } else {
                "the command"
            };
            return AppLogs::UsersOwn(format!("--log-config {file} in {place}"));
        }
        match &config.app.uvicorn_log_config {
            Some(file) => {
                AppLogs::UsersOwn(format!("UVICORN_LOG_CONFIG={}", file.to_string_lossy()))
            }
            None => AppLogs::Json,
        }
    }

    /// What the Python hook is to do about it.
    pub fn python(&self) -> PythonLogs {
        match self {
            AppLogs::Json => PythonLogs::Json,
            AppLogs::Text | AppLogs::UsersOwn(_) | AppLogs::NoHook => PythonLogs::AsConfigured,
        }
    }

    /// The stable word of `--dry-run --json` (`app_logs.format`).
    pub fn format(&self) -> &'static str {
        match self {
            AppLogs::Json => "json",
            AppLogs::Text => "text",
            AppLogs::UsersOwn(_) => "yours",
            AppLogs::NoHook => "not_reached",
        }
    }

    /// One line for the plan and the run's log.
    pub fn describe(&self) -> String {
        match self {
            AppLogs::Text => "as the app configures them (VARDR_JSON_LOGS=false)".to_owned(),
            AppLogs::Json => "JSON: uvicorn's and the app's logging records, one object per line \
                              (the Python hook); print() and other writes outside logging stay \
                              as written"
                .to_owned(),
            AppLogs::UsersOwn(place) => format!(
                "your logging configuration ({place}) wins: VARDR_JSON_LOGS=true applies to \
                 vardr-init's own lines, the app's are as that configuration writes them"
            ),
            AppLogs::NoHook => "not JSON: VARDR_JSON_LOGS=true reaches the app's Python through \
                                the Python hook, and VARDR_PYTHON_HOOK=false turns it off"
                .to_owned(),
        }
    }

    pub fn to_json(&self) -> AppLogsJson {
        AppLogsJson {
            format: self.format(),
            detail: self.describe(),
        }
    }
}

/// `--dry-run --json`'s `app_logs`.
#[derive(Serialize)]
pub struct AppLogsJson {
    /// `json`, `text`, `yours` (the user's logging configuration wins), `not_reached`.
    pub format: &'static str,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(vars: &[(&str, &str)], argv: &str, default_command: bool) -> AppLogs {
        let config = Config::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        })
        .expect("config");
        let argv: Vec<OsString> = argv.split(' ').map(OsString::from).collect();
        AppLogs::decide(&config, &argv, default_command)
    }

    #[test]
    fn the_users_own_configuration_wins() {
        let json = [("VARDR_JSON_LOGS", "true")];
        assert_eq!(decide(&[], "uvicorn m:a", true), AppLogs::Text);
        assert_eq!(decide(&json, "uvicorn m:a", true), AppLogs::Json);
        assert_eq!(
            decide(&json, "uvicorn m:a --log-config=log.yaml", true),
            AppLogs::UsersOwn("--log-config log.yaml in UVICORN_OPTS".to_owned())
        );
        assert_eq!(
            decide(&json, "uvicorn m:a --log-config log.ini", false),
            AppLogs::UsersOwn("--log-config log.ini in the command".to_owned())
        );
        let env = [
            ("VARDR_JSON_LOGS", "true"),
            ("UVICORN_LOG_CONFIG", "l.json"),
        ];
        assert_eq!(
            decide(&env, "uvicorn m:a", true),
            AppLogs::UsersOwn("UVICORN_LOG_CONFIG=l.json".to_owned())
        );
        let off = [("VARDR_JSON_LOGS", "true"), ("VARDR_PYTHON_HOOK", "false")];
        assert_eq!(decide(&off, "uvicorn m:a", true), AppLogs::NoHook);
        assert_eq!(AppLogs::Json.python(), PythonLogs::Json);
        assert_eq!(AppLogs::NoHook.python(), PythonLogs::AsConfigured);
    }
}
