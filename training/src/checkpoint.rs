//! Checkpoints: after every epoch the run directory gets
//!
//! ```text
//! checkpoints/last/   model.bpk, optimizer.bpk, state.json   (what --resume reads)
//! checkpoints/best/   model.bpk, state.json                  (best validation top-1)
//! ```
//!
//! and, in a run with model EMA, `ema.bpk` beside each `model.bpk`: the averaged weights
//! (with the live model's batch norm statistics) at that epoch.
//!
//! `model.bpk` and `optimizer.bpk` are burn's burnpack records (parameter ids included,
//! so the optimizer's momentum finds its parameters again). A new `last` is written in
//! full beside the old one and swapped in by renames, so a kill at any moment leaves
//! a whole checkpoint: `last`, or `last.old` if the kill fell between the two renames.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use crate::metrics::{BatchRow, EpochRow};
use crate::models::Model;
use crate::provenance::write_atomically;
use crate::{Error, Result};

/// Where a run stands after a finished epoch, with every metric so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished; the next epoch to run has this (0-based) number.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub step: usize,
    pub best_val_top1: f32,
    pub best_epoch: Option<usize>,
    pub epochs_without_improvement: usize,
    /// Seconds spent training and validating, summed over sessions.
    pub seconds: f64,
    /// Times the run was resumed.
    pub resumes: usize,
    pub batches: Vec<BatchRow>,
    pub epochs: Vec<EpochRow>,
}

const MODEL: &str = "model.bpk";
/// The EMA weights, in runs with `train.ema_decay`.
pub const EMA_MODEL: &str = "ema.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const STATE: &str = "state.json";

pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Writes `checkpoints/last` (and `checkpoints/best` when `is_best`), each with the EMA
/// weights when the run keeps them.
pub fn save(
    run_dir: &Path,
    model: &Model,
    ema: Option<&Model>,
    optimizer: &ModuleOptimizer,
    state: &TrainState,
    is_best: bool,
) -> Result<()> {
    let save_models = |dir: &Path| -> Result<()> {
        save_model(model, &dir.join(MODEL))?;
        ema.map_or(Ok(()), |ema| save_model(ema, &dir.join(EMA_MODEL)))
    };
    let dir = checkpoints_dir(run_dir);
    let fresh = dir.join("last.tmp");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(|e| Error::io("remove", &fresh, e))?;
    }
    std::fs::create_dir_all(&fresh).map_err(|e| Error::io("create", &fresh, e))?;
    save_models(&fresh)?;
    optimizer
        .save(fresh.join(OPTIMIZER))
        .map_err(|e| Error::io("save optimizer state to", &fresh, format!("{e:?}")))?;
    write_state(&fresh.join(STATE), state)?;
    swap_in(&fresh, &dir.join("last"))?;
    if is_best {
        let best = dir.join("best.tmp");
        std::fs::create_dir_all(&best).map_err(|e| Error::io("create", &best, e))?;
        save_models(&best)?;
        write_state(&best.join(STATE), state)?;
        swap_in(&best, &dir.join("best"))?;
    }
    Ok(())
}

fn save_model(model: &Model, path: &Path) -> Result<()> {
    model
        .clone()
        .save_file(path)
        .map_err(|e| Error::io("save model to", path, format!("{e:?}")))
}

fn write_state(path: &Path, state: &TrainState) -> Result<()> {
    let text = serde_json::to_string(state).map_err(|e| Error::io("serialise", path, e))?;
    write_atomically(path, text.as_bytes())
}

/// `target` becomes `fresh`: old target → `<target>.old`, fresh → target, old removed.
fn swap_in(fresh: &Path, target: &Path) -> Result<()> {
    let old = target.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    if target.exists() {
        std::fs::rename(target, &old).map_err(|e| Error::io("rename", target, e))?;
    }
    std::fs::rename(fresh, target).map_err(|e| Error::io("rename into", target, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io("remove", &old, e))?;
    }
    Ok(())
}

/// The newest whole `last` checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> Option<PathBuf> {
    let dir = checkpoints_dir(run_dir);
    ["last", "last.old"]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| {
            [MODEL, OPTIMIZER, STATE]
                .iter()
                .all(|f| path.join(f).is_file())
        })
}

/// Reads a checkpoint's state.
pub fn read_state(checkpoint: &Path) -> Result<TrainState> {
    let path = checkpoint.join(STATE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Resume(format!("{} is damaged: {e}", path.display())))
}

/// Loads a checkpoint's weights into `model` (built from the same config), cast to the
/// model's float type: a float32 checkpoint loads into a bf16 or f16 model for
/// half-precision inference (burn's default keeps the record's type, which the
/// half-precision device then refuses at the first operation).
pub fn load_model(model: Model, checkpoint: &Path) -> Result<Model> {
    load_weights(model, &checkpoint.join(MODEL))
}

/// [`load_model`] from a given weights file (`model.bpk` or [`EMA_MODEL`]).
pub fn load_weights(model: Model, path: &Path) -> Result<Model> {
    let cannot =
        |e: burn::store::RecordError| Error::Resume(format!("cannot load {}: {e}", path.display()));
    let record = burn::store::ModuleRecord::load(path).map_err(cannot)?;
    model
        .try_load_record(record.cast_to_module_dtype())
        .map_err(cannot)
}

/// Loads a checkpoint's optimiser state into `optimizer`.
pub fn load_optimizer(optimizer: ModuleOptimizer, checkpoint: &Path) -> Result<ModuleOptimizer> {
    let path = checkpoint.join(OPTIMIZER);
    optimizer
        .load(&path)
        .map_err(|e| Error::Resume(format!("cannot load {}: {e:?}", path.display())))
}
