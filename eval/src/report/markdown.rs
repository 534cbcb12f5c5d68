//! `report.md`: the comparison for a person. The winner and the rule that picked it,
//! with the margin and whether it is significant; the runs side by side; the charts;
//! how to read the figures; where they came from.

use std::fmt::Write as _;

use super::runs::{RunFigures, ValSource};
use super::winner::{Decision, RULE, TieBreak};
use crate::bundle::BundleExport;
use crate::format::{count, duration, percent};

pub(crate) struct Inputs<'a> {
    pub title: &'a str,
    pub runs: &'a [RunFigures],
    pub decision: &'a Decision,
    pub bundle: Option<&'a BundleExport>,
    pub warnings: &'a [String],
    pub command_line: &'a [String],
    pub files: &'a [String],
}

pub(crate) fn render(inputs: &Inputs<'_>) -> String {
    let sections = [
        header(inputs),
        winner(inputs),
        table(inputs.runs, inputs.decision),
        charts(),
        how_to_read(inputs.runs),
        provenance(inputs),
    ];
    let trimmed: Vec<&str> = sections.iter().map(|s| s.trim_end()).collect();
    trimmed.join("\n\n") + "\n"
}

fn header(inputs: &Inputs<'_>) -> String {
    let names: Vec<String> = inputs
        .runs
        .iter()
        .map(|r| format!("`{}`", r.name))
        .collect();
    let mut text = format!(
        "# {}\n\n{} run{} compared on the validation split: {}.\n",
        inputs.title,
        inputs.runs.len(),
        if inputs.runs.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    if !inputs.warnings.is_empty() {
        text.push_str("\n**Read this first:**\n\n");
        for warning in inputs.warnings {
            let _ = writeln!(text, "- {warning}");
        }
    }
    text
}

fn winner(inputs: &Inputs<'_>) -> String {
    let (runs, decision) = (inputs.runs, inputs.decision);
    let best = &runs[decision.winner];
    let mut text = format!("## Winner: `{}`\n\n", best.name);
    let _ = writeln!(
        text,
        "{}, {} parameters, {} multiply–accumulates per image, {} epochs in {}; validation \
         top-1 **{}**.\n",
        model_text(best),
        count(best.params as f64),
        count(best.macs as f64),
        best.epochs,
        duration(best.train_seconds),
        percent(&best.val_top1),
    );
    let budget = decision.budget_seconds.map_or_else(
        || "no time budget was set".to_owned(),
        |b| format!("the time budget was {} ({b} s)", duration(b)),
    );
    let _ = writeln!(text, "**Rule:** {RULE}; {budget}.\n");
    if !decision.over_budget.is_empty() {
        let names: Vec<String> = decision
            .over_budget
            .iter()
            .map(|&i| format!("`{}` ({})", runs[i].name, duration(runs[i].train_seconds)))
            .collect();
        let _ = writeln!(
            text,
            "Over the budget, so not eligible however accurate: {}.\n",
            names.join(", ")
        );
    }
    let _ = writeln!(text, "{}\n", margin_text(runs, decision));
    if let Some(test) = best.test_top1 {
        let _ = writeln!(
            text,
            "Its test top-1, for the record only (nothing here chose on it): {}.\n",
            percent(&test)
        );
    }
    match inputs.bundle {
        Some(bundle) => {
            let _ = writeln!(
                text,
                "Exported as a model bundle in [`bundle/`](bundle/bundle.json): `model.bpk` \
                 (the weights of `{}/checkpoints/best`{}, SHA-256 `{}`), `config.toml`, \
                 `provenance.json` and `bundle.json` (class names in label order, \
                 preprocessing: resize {}, centre crop {}, mean {:?}, std {:?}). The album \
                 service loads it with `TrainedModel::load_bundle`, which checks the SHA-256.",
                best.dir.display(),
                bundle
                    .info
                    .epoch
                    .map_or(String::new(), |e| format!(", epoch {}", e + 1)),
                bundle.info.weights_sha256,
                bundle.info.preprocessing.resize,
                bundle.info.preprocessing.crop,
                bundle.info.preprocessing.mean,
                bundle.info.preprocessing.std,
            );
        }
        None => {
            let _ = writeln!(text, "No bundle was exported (see above).");
        }
    }
    text
}

/// The margin over the runner-up, how a tie was broken, and whether the win is
/// significant.
fn margin_text(runs: &[RunFigures], decision: &Decision) -> String {
    let best = &runs[decision.winner];
    let Some(second) = decision.runner_up.map(|i| &runs[i]) else {
        return if runs.len() == 1 {
            "It is the only run compared, so it beat nothing: the report records its figures \
             and exports it."
                .to_owned()
        } else {
            "It is the only run within the budget, so it beat nothing on accuracy.".to_owned()
        };
    };
    let margin = decision.margin.unwrap_or_default() * 100.0;
    let mut text = format!(
        "The runner-up is `{}` at {}: a margin of {margin:.1} percentage points.",
        second.name,
        percent(&second.val_top1)
    );
    match decision.tie_break {
        Some(TieBreak::FewerMacs) => {
            let _ = write!(
                text,
                " The two have the same validation top-1; the tie went to `{}` for its fewer \
                 multiply–accumulates ({} against {}).",
                best.name,
                count(best.macs as f64),
                count(second.macs as f64)
            );
        }
        Some(TieBreak::ListedFirst) => {
            let _ = write!(
                text,
                " The two have the same validation top-1 and the same multiply–accumulates; \
                 the tie went to the run listed first."
            );
        }
        None => {}
    }
    if decision.intervals_overlap == Some(true) {
        let _ = write!(
            text,
            " **The 95 % intervals overlap, so the win is not significant:** on these \
             validation photos the two runs cannot be told apart, and the cheaper one (fewer \
             multiply–accumulates, less training time) may be the better choice."
        );
    } else {
        let _ = write!(
            text,
            " The 95 % intervals do not overlap, so the difference is larger than what \
             resampling the validation photos explains (it says nothing about the spread \
             between training runs with other seeds)."
        );
    }
    text
}

fn model_text(run: &RunFigures) -> String {
    format!("{} width {} at {} px", run.model, run.width, run.crop)
}

fn table(runs: &[RunFigures], decision: &Decision) -> String {
    let with_test = runs.iter().any(|r| r.test_top1.is_some());
    let mut text = String::from("## Runs side by side\n\n");
    text.push_str(
        "| run | model | params | MACs / image | epochs | training time | train images/s | \
         val images/s | best epoch | min train loss | min val loss | val top-1 (95 % CI) |",
    );
    text.push_str(if with_test {
        " test top-1 (95 % CI), not used to choose |\n"
    } else {
        "\n"
    });
    text.push_str(&"|---".repeat(12 + usize::from(with_test)));
    text.push_str("|\n");
    let optional = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
    for (i, run) in runs.iter().enumerate() {
        let mut name = format!("`{}`", run.name);
        if i == decision.winner {
            name = format!("**{name}** (winner)");
        } else if decision.over_budget.contains(&i) {
            name.push_str(" (over budget)");
        }
        let mut val = percent(&run.val_top1);
        if run.val_source == ValSource::EvaluatedNow {
            val.push_str(" †");
        }
        if i == decision.winner {
            val = format!("**{val}**");
        }
        let _ = write!(
            text,
            "| {name} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {} | {val} |",
            model_text(run),
            count(run.params as f64),
            count(run.macs as f64),
            run.epochs,
            duration(run.train_seconds),
            run.train_images_per_s,
            run.val_images_per_s,
            run.best_epoch.map_or("–".into(), |e| (e + 1).to_string()),
            optional(run.min_train_loss),
            optional(run.min_val_loss),
        );
        if with_test {
            let test = run.test_top1.map_or("–".into(), |e| percent(&e));
            let _ = write!(text, " {test} |");
        }
        text.push('\n');
    }
    if runs.iter().any(|r| r.val_source == ValSource::EvaluatedNow) {
        text.push_str(
            "\n† evaluated by this report (the run had no `eval-val/`); written to \
             `<run>/eval-val/` as `album eval` would.\n",
        );
    }
    text
}

fn charts() -> String {
    "## Charts\n\n\
     ![Validation top-1 against multiply–accumulates per image](accuracy-vs-macs.png)\n\n\
     ![Validation top-1 against training time](accuracy-vs-time.png)\n\n\
     ![Learning curves: validation top-1, validation and training loss per epoch](learning-curves.png)\n"
        .to_owned()
}

fn how_to_read(runs: &[RunFigures]) -> String {
    let photos = runs
        .iter()
        .find_map(|r| r.val_photos)
        .map_or(String::new(), |n| format!(" ({n} photos)"));
    let mut text = String::from("## How to read this\n\n");
    for line in [
        format!(
            "**Validation top-1** is the share of validation photos{photos} whose most probable \
             class is the right one, for each run's best checkpoint (its epoch with the best \
             validation top-1 in training), from `album eval` (`<run>/eval-val/`). The \
             brackets hold the 95 % percentile-bootstrap interval over photos. It is the only \
             figure the winner is chosen on."
        ),
        "**Overlapping intervals** mean these photos cannot separate the two runs. The \
         interval covers the sampling of photos only, not the spread between training runs \
         with other seeds, which can be as large: a small margin is a hint, not a result."
            .into(),
        "**Test top-1** (when a run was evaluated with `album eval --split test`) is shown \
         for the record and never used to choose: choosing on it would turn the test split \
         into a second validation split and make its figure optimistic."
            .into(),
        "**Training time** is wall-clock time of all epochs (training and the validation \
         after each), summed over resumed sessions, on the device each run names (`device` \
         in `runs.csv`). Runs trained on other machines, or sharing their cores with other \
         work, are not comparable by time. **Images/s** are medians over epochs."
            .into(),
        "**MACs** are multiply–accumulates of one forward pass on one crop × crop image, and \
         **params** the trainable parameters (batch-norm statistics excluded), both counted \
         from each run's config."
            .into(),
        "**Epochs** are counted from 1 here and in the charts, from 0 in the tables. The \
         training loss is label-smoothed (see each run's config), so it sits above the \
         validation loss, which is not."
            .into(),
        "Every figure, as shares rather than percentages, is in `runs.parquet` / `runs.csv` \
         (one row per run) and `learning-curves.parquet` / `.csv` (one row per run and epoch)."
            .into(),
    ] {
        let _ = writeln!(text, "- {line}");
    }
    text
}

fn provenance(inputs: &Inputs<'_>) -> String {
    let mut text = String::from("## Where the figures come from\n\n");
    for run in inputs.runs {
        let revision: String = run.git_revision.chars().take(10).collect();
        let _ = writeln!(
            text,
            "- `{}`: `{}`, trained at revision {revision}{} on {} ({}); validation figures \
             from {}",
            run.name,
            run.dir.display(),
            if run.git_dirty {
                " (uncommitted changes)"
            } else {
                ""
            },
            run.device,
            run.precision,
            match run.val_source {
                ValSource::Recorded => "`eval-val/`",
                ValSource::EvaluatedNow => "an evaluation by this report",
            }
        );
    }
    if !inputs.command_line.is_empty() {
        let _ = writeln!(text, "\nMade with `{}`.", shell_words(inputs.command_line));
    }
    let _ = writeln!(text, "\nFiles: {}.", inputs.files.join(", "));
    text
}

/// A command line as a shell would take it back: arguments with spaces or quotes are
/// single-quoted.
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_is_quoted_so_it_can_be_run_again() {
        let args: Vec<String> = [
            "album",
            "report",
            "--title",
            "Five families, 10 epochs",
            "it's",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shell_words(&args),
            r"album report --title 'Five families, 10 epochs' 'it'\''s'"
        );
    }
    use crate::Estimate;
    use crate::report::winner::{Contender, choose_winner};
    use std::path::PathBuf;

    fn figures(name: &str, top1: f64, macs: u64, seconds: f64) -> RunFigures {
        RunFigures {
            name: name.into(),
            dir: PathBuf::from(format!("experiments/{name}")),
            model: "se-resnext50".into(),
            width: 0.25,
            resize: 64,
            crop: 56,
            params: 1_631_617,
            macs,
            epochs: 10,
            train_seconds: seconds,
            train_images_per_s: 122.9,
            val_images_per_s: 540.1,
            best_epoch: Some(9),
            training_best_val_top1: top1,
            min_train_loss: Some(0.584),
            min_val_loss: Some(0.327),
            val_top1: Estimate {
                value: top1,
                low: top1 - 0.008,
                high: top1 + 0.007,
            },
            val_macro_f1: Some(top1),
            val_photos: Some(5988),
            val_source: ValSource::Recorded,
            test_top1: None,
            has_checkpoint: true,
            device: "flex".into(),
            precision: "f32".into(),
            git_revision: "f7dd3778546f89d7a390df19d855f49cc4aa745e".into(),
            git_dirty: false,
            class_names: vec!["a".into(), "b".into()],
            val_manifest_sha256: "x".into(),
            curve: vec![],
        }
    }

    fn decide(runs: &[RunFigures], budget: Option<f64>) -> Decision {
        let contenders: Vec<Contender> = runs.iter().map(crate::report::contender).collect();
        choose_winner(&contenders, budget).unwrap()
    }

    fn render_runs(runs: &[RunFigures], decision: &Decision) -> String {
        render(&Inputs {
            title: "CPU runs",
            runs,
            decision,
            bundle: None,
            warnings: &[],
            command_line: &["album".into(), "report".into()],
            files: &["runs.csv".into()],
        })
    }

    #[test]
    fn the_table_has_a_row_per_run_and_marks_the_winner_and_the_budget() {
        let mut runs = vec![
            figures("slow", 0.95, 400_000_000, 5000.0),
            figures("fast", 0.90531, 35_500_000, 1568.5),
        ];
        runs[1].val_source = ValSource::EvaluatedNow;
        runs[1].test_top1 = Some(Estimate {
            value: 0.909,
            low: 0.902,
            high: 0.916,
        });
        let decision = decide(&runs, Some(2000.0));
        let text = render_runs(&runs, &decision);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| `") || l.starts_with("| **"))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(
            rows[1],
            "| **`fast`** (winner) | se-resnext50 width 0.25 at 56 px | 1.63 M | 35.5 M | 10 | \
             26 min 9 s | 123 | 540 | 10 | 0.584 | 0.327 | **90.5 % (89.7–91.2) †** | \
             90.9 % (90.2–91.6) |"
        );
        assert!(
            rows[0].starts_with("| `slow` (over budget) |"),
            "{}",
            rows[0]
        );
        assert!(
            rows[0].ends_with("| 95.0 % (94.2–95.7) | – |"),
            "{}",
            rows[0]
        );
        assert!(text.contains("not used to choose"));
        assert!(text.contains("Over the budget, so not eligible however accurate: `slow`"));
        assert!(text.contains("the only run within the budget"));
        assert!(text.contains("![Learning curves"));
        assert!(text.contains("Its test top-1, for the record only"));
    }

    #[test]
    fn the_margin_and_its_significance_are_stated() {
        let runs = vec![
            figures("a", 0.905, 35_500_000, 100.0),
            figures("b", 0.902, 35_500_000, 100.0),
            figures("c", 0.80, 35_500_000, 100.0),
        ];
        let text = render_runs(&runs, &decide(&runs, None));
        assert!(text.contains("runner-up is `b`"), "{text}");
        assert!(text.contains("a margin of 0.3 percentage points"), "{text}");
        assert!(text.contains("the win is not significant"), "{text}");
        assert!(text.contains("no time budget was set"), "{text}");

        let apart = vec![runs[0].clone(), runs[2].clone()];
        let text = render_runs(&apart, &decide(&apart, None));
        assert!(text.contains("do not overlap"), "{text}");

        let tied = vec![
            figures("big", 0.9, 90_000_000, 100.0),
            figures("small", 0.9, 30_000_000, 100.0),
        ];
        let text = render_runs(&tied, &decide(&tied, None));
        assert!(text.contains("## Winner: `small`"), "{text}");
        assert!(text.contains("for its fewer multiply–accumulates (30.0 M against 90.0 M)"));
    }
}
