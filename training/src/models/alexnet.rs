//! AlexNet: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
//! Convolutional Neural Networks", NeurIPS 2012.
//!
//! The layout is torchvision's single-tower one (the 2012 network split every layer over
//! two GPUs; torchvision follows Krizhevsky's later "One weird trick", arXiv:1404.5997,
//! channels 64-192-384-256-256), with the paper's local response normalisation put back
//! after the first two ReLUs. Shapes at 224 px, width 1:
//!
//! ```text
//! conv1 11×11/4 pad 2 64, ReLU, LRN, maxpool 3×3/2   [B,   64, 27, 27]
//! conv2 5×5 pad 2 192, ReLU, LRN, maxpool 3×3/2      [B,  192, 13, 13]
//! conv3 3×3 384, ReLU                                [B,  384, 13, 13]
//! conv4 3×3 256, ReLU                                [B,  256, 13, 13]
//! conv5 3×3 256, ReLU, maxpool 3×3/2                 [B,  256,  6,  6]
//! adaptive average pool to 6×6, flatten              [B, 9216]
//! dropout, FC 4096, ReLU, dropout, FC 4096, ReLU     [B, 4096]
//! FC                                                 [B, classes]
//! ```
//!
//! LRN (paper §3.3): `b_i = a_i / (k + α Σ_{|j−i|≤n/2} a_j²)^β` with n = 5, α = 1e-4,
//! β = 0.75, k = 2. burn's (and PyTorch's) `LocalResponseNorm` divides α by n, so it is
//! given `α·n` to reproduce the paper's sum. LRN has no parameters.
//!
//! The width multiplier scales every convolution's channels and the 4096 hidden width.
//! The smallest input that survives the three 3×3/2 pools is 63 px (48 px collapses to
//! nothing at the last pool), so narrow CPU configs use 64 px; the adaptive pool then
//! spreads the 1×1 map over 6×6, as PyTorch does.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{LocalResponseNorm, LocalResponseNormConfig};
use burn::tensor::{Device, Tensor};

use super::layers::{
    DropoutPlacement, FeatureShape, PooledClassifier, conv, conv_forward, conv2d_macs, max_pool,
    max_pool2d_shape, relu, scaled,
};

/// Output channels, kernel, stride, padding of the five convolutions (width 1).
const CONVS: [(usize, usize, usize, usize); 5] = [
    (64, 11, 4, 2),
    (192, 5, 1, 2),
    (384, 3, 1, 1),
    (256, 3, 1, 1),
    (256, 3, 1, 1),
];
/// The paper normalises the responses of the first two layers only.
const LRN_AFTER: [bool; 5] = [true, true, false, false, false];
/// Pooling follows both normalisations and the last convolution.
const POOL_AFTER: [bool; 5] = [true, true, false, false, true];
const POOLED_SIDE: usize = 6;

/// The paper's LRN constants, in burn's averaged form (α is multiplied by the window).
const LRN_SIZE: usize = 5;
const LRN_ALPHA: f64 = 1e-4;
const LRN_BETA: f64 = 0.75;
const LRN_K: f64 = 2.0;

/// Hyper-parameters of an AlexNet.
#[derive(Config, Debug)]
pub struct AlexNetConfig {
    pub num_classes: usize,
    #[config(default = 1.0)]
    pub width: f32,
    /// Dropout before each of the two hidden fully connected layers.
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl AlexNetConfig {
    pub fn init(&self, device: &Device) -> AlexNet {
        let mut in_channels = 3;
        let mut convs = Vec::new();
        for (out, kernel, stride, padding) in CONVS {
            let out = scaled(out, self.width, 1);
            let layer = conv([in_channels, out], kernel, stride, padding, 1, true, device);
            convs.push(layer);
            in_channels = out;
        }
        let hidden = scaled(4096, self.width, 1);
        let classifier = PooledClassifier::new(
            in_channels,
            POOLED_SIDE,
            [hidden, self.num_classes],
            self.dropout,
            DropoutPlacement::BeforeHidden,
            device,
        );
        AlexNet {
            convs,
            lrn: krizhevsky_lrn(),
            pool: max_pool(3, 2, 0, false),
            classifier,
        }
    }
}

/// Local response normalisation with the constants of Krizhevsky et al. 2012.
pub fn krizhevsky_lrn() -> LocalResponseNorm {
    LocalResponseNormConfig::new(LRN_SIZE)
        .with_alpha(LRN_ALPHA * LRN_SIZE as f64)
        .with_beta(LRN_BETA)
        .with_k(LRN_K)
        .init()
}

/// A single-tower AlexNet with local response normalisation.
#[derive(Module, Debug)]
pub struct AlexNet {
    pub convs: Vec<Conv2d>,
    pub lrn: LocalResponseNorm,
    pub pool: MaxPool2d,
    pub classifier: PooledClassifier,
}

impl AlexNet {
    /// `[B, 3, H, W]` → logits `[B, classes]` (H, W ≥ 63).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for (index, conv) in self.convs.iter().enumerate() {
            x = relu(conv_forward(conv, x));
            if LRN_AFTER[index] {
                x = self.lrn.forward(x);
            }
            if POOL_AFTER[index] {
                x = self.pool.forward(x);
            }
        }
        self.classifier.forward(x)
    }

    /// Multiply–accumulates of one forward pass on a `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        let mut shape = FeatureShape::image(side);
        let mut total = 0;
        for (index, conv) in self.convs.iter().enumerate() {
            let (macs, next) = conv2d_macs(conv, shape);
            total += macs;
            shape = next;
            if POOL_AFTER[index] {
                shape = max_pool2d_shape(&self.pool, shape);
            }
        }
        total + self.classifier.macs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::layers::assert_finite_logits;
    use crate::models::layers::trainable_params;
    use burn::tensor::Distribution;

    #[test]
    fn narrow_alexnet_maps_a_64_px_batch_to_class_logits() {
        let device = Device::flex();
        let model = AlexNetConfig::new(5).with_width(0.25).init(&device);
        assert_finite_logits(|x| model.forward(x), 64, &device);
    }

    #[test]
    fn lrn_matches_the_papers_formula() {
        let device = Device::flex();
        let [channels, pixels]: [usize; 2] = [7, 3];
        // Large activations, so the normalisation is far from the identity.
        let x = Tensor::<4>::random(
            [1, channels, 1, pixels],
            Distribution::Normal(0.0, 30.0),
            &device,
        );
        let a = x.clone().into_data().try_to_vec::<f32>().unwrap();
        let b = krizhevsky_lrn()
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let half = LRN_SIZE / 2;
        for i in 0..channels {
            for p in 0..pixels {
                let window = i.saturating_sub(half)..=(i + half).min(channels - 1);
                let sum: f64 = window.map(|j| (a[j * pixels + p] as f64).powi(2)).sum();
                let a_i = a[i * pixels + p] as f64;
                let expected = a_i / (LRN_K + LRN_ALPHA * sum).powf(LRN_BETA);
                let got = b[i * pixels + p] as f64;
                assert!(
                    (got - expected).abs() <= 1e-4 * expected.abs().max(1.0),
                    "{got} {expected}"
                );
            }
        }
    }

    #[test]
    fn parameters_match_torchvision_exactly() {
        let model = AlexNetConfig::new(1000).init(&Device::flex());
        assert_eq!(trainable_params(&model), 61_100_840);
        assert_eq!(model.num_params(), 61_100_840);
    }

    #[test]
    fn macs_at_224_match_the_published_0_714_g() {
        let model = AlexNetConfig::new(1000).init(&Device::flex());
        let gmacs = model.macs(224) as f64 / 1e9;
        assert!((gmacs - 0.714).abs() / 0.714 < 0.02, "{gmacs}");
    }
}
