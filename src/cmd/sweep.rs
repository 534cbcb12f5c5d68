//! `album sweep epochs`: the paper's Table 2, one run per epoch count.

use std::path::PathBuf;

use album_eval::sweep::{SweepOptions, sweep_epochs};
use album_training::config::TrainConfig;
use album_training::device::DeviceKind;
use anyhow::Context;

#[derive(Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// The paper's Table 2: train one run per epoch count and tabulate accuracy and losses.
    Epochs(EpochsArgs),
}

/// Train the config once per epoch count (each run with its own schedule, stretched over
/// its length) into <out>/epochs-NN/, then write Table 2 beside them: validation top-1 at
/// the last and best epoch, minimum training and validation loss, the longest run read at
/// the same epoch, the paper's figure, and with --test the test top-1 with a 95 %
/// interval. Starting a sweep again reuses finished runs and continues cut-short ones.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album sweep epochs --config configs/study/se-resnext.toml --epochs 5,10,20,40 \\
      --out experiments/study-cpu/table2 --test
  album sweep epochs --config configs/cpu/se-resnext.toml --epochs 1,2 --out /tmp/sweep")]
pub struct EpochsArgs {
    /// The training config (TOML); its epoch count is replaced by each of --epochs.
    #[arg(long)]
    config: PathBuf,
    /// The epoch counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,40")]
    epochs: Vec<usize>,
    /// The sweep's folder: runs in epochs-NN/, table2.{md,parquet,csv,png} beside them.
    #[arg(long)]
    out: PathBuf,
    /// Override the config's training device: flex, tch-cpu, tch-cuda or tch-cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Also evaluate each run's best-on-validation checkpoint on the test split
    /// (reported, never used to choose).
    #[arg(long)]
    test: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

pub fn run(command: SweepCommand) -> anyhow::Result<()> {
    match command {
        SweepCommand::Epochs(args) => run_epochs(args),
    }
}

fn run_epochs(args: EpochsArgs) -> anyhow::Result<()> {
    let mut config = TrainConfig::load(&args.config)?;
    if let Some(device) = &args.device {
        config.train.device = device.clone();
    }
    config.validate()?;
    let eval_device: DeviceKind = config.train.device.parse()?;
    let options = SweepOptions {
        epochs: args.epochs,
        out_dir: args.out.clone(),
        evaluate_test: args.test,
        eval_device,
        progress: !args.quiet,
        command_line: std::env::args().collect(),
    };
    let rows = sweep_epochs(&config, &options)
        .with_context(|| format!("the epoch sweep into {} failed", args.out.display()))?;
    for row in &rows {
        println!(
            "{:>3} epochs: val top-1 {:.1} % (best {:.1} %), min train loss {:.3}, min val loss {:.3}{}",
            row.epochs,
            row.final_val_top1 * 100.0,
            row.best_val_top1 * 100.0,
            row.min_train_loss,
            row.min_val_loss,
            row.test_top1.map_or(String::new(), |e| format!(
                ", test top-1 {:.1} %",
                e.value * 100.0
            )),
        );
    }
    println!("Table 2: {}", args.out.join("table2.md").display());
    Ok(())
}
