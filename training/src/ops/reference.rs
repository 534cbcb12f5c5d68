//! The layer kernels as compositions of burn's own backend operations: the default
//! bodies of [`TrainKernels`](super::TrainKernels), used by any backend that has
//! nothing faster, and the meaning every faster kernel is tested against.
//!
//! Batch norm's backward is the closed form (Ioffe & Szegedy 2015, §3), with
//! `x̂ = (x − μ)·σ⁻¹` and `m = N·H·W`:
//!
//! ```text
//! dβ = Σ dy        dγ = Σ dy·x̂        dx = γ·σ⁻¹/m · (m·dy − dβ − x̂·dγ)
//! ```

use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::Shape;

use super::{AdamWHyper, BatchNormSaved, Grads, Moments, RunningStatistics, SgdHyper, Wanted};

/// `[C]` → `[1, C, 1, 1]`, to broadcast over an activation.
fn per_channel<B: Backend>(values: FloatTensor<B>, channels: usize) -> FloatTensor<B> {
    B::float_reshape(values, Shape::new([1, channels, 1, 1]))
}

/// Sum over `N, H, W` of a `[N, C, H, W]` tensor, as `[C]`.
pub(super) fn sum_per_channel<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [batch, channels, height, width] = x.shape().dims();
    let flat = B::float_reshape(x, Shape::new([batch, channels, height * width]));
    let summed = B::float_sum_dim(B::float_sum_dim(flat, 2), 0);
    B::float_reshape(summed, Shape::new([channels]))
}

pub(super) fn conv2d_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    options: ConvOptions<2>,
    wanted: Wanted,
) -> Grads<B> {
    let input = wanted.input.then(|| {
        B::conv2d_x_backward(
            x.clone(),
            weight.clone(),
            output_grad.clone(),
            options.clone(),
        )
    });
    let bias = wanted
        .bias
        .then(|| sum_per_channel::<B>(output_grad.clone()));
    let weight = wanted
        .weight
        .then(|| B::conv2d_weight_backward(x, weight, output_grad, options));
    Grads {
        input,
        weight,
        bias,
    }
}

pub(super) fn batch_norm_train_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    running: RunningStatistics<B>,
    epsilon: f64,
) -> BatchNormSaved<B> {
    let [batch, channels, height, width] = x.shape().dims();
    let count = (batch * height * width) as f64;
    let mean = B::float_div_scalar(sum_per_channel::<B>(x.clone()), count.into());
    let centered = B::float_sub(x, per_channel::<B>(mean.clone(), channels));
    let squares = B::float_mul(centered.clone(), centered.clone());
    let var = B::float_div_scalar(sum_per_channel::<B>(squares), count.into());
    let invstd = B::float_recip(B::float_sqrt(B::float_add_scalar(
        var.clone(),
        epsilon.into(),
    )));
    let scale = B::float_mul(gamma, invstd.clone());
    let output = B::float_add(
        B::float_mul(centered, per_channel::<B>(scale, channels)),
        per_channel::<B>(beta, channels),
    );
    BatchNormSaved {
        output,
        running_mean: blend::<B>(running.mean, mean.clone(), running.momentum),
        running_var: blend::<B>(running.var, var, running.momentum),
        mean,
        invstd,
    }
}

/// `(1 − momentum)·running + momentum·batch`.
pub(super) fn blend<B: Backend>(
    running: FloatTensor<B>,
    batch: FloatTensor<B>,
    momentum: f64,
) -> FloatTensor<B> {
    B::float_add(
        B::float_mul_scalar(running, (1.0 - momentum).into()),
        B::float_mul_scalar(batch, momentum.into()),
    )
}

pub(super) fn batch_norm_backward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    invstd: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    wanted: Wanted,
) -> Grads<B> {
    let [batch, channels, height, width] = x.shape().dims();
    let count = (batch * height * width) as f64;
    let normalised = B::float_mul(
        B::float_sub(x, per_channel::<B>(mean, channels)),
        per_channel::<B>(invstd.clone(), channels),
    );
    let grad_beta = sum_per_channel::<B>(output_grad.clone());
    let grad_gamma = sum_per_channel::<B>(B::float_mul(output_grad.clone(), normalised.clone()));
    let input = wanted.input.then(|| {
        let scale = B::float_div_scalar(B::float_mul(gamma, invstd), count.into());
        let centred_grad = B::float_sub(
            B::float_sub(
                B::float_mul_scalar(output_grad, count.into()),
                per_channel::<B>(grad_beta.clone(), channels),
            ),
            B::float_mul(normalised, per_channel::<B>(grad_gamma.clone(), channels)),
        );
        B::float_mul(centred_grad, per_channel::<B>(scale, channels))
    });
    Grads {
        input,
        weight: wanted.weight.then_some(grad_gamma),
        bias: wanted.bias.then_some(grad_beta),
    }
}

pub(super) fn batch_norm_eval_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    running_mean: FloatTensor<B>,
    running_var: FloatTensor<B>,
    epsilon: f64,
) -> FloatTensor<B> {
    let channels = x.shape().dims::<4>()[1];
    let invstd = B::float_recip(B::float_sqrt(B::float_add_scalar(
        running_var,
        epsilon.into(),
    )));
    let scale = B::float_mul(gamma, invstd);
    let shift = B::float_sub(beta, B::float_mul(running_mean, scale.clone()));
    B::float_add(
        B::float_mul(x, per_channel::<B>(scale, channels)),
        per_channel::<B>(shift, channels),
    )
}

pub(super) fn sgd_step<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    velocity: Option<FloatTensor<B>>,
    hyper: SgdHyper,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let grad = if hyper.weight_decay != 0.0 {
        B::float_add(
            grad,
            B::float_mul_scalar(param.clone(), hyper.weight_decay.into()),
        )
    } else {
        grad
    };
    let velocity = match velocity {
        Some(velocity) => B::float_add(B::float_mul_scalar(velocity, hyper.momentum.into()), grad),
        None => grad,
    };
    let param = B::float_sub(
        param,
        B::float_mul_scalar(velocity.clone(), hyper.lr.into()),
    );
    (param, velocity)
}

/// burn's `AdamW` step, operation by operation.
pub(super) fn adamw_step<B: Backend>(
    param: FloatTensor<B>,
    grad: FloatTensor<B>,
    moments: Option<Moments<B>>,
    hyper: AdamWHyper,
) -> (FloatTensor<B>, Moments<B>) {
    let (beta_1, beta_2) = (hyper.beta_1 as f32, hyper.beta_2 as f32);
    let scaled = |tensor: FloatTensor<B>, factor: f32| B::float_mul_scalar(tensor, factor.into());
    let grad_squared = B::float_mul(grad.clone(), grad.clone());
    let (first, second) = match moments {
        None => (
            scaled(grad, 1.0 - beta_1),
            scaled(grad_squared, 1.0 - beta_2),
        ),
        Some(Moments { first, second }) => (
            B::float_add(scaled(first, beta_1), scaled(grad, 1.0 - beta_1)),
            B::float_add(scaled(second, beta_2), scaled(grad_squared, 1.0 - beta_2)),
        ),
    };
    let (correction_1, correction_2) = hyper.bias_corrections();
    let first_corrected = B::float_div_scalar(first.clone(), correction_1.into());
    let second_corrected = B::float_div_scalar(second.clone(), correction_2.into());
    let denominator = B::float_add_scalar(
        B::float_sqrt(second_corrected),
        (hyper.epsilon as f32).into(),
    );
    let delta = B::float_div(first_corrected, denominator);
    let decay = hyper.lr * hyper.weight_decay;
    let decayed = if decay == 0.0 {
        param
    } else {
        B::float_mul_scalar(param, (1.0 - decay).into())
    };
    let param = B::float_sub(decayed, B::float_mul_scalar(delta, hyper.lr.into()));
    (param, Moments { first, second })
}
