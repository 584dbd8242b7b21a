//! The public surface has one source, `config::vars::VARIABLES`: README.md's tables,
//! docs/contract.md's table and the real binary's `--help` name exactly its variables, and where
//! README or the contract state a default as a value (in backquotes), it is the registry's.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use vardr_init::config::vars::{Unset, VARIABLES};

/// A variable as one document's table row states it.
#[derive(Debug)]
struct Row {
    name: String,
    /// The default column's cell, when the table has one.
    default: Option<String>,
}

/// The rows of every table whose first header cell is one of `headers`: each `NAME` in
/// backquotes in the first cell is a documented variable (a cell may name several).
fn table_rows(text: &str, headers: &[&str]) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(header) = cells(line) else { continue };
        if !headers.contains(&header[0].as_str()) {
            continue;
        }
        let default_column = header.iter().position(|h| h == "default");
        lines.next(); // |---|---|
        while let Some(row) = lines.peek().and_then(|l| cells(l)) {
            lines.next();
            for name in backquoted(&row[0]).filter(|w| is_variable_name(w)) {
                rows.push(Row {
                    name: name.to_owned(),
                    default: default_column.map(|i| row.get(i).cloned().unwrap_or_default()),
                });
            }
        }
    }
    rows
}

fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(|c| c.trim().to_owned()).collect())
}

fn backquoted(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

fn is_variable_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn registry() -> BTreeSet<String> {
    VARIABLES.iter().map(|v| v.name.to_owned()).collect()
}

/// Names both ways, then each stated default against the registry's.
fn assert_documents_the_registry(document: &str, rows: &[Row]) {
    let documented: BTreeSet<String> = rows.iter().map(|r| r.name.clone()).collect();
    let registry = registry();
    let undocumented: Vec<_> = registry.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&registry).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "{document} and config::vars::VARIABLES differ:\n  declared, not in {document}: \
         {undocumented:?}\n  in {document}, not declared: {unknown:?}"
    );
    let mut values = 0;
    for row in rows {
        let Some(cell) = &row.default else { continue };
        let Some(var) = VARIABLES.iter().find(|v| v.name == row.name) else {
            continue;
        };
        let stated = backquoted(cell).next();
        match (var.default, stated) {
            (Unset::Value(value), Some(stated)) => {
                assert_eq!(stated, value, "{document}: {}'s default", row.name);
                values += 1;
            }
            (Unset::Value(value), None) => panic!(
                "{document}: {}'s default is `{value}` in the registry, but {cell:?} there",
                row.name
            ),
            (Unset::Words(words), Some(stated)) => panic!(
                "{document}: {}'s default is `{stated}` there, but no value ({words:?}) in \
                 the registry",
                row.name
            ),
            (Unset::Words(_), None) => {}
        }
    }
    assert!(
        values > 15,
        "{document}: too few defaults compared ({values})"
    );
}

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn readme_documents_exactly_the_registry() {
    let rows = table_rows(&read("README.md"), &["variable", "tiangolo's variable"]);
    assert_documents_the_registry("README.md", &rows);
}

#[test]
fn the_contract_documents_exactly_the_registry() {
    let rows = table_rows(&read("docs/contract.md"), &["variable"]);
    assert_documents_the_registry("docs/contract.md", &rows);
}

#[test]
fn help_names_exactly_the_registry() {
    let output = Command::new(common::bin())
        .arg("--help")
        .output()
        .expect("run vardr-init --help");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).expect("UTF-8 help");
    let (_, environment) = help
        .split_once("\nEnvironment")
        .unwrap_or_else(|| panic!("--help has no Environment part:\n{help}"));
    let named: BTreeSet<String> = environment
        .lines()
        .filter(|line| line.starts_with("    "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| is_variable_name(word))
        .map(str::to_owned)
        .collect();
    assert_eq!(named, registry(), "--help's environment:\n{environment}");
}
