//! The comparison's tables, Parquet for programs and CSV for people:
//!
//! - `runs`: one row per run, in the order given, with every figure of the report
//!   (epochs 0-based, shares not percentages, nulls where a figure is unknown) and the
//!   rule's outcome (`within_budget`, `rank` among the runs within the budget, `winner`);
//! - `learning-curves`: run, epoch (0-based), train_loss, val_loss, val_top1.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::runs::RunFigures;
use super::winner::Decision;
use crate::tables::{write_csv, write_parquet};
use crate::{Error, Result};

/// Writes `runs.parquet|csv` and `learning-curves.parquet|csv` into `dir`.
pub(crate) fn write_tables(
    runs: &[RunFigures],
    decision: &Decision,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (stem, frame) in [
        ("runs", runs_frame(runs, decision)),
        ("learning-curves", curves_frame(runs)),
    ] {
        let parquet = dir.join(format!("{stem}.parquet"));
        let mut df = frame.map_err(|e| Error::table(&parquet, e))?;
        written.push(write_parquet(&mut df, &parquet)?);
        written.push(write_csv(&mut df, &parquet.with_extension("csv"))?);
    }
    Ok(written)
}

/// The column names of `runs`, in order.
pub const RUN_COLUMNS: [&str; 34] = [
    "run",
    "run_dir",
    "model",
    "width",
    "resize",
    "crop",
    "params",
    "macs",
    "epochs",
    "train_seconds",
    "train_images_per_s",
    "val_images_per_s",
    "best_epoch",
    "training_best_val_top1",
    "min_train_loss",
    "min_val_loss",
    "val_top1",
    "val_top1_ci_low",
    "val_top1_ci_high",
    "val_macro_f1",
    "val_photos",
    "val_source",
    "test_top1",
    "test_top1_ci_low",
    "test_top1_ci_high",
    "has_checkpoint",
    "within_budget",
    "rank",
    "winner",
    "device",
    "precision",
    "git_revision",
    "git_dirty",
    "val_manifest_sha256",
];

fn runs_frame(runs: &[RunFigures], decision: &Decision) -> PolarsResult<DataFrame> {
    let strings = |f: fn(&RunFigures) -> String| runs.iter().map(f).collect::<Vec<_>>();
    let floats = |f: fn(&RunFigures) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let optional = |f: fn(&RunFigures) -> Option<f64>| runs.iter().map(f).collect::<Vec<_>>();
    let rank: Vec<Option<u32>> = (0..runs.len())
        .map(|i| {
            decision
                .ranking
                .iter()
                .position(|&r| r == i)
                .map(|p| p as u32 + 1)
        })
        .collect();
    let columns = vec![
        Column::new("run".into(), strings(|r| r.name.clone())),
        Column::new("run_dir".into(), strings(|r| r.dir.display().to_string())),
        Column::new("model".into(), strings(|r| r.model.clone())),
        Column::new(
            "width".into(),
            runs.iter().map(|r| r.width).collect::<Vec<_>>(),
        ),
        Column::new(
            "resize".into(),
            runs.iter().map(|r| r.resize).collect::<Vec<_>>(),
        ),
        Column::new(
            "crop".into(),
            runs.iter().map(|r| r.crop).collect::<Vec<_>>(),
        ),
        Column::new(
            "params".into(),
            runs.iter().map(|r| r.params).collect::<Vec<_>>(),
        ),
        Column::new(
            "macs".into(),
            runs.iter().map(|r| r.macs).collect::<Vec<_>>(),
        ),
        Column::new(
            "epochs".into(),
            runs.iter().map(|r| r.epochs as u32).collect::<Vec<_>>(),
        ),
        Column::new("train_seconds".into(), floats(|r| r.train_seconds)),
        Column::new(
            "train_images_per_s".into(),
            floats(|r| r.train_images_per_s),
        ),
        Column::new("val_images_per_s".into(), floats(|r| r.val_images_per_s)),
        Column::new(
            "best_epoch".into(),
            runs.iter()
                .map(|r| r.best_epoch.map(|e| e as u32))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "training_best_val_top1".into(),
            floats(|r| r.training_best_val_top1),
        ),
        Column::new("min_train_loss".into(), optional(|r| r.min_train_loss)),
        Column::new("min_val_loss".into(), optional(|r| r.min_val_loss)),
        Column::new("val_top1".into(), floats(|r| r.val_top1.value)),
        Column::new("val_top1_ci_low".into(), floats(|r| r.val_top1.low)),
        Column::new("val_top1_ci_high".into(), floats(|r| r.val_top1.high)),
        Column::new("val_macro_f1".into(), optional(|r| r.val_macro_f1)),
        Column::new(
            "val_photos".into(),
            runs.iter().map(|r| r.val_photos).collect::<Vec<_>>(),
        ),
        Column::new(
            "val_source".into(),
            strings(|r| r.val_source.name().to_owned()),
        ),
        Column::new(
            "test_top1".into(),
            optional(|r| r.test_top1.map(|e| e.value)),
        ),
        Column::new(
            "test_top1_ci_low".into(),
            optional(|r| r.test_top1.map(|e| e.low)),
        ),
        Column::new(
            "test_top1_ci_high".into(),
            optional(|r| r.test_top1.map(|e| e.high)),
        ),
        Column::new(
            "has_checkpoint".into(),
            runs.iter().map(|r| r.has_checkpoint).collect::<Vec<_>>(),
        ),
        Column::new(
            "within_budget".into(),
            rank.iter().map(Option::is_some).collect::<Vec<_>>(),
        ),
        Column::new("rank".into(), rank.clone()),
        Column::new(
            "winner".into(),
            (0..runs.len())
                .map(|i| i == decision.winner)
                .collect::<Vec<_>>(),
        ),
        Column::new("device".into(), strings(|r| r.device.clone())),
        Column::new("precision".into(), strings(|r| r.precision.clone())),
        Column::new("git_revision".into(), strings(|r| r.git_revision.clone())),
        Column::new(
            "git_dirty".into(),
            runs.iter().map(|r| r.git_dirty).collect::<Vec<_>>(),
        ),
        Column::new(
            "val_manifest_sha256".into(),
            strings(|r| r.val_manifest_sha256.clone()),
        ),
    ];
    debug_assert_eq!(columns.len(), RUN_COLUMNS.len());
    DataFrame::new_infer_height(columns)
}

fn curves_frame(runs: &[RunFigures]) -> PolarsResult<DataFrame> {
    let points: Vec<(&str, _)> = runs
        .iter()
        .flat_map(|r| r.curve.iter().map(move |p| (r.name.as_str(), p)))
        .collect();
    df!(
        "run" => points.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "epoch" => points.iter().map(|(_, p)| p.epoch as u32).collect::<Vec<_>>(),
        "train_loss" => points.iter().map(|(_, p)| p.train_loss).collect::<Vec<_>>(),
        "val_loss" => points.iter().map(|(_, p)| p.val_loss).collect::<Vec<_>>(),
        "val_top1" => points.iter().map(|(_, p)| p.val_top1).collect::<Vec<_>>(),
    )
}
