//! SGD whose update is one operation per parameter ([`crate::ops::sgd_step`]): the
//! project's own kernels update a parameter and its velocity in one pass on flex, and in
//! a few ATen calls on LibTorch, where burn's `Sgd` composes eight tensor operations
//! (weight decay, momentum, learning rate, subtraction), each dispatched on its own.
//! Measured on the CPU SE-ResNeXt config: 7–10 ms of a 140 ms LibTorch step.
//!
//! The rule is burn's `Sgd` with [`MomentumConfig`](burn::optim::momentum::MomentumConfig)
//! `{ dampening: 0, nesterov: false }` and weight decay added to the gradient (PyTorch's
//! `torch.optim.SGD`). The state is recorded under the same names as burn's (`momentum`
//! → `velocity`), so a checkpoint written by either loads into the other.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{Device, Tensor};

use crate::ops::{self, SgdHyper};

/// SGD with heavy-ball momentum (none when `momentum` is 0) and L2 weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedSgd {
    pub momentum: f64,
    pub weight_decay: f64,
}

/// What a parameter carries between steps: its velocity, when there is momentum.
#[derive(Clone)]
pub struct FusedSgdState<const D: usize> {
    pub momentum: Option<VelocityState<D>>,
}

/// The velocity, `v ← momentum·v + grad` (burn's `MomentumState`).
#[derive(Clone)]
pub struct VelocityState<const D: usize> {
    pub velocity: Tensor<D>,
}

// Recorded as burn's `#[derive(RecordState)]` records `SgdState { momentum:
// Option<MomentumState { velocity }> }` (the derive names burn-optim's own paths, so it
// cannot be used from outside that crate): `<prefix>.momentum.velocity`.
impl<const D: usize> RecordState for FusedSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(momentum) = &self.momentum {
            momentum.state_flatten(&join_path(prefix, "momentum"), out);
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let path = join_path(prefix, "momentum");
        let momentum = if src.has_under(&path) {
            Some(VelocityState::state_unflatten(&path, src, device)?)
        } else {
            None
        };
        Some(FusedSgdState { momentum })
    }
}

impl<const D: usize> RecordState for VelocityState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "velocity", self.velocity.clone().into_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let data = src.take_tensor(prefix, "velocity")?;
        Some(VelocityState {
            velocity: Tensor::from_data(data, device),
        })
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = FusedSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let velocity = state.and_then(|s| s.momentum).map(|m| m.velocity);
        let hyper = SgdHyper {
            lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        };
        let (tensor, velocity) = ops::sgd_step(tensor, grad, velocity, hyper);
        let momentum = (self.momentum != 0.0).then_some(VelocityState { velocity });
        (tensor, Some(FusedSgdState { momentum }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.map(|m| VelocityState {
            velocity: m.velocity.to_device(device),
        });
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
    use burn::tensor::TensorData;

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

    /// Five steps (the velocity carried through four of them) give burn's `Sgd`'s weights.
    #[test]
    fn fused_sgd_takes_burns_sgd_steps() {
        five_steps_like_burns(&Device::flex());
    }

    #[cfg(feature = "tch")]
    #[test]
    #[allow(deprecated)] // burn-tch is deprecated upstream; it is the project's LibTorch route
    fn fused_sgd_takes_burns_sgd_steps_on_libtorch() {
        five_steps_like_burns(&Device::libtorch());
    }

    fn five_steps_like_burns(device: &Device) {
        let device = device.clone().autodiff();
        let start = layer(&device);
        let burns = train(start.clone(), &mut burns_sgd(), 0..5);
        let fused = train(start.clone(), &mut ModuleOptimizer::from(RULE), 0..5);
        assert_close(&weights(&fused), &weights(&burns));
        // and the steps moved the weights: the comparison is not vacuous
        assert!(
            weights(&burns)
                .iter()
                .zip(weights(&start))
                .any(|(a, b)| (a - b).abs() > 0.01)
        );
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
}
