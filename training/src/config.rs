//! The training config: one TOML file per experiment (`configs/cpu/*.toml`,
//! `configs/gpu/*.toml`), saved resolved (defaults filled in, command-line overrides
//! applied) as `config.toml` in the run directory.
//!
//! ```toml
//! [model]
//! name = "se-resnext50"   # album models lists the names
//! width = 0.25
//!
//! [data]
//! split_dir = "data/split"  # train.parquet and val.parquet; test is never read here
//! resize = 64
//! crop = 56
//!
//! [data.augment]           # optional; all off by default
//! resized_crop_scale = [0.08, 1.0]
//! brightness = 0.4
//! trivial_augment = true
//!
//! [train]
//! epochs = 10
//! batch_size = 64
//! optimizer = "sgd"
//! base_lr = 0.1           # at base_batch; scaled linearly to batch_size
//! mixup_alpha = 0.8       # optional batch mixing (crate::mix); 0 is off
//! cutmix_alpha = 1.0
//! ```
//!
//! Unknown keys are errors (a typo must not silently train with a default), and so are
//! values that cannot work; both name the file and the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::device::DeviceKind;
use album_dataset::data::augment::AugmentConfig;

use crate::models::ModelConfig;
use crate::{Error, Result};

/// A whole training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: OptimConfig,
}

/// Where the photos come from and how they are prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Folder holding `train.parquet` and `val.parquet` from `album dataset split`.
    pub split_dir: PathBuf,
    /// Where decoded-image caches are kept (reused across runs of the same data).
    pub cache_dir: PathBuf,
    /// Short side after resizing.
    pub resize: u32,
    /// Square crop side fed to the model.
    pub crop: u32,
    /// Train on these classes only (empty: all of them).
    pub classes: Vec<String>,
    /// Keep at most this many photos per class in each split (0: all), spread evenly
    /// over the class's photos in manifest order (so every source is sampled), for
    /// quick experiments, CPU-scale studies and CI.
    pub images_per_class: usize,
    /// Training augmentation beyond the random crop and flip (`[data.augment]`: a
    /// random-resized crop, colour jitter, TrivialAugment-wide); all off by default.
    pub augment: AugmentConfig,
    /// Leave out every photo of these sources (the file-name prefix the shared set's
    /// MANIFEST.csv calls `source`: `inria`, `stanfordcars`, ...) from train and val:
    /// the leave-one-source-out check trains without them and scores on them
    /// (`album eval --sources`). See [`crate::data::source_of`].
    pub exclude_sources: Vec<String>,
    /// Keep only photos of these sources (empty: all); what `album eval --sources` sets.
    pub only_sources: Vec<String>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            split_dir: "data/split".into(),
            cache_dir: "data/cache".into(),
            resize: 64,
            crop: 56,
            classes: Vec::new(),
            images_per_class: 0,
            augment: AugmentConfig::new(),
            exclude_sources: Vec::new(),
            only_sources: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// SGD with (heavy-ball) momentum and L2 weight decay.
    Sgd,
    /// AdamW (decoupled weight decay).
    AdamW,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Cosine decay from the peak to zero after the warm-up.
    Cosine,
    /// Multiply by `step_gamma` at each epoch in `step_epochs`.
    Step,
}

/// Floating-point type of the whole model, its activations and gradients. burn has no
/// automatic mixed precision: bf16 and f16 put everything in that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Bf16,
    F16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            other => Err(Error::Config(format!(
                "precision {other:?}: expected f32, bf16 or f16"
            ))),
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Optimizer,
    /// SGD momentum.
    pub momentum: f64,
    /// Peak learning rate at a batch of `base_batch`; the run uses
    /// `base_lr × batch_size / base_batch` (Goyal et al. 2017's linear scaling rule).
    pub base_lr: f64,
    pub base_batch: usize,
    /// Epochs of linear warm-up from near zero to the peak.
    pub warmup_epochs: f64,
    pub schedule: Schedule,
    /// Step schedule: the epochs at which the rate is multiplied by `step_gamma`.
    pub step_epochs: Vec<usize>,
    pub step_gamma: f64,
    /// Applied to weights only: never to biases or norm parameters (rank-1 tensors).
    pub weight_decay: f64,
    /// Weight of the uniform target mixed into the one-hot target (0: none).
    pub label_smoothing: f32,
    /// Weight of each auxiliary classifier's loss (GoogLeNet uses 0.3).
    pub aux_loss_weight: f32,
    /// Mixup's α: each batch blended with a shuffled copy by λ ~ Beta(α, α) (0: off;
    /// timm's recipes use 0.8). See [`crate::mix`].
    pub mixup_alpha: f32,
    /// CutMix's α: a box of a shuffled copy pasted in, its area 1 − λ (0: off; timm: 1.0).
    pub cutmix_alpha: f32,
    /// With both on, the share of mixed batches that use CutMix rather than mixup.
    pub cutmix_switch_prob: f32,
    /// The share of batches mixed at all (when either α is set).
    pub mix_prob: f32,
    /// Model EMA's decay per step (0: off; timm's recipes use 0.9998 over hundreds of
    /// thousands of steps, 0.999 suits a few thousand). The averaged weights are
    /// validated every epoch beside the live ones and saved as `ema.bpk`. See
    /// [`crate::ema`].
    pub ema_decay: f64,
    pub seed: u64,
    pub precision: Precision,
    /// `flex`, `tch-cpu` or `tch-cuda[:N]`.
    pub device: String,
    /// Stop after this many epochs without a better validation top-1 (0: never).
    pub early_stop_patience: usize,
}

impl OptimConfig {
    /// Sets the epoch count, as `album train --epochs` does. A warm-up that no longer
    /// fits the shorter run keeps its share of it (1 of 10 epochs becomes 0.1 of 1), so a
    /// quick try of any config trains instead of being refused; the returned note says so.
    /// Step-schedule epochs are left as they are (a step past the end never fires).
    pub fn set_epochs(&mut self, epochs: usize) -> Option<String> {
        let before = self.epochs;
        self.epochs = epochs;
        if epochs == 0 || before == 0 || self.warmup_epochs < epochs as f64 {
            return None;
        }
        let warmup = self.warmup_epochs * epochs as f64 / before as f64;
        let note = format!(
            "warm-up shortened from {} to {warmup:.3} epochs: it keeps its share of the \
             {epochs}-epoch run",
            self.warmup_epochs
        );
        self.warmup_epochs = warmup;
        Some(note)
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            epochs: 10,
            batch_size: 64,
            optimizer: Optimizer::Sgd,
            momentum: 0.9,
            base_lr: 0.1,
            base_batch: 256,
            warmup_epochs: 1.0,
            schedule: Schedule::Cosine,
            step_epochs: Vec::new(),
            step_gamma: 0.1,
            weight_decay: 5e-5,
            label_smoothing: 0.1,
            aux_loss_weight: 0.3,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            cutmix_switch_prob: 0.5,
            mix_prob: 1.0,
            ema_decay: 0.0,
            seed: 42,
            precision: Precision::F32,
            device: "flex".into(),
            early_stop_patience: 0,
        }
    }
}

impl OptimConfig {
    /// The peak learning rate after linear batch-size scaling.
    pub fn peak_lr(&self) -> f64 {
        self.base_lr * self.batch_size as f64 / self.base_batch as f64
    }

    pub fn device_kind(&self) -> Result<DeviceKind> {
        self.device.parse()
    }
}

impl TrainConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read config {}: {e}", path.display())))?;
        let config = Self::parse(&text).map_err(|e| match e {
            Error::Config(message) => Error::Config(format!("{}: {message}", path.display())),
            other => other,
        })?;
        Ok(config)
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: TrainConfig =
            toml::from_str(text).map_err(|e| Error::Config(e.to_string().trim().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved config as TOML, defaults included.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Config(format!("serialising: {e}")))
    }

    /// Checks every value that would make training fail or mean nothing.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let (data, train) = (&self.data, &self.train);
        let min_input = crate::models::info(&self.model.name)?.min_input;
        if (data.crop as usize) < min_input {
            return Err(Error::Config(format!(
                "data.crop is {}, but {} needs inputs of at least {min_input} px",
                data.crop, self.model.name
            )));
        }
        let checks: [(bool, String); 13] = [
            (
                data.crop > 0 && data.crop <= data.resize,
                format!(
                    "data.crop ({}) must be in 1..=data.resize ({})",
                    data.crop, data.resize
                ),
            ),
            (train.epochs > 0, "train.epochs must be at least 1".into()),
            (
                train.batch_size > 0,
                "train.batch_size must be at least 1".into(),
            ),
            (
                train.base_batch > 0,
                "train.base_batch must be at least 1".into(),
            ),
            (
                train.base_lr.is_finite() && train.base_lr > 0.0,
                format!("train.base_lr is {}; it must be positive", train.base_lr),
            ),
            (
                (0.0..1.0).contains(&train.momentum),
                format!("train.momentum is {}; it must be in [0, 1)", train.momentum),
            ),
            (
                train.weight_decay.is_finite() && train.weight_decay >= 0.0,
                format!(
                    "train.weight_decay is {}; it must be ≥ 0",
                    train.weight_decay
                ),
            ),
            (
                (0.0..1.0).contains(&train.label_smoothing),
                format!(
                    "train.label_smoothing is {}; it must be in [0, 1)",
                    train.label_smoothing
                ),
            ),
            (
                [train.mixup_alpha, train.cutmix_alpha]
                    .iter()
                    .all(|alpha| alpha.is_finite() && *alpha >= 0.0),
                format!(
                    "train.mixup_alpha ({}) and train.cutmix_alpha ({}) must be ≥ 0",
                    train.mixup_alpha, train.cutmix_alpha
                ),
            ),
            (
                (0.0..=1.0).contains(&train.mix_prob)
                    && (0.0..=1.0).contains(&train.cutmix_switch_prob),
                format!(
                    "train.mix_prob ({}) and train.cutmix_switch_prob ({}) must be in [0, 1]",
                    train.mix_prob, train.cutmix_switch_prob
                ),
            ),
            (
                (0.0..1.0).contains(&train.ema_decay),
                format!(
                    "train.ema_decay is {}; it must be in [0, 1) (0: no EMA)",
                    train.ema_decay
                ),
            ),
            (
                train.warmup_epochs.is_finite()
                    && train.warmup_epochs >= 0.0
                    && train.warmup_epochs < train.epochs as f64,
                format!(
                    "train.warmup_epochs is {}; it must be in [0, epochs = {})",
                    train.warmup_epochs, train.epochs
                ),
            ),
            (
                train.step_gamma.is_finite() && train.step_gamma > 0.0,
                format!(
                    "train.step_gamma is {}; it must be positive",
                    train.step_gamma
                ),
            ),
        ];
        if let Some((_, message)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(Error::Config(message));
        }
        train
            .device_kind()
            .map_err(|e| Error::Config(format!("train.device: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_one_epoch_try_of_a_config_with_a_one_epoch_warm_up_shortens_the_warm_up() {
        let mut config = TrainConfig::parse("[train]\nepochs = 10\nwarmup_epochs = 1.0\n").unwrap();
        let note = config.train.set_epochs(1);
        assert!(note.unwrap().contains("warm-up shortened"));
        assert!((config.train.warmup_epochs - 0.1).abs() < 1e-12);
        config.validate().unwrap();

        // A warm-up that still fits is left alone, and says nothing.
        let mut config = TrainConfig::parse("[train]\nepochs = 15\nwarmup_epochs = 1.0\n").unwrap();
        assert_eq!(config.train.set_epochs(3), None);
        assert_eq!((config.train.epochs, config.train.warmup_epochs), (3, 1.0));
    }

    #[test]
    fn batch_mixing_is_off_by_default_and_checked() {
        let plain = TrainConfig::parse("").unwrap();
        assert!(!crate::mix::enabled(&plain.train));
        let mixed = TrainConfig::parse("[train]\nmixup_alpha = 0.8\ncutmix_alpha = 1.0\n").unwrap();
        assert!(crate::mix::enabled(&mixed.train));
        assert!(TrainConfig::parse("[train]\nmixup_alpha = -1.0\n").is_err());
        assert!(TrainConfig::parse("[train]\nmix_prob = 1.5\n").is_err());
    }

    #[test]
    fn model_ema_is_off_by_default_and_its_decay_is_checked() {
        assert_eq!(TrainConfig::parse("").unwrap().train.ema_decay, 0.0);
        let on = TrainConfig::parse("[train]\nema_decay = 0.999\n").unwrap();
        assert_eq!(on.train.ema_decay, 0.999);
        let err = TrainConfig::parse("[train]\nema_decay = 1.0\n").unwrap_err();
        assert!(err.to_string().contains("ema_decay"), "{err}");
    }

    #[test]
    fn augmentation_is_read_from_its_own_data_section() {
        let config = TrainConfig::parse(
            "[data.augment]\nresized_crop_scale = [0.08, 1.0]\nbrightness = 0.4\ntrivial_augment = true\n",
        )
        .unwrap();
        let augment = &config.data.augment;
        assert_eq!(augment.resized_crop_scale, Some([0.08, 1.0]));
        assert_eq!(augment.brightness, 0.4);
        assert!(augment.trivial_augment);
        assert_eq!(augment.contrast, 0.0);
        let plain = TrainConfig::parse("[data]\nresize = 72\ncrop = 64\n").unwrap();
        assert_eq!(plain.data.augment, AugmentConfig::new());
    }

    use super::*;

    #[test]
    fn an_empty_config_takes_every_default_and_is_valid() {
        let config = TrainConfig::parse("").unwrap();
        assert_eq!(config, TrainConfig::default());
        assert_eq!(config.train.peak_lr(), 0.1 * 64.0 / 256.0);
    }

    #[test]
    fn a_typo_in_a_key_is_an_error_that_names_it() {
        let err = TrainConfig::parse("[train]\nepoch = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch"), "{err}");
        let err = TrainConfig::parse("[modle]\nname = \"vgg16\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("modle"), "{err}");
    }

    #[test]
    fn wrong_types_and_impossible_values_are_errors() {
        for (text, needle) in [
            ("[train]\nepochs = \"ten\"\n", "epochs"),
            ("[train]\nepochs = 0\n", "epochs"),
            ("[train]\nbase_lr = -1.0\n", "base_lr"),
            ("[train]\ndevice = \"gpu\"\n", "device"),
            ("[train]\nprecision = \"f8\"\n", "precision"),
            ("[data]\nresize = 32\ncrop = 56\n", "crop"),
            ("[model]\nname = \"resnet9\"\n", "resnet9"),
            ("[train]\nwarmup_epochs = 12.0\n", "warmup_epochs"),
            (
                "[model]\nname = \"alexnet\"\n[data]\ncrop = 48\n",
                "at least 63 px",
            ),
        ] {
            let err = TrainConfig::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} gave {err}");
        }
    }

    #[test]
    fn the_resolved_config_round_trips_through_toml() {
        let mut config = TrainConfig::default();
        config.model.width = 0.25;
        config.train.precision = Precision::Bf16;
        config.data.classes = vec!["animals".into(), "vehicles".into()];
        let again = TrainConfig::parse(&config.to_toml().unwrap()).unwrap();
        assert_eq!(again, config);
    }
}

#[cfg(test)]
mod shipped_configs {
    use super::*;

    /// Every config in `configs/cpu`, `configs/gpu`, `configs/ci` and `configs/study-full` parses, validates and names a
    /// registered model: a typo there would otherwise surface only when someone trains.
    #[test]
    fn every_shipped_training_config_is_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut checked = 0;
        for folder in ["cpu", "gpu", "ci", "study-full"] {
            let entries = std::fs::read_dir(root.join(folder)).unwrap();
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                    checked += 1;
                }
            }
        }
        assert!(checked >= 10, "only {checked} configs found");
    }
}
