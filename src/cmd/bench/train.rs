//! `album bench train`: images/s of one training step (forward, loss, backward, update)
//! on each Rust device beside PyTorch eager doing the same step to the same
//! architecture, on the same number of cores, printed as ratios against the project's
//! targets (LibTorch ≥ 1.0× PyTorch, flex ≥ 0.6×), then the seconds per step inside
//! each layer operation (conv, batch norm, ReLU; forward and backward) beside PyTorch's
//! profiler figures for the same ATen operators, so a regression points at its op.
//!
//! `--kernels burn` measures burn's own layer operations instead of the project's
//! (`album_training::ops`); `--kernels project,burn` measures both in one run.
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

use album_training::bench::{NUM_CLASSES, StepThroughput, median, train_step_throughput};
use album_training::config::{Optimizer, Precision, TrainConfig};
use album_training::device::DeviceKind;
use album_training::models::Head;
use album_training::ops::Kernels;
use album_training::ops::profile::Op;
use anyhow::{Context, bail};

const SCRIPT: &str = "scripts/bench_train_step.py";

/// Training-step images/s on flex and LibTorch beside PyTorch eager, same model, same
/// step, same cores.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album bench train --config configs/cpu/se-resnext.toml --devices flex --steps 5
  album bench train --config configs/cpu --rounds 3       (every CPU config, 3 rounds)
  album bench train --config configs/cpu/vgg16.toml --config configs/cpu/alexnet.toml
  album bench train --config configs/cpu/se-resnext.toml --kernels project,burn")]
pub struct TrainBenchArgs {
    /// A training config (TOML), or a folder whose *.toml files are all measured;
    /// repeat for several.
    #[arg(long = "config", required = true, value_name = "PATH")]
    configs: Vec<PathBuf>,
    /// Rust devices to measure, comma separated: flex, tch-cpu, tch-cuda, tch-cuda:N.
    #[arg(long, value_delimiter = ',', default_value = "flex,tch-cpu")]
    devices: Vec<String>,
    /// Layer operations on the Rust side, comma separated: project (smart-album's own
    /// kernels), burn (burn's), or both.
    #[arg(long, value_delimiter = ',', default_value = "project")]
    kernels: Vec<String>,
    /// Timed steps per measurement.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Extra PyTorch steps run under torch.profiler for the per-op table (0: no table).
    #[arg(long, default_value_t = 3)]
    profile_steps: usize,
    /// Let cuDNN pick convolution algorithms by timing them, on both sides (PyTorch's
    /// `torch.backends.cudnn.benchmark`); only matters on CUDA.
    #[arg(long)]
    cudnn_benchmark: bool,
    /// Untimed steps first (allocator growth, kernel selection).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Rounds per config: each round measures every Rust side and then PyTorch, so a
    /// ratio compares measurements taken minutes apart at most; the table gives the
    /// median ratio over rounds and its range (the machine is shared and noisy).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Override every config's batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Override every config's crop side (the image side the model sees).
    #[arg(long)]
    crop: Option<u32>,
    /// Override every config's precision (f32, bf16, f16), on both sides: burn and
    /// PyTorch then run the whole model in that type (neither uses autocast).
    #[arg(long)]
    precision: Option<Precision>,
    /// Python with torch [default: .venv/bin/python if present, else python3].
    #[arg(long)]
    python: Option<PathBuf>,
    /// The PyTorch side's script.
    #[arg(long, default_value = SCRIPT)]
    script: PathBuf,
}

/// The project's target for a device's images/s over PyTorch eager's.
fn target(kind: DeviceKind) -> f64 {
    match kind {
        DeviceKind::Flex => 0.6,
        DeviceKind::TchCpu | DeviceKind::TchCuda(_) => 1.0,
    }
}

/// One side's measurement, or why there is none.
#[derive(Clone)]
enum Outcome {
    Measured(StepThroughput),
    Skipped(String),
}

/// One Rust side (a device with a set of layer operations), measured once per round.
struct RustRun {
    kind: DeviceKind,
    kernels: Kernels,
    rounds: Vec<Outcome>,
}

/// A config with what was measured for it.
struct ConfigResult {
    label: String,
    rust: Vec<RustRun>,
    /// PyTorch per device string (`cpu`, `cuda:0`), once per round.
    python: BTreeMap<String, Vec<Outcome>>,
}

pub fn run(args: TrainBenchArgs) -> anyhow::Result<()> {
    if args.steps == 0 || args.batch_size == Some(0) || args.rounds == 0 {
        bail!(album_training::Error::Config(
            "--steps, --rounds and --batch-size must be positive".into()
        ));
    }
    let kinds = args
        .devices
        .iter()
        .map(|name| name.trim().parse::<DeviceKind>())
        .collect::<Result<Vec<_>, _>>()?;
    let kernels = args
        .kernels
        .iter()
        .map(|name| name.trim().parse::<Kernels>())
        .collect::<Result<Vec<_>, _>>()?;
    album_training::bench::set_cudnn_benchmark(args.cudnn_benchmark);
    let configs = load_configs(&args)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    print_preamble(&args, threads);
    let results: Vec<ConfigResult> = configs
        .iter()
        .map(|(path, config)| measure_config(&args, path, config, &kinds, &kernels, threads))
        .collect();
    print_table(&results);
    Ok(())
}

/// Every config named, folders expanded to their `*.toml` files in name order, with the
/// command line's overrides applied.
fn load_configs(args: &TrainBenchArgs) -> anyhow::Result<Vec<(PathBuf, TrainConfig)>> {
    let mut files = Vec::new();
    for path in &args.configs {
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
            if let Some(batch) = args.batch_size {
                config.train.batch_size = batch;
            }
            if let Some(crop) = args.crop {
                config.data.crop = crop;
                config.data.resize = config.data.resize.max(crop);
            }
            if let Some(precision) = args.precision {
                config.train.precision = precision;
            }
            config.validate()?;
            Ok((file, config))
        })
        .collect()
}

fn print_preamble(args: &TrainBenchArgs, threads: usize) {
    println!(
        "album bench train: {} warm-up + {} timed steps on one synthetic batch, {} round(s), \
         {threads} thread(s) for flex (rayon), LibTorch and PyTorch ({} intra-op, 1 inter-op)",
        args.warmup, args.steps, args.rounds, threads
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
    kernels: &[Kernels],
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
            "   {}: the whole model in that type on both sides (no autocast)",
            config.train.precision
        );
    }
    let mut rust: Vec<RustRun> = kinds
        .iter()
        .flat_map(|&kind| {
            kernels.iter().map(move |&kernels| RustRun {
                kind,
                kernels,
                rounds: Vec::new(),
            })
        })
        .collect();
    let mut python: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
    for round in 0..args.rounds {
        if args.rounds > 1 {
            println!("   round {}/{}", round + 1, args.rounds);
        }
        for run in &mut rust {
            // A side that could not run (not built in, failed) is not tried again.
            let outcome = match run.rounds.first() {
                Some(Outcome::Skipped(reason)) => Outcome::Skipped(reason.clone()),
                _ => {
                    let outcome = measure_rust(config, run.kind, run.kernels, args);
                    print_outcome(&rust_side(run.kind, run.kernels), &outcome);
                    outcome
                }
            };
            run.rounds.push(outcome);
        }
        let devices: std::collections::BTreeSet<String> = rust
            .iter()
            .filter(|run| run.rounds.iter().any(|o| measured(o).is_some()))
            .map(|run| python_device(run.kind))
            .collect();
        for device in devices {
            let rounds = python.entry(device.clone()).or_default();
            let outcome = match rounds.first() {
                Some(Outcome::Skipped(reason)) => Outcome::Skipped(reason.clone()),
                _ => {
                    let outcome = run_python(args, config, &device, threads);
                    print_outcome(&format!("PyTorch eager ({device})"), &outcome);
                    outcome
                }
            };
            rounds.push(outcome);
        }
    }
    let result = ConfigResult {
        label,
        rust,
        python,
    };
    print_param_check(&result);
    print_op_table(&result);
    result
}

/// How a Rust measurement is named in the output: the device, and the kernels when
/// they are burn's.
fn rust_side(kind: DeviceKind, kernels: Kernels) -> String {
    match kernels {
        Kernels::Project => kind.to_string(),
        Kernels::Burn => format!("{kind} (burn ops)"),
    }
}

fn measure_rust(
    config: &TrainConfig,
    kind: DeviceKind,
    kernels: Kernels,
    args: &TrainBenchArgs,
) -> Outcome {
    if !kind.is_compiled_in() {
        return Outcome::Skipped(format!(
            "this album was built without LibTorch; rebuild with `--features tch` to measure {kind}"
        ));
    }
    match train_step_throughput(config, kind, args.warmup, args.steps, kernels) {
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
    let rust = result
        .rust
        .iter()
        .find_map(|run| run.rounds.iter().find_map(measured));
    let python = result
        .python
        .values()
        .find_map(|rounds| rounds.iter().find_map(measured));
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
        format!("--precision={}", config.train.precision),
        format!("--profile-ops={}", args.profile_steps),
    ];
    if args.cudnn_benchmark {
        list.push("--cudnn-benchmark".into());
    }
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

/// Per layer operation, milliseconds per step on each Rust device (project kernels) and
/// in PyTorch, averaged over the rounds, with the rest of the step ("other": pooling,
/// linear layers, loss, optimiser, autodiff bookkeeping) as the time left over in the
/// steps the operations were timed in (PyTorch's profiled steps run slower than its
/// timed ones).
fn print_op_table(result: &ConfigResult) {
    let timed: Vec<(&RustRun, OpMillis)> = result
        .rust
        .iter()
        .filter_map(|run| OpMillis::over(&run.rounds).map(|ms| (run, ms)))
        .collect();
    if timed.is_empty() {
        return;
    }
    println!("   per operation, ms per step (Rust / PyTorch):");
    for (run, ours) in &timed {
        let theirs = result
            .python
            .get(&python_device(run.kind))
            .and_then(|rounds| OpMillis::over(rounds));
        let mut cells = Vec::new();
        for op in Op::ALL {
            let label = op.label();
            let mine = ours.ops.get(label).copied().unwrap_or(0.0);
            match theirs.as_ref().and_then(|t| t.ops.get(label)) {
                Some(other) => cells.push(format!("{label} {mine:.1}/{other:.1}")),
                None => cells.push(format!("{label} {mine:.1}/—")),
            }
        }
        let rest = theirs
            .as_ref()
            .map_or("—".into(), |t| format!("{:.1}", t.other()));
        cells.push(format!("other {:.1}/{rest}", ours.other()));
        println!("     {:<12} {}", run.kind.to_string(), cells.join(", "));
    }
}

/// Milliseconds per step in each timed operation and in the whole step, averaged over
/// the measured rounds that timed operations.
struct OpMillis {
    ops: BTreeMap<String, f64>,
    step: f64,
}

impl OpMillis {
    fn over(rounds: &[Outcome]) -> Option<Self> {
        let timed: Vec<&StepThroughput> = rounds
            .iter()
            .filter_map(measured)
            .filter(|m| !m.op_seconds.is_empty())
            .collect();
        if timed.is_empty() {
            return None;
        }
        let n = timed.len() as f64;
        let mut ops = BTreeMap::new();
        for m in &timed {
            for (label, seconds) in &m.op_seconds {
                *ops.entry(label.clone()).or_insert(0.0) += seconds * 1e3 / n;
            }
        }
        let step = timed
            .iter()
            .map(|m| {
                let seconds = m
                    .op_step_seconds
                    .unwrap_or(m.batch_size as f64 / m.images_per_s);
                seconds * 1e3 / n
            })
            .sum();
        Some(OpMillis { ops, step })
    }

    /// The step time outside the timed operations.
    fn other(&self) -> f64 {
        self.step - self.ops.values().sum::<f64>()
    }
}

/// The summary: one row per config, Rust device and kernels.
fn print_table(results: &[ConfigResult]) {
    println!();
    println!(
        "  {:<28} {:<22} {:>10} {:>10} {:>8} {:>13} {:>7}  {:<9} params",
        "model", "device", "images/s", "PyTorch", "ratio", "range", "target", "verdict"
    );
    for result in results {
        for run in &result.rust {
            print_row(result, run);
        }
    }
}

/// A row: medians over rounds, and the range of the per-round ratios (each round's
/// Rust figure over the same round's PyTorch figure).
fn print_row(result: &ConfigResult, run: &RustRun) {
    let side = rust_side(run.kind, run.kernels);
    let goal = target(run.kind);
    let rust: Vec<f64> = run
        .rounds
        .iter()
        .filter_map(measured)
        .map(|m| m.images_per_s)
        .collect();
    if rust.is_empty() {
        println!(
            "  {:<28} {:<22} {:>10} {:>10} {:>8} {:>13} {:>6.1}×  skipped",
            result.label, side, "—", "—", "—", "—", goal
        );
        return;
    }
    let python_rounds = result.python.get(&python_device(run.kind));
    let python: Vec<f64> = python_rounds
        .map(|rounds| {
            rounds
                .iter()
                .filter_map(measured)
                .map(|m| m.images_per_s)
                .collect()
        })
        .unwrap_or_default();
    if python.is_empty() {
        println!(
            "  {:<28} {:<22} {:>10.1} {:>10} {:>8} {:>13} {:>6.1}×  no PyTorch figure",
            result.label,
            side,
            median(&rust),
            "—",
            "—",
            "—",
            goal
        );
        return;
    }
    let ratios: Vec<f64> = run
        .rounds
        .iter()
        .zip(python_rounds.into_iter().flatten())
        .filter_map(|(r, p)| Some(measured(r)?.images_per_s / measured(p)?.images_per_s))
        .collect();
    let ratio = median(&ratios);
    let (low, high) = ratios
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &r| (l.min(r), h.max(r)));
    let verdict = if ratio >= goal { "met" } else { "NOT met" };
    let same = run
        .rounds
        .iter()
        .filter_map(measured)
        .zip(python_rounds.into_iter().flatten().filter_map(measured))
        .all(|(r, p)| r.params == p.params);
    let params = if same { "same" } else { "DIFFER!" };
    println!(
        "  {:<28} {:<22} {:>10.1} {:>10.1} {:>7.2}× {:>13} {:>6.1}×  {:<9} {params}",
        result.label,
        side,
        median(&rust),
        median(&python),
        ratio,
        format!("{low:.2}–{high:.2}×"),
        goal,
        verdict
    );
}
