//! SE-ResNeXt: ResNeXt bottlenecks with squeeze-and-excitation.
//!
//! - ResNeXt: Xie et al., "Aggregated Residual Transformations for Deep Neural
//!   Networks", CVPR 2017 (arXiv:1611.05431). Cardinality 32, base width 4 ("32×4d").
//! - SE: Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507),
//!   reduction 16.
//! - The smart-album paper ("Smart Album Management System Based on SE-ResNeXt", 2022)
//!   uses SE-ResNeXt-152 and replaces the fully connected head by a 1×1 convolution to
//!   the class count followed by global average pooling ([`Head::ConvPool`]).
//!
//! Shapes at 224 px, width 1 (`D` = grouped width, `C` = block output):
//!
//! ```text
//! stem   conv 7×7/2 64, BN, ReLU, maxpool 3×3/2        [B,   64, 56, 56]
//! stage1 blocks × (1×1 D=128, 3×3/1 g32, 1×1 C=256, SE) [B,  256, 56, 56]
//! stage2 blocks × (D=256,  C=512,  first 3×3 stride 2)  [B,  512, 28, 28]
//! stage3 blocks × (D=512,  C=1024, first 3×3 stride 2)  [B, 1024, 14, 14]
//! stage4 blocks × (D=1024, C=2048, first 3×3 stride 2)  [B, 2048,  7,  7]
//! head   global average → FC                            [B, classes]
//!        (or 1×1 conv → global average, the paper's variant)
//! ```
//!
//! Depth 50 / 101 / 152 = blocks [3,4,6,3] / [3,4,23,3] / [3,8,36,3]. The stride sits on
//! the 3×3 convolution (as in torchvision and timm). SE: squeeze = global average,
//! excitation = FC C→C/16, ReLU, FC C/16→C, sigmoid, then each channel is scaled.
//! A width multiplier scales every channel count (grouped widths stay multiples of 32),
//! so CPU configs can train narrow versions at 48–64 px.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::layers::{
    ConvBn, FeatureShape, conv, conv_forward, conv2d_macs, global_avg_pool, linear_macs, max_pool,
    max_pool2d_shape, relu, scaled,
};

/// The classifier on top of the last stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// Global average pooling, then a fully connected layer (ResNeXt, SENet).
    #[default]
    Fc,
    /// A 1×1 convolution to the class count, then global average pooling (the
    /// smart-album paper's head).
    ConvPool,
}

/// Hyper-parameters of an SE-ResNeXt.
#[derive(Config, Debug)]
pub struct SeResNeXtConfig {
    /// Blocks per stage, e.g. `[3, 4, 6, 3]` for depth 50.
    pub blocks: [usize; 4],
    pub num_classes: usize,
    #[config(default = 1.0)]
    pub width: f32,
    #[config(default = 32)]
    pub cardinality: usize,
    #[config(default = 4)]
    pub base_width: usize,
    /// Squeeze-and-excitation blocks on (SE-ResNeXt) or off (plain ResNeXt, for ablation).
    #[config(default = true)]
    pub se: bool,
    #[config(default = 16)]
    pub se_reduction: usize,
    #[config(default = "Head::Fc")]
    pub head: Head,
    /// Start every residual branch at zero (its last norm's scale is zero).
    #[config(default = true)]
    pub zero_init_residual: bool,
}

impl SeResNeXtConfig {
    /// The block counts of depth 50, 101 or 152.
    pub fn depth(depth: usize, num_classes: usize) -> Option<Self> {
        let blocks = match depth {
            50 => [3, 4, 6, 3],
            101 => [3, 4, 23, 3],
            152 => [3, 8, 36, 3],
            _ => return None,
        };
        Some(Self::new(blocks, num_classes))
    }

    pub fn init(&self, device: &Device) -> SeResNeXt {
        let stem_channels = scaled(64, self.width, 1);
        let mut in_channels = stem_channels;
        let mut stages = Vec::new();
        for (stage, &count) in self.blocks.iter().enumerate() {
            let planes = 64 << stage;
            // ResNeXt's grouped width: planes × base_width / 64 per group, × cardinality.
            let grouped = scaled(
                planes * self.base_width / 64 * self.cardinality,
                self.width,
                self.cardinality,
            );
            let out_channels = scaled(planes * 4, self.width, 1);
            for index in 0..count {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                stages.push(self.block(in_channels, grouped, out_channels, stride, device));
                in_channels = out_channels;
            }
        }
        let (fc, head_conv) = match self.head {
            Head::Fc => (
                Some(LinearConfig::new(in_channels, self.num_classes).init(device)),
                None,
            ),
            Head::ConvPool => (
                None,
                Some(conv(
                    [in_channels, self.num_classes],
                    1,
                    1,
                    0,
                    1,
                    true,
                    device,
                )),
            ),
        };
        SeResNeXt {
            stem: ConvBn::new([3, stem_channels], 7, 2, 1, true, device),
            pool: max_pool(3, 2, 1, false),
            blocks: stages,
            fc,
            head_conv,
        }
    }

    fn block(
        &self,
        in_channels: usize,
        grouped: usize,
        out_channels: usize,
        stride: usize,
        device: &Device,
    ) -> Bottleneck {
        let mut expand = ConvBn::new([grouped, out_channels], 1, 1, 1, false, device);
        if self.zero_init_residual {
            expand = expand.zero_init_scale();
        }
        let downsample = (stride != 1 || in_channels != out_channels)
            .then(|| ConvBn::new([in_channels, out_channels], 1, stride, 1, false, device));
        Bottleneck {
            reduce: ConvBn::new([in_channels, grouped], 1, 1, 1, true, device),
            grouped: ConvBn::new(
                [grouped, grouped],
                3,
                stride,
                self.cardinality,
                true,
                device,
            ),
            expand,
            se: self
                .se
                .then(|| SqueezeExcitation::new(out_channels, self.se_reduction, device)),
            downsample,
        }
    }
}

/// Squeeze (global average) and excitation (FC → ReLU → FC → sigmoid), then the input's
/// channels are scaled by the result.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    pub reduce: Linear,
    pub expand: Linear,
}

impl SqueezeExcitation {
    pub fn new(channels: usize, reduction: usize, device: &Device) -> Self {
        let hidden = (channels / reduction.max(1)).max(1);
        SqueezeExcitation {
            reduce: LinearConfig::new(channels, hidden).init(device),
            expand: LinearConfig::new(hidden, channels).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, channels, _, _] = x.dims();
        let squeezed = global_avg_pool(x.clone());
        let excited = sigmoid(self.expand.forward(relu(self.reduce.forward(squeezed))));
        x * excited.reshape([batch, channels, 1, 1])
    }

    fn macs(&self) -> u64 {
        linear_macs(&self.reduce) + linear_macs(&self.expand)
    }
}

/// One ResNeXt bottleneck: 1×1 reduce, 3×3 grouped (carries the stride), 1×1 expand,
/// optional SE on the branch, then the sum with the (projected) shortcut and a ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub reduce: ConvBn,
    pub grouped: ConvBn,
    pub expand: ConvBn,
    pub se: Option<SqueezeExcitation>,
    pub downsample: Option<ConvBn>,
}

impl Bottleneck {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(projection) => projection.forward(x.clone()),
            None => x.clone(),
        };
        let mut branch = self
            .expand
            .forward(self.grouped.forward(self.reduce.forward(x)));
        if let Some(se) = &self.se {
            branch = se.forward(branch);
        }
        relu(branch + shortcut)
    }

    fn macs(&self, input: FeatureShape) -> (u64, FeatureShape) {
        let (a, shape) = self.reduce.macs(input);
        let (b, shape) = self.grouped.macs(shape);
        let (c, output) = self.expand.macs(shape);
        let se = self.se.as_ref().map_or(0, SqueezeExcitation::macs);
        let projection = self.downsample.as_ref().map_or(0, |p| p.macs(input).0);
        (a + b + c + se + projection, output)
    }
}

/// An SE-ResNeXt (or, with `se = false`, a ResNeXt).
#[derive(Module, Debug)]
pub struct SeResNeXt {
    pub stem: ConvBn,
    pub pool: MaxPool2d,
    pub blocks: Vec<Bottleneck>,
    pub fc: Option<Linear>,
    pub head_conv: Option<Conv2d>,
}

impl SeResNeXt {
    /// `[B, 3, H, W]` → logits `[B, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.pool.forward(self.stem.forward(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        match (&self.fc, &self.head_conv) {
            (Some(fc), _) => fc.forward(global_avg_pool(x)),
            (None, Some(head)) => global_avg_pool(conv_forward(head, x)),
            (None, None) => global_avg_pool(x),
        }
    }

    /// Multiply–accumulates of one forward pass on a `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        let (mut total, shape) = self.stem.macs(FeatureShape::image(side));
        let mut shape = max_pool2d_shape(&self.pool, shape);
        for block in &self.blocks {
            let (macs, next) = block.macs(shape);
            total += macs;
            shape = next;
        }
        total
            + self.fc.as_ref().map_or(0, linear_macs)
            + self
                .head_conv
                .as_ref()
                .map_or(0, |head| conv2d_macs(head, shape).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::assert_finite_logits;

    #[test]
    fn narrow_se_resnext_50_maps_a_small_batch_to_class_logits() {
        let device = Device::flex();
        let model = SeResNeXtConfig::depth(50, 5)
            .unwrap()
            .with_width(0.25)
            .init(&device);
        assert_finite_logits(|x| model.forward(x), 48, &device);
    }

    #[test]
    fn the_papers_conv_pool_head_has_no_fc_and_the_same_output_shape() {
        let device = Device::flex();
        let model = SeResNeXtConfig::depth(50, 5)
            .unwrap()
            .with_width(0.25)
            .with_head(Head::ConvPool)
            .init(&device);
        assert!(model.fc.is_none() && model.head_conv.is_some());
        let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
        assert_eq!(model.forward(x).dims(), [1, 5]);
    }

    #[test]
    fn removing_se_removes_exactly_the_se_parameters() {
        let device = Device::flex();
        let config = SeResNeXtConfig::depth(50, 1000).unwrap();
        let with = config.init(&device).num_params();
        let without = config.clone().with_se(false).init(&device).num_params();
        // Σ over blocks of C²/8 + C/16 + C at C = 256, 512, 1024, 2048 (3, 4, 6, 3 blocks).
        assert_eq!(with - without, 2_530_992);
    }

    #[test]
    fn macs_at_224_match_the_published_4_25_g() {
        let model = SeResNeXtConfig::depth(50, 1000)
            .unwrap()
            .init(&Device::flex());
        let gmacs = model.macs(224) as f64 / 1e9;
        assert!((gmacs - 4.25).abs() / 4.25 < 0.01, "{gmacs}");
    }
}
