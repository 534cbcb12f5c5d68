//! The data pack: splits re-encoded small enough to travel with the `album` binary to a
//! machine that has neither the photos nor the network (the GPU machine takes 64 MiB
//! per call, binary included).
//!
//! Every photo is scaled so that its short side is `side` and centre-cropped to a
//! `side` × `side` square, then written as a JPEG at the highest quality whose projected
//! total fits the byte budget (judged on an even sample first, lowered and redone if the
//! whole pack still comes out too large). The pack folder is a split folder like
//! `album dataset split`'s: `<split>.parquet` manifests (no CSV copies, to save room) whose
//! paths point at `photos/<class>/…`, so a training config only names it as its `data.split_dir`.
//! Each record keeps its photo's class, URLs (and so its source) and perceptual hash; its
//! `sha256`, size and byte count are the packed file's, so a run on the pack records a
//! data hash of its own, never the full-size split's. `pack.json` says what the pack
//! holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{
    Manifest, ManifestRecord, spread_per_class, to_dataframe, write_table_parquet,
};
use crate::{Error, Result, progress};

/// The JPEG qualities tried, best first; below 40 the photos lose what a classifier needs.
const QUALITIES: [u8; 11] = [90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40];
/// Photos encoded at every quality to project the pack's size.
const SAMPLE: usize = 300;

/// What to pack.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The packed photos' side in pixels (squares).
    pub side: u32,
    /// The splits to pack, by name (`train`, `val`).
    pub splits: Vec<String>,
    /// At most this many photos per class of a split, picked evenly over the split's
    /// order: by split name, else `per_class_default` (0 = all).
    pub per_class: BTreeMap<String, usize>,
    pub per_class_default: usize,
    /// The most bytes the packed photos and manifests may take together.
    pub max_bytes: u64,
    /// Draw a progress bar.
    pub progress: bool,
}

/// What a pack holds, written as `pack.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PackSummary {
    pub side: u32,
    pub jpeg_quality: u8,
    /// Photos and manifests, in bytes.
    pub total_bytes: u64,
    pub max_bytes: u64,
    pub splits: BTreeMap<String, PackedSplit>,
}

/// One split of a pack.
#[derive(Debug, Clone, Serialize)]
pub struct PackedSplit {
    pub photos: usize,
    pub per_class: BTreeMap<String, usize>,
    /// The packed photos' bytes.
    pub bytes: u64,
    /// SHA-256 of the split manifest it was packed from.
    pub source_manifest_sha256: String,
}

/// Packs `options.splits` of the split folder `split_dir` into a new folder `out`
/// (built beside it and renamed into place when whole; an existing `out` is refused).
pub fn pack_splits(split_dir: &Path, out: &Path, options: &PackOptions) -> Result<PackSummary> {
    if options.side < 16 {
        return Err(Error::InvalidArgument(format!(
            "a pack's photos need a side of at least 16 px, not {}",
            options.side
        )));
    }
    if out.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} already exists: remove it or pack into a new folder",
            out.display()
        )));
    }
    if let Some(name) = options
        .per_class
        .keys()
        .find(|k| !options.splits.contains(k))
    {
        return Err(Error::InvalidArgument(format!(
            "a per-class limit names split {name:?}, which is not among those packed ({})",
            options.splits.join(", ")
        )));
    }
    let splits = options
        .splits
        .iter()
        .map(|name| {
            let per_class = options
                .per_class
                .get(name)
                .copied()
                .unwrap_or(options.per_class_default);
            SourceSplit::load(split_dir, name, per_class)
        })
        .collect::<Result<Vec<_>>>()?;
    let photos: usize = splits.iter().map(|s| s.manifest.records.len()).sum();
    let quality = projected_quality(&splits, options)?;
    let partial = sibling(out, "partial");
    let _ = std::fs::remove_dir_all(&partial);
    let summary = write_pack(&splits, &partial, options, quality, photos);
    match summary {
        Ok(summary) => {
            std::fs::rename(&partial, out).map_err(|e| Error::io("rename", &partial, e))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

/// A split as read from the split folder, already cut to `per_class`.
struct SourceSplit {
    name: String,
    manifest: Manifest,
    manifest_sha256: String,
}

impl SourceSplit {
    fn load(split_dir: &Path, name: &str, per_class: usize) -> Result<Self> {
        let path = split_dir.join(format!("{name}.parquet"));
        if !path.is_file() {
            return Err(Error::Data(format!(
                "{} not found: run `album dataset split` first, or name a split that exists",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut manifest = Manifest::load(&path)?;
        manifest.records = spread_per_class(std::mem::take(&mut manifest.records), per_class);
        Ok(SourceSplit {
            name: name.to_owned(),
            manifest,
            manifest_sha256: hex::encode(Sha256::digest(&bytes)),
        })
    }
}

/// The best quality whose projected pack fits the budget, judged on an even sample.
fn projected_quality(splits: &[SourceSplit], options: &PackOptions) -> Result<u8> {
    let all: Vec<(&Manifest, &ManifestRecord)> = splits
        .iter()
        .flat_map(|s| s.manifest.records.iter().map(move |r| (&s.manifest, r)))
        .collect();
    if all.is_empty() {
        return Err(Error::Data("nothing to pack: the splits are empty".into()));
    }
    let step = all.len().div_ceil(SAMPLE).max(1);
    let sample: Vec<_> = all.iter().step_by(step).collect();
    let sizes = sample
        .par_iter()
        .map(|(manifest, record)| {
            let square = square_photo(&manifest.file_path(record), options.side)?;
            QUALITIES
                .iter()
                .map(|&q| encode_jpeg(&square, q).map(|bytes| bytes.len() as u64))
                .collect::<Result<Vec<u64>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let budget = photo_budget(options.max_bytes, all.len(), splits.len());
    for (i, &quality) in QUALITIES.iter().enumerate() {
        let mean = sizes.iter().map(|s| s[i]).sum::<u64>() as f64 / sizes.len() as f64;
        // 3 % of headroom for the sample's error; write_pack checks the real total
        if mean * all.len() as f64 * 1.03 <= budget as f64 {
            return Ok(quality);
        }
    }
    let lowest =
        sizes.iter().map(|s| s[QUALITIES.len() - 1]).sum::<u64>() as f64 / sizes.len() as f64;
    let needed = lowest * all.len() as f64 * 1.03 + (options.max_bytes - budget) as f64;
    Err(Error::InvalidArgument(format!(
        "{} photos at {} px need about {:.1} MiB with their manifests even at JPEG quality {}, \
         over the budget of {:.1} MiB: pack fewer photos per class or a smaller side",
        all.len(),
        options.side,
        needed / MIB,
        QUALITIES[QUALITIES.len() - 1],
        options.max_bytes as f64 / MIB
    )))
}

const MIB: f64 = 1024.0 * 1024.0;

/// The photos' share of the budget: a Parquet manifest takes 65–100 bytes a photo (its
/// URLs and hashes, compressed; measured on the shared set's split) and a few kilobytes
/// more for the file, pack.json one more.
fn photo_budget(max_bytes: u64, photos: usize, splits: usize) -> u64 {
    max_bytes.saturating_sub(photos as u64 * 100 + (splits as u64 + 1) * 4096)
}

fn write_pack(
    splits: &[SourceSplit],
    dir: &Path,
    options: &PackOptions,
    first_quality: u8,
    photos: usize,
) -> Result<PackSummary> {
    let start = QUALITIES
        .iter()
        .position(|&q| q == first_quality)
        .unwrap_or(0);
    for &quality in &QUALITIES[start..] {
        let _ = std::fs::remove_dir_all(dir);
        let bar = options.progress.then(|| {
            let bar = progress::bar(photos as u64, "photos");
            bar.set_message(format!("packing at JPEG quality {quality}"));
            bar
        });
        let mut summary = PackSummary {
            side: options.side,
            jpeg_quality: quality,
            total_bytes: 0,
            max_bytes: options.max_bytes,
            splits: BTreeMap::new(),
        };
        for split in splits {
            let packed = pack_split(split, dir, options.side, quality, bar.as_ref())?;
            summary.splits.insert(split.name.clone(), packed);
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        summary.total_bytes = folder_bytes(dir)?;
        if summary.total_bytes <= options.max_bytes {
            let json = serde_json::to_string_pretty(&summary)
                .map_err(|e| Error::Data(format!("pack.json: {e}")))?;
            let path = dir.join("pack.json");
            std::fs::write(&path, json).map_err(|e| Error::io("write", &path, e))?;
            return Ok(summary);
        }
    }
    Err(Error::InvalidArgument(format!(
        "the pack stays over {:.1} MiB even at JPEG quality {}: pack fewer photos per class \
         or a smaller side",
        options.max_bytes as f64 / MIB,
        QUALITIES[QUALITIES.len() - 1]
    )))
}

/// Writes one split's photos under `dir/photos/<class>/` and its manifests.
fn pack_split(
    split: &SourceSplit,
    dir: &Path,
    side: u32,
    quality: u8,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<PackedSplit> {
    let manifest = &split.manifest;
    let records = manifest
        .records
        .par_iter()
        .map(|record| {
            let square = square_photo(&manifest.file_path(record), side)?;
            let jpeg = encode_jpeg(&square, quality)?;
            let name = format!("photos/{}/{}.jpg", record.class, file_stem(record));
            let path = dir.join(&name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            }
            std::fs::write(&path, &jpeg).map_err(|e| Error::io("write", &path, e))?;
            if let Some(bar) = bar {
                bar.inc(1);
            }
            Ok(ManifestRecord {
                path: name,
                sha256: hex::encode(Sha256::digest(&jpeg)),
                width: side,
                height: side,
                bytes: jpeg.len() as u64,
                ..record.clone()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Parquet only: the trainer reads nothing else, and a CSV copy would cost a sixth of
    // the budget.
    let path = dir.join(format!("{}.parquet", split.name));
    let mut table = to_dataframe(&records).map_err(|e| Error::table(&path, e))?;
    write_table_parquet(&path, &mut table)?;
    let mut per_class = BTreeMap::new();
    for record in &records {
        *per_class.entry(record.class.clone()).or_default() += 1;
    }
    Ok(PackedSplit {
        photos: records.len(),
        per_class,
        bytes: records.iter().map(|r| r.bytes).sum(),
        source_manifest_sha256: split.manifest_sha256.clone(),
    })
}

/// A file name for a packed photo: its original content hash (unique within a split and
/// across splits, which share no photo), else a hash of its path.
fn file_stem(record: &ManifestRecord) -> String {
    let hash = if record.sha256.len() >= 16 && record.sha256.bytes().all(|b| b.is_ascii_hexdigit())
    {
        record.sha256.clone()
    } else {
        hex::encode(Sha256::digest(record.path.as_bytes()))
    };
    hash[..16].to_owned()
}

/// The photo at `path`, its short side scaled to `side`, centre-cropped to a square.
fn square_photo(path: &Path, side: u32) -> Result<image::RgbImage> {
    let image = image::ImageReader::open(path)
        .map_err(|e| Error::io("open", path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io("read", path, e))?
        .decode()
        .map_err(|e| Error::Image {
            origin: path.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(image
        .resize_to_fill(side, side, FilterType::CatmullRom)
        .to_rgb8())
}

/// A baseline JPEG with 4:2:0 chroma and Huffman tables fitted to the photo.
fn encode_jpeg(image: &image::RgbImage, quality: u8) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Image {
        origin: "a packed photo".into(),
        reason,
    };
    let side = |n: u32| u16::try_from(n).map_err(|_| fail(format!("{n} px is too large")));
    let (width, height) = (side(image.width())?, side(image.height())?);
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder.set_optimized_huffman_tables(true);
    encoder
        .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| fail(e.to_string()))?;
    Ok(bytes)
}

fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| Error::io("stat", entry.path(), e))?;
        total += if meta.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// `path` with `.suffix` appended to its last component (`data/pack` → `data/pack.partial`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sibling_folder_gets_a_suffix_on_its_last_component() {
        assert_eq!(
            sibling(Path::new("data/gpu-pack"), "partial"),
            PathBuf::from("data/gpu-pack.partial")
        );
    }
}
