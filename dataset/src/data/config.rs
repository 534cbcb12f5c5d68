//! Preprocessing settings and the per-channel normalisation table built from them.

use burn::config::Config;

use super::augment::AugmentConfig;
use crate::{Error, Result};

/// ImageNet channel means (RGB, on the 0–1 scale), the usual default.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB, on the 0–1 scale).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How a photo becomes a `[3, crop, crop]` tensor: resize the short side to `resize`
/// (aspect kept), crop `crop × crop` (random when training, centred when evaluating),
/// flip horizontally half of the time when training, then `(x / 255 - mean) / std`.
///
/// The paper's setting is resize 256 / crop 224; CPU experiments use small ones such as
/// 64 / 56. Saved beside results with [`Config::save`].
#[derive(Config, Debug)]
pub struct PreprocessConfig {
    /// Length of the short side after resizing, in pixels.
    #[config(default = 256)]
    pub resize: u32,
    /// Side of the square crop, in pixels; at most `resize`.
    #[config(default = 224)]
    pub crop: u32,
    /// Per-channel mean subtracted after scaling to 0–1.
    #[config(default = "IMAGENET_MEAN")]
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by after subtracting the mean.
    #[config(default = "IMAGENET_STD")]
    pub std: [f32; 3],
    /// Training augmentation beyond the random crop and flip (all off by default).
    #[config(default = "AugmentConfig::new()")]
    pub augment: AugmentConfig,
}

impl PreprocessConfig {
    /// A config with the given sizes and ImageNet normalisation.
    pub fn sized(resize: u32, crop: u32) -> Self {
        Self::new().with_resize(resize).with_crop(crop)
    }

    /// Checks the sizes and the normalisation constants.
    pub fn validate(&self) -> Result<()> {
        if self.crop == 0 || self.resize == 0 {
            return Err(Error::InvalidArgument(format!(
                "resize ({}) and crop ({}) must be positive",
                self.resize, self.crop
            )));
        }
        if self.crop > self.resize {
            return Err(Error::InvalidArgument(format!(
                "crop ({}) must not exceed resize ({}): the crop is taken from the resized image",
                self.crop, self.resize
            )));
        }
        self.augment.validate()?;
        if self.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(Error::InvalidArgument(format!(
                "mean {:?} must be finite and std {:?} finite and positive",
                self.mean, self.std
            )));
        }
        Ok(())
    }

    /// Number of f32 values one preprocessed image takes: `3 × crop × crop`.
    pub fn item_len(&self) -> usize {
        3 * self.crop as usize * self.crop as usize
    }

    /// The interval each normalised value of channel `c` lies in:
    /// `[(0 - mean) / std, (1 - mean) / std]`.
    pub fn channel_range(&self, channel: usize) -> (f32, f32) {
        let (mean, std) = (self.mean[channel], self.std[channel]);
        ((0.0 - mean) / std, (1.0 - mean) / std)
    }
}

/// `(v / 255 - mean) / std` for every byte value `v` and channel, computed once.
///
/// The arithmetic is the one torchvision does (`ToTensor` divides by 255 in f32, then
/// `Normalize` subtracts and divides in f32), so a lookup gives bit-identical values.
#[derive(Debug, Clone)]
pub struct NormalizeTable {
    channels: [[f32; 256]; 3],
}

impl NormalizeTable {
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut channels = [[0.0f32; 256]; 3];
        for (c, table) in channels.iter_mut().enumerate() {
            for (value, slot) in table.iter_mut().enumerate() {
                *slot = (value as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        NormalizeTable { channels }
    }

    /// The table of one channel (0 = red, 1 = green, 2 = blue).
    #[inline]
    pub fn channel(&self, channel: usize) -> &[f32; 256] {
        &self.channels[channel]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_sizes_and_imagenet_statistics() {
        let config = PreprocessConfig::new();
        assert_eq!((config.resize, config.crop), (256, 224));
        assert_eq!(config.mean, IMAGENET_MEAN);
        assert_eq!(config.std, IMAGENET_STD);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_crop_larger_than_the_resize_is_rejected() {
        let err = PreprocessConfig::sized(56, 64)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("crop (64)"), "{err}");
        assert!(PreprocessConfig::sized(64, 0).validate().is_err());
        assert!(
            PreprocessConfig::sized(64, 56)
                .with_std([1.0, 0.0, 1.0])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preprocess.json");
        let config = PreprocessConfig::sized(72, 64);
        config.save(&path).unwrap();
        let loaded = PreprocessConfig::load(&path).unwrap();
        assert_eq!(
            (loaded.resize, loaded.crop, loaded.mean, loaded.std),
            (72, 64, IMAGENET_MEAN, IMAGENET_STD)
        );
    }

    #[test]
    fn normalize_table_matches_the_formula_and_spans_the_channel_range() {
        let config = PreprocessConfig::new();
        let table = NormalizeTable::new(config.mean, config.std);
        for c in 0..3 {
            let (low, high) = config.channel_range(c);
            assert_eq!(table.channel(c)[0], low);
            assert_eq!(table.channel(c)[255], high);
            assert_eq!(
                table.channel(c)[128],
                (128.0f32 / 255.0 - config.mean[c]) / config.std[c]
            );
        }
    }
}
