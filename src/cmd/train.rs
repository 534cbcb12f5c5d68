//! `album train`: train one model as a config says, or continue a run.

use std::path::PathBuf;

use album_training::config::TrainConfig;
use album_training::device::DeviceKind;
use album_training::training::{self, RunOptions};
use anyhow::Context;

/// Train a model from a TOML config (configs/cpu/*.toml), writing a run directory under
/// experiments/ with the resolved config, provenance, metrics tables, charts and
/// checkpoints.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album train --config configs/cpu/se-resnext.toml
  album train --config configs/cpu/vgg16.toml --epochs 1 --run-id vgg-try
  album train --resume experiments/vgg-try       (after a crash or Ctrl-C)
  album train --config configs/gpu-112/densenet.toml --time-limit 96s")]
pub struct TrainArgs {
    /// The training config (TOML). Not needed with --resume, which reuses the run's own.
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Continue a run directory from its last checkpoint (after a crash or a kill).
    #[arg(long, conflicts_with_all = ["config", "run_id", "device", "epochs", "seed"])]
    resume: Option<PathBuf>,
    /// Where new run directories go.
    #[arg(long, default_value = "experiments")]
    out: PathBuf,
    /// The new run directory's name [default: <model>-<UTC date-time>].
    #[arg(long)]
    run_id: Option<String>,
    /// Override the config's device: flex, tch-cpu, tch-cuda or tch-cuda:N.
    #[arg(long, value_parser = parse_device_name)]
    device: Option<String>,
    /// Override the config's epoch count.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop after this many optimiser steps (then validate and checkpoint): a smoke test.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Fit the run into this much time (90s, 8m, 1h; bare numbers are seconds): after
    /// each epoch the epoch count is set to what still fits (at most the config's),
    /// the learning-rate schedule ending with it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    time_limit: Option<std::time::Duration>,
    /// No progress bars (logs stay one line per epoch).
    #[arg(long)]
    quiet: bool,
    /// Layer operations: project (smart-album's own conv, batch norm and ReLU kernels)
    /// or burn (burn's, for before/after comparisons).
    #[arg(long, default_value = "project", value_name = "project|burn")]
    kernels: String,
}

/// Checks a `--device` name here, so that a wrong one is blamed on the flag rather than
/// on the config file it overrides.
fn parse_device_name(name: &str) -> Result<String, String> {
    name.parse::<DeviceKind>()
        .map(|_| name.to_owned())
        .map_err(|e| e.to_string())
}

/// Reads a `--time-limit`: a number of seconds, or one with an `s`, `m` or `h` suffix.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1.0),
        Some((i, 'm')) => (&text[..i], 60.0),
        Some((i, 'h')) => (&text[..i], 3600.0),
        _ => (text, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => {
            Ok(std::time::Duration::from_secs_f64(value * unit))
        }
        _ => Err(format!(
            "expected a duration such as 90s, 8m or 1.5h, not {text:?}"
        )),
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    album_training::ops::set_kernels(args.kernels.parse()?);
    let config = match &args.config {
        Some(path) => {
            let mut config = TrainConfig::load(path)?;
            if let Some(device) = &args.device {
                config.train.device = device.clone();
            }
            if let Some(epochs) = args.epochs
                && let Some(note) = config.train.set_epochs(epochs)
            {
                eprintln!("note: {note}");
            }
            if let Some(seed) = args.seed {
                config.train.seed = seed;
            }
            config.validate()?;
            config
        }
        None => TrainConfig::default(), // replaced by the run's saved config
    };
    let options = RunOptions {
        out_root: args.out,
        run_id: args.run_id,
        resume: args.resume,
        max_steps: args.max_steps,
        time_limit: args.time_limit,
        progress: !args.quiet,
        command_line: std::env::args().collect(),
    };
    let summary = training::train(config, &options).context("training failed")?;
    println!("run directory: {}", summary.run_dir.display());
    println!(
        "{}: {} epochs, {} steps, {:.0} s, best validation top-1 {:.2} % (epoch {})",
        summary.model,
        summary.epochs_done,
        summary.steps,
        summary.seconds,
        summary.best_val_top1 * 100.0,
        summary
            .best_epoch
            .map_or("-".into(), |e| (e + 1).to_string()),
    );
    if let Some(loss) = summary.last_loss {
        println!("last step's loss: {loss:.4}");
    }
    if summary.precision != "f32" {
        println!(
            "precision {}: the loss {} (burn has no automatic mixed precision: the whole \
             model ran in {0})",
            summary.precision,
            if summary.loss_stayed_finite {
                "stayed finite".to_owned()
            } else {
                format!("was not finite in {} steps", summary.nonfinite_steps)
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn time_limits_read_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("96"), Ok(Duration::from_secs(96)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("8m"), Ok(Duration::from_secs(480)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "m", "-5s", "0", "eight minutes"] {
            assert!(parse_duration(bad).unwrap_err().contains("90s"), "{bad}");
        }
    }
}
