//! The crate's layers, checked from its sources: handlers (`src/api/`) over services
//! (`src/service/`) over repositories (`src/repo/`). No layer imports one above it,
//! services and handlers hold no SQL, repositories and services no HTTP; and the
//! modules not yet split into layers are named here, so the list can only shrink.

use std::path::{Path, PathBuf};

fn sources(folder: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder);
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    files.sort();
    files
}

/// The code of a file, its comments and doc comments left out.
fn code(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the code holds an SQL statement.
fn has_sql(code: &str) -> bool {
    [
        "SELECT ",
        "INSERT ",
        "UPDATE ",
        "DELETE FROM",
        "CREATE TABLE",
    ]
    .iter()
    .any(|keyword| code.contains(keyword))
}

fn assert_free_of(folder: &str, forbidden: &[&str], why: &str) {
    for (path, text) in sources(folder) {
        let code = code(&text);
        for word in forbidden {
            assert!(
                !code.contains(word),
                "{} uses {word:?}: {why}",
                path.display()
            );
        }
    }
}

#[test]
fn repositories_import_no_layer_above_and_know_no_http() {
    assert_free_of(
        "repo",
        &["crate::service", "crate::api", "axum", "crate::app"],
        "a repository owns SQL and nothing else",
    );
}

#[test]
fn services_hold_no_sql_and_know_no_http() {
    assert_free_of(
        "service",
        &["crate::api", "axum", "crate::app", "StatusCode"],
        "a service holds the rules, with no HTTP types",
    );
    for (path, text) in sources("service") {
        assert!(!has_sql(&code(&text)), "{} holds SQL", path.display());
    }
}

#[test]
fn handlers_hold_no_sql_and_call_services_only() {
    assert_free_of(
        "api",
        &["rusqlite", ".db.", "db::"],
        "a handler turns HTTP into a service call",
    );
    for (path, text) in sources("api") {
        assert!(!has_sql(&code(&text)), "{} holds SQL", path.display());
    }
}

/// The modules still mixing handlers, rules and SQL in one file. Moving one into the
/// layers takes it off this list; a new module with SQL outside `src/repo/` fails.
const NOT_YET_LAYERED: &[&str] = &["check.rs", "db.rs", "gifs.rs", "people.rs", "photos.rs"];

#[test]
fn sql_outside_the_repositories_is_only_in_modules_not_yet_layered() {
    let mut with_sql: Vec<String> = sources("")
        .into_iter()
        .filter(|(_, text)| has_sql(&code(text)))
        .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    with_sql.sort();
    assert_eq!(
        with_sql, NOT_YET_LAYERED,
        "modules with SQL outside src/repo/"
    );
}
