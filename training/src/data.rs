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
            "{} has no photos of classes {:?}{}",
            path.display(),
            config.classes,
            if config.only_sources.is_empty() {
                String::new()
            } else {
                format!(" from sources {:?}", config.only_sources)
            }
        )));
    }
    let hash = records_hash(&manifest.records);
    Ok(SplitData { manifest, hash })
}

/// The source a photo comes from: the prefix before the first `_` of its original file
/// name (the gallery URL's last segment, else the stored path's), as the shared set
/// names its files (`inria_0001.jpg`, `stanfordcars_00012.jpg`; MANIFEST.csv's `source`
/// column). A name without `_` is its own source.
pub fn source_of(record: &ManifestRecord) -> &str {
    let name = if record.image_url.is_empty() {
        &record.path
    } else {
        &record.image_url
    };
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    file.split('_').next().unwrap_or(file)
}

fn filter_records(records: Vec<ManifestRecord>, config: &DataConfig) -> Vec<ManifestRecord> {
    let wanted_source = |r: &ManifestRecord| {
        let source = source_of(r);
        (config.only_sources.is_empty() || config.only_sources.iter().any(|s| s == source))
            && !config.exclude_sources.iter().any(|s| s == source)
    };
    let records: Vec<_> = records
        .into_iter()
        .filter(|r| config.classes.is_empty() || config.classes.contains(&r.class))
        .filter(wanted_source)
        .collect();
    album_dataset::manifest::spread_per_class(records, config.images_per_class)
}

/// What the photos of a split are, independent of where they are stored and of the order
/// the manifest lists them in: the sorted (content sha256, class) pairs, each field
/// length-prefixed. Two machines that crawled the same photos into different folders get
/// the same hash; relabelling or swapping a single photo changes it.
fn records_hash(records: &[ManifestRecord]) -> String {
    let mut pairs: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.sha256.as_str(), r.class.as_str()))
        .collect();
    pairs.sort_unstable();
    let mut hasher = Sha256::new();
    for (sha256, class) in pairs {
        for field in [sha256, class] {
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
        PreprocessConfig::sized(config.resize, config.crop)
            .with_augment(config.augment.clone())
            .validate()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_the_original_file_names_prefix() {
        let mut crawled = record("people", "x", 0);
        crawled.path = "../crawl/gallery/images/6d/6d40bd05.jpg".into();
        crawled.image_url = "http://127.0.0.1:8765/photos/people/inria_crop001_0007.jpg".into();
        assert_eq!(source_of(&crawled), "inria");
        assert_eq!(
            source_of(&record("animals", "catsdogs200", 3)),
            "catsdogs200"
        );
        let mut plain = record("animals", "x", 0);
        plain.path = "animals/cat.jpg".into();
        assert_eq!(source_of(&plain), "cat.jpg");
    }

    /// Leave-one-source-out: the excluded source is gone from training, and scoring
    /// keeps only it (`only_sources`), whatever the class.
    #[test]
    fn sources_can_be_left_out_or_kept_alone() {
        let mut records = Vec::new();
        for source in ["caltech101", "catsdogs", "catsdogs200"] {
            records.extend((0..4).map(|n| record("animals", source, n)));
        }
        records.extend((0..4).map(|n| record("people", "inria", n)));
        let without = DataConfig {
            exclude_sources: vec!["catsdogs".into(), "inria".into()],
            ..DataConfig::default()
        };
        let kept = filter_records(records.clone(), &without);
        assert_eq!(kept.len(), 8);
        assert!(
            kept.iter()
                .all(|r| !["catsdogs", "inria"].contains(&source_of(r)))
        );
        let only = DataConfig {
            only_sources: vec!["catsdogs".into(), "inria".into()],
            ..DataConfig::default()
        };
        let kept = filter_records(records, &only);
        assert_eq!(kept.len(), 8);
        assert!(
            kept.iter()
                .all(|r| ["catsdogs", "inria"].contains(&source_of(r)))
        );
    }

    /// The bug: the split hash covered each photo's stored path (`../crawl/gallery/...`)
    /// and the manifest's order, so two machines with the same photos recorded different
    /// data hashes for identical runs.
    #[test]
    fn the_data_hash_ignores_where_photos_are_stored_and_their_order() {
        let mut records: Vec<ManifestRecord> = (0..4)
            .map(|n| {
                let mut r = record(["animals", "people"][n % 2], "src", n);
                r.sha256 = format!("{n:064x}");
                r
            })
            .collect();
        let here = records_hash(&records);
        records.reverse();
        for r in &mut records {
            r.path = format!("elsewhere/{}", r.path);
        }
        assert_eq!(records_hash(&records), here);
        records[0].class = "vehicles".into();
        assert_ne!(
            records_hash(&records),
            here,
            "a relabelled photo changes the hash"
        );
    }

    fn record(class: &str, source: &str, n: usize) -> ManifestRecord {
        ManifestRecord {
            path: format!("{class}/{source}_{n}.jpg"),
            class: class.into(),
            image_url: String::new(),
            page_url: String::new(),
            sha256: String::new(),
            phash: 0,
            width: 112,
            height: 112,
            bytes: 0,
            fetched_at: String::new(),
        }
    }

    /// The bug: `images_per_class` kept the first photos of each class, and a split lists
    /// a class's photos grouped by source, so a 500-photo subset of animals was all
    /// Caltech-101 and none of the cats and dogs.
    #[test]
    fn images_per_class_samples_every_source_not_just_the_first() {
        let mut records = Vec::new();
        for source in ["caltech", "catsdogs", "imagenet"] {
            records.extend((0..100).map(|n| record("animals", source, n)));
        }
        records.extend((0..50).map(|n| record("people", "lfw", n)));
        let config = DataConfig {
            images_per_class: 30,
            ..DataConfig::default()
        };
        let kept = filter_records(records, &config);
        let count = |needle: &str| kept.iter().filter(|r| r.path.contains(needle)).count();
        assert_eq!(count("caltech"), 10);
        assert_eq!(count("catsdogs"), 10);
        assert_eq!(count("imagenet"), 10);
        assert_eq!(count("lfw"), 30);
    }
}
