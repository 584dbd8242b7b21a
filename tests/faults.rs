//! Fault injection on the real binary. The faults are real: a full and a read-only `/tmp` are
//! tmpfs mounts; a file removed, replaced or failing while vardr-init reads it is the kernel's own
//! behaviour, timed or injected into vardr-init's system calls with `strace --inject` (no mock,
//! no test hook in the binary); a stop requested during the certificate pass and signal storms
//! are real signals to a real PID 1. Each case ends in the documented behaviour: nothing torn,
//! nothing bad in the bundle, no hang, and the service starts unless strict mode says otherwise.

mod common;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::certs::PRINT_EXPORT;
use common::pki::{self, Ca, Cert};
use common::{Finished, Mode, PATIENCE, assert_logged, bin, finish, skip_outside_ci, summary};
use serde_json::Value;
use tempfile::TempDir;

/// `certs/` (VARDR_CERTS_DIR), `out/bundle.pem` (VARDR_CA_BUNDLE), `system.pem`
/// (VARDR_SYSTEM_CA_BUNDLE, two CAs) in a fresh directory.
struct Tree {
    _dir: TempDir,
    root: PathBuf,
    certs: PathBuf,
    out: PathBuf,
    bundle: PathBuf,
    system: PathBuf,
    system_bytes: Vec<u8>,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
        let (system_bytes, _) = pki::system_bundle(2);
        let tree = Tree {
            certs: root.join("certs"),
            out: root.join("out"),
            bundle: root.join("out/bundle.pem"),
            system: root.join("system.pem"),
            system_bytes,
            root,
            _dir: dir,
        };
        for dir in [&tree.certs, &tree.out] {
            fs::create_dir(dir).expect("mkdir");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::write(&tree.system, &tree.system_bytes).expect("write the system bundle");
        tree
    }

    /// A new CA written to `certs/NAME`.
    fn add_ca(&self, name: &str) -> Cert {
        let ca = Ca::new(name).cert;
        fs::write(self.certs.join(name), ca.pem()).expect("write a CA");
        ca
    }

    /// `[PREFIX...] vardr-init ARGS...` on this tree, with a scrubbed environment.
    fn command(&self, prefix: &[OsString], args: &[&str]) -> Command {
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(bin());
                command
            }
            None => Command::new(bin()),
        };
        command.args(args);
        pki::scrub(&mut command)
            .env("VARDR_CERTS_DIR", &self.certs)
            .env("VARDR_CA_BUNDLE", &self.bundle)
            .env("VARDR_SYSTEM_CA_BUNDLE", &self.system);
        command
    }

    fn certs(&self) -> Finished {
        finish(self.command(&[], &["certs", "--json"]))
    }

    /// `vardr-init -- sh -c 'printf "[%s]\n" "$SSL_CERT_FILE"'`: what the child was given.
    fn supervised_export(&self) -> (Finished, String) {
        let run = finish(self.command(&[], &PRINT_EXPORT));
        let line = run.stdout.trim().to_owned();
        (run, line)
    }

    /// Everything in `out/` but the bundle, its cache record and `keep`.
    fn strays(&self, keep: &[&str]) -> Vec<String> {
        common::certs::strays(&self.out, keep)
    }
}

fn result_of(summary: &Value, name: &str) -> String {
    summary["results"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no result for {name}: {summary}"))
        .to_owned()
}

fn ders(certs: &[&Cert]) -> Vec<Vec<u8>> {
    certs.iter().map(|cert| cert.der.clone()).collect()
}

// ---- A full and a read-only /tmp: real tmpfs mounts ----

/// A tmpfs mounted over a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir`; `None` (a skip, or a failure in CI) without root.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            skip_outside_ci("cannot mount a tmpfs (root needed)");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }

    fn remount_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {} read-only", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` until only about `left` bytes are free: a spare file of
/// that size is written first, then a filler until ENOSPC, then the spare is removed.
fn fill_leaving(dir: &Path, left: usize) {
    fs::write(dir.join("spare"), vec![b's'; left]).expect("write the spare file");
    let mut filler = fs::File::create(dir.join("filler")).expect("create the filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match filler.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("fill the tmpfs: {e}"),
        }
    }
    drop(filler);
    fs::remove_file(dir.join("spare")).expect("remove the spare file");
}

/// ENOSPC half-way through writing the new bundle: the old bundle and its cache record stay
/// byte for byte, no temporary file is left, the service starts on the system trust, and once
/// there is room the next start builds the new bundle.
#[test]
fn a_full_tmp_keeps_the_old_bundle_and_the_service_starts() {
    let tree = Tree::new();
    let Some(_tmpfs) = Tmpfs::mount(&tree.out, "1m") else {
        return;
    };
    let first = tree.add_ca("first.pem");
    let run = tree.certs();
    run.assert_code(0, "first build on the small tmpfs");
    let old_bundle = fs::read(&tree.bundle).expect("read the bundle");
    let old_cache = fs::read(tree.out.join("bundle.pem.sha256")).expect("read the cache record");

    // 200 more CAs make a bundle of about 120 KiB, where 8 KiB are free: the write fails half-way.
    let mut all = vec![first];
    for i in 0..200 {
        all.push(tree.add_ca(&format!("more-{i:03}.pem")));
    }
    fill_leaving(&tree.out, 8 * 1024);
    let run = tree.certs();
    run.assert_code(1, "certs with a full /tmp");
    assert!(
        run.stderr.contains("No space left on device"),
        "the error says the disk is full: {}",
        run.describe()
    );
    assert_eq!(summary(&run, "full /tmp")["action"], "failed");
    assert_eq!(fs::read(&tree.bundle).ok(), Some(old_bundle.clone()));
    assert_eq!(
        fs::read(tree.out.join("bundle.pem.sha256")).ok(),
        Some(old_cache.clone())
    );
    assert_eq!(
        tree.strays(&["filler"]),
        Vec::<String>::new(),
        "no temporary file left"
    );

    // A supervised start: the child runs, without the stale bundle exported.
    let (run, exported) = tree.supervised_export();
    run.assert_code(0, "supervised start with a full /tmp");
    assert_eq!(
        exported, "[]",
        "no CA variable for a bundle that was not written"
    );
    assert_logged(
        &run.stderr_lines(),
        "the service starts with the system trust only",
        "the fallback is said",
    );
    assert_eq!(fs::read(&tree.bundle).ok(), Some(old_bundle));
    assert_eq!(tree.strays(&["filler"]), Vec::<String>::new());

    // Room again: nothing was lost, the next start builds everything.
    fs::remove_file(tree.out.join("filler")).expect("remove the filler");
    let run = tree.certs();
    run.assert_code(0, "certs once there is room again");
    assert_eq!(summary(&run, "room again")["action"], "built");
    let refs: Vec<&Cert> = all.iter().collect();
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&refs),
        "after the full /tmp",
    );
}

/// A read-only `/tmp`: an unchanged bundle from an earlier start is still reused (nothing needs
/// writing); a changed one cannot be written, which `--dry-run` foresees, `certs` reports with
/// exit 1, and a supervised start survives on the system trust.
#[test]
fn a_read_only_tmp_reuses_an_unchanged_bundle_and_refuses_a_new_one() {
    let tree = Tree::new();
    let Some(tmpfs) = Tmpfs::mount(&tree.out, "1m") else {
        return;
    };
    let ca = tree.add_ca("ca.pem");
    tree.certs().assert_code(0, "build before the remount");
    tmpfs.remount_read_only();

    let run = tree.certs();
    run.assert_code(0, "unchanged inputs on a read-only /tmp");
    assert_eq!(summary(&run, "read-only, unchanged")["action"], "reused");
    let (run, exported) = tree.supervised_export();
    run.assert_code(0, "supervised start, unchanged inputs");
    assert_eq!(exported, format!("[{}]", tree.bundle.display()));

    let added = tree.add_ca("added.pem");
    let plan = finish(tree.command(&[], &["--dry-run", "--json", "--", "true"]));
    plan.assert_code(0, "dry run on a read-only /tmp");
    let plan: Value = serde_json::from_str(&plan.stdout).expect("the plan is JSON");
    let problem = plan["bundle_problem"].as_str().unwrap_or_default();
    assert!(
        problem.contains("Read-only file system"),
        "the dry run foresees it: {plan}"
    );

    let run = tree.certs();
    run.assert_code(1, "changed inputs on a read-only /tmp");
    assert!(
        run.stderr.contains("read-only") && run.stderr.contains("--tmpfs /tmp"),
        "the error says what is wrong and what to do: {}",
        run.describe()
    );
    let (run, exported) = tree.supervised_export();
    run.assert_code(0, "supervised start, changed inputs");
    assert_eq!(
        exported, "[]",
        "the old bundle lacks the new CA: not exported"
    );
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&ca]),
        "the old bundle, untouched",
    );
    let _ = added;
}

/// A certs directory the service's user cannot read is reported (by name, with what to do) and
/// the service starts.
#[test]
fn an_unreadable_certs_directory_is_reported_and_the_service_starts() {
    if !common::switch_users() {
        return;
    }
    let tree = Tree::new();
    tree.add_ca("ca.pem");
    std::os::unix::fs::chown(&tree.out, Some(common::NONROOT), Some(common::NONROOT))
        .expect("chown out/");
    fs::set_permissions(&tree.certs, fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let as_nonroot = |args: &[&str]| {
        let mut command = tree.command(&[], args);
        let program = command.get_program().to_owned();
        let mut wrapped = common::as_nonroot(program);
        wrapped.args(command.get_args());
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(name, value),
                None => wrapped.env_remove(name),
            };
        }
        command = wrapped;
        command
    };
    let run = finish(as_nonroot(&["certs", "--json"]));
    run.assert_code(0, "certs on an unreadable directory");
    let summary = summary(&run, "unreadable certs dir");
    assert!(
        result_of(&summary, ".").contains("permission denied: make it readable"),
        "{summary}"
    );
    assert_eq!(summary["action"], "none");
    let run = finish(as_nonroot(&["--", "true"]));
    run.assert_code(0, "a supervised start on an unreadable directory");
    assert_logged(
        &run.stderr_lines(),
        "permission denied",
        "the problem is logged",
    );
}

// ---- Files that change while vardr-init reads them: strace --inject ----

/// `strace` arguments that trace only `syscall` on `path` (or on a descriptor of it) and apply
/// `inject` to it: `delay_enter=MICROSECONDS` or `error=ERRNO`.
fn inject(path: &Path, syscall: &str, inject: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["strace", "-f", "-qq", "-o", "/dev/null", "-P"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(path.into());
    args.extend(
        [
            "-e".to_owned(),
            format!("trace={syscall}"),
            "-e".to_owned(),
            format!("inject={syscall}:{inject}"),
        ]
        .map(OsString::from),
    );
    args
}

/// A command running under strace, its output collected.
struct Traced {
    child: Child,
    stdout: thread::JoinHandle<String>,
    stderr: thread::JoinHandle<String>,
}

impl Traced {
    fn start(mut command: Command) -> Traced {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().expect("spawn strace");
        let collect = |mut stream: Box<dyn Read + Send>| {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = stream.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = collect(Box::new(child.stdout.take().expect("piped")));
        let stderr = collect(Box::new(child.stderr.take().expect("piped")));
        Traced {
            child,
            stdout,
            stderr,
        }
    }

    /// vardr-init's PID (strace's child), once it or a process of its own (the certificate
    /// worker, which does the reading) sits in system call `number` (see `/proc/PID/syscall`)
    /// for 100 ms: the delayed one. Signals for vardr-init go to the returned PID.
    fn stalled_in(&self, number: u32) -> i32 {
        let strace = self.child.id();
        let children = |pid: &str| {
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
        };
        let start = Instant::now();
        let mut seen: Option<(String, Instant)> = None;
        loop {
            assert!(
                start.elapsed() < PATIENCE,
                "vardr-init never stalled in system call {number}"
            );
            thread::sleep(Duration::from_millis(10));
            let listed = children(&strace.to_string());
            let Some(vardr) = listed.split_whitespace().next() else {
                continue;
            };
            let mut tree = vec![vardr.to_owned()];
            tree.extend(children(vardr).split_whitespace().map(str::to_owned));
            let stalled = tree.iter().find_map(|pid| {
                let line = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
                line.starts_with(&format!("{number} "))
                    .then(|| format!("{pid}: {line}"))
            });
            let Some(line) = stalled else {
                seen = None;
                continue;
            };
            match &seen {
                Some((same, since)) if *same == line => {
                    if since.elapsed() >= Duration::from_millis(100) {
                        return vardr.parse().expect("numeric pid");
                    }
                }
                _ => seen = Some((line, Instant::now())),
            }
        }
    }

    fn finish(mut self) -> Finished {
        let status = common::wait_for_exit(&mut self.child, || "under strace".to_owned());
        Finished {
            status,
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: self.stderr.join().expect("stderr reader"),
        }
    }
}

const SYS_READ: u32 = 0;
/// Certificate files are opened with the raw `openat` (src/sys.rs).
const SYS_OPENAT: u32 = 257;
/// Long enough for the test to act inside it, short enough to keep the suite quick.
const DELAY: &str = "delay_enter=2000000";

/// A tree of `a.pem`, `b.pem` (the file the fault hits) and `c.pem`.
fn three_cas() -> (Tree, [Cert; 3]) {
    let tree = Tree::new();
    let cas = [
        tree.add_ca("a.pem"),
        tree.add_ca("b.pem"),
        tree.add_ca("c.pem"),
    ];
    (tree, cas)
}

/// `b.pem` is removed after the directory was listed, before vardr-init opens it: rejected with
/// the reason, the others are built; the next start no longer lists it.
#[test]
fn a_file_removed_after_the_listing_is_rejected_alone() {
    if !common::strace_available() {
        return;
    }
    let (tree, [a, b, c]) = three_cas();
    let victim = tree.certs.join("b.pem");
    let traced =
        Traced::start(tree.command(&inject(&victim, "openat", DELAY), &["certs", "--json"]));
    traced.stalled_in(SYS_OPENAT);
    fs::remove_file(&victim).expect("remove b.pem");
    let run = traced.finish();
    run.assert_code(0, "a file removed before its open");
    let removed = summary(&run, "removed before open");
    assert!(
        result_of(&removed, "b.pem").contains("No such file"),
        "{removed}"
    );
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&a, &c]),
        "b removed",
    );

    let run = tree.certs();
    run.assert_code(0, "the start after");
    assert!(summary(&run, "after")["results"].get("b.pem").is_none());
    let _ = b;
}

/// `b.pem` is replaced by rename while vardr-init holds it open: it reads the file it opened,
/// whole (the old CA); the next start sees the new one. Never half of each.
#[test]
fn a_file_replaced_while_open_is_read_whole_and_the_next_start_sees_the_new_one() {
    if !common::strace_available() {
        return;
    }
    let (tree, [a, b, c]) = three_cas();
    let victim = tree.certs.join("b.pem");
    let traced = Traced::start(tree.command(&inject(&victim, "read", DELAY), &["certs", "--json"]));
    traced.stalled_in(SYS_READ);
    let new = Ca::new("b, replaced").cert;
    let staged = tree.root.join("b.new");
    fs::write(&staged, new.pem()).expect("write the replacement");
    fs::rename(&staged, &victim).expect("rename over b.pem");
    let run = traced.finish();
    run.assert_code(0, "replaced while open");
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&a, &b, &c]),
        "old b",
    );

    let run = tree.certs();
    run.assert_code(0, "the start after the replacement");
    assert_eq!(
        summary(&run, "after")["action"],
        "built",
        "the change is noticed"
    );
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&a, &new, &c]),
        "new b",
    );
}

/// `b.pem` is rewritten in place, into a private key, while vardr-init holds it open: what it
/// reads is judged as read, so the key is rejected and never reaches the bundle.
#[test]
fn a_file_rewritten_in_place_into_a_private_key_never_reaches_the_bundle() {
    if !common::strace_available() {
        return;
    }
    let (tree, [a, _b, c]) = three_cas();
    let victim = tree.certs.join("b.pem");
    let traced = Traced::start(tree.command(&inject(&victim, "read", DELAY), &["certs", "--json"]));
    traced.stalled_in(SYS_READ);
    // The same inode: truncate and write, as an editor saving in place would.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&victim)
        .expect("open b.pem for writing");
    file.write_all(pki::private_key_pem("PRIVATE KEY").as_bytes())
        .expect("write the key");
    drop(file);
    let run = traced.finish();
    run.assert_code(0, "rewritten in place");
    let summary = summary(&run, "rewritten in place");
    assert!(
        result_of(&summary, "b.pem").contains("private key"),
        "{summary}"
    );
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&a, &c]),
        "key rejected",
    );
}

/// The disk fails reading `b.pem` (EIO, injected into that read): that file is rejected with the
/// kernel's reason, the others are built.
#[test]
fn an_io_error_on_one_file_rejects_that_file_only() {
    if !common::strace_available() {
        return;
    }
    let (tree, [a, _b, c]) = three_cas();
    let victim = tree.certs.join("b.pem");
    let run =
        Traced::start(tree.command(&inject(&victim, "read", "error=EIO"), &["certs", "--json"]))
            .finish();
    run.assert_code(0, "EIO on one file");
    let summary = summary(&run, "EIO");
    assert!(
        result_of(&summary, "b.pem").contains("cannot read: I/O error"),
        "{summary}"
    );
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&a, &c]),
        "EIO on b",
    );
}

// ---- The system bundle: missing is tested in certs.rs; garbage here ----

/// A system bundle that is binary noise or text without PEM is left out with a warning naming it;
/// in one with a corrupt block, that block is left out and the good certificate after it kept.
/// The bundle holds none of the garbage, and the next start reuses it.
#[test]
fn a_garbage_system_bundle_is_left_out_with_a_warning() {
    let mut noise = vec![0u8; 4096];
    let mut state: u32 = 0x9e37_79b9;
    for byte in &mut noise {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *byte = state.to_le_bytes()[0];
    }
    let good = Ca::new("good system root").cert;
    let mut corrupt =
        b"-----BEGIN CERTIFICATE-----\nMIIB!!not base64!!\n-----END CERTIFICATE-----\n".to_vec();
    corrupt.extend_from_slice(good.pem().as_bytes());
    // Not text is seen on every start, before the cache; PEM that does not parse only when
    // building (a cache hit skips the parse). Either way the second start reuses the bundle built
    // without it: the cache record keeps the hash of the system bundle it was built from.
    let cases: [(&str, Vec<u8>, &str, Option<&Cert>); 3] = [
        ("binary noise", noise, "is not text", None),
        (
            "text without PEM",
            b"# nothing here\n".to_vec(),
            "holds no usable certificate",
            None,
        ),
        ("a corrupt block", corrupt, "does not parse", Some(&good)),
    ];
    for (context, garbage, reason, kept) in cases {
        let tree = Tree::new();
        fs::write(&tree.system, &garbage).expect("write the garbage system bundle");
        let ca = tree.add_ca("ca.pem");
        for (round, action) in [(1, "built"), (2, "reused")] {
            let run = tree.certs();
            run.assert_code(0, context);
            let summary = summary(&run, context);
            assert_eq!(
                summary["action"], action,
                "{context}, start {round}: {summary}"
            );
            let system_bundle = kept.map(|_| tree.system.to_string_lossy().into_owned());
            assert_eq!(
                summary["system_bundle"].as_str(),
                system_bundle.as_deref(),
                "{context}: {summary}"
            );
            if round == 1 {
                let warning = format!("system bundle {}", tree.system.display());
                assert!(
                    run.stderr_lines()
                        .iter()
                        .any(|line| line.contains(&warning) && line.contains(reason)),
                    "{context}: a warning names the system bundle and says why; {}",
                    run.describe()
                );
            }
            let system = kept.map(Cert::pem).unwrap_or_default();
            pki::assert_bundle(&tree.bundle, system.as_bytes(), &ders(&[&ca]), context);
        }
    }
}

// ---- Signals during the certificate pass ----

/// A SIGTERM while the certificates are read (the read of one is held up by strace): the pass
/// completes, the bundle is whole, and the command is never started; exit 128+15.
#[test]
fn sigterm_during_the_certificate_pass_finishes_the_bundle_and_starts_nothing() {
    if !common::strace_available() {
        return;
    }
    let (tree, [a, b, c]) = three_cas();
    let marker = tree.root.join("started");
    let script = format!("touch '{}'", marker.display());
    let traced = Traced::start(tree.command(
        &inject(&tree.certs.join("b.pem"), "read", DELAY),
        &["--", "sh", "-c", &script],
    ));
    let vardr = traced.stalled_in(SYS_READ);
    // SAFETY: plain kill(2) on the process strace holds stopped (it cannot exit meanwhile).
    assert_eq!(unsafe { libc::kill(vardr, libc::SIGTERM) }, 0);
    let run = traced.finish();
    run.assert_code(143, "SIGTERM during the pass");
    // A child started and killed at once might not get as far as the marker: vardr-init's own
    // "Running ..." line, logged right after every spawn, must be absent too.
    assert!(!marker.exists(), "the command must not have started");
    assert!(
        !run.stderr.contains("Running "),
        "no child was spawned: {}",
        run.describe()
    );
    assert_logged(
        &run.stderr_lines(),
        "SIGTERM arrived during start-up: not starting",
        "the skipped start is said",
    );
    pki::assert_bundle(
        &tree.bundle,
        &tree.system_bytes,
        &ders(&[&a, &b, &c]),
        "whole",
    );
    assert_eq!(tree.strays(&[]), Vec::<String>::new());
}

/// Any other signal sent during the pass is not lost: it is delivered once the child runs
/// (here SIGHUP, which ends `sleep`: 128+1).
#[test]
fn sighup_during_the_certificate_pass_reaches_the_child() {
    if !common::strace_available() {
        return;
    }
    let (tree, _) = three_cas();
    let traced = Traced::start(tree.command(
        &inject(&tree.certs.join("b.pem"), "read", DELAY),
        &["--", "sleep", "30"],
    ));
    let vardr = traced.stalled_in(SYS_READ);
    // SAFETY: plain kill(2) on the process strace holds stopped.
    assert_eq!(unsafe { libc::kill(vardr, libc::SIGHUP) }, 0);
    let run = traced.finish();
    run.assert_code(129, "SIGHUP queued during the pass");
    assert_logged(
        &run.stderr_lines(),
        "killed by SIGHUP",
        "delivered once the child ran",
    );
}

// ---- Signal storms on PID 1 ----

/// A handle on a process that stays valid if it exits and its PID is reused: signals sent
/// through it can never reach another process.
struct PidFd(i32);

impl PidFd {
    fn open(pid: i32) -> PidFd {
        // SAFETY: pidfd_open(2) with no flags.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        assert!(
            fd >= 0,
            "pidfd_open({pid}): {}",
            std::io::Error::last_os_error()
        );
        PidFd(i32::try_from(fd).expect("fd fits"))
    }

    /// `false` once the process is gone.
    fn signal(&self, signal: i32) -> bool {
        // SAFETY: pidfd_send_signal(2) on our own pidfd, no siginfo, no flags.
        let result = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0,
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if result == 0 {
            return true;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.raw_os_error(),
            Some(libc::ESRCH),
            "pidfd_send_signal: {error}"
        );
        false
    }
}

impl Drop for PidFd {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this struct owns.
        unsafe { libc::close(self.0) };
    }
}

/// A real-time signal none of the C libraries involved reserve.
fn realtime() -> i32 {
    libc::SIGRTMIN() + 6
}

/// 200 signals a second for 10 s to PID 1 while the child runs: all 2000 real-time ones (which
/// queue) reach the child, exactly, and SIGUSR1 (which the kernel merges while pending) arrives
/// at least once; the child then reports and exits 0, and so does vardr-init.
#[test]
fn two_thousand_signals_in_ten_seconds_to_pid1_all_reach_the_child() {
    if !common::pid_namespaces() {
        return;
    }
    let rt = realtime();
    // The report comes on rt + 1: pending signals are taken lowest number first, by vardr-init
    // and by the child alike, so every rt sent before it is counted before it.
    let mut args = common::python_script("count_signals.py");
    args.extend(["--report".to_owned(), (rt + 1).to_string()]);
    args.extend([rt.to_string(), libc::SIGUSR1.to_string()]);
    let running = common::start(common::command(Mode::Pid1, &args), Mode::Pid1);
    running.expect_line("ready ");
    let pid1 = PidFd::open(running.vardr_pid());
    let (per_second, seconds) = (200, 10);
    let start = Instant::now();
    for i in 0..per_second * seconds {
        let due = start + Duration::from_secs(1) * i / per_second;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        assert!(pid1.signal(rt), "vardr-init died during the storm");
        if i % 10 == 0 {
            assert!(
                pid1.signal(libc::SIGUSR1),
                "vardr-init died during the storm"
            );
        }
    }
    assert!(pid1.signal(rt + 1));
    let counted = running.expect_line("counted ");
    let counts: Vec<u32> = counted
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("a count"))
        .collect();
    let (status, stderr) = running.wait();
    assert_eq!(status.code(), Some(0), "{stderr:#?}");
    assert_eq!(
        counts[0],
        per_second * seconds,
        "real-time signals lost: {counted}"
    );
    assert!(
        (1..=per_second * seconds / 10).contains(&counts[1]),
        "SIGUSR1: {counted}"
    );
}

/// The child exits (status 7) in the middle of a storm of signals to PID 1: vardr-init exits 7,
/// promptly, whatever is still arriving.
#[test]
fn the_child_exiting_during_a_signal_storm_ends_vardr_init_with_its_status() {
    if !common::pid_namespaces() {
        return;
    }
    let rt = realtime();
    let mut args = common::python_script("count_signals.py");
    args.extend(["--exit-after".to_owned(), "1".to_owned(), "7".to_owned()]);
    args.extend([rt.to_string(), libc::SIGUSR1.to_string()]);
    let running = common::start(common::command(Mode::Pid1, &args), Mode::Pid1);
    running.expect_line("ready ");
    let pid1 = PidFd::open(running.vardr_pid());
    let storm = thread::spawn(move || {
        let mut sent = 0u64;
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            let signal = if sent.is_multiple_of(2) {
                rt
            } else {
                libc::SIGUSR1
            };
            if !pid1.signal(signal) {
                return sent;
            }
            sent += 1;
            thread::sleep(Duration::from_micros(500));
        }
        sent
    });
    let (status, stderr) = running.wait();
    let sent = storm.join().expect("storm thread");
    assert_eq!(
        status.code(),
        Some(7),
        "{status:?} (signal {:?}); {stderr:#?}",
        status.signal()
    );
    assert!(
        sent > 500,
        "the storm ran while the child lived: {sent} signals"
    );
    assert!(
        !stderr.iter().any(|line| line.contains("ERROR")),
        "no error for signals to a child that is gone: {stderr:#?}"
    );
}
