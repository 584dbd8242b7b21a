//! Finding the FastAPI app the way `fastapi run` does (fastapi-cli's `fastapi_cli/discover.py`),
//! without running Python.
//!
//! The file and the module path follow fastapi-cli exactly: the first of [`CANDIDATES`] that is a
//! file, its path resolved through symlinks, then the `__init__.py` walk-up: the file's own
//! directory and every parent holding an `__init__.py` join the dotted module, and the directory
//! above the last of them is the one uvicorn must put on `sys.path` (`--app-dir`).
//!
//! The variable is where this differs, because fastapi-cli imports the module and looks at the
//! objects while vardr-init only reads the source: `app` if the module binds it at top level, else
//! `api`, else the first top-level `NAME = FastAPI(...)` in the source. So, unlike fastapi-cli:
//! an `app` that is not a FastAPI instance is still taken (fastapi-cli moves on to `api`); an
//! instance the source does not show being made by `FastAPI(` (`application = create()`) is not
//! found; and among several instances, none named `app` or `api`, the contract's source order
//! decides where fastapi-cli takes the first in `dir()` order, which is alphabetical. Each of these
//! needs `VARIABLE_NAME`, and `tests/discovery.rs` pins them against the real fastapi-cli.
//!
//! [`find`] is what a run and the dry run call: `[tool.fastapi] entrypoint` ([`super::pyproject`]),
//! else [`discover`], both in a forked worker ([`crate::worker`]) bounded in time
//! ([`DEADLINE`]), memory ([`MEMORY_LIMIT`]) and what it reads ([`MAX_SOURCE_BYTES`],
//! [`super::pyproject::MAX_BYTES`]): PID 1 reads neither the app's files nor its pyproject.toml,
//! and a file that crashes or stalls the reader is an error that names it, never a dead PID 1.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::worker::{self, Progress, Reap, Worker};

/// How long finding the app may take. Reading a megabyte of TOML and scanning a few megabytes of
/// Python take well under a second, even for the worst files; ten seconds means a stalled file
/// system (or a defect), and the run must say so rather than wait.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The discovery worker's address space (`RLIMIT_AS`): the largest source file the scan takes
/// ([`MAX_SOURCE_BYTES`]) needs less than half of it, whatever is in the file.
pub const MEMORY_LIMIT: u64 = 256 << 20;

/// The largest app module the scan reads: a FastAPI app's `main.py` is kilobytes; a generated
/// module of megabytes is never the one that makes the app.
pub const MAX_SOURCE_BYTES: u64 = 8 << 20;

const DISCOVERY_WORKER: Worker = Worker {
    name: "the app discovery worker",
    deadline: DEADLINE,
    // Names from the source (a variable may be as long as the file) and paths.
    max_result_bytes: 2 * MAX_SOURCE_BYTES as usize + (1 << 20),
    memory_limit: Some(MEMORY_LIMIT),
    reap: Reap::Later,
};

/// The app as PID 1 gets it from the worker: what uvicorn imports, where from, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub module: String,
    pub variable: String,
    /// How it was chosen: `entrypoint in FILE [tool.fastapi]` or `discovered in FILE`.
    pub source: String,
    /// The directory uvicorn must put on `sys.path`.
    #[serde(with = "path_bytes")]
    pub sys_path: PathBuf,
}

/// The app of `app_dir`, found in the app discovery worker: `[tool.fastapi] entrypoint` in its
/// `pyproject.toml`, else [`discover`] (`variable` is `VARIABLE_NAME`). `Err` is the message to
/// print: what was wrong, where, and what to do.
pub fn find(app_dir: &Path, variable: Option<&str>) -> Result<Found, String> {
    let found = worker::run(DISCOVERY_WORKER, |progress| {
        in_worker(app_dir, variable, progress)
    });
    found.map_err(|failure| {
        format!(
            "cannot find the app: {failure}; set APP_MODULE=module:variable (or MODULE_NAME and \
             VARIABLE_NAME), with which vardr-init reads neither pyproject.toml nor the app's source"
        )
    })?
}

/// The worker's job.
fn in_worker(
    app_dir: &Path,
    variable: Option<&str>,
    progress: &mut Progress,
) -> Result<Found, String> {
    let pyproject = app_dir.join("pyproject.toml");
    progress.doing(&format!("reading {}", pyproject.display()));
    if let Some(entry) = super::pyproject::entrypoint(app_dir)? {
        // fastapi-cli imports it from the directory of pyproject.toml (its cwd).
        return Ok(Found {
            module: entry.module,
            variable: entry.variable,
            source: format!("entrypoint in {} [tool.fastapi]", entry.file.display()),
            sys_path: app_dir.to_path_buf(),
        });
    }
    progress.doing(&format!("looking for the app in {}", app_dir.display()));
    let app = discover_saying(app_dir, variable, &mut |file| {
        progress.doing(&format!("reading {}", file.display()));
    })
    .map_err(|e| e.to_string())?;
    Ok(Found {
        module: app.module,
        variable: app.variable,
        source: format!("discovered in {}", app.file.display()),
        sys_path: app.sys_path,
    })
}

/// A path as its bytes on the pipe: serde's own form of a path must be UTF-8, a Unix path need
/// not be.
mod path_bytes {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    pub fn serialize<S: serde::Serializer>(path: &Path, to: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(path.as_os_str().as_bytes(), to)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(from: D) -> Result<PathBuf, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(from)?;
        Ok(PathBuf::from(OsStr::from_bytes(&bytes)))
    }
}

/// The files `fastapi run` tries, in its order, relative to the app directory.
pub const CANDIDATES: [&str; 6] = [
    "main.py",
    "app.py",
    "api.py",
    "app/main.py",
    "app/app.py",
    "app/api.py",
];

/// A discovered app: what uvicorn is told to import, and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    /// Dotted module path, e.g. `app.main`.
    pub module: String,
    /// The FastAPI instance's name in that module, e.g. `app`.
    pub variable: String,
    /// The directory uvicorn must put on `sys.path` (`--app-dir`); symlinks resolved, as
    /// fastapi-cli does.
    pub sys_path: PathBuf,
    /// The file found, as it was found under the app directory (symlinks not resolved), so
    /// messages name the path the user wrote.
    pub file: PathBuf,
}

impl App {
    /// `module:variable`, the form uvicorn and `APP_MODULE` take.
    pub fn import_string(&self) -> String {
        format!("{}:{}", self.module, self.variable)
    }
}

#[derive(Debug)]
pub enum DiscoveryError {
    /// None of the candidates is a file.
    NotFound {
        app_dir: PathBuf,
        tried: Vec<PathBuf>,
    },
    /// The file exists but binds no `app`, no `api` and no `NAME = FastAPI(...)` at top level.
    NoVariable { file: PathBuf },
    /// A path could not be examined or read for a reason other than not existing.
    Unreadable { path: PathBuf, error: io::Error },
    /// The file is larger than [`MAX_SOURCE_BYTES`].
    TooLarge { file: PathBuf },
}

const HOW_TO_SET: &str = "set APP_MODULE=module:variable (or MODULE_NAME and VARIABLE_NAME)";

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::NotFound { app_dir, tried } => {
                write!(f, "no FastAPI app found in {}: tried ", app_dir.display())?;
                for (i, path) in tried.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}{}", path.display())?;
                }
                write!(f, "; {HOW_TO_SET}")
            }
            DiscoveryError::NoVariable { file } => write!(
                f,
                "no FastAPI app variable found in {}: it binds no `app` or `api` and has no \
                 `NAME = FastAPI(...)` at top level; set VARIABLE_NAME=NAME or APP_MODULE=module:variable",
                file.display()
            ),
            DiscoveryError::Unreadable { path, error } => write!(
                f,
                "cannot read {} to discover the app: {error}; make it readable or {HOW_TO_SET}",
                path.display()
            ),
            DiscoveryError::TooLarge { file } => write!(
                f,
                "{} is over {} MiB, larger than any app module vardr-init scans for the app's \
                 variable; {HOW_TO_SET}",
                file.display(),
                MAX_SOURCE_BYTES >> 20
            ),
        }
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiscoveryError::Unreadable { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Finds the app under `app_dir`. `variable` (from `VARIABLE_NAME`) is used as given, without
/// reading the file; empty counts as not given.
/// In a run this happens in the worker ([`find`]); called directly, in the calling process.
pub fn discover(app_dir: &Path, variable: Option<&str>) -> Result<App, DiscoveryError> {
    discover_saying(app_dir, variable, &mut |_| {})
}

/// [`discover`], calling `reading` with the source file before it is read.
fn discover_saying(
    app_dir: &Path,
    variable: Option<&str>,
    reading: &mut dyn FnMut(&Path),
) -> Result<App, DiscoveryError> {
    let file = find_file(app_dir)?;
    let (module, sys_path) = module_path(&file)?;
    let variable = match variable.filter(|v| !v.is_empty()) {
        Some(variable) => variable.to_owned(),
        None => {
            reading(&file);
            let source = read_source(&file)?;
            app_variable(&String::from_utf8_lossy(&source))
                .ok_or_else(|| DiscoveryError::NoVariable { file: file.clone() })?
        }
    };
    Ok(App {
        module,
        variable,
        sys_path,
        file,
    })
}

/// The file's bytes, at most [`MAX_SOURCE_BYTES`].
fn read_source(file: &Path) -> Result<Vec<u8>, DiscoveryError> {
    let unreadable = |error| DiscoveryError::Unreadable {
        path: file.to_path_buf(),
        error,
    };
    let mut bytes = Vec::new();
    fs::File::open(file)
        .and_then(|f| f.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(DiscoveryError::TooLarge {
            file: file.to_path_buf(),
        });
    }
    Ok(bytes)
}

fn find_file(app_dir: &Path) -> Result<PathBuf, DiscoveryError> {
    let tried: Vec<PathBuf> = CANDIDATES.iter().map(|c| app_dir.join(c)).collect();
    for path in &tried {
        if is_file(path)? {
            return Ok(path.clone());
        }
    }
    Err(DiscoveryError::NotFound {
        app_dir: app_dir.to_path_buf(),
        tried,
    })
}

/// Python's `Path.is_file()`: follows symlinks; "no such file", "not a directory", a symlink
/// loop and a bad descriptor mean false, any other error (permission denied) is raised.
fn is_file(path: &Path) -> Result<bool, DiscoveryError> {
    match fs::metadata(path) {
        Ok(metadata) => Ok(metadata.is_file()),
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EBADF)
            ) =>
        {
            Ok(false)
        }
        Err(error) => Err(DiscoveryError::Unreadable {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// fastapi-cli's `get_module_data_from_path`: the dotted module and the `sys.path` entry for
/// `file`. The path is resolved first, as fastapi-cli does: a symlinked `main.py` is imported under
/// its target's name from its target's directory, and packages are those around the real file.
fn module_path(file: &Path) -> Result<(String, PathBuf), DiscoveryError> {
    let resolved = fs::canonicalize(file).map_err(|error| DiscoveryError::Unreadable {
        path: file.to_path_buf(),
        error,
    })?;
    // A package's `__init__.py` is imported as the package itself.
    let module_file = if resolved.file_stem().is_some_and(|s| s == "__init__") {
        resolved.parent().unwrap_or(&resolved).to_path_buf()
    } else {
        resolved
    };
    let mut parts = vec![module_file.as_path()];
    let mut sys_path = parent_or_self(&module_file);
    for parent in module_file.ancestors().skip(1) {
        if !is_file(&parent.join("__init__.py"))? {
            break;
        }
        parts.insert(0, parent);
        sys_path = parent_or_self(parent);
    }
    let module = parts
        .iter()
        .map(|p| p.file_stem().unwrap_or_default().to_string_lossy())
        .collect::<Vec<_>>()
        .join(".");
    Ok((module, sys_path.to_path_buf()))
}

/// Python's `Path.parent`, where the root is its own parent.
fn parent_or_self(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

/// The app's variable name in a module's source: `app` if bound at top level, else `api`, else
/// the first top-level `NAME = FastAPI(...)`. `None` if there is none of these.
pub fn app_variable(source: &str) -> Option<String> {
    // Only whether `app` and `api` are bound matters: the names themselves are not kept, so a
    // statement binding millions of names costs no more than its text.
    let (mut app, mut api) = (false, false);
    let mut first_instance = None;
    for line in logical_lines(source) {
        if line.indented {
            continue;
        }
        for statement in split_top_level(&line.text, ';') {
            bound_names(statement, &mut |name| {
                app |= name == "app";
                api |= name == "api";
            });
            if first_instance.is_none() {
                first_instance = fastapi_instance(statement);
            }
        }
    }
    match (app, api) {
        (true, _) => Some("app".to_owned()),
        (false, true) => Some("api".to_owned()),
        _ => first_instance,
    }
}

/// A logical line of Python source: physical lines joined across open brackets and backslash
/// continuations, comments dropped and every string literal reduced to `""`, so a docstring or a
/// comment that mentions `app = FastAPI()` cannot be mistaken for code.
#[derive(Debug)]
struct LogicalLine {
    /// Starts with whitespace: inside a block (`def`, `if`, `class`, ...), not a top-level binding.
    indented: bool,
    text: String,
}

fn logical_lines(source: &str) -> Vec<LogicalLine> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let source = source.replace("\r\n", "\n").replace('\r', "\n");
    let chars: Vec<char> = source.chars().collect();
    let mut lines = Vec::new();
    let mut text = String::new();
    let mut indented = false;
    let mut at_start = true;
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if at_start {
            match c {
                ' ' | '\t' | '\x0c' => {
                    indented = true;
                    i += 1;
                    continue;
                }
                '\n' => {
                    // A blank line says nothing about the next line's indentation.
                    indented = false;
                    i += 1;
                    continue;
                }
                _ => at_start = false,
            }
        }
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '\'' | '"' => {
                i = skip_string(&chars, i);
                text.push_str("\"\"");
                continue;
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                text.push(' ');
                i += 2;
                continue;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '\n' if depth == 0 => {
                if !text.trim().is_empty() {
                    lines.push(LogicalLine {
                        indented,
                        text: std::mem::take(&mut text),
                    });
                }
                text.clear();
                indented = false;
                at_start = true;
                i += 1;
                continue;
            }
            '\n' => {
                text.push(' ');
                i += 1;
                continue;
            }
            _ => {}
        }
        text.push(c);
        i += 1;
    }
    if !text.trim().is_empty() {
        lines.push(LogicalLine { indented, text });
    }
    lines
}

/// Returns the index just past the string literal whose opening quote is at `start`. Prefixes
/// (`r`, `b`, `f`, ...) stay in the text as harmless letters; a backslash always keeps the next
/// character inside the string, raw strings included. An unterminated single-quoted string ends at
/// the newline, so one syntax error does not swallow the rest of the file.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let triple = chars.get(start + 1) == Some(&quote) && chars.get(start + 2) == Some(&quote);
    let mut i = start + if triple { 3 } else { 1 };
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote && !triple => return i + 1,
            c if c == quote
                && chars.get(i + 1) == Some(&quote)
                && chars.get(i + 2) == Some(&quote) =>
            {
                return i + 3;
            }
            '\n' if !triple => return i,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Splits at `separator` where no bracket is open (strings are already reduced to `""`).
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            c if c == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// An assignment's targets and value: `a = b = value` gives `(["a", "b"], "value")`. `None` for a
/// statement without an assignment `=` outside brackets (`==`, `+=`, `:=`, keyword arguments).
fn assignment(statement: &str) -> Option<(Vec<&str>, &str)> {
    let mut depth = 0usize;
    let mut cuts = Vec::new();
    let mut before = None;
    let mut chars = statement.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '=' if depth == 0 => {
                let after = chars.peek().map(|&(_, c)| c);
                let operator = before.is_some_and(|b: char| "=<>!:+-*/%&|^@~".contains(b));
                if !operator && after != Some('=') {
                    cuts.push(i);
                }
            }
            _ => {}
        }
        before = Some(c);
    }
    let last = *cuts.last()?;
    let mut targets = Vec::new();
    let mut start = 0;
    for &cut in &cuts {
        targets.push(statement[start..cut].trim());
        start = cut + 1;
    }
    Some((targets, statement[last + 1..].trim()))
}

/// The names a top-level statement binds that could hold an app: assignment targets (plain,
/// chained, unpacked, annotated with a value) and `from MODULE import NAME [as ALIAS]`. Not
/// `import MODULE [as NAME]`: that binds a module, which fastapi-cli never takes for the app.
fn bound_names(statement: &str, each: &mut dyn FnMut(&str)) {
    let statement = statement.trim();
    if let Some(rest) = statement.strip_prefix("from")
        && rest.starts_with(|c: char| c.is_whitespace() || c == '.')
    {
        return from_import_names(rest, each);
    }
    let Some((targets, _)) = assignment(statement) else {
        return;
    };
    if let [target] = targets.as_slice()
        && let Some(name) = annotated_name(target)
    {
        return each(name);
    }
    for target in targets {
        unpacked_names(target, each);
    }
}

/// `from MODULE import a, b as c` -> `a`, `c`; `import *` binds nothing we can name.
fn from_import_names(after_from: &str, each: &mut dyn FnMut(&str)) {
    let cleaned = after_from.replace(['(', ')'], " ");
    let Some((_, names)) = cleaned.split_once(" import ") else {
        return;
    };
    for item in names.split(',') {
        let mut words = item.split_whitespace();
        let name = match (words.next(), words.next(), words.next(), words.next()) {
            (Some(name), None, _, _) => name,
            (Some(_), Some("as"), Some(alias), None) => alias,
            _ => continue,
        };
        if is_identifier(name) {
            each(name);
        }
    }
}

/// `NAME: TYPE` (the target of an annotated assignment) -> `NAME`.
fn annotated_name(target: &str) -> Option<&str> {
    let parts = split_top_level(target, ':');
    let [name, _, ..] = parts.as_slice() else {
        return None;
    };
    let name = name.trim();
    is_identifier(name).then_some(name)
}

/// `a`, `a, b`, `(a, *b)`, `[a, b]` -> the plain names; `x.y` and `x[0]` bind no name.
fn unpacked_names(target: &str, each: &mut dyn FnMut(&str)) {
    let target = target.trim();
    let inner = target
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .or_else(|| target.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
        .unwrap_or(target);
    for name in inner.split(',') {
        let name = name.trim().trim_start_matches('*').trim();
        if is_identifier(name) {
            each(name);
        }
    }
}

/// `NAME = FastAPI(...)`, `NAME: T = fastapi.FastAPI(...)` -> `NAME` (the first name of a chain).
fn fastapi_instance(statement: &str) -> Option<String> {
    let (targets, value) = assignment(statement.trim())?;
    let call = value
        .strip_prefix("fastapi.FastAPI")
        .or_else(|| value.strip_prefix("FastAPI"))?;
    if !call.trim_start().starts_with('(') {
        return None;
    }
    let first = targets.first()?;
    let name = annotated_name(first).unwrap_or(first.trim());
    is_identifier(name).then(|| name.to_owned())
}

fn is_identifier(word: &str) -> bool {
    const KEYWORDS: [&str; 35] = [
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ];
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && !KEYWORDS.contains(&word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "from fastapi import FastAPI\n\napp = FastAPI()\n";

    /// A temporary directory with `files` (path, contents) written under it.
    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), files);
        dir
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, contents) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs::write(&path, contents).expect("write");
        }
    }

    fn real(path: &Path) -> PathBuf {
        fs::canonicalize(path).expect("canonicalize")
    }

    /// Discovers in `dir`; returns `module:variable`, the sys path and the file found (relative).
    fn found(dir: &Path) -> (String, PathBuf, PathBuf) {
        let app = discover(dir, None).expect("discovered");
        let file = app.file.strip_prefix(dir).expect("under dir").to_path_buf();
        (app.import_string(), app.sys_path, file)
    }

    #[test]
    fn each_candidate_alone_without_packages() {
        for (candidate, expected, sys_subdir) in [
            ("main.py", "main:app", ""),
            ("app.py", "app:app", ""),
            ("api.py", "api:app", ""),
            ("app/main.py", "main:app", "app"),
            ("app/app.py", "app:app", "app"),
            ("app/api.py", "api:app", "app"),
        ] {
            let dir = tree(&[(candidate, APP)]);
            let (import, sys_path, file) = found(dir.path());
            assert_eq!(import, expected, "{candidate}");
            assert_eq!(sys_path, real(&dir.path().join(sys_subdir)), "{candidate}");
            assert_eq!(file, Path::new(candidate));
        }
    }

    #[test]
    fn app_subdirectory_candidates_with_init_are_a_package() {
        for (candidate, expected) in [
            ("app/main.py", "app.main:app"),
            ("app/app.py", "app.app:app"),
            ("app/api.py", "app.api:app"),
        ] {
            let dir = tree(&[(candidate, APP), ("app/__init__.py", "")]);
            let (import, sys_path, _) = found(dir.path());
            assert_eq!(import, expected, "{candidate}");
            assert_eq!(sys_path, real(dir.path()), "{candidate}");
        }
    }

    #[test]
    fn precedence_follows_fastapi_run() {
        let all: Vec<(&str, &str)> = CANDIDATES.iter().map(|c| (*c, APP)).collect();
        for (skip, expected) in [
            (0, "main.py"),
            (1, "app.py"),
            (2, "api.py"),
            (3, "app/main.py"),
            (4, "app/app.py"),
            (5, "app/api.py"),
        ] {
            // Every candidate from `skip` on exists: the first of them wins.
            let dir = tree(&all[skip..]);
            let (_, _, file) = found(dir.path());
            assert_eq!(file, Path::new(expected));
        }
    }

    #[test]
    fn a_directory_named_like_a_candidate_is_skipped() {
        let dir = tree(&[("main.py/x", ""), ("api.py", APP)]);
        assert_eq!(found(dir.path()).0, "api:app");
    }

    #[test]
    fn walk_up_stops_at_the_first_directory_without_init() {
        // APP_DIR holds an __init__.py but app/ does not: the chain is broken at app/.
        let dir = tree(&[("app/main.py", APP), ("__init__.py", "")]);
        let (import, sys_path, _) = found(dir.path());
        assert_eq!(import, "main:app");
        assert_eq!(sys_path, real(&dir.path().join("app")));
    }

    #[test]
    fn packages_above_the_app_dir_join_the_module() {
        let root = tree(&[
            ("outer/__init__.py", ""),
            ("outer/srv/__init__.py", ""),
            ("outer/srv/app/__init__.py", ""),
            ("outer/srv/app/main.py", APP),
        ]);
        let app_dir = root.path().join("outer/srv");
        let (import, sys_path, _) = found(&app_dir);
        assert_eq!(import, "outer.srv.app.main:app");
        assert_eq!(sys_path, real(root.path()));

        let (import, sys_path, _) = found(&root.path().join("outer/srv/app"));
        assert_eq!(
            import, "outer.srv.app.main:app",
            "APP_DIR inside the package"
        );
        assert_eq!(sys_path, real(root.path()));
    }

    #[test]
    fn symlinks_are_resolved_like_fastapi_cli() {
        let root = tree(&[("src/server.py", APP), ("site/.keep", "")]);
        let app_dir = root.path().join("site");
        std::os::unix::fs::symlink(root.path().join("src/server.py"), app_dir.join("main.py"))
            .expect("symlink");
        let app = discover(&app_dir, None).expect("discovered");
        assert_eq!(app.import_string(), "server:app");
        assert_eq!(app.sys_path, real(&root.path().join("src")));
        assert_eq!(app.file, app_dir.join("main.py"), "file is the path found");
    }

    #[test]
    fn a_symlink_to_an_init_file_is_its_package() {
        let root = tree(&[("pkg/__init__.py", APP), ("site/.keep", "")]);
        let app_dir = root.path().join("site");
        std::os::unix::fs::symlink(root.path().join("pkg/__init__.py"), app_dir.join("main.py"))
            .expect("symlink");
        let app = discover(&app_dir, None).expect("discovered");
        assert_eq!(app.import_string(), "pkg:app");
        assert_eq!(app.sys_path, real(root.path()));
    }

    #[test]
    fn a_dangling_or_looping_symlink_is_not_a_file() {
        let dir = tree(&[("app.py", APP)]);
        std::os::unix::fs::symlink("nowhere.py", dir.path().join("main.py")).expect("symlink");
        assert_eq!(found(dir.path()).2, Path::new("app.py"));
        let dir = tree(&[("app.py", APP)]);
        std::os::unix::fs::symlink("main.py", dir.path().join("main.py")).expect("symlink");
        assert_eq!(found(dir.path()).2, Path::new("app.py"));
    }

    #[test]
    fn not_found_names_all_six_paths_and_the_fix() {
        let dir = tree(&[("other.py", APP)]);
        let error = discover(dir.path(), None).expect_err("nothing to find");
        let DiscoveryError::NotFound { app_dir, tried } = &error else {
            panic!("expected NotFound, got {error:?}");
        };
        assert_eq!(app_dir, dir.path());
        let expected: Vec<PathBuf> = CANDIDATES.iter().map(|c| dir.path().join(c)).collect();
        assert_eq!(tried, &expected);
        let message = error.to_string();
        for path in &expected {
            assert!(message.contains(&path.display().to_string()), "{message}");
        }
        assert!(
            message.contains("set APP_MODULE=module:variable"),
            "{message}"
        );
        assert!(
            message.contains("MODULE_NAME and VARIABLE_NAME"),
            "{message}"
        );
    }

    #[test]
    fn missing_app_dir_is_not_found() {
        let dir = tree(&[]);
        let error = discover(&dir.path().join("absent"), None).expect_err("no dir");
        assert!(
            matches!(error, DiscoveryError::NotFound { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn no_variable_names_the_file_and_the_fix() {
        let dir = tree(&[("main.py", "application = make()\n")]);
        let error = discover(dir.path(), None).expect_err("no variable");
        let DiscoveryError::NoVariable { file } = &error else {
            panic!("expected NoVariable, got {error:?}");
        };
        assert_eq!(file, &dir.path().join("main.py"));
        let message = error.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("VARIABLE_NAME"), "{message}");
        assert!(message.contains("APP_MODULE"), "{message}");
    }

    #[test]
    fn a_variable_override_is_used_without_reading_the_file() {
        let dir = tree(&[("main.py", "application = make()\n")]);
        let app = discover(dir.path(), Some("application")).expect("override");
        assert_eq!(app.import_string(), "main:application");
        let app = discover(dir.path(), Some("")).map_err(|e| e.to_string());
        assert!(app.is_err(), "empty override means none: {app:?}");
    }

    #[test]
    fn an_unreadable_file_is_reported_with_its_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&[("main.py", APP)]);
        let file = dir.path().join("main.py");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).expect("chmod");
        if fs::read(&file).is_ok() {
            eprintln!("skipped: running as root, mode 000 does not stop reads");
            return;
        }
        let error = discover(dir.path(), None).expect_err("unreadable");
        assert!(
            matches!(error, DiscoveryError::Unreadable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&file.display().to_string()));
    }

    #[test]
    fn unreadable_display_says_what_where_and_what_to_do() {
        let error = DiscoveryError::Unreadable {
            path: PathBuf::from("/app/main.py"),
            error: io::Error::from_raw_os_error(libc::EACCES),
        };
        let message = error.to_string();
        assert!(message.starts_with("cannot read /app/main.py"), "{message}");
        assert!(message.contains("ermission denied"), "{message}");
        assert!(message.contains("APP_MODULE"), "{message}");
        assert!(std::error::Error::source(&error).is_some());
    }

    fn var(source: &str) -> Option<String> {
        app_variable(source)
    }

    #[test]
    fn app_then_api_then_the_first_fastapi_instance() {
        assert_eq!(var(APP).as_deref(), Some("app"));
        assert_eq!(var("api = FastAPI()\n").as_deref(), Some("api"));
        assert_eq!(
            var("api = FastAPI()\napp = FastAPI()\n").as_deref(),
            Some("app"),
            "app wins wherever it is"
        );
        assert_eq!(
            var("service = FastAPI()\napi = build()\n").as_deref(),
            Some("api"),
            "api is taken even when not visibly a FastAPI() call"
        );
        assert_eq!(
            var("import fastapi\nserver = fastapi.FastAPI(title='x')\nother = FastAPI()\n")
                .as_deref(),
            Some("server")
        );
        assert_eq!(var("x = 1\nweb = FastAPI ()\n").as_deref(), Some("web"));
    }

    #[test]
    fn annotated_assignments_count_bare_annotations_do_not() {
        assert_eq!(var("app: FastAPI = FastAPI()\n").as_deref(), Some("app"));
        assert_eq!(
            var("server: fastapi.FastAPI = fastapi.FastAPI()\n").as_deref(),
            Some("server")
        );
        assert_eq!(
            var("app: FastAPI\nweb = FastAPI()\n").as_deref(),
            Some("web"),
            "a bare annotation binds nothing"
        );
        assert_eq!(
            var("app: 'dict[str, int]' = make()\n").as_deref(),
            Some("app")
        );
    }

    #[test]
    fn imported_names_count_but_imported_modules_do_not() {
        assert_eq!(var("from .factory import app\n").as_deref(), Some("app"));
        assert_eq!(
            var("from factory import web as app\n").as_deref(),
            Some("app")
        );
        assert_eq!(
            var("from factory import (\n    web,\n    service as api,\n)\n").as_deref(),
            Some("api")
        );
        assert_eq!(var("from . import app\n").as_deref(), Some("app"));
        assert_eq!(
            var("from factory import app as web\n"),
            None,
            "renamed away from app"
        );
        assert_eq!(
            var("import json as app\nimport app\nserver = FastAPI()\n").as_deref(),
            Some("server"),
            "a module is never the app"
        );
        assert_eq!(var("from factory import *\n"), None);
    }

    #[test]
    fn other_bindings() {
        assert_eq!(var("app = api = FastAPI()\n").as_deref(), Some("app"));
        assert_eq!(var("x = api = FastAPI()\n").as_deref(), Some("api"));
        assert_eq!(
            var("first = second = FastAPI()\n").as_deref(),
            Some("first")
        );
        assert_eq!(var("app, other = make()\n").as_deref(), Some("app"));
        assert_eq!(var("(x, api) = make()\n").as_deref(), Some("api"));
        assert_eq!(var("x = 1; app = make()\n").as_deref(), Some("app"));
        assert_eq!(
            var("web = FastAPI(\n    title='x',\n    debug=True,\n)\n").as_deref(),
            Some("web")
        );
        assert_eq!(var("web = \\\n    FastAPI()\n").as_deref(), Some("web"));
    }

    #[test]
    fn things_that_are_not_top_level_bindings() {
        for decoy in [
            "app.title = 'x'\n",
            "app[0] = 1\n",
            "app += 1\n",
            "app == 1\n",
            "print(app := FastAPI())\n",
            "make(app=FastAPI())\n",
            "def make(app=None):\n    return app\n",
            "class Settings:\n    app = FastAPI()\n",
            "if True: app = FastAPI()\n",
            "else: app = 1\n",
            "def app():\n    pass\n",
            "x = FastAPIRouter()\n",
            "x = MyFastAPI()\n",
            "x = FastAPI\n",
            "x = FastAPI.something()\n",
        ] {
            assert_eq!(var(decoy), None, "{decoy:?}");
        }
    }

    #[test]
    fn indented_commented_and_string_decoys_are_ignored() {
        let source = r#""""Service module.

app = FastAPI()
api = FastAPI()
"""
# app = FastAPI()
#api = FastAPI()
x = '''
app = FastAPI()
'''
y = "app = FastAPI() \" api = FastAPI()"
z = 'app = FastAPI()'  # api = FastAPI()
raw = r"\" app = FastAPI()"
if __name__ == "__main__":
    app = FastAPI()
def build():
    api = FastAPI()
    return api

real = FastAPI()
"#;
        assert_eq!(var(source).as_deref(), Some("real"));
    }

    #[test]
    fn a_string_mentioning_triple_quotes_does_not_open_one() {
        let source = "note = \"'''\"\napp = FastAPI()\nclose = \"'''\"\n";
        assert_eq!(var(source).as_deref(), Some("app"));
    }

    #[test]
    fn indentation_is_that_of_the_logical_line() {
        // The closing bracket's line is indented, but belongs to a top-level statement.
        assert_eq!(
            var("web = make(\n    1,\n    )\n\n    \napi = 1\n").as_deref(),
            Some("api")
        );
        // A blank indented line does not make the next line indented.
        assert_eq!(var("x = 1\n    \napi = 1\n").as_deref(), Some("api"));
    }

    #[test]
    fn crlf_bom_and_unterminated_strings() {
        assert_eq!(
            var("\u{feff}\"\"\"doc\r\n\"\"\"\r\napp = FastAPI()\r\n").as_deref(),
            Some("app")
        );
        assert_eq!(var("x = 'oops\napp = 1\n").as_deref(), Some("app"));
        assert_eq!(var("x = '''never closed\napp = 1\n"), None);
    }

    #[test]
    fn nothing_found() {
        assert_eq!(var(""), None);
        assert_eq!(var("from fastapi import FastAPI\n"), None);
        assert_eq!(var("application = create_app()\n"), None);
    }
}
