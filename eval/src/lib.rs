//! # album-eval
//!
//! The third stage of smart-album's data flow (dataset → training → eval → serving):
//! what a trained classifier's softmax probabilities on a split say about it, with honest
//! uncertainty, written as tables, charts and a Markdown summary.
//!
//! This core is pure Rust over probabilities (no burn, no model), so it builds and tests in
//! seconds; whoever runs a model hands it a [`Predictions`].
//!
//! - [`classification`]: top-1/2/5 accuracy, per-class precision, recall and F1, macro-F1,
//!   the confusion matrix and calibration (ECE, reliability bins): [`evaluate`].
//! - [`bootstrap`]: percentile bootstrap intervals over photos, seeded and deterministic.
//! - [`run`]: a finished run's model on a split (through `album_training::inference`),
//!   evaluated and reported; [`table1`]: the paper's Table 1 (batch size × precision).
//! - [`write_report`]: Parquet and CSV tables, `confusion.png`, `reliability.png` and
//!   `summary.md` in a folder, each file written whole or not at all.
//!
//! ```no_run
//! # fn main() -> album_eval::Result<()> {
//! use album_eval::{EvalOptions, Predictions, ReportContext, evaluate, write_report};
//! let predictions = Predictions {
//!     class_names: vec!["cats".into(), "dogs".into()],
//!     targets: vec![0, 1],
//!     probabilities: vec![0.9, 0.1, 0.3, 0.7],
//!     paths: vec![],
//! };
//! let report = evaluate(&predictions, &EvalOptions::default())?;
//! let context = ReportContext { title: "demo · test split".into(), notes: vec![] };
//! write_report(&report, &predictions, "eval-out".as_ref(), &context)?;
//! # Ok(())
//! # }
//! ```

pub mod bootstrap;
pub mod bundle;
mod charts;
pub mod classification;
mod error;
pub mod faces;
pub mod format;
pub mod report;
pub mod run;
mod summary;
pub mod sweep;
pub mod table1;
mod tables;

use std::path::{Path, PathBuf};

pub use classification::{
    CalibrationBin, ClassMetrics, Estimate, EvalOptions, EvalReport, Predictions, evaluate,
};
pub use error::{Error, Result};
pub use tables::read_parquet;

/// What the summary says about where the figures come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportContext {
    /// The summary's and charts' title, e.g. "cpu-se-resnext50 · test split".
    pub title: String,
    /// Lines for the summary, e.g. run folder, checkpoint, config, seed, git revision, data hash.
    pub notes: Vec<String>,
}

/// Writes the report of `predictions` into `dir` (created if missing) and returns the paths
/// written: `metrics`, `per-class`, `confusion` and `calibration` as Parquet and CSV,
/// `predictions.parquet` when paths are known, `confusion.png`, `reliability.png` and
/// `summary.md`. Each file is written to a hidden sibling and renamed into place, so a
/// failure leaves either the old file or none, never half of one.
pub fn write_report(
    report: &EvalReport,
    predictions: &Predictions,
    dir: &Path,
    context: &ReportContext,
) -> Result<Vec<PathBuf>> {
    check_report_matches(report, predictions)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    let mut written = tables::write_tables(report, predictions, dir)?;
    let confusion = dir.join("confusion.png");
    charts::draw_confusion(&confusion, report, &context.title)?;
    let reliability = dir.join("reliability.png");
    charts::draw_reliability(&reliability, report, &context.title)?;
    written.extend([confusion, reliability]);
    let text = summary::render(report, context, &file_names(&written));
    written.push(tables::write_text(&dir.join("summary.md"), &text)?);
    Ok(written)
}

/// A report made from other predictions (or edited by hand) would give tables that
/// contradict each other, so it is refused.
fn check_report_matches(report: &EvalReport, predictions: &Predictions) -> Result<()> {
    predictions.validate()?;
    report.options.validate()?;
    let classes = predictions.classes();
    let consistent = report.n == predictions.len()
        && report.class_names == predictions.class_names
        && report.per_class.len() == classes
        && report.confusion.len() == classes
        && report.confusion.iter().all(|row| row.len() == classes)
        && report.calibration.len() == report.options.calibration_bins;
    if consistent {
        Ok(())
    } else {
        Err(Error::Invalid(
            "the report was not made from these predictions (photos, classes or bins differ)"
                .into(),
        ))
    }
}

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
}

/// Runs `write` on a hidden sibling of `path`, then renames it onto `path`; on failure the
/// sibling is removed and `path` is left as it was.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_sibling(path);
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
    });
    if result.is_err() {
        // Best effort: the write may have failed before creating the file.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.name.<pid>.partial.ext`: hidden, unique to this process, and keeping the extension last
/// because the PNG encoder picks the format from it.
fn temp_sibling(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(".{stem}.{}.partial{extension}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_the_file_nor_its_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.csv");
        let result = write_atomically(&path, |tmp| {
            std::fs::write(tmp, "half a ta").unwrap();
            Err(Error::Table("the writer gave up".into()))
        });
        assert!(matches!(result, Err(Error::Table(_))));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "old").unwrap();
        let _ = write_atomically(&path, |_| Err(Error::Chart("no".into())));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        tables::write_text(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_temporary_keeps_the_extension_last() {
        let tmp = temp_sibling(Path::new("/x/confusion.png"));
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".confusion."), "{name}");
        assert!(name.ends_with(".partial.png"), "{name}");
        assert_eq!(tmp.parent(), Some(Path::new("/x")));
    }
}
