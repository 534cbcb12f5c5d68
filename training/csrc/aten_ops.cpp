// A thin C ABI over the ATen kernels that smart-album's LibTorch ops need for their
// backward passes and optimiser steps that tch 0.22 does not bind:
// `at::convolution_backward` (oneDNN on the CPU, cuDNN on CUDA, as PyTorch's autograd
// calls them), `at::native_batch_norm_backward`, and the one-pass optimiser kernels
// behind `torch.optim.SGD(fused=True)` and `torch.optim.AdamW(fused=True)`.
//
// Tensors cross as `at::Tensor*` (tch's `C_tensor`); results come back as owned
// `new at::Tensor(...)` that the Rust side wraps with `tch::Tensor::from_ptr`. No C++
// exception may cross into Rust: every entry point catches them, keeps the message for
// `album_aten_last_error`, and returns non-zero.
#include <ATen/ATen.h>

#include <exception>
#include <initializer_list>
#include <string>

namespace {
thread_local std::string last_error;

int fail(const char* what) {
  last_error = what;
  return 1;
}

at::Tensor* own_or_null(bool wanted, const at::Tensor& t) {
  return wanted && t.defined() ? new at::Tensor(t) : nullptr;
}
// The fused optimiser kernels walk raw storage: every tensor must be dense, of one
// dtype, on one device. Anything else takes the caller's composed path instead.
bool fusable(const at::Tensor& param, std::initializer_list<const at::Tensor*> others) {
  if (!param.is_contiguous()) return false;
  for (const at::Tensor* t : others) {
    if (!t->is_contiguous() || t->scalar_type() != param.scalar_type() ||
        t->device() != param.device() || t->sizes() != param.sizes())
      return false;
  }
  return true;
}
}  // namespace

extern "C" {

const char* album_aten_last_error() { return last_error.c_str(); }

// Gradients of y = conv2d(x, w, b): dy is y's gradient; `need` says which of dx, dw, db
// to compute (the others come back null).
int album_aten_conv2d_backward(at::Tensor* dy, at::Tensor* x, at::Tensor* w,
                               const int64_t* stride, const int64_t* padding,
                               const int64_t* dilation, int64_t groups, int need_x,
                               int need_w, int need_b, at::Tensor** dx, at::Tensor** dw,
                               at::Tensor** db) {
  try {
    *dx = *dw = *db = nullptr;
    const int64_t no_output_padding[2] = {0, 0};
    const int64_t bias_size[1] = {w->size(0)};
    auto grads = at::convolution_backward(
        *dy, *x, *w, need_b ? at::OptionalIntArrayRef(c10::IntArrayRef(bias_size, 1)) : c10::nullopt,
        c10::IntArrayRef(stride, 2), c10::IntArrayRef(padding, 2),
        c10::IntArrayRef(dilation, 2), /*transposed=*/false,
        c10::IntArrayRef(no_output_padding, 2), groups,
        {need_x != 0, need_w != 0, need_b != 0});
    *dx = own_or_null(need_x != 0, std::get<0>(grads));
    *dw = own_or_null(need_w != 0, std::get<1>(grads));
    *db = own_or_null(need_b != 0, std::get<2>(grads));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown C++ exception in convolution_backward");
  }
}

// Gradients of a training-mode batch norm from the batch statistics its forward saved
// (`save_mean`, `save_invstd` of `at::native_batch_norm`).
int album_aten_batch_norm_backward(at::Tensor* dy, at::Tensor* x, at::Tensor* gamma,
                                   at::Tensor* save_mean, at::Tensor* save_invstd,
                                   double eps, int need_x, int need_gamma, int need_beta,
                                   at::Tensor** dx, at::Tensor** dgamma,
                                   at::Tensor** dbeta) {
  try {
    *dx = *dgamma = *dbeta = nullptr;
    auto grads = at::native_batch_norm_backward(
        *dy, *x, *gamma, /*running_mean=*/c10::nullopt, /*running_var=*/c10::nullopt,
        *save_mean, *save_invstd, /*train=*/true, eps,
        {need_x != 0, need_gamma != 0, need_beta != 0});
    *dx = own_or_null(need_x != 0, std::get<0>(grads));
    *dgamma = own_or_null(need_gamma != 0, std::get<1>(grads));
    *dbeta = own_or_null(need_beta != 0, std::get<2>(grads));
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown C++ exception in native_batch_norm_backward");
  }
}

// One SGD step with momentum, in place, in one pass per element (ATen's `_fused_sgd_`):
// g = grad + weight_decay·param; velocity = g on the first step, else
// momentum·velocity + g; param −= lr·velocity. `param` and `velocity` are written,
// `grad` is only read. Returns 2 (nothing written) when the tensors do not suit the
// kernel.
int album_aten_fused_sgd_step(at::Tensor* param, at::Tensor* grad, at::Tensor* velocity,
                              double lr, double momentum, double weight_decay,
                              int first_step) {
  try {
    if (!fusable(*param, {grad, velocity})) return 2;
    at::_fused_sgd_(at::TensorList(param, 1), at::TensorList(grad, 1),
                    at::TensorList(velocity, 1), weight_decay, momentum, lr,
                    /*dampening=*/0.0, /*nesterov=*/false, /*maximize=*/false,
                    first_step != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown C++ exception in _fused_sgd_");
  }
}

// One AdamW step, in place, in one pass per element (ATen's `_fused_adamw_`, PyTorch's
// rule): the moments move towards grad and grad², param is decayed by lr·weight_decay
// and moved by lr·m̂/(√v̂ + ε), with the bias corrections of step `time` (from 1).
// Returns 2 (nothing written) when the tensors do not suit the kernel.
int album_aten_fused_adamw_step(at::Tensor* param, at::Tensor* grad, at::Tensor* first,
                                at::Tensor* second, double lr, double beta1, double beta2,
                                double epsilon, double weight_decay, double time) {
  try {
    if (!fusable(*param, {grad, first, second})) return 2;
    at::Tensor step = at::scalar_tensor(time, param->options().dtype(at::kFloat));
    at::_fused_adamw_(at::TensorList(param, 1), at::TensorList(grad, 1),
                      at::TensorList(first, 1), at::TensorList(second, 1),
                      /*max_exp_avg_sqs=*/{}, at::TensorList(&step, 1), lr, beta1, beta2,
                      weight_decay, epsilon, /*amsgrad=*/false, /*maximize=*/false);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  } catch (...) {
    return fail("unknown C++ exception in _fused_adamw_");
  }
}

}  // extern "C"
