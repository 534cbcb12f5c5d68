//! One run directory read for a comparison: its config, provenance, summary, epoch
//! metrics and evaluations, and the model's size counted from its config.
//!
//! Reading is split in two so that a bad list of runs fails in seconds: [`inspect`] reads
//! the small files of every run (and refuses a run that cannot be compared), then
//! [`measure`] adds the validation figures, evaluating a run on the validation split
//! first when `album eval` has not.

use std::path::{Path, PathBuf};

use album_training::config::TrainConfig;
use album_training::device::DeviceKind;
use album_training::inference::{CheckpointChoice, read_summary};
use album_training::metrics::{EpochRow, read_epoch_rows};
use album_training::models::trainable_params;
use album_training::provenance::Provenance;
use polars::prelude::*;

use crate::run::{EvalRunOptions, Split, evaluate_run};
use crate::{Error, Estimate, EvalOptions, Result, read_parquet};

/// One epoch of a run's learning curve (0-based epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_top1: f64,
}

/// Where a run's validation figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValSource {
    /// `<run>/eval-val/`, written by `album eval` earlier.
    Recorded,
    /// Evaluated by this report (and written to `<run>/eval-val/`).
    EvaluatedNow,
}

impl ValSource {
    pub fn name(self) -> &'static str {
        match self {
            ValSource::Recorded => "eval-val",
            ValSource::EvaluatedNow => "evaluated by this report",
        }
    }
}

/// Everything a comparison shows about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// The run directory's name, the run's label everywhere in the report.
    pub name: String,
    pub dir: PathBuf,
    pub model: String,
    pub width: f32,
    pub resize: u32,
    pub crop: u32,
    /// Trainable parameters and multiply–accumulates per image at `crop`, counted from
    /// the config.
    pub params: u64,
    pub macs: u64,
    pub epochs: usize,
    /// Wall-clock seconds of training and per-epoch validation, over all sessions.
    pub train_seconds: f64,
    /// Medians over epochs.
    pub train_images_per_s: f64,
    pub val_images_per_s: f64,
    /// The training loop's best validation top-1 and its 0-based epoch.
    pub best_epoch: Option<usize>,
    pub training_best_val_top1: f64,
    /// Over epochs; `None` when no epoch had a finite loss.
    pub min_train_loss: Option<f64>,
    pub min_val_loss: Option<f64>,
    /// Validation top-1 of the best checkpoint, with its 95 % bootstrap interval.
    pub val_top1: Estimate,
    pub val_macro_f1: Option<f64>,
    pub val_photos: Option<u64>,
    pub val_source: ValSource,
    /// The same on the test split, when `album eval --split test` was run; shown, never
    /// used to choose.
    pub test_top1: Option<Estimate>,
    /// Whether `checkpoints/best/model.bpk` is there (needed for a bundle).
    pub has_checkpoint: bool,
    pub device: String,
    pub precision: String,
    pub git_revision: String,
    pub git_dirty: bool,
    pub class_names: Vec<String>,
    pub val_manifest_sha256: String,
    pub curve: Vec<CurvePoint>,
}

/// A run's small files, read and checked; validation figures still to come.
pub(crate) struct Inspected {
    pub figures: RunFigures,
    /// `None` when there is no usable `eval-val/metrics.parquet` yet.
    pub recorded_val: Option<EvalFigures>,
}

/// The headline of an `album eval` report folder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EvalFigures {
    pub top1: Estimate,
    pub macro_f1: Option<f64>,
    pub photos: Option<u64>,
}

/// The files of a finished run directory that a comparison reads.
const REQUIRED: [&str; 4] = [
    "summary.json",
    "config.toml",
    "provenance.json",
    "epoch-metrics.parquet",
];

pub(crate) fn run_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub(crate) fn best_checkpoint(dir: &Path) -> PathBuf {
    dir.join("checkpoints").join("best").join("model.bpk")
}

/// Reads everything but the validation evaluation; refuses a run that is not a finished
/// run directory, or that has neither a checkpoint nor an `eval-val` to compare.
pub(crate) fn inspect(dir: &Path) -> Result<Inspected> {
    let name = run_name(dir);
    if !dir.is_dir() {
        return Err(Error::Run(format!(
            "run {name}: {} is not a folder",
            dir.display()
        )));
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|file| !dir.join(file).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Run(format!(
            "run {name} ({}) is not a finished run directory: it has no {} (`album train` \
             writes them; summary.json when the run ends or stops)",
            dir.display(),
            missing.join(", ")
        )));
    }
    let not_a_run = |what: &str, e: album_training::Error| {
        let reason = match e {
            album_training::Error::Run(message) => message,
            other => other.to_string(),
        };
        Error::Run(format!("run {name} ({}): {what}: {reason}", dir.display()))
    };
    let summary = read_summary(dir).map_err(|e| not_a_run("summary.json", e))?;
    let config =
        TrainConfig::load(&dir.join("config.toml")).map_err(|e| not_a_run("config.toml", e))?;
    let provenance = Provenance::read(&dir.join("provenance.json"))
        .map_err(|e| not_a_run("provenance.json", e))?;
    let epochs = read_epoch_rows(dir).map_err(|e| not_a_run("epoch-metrics.parquet", e))?;
    if epochs.is_empty() {
        return Err(Error::Run(format!(
            "run {name} ({}): epoch-metrics.parquet has no finished epoch",
            dir.display()
        )));
    }
    let has_checkpoint = best_checkpoint(dir).is_file();
    let recorded_val = read_eval_figures(&dir.join("eval-val"))?;
    if recorded_val.is_none() && !has_checkpoint {
        return Err(Error::Run(format!(
            "run {name} ({}) has neither eval-val/metrics.parquet nor checkpoints/best/model.bpk, \
             so its validation accuracy cannot be had (checkpoints stay out of git: evaluate it \
             with `album eval` where it was trained, or retrain it)",
            dir.display()
        )));
    }
    let test_top1 = read_eval_figures(&dir.join("eval-test"))?.map(|f| f.top1);
    let (params, macs) = model_size(&config)?;
    let best = best_epoch(&epochs);
    let figures = RunFigures {
        name,
        dir: dir.to_path_buf(),
        model: config.model.name.clone(),
        width: config.model.width,
        resize: config.data.resize,
        crop: config.data.crop,
        params,
        macs,
        epochs: summary.epochs_done.max(epochs.len()),
        train_seconds: summary.seconds,
        train_images_per_s: median(epochs.iter().map(|e| e.train_images_per_s)),
        val_images_per_s: median(epochs.iter().map(|e| e.val_images_per_s)),
        best_epoch: best.map(|e| e.epoch),
        training_best_val_top1: best.map_or(f64::NAN, |e| f64::from(e.val_top1)),
        min_train_loss: finite_min(epochs.iter().map(|e| e.train_loss)),
        min_val_loss: finite_min(epochs.iter().map(|e| e.val_loss)),
        val_top1: recorded_val.map_or(
            Estimate {
                value: f64::NAN,
                low: f64::NAN,
                high: f64::NAN,
            },
            |f| f.top1,
        ),
        val_macro_f1: recorded_val.and_then(|f| f.macro_f1),
        val_photos: recorded_val.and_then(|f| f.photos),
        val_source: ValSource::Recorded,
        test_top1,
        has_checkpoint,
        device: provenance.device,
        precision: provenance.precision,
        git_revision: provenance.git_revision,
        git_dirty: provenance.git_dirty,
        class_names: provenance.class_names,
        val_manifest_sha256: provenance.val_manifest_sha256,
        curve: epochs
            .iter()
            .map(|e| CurvePoint {
                epoch: e.epoch,
                train_loss: f64::from(e.train_loss),
                val_loss: f64::from(e.val_loss),
                val_top1: f64::from(e.val_top1),
            })
            .collect(),
    };
    Ok(Inspected {
        figures,
        recorded_val,
    })
}

/// How the runs without an `eval-val` are evaluated.
#[derive(Debug, Clone)]
pub(crate) struct MeasureOptions {
    pub device: DeviceKind,
    pub batch_size: usize,
    pub eval: EvalOptions,
    pub progress: bool,
}

/// The run's figures with its validation top-1: the recorded `eval-val`, or a fresh
/// evaluation of the best checkpoint on the validation split (never the test split),
/// written to `<run>/eval-val/` as `album eval` would.
pub(crate) fn measure(inspected: Inspected, options: &MeasureOptions) -> Result<RunFigures> {
    let mut figures = inspected.figures;
    if inspected.recorded_val.is_some() {
        return Ok(figures);
    }
    let eval_options = EvalRunOptions {
        split: Split::Val,
        checkpoint: CheckpointChoice::Best,
        device: options.device,
        batch_size: options.batch_size,
        sources: Vec::new(),
        eval: options.eval.clone(),
        out_dir: None,
        progress: options.progress,
    };
    let outcome = evaluate_run(&figures.dir, &eval_options).map_err(|e| match e {
        Error::Training(inner) => Error::Run(format!(
            "run {}: evaluating on the validation split failed: {inner}",
            figures.name
        )),
        other => other,
    })?;
    let report = &outcome.report;
    figures.val_top1 = report.top1;
    figures.val_macro_f1 = Some(report.macro_f1.value);
    figures.val_photos = Some(report.n as u64);
    figures.val_source = ValSource::EvaluatedNow;
    Ok(figures)
}

/// Every run must name the same classes in the same order, or "top-1" would mean
/// different tasks; the message names the first run that differs and the first run.
pub(crate) fn check_same_classes(runs: &[RunFigures]) -> Result<()> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    match runs.iter().find(|r| r.class_names != first.class_names) {
        Some(other) => Err(Error::Run(format!(
            "runs {} and {} were trained on different classes ({:?} and {:?}): their \
             accuracies are not comparable",
            first.name, other.name, first.class_names, other.class_names
        ))),
        None => Ok(()),
    }
}

/// Two paths to the same folder, or two folders with the same name (the label of a run
/// in every table and chart), would make the report ambiguous.
pub(crate) fn check_distinct(dirs: &[PathBuf]) -> Result<()> {
    if dirs.is_empty() {
        return Err(Error::Run("no runs to compare".into()));
    }
    for (i, a) in dirs.iter().enumerate() {
        for b in &dirs[..i] {
            let same_folder = match (a.canonicalize(), b.canonicalize()) {
                (Ok(x), Ok(y)) => x == y,
                _ => a == b,
            };
            if same_folder || run_name(a) == run_name(b) {
                return Err(Error::Run(format!(
                    "runs {} and {} have the same name{}: each run must be listed once and \
                     named uniquely (the name labels it in the tables and charts)",
                    b.display(),
                    a.display(),
                    if same_folder {
                        " (the same folder)"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    Ok(())
}

/// The first epoch with the highest validation top-1 (how training picks `best`).
fn best_epoch(epochs: &[EpochRow]) -> Option<&EpochRow> {
    epochs
        .iter()
        .filter(|e| e.val_top1.is_finite())
        .fold(None, |best: Option<&EpochRow>, e| match best {
            Some(b) if b.val_top1 >= e.val_top1 => Some(b),
            _ => Some(e),
        })
}

/// Trainable parameters and multiply–accumulates per image, from the config alone
/// (burn initialises parameters lazily, so building the model costs nothing).
fn model_size(config: &TrainConfig) -> Result<(u64, u64)> {
    let device = DeviceKind::Flex.device()?;
    let model = config.model.clone().init(&device)?;
    Ok((
        trainable_params(&model) as u64,
        model.macs(config.data.crop as usize),
    ))
}

/// The median of the finite values (NaN when there are none).
pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    album_training::bench::median(&finite)
}

fn finite_min(values: impl Iterator<Item = f32>) -> Option<f64> {
    values
        .filter(|v| v.is_finite())
        .map(f64::from)
        .min_by(f64::total_cmp)
}

/// Top-1 (with interval), macro-F1 and the number of photos of an `album eval` folder;
/// `None` when the folder or its `metrics.parquet` is missing.
pub(crate) fn read_eval_figures(dir: &Path) -> Result<Option<EvalFigures>> {
    let metrics = dir.join("metrics.parquet");
    if !metrics.is_file() {
        return Ok(None);
    }
    let df = read_parquet(&metrics)?;
    let top1 = metric(&df, "top1")
        .map_err(|e| Error::table(&metrics, e))?
        .ok_or_else(|| Error::table(&metrics, "no top1 row"))?;
    let macro_f1 = metric(&df, "macro_f1")
        .map_err(|e| Error::table(&metrics, e))?
        .map(|e| e.value);
    let per_class = dir.join("per-class.parquet");
    let photos = if per_class.is_file() {
        let df = read_parquet(&per_class)?;
        let support = df
            .column("support")
            .and_then(|c| c.cast(&DataType::UInt64))
            .map_err(|e| Error::table(&per_class, e))?;
        let total = support
            .u64()
            .map_err(|e| Error::table(&per_class, e))?
            .iter()
            .flatten()
            .sum();
        Some(total)
    } else {
        None
    };
    Ok(Some(EvalFigures {
        top1,
        macro_f1,
        photos,
    }))
}

/// The `metric` row of a `metrics` table as an estimate.
fn metric(df: &DataFrame, name: &str) -> PolarsResult<Option<Estimate>> {
    let names = df.column("metric")?.str()?.clone();
    let Some(row) = names.iter().position(|n| n == Some(name)) else {
        return Ok(None);
    };
    let value = |column: &str| -> PolarsResult<f64> {
        let column = df.column(column)?.cast(&DataType::Float64)?;
        Ok(column.f64()?.get(row).unwrap_or(f64::NAN))
    };
    Ok(Some(Estimate {
        value: value("value")?,
        low: value("ci_low")?,
        high: value("ci_high")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median([f64::NAN, 5.0].into_iter()), 5.0);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn the_best_epoch_is_the_first_with_the_highest_val_top1() {
        let row = |epoch, val_top1| EpochRow {
            epoch,
            train_loss: 1.0,
            train_top1: 0.5,
            val_loss: 1.0,
            val_top1,
            val_top2: 0.9,
            val_top5: 1.0,
            lr: 0.1,
            epoch_seconds: 1.0,
            train_images_per_s: 1.0,
            val_images_per_s: 1.0,
            nonfinite_steps: 0,
            ema_val_loss: None,
            ema_val_top1: None,
        };
        let rows = [row(0, 0.5), row(1, 0.7), row(2, f32::NAN), row(3, 0.7)];
        assert_eq!(best_epoch(&rows).map(|e| e.epoch), Some(1));
        assert_eq!(finite_min([f32::NAN, 2.0, 1.5].into_iter()), Some(1.5));
        assert_eq!(finite_min([f32::NAN].into_iter()), None);
    }

    #[test]
    fn the_same_run_twice_or_two_runs_of_one_name_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x").join("run");
        let b = dir.path().join("y").join("run");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let error = check_distinct(&[a.clone(), b]).unwrap_err().to_string();
        assert!(error.contains("same name"), "{error}");
        let again = a.join("..").join("run");
        let error = check_distinct(&[a.clone(), again]).unwrap_err().to_string();
        assert!(error.contains("the same folder"), "{error}");
        check_distinct(&[a, dir.path().join("other")]).unwrap();
        assert!(check_distinct(&[]).is_err());
    }
}
