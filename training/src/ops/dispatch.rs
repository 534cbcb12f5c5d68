//! The layer operations as a burn backend extension: `TrainOps` is declared with
//! `#[backend_extension]`, which generates its `Dispatch` implementation (routing a
//! call to Flex, LibTorch or `Autodiff` over either, by the tensors' backend). The
//! concrete backends run their kernels' forwards; `Autodiff<B>` adds the handwritten
//! backward nodes of [`super::autodiff`].

// burn-tch's types carry #[deprecated] upstream (burn points to its CubeCL backends, which
// cannot be built here), and the generated dispatch names them; LibTorch is the
// project's GPU route.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};

#[cfg(feature = "tch")]
use burn::backend::LibTorch;

use super::{AdamWHyper, Moments, RunningStatistics, SgdHyper, TrainKernels, autodiff};

/// The layer operations as burn backend operations: implemented by Flex, LibTorch and
/// `Autodiff` over either, reached from burn `Tensor`s through burn's `Dispatch`.
#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait TrainOps: Backend {
    fn layer_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// [`TrainOps::layer_conv2d`] plus a bias per output channel (burn 0.22.1's
    /// extension macro does not map optional tensors, hence two operations).
    fn layer_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Training-mode batch norm, then ReLU when `relu`: `(output, new running mean, new
    /// running variance)`; the running statistics carry no gradient.
    #[allow(clippy::too_many_arguments)]
    fn layer_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        momentum: f64,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Inference-mode batch norm, then ReLU when `relu`. Not differentiable: layers send
    /// autodiff tensors to burn's `BatchNorm` instead.
    fn layer_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;

    fn layer_relu(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// An SGD step with no velocity yet (the first, or SGD without momentum):
    /// `(new parameter, new velocity)`.
    fn optim_sgd_first_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// An SGD step with the velocity so far: `(new parameter, new velocity)`.
    fn optim_sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The first AdamW step (no moments yet): `(new parameter, first moment, second
    /// moment)`.
    #[allow(clippy::too_many_arguments)]
    fn optim_adamw_first_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// AdamW step number `time` (from 2) with the moments so far: `(new parameter, first
    /// moment, second moment)`.
    #[allow(clippy::too_many_arguments)]
    fn optim_adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        first_moment: FloatTensor<Self>,
        second_moment: FloatTensor<Self>,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
        time: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn sgd_hyper(lr: f64, momentum: f64, weight_decay: f64) -> SgdHyper {
    SgdHyper {
        lr,
        momentum,
        weight_decay,
    }
}

fn adamw_hyper([lr, beta_1, beta_2, epsilon, weight_decay]: [f64; 5], time: usize) -> AdamWHyper {
    AdamWHyper {
        lr,
        beta_1,
        beta_2,
        epsilon,
        weight_decay,
        time,
    }
}

/// `TrainOps` for a concrete backend (no autodiff): its kernels' forwards.
macro_rules! forward_only_train_ops {
    ($backend:ty) => {
        impl TrainOps for $backend {
            fn layer_conv2d(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                options: ConvOptions<2>,
            ) -> FloatTensor<Self> {
                Self::conv2d_forward(x, weight, None, options)
            }

            fn layer_conv2d_bias(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                options: ConvOptions<2>,
            ) -> FloatTensor<Self> {
                Self::conv2d_forward(x, weight, Some(bias), options)
            }

            fn layer_batch_norm_train(
                x: FloatTensor<Self>,
                gamma: FloatTensor<Self>,
                beta: FloatTensor<Self>,
                running_mean: FloatTensor<Self>,
                running_var: FloatTensor<Self>,
                momentum: f64,
                epsilon: f64,
                relu: bool,
            ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                let running = RunningStatistics {
                    mean: running_mean,
                    var: running_var,
                    momentum,
                };
                let saved = Self::batch_norm_train_forward(x, gamma, beta, running, epsilon);
                let output = if relu {
                    Self::relu_forward(saved.output)
                } else {
                    saved.output
                };
                (output, saved.running_mean, saved.running_var)
            }

            fn layer_batch_norm_eval(
                x: FloatTensor<Self>,
                gamma: FloatTensor<Self>,
                beta: FloatTensor<Self>,
                running_mean: FloatTensor<Self>,
                running_var: FloatTensor<Self>,
                epsilon: f64,
                relu: bool,
            ) -> FloatTensor<Self> {
                let output = Self::batch_norm_eval_forward(
                    x,
                    gamma,
                    beta,
                    running_mean,
                    running_var,
                    epsilon,
                );
                if relu {
                    Self::relu_forward(output)
                } else {
                    output
                }
            }

            fn layer_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
                Self::relu_forward(x)
            }

            fn optim_sgd_first_step(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                lr: f64,
                momentum: f64,
                weight_decay: f64,
            ) -> (FloatTensor<Self>, FloatTensor<Self>) {
                let hyper = sgd_hyper(lr, momentum, weight_decay);
                Self::sgd_step(param, grad, None, hyper)
            }

            fn optim_sgd_step(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                velocity: FloatTensor<Self>,
                lr: f64,
                momentum: f64,
                weight_decay: f64,
            ) -> (FloatTensor<Self>, FloatTensor<Self>) {
                let hyper = sgd_hyper(lr, momentum, weight_decay);
                Self::sgd_step(param, grad, Some(velocity), hyper)
            }

            fn optim_adamw_first_step(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                lr: f64,
                beta_1: f64,
                beta_2: f64,
                epsilon: f64,
                weight_decay: f64,
            ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                let hyper = adamw_hyper([lr, beta_1, beta_2, epsilon, weight_decay], 1);
                let (param, moments) = Self::adamw_step(param, grad, None, hyper);
                (param, moments.first, moments.second)
            }

            fn optim_adamw_step(
                param: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                first: FloatTensor<Self>,
                second: FloatTensor<Self>,
                lr: f64,
                beta_1: f64,
                beta_2: f64,
                epsilon: f64,
                weight_decay: f64,
                time: usize,
            ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
                let hyper = adamw_hyper([lr, beta_1, beta_2, epsilon, weight_decay], time);
                let moments = Some(Moments { first, second });
                let (param, moments) = Self::adamw_step(param, grad, moments, hyper);
                (param, moments.first, moments.second)
            }
        }
    };
}

forward_only_train_ops!(Flex);
#[cfg(feature = "tch")]
forward_only_train_ops!(LibTorch);

impl<B: TrainKernels, C: CheckpointStrategy> TrainOps for Autodiff<B, C> {
    fn layer_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        autodiff::conv2d::<B, C>(x, weight, None, options)
    }

    fn layer_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        autodiff::conv2d::<B, C>(x, weight, Some(bias), options)
    }

    fn layer_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        momentum: f64,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        autodiff::batch_norm_train::<B, C>(
            [x, gamma, beta],
            [running_mean, running_var],
            momentum,
            epsilon,
            relu,
        )
    }

    fn layer_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        running_mean: FloatTensor<Self>,
        running_var: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        autodiff::batch_norm_eval::<B, C>(x, gamma, beta, running_mean, running_var, epsilon, relu)
    }

    fn layer_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        autodiff::relu::<B, C>(x)
    }

    fn optim_sgd_first_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let hyper = sgd_hyper(lr, momentum, weight_decay);
        autodiff::sgd_step::<B, C>(param, grad, None, hyper)
    }

    fn optim_sgd_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let hyper = sgd_hyper(lr, momentum, weight_decay);
        autodiff::sgd_step::<B, C>(param, grad, Some(velocity), hyper)
    }

    fn optim_adamw_first_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let hyper = adamw_hyper([lr, beta_1, beta_2, epsilon, weight_decay], 1);
        let [param, first, second] = autodiff::adamw_step::<B, C>(param, grad, None, hyper);
        (param, first, second)
    }

    fn optim_adamw_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        first: FloatTensor<Self>,
        second: FloatTensor<Self>,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        weight_decay: f64,
        time: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let hyper = adamw_hyper([lr, beta_1, beta_2, epsilon, weight_decay], time);
        let moments = Some([first, second]);
        let [param, first, second] = autodiff::adamw_step::<B, C>(param, grad, moments, hyper);
        (param, first, second)
    }
}
