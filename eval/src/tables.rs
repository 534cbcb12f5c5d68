//! An evaluation report as tables, each written as Parquet (for programs: the comparison
//! and ablation reports read these) and CSV (for people and spreadsheets), like the
//! training stage's `epoch-metrics`:
//!
//! - `metrics`: metric, value, ci_low, ci_high for top1, top2, top5, macro_f1, ece;
//! - `per-class`: class, support, precision, recall, f1, each with ci_low and ci_high;
//! - `confusion`: long form true_class, predicted_class, count (every pair, zeros included);
//! - `calibration`: bin, lower, upper, count, mean_confidence, accuracy (the last two null
//!   for an empty bin, so that averaging over bins cannot mistake "no photos" for 0);
//! - `predictions` (Parquet only, when paths are known): path, target, predicted (class
//!   names), confidence (top-1 probability), correct, and `p_<class>` for each class.
//!
//! Every file is written whole to a hidden sibling and renamed into place.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::classification::{
    CalibrationBin, ClassMetrics, Estimate, EvalReport, Predictions, photo_outcomes,
};
use crate::{Error, Result, write_atomically};

/// Writes every table of `report` into `dir` (which must exist); returns the paths written.
pub(crate) fn write_tables(
    report: &EvalReport,
    predictions: &Predictions,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (stem, frame) in [
        ("metrics", metrics_frame(report)),
        ("per-class", per_class_frame(report)),
        ("confusion", confusion_frame(report)),
        ("calibration", calibration_frame(report)),
    ] {
        let parquet = dir.join(format!("{stem}.parquet"));
        let mut df = frame.map_err(|e| Error::table(&parquet, e))?;
        written.push(write_parquet(&mut df, &parquet)?);
        written.push(write_csv(&mut df, &parquet.with_extension("csv"))?);
    }
    if !predictions.paths.is_empty() {
        let parquet = dir.join("predictions.parquet");
        let mut df =
            predictions_frame(report, predictions).map_err(|e| Error::table(&parquet, e))?;
        written.push(write_parquet(&mut df, &parquet)?);
    }
    Ok(written)
}

/// Reads a Parquet table back (for callers comparing reports, and for tests).
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::table(path, e))
}

/// Writes `df` as Parquet at `path`, atomically; returns `path`.
pub(crate) fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<PathBuf> {
    write_atomically(path, |tmp| {
        let file = File::create(tmp).map_err(|e| Error::io("create", tmp, e))?;
        ParquetWriter::new(file)
            .finish(df)
            .map(|_| ())
            .map_err(|e| Error::table(path, e))
    })?;
    Ok(path.to_path_buf())
}

/// Writes `df` as CSV with a header row at `path`, atomically; returns `path`.
pub(crate) fn write_csv(df: &mut DataFrame, path: &Path) -> Result<PathBuf> {
    write_atomically(path, |tmp| {
        let mut file = File::create(tmp).map_err(|e| Error::io("create", tmp, e))?;
        CsvWriter::new(&mut file)
            .include_header(true)
            .finish(df)
            .map_err(|e| Error::table(path, e))
    })?;
    Ok(path.to_path_buf())
}

/// Writes `text` (Markdown) at `path`, atomically; returns `path`.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<PathBuf> {
    write_atomically(path, |tmp| {
        std::fs::write(tmp, text).map_err(|e| Error::io("write", tmp, e))
    })?;
    Ok(path.to_path_buf())
}

/// The headline metrics in report order, with the names used in `metrics.parquet`.
pub(crate) fn headline(report: &EvalReport) -> [(&'static str, Estimate); 5] {
    [
        ("top1", report.top1),
        ("top2", report.top2),
        ("top5", report.top5),
        ("macro_f1", report.macro_f1),
        ("ece", report.ece),
    ]
}

fn metrics_frame(report: &EvalReport) -> PolarsResult<DataFrame> {
    let rows = headline(report);
    let field = |f: fn(&Estimate) -> f64| rows.iter().map(|(_, e)| f(e)).collect::<Vec<_>>();
    df!(
        "metric" => rows.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "value" => field(|e| e.value),
        "ci_low" => field(|e| e.low),
        "ci_high" => field(|e| e.high),
    )
}

fn per_class_frame(report: &EvalReport) -> PolarsResult<DataFrame> {
    let rows = &report.per_class;
    let mut columns = vec![
        Column::new(
            "class".into(),
            rows.iter().map(|r| r.class.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "support".into(),
            rows.iter().map(|r| r.support as u64).collect::<Vec<_>>(),
        ),
    ];
    let estimates = |get: fn(&ClassMetrics) -> Estimate| rows.iter().map(get).collect::<Vec<_>>();
    for (name, column) in [
        ("precision", estimates(|r| r.precision)),
        ("recall", estimates(|r| r.recall)),
        ("f1", estimates(|r| r.f1)),
    ] {
        columns.extend(estimate_columns(name, &column));
    }
    DataFrame::new_infer_height(columns)
}

/// `name`, `name_ci_low`, `name_ci_high`.
fn estimate_columns(name: &str, estimates: &[Estimate]) -> [Column; 3] {
    let field = |f: fn(&Estimate) -> f64| estimates.iter().map(f).collect::<Vec<_>>();
    [
        Column::new(name.into(), field(|e| e.value)),
        Column::new(format!("{name}_ci_low").into(), field(|e| e.low)),
        Column::new(format!("{name}_ci_high").into(), field(|e| e.high)),
    ]
}

fn confusion_frame(report: &EvalReport) -> PolarsResult<DataFrame> {
    let names = &report.class_names;
    let cells: Vec<(&str, &str, u64)> = report
        .confusion
        .iter()
        .zip(names)
        .flat_map(|(row, truth)| {
            row.iter()
                .zip(names)
                .map(move |(&count, predicted)| (truth.as_str(), predicted.as_str(), count))
        })
        .collect();
    df!(
        "true_class" => cells.iter().map(|c| c.0).collect::<Vec<_>>(),
        "predicted_class" => cells.iter().map(|c| c.1).collect::<Vec<_>>(),
        "count" => cells.iter().map(|c| c.2).collect::<Vec<_>>(),
    )
}

fn calibration_frame(report: &EvalReport) -> PolarsResult<DataFrame> {
    let bins = &report.calibration;
    let when_filled = |f: fn(&CalibrationBin) -> f64| {
        bins.iter()
            .map(|b| (b.count > 0).then(|| f(b)))
            .collect::<Vec<_>>()
    };
    df!(
        "bin" => (0..bins.len() as u32).collect::<Vec<_>>(),
        "lower" => bins.iter().map(|b| b.lower).collect::<Vec<_>>(),
        "upper" => bins.iter().map(|b| b.upper).collect::<Vec<_>>(),
        "count" => bins.iter().map(|b| b.count as u64).collect::<Vec<_>>(),
        "mean_confidence" => when_filled(|b| b.mean_confidence),
        "accuracy" => when_filled(|b| b.accuracy),
    )
}

fn predictions_frame(report: &EvalReport, predictions: &Predictions) -> PolarsResult<DataFrame> {
    let outcomes = photo_outcomes(predictions, report.options.calibration_bins);
    let name = |i: usize| predictions.class_names[i].as_str();
    let mut columns = vec![
        Column::new("path".into(), predictions.paths.clone()),
        Column::new(
            "target".into(),
            outcomes.iter().map(|o| name(o.target)).collect::<Vec<_>>(),
        ),
        Column::new(
            "predicted".into(),
            outcomes
                .iter()
                .map(|o| name(o.predicted))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "confidence".into(),
            outcomes.iter().map(|o| o.confidence).collect::<Vec<_>>(),
        ),
        Column::new(
            "correct".into(),
            outcomes.iter().map(|o| o.correct()).collect::<Vec<_>>(),
        ),
    ];
    for (c, class) in predictions.class_names.iter().enumerate() {
        let column: Vec<f32> = predictions.rows().map(|row| row[c]).collect();
        columns.push(Column::new(format!("p_{class}").into(), column));
    }
    DataFrame::new_infer_height(columns)
}
