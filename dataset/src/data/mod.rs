//! Feeding photos to burn: decode, resize, crop, flip, normalise, batch.
//!
//! ```text
//! manifest ──(rayon: read + decode + resize short side to R, once)──► DecodedImages
//!     RGB8, one buffer or a memory-mapped cache file keyed by manifest hash + R
//! DecodedImages ──ImageDataset::get(i)──► ImageItem { index, label, epoch }
//! Vec<ImageItem> ──ImageBatcher (rayon: crop C×C, flip, normalise)──► HostBatch
//!     pixels [B, 3, C, C] f32 and targets [B] in host memory
//!     (built ahead of the training step on a worker thread by a Prefetcher)
//! HostBatch ──to_device──► ImageBatch
//!     images: Tensor<4> [B, 3, C, C] f32, targets: Tensor<1, Int> [B]
//! ```
//!
//! - [`config`]: [`PreprocessConfig`] (burn `Config`: resize, crop, mean, std).
//! - [`augment`]: [`augment::AugmentConfig`] and torchvision's random-resized crop,
//!   colour jitter and TrivialAugment-wide on RGB8 images, each drawn from a generator
//!   seeded per image.
//! - [`transform`]: the per-image steps with torchvision's semantics, and
//!   [`Preprocessor::process_encoded_into`], the whole pipeline for one encoded image
//!   into a caller's `[3, C, C]` slice (no cache, no `DataLoader`).
//! - [`cache`]: [`DecodedImages`], the decoded-image cache, in memory or memory-mapped;
//!   its docs give the file format and what happens to unreadable photos (they fail the
//!   build, naming the file).
//! - [`loader`]: [`ImageDataset`], [`ImageBatcher`], [`HostBatch`], [`ImageBatch`], and
//!   how epochs reach the augmentation.
//! - [`prefetch`]: [`Prefetcher`], batches built on a worker thread ahead of the step.
//!
//! Typical training use:
//!
//! ```no_run
//! # fn main() -> album_dataset::Result<()> {
//! use album_dataset::data::*;
//! use album_dataset::manifest::Manifest;
//! use burn::data::dataloader::DataLoaderBuilder;
//!
//! let manifest = Manifest::load("data/train.parquet".as_ref())?;
//! let config = PreprocessConfig::sized(64, 56);
//! let (images, _status) = DecodedImages::open_or_build(&manifest, config.resize, "cache".as_ref())?;
//! let dataset = ImageDataset::new(images.into_shared());
//! let epoch = dataset.epoch_counter();
//! let loader = DataLoaderBuilder::new(ImageBatcher::train(&config, 42)?)
//!     .batch_size(64)
//!     .shuffle(42)
//!     .num_workers(2)
//!     .build(dataset);
//! for e in 0..10 {
//!     epoch.set(e);
//!     for batch in loader.iter() {
//!         let _batch = batch.map_err(|err| album_dataset::Error::Data(err.to_string()))?;
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod augment;
pub mod cache;
pub mod config;
pub mod loader;
pub mod prefetch;
pub mod transform;

use std::path::PathBuf;

use rayon::prelude::*;

pub use cache::{CacheStatus, DecodedImages};
pub use config::{IMAGENET_MEAN, IMAGENET_STD, NormalizeTable, PreprocessConfig};
pub use loader::{EpochCounter, HostBatch, ImageBatch, ImageBatcher, ImageDataset, ImageItem};
pub use prefetch::Prefetcher;
pub use transform::{
    Augmentation, CropPlan, ImageView, Preprocessor, RgbImage, decode_and_resize, decode_rgb,
    item_seed, read_dimensions, resize_short_side, resized_size,
};

use crate::{Error, Result};

/// The whole pipeline straight from files: read, decode, resize, crop, flip and
/// normalise `paths` in parallel into `out` (`[paths.len(), 3, C, C]`). Image `i` is
/// seeded as dataset index `first_index + i`. No cache: every call decodes.
pub fn process_files_into(
    preprocessor: &Preprocessor,
    paths: &[PathBuf],
    augmentation: Augmentation,
    epoch: u64,
    first_index: usize,
    out: &mut [f32],
) -> Result<()> {
    let item_len = preprocessor.item_len();
    if out.len() != paths.len() * item_len {
        return Err(Error::InvalidArgument(format!(
            "batch buffer holds {} values, {} images need {}",
            out.len(),
            paths.len(),
            paths.len() * item_len
        )));
    }
    out.par_chunks_mut(item_len)
        .zip(paths.par_iter())
        .enumerate()
        .try_for_each(|(i, (slot, path))| {
            let bytes = std::fs::read(path).map_err(|e| Error::io("read image", path, e))?;
            let origin = path.display().to_string();
            preprocessor.process_encoded_into(
                &bytes,
                &origin,
                augmentation,
                epoch,
                first_index + i,
                slot,
            )
        })
}

/// Runs `work` on a rayon pool of `threads` threads (all cores when 0), so that every
/// parallel step inside it uses exactly that many.
pub fn with_threads<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
    Ok(pool.install(work))
}
