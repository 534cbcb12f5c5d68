//! The paper's Table 1 redone: top-1 and top-5 of one trained model at inference batch
//! sizes 1, 4 and 8 in float32, float16 and bfloat16, with images/s and latency.
//!
//! The paper reports different accuracies per batch size. At inference a batch size
//! cannot change what a model computes for a photo, only the order of floating-point
//! sums inside the kernels; so each cell here is also compared photo by photo with a
//! reference cell (float32 at the smallest batch size): how many photos changed their
//! predicted class and the largest change of any probability. Half precision means the
//! whole model in that type (burn has no automatic mixed precision), so its cells show
//! how far rounding alone moves the figures.

use std::path::{Path, PathBuf};

use crate::classification::argmax;
use crate::{Error, EvalOptions, Predictions, Result, evaluate};

/// One cell's raw material: what the model said at one precision and batch size.
#[derive(Debug, Clone)]
pub struct InferenceCell {
    pub precision: String,
    pub batch_size: usize,
    pub predictions: Predictions,
    /// Seconds of each batch, upload to read-back.
    pub batch_seconds: Vec<f64>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table1Row {
    pub precision: String,
    pub batch_size: usize,
    pub photos: usize,
    pub top1: f64,
    pub top1_low: f64,
    pub top1_high: f64,
    pub top5: f64,
    pub images_per_s: f64,
    /// Median and 99th-percentile seconds per batch, in milliseconds.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// Photos whose predicted class differs from the reference cell's.
    pub changed_vs_reference: usize,
    /// Largest |p − p_ref| over every photo and class.
    pub max_probability_change: f64,
}

/// Builds the rows; `reference` is the index of the cell the others are compared with.
pub fn table1(
    cells: &[InferenceCell],
    reference: usize,
    options: &EvalOptions,
) -> Result<Vec<Table1Row>> {
    let reference = cells
        .get(reference)
        .ok_or_else(|| Error::Invalid("Table 1 needs at least one cell".into()))?;
    reference.predictions.validate()?;
    cells
        .iter()
        .map(|cell| row(cell, reference, options))
        .collect()
}

fn row(
    cell: &InferenceCell,
    reference: &InferenceCell,
    options: &EvalOptions,
) -> Result<Table1Row> {
    let report = evaluate(&cell.predictions, options)?;
    let (changed, max_change) = compare(&cell.predictions, &reference.predictions)?;
    let seconds: f64 = cell.batch_seconds.iter().sum();
    Ok(Table1Row {
        precision: cell.precision.clone(),
        batch_size: cell.batch_size,
        photos: report.n,
        top1: report.top1.value,
        top1_low: report.top1.low,
        top1_high: report.top1.high,
        top5: report.top5.value,
        images_per_s: report.n as f64 / seconds.max(1e-9),
        latency_p50_ms: percentile(&cell.batch_seconds, 0.50) * 1e3,
        latency_p99_ms: percentile(&cell.batch_seconds, 0.99) * 1e3,
        changed_vs_reference: changed,
        max_probability_change: max_change,
    })
}

/// (photos whose arg-max differs, largest absolute probability difference).
fn compare(a: &Predictions, b: &Predictions) -> Result<(usize, f64)> {
    if a.targets != b.targets || a.probabilities.len() != b.probabilities.len() {
        return Err(Error::Invalid(
            "Table 1 cells must cover the same photos in the same order".into(),
        ));
    }
    let classes = a.classes();
    let changed = a
        .probabilities
        .chunks(classes)
        .zip(b.probabilities.chunks(classes))
        .filter(|(x, y)| argmax(x) != argmax(y))
        .count();
    let max_change = a
        .probabilities
        .iter()
        .zip(&b.probabilities)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max);
    Ok((changed, max_change))
}

/// Nearest-rank percentile of `values` (0 when empty).
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The rows as a markdown table (percentages with one decimal).
pub fn markdown(rows: &[Table1Row]) -> String {
    let mut out = String::from(
        "| precision | batch | top-1 (95 % CI) | top-5 | images/s | latency p50 / p99 (ms) | \
         changed vs reference | max Δp |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.1} % ({:.1}–{:.1}) | {:.1} % | {:.1} | {:.1} / {:.1} | {} of {} | {:.1e} |\n",
            r.precision,
            r.batch_size,
            r.top1 * 100.0,
            r.top1_low * 100.0,
            r.top1_high * 100.0,
            r.top5 * 100.0,
            r.images_per_s,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.changed_vs_reference,
            r.photos,
            r.max_probability_change,
        ));
    }
    out
}

/// Writes `table1.parquet`, `table1.csv` and `table1.md` (the table with `header` above
/// it) into `dir`.
pub fn write_table1(rows: &[Table1Row], dir: &Path, header: &str) -> Result<Vec<PathBuf>> {
    use polars::prelude::*;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    let col_f = |name: &str, f: fn(&Table1Row) -> f64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let col_u = |name: &str, f: fn(&Table1Row) -> usize| {
        Column::new(
            name.into(),
            rows.iter().map(|r| f(r) as u64).collect::<Vec<_>>(),
        )
    };
    let mut frame = DataFrame::new_infer_height(vec![
        Column::new(
            "precision".into(),
            rows.iter().map(|r| r.precision.clone()).collect::<Vec<_>>(),
        ),
        col_u("batch_size", |r| r.batch_size),
        col_u("photos", |r| r.photos),
        col_f("top1", |r| r.top1),
        col_f("top1_ci_low", |r| r.top1_low),
        col_f("top1_ci_high", |r| r.top1_high),
        col_f("top5", |r| r.top5),
        col_f("images_per_s", |r| r.images_per_s),
        col_f("latency_p50_ms", |r| r.latency_p50_ms),
        col_f("latency_p99_ms", |r| r.latency_p99_ms),
        col_u("changed_vs_reference", |r| r.changed_vs_reference),
        col_f("max_probability_change", |r| r.max_probability_change),
    ])
    .map_err(|e| Error::table(dir, e))?;
    let parquet = crate::tables::write_parquet(&mut frame, &dir.join("table1.parquet"))?;
    let csv = crate::tables::write_csv(&mut frame, &dir.join("table1.csv"))?;
    let md_path = dir.join("table1.md");
    crate::tables::write_text(&md_path, &format!("{header}\n\n{}", markdown(rows)))?;
    Ok(vec![parquet, csv, md_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(precision: &str, batch_size: usize, probabilities: Vec<f32>) -> InferenceCell {
        InferenceCell {
            precision: precision.into(),
            batch_size,
            predictions: Predictions {
                class_names: vec!["a".into(), "b".into()],
                targets: vec![0, 1, 1],
                probabilities,
                paths: vec![],
            },
            batch_seconds: vec![0.01, 0.02, 0.03],
        }
    }

    #[test]
    fn cells_are_compared_photo_by_photo_with_the_reference() {
        let reference = cell("f32", 1, vec![0.9, 0.1, 0.4, 0.6, 0.3, 0.7]);
        // same predictions, tiny numeric change
        let batched = cell("f32", 8, vec![0.9, 0.1, 0.4, 0.6, 0.3000001, 0.6999999]);
        // rounding flips the second photo to class 0
        let half = cell("bf16", 1, vec![0.9, 0.1, 0.52, 0.48, 0.3, 0.7]);
        let options = EvalOptions {
            bootstrap_resamples: 50,
            ..EvalOptions::default()
        };
        let rows = table1(&[reference, batched, half], 0, &options).unwrap();
        assert_eq!(rows[0].changed_vs_reference, 0);
        assert_eq!(rows[0].max_probability_change, 0.0);
        assert_eq!(rows[1].changed_vs_reference, 0);
        assert!(rows[1].max_probability_change < 1e-6);
        assert!((rows[0].top1 - 1.0).abs() < 1e-12 && (rows[1].top1 - 1.0).abs() < 1e-12);
        assert_eq!(rows[2].changed_vs_reference, 1);
        assert!((rows[2].max_probability_change - 0.12).abs() < 1e-6);
        assert!((rows[2].top1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rows[2].top5, 1.0);
        // 3 photos in 0.06 s
        assert!((rows[0].images_per_s - 50.0).abs() < 1e-9);
        assert!((rows[0].latency_p50_ms - 20.0).abs() < 1e-9);
        assert!((rows[0].latency_p99_ms - 30.0).abs() < 1e-9);
    }

    #[test]
    fn cells_over_other_photos_are_refused() {
        let a = cell("f32", 1, vec![0.9, 0.1, 0.4, 0.6, 0.3, 0.7]);
        let mut b = a.clone();
        b.predictions.targets = vec![1, 1, 1];
        assert!(table1(&[a, b], 0, &EvalOptions::default()).is_err());
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.99), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
