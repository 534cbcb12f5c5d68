//! The model families, one file each, and the registry that names them.
//!
//! | name | family file | paper |
//! |------|-------------|-------|
//! | `se-resnext50`, `se-resnext101`, `se-resnext152` | [`se_resnext`] | Hu et al. 2018 on Xie et al. 2017 |
//! | `alexnet` | [`alexnet`] | Krizhevsky et al. 2012 |
//! | `vgg16`, `vgg16-bn` | [`vgg`] | Simonyan & Zisserman 2015 |
//! | `googlenet` | [`googlenet`] | Szegedy et al. 2015 |
//! | `densenet121` | [`densenet`] | Huang et al. 2017 |
//!
//! Every model maps `[B, 3, H, W]` images to `[B, classes]` logits, takes a width
//! multiplier (CPU configs train narrow versions at 48–64 px, GPU configs full ones at
//! 112–224 px) and counts its own multiply–accumulates ([`Model::macs`]).
//! [`REGISTRY`] holds each name's published reference facts as data; `album models`
//! prints them beside the counts of the model as configured.

pub mod alexnet;
pub mod densenet;
pub mod googlenet;
pub mod layers;
pub mod se_resnext;
pub mod vgg;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};
pub use alexnet::{AlexNet, AlexNetConfig};
pub use densenet::{DenseNet, DenseNetConfig};
pub use googlenet::{GoogLeNet, GoogLeNetConfig};
pub use layers::trainable_params;
pub use se_resnext::{Head, SeResNeXt, SeResNeXtConfig};
pub use vgg::{Vgg, VggConfig};

/// What a model name stands for, with the figures its paper or the reference
/// implementation publishes (ImageNet: 1,000 classes, 224 px).
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    pub name: &'static str,
    pub family: Family,
    pub paper: &'static str,
    /// Published parameter count at 1,000 classes, if there is one.
    pub published_params: Option<u64>,
    /// Published multiply–accumulates at 224 px, in billions, if there are some.
    pub published_gmacs: Option<f64>,
    /// The input side the architecture was designed for.
    pub native_input: usize,
    /// The smallest input side at which no feature map shrinks to nothing (PyTorch's
    /// rule; burn would instead fail inside a pooling op). Training configs are checked
    /// against it.
    pub min_input: usize,
}

/// The five families the paper compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    SeResNeXt,
    AlexNet,
    Vgg,
    GoogLeNet,
    DenseNet,
}

/// Every model `album train` can build.
pub const REGISTRY: &[ModelInfo] = &[
    ModelInfo {
        name: "se-resnext50",
        family: Family::SeResNeXt,
        paper: "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018 (SE-ResNeXt-50 32x4d)",
        published_params: Some(27_559_896),
        published_gmacs: Some(4.25),
        native_input: 224,
        min_input: 16,
    },
    ModelInfo {
        name: "se-resnext101",
        family: Family::SeResNeXt,
        paper: "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018 (SE-ResNeXt-101 32x4d)",
        published_params: Some(48_955_416),
        published_gmacs: Some(8.02),
        native_input: 224,
        min_input: 16,
    },
    ModelInfo {
        name: "se-resnext152",
        family: Family::SeResNeXt,
        paper: "the smart-album paper's SE-ResNeXt-152 (ResNet-152 layout, 32x4d, SE 16); no published count",
        published_params: None,
        published_gmacs: None,
        native_input: 224,
        min_input: 16,
    },
    ModelInfo {
        name: "alexnet",
        family: Family::AlexNet,
        paper: "Krizhevsky et al., ImageNet Classification with Deep CNNs, NeurIPS 2012 (+LRN)",
        published_params: Some(61_100_840),
        published_gmacs: Some(0.714),
        native_input: 224,
        min_input: 63,
    },
    ModelInfo {
        name: "vgg16",
        family: Family::Vgg,
        paper: "Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015 (config D)",
        published_params: Some(138_357_544),
        published_gmacs: Some(15.47),
        native_input: 224,
        min_input: 32,
    },
    ModelInfo {
        name: "vgg16-bn",
        family: Family::Vgg,
        paper: "VGG16 with batch norm after every convolution (torchvision's vgg16_bn)",
        published_params: Some(138_365_992),
        published_gmacs: Some(15.47),
        native_input: 224,
        min_input: 32,
    },
    ModelInfo {
        name: "googlenet",
        family: Family::GoogLeNet,
        paper: "Szegedy et al., Going Deeper with Convolutions, CVPR 2015 (Inception v1, BN)",
        published_params: Some(6_624_904),
        published_gmacs: Some(1.50),
        native_input: 224,
        min_input: 16,
    },
    ModelInfo {
        name: "densenet121",
        family: Family::DenseNet,
        paper: "Huang et al., Densely Connected Convolutional Networks, CVPR 2017",
        published_params: Some(7_978_856),
        published_gmacs: Some(2.83),
        native_input: 224,
        min_input: 32,
    },
];

/// Looks a model name up, listing the known ones when it is not there.
pub fn info(name: &str) -> Result<&'static ModelInfo> {
    REGISTRY
        .iter()
        .find(|info| info.name == name)
        .ok_or_else(|| {
            let known: Vec<_> = REGISTRY.iter().map(|info| info.name).collect();
            Error::Config(format!(
                "unknown model {name:?}; known models: {}",
                known.join(", ")
            ))
        })
}

/// Which model to build and how wide; the `[model]` table of a training config, saved
/// (resolved, defaults filled in) beside every run's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// A [`REGISTRY`] name such as `se-resnext50` or `vgg16-bn`.
    pub name: String,
    pub num_classes: usize,
    /// Multiplies every channel count (and hidden layer width).
    pub width: f32,
    /// SE-ResNeXt: squeeze-and-excitation blocks on or off (the ablation).
    pub se: bool,
    /// SE-ResNeXt: the classifier head (`fc`, or the paper's `conv-pool`).
    pub head: Head,
    /// GoogLeNet: the two auxiliary classifiers, used in training only.
    pub aux_heads: bool,
    /// Dropout before the classifier, where the family has one (AlexNet, VGG, GoogLeNet).
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            name: "se-resnext50".into(),
            num_classes: 5,
            width: 1.0,
            se: true,
            head: Head::Fc,
            aux_heads: false,
            dropout: 0.5,
        }
    }
}

impl ModelConfig {
    /// The model `name` with every other setting at its default.
    pub fn new(name: String) -> Self {
        ModelConfig {
            name,
            ..Self::default()
        }
    }

    pub fn with_num_classes(self, num_classes: usize) -> Self {
        ModelConfig {
            num_classes,
            ..self
        }
    }

    pub fn with_width(self, width: f32) -> Self {
        ModelConfig { width, ..self }
    }

    pub fn with_se(self, se: bool) -> Self {
        ModelConfig { se, ..self }
    }

    pub fn with_head(self, head: Head) -> Self {
        ModelConfig { head, ..self }
    }

    pub fn with_aux_heads(self, aux_heads: bool) -> Self {
        ModelConfig { aux_heads, ..self }
    }

    pub fn with_dropout(self, dropout: f64) -> Self {
        ModelConfig { dropout, ..self }
    }
}

impl ModelConfig {
    /// Checks the numbers a model cannot be built from.
    pub fn validate(&self) -> Result<()> {
        info(&self.name)?;
        if self.num_classes < 2 {
            return Err(Error::Config(format!(
                "num_classes is {}; a classifier needs at least 2",
                self.num_classes
            )));
        }
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 4.0) {
            return Err(Error::Config(format!(
                "width is {}; it must be in (0, 4]",
                self.width
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "dropout is {}; it must be in [0, 1)",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Builds the model with fresh weights on `device`.
    pub fn init(&self, device: &Device) -> Result<Model> {
        self.validate()?;
        let model = match self.name.as_str() {
            "se-resnext50" | "se-resnext101" | "se-resnext152" => {
                let depth = self.name["se-resnext".len()..].parse().unwrap_or(50);
                let config = SeResNeXtConfig::depth(depth, self.num_classes)
                    .ok_or_else(|| Error::Config(format!("no SE-ResNeXt of depth {depth}")))?
                    .with_width(self.width)
                    .with_se(self.se)
                    .with_head(self.head);
                Model::SeResNeXt(config.init(device))
            }
            "alexnet" => Model::AlexNet(
                AlexNetConfig::new(self.num_classes)
                    .with_width(self.width)
                    .with_dropout(self.dropout)
                    .init(device),
            ),
            "vgg16" | "vgg16-bn" => Model::Vgg(
                VggConfig::new(self.num_classes)
                    .with_width(self.width)
                    .with_batch_norm(self.name == "vgg16-bn")
                    .with_dropout(self.dropout)
                    .init(device),
            ),
            "googlenet" => Model::GoogLeNet(
                GoogLeNetConfig::new(self.num_classes)
                    .with_width(self.width)
                    .with_aux_heads(self.aux_heads)
                    .with_dropout(self.dropout)
                    .init(device),
            ),
            "densenet121" => Model::DenseNet(
                DenseNetConfig::new(self.num_classes)
                    .with_width(self.width)
                    .init(device),
            ),
            other => {
                return Err(info(other).err().unwrap_or_else(|| {
                    Error::Config(format!(
                        "model {other:?} is registered but has no constructor"
                    ))
                }));
            }
        };
        Ok(model)
    }
}

/// Any model of the registry, behind one type so one training loop serves them all.
// A program holds one or two models at a time, so the variants' size difference (a few
// hundred bytes of layer handles) is not worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    SeResNeXt(SeResNeXt),
    AlexNet(AlexNet),
    Vgg(Vgg),
    GoogLeNet(GoogLeNet),
    DenseNet(DenseNet),
}

/// Logits of the main classifier, and of auxiliary ones where a model has them and is
/// training (GoogLeNet).
#[derive(Debug, Clone)]
pub struct ModelOutput {
    pub logits: Tensor<2>,
    pub aux_logits: Vec<Tensor<2>>,
}

impl Model {
    /// Logits of the main classifier: `[B, 3, H, W]` → `[B, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Model::SeResNeXt(model) => model.forward(images),
            Model::AlexNet(model) => model.forward(images),
            Model::Vgg(model) => model.forward(images),
            Model::GoogLeNet(model) => model.forward(images),
            Model::DenseNet(model) => model.forward(images),
        }
    }

    /// The training forward pass: main logits plus any auxiliary classifiers' logits.
    pub fn forward_train(&self, images: Tensor<4>) -> ModelOutput {
        match self {
            Model::GoogLeNet(model) => {
                let (logits, aux_logits) = model.forward_with_aux(images);
                ModelOutput { logits, aux_logits }
            }
            _ => ModelOutput {
                logits: self.forward(images),
                aux_logits: Vec::new(),
            },
        }
    }

    /// Multiply–accumulates of one forward pass on one `side × side` image.
    pub fn macs(&self, side: usize) -> u64 {
        match self {
            Model::SeResNeXt(model) => model.macs(side),
            Model::AlexNet(model) => model.macs(side),
            Model::Vgg(model) => model.macs(side),
            Model::GoogLeNet(model) => model.macs(side),
            Model::DenseNet(model) => model.macs(side),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a model at 1,000 classes, full width, without allocating its weights
    /// (burn initialises parameters lazily), and counts its trainable parameters (burn's
    /// `num_params` also counts batch-norm running statistics, which PyTorch and the
    /// published figures treat as buffers).
    fn full_size_params(name: &str) -> usize {
        let model = ModelConfig::new(name.to_owned())
            .with_num_classes(1000)
            .init(&Device::flex())
            .unwrap();
        trainable_params(&model)
    }

    #[test]
    fn full_size_parameter_counts_match_the_published_ones_within_a_tenth_of_a_percent() {
        for info in REGISTRY {
            let Some(published) = info.published_params else {
                continue;
            };
            let ours = full_size_params(info.name) as f64;
            let off = (ours - published as f64).abs() / published as f64;
            assert!(
                off < 0.001,
                "{}: {ours} parameters, published {published} ({:.2} % off)",
                info.name,
                off * 100.0
            );
        }
    }

    #[test]
    fn full_size_macs_at_224_match_the_published_ones_within_two_percent() {
        for info in REGISTRY {
            let Some(published) = info.published_gmacs else {
                continue;
            };
            let model = ModelConfig::new(info.name.to_owned())
                .with_num_classes(1000)
                .init(&Device::flex())
                .unwrap();
            let ours = model.macs(224) as f64 / 1e9;
            assert!(
                (ours - published).abs() / published < 0.02,
                "{}: {ours:.3} GMACs, published {published}",
                info.name
            );
        }
    }

    #[test]
    fn every_registered_model_trains_narrow_at_64_px_through_the_shared_interface() {
        let device = Device::flex().autodiff();
        for info in REGISTRY
            .iter()
            .filter(|i| !i.name.ends_with("101") && !i.name.ends_with("152"))
        {
            let model = ModelConfig::new(info.name.to_owned())
                .with_width(0.125)
                .with_aux_heads(true)
                .init(&device)
                .unwrap();
            let images = Tensor::<4>::zeros([2, 3, 64, 64], &device);
            let output = model.forward_train(images);
            assert_eq!(output.logits.dims(), [2, 5], "{}", info.name);
            let aux = if info.name == "googlenet" { 2 } else { 0 };
            assert_eq!(output.aux_logits.len(), aux, "{}", info.name);
            assert!(model.macs(64) > 0);
        }
    }

    #[test]
    fn every_model_gives_finite_logits_at_its_smallest_input() {
        let device = Device::flex();
        for info in REGISTRY
            .iter()
            .filter(|i| !i.name.ends_with("101") && !i.name.ends_with("152"))
        {
            let model = ModelConfig::new(info.name.to_owned())
                .with_width(0.125)
                .init(&device)
                .unwrap();
            layers::assert_finite_logits(|x| model.forward(x), info.min_input, &device);
        }
    }

    #[test]
    fn an_unknown_model_name_lists_the_known_ones() {
        let err = ModelConfig::new("resnet9".into())
            .init(&Device::flex())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("resnet9") && err.contains("se-resnext50"),
            "{err}"
        );
    }

    #[test]
    fn bad_widths_and_class_counts_are_refused() {
        let base = ModelConfig::new("se-resnext50".into());
        assert!(base.clone().with_width(0.0).validate().is_err());
        assert!(base.clone().with_width(f32::NAN).validate().is_err());
        assert!(base.clone().with_num_classes(1).validate().is_err());
        assert!(base.with_dropout(1.0).validate().is_err());
    }
}
