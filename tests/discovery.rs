//! App discovery checked against the real thing: for each layout, fastapi-cli's own discovery
//! (`fastapi_cli.discover.get_import_data`, what `fastapi run` uses) runs in the test venv with the
//! layout as its working directory, and must agree with `vardr_init::app::discover::discover` and with
//! the `module:variable` written in the test. fastapi-cli imports the module, so every layout is
//! real, importable FastAPI code. Without the venv, only vardr-init's side is checked.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;
use vardr_init::app::discover::{DiscoveryError, discover};

const APP: &str = "from fastapi import FastAPI\n\napp = FastAPI()\n";

fn layout(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(&path, contents).expect("write");
    }
    dir
}

fn real(path: &Path) -> PathBuf {
    fs::canonicalize(path).expect("canonicalize")
}

/// A module whose only app is `name = FastAPI()`, so the variable tells which file was taken.
fn named_app(name: &str) -> String {
    format!("from fastapi import FastAPI\n\n{name} = FastAPI()\n")
}

/// What `fastapi run` would import, run in `dir`: `Ok((module:variable, sys path))`, or
/// `Err(its stderr)` when it finds nothing; `None` without the test venv (skip).
fn fastapi_cli(dir: &Path, app_name: Option<&str>) -> Option<Result<(String, PathBuf), String>> {
    let python = common::venv_python()?;
    // -I: neither the working directory nor PYTHON* variables on sys.path, so the import
    // succeeds only through the sys.path entry fastapi-cli computes; -B: no __pycache__.
    const DISCOVER: &str = "\
import sys
from fastapi_cli.discover import get_import_data
data = get_import_data(path=None, app_name=sys.argv[1] if len(sys.argv) > 1 else None)
print(data.import_string)
print(data.module_data.extra_sys_path)
";
    let output = Command::new(python)
        .args(["-I", "-B", "-c", DISCOVER])
        .args(app_name)
        .current_dir(dir)
        .output()
        .expect("run the venv python");
    if !output.status.success() {
        return Some(Err(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let [.., import, sys_path] = lines.as_slice() else {
        panic!("unexpected fastapi-cli output: {stdout:?}");
    };
    Some(Ok((import.to_string(), PathBuf::from(sys_path))))
}

/// vardr-init's answer in the same shape.
fn vardr(dir: &Path, variable: Option<&str>) -> Result<(String, PathBuf), DiscoveryError> {
    discover(dir, variable).map(|app| (app.import_string(), app.sys_path))
}

/// Both discoveries, run in `dir`, import `expected` (`module:variable`) from `sys_path`.
fn agree_with(dir: &Path, variable: Option<&str>, expected: &str, sys_path: &Path) {
    let expected = (expected.to_owned(), real(sys_path));
    match vardr(dir, variable) {
        Ok(found) => assert_eq!(found, expected, "vardr-init"),
        Err(e) => panic!("vardr-init found nothing: {e}"),
    }
    if let Some(fastapi) = fastapi_cli(dir, variable) {
        assert_eq!(fastapi, Ok(expected), "fastapi-cli");
    }
}

fn agree(dir: &Path, expected: &str, sys_path: &Path) {
    agree_with(dir, None, expected, sys_path);
}

#[test]
fn main_py() {
    let dir = layout(&[("main.py", APP)]);
    agree(dir.path(), "main:app", dir.path());
}

#[test]
fn app_py() {
    let dir = layout(&[("app.py", APP)]);
    agree(dir.path(), "app:app", dir.path());
}

#[test]
fn api_py() {
    let dir = layout(&[("api.py", APP)]);
    agree(dir.path(), "api:app", dir.path());
}

#[test]
fn app_main_py_without_init_is_a_top_level_module_in_app() {
    let dir = layout(&[("app/main.py", APP)]);
    agree(dir.path(), "main:app", &dir.path().join("app"));
}

#[test]
fn app_app_py_without_init() {
    let dir = layout(&[("app/app.py", APP)]);
    agree(dir.path(), "app:app", &dir.path().join("app"));
}

#[test]
fn app_api_py_without_init() {
    let dir = layout(&[("app/api.py", APP)]);
    agree(dir.path(), "api:app", &dir.path().join("app"));
}

#[test]
fn app_main_py_in_a_package() {
    let dir = layout(&[("app/__init__.py", ""), ("app/main.py", APP)]);
    agree(dir.path(), "app.main:app", dir.path());
}

#[test]
fn app_app_py_in_a_package() {
    let dir = layout(&[("app/__init__.py", ""), ("app/app.py", APP)]);
    agree(dir.path(), "app.app:app", dir.path());
}

#[test]
fn app_api_py_in_a_package() {
    let dir = layout(&[("app/__init__.py", ""), ("app/api.py", APP)]);
    agree(dir.path(), "app.api:app", dir.path());
}

#[test]
fn precedence_main_py_first() {
    let dir = layout(&[
        ("main.py", &named_app("from_main")),
        ("app.py", &named_app("from_app")),
        ("api.py", &named_app("from_api")),
        ("app/main.py", &named_app("from_app_main")),
        ("app/app.py", &named_app("from_app_app")),
        ("app/api.py", &named_app("from_app_api")),
    ]);
    agree(dir.path(), "main:from_main", dir.path());
}

#[test]
fn precedence_app_py_before_api_py_and_the_app_directory() {
    let dir = layout(&[
        ("app.py", &named_app("from_app")),
        ("api.py", &named_app("from_api")),
        ("app/main.py", &named_app("from_app_main")),
    ]);
    agree(dir.path(), "app:from_app", dir.path());
}

#[test]
fn precedence_api_py_before_the_app_directory() {
    let dir = layout(&[
        ("api.py", &named_app("from_api")),
        ("app/main.py", &named_app("from_app_main")),
    ]);
    agree(dir.path(), "api:from_api", dir.path());
}

#[test]
fn precedence_inside_the_app_directory() {
    let dir = layout(&[
        ("app/__init__.py", ""),
        ("app/app.py", &named_app("from_app_app")),
        ("app/api.py", &named_app("from_app_api")),
    ]);
    agree(dir.path(), "app.app:from_app_app", dir.path());
}

#[test]
fn walk_up_stops_where_init_is_missing() {
    let dir = layout(&[("__init__.py", ""), ("app/main.py", APP)]);
    agree(dir.path(), "main:app", &dir.path().join("app"));
}

#[test]
fn packages_above_the_app_dir() {
    let root = layout(&[
        ("outer/__init__.py", ""),
        ("outer/srv/__init__.py", ""),
        ("outer/srv/app/__init__.py", ""),
        ("outer/srv/app/main.py", APP),
    ]);
    agree(
        &root.path().join("outer/srv"),
        "outer.srv.app.main:app",
        root.path(),
    );
}

#[test]
fn a_symlinked_main_py_is_imported_as_its_target() {
    let root = layout(&[("src/server.py", APP), ("site/README", "")]);
    let site = root.path().join("site");
    std::os::unix::fs::symlink(root.path().join("src/server.py"), site.join("main.py"))
        .expect("symlink");
    agree(&site, "server:app", &root.path().join("src"));
}

#[test]
fn api_when_there_is_no_app() {
    let dir = layout(&[("main.py", &named_app("api"))]);
    agree(dir.path(), "main:api", dir.path());
}

#[test]
fn app_before_api() {
    let source = "from fastapi import FastAPI\n\napi = FastAPI()\napp = FastAPI()\n";
    let dir = layout(&[("main.py", source)]);
    agree(dir.path(), "main:app", dir.path());
}

#[test]
fn a_custom_name() {
    let dir = layout(&[("main.py", &named_app("service"))]);
    agree(dir.path(), "main:service", dir.path());
}

#[test]
fn a_qualified_fastapi_call() {
    let source = "import fastapi\n\nweb = fastapi.FastAPI(\n    title='web',\n)\n";
    let dir = layout(&[("main.py", source)]);
    agree(dir.path(), "main:web", dir.path());
}

#[test]
fn an_annotated_assignment() {
    let source = "from fastapi import FastAPI\n\nserver: FastAPI = FastAPI()\n";
    let dir = layout(&[("main.py", source)]);
    agree(dir.path(), "main:server", dir.path());
}

#[test]
fn an_imported_app() {
    let dir = layout(&[
        ("factory.py", APP),
        ("main.py", "from factory import app  # built elsewhere\n"),
    ]);
    agree(dir.path(), "main:app", dir.path());
}

#[test]
fn an_app_imported_under_another_name() {
    let dir = layout(&[
        ("factory.py", &named_app("web")),
        ("main.py", "from factory import (\n    web as api,\n)\n"),
    ]);
    agree(dir.path(), "main:api", dir.path());
}

#[test]
fn a_module_imported_as_app_is_not_the_app() {
    let source = "import json as app\nfrom fastapi import FastAPI\n\nserver = FastAPI()\n";
    let dir = layout(&[("main.py", source)]);
    agree(dir.path(), "main:server", dir.path());
}

#[test]
fn decoys_in_docstrings_comments_and_blocks() {
    let source = r#""""The service.

    app = FastAPI()
"""
from fastapi import FastAPI

# app = FastAPI()
NOTE = 'api = FastAPI()'


def build():
    api = FastAPI()
    return api


class Holder:
    app = FastAPI()


real = FastAPI()

if __name__ == "__main__":
    app = FastAPI()
"#;
    let dir = layout(&[("main.py", source)]);
    agree(dir.path(), "main:real", dir.path());
}

#[test]
fn a_variable_override() {
    let source = "from fastapi import FastAPI\n\ndef create():\n    return FastAPI()\n\napplication = create()\n";
    let dir = layout(&[("main.py", source)]);
    agree_with(
        dir.path(),
        Some("application"),
        "main:application",
        dir.path(),
    );
}

#[test]
fn no_variable_is_an_error_for_both() {
    // A factory but no instance: uvicorn would need `--factory`, which discovery does not guess.
    let source = "from fastapi import FastAPI\n\ndef create():\n    return FastAPI()\n";
    let dir = layout(&[("main.py", source)]);
    let error = vardr(dir.path(), None).expect_err("vardr-init must not guess");
    assert!(
        matches!(&error, DiscoveryError::NoVariable { file } if file == &dir.path().join("main.py")),
        "{error:?}"
    );
    if let Some(fastapi) = fastapi_cli(dir.path(), None) {
        let stderr = fastapi.expect_err("fastapi-cli must fail too");
        assert!(stderr.contains("Could not find FastAPI app"), "{stderr}");
    }
}

#[test]
fn no_candidate_is_an_error_for_both() {
    let dir = layout(&[("server.py", APP), ("src/main.py", APP)]);
    let error = vardr(dir.path(), None).expect_err("nothing to find");
    let DiscoveryError::NotFound { tried, .. } = &error else {
        panic!("expected NotFound, got {error:?}");
    };
    assert_eq!(tried.len(), 6);
    if let Some(fastapi) = fastapi_cli(dir.path(), None) {
        let stderr = fastapi.expect_err("fastapi-cli must fail too");
        assert!(stderr.contains("Could not find a default file"), "{stderr}");
    }
}

// Known differences, kept visible: vardr-init reads the source, fastapi-cli imports the module.

#[test]
fn several_instances_none_named_app_or_api_differ() {
    // The contract says the first `NAME = FastAPI(` in the source; fastapi-cli takes the first
    // FastAPI instance in `dir()` order, which is alphabetical.
    let source = "from fastapi import FastAPI\n\npublic = FastAPI()\nadmin = FastAPI()\n";
    let dir = layout(&[("main.py", source)]);
    let sys_path = real(dir.path());
    assert_eq!(
        vardr(dir.path(), None).expect("found"),
        ("main:public".to_owned(), sys_path.clone())
    );
    if let Some(fastapi) = fastapi_cli(dir.path(), None) {
        assert_eq!(fastapi, Ok(("main:admin".to_owned(), sys_path)));
    }
}

#[test]
fn an_app_that_is_not_a_fastapi_instance_differs() {
    // fastapi-cli checks `isinstance(app, FastAPI)` and moves on to `api`; without importing,
    // vardr-init cannot, and such a module needs VARIABLE_NAME.
    let source = "from fastapi import FastAPI\n\napp = 'not an app'\napi = FastAPI()\n";
    let dir = layout(&[("main.py", source)]);
    let sys_path = real(dir.path());
    assert_eq!(
        vardr(dir.path(), None).expect("found"),
        ("main:app".to_owned(), sys_path.clone())
    );
    if let Some(fastapi) = fastapi_cli(dir.path(), None) {
        assert_eq!(fastapi, Ok(("main:api".to_owned(), sys_path)));
    }
}

#[test]
fn an_instance_made_by_a_factory_call_differs() {
    // fastapi-cli sees the object `create()` returned; the source shows no `FastAPI(` call for
    // `application`, so vardr-init stops and asks for VARIABLE_NAME (see `a_variable_override`).
    let source = "from fastapi import FastAPI\n\ndef create():\n    return FastAPI()\n\napplication = create()\n";
    let dir = layout(&[("main.py", source)]);
    let error = vardr(dir.path(), None).expect_err("vardr-init must not guess");
    assert!(
        matches!(error, DiscoveryError::NoVariable { .. }),
        "{error:?}"
    );
    if let Some(fastapi) = fastapi_cli(dir.path(), None) {
        assert_eq!(
            fastapi,
            Ok(("main:application".to_owned(), real(dir.path())))
        );
    }
}
