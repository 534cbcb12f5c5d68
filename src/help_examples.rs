//! Every example command in `--help` texts and in README.md must parse, and the repository
//! paths it names must exist (or be made by an earlier example of the same list): an
//! example that a newcomer copies and that fails for a renamed flag or a missing run
//! folder is a bug. Running them all is the job of the scripts they belong to (most train
//! or serve); this test catches the drift in seconds.

use std::path::Path;

use clap::{CommandFactory, Parser};

use crate::Cli;

/// One example: the words of an `album …` line, continuation lines joined.
#[derive(Debug)]
struct Example {
    source: String,
    words: Vec<String>,
}

/// The `album …` lines of a text, `\` continuations joined, trailing notes dropped (a
/// `#` comment, or a parenthesised note after two or more spaces).
fn examples_in(text: &str, source: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut line = line.trim().to_owned();
        if !line.starts_with("album ") {
            continue;
        }
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next.trim()),
                None => break,
            }
            line.push(' ');
        }
        let command = strip_note(&line);
        if command.contains('<') || command.contains("...") || command.contains('…') {
            continue; // a template (RUN..., <run>), not a command to copy
        }
        examples.push(Example {
            source: source.to_owned(),
            words: split_words(command),
        });
    }
    examples
}

fn strip_note(line: &str) -> &str {
    let mut end = line.len();
    if let Some(at) = line.find(" #") {
        end = end.min(at);
    }
    if let Some(at) = line.find("  (") {
        end = end.min(at);
    }
    line[..end].trim_end()
}

/// Shell words: spaces split, double quotes group (with `\"` inside), `~` kept as is.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The lines inside a Markdown text's fenced code blocks (prose may start a line with
/// "album" too).
fn fenced_code(markdown: &str) -> String {
    let mut inside = false;
    let mut code = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if inside {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// The after-help texts of every subcommand, with the subcommand's path.
fn help_texts() -> Vec<(String, String)> {
    fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for text in [command.get_after_help(), command.get_after_long_help()]
            .into_iter()
            .flatten()
        {
            out.push((path.to_owned(), text.to_string()));
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "album", &mut out);
    out
}

/// Paths an example makes for the ones after it: `--out DIR`, and `--run-id ID` under
/// its `--out` (default experiments/).
fn made_by(words: &[String]) -> Vec<String> {
    let value = |flag: &str| {
        words
            .iter()
            .position(|w| w == flag)
            .and_then(|i| words.get(i + 1))
            .cloned()
    };
    let mut made = Vec::new();
    let out = value("--out");
    if let Some(id) = value("--run-id") {
        let root = out.clone().unwrap_or_else(|| "experiments".to_owned());
        made.push(format!("{}/{id}", root.trim_end_matches('/')));
    }
    made.extend(out);
    made
}

/// Repository paths an example reads: words (or `--flag=` values) under configs/ or
/// experiments/. data/ and ../shared are made by the main job or live beside the checkout.
fn repository_paths(words: &[String]) -> Vec<&str> {
    let mut paths = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let is_output = i > 0 && matches!(words[i - 1].as_str(), "--out" | "--json");
        if is_output {
            continue;
        }
        if word.starts_with("configs/") || word.starts_with("experiments/") {
            paths.push(word.as_str());
        }
    }
    paths
}

fn check(examples: &[Example], root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut made: Vec<String> = Vec::new();
    let mut last_source = String::new();
    for example in examples {
        if example.source != last_source {
            made.clear(); // what one help text makes is not there for another's
            last_source.clone_from(&example.source);
        }
        let line = example.words.join(" ");
        if let Err(e) = Cli::try_parse_from(&example.words) {
            let first = e.to_string().lines().next().unwrap_or_default().to_owned();
            problems.push(format!(
                "{}: `{line}` does not parse: {first}",
                example.source
            ));
        }
        for path in repository_paths(&example.words) {
            let made_earlier = made
                .iter()
                .any(|m| path == m || path.starts_with(&format!("{m}/")));
            if !made_earlier && !root.join(path).exists() {
                problems.push(format!(
                    "{}: `{line}` names {path}, which does not exist",
                    example.source
                ));
            }
        }
        made.extend(made_by(&example.words));
    }
    problems
}

/// Checks `examples` (at least `at_least` of them, so that a broken extraction cannot
/// pass by finding none) against the repository.
fn assert_all_hold(examples: &[Example], at_least: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        examples.len() >= at_least,
        "only {} examples found",
        examples.len()
    );
    let problems = check(examples, root);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_help_example_parses_and_names_paths_that_exist() {
    let examples: Vec<Example> = help_texts()
        .into_iter()
        .flat_map(|(path, text)| examples_in(&text, &format!("`{path} --help`")))
        .collect();
    assert_all_hold(&examples, 40);
}

#[test]
fn every_readme_example_parses_and_names_paths_that_exist() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert_all_hold(&examples_in(&fenced_code(&readme), "README.md"), 15);
}

#[test]
fn an_example_with_a_renamed_flag_or_a_missing_run_is_caught() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = "Examples:
  album eval --run experiments/cpu-vgg16
  album faces detect --weight data/weights x.jpg
  album train --config configs/cpu/alexnet.toml --epochs 1 --run-id try   (a note)
  album eval --run experiments/try --split test     # made by the line above
  album report --runs experiments/a \\
      --out /tmp/x --title \"A and B\"";
    let examples = examples_in(text, "test");
    assert_eq!(examples.len(), 5);
    assert_eq!(
        examples[4].words.last().map(String::as_str),
        Some("A and B")
    );
    let problems = check(&examples, root);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("experiments/cpu-vgg16, which does not exist"));
    assert!(problems[1].contains("does not parse"));
    assert!(problems[2].contains("experiments/a,"));
}
