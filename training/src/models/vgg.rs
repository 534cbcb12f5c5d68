//! VGG-16: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
//! Recognition", ICLR 2015 (arXiv:1409.1556), configuration D.
//!
//! Thirteen 3×3 convolutions (stride 1, pad 1, with bias) in five stages, each stage
//! closed by a 2×2/2 max pool; torchvision's `vgg16` layout, and with `batch_norm` its
//! `vgg16_bn` (a batch norm between each convolution and its ReLU, as Ioffe & Szegedy
//! 2015 suggested; the paper predates it). Shapes at 224 px, width 1:
//!
//! ```text
//! stage1 2 × (conv 3×3 64,  ReLU), maxpool 2×2/2      [B,  64, 112, 112]
//! stage2 2 × (conv 3×3 128, ReLU), maxpool             [B, 128,  56,  56]
//! stage3 3 × (conv 3×3 256, ReLU), maxpool             [B, 256,  28,  28]
//! stage4 3 × (conv 3×3 512, ReLU), maxpool             [B, 512,  14,  14]
//! stage5 3 × (conv 3×3 512, ReLU), maxpool             [B, 512,   7,   7]
//! adaptive average pool to 7×7, flatten                [B, 25088]
//! FC 4096, ReLU, dropout, FC 4096, ReLU, dropout       [B, 4096]
//! FC                                                   [B, classes]
//! ```
//!
//! The width multiplier scales every convolution's channels and the 4096 hidden width.
//! At 48 px the last stage sees 3×3 and pools to 1×1; the adaptive pool then spreads it
//! over 7×7 (as PyTorch does), so the classifier's shape does not depend on the input.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor};

use super::layers::{
    DropoutPlacement, FeatureShape, PooledClassifier, batch_norm_relu, conv, conv_forward,
    conv2d_macs, max_pool, max_pool2d_shape, relu, scaled,
};

/// Configuration D: (output channels, convolutions) per stage at width 1.
const STAGES: [(usize, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];
const POOLED_SIDE: usize = 7;

/// Hyper-parameters of a VGG-16.
#[derive(Config, Debug)]
pub struct VggConfig {
    pub num_classes: usize,
    #[config(default = 1.0)]
    pub width: f32,
    /// Batch norm after every convolution (torchvision's `vgg16_bn`).
    #[config(default = false)]
    pub batch_norm: bool,
    /// Dropout after each of the two hidden fully connected layers.
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl VggConfig {
    pub fn init(&self, device: &Device) -> Vgg {
        let mut in_channels = 3;
        let mut stages = Vec::new();
        for (channels, count) in STAGES {
            let out = scaled(channels, self.width, 1);
            let convs = (0..count)
                .map(|index| {
                    let input = if index == 0 { in_channels } else { out };
                    VggConv::new([input, out], self.batch_norm, device)
                })
                .collect();
            stages.push(VggStage { convs });
            in_channels = out;
        }
        let hidden = scaled(4096, self.width, 1);
        let classifier = PooledClassifier::new(
            in_channels,
            POOLED_SIDE,
            [hidden, self.num_classes],
            self.dropout,
            DropoutPlacement::AfterHidden,
            device,
        );
        Vgg {
            stages,
            pool: max_pool(2, 2, 0, false),
            classifier,
        }
    }
}

/// A 3×3 convolution with bias, an optional batch norm, and a ReLU.
#[derive(Module, Debug)]
pub struct VggConv {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm>,
}

impl VggConv {
    pub fn new(channels: [usize; 2], batch_norm: bool, device: &Device) -> Self {
        VggConv {
            conv: conv(channels, 3, 1, 1, 1, true, device),
            bn: batch_norm.then(|| BatchNormConfig::new(channels[1]).init(device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = conv_forward(&self.conv, x);
        match &self.bn {
            Some(bn) => batch_norm_relu(bn, x),
            None => relu(x),
        }
    }
}

/// The convolutions between two max pools.
#[derive(Module, Debug)]
pub struct VggStage {
    pub convs: Vec<VggConv>,
}

/// A VGG-16 (configuration D), with or without batch norm.
#[derive(Module, Debug)]
pub struct Vgg {
    pub stages: Vec<VggStage>,
    pub pool: MaxPool2d,
    pub classifier: PooledClassifier,
}

impl Vgg {
    /// `[B, 3, H, W]` → logits `[B, classes]` (H, W ≥ 32).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for stage in &self.stages {
            for layer in &stage.convs {
                x = layer.forward(x);
            }
            x = self.pool.forward(x);
        }
        self.classifier.forward(x)
    }

    /// Multiply–accumulates of one forward pass on a `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        let mut shape = FeatureShape::image(side);
        let mut total = 0;
        for stage in &self.stages {
            for layer in &stage.convs {
                let (macs, next) = conv2d_macs(&layer.conv, shape);
                total += macs;
                shape = next;
            }
            shape = max_pool2d_shape(&self.pool, shape);
        }
        total + self.classifier.macs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::assert_finite_logits;
    use crate::models::layers::trainable_params;

    #[test]
    fn narrow_vgg16_maps_a_small_batch_to_class_logits() {
        let device = Device::flex();
        for batch_norm in [false, true] {
            let model = VggConfig::new(5)
                .with_width(0.25)
                .with_batch_norm(batch_norm)
                .init(&device);
            assert_finite_logits(|x| model.forward(x), 48, &device);
        }
    }

    #[test]
    fn parameters_match_torchvision_vgg16_and_vgg16_bn_exactly() {
        let device = Device::flex();
        let plain = VggConfig::new(1000).init(&device);
        assert_eq!(trainable_params(&plain), 138_357_544);
        assert_eq!(plain.num_params(), 138_357_544);
        let with_bn = VggConfig::new(1000).with_batch_norm(true).init(&device);
        assert_eq!(trainable_params(&with_bn), 138_365_992);
    }

    #[test]
    fn macs_at_224_match_the_published_15_47_g() {
        let model = VggConfig::new(1000).init(&Device::flex());
        let gmacs = model.macs(224) as f64 / 1e9;
        assert!((gmacs - 15.47).abs() / 15.47 < 0.02, "{gmacs}");
    }
}
