//! Safe wrappers over `csrc/aten_ops.cpp`: ATen's convolution and batch-norm backward
//! kernels and its fused SGD and AdamW steps, which tch 0.22 does not bind. `build.rs` compiles the C++ file against the
//! PyTorch that torch-sys links, so the kernels are the ones PyTorch itself calls
//! (oneDNN on the CPU, cuDNN on CUDA).

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::ptr::null_mut;

use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn album_aten_last_error() -> *const c_char;
    #[allow(clippy::too_many_arguments)]
    fn album_aten_conv2d_backward(
        output_grad: *mut C_tensor,
        x: *mut C_tensor,
        weight: *mut C_tensor,
        stride: *const i64,
        padding: *const i64,
        dilation: *const i64,
        groups: i64,
        need_input: c_int,
        need_weight: c_int,
        need_bias: c_int,
        grad_input: *mut *mut C_tensor,
        grad_weight: *mut *mut C_tensor,
        grad_bias: *mut *mut C_tensor,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn album_aten_batch_norm_backward(
        output_grad: *mut C_tensor,
        x: *mut C_tensor,
        gamma: *mut C_tensor,
        save_mean: *mut C_tensor,
        save_invstd: *mut C_tensor,
        epsilon: f64,
        need_input: c_int,
        need_gamma: c_int,
        need_beta: c_int,
        grad_input: *mut *mut C_tensor,
        grad_gamma: *mut *mut C_tensor,
        grad_beta: *mut *mut C_tensor,
    ) -> c_int;
    fn album_aten_fused_sgd_step(
        param: *mut C_tensor,
        grad: *mut C_tensor,
        velocity: *mut C_tensor,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
        first_step: c_int,
    ) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn album_aten_fused_adamw_step(
        param: *mut C_tensor,
        grad: *mut C_tensor,
        first: *mut C_tensor,
        second: *mut C_tensor,
        lr: f64,
        beta1: f64,
        beta2: f64,
        epsilon: f64,
        weight_decay: f64,
        time: f64,
    ) -> c_int;
}

/// Input, weight and bias gradients; `None` where not asked for.
pub(super) type Triple = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// Geometry of a 2-D convolution, as ATen takes it.
pub(super) struct ConvGeometry {
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub dilation: [i64; 2],
    pub groups: i64,
}

fn ptr(tensor: &Tensor) -> *mut C_tensor {
    tensor.as_ptr() as *mut C_tensor
}

/// Takes ownership of a tensor the C++ side allocated (null: not computed).
fn owned(raw: *mut C_tensor) -> Option<Tensor> {
    // SAFETY: a non-null pointer is a `new at::Tensor` handed over to us exactly once.
    (!raw.is_null()).then(|| unsafe { Tensor::from_ptr(raw) })
}

fn last_error() -> String {
    // SAFETY: the C++ side returns a NUL-terminated string owned by a thread-local that
    // lives as long as the thread; we copy it before anything else runs on this thread.
    unsafe { CStr::from_ptr(album_aten_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// `at::convolution_backward` for a non-transposed 2-D convolution.
pub(super) fn conv2d_backward(
    output_grad: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    geometry: &ConvGeometry,
    need: [bool; 3],
) -> Result<Triple, String> {
    let (mut input, mut weight_grad, mut bias) = (null_mut(), null_mut(), null_mut());
    // SAFETY: every tensor pointer is live for the call; the output pointers are written
    // (null or an owned tensor) before it returns, and C++ exceptions never cross.
    let status = unsafe {
        album_aten_conv2d_backward(
            ptr(output_grad),
            ptr(x),
            ptr(weight),
            geometry.stride.as_ptr(),
            geometry.padding.as_ptr(),
            geometry.dilation.as_ptr(),
            geometry.groups,
            need[0].into(),
            need[1].into(),
            need[2].into(),
            &mut input,
            &mut weight_grad,
            &mut bias,
        )
    };
    let result = (owned(input), owned(weight_grad), owned(bias));
    match status {
        0 => Ok(result),
        _ => Err(last_error()),
    }
}

/// `at::native_batch_norm_backward` in training mode, from the saved statistics.
pub(super) fn batch_norm_backward(
    output_grad: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    save_mean: &Tensor,
    save_invstd: &Tensor,
    epsilon: f64,
    need: [bool; 3],
) -> Result<Triple, String> {
    let (mut input, mut gamma_grad, mut beta_grad) = (null_mut(), null_mut(), null_mut());
    // SAFETY: as in `conv2d_backward`.
    let status = unsafe {
        album_aten_batch_norm_backward(
            ptr(output_grad),
            ptr(x),
            ptr(gamma),
            ptr(save_mean),
            ptr(save_invstd),
            epsilon,
            need[0].into(),
            need[1].into(),
            need[2].into(),
            &mut input,
            &mut gamma_grad,
            &mut beta_grad,
        )
    };
    let result = (owned(input), owned(gamma_grad), owned(beta_grad));
    match status {
        0 => Ok(result),
        _ => Err(last_error()),
    }
}

/// What a fused optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fused {
    /// The tensors were updated in place.
    Stepped,
    /// The tensors do not suit the kernel (not dense, or mixed dtypes, devices or
    /// shapes); nothing was written.
    Unsuitable,
}

fn fused_status(status: c_int) -> Result<Fused, String> {
    match status {
        0 => Ok(Fused::Stepped),
        2 => Ok(Fused::Unsuitable),
        _ => Err(last_error()),
    }
}

/// `at::_fused_sgd_` on one parameter: `param` and `velocity` are written in place
/// (`velocity` is overwritten with the gradient on the first step), `grad` is read.
pub(super) fn fused_sgd_step(
    param: &mut Tensor,
    grad: &Tensor,
    velocity: &mut Tensor,
    hyper: &super::SgdHyper,
    first_step: bool,
) -> Result<Fused, String> {
    // SAFETY: the tensors are live for the call; the two written are borrowed mutably,
    // so no other Rust handle writes them meanwhile, and C++ exceptions never cross.
    let status = unsafe {
        album_aten_fused_sgd_step(
            ptr(param),
            ptr(grad),
            ptr(velocity),
            hyper.lr,
            hyper.momentum,
            hyper.weight_decay,
            first_step.into(),
        )
    };
    fused_status(status)
}

/// `at::_fused_adamw_` on one parameter: `param` and both moments are written in
/// place, `grad` is read.
pub(super) fn fused_adamw_step(
    param: &mut Tensor,
    grad: &Tensor,
    first: &mut Tensor,
    second: &mut Tensor,
    hyper: &super::AdamWHyper,
) -> Result<Fused, String> {
    // SAFETY: as in `fused_sgd_step`.
    let status = unsafe {
        album_aten_fused_adamw_step(
            ptr(param),
            ptr(grad),
            ptr(first),
            ptr(second),
            hyper.lr,
            hyper.beta_1,
            hyper.beta_2,
            hyper.epsilon,
            hyper.weight_decay,
            hyper.time as f64,
        )
    };
    fused_status(status)
}
