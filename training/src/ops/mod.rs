//! smart-album's own backend operations for the layers every model family is made of:
//! 2-D convolution, batch norm (training and inference, with an optional fused ReLU) and
//! ReLU, each with a forward and a backward that the project chooses per backend.
//!
//! Why: burn 0.22.1 leaves these to generic fallbacks on both CPU backends. Its conv
//! backward builds the weight gradient from a convolution of swapped tensors, looping
//! over the groups for a grouped conv; `batch_norm_train` copies the activation for each
//! statistic; ReLU's backward is a masked fill. PyTorch runs the same steps as single
//! oneDNN/cuDNN kernels. burn's `extension` feature lets a crate declare its own backend
//! operations and give their autodiff a handwritten backward, which is what this module
//! does, without patching burn.
//!
//! ```text
//! models::layers ─► ops::{conv2d, batch_norm_train, batch_norm_eval, relu}   (Tensor API)
//!                     │ Kernels::Project (default)        │ Kernels::Burn
//!                     ▼                                   ▼
//!            <Dispatch as TrainOps>  (#[backend_extension])   burn's own ops
//!              ├─ Flex, LibTorch: forward only (no autodiff)
//!              └─ Autodiff<B>: forward + a Backward node calling B's backward kernel
//!                     │
//!                     ▼
//!               TrainKernels, one impl per backend:
//!               - reference: burn's composition (the trait's default bodies)
//!               - flex:      direct Rust kernels (ops/flex.rs, ops/flex_conv.rs)
//!               - LibTorch:  ATen's kernels, conv and BN backward through a small C++
//!                            file (csrc/aten_ops.cpp, ops/aten.rs), as PyTorch calls them
//! ```
//!
//! [`set_kernels`] switches every model in the process back to burn's own operations,
//! for the before/after measurements (`album bench train --kernels burn`,
//! `album train --kernels burn`) and for tests that pin both to the same numbers.

mod autodiff;
mod dispatch;
pub mod profile;
mod reference;

#[cfg(feature = "tch")]
mod aten;
mod flex;
mod flex_conv;
#[cfg(feature = "tch")]
mod libtorch;

use std::cell::Cell;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch};
use burn::tensor::Tensor;

pub use dispatch::TrainOps;

/// Which implementation of the layer operations models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// This module's operations (the default).
    #[default]
    Project,
    /// burn's own `conv2d`, batch-norm composition and `relu`, as before this module.
    Burn,
}

impl Kernels {
    pub const NAMES: &'static str = "project, burn";
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kernels::Project => "project",
            Kernels::Burn => "burn",
        })
    }
}

impl FromStr for Kernels {
    type Err = crate::Error;

    fn from_str(text: &str) -> crate::Result<Self> {
        match text {
            "project" => Ok(Kernels::Project),
            "burn" => Ok(Kernels::Burn),
            other => Err(crate::Error::Config(format!(
                "unknown kernels {other:?}; expected one of {}",
                Kernels::NAMES
            ))),
        }
    }
}

static KERNELS: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// A choice for this thread only, set by [`with_kernels`].
    static THREAD_KERNELS: Cell<Option<Kernels>> = const { Cell::new(None) };
}

/// Chooses the layer operations for every model in this process from now on.
pub fn set_kernels(kernels: Kernels) {
    KERNELS.store(kernels as u8, Ordering::Relaxed);
}

/// The layer operations models use now, on this thread.
pub fn kernels() -> Kernels {
    if let Some(kernels) = THREAD_KERNELS.with(Cell::get) {
        return kernels;
    }
    match KERNELS.load(Ordering::Relaxed) {
        0 => Kernels::Project,
        _ => Kernels::Burn,
    }
}

/// Runs `work` with `kernels` on this thread only (tests run side by side in one
/// process, so they compare the two without touching the process-wide choice).
pub fn with_kernels<T>(kernels: Kernels, work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Kernels>);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREAD_KERNELS.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(THREAD_KERNELS.with(|cell| cell.replace(Some(kernels))));
    work()
}

/// Which gradients a backward kernel must return (the others come back `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

/// Gradients of a convolution or a batch norm: input, weight (γ) and bias (β).
pub struct Grads<B: Backend> {
    pub input: Option<FloatTensor<B>>,
    pub weight: Option<FloatTensor<B>>,
    pub bias: Option<FloatTensor<B>>,
}

/// What a training-mode batch norm's forward gives: the normalised, scaled and shifted
/// output (before any ReLU); the batch mean and `1/√(var + ε)` its backward needs; and
/// the running statistics moved towards the batch's, each `[C]`.
pub struct BatchNormSaved<B: Backend> {
    pub output: FloatTensor<B>,
    pub mean: FloatTensor<B>,
    pub invstd: FloatTensor<B>,
    pub running_mean: FloatTensor<B>,
    pub running_var: FloatTensor<B>,
}

/// A batch norm's running statistics and how fast they follow the batches' (burn's
/// rule: `running ← (1 − momentum)·running + momentum·batch`, on the biased variance).
pub struct RunningStatistics<B: Backend> {
    pub mean: FloatTensor<B>,
    pub var: FloatTensor<B>,
    pub momentum: f64,
}

/// Learning rate, momentum and weight decay of one [`TrainKernels::sgd_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdHyper {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

/// The constants of one [`TrainKernels::adamw_step`]: burn's `AdamW` and PyTorch's
/// `torch.optim.AdamW` (decoupled weight decay, no AMSGrad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWHyper {
    pub lr: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    /// This step's number, counted from 1: the moments' bias corrections are `1 − βᵗ`.
    pub time: usize,
}

impl AdamWHyper {
    /// `(1 − β₁ᵗ, 1 − β₂ᵗ)`, computed as burn's `AdamW` does (in f32), so that both give
    /// the same steps to the last bit of the correction.
    pub fn bias_corrections(&self) -> (f32, f32) {
        let time = self.time as i32;
        (
            1.0 - (self.beta_1 as f32).powi(time),
            1.0 - (self.beta_2 as f32).powi(time),
        )
    }
}

/// A parameter's AdamW moments: the running means of its gradient and squared gradient.
pub struct Moments<B: Backend> {
    pub first: FloatTensor<B>,
    pub second: FloatTensor<B>,
}

/// The forward and backward kernels of the layer operations on one concrete backend.
/// The default bodies are burn's own composition ([`reference`]); a backend overrides
/// what it can do faster. Every tensor is 4-D `[N, C, H, W]` except γ, β and the
/// statistics (`[C]`) and biases (`[C_out]`).
pub trait TrainKernels: Backend {
    fn conv2d_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, bias, options)
    }

    fn conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        wanted: Wanted,
    ) -> Grads<Self> {
        reference::conv2d_backward::<Self>(x, weight, output_grad, options, wanted)
    }

    /// Normalises with the batch's own statistics over `N, H, W`, and moves the running
    /// statistics towards them.
    fn batch_norm_train_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running: RunningStatistics<Self>,
        epsilon: f64,
    ) -> BatchNormSaved<Self> {
        reference::batch_norm_train_forward::<Self>(x, gamma, beta, running, epsilon)
    }

    /// Gradients of [`TrainKernels::batch_norm_train_forward`] from what it saved.
    fn batch_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        invstd: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
        wanted: Wanted,
    ) -> Grads<Self> {
        let _ = epsilon; // the closed form needs only the saved 1/σ
        reference::batch_norm_backward::<Self>(x, gamma, mean, invstd, output_grad, wanted)
    }

    /// Normalises with running statistics: `(x − mean) · γ/√(var + ε) + β`.
    fn batch_norm_eval_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        reference::batch_norm_eval_forward::<Self>(
            x,
            gamma,
            beta,
            running_mean,
            running_var,
            epsilon,
        )
    }

    fn relu_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(x)
    }

    /// One SGD step of a parameter (PyTorch's and burn's rule, no dampening, no
    /// Nesterov): `g = grad + weight_decay·param`, `v = momentum·v + g` (or `g` on the
    /// first step), `param − lr·v`. Returns the new parameter and `v`.
    fn sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: Option<FloatTensor<Self>>,
        hyper: SgdHyper,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        reference::sgd_step::<Self>(param, grad, velocity, hyper)
    }

    /// One AdamW step of a parameter: `m = β₁·m + (1 − β₁)·g`, `v = β₂·v + (1 − β₂)·g²`
    /// (from zero on the first step), then `param·(1 − lr·decay) − lr·m̂/(√v̂ + ε)` with
    /// `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)`. Returns the new parameter and moments.
    fn adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moments: Option<Moments<Self>>,
        hyper: AdamWHyper,
    ) -> (FloatTensor<Self>, Moments<Self>) {
        reference::adamw_step::<Self>(param, grad, moments, hyper)
    }

    /// `output_grad` where the ReLU's `output` is positive, else 0.
    fn relu_backward_from_output(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::relu_backward(output, output_grad)
    }
}

/// 2-D convolution (any groups, stride, padding, dilation; optional bias).
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    match kernels() {
        Kernels::Burn => burn::tensor::module::conv2d(x, weight, bias, options),
        Kernels::Project => Tensor::from_dispatch(match bias {
            None => <Dispatch as TrainOps>::layer_conv2d(
                x.into_dispatch(),
                weight.into_dispatch(),
                options,
            ),
            Some(bias) => <Dispatch as TrainOps>::layer_conv2d_bias(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.into_dispatch(),
                options,
            ),
        }),
    }
}

/// A training-mode batch norm's output (after the ReLU when asked) and the running
/// statistics moved towards the batch's.
pub struct BatchNormOutput {
    pub output: Tensor<4>,
    /// The new running mean per channel, `[C]`, detached.
    pub running_mean: Tensor<1>,
    /// The new running (biased) variance per channel, `[C]`, detached.
    pub running_var: Tensor<1>,
}

/// Training-mode batch norm over `N, H, W` with the batch's statistics, optionally
/// followed by ReLU (one fused backward), and the running statistics' update
/// (`(1 − momentum)·running + momentum·batch`, burn's rule) in the same operation. Only
/// [`Kernels::Project`]: the caller keeps burn's path for [`Kernels::Burn`].
pub fn batch_norm_train(
    x: Tensor<4>,
    [gamma, beta]: [Tensor<1>; 2],
    [running_mean, running_var]: [Tensor<1>; 2],
    momentum: f64,
    epsilon: f64,
    relu: bool,
) -> BatchNormOutput {
    let (output, running_mean, running_var) = <Dispatch as TrainOps>::layer_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        running_mean.into_dispatch(),
        running_var.into_dispatch(),
        momentum,
        epsilon,
        relu,
    );
    BatchNormOutput {
        output: Tensor::from_dispatch(output),
        running_mean: Tensor::from_dispatch(running_mean),
        running_var: Tensor::from_dispatch(running_var),
    }
}

/// Inference-mode batch norm with running statistics, optionally followed by ReLU.
pub fn batch_norm_eval(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    running_mean: Tensor<1>,
    running_var: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as TrainOps>::layer_batch_norm_eval(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        running_mean.into_dispatch(),
        running_var.into_dispatch(),
        epsilon,
        relu,
    ))
}

/// One SGD step of a parameter (see [`TrainKernels::sgd_step`]) in one operation on the
/// backend: the new parameter and the new velocity. Parameters and gradients are the
/// optimiser's (not autodiff) tensors.
pub fn sgd_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    velocity: Option<Tensor<D>>,
    hyper: SgdHyper,
) -> (Tensor<D>, Tensor<D>) {
    let [lr, momentum, weight_decay] = [hyper.lr, hyper.momentum, hyper.weight_decay];
    let (param, velocity) = match velocity {
        None => <Dispatch as TrainOps>::optim_sgd_first_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            lr,
            momentum,
            weight_decay,
        ),
        Some(velocity) => <Dispatch as TrainOps>::optim_sgd_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            velocity.into_dispatch(),
            lr,
            momentum,
            weight_decay,
        ),
    };
    (
        Tensor::from_dispatch(param),
        Tensor::from_dispatch(velocity),
    )
}

/// A parameter's new value and AdamW moments after one [`adamw_step`].
pub struct AdamWStepped<const D: usize> {
    pub param: Tensor<D>,
    pub first_moment: Tensor<D>,
    pub second_moment: Tensor<D>,
}

/// One AdamW step of a parameter (see [`TrainKernels::adamw_step`]) in one operation on
/// the backend. `moments` are `(first, second)`, `None` on the first step.
pub fn adamw_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    hyper: AdamWHyper,
) -> AdamWStepped<D> {
    let AdamWHyper {
        lr,
        beta_1,
        beta_2,
        epsilon,
        weight_decay,
        time,
    } = hyper;
    let (param, first, second) = match moments {
        None => <Dispatch as TrainOps>::optim_adamw_first_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            lr,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        ),
        Some((first, second)) => <Dispatch as TrainOps>::optim_adamw_step(
            param.into_dispatch(),
            grad.into_dispatch(),
            first.into_dispatch(),
            second.into_dispatch(),
            lr,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            time,
        ),
    };
    AdamWStepped {
        param: Tensor::from_dispatch(param),
        first_moment: Tensor::from_dispatch(first),
        second_moment: Tensor::from_dispatch(second),
    }
}

/// ReLU on a tensor of any rank.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match kernels() {
        Kernels::Burn => burn::tensor::activation::relu(x),
        Kernels::Project => {
            Tensor::from_dispatch(<Dispatch as TrainOps>::layer_relu(x.into_dispatch()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_round_trip_and_unknown_names_are_refused() {
        for kernels in [Kernels::Project, Kernels::Burn] {
            assert_eq!(kernels.to_string().parse::<Kernels>().unwrap(), kernels);
        }
        let err = "fast".parse::<Kernels>().unwrap_err().to_string();
        assert!(err.contains("project, burn"), "{err}");
    }
}
