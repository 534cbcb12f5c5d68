//! Progress bars shared by the long-running steps.
//!
//! indicatif hides a bar when stderr is not a terminal, so CI logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for `len` items of the named kind, e.g. `bar(29_994, "images")`.
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let template = format!(
        "{{spinner}} {{msg}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
    );
    let style =
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style)
}

/// A spinner for work whose length is not known in advance (a crawl's page count).
pub fn spinner(unit: &str) -> ProgressBar {
    let template =
        format!("{{spinner}} {{msg}} [{{elapsed_precise}}] {{pos}} {unit} ({{per_sec}})");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    ProgressBar::new_spinner().with_style(style)
}
