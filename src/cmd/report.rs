//! `album report`: several finished runs compared side by side, the winner chosen on the
//! validation split by a stated rule and exported as a model bundle.

use std::path::PathBuf;

use album_eval::format::{count, duration, percent};
use album_eval::report::{CompareOptions, ValSource, compare_runs};
use album_eval::run::Split;
use album_training::device::DeviceKind;
use anyhow::Context;

/// Compare finished runs and pick the winner: a side-by-side table, charts, and the
/// winner exported as a model bundle.
///
/// Per run: model, width and crop, parameters and multiply–accumulates (MACs), epochs,
/// training time, median train and validation images/s, best validation top-1 and its
/// epoch, lowest train and validation loss, and the validation top-1 of the best
/// checkpoint with its 95 % bootstrap interval from <run>/eval-val/ (a run without one
/// is evaluated on the validation split first, as `album eval` would). Test-split
/// figures, where `album eval --split test` was run, are shown in their own column and
/// never used to choose.
///
/// The winner: the highest validation top-1 among the runs whose training time is within
/// --budget-seconds (no budget by default); equal top-1 goes to fewer MACs, then to the
/// run listed first. The report says by how much it won and whether the 95 % intervals
/// overlap (then the win is not significant).
///
/// Writes into --out: report.md, runs.parquet/.csv, learning-curves.parquet/.csv,
/// accuracy-vs-macs.png, accuracy-vs-time.png, learning-curves.png and bundle/
/// (model.bpk from the winner's checkpoints/best, config.toml, provenance.json and
/// bundle.json with the class names, preprocessing and the SHA-256 of the weights).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The winner: the highest validation top-1 (from <run>/eval-val/, written
by `album eval`; a run without one is evaluated on the validation split first) among the
runs whose training time is within --budget-seconds; equal top-1 goes to fewer
multiply-accumulates, then to the run listed first. Test-split figures (from `album eval
--split test`) are shown in their own column and never used to choose. report.md says by
how much the winner won and whether the 95 % intervals overlap (then it is not significant).

Writes into --out: report.md, runs.parquet/.csv, learning-curves.parquet/.csv,
accuracy-vs-macs.png, accuracy-vs-time.png, learning-curves.png, and bundle/ (the winner's
checkpoints/best/model.bpk, config.toml, provenance.json and bundle.json with the class
names, preprocessing and the weights' SHA-256), which the album service loads.

A run needs summary.json, config.toml, provenance.json and epoch-metrics.parquet (what
`album train` writes), and either eval-val/ or checkpoints/best/; all runs must have the
same classes. Exit code 2 for runs or arguments that cannot be compared, 1 when the work
itself fails.

Examples:
  album report --runs experiments/study-full/runs/googlenet experiments/study-full/runs/vgg16 \\
      --out /tmp/report-try --title \"GoogLeNet and VGG16-BN\"
  album report --runs experiments/study-full/runs/alexnet experiments/study-full/runs/vgg16 \\
      --out /tmp/ab --budget-seconds 1800 --quiet"
)]
pub struct ReportArgs {
    /// The run directories to compare (what `album train` wrote), two or more usually.
    #[arg(long, num_args = 1.., required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// The folder the report goes to (created if missing; not one of the runs).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The report's title [default: "Comparison of N runs"].
    #[arg(long)]
    title: Option<String>,
    /// Runs whose training took longer than this many seconds cannot win.
    #[arg(long, value_name = "S")]
    budget_seconds: Option<f64>,
    /// The split the winner is chosen on; only val is accepted (the test split is shown,
    /// never chosen on).
    #[arg(long, default_value = "val")]
    split: Split,
    /// Device for evaluating runs that have no eval-val yet: flex, tch-cpu, tch-cuda or
    /// tch-cuda:N.
    #[arg(long, default_value = "flex")]
    device: DeviceKind,
    /// Photos per forward pass for those evaluations (does not change the figures).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let options = CompareOptions {
        title: args.title,
        budget_seconds: args.budget_seconds,
        split: args.split,
        device: args.device,
        batch_size: args.batch_size,
        progress: !args.quiet,
        command_line: std::env::args().collect(),
        ..CompareOptions::default()
    };
    let outcome =
        compare_runs(&args.runs, &args.out, &options).context("comparing the runs failed")?;
    let width = outcome.runs.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for (i, run) in outcome.runs.iter().enumerate() {
        let mark = if i == outcome.decision.winner {
            "*"
        } else {
            " "
        };
        let test = run
            .test_top1
            .map_or(String::new(), |e| format!("   test {}", percent(&e)));
        let evaluated = if run.val_source == ValSource::EvaluatedNow {
            " (evaluated now)"
        } else {
            ""
        };
        println!(
            "{mark} {:<width$}  {} w{} {} px  {:>7} params  {:>7} MACs  {:>2} epochs  {:>12}  \
             val {}{evaluated}{test}",
            run.name,
            run.model,
            run.width,
            run.crop,
            count(run.params as f64),
            count(run.macs as f64),
            run.epochs,
            duration(run.train_seconds),
            percent(&run.val_top1),
        );
    }
    let decision = &outcome.decision;
    let winner = outcome.winner();
    match (decision.runner_up, decision.margin) {
        (Some(second), Some(margin)) => println!(
            "winner: {} by {:.1} points over {}{}",
            winner.name,
            margin * 100.0,
            outcome.runs[second].name,
            if decision.intervals_overlap == Some(true) {
                " (95 % intervals overlap: not significant)"
            } else {
                ""
            }
        ),
        _ => println!("winner: {} (nothing else to beat)", winner.name),
    }
    for warning in &outcome.warnings {
        println!("note: {warning}");
    }
    if let Some(bundle) = &outcome.bundle {
        println!(
            "bundle: {} (model.bpk SHA-256 {})",
            bundle.dir.display(),
            bundle.info.weights_sha256
        );
    }
    println!("report: {}", outcome.dir.join("report.md").display());
    Ok(())
}
