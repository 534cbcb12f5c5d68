//! Training-step throughput: images/s of one optimiser step (forward, loss, backward,
//! update) of a configured model, isolated from data loading.
//!
//! `album bench train` prints these figures beside PyTorch eager doing the same step
//! (`scripts/bench_train_step.py`), so the step must be the one [`crate::training`]
//! takes: the same model ([`crate::models::ModelConfig::init`] on the autodiff device),
//! the same optimiser ([`build_optimizer`]: weight decay on weights only), the same loss
//! (cross-entropy with label smoothing, plus `aux_loss_weight` × each auxiliary head's
//! loss), and the loss read back to the host every step as training does (on LibTorch
//! CUDA that read is also what waits for the GPU).
//!
//! What it leaves out on purpose: the data pipeline (`album bench data` measures it) and
//! the learning-rate schedule (the rate is fixed at the config's peak, which costs the
//! same as any other). Every step sees ONE synthetic batch, `N(0, 1)` images and random
//! targets drawn once, so nothing but the model step is timed.
//!
//! Figures: per-step rates (batch / step seconds) and their median, which shrugs off
//! the odd step that a busy machine stalls, and the overall rate (all images / all
//! seconds). [`StepThroughput`] is also the shape of the JSON line the PyTorch script
//! prints, so both sides are summarised by the same code ([`StepThroughput::from_steps`]
//! here, its twin in the script).

use std::collections::BTreeMap;
use std::time::Instant;

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::device::DeviceKind;
use crate::models::{Model, trainable_params};
use crate::ops::{self, Kernels, profile};
use crate::training::{TrainingLoss, build_optimizer, configured_device, host_f32};
use crate::{Error, Result};

/// The class count of the five-class photo set the configs train on.
pub const NUM_CLASSES: usize = 5;

/// What a throughput run measured, on either side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepThroughput {
    /// Median over the timed steps of `batch_size / step seconds`.
    pub images_per_s: f64,
    /// All timed images over all timed seconds.
    pub images_per_s_total: f64,
    /// Trainable parameters (PyTorch's `sum(p.numel())`; no batch-norm statistics).
    pub params: usize,
    pub batch_size: usize,
    /// Wall seconds of each timed step, in order.
    pub step_seconds: Vec<f64>,
    /// The loss of the last step, to show the step really trained on something (the
    /// script leaves it out when it is not a number, which JSON cannot carry).
    #[serde(default = "not_a_number")]
    pub last_loss: f64,
    /// Seconds per step inside each layer operation (`ops::profile::Op::label`), when
    /// they were timed: the project's kernels on the Rust side, `torch.profiler` on
    /// PyTorch's.
    #[serde(default)]
    pub op_seconds: BTreeMap<String, f64>,
    /// Mean wall seconds of the steps the operations were timed in (PyTorch's profiler
    /// slows its steps down; the rest of the step is measured against these).
    #[serde(default)]
    pub op_step_seconds: Option<f64>,
}

impl StepThroughput {
    /// Summarises timed steps: the one place both statistics are defined.
    pub fn from_steps(
        batch_size: usize,
        params: usize,
        step_seconds: Vec<f64>,
        last_loss: f64,
    ) -> Self {
        let rates: Vec<f64> = step_seconds
            .iter()
            .map(|&s| batch_size as f64 / s.max(1e-12))
            .collect();
        let total_seconds: f64 = step_seconds.iter().sum();
        StepThroughput {
            images_per_s: median(&rates),
            images_per_s_total: (batch_size * step_seconds.len()) as f64 / total_seconds.max(1e-12),
            params,
            batch_size,
            step_seconds,
            last_loss,
            op_seconds: BTreeMap::new(),
            op_step_seconds: None,
        }
    }

    /// Parses the JSON line `scripts/bench_train_step.py` prints.
    pub fn from_json(line: &str) -> Result<Self> {
        serde_json::from_str(line.trim())
            .map_err(|e| Error::Io(format!("not a throughput line ({e}): {line}")))
    }
}

fn not_a_number() -> f64 {
    f64::NAN
}

/// The median, averaging the two middle values of an even count (Python's
/// `statistics.median`, which the script uses); NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// Builds `config.model` (at [`NUM_CLASSES`]) on `kind`'s device with autodiff and times
/// `warmup` untimed then `steps` timed training steps on one fixed synthetic batch of
/// `[batch_size, 3, crop, crop]`, with `kernels`' layer operations. With the project's
/// kernels, the time inside each layer operation is recorded too (CPU devices only: a
/// CUDA kernel's wall time would be its launch).
pub fn train_step_throughput(
    config: &TrainConfig,
    kind: DeviceKind,
    warmup: usize,
    steps: usize,
    kernels: Kernels,
) -> Result<StepThroughput> {
    ops::with_kernels(kernels, || {
        timed_steps(config, kind, warmup, steps, kernels == Kernels::Project)
    })
}

fn timed_steps(
    config: &TrainConfig,
    kind: DeviceKind,
    warmup: usize,
    steps: usize,
    time_ops: bool,
) -> Result<StepThroughput> {
    if steps == 0 {
        return Err(Error::Config(
            "a throughput run needs at least one timed step".into(),
        ));
    }
    let mut config = config.clone();
    config.model.num_classes = NUM_CLASSES;
    config.validate()?;
    match_libtorch_threads(kind);
    let device = configured_device(kind.device()?, config.train.precision)?;
    let mut bench = StepBench::new(&config, &device)?;
    for _ in 0..warmup {
        bench.step()?;
    }
    let time_ops = time_ops && !matches!(kind, DeviceKind::TchCuda(_));
    profile::enable(time_ops);
    let mut step_seconds = Vec::with_capacity(steps);
    let mut last_loss = f64::NAN;
    for _ in 0..steps {
        let started = Instant::now();
        last_loss = bench.step()?;
        step_seconds.push(started.elapsed().as_secs_f64());
    }
    profile::enable(false);
    let params = trainable_params(&bench.model);
    let mut result =
        StepThroughput::from_steps(config.train.batch_size, params, step_seconds, last_loss);
    if time_ops {
        result.op_step_seconds = Some(result.step_seconds.iter().sum::<f64>() / steps as f64);
        result.op_seconds = profile::totals()
            .into_iter()
            .map(|(op, seconds, _)| (op.label().to_owned(), seconds / steps as f64))
            .collect();
    }
    Ok(result)
}

/// LibTorch picks its own intra-op thread count; the comparison gives PyTorch all the
/// cores (as rayon gives flex), so LibTorch gets them too. Inter-op threads are left
/// alone: LibTorch refuses to change them once any parallel work has run.
#[cfg(feature = "tch")]
fn match_libtorch_threads(kind: DeviceKind) {
    if kind == DeviceKind::TchCpu {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        tch::set_num_threads(i32::try_from(cores).unwrap_or(1));
    }
}

/// Lets cuDNN time its convolution algorithms and keep the fastest per shape (PyTorch's
/// `torch.backends.cudnn.benchmark`), for LibTorch on CUDA.
#[cfg(feature = "tch")]
pub fn set_cudnn_benchmark(on: bool) {
    tch::Cuda::cudnn_set_benchmark(on);
}

/// Without LibTorch there is no cuDNN.
#[cfg(not(feature = "tch"))]
pub fn set_cudnn_benchmark(_on: bool) {}

/// Without LibTorch there are no LibTorch threads to set.
#[cfg(not(feature = "tch"))]
fn match_libtorch_threads(_kind: DeviceKind) {}

/// Everything one training step needs, built once.
struct StepBench {
    device: Device,
    model: Model,
    optimizer: ModuleOptimizer,
    loss: TrainingLoss,
    lr: f64,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
}

impl StepBench {
    fn new(config: &TrainConfig, device: &Device) -> Result<Self> {
        device.seed(config.train.seed);
        let autodiff = device.clone().autodiff();
        let model = config.model.init(&autodiff)?;
        let optimizer = build_optimizer(config, &model);
        let loss = TrainingLoss::new(config, &autodiff);
        let (images, targets) = synthetic_batch(config, &autodiff);
        Ok(StepBench {
            device: autodiff,
            model,
            optimizer,
            loss,
            lr: config.train.peak_lr(),
            images,
            targets,
        })
    }

    /// One step as training takes it; returns the loss. Ends with a device sync so a
    /// backend that queues work cannot push this step's update into the next one's time.
    fn step(&mut self) -> Result<f64> {
        let output = self.model.forward_train(self.images.clone());
        let loss = self.loss.forward(output, self.targets.clone());
        let value = host_f32(loss.clone().reshape([1]))?[0];
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optimizer.step(self.lr, self.model.clone(), grads);
        self.device.sync().map_err(|e| Error::Device {
            name: format!("{:?}", self.device),
            message: format!("sync after a training step failed: {e:?}"),
        })?;
        Ok(f64::from(value))
    }
}

/// `N(0, 1)` images (what normalised photos look like to the model) and uniformly random
/// targets, seeded by the config's seed.
fn synthetic_batch(config: &TrainConfig, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let batch = config.train.batch_size;
    let side = config.data.crop as usize;
    let images = Tensor::<4>::random(
        [batch, 3, side, side],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let mut rng = ChaCha8Rng::seed_from_u64(config.train.seed);
    let labels: Vec<i64> = (0..batch)
        .map(|_| rng.random_range(0..NUM_CLASSES as i64))
        .collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), device);
    (images, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_config() -> TrainConfig {
        let mut config = TrainConfig::default();
        config.model.name = "se-resnext50".into();
        config.model.width = 0.125;
        config.data.resize = 32;
        config.data.crop = 32;
        config.train.batch_size = 4;
        config
    }

    #[test]
    fn a_tiny_se_resnext_on_flex_gives_positive_finite_figures() {
        let result =
            train_step_throughput(&tiny_config(), DeviceKind::Flex, 1, 2, Kernels::Project)
                .unwrap();
        assert_eq!(result.step_seconds.len(), 2);
        assert_eq!(result.batch_size, 4);
        assert!(result.params > 0);
        // every layer operation ran and was timed
        assert_eq!(
            result.op_seconds.len(),
            profile::Op::ALL.len(),
            "{result:?}"
        );
        assert!(result.op_seconds.values().all(|s| *s > 0.0), "{result:?}");
        for value in [
            result.images_per_s,
            result.images_per_s_total,
            result.last_loss,
        ]
        .into_iter()
        .chain(result.step_seconds.iter().copied())
        {
            assert!(value.is_finite() && value > 0.0, "{result:?}");
        }
    }

    #[test]
    fn no_timed_steps_is_an_error() {
        assert!(
            train_step_throughput(&tiny_config(), DeviceKind::Flex, 0, 0, Kernels::Project)
                .is_err()
        );
    }

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summaries_use_the_median_rate_and_the_overall_rate() {
        let result = StepThroughput::from_steps(8, 10, vec![1.0, 2.0, 4.0], 1.5);
        assert_eq!(result.images_per_s, 4.0);
        assert!((result.images_per_s_total - 24.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn the_python_scripts_json_line_parses() {
        let line = r#"{"images_per_s": 12.5, "images_per_s_total": 12.0, "params": 123,
            "batch_size": 4, "step_seconds": [0.3, 0.32], "last_loss": 1.6,
            "torch": "2.11.0", "threads": 2}"#;
        let parsed = StepThroughput::from_json(&line.replace('\n', " ")).unwrap();
        assert_eq!(parsed.params, 123);
        assert_eq!(parsed.step_seconds.len(), 2);
        assert!(StepThroughput::from_json("RESULT 3").is_err());
    }
}
