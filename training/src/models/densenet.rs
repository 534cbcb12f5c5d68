//! DenseNet-121: Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
//! Networks", CVPR 2017 (arXiv:1608.06993); DenseNet-BC with growth rate k = 32.
//!
//! Each layer sees the concatenation of every earlier feature map of its block and adds
//! `k` channels: BN, ReLU, conv 1×1 to 4k (the "bottleneck"), BN, ReLU, conv 3×3 to k.
//! Transitions halve the channels (compression 0.5) and the resolution. Shapes at
//! 224 px, width 1 (torchvision's `densenet121` layout):
//!
//! ```text
//! stem   conv 7×7/2 64, BN, ReLU, maxpool 3×3/2 pad 1   [B,   64, 56, 56]
//! block1 6 layers                                       [B,  256, 56, 56]
//! trans1 BN, ReLU, conv 1×1, avgpool 2×2/2              [B,  128, 28, 28]
//! block2 12 layers                                      [B,  512, 28, 28]
//! trans2                                                [B,  256, 14, 14]
//! block3 24 layers                                      [B, 1024, 14, 14]
//! trans3                                                [B,  512,  7,  7]
//! block4 16 layers                                      [B, 1024,  7,  7]
//! head   BN, ReLU, global average, FC                   [B, classes]
//! ```
//!
//! The width multiplier scales the growth rate and the stem's 64 channels; everything
//! else follows from them. Like torchvision, each layer concatenates the block's feature
//! list once (no memory-efficient checkpointing).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::layers::{
    ConvBn, FeatureShape, avg_pool, avg_pool2d_shape, batch_norm_relu, conv, conv_forward,
    conv2d_macs, global_avg_pool, linear_macs, max_pool, max_pool2d_shape, scaled,
};

/// Layers per dense block of DenseNet-121.
const BLOCKS: [usize; 4] = [6, 12, 24, 16];
/// The bottleneck's width in multiples of the growth rate.
const BOTTLENECK: usize = 4;

/// Hyper-parameters of a DenseNet-121.
#[derive(Config, Debug)]
pub struct DenseNetConfig {
    pub num_classes: usize,
    /// Scales the growth rate (32) and the stem's channels (64).
    #[config(default = 1.0)]
    pub width: f32,
}

impl DenseNetConfig {
    pub fn init(&self, device: &Device) -> DenseNet {
        let growth = scaled(32, self.width, 1);
        let stem_channels = scaled(64, self.width, 1);
        let mut channels = stem_channels;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (index, &count) in BLOCKS.iter().enumerate() {
            let layers = (0..count)
                .map(|layer| DenseLayer::new(channels + layer * growth, growth, device))
                .collect();
            blocks.push(DenseBlock { layers });
            channels += count * growth;
            if index + 1 < BLOCKS.len() {
                transitions.push(Transition::new(channels, channels / 2, device));
                channels /= 2;
            }
        }
        DenseNet {
            stem: ConvBn::new([3, stem_channels], 7, 2, 1, true, device),
            pool: max_pool(3, 2, 1, false),
            blocks,
            transitions,
            norm: BatchNormConfig::new(channels).init(device),
            fc: LinearConfig::new(channels, self.num_classes).init(device),
        }
    }
}

/// Batch norm, ReLU, then a convolution without bias: the pre-activation order lets
/// each layer normalise the concatenated features it reads in its own way.
#[derive(Module, Debug)]
pub struct NormReluConv {
    pub bn: BatchNorm,
    pub conv: Conv2d,
}

impl NormReluConv {
    pub fn new(channels: [usize; 2], kernel: usize, device: &Device) -> Self {
        NormReluConv {
            bn: BatchNormConfig::new(channels[0]).init(device),
            conv: conv(channels, kernel, 1, kernel / 2, 1, false, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_forward(&self.conv, batch_norm_relu(&self.bn, x))
    }
}

/// One dense layer: a 1×1 bottleneck to 4k channels, then a 3×3 to k new channels.
#[derive(Module, Debug)]
pub struct DenseLayer {
    pub bottleneck: NormReluConv,
    pub conv: NormReluConv,
}

impl DenseLayer {
    pub fn new(in_channels: usize, growth: usize, device: &Device) -> Self {
        let bottleneck = BOTTLENECK * growth;
        DenseLayer {
            bottleneck: NormReluConv::new([in_channels, bottleneck], 1, device),
            conv: NormReluConv::new([bottleneck, growth], 3, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(self.bottleneck.forward(x))
    }

    fn macs(&self, input: FeatureShape) -> (u64, FeatureShape) {
        let (a, shape) = conv2d_macs(&self.bottleneck.conv, input);
        let (b, output) = conv2d_macs(&self.conv.conv, shape);
        (a + b, output)
    }
}

/// Layers that each read every earlier feature map of the block.
#[derive(Module, Debug)]
pub struct DenseBlock {
    pub layers: Vec<DenseLayer>,
}

impl DenseBlock {
    /// The input and every layer's new features, concatenated along channels.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut features = vec![x];
        for layer in &self.layers {
            let new = layer.forward(Tensor::cat(features.clone(), 1));
            features.push(new);
        }
        Tensor::cat(features, 1)
    }

    fn macs(&self, input: FeatureShape) -> (u64, FeatureShape) {
        let mut total = 0;
        let mut shape = input;
        for layer in &self.layers {
            let (macs, new) = layer.macs(shape);
            total += macs;
            shape = shape.with_channels(shape.channels + new.channels);
        }
        (total, shape)
    }
}

/// Compression between blocks: BN, ReLU, 1×1 conv, 2×2/2 average pool.
#[derive(Module, Debug)]
pub struct Transition {
    pub reduce: NormReluConv,
    pub pool: AvgPool2d,
}

impl Transition {
    pub fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Transition {
            reduce: NormReluConv::new([in_channels, out_channels], 1, device),
            pool: avg_pool(2, 2),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool.forward(self.reduce.forward(x))
    }

    fn macs(&self, input: FeatureShape) -> (u64, FeatureShape) {
        let (macs, shape) = conv2d_macs(&self.reduce.conv, input);
        (macs, avg_pool2d_shape(&self.pool, shape))
    }
}

/// A DenseNet-121.
#[derive(Module, Debug)]
pub struct DenseNet {
    pub stem: ConvBn,
    pub pool: MaxPool2d,
    pub blocks: Vec<DenseBlock>,
    /// One fewer than the blocks: none after the last.
    pub transitions: Vec<Transition>,
    pub norm: BatchNorm,
    pub fc: Linear,
}

impl DenseNet {
    /// `[B, 3, H, W]` → logits `[B, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.pool.forward(self.stem.forward(images));
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if let Some(transition) = self.transitions.get(index) {
                x = transition.forward(x);
            }
        }
        self.fc
            .forward(global_avg_pool(batch_norm_relu(&self.norm, x)))
    }

    /// Multiply–accumulates of one forward pass on a `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        let (mut total, shape) = self.stem.macs(FeatureShape::image(side));
        let mut shape = max_pool2d_shape(&self.pool, shape);
        for (index, block) in self.blocks.iter().enumerate() {
            let (macs, next) = block.macs(shape);
            total += macs;
            shape = next;
            if let Some(transition) = self.transitions.get(index) {
                let (macs, next) = transition.macs(shape);
                total += macs;
                shape = next;
            }
        }
        total + linear_macs(&self.fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::assert_finite_logits;
    use crate::models::layers::trainable_params;

    #[test]
    fn narrow_densenet_121_maps_a_small_batch_to_class_logits() {
        let device = Device::flex();
        let model = DenseNetConfig::new(5).with_width(0.25).init(&device);
        assert_finite_logits(|x| model.forward(x), 48, &device);
    }

    #[test]
    fn parameters_match_torchvision_exactly() {
        let model = DenseNetConfig::new(1000).init(&Device::flex());
        assert_eq!(trainable_params(&model), 7_978_856);
    }

    #[test]
    fn macs_at_224_match_the_published_2_83_g() {
        let model = DenseNetConfig::new(1000).init(&Device::flex());
        let gmacs = model.macs(224) as f64 / 1e9;
        assert!((gmacs - 2.83).abs() / 2.83 < 0.02, "{gmacs}");
    }
}
