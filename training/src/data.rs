//! The training and validation photos of a run, from `album dataset split`'s output.
//!
//! Training reads `train.parquet` and `val.parquet` only: the test split stays unread
//! until evaluation, so nothing is ever tuned on it.

use std::sync::Arc;

use album_dataset::data::{CacheStatus, DecodedImages, ImageDataset, ImageItem, PreprocessConfig};
use album_dataset::manifest::{Manifest, ManifestRecord};
use sha2::{Digest, Sha256};

use crate::config::DataConfig;
use crate::{Error, Result};

/// A split's photos after the config's class and per-class filters.
#[derive(Debug, Clone)]
pub struct SplitData {
    pub manifest: Manifest,
    /// SHA-256 over every kept record's path, class and photo hash: the data-manifest
    /// hash a run records, which changes if any photo or label changes.
    pub hash: String,
}

/// Loads `<split_dir>/<name>.parquet` and applies the filters.
pub fn load_split(config: &DataConfig, name: &str) -> Result<SplitData> {
    let path = config.split_dir.join(format!("{name}.parquet"));
    if !path.is_file() {
        return Err(Error::Config(format!(
            "{} not found: run `album dataset split` first (data.split_dir is {})",
            path.display(),
            config.split_dir.display()
        )));
    }
    let mut manifest = Manifest::load(&path)?;
    manifest.records = filter_records(manifest.records, config);
    if manifest.records.is_empty() {
        return Err(Error::Config(format!(
            "{} has no photos of classes {:?}",
            path.display(),
            config.classes
        )));
    }
    let hash = records_hash(&manifest.records);
    Ok(SplitData { manifest, hash })
}

fn filter_records(records: Vec<ManifestRecord>, config: &DataConfig) -> Vec<ManifestRecord> {
    let mut per_class = std::collections::HashMap::<String, usize>::new();
    records
        .into_iter()
        .filter(|r| config.classes.is_empty() || config.classes.contains(&r.class))
        .filter(|r| {
            let seen = per_class.entry(r.class.clone()).or_default();
            *seen += 1;
            config.images_per_class == 0 || *seen <= config.images_per_class
        })
        .collect()
}

fn records_hash(records: &[ManifestRecord]) -> String {
    let mut hasher = Sha256::new();
    for record in records {
        for field in [&record.path, &record.class, &record.sha256] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// Both splits decoded (from the cache when it is valid), with the class names they
/// share; labels are positions in that list.
pub struct RunData {
    pub train: Arc<DecodedImages>,
    pub val: Arc<DecodedImages>,
    pub class_names: Vec<String>,
    pub train_hash: String,
    pub val_hash: String,
}

impl RunData {
    pub fn load(config: &DataConfig) -> Result<Self> {
        PreprocessConfig::sized(config.resize, config.crop).validate()?;
        let train = load_split(config, "train")?;
        let val = load_split(config, "val")?;
        let class_names = train.manifest.class_names();
        if val.manifest.class_names() != class_names {
            return Err(Error::Config(format!(
                "train has classes {class_names:?} but val has {:?}: labels would not agree",
                val.manifest.class_names()
            )));
        }
        let decode = |split: &SplitData, name: &str| -> Result<Arc<DecodedImages>> {
            let (images, status) =
                DecodedImages::open_or_build(&split.manifest, config.resize, &config.cache_dir)?;
            if let CacheStatus::Rebuilt { reason } = &status {
                eprintln!("{name}: decoded-image cache rebuilt ({reason})");
            }
            Ok(images.into_shared())
        };
        Ok(RunData {
            train: decode(&train, "train")?,
            val: decode(&val, "val")?,
            class_names,
            train_hash: train.hash,
            val_hash: val.hash,
        })
    }
}

/// Hands `each` the photos at `indices` of `images` in order, `batch_size` at a time,
/// with a progress bar named `label` when `progress`: the walk that validation and
/// prediction share (no shuffling, no augmentation epoch).
pub fn for_each_chunk(
    images: &Arc<DecodedImages>,
    indices: &[usize],
    batch_size: usize,
    progress: Option<&str>,
    mut each: impl FnMut(Vec<ImageItem>) -> Result<()>,
) -> Result<()> {
    let dataset = ImageDataset::new(images.clone());
    let bar = progress.map(|label| album_dataset::progress::bar(indices.len() as u64, label));
    for chunk in indices.chunks(batch_size.max(1)) {
        let items = chunk
            .iter()
            .map(|&i| dataset.item(i))
            .collect::<album_dataset::Result<Vec<ImageItem>>>()?;
        each(items)?;
        if let Some(bar) = &bar {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}
