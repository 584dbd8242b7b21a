//! vardr-init as an init, tested from outside on the real binary with real processes and signals,
//! as PID 1 of a fresh PID namespace and as a plain child (subreaper).

mod common;

use common::pty;

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::{Duration, Instant};

use common::{
    Mode, assert_logged, command, is_dead, namespace_child_pid, pid_namespaces, python_script, run,
    start,
};

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("vardr-init itself died of a signal: {status:?}"))
}

#[test]
fn every_catchable_signal_sent_to_pid1_reaches_the_child() {
    if !pid_namespaces() {
        return;
    }
    let rt = libc::SIGRTMIN() + 3;
    let signals = [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGALRM,
        rt,
    ];
    let mut args = python_script("record_signals.py");
    args.extend(signals.iter().map(|s| s.to_string()));
    let running = start(command(Mode::Pid1, &args), Mode::Pid1);
    running.expect_line("ready ");
    for signal in signals {
        running.signal(signal);
        assert_eq!(running.expect_line("got "), format!("got {signal}"));
    }
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status), 0, "{stderr:#?}");
    assert_logged(
        &stderr,
        &format!("Forwarding SIGTERM to pid {}", namespace_child_pid(&stderr)),
        "the child is PID 3 of the namespace (the certificate worker was PID 2), vardr-init PID 1",
    );
}

/// The child's blocked and ignored signal sets, as it sees them. grep touches no signal state,
/// so what it reports is exactly what vardr-init handed over.
const SIGNAL_STATE_PROBE: [&str; 4] = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];

/// Runs a command built around [`SIGNAL_STATE_PROBE`]; asserts nothing blocked, nothing ignored.
fn assert_child_signal_state_is_clean(command: std::process::Command, mode: Mode) {
    let running = start(command, mode);
    assert_eq!(running.expect_line("SigBlk:"), "SigBlk:\t0000000000000000");
    assert_eq!(running.expect_line("SigIgn:"), "SigIgn:\t0000000000000000");
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status), 0, "{stderr:#?}");
}

#[test]
fn child_starts_with_empty_signal_mask_and_default_dispositions() {
    if !pid_namespaces() {
        return;
    }
    assert_child_signal_state_is_clean(command(Mode::Pid1, &SIGNAL_STATE_PROBE), Mode::Pid1);
}

#[test]
fn inherited_ignored_and_blocked_signals_do_not_leak_into_the_child() {
    // What `nohup`, a careless shell, glibc's posix_spawn or a runtime may hand vardr-init:
    // ignored HUP, INT, CHLD, USR1, SYS, XFSZ and 32-34, blocked TERM and USR2. SIGCHLD ignored
    // would even make the kernel auto-reap.
    let dirty = |mut command: std::process::Command| {
        // SAFETY: only sigaction/sigprocmask between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // SIGSYS and SIGXFSZ are not forwarded, so only the child set-up can reset them.
                for signal in [
                    libc::SIGHUP,
                    libc::SIGINT,
                    libc::SIGCHLD,
                    libc::SIGUSR1,
                    libc::SIGSYS,
                    libc::SIGXFSZ,
                ] {
                    libc::signal(signal, libc::SIG_IGN);
                }
                // 32-34 belong to the C library, whose sigaction() refuses them: the raw call,
                // with the kernel's sigaction struct holding SIG_IGN (1) and nothing else.
                let ignore = [1u64, 0, 0, 0];
                for signal in 32..=34 {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        signal,
                        ignore.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    );
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            })
        };
        command
    };
    assert_child_signal_state_is_clean(
        dirty(command(Mode::Subreaper, &SIGNAL_STATE_PROBE)),
        Mode::Subreaper,
    );

    let (status, stderr) = start(
        dirty(command(Mode::Subreaper, &["sh", "-c", "exit 7"])),
        Mode::Subreaper,
    )
    .wait();
    assert_eq!(
        exit_code(status),
        7,
        "status survives an inherited SIG_IGN for SIGCHLD: {stderr:#?}"
    );
}

fn orphans_are_adopted_and_reaped(mode: Mode) {
    let count = 1000;
    let mut args = python_script("orphans.py");
    args.push(count.to_string());
    let running = start(command(mode, &args), mode);
    let report = running.expect_line("orphans=");
    assert_eq!(
        report,
        format!("orphans={count} adopted={count} zombies=0"),
        "every orphan re-parented to vardr-init and was reaped"
    );
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status), 0, "{stderr:#?}");
}

#[test]
fn a_thousand_double_forked_orphans_are_reaped_by_pid1() {
    if pid_namespaces() {
        orphans_are_adopted_and_reaped(Mode::Pid1);
    }
}

#[test]
fn orphans_are_reaped_by_vardr_init_as_subreaper_when_not_pid1() {
    orphans_are_adopted_and_reaped(Mode::Subreaper);
}

#[test]
fn exit_status_passes_through_and_signals_become_128_plus_n() {
    let mode = if pid_namespaces() {
        Mode::Pid1
    } else {
        Mode::Subreaper
    };
    for (script, expected) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("exit 255", 255),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
    ] {
        let (status, stderr) = run(mode, &["sh", "-c", script], &[]);
        assert_eq!(exit_code(status), expected, "{script}: {stderr:#?}");
    }
}

/// vardr-init with a child that ignores SIGTERM and has a grandchild in its process group.
fn stop_with_timeout(mode: Mode, timeout: &str) -> (common::Running, i32, i32) {
    let mut command = command(mode, &python_script("ignore_term.py"));
    command.env("VARDR_STOP_TIMEOUT", timeout);
    common::start_ignoring_term(command, mode)
}

#[test]
fn stop_timeout_kills_a_child_that_ignores_sigterm_and_its_whole_group() {
    // As subreaper the test can watch the grandchild: in a PID namespace, PID 1 exiting would
    // kill it anyway and hide whether the group kill happened.
    let (running, child, grandchild) = stop_with_timeout(Mode::Subreaper, "1");
    let sent = Instant::now();
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    let waited = sent.elapsed();
    assert_eq!(exit_code(status), 137, "{stderr:#?}");
    assert!(
        waited >= Duration::from_secs(1),
        "killed before the deadline: {waited:?}"
    );
    // A correctness bound with wide slack (a 1 s deadline), not a performance claim.
    assert!(
        waited < Duration::from_secs(10),
        "killed far past the deadline: {waited:?}"
    );
    assert!(is_dead(child), "child {child} still alive");
    // SIGKILL takes effect when the grandchild is next scheduled: on a loaded machine it may
    // still be running the instant vardr-init exits.
    assert!(
        common::dies_within(grandchild, Duration::from_secs(5)),
        "grandchild {grandchild} in the child's group still alive"
    );
    assert_logged(
        &stderr,
        "sending SIGKILL to its process group",
        "the kill is logged",
    );
}

#[test]
fn stop_timeout_as_pid1_ends_with_137() {
    if !pid_namespaces() {
        return;
    }
    let (running, _, _) = stop_with_timeout(Mode::Pid1, "0.5");
    running.signal(libc::SIGTERM);
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status), 137, "{stderr:#?}");
}

#[test]
fn without_stop_timeout_a_child_ignoring_sigterm_is_left_running() {
    let (running, child, _) = stop_with_timeout(Mode::Subreaper, "0");
    running.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !is_dead(child),
        "VARDR_STOP_TIMEOUT=0 means off, but the child was killed"
    );
    // SAFETY: plain kill(2) of the test's own grandchild.
    unsafe { libc::kill(child, libc::SIGKILL) };
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status), 137, "{stderr:#?}");
    assert_logged(
        &stderr,
        "Forwarding SIGTERM",
        "the SIGTERM was forwarded, just not followed by a kill",
    );
}

#[test]
fn missing_or_unexecutable_commands_give_127_and_126_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("vardr-test-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let not_executable = dir.join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\necho hi\n").expect("write");
    let missing_interpreter = dir.join("orphaned-script");
    std::fs::write(&missing_interpreter, "#!/nonexistent/python9\n").expect("write");
    std::fs::set_permissions(&missing_interpreter, Permissions::from_mode(0o755)).expect("chmod");
    let dir_str = dir.to_string_lossy().into_owned();
    let cases = [
        ("no-such-command-vardr", 127, "not in any directory of PATH"),
        ("/nonexistent/bin/app", 127, "does not exist"),
        (
            missing_interpreter.to_str().expect("utf8"),
            127,
            "interpreter",
        ),
        (
            not_executable.to_str().expect("utf8"),
            126,
            "not executable",
        ),
        (dir_str.as_str(), 126, "not executable"),
    ];
    for (program, expected, reason) in cases {
        let (status, stderr) = run(Mode::Subreaper, &[program], &[]);
        assert_eq!(exit_code(status), expected, "{program}: {stderr:#?}");
        let text = stderr.join("\n");
        assert!(
            text.contains(program) && text.contains(reason),
            "{program}: {text}"
        );
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn the_child_owns_the_terminal_foreground_so_ctrl_c_reaches_it_directly() {
    // A real pseudo-terminal, as `docker run -it` gives: vardr-init is the session leader with
    // the pty as controlling terminal, and ^C typed on it must reach the child's process group.
    let (mut master, slave) = pty::open();
    let mut command = std::process::Command::new(common::bin());
    command
        .arg("--")
        .args(python_script("terminal.py"))
        .env("VARDR_LOG_LEVEL", "debug")
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave.try_clone().expect("dup"));
    pty::controlling_terminal(&mut command);
    let mut vardr = command.spawn().expect("spawn on pty");
    drop(slave);

    let output = pty::read_until(&mut master, "ready");
    assert!(
        output.contains("foreground=True"),
        "child must own the foreground: {output}"
    );
    pty::write(&mut master, b"\x03");
    let output = output + &pty::read_until(&mut master, "exited with status");
    assert!(output.contains("got SIGINT"), "{output}");
    assert!(
        !output.contains("Forwarding SIGINT"),
        "^C went to the child's group directly, vardr-init had nothing to forward: {output}"
    );
    let status = common::wait_for_exit(&mut vardr, || format!("pty output: {output}"));
    assert_eq!(status.code(), Some(0), "{status:?} {:?}", status.signal());
}

#[test]
fn forwarded_signals_go_to_the_child_alone_not_its_process_group() {
    let running = start(
        command(Mode::Subreaper, &python_script("group_signals.py")),
        Mode::Subreaper,
    );
    running.expect_line("ready");
    running.signal(libc::SIGUSR1);
    assert_eq!(running.expect_line("child got"), "child got SIGUSR1");
    // A group-wide signal would reach the grandchild at the same moment; give it time to say so.
    std::thread::sleep(Duration::from_millis(300));
    running.signal(libc::SIGTERM);
    assert_eq!(
        running.expect_line(""),
        "done",
        "the grandchild in the child's group must not have received SIGUSR1"
    );
    let (status, stderr) = running.wait();
    assert_eq!(exit_code(status), 0, "{stderr:#?}");
}
