//! The project's layer operations (`album_training::ops`, through `models::layers`)
//! against burn's own: batch norm in training mode (output, input/γ/β gradients and
//! the running statistics it leaves behind), batch norm in inference mode, the fused
//! batch norm + ReLU, ReLU's forward and backward, in f32 and bf16, on flex and (with
//! `--features tch`) LibTorch CPU; and one whole training step of every model family,
//! which must give the same loss and the same weight updates with either set of
//! operations. The convolution is pinned to naive loops in `grouped_conv.rs`.
//!
//! Every comparison is relative, ‖got − expected‖ / ‖expected‖, against burn's result
//! in the same dtype; bf16 keeps 8 bits of mantissa, so its tolerance is 3e-2.

use album_training::config::{Optimizer, TrainConfig};
use album_training::models::layers::{batch_norm, batch_norm_relu};
use album_training::models::{Model, ModelConfig};
use album_training::ops::{self, Kernels};
use album_training::training::{TrainingLoss, build_optimizer};
use burn::module::{Module, ModuleVisitor, Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::optim::GradientsParams;
use burn::tensor::activation::relu as burn_relu;
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut devices = vec![("flex", Device::flex())];
    #[cfg(feature = "tch")]
    #[allow(deprecated)] // burn-tch is deprecated upstream; it is the project's LibTorch route
    devices.push(("libtorch-cpu", Device::libtorch()));
    devices
}

/// The dtypes every op is checked in, with the tolerance each allows.
const DTYPES: [(FloatDType, f64); 2] = [(FloatDType::F32, 1e-4), (FloatDType::BF16, 3e-2)];

fn host(tensor: Tensor<4>) -> Vec<f64> {
    flat(tensor.cast(DType::F32).into_data())
}

fn host1(tensor: Tensor<1>) -> Vec<f64> {
    flat(tensor.cast(DType::F32).into_data())
}

fn flat(data: TensorData) -> Vec<f64> {
    data.try_to_vec::<f32>()
        .expect("float32 data")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// ‖got − expected‖ / ‖expected‖; infinite on a length mismatch, NaN stays NaN.
fn relative_difference(got: &[f64], expected: &[f64]) -> f64 {
    if got.len() != expected.len() {
        return f64::INFINITY;
    }
    let diff: f64 = got.iter().zip(expected).map(|(g, e)| (g - e).powi(2)).sum();
    let norm: f64 = expected.iter().map(|e| e * e).sum();
    assert!(norm > 0.0, "reference is all zeros: a vacuous comparison");
    (diff / norm).sqrt()
}

fn seeded(len: usize, mean: f32, spread: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| mean + spread * rng.random_range(-1.0f32..1.0))
        .collect()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A batch norm over `channels` with non-trivial γ, β and running statistics, in `dtype`.
fn batch_norm_module(channels: usize, dtype: FloatDType, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    let cast = |values: Vec<f32>| tensor(values, [channels], device).cast(dtype);
    bn.gamma = Param::from_tensor(cast(seeded(channels, 1.2, 0.7, 1)));
    bn.beta = Param::from_tensor(cast(seeded(channels, 0.0, 1.0, 2)));
    bn.running_mean = RunningState::new(cast(seeded(channels, 0.5, 0.5, 3)));
    bn.running_var = RunningState::new(cast(seeded(channels, 1.5, 0.5, 4)));
    bn
}

/// What one training-mode batch norm produced: output, dx, dγ, dβ, running mean and
/// running variance afterwards.
fn train_batch_norm(
    kernels: Kernels,
    relu: bool,
    dtype: FloatDType,
    device: &Device,
    shape: [usize; 4],
) -> [Vec<f64>; 6] {
    let device = device.clone().autodiff();
    let bn = batch_norm_module(shape[1], dtype, &device);
    let len = shape.iter().product();
    // Shifted and scaled so that the mean and the variance both matter; the output
    // gradient is a fixed random tensor r (the loss is sum(y · r)).
    let x = tensor(seeded(len, 3.0, 2.0, 5), shape, &device)
        .cast(dtype)
        .require_grad();
    let r = tensor(seeded(len, 0.0, 1.0, 6), shape, &device).cast(dtype);
    let y = match kernels {
        // burn's own BatchNorm module is the reference meaning.
        Kernels::Burn if relu => burn_relu(bn.forward(x.clone())),
        Kernels::Burn => bn.forward(x.clone()),
        Kernels::Project if relu => ops::with_kernels(kernels, || batch_norm_relu(&bn, x.clone())),
        Kernels::Project => ops::with_kernels(kernels, || batch_norm(&bn, x.clone())),
    };
    let grads = (y.clone() * r).sum().backward();
    let grad1 = |p: &Param<Tensor<1>>| host1(p.val().grad(&grads).expect("a parameter gradient"));
    [
        host(y),
        host(x.grad(&grads).expect("an input gradient")),
        grad1(&bn.gamma),
        grad1(&bn.beta),
        host1(bn.running_mean.value()),
        host1(bn.running_var.value()),
    ]
}

const BN_RESULTS: [&str; 6] = [
    "output",
    "input gradient",
    "γ gradient",
    "β gradient",
    "running mean",
    "running var",
];

#[test]
fn batch_norm_training_matches_burns_batch_norm_with_and_without_relu() {
    let mut failures = Vec::new();
    for (name, device) in devices() {
        for (dtype, tolerance) in DTYPES {
            for relu in [false, true] {
                // An odd spatial size and a batch of 3, so no reduction is a power of two.
                let shape = [3, 6, 5, 7];
                let expected = train_batch_norm(Kernels::Burn, relu, dtype, &device, shape);
                let got = train_batch_norm(Kernels::Project, relu, dtype, &device, shape);
                for ((what, got), expected) in BN_RESULTS.iter().zip(&got).zip(&expected) {
                    let diff = relative_difference(got, expected);
                    println!("{name} {dtype:?} relu {relu}: {what} {diff:.2e}");
                    if diff.is_nan() || diff > tolerance {
                        failures.push(format!("{name} {dtype:?} relu {relu}: {what} {diff:e}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn batch_norm_inference_matches_burns_batch_norm() {
    let mut failures = Vec::new();
    for (name, device) in devices() {
        for (dtype, tolerance) in DTYPES {
            let shape = [2, 5, 3, 9];
            let bn = batch_norm_module(shape[1], dtype, &device);
            let x = tensor(seeded(shape.iter().product(), 1.0, 2.0, 9), shape, &device).cast(dtype);
            let expected = host(burn_relu(bn.forward(x.clone())));
            let got = host(ops::with_kernels(Kernels::Project, || {
                batch_norm_relu(&bn, x.clone())
            }));
            let diff = relative_difference(&got, &expected);
            println!("{name} {dtype:?}: inference output {diff:.2e}");
            if diff.is_nan() || diff > tolerance {
                failures.push(format!("{name} {dtype:?}: inference output {diff:e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn relu_forward_and_backward_match_burns_including_exact_zeros() {
    for (name, device) in devices() {
        let device = device.autodiff();
        for (dtype, _) in DTYPES {
            // Values on a 0.5 grid: exact zeros (gradient 0, as PyTorch) and negatives.
            let values: Vec<f32> = seeded(4 * 3 * 5, 0.0, 3.0, 11)
                .into_iter()
                .map(|v| (v * 2.0).round() / 2.0)
                .collect();
            assert!(values.contains(&0.0) && values.iter().any(|v| *v < 0.0));
            let run = |kernels: Kernels| {
                let x = tensor(values.clone(), [4, 3, 5, 1], &device)
                    .cast(dtype)
                    .require_grad();
                let r = tensor(seeded(60, 0.0, 1.0, 12), [4, 3, 5, 1], &device).cast(dtype);
                let y = ops::with_kernels(kernels, || ops::relu(x.clone()));
                let grads = (y.clone() * r).sum().backward();
                (host(y), host(x.grad(&grads).expect("an input gradient")))
            };
            let (expected, got) = (run(Kernels::Burn), run(Kernels::Project));
            assert_eq!(got.0, expected.0, "{name} {dtype:?}: ReLU output");
            assert_eq!(got.1, expected.1, "{name} {dtype:?}: ReLU gradient");
        }
    }
}

/// Convolution in bf16 against burn's own in bf16 (the float32 cases are pinned to naive
/// loops in `grouped_conv.rs`): a grouped strided 3×3 with bias and an ungrouped 1×1.
#[test]
fn conv_in_bf16_matches_burns_conv_in_bf16() {
    use burn::tensor::ops::ConvOptions;
    let mut failures = Vec::new();
    for (name, device) in devices() {
        let device = device.autodiff();
        for (groups, kernel, stride, channels) in [(4, 3, 2, 8), (1, 1, 1, 6)] {
            let shape = [3, channels, 9, 7];
            let weight_shape = [channels, channels / groups, kernel, kernel];
            let options = ConvOptions::new([stride; 2], [kernel / 2; 2], [1, 1], groups);
            let run = |kernels: Kernels| {
                let cast = |values: Vec<f32>, shape: [usize; 4]| {
                    tensor(values, shape, &device)
                        .cast(FloatDType::BF16)
                        .require_grad()
                };
                let x = cast(seeded(shape.iter().product(), 0.0, 1.0, 31), shape);
                let w = cast(
                    seeded(weight_shape.iter().product(), 0.0, 0.5, 32),
                    weight_shape,
                );
                let b = tensor(seeded(channels, 0.0, 1.0, 33), [channels], &device)
                    .cast(FloatDType::BF16)
                    .require_grad();
                let y = ops::with_kernels(kernels, || {
                    ops::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone())
                });
                let r = Tensor::<4>::ones(y.dims(), &device).cast(FloatDType::BF16);
                let grads = (y.clone() * r).sum().backward();
                let gradient = |t: &Tensor<4>| host(t.grad(&grads).expect("a gradient"));
                [
                    host(y.clone()),
                    gradient(&x),
                    gradient(&w),
                    host1(b.grad(&grads).expect("a bias gradient")),
                ]
            };
            let (expected, got) = (run(Kernels::Burn), run(Kernels::Project));
            let names = [
                "output",
                "input gradient",
                "weight gradient",
                "bias gradient",
            ];
            for ((what, got), expected) in names.iter().zip(&got).zip(&expected) {
                let diff = relative_difference(got, expected);
                println!("{name} bf16 groups {groups} k{kernel}: {what} {diff:.2e}");
                if diff.is_nan() || diff > 3e-2 {
                    failures.push(format!("{name} groups {groups} k{kernel}: {what} {diff:e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The comparisons must be able to fail: a ReLU left out, or one applied where none
/// belongs, moves the output and every gradient far beyond the tolerance.
#[test]
fn the_batch_norm_comparison_tells_a_missing_relu_apart() {
    let device = Device::flex();
    let shape = [3, 6, 5, 7];
    let plain = train_batch_norm(Kernels::Burn, false, FloatDType::F32, &device, shape);
    let fused = train_batch_norm(Kernels::Project, true, FloatDType::F32, &device, shape);
    for ((what, a), b) in BN_RESULTS.iter().zip(&plain).zip(&fused).take(4) {
        let diff = relative_difference(b, a);
        assert!(
            diff > 0.1,
            "{what}: a missing ReLU moves it by only {diff:e}"
        );
    }
}

/// Every trainable parameter's values, in visiting order.
#[derive(Default)]
struct ParamValues(Vec<Vec<f64>>);

impl ModuleVisitor for ParamValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(flat(param.val().cast(DType::F32).into_data()));
    }
}

fn param_values(model: &Model) -> Vec<Vec<f64>> {
    let mut values = ParamValues::default();
    model.visit(&mut values);
    values.0
}

/// burn draws initial weights and dropout masks from the device's process-wide
/// generator: the family steps run one at a time so their draws do not interleave.
static ONE_STEP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One optimiser step of `config`'s model from the same weights and batch with `kernels`:
/// the loss and every parameter's change.
fn one_step(
    config: &TrainConfig,
    initial: &Model,
    kernels: Kernels,
    device: &Device,
) -> (f64, Vec<Vec<f64>>) {
    let autodiff = device.clone().autodiff();
    let side = config.data.crop as usize;
    let batch = config.train.batch_size;
    let images = tensor(
        seeded(batch * 3 * side * side, 0.0, 1.5, 21),
        [batch, 3, side, side],
        &autodiff,
    );
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % 5).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [batch]), &autodiff);
    ops::with_kernels(kernels, || {
        // Dropout masks: the same draws for both kernels.
        device.seed(99);
        let model = initial.clone();
        let loss =
            TrainingLoss::new(config, &autodiff).forward(model.forward_train(images), targets);
        let value = flat(loss.clone().cast(DType::F32).into_data())[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optimizer = build_optimizer(config, &model);
        let updated = optimizer.step(config.train.peak_lr(), model, grads);
        let before = param_values(initial);
        let after = param_values(&updated);
        let deltas = before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.iter().zip(b).map(|(a, b)| a - b).collect())
            .collect();
        (value, deltas)
    })
}

fn with_optimizer(mut config: TrainConfig, optimizer: Optimizer) -> TrainConfig {
    config.train.optimizer = optimizer;
    config
}

fn family_config(name: &str, width: f32, side: u32) -> TrainConfig {
    let mut config = TrainConfig {
        model: ModelConfig::new(name.into())
            .with_width(width)
            .with_num_classes(5),
        ..TrainConfig::default()
    };
    config.data.resize = side;
    config.data.crop = side;
    config.train.batch_size = 4;
    config.train.label_smoothing = 0.1;
    config
}

/// The step is the one `album train` takes (label smoothing, GoogLeNet's aux heads,
/// weight decay on weights only, the fused SGD or AdamW against burn's). The tolerances (1e-4 on the loss, 1e-2 on the weight
/// changes) leave room for float rounding compounded over a network: DenseNet-121 at
/// batch 4 normalises its last blocks over 4 values (1×1 maps), where the variance's
/// rounding is amplified (1.5e-3 measured on flex, whose batch norm sums in f64 where
/// burn's sums in f32). A real fault is far outside them: dropout masks drawn out of
/// step moved the updates by 0.9–1.8.
#[test]
fn one_training_step_of_every_family_is_the_same_with_the_projects_ops_and_burns() {
    let _one = ONE_STEP_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let families = [
        family_config("se-resnext50", 0.125, 32),
        // AlexNet's own config trains with AdamW: the fused AdamW against burn's
        with_optimizer(family_config("alexnet", 0.125, 64), Optimizer::AdamW),
        family_config("vgg16-bn", 0.125, 32),
        family_config("googlenet", 0.125, 32),
        family_config("densenet121", 0.125, 32),
    ];
    let mut failures = Vec::new();
    for (name, device) in devices() {
        for config in &families {
            device.seed(7);
            let initial = config
                .model
                .init(&device.clone().autodiff())
                .expect("a valid model config");
            // Parameters are made lazily, from the same generator as the dropout masks:
            // make them now, so both steps draw the same masks.
            param_values(&initial);
            let (loss_burn, burn) = one_step(config, &initial, Kernels::Burn, &device);
            let (loss_project, project) = one_step(config, &initial, Kernels::Project, &device);
            let loss_diff = (loss_project - loss_burn).abs() / loss_burn.abs();
            let flatten = |deltas: &[Vec<f64>]| deltas.concat();
            let update_diff = relative_difference(&flatten(&project), &flatten(&burn));
            let model = &config.model.name;
            println!(
                "{name} {model}: loss {loss_burn:.6} vs {loss_project:.6} ({loss_diff:.1e}), \
                 weight updates {update_diff:.2e}"
            );
            if !(loss_diff <= 1e-4 && update_diff <= 1e-2) {
                failures.push(format!(
                    "{name} {model}: loss differs by {loss_diff:e}, updates by {update_diff:e}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
