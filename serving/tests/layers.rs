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

/// The production code of a file: its comments and doc comments left out, and its test
/// module (whose fixtures may write rows directly) too.
fn code(text: &str) -> String {
    let production = text.split("#[cfg(test)]").next().unwrap_or(text);
    production
        .lines()
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
        &[
            "crate::service",
            "crate::api",
            "axum",
            "crate::app",
            "crate::jobs",
            "crate::server",
        ],
        "a repository owns SQL and nothing else",
    );
}

#[test]
fn services_hold_no_sql_and_know_no_http() {
    assert_free_of(
        "service",
        &[
            "crate::api",
            "axum",
            "crate::app",
            "StatusCode",
            "crate::jobs",
            "crate::server",
        ],
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
        &["rusqlite", "sql::", ".db.", "db::"],
        "a handler turns HTTP into a service call",
    );
    for (path, text) in sources("api") {
        assert!(!has_sql(&code(&text)), "{} holds SQL", path.display());
    }
}

/// No module outside `src/repo/` holds SQL in its production code (the migrations are
/// `.sql` files the database module applies).
#[test]
fn sql_is_only_in_the_repositories() {
    let with_sql: Vec<String> = sources("")
        .into_iter()
        .filter(|(_, text)| has_sql(&code(text)))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        with_sql.is_empty(),
        "modules with SQL outside src/repo/: {with_sql:?}"
    );
}

/// The crate's top-level modules (a folder counts as one: `api`, `service`, `repo`) and
/// the modules each one's production code names through `crate::`.
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<(String, String)> = Vec::new();
    for (path, text) in sources("") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name != "lib" {
            files.push((name, text));
        }
    }
    for folder in ["api", "service", "repo"] {
        assert!(src.join(folder).is_dir());
        for (_, text) in sources(folder) {
            files.push((folder.to_owned(), text));
        }
    }
    // what lib.rs re-exports at the crate root, by the module it comes from
    let aliases = [
        ("auth", "api"),
        ("AppState", "app"),
        ("ServeConfig", "config"),
        ("Error", "error"),
        ("Result", "error"),
    ];
    let mut graph: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for (module, text) in files {
        let code = code(&text);
        let mut named = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                named.extend(group.split(',').map(|item| {
                    item.trim()
                        .split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                }));
            } else {
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                named.push(word);
            }
        }
        let edges = graph.entry(module.clone()).or_default();
        for name in named {
            let target = aliases
                .iter()
                .find(|(alias, _)| *alias == name)
                .map_or(name.as_str(), |(_, to)| to)
                .to_owned();
            if !target.is_empty() && target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The modules import each other without a cycle: each can be read (and tested) with
/// only the ones below it.
#[test]
fn modules_import_each_other_without_cycles() {
    let graph = module_graph();
    assert!(graph["api"].contains("service") && graph["service"].contains("repo"));
    // depth-first search; a module met again while on the path closes a cycle
    fn visit(
        module: &str,
        graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(start) = path.iter().position(|m| m == module) {
            panic!(
                "an import cycle: {} -> {module}",
                path[start..].join(" -> ")
            );
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module.to_owned());
    }
    let mut done = std::collections::BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}
