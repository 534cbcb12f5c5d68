#![allow(deprecated)] // burn-tch's types carry #[deprecated] upstream; LibTorch is our GPU route
//! The layer kernels on LibTorch: the forward and backward ATen kernels PyTorch's own
//! autograd runs for `conv2d`, `batch_norm` and `relu` (oneDNN on the CPU, cuDNN and
//! ATen's CUDA kernels on a GPU).
//!
//! A failing ATen call (out of device memory, a shape LibTorch refuses) panics with
//! LibTorch's message, as burn-tch's own operations do: burn's backend traits have no
//! error path.

use burn::backend::LibTorch;
use burn::backend::libtorch::TchTensor;
use burn::backend::ops::ConvOptions;

use super::aten::{self, ConvGeometry};
use super::{
    AdamWHyper, BatchNormSaved, Grads, Moments, RunningStatistics, SgdHyper, TrainKernels, Wanted,
    reference,
};

/// `tch::Tensor` → burn-tch's tensor, as a new storage owner.
fn wrap(tensor: tch::Tensor) -> TchTensor {
    TchTensor::new(tensor)
}

/// `tensor`'s storage when burn holds no other reference to it (so writing it in place
/// changes nothing anyone else sees), else a copy.
fn writable(tensor: TchTensor) -> Result<tch::Tensor, tch::TchError> {
    if tensor.can_mut() {
        Ok(tensor.tensor)
    } else {
        tensor.tensor.f_detach_copy()
    }
}

fn failed(what: &str, message: impl std::fmt::Display) -> ! {
    panic!("LibTorch {what} failed: {message}")
}

fn geometry(options: &ConvOptions<2>) -> ConvGeometry {
    let as_i64 = |values: [usize; 2]| values.map(|v| v as i64);
    ConvGeometry {
        stride: as_i64(options.stride),
        padding: as_i64(options.padding_begin()),
        dilation: as_i64(options.dilation),
        groups: options.groups as i64,
    }
}

impl TrainKernels for LibTorch {
    fn conv2d_backward(
        x: TchTensor,
        weight: TchTensor,
        output_grad: TchTensor,
        options: ConvOptions<2>,
        wanted: Wanted,
    ) -> Grads<Self> {
        if options.is_asymmetric() {
            // ATen pads symmetrically; burn's composition pads the input first.
            return reference::conv2d_backward::<Self>(x, weight, output_grad, options, wanted);
        }
        let need = [wanted.input, wanted.weight, wanted.bias];
        let (input, weight, bias) = aten::conv2d_backward(
            &output_grad.tensor,
            &x.tensor,
            &weight.tensor,
            &geometry(&options),
            need,
        )
        .unwrap_or_else(|message| failed("convolution backward", message));
        Grads {
            input: input.map(wrap),
            weight: weight.map(wrap),
            bias: bias.map(wrap),
        }
    }

    fn batch_norm_train_forward(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        running: RunningStatistics<Self>,
        epsilon: f64,
    ) -> BatchNormSaved<Self> {
        // No running statistics go in: LibTorch would update them in place, with the
        // unbiased variance (PyTorch's rule); burn's rule blends the biased one.
        let (output, mean, invstd) = x
            .tensor
            .f_native_batch_norm(
                Some(&gamma.tensor),
                Some(&beta.tensor),
                None::<&tch::Tensor>,
                None::<&tch::Tensor>,
                true,
                0.0,
                epsilon,
            )
            .unwrap_or_else(|e| failed("batch norm", e));
        // invstd = 1/√(var + ε), so the biased batch variance is invstd⁻² − ε; each
        // running statistic moves by lerp(running, batch, momentum), one ATen call.
        let blend = |old: &TchTensor, batch: &tch::Tensor| {
            old.tensor
                .f_lerp(batch, running.momentum)
                .unwrap_or_else(|e| failed("batch norm running statistics", e))
        };
        let var = invstd
            .f_pow_tensor_scalar(-2)
            .and_then(|v| v.f_sub_scalar(epsilon))
            .unwrap_or_else(|e| failed("batch norm variance", e));
        BatchNormSaved {
            running_mean: wrap(blend(&running.mean, &mean)),
            running_var: wrap(blend(&running.var, &var)),
            output: wrap(output),
            mean: wrap(mean),
            invstd: wrap(invstd),
        }
    }

    fn batch_norm_backward(
        x: TchTensor,
        gamma: TchTensor,
        mean: TchTensor,
        invstd: TchTensor,
        output_grad: TchTensor,
        epsilon: f64,
        wanted: Wanted,
    ) -> Grads<Self> {
        let need = [wanted.input, wanted.weight, wanted.bias];
        let (input, gamma, beta) = aten::batch_norm_backward(
            &output_grad.tensor,
            &x.tensor,
            &gamma.tensor,
            &mean.tensor,
            &invstd.tensor,
            epsilon,
            need,
        )
        .unwrap_or_else(|message| failed("batch norm backward", message));
        Grads {
            input: input.map(wrap),
            weight: gamma.map(wrap),
            bias: beta.map(wrap),
        }
    }

    fn batch_norm_eval_forward(
        x: TchTensor,
        gamma: TchTensor,
        beta: TchTensor,
        running_mean: TchTensor,
        running_var: TchTensor,
        epsilon: f64,
    ) -> TchTensor {
        let output = x
            .tensor
            .f_batch_norm(
                Some(&gamma.tensor),
                Some(&beta.tensor),
                Some(&running_mean.tensor),
                Some(&running_var.tensor),
                false,
                0.0,
                epsilon,
                true,
            )
            .unwrap_or_else(|e| failed("batch norm (inference)", e));
        wrap(output)
    }

    fn relu_forward(x: TchTensor) -> TchTensor {
        // In place when burn holds no other reference to the storage (burn-tch's rule).
        x.unary_ops(|mut t| t.relu_(), |t| t.relu())
    }

    fn sgd_step(
        param: TchTensor,
        grad: TchTensor,
        velocity: Option<TchTensor>,
        hyper: SgdHyper,
    ) -> (TchTensor, TchTensor) {
        let stepped = (|| {
            let mut p = writable(param)?;
            if hyper.momentum == 0.0 {
                // no state to keep: the plain rule, as burn's Sgd without momentum
                return sgd_composed(p, &grad.tensor, None, &hyper);
            }
            let first_step = velocity.is_none();
            let mut v = match velocity {
                Some(v) => writable(v)?,
                None => p.f_empty_like()?,
            };
            match aten::fused_sgd_step(&mut p, &grad.tensor, &mut v, &hyper, first_step) {
                Ok(aten::Fused::Stepped) => Ok((p, v)),
                Ok(aten::Fused::Unsuitable) => {
                    sgd_composed(p, &grad.tensor, (!first_step).then_some(v), &hyper)
                }
                Err(message) => failed("SGD step", message),
            }
        })();
        let (p, v) = stepped.unwrap_or_else(|e: tch::TchError| failed("SGD step", e));
        (wrap(p), wrap(v))
    }

    fn adamw_step(
        param: TchTensor,
        grad: TchTensor,
        moments: Option<Moments<Self>>,
        hyper: AdamWHyper,
    ) -> (TchTensor, Moments<Self>) {
        let stepped = (|| {
            let mut p = writable(param)?;
            let (mut m, mut v) = match moments {
                Some(Moments { first, second }) => (writable(first)?, writable(second)?),
                // from zero, as PyTorch starts them: the first step gives (1 − β)·g
                None => (p.f_zeros_like()?, p.f_zeros_like()?),
            };
            match aten::fused_adamw_step(&mut p, &grad.tensor, &mut m, &mut v, &hyper) {
                Ok(aten::Fused::Stepped) => Ok([p, m, v]),
                Ok(aten::Fused::Unsuitable) => adamw_composed(p, &grad.tensor, m, v, &hyper),
                Err(message) => failed("AdamW step", message),
            }
        })();
        let [p, m, v] = stepped.unwrap_or_else(|e: tch::TchError| failed("AdamW step", e));
        let moments = Moments {
            first: wrap(m),
            second: wrap(v),
        };
        (wrap(p), moments)
    }

    fn relu_backward_from_output(output: TchTensor, output_grad: TchTensor) -> TchTensor {
        // PyTorch's ReLU backward: the gradient where the saved output is positive.
        let grad = output
            .tensor
            .f_threshold_backward(&output_grad.tensor, 0.0)
            .unwrap_or_else(|e| failed("ReLU backward", e));
        wrap(grad)
    }
}

/// The SGD rule in a few in-place ATen calls, for tensors ATen's fused kernel does not
/// take (and for SGD without momentum). `p` is written in place, as is `velocity`;
/// without one, the returned velocity is this step's `g`.
fn sgd_composed(
    mut p: tch::Tensor,
    grad: &tch::Tensor,
    velocity: Option<tch::Tensor>,
    hyper: &SgdHyper,
) -> Result<(tch::Tensor, tch::Tensor), tch::TchError> {
    let g = if hyper.weight_decay != 0.0 {
        grad.f_add(&p.f_mul_scalar(hyper.weight_decay)?)?
    } else {
        grad.shallow_clone()
    };
    let v = match velocity {
        Some(mut v) => {
            let _ = v.f_mul_scalar_(hyper.momentum)?.f_add_(&g)?;
            v
        }
        // a copy: the next step writes the velocity in place, the gradient stays read-only
        None => g.f_detach_copy()?,
    };
    let _ = p.f_sub_(&v.f_mul_scalar(hyper.lr)?)?;
    Ok((p, v))
}

/// PyTorch's single-tensor AdamW in ATen calls, for tensors ATen's fused kernel does
/// not take; `p`, `m` and `v` are written in place.
fn adamw_composed(
    mut p: tch::Tensor,
    grad: &tch::Tensor,
    m: tch::Tensor,
    v: tch::Tensor,
    hyper: &AdamWHyper,
) -> Result<[tch::Tensor; 3], tch::TchError> {
    let (correction_1, correction_2) = hyper.bias_corrections();
    // m ← m + (1 − β₁)(g − m) = β₁m + (1 − β₁)g; v likewise with g²
    let _ = m.shallow_clone().f_lerp_(grad, 1.0 - hyper.beta_1)?;
    let _ = v
        .shallow_clone()
        .f_lerp_(&grad.f_square()?, 1.0 - hyper.beta_2)?;
    let denominator = v
        .f_div_scalar(f64::from(correction_2))?
        .f_sqrt_()?
        .f_add_scalar_(hyper.epsilon)?;
    let delta = m
        .f_div(&denominator)?
        .f_mul_scalar_(hyper.lr / f64::from(correction_1))?;
    let decay = hyper.lr * hyper.weight_decay;
    if decay != 0.0 {
        let _ = p.f_mul_scalar_(1.0 - decay)?;
    }
    let _ = p.f_sub_(&delta)?;
    Ok([p, m, v])
}
