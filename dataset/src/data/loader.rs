//! burn's side: a [`Dataset`] over the decoded-image cache and a [`Batcher`] that crops,
//! flips and normalises a batch in parallel into `[B, 3, crop, crop]` tensors.
//!
//! Epochs: burn's `Batcher` is not told the epoch, so the dataset carries it. Call
//! [`ImageDataset::set_epoch`] (or [`EpochCounter::set`] on a handle taken before the
//! dataset moved into a `DataLoader`) before iterating an epoch; every item then carries
//! `(epoch, index)` and the batcher seeds that item's crop and flip with
//! `item_seed(seed, epoch, index)`. The same seed and epoch give identical tensors
//! whatever the shuffling, batch composition or worker count; another epoch or seed
//! gives other crops. (With several workers, burn may hand batches over in a different
//! order; each item's pixels are still fixed.)

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use super::cache::DecodedImages;
use super::config::PreprocessConfig;
use super::process_files_into;
use super::transform::{Augmentation, ImageView, Preprocessor};
use crate::{Error, Result};

/// The current epoch, shared between a dataset and whoever drives the training loop.
#[derive(Debug, Clone, Default)]
pub struct EpochCounter(Arc<AtomicU64>);

impl EpochCounter {
    pub fn set(&self, epoch: u64) {
        self.0.store(epoch, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One image of an [`ImageDataset`]: where it is in the cache, its label, and the epoch
/// it was fetched in. Cheap to clone (the pixels stay in the shared cache).
#[derive(Clone)]
pub struct ImageItem {
    pub index: usize,
    pub label: usize,
    pub epoch: u64,
    images: Arc<DecodedImages>,
}

impl ImageItem {
    /// The resized image; present for every item an [`ImageDataset`] hands out.
    pub fn image(&self) -> Option<ImageView<'_>> {
        self.images.image(self.index)
    }
}

impl std::fmt::Debug for ImageItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageItem")
            .field("index", &self.index)
            .field("label", &self.label)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A burn dataset over decoded images, indexed like the manifest's rows.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    images: Arc<DecodedImages>,
    epoch: EpochCounter,
}

impl ImageDataset {
    pub fn new(images: Arc<DecodedImages>) -> Self {
        ImageDataset {
            images,
            epoch: EpochCounter::default(),
        }
    }

    /// A handle to this dataset's epoch that stays valid after the dataset is moved
    /// into a `DataLoader`.
    pub fn epoch_counter(&self) -> EpochCounter {
        self.epoch.clone()
    }

    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.set(epoch);
    }

    pub fn images(&self) -> &Arc<DecodedImages> {
        &self.images
    }

    /// The item at `index` for the current epoch (what burn's `Dataset::get` returns).
    pub fn item(&self, index: usize) -> Result<ImageItem> {
        let label = self.images.label(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "image index {index} is out of range for a dataset of {}",
                self.images.len()
            ))
        })?;
        Ok(ImageItem {
            index,
            label,
            epoch: self.epoch.get(),
            images: Arc::clone(&self.images),
        })
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        self.item(index).map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        self.images.len()
    }
}

/// A batch ready for a model: `images` `[B, 3, crop, crop]` (normalised f32) and
/// `targets` `[B]` (class indices).
#[derive(Debug, Clone)]
pub struct ImageBatch {
    pub images: Tensor<4>,
    pub targets: Tensor<1, Int>,
}

/// A batch still in host memory: what worker threads build ahead of the training step,
/// before it goes to the step's device ([`HostBatch::to_device`]). Building on the host
/// keeps the data pipeline off the device's own threads (LibTorch's pool).
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// `[B, 3, crop, crop]`, row-major.
    pub pixels: Vec<f32>,
    /// `[B]` class indices.
    pub targets: Vec<i64>,
    pub crop: usize,
}

impl HostBatch {
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The batch as tensors on `device` (a copy on LibTorch and CUDA; flex takes the
    /// buffer as it is).
    pub fn to_device(self, device: &Device) -> ImageBatch {
        batch_tensors(self.pixels, self.targets, self.crop, device)
    }
}

/// Turns [`ImageItem`]s into an [`ImageBatch`]: random crop and flip for training,
/// centre crop for evaluation; items are processed in parallel (rayon).
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    preprocessor: Preprocessor,
    augmentation: Augmentation,
}

impl ImageBatcher {
    /// Random crops and flips seeded by `(seed, epoch, index)`.
    pub fn train(config: &PreprocessConfig, seed: u64) -> Result<Self> {
        Ok(ImageBatcher {
            preprocessor: Preprocessor::new(config)?,
            augmentation: Augmentation::Train { seed },
        })
    }

    /// Centre crops, no flips.
    pub fn eval(config: &PreprocessConfig) -> Result<Self> {
        Ok(ImageBatcher {
            preprocessor: Preprocessor::new(config)?,
            augmentation: Augmentation::Eval,
        })
    }

    pub fn config(&self) -> &PreprocessConfig {
        self.preprocessor.config()
    }

    pub fn augmentation(&self) -> Augmentation {
        self.augmentation
    }

    /// Writes the items' pixels into `out`, `[items.len(), 3, crop, crop]`, in parallel.
    pub fn fill(&self, items: &[ImageItem], out: &mut [f32]) -> Result<()> {
        let item_len = self.preprocessor.item_len();
        if out.len() != items.len() * item_len {
            return Err(Error::InvalidArgument(format!(
                "batch buffer holds {} values, {} images need {}",
                out.len(),
                items.len(),
                items.len() * item_len
            )));
        }
        out.par_chunks_mut(item_len)
            .zip(items.par_iter())
            .try_for_each(|(slot, item)| {
                let image = item.image().ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "image index {} is not in the decoded images",
                        item.index
                    ))
                })?;
                self.preprocessor.process_resized_into(
                    image,
                    self.augmentation,
                    item.epoch,
                    item.index,
                    slot,
                )
            })
    }

    /// Like [`Batcher::batch`] but reporting failures instead of panicking.
    pub fn try_batch(&self, items: &[ImageItem], device: &Device) -> Result<ImageBatch> {
        Ok(self.host_batch(items)?.to_device(device))
    }

    /// The batch of `items` in host memory.
    pub fn host_batch(&self, items: &[ImageItem]) -> Result<HostBatch> {
        let mut pixels = vec![0.0f32; items.len() * self.preprocessor.item_len()];
        self.fill(items, &mut pixels)?;
        Ok(HostBatch {
            pixels,
            targets: items.iter().map(|item| item.label as i64).collect(),
            crop: self.config().crop as usize,
        })
    }

    /// The same batch straight from image files, without the cache, in host memory:
    /// read, decode, resize, crop, flip and normalise in parallel (file `i` is seeded as
    /// dataset index `first_index + i`). `labels` gives one target per file.
    pub fn host_batch_files(
        &self,
        paths: &[PathBuf],
        labels: &[usize],
        first_index: usize,
        epoch: u64,
    ) -> Result<HostBatch> {
        if labels.len() != paths.len() {
            return Err(Error::InvalidArgument(format!(
                "{} labels for {} files",
                labels.len(),
                paths.len()
            )));
        }
        let crop = self.config().crop as usize;
        let mut pixels = vec![0.0f32; paths.len() * self.preprocessor.item_len()];
        process_files_into(
            &self.preprocessor,
            paths,
            self.augmentation,
            epoch,
            first_index,
            &mut pixels,
        )?;
        Ok(HostBatch {
            pixels,
            targets: labels.iter().map(|&label| label as i64).collect(),
            crop,
        })
    }
}

fn batch_tensors(pixels: Vec<f32>, targets: Vec<i64>, crop: usize, device: &Device) -> ImageBatch {
    let count = targets.len();
    ImageBatch {
        images: Tensor::from_data(TensorData::new(pixels, [count, 3, crop, crop]), device),
        targets: Tensor::from_data(TensorData::new(targets, [count]), device),
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    /// Items only come from an [`ImageDataset`] over the same cache and the config was
    /// validated when the batcher was made, so `try_batch` cannot fail here; burn's
    /// trait has no error path, so a broken invariant would panic with the reason.
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        match self.try_batch(&items, device) {
            Ok(batch) => batch,
            Err(error) => panic!("image batch: {error}"),
        }
    }
}
