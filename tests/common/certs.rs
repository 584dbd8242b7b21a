//! A scratch tree for `vardr-init certs` runs (`Env`: the certificates directory, the bundle's
//! directory, the system bundle), the shared test system bundle, and a way to run vardr-init on
//! such a tree with a scrubbed environment.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tempfile::TempDir;

use super::pki::{self, Cert};
use super::{Finished, NONROOT, as_nonroot, bin, finish};

/// `vardr-init` arguments for a child that prints the `SSL_CERT_FILE` it got, bracketed: `[]`
/// when nothing was exported.
pub const PRINT_EXPORT: [&str; 4] = ["--", "sh", "-c", "printf '[%s]\\n' \"$SSL_CERT_FILE\""];

/// What vardr-init leaves in the directory of a bundle named `bundle.pem`: the bundle, its cache
/// record and the Python hook's directory.
pub const OUTPUTS: [&str; 3] = ["bundle.pem", "bundle.pem.sha256", "bundle.pem.python"];

/// The entries of `out` (a bundle's directory) that are none of [`OUTPUTS`] nor `keep`, and those
/// of the hook's directory but its file and its `__pycache__`, as `bundle.pem.python/NAME`: a
/// temporary file left behind shows here.
pub fn strays(out: &Path, keep: &[&str]) -> Vec<String> {
    let names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir).map_or_else(
            |_| Vec::new(),
            |entries| {
                entries
                    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect()
            },
        )
    };
    let mut strays: Vec<String> = names(out)
        .into_iter()
        .filter(|name| !OUTPUTS.contains(&name.as_str()) && !keep.contains(&name.as_str()))
        .collect();
    let hook = out.join("bundle.pem.python");
    strays.extend(
        names(&hook)
            .into_iter()
            .filter(|name| name != "sitecustomize.py" && name != "__pycache__")
            .map(|name| format!("bundle.pem.python/{name}")),
    );
    strays.sort();
    strays
}

/// The shared test system bundle: two CAs, with comments, in the style of Fedora's.
pub fn system_fixture() -> &'static (Vec<u8>, Vec<Cert>) {
    static SYSTEM: OnceLock<(Vec<u8>, Vec<Cert>)> = OnceLock::new();
    SYSTEM.get_or_init(|| pki::system_bundle(2))
}

/// A scratch tree: `certs/` (VARDR_CERTS_DIR), `outside/` (symlink targets), `out/bundle.pem`
/// (VARDR_CA_BUNDLE) and `system.pem` (VARDR_SYSTEM_CA_BUNDLE).
pub struct Env {
    _dir: TempDir,
    pub root: PathBuf,
    pub certs: PathBuf,
    pub outside: PathBuf,
    pub bundle: PathBuf,
    pub system: PathBuf,
    pub system_bytes: Vec<u8>,
    pub system_ders: Vec<Vec<u8>>,
}

impl Env {
    pub fn new() -> Env {
        Env::with_system(system_fixture().0.clone())
    }

    pub fn with_system(system_bytes: Vec<u8>) -> Env {
        Env::in_dir(tempfile::tempdir().expect("tempdir"), system_bytes)
    }

    pub fn in_dir(dir: TempDir, system_bytes: Vec<u8>) -> Env {
        let root = dir.path().to_path_buf();
        // Readable by the unprivileged user some tests switch to.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
        let env = Env {
            certs: root.join("certs"),
            outside: root.join("outside"),
            bundle: root.join("out/bundle.pem"),
            system: root.join("system.pem"),
            system_ders: pki::certificates_in(&system_bytes),
            system_bytes,
            root,
            _dir: dir,
        };
        for dir in [&env.certs, &env.outside, &env.root.join("out")] {
            make_dir(dir);
        }
        fs::write(&env.system, &env.system_bytes).expect("write the system bundle");
        env
    }

    /// Gives the bundle's directory to the unprivileged user.
    fn out_for_nonroot(&self) {
        std::os::unix::fs::chown(self.root.join("out"), Some(NONROOT), Some(NONROOT))
            .expect("chown out/");
    }

    /// `vardr-init certs --json` on this tree, with a scrubbed environment; as uid 65532 when
    /// `nonroot`.
    pub fn command(&self, nonroot: bool) -> Command {
        let mut command = if nonroot {
            self.out_for_nonroot();
            as_nonroot(bin())
        } else {
            Command::new(bin())
        };
        command.args(["certs", "--json"]);
        // The strictest runtime's rules, whatever Python this machine's PATH has (the fixtures
        // are well-formed CAs; tests/tls_verdicts.rs covers each runtime).
        pki::scrub(&mut command)
            .env("VARDR_TLS_PROFILE", "python3.13")
            .env("VARDR_CERTS_DIR", &self.certs)
            .env("VARDR_CA_BUNDLE", &self.bundle)
            .env("VARDR_SYSTEM_CA_BUNDLE", &self.system);
        command
    }

    pub fn run(&self) -> Finished {
        finish(self.command(false))
    }

    pub fn cache(&self) -> PathBuf {
        sibling(&self.bundle, ".sha256")
    }
}

/// `PATH` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

pub fn make_dir(dir: &Path) {
    fs::create_dir_all(dir).expect("mkdir");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
}

/// `vardr-init ARGS` on this tree, with a scrubbed environment and `env` on top.
pub fn vardr_on(env: &Env, args: &[&str], vars: &[(&str, &Path)]) -> Finished {
    let mut command = Command::new(bin());
    command.args(args);
    pki::scrub(&mut command)
        .env("VARDR_TLS_PROFILE", "python3.13")
        .env("VARDR_CERTS_DIR", &env.certs)
        .env("VARDR_CA_BUNDLE", &env.bundle)
        .env("VARDR_SYSTEM_CA_BUNDLE", &env.system);
    for (name, value) in vars {
        command.env(name, value);
    }
    finish(command)
}
