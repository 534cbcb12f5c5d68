//! The layer kernels on flex, burn's pure-Rust CPU backend: convolution as batched
//! matrix products ([`super::flex_conv`]), batch norm and ReLU as direct loops over
//! contiguous float32 buffers, parallel with rayon.
//!
//! burn's composition (the [`reference`](super::reference) kernels) builds batch norm
//! from a dozen whole-tensor operations, each a pass over memory with its own
//! allocation; these kernels make two passes (statistics, then normalise) forward and
//! two backward. Statistics sum in f32 lanes within blocks of 512 values and in f64
//! across them. Other dtypes (bf16, f16) and asymmetric padding keep burn's own kernels.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, ConvOptions, ModuleOps};
use burn::tensor::{DType, Shape, TensorData};
use rayon::prelude::*;

use super::flex_conv::{self, Geometry};
use super::{
    AdamWHyper, BatchNormSaved, Grads, Moments, RunningStatistics, SgdHyper, TrainKernels, Wanted,
    reference,
};

/// `tensor` as a contiguous float32 tensor, or `None` for another dtype.
fn contiguous_f32(tensor: FlexTensor) -> Option<FlexTensor> {
    if tensor.dtype() != DType::F32 {
        return None;
    }
    if tensor.as_slice::<f32>().is_some() {
        Some(tensor)
    } else {
        Some(tensor.to_contiguous())
    }
}

fn values(tensor: &FlexTensor) -> &[f32] {
    // contiguous_f32 made sure of both
    tensor.as_slice::<f32>().unwrap_or(&[])
}

fn new_f32(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `[N, C, H, W]` → (N, C, H·W).
fn dims(tensor: &FlexTensor) -> (usize, usize, usize) {
    let [n, c, h, w] = tensor.layout().shape().dims();
    (n, c, h * w)
}

/// Per channel `c`, `f(c, start)` summed over the start offsets of that channel's
/// `[H·W]` planes, one per image.
fn per_channel_sums(
    (batch, channels, plane): (usize, usize, usize),
    f: impl Fn(usize, usize) -> f64 + Sync,
) -> Vec<f64> {
    (0..channels)
        .into_par_iter()
        .map(|c| (0..batch).map(|n| f(c, (n * channels + c) * plane)).sum())
        .collect()
}

/// The convolution's geometry, when the project's kernel handles it (symmetric padding).
fn conv_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<Geometry> {
    if options.is_asymmetric() {
        return None;
    }
    let [batch, in_channels, height, width] = x.layout().shape().dims();
    let [out_channels, _, kh, kw] = weight.layout().shape().dims();
    Some(Geometry {
        batch,
        in_channels,
        height,
        width,
        out_channels,
        kernel: [kh, kw],
        stride: options.stride,
        padding: options.padding_begin(),
        dilation: options.dilation,
        groups: options.groups,
    })
}

/// [`flex_conv::forward`] when it handles the case (float32, symmetric padding).
fn conv_by_products(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let x = contiguous_f32(x.clone())?;
    let weight = contiguous_f32(weight.clone())?;
    let bias = match bias {
        Some(bias) => Some(contiguous_f32(bias.clone())?),
        None => None,
    };
    let geo = conv_geometry(&x, &weight, options)?;
    let y = flex_conv::forward(values(&x), values(&weight), bias.as_ref().map(values), &geo);
    let shape = Shape::new([
        geo.batch,
        geo.out_channels,
        geo.out_height(),
        geo.out_width(),
    ]);
    Some(new_f32(y, shape))
}

/// Lanes of the partial sums below: eight independent f32 accumulators vectorise (one
/// running sum would not: float addition is not reassociated), and each block of
/// `BLOCK` values goes on in f64, so long planes lose no precision.
const LANES: usize = 8;
const BLOCK: usize = 512;

/// Σ values, in f32 lanes per block and f64 across blocks.
fn sum(values: &[f32]) -> f64 {
    values
        .chunks(BLOCK)
        .map(|block| {
            let mut lanes = [0.0f32; LANES];
            let mut chunks = block.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (lane, &v) in lanes.iter_mut().zip(chunk) {
                    *lane += v;
                }
            }
            let tail: f32 = chunks.remainder().iter().sum();
            f64::from(lanes.iter().sum::<f32>() + tail)
        })
        .sum()
}

/// Σ (a − centre)·b, in f32 lanes per block and f64 across blocks.
fn centred_dot(a: &[f32], b: &[f32], centre: f32) -> f64 {
    a.chunks(BLOCK)
        .zip(b.chunks(BLOCK))
        .map(|(a, b)| {
            let mut lanes = [0.0f32; LANES];
            let (mut a_chunks, mut b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
            for (a, b) in (&mut a_chunks).zip(&mut b_chunks) {
                for ((lane, &x), &y) in lanes.iter_mut().zip(a).zip(b) {
                    *lane += (x - centre) * y;
                }
            }
            let tail: f32 = a_chunks
                .remainder()
                .iter()
                .zip(b_chunks.remainder())
                .map(|(&x, &y)| (x - centre) * y)
                .sum();
            f64::from(lanes.iter().sum::<f32>() + tail)
        })
        .sum()
}

impl TrainKernels for Flex {
    fn conv2d_forward(
        x: FlexTensor,
        weight: FlexTensor,
        bias: Option<FlexTensor>,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv_by_products(&x, &weight, bias.as_ref(), &options)
            .unwrap_or_else(|| <Flex as ModuleOps<Flex>>::conv2d(x, weight, bias, options))
    }

    fn conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
        wanted: Wanted,
    ) -> Grads<Self> {
        let (Some(xc), Some(wc), Some(dyc)) = (
            contiguous_f32(x.clone()),
            contiguous_f32(weight.clone()),
            contiguous_f32(output_grad.clone()),
        ) else {
            return reference::conv2d_backward::<Self>(x, weight, output_grad, options, wanted);
        };
        let Some(geo) = conv_geometry(&xc, &wc, &options) else {
            return reference::conv2d_backward::<Self>(x, weight, output_grad, options, wanted);
        };
        let grads = flex_conv::backward(
            values(&xc),
            values(&wc),
            values(&dyc),
            &geo,
            [wanted.input, wanted.weight, wanted.bias],
        );
        Grads {
            input: grads.input.map(|v| new_f32(v, xc.layout().shape().clone())),
            weight: grads
                .weight
                .map(|v| new_f32(v, wc.layout().shape().clone())),
            bias: grads
                .bias
                .map(|v| new_f32(v, Shape::new([geo.out_channels]))),
        }
    }

    fn batch_norm_train_forward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        running: RunningStatistics<Self>,
        epsilon: f64,
    ) -> BatchNormSaved<Self> {
        let inputs =
            [&x, &gamma, &beta, &running.mean, &running.var].map(|t| contiguous_f32((*t).clone()));
        let [
            Some(x),
            Some(gamma),
            Some(beta),
            Some(old_mean),
            Some(old_var),
        ] = inputs
        else {
            return reference::batch_norm_train_forward::<Self>(x, gamma, beta, running, epsilon);
        };
        let shape = dims(&x);
        let (_, channels, plane) = shape;
        let count = (shape.0 * plane) as f64;
        let xs = values(&x);
        let at = |start: usize| &xs[start..start + plane];
        let mean: Vec<f64> = per_channel_sums(shape, |_, start| sum(at(start)))
            .into_iter()
            .map(|s| s / count)
            .collect();
        // Two passes: Σ(x − μ)² stays accurate where Σx² − nμ² would cancel.
        let var: Vec<f64> = per_channel_sums(shape, |c, start| {
            centred_dot(at(start), at(start), mean[c] as f32)
        })
        .into_iter()
        .map(|s| s / count)
        .collect();
        let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
        let (g, b) = (values(&gamma), values(&beta));
        // y = x·scale + shift, scale = γ/σ, shift = β − μ·γ/σ
        let scale: Vec<f32> = (0..channels)
            .map(|c| (f64::from(g[c]) * invstd[c]) as f32)
            .collect();
        let shift: Vec<f32> = (0..channels)
            .map(|c| (f64::from(b[c]) - mean[c] * f64::from(g[c]) * invstd[c]) as f32)
            .collect();
        let mut output = vec![0.0f32; xs.len()];
        output
            .par_chunks_mut(plane.max(1))
            .zip(xs.par_chunks(plane.max(1)))
            .enumerate()
            .for_each(|(i, (out, x))| {
                let (s, t) = (scale[i % channels], shift[i % channels]);
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v * s + t;
                }
            });
        let stat = |v: &[f64]| {
            let values = v.iter().map(|&v| v as f32).collect();
            new_f32(values, Shape::new([channels]))
        };
        // (1 − momentum)·running + momentum·batch
        let momentum = running.momentum;
        let blend = |old: &FlexTensor, batch: &[f64]| {
            let values = values(old)
                .iter()
                .zip(batch)
                .map(|(&r, &b)| ((1.0 - momentum) * f64::from(r) + momentum * b) as f32)
                .collect();
            new_f32(values, Shape::new([channels]))
        };
        BatchNormSaved {
            output: new_f32(output, x.layout().shape().clone()),
            running_mean: blend(&old_mean, &mean),
            running_var: blend(&old_var, &var),
            mean: stat(&mean),
            invstd: stat(&invstd),
        }
    }

    fn batch_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        invstd: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
        wanted: Wanted,
    ) -> Grads<Self> {
        let _ = epsilon;
        let inputs = [&x, &gamma, &mean, &invstd].map(|t| contiguous_f32((*t).clone()));
        // The output gradient is written over with the input gradient when it is ours
        // alone (it is read for the sums first); a fresh buffer costs page faults.
        let output_grad = match owned_f32(output_grad) {
            Ok(owned) => Ok(owned),
            Err(shared) => contiguous_f32(shared.clone()).ok_or(shared),
        };
        let [Some(xc), Some(gc), Some(mc), Some(ic)] = inputs else {
            let output_grad = output_grad.unwrap_or_else(|t| t);
            return reference::batch_norm_backward::<Self>(
                x,
                gamma,
                mean,
                invstd,
                output_grad,
                wanted,
            );
        };
        let output_grad = match output_grad {
            Ok(owned) => owned,
            Err(fallback) => {
                return reference::batch_norm_backward::<Self>(
                    x, gamma, mean, invstd, fallback, wanted,
                );
            }
        };
        let writable = owns_whole_buffer(&output_grad) && output_grad.is_unique();
        let shape = dims(&xc);
        let (_, channels, plane) = shape;
        let count = (shape.0 * plane) as f64;
        let (xs, dys) = (values(&xc), values(&output_grad));
        let (g, mu, is) = (values(&gc), values(&mc), values(&ic));
        let grad_beta = per_channel_sums(shape, |_, start| sum(&dys[start..][..plane]));
        // Σ dy·x̂ = σ⁻¹ · Σ dy·(x − μ)
        let grad_gamma: Vec<f64> = per_channel_sums(shape, |c, start| {
            centred_dot(&xs[start..][..plane], &dys[start..][..plane], mu[c])
        })
        .into_iter()
        .zip(is)
        .map(|(s, &inv)| s * f64::from(inv))
        .collect();
        let input = wanted.input.then(|| {
            // dx = k·(dy − Σdy/m − x̂·Σdy·x̂/m), k = γ/σ, x̂ = (x − μ)/σ, as two products:
            // dx = k·dy + a·x + b with a = −k·Σdy·x̂/(m·σ), b = −k·Σdy/m − a·μ. (Plain
            // products and sums: `mul_add` calls libm's fmaf when the build does not
            // target FMA.)
            let coefficients: Vec<[f32; 3]> = (0..channels)
                .map(|c| {
                    let inv = f64::from(is[c]);
                    let k = f64::from(g[c]) * inv;
                    let a = -k * grad_gamma[c] / count * inv;
                    let b = -k * grad_beta[c] / count - a * f64::from(mu[c]);
                    [k as f32, a as f32, b as f32]
                })
                .collect();
            let plane_of = |i: usize| coefficients[i % channels];
            let mut output_grad = output_grad;
            if writable && let Some(dy) = output_grad.try_storage_mut::<f32>() {
                dy.par_chunks_mut(plane.max(1))
                    .zip(xs.par_chunks(plane.max(1)))
                    .enumerate()
                    .for_each(|(i, (dy, x))| {
                        let [k, a, b] = plane_of(i);
                        for (d, &v) in dy.iter_mut().zip(x) {
                            *d = *d * k + (v * a + b);
                        }
                    });
                return output_grad;
            }
            let mut dx = vec![0.0f32; xs.len()];
            dx.par_chunks_mut(plane.max(1))
                .zip(
                    xs.par_chunks(plane.max(1))
                        .zip(values(&output_grad).par_chunks(plane.max(1))),
                )
                .enumerate()
                .for_each(|(i, (dx, (x, dy)))| {
                    let [k, a, b] = plane_of(i);
                    for ((o, &v), &d) in dx.iter_mut().zip(x).zip(dy) {
                        *o = d * k + (v * a + b);
                    }
                });
            new_f32(dx, xc.layout().shape().clone())
        });
        let to_tensor = |v: Vec<f64>| {
            new_f32(
                v.into_iter().map(|v| v as f32).collect(),
                Shape::new([channels]),
            )
        };
        Grads {
            input,
            weight: wanted.weight.then(|| to_tensor(grad_gamma)),
            bias: wanted.bias.then(|| to_tensor(grad_beta)),
        }
    }

    fn relu_forward(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return <Flex as ActivationOps<Flex>>::relu(x);
        }
        let mut x = x;
        // In place when this tensor owns its whole buffer, as burn's own ReLU does.
        if owns_whole_buffer(&x)
            && let Some(values) = x.try_storage_mut::<f32>()
        {
            elementwise_in_place(values, |v| v.max(0.0));
            return x;
        }
        let x = x.to_contiguous();
        let mut out = values(&x).to_vec();
        elementwise_in_place(&mut out, |v| v.max(0.0));
        new_f32(out, x.layout().shape().clone())
    }

    fn sgd_step(
        param: FlexTensor,
        grad: FlexTensor,
        velocity: Option<FlexTensor>,
        hyper: SgdHyper,
    ) -> (FlexTensor, FlexTensor) {
        // One pass, writing the parameter and the velocity in place when nothing else
        // holds them; nothing is cloned before the check (a clone shares the buffer).
        let shape = param.layout().shape().clone();
        let fits = |t: &FlexTensor| t.dtype() == DType::F32 && t.layout().shape() == &shape;
        if !(fits(&param) && fits(&grad) && velocity.as_ref().is_none_or(fits)) {
            return reference::sgd_step::<Self>(param, grad, velocity, hyper);
        }
        // No velocity yet is a velocity of zeros: momentum·0 + g is exactly g.
        let velocity = match velocity {
            Some(velocity) => writable_f32(velocity),
            None => Some(new_f32(vec![0.0; shape.num_elements()], shape.clone())),
        };
        let (Some(mut p), Some(g), Some(mut v)) =
            (writable_f32(param), contiguous_f32(grad), velocity)
        else {
            unreachable!("every tensor was checked to be float32")
        };
        let (lr, momentum, decay) = (
            hyper.lr as f32,
            hyper.momentum as f32,
            hyper.weight_decay as f32,
        );
        let g = values(&g);
        let (Some(p_values), Some(v_values)) =
            (p.try_storage_mut::<f32>(), v.try_storage_mut::<f32>())
        else {
            unreachable!("writable_f32 hands over tensors that own their buffers")
        };
        p_values
            .par_chunks_mut(CHUNK)
            .zip(v_values.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, (p, v))| {
                let g = &g[i * CHUNK..][..p.len()];
                for ((p, v), &g) in p.iter_mut().zip(v).zip(g) {
                    *v = momentum * *v + (g + decay * *p);
                    *p -= lr * *v;
                }
            });
        (p, v)
    }

    fn adamw_step(
        param: FlexTensor,
        grad: FlexTensor,
        moments: Option<Moments<Self>>,
        hyper: AdamWHyper,
    ) -> (FlexTensor, Moments<Self>) {
        // One pass over the parameter, its gradient and both moments, writing the
        // parameter and the moments in place when nothing else holds them (burn's
        // composition makes a dozen passes, each allocating a parameter-sized tensor).
        // Nothing is cloned before the check: a clone would make every buffer shared.
        let shape = param.layout().shape().clone();
        let fits = |t: &FlexTensor| t.dtype() == DType::F32 && t.layout().shape() == &shape;
        let moments_fit = moments
            .as_ref()
            .is_none_or(|m| fits(&m.first) && fits(&m.second));
        if !(fits(&param) && fits(&grad) && moments_fit) {
            return reference::adamw_step::<Self>(param, grad, moments, hyper);
        }
        let zeros = || new_f32(vec![0.0; shape.num_elements()], shape.clone());
        let moments = match moments {
            Some(Moments { first, second }) => writable_f32(first).zip(writable_f32(second)),
            None => Some((zeros(), zeros())),
        };
        let (Some(mut p), Some(g), Some((mut m, mut v))) =
            (writable_f32(param), contiguous_f32(grad), moments)
        else {
            unreachable!("every tensor was checked to be float32")
        };
        let (correction_1, correction_2) = hyper.bias_corrections();
        let (beta_1, beta_2) = (hyper.beta_1 as f32, hyper.beta_2 as f32);
        let (lr, epsilon) = (hyper.lr as f32, hyper.epsilon as f32);
        let keep = (1.0 - hyper.lr * hyper.weight_decay) as f32;
        let g = values(&g);
        let (Some(p_values), Some(m_values), Some(v_values)) = (
            p.try_storage_mut::<f32>(),
            m.try_storage_mut::<f32>(),
            v.try_storage_mut::<f32>(),
        ) else {
            unreachable!("writable_f32 hands over tensors that own their buffers")
        };
        p_values
            .par_chunks_mut(CHUNK)
            .zip(m_values.par_chunks_mut(CHUNK))
            .zip(v_values.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, ((p, m), v))| {
                let g = &g[i * CHUNK..][..p.len()];
                for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
                    *m = beta_1 * *m + (1.0 - beta_1) * g;
                    *v = beta_2 * *v + (1.0 - beta_2) * (g * g);
                    let delta = (*m / correction_1) / ((*v / correction_2).sqrt() + epsilon);
                    *p = *p * keep - lr * delta;
                }
            });
        (
            p,
            Moments {
                first: m,
                second: v,
            },
        )
    }

    fn relu_backward_from_output(output: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let out = contiguous_f32(output.clone()).filter(|_| output_grad.dtype() == DType::F32);
        let Some(out) = out else {
            return <Flex as ActivationOps<Flex>>::relu_backward(output, output_grad);
        };
        // a select, not a branch: it vectorises, and the signs are unpredictable
        let mask = |g: &mut f32, o: f32| *g = if o > 0.0 { *g } else { 0.0 };
        // In place when the gradient is ours alone (it usually is: autodiff hands each
        // node's gradient over once). A fresh buffer costs as much again in page faults
        // as the pass itself.
        match owned_f32(output_grad) {
            Ok(mut grad) => {
                if let Some(values) = grad.try_storage_mut::<f32>() {
                    values
                        .par_chunks_mut(CHUNK)
                        .zip(self::values(&out).par_chunks(CHUNK))
                        .for_each(|(g, o)| g.iter_mut().zip(o).for_each(|(g, &o)| mask(g, o)));
                }
                grad
            }
            Err(shared) => {
                let dy = shared.to_contiguous();
                let mut grad = values(&dy).to_vec();
                grad.par_chunks_mut(CHUNK)
                    .zip(values(&out).par_chunks(CHUNK))
                    .for_each(|(g, o)| g.iter_mut().zip(o).for_each(|(g, &o)| mask(g, o)));
                new_f32(grad, dy.layout().shape().clone())
            }
        }
    }
}

/// Elements per parallel task of an elementwise kernel: large enough that a task's
/// cost dwarfs handing it to a thread, small enough to share the work out.
const CHUNK: usize = 16 * 1024;

fn elementwise_in_place(values: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    values.par_chunks_mut(CHUNK).for_each(|chunk| {
        for v in chunk {
            *v = f(*v);
        }
    });
}

/// `tensor` as a contiguous float32 tensor that owns its whole buffer and nothing else
/// holds, so a kernel may write it: the tensor itself when it is such, else a copy.
/// `None` for another dtype.
fn writable_f32(tensor: FlexTensor) -> Option<FlexTensor> {
    let mut tensor = contiguous_f32(tensor)?;
    if owns_whole_buffer(&tensor) && tensor.try_storage_mut::<f32>().is_some() {
        return Some(tensor);
    }
    Some(new_f32(
        values(&tensor).to_vec(),
        tensor.layout().shape().clone(),
    ))
}

/// `tensor` itself when it is float32, contiguous, owns its whole buffer and nothing
/// else holds it, so a kernel may write its result there; else `Err` with it untouched.
fn owned_f32(mut tensor: FlexTensor) -> Result<FlexTensor, FlexTensor> {
    if tensor.dtype() == DType::F32
        && owns_whole_buffer(&tensor)
        && tensor.try_storage_mut::<f32>().is_some()
    {
        Ok(tensor)
    } else {
        Err(tensor)
    }
}

/// Whether `tensor` is a contiguous view of its whole buffer (so writing the buffer
/// writes exactly the tensor).
fn owns_whole_buffer(tensor: &FlexTensor) -> bool {
    tensor
        .as_slice::<f32>()
        .is_some_and(|v| std::mem::size_of_val(v) == tensor.bytes().len())
}
