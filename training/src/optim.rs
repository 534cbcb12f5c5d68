//! Optimisers whose update is one operation per parameter: [`FusedSgd`]
//! ([`crate::ops::sgd_step`]) and [`FusedAdamW`] ([`crate::ops::adamw_step`]). The
//! project's kernels update a parameter and its state in one pass on flex, and in a few
//! in-place ATen calls on LibTorch, where burn's `Sgd` composes eight tensor operations
//! and its `AdamW` fifteen, each dispatched on its own and most allocating a
//! parameter-sized tensor. Measured on the CPU SE-ResNeXt config: SGD's update was
//! 7–10 ms of a 140 ms LibTorch step.
//!
//! The rules are burn's: `Sgd` with [`MomentumConfig`](burn::optim::momentum::MomentumConfig)
//! `{ dampening: 0, nesterov: false }` and weight decay added to the gradient (PyTorch's
//! `torch.optim.SGD`), and `AdamW` without AMSGrad or cautious decay (PyTorch's
//! `torch.optim.AdamW`). The state is recorded under the same names as burn's (SGD's
//! `momentum` → `velocity`; AdamW's state *is* burn's `AdamWState`), so a checkpoint
//! written by either loads into the other.

use burn::optim::{
    AdamWState, AdaptiveMomentumState, LearningRate, Optimizer, RecordState, StateSink,
    StateSource, join_path,
};
use burn::tensor::{Device, Tensor};

use crate::ops::{self, AdamWHyper, SgdHyper};

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

/// AdamW with decoupled weight decay (Loshchilov and Hutter, 2019), no AMSGrad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedAdamW {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

impl FusedAdamW {
    /// burn's and PyTorch's default moment rates (β₁ 0.9, β₂ 0.999).
    pub fn new(epsilon: f64, weight_decay: f64) -> Self {
        FusedAdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon,
            weight_decay,
        }
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (moments, time) = match state {
            Some(AdamWState { momentum }) => (
                Some((momentum.moment_1, momentum.moment_2)),
                momentum.time + 1,
            ),
            None => (None, 1),
        };
        let hyper = AdamWHyper {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            time,
        };
        let stepped = ops::adamw_step(tensor, grad, moments, hyper);
        let momentum =
            AdaptiveMomentumState::new(time, stepped.first_moment, stepped.second_moment);
        (stepped.param, Some(AdamWState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamWState::new(state.momentum.to_device(device))
    }
}
