//! `album bench infer`: the paper's Table 1 for one run — top-1/top-5, images/s and
//! latency at each inference batch size and precision ([`album_eval::table1`]).
//!
//! burn fixes a device's float type once per process, so each precision runs in a child
//! process of this same binary (`--worker`), which prints its predictions as JSON; the
//! parent compares every cell with float32 at the first batch size and writes the table.
//! A precision the device cannot run is reported as such, and the other cells still come.

use std::path::PathBuf;
use std::process::Command;

use album_eval::table1::{InferenceCell, table1, write_table1};
use album_eval::{EvalOptions, Predictions};
use album_training::config::Precision;
use album_training::device::DeviceKind;
use album_training::inference::{CheckpointChoice, SplitPredictions, TrainedModel};
use album_training::training::configured_device;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Table 1 of the paper for one run: top-1 and top-5 of its best checkpoint on the
/// validation split at each batch size and precision, with images/s and latency per
/// batch, and how far each cell moves from float32 at the first batch size.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Checkpoints are not committed: benchmark a run trained on this machine.

Examples:
  album train --config configs/cpu/alexnet.toml --epochs 1 --run-id alexnet-try
  album bench infer --run experiments/alexnet-try
  album bench infer --run experiments/alexnet-try --precisions f32,bf16 --limit 1000"
)]
pub struct InferBenchArgs {
    /// The run directory.
    #[arg(long)]
    run: PathBuf,
    /// Inference batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    batch_sizes: Vec<usize>,
    /// Precisions, comma separated: f32, f16, bf16 (the whole model in that type).
    #[arg(long, value_delimiter = ',', default_value = "f32,f16,bf16")]
    precisions: Vec<Precision>,
    /// Device: flex, tch-cpu, tch-cuda or tch-cuda:N.
    #[arg(long, default_value = "flex")]
    device: DeviceKind,
    /// Use this many validation photos, spread evenly over the split [default: all].
    #[arg(long)]
    limit: Option<usize>,
    /// Where the table goes [default: <run>/bench-infer].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Internal: run one precision and print its predictions as JSON.
    #[arg(long, hide = true)]
    worker: bool,
}

/// What a worker process sends back.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerOutput {
    class_names: Vec<String>,
    cells: Vec<WorkerCell>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WorkerCell {
    batch_size: usize,
    targets: Vec<usize>,
    probabilities: Vec<f32>,
    batch_seconds: Vec<f64>,
}

pub fn run(args: InferBenchArgs) -> anyhow::Result<()> {
    if args.batch_sizes.is_empty() || args.batch_sizes.contains(&0) {
        bail!(album_training::Error::Config(
            "batch sizes must be 1 or more".into()
        ));
    }
    if args.worker {
        let [precision] = args.precisions[..] else {
            bail!("--worker runs exactly one precision");
        };
        let output = worker(&args, precision)?;
        println!("{}", serde_json::to_string(&output)?);
        return Ok(());
    }
    parent(&args)
}

fn parent(args: &InferBenchArgs) -> anyhow::Result<()> {
    // once here, rather than once per precision's worker
    album_training::training::require_run_dir(&args.run)?;
    let mut cells = Vec::new();
    let mut failures = Vec::new();
    for &precision in &args.precisions {
        eprintln!(
            "{precision}: batch sizes {:?} on {}",
            args.batch_sizes, args.device
        );
        match spawn_worker(args, precision) {
            Ok(output) => cells.extend(into_cells(output, precision)),
            Err(error) => {
                eprintln!("{precision}: no figures: {error:#}");
                failures.push(format!("{precision}: {error:#}"));
            }
        }
    }
    if cells.is_empty() {
        bail!("no precision ran: {}", failures.join("; "));
    }
    let options = EvalOptions {
        bootstrap_resamples: 500,
        ..EvalOptions::default()
    };
    let rows = table1(&cells, 0, &options)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run.join("bench-infer"));
    let header = table_header(args, &cells[0], &failures);
    let files = write_table1(&rows, &out, &header)?;
    println!("{}", album_eval::table1::markdown(&rows));
    for failure in &failures {
        println!("not measured: {failure}");
    }
    println!(
        "written: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn table_header(args: &InferBenchArgs, reference: &InferenceCell, failures: &[String]) -> String {
    let mut header = format!(
        "# Table 1: {} on {}\n\n`{}`\n\n{} validation photos per cell (best checkpoint); the \
         reference cell is {} at batch {}. images/s and latency count upload, forward, \
         softmax and read-back of each batch, after one untimed warm-up batch; decoding and \
         cropping are not included. Top-1 intervals: percentile bootstrap over photos (500 \
         resamples). With five classes top-5 is always 100 %: it is listed because the \
         paper's Table 1 lists it.\n\nA batch size cannot change what the model computes for \
         a photo, only the order of floating-point sums, so its accuracy cannot move beyond \
         the last digits: see \"changed vs reference\". Half precision rounds every weight \
         and activation (burn has no automatic mixed precision): its cells show how much \
         that moves the figures.",
        args.run.display(),
        args.device,
        std::env::args().collect::<Vec<_>>().join(" "),
        reference.predictions.targets.len(),
        reference.precision,
        reference.batch_size,
    );
    for failure in failures {
        header.push_str(&format!("\n\nNot measured: {failure}"));
    }
    header
}

fn into_cells(output: WorkerOutput, precision: Precision) -> Vec<InferenceCell> {
    output
        .cells
        .into_iter()
        .map(|cell| InferenceCell {
            precision: precision.to_string(),
            batch_size: cell.batch_size,
            predictions: Predictions {
                class_names: output.class_names.clone(),
                targets: cell.targets,
                probabilities: cell.probabilities,
                paths: Vec::new(),
            },
            batch_seconds: cell.batch_seconds,
        })
        .collect()
}

/// Runs this binary again as a worker for one precision and reads its JSON.
fn spawn_worker(args: &InferBenchArgs, precision: Precision) -> anyhow::Result<WorkerOutput> {
    let exe = std::env::current_exe().context("cannot find this program to run a worker")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "infer", "--worker", "--run"])
        .arg(&args.run)
        .arg("--batch-sizes")
        .arg(
            args.batch_sizes
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .arg("--precisions")
        .arg(precision.to_string())
        .arg("--device")
        .arg(args.device.to_string());
    if let Some(limit) = args.limit {
        command.arg("--limit").arg(limit.to_string());
    }
    // No backtrace: the reason is the line after "panicked at", or the error's last line.
    command.env("RUST_BACKTRACE", "0");
    let output = command.output().context("cannot start a worker")?;
    if !output.status.success() {
        bail!(
            "the worker failed ({}): {}",
            output.status,
            failure_reason(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("the worker's output is not the expected JSON")
}

fn failure_reason(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.iter().position(|l| l.contains("panicked at")) {
        Some(at) => format!(
            "burn panicked: {}",
            lines.get(at + 1).unwrap_or(&"(no message)")
        ),
        None => lines.last().unwrap_or(&"(no message)").to_string(),
    }
}

/// One precision in this process: load, then predict at each batch size.
fn worker(args: &InferBenchArgs, precision: Precision) -> anyhow::Result<WorkerOutput> {
    let device = configured_device(args.device.device()?, precision)?;
    let model = TrainedModel::load(&args.run, CheckpointChoice::Best, device)?;
    let (split, images) = model.load_split("val")?;
    let indices = spread(images.len(), args.limit);
    let mut cells = Vec::new();
    for &batch_size in &args.batch_sizes {
        let warm_up = &indices[..batch_size.min(indices.len())];
        model.predict_photos(&split, &images, warm_up, batch_size, false)?;
        let predicted = model.predict_photos(&split, &images, &indices, batch_size, false)?;
        cells.push(worker_cell(predicted));
    }
    Ok(WorkerOutput {
        class_names: model.class_names().to_vec(),
        cells,
    })
}

fn worker_cell(predicted: SplitPredictions) -> WorkerCell {
    WorkerCell {
        batch_size: predicted.batch_size,
        targets: predicted.targets,
        probabilities: predicted.probabilities,
        batch_seconds: predicted.batch_seconds,
    }
}

/// `limit` indices spread evenly over `0..len` (the split is ordered by class, so the
/// first `limit` photos would be one or two classes), or all of them.
fn spread(len: usize, limit: Option<usize>) -> Vec<usize> {
    match limit {
        Some(limit) if limit > 0 && limit < len => (0..limit).map(|i| i * len / limit).collect(),
        _ => (0..len).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_spreads_over_the_whole_split() {
        assert_eq!(spread(10, Some(5)), vec![0, 2, 4, 6, 8]);
        assert_eq!(spread(4, Some(10)), vec![0, 1, 2, 3]);
        assert_eq!(spread(3, None), vec![0, 1, 2]);
    }
}
