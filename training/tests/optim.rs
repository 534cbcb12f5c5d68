//! The project's fused optimisers (`album_training::optim`) against burn's `Sgd` and
//! `AdamW`: the same weights after several steps, on flex and (with `--features tch`)
//! LibTorch CPU; checkpoints written by either resume with the other; and an in-place
//! update never writes through to weights another module shares.

use album_training::optim::{FusedAdamW, FusedSgd};
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};

const RULE: FusedSgd = FusedSgd {
    momentum: 0.9,
    weight_decay: 1e-2,
};

fn burns_sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig {
            momentum: RULE.momentum,
            dampening: 0.0,
            nesterov: false,
        }))
        .with_weight_decay(Some(WeightDecayConfig::new(RULE.weight_decay as f32)))
        .init()
}

fn layer(device: &Device) -> Linear {
    let mut layer = LinearConfig::new(3, 2).init(device);
    let weights: Vec<f32> = (0..6).map(|i| 0.3 * i as f32 - 0.7).collect();
    layer.weight = burn::module::Param::from_tensor(Tensor::from_data(
        TensorData::new(weights, [3, 2]),
        device,
    ));
    layer
}

/// `steps` steps of the loss Σ(layer(x)²) from `layer`, one x per step.
fn train(
    mut layer: Linear,
    optimizer: &mut ModuleOptimizer,
    steps: std::ops::Range<usize>,
) -> Linear {
    let device = layer.weight.device();
    for step in steps {
        let x: Vec<f32> = (0..6).map(|i| ((i + step) % 5) as f32 - 2.0).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [2, 3]), &device);
        let y = layer.forward(x);
        let grads = GradientsParams::from_grads((y.clone() * y).sum().backward(), &layer);
        layer = optimizer.step(0.05, layer, grads);
    }
    layer
}

fn weights(layer: &Linear) -> Vec<f32> {
    let mut values = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
    values.extend(
        layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
    );
    values
}

fn assert_close(a: &[f32], b: &[f32]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{a:?}\n{b:?}");
    }
}

const ADAMW: FusedAdamW = FusedAdamW {
    beta_1: 0.9,
    beta_2: 0.999,
    epsilon: 1e-8,
    weight_decay: 1e-2,
};

fn burns_adamw() -> ModuleOptimizer {
    AdamWConfig::new()
        .with_epsilon(ADAMW.epsilon as f32)
        .with_weight_decay(ADAMW.weight_decay as f32)
        .init()
}

fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut devices = vec![Device::flex()];
    #[cfg(feature = "tch")]
    #[allow(deprecated)] // burn-tch is deprecated upstream; it is the project's LibTorch route
    devices.push(Device::libtorch());
    devices
}

/// Five steps (the velocity carried through four of them) give burn's `Sgd`'s weights.
#[test]
fn fused_sgd_takes_burns_sgd_steps() {
    for device in devices() {
        five_steps_like_burns(&device, RULE.into(), burns_sgd());
    }
}

/// Five steps (the moments and the step count carried through four of them) give
/// burn's `AdamW`'s weights.
#[test]
fn fused_adamw_takes_burns_adamw_steps() {
    for device in devices() {
        five_steps_like_burns(&device, ADAMW.into(), burns_adamw());
    }
}

fn five_steps_like_burns(device: &Device, mut fused: ModuleOptimizer, mut burns: ModuleOptimizer) {
    let device = device.clone().autodiff();
    let start = layer(&device);
    let before = weights(&start);
    let burns = train(start.clone(), &mut burns, 0..5);
    let fused = train(start.clone(), &mut fused, 0..5);
    assert_close(&weights(&fused), &weights(&burns));
    // and the steps moved the weights: the comparison is not vacuous
    assert!(
        weights(&burns)
            .iter()
            .zip(&before)
            .any(|(a, b)| (a - b).abs() > 0.01)
    );
    // an in-place update never writes through to a module that shares the weights
    assert_eq!(weights(&start), before);
}

/// A checkpoint's optimiser state written by one loads into the other and carries
/// the velocity on: two steps with burn's, saved, three more with the fused one ==
/// five steps with burn's.
#[test]
fn a_checkpoint_written_by_burns_sgd_resumes_with_the_fused_one() {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optimizer.bpk");
    let mut burns = burns_sgd();
    let halfway = train(layer(&device), &mut burns, 0..2);
    burns.save(&path).unwrap();
    let mut fused = ModuleOptimizer::from(RULE).load(&path).unwrap();
    let resumed = train(halfway.clone(), &mut fused, 2..5);
    let unbroken = train(halfway, &mut burns, 2..5);
    assert_close(&weights(&resumed), &weights(&unbroken));
}

/// The same for AdamW, whose state is burn's own: the moments and the step count
/// (which sets the bias correction) carry on across the checkpoint, both ways.
#[test]
fn an_adamw_checkpoint_resumes_with_either_adamw() {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let start = layer(&device);
    let unbroken = train(start.clone(), &mut burns_adamw(), 0..5);
    let fused: ModuleOptimizer = ADAMW.into();
    for (mut first, second) in [(burns_adamw(), fused.clone()), (fused, burns_adamw())] {
        let path = dir.path().join("optimizer.bpk");
        let halfway = train(start.clone(), &mut first, 0..2);
        first.save(&path).unwrap();
        let mut second = second.load(&path).unwrap();
        let resumed = train(halfway, &mut second, 2..5);
        assert_close(&weights(&resumed), &weights(&unbroken));
    }
}

/// A 3×4 matrix handed over as the transpose of a dense 4×3 one: a strided view on
/// LibTorch, which ATen's one-pass optimiser kernels do not take.
fn strided(values: &[f32], device: &Device) -> Tensor<2> {
    let columns_first: Vec<f32> = (0..12).map(|k| values[(k % 3) * 4 + k / 3]).collect();
    Tensor::<2>::from_data(TensorData::new(columns_first, [4, 3]), device).transpose()
}

fn values(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn ramp(scale: f32, offset: f32) -> Vec<f32> {
    (0..12).map(|i| scale * i as f32 + offset).collect()
}

/// The optimiser steps give the rule's numbers, computed here element by element, both
/// for dense tensors (ATen's fused kernels on LibTorch) and for strided views (the
/// composed fallback): pins each path separately, first steps and carried state alike.
#[test]
fn optimiser_steps_follow_the_rule_for_dense_and_strided_tensors() {
    use album_training::ops::{AdamWHyper, SgdHyper, adamw_step, sgd_step};
    let (p0, g, s0) = (ramp(0.1, -0.5), ramp(-0.07, 0.3), ramp(0.02, 0.01));
    let sgd = SgdHyper {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let adamw = AdamWHyper {
        lr: 0.01,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.01,
        time: 3,
    };
    let expected_sgd = |velocity: Option<&[f32]>, momentum: f64| -> (Vec<f32>, Vec<f32>) {
        let (mut p, mut v) = (Vec::new(), Vec::new());
        for i in 0..12 {
            let gi = f64::from(g[i]) + sgd.weight_decay * f64::from(p0[i]);
            let vi = velocity.map_or(gi, |v| momentum * f64::from(v[i]) + gi);
            p.push((f64::from(p0[i]) - sgd.lr * vi) as f32);
            v.push(vi as f32);
        }
        (p, v)
    };
    let (c1, c2) = (1.0 - 0.9f64.powi(3), 1.0 - 0.999f64.powi(3));
    let expected_adamw = || -> Vec<f32> {
        (0..12)
            .map(|i| {
                let gi = f64::from(g[i]);
                let m = 0.9 * f64::from(s0[i]) + 0.1 * gi;
                let v = 0.999 * f64::from(s0[i]).powi(2) + 0.001 * gi * gi;
                let p = f64::from(p0[i]) * (1.0 - adamw.lr * adamw.weight_decay);
                (p - adamw.lr * (m / c1) / ((v / c2).sqrt() + adamw.epsilon)) as f32
            })
            .collect()
    };
    let second: Vec<f32> = s0.iter().map(|s| s * s).collect();
    for device in devices() {
        let dense =
            |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [3, 4]), &device);
        for make in [&dense as &dyn Fn(&[f32]) -> Tensor<2>, &|v: &[f32]| {
            strided(v, &device)
        }] {
            let (p, v) = sgd_step(make(&p0), make(&g), None, sgd);
            let (want_p, want_v) = expected_sgd(None, sgd.momentum);
            assert_close(&values(p), &want_p);
            assert_close(&values(v), &want_v);
            let (p, v) = sgd_step(make(&p0), make(&g), Some(make(&s0)), sgd);
            let (want_p, want_v) = expected_sgd(Some(&s0), sgd.momentum);
            assert_close(&values(p), &want_p);
            assert_close(&values(v), &want_v);
            let plain = SgdHyper {
                momentum: 0.0,
                ..sgd
            };
            let (p, _) = sgd_step(make(&p0), make(&g), None, plain);
            assert_close(&values(p), &expected_sgd(None, 0.0).0);
            let stepped = adamw_step(make(&p0), make(&g), Some((make(&s0), make(&second))), adamw);
            assert_close(&values(stepped.param), &expected_adamw());
        }
    }
}
