//! The comparison report (`album report`): several finished runs side by side, the
//! winner chosen on the validation split by a stated rule, and the winner exported as a
//! model bundle.
//!
//! Per run it gathers the model (name, width, crop; parameters and multiply–accumulates
//! counted from the config), epochs, training time, median training and validation
//! images/s, the training loop's best validation top-1 and its epoch, the lowest
//! training and validation loss, and the validation top-1 of the best checkpoint with
//! its 95 % bootstrap interval from `<run>/eval-val/` (evaluated here first when
//! `album eval` has not been run; never on the test split). A run evaluated on the test
//! split shows that figure in its own column, which nothing reads to choose.
//!
//! The rule ([`winner::RULE`]): highest validation top-1 among the runs trained within
//! the time budget, ties to fewer multiply–accumulates, then to the run listed first.
//!
//! Into the output folder go `report.md`, `runs.parquet|csv`,
//! `learning-curves.parquet|csv`, `accuracy-vs-macs.png`, `accuracy-vs-time.png`,
//! `learning-curves.png` and `bundle/` (see [`crate::bundle`]), each written whole or not
//! at all.

mod charts;
mod markdown;
pub mod runs;
mod tables;
pub mod winner;

use std::path::{Path, PathBuf};

use album_training::device::DeviceKind;

use crate::bundle::{BundleExport, BundleScores, export_bundle};
use crate::run::Split;
use crate::tables::write_text;
use crate::{Error, EvalOptions, Result};
pub use runs::{CurvePoint, RunFigures, ValSource};
pub use tables::RUN_COLUMNS;
pub use winner::{Contender, Decision, RULE, TieBreak, choose_winner};

/// How to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The report's title; "Comparison of N runs" when `None`.
    pub title: Option<String>,
    /// Runs that trained longer than this (seconds) cannot win.
    pub budget_seconds: Option<f64>,
    /// The split the winner is chosen on: validation only (the test split is refused).
    pub split: Split,
    /// Where runs without an `eval-val` are evaluated, and with what batch size.
    pub device: DeviceKind,
    pub batch_size: usize,
    /// The bootstrap of such evaluations (`album eval`'s defaults).
    pub eval: EvalOptions,
    /// Progress bars and a line per evaluation on stderr.
    pub progress: bool,
    /// Recorded in `report.md`.
    pub command_line: Vec<String>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            title: None,
            budget_seconds: None,
            split: Split::Val,
            device: DeviceKind::Flex,
            batch_size: 64,
            eval: EvalOptions::default(),
            progress: false,
            command_line: Vec::new(),
        }
    }
}

/// What a comparison found and wrote.
#[derive(Debug, Clone)]
pub struct CompareOutcome {
    /// In the order given.
    pub runs: Vec<RunFigures>,
    pub decision: Decision,
    pub title: String,
    pub dir: PathBuf,
    /// Every file written, `report.md` last.
    pub files: Vec<PathBuf>,
    /// `None` when the winner has no checkpoint here.
    pub bundle: Option<BundleExport>,
    /// Things a reader must know (also in `report.md`).
    pub warnings: Vec<String>,
}

impl CompareOutcome {
    pub fn winner(&self) -> &RunFigures {
        &self.runs[self.decision.winner]
    }
}

/// Compares the runs in `run_dirs` and writes the report into `out` (created if
/// missing). Every run is checked before any is evaluated, so a bad list fails fast.
pub fn compare_runs(
    run_dirs: &[PathBuf],
    out: &Path,
    options: &CompareOptions,
) -> Result<CompareOutcome> {
    check_options(options)?;
    runs::check_distinct(run_dirs)?;
    check_out_is_not_a_run(run_dirs, out)?;
    let inspected = run_dirs
        .iter()
        .map(|dir| runs::inspect(dir))
        .collect::<Result<Vec<_>>>()?;
    let heads: Vec<RunFigures> = inspected.iter().map(|i| i.figures.clone()).collect();
    runs::check_same_classes(&heads)?;
    let measure = runs::MeasureOptions {
        device: options.device,
        batch_size: options.batch_size,
        eval: options.eval.clone(),
        progress: options.progress,
    };
    let mut figures = Vec::with_capacity(inspected.len());
    for run in inspected {
        if options.progress && run.recorded_val.is_none() {
            eprintln!(
                "{}: no eval-val yet; evaluating the best checkpoint on the validation split \
                 into {}",
                run.figures.name,
                run.figures.dir.join("eval-val").display()
            );
        }
        figures.push(runs::measure(run, &measure)?);
    }
    let contenders: Vec<Contender> = figures.iter().map(contender).collect();
    let decision = choose_winner(&contenders, options.budget_seconds)?;
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| match figures.len() {
            1 => "Report on 1 run".to_owned(),
            n => format!("Comparison of {n} runs"),
        });
    let mut warnings = warnings(&figures);

    std::fs::create_dir_all(out).map_err(|e| Error::io("create folder", out, e))?;
    let mut files = tables::write_tables(&figures, &decision, out)?;
    for (name, draw) in [
        (
            "accuracy-vs-macs.png",
            charts::draw_accuracy_vs_macs
                as fn(&Path, &[RunFigures], &Decision, &str) -> Result<()>,
        ),
        ("accuracy-vs-time.png", charts::draw_accuracy_vs_time),
    ] {
        let path = out.join(name);
        draw(&path, &figures, &decision, &title)?;
        files.push(path);
    }
    let curves = out.join("learning-curves.png");
    charts::draw_learning_curves(&curves, &figures, &title)?;
    files.push(curves);

    let winner = &figures[decision.winner];
    let bundle_dir = out.join("bundle");
    let bundle = if winner.has_checkpoint {
        let scores = BundleScores {
            val_top1: winner.val_top1.value,
            test_top1: winner.test_top1.map(|e| e.value),
        };
        Some(export_bundle(&winner.dir, scores, &bundle_dir)?)
    } else {
        // A bundle left by an earlier report would contradict this one.
        if bundle_dir.exists() {
            std::fs::remove_dir_all(&bundle_dir)
                .map_err(|e| Error::io("remove the stale bundle", &bundle_dir, e))?;
        }
        warnings.push(format!(
            "the winner, {}, has no checkpoints/best/model.bpk here (checkpoints stay out of \
             git), so no bundle was exported: run the report where it was trained",
            winner.name
        ));
        None
    };
    if let Some(export) = &bundle {
        files.push(export.dir.clone());
    }
    let file_names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let text = markdown::render(&markdown::Inputs {
        title: &title,
        runs: &figures,
        decision: &decision,
        bundle: bundle.as_ref(),
        warnings: &warnings,
        command_line: &options.command_line,
        files: &file_names,
    });
    files.push(write_text(&out.join("report.md"), &text)?);
    Ok(CompareOutcome {
        runs: figures,
        decision,
        title,
        dir: out.to_path_buf(),
        files,
        bundle,
        warnings,
    })
}

/// What the rule sees of a run.
pub fn contender(run: &RunFigures) -> Contender {
    Contender {
        name: run.name.clone(),
        val_top1: run.val_top1,
        macs: run.macs,
        train_seconds: run.train_seconds,
    }
}

fn check_options(options: &CompareOptions) -> Result<()> {
    if options.split != Split::Val {
        return Err(Error::Options(format!(
            "the winner is chosen on the validation split only, not on {}: choosing on the \
             test split would make it a second validation split and its figures optimistic \
             (the test figures are shown, labelled, when `album eval --split test` was run)",
            options.split
        )));
    }
    if options.batch_size == 0 {
        return Err(Error::Options("the batch size must be at least 1".into()));
    }
    options.eval.validate()
}

/// The report must not be written into one of the runs it compares.
fn check_out_is_not_a_run(run_dirs: &[PathBuf], out: &Path) -> Result<()> {
    let Ok(out) = out.canonicalize() else {
        return Ok(()); // not there yet, so not a run
    };
    match run_dirs
        .iter()
        .find(|dir| dir.canonicalize().is_ok_and(|d| d == out))
    {
        Some(dir) => Err(Error::Options(format!(
            "--out {} is one of the runs compared; give the report its own folder",
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// Things that weaken the comparison, said plainly.
fn warnings(runs: &[RunFigures]) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(first) = runs.first()
        && let Some(other) = runs
            .iter()
            .find(|r| r.val_manifest_sha256 != first.val_manifest_sha256)
    {
        warnings.push(format!(
            "{} and {} were validated on different photos (their validation manifests differ: \
             another split, class subset or per-class cap), so their top-1 figures are not \
             strictly comparable",
            first.name, other.name
        ));
    }
    for run in runs {
        let recorded = run.val_top1.value;
        let training = run.training_best_val_top1;
        if (recorded - training).abs() > 5e-4 {
            warnings.push(format!(
                "{}: the validation top-1 of eval-val ({:.2} %) differs from the training \
                 loop's best ({:.2} %, epoch {}): eval-val may come from another checkpoint or \
                 older weights; re-run `album eval --run {}`",
                run.name,
                recorded * 100.0,
                training * 100.0,
                run.best_epoch.map_or("?".into(), |e| (e + 1).to_string()),
                run.dir.display()
            ));
        }
    }
    warnings
}
