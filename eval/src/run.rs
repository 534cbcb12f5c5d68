//! One finished run evaluated on one split: load the run's model
//! ([`album_training::inference`]), predict every photo, compute the metrics
//! ([`crate::evaluate`]) and write the report ([`crate::write_report`]) into
//! `<run>/eval-<split>/`, so each figure sits beside the run it came from.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use album_training::device::DeviceKind;
use album_training::inference::{CheckpointChoice, SplitPredictions, TrainedModel};

use crate::{
    Error, EvalOptions, EvalReport, Predictions, ReportContext, Result, evaluate, write_report,
};

/// The splits a run is evaluated on. Training reads train and val; the test split is read
/// by `album eval` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "val" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            other => Err(Error::Unknown {
                what: "split",
                name: other.to_owned(),
                expected: "val or test",
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EvalRunOptions {
    pub split: Split,
    pub checkpoint: CheckpointChoice,
    pub device: DeviceKind,
    pub batch_size: usize,
    pub eval: EvalOptions,
    /// Score only the photos of these sources, with the run's own source filters lifted
    /// (the leave-one-source-out check); empty: the split as the run saw it.
    pub sources: Vec<String>,
    /// Where the report goes; `<run>/eval-<split>` when `None`.
    pub out_dir: Option<PathBuf>,
    pub progress: bool,
}

pub struct EvalRunOutcome {
    pub report: EvalReport,
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// Photos per second of the forward passes alone (upload to read-back).
    pub images_per_s: f64,
}

/// Evaluates `run_dir`'s model on one split and writes the report.
pub fn evaluate_run(run_dir: &Path, options: &EvalRunOptions) -> Result<EvalRunOutcome> {
    let model = TrainedModel::load(run_dir, options.checkpoint, options.device.device()?)?;
    let (split, images, photos) = if options.sources.is_empty() {
        let (split, images) = model.load_split(options.split.name())?;
        let all = (0..images.len()).collect();
        (split, images, all)
    } else {
        model.load_split_of_sources(options.split.name(), &options.sources)?
    };
    let predicted = model.predict_photos(
        &split,
        &images,
        &photos,
        options.batch_size,
        options.progress,
    )?;
    let images_per_s = images_per_second(&predicted);
    let predictions = Predictions::from(predicted);
    let report = evaluate(&predictions, &options.eval)?;
    let dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| run_dir.join(default_report_dir(options)));
    let context = ReportContext {
        title: match options.sources.as_slice() {
            [] => format!("{} · {} split", run_name(run_dir), options.split),
            sources => format!(
                "{} · {} split, photos of {} only",
                run_name(run_dir),
                options.split,
                sources.join(", ")
            ),
        },
        notes: provenance_notes(&model, options, &split.hash),
    };
    let files = write_report(&report, &predictions, &dir, &context)?;
    Ok(EvalRunOutcome {
        report,
        dir,
        files,
        images_per_s,
    })
}

impl From<SplitPredictions> for Predictions {
    fn from(predicted: SplitPredictions) -> Self {
        Predictions {
            class_names: predicted.class_names,
            targets: predicted.targets,
            probabilities: predicted.probabilities,
            paths: predicted.paths,
        }
    }
}

pub fn images_per_second(predicted: &SplitPredictions) -> f64 {
    let seconds: f64 = predicted.batch_seconds.iter().sum();
    predicted.targets.len() as f64 / seconds.max(1e-9)
}

/// `eval-<split>`, or `eval-<split>-ema` for the EMA weights, with `-sources-<a+b>` for
/// a source subset (kept apart so that they can be compared side by side).
fn default_report_dir(options: &EvalRunOptions) -> String {
    let base = match options.checkpoint {
        CheckpointChoice::Ema => format!("eval-{}-ema", options.split),
        _ => format!("eval-{}", options.split),
    };
    if options.sources.is_empty() {
        base
    } else {
        format!("{base}-sources-{}", options.sources.join("+"))
    }
}

fn run_name(run_dir: &Path) -> String {
    run_dir.file_name().map_or_else(
        || run_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The lines that let a reader trace every figure back: run, checkpoint, config, seed,
/// revision, data.
fn provenance_notes(
    model: &TrainedModel,
    options: &EvalRunOptions,
    split_hash: &str,
) -> Vec<String> {
    let p = &model.provenance;
    vec![
        format!(
            "run: `{}` (config `config.toml` there)",
            model.run_dir.display()
        ),
        format!(
            "checkpoint: `{}`{}{}",
            model.checkpoint.display(),
            model
                .epoch
                .map_or(String::new(), |e| format!(", epoch {}", e + 1)),
            if options.checkpoint == CheckpointChoice::Ema {
                " (the EMA weights, `ema.bpk`)"
            } else {
                ""
            }
        ),
        format!(
            "model: {} width {} at {} px, trained on {} with seed {}, precision {}",
            model.config.model.name,
            model.config.model.width,
            model.config.data.crop,
            p.device,
            p.seed,
            p.precision
        ),
        format!(
            "training revision: {}{}",
            p.git_revision,
            if p.git_dirty {
                " (uncommitted changes)"
            } else {
                ""
            }
        ),
        format!("{} split manifest SHA-256: {split_hash}", options.split),
        format!(
            "evaluated on {} with batch size {}",
            options.device, options.batch_size
        ),
    ]
}
