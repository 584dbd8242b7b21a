//! `[tool.fastapi] entrypoint` in pyproject.toml, judged side by side by Python's own `tomllib`
//! (`tests/helpers/tomllib_entrypoint.py`, read as fastapi-cli reads it) and by
//! `vardr-init --dry-run --json` with `VARDR_APP_DIR` at the file: what tomllib reads, vardr-init
//! reads, with the same entrypoint; what tomllib refuses, vardr-init refuses with exit 2 naming
//! the file. Then the issue's hostile files, as PID 1 of a PID namespace and under a memory
//! bound: exit 2 within the harness's patience, never a signal death. The documented
//! disagreement (nesting past the toml crate's bound of 80) is pinned too.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::app::World;
use common::{Mode, finish};

const MAIN: &str = "from fastapi import FastAPI\napp = FastAPI()\n";

/// Documents tomllib reads: the key in every place TOML 1.0 allows, every kind of value and
/// syntax around it, look-alikes that are not the key.
fn readable() -> Vec<(&'static str, Vec<u8>)> {
    let entry = "[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n";
    let with = |before: &str| format!("{before}\n{entry}").into_bytes();
    let nested = |depth: usize, open: &str, close: &str| {
        let value = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        with(&format!("deep = {value}"))
    };
    vec![
        ("plain", entry.into()),
        ("empty file", Vec::new()),
        ("released datetime", with("released = 1979-05-27 07:32:00Z")),
        ("lower-case t and z", with("a = 1979-05-27t07:32:00z")),
        (
            "offset datetime",
            with("a = 1979-05-27T00:32:00.999999-07:00"),
        ),
        (
            "local datetime, date, time",
            with("a = 1979-05-27T07:32:00\nb = 1979-05-27\nc = 07:32:00.5"),
        ),
        (
            "numbers",
            with(
                "a = 0xDEAD_beef\nb = 0o755\nc = 0b1101\nd = 1_000\ne = -0.0\nf = 6.626e-34\ng = +inf\nh = -nan\ni = 1e1_0",
            ),
        ),
        ("booleans", with("a = true\nb = false")),
        (
            "escapes",
            with("a = \"tab\\t quote\\\" u\\u00e9 U\\U0001F600 b\\b f\\f\""),
        ),
        (
            "literal strings",
            with("a = 'C:\\Users\\x'\nb = '''\nline \"\"\" '' two\n'''"),
        ),
        (
            "multi-line basic, line-ending backslash",
            with("a = \"\"\"\none \\\n   two \"\" \"\"\""),
        ),
        (
            "arrays across lines with comments",
            with("a = [\n  1, # one\n  \"]\",\n  [2, 3],\n  { x = 1 },\n]"),
        ),
        (
            "mixed arrays",
            with("a = [1, \"a\", 1.5, [2], {x = 1}, 1979-05-27]"),
        ),
        (
            "arrays of tables",
            with("[[tool.other]]\nx = 1\n[[tool.other]]\nx = 2"),
        ),
        (
            "dotted key under [tool]",
            b"[tool]\nfastapi.entrypoint = 'pkg.server:api'\n".to_vec(),
        ),
        (
            "dotted key at the top",
            b"tool.fastapi.entrypoint = \"pkg.server:api\"\n".to_vec(),
        ),
        (
            "quoted keys",
            b"\"tool\".'fastapi'.\"entrypoint\" = \"pkg.server:api\"\n".to_vec(),
        ),
        (
            "inline tables",
            b"tool = { fastapi = { other = 1, entrypoint = 'pkg.server:api' } }\n".to_vec(),
        ),
        (
            "inline table under [tool]",
            b"[tool]\nfastapi = { entrypoint = \"pkg.server:api\" }\n".to_vec(),
        ),
        (
            "spaces in the header",
            b"[ tool . \"fastapi\" ]\n\"entrypoint\" = \"pkg.server:api\"\n".to_vec(),
        ),
        (
            "tabs",
            b"[tool.fastapi]\n\tentrypoint\t=\t\"pkg.server:api\"\t# c\n".to_vec(),
        ),
        (
            "crlf",
            b"[project]\r\nname = \"x\"\r\n[tool.fastapi]\r\nentrypoint = \"pkg.server:api\"\r\n"
                .to_vec(),
        ),
        (
            "multi-line entrypoint",
            b"[tool.fastapi]\nentrypoint = \"\"\"\npkg.server:api\"\"\"\n".to_vec(),
        ),
        (
            "an escaped entrypoint",
            b"[tool.fastapi]\nentrypoint = \"pkg.\\u0073erver:api\"\n".to_vec(),
        ),
        (
            "the super-table after its sub-table",
            b"[tool.fastapi.extra]\nx = 1\n[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n"
                .to_vec(),
        ),
        (
            "[tool] then [tool.fastapi]",
            b"[tool]\nx = 1\n[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n".to_vec(),
        ),
        (
            "non-ASCII strings and comments",
            with("name = \"caf\u{e9} \u{1f600}\" # d\u{e9}j\u{e0} vu"),
        ),
        (
            "odd bare keys",
            with("1234 = 1\n-- = 2\n_a-b_ = 3\n3.14159 = 4"),
        ),
        ("empty quoted key", with("\"\" = 1")),
        (
            "a real project",
            with(
                "[project]\nname = \"svc\"\nversion = \"1.0\"\ndependencies = [\n  \"fastapi>=0.110\",\n  \"uvicorn[standard]\",\n]\n[project.optional-dependencies]\ndev = [\"pytest\"]\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n[tool.ruff]\nline-length = 100\n[tool.ruff.lint]\nselect = [\"E\", \"F\"]",
            ),
        ),
        (
            "5,000 keys",
            with(
                &(0..5000)
                    .map(|i| format!("k{i} = {i}\n"))
                    .collect::<String>(),
            ),
        ),
        ("inline tables nested 40 deep", nested(40, "{b = ", "}")),
        ("arrays nested 40 deep", nested(40, "[", "]")),
        (
            "no [tool.fastapi]",
            b"[tool.ruff]\nline-length = 100\n".to_vec(),
        ),
        (
            "[tool.fastapi] without the key",
            b"[tool.fastapi]\nother = \"x\"\n".to_vec(),
        ),
        (
            "the key in a sub-table",
            b"[tool.fastapi.sub]\nentrypoint = \"main:app\"\n".to_vec(),
        ),
        (
            "the key in another table",
            b"[tool.other]\nentrypoint = \"main:app\"\n".to_vec(),
        ),
        (
            "an array of tables",
            b"[[tool.fastapi]]\nentrypoint = \"main:app\"\n".to_vec(),
        ),
        ("tool is not a table", b"tool = 1\n".to_vec()),
        (
            "the key in a string",
            b"[tool.other]\ndoc = \"\"\"\n[tool.fastapi]\nentrypoint = \"main:app\"\n\"\"\"\n"
                .to_vec(),
        ),
        (
            "the key in comments",
            b"# [tool.fastapi]\n# entrypoint = 'main:app'\n".to_vec(),
        ),
        ("not a string", b"[tool.fastapi]\nentrypoint = 3\n".to_vec()),
        (
            "a datetime",
            b"[tool.fastapi]\nentrypoint = 1979-05-27\n".to_vec(),
        ),
    ]
}

/// Documents tomllib refuses.
fn refused() -> Vec<(&'static str, Vec<u8>)> {
    let entry = "[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n";
    let with = |before: &str| format!("{before}\n{entry}").into_bytes();
    vec![
        (
            "duplicated entrypoint",
            format!("{entry}entrypoint = \"main:app\"\n").into_bytes(),
        ),
        (
            "NUL after the value",
            b"[tool.fastapi]\nentrypoint = \"pkg.server:api\"\0\n".to_vec(),
        ),
        (
            "Latin-1 bytes",
            b"[project]\nname = \"caf\xe9\"\n[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n"
                .to_vec(),
        ),
        (
            "an inline table, then its header",
            b"[tool]\nfastapi = {}\n[tool.fastapi]\nentrypoint = \"pkg.server:api\"\n".to_vec(),
        ),
        ("a table twice", with("[a]\n[a]")),
        (
            "[tool.fastapi] twice",
            format!("{entry}[tool.fastapi]\n").into_bytes(),
        ),
        (
            "a dotted-key table, then its header",
            with("[fruit]\napple.color = 'red'\n[fruit.apple]"),
        ),
        ("an array of tables, then a table", with("[[a]]\n[a]")),
        ("an array, then an array of tables", with("a = []\n[[a]]")),
        ("an inline table extended", with("a = {b = 1}\na.c = 2")),
        (
            "an inline table extended by a header",
            with("a = {b = 1}\n[a.c]"),
        ),
        (
            "a line break in an inline table",
            with("a = { b = 1,\n c = 2 }"),
        ),
        (
            "a comment in an inline table",
            with("a = { b = 1, # c\n c = 2 }"),
        ),
        (
            "a trailing comma in an inline table",
            with("a = { b = 1, }"),
        ),
        ("a \\x escape", with("a = \"\\x41\"")),
        ("a \\e escape", with("a = \"\\e[0m\"")),
        ("an unknown escape", with("a = \"\\q\"")),
        ("a surrogate escape", with("a = \"\\uD800\"")),
        ("an escape past U+10FFFF", with("a = \"\\U00110000\"")),
        ("a time without seconds", with("a = 07:32")),
        ("a datetime without seconds", with("a = 1979-05-27T07:32Z")),
        ("a month 13", with("a = 1979-13-01")),
        ("February 30", with("a = 1979-02-30")),
        ("hour 24", with("a = 24:00:00")),
        ("a byte order mark", format!("\u{feff}{entry}").into_bytes()),
        ("a bare carriage return", with("a = 1\rb = 2")),
        ("a control character in a comment", with("# bell \x07")),
        ("DEL in a string", with("a = \"\x7f\"")),
        (
            "a tab-less control character in a string",
            with("a = \"\x01\""),
        ),
        ("a non-ASCII bare key", with("cl\u{e9} = 1")),
        ("a key with a space", with("a b = 1")),
        ("an empty bare key", with("= 1")),
        ("a key without a value", with("a =")),
        ("two pairs on a line", with("a = 1 b = 2")),
        ("a duplicated key", with("a = true\na = false")),
        ("leading zeros", with("a = 01")),
        ("a signed hex number", with("a = +0x1")),
        ("a double underscore", with("a = 1__0")),
        ("a trailing dot", with("a = 1.")),
        ("a leading dot", with("a = .5")),
        (
            "junk after a datetime",
            with("a = 1979-05-27 07:32:00Zjunk"),
        ),
        ("an unterminated string", with("a = \"x")),
        (
            "an unclosed header",
            b"[tool.fastapi\nentrypoint = \"pkg.server:api\"\n".to_vec(),
        ),
        ("an unclosed array", with("a = [1, 2")),
        ("inline tables nested 10,000 deep (the issue's)", {
            let n = 10_000;
            let mut text = b"[tool.x]\na = ".to_vec();
            text.extend(b"{b = ".repeat(n));
            text.push(b'1');
            text.extend(b"}".repeat(n));
            text.push(b'\n');
            text
        }),
        (
            "60,000 brackets (the issue's)",
            [b"[".repeat(60_000), b"]".repeat(60_000)].concat(),
        ),
        (
            "arrays nested 1,000 deep",
            with(&format!("a = {}{}", "[".repeat(1000), "]".repeat(1000))),
        ),
    ]
}

/// The Python that judges: the test venv's, else pyenv's (by absolute path); `None` (skip)
/// without a Python 3.11 or later.
fn tomllib_python() -> Option<PathBuf> {
    let python = common::venv_python().unwrap_or_else(|| common::python().to_path_buf());
    let has = Command::new(&python)
        .args(["-c", "import tomllib"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        common::skip_outside_ci(&format!("{} has no tomllib", python.display()));
    }
    has.then_some(python)
}

/// tomllib's verdict on each file, in order.
fn tomllib(python: &Path, files: &[PathBuf]) -> Vec<Value> {
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/tomllib_entrypoint.py");
    let output = Command::new(python)
        .arg(helper)
        .args(files)
        .output()
        .expect("run the tomllib helper");
    assert!(output.status.success(), "{output:?}");
    let verdicts: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(verdicts.len(), files.len());
    verdicts
}

/// An app directory with `pyproject` and a `main.py` that discovery would take.
fn project(root: &Path, n: usize, pyproject: &[u8]) -> PathBuf {
    let dir = root.join(format!("p{n}"));
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("pyproject.toml"), pyproject).expect("write");
    fs::write(dir.join("main.py"), MAIN).expect("write");
    dir
}

fn errors(plan: &Value) -> String {
    plan["errors"].to_string()
}

#[test]
fn vardr_init_reads_what_tomllib_reads_and_refuses_what_it_refuses() {
    let Some(python) = tomllib_python() else {
        return;
    };
    let world = World::fake_python();
    let (readable, refused) = (readable(), refused());
    let corpus: Vec<_> = readable.iter().chain(&refused).collect();
    let dirs: Vec<PathBuf> = corpus
        .iter()
        .enumerate()
        .map(|(n, (_, text))| project(world.tmp.path(), n, text))
        .collect();
    let files: Vec<PathBuf> = dirs.iter().map(|d| d.join("pyproject.toml")).collect();
    let verdicts = tomllib(&python, &files);
    let mut disagreements = Vec::new();
    for (n, ((name, _), verdict)) in corpus.iter().zip(&verdicts).enumerate() {
        // The corpus says which side of tomllib each document is on: check that first.
        assert_eq!(
            verdict["read"],
            n < readable.len(),
            "{name}: tomllib's verdict is not the corpus's: {verdict}"
        );
        let (code, plan) = world.plan(&dirs[n], &[]);
        let agrees = match (&verdict["read"], &verdict["entrypoint"]) {
            (Value::Bool(true), Value::Null) => {
                code == 0
                    && plan["argv"][3] == "main:app"
                    && plan["app"]["source"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("discovered in"))
            }
            (Value::Bool(true), Value::String(entrypoint)) => {
                code == 0
                    && plan["argv"][3] == entrypoint.as_str()
                    && plan["app"]["source"]
                        .as_str()
                        .is_some_and(|s| s.contains("pyproject.toml [tool.fastapi]"))
            }
            // Read, but no string: fastapi-cli refuses it (pydantic's StrictStr).
            (Value::Bool(true), _) => {
                code == 2
                    && errors(&plan)
                        .contains("pyproject.toml: [tool.fastapi] entrypoint is not a string")
            }
            _ => code == 2 && errors(&plan).contains(&files[n].display().to_string()),
        };
        if !agrees {
            disagreements.push(format!(
                "{name}: tomllib {verdict}; vardr-init exit {code}, argv {}, errors {}",
                plan["argv"],
                errors(&plan)
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} documents judged differently:\n{}",
        disagreements.len(),
        corpus.len(),
        disagreements.join("\n")
    );
}

/// The one documented disagreement: tomllib reads nesting up to its recursion limit (about 330
/// inline tables or 496 arrays from the top of a script, fewer from deep in a program such as
/// fastapi-cli) and keys of any number of dotted parts; the toml crate stops at 80, with a clear
/// refusal. No pyproject.toml comes near either.
#[test]
fn nesting_past_80_is_refused_cleanly_where_tomllib_goes_on() {
    let Some(python) = tomllib_python() else {
        return;
    };
    let world = World::fake_python();
    let documents = [
        (
            format!("a = {}1{}\n", "{b = ".repeat(200), "}".repeat(200)),
            "nested more than 80 deep",
        ),
        (
            format!("a = {}{}\n", "[".repeat(300), "]".repeat(300)),
            "nested more than 80 deep",
        ),
        (
            format!("{} = 1\n", vec!["k"; 100].join(".")),
            "80 dotted parts or more",
        ),
    ];
    for (n, (text, why)) in documents.iter().enumerate() {
        let dir = project(world.tmp.path(), n, text.as_bytes());
        let verdict = &tomllib(&python, &[dir.join("pyproject.toml")])[0];
        assert_eq!(verdict["read"], true, "tomllib reads it: {verdict}");
        let (code, plan) = world.plan(&dir, &[]);
        assert_eq!(code, 2, "{plan:#}");
        assert!(
            errors(&plan).contains(why) && errors(&plan).contains("pyproject.toml"),
            "{plan:#}"
        );
    }
}

/// The issue's two generators, each a run (not a dry run) of vardr-init as PID 1 of a PID
/// namespace: exit 2 naming the file, nothing started, never a signal death.
#[test]
fn the_issues_hostile_files_are_exit_2_as_pid_1() {
    if !common::pid_namespaces() {
        return;
    }
    let world = World::fake_python();
    let n = 10_000;
    let nested = [
        b"[tool.x]\na = ".to_vec(),
        b"{b = ".repeat(n),
        b"1".to_vec(),
        b"}".repeat(n),
        b"\n".to_vec(),
    ]
    .concat();
    let brackets = [b"[".repeat(60_000), b"]".repeat(60_000)].concat();
    for (n, text) in [nested, brackets].iter().enumerate() {
        let dir = project(world.tmp.path(), n, text);
        let mut command = world.command(Mode::Pid1, &dir, &[]);
        // unshare from /usr/bin; python3 still the fake one, first on PATH.
        let path = format!(
            "{}:/usr/bin:/bin",
            world.fake_python_path().parent().expect("bin").display()
        );
        command.env("PATH", path);
        let run = finish(command);
        assert_eq!(run.status.code(), Some(2), "{}", run.describe());
        assert!(
            run.stderr
                .contains(&dir.join("pyproject.toml").display().to_string()),
            "{}",
            run.describe()
        );
        assert!(!world.python_started(), "nothing started");
    }
}

/// The same files in a process bounded to 192 MB of address space (`RLIMIT_AS`, what a small
/// container's memory limit is to PID 1): the reader that ran in PID 1 took gigabytes and died;
/// the worker's stays bounded.
#[test]
fn the_issues_hostile_files_are_exit_2_in_192_mb() {
    if std::env::var_os("VARDR_TEST_EMULATOR").is_some() {
        // qemu-user keeps the guest's RLIMIT_AS for itself, and a host bound starves it.
        eprintln!("not under an emulator: RLIMIT_AS bounds the emulator, not vardr-init");
        return;
    }
    let world = World::fake_python();
    let n = 10_000;
    let nested = [
        b"[tool.x]\na = ".to_vec(),
        b"{b = ".repeat(n),
        b"1".to_vec(),
        b"}".repeat(n),
        b"\n".to_vec(),
    ]
    .concat();
    for (n, text) in [
        nested,
        b"a = ".iter().copied().chain(b"[".repeat(60_000)).collect(),
    ]
    .iter()
    .enumerate()
    {
        let dir = project(world.tmp.path(), n, text);
        let mut command = world.command(Mode::Subreaper, &dir, &["--dry-run"]);
        bound_memory(&mut command, 192_000_000);
        let run = finish(command);
        assert_eq!(run.status.code(), Some(2), "{}", run.describe());
        assert!(
            run.stdout.contains("pyproject.toml: line "),
            "{}",
            run.describe()
        );
    }
}

/// Sets `RLIMIT_AS` to `bytes` in the command's process before it starts.
pub fn bound_memory(command: &mut Command, bytes: u64) {
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
