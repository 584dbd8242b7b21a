//! `[tool.fastapi] entrypoint = "pkg.module:app"` in `VARDR_APP_DIR/pyproject.toml`, read as
//! fastapi-cli (0.0.15 and later) reads it: `tomllib.load` of `pyproject.toml` in its working
//! directory, then `data.get("tool", {}).get("fastapi", {})`, the module imported relative to that
//! directory. It sits between `APP_MODULE` and discovery, and runs in the app discovery worker
//! ([`super::discover::find`]), never in PID 1.
//!
//! The document is parsed by the `toml` crate, which reads TOML 1.1, then held to TOML 1.0, what
//! Python's `tomllib` reads ([`toml_1_0`]): no line break, comment or trailing comma inside an
//! inline table, no `\x` or `\e` escape, no time without seconds, no byte order mark. The `toml`
//! crate refuses nesting deeper than 80 (arrays and inline tables) and dotted keys of 80 parts or
//! more, cleanly; `tomllib` goes deeper (about 330 inline tables, 496 arrays, any number of key
//! parts): no pyproject.toml nests like that, and such a file is refused with exit 2, not read.
//! `tests/app_pyproject.rs` holds the two readers side by side.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use toml::Value;
use toml_parser::decoder::Encoding;
use toml_parser::parser::EventReceiver;
use toml_parser::{ErrorSink, ParseError, Source, Span};

/// The largest pyproject.toml read: real ones are a few KiB (large monorepos' reach 50 KiB).
pub const MAX_BYTES: u64 = 1 << 20;

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
    let bytes = match read(&file) {
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
    let Some(value) = find(&bytes).map_err(|why| fail(&why))? else {
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

/// The file's bytes, at most [`MAX_BYTES`].
fn read(file: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(file)?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        let why = format!(
            "over {} KiB, larger than any real pyproject.toml",
            MAX_BYTES >> 10
        );
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    Ok(bytes)
}

/// The string value of `tool.fastapi.entrypoint` in a TOML document, or what makes the document
/// one that `tomllib` refuses (or the entrypoint one that fastapi-cli refuses: not a string).
pub fn find(bytes: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(bytes, e.valid_up_to());
        format!("line {line}, column {column}: not UTF-8 (TOML is UTF-8)")
    })?;
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |span| span.start);
        let (line, column) = position(bytes, at);
        let message = e.message().trim_end();
        // The toml crate's two bounds, said in the file's terms.
        let why = match message {
            m if m.contains("recurse") => " (arrays and inline tables nested more than 80 deep)",
            "recursion limit" => " (a key of 80 dotted parts or more)",
            _ => "",
        };
        format!("line {line}, column {column}: {message}{why}")
    })?;
    toml_1_0(text)?;
    // A `tool` or `tool.fastapi` that is not a table (`[[tool.fastapi]]`) holds no entrypoint:
    // discovery (fastapi-cli itself fails on those).
    let fastapi = match table.get("tool") {
        Some(Value::Table(tool)) => match tool.get("fastapi") {
            Some(Value::Table(fastapi)) => fastapi,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    match fastapi.get("entrypoint") {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err("[tool.fastapi] entrypoint is not a string".to_owned()),
    }
}

/// 1-based line and column (in characters) of byte `at`.
fn position(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Refuses what TOML 1.1 added and `tomllib` (TOML 1.0) refuses, in a document the `toml` crate
/// has read: a byte order mark, a line break or comment inside an inline table, a comma before its
/// `}`, the escapes `\xHH` and `\e`, a time without seconds, a bare key that is not ASCII.
pub fn toml_1_0(text: &str) -> Result<(), String> {
    let fail = |at: usize, what: &str| {
        let (line, column) = position(text.as_bytes(), at);
        Err(format!(
            "line {line}, column {column}: {what} (TOML 1.1; Python's tomllib reads TOML 1.0)"
        ))
    };
    if text.starts_with('\u{feff}') {
        return fail(0, "a byte order mark");
    }
    let source = Source::new(text);
    let tokens = source.lex().into_vec();
    let mut check = Check {
        text,
        open: Vec::new(),
        found: None,
    };
    let mut errors: Option<ParseError> = None;
    toml_parser::parser::parse_document(&tokens, &mut check, &mut errors as &mut dyn ErrorSink);
    match check.found {
        Some((at, what)) => fail(at, what),
        None => Ok(()),
    }
}

/// What is open around the current event.
enum Open {
    /// An inline table; `comma` when the last thing in it was a `,`.
    Table {
        comma: bool,
    },
    Array,
}

struct Check<'a> {
    text: &'a str,
    open: Vec<Open>,
    /// The first TOML 1.1 construct: where, and what.
    found: Option<(usize, &'static str)>,
}

impl Check<'_> {
    fn refuse(&mut self, span: Span, what: &'static str) {
        self.found.get_or_insert((span.start(), what));
    }

    /// Something other than a `,` in the innermost inline table.
    fn item(&mut self) {
        if let Some(Open::Table { comma }) = self.open.last_mut() {
            *comma = false;
        }
    }

    fn in_table(&self) -> bool {
        matches!(self.open.last(), Some(Open::Table { .. }))
    }

    /// A key or a value: its escapes (basic strings), its seconds (times), its characters (bare
    /// keys).
    fn text(&mut self, span: Span, encoding: Option<Encoding>, key: bool) {
        let raw = self.text.get(span.start()..span.end()).unwrap_or_default();
        match encoding {
            Some(Encoding::BasicString | Encoding::MlBasicString) => {
                let mut bytes = raw.bytes();
                while let Some(b) = bytes.next() {
                    if b == b'\\' {
                        match bytes.next() {
                            Some(b'x') => self.refuse(span, "a \\x escape"),
                            Some(b'e') => self.refuse(span, "a \\e escape"),
                            _ => {}
                        }
                    }
                }
            }
            Some(_) => {}
            None if key => {
                let bare = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
                if !raw.bytes().all(bare) {
                    self.refuse(span, "a bare key that is not ASCII letters, digits, - or _");
                }
            }
            None => {
                // A time is HH:MM:SS; TOML 1.1 lets the seconds go. An offset (+HH:MM) comes
                // after the seconds, so the first colon is the time's.
                if let Some(colon) = raw.find(':')
                    && raw.as_bytes().get(colon + 3) != Some(&b':')
                {
                    self.refuse(span, "a time without seconds");
                }
            }
        }
    }
}

impl EventReceiver for Check<'_> {
    fn inline_table_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.item();
        self.open.push(Open::Table { comma: false });
        true
    }
    fn inline_table_close(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        if let Some(Open::Table { comma: true }) = self.open.last() {
            self.refuse(span, "a comma before the `}` of an inline table");
        }
        self.open.pop();
    }
    fn array_open(&mut self, _span: Span, _error: &mut dyn ErrorSink) -> bool {
        self.item();
        self.open.push(Open::Array);
        true
    }
    fn array_close(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        self.open.pop();
    }
    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, _error: &mut dyn ErrorSink) {
        self.item();
        self.text(span, encoding, true);
    }
    fn scalar(&mut self, span: Span, encoding: Option<Encoding>, _error: &mut dyn ErrorSink) {
        self.item();
        self.text(span, encoding, false);
    }
    fn value_sep(&mut self, _span: Span, _error: &mut dyn ErrorSink) {
        if let Some(Open::Table { comma }) = self.open.last_mut() {
            *comma = true;
        }
    }
    fn comment(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        if self.in_table() {
            self.refuse(span, "a comment inside an inline table");
        }
    }
    fn newline(&mut self, span: Span, _error: &mut dyn ErrorSink) {
        if self.in_table() {
            self.refuse(span, "a line break inside an inline table");
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
            "released = 1979-05-27 07:32:00Z\n[tool.fastapi]\nentrypoint = \"pkg.main:app\"\n",
            "[tool.fastapi]\nentrypoint = \"pkg.\\u006dain:app\"\n",
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
            "[project]\nentrypoint = \"a:b\"\n",
            "[[tool.fastapi]]\nentrypoint = \"a:b\"\n",
            "tool = 1\n",
            "[tool.other]\ndoc = \"\"\"\n[tool.fastapi]\nentrypoint = \"a:b\"\n\"\"\"\n",
            "# [tool.fastapi]\n# entrypoint = \"a:b\"\n",
        ] {
            assert_eq!(found(text), None, "{text}");
        }
    }

    #[test]
    fn what_tomllib_refuses_is_refused() {
        for (text, why) in [
            ("[tool.fastapi]\nentrypoint = 3\n", "not a string"),
            ("[tool.fastapi\nentrypoint = \"a:b\"\n", "line 1"),
            (
                "[tool.fastapi]\nentrypoint = \"a:b\"\nentrypoint = \"c:d\"\n",
                "line 3",
            ),
            ("[tool.fastapi]\nentrypoint = \"a:b\"\0\n", "line 2"),
            ("[tool]\nfastapi = {}\n[tool.fastapi]\n", "line 3"),
            ("a = { b = 1, }\n", "a comma before"),
            (
                "a = { b = 1,\n c = 2 }\n",
                "a line break inside an inline table",
            ),
            ("a = \"\\x41\"\n", "\\x escape"),
            ("a = \"\\e\"\n", "\\e escape"),
            ("a = 07:32\n", "without seconds"),
            ("a = 1979-05-27T07:32Z\n", "without seconds"),
            ("\u{feff}a = 1\n", "byte order mark"),
        ] {
            let error = find(text.as_bytes()).expect_err(text);
            assert!(error.contains(why), "{text:?}: {error}");
        }
        let error = find(b"[tool.fastapi]\nentrypoint = \"caf\xe9:app\"\n").expect_err("latin-1");
        assert!(error.contains("line 2, column 18: not UTF-8"), "{error}");
    }

    #[test]
    fn nesting_is_refused_cleanly_at_any_depth() {
        for depth in [81, 10_000, 60_000] {
            let nested = format!("a = {}1{}\n", "{b = ".repeat(depth), "}".repeat(depth));
            assert!(find(nested.as_bytes()).is_err(), "{depth}");
            let arrays = format!("a = {}{}\n", "[".repeat(depth), "]".repeat(depth));
            assert!(find(arrays.as_bytes()).is_err(), "{depth}");
        }
        let nested = format!("a = {}1{}\n", "{b = ".repeat(40), "}".repeat(40));
        assert_eq!(find(nested.as_bytes()), Ok(None));
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
        std::fs::write(&file, vec![b'#'; MAX_BYTES as usize + 1]).expect("write");
        let error = entrypoint(dir.path()).expect_err("too big");
        assert!(error.contains("over 1024 KiB"), "{error}");
    }
}
