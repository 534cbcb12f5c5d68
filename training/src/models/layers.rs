//! Building blocks the model families share, and the shape arithmetic that counts
//! multiply–accumulates (MACs) without running a forward pass.
//!
//! MACs follow the usual convention (thop, fvcore, timm's tables): one per weight use in
//! a convolution or fully connected layer; norms, activations, pooling and the
//! squeeze-and-excitation multiply are not counted.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

pub use crate::ops::relu;
use crate::ops::{self, Kernels};

/// Channels × height × width of a feature map, for MAC counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl FeatureShape {
    /// An RGB input of `side × side` pixels.
    pub fn image(side: usize) -> Self {
        FeatureShape {
            channels: 3,
            height: side,
            width: side,
        }
    }

    pub fn with_channels(self, channels: usize) -> Self {
        FeatureShape { channels, ..self }
    }

    pub fn elements(self) -> usize {
        self.channels * self.height * self.width
    }
}

/// `channels × width`, rounded, at least `multiple_of` and a multiple of it (grouped
/// convolutions need their channel counts divisible by the group count).
pub fn scaled(channels: usize, width: f32, multiple_of: usize) -> usize {
    let multiple_of = multiple_of.max(1);
    let raw = (channels as f32 * width / multiple_of as f32).round() as usize;
    raw.max(1) * multiple_of
}

/// Output side of a window op: `(n + pads − dilation·(k − 1) − 1) / stride + 1`,
/// rounding up instead of down in ceil mode (as PyTorch does, a window must still start
/// inside the input or its left padding).
pub fn window_output(
    input: usize,
    kernel: usize,
    stride: usize,
    pads: (usize, usize),
    dilation: usize,
    ceil_mode: bool,
) -> usize {
    let span = input + pads.0 + pads.1;
    let reach = dilation * (kernel - 1) + 1;
    if span < reach {
        return 0;
    }
    let mut out = if ceil_mode {
        (span - reach).div_ceil(stride) + 1
    } else {
        (span - reach) / stride + 1
    };
    if ceil_mode && (out - 1) * stride >= input + pads.0 {
        out -= 1;
    }
    out
}

fn explicit_pads(padding: &PaddingConfig2d, kernel: [usize; 2]) -> [(usize, usize); 2] {
    match padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(*top, *bottom), (*left, *right)],
        PaddingConfig2d::Same => [
            ((kernel[0] - 1) / 2, kernel[0] / 2),
            ((kernel[1] - 1) / 2, kernel[1] / 2),
        ],
    }
}

/// MACs and output shape of a convolution applied to `input`.
pub fn conv2d_macs(conv: &Conv2d, input: FeatureShape) -> (u64, FeatureShape) {
    let [out_channels, in_per_group, kh, kw] = conv.weight.lazy_shape().dims();
    let pads = explicit_pads(&conv.padding, [kh, kw]);
    let height = window_output(
        input.height,
        kh,
        conv.stride[0],
        pads[0],
        conv.dilation[0],
        false,
    );
    let width = window_output(
        input.width,
        kw,
        conv.stride[1],
        pads[1],
        conv.dilation[1],
        false,
    );
    let output = FeatureShape {
        channels: out_channels,
        height,
        width,
    };
    let macs = (out_channels * height * width * in_per_group * kh * kw) as u64;
    (macs, output)
}

/// Output shape of a max pooling applied to `input` (no MACs).
pub fn max_pool2d_shape(pool: &MaxPool2d, input: FeatureShape) -> FeatureShape {
    let window = Window {
        kernel: pool.kernel_size,
        stride: pool.stride,
        pads: explicit_pads(&pool.padding, pool.kernel_size),
        dilation: pool.dilation,
        ceil_mode: pool.ceil_mode,
    };
    window.apply(input)
}

/// Output shape of an average pooling applied to `input` (no MACs).
pub fn avg_pool2d_shape(pool: &AvgPool2d, input: FeatureShape) -> FeatureShape {
    let window = Window {
        kernel: pool.kernel_size,
        stride: pool.stride,
        pads: explicit_pads(&pool.padding, pool.kernel_size),
        dilation: [1, 1],
        ceil_mode: pool.ceil_mode,
    };
    window.apply(input)
}

/// A pooling window's geometry, per axis.
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    pads: [(usize, usize); 2],
    dilation: [usize; 2],
    ceil_mode: bool,
}

impl Window {
    fn apply(&self, input: FeatureShape) -> FeatureShape {
        let side = |n, axis: usize| {
            window_output(
                n,
                self.kernel[axis],
                self.stride[axis],
                self.pads[axis],
                self.dilation[axis],
                self.ceil_mode,
            )
        };
        FeatureShape {
            channels: input.channels,
            height: side(input.height, 0),
            width: side(input.width, 1),
        }
    }
}

/// MACs of a fully connected layer on one input vector.
pub fn linear_macs(linear: &Linear) -> u64 {
    linear.weight.lazy_shape().num_elements() as u64
}

/// A `k × k` convolution with symmetric padding `padding`.
pub fn conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_groups(groups)
        .with_bias(bias)
        .init(device)
}

/// A `k × k` max pooling with symmetric padding, PyTorch's floor or ceil rounding.
pub fn max_pool(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_ceil_mode(ceil_mode)
        .init()
}

/// A `k × k` average pooling without padding, floor rounding.
pub fn avg_pool(kernel: usize, stride: usize) -> AvgPool2d {
    AvgPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .init()
}

/// An adaptive average pooling to `side × side`, whatever the input size.
pub fn adaptive_avg_pool(side: usize) -> AdaptiveAvgPool2d {
    AdaptiveAvgPool2dConfig::new([side, side]).init()
}

/// A [`Conv2d`] applied through [`crate::ops::conv2d`] (LibTorch's kernels on LibTorch,
/// and a handwritten backward under autodiff), with the module's own weights, stride,
/// dilation, groups and padding.
pub fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, kh, kw] = conv.weight.lazy_shape().dims();
    let [rows, cols] = explicit_pads(&conv.padding, [kh, kw]);
    let options =
        ConvOptions::new_with_padding(conv.stride, [rows, cols], conv.dilation, conv.groups);
    ops::conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|bias| bias.val()),
        options,
    )
}

/// burn's [`BatchNorm`] on a 4-D activation: the same parameters, running statistics and
/// train/inference rule, through [`crate::ops`].
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    normalise(bn, x, false)
}

/// [`batch_norm`] followed by ReLU, with one fused backward for the two.
pub fn batch_norm_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    normalise(bn, x, true)
}

fn normalise(bn: &BatchNorm, x: Tensor<4>, then_relu: bool) -> Tensor<4> {
    let relu_if = |x: Tensor<4>| if then_relu { relu(x) } else { x };
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    match (ops::kernels(), training) {
        (Kernels::Burn, true) => relu_if(batch_norm_by_reductions(bn, x)),
        (Kernels::Burn, false) => relu_if(bn.forward(x)),
        (Kernels::Project, true) => {
            let device = x.device();
            let running = [&bn.running_mean, &bn.running_var]
                .map(|state| state.value_sync().to_device(&device));
            let result = ops::batch_norm_train(
                x,
                [bn.gamma.val(), bn.beta.val()],
                running,
                bn.momentum,
                bn.epsilon,
                then_relu,
            );
            bn.running_mean.update(result.running_mean);
            bn.running_var.update(result.running_var);
            result.output
        }
        // A model kept on an autodiff device with training off: burn's own inference
        // forward keeps its gradient graph.
        (Kernels::Project, false) if x.device().is_autodiff() => relu_if(bn.forward(x)),
        (Kernels::Project, false) => ops::batch_norm_eval(
            x,
            bn.gamma.val(),
            bn.beta.val(),
            bn.running_mean.value(),
            bn.running_var.value(),
            bn.epsilon,
            then_relu,
        ),
    }
}

/// burn's training-mode [`BatchNorm`] computed from plain reductions: `mean` and the
/// biased `var` per channel over `[N, H·W]`, then `(x − mean) · γ/√(var + ε) + β`
/// ([`Kernels::Burn`]'s path, kept as the reference the project's kernels are measured
/// against).
///
/// Why not `bn.forward`: burn 0.22's `batch_norm_train` falls back, on flex and on
/// LibTorch alike, to a default that swaps the batch and channel axes (a full copy) for
/// each statistic and differentiates through a generic backward; measured at 64×64×28×28
/// on this machine's 2 cores, forward plus backward took 68 ms on flex and 28 ms on
/// LibTorch, against 16 ms and 19 ms for this form (PyTorch's fused kernel: 12 ms). The
/// running statistics follow burn's rule (momentum on the biased variance), so
/// checkpoints mean the same either way.
fn batch_norm_by_reductions(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    let count = (batch * height * width) as f64;
    let flat = x.reshape([batch, channels, height * width]);
    let per_channel_mean = |t: Tensor<3>| t.sum_dim(2).sum_dim(0).div_scalar(count);
    let mean = per_channel_mean(flat.clone());
    let centered = flat - mean.clone();
    let var = per_channel_mean(centered.clone() * centered.clone());
    let scale = bn.gamma.val().reshape([1, channels, 1])
        * var.clone().add_scalar(bn.epsilon).sqrt().recip();
    let output = centered * scale + bn.beta.val().reshape([1, channels, 1]);
    update_running_statistics(bn, mean.reshape([channels]), var.reshape([channels]));
    output.reshape([batch, channels, height, width])
}

/// `running ← (1 − momentum)·running + momentum·batch`, detached, as burn's BatchNorm does.
fn update_running_statistics(bn: &BatchNorm, mean: Tensor<1>, var: Tensor<1>) {
    let device = mean.device();
    let blend = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(batch.detach().mul_scalar(bn.momentum))
            .detach()
    };
    bn.running_mean
        .update(blend(bn.running_mean.value_sync(), mean));
    bn.running_var
        .update(blend(bn.running_var.value_sync(), var));
}

/// Convolution (no bias), batch norm, and an optional ReLU: the unit most of these
/// networks are made of.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub relu: bool,
}

impl ConvBn {
    pub fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        relu: bool,
        device: &Device,
    ) -> Self {
        ConvBn {
            conv: conv(channels, kernel, stride, kernel / 2, groups, false, device),
            bn: BatchNormConfig::new(channels[1]).init(device),
            relu,
        }
    }

    /// Sets the norm's scale to zero, so a residual branch starts as the identity
    /// ("zero-γ", Goyal et al. 2017): deep residual networks then train stably from the
    /// first step.
    pub fn zero_init_scale(mut self) -> Self {
        let device = self.bn.gamma.device();
        let shape = self.bn.gamma.lazy_shape();
        self.bn.gamma = burn::module::Param::from_tensor(Tensor::zeros(shape, &device));
        self
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = conv_forward(&self.conv, x);
        if self.relu {
            batch_norm_relu(&self.bn, x)
        } else {
            batch_norm(&self.bn, x)
        }
    }

    pub fn macs(&self, input: FeatureShape) -> (u64, FeatureShape) {
        conv2d_macs(&self.conv, input)
    }
}

/// Parameters an optimiser trains: PyTorch's `sum(p.numel() for p in m.parameters())`,
/// the figure papers and torchvision publish. burn's `Module::num_params` also counts
/// each batch norm's running mean and variance (PyTorch buffers), two more numbers per
/// channel, which puts BN-heavy networks (DenseNet) over 1 % above the published count.
pub fn trainable_params(module: &impl Module) -> usize {
    let mut counter = TrainableCounter::default();
    module.visit(&mut counter);
    counter.total
}

#[derive(Default)]
struct TrainableCounter {
    /// (field, containing struct) of each module entered.
    path: Vec<(String, String)>,
    total: usize,
}

impl ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_owned(), container_type.to_owned()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let running_statistic = self.path.last().is_some_and(|(field, container)| {
            container == "Struct:BatchNorm" && (field == "running_mean" || field == "running_var")
        });
        if !running_statistic {
            self.total += param.lazy_shape().num_elements();
        }
    }
}

/// Where the dropout of a [`PooledClassifier`] sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropoutPlacement {
    /// Before each of the two hidden layers (AlexNet).
    BeforeHidden,
    /// After each hidden layer's ReLU (VGG).
    AfterHidden,
}

/// The head torchvision's AlexNet and VGG share: adaptive average pool to
/// `side × side`, flatten, FC → ReLU → FC → ReLU → FC, with dropout on the two hidden
/// layers (placed as the family's paper places it).
#[derive(Module, Debug)]
pub struct PooledClassifier {
    pub avg_pool: AdaptiveAvgPool2d,
    pub dropout: Dropout,
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
    #[module(skip)]
    pub placement: DropoutPlacement,
}

impl PooledClassifier {
    /// `in_channels` feature maps pooled to `side × side`, two hidden layers of `hidden`.
    pub fn new(
        in_channels: usize,
        side: usize,
        [hidden, classes]: [usize; 2],
        dropout: f64,
        placement: DropoutPlacement,
        device: &Device,
    ) -> Self {
        PooledClassifier {
            avg_pool: adaptive_avg_pool(side),
            dropout: DropoutConfig::new(dropout).init(),
            fc1: LinearConfig::new(in_channels * side * side, hidden).init(device),
            fc2: LinearConfig::new(hidden, hidden).init(device),
            fc3: LinearConfig::new(hidden, classes).init(device),
            placement,
        }
    }

    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let mut x: Tensor<2> = self.avg_pool.forward(features).flatten(1, 3);
        for fc in [&self.fc1, &self.fc2] {
            x = match self.placement {
                DropoutPlacement::BeforeHidden => relu(fc.forward(self.dropout.forward(x))),
                DropoutPlacement::AfterHidden => self.dropout.forward(relu(fc.forward(x))),
            };
        }
        self.fc3.forward(x)
    }

    pub fn macs(&self) -> u64 {
        linear_macs(&self.fc1) + linear_macs(&self.fc2) + linear_macs(&self.fc3)
    }
}

/// Global average pooling: `[B, C, H, W]` → `[B, C]`, as one mean over the flattened
/// `H·W` (one reduction and one backward, where a mean per axis would be two of each).
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [batch, channels, height, width] = x.dims();
    x.reshape([batch, channels, height * width])
        .mean_dim(2)
        .reshape([batch, channels])
}

/// Test helper: a random `[2, 3, side, side]` batch through `forward` gives finite
/// `[2, 5]` logits.
#[cfg(test)]
pub(crate) fn assert_finite_logits(
    forward: impl Fn(Tensor<4>) -> Tensor<2>,
    side: usize,
    device: &Device,
) {
    use burn::tensor::Distribution;
    let x = Tensor::<4>::random([2, 3, side, side], Distribution::Normal(0.0, 1.0), device);
    let logits = forward(x);
    assert_eq!(logits.dims(), [2, 5]);
    let values = logits.into_data().try_to_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_rounds_to_the_group_multiple_and_never_reaches_zero() {
        assert_eq!(scaled(256, 1.0, 32), 256);
        assert_eq!(scaled(256, 0.25, 32), 64);
        assert_eq!(scaled(128, 0.1, 32), 32);
        assert_eq!(scaled(64, 0.5, 1), 32);
        assert_eq!(scaled(3, 0.01, 1), 1);
    }

    #[test]
    fn window_output_matches_pytorch_floor_and_ceil_rules() {
        // conv 7×7/2 pad 3 on 224 → 112; maxpool 3/2 pad 1 on 112 → 56
        assert_eq!(window_output(224, 7, 2, (3, 3), 1, false), 112);
        assert_eq!(window_output(112, 3, 2, (1, 1), 1, false), 56);
        // GoogLeNet's ceil-mode pools: 112 → 56, 28 → 14, 14 → 7 (3/2, no pad)
        assert_eq!(window_output(112, 3, 2, (0, 0), 1, true), 56);
        assert_eq!(window_output(14, 3, 2, (0, 0), 1, true), 7);
        // AlexNet: 11×11/4 pad 2 on 224 → 55
        assert_eq!(window_output(224, 11, 4, (2, 2), 1, false), 55);
        assert_eq!(window_output(2, 3, 1, (0, 0), 1, false), 0);
    }

    /// `batch_norm` must be burn's `BatchNorm::forward` in a faster form: same output,
    /// same gradients for the input, γ and β, same running statistics afterwards.
    #[test]
    fn batch_norm_matches_burns_batch_norm_in_training_mode() {
        use burn::tensor::Distribution;
        let device = Device::flex().autodiff();
        let burns = BatchNormConfig::new(6).init(&device);
        let ours = BatchNormConfig::new(6).init(&device);
        // non-trivial γ, β and a shifted, scaled input, so every term matters
        let gamma = Tensor::<1>::random([6], Distribution::Uniform(0.5, 2.0), &device);
        let beta = Tensor::<1>::random([6], Distribution::Normal(0.0, 1.0), &device);
        let x = Tensor::<4>::random([4, 6, 5, 7], Distribution::Normal(3.0, 2.0), &device);
        let r = Tensor::<4>::random([4, 6, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        let results: Vec<_> = [(&burns, false), (&ours, true)]
            .into_iter()
            .map(|(bn, fast)| {
                let mut bn = bn.clone();
                bn.gamma = Param::from_tensor(gamma.clone());
                bn.beta = Param::from_tensor(beta.clone());
                let input = x.clone().require_grad();
                let y = if fast {
                    batch_norm(&bn, input.clone())
                } else {
                    bn.forward(input.clone())
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                let values = |t: burn::tensor::TensorData| t.try_to_vec::<f32>().unwrap();
                let flat = |t: Tensor<1>| values(t.into_data());
                vec![
                    values(y.into_data()),
                    values(input.grad(&grads).unwrap().into_data()),
                    flat(bn.gamma.val().grad(&grads).unwrap()),
                    flat(bn.beta.val().grad(&grads).unwrap()),
                    flat(bn.running_mean.value()),
                    flat(bn.running_var.value()),
                ]
            })
            .collect();
        let names = [
            "output",
            "input grad",
            "γ grad",
            "β grad",
            "running mean",
            "running var",
        ];
        for ((name, theirs), mine) in names.iter().zip(&results[0]).zip(&results[1]) {
            let scale = theirs.iter().map(|v| v.abs()).fold(1e-3_f32, f32::max);
            let worst = theirs
                .iter()
                .zip(mine)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0_f32, f32::max);
            assert!(
                worst <= 1e-4 * scale,
                "{name}: largest difference {worst} (scale {scale})"
            );
        }
    }

    #[test]
    fn trainable_params_leave_out_batch_norm_running_statistics() {
        let device = Device::flex();
        let unit = ConvBn::new([3, 8], 3, 1, 1, true, &device);
        // conv 3·8·9 weights, no bias; norm γ and β; running mean and variance skipped.
        assert_eq!(trainable_params(&unit), 216 + 16);
        assert_eq!(unit.num_params(), 216 + 32);
    }

    #[test]
    fn conv_macs_count_grouped_weights_once_per_output_pixel() {
        let device = Device::flex();
        let grouped = conv([128, 128], 3, 1, 1, 32, false, &device);
        let (macs, out) = conv2d_macs(&grouped, FeatureShape::image(28).with_channels(128));
        assert_eq!(
            out,
            FeatureShape {
                channels: 128,
                height: 28,
                width: 28
            }
        );
        assert_eq!(macs, (128 * 28 * 28 * 4 * 9) as u64);
    }
}
