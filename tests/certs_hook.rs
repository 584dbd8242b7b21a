//! The Python hook (`VARDR_PYTHON_HOOK`): with a bundle exported, `certifi.where()` names it in
//! the child's Python, through `<bundle>.python/sitecustomize.py` first on `PYTHONPATH`. Checked
//! with the real certifi of the test venv and every CPython here: the patch, the user's own
//! `PYTHONPATH` after it, the hook's directory off `sys.path`, nothing when Python runs without
//! vardr-init (an image's other entrypoint) or with `-I`; a directory vardr-init did not make
//! (a symlink, someone else's, writable by others) never used; an old hook dropped from an
//! inherited `PYTHONPATH`; the dry run's `python_hook` and `clients`, writing nothing.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::certs::{Env, vardr_on};
use common::pki::{self, Ca};
use common::{finish, venv_python};
use serde_json::Value;

/// Prints what the hook changes, one per line: `certifi.where()`, whether `certifi.contents()` is
/// that file's text, the hook's directory on `sys.path` or not, `PYTHONPATH`, `sitecustomize`'s
/// file.
const SHOW: &str = "import certifi, os, sys, sitecustomize
print(certifi.where())
print(certifi.contents() == open(certifi.where()).read())
print(any(p.endswith('.python') for p in sys.path))
print(os.environ.get('PYTHONPATH', '-'))
print(sitecustomize.__file__)";

fn env_with_ca() -> Env {
    let env = Env::new();
    fs::write(env.certs.join("ca.pem"), Ca::new("hook test").cert.pem()).expect("write");
    env
}

fn hook_dir(env: &Env) -> PathBuf {
    env.root.join("out/bundle.pem.python")
}

/// The venv's certifi, as Python imports it without vardr-init.
fn own_certifi(python: &Path) -> String {
    let mut command = Command::new(python);
    command.args(["-c", "import certifi; print(certifi.where())"]);
    pki::scrub(&mut command);
    let run = finish(command);
    run.assert_code(0, "certifi without vardr-init");
    assert_eq!(
        run.stderr,
        "",
        "Python alone prints nothing: {}",
        run.describe()
    );
    run.stdout.trim().to_owned()
}

#[test]
fn certifi_where_names_the_bundle_and_the_users_pythonpath_follows() {
    let Some(python) = venv_python() else {
        return;
    };
    let env = env_with_ca();
    let theirs = env.root.join("their-lib");
    fs::create_dir(&theirs).expect("mkdir");
    fs::write(theirs.join("their_module.py"), "NAME = 'theirs'\n").expect("write");
    let python = python.to_string_lossy().into_owned();
    let show = format!("{SHOW}\nimport their_module; print(their_module.NAME)");
    let run = vardr_on(
        &env,
        &["--", &python, "-c", &show],
        &[("PYTHONPATH", &theirs)],
    );
    run.assert_code(0, "the hook on");
    let dir = hook_dir(&env);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            env.bundle.to_str().expect("utf-8"),
            "True",
            "False",
            &format!("{}:{}", dir.display(), theirs.display()),
            dir.join("sitecustomize.py").to_str().expect("utf-8"),
            "theirs",
        ],
        "{}",
        run.describe()
    );
    common::assert_logged(
        &run.stderr_lines(),
        "Python hook: certifi.where() names",
        "the hook is said to be on",
    );
    // The same interpreter without vardr-init (another entrypoint): certifi's own, no error.
    let own = own_certifi(Path::new(&python));
    assert!(own.ends_with("certifi/cacert.pem"), "{own}");
    // `python -I` ignores PYTHONPATH: the hook cannot run there (documented).
    let run = vardr_on(
        &env,
        &[
            "--",
            &python,
            "-I",
            "-c",
            "import certifi; print(certifi.where())",
        ],
        &[],
    );
    run.assert_code(0, "python -I");
    assert_eq!(run.stdout.trim(), own);
}

/// The hook's file runs on every CPython here, and patches certifi there too (pure Python: the
/// venv's copy, on PYTHONPATH).
#[test]
fn the_hook_works_on_every_cpython_here() {
    let Some(venv) = venv_python() else {
        return;
    };
    let site = Command::new(&venv)
        .args([
            "-c",
            "import certifi, os; print(os.path.dirname(os.path.dirname(certifi.__file__)))",
        ])
        .output()
        .expect("venv python");
    let site = PathBuf::from(String::from_utf8_lossy(&site.stdout).trim());
    let env = env_with_ca();
    let mut pythons = vec![common::python().to_path_buf()];
    pythons.extend(common::cpython_runtimes());
    for python in pythons {
        let python = python.to_string_lossy().into_owned();
        let run = vardr_on(
            &env,
            &[
                "--",
                &python,
                "-c",
                "import certifi, sys; print(certifi.where())",
            ],
            &[("PYTHONPATH", &site)],
        );
        run.assert_code(0, &python);
        assert_eq!(
            run.stdout.trim(),
            env.bundle.to_str().expect("utf-8"),
            "{python}"
        );
        assert!(
            !run.stderr.contains("Error in sitecustomize") && !run.stderr.contains("Traceback"),
            "{python}: {}",
            run.describe()
        );
    }
}

/// What is at the hook's path and was not made by vardr-init is neither used nor written
/// through: the bundle is exported all the same, certifi keeps its own file, a warning says why.
#[test]
fn a_hook_directory_vardr_init_did_not_make_is_never_used() {
    let Some(python) = venv_python() else {
        return;
    };
    let python = python.to_string_lossy().into_owned();
    let own = own_certifi(Path::new(&python));
    let planted = "print('planted code ran')\n";
    type Plant = fn(&Path, &Path, &str);
    let cases: Vec<(&str, Plant)> = vec![
        (
            "a symlink to a directory of someone's",
            |dir, outside, planted| {
                fs::write(outside.join("sitecustomize.py"), planted).expect("plant");
                symlink(outside, dir).expect("symlink");
            },
        ),
        ("a directory writable by others", |dir, _, planted| {
            fs::create_dir(dir).expect("mkdir");
            fs::write(dir.join("sitecustomize.py"), planted).expect("plant");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        }),
        ("a file", |dir, _, planted| {
            fs::write(dir, planted).expect("plant")
        }),
        ("another user's directory", |dir, _, planted| {
            fs::create_dir(dir).expect("mkdir");
            fs::write(dir.join("sitecustomize.py"), planted).expect("plant");
            std::os::unix::fs::chown(dir, Some(common::NONROOT), Some(common::NONROOT))
                .expect("chown (run as root)");
        }),
    ];
    for (what, plant) in cases {
        if what == "another user's directory" && !common::switch_users() {
            continue;
        }
        let env = env_with_ca();
        let dir = hook_dir(&env);
        plant(&dir, &env.outside, planted);
        let show = "import certifi, os; print(certifi.where()); print(os.environ['SSL_CERT_FILE'])";
        let run = vardr_on(&env, &["--", &python, "-c", show], &[]);
        run.assert_code(0, what);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(
            lines,
            [own.as_str(), env.bundle.to_str().expect("utf-8")],
            "{what}: {}",
            run.describe()
        );
        common::assert_logged(
            &run.stderr_lines(),
            "the Python hook cannot be put in",
            what,
        );
        let left = fs::read_to_string(env.outside.join("sitecustomize.py"))
            .or_else(|_| fs::read_to_string(dir.join("sitecustomize.py")))
            .or_else(|_| fs::read_to_string(&dir))
            .unwrap_or_default();
        assert_eq!(left, planted, "{what}: written through");
        let dry = vardr_on(&env, &["--dry-run", "--json", "--", &python], &[]);
        let plan: Value = serde_json::from_str(&dry.stdout).expect("plan");
        assert_eq!(plan["python_hook"]["status"], "problem", "{what}: {plan:#}");
        assert_eq!(plan["environment"]["PYTHONPATH"], Value::Null, "{what}");
    }
}

#[test]
fn the_dry_run_says_the_hook_is_on_and_who_it_reaches_and_writes_nothing() {
    let Some(python) = venv_python() else {
        return;
    };
    let env = env_with_ca();
    let python = python.to_string_lossy().into_owned();
    let dry = vardr_on(&env, &["--dry-run", "--json", "--", &python], &[]);
    dry.assert_code(0, "dry run");
    let plan: Value = serde_json::from_str(&dry.stdout).expect("plan");
    let dir = hook_dir(&env);
    assert_eq!(plan["python_hook"]["status"], "on", "{plan:#}");
    assert_eq!(plan["python_hook"]["dir"], dir.to_str().expect("utf-8"));
    assert_eq!(
        plan["environment"]["PYTHONPATH"],
        dir.to_str().expect("utf-8")
    );
    assert!(
        !dir.exists() && !env.bundle.exists(),
        "a dry run writes nothing"
    );
    let coverage = |plan: &Value, client: &str| {
        plan["clients"]
            .as_array()
            .expect("clients")
            .iter()
            .find(|c| c["client"] == client)
            .map(|c| c["coverage"].as_str().expect("coverage").to_owned())
    };
    assert_eq!(
        coverage(&plan, "certifi").as_deref(),
        Some("hook"),
        "{plan:#}"
    );
    assert_eq!(coverage(&plan, "requests").as_deref(), Some("exported"));
    // Off: no PYTHONPATH, and certifi is said not to be reached, and why.
    let off = [("VARDR_PYTHON_HOOK", Path::new("false"))];
    let dry = vardr_on(&env, &["--dry-run", "--json", "--", &python], &off);
    let plan: Value = serde_json::from_str(&dry.stdout).expect("plan");
    assert_eq!(plan["python_hook"]["status"], "off", "{plan:#}");
    assert_eq!(plan["environment"]["PYTHONPATH"], Value::Null);
    assert_eq!(coverage(&plan, "certifi").as_deref(), Some("opted_out"));
    let run = vardr_on(
        &env,
        &[
            "--",
            &python,
            "-c",
            "import os; print(os.environ.get('PYTHONPATH'))",
        ],
        &off,
    );
    run.assert_code(0, "hook off");
    assert_eq!(run.stdout.trim(), "None");
    assert!(!dir.exists(), "no hook written when it is off");
}

/// A `PYTHONPATH` copied from a running container names the hook; when no bundle is exported
/// this time the child must not run an old hook: the entry is dropped (the rest kept).
#[test]
fn an_inherited_pythonpath_naming_the_hook_is_dropped_when_no_bundle_is_exported() {
    let env = Env::new(); // no custom CA: nothing exported
    let dir = hook_dir(&env);
    let show = ["--", "sh", "-c", "printf '[%s]\\n' \"${PYTHONPATH-unset}\""];
    let mixed = PathBuf::from(format!("{}:/their/lib", dir.display()));
    let run = vardr_on(&env, &show, &[("PYTHONPATH", &mixed)]);
    run.assert_code(0, "mixed");
    assert_eq!(run.stdout.trim(), "[/their/lib]", "{}", run.describe());
    common::assert_logged(&run.stderr_lines(), "not in place this time", "said");
    let run = vardr_on(&env, &show, &[("PYTHONPATH", &dir)]);
    assert_eq!(run.stdout.trim(), "[unset]", "{}", run.describe());
    let run = vardr_on(&env, &show, &[("PYTHONPATH", Path::new("/their/lib"))]);
    assert_eq!(run.stdout.trim(), "[/their/lib]", "{}", run.describe());
}

/// The images set PYTHONDONTWRITEBYTECODE: the hook compiles itself once into its own
/// `__pycache__` all the same (later starts load it), while the app's own files stay uncompiled
/// and the setting stays on for the app. A rewritten hook takes its old bytecode with it.
#[test]
fn the_hook_compiles_itself_once_and_the_apps_files_stay_uncompiled() {
    let Some(python) = venv_python() else {
        return;
    };
    let env = env_with_ca();
    let app = env.root.join("app");
    fs::create_dir(&app).expect("mkdir");
    fs::write(app.join("their_module.py"), "X = 1\n").expect("write");
    let python = python.to_string_lossy().into_owned();
    let show = "import sys, their_module; print(sys.dont_write_bytecode)";
    let vars = [
        ("PYTHONDONTWRITEBYTECODE", Path::new("1")),
        ("PYTHONPATH", app.as_path()),
    ];
    let run = vardr_on(&env, &["--", &python, "-c", show], &vars);
    run.assert_code(0, "first start");
    assert_eq!(run.stdout.trim(), "True", "{}", run.describe());
    let cache = hook_dir(&env).join("__pycache__");
    let compiled: Vec<PathBuf> = fs::read_dir(&cache)
        .expect("__pycache__")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    assert!(
        compiled[0].to_string_lossy().ends_with(".pyc"),
        "{compiled:?}"
    );
    let mode = fs::metadata(&compiled[0])
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o022, 0, "bytecode writable by others: {mode:o}");
    assert!(
        !app.join("__pycache__").exists(),
        "the app's files were compiled"
    );
    // The next start loads it (python -v says where each module's code object came from).
    let run = vardr_on(&env, &["--", &python, "-v", "-c", "pass"], &vars);
    run.assert_code(0, "second start");
    assert!(
        run.stderr.lines().any(
            |l| l.starts_with("# code object from") && l.contains("__pycache__/sitecustomize.")
        ),
        "{}",
        run.describe()
    );
    // An old hook's text and bytecode: the text is rewritten, the bytecode goes.
    fs::write(hook_dir(&env).join("sitecustomize.py"), "OLD = 1\n").expect("write");
    let run = vardr_on(&env, &["--", "true"], &[]);
    run.assert_code(0, "rewrite");
    assert_eq!(fs::read_dir(&cache).expect("ls").count(), 0);
}
