//! The test command installs what its tests need: every program a test runs by name is either in
//! `scripts/install-deps.sh` (which scripts/test.sh, scripts/demo.sh and .ci/run call) or part of every Debian
//! base system. A test that starts using a new tool without adding it there fails here, instead of
//! skipping on a fresh machine.

use std::fs;
use std::path::Path;

/// Programs every Debian base has (essential packages: dash, coreutils, mount, util-linux's
/// essential part), or that come with the checkout's own requirements (git made the clone; pyenv
/// and python3 are how the machine provides CPython, and a test that needs a pyenv version says so).
const BASE: &[&str] = &[
    "/bin/sh", "sh", "date", "mkfifo", "mknod", "mount", "umount", "git", "pyenv", "python3",
];

fn programs_run_by_tests(dir: &Path, found: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read tests/")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            programs_run_by_tests(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).expect("read a test");
            for piece in text.split("Command::new(\"").skip(1) {
                if let Some((name, _)) = piece.split_once('"') {
                    found.push((name.to_owned(), path.display().to_string()));
                }
            }
        }
    }
}

/// The commands `need COMMAND PACKAGE` lines of scripts/install-deps.sh check for.
fn installed_by_script(script: &str) -> Vec<String> {
    script
        .lines()
        .filter_map(|line| line.trim().strip_prefix("need "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_tool_a_test_runs_is_installed_by_the_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = fs::read_to_string(root.join("scripts/install-deps.sh"))
        .expect("scripts/install-deps.sh: the one list of system tools");
    let installed = installed_by_script(&script);
    assert!(
        installed.iter().any(|c| c == "bwrap") && installed.iter().any(|c| c == "strace"),
        "install-deps.sh's `need` lines were not understood: {installed:?}"
    );
    let mut used = Vec::new();
    programs_run_by_tests(&root.join("tests"), &mut used);
    assert!(used.len() > 10, "too few programs found: {used:?}");
    let unlisted: Vec<_> = used
        .iter()
        .filter(|(name, _)| !installed.contains(name) && !BASE.contains(&name.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "tests run programs scripts/install-deps.sh does not install (add a `need` line): {unlisted:?}"
    );

    for caller in ["scripts/test.sh", "scripts/demo.sh", ".ci/run"] {
        let text = fs::read_to_string(root.join(caller)).expect("read a caller");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("bash scripts/install-deps.sh")),
            "{caller} must call scripts/install-deps.sh"
        );
    }
}
