//! App discovery runs in a forked worker, bounded: PID 1 reads neither `pyproject.toml` nor the
//! app's source. A crash of the worker (strace delivers SIGSYS at the file's open, as a seccomp
//! violation would), a file that never ends (a FIFO), a module over the size bound, a
//! pathological module under it in a small address space: each is exit 2 with a message that
//! names the file, nothing started, never a signal death, as a plain process and as PID 1 of a
//! PID namespace. With `APP_MODULE` nothing is read and no worker is forked.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::app::World;
use common::{Finished, Mode, finish};

const MAIN: &str = "from fastapi import FastAPI\napp = FastAPI()\n";

/// The largest module discovery scans (src/app/discover.rs, MAX_SOURCE_BYTES).
const MAX_SOURCE_BYTES: usize = 8 << 20;

fn app_dir(world: &World, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = world.tmp.path().join(name);
    fs::create_dir_all(&dir).expect("mkdir");
    for (file, bytes) in files {
        fs::write(dir.join(file), bytes).expect("write");
    }
    dir
}

/// `vardr-init ARGS` for `dir` under strace, `signal` delivered at any open of `file`, in any
/// process of vardr-init's tree (`-f`).
fn signal_on_open(world: &World, dir: &Path, file: &Path, args: &[&str]) -> Finished {
    let command = world.command(Mode::Subreaper, dir, args);
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(file)
        .args([
            "-e",
            "trace=open,openat",
            "-e",
            "inject=open,openat:signal=SIGSYS",
        ])
        .arg(command.get_program())
        .args(command.get_args());
    copy_env(&command, &mut traced, world);
    finish(traced)
}

/// `command`'s environment on `to`, with the system's tools after the world's fake python3 on
/// `PATH` (for strace and unshare; python3 is still the fake one).
fn copy_env(command: &Command, to: &mut Command, world: &World) {
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => to.env(name, value),
            None => to.env_remove(name),
        };
    }
    system_path(to, world);
}

fn system_path(command: &mut Command, world: &World) {
    let fake = world.fake_python_path();
    let bin = fake.parent().expect("bin");
    command.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
}

#[test]
fn a_crash_while_reading_pyproject_toml_or_the_module_is_exit_2_naming_it() {
    if !common::strace_available() {
        return;
    }
    let world = World::fake_python();
    let entry: &[u8] = b"[tool.fastapi]\nentrypoint = \"main:app\"\n";
    let with_pyproject = app_dir(
        &world,
        "pyproject",
        &[("pyproject.toml", entry), ("main.py", MAIN.as_bytes())],
    );
    let only_main = app_dir(&world, "main", &[("main.py", MAIN.as_bytes())]);
    for (dir, file) in [
        (&with_pyproject, with_pyproject.join("pyproject.toml")),
        (&only_main, only_main.join("main.py")),
    ] {
        for args in [&["--dry-run"][..], &[]] {
            let run = signal_on_open(&world, dir, &file, args);
            run.assert_code(2, "a crash of the discovery worker");
            let output = format!("{}{}", run.stdout, run.stderr);
            assert!(
                output.contains("the app discovery worker (pid ")
                    && output.contains(&format!("died of SIGSYS while reading {}", file.display()))
                    && output.contains("set APP_MODULE=module:variable"),
                "{}",
                run.describe()
            );
            assert!(!world.python_started(), "nothing started");
        }
    }
}

#[test]
fn a_pyproject_toml_that_never_ends_is_a_timeout_naming_it() {
    let world = World::fake_python();
    let dir = app_dir(&world, "fifo", &[("main.py", MAIN.as_bytes())]);
    let fifo = dir.join("pyproject.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let (code, plan) = world.plan(&dir, &[]);
    assert_eq!(code, 2, "{plan:#}");
    let errors = plan["errors"].to_string();
    assert!(
        errors.contains("ran past its 10s deadline while reading")
            && errors.contains(&fifo.display().to_string()),
        "{plan:#}"
    );
}

#[test]
fn a_module_over_the_size_bound_is_refused_unread() {
    let world = World::fake_python();
    let mut source = MAIN.as_bytes().to_vec();
    source.resize(MAX_SOURCE_BYTES + 1, b'#');
    let dir = app_dir(&world, "huge", &[("main.py", &source)]);
    let (code, plan) = world.plan(&dir, &[]);
    assert_eq!(code, 2, "{plan:#}");
    let errors = plan["errors"].to_string();
    assert!(
        errors.contains(&format!("{} is over 8 MiB", dir.join("main.py").display())),
        "{plan:#}"
    );
    // At the bound it is read, and the app found.
    source.truncate(MAX_SOURCE_BYTES);
    fs::write(dir.join("main.py"), &source).expect("write");
    let (code, plan) = world.plan(&dir, &[]);
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["argv"][3], "main:app", "{plan:#}");
}

/// Modules of 8 MiB (the bound) that cost a line scanner the most: one statement binding two
/// million names, two million imports, a line of brackets, invalid UTF-8 throughout.
fn pathological_modules() -> Vec<(&'static str, Vec<u8>)> {
    let fill = |unit: &[u8], head: &[u8]| {
        let mut bytes = head.to_vec();
        while bytes.len() + unit.len() <= MAX_SOURCE_BYTES {
            bytes.extend_from_slice(unit);
        }
        bytes
    };
    vec![
        ("a chain of assignments", fill(b" = a", b"a")),
        ("a long import", fill(b"a, ", b"from m import ")),
        ("open brackets", fill(b"(", b"")),
        ("invalid UTF-8", fill(b"\xff", b"")),
        ("many statements", fill(b"x = 1; ", b"")),
    ]
}

/// In 192 MB of address space, the worst modules under the bound are scanned to the end (no app
/// in them: exit 2, naming the file); the scan that ran in PID 1 took 285 MB on the first.
#[test]
fn pathological_modules_are_scanned_within_the_memory_bound() {
    if std::env::var_os("VARDR_TEST_EMULATOR").is_some() {
        // qemu-user keeps the guest's RLIMIT_AS for itself, and a host bound starves it.
        eprintln!("not under an emulator: RLIMIT_AS bounds the emulator, not vardr-init");
        return;
    }
    let world = World::fake_python();
    for (n, (name, source)) in pathological_modules().iter().enumerate() {
        let dir = app_dir(&world, &format!("m{n}"), &[("main.py", source)]);
        let mut command = world.command(Mode::Subreaper, &dir, &["--dry-run"]);
        bound_memory(&mut command, 192_000_000);
        let run = finish(command);
        run.assert_code(2, name);
        let file = dir.join("main.py").display().to_string();
        assert!(
            run.stdout
                .contains(&format!("no FastAPI app variable found in {file}")),
            "{name}: {}",
            run.describe()
        );
    }
}

/// As PID 1 of a PID namespace, the run (not a dry run) on the same modules and on an app over
/// the bound: exit 2 and nothing started, never a signal death.
#[test]
fn pathological_modules_are_exit_2_as_pid_1() {
    if !common::pid_namespaces() {
        return;
    }
    let world = World::fake_python();
    let mut modules = pathological_modules();
    let mut huge = MAIN.as_bytes().to_vec();
    huge.resize(MAX_SOURCE_BYTES + 1, b'#');
    modules.push(("an app over the bound", huge));
    for (n, (name, source)) in modules.iter().enumerate() {
        let dir = app_dir(&world, &format!("m{n}"), &[("main.py", source)]);
        let mut command = world.command(Mode::Pid1, &dir, &[]);
        system_path(&mut command, &world);
        let run = finish(command);
        assert_eq!(run.status.code(), Some(2), "{name}: {}", run.describe());
        assert!(
            run.stderr
                .contains(&dir.join("main.py").display().to_string()),
            "{name}: {}",
            run.describe()
        );
        assert!(!world.python_started(), "nothing started");
    }
}

/// The processes vardr-init's dry run forks, counted by strace: with `APP_MODULE` only the
/// certificate worker, and neither pyproject.toml nor main.py is opened; without it the app
/// discovery worker too.
#[test]
fn with_app_module_nothing_is_read_and_no_worker_forked() {
    if !common::strace_available() {
        return;
    }
    let world = World::fake_python();
    let dir = app_dir(
        &world,
        "app",
        &[
            (
                "pyproject.toml",
                b"[tool.fastapi]\nentrypoint = \"main:app\"\n",
            ),
            ("main.py", MAIN.as_bytes()),
        ],
    );
    let trace = world.tmp.path().join("trace");
    let traced = |env: &[(&str, &str)]| {
        let command = world.command(Mode::Subreaper, &dir, &["--dry-run"]);
        let mut strace = Command::new("strace");
        strace
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=fork,vfork,clone,clone3,open,openat",
                "-o",
            ])
            .arg(&trace)
            .arg(command.get_program())
            .args(command.get_args());
        copy_env(&command, &mut strace, &world);
        strace.envs(env.iter().copied());
        finish(strace).assert_code(0, "the dry run");
        let lines = fs::read_to_string(&trace).expect("trace");
        let forks = lines
            .lines()
            .filter(|l| l.contains("fork(") || l.contains("clone(") || l.contains("clone3("))
            // Processes, not threads (qemu-user makes threads of its own) nor failed calls.
            .filter(|l| !l.contains("CLONE_THREAD") && !l.contains("= -1"))
            .count();
        let opened = |name: &str| {
            lines
                .lines()
                .any(|l| l.contains("open") && l.contains(name))
        };
        (forks, opened("pyproject.toml"), opened("main.py"))
    };
    assert_eq!(traced(&[("APP_MODULE", "main:app")]), (1, false, false));
    assert_eq!(traced(&[("MODULE_NAME", "main")]), (1, false, false));
    assert_eq!(traced(&[]), (2, true, false));
    fs::remove_file(dir.join("pyproject.toml")).expect("rm");
    assert_eq!(traced(&[]), (2, true, true));
}

/// Sets `RLIMIT_AS` to `bytes` in the command's process before it starts.
fn bound_memory(command: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe, given a valid pointer; nothing else runs here.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
