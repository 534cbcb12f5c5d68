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

use album_dataset::data::{CacheStatus, DecodedImages, ImageBatcher, PreprocessConfig};
use burn::tensor::Device;

use crate::checkpoint::{self, checkpoints_dir};
use crate::config::TrainConfig;
use crate::data::{SplitData, for_each_chunk, load_split};
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
}

impl FromStr for CheckpointChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "best" => Ok(CheckpointChoice::Best),
            "last" => Ok(CheckpointChoice::Last),
            other => Err(Error::Config(format!(
                "checkpoint {other:?}: expected best or last"
            ))),
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
        let checkpoint = match choice {
            CheckpointChoice::Best => Some(checkpoints_dir(run_dir).join("best")),
            CheckpointChoice::Last => checkpoint::latest(run_dir),
        }
        .filter(|dir| dir.join("model.bpk").is_file())
        .ok_or_else(|| {
            Error::Run(format!(
                "{} has no {choice:?} checkpoint (checkpoints stay out of git: retrain with \
                 `album train --config {0}/config.toml`, or use a run trained here)",
                run_dir.display()
            ))
        })?;
        let epoch = checkpoint::read_state(&checkpoint)
            .ok()
            .and_then(|state| state.epochs_done.checked_sub(1));
        let model = config.model.clone().init(&device)?;
        let model =
            checkpoint::load_model(model, &checkpoint).map_err(|e| Error::Run(e.to_string()))?;
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
        let data = load_split(&self.config.data, split)?;
        let classes = data.manifest.class_names();
        if classes != self.provenance.class_names {
            return Err(Error::Config(format!(
                "the {split} split has classes {classes:?} but the run was trained on {:?}",
                self.provenance.class_names
            )));
        }
        let (images, status) = DecodedImages::open_or_build(
            &data.manifest,
            self.config.data.resize,
            &self.config.data.cache_dir,
        )?;
        if let CacheStatus::Rebuilt { reason } = &status {
            eprintln!("{split}: decoded-image cache rebuilt ({reason})");
        }
        Ok((data, images.into_shared()))
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
