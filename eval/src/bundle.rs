//! A run's best checkpoint exported as a model bundle: the folder the album service
//! loads ([`album_training::inference::TrainedModel::load_bundle`]), with everything a
//! program needs to use the model and nothing it must look up elsewhere:
//!
//! ```text
//! bundle/
//!   model.bpk         the weights of <run>/checkpoints/best (burnpack), copied byte for byte
//!   config.toml       the run's resolved config (architecture, resize and crop)
//!   provenance.json   the run's provenance (revision, data hashes, seed, device)
//!   bundle.json       model, class names in label order, preprocessing (resize, crop,
//!                     mean, std), source run, revision, val/test top-1, SHA-256 of model.bpk
//! ```
//!
//! The folder is assembled beside its destination and renamed into place, so a failure
//! leaves the previous bundle (or none), never a mix of two.

use std::path::{Path, PathBuf};

use album_training::checkpoint;
use album_training::config::TrainConfig;
use album_training::inference::{BUNDLE_FORMAT, BundleInfo, BundlePreprocessing, sha256_file};
use album_training::provenance::Provenance;

use crate::{Error, Result};

/// What was exported, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleExport {
    pub dir: PathBuf,
    pub info: BundleInfo,
}

/// The figures a bundle records about its model's accuracy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BundleScores {
    pub val_top1: f64,
    pub test_top1: Option<f64>,
}

/// Exports `run_dir`'s best checkpoint as a bundle at `dir` (replacing a previous one).
pub fn export_bundle(run_dir: &Path, scores: BundleScores, dir: &Path) -> Result<BundleExport> {
    let name = run_dir.display();
    let best = checkpoint::checkpoints_dir(run_dir).join("best");
    let weights = best.join(BundleInfo::WEIGHTS);
    if !weights.is_file() {
        return Err(Error::Run(format!(
            "run {name} has no checkpoints/best/{}: there are no weights to export \
             (checkpoints stay out of git; retrain the run or export it where it was trained)",
            BundleInfo::WEIGHTS
        )));
    }
    let config = TrainConfig::load(&run_dir.join("config.toml"))?;
    let provenance = Provenance::read(&run_dir.join("provenance.json"))?;
    let epoch = checkpoint::read_state(&best)
        .ok()
        .and_then(|state| state.epochs_done.checked_sub(1));
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io("create folder", parent, e))?;
    let staging = sibling(dir, "partial");
    remove_dir_if_there(&staging)?;
    let result = assemble(
        &staging,
        run_dir,
        &weights,
        &config,
        &provenance,
        epoch,
        scores,
    )
    .and_then(|info| {
        swap_in(&staging, dir)?;
        Ok(BundleExport {
            dir: dir.to_path_buf(),
            info,
        })
    });
    if result.is_err() {
        // Best effort: the staging folder may never have been made.
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn assemble(
    staging: &Path,
    run_dir: &Path,
    weights: &Path,
    config: &TrainConfig,
    provenance: &Provenance,
    epoch: Option<usize>,
    scores: BundleScores,
) -> Result<BundleInfo> {
    std::fs::create_dir_all(staging).map_err(|e| Error::io("create folder", staging, e))?;
    let source_sha256 = sha256_file(weights)?;
    for (from, name) in [
        (weights.to_path_buf(), BundleInfo::WEIGHTS),
        (run_dir.join("config.toml"), "config.toml"),
        (run_dir.join("provenance.json"), "provenance.json"),
    ] {
        std::fs::copy(&from, staging.join(name)).map_err(|e| Error::io("copy", &from, e))?;
    }
    let weights_sha256 = sha256_file(&staging.join(BundleInfo::WEIGHTS))?;
    if weights_sha256 != source_sha256 {
        return Err(Error::Run(format!(
            "copying {} changed its bytes (SHA-256 {source_sha256} became {weights_sha256})",
            weights.display()
        )));
    }
    let info = BundleInfo {
        format: BUNDLE_FORMAT,
        model: config.model.name.clone(),
        width: config.model.width,
        class_names: provenance.class_names.clone(),
        preprocessing: BundlePreprocessing::of(config),
        source_run: run_dir.display().to_string(),
        epoch,
        git_revision: provenance.git_revision.clone(),
        git_dirty: provenance.git_dirty,
        val_top1: scores.val_top1,
        test_top1: scores.test_top1,
        weights: BundleInfo::WEIGHTS.into(),
        weights_sha256,
    };
    let path = staging.join("bundle.json");
    std::fs::write(&path, info.to_json()?).map_err(|e| Error::io("write", &path, e))?;
    Ok(info)
}

/// `.name.<pid>.<what>` beside `dir`: hidden and unique to this process.
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    dir.with_file_name(format!(".{name}.{}.{what}", std::process::id()))
}

fn remove_dir_if_there(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
    }
    Ok(())
}

/// `target` becomes `fresh`: the old target is moved aside, the fresh folder renamed
/// into place, then the old one removed.
fn swap_in(fresh: &Path, target: &Path) -> Result<()> {
    let old = sibling(target, "old");
    remove_dir_if_there(&old)?;
    if target.exists() {
        std::fs::rename(target, &old).map_err(|e| Error::io("move aside", target, e))?;
    }
    std::fs::rename(fresh, target).map_err(|e| Error::io("rename into place", target, e))?;
    remove_dir_if_there(&old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_without_weights_is_refused_by_name_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("some-run");
        std::fs::create_dir_all(&run).unwrap();
        let out = dir.path().join("report").join("bundle");
        let scores = BundleScores {
            val_top1: 0.5,
            test_top1: None,
        };
        let error = export_bundle(&run, scores, &out).unwrap_err().to_string();
        assert!(
            error.contains("some-run") && error.contains("model.bpk"),
            "{error}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn a_fresh_folder_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundle");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("stale.txt"), "old").unwrap();
        let fresh = sibling(&target, "partial");
        std::fs::create_dir_all(&fresh).unwrap();
        std::fs::write(fresh.join("bundle.json"), "{}").unwrap();
        swap_in(&fresh, &target).unwrap();
        assert!(target.join("bundle.json").is_file() && !target.join("stale.txt").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }
}
