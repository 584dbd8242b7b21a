//! The uvicorn command line the default command builds: `UVICORN_OPTS` split like a shell but
//! never run by one, and reaching the running uvicorn; `WORKERS=auto` sized from a real cgroup CPU
//! limit; `VARDR_STOP_TIMEOUT` turned into uvicorn's graceful-shutdown timeout.
//!
//! Most tests read the argv of `--dry-run --json` with a fake `python3`; the one that serves needs
//! the venv (`common::venv_python`).

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::app::{World, any_mode, example, exit_code, get, start_service, wait_until_serving};
use common::{Mode, finish};
use serde_json::Value;

/// A dry-run plan's `argv`.
fn argv_of(plan: &Value) -> Vec<&str> {
    plan["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect()
}

const ROOT_PATH_OPTS: &str = r#"--root-path "/my api" --log-level debug"#;

#[test]
fn uvicorn_opts_are_split_like_a_shell_and_appended_last() {
    let world = World::fake_python();
    let (code, plan) = world.plan(&example("basic"), &[("UVICORN_OPTS", ROOT_PATH_OPTS)]);
    assert_eq!(code, 0, "{plan:#}");
    let argv = argv_of(&plan);
    assert!(
        argv.ends_with(&["--root-path", "/my api", "--log-level", "debug"]),
        "{argv:?}"
    );
}

/// No shell anywhere: shell syntax in `UVICORN_OPTS` stays literal words of python's argv, and
/// a real start (the fake python) runs none of it.
#[test]
fn shell_syntax_in_uvicorn_opts_is_never_run() {
    let world = World::fake_python();
    let pwned = world.tmp.path().join("pwned");
    let opts = format!(
        "--root-path '$(touch {p}1)' `touch {p}2` ; touch {p}3 | touch {p}4 && touch {p}5",
        p = pwned.display()
    );
    let (code, plan) = world.plan(&example("basic"), &[("UVICORN_OPTS", &opts)]);
    assert_eq!(code, 0, "{plan:#}");
    let argv = argv_of(&plan);
    let p = pwned.display();
    let literal = [
        "--root-path".to_owned(),
        format!("$(touch {p}1)"),
        "`touch".to_owned(),
        format!("{p}2`"),
        ";".to_owned(),
    ];
    assert!(
        argv.windows(literal.len()).any(|w| w == literal),
        "{argv:?}"
    );
    let mut command = world.command(Mode::Subreaper, &example("basic"), &[]);
    command.env("UVICORN_OPTS", &opts);
    let done = finish(command);
    done.assert_code(3, "the fake python's own exit status");
    assert!(world.python_started(), "{}", done.describe());
    for n in 1..=5 {
        assert!(
            !world.tmp.path().join(format!("pwned{n}")).exists(),
            "pwned{n}: something ran a shell; {}",
            done.describe()
        );
    }
}

#[test]
fn uvicorn_opts_reach_the_running_uvicorn() {
    let Some(world) = World::venv() else { return };
    let mode = any_mode();
    let running = start_service(&world, mode, &[("UVICORN_OPTS", ROOT_PATH_OPTS)], 1);
    wait_until_serving(world.port);
    assert_eq!(
        get(world.port, "/root-path").expect("GET /root-path"),
        (200, r#""/my api""#.to_owned()),
        "--root-path with its quoted space"
    );
    assert_eq!(
        get(world.port, "/log-level").expect("GET /log-level"),
        (200, r#""DEBUG""#.to_owned()),
        "--log-level debug"
    );
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status, &stderr), 0, "{stderr:#?}");
}

/// A real CPU-quota cgroup of `millicpus`, on cgroup v1's cpu controller or cgroup v2, removed
/// on drop. `None` where cgroups cannot be made (not root); a failure in CI.
struct CpuCgroup(PathBuf);

impl CpuCgroup {
    fn new(millicpus: u32) -> Option<CpuCgroup> {
        let name = format!("vardr-test-{}-{millicpus}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup");
        let made = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            std::fs::create_dir(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_period_us"), "100000"))
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.cfs_quota_us"), format!("{}", millicpus * 100))
                })
                .map(|()| dir)
        } else if std::fs::read_to_string(v2.join("cgroup.controllers"))
            .is_ok_and(|c| c.contains("cpu"))
        {
            let dir = v2.join(&name);
            std::fs::create_dir(&dir)
                .and_then(|()| {
                    std::fs::write(dir.join("cpu.max"), format!("{} 100000", millicpus * 100))
                })
                .map(|()| dir)
        } else {
            Err(io::Error::other("no cpu cgroup controller mounted"))
        };
        match made {
            Ok(dir) => Some(CpuCgroup(dir)),
            Err(e) => {
                common::skip_outside_ci(&format!("no CPU cgroup can be made here: {e}"));
                None
            }
        }
    }

    /// `command`, run from inside this cgroup (a shell moves itself in, then execs it).
    fn wrap(&self, command: &Command) -> Command {
        let mut wrapped = Command::new("/bin/sh");
        wrapped
            .args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
            .arg(&self.0)
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }
}

impl Drop for CpuCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn workers_auto_is_sized_from_a_real_cgroup_cpu_limit() {
    let world = World::fake_python();
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // 1 CPU on a machine with more: not the host's count. 1.5 CPUs: rounded up, not down.
    for (millicpus, expected) in [(1000, 1), (1500, 2.min(host_cpus)), (500, 1)] {
        let Some(cgroup) = CpuCgroup::new(millicpus) else {
            return;
        };
        let mut command =
            world.command(Mode::Subreaper, &example("basic"), &["--dry-run", "--json"]);
        command.env("WORKERS", "auto");
        let done = finish(cgroup.wrap(&command));
        let plan: Value = serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("dry-run JSON: {e}; {}", done.describe()));
        assert_eq!(
            plan["app"]["workers"], expected,
            "{millicpus} millicpus: {plan:#}"
        );
        let argv = argv_of(&plan);
        let passed = argv
            .windows(2)
            .find(|pair| pair[0] == "--workers")
            .map(|pair| pair[1].to_owned());
        let wanted = (expected > 1).then(|| expected.to_string());
        assert_eq!(passed, wanted, "--workers only when more than 1: {argv:?}");
    }
}

#[test]
fn stop_timeout_gives_uvicorn_a_graceful_shutdown_just_inside_it() {
    let world = World::fake_python();
    let (code, plan) = world.plan(&example("basic"), &[("VARDR_STOP_TIMEOUT", "10")]);
    assert_eq!(code, 0, "{plan:#}");
    assert!(
        argv_of(&plan).ends_with(&["--timeout-graceful-shutdown", "9"]),
        "{plan:#}"
    );
    // The user's own value wins, and is not passed twice.
    let opts = ("UVICORN_OPTS", "--timeout-graceful-shutdown=3");
    let (_, plan) = world.plan(&example("basic"), &[("VARDR_STOP_TIMEOUT", "10"), opts]);
    let argv = argv_of(&plan);
    assert_eq!(
        argv.last(),
        Some(&"--timeout-graceful-shutdown=3"),
        "{argv:?}"
    );
    assert!(!argv.contains(&"--timeout-graceful-shutdown"), "{argv:?}");
}
