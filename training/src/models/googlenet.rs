//! GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", CVPR 2015
//! (arXiv:1409.4842).
//!
//! torchvision's variant: every convolution is `BasicConv2d` (no bias, batch norm with
//! ε = 0.001, ReLU), the local response normalisations are gone, the max pools round up
//! (ceil mode), and the "5×5" branch of each inception module uses a 3×3 kernel (a slip
//! in the original port that its published weights and counts keep). Shapes at 224 px,
//! width 1 (inception columns: 1×1, 3×3 reduce → 3×3, "5×5" reduce → 3×3, pool → 1×1):
//!
//! ```text
//! conv 7×7/2 64, maxpool 3×3/2                        [B,   64, 56, 56]
//! conv 1×1 64, conv 3×3 192, maxpool 3×3/2            [B,  192, 28, 28]
//! 3a (64, 96→128, 16→32, 32)                          [B,  256, 28, 28]
//! 3b (128, 128→192, 32→96, 64), maxpool 3×3/2         [B,  480, 14, 14]
//! 4a (192, 96→208, 16→48, 64)        → aux head 1     [B,  512, 14, 14]
//! 4b (160, 112→224, 24→64, 64)                        [B,  512, 14, 14]
//! 4c (128, 128→256, 24→64, 64)                        [B,  512, 14, 14]
//! 4d (112, 144→288, 32→64, 64)       → aux head 2     [B,  528, 14, 14]
//! 4e (256, 160→320, 32→128, 128), maxpool 2×2/2       [B,  832,  7,  7]
//! 5a (256, 160→320, 32→128, 128)                      [B,  832,  7,  7]
//! 5b (384, 192→384, 48→128, 128)                      [B, 1024,  7,  7]
//! global average, dropout 0.2, FC                     [B, classes]
//! aux: adaptive average 4×4, conv 1×1 128, FC 2048→1024, ReLU, dropout 0.7, FC
//! ```
//!
//! The auxiliary classifiers only shape training (the paper weights their losses by 0.3);
//! [`GoogLeNet::forward`] skips them and [`GoogLeNet::macs`] does not count them. The
//! width multiplier scales every channel count, the aux heads' 128 and 1024 included.

use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, MaxPool2d};
use burn::nn::{BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::layers::{
    ConvBn, FeatureShape, adaptive_avg_pool, conv, global_avg_pool, linear_macs, max_pool,
    max_pool2d_shape, relu, scaled,
};

/// Inception module widths at width 1: 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool
/// projection.
type Widths = [usize; 6];
const STAGE3: [Widths; 2] = [[64, 96, 128, 16, 32, 32], [128, 128, 192, 32, 96, 64]];
const STAGE4: [Widths; 5] = [
    [192, 96, 208, 16, 48, 64],
    [160, 112, 224, 24, 64, 64],
    [128, 128, 256, 24, 64, 64],
    [112, 144, 288, 32, 64, 64],
    [256, 160, 320, 32, 128, 128],
];
const STAGE5: [Widths; 2] = [[256, 160, 320, 32, 128, 128], [384, 192, 384, 48, 128, 128]];
/// The aux heads read the outputs of 4a and 4d.
const AUX_AFTER: [usize; 2] = [0, 3];
const AUX_DROPOUT: f64 = 0.7;
const AUX_POOLED_SIDE: usize = 4;
/// torchvision's batch norm ε (TensorFlow's Inception default), not PyTorch's 1e-5.
const BN_EPSILON: f64 = 1e-3;

/// Hyper-parameters of a GoogLeNet.
#[derive(Config, Debug)]
pub struct GoogLeNetConfig {
    pub num_classes: usize,
    #[config(default = 1.0)]
    pub width: f32,
    /// The two auxiliary classifiers (after 4a and 4d).
    #[config(default = false)]
    pub aux_heads: bool,
    /// Dropout before the main classifier (the aux heads use 0.7).
    #[config(default = 0.2)]
    pub dropout: f64,
}

impl GoogLeNetConfig {
    pub fn init(&self, device: &Device) -> GoogLeNet {
        let c = |channels| scaled(channels, self.width, 1);
        let (stage3, channels) = self.stage(&STAGE3, c(192), device);
        let (stage4, channels) = self.stage(&STAGE4, channels, device);
        let aux_inputs = AUX_AFTER.map(|index| inception_output(STAGE4[index], self.width));
        let (stage5, channels) = self.stage(&STAGE5, channels, device);
        let aux = if self.aux_heads {
            aux_inputs
                .iter()
                .map(|&input| InceptionAux::new(input, self.width, self.num_classes, device))
                .collect()
        } else {
            Vec::new()
        };
        GoogLeNet {
            conv1: basic_conv([3, c(64)], 7, 2, device),
            conv2: basic_conv([c(64), c(64)], 1, 1, device),
            conv3: basic_conv([c(64), c(192)], 3, 1, device),
            pool: max_pool(3, 2, 0, true),
            pool4: max_pool(2, 2, 0, true),
            stage3,
            stage4,
            stage5,
            aux,
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: LinearConfig::new(channels, self.num_classes).init(device),
        }
    }

    fn stage(
        &self,
        widths: &[Widths],
        mut channels: usize,
        device: &Device,
    ) -> (Vec<Inception>, usize) {
        let modules = widths
            .iter()
            .map(|&w| {
                let module = Inception::new(channels, w.map(|n| scaled(n, self.width, 1)), device);
                channels = inception_output(w, self.width);
                module
            })
            .collect();
        (modules, channels)
    }
}

/// Channels an inception module concatenates: its four branches' outputs.
fn inception_output(widths: Widths, width: f32) -> usize {
    [widths[0], widths[2], widths[4], widths[5]]
        .iter()
        .map(|&n| scaled(n, width, 1))
        .sum()
}

/// torchvision's `BasicConv2d`: convolution (no bias, "same" padding), batch norm with
/// ε = 0.001, ReLU.
fn basic_conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> ConvBn {
    ConvBn {
        conv: conv(channels, kernel, stride, kernel / 2, 1, false, device),
        bn: BatchNormConfig::new(channels[1])
            .with_epsilon(BN_EPSILON)
            .init(device),
        relu: true,
    }
}

/// Four parallel branches, concatenated along channels.
#[derive(Module, Debug)]
pub struct Inception {
    pub branch1: ConvBn,
    pub reduce3: ConvBn,
    pub branch3: ConvBn,
    pub reduce5: ConvBn,
    /// The "5×5" branch, 3×3 as in torchvision.
    pub branch5: ConvBn,
    pub pool: MaxPool2d,
    pub pool_proj: ConvBn,
}

impl Inception {
    /// `widths` already scaled: 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool proj.
    pub fn new(in_channels: usize, widths: Widths, device: &Device) -> Self {
        let [one, reduce3, three, reduce5, five, proj] = widths;
        Inception {
            branch1: basic_conv([in_channels, one], 1, 1, device),
            reduce3: basic_conv([in_channels, reduce3], 1, 1, device),
            branch3: basic_conv([reduce3, three], 3, 1, device),
            reduce5: basic_conv([in_channels, reduce5], 1, 1, device),
            branch5: basic_conv([reduce5, five], 3, 1, device),
            pool: max_pool(3, 1, 1, true),
            pool_proj: basic_conv([in_channels, proj], 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.branch1.forward(x.clone()),
            self.branch3.forward(self.reduce3.forward(x.clone())),
            self.branch5.forward(self.reduce5.forward(x.clone())),
            self.pool_proj.forward(self.pool.forward(x)),
        ];
        Tensor::cat(branches, 1)
    }

    fn macs(&self, input: FeatureShape) -> (u64, FeatureShape) {
        let (a, one) = self.branch1.macs(input);
        let (b, reduced) = self.reduce3.macs(input);
        let (c, three) = self.branch3.macs(reduced);
        let (d, reduced) = self.reduce5.macs(input);
        let (e, five) = self.branch5.macs(reduced);
        let (f, proj) = self.pool_proj.macs(max_pool2d_shape(&self.pool, input));
        let channels = one.channels + three.channels + five.channels + proj.channels;
        (a + b + c + d + e + f, one.with_channels(channels))
    }
}

/// An auxiliary classifier on an intermediate feature map.
#[derive(Module, Debug)]
pub struct InceptionAux {
    pub pool: AdaptiveAvgPool2d,
    pub conv: ConvBn,
    pub fc1: Linear,
    pub fc2: Linear,
    pub dropout: Dropout,
}

impl InceptionAux {
    pub fn new(in_channels: usize, width: f32, num_classes: usize, device: &Device) -> Self {
        let reduced = scaled(128, width, 1);
        let hidden = scaled(1024, width, 1);
        let flat = reduced * AUX_POOLED_SIDE * AUX_POOLED_SIDE;
        InceptionAux {
            pool: adaptive_avg_pool(AUX_POOLED_SIDE),
            conv: basic_conv([in_channels, reduced], 1, 1, device),
            fc1: LinearConfig::new(flat, hidden).init(device),
            fc2: LinearConfig::new(hidden, num_classes).init(device),
            dropout: DropoutConfig::new(AUX_DROPOUT).init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x: Tensor<2> = self.conv.forward(self.pool.forward(x)).flatten(1, 3);
        self.fc2
            .forward(self.dropout.forward(relu(self.fc1.forward(x))))
    }
}

/// A GoogLeNet with batch norm, optionally with its two auxiliary classifiers.
#[derive(Module, Debug)]
pub struct GoogLeNet {
    pub conv1: ConvBn,
    pub conv2: ConvBn,
    pub conv3: ConvBn,
    /// The 3×3/2 ceil-mode pool after conv1, conv3 and 3b.
    pub pool: MaxPool2d,
    /// The 2×2/2 ceil-mode pool after 4e.
    pub pool4: MaxPool2d,
    pub stage3: Vec<Inception>,
    pub stage4: Vec<Inception>,
    pub stage5: Vec<Inception>,
    /// Empty, or the heads after 4a and 4d.
    pub aux: Vec<InceptionAux>,
    pub dropout: Dropout,
    pub fc: Linear,
}

impl GoogLeNet {
    /// `[B, 3, H, W]` → logits `[B, classes]` (the aux heads are not run).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.run(images, false).0
    }

    /// The main logits and those of each aux head (none when the heads are off), for a
    /// training loss such as `main + 0.3 · Σ aux`.
    pub fn forward_with_aux(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Tensor<2>>) {
        self.run(images, true)
    }

    fn run(&self, images: Tensor<4>, with_aux: bool) -> (Tensor<2>, Vec<Tensor<2>>) {
        let x = self.pool.forward(self.conv1.forward(images));
        let x = self.pool.forward(self.conv3.forward(self.conv2.forward(x)));
        let mut x = self.pool.forward(forward_all(&self.stage3, x));
        let heads: &[InceptionAux] = if with_aux { &self.aux } else { &[] };
        let mut aux_logits = Vec::new();
        for (index, module) in self.stage4.iter().enumerate() {
            x = module.forward(x);
            let head = AUX_AFTER.iter().position(|&after| after == index);
            if let Some(head) = head.and_then(|h| heads.get(h)) {
                aux_logits.push(head.forward(x.clone()));
            }
        }
        let x = forward_all(&self.stage5, self.pool4.forward(x));
        let logits = self.fc.forward(self.dropout.forward(global_avg_pool(x)));
        (logits, aux_logits)
    }

    /// Multiply–accumulates of one inference pass (aux heads not counted) on a
    /// `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        let (a, shape) = self.conv1.macs(FeatureShape::image(side));
        let (b, shape) = self.conv2.macs(max_pool2d_shape(&self.pool, shape));
        let (c, shape) = self.conv3.macs(shape);
        let (macs, shape) = macs_all(&self.stage3, max_pool2d_shape(&self.pool, shape));
        let mut total = a + b + c + macs;
        let (macs, shape) = macs_all(&self.stage4, max_pool2d_shape(&self.pool, shape));
        total += macs;
        let (macs, _) = macs_all(&self.stage5, max_pool2d_shape(&self.pool4, shape));
        total + macs + linear_macs(&self.fc)
    }
}

fn forward_all(modules: &[Inception], x: Tensor<4>) -> Tensor<4> {
    modules.iter().fold(x, |x, module| module.forward(x))
}

fn macs_all(modules: &[Inception], input: FeatureShape) -> (u64, FeatureShape) {
    modules.iter().fold((0, input), |(total, shape), module| {
        let (macs, next) = module.macs(shape);
        (total + macs, next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::assert_finite_logits;
    use crate::models::layers::trainable_params;
    use burn::tensor::Distribution;

    #[test]
    fn narrow_googlenet_maps_a_small_batch_to_class_logits() {
        let device = Device::flex();
        let model = GoogLeNetConfig::new(5).with_width(0.25).init(&device);
        assert_finite_logits(|x| model.forward(x), 48, &device);
    }

    #[test]
    fn aux_heads_give_two_more_logit_tensors_only_when_on() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 48, 48], Distribution::Normal(0.0, 1.0), &device);
        let with = GoogLeNetConfig::new(5)
            .with_width(0.25)
            .with_aux_heads(true)
            .init(&device);
        let (logits, aux) = with.forward_with_aux(x.clone());
        assert_eq!(logits.dims(), [2, 5]);
        assert_eq!(aux.len(), 2);
        assert!(aux.iter().all(|a| a.dims() == [2, 5]));
        let without = GoogLeNetConfig::new(5).with_width(0.25).init(&device);
        assert!(without.forward_with_aux(x).1.is_empty());
    }

    #[test]
    fn parameters_match_torchvision_exactly() {
        let model = GoogLeNetConfig::new(1000).init(&Device::flex());
        assert_eq!(trainable_params(&model), 6_624_904);
    }

    #[test]
    fn macs_at_224_match_the_published_1_50_g() {
        let model = GoogLeNetConfig::new(1000).init(&Device::flex());
        let gmacs = model.macs(224) as f64 / 1e9;
        assert!((gmacs - 1.50).abs() / 1.50 < 0.02, "{gmacs}");
    }
}
