//! `album eval`: a finished run's model on the validation or test split, with confidence
//! intervals, per-class figures, calibration and charts.

use std::path::PathBuf;

use album_eval::EvalOptions;
use album_eval::run::{EvalRunOptions, Split, evaluate_run};
use album_training::device::DeviceKind;
use album_training::inference::CheckpointChoice;
use anyhow::Context;

/// Evaluate a run's model: top-1/2/5, per-class precision, recall and F1, the confusion
/// matrix and expected calibration error, each with a 95 % bootstrap interval; written to
/// <run>/eval-<split>/ as Parquet and CSV tables, summary.md, confusion.png and
/// reliability.png.
///
/// The test split is read here and nowhere else: training and every comparison choose on
/// the validation split.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Checkpoints are not committed: evaluate a run trained on this machine.

Examples:
  album train --config configs/cpu/alexnet.toml --epochs 1 --run-id alexnet-try
  album eval --run experiments/alexnet-try
  album eval --run experiments/alexnet-try --split test
  album eval --run experiments/alexnet-try --checkpoint last
  album eval --run experiments/study-full/runs/se-resnext50-loso --split test \\
      --sources inria,stanfordcars --device tch-cpu        (after scripts/study-full.sh)"
)]
pub struct EvalArgs {
    /// The run directory (what `album train` wrote).
    #[arg(long)]
    run: PathBuf,
    /// Which split to evaluate on: val or test.
    #[arg(long, default_value = "val")]
    split: Split,
    /// Which weights: best (best validation top-1), last, or ema (the moving average of
    /// the weights at the last epoch, in runs trained with train.ema_decay; its report
    /// goes to eval-<split>-ema).
    #[arg(long, default_value = "best")]
    checkpoint: CheckpointChoice,
    /// Device: flex, tch-cpu, tch-cuda or tch-cuda:N.
    #[arg(long, default_value = "flex")]
    device: DeviceKind,
    /// Photos per forward pass (does not change the figures, only the speed).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 1000)]
    resamples: usize,
    /// Seed of the bootstrap (the same seed gives the same intervals).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Score only the photos of these sources (comma-separated file-name prefixes such as
    /// inria,stanfordcars), with the run's data.exclude_sources lifted: the
    /// leave-one-source-out check of a run trained without them. The report goes to
    /// <run>/eval-<split>-sources-<a+b>.
    #[arg(long, value_delimiter = ',', value_name = "SOURCE,...")]
    sources: Vec<String>,
    /// Where the report goes [default: <run>/eval-<split>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let options = EvalRunOptions {
        split: args.split,
        checkpoint: args.checkpoint,
        device: args.device,
        batch_size: args.batch_size,
        eval: EvalOptions {
            bootstrap_resamples: args.resamples,
            seed: args.seed,
            ..EvalOptions::default()
        },
        sources: args.sources,
        out_dir: args.out,
        progress: !args.quiet,
    };
    let outcome = evaluate_run(&args.run, &options)
        .with_context(|| format!("evaluating {} failed", args.run.display()))?;
    let report = &outcome.report;
    let pct = album_eval::format::percent;
    println!(
        "{} photos of the {} split, {:.0} images/s on {}",
        report.n, args.split, outcome.images_per_s, args.device
    );
    println!("top-1    {}", pct(&report.top1));
    println!("top-2    {}", pct(&report.top2));
    println!(
        "top-5    {}   (always 100 % with five classes)",
        pct(&report.top5)
    );
    println!("macro F1 {}", pct(&report.macro_f1));
    println!("ECE      {}", pct(&report.ece));
    println!("report: {}", outcome.dir.join("summary.md").display());
    Ok(())
}
