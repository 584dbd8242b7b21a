//! `[tool.fastapi] entrypoint = "pkg.module:app"` in `VARDR_APP_DIR/pyproject.toml`, read as
//! fastapi-cli (0.0.15 and later) reads it: from `pyproject.toml` in its working directory, the
//! module imported relative to that directory. It sits between `APP_MODULE` and discovery.
//!
//! One key of one file is wanted, so this is a careful reader of TOML's structure, not a TOML
//! library (the `toml` crate with its parser would cost PID 1's binary far more than the rest of
//! this change together). It follows what decides where a key lives: table headers (`[a.b]`,
//! `[[a.b]]`), dotted and quoted keys, inline tables (`tool = { fastapi = { ... } }`), and it
//! steps over everything that could hide a `[` or `=` at the start of a line: strings of all
//! four kinds (multi-line ones too), arrays across lines, comments. Values other than the wanted
//! one are skipped, not checked. `tests/app_pyproject.rs` checks it against Python's `tomllib`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The entrypoint found, and the file it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entrypoint {
    pub module: String,
    pub variable: String,
    pub file: PathBuf,
}

/// The `[tool.fastapi] entrypoint` of `dir/pyproject.toml`: `None` when there is no such file or
/// no such key; `Err` says what is wrong and what to do.
pub fn entrypoint(dir: &Path) -> Result<Option<Entrypoint>, String> {
    let file = dir.join("pyproject.toml");
    let fail = |why: &dyn std::fmt::Display| {
        format!(
            "{}: {why}; fix it, or set APP_MODULE=module:variable, which wins over it",
            file.display()
        )
    };
    let text = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(fail(&e)),
    };
    let Some(value) = find(&text).map_err(|why| fail(&why))? else {
        return Ok(None);
    };
    match crate::config::split_app_module(&value) {
        Some((module, variable)) => Ok(Some(Entrypoint {
            module,
            variable,
            file,
        })),
        None => Err(fail(&format_args!(
            "[tool.fastapi] entrypoint = {value:?} is not module:variable, such as \"main:app\""
        ))),
    }
}

const WANTED: [&str; 3] = ["tool", "fastapi", "entrypoint"];

/// The string value of `tool.fastapi.entrypoint` in a TOML document, or what made it unreadable.
pub fn find(text: &[u8]) -> Result<Option<String>, &'static str> {
    Reader { text, at: 0 }.document()
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

type Found = Result<Option<String>, &'static str>;

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn starts_with(&self, prefix: &[u8]) -> bool {
        self.text[self.at..].starts_with(prefix)
    }

    /// Spaces and tabs; with `lines`, also newlines and comments.
    fn skip_blank(&mut self, lines: bool) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => self.at += 1,
                b'\r' | b'\n' if lines => self.at += 1,
                b'#' if lines => self.skip_line(),
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            self.at += 1;
            if b == b'\n' {
                return;
            }
        }
    }

    /// The end of a line, after an optional comment.
    fn end_of_line(&mut self) -> Result<(), &'static str> {
        self.skip_blank(false);
        match self.peek() {
            None | Some(b'\n') | Some(b'\r') | Some(b'#') => {
                self.skip_line();
                Ok(())
            }
            Some(_) => Err("unexpected text after a value or table header"),
        }
    }

    fn document(&mut self) -> Found {
        let mut table: Vec<String> = Vec::new();
        loop {
            self.skip_blank(true);
            match self.peek() {
                None => return Ok(None),
                Some(b'[') => {
                    let array = self.starts_with(b"[[");
                    self.at += if array { 2 } else { 1 };
                    table = self.key()?;
                    let close: &[u8] = if array { b"]]" } else { b"]" };
                    if !self.starts_with(close) {
                        return Err("a table header without its closing bracket");
                    }
                    self.at += close.len();
                    if array {
                        // An element of an array of tables: never where the key lives.
                        table.push("[]".to_owned());
                    }
                    self.end_of_line()?;
                }
                Some(_) => {
                    if let Some(found) = self.pair(&table)? {
                        return Ok(Some(found));
                    }
                    self.end_of_line()?;
                }
            }
        }
    }

    /// `key = value` under `prefix`; the value if the key is the wanted one.
    fn pair(&mut self, prefix: &[String]) -> Found {
        let mut path = prefix.to_vec();
        path.extend(self.key()?);
        if self.peek() != Some(b'=') {
            return Err("a key without `=`");
        }
        self.at += 1;
        self.skip_blank(false);
        self.value(&path)
    }

    /// A dotted key: bare or quoted parts joined by `.`, spaces allowed around the dots.
    fn key(&mut self) -> Result<Vec<String>, &'static str> {
        let mut parts = Vec::new();
        loop {
            self.skip_blank(false);
            let part = match self.peek() {
                Some(b'"') | Some(b'\'') => self.string()?,
                _ => {
                    let start = self.at;
                    while self
                        .peek()
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        self.at += 1;
                    }
                    if self.at == start {
                        return Err("a key expected");
                    }
                    String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
                }
            };
            parts.push(part);
            self.skip_blank(false);
            if self.peek() != Some(b'.') {
                return Ok(parts);
            }
            self.at += 1;
        }
    }

    /// A value at `path`: the wanted string is returned; anything else is stepped over.
    fn value(&mut self, path: &[String]) -> Found {
        let wanted = path.iter().map(String::as_str).eq(WANTED);
        match self.peek() {
            Some(b'"') | Some(b'\'') => {
                let value = self.string()?;
                Ok(wanted.then_some(value))
            }
            _ if wanted => Err("[tool.fastapi] entrypoint is not a string"),
            Some(b'{') => {
                self.at += 1;
                self.skip_blank(false);
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(None);
                }
                loop {
                    if let Some(found) = self.pair(path)? {
                        return Ok(Some(found));
                    }
                    self.skip_blank(false);
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(None);
                        }
                        _ => return Err("an inline table without its closing brace"),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let element = [String::from("[]")];
                loop {
                    self.skip_blank(true);
                    match self.peek() {
                        Some(b']') => {
                            self.at += 1;
                            return Ok(None);
                        }
                        Some(b',') => self.at += 1,
                        None => return Err("an array without its closing bracket"),
                        Some(_) => {
                            self.value(&element)?;
                        }
                    }
                }
            }
            _ => {
                // A number, date or boolean: up to what ends a value.
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|b| !b"\r\n#,]}".contains(&b) && b != b' ' && b != b'\t')
                {
                    self.at += 1;
                }
                if self.at == start {
                    return Err("a value expected");
                }
                Ok(None)
            }
        }
    }

    /// A string of any of the four kinds, backslash escapes left as written.
    fn string(&mut self) -> Result<String, &'static str> {
        let quote = self.text[self.at];
        let multi = if quote == b'"' {
            self.starts_with(b"\"\"\"")
        } else {
            self.starts_with(b"'''")
        };
        let width = if multi { 3 } else { 1 };
        self.at += width;
        if multi && self.starts_with(b"\n") {
            self.at += 1;
        } else if multi && self.starts_with(b"\r\n") {
            self.at += 2;
        }
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err("a string without its closing quote");
            };
            if b == quote && (!multi || self.starts_with(&[quote; 3])) {
                // A multi-line string may end with one or two quotes before the closing three.
                let mut run = 0;
                while self.text.get(self.at + run) == Some(&quote) {
                    run += 1;
                }
                if multi {
                    out.extend(std::iter::repeat_n(quote, run.saturating_sub(3).min(2)));
                    self.at += run.min(5);
                } else {
                    self.at += 1;
                }
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            if (b == b'\n') && !multi {
                return Err("a string without its closing quote");
            }
            self.at += 1;
            out.push(b);
            if b == b'\\' && quote == b'"' {
                // Escapes are kept, not decoded: only their end matters here (`\"` does not
                // close the string), and no module:variable has one, so a value that holds one
                // is refused as not module:variable.
                if let Some(next) = self.peek() {
                    out.push(next);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Option<String> {
        find(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn the_key_in_each_place_toml_allows() {
        let value = Some("pkg.main:app".to_owned());
        for text in [
            "[tool.fastapi]\nentrypoint = \"pkg.main:app\"\n",
            "[tool.fastapi]\r\nentrypoint='pkg.main:app' # comment\r\n",
            "[ tool . \"fastapi\" ]\n\"entrypoint\" = \"pkg.main:app\"",
            "tool.fastapi.entrypoint = \"pkg.main:app\"",
            "[tool]\nfastapi.entrypoint = \"\"\"pkg.main:app\"\"\"\n",
            "[tool]\nfastapi = { entrypoint = \"pkg.main:app\" }\n",
            "tool = { fastapi = { other = 1, entrypoint = 'pkg.main:app' } }\n",
            "[project]\nname = \"x\"\n[tool.fastapi]\nentrypoint = \"pkg.main:app\"\n[tool.ruff]\n",
        ] {
            assert_eq!(found(text), value, "{text}");
        }
    }

    #[test]
    fn what_only_looks_like_the_key_is_not_it() {
        for text in [
            "",
            "[tool.fastapi]\n",
            "[tool.fastapi.extra]\nentrypoint = \"a:b\"\n",
            "[tool.fastapi-cli]\nentrypoint = \"a:b\"\n",
            "[[tool.fastapi]]\nentrypoint = \"a:b\"\n",
            "[project]\nentrypoint = \"a:b\"\n",
            "[tool.other]\ndoc = \"\"\"\n[tool.fastapi]\nentrypoint = \"a:b\"\n\"\"\"\n",
            "[tool.other]\nx = [\n  \"]\",\n  [1, 2],\n]\nentrypoint = \"a:b\"\n",
            "[tool.other]\nd = '''\n[tool.fastapi]\n'''\nentrypoint = 'a:b'\n",
            "# [tool.fastapi]\n# entrypoint = \"a:b\"\n",
        ] {
            assert_eq!(found(text), None, "{text}");
        }
    }

    #[test]
    fn a_key_that_is_not_a_string_or_broken_toml_is_an_error() {
        for text in [
            "[tool.fastapi]\nentrypoint = 3\n",
            "[tool.fastapi]\nentrypoint = [\"a:b\"]\n",
            "[tool.fastapi\nentrypoint = \"a:b\"\n",
            "[tool.fastapi]\nentrypoint = \"a:b\n",
            "[tool.fastapi]\nentrypoint \"a:b\"\n",
        ] {
            assert!(find(text.as_bytes()).is_err(), "{text}");
        }
        // An escape ends no string, and is kept as written.
        let text = "[tool.other]\nx = \"a\\\"b\"\n[tool.fastapi]\nentrypoint = \"m:\\u0061\"\n";
        assert_eq!(found(text).as_deref(), Some("m:\\u0061"));
    }

    #[test]
    fn a_file_in_a_directory_and_its_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(entrypoint(dir.path()), Ok(None));
        let file = dir.path().join("pyproject.toml");
        std::fs::write(&file, "[tool.fastapi]\nentrypoint = \"app.main:api\"\n").expect("write");
        let entry = entrypoint(dir.path()).expect("read").expect("found");
        assert_eq!(
            (entry.module.as_str(), entry.variable.as_str()),
            ("app.main", "api")
        );
        assert_eq!(entry.file, file);
        std::fs::write(&file, "[tool.fastapi]\nentrypoint = \"main\"\n").expect("write");
        let error = entrypoint(dir.path()).expect_err("not module:variable");
        assert!(
            error.contains("APP_MODULE") && error.contains("pyproject.toml"),
            "{error}"
        );
        std::fs::write(&file, "[tool.fastapi]\nentrypoint = 'x\n").expect("write");
        let error = entrypoint(dir.path()).expect_err("broken");
        assert!(error.contains("without its closing quote"), "{error}");
    }
}
