//! `album bench train`: images/s of one training step (forward, loss, backward, update)
//! on each Rust device beside PyTorch eager doing the same step to the same
//! architecture, on the same number of cores, printed as ratios against the issue's
//! targets (LibTorch ≥ 1.0× PyTorch, flex ≥ 0.8×).
//!
//! The Rust side is [`album_training::bench::train_step_throughput`]; the PyTorch side is
//! `scripts/bench_train_step.py`, whose models mirror the Rust ones layer for layer. The
//! two parameter counts are printed and compared: when they differ the ratio compares
//! different networks, and the output says so loudly. Both sides time steps on one
//! fixed synthetic batch (data loading is `album bench data`'s business) and report the
//! median per-step rate, so one step stalled by other work on the machine does not
//! decide the figure; anything else running still lowers both sides.
//!
//! Devices this binary was not built for (tch-* without `--features tch`) are reported
//! as skipped with the reason; without Python and torch the Rust figures are printed
//! alone, with how to make `.venv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use album_training::bench::{NUM_CLASSES, StepThroughput, train_step_throughput};
use album_training::config::{Optimizer, Precision, TrainConfig};
use album_training::device::DeviceKind;
use album_training::models::Head;
use anyhow::{Context, bail};

const SCRIPT: &str = "scripts/bench_train_step.py";

/// Training-step images/s on flex and LibTorch beside PyTorch eager, same model, same
/// step, same cores.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album bench train --config configs/cpu/se-resnext.toml --devices flex --steps 5
  album bench train --config configs/cpu                  (all five CPU configs)
  album bench train --config configs/cpu/vgg16.toml --config configs/cpu/alexnet.toml")]
pub struct TrainBenchArgs {
    /// A training config (TOML), or a folder whose *.toml files are all measured;
    /// repeat for several.
    #[arg(long = "config", required = true, value_name = "PATH")]
    configs: Vec<PathBuf>,
    /// Rust devices to measure, comma separated: flex, tch-cpu, tch-cuda, tch-cuda:N.
    #[arg(long, value_delimiter = ',', default_value = "flex,tch-cpu")]
    devices: Vec<String>,
    /// Timed steps per measurement.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first (allocator growth, kernel selection).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Override every config's batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Python with torch [default: .venv/bin/python if present, else python3].
    #[arg(long)]
    python: Option<PathBuf>,
    /// The PyTorch side's script.
    #[arg(long, default_value = SCRIPT)]
    script: PathBuf,
}

/// The target for a device's images/s over PyTorch eager's.
fn target(kind: DeviceKind) -> f64 {
    match kind {
        DeviceKind::Flex => 0.8,
        DeviceKind::TchCpu | DeviceKind::TchCuda(_) => 1.0,
    }
}

/// One side's measurement, or why there is none.
enum Outcome {
    Measured(StepThroughput),
    Skipped(String),
}

/// A config with what was measured for it.
struct ConfigResult {
    label: String,
    rust: Vec<(DeviceKind, Outcome)>,
    /// PyTorch per device string (`cpu`, `cuda:0`).
    python: BTreeMap<String, Outcome>,
}

pub fn run(args: TrainBenchArgs) -> anyhow::Result<()> {
    if args.steps == 0 || args.batch_size == Some(0) {
        bail!(album_training::Error::Config(
            "--steps and --batch-size must be positive".into()
        ));
    }
    let kinds = args
        .devices
        .iter()
        .map(|name| name.trim().parse::<DeviceKind>())
        .collect::<Result<Vec<_>, _>>()?;
    let configs = load_configs(&args.configs, args.batch_size)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    print_preamble(&args, threads);
    let results: Vec<ConfigResult> = configs
        .iter()
        .map(|(path, config)| measure_config(&args, path, config, &kinds, threads))
        .collect();
    print_table(&results);
    Ok(())
}

/// Every config named, folders expanded to their `*.toml` files in name order.
fn load_configs(
    paths: &[PathBuf],
    batch_size: Option<usize>,
) -> anyhow::Result<Vec<(PathBuf, TrainConfig)>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                bail!(album_training::Error::Config(format!(
                    "{} holds no .toml configs",
                    path.display()
                )));
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .map(|file| {
            let mut config = TrainConfig::load(&file)?;
            if let Some(batch) = batch_size {
                config.train.batch_size = batch;
            }
            Ok((file, config))
        })
        .collect()
}

fn print_preamble(args: &TrainBenchArgs, threads: usize) {
    println!(
        "album bench train: {} warm-up + {} timed steps on one synthetic batch, {threads} thread(s) \
         for flex (rayon), LibTorch and PyTorch ({} intra-op, 1 inter-op)",
        args.warmup, args.steps, threads
    );
    println!(
        "figure: median over steps of batch / step seconds (forward, loss with label smoothing \
         and aux heads, loss read back, backward, optimiser step); other work on the machine \
         lowers every figure and makes them noisy"
    );
}

/// Measures one config on every Rust device and on PyTorch, printing as it goes.
fn measure_config(
    args: &TrainBenchArgs,
    path: &Path,
    config: &TrainConfig,
    kinds: &[DeviceKind],
    threads: usize,
) -> ConfigResult {
    let label = format!(
        "{} w{} {}px b{}",
        config.model.name, config.model.width, config.data.crop, config.train.batch_size
    );
    println!();
    println!(
        "== {}: {label}, {:?}",
        path.display(),
        config.train.optimizer
    );
    if config.train.precision != Precision::F32 {
        println!(
            "   note: Rust runs {} as configured, PyTorch runs f32",
            config.train.precision
        );
    }
    let rust: Vec<(DeviceKind, Outcome)> = kinds
        .iter()
        .map(|&kind| {
            let outcome = measure_rust(config, kind, args);
            print_outcome(&kind.to_string(), &outcome);
            (kind, outcome)
        })
        .collect();
    let mut python = BTreeMap::new();
    for (kind, _) in rust
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Measured(_)))
    {
        let device = python_device(*kind);
        python.entry(device.clone()).or_insert_with(|| {
            let outcome = run_python(args, config, &device, threads);
            print_outcome(&format!("PyTorch eager ({device})"), &outcome);
            outcome
        });
    }
    let result = ConfigResult {
        label,
        rust,
        python,
    };
    print_param_check(&result);
    result
}

fn measure_rust(config: &TrainConfig, kind: DeviceKind, args: &TrainBenchArgs) -> Outcome {
    if !kind.is_compiled_in() {
        return Outcome::Skipped(format!(
            "this album was built without LibTorch; rebuild with `--features tch` to measure {kind}"
        ));
    }
    match train_step_throughput(config, kind, args.warmup, args.steps) {
        Ok(result) => Outcome::Measured(result),
        Err(error) => Outcome::Skipped(format!("failed: {error}")),
    }
}

/// PyTorch runs where the Rust device runs: the CPU, or the same CUDA GPU.
fn python_device(kind: DeviceKind) -> String {
    match kind {
        DeviceKind::Flex | DeviceKind::TchCpu => "cpu".into(),
        DeviceKind::TchCuda(index) => format!("cuda:{index}"),
    }
}

fn print_outcome(side: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Measured(m) => println!(
            "   {side:<22} {:>9.1} images/s (median; {:.1} overall, {:.0} ms/step median), {} params, last loss {:.3}",
            m.images_per_s,
            m.images_per_s_total,
            m.batch_size as f64 / m.images_per_s * 1e3,
            m.params,
            m.last_loss
        ),
        Outcome::Skipped(reason) => println!("   {side:<22} skipped: {reason}"),
    }
}

/// Prints both parameter counts, and a loud warning when they differ: the ratio then
/// compares two different networks.
fn print_param_check(result: &ConfigResult) {
    let rust = result.rust.iter().find_map(|(_, o)| measured(o));
    let python = result.python.values().find_map(measured);
    if let (Some(rust), Some(python)) = (rust, python) {
        if rust.params == python.params {
            println!(
                "   parameters: Rust {}, PyTorch {}: the same network",
                rust.params, python.params
            );
        } else {
            println!(
                "   !!! WARNING: parameters differ: Rust {}, PyTorch {} ({:+}). The models are \
                 not the same network and the ratio below is NOT like for like.",
                rust.params,
                python.params,
                python.params as i64 - rust.params as i64
            );
        }
    }
}

fn measured(outcome: &Outcome) -> Option<&StepThroughput> {
    match outcome {
        Outcome::Measured(m) => Some(m),
        Outcome::Skipped(_) => None,
    }
}

fn run_python(
    args: &TrainBenchArgs,
    config: &TrainConfig,
    device: &str,
    threads: usize,
) -> Outcome {
    match try_run_python(args, config, device, threads) {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Skipped(format!("{error:#}")),
    }
}

/// The script's arguments: the config's model and step, as the Rust side runs them.
fn script_args(
    args: &TrainBenchArgs,
    config: &TrainConfig,
    device: &str,
    threads: usize,
) -> Vec<String> {
    let (model, data, train) = (&config.model, &config.data, &config.train);
    let mut list: Vec<String> = vec![
        format!("--model={}", model.name),
        format!("--width={}", model.width),
        format!("--crop={}", data.crop),
        format!("--batch={}", train.batch_size),
        format!("--threads={threads}"),
        format!("--steps={}", args.steps),
        format!("--warmup={}", args.warmup),
        format!("--num-classes={NUM_CLASSES}"),
        format!("--label-smoothing={}", train.label_smoothing),
        format!("--aux-weight={}", train.aux_loss_weight),
        format!("--dropout={}", model.dropout),
        format!(
            "--head={}",
            match model.head {
                Head::Fc => "fc",
                Head::ConvPool => "conv-pool",
            }
        ),
        format!(
            "--optimizer={}",
            match train.optimizer {
                Optimizer::Sgd => "sgd",
                Optimizer::AdamW => "adamw",
            }
        ),
        format!("--lr={}", train.peak_lr()),
        format!("--momentum={}", train.momentum),
        format!("--weight-decay={}", train.weight_decay),
        format!("--seed={}", train.seed),
        format!("--device={device}"),
    ];
    if model.aux_heads {
        list.push("--aux-heads".into());
    }
    if !model.se {
        list.push("--no-se".into());
    }
    list
}

fn try_run_python(
    args: &TrainBenchArgs,
    config: &TrainConfig,
    device: &str,
    threads: usize,
) -> anyhow::Result<Outcome> {
    const HOW: &str = "scripts/setup-torch.sh makes .venv with PyTorch 2.11 and torchvision";
    let python = args.python.clone().unwrap_or_else(super::default_python);
    let script = super::locate(&args.script);
    if !script.exists() {
        return Ok(Outcome::Skipped(format!(
            "the script {} is missing",
            script.display()
        )));
    }
    let output = match Command::new(&python)
        .arg(&script)
        .args(script_args(args, config, device, threads))
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            return Ok(Outcome::Skipped(format!(
                "cannot run {} ({error}); {HOW}",
                python.display()
            )));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if let Some(reason) = stdout.lines().find_map(|l| l.strip_prefix("NO_TORCH ")) {
        return Ok(Outcome::Skipped(format!(
            "{} cannot import torch ({reason}); {HOW}",
            python.display()
        )));
    }
    let last_json = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match last_json {
        Some(line) if output.status.success() => {
            Ok(Outcome::Measured(StepThroughput::from_json(line)?))
        }
        _ => Ok(Outcome::Skipped(format!(
            "{} {} failed ({}): {}",
            python.display(),
            script.display(),
            output.status,
            stderr_tail(&output.stderr)
        ))),
    }
}

/// The last few lines of a failed script's error output, on one line.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// The summary: one row per config and Rust device.
fn print_table(results: &[ConfigResult]) {
    println!();
    println!(
        "  {:<28} {:<10} {:>10} {:>10} {:>8} {:>8}  {:<9} params",
        "model", "device", "images/s", "PyTorch", "ratio", "target", "verdict"
    );
    for result in results {
        for (kind, outcome) in &result.rust {
            print_row(result, *kind, outcome);
        }
    }
}

fn print_row(result: &ConfigResult, kind: DeviceKind, outcome: &Outcome) {
    let goal = target(kind);
    let Outcome::Measured(rust) = outcome else {
        println!(
            "  {:<28} {:<10} {:>10} {:>10} {:>8} {:>7.1}×  skipped",
            result.label,
            kind.to_string(),
            "—",
            "—",
            "—",
            goal
        );
        return;
    };
    let python = result.python.get(&python_device(kind)).and_then(measured);
    let Some(python) = python else {
        println!(
            "  {:<28} {:<10} {:>10.1} {:>10} {:>8} {:>7.1}×  no PyTorch figure",
            result.label,
            kind.to_string(),
            rust.images_per_s,
            "—",
            "—",
            goal
        );
        return;
    };
    let ratio = rust.images_per_s / python.images_per_s;
    let verdict = if ratio >= goal { "met" } else { "NOT met" };
    let params = if rust.params == python.params {
        "same"
    } else {
        "DIFFER!"
    };
    println!(
        "  {:<28} {:<10} {:>10.1} {:>10.1} {:>7.2}× {:>7.1}×  {:<9} {params}",
        result.label,
        kind.to_string(),
        rust.images_per_s,
        python.images_per_s,
        ratio,
        goal,
        verdict
    );
}
