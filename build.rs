//! Names the build for `vardr-init --version`: the commit and the target, nothing that depends on
//! the time or the directory, so two builds of one commit stay byte-identical.
//!
//! The commit is `VARDR_COMMIT` when set (builds without `.git`, like the Dockerfile's), else
//! `git rev-parse HEAD`, else `unknown`; it is shortened to 12 hex digits.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=VARDR_COMMIT");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    let commit = match std::env::var("VARDR_COMMIT") {
        Ok(value) if !value.is_empty() => from_env(&value),
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=VARDR_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=VARDR_BUILD_TARGET={target}");
}

/// `VARDR_COMMIT`: a commit id (at least 7 hex digits) or `unknown`; anything else stops the build.
fn from_env(value: &str) -> String {
    if value == "unknown" {
        return value.to_owned();
    }
    if value.len() >= 7 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return value[..value.len().min(12)].to_ascii_lowercase();
    }
    panic!(
        "VARDR_COMMIT={value:?} is not a commit id: set it to `git rev-parse HEAD` (hex digits), \
         to `unknown`, or unset it to read the commit from .git"
    );
}

/// HEAD's commit, and the files that move when HEAD moves, so a new commit rebuilds this.
fn from_git() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8(output.stdout).ok()?;
        Some(text.trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let commit = commit.get(..12)?.to_owned();
    // HEAD itself, the branch it names (a loose ref) and packed-refs (where a branch may live).
    // Only files that exist: cargo reruns a build script on every build for a missing one.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch])?);
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"])?);
    for path in watched.into_iter().map(PathBuf::from) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}
