//! A finished run's model, loaded back for inference: what evaluation, the inference
//! benchmark and the album service build on.
//!
//! A run directory (see [`crate::training`]) holds everything needed: `config.toml`
//! gives the architecture and the preprocessing, `provenance.json` the class names in
//! label order, `checkpoints/best` (or `last`) the weights. Nothing here trains, so the
//! model lives on a plain device (no autodiff) and its batch norms use their running
//! statistics.
//!
//! [`TrainedModel::predict`] returns softmax probabilities per photo, so every metric
//! (top-k, calibration, confusion) is computed afterwards from one pass.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use album_dataset::data::{
    Augmentation, CacheStatus, DecodedImages, ImageBatcher, PreprocessConfig, Preprocessor,
    RgbImage, resize_short_side,
};
use burn::tensor::{Device, Tensor, TensorData};

use crate::checkpoint::{self, checkpoints_dir};
use crate::config::{DataConfig, TrainConfig};
use crate::data::{SplitData, for_each_chunk, load_split, source_of};
use crate::models::Model;
use crate::provenance::Provenance;
use crate::training::host_f32;
use crate::{Error, Result};

/// Which of a run's checkpoints to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointChoice {
    /// The epoch with the best validation top-1 (what a report compares).
    #[default]
    Best,
    /// The newest epoch.
    Last,
    /// The moving average of the weights at the newest epoch (runs with
    /// `train.ema_decay`).
    Ema,
}

impl FromStr for CheckpointChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "best" => Ok(CheckpointChoice::Best),
            "last" => Ok(CheckpointChoice::Last),
            "ema" => Ok(CheckpointChoice::Ema),
            other => Err(Error::Unknown {
                what: "checkpoint",
                name: other.to_owned(),
                expected: "best, last or ema",
            }),
        }
    }
}

/// A run's model with its weights, config and class names.
pub struct TrainedModel {
    pub run_dir: PathBuf,
    pub config: TrainConfig,
    pub provenance: Provenance,
    /// The checkpoint directory the weights came from.
    pub checkpoint: PathBuf,
    /// The 0-based epoch whose weights these are.
    pub epoch: Option<usize>,
    model: Model,
    device: Device,
}

/// Softmax outputs for one split, in the split's photo order.
#[derive(Debug, Clone)]
pub struct SplitPredictions {
    pub class_names: Vec<String>,
    pub targets: Vec<usize>,
    /// Row-major `photos × classes`.
    pub probabilities: Vec<f32>,
    pub paths: Vec<String>,
    /// Seconds of each batch from pixels on the host to probabilities back on the host
    /// (upload, forward, softmax, read-back); decoding and cropping are not included.
    pub batch_seconds: Vec<f64>,
    pub batch_size: usize,
}

impl TrainedModel {
    /// Loads `run_dir`'s config, class names and chosen checkpoint onto `device`.
    pub fn load(run_dir: &Path, choice: CheckpointChoice, device: Device) -> Result<Self> {
        crate::training::require_run_dir(run_dir)?;
        let not_a_run = |what: &str, e: Error| {
            Error::Run(format!(
                "{} is not a finished run directory ({what}: {e})",
                run_dir.display()
            ))
        };
        let config = TrainConfig::load(&run_dir.join("config.toml"))
            .map_err(|e| not_a_run("config.toml", e))?;
        let provenance = Provenance::read(&run_dir.join("provenance.json"))
            .map_err(|e| not_a_run("provenance.json", e))?;
        let (checkpoint, weights) = match choice {
            CheckpointChoice::Best => (Some(checkpoints_dir(run_dir).join("best")), "model.bpk"),
            CheckpointChoice::Last => (checkpoint::latest(run_dir), "model.bpk"),
            CheckpointChoice::Ema => (checkpoint::latest(run_dir), checkpoint::EMA_MODEL),
        };
        let checkpoint = checkpoint
            .filter(|dir| dir.join(weights).is_file())
            .ok_or_else(|| {
                let why = if choice == CheckpointChoice::Ema && config.train.ema_decay <= 0.0 {
                    "the run kept no EMA of its weights: train.ema_decay was 0"
                } else {
                    "checkpoints stay out of git: retrain with `album train --config \
                     <run>/config.toml`, or use a run trained here"
                };
                Error::Run(format!(
                    "{} has no {choice:?} checkpoint ({why})",
                    run_dir.display()
                ))
            })?;
        let epoch = checkpoint::read_state(&checkpoint)
            .ok()
            .and_then(|state| state.epochs_done.checked_sub(1));
        let model = config.model.clone().init(&device)?;
        let model = checkpoint::load_weights(model, &checkpoint.join(weights))
            .map_err(|e| Error::Run(e.to_string()))?;
        Ok(TrainedModel {
            run_dir: run_dir.to_owned(),
            config,
            provenance,
            checkpoint,
            epoch,
            model,
            device,
        })
    }

    pub fn class_names(&self) -> &[String] {
        &self.provenance.class_names
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A split of the run's data (`val` or `test`, or `train`), with the run's filters,
    /// decoded at the run's resize (from the cache when valid). Its classes must be the
    /// run's, in the same order, or labels would mean other classes.
    pub fn load_split(&self, split: &str) -> Result<(SplitData, Arc<DecodedImages>)> {
        self.load_split_with(&self.config.data, split)
    }

    fn load_split_with(
        &self,
        config: &DataConfig,
        split: &str,
    ) -> Result<(SplitData, Arc<DecodedImages>)> {
        let data = load_split(config, split)?;
        let classes = data.manifest.class_names();
        if classes != self.provenance.class_names {
            return Err(Error::Config(format!(
                "the {split} split has classes {classes:?} but the run was trained on {:?}",
                self.provenance.class_names
            )));
        }
        let (images, status) =
            DecodedImages::open_or_build(&data.manifest, config.resize, &config.cache_dir)?;
        if let CacheStatus::Rebuilt { reason } = &status {
            eprintln!("{split}: decoded-image cache rebuilt ({reason})");
        }
        Ok((data, images.into_shared()))
    }

    /// The whole split, with the run's source filters lifted, and the positions of the
    /// photos from `sources`: what the leave-one-source-out check scores a run that was
    /// trained without them on. Labels stay the run's (the whole split has every class).
    pub fn load_split_of_sources(
        &self,
        split: &str,
        sources: &[String],
    ) -> Result<(SplitData, Arc<DecodedImages>, Vec<usize>)> {
        let mut unfiltered = self.config.data.clone();
        unfiltered.exclude_sources.clear();
        unfiltered.only_sources.clear();
        let (data, images) = self.load_split_with(&unfiltered, split)?;
        let indices: Vec<usize> = data
            .manifest
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| sources.iter().any(|s| s == source_of(r)))
            .map(|(i, _)| i)
            .collect();
        if indices.is_empty() {
            return Err(Error::Config(format!(
                "the {split} split has no photos from sources {sources:?}"
            )));
        }
        Ok((data, images, indices))
    }

    /// Softmax probabilities for every photo of `images`, centre-cropped as in validation.
    pub fn predict(
        &self,
        split: &SplitData,
        images: &Arc<DecodedImages>,
        batch_size: usize,
        progress: bool,
    ) -> Result<SplitPredictions> {
        let all: Vec<usize> = (0..images.len()).collect();
        self.predict_photos(split, images, &all, batch_size, progress)
    }

    /// Like [`predict`](Self::predict) for the photos at `indices` only, in that order.
    pub fn predict_photos(
        &self,
        split: &SplitData,
        images: &Arc<DecodedImages>,
        indices: &[usize],
        batch_size: usize,
        progress: bool,
    ) -> Result<SplitPredictions> {
        if batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        let preprocess = PreprocessConfig::sized(self.config.data.resize, self.config.data.crop);
        let batcher = ImageBatcher::eval(&preprocess)?;
        let classes = self.class_names().len();
        let mut probabilities = Vec::with_capacity(indices.len() * classes);
        let mut batch_seconds = Vec::with_capacity(indices.len().div_ceil(batch_size));
        let label = progress.then_some("images");
        for_each_chunk(images, indices, batch_size, label, |items| {
            let started = Instant::now();
            let batch = batcher.try_batch(&items, &self.device)?;
            let logits = host_f32(self.model.forward(batch.images))?;
            batch_seconds.push(started.elapsed().as_secs_f64());
            probabilities.extend(softmax_rows(&logits, classes));
            Ok(())
        })?;
        // A label the images lack becomes an out-of-range target, which evaluation refuses.
        let targets = indices
            .iter()
            .map(|&i| images.label(i).unwrap_or(usize::MAX))
            .collect();
        let records = &split.manifest.records;
        Ok(SplitPredictions {
            class_names: self.class_names().to_vec(),
            targets,
            probabilities,
            paths: indices
                .iter()
                .filter_map(|&i| records.get(i))
                .map(|r| r.path.clone())
                .collect(),
            batch_seconds,
            batch_size,
        })
    }
}

impl TrainedModel {
    /// Class probabilities for photos already decoded to RGB (the album service's path),
    /// preprocessed as evaluation does: the short side resized to the config's `resize`,
    /// the centre `crop × crop` cut out and normalised. One row per photo, in
    /// [`TrainedModel::class_names`] order.
    pub fn classify(&self, photos: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        if photos.is_empty() {
            return Ok(Vec::new());
        }
        let preprocess = PreprocessConfig::sized(self.config.data.resize, self.config.data.crop);
        let preprocessor = Preprocessor::new(&preprocess)?;
        let item_len = preprocessor.item_len();
        let mut pixels = vec![0.0f32; photos.len() * item_len];
        for (photo, slot) in photos.iter().zip(pixels.chunks_mut(item_len)) {
            let resized = resize_short_side(photo.clone(), preprocess.resize, "photo")?;
            preprocessor.process_resized_into(resized.view(), Augmentation::Eval, 0, 0, slot)?;
        }
        let crop = preprocess.crop as usize;
        let images = Tensor::<4>::from_data(
            TensorData::new(pixels, [photos.len(), 3, crop, crop]),
            &self.device,
        );
        let logits = host_f32(self.model.forward(images))?;
        let classes = self.class_names().len();
        Ok(softmax_rows(&logits, classes)
            .chunks(classes.max(1))
            .map(<[f32]>::to_vec)
            .collect())
    }
}

/// Row-wise softmax on the host, in f64: in a half-precision model the device's own
/// softmax rounds each probability to 3–4 digits, so rows would not sum to 1; the logits
/// are the model's output either way.
fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|&z| f64::from(z - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| (e / sum) as f32));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Model bundles: one trained model made self-contained for the album service.
// ---------------------------------------------------------------------------------------

/// The bundle format this build writes and reads (`bundle.json`'s `format`).
pub const BUNDLE_FORMAT: u32 = 1;

/// `bundle.json`: what a model bundle is and how to feed it. A bundle is a folder with
/// `model.bpk` (the weights, burnpack), `config.toml` (the run's resolved config),
/// `provenance.json` (the run's) and this file; `album report` exports the winner of a
/// comparison as one, and [`TrainedModel::load_bundle`] loads it back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BundleInfo {
    /// [`BUNDLE_FORMAT`].
    pub format: u32,
    /// A registry name such as `se-resnext50`, with its width.
    pub model: String,
    pub width: f32,
    /// Class names in label order: output `i` of the model is `class_names[i]`.
    pub class_names: Vec<String>,
    pub preprocessing: BundlePreprocessing,
    /// The run directory the weights came from, as given to the exporter.
    pub source_run: String,
    /// The 0-based epoch whose weights these are, when the checkpoint records it.
    pub epoch: Option<usize>,
    /// The training revision (`provenance.json`) and whether its tree was dirty.
    pub git_revision: String,
    pub git_dirty: bool,
    /// Top-1 on the validation split (from the run's evaluation), and on the test split
    /// when the run was evaluated there.
    pub val_top1: f64,
    pub test_top1: Option<f64>,
    /// The weights file, relative to the bundle, and its SHA-256 (lower-case hex).
    pub weights: String,
    pub weights_sha256: String,
}

/// How a photo becomes the model's input, as evaluation does it (album-dataset's
/// `PreprocessConfig` with a centre crop): decode to RGB, resize the short side to
/// `resize` (aspect kept), crop the centre `crop × crop`, scale to 0–1, subtract `mean`
/// and divide by `std` per channel, lay out as `[3, crop, crop]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BundlePreprocessing {
    pub resize: u32,
    pub crop: u32,
    /// RGB, on the 0–1 scale.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub channels: String,
    pub layout: String,
}

impl BundlePreprocessing {
    /// The preprocessing [`TrainedModel::predict`] applies for `config`.
    pub fn of(config: &TrainConfig) -> Self {
        let p = PreprocessConfig::sized(config.data.resize, config.data.crop);
        BundlePreprocessing {
            resize: p.resize,
            crop: p.crop,
            mean: p.mean,
            std: p.std,
            channels: "RGB".into(),
            layout: "NCHW".into(),
        }
    }
}

impl BundleInfo {
    /// The file name of the weights inside a bundle.
    pub const WEIGHTS: &str = "model.bpk";

    /// Reads `<dir>/bundle.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("bundle.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Run(format!(
                "{} is not a model bundle: cannot read bundle.json ({e})",
                dir.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Run(format!("{} is damaged: {e}", path.display())))
    }

    /// The file's text, pretty-printed.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Run(format!("cannot serialise bundle.json: {e}")))
    }
}

/// SHA-256 of a file's bytes, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| Error::io("read", path, e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A finished run's `summary.json` (written when `album train` ends or stops).
pub fn read_summary(run_dir: &Path) -> Result<crate::training::RunSummary> {
    let path = run_dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Run(format!(
            "{} is not a finished run: cannot read summary.json ({e})",
            run_dir.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Run(format!("{} is damaged: {e}", path.display())))
}

impl TrainedModel {
    /// Loads a model bundle (see [`BundleInfo`]) onto `device`, refusing one whose
    /// weights are missing or do not have the recorded SHA-256, or whose files disagree
    /// (model, classes, preprocessing). `run_dir` and `checkpoint` are then the bundle.
    pub fn load_bundle(dir: &Path, device: Device) -> Result<Self> {
        let bundle = |message: String| Error::Run(format!("bundle {}: {message}", dir.display()));
        let info = BundleInfo::read(dir)?;
        if info.format != BUNDLE_FORMAT {
            return Err(bundle(format!(
                "format {} (this build reads format {BUNDLE_FORMAT})",
                info.format
            )));
        }
        if info.weights != BundleInfo::WEIGHTS {
            return Err(bundle(format!(
                "weights {:?}: expected {:?}",
                info.weights,
                BundleInfo::WEIGHTS
            )));
        }
        let weights = dir.join(BundleInfo::WEIGHTS);
        if !weights.is_file() {
            return Err(bundle(format!("{} is missing", BundleInfo::WEIGHTS)));
        }
        let sha256 = sha256_file(&weights)?;
        if sha256 != info.weights_sha256 {
            return Err(bundle(format!(
                "{} has SHA-256 {sha256} but bundle.json records {}: the file is damaged or \
                 was replaced",
                BundleInfo::WEIGHTS,
                info.weights_sha256
            )));
        }
        let config = TrainConfig::load(&dir.join("config.toml"))
            .map_err(|e| bundle(format!("config.toml: {e}")))?;
        let provenance = Provenance::read(&dir.join("provenance.json"))
            .map_err(|e| bundle(format!("provenance.json: {e}")))?;
        let disagreements = [
            (info.model != config.model.name, "the model name"),
            (info.width != config.model.width, "the width"),
            (
                info.class_names != provenance.class_names
                    || info.class_names.len() != config.model.num_classes,
                "the class names",
            ),
            (
                info.preprocessing != BundlePreprocessing::of(&config),
                "the preprocessing",
            ),
        ];
        if let Some((_, what)) = disagreements.iter().find(|(differs, _)| *differs) {
            return Err(bundle(format!(
                "bundle.json and config.toml/provenance.json disagree on {what}"
            )));
        }
        let model = config.model.clone().init(&device)?;
        let model = checkpoint::load_model(model, dir).map_err(|e| bundle(e.to_string()))?;
        Ok(TrainedModel {
            run_dir: dir.to_owned(),
            config,
            provenance,
            checkpoint: dir.to_owned(),
            epoch: info.epoch,
            model,
            device,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_and_keep_the_order() {
        let p = softmax_rows(&[1.0, 2.0, 3.0, 1000.0, 0.0, -1000.0], 3);
        for row in p.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert!(p[0] < p[1] && p[1] < p[2]);
        assert!((p[3] - 1.0).abs() < 1e-6 && p[5] == 0.0);
    }
}
