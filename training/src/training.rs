//! The one training loop every model shares.
//!
//! ```text
//! config.toml ─► RunData (train + val, decoded once, cached)
//!             ─► Prefetcher (worker thread: crop, flip, normalise the next batches)
//!             ─► Model on device.autodiff()  ─► per step: batch → forward → loss
//!                (+ aux losses) → backward → SGD/AdamW step at the scheduled rate;
//!                loss and top-k ranks stay on the device, read back every 16 steps
//!                (+ the EMA of the weights, when the config keeps one)
//!             ─► per epoch: validation (no autodiff; the EMA weights too), metrics
//!                tables, charts, checkpoints/last (and best)
//! ```
//!
//! A run lives in `experiments/<run-id>/`: `config.toml` (resolved), `provenance.json`
//! (git revision, data-manifest hashes, seed, device), the metrics tables
//! ([`crate::metrics`]), `loss.png` and `accuracy.png`, `checkpoints/` and `summary.json`.
//! `--resume` reloads `checkpoints/last` and starts the next epoch; a run killed mid-epoch
//! repeats that epoch from its start, with the same shuffle and augmentation (both are
//! seeded by seed and epoch), so a resumed run takes the same steps as an unbroken one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use album_dataset::data::{ImageBatcher, ImageDataset, Prefetcher, PreprocessConfig};
use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, TrainState};
use crate::config::{Optimizer, Precision, TrainConfig};
use crate::data::{RunData, for_each_chunk};
use crate::ema::ModelEma;
use crate::metrics::{self, BatchRow, EpochRow, Tally};
use crate::mix;
use crate::models::{Model, ModelOutput};
use crate::ops::{self, Kernels};
use crate::optim::{FusedAdamW, FusedSgd};
use crate::plots;
use crate::provenance::{Provenance, git_state, write_atomically};
use crate::schedule::LrSchedule;
use crate::{Error, Result};

/// How `album train` was asked to run, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Parent of new run directories (`experiments`).
    pub out_root: PathBuf,
    /// Name of a new run's directory; default `<model>-<UTC time>`.
    pub run_id: Option<String>,
    /// An existing run directory to continue.
    pub resume: Option<PathBuf>,
    /// Stop after this many optimiser steps in this session, as if killed: an epoch
    /// cut short is neither validated nor checkpointed (a smoke test, and how tests
    /// interrupt a run to resume it).
    pub max_steps: Option<usize>,
    /// Fit this invocation of the run into this much time: after each epoch the run's epoch count is
    /// cut to what still fits, judged by that epoch's duration (the learning-rate
    /// schedule ends with it; never past the config's count).
    pub time_limit: Option<Duration>,
    /// Draw progress bars.
    pub progress: bool,
    /// The command line, recorded in provenance.json.
    pub command_line: Vec<String>,
}

/// What a finished (or stopped) run reports, also written as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub model: String,
    pub device: String,
    pub precision: String,
    pub params: usize,
    pub epochs_done: usize,
    pub steps: usize,
    pub best_val_top1: f32,
    pub best_epoch: Option<usize>,
    pub last_epoch: Option<EpochRow>,
    /// The loss of the last optimiser step taken.
    pub last_loss: Option<f32>,
    /// Steps whose loss was NaN or infinite (bf16 and f16 runs report this; burn has no
    /// automatic mixed precision, so the whole model ran in that type).
    pub nonfinite_steps: usize,
    pub loss_stayed_finite: bool,
    pub stopped_early: bool,
    /// The session stopped at `max_steps` inside an epoch; that epoch will be redone.
    pub interrupted: bool,
    pub seconds: f64,
    pub resumes: usize,
}

/// Trains a new run from `config`, or continues `options.resume`.
pub fn train(config: TrainConfig, options: &RunOptions) -> Result<RunSummary> {
    let (config, run_dir, resuming) = prepare_run_dir(config, options)?;
    let mut session = match start_session(config, &run_dir, resuming, options) {
        Ok(session) => session,
        Err(e) => {
            if !resuming {
                // Nothing was trained: a folder holding at most the run's header would
                // only be mistaken for a run (and block the same --run-id next time).
                let _ = std::fs::remove_dir_all(&run_dir);
            }
            return Err(e);
        }
    };
    session.run(options)
}

/// Everything before the first step: the device, the data, the run's header files, the
/// model and optimiser (or their checkpoint).
fn start_session(
    mut config: TrainConfig,
    run_dir: &Path,
    resuming: bool,
    options: &RunOptions,
) -> Result<Session> {
    let kind = config.train.device_kind()?;
    let device = configured_device(kind.device()?, config.train.precision)?;
    let data = RunData::load(&config.data)?;
    config.model.num_classes = data.class_names.len();
    if !resuming {
        write_run_header(run_dir, &config, &data, options)?;
    }
    Session::start(config, device, data, run_dir.to_path_buf(), resuming)
}

/// A clear error when `run_dir` does not exist at all: on a fresh clone the examples'
/// runs (experiments/alexnet-try) are made by an earlier `album train`, and committed
/// study runs keep no checkpoints.
pub fn require_run_dir(run_dir: &Path) -> Result<()> {
    if run_dir.is_dir() {
        return Ok(());
    }
    Err(Error::Run(format!(
        "no run directory at {}: train one first (`album train --config <config> --run-id \
         <name>` writes experiments/<name>)",
        run_dir.display()
    )))
}

/// Creates a new run directory (refusing to reuse one) or checks the one to resume.
fn prepare_run_dir(
    config: TrainConfig,
    options: &RunOptions,
) -> Result<(TrainConfig, PathBuf, bool)> {
    if let Some(run_dir) = &options.resume {
        require_run_dir(run_dir)?;
        let saved = TrainConfig::load(&run_dir.join("config.toml")).map_err(|e| {
            Error::Resume(format!("{} is not a run directory: {e}", run_dir.display()))
        })?;
        return Ok((saved, run_dir.clone(), true));
    }
    let run_id = options.run_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            config.model.name,
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        )
    });
    if run_id.is_empty() || run_id.contains(['/', '\\']) || run_id.starts_with('.') {
        return Err(Error::Config(format!(
            "run id {run_id:?} must be a plain folder name"
        )));
    }
    let run_dir = options.out_root.join(run_id);
    if run_dir.exists() {
        return Err(Error::Config(format!(
            "{} already exists: continue it with --resume {0}, or choose another --run-id",
            run_dir.display()
        )));
    }
    std::fs::create_dir_all(&run_dir).map_err(|e| Error::io("create", &run_dir, e))?;
    Ok((config, run_dir, false))
}

/// Sets the device's float type: burn has no automatic mixed precision, so bf16 and f16
/// mean every parameter, activation and gradient in that type. burn fixes a device's
/// float type for the whole process once the device is first used, so this must come
/// before anything else touches it (`album train` runs one model per process).
pub fn configured_device(mut device: Device, precision: Precision) -> Result<Device> {
    let wanted = match precision {
        Precision::F32 => FloatDType::F32,
        Precision::Bf16 => FloatDType::BF16,
        Precision::F16 => FloatDType::F16,
    };
    if precision != Precision::F32 && device.configure(wanted).is_ok() {
        return Ok(device);
    }
    // Already in use (or float32, the default): fine if its float type is the one wanted,
    // as when one process benchmarks several bf16 models.
    let actual = Tensor::<1>::zeros([1], &device).dtype();
    if actual == DType::from(wanted) {
        return Ok(device);
    }
    Err(Error::Device {
        name: format!("{device:?}"),
        message: format!(
            "cannot run in {precision}: this process already uses the device in {actual:?} \
             (burn sets a device's float type once per process, before its first use)"
        ),
    })
}

fn write_run_header(
    run_dir: &Path,
    config: &TrainConfig,
    data: &RunData,
    options: &RunOptions,
) -> Result<()> {
    write_atomically(&run_dir.join("config.toml"), config.to_toml()?.as_bytes())?;
    let (git_revision, git_dirty) = git_state();
    Provenance {
        git_revision,
        git_dirty,
        train_manifest_sha256: data.train_hash.clone(),
        val_manifest_sha256: data.val_hash.clone(),
        train_images: data.train.len(),
        val_images: data.val.len(),
        class_names: data.class_names.clone(),
        seed: config.train.seed,
        device: config.train.device.clone(),
        precision: config.train.precision.to_string(),
        burn_version: "0.22.1".into(),
        command_line: options.command_line.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
        cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
    .write(&run_dir.join("provenance.json"))
}

/// The loss every model trains on: cross-entropy with the config's label smoothing, plus
/// `aux_loss_weight` × the same loss of each auxiliary classifier (GoogLeNet's).
pub struct TrainingLoss {
    cross_entropy: CrossEntropyLoss,
    aux_weight: f32,
}

impl TrainingLoss {
    pub fn new(config: &TrainConfig, device: &Device) -> Self {
        let smoothing = config.train.label_smoothing;
        TrainingLoss {
            cross_entropy: CrossEntropyLossConfig::new()
                .with_smoothing((smoothing > 0.0).then_some(smoothing))
                .init(device),
            aux_weight: config.train.aux_loss_weight,
        }
    }

    /// The scalar loss (shape `[1]`) of one batch's output.
    pub fn forward(&self, output: ModelOutput, targets: Tensor<1, Int>) -> Tensor<1> {
        let mut loss = self.cross_entropy.forward(output.logits, targets.clone());
        for aux in output.aux_logits {
            loss = loss + self.cross_entropy.forward(aux, targets.clone()) * self.aux_weight;
        }
        loss
    }
}

/// Collects the ids of rank-1 parameters: biases and norm scales and shifts, which
/// never get weight decay (decaying them only pulls the norms towards zero).
#[derive(Default)]
struct NoDecayIds(Vec<ParamId>);

impl ModuleVisitor for NoDecayIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if D <= 1 {
            self.0.push(param.id);
        }
    }
}

/// AdamW's ε: PyTorch's default (burn's is 1e-5).
const ADAMW_EPSILON: f64 = 1e-8;

/// The optimiser, with weight decay on weights only.
pub fn build_optimizer(config: &TrainConfig, model: &Model) -> ModuleOptimizer {
    let mut no_decay = NoDecayIds::default();
    model.visit(&mut no_decay);
    let train = &config.train;
    let decay =
        (train.weight_decay > 0.0).then(|| WeightDecayConfig::new(train.weight_decay as f32));
    let group = ParamGroup::from_ids(no_decay.0);
    match train.optimizer {
        // The project's fused update (one operation per parameter), or burn's own `Sgd`
        // when the layer operations are burn's: the same rule, recorded under the same
        // names.
        Optimizer::Sgd if ops::kernels() == Kernels::Project => {
            let fused = |weight_decay| FusedSgd {
                momentum: train.momentum,
                weight_decay,
            };
            ModuleOptimizer::from(fused(train.weight_decay)).with_group(group, fused(0.0), None)
        }
        Optimizer::Sgd => {
            // PyTorch's SGD semantics: no dampening, no Nesterov.
            let momentum = (train.momentum > 0.0).then_some(MomentumConfig {
                momentum: train.momentum,
                dampening: 0.0,
                nesterov: false,
            });
            let with_decay = SgdConfig::new()
                .with_momentum(momentum.clone())
                .with_weight_decay(decay);
            let without = SgdConfig::new().with_momentum(momentum).build();
            with_decay.init().with_group(group, without, None)
        }
        Optimizer::AdamW if ops::kernels() == Kernels::Project => {
            let fused = |weight_decay| FusedAdamW::new(ADAMW_EPSILON, weight_decay);
            ModuleOptimizer::from(fused(train.weight_decay)).with_group(group, fused(0.0), None)
        }
        Optimizer::AdamW => {
            let adamw = |weight_decay: f64| {
                AdamWConfig::new()
                    .with_weight_decay(weight_decay as f32)
                    .with_epsilon(ADAMW_EPSILON as f32)
            };
            adamw(train.weight_decay)
                .init()
                .with_group(group, adamw(0.0).build(), None)
        }
    }
}

/// One process's share of a run: from the start or a checkpoint to the last epoch.
struct Session {
    config: TrainConfig,
    device: Device,
    data: RunData,
    run_dir: PathBuf,
    model: Model,
    optimizer: ModuleOptimizer,
    /// The moving average of the weights (`train.ema_decay` > 0).
    ema: Option<ModelEma>,
    state: TrainState,
    schedule: LrSchedule,
    steps_per_epoch: usize,
    params: usize,
    /// The config's epoch count when the session started: a time limit never goes past it.
    epoch_ceiling: usize,
}

impl Session {
    fn start(
        config: TrainConfig,
        device: Device,
        data: RunData,
        run_dir: PathBuf,
        resuming: bool,
    ) -> Result<Self> {
        let batch = config.train.batch_size;
        let steps_per_epoch = data.train.len() / batch;
        if steps_per_epoch == 0 {
            return Err(Error::Config(format!(
                "{} training photos make no full batch of {batch}",
                data.train.len()
            )));
        }
        device.seed(config.train.seed);
        let autodiff = device.clone().autodiff();
        let mut model = config.model.init(&autodiff)?;
        let mut optimizer = build_optimizer(&config, &model);
        let mut state = TrainState::default();
        if resuming {
            let last = checkpoint::latest(&run_dir).ok_or_else(|| {
                Error::Resume(format!(
                    "{} has no complete checkpoint yet (the first epoch never finished): \
                     start it again without --resume",
                    run_dir.display()
                ))
            })?;
            state = checkpoint::read_state(&last)?;
            model = checkpoint::load_model(model, &last)?;
            optimizer = checkpoint::load_optimizer(optimizer, &last)?;
            state.resumes += 1;
        }
        let ema = Self::start_ema(&config, &device, &model, &run_dir, resuming, &state)?;
        let params = model.num_params();
        let config_epochs = config.train.epochs;
        Ok(Session {
            ema,
            schedule: LrSchedule::new(&config.train, steps_per_epoch),
            config,
            device,
            data,
            run_dir,
            model,
            optimizer,
            state,
            steps_per_epoch,
            params,
            epoch_ceiling: config_epochs,
        })
    }

    /// A new average starts at the model's first weights; a resumed run continues the
    /// one saved with its last checkpoint (one update per step so far).
    fn start_ema(
        config: &TrainConfig,
        device: &Device,
        model: &Model,
        run_dir: &Path,
        resuming: bool,
        state: &TrainState,
    ) -> Result<Option<ModelEma>> {
        let decay = config.train.ema_decay;
        if decay <= 0.0 {
            return Ok(None);
        }
        let saved = checkpoint::latest(run_dir)
            .map(|last| last.join(checkpoint::EMA_MODEL))
            .filter(|path| resuming && path.is_file());
        let Some(saved) = saved else {
            return Ok(Some(ModelEma::new(model, decay)));
        };
        let averaged = checkpoint::load_weights(config.model.init(device)?, &saved)?;
        Ok(Some(ModelEma::resumed(&averaged, decay, state.step)))
    }

    fn run(&mut self, options: &RunOptions) -> Result<RunSummary> {
        let session_started = Instant::now();
        let mut session_steps = 0usize;
        let mut stopped_early = false;
        let mut interrupted = false;
        while self.state.epochs_done < self.config.train.epochs {
            let epoch = self.state.epochs_done;
            let started = Instant::now();
            let budget = options
                .max_steps
                .map(|max| max.saturating_sub(session_steps));
            let train = self.train_epoch(epoch, budget, options.progress)?;
            session_steps += train.steps;
            if train.steps < self.steps_per_epoch {
                eprintln!(
                    "stopped after {session_steps} steps (--max-steps), {} into epoch {}: \
                     not checkpointed; --resume redoes that epoch",
                    train.steps,
                    epoch + 1
                );
                interrupted = true;
                break;
            }
            let val = self.validate(&self.model.valid(), options.progress)?;
            let ema_model = self
                .ema
                .as_ref()
                .map(|ema| ema.apply_to(self.model.valid()));
            let ema_val = match &ema_model {
                Some(model) => Some(self.validate(model, options.progress)?),
                None => None,
            };
            let mut row = self.epoch_row(epoch, &train, &val, started.elapsed().as_secs_f64());
            if let Some(ema_val) = &ema_val {
                row.ema_val_loss = Some(ema_val.tally.mean_loss());
                row.ema_val_top1 = Some(ema_val.tally.accuracy(0));
            }
            let improved = self.record_epoch(row);
            checkpoint::save(
                &self.run_dir,
                &self.model,
                ema_model.as_ref(),
                &self.optimizer,
                &self.state,
                improved,
            )?;
            self.write_reports()?;
            self.print_epoch();
            let patience = self.config.train.early_stop_patience;
            if patience > 0 && self.state.epochs_without_improvement >= patience {
                eprintln!("early stop: no better validation top-1 for {patience} epochs");
                stopped_early = true;
                break;
            }
            if options.max_steps.is_some_and(|max| session_steps >= max) {
                break;
            }
            if let Some(limit) = options.time_limit {
                let left = limit.saturating_sub(session_started.elapsed());
                self.fit_epochs_into(left, started.elapsed())?;
            }
        }
        let summary = self.summary(stopped_early, interrupted);
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| Error::io("serialise", &self.run_dir, e))?;
        write_atomically(&self.run_dir.join("summary.json"), text.as_bytes())?;
        Ok(summary)
    }

    /// Sets the run's epoch count so that the epochs still to come, each taking about
    /// `epoch` (the one just done), end within `left`; the schedule is rebuilt for the
    /// new count and the run directory's config.toml rewritten, so that a resume and
    /// the reports see the run as it was trained. The count may grow back when epochs
    /// get faster (the first is slowed by warm-up), never past the configured one.
    fn fit_epochs_into(&mut self, left: Duration, epoch: Duration) -> Result<()> {
        let more = (left.as_secs_f64() / epoch.as_secs_f64().max(1e-3)).floor() as usize;
        let fits = (self.state.epochs_done + more).min(self.epoch_ceiling);
        let planned = self.config.train.epochs;
        // Cut at once; grow back only by a clear margin, so that noise in epoch times
        // does not move the schedule's end back and forth.
        if fits == planned || (fits > planned && fits < planned + 2) {
            return Ok(());
        }
        eprintln!(
            "time limit: {fits} of {} epochs fit (an epoch takes {:.1} s, {:.0} s \
             left); the learning-rate schedule now ends after epoch {fits}",
            self.epoch_ceiling,
            epoch.as_secs_f64(),
            left.as_secs_f64()
        );
        self.config.train.epochs = fits;
        self.schedule = LrSchedule::new(&self.config.train, self.steps_per_epoch);
        write_atomically(
            &self.run_dir.join("config.toml"),
            self.config.to_toml()?.as_bytes(),
        )
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        budget: Option<usize>,
        progress: bool,
    ) -> Result<EpochTrain> {
        let train = self.config.train.clone();
        // Dropout draws from the device's generator: seeding it per epoch makes a resumed
        // epoch draw what the unbroken run drew.
        self.device.seed(train.seed.wrapping_add(1 + epoch as u64));
        let preprocess = PreprocessConfig::sized(self.config.data.resize, self.config.data.crop)
            .with_augment(self.config.data.augment.clone());
        let batcher = ImageBatcher::train(&preprocess, train.seed)?;
        let dataset = ImageDataset::new(self.data.train.clone());
        dataset.set_epoch(epoch as u64);
        let steps = budget.map_or(self.steps_per_epoch, |b| b.min(self.steps_per_epoch));
        let chunks: Vec<Vec<usize>> = shuffled(dataset.images().len(), train.seed, epoch)
            .chunks_exact(train.batch_size)
            .take(steps)
            .map(<[usize]>::to_vec)
            .collect();
        let batches = Prefetcher::spawn(dataset, batcher, chunks, PREFETCH_DEPTH)?;
        let autodiff = self.device.clone().autodiff();
        let loss_fn = TrainingLoss::new(&self.config, &autodiff);
        let bar = progress.then(|| album_dataset::progress::bar(steps as u64, "batches"));
        let mut metrics = StepMetrics::new(epoch);
        // In f32 a non-finite loss means divergence, found when the interval is read back;
        // bf16 and f16 overflow now and then, so those runs look at every step's loss
        // and skip the update instead (one read-back per step).
        let check_each_step = train.precision != Precision::F32;
        let mut consecutive_nonfinite = 0usize;
        for batch in batches {
            let mut batch = batch?;
            let (count, crop) = (batch.len(), batch.crop);
            let mixed = mix::mix_batch(
                &mut batch.pixels,
                count,
                crop,
                &train,
                (epoch, self.state.step),
            );
            let partner_targets = mixed
                .as_ref()
                .map(|m| (m.lambda, m.partner_targets(&batch.targets)));
            let batch = batch.to_device(&autodiff);
            let output = self.model.forward_train(batch.images);
            let ranks = metrics::target_ranks(output.logits.clone(), batch.targets.clone());
            let loss = match partner_targets {
                // λ·L(y) + (1 − λ)·L(y[perm]): the loss of the blended target
                Some((lambda, partners)) => {
                    let count = partners.len();
                    let partners = Tensor::from_data(TensorData::new(partners, [count]), &autodiff);
                    loss_fn.forward(output.clone(), batch.targets) * lambda
                        + loss_fn.forward(output, partners) * (1.0 - lambda)
                }
                None => loss_fn.forward(output, batch.targets),
            };
            let lr = self.schedule.at(self.state.step);
            let finite = !check_each_step || host_f32(loss.clone().reshape([1]))?[0].is_finite();
            if finite {
                let grads = GradientsParams::from_grads(loss.backward(), &self.model);
                self.model = self.optimizer.step(lr, self.model.clone(), grads);
                if let Some(ema) = &mut self.ema {
                    ema.update(&self.model);
                }
                consecutive_nonfinite = 0;
            } else {
                // A non-finite loss would poison every weight; skip the update, count it.
                consecutive_nonfinite += 1;
                if consecutive_nonfinite >= 20 {
                    return Err(Error::Diverged(format!(
                        "the loss was not finite for 20 steps in a row (epoch {}, step {}, \
                         precision {}): lower train.base_lr or use f32",
                        epoch + 1,
                        self.state.step,
                        train.precision
                    )));
                }
            }
            metrics.push(self.state.step, lr, loss.detach().reshape([1]), ranks);
            self.state.step += 1;
            if metrics.pending() >= READBACK_INTERVAL {
                let rows = metrics.read_back(!check_each_step)?;
                self.record_steps(rows, bar.as_ref());
            }
        }
        let rows = metrics.read_back(!check_each_step)?;
        self.record_steps(rows, bar.as_ref());
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(metrics.finish(train.batch_size))
    }

    /// Keeps read-back step rows and moves the progress bar on.
    fn record_steps(&mut self, rows: Vec<BatchRow>, bar: Option<&indicatif::ProgressBar>) {
        if let (Some(bar), Some(last)) = (bar, rows.last()) {
            bar.set_message(format!("loss {:.3} lr {:.4}", last.loss, last.lr));
            bar.inc(rows.len() as u64);
        }
        self.state.batches.extend(rows);
    }

    /// Scores `model` (the live weights without autodiff, or the EMA weights) on val.
    fn validate(&self, model: &Model, progress: bool) -> Result<EpochVal> {
        let preprocess = PreprocessConfig::sized(self.config.data.resize, self.config.data.crop);
        let batcher = ImageBatcher::eval(&preprocess)?;
        let loss_fn = CrossEntropyLossConfig::new().init(&self.device);
        let count = self.data.val.len();
        let mut tally = Tally::default();
        let started = Instant::now();
        let indices: Vec<usize> = (0..count).collect();
        let label = progress.then_some("val images");
        for_each_chunk(
            &self.data.val,
            &indices,
            self.config.train.batch_size,
            label,
            |items| {
                let batch = batcher.try_batch(&items, &self.device)?;
                let logits = model.forward(batch.images);
                let loss = loss_fn.forward(logits.clone(), batch.targets.clone());
                let loss_value = host_f32(loss.reshape([1]))?[0];
                tally.add(
                    &host_f32(logits)?,
                    self.data.class_names.len(),
                    &host_i64(batch.targets)?,
                    loss_value,
                );
                Ok(())
            },
        )?;
        Ok(EpochVal {
            tally,
            images_per_s: count as f64 / started.elapsed().as_secs_f64().max(1e-9),
        })
    }

    fn epoch_row(
        &self,
        epoch: usize,
        train: &EpochTrain,
        val: &EpochVal,
        seconds: f64,
    ) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: train.tally.mean_loss(),
            train_top1: train.tally.accuracy(0),
            val_loss: val.tally.mean_loss(),
            val_top1: val.tally.accuracy(0),
            val_top2: val.tally.accuracy(1),
            val_top5: val.tally.accuracy(2),
            lr: self.schedule.at(self.state.step.saturating_sub(1)),
            epoch_seconds: seconds,
            train_images_per_s: train.images_per_s,
            val_images_per_s: val.images_per_s,
            nonfinite_steps: train.nonfinite,
            ema_val_loss: None,
            ema_val_top1: None,
        }
    }

    /// Appends the epoch and updates best / patience; true when it is the new best.
    fn record_epoch(&mut self, row: EpochRow) -> bool {
        let improved = self.state.best_epoch.is_none() || row.val_top1 > self.state.best_val_top1;
        if improved {
            self.state.best_val_top1 = row.val_top1;
            self.state.best_epoch = Some(row.epoch);
            self.state.epochs_without_improvement = 0;
        } else {
            self.state.epochs_without_improvement += 1;
        }
        self.state.seconds += row.epoch_seconds;
        self.state.epochs.push(row);
        self.state.epochs_done += 1;
        improved
    }

    fn write_reports(&self) -> Result<()> {
        metrics::write_tables(&self.run_dir, &self.state.batches, &self.state.epochs)?;
        let title = format!(
            "{} (width {})",
            self.config.model.name, self.config.model.width
        );
        plots::draw_curves(
            &self.run_dir,
            &title,
            &self.state.batches,
            &self.state.epochs,
        )
    }

    fn print_epoch(&self) {
        if let Some(row) = self.state.epochs.last() {
            eprintln!(
                "epoch {:>3}/{}  train loss {:.4} top-1 {:5.1} %  val loss {:.4} top-1 {:5.1} % \
                 top-2 {:5.1} %  {:.0} s  {:.0} img/s",
                row.epoch + 1,
                self.config.train.epochs,
                row.train_loss,
                row.train_top1 * 100.0,
                row.val_loss,
                row.val_top1 * 100.0,
                row.val_top2 * 100.0,
                row.epoch_seconds,
                row.train_images_per_s
            );
            if let Some(top1) = row.ema_val_top1 {
                eprintln!("           EMA weights: val top-1 {:5.1} %", top1 * 100.0);
            }
        }
    }

    fn summary(&self, stopped_early: bool, interrupted: bool) -> RunSummary {
        let nonfinite_steps = self.state.epochs.iter().map(|e| e.nonfinite_steps).sum();
        RunSummary {
            run_dir: self.run_dir.clone(),
            model: self.config.model.name.clone(),
            device: self.config.train.device.clone(),
            precision: self.config.train.precision.to_string(),
            params: self.params,
            epochs_done: self.state.epochs_done,
            steps: self.state.step,
            best_val_top1: self.state.best_val_top1,
            best_epoch: self.state.best_epoch,
            last_epoch: self.state.epochs.last().cloned(),
            last_loss: self.state.batches.last().map(|b| b.loss),
            nonfinite_steps,
            loss_stayed_finite: nonfinite_steps == 0,
            stopped_early,
            interrupted,
            seconds: self.state.seconds,
            resumes: self.state.resumes,
        }
    }
}

struct EpochTrain {
    steps: usize,
    tally: Tally,
    nonfinite: usize,
    images_per_s: f64,
}

/// Steps between reads of the training metrics from the device: a read waits for the
/// device to finish everything queued, which on a GPU would stall it every step.
const READBACK_INTERVAL: usize = 16;

/// Batches built ahead of the step on the worker thread.
const PREFETCH_DEPTH: usize = 2;

/// A step whose loss and target ranks are still on the device.
struct PendingStep {
    step: usize,
    lr: f64,
    loss: Tensor<1>,
    ranks: Tensor<1, Int>,
}

/// An epoch's training metrics: steps waiting on the device, and the tally and timing
/// of those already read back.
struct StepMetrics {
    epoch: usize,
    pending: Vec<PendingStep>,
    tally: Tally,
    nonfinite: usize,
    started: Instant,
    interval_started: Instant,
}

impl StepMetrics {
    fn new(epoch: usize) -> Self {
        StepMetrics {
            epoch,
            pending: Vec::new(),
            tally: Tally::default(),
            nonfinite: 0,
            started: Instant::now(),
            interval_started: Instant::now(),
        }
    }

    fn push(&mut self, step: usize, lr: f64, loss: Tensor<1>, ranks: Tensor<1, Int>) {
        self.pending.push(PendingStep {
            step,
            lr,
            loss,
            ranks,
        });
    }

    fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reads the waiting steps back in one transfer each for losses and ranks, and
    /// turns them into batch rows (images/s is the interval's rate: per-step times of
    /// a device that queues work would only time the queueing). With
    /// `nonfinite_is_divergence`, a non-finite loss is an error.
    fn read_back(&mut self, nonfinite_is_divergence: bool) -> Result<Vec<BatchRow>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        let batch = pending[0].ranks.dims()[0];
        let (losses, ranks): (Vec<_>, Vec<_>) = pending
            .iter()
            .map(|p| (p.loss.clone(), p.ranks.clone()))
            .unzip();
        let losses = host_f32(Tensor::cat(losses, 0))?;
        let ranks = host_i64(Tensor::cat(ranks, 0))?;
        let seconds = self.interval_started.elapsed().as_secs_f64();
        self.interval_started = Instant::now();
        let images_per_s = (batch * pending.len()) as f64 / seconds.max(1e-9);
        let mut rows = Vec::with_capacity(pending.len());
        for ((step, loss), ranks) in pending.iter().zip(losses).zip(ranks.chunks(batch)) {
            let finite = loss.is_finite();
            if !finite && nonfinite_is_divergence {
                return Err(Error::Diverged(format!(
                    "the loss became {loss} at step {} (epoch {}, f32): lower train.base_lr \
                     and resume from the last checkpoint",
                    step.step,
                    self.epoch + 1
                )));
            }
            let ranks: Vec<usize> = ranks.iter().map(|&r| r.max(0) as usize).collect();
            let mut batch_tally = Tally::default();
            batch_tally.add_ranks(&ranks, loss);
            self.tally.merge(&batch_tally);
            self.nonfinite += usize::from(!finite);
            rows.push(BatchRow {
                epoch: self.epoch,
                step: step.step,
                loss,
                lr: step.lr,
                images_per_s,
                top1: batch_tally.accuracy(0),
                finite,
            });
        }
        Ok(rows)
    }

    fn finish(self, batch_size: usize) -> EpochTrain {
        let seconds = self.started.elapsed().as_secs_f64();
        EpochTrain {
            steps: self.tally.seen / batch_size,
            tally: self.tally,
            nonfinite: self.nonfinite,
            images_per_s: self.tally.seen as f64 / seconds.max(1e-9),
        }
    }
}

struct EpochVal {
    tally: Tally,
    images_per_s: f64,
}

/// The epoch's visiting order: a permutation seeded by (seed, epoch).
fn shuffled(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}

/// A float tensor's values as f32 on the host, whatever its dtype.
pub fn host_f32<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Io(format!("reading a tensor back: {e:?}")))
}

fn host_i64(tensor: Tensor<1, Int>) -> Result<Vec<i64>> {
    tensor
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| Error::Io(format!("reading targets back: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelConfig;

    #[test]
    fn rank_one_parameters_get_no_weight_decay() {
        let model = ModelConfig::new("se-resnext50".into())
            .with_width(0.125)
            .init(&Device::flex())
            .unwrap();
        let mut ids = NoDecayIds::default();
        model.visit(&mut ids);
        let Model::SeResNeXt(inner) = &model else {
            unreachable!("se-resnext50 builds an SE-ResNeXt")
        };
        assert!(ids.0.contains(&inner.stem.bn.gamma.id));
        assert!(ids.0.contains(&inner.stem.bn.beta.id));
        assert!(!ids.0.contains(&inner.stem.conv.weight.id));
        let fc = inner.fc.as_ref().unwrap();
        assert!(ids.0.contains(&fc.bias.as_ref().unwrap().id));
        assert!(!ids.0.contains(&fc.weight.id));
    }

    #[test]
    fn a_train_that_fails_before_its_first_step_leaves_no_run_folder() {
        let out = tempfile::tempdir().unwrap();
        let mut config = TrainConfig::default();
        config.data.split_dir = out.path().join("no-such-split");
        let options = RunOptions {
            out_root: out.path().join("runs"),
            run_id: Some("try".into()),
            resume: None,
            max_steps: Some(1),
            time_limit: None,
            progress: false,
            command_line: Vec::new(),
        };
        let err = train(config, &options).err().unwrap();
        assert!(err.to_string().contains("album dataset split"), "{err}");
        assert!(!options.out_root.join("try").exists());
    }

    #[test]
    fn each_epoch_has_its_own_seeded_order() {
        let a = shuffled(100, 42, 0);
        assert_eq!(a, shuffled(100, 42, 0));
        assert_ne!(a, shuffled(100, 42, 1));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
