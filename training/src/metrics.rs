//! Every figure a run produces, as rows kept in the checkpoint (so a resumed run keeps
//! them) and written as Parquet and CSV tables after each epoch:
//!
//! - `batch-metrics.parquet|csv`: epoch, step, loss, learning rate, images/s, top-1 of
//!   the batch, whether the loss was finite;
//! - `epoch-metrics.parquet|csv`: train loss and top-1, validation loss and top-1/2/5,
//!   learning rate at the epoch's end, epoch time, train and validation images/s, and
//!   the EMA weights' validation loss and top-1 when the run keeps an EMA.

use std::path::{Path, PathBuf};

use album_dataset::manifest::{write_table_csv, write_table_parquet};
use burn::tensor::{Int, Tensor};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    pub epoch: usize,
    pub step: usize,
    pub loss: f32,
    pub lr: f64,
    pub images_per_s: f64,
    pub top1: f32,
    pub finite: bool,
}

/// One epoch, validation included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_top1: f32,
    pub val_loss: f32,
    pub val_top1: f32,
    pub val_top2: f32,
    pub val_top5: f32,
    pub lr: f64,
    pub epoch_seconds: f64,
    pub train_images_per_s: f64,
    pub val_images_per_s: f64,
    pub nonfinite_steps: usize,
    /// Validation loss and top-1 of the EMA weights (runs with `train.ema_decay`).
    #[serde(default)]
    pub ema_val_loss: Option<f32>,
    #[serde(default)]
    pub ema_val_top1: Option<f32>,
}

/// Counts of correct predictions within the top 1, 2 and 5, plus summed loss.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub seen: usize,
    pub loss_sum: f64,
    pub top: [usize; 3],
}

impl Tally {
    pub const KS: [usize; 3] = [1, 2, 5];

    /// Adds a batch: `logits` row-major `[n, classes]`, `targets` `[n]`, mean loss.
    pub fn add(&mut self, logits: &[f32], classes: usize, targets: &[i64], mean_loss: f32) {
        let ranks: Vec<usize> = logits
            .chunks(classes)
            .zip(targets)
            .map(|(row, &target)| rank_of_target(row, target as usize))
            .collect();
        self.add_ranks(&ranks, mean_loss);
    }

    /// Adds a batch given each photo's target rank (as [`target_ranks`] computes them on
    /// the device) and the batch's mean loss.
    pub fn add_ranks(&mut self, ranks: &[usize], mean_loss: f32) {
        for &rank in ranks {
            for (count, k) in self.top.iter_mut().zip(Self::KS) {
                *count += usize::from(rank < k);
            }
        }
        self.seen += ranks.len();
        self.loss_sum += f64::from(mean_loss) * ranks.len() as f64;
    }

    /// Adds another tally's counts (a batch's into the epoch's).
    pub fn merge(&mut self, other: &Tally) {
        self.seen += other.seen;
        self.loss_sum += other.loss_sum;
        for (count, more) in self.top.iter_mut().zip(other.top) {
            *count += more;
        }
    }

    pub fn mean_loss(&self) -> f32 {
        (self.loss_sum / self.seen.max(1) as f64) as f32
    }

    /// Share correct within the top `KS[i]`.
    pub fn accuracy(&self, i: usize) -> f32 {
        self.top[i] as f32 / self.seen.max(1) as f32
    }
}

/// How many classes score strictly higher than the target (0 = top-1 hit). Ties count
/// against the target, so a model that outputs constants is never "right"; NaN scores
/// rank the target last.
fn rank_of_target(row: &[f32], target: usize) -> usize {
    let Some(&score) = row.get(target) else {
        return usize::MAX;
    };
    if score.is_nan() {
        return row.len();
    }
    row.iter()
        .enumerate()
        .filter(|&(i, &v)| i != target && (v >= score || v.is_nan()))
        .count()
}

/// [`rank_of_target`] for a whole batch on the device, so training can keep its tallies
/// there and read them back once per logging interval: `[B, classes]` logits and `[B]`
/// targets give `[B]` ranks (0 = a top-1 hit; ties and NaN scores count against the
/// target; a NaN target score ranks last, at `classes`).
pub fn target_ranks(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    let [batch, classes] = logits.dims();
    let logits = logits.detach();
    let score = logits.clone().gather(1, targets.reshape([batch, 1]));
    let at_least = logits
        .clone()
        .greater_equal(score.clone().expand([batch, classes]))
        .int();
    let nan_rivals = logits.is_nan().int();
    // The target's own entry is counted by `>=` (when it is not NaN): take it off.
    let rank = (at_least + nan_rivals).sum_dim(1).reshape([batch]) - 1;
    rank.mask_fill(score.is_nan().reshape([batch]), classes as i64)
}

fn batch_frame(rows: &[BatchRow]) -> PolarsResult<DataFrame> {
    df!(
        "epoch" => rows.iter().map(|r| r.epoch as u32).collect::<Vec<_>>(),
        "step" => rows.iter().map(|r| r.step as u32).collect::<Vec<_>>(),
        "loss" => rows.iter().map(|r| r.loss).collect::<Vec<_>>(),
        "lr" => rows.iter().map(|r| r.lr).collect::<Vec<_>>(),
        "images_per_s" => rows.iter().map(|r| r.images_per_s).collect::<Vec<_>>(),
        "top1" => rows.iter().map(|r| r.top1).collect::<Vec<_>>(),
        "finite" => rows.iter().map(|r| r.finite).collect::<Vec<_>>(),
    )
}

fn epoch_frame(rows: &[EpochRow]) -> PolarsResult<DataFrame> {
    let col = |f: fn(&EpochRow) -> f32| rows.iter().map(f).collect::<Vec<_>>();
    let col64 = |f: fn(&EpochRow) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    df!(
        "epoch" => rows.iter().map(|r| r.epoch as u32).collect::<Vec<_>>(),
        "train_loss" => col(|r| r.train_loss),
        "train_top1" => col(|r| r.train_top1),
        "val_loss" => col(|r| r.val_loss),
        "val_top1" => col(|r| r.val_top1),
        "val_top2" => col(|r| r.val_top2),
        "val_top5" => col(|r| r.val_top5),
        "lr" => col64(|r| r.lr),
        "epoch_seconds" => col64(|r| r.epoch_seconds),
        "train_images_per_s" => col64(|r| r.train_images_per_s),
        "val_images_per_s" => col64(|r| r.val_images_per_s),
        "nonfinite_steps" => rows.iter().map(|r| r.nonfinite_steps as u32).collect::<Vec<_>>(),
        "ema_val_loss" => rows.iter().map(|r| r.ema_val_loss).collect::<Vec<_>>(),
        "ema_val_top1" => rows.iter().map(|r| r.ema_val_top1).collect::<Vec<_>>(),
    )
}

/// Writes both tables, Parquet and CSV, into `dir`; returns the paths written.
pub fn write_tables(dir: &Path, batches: &[BatchRow], epochs: &[EpochRow]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (stem, frame) in [
        ("batch-metrics", batch_frame(batches)),
        ("epoch-metrics", epoch_frame(epochs)),
    ] {
        let parquet = dir.join(format!("{stem}.parquet"));
        let mut df = frame.map_err(|e| Error::Io(format!("{}: {e}", parquet.display())))?;
        write_table_parquet(&parquet, &mut df)?;
        let csv = parquet.with_extension("csv");
        write_table_csv(&csv, &mut df)?;
        written.extend([parquet, csv]);
    }
    Ok(written)
}

/// Reads a run's `epoch-metrics.parquet` back: the per-epoch figures reports compare.
pub fn read_epoch_rows(run_dir: &Path) -> Result<Vec<EpochRow>> {
    let path = run_dir.join("epoch-metrics.parquet");
    let table_error = |e: PolarsError| Error::Io(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let df = ParquetReader::new(file).finish().map_err(table_error)?;
    let f32s = |name: &str| -> Result<Vec<f32>> {
        let column = df.column(name).map_err(table_error)?;
        let values = column.cast(&DataType::Float32).map_err(table_error)?;
        Ok(values
            .f32()
            .map_err(table_error)?
            .iter()
            .map(|v| v.unwrap_or(f32::NAN))
            .collect())
    };
    let f64s = |name: &str| -> Result<Vec<f64>> {
        let column = df.column(name).map_err(table_error)?;
        let values = column.cast(&DataType::Float64).map_err(table_error)?;
        Ok(values
            .f64()
            .map_err(table_error)?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let (epoch, nonfinite) = (f64s("epoch")?, f64s("nonfinite_steps")?);
    let (train_loss, train_top1) = (f32s("train_loss")?, f32s("train_top1")?);
    let (val_loss, val_top1) = (f32s("val_loss")?, f32s("val_top1")?);
    let (val_top2, val_top5) = (f32s("val_top2")?, f32s("val_top5")?);
    let (lr, seconds) = (f64s("lr")?, f64s("epoch_seconds")?);
    let (train_rate, val_rate) = (f64s("train_images_per_s")?, f64s("val_images_per_s")?);
    // Runs from before model EMA have no EMA columns; runs without EMA have them empty.
    let optional = |name: &str| -> Result<Vec<Option<f32>>> {
        if df.column(name).is_err() {
            return Ok(vec![None; df.height()]);
        }
        Ok(f32s(name)?
            .into_iter()
            .map(|v| (!v.is_nan()).then_some(v))
            .collect())
    };
    let (ema_loss, ema_top1) = (optional("ema_val_loss")?, optional("ema_val_top1")?);
    Ok((0..df.height())
        .map(|i| EpochRow {
            epoch: epoch[i] as usize,
            train_loss: train_loss[i],
            train_top1: train_top1[i],
            val_loss: val_loss[i],
            val_top1: val_top1[i],
            val_top2: val_top2[i],
            val_top5: val_top5[i],
            lr: lr[i],
            epoch_seconds: seconds[i],
            train_images_per_s: train_rate[i],
            val_images_per_s: val_rate[i],
            nonfinite_steps: nonfinite[i] as usize,
            ema_val_loss: ema_loss[i],
            ema_val_top1: ema_top1[i],
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device's ranks must be the host's, ties and NaN included.
    #[test]
    fn target_ranks_on_the_device_match_the_host_rule() {
        use burn::tensor::{Device, TensorData};
        let logits = vec![
            3.0,
            1.0,
            0.0, // target 0: best
            3.0,
            2.0,
            0.0, // target 1: second
            1.0,
            0.0,
            1.0, // target 2: tied with class 0
            f32::NAN,
            0.0,
            0.0, // target 0 is NaN: last
            0.0,
            f32::NAN,
            5.0, // target 2 beats 0 but a NaN rival counts
        ];
        let targets = vec![0i64, 1, 2, 0, 2];
        let device = Device::flex();
        let ranks = target_ranks(
            Tensor::from_data(TensorData::new(logits.clone(), [5, 3]), &device),
            Tensor::from_data(TensorData::new(targets.clone(), [5]), &device),
        );
        let ranks: Vec<i64> = ranks.into_data().convert::<i64>().try_to_vec().unwrap();
        let host: Vec<i64> = logits
            .chunks(3)
            .zip(&targets)
            .map(|(row, &t)| rank_of_target(row, t as usize) as i64)
            .collect();
        assert_eq!(ranks, host);
        assert_eq!(ranks, vec![0, 1, 1, 3, 1]);
    }

    #[test]
    fn tally_counts_top_k_hits_and_ties_count_against_the_target() {
        let mut tally = Tally::default();
        // target 0 best; target 1 second; target 2 tied with another (rank 1); NaN row.
        let logits = [
            3.0,
            1.0,
            0.0, //
            3.0,
            2.0,
            0.0, //
            1.0,
            0.0,
            1.0, //
            f32::NAN,
            0.0,
            0.0,
        ];
        tally.add(&logits, 3, &[0, 1, 2, 0], 2.0);
        assert_eq!(tally.seen, 4);
        assert_eq!(tally.top, [1, 3, 4]);
        assert_eq!(tally.accuracy(0), 0.25);
        assert_eq!(tally.mean_loss(), 2.0);
        let mut epoch = Tally::default();
        epoch.merge(&tally);
        epoch.merge(&tally);
        assert_eq!(
            (epoch.seen, epoch.top, epoch.mean_loss()),
            (8, [2, 6, 8], 2.0)
        );
    }

    #[test]
    fn tables_are_written_as_parquet_and_csv_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let batch = BatchRow {
            epoch: 0,
            step: 0,
            loss: 1.5,
            lr: 0.01,
            images_per_s: 100.0,
            top1: 0.5,
            finite: true,
        };
        let epoch = EpochRow {
            epoch: 0,
            train_loss: 1.5,
            train_top1: 0.5,
            val_loss: 1.4,
            val_top1: 0.6,
            val_top2: 0.8,
            val_top5: 1.0,
            lr: 0.01,
            epoch_seconds: 3.0,
            train_images_per_s: 100.0,
            val_images_per_s: 300.0,
            nonfinite_steps: 0,
            ema_val_loss: Some(1.3),
            ema_val_top1: Some(0.65),
        };
        let written = write_tables(
            dir.path(),
            &[batch.clone(), batch],
            std::slice::from_ref(&epoch),
        )
        .unwrap();
        assert_eq!(written.len(), 4);
        let df = album_dataset::manifest::read_table_parquet(&written[0]).unwrap();
        assert_eq!(df.height(), 2);
        let csv = std::fs::read_to_string(&written[3]).unwrap();
        assert!(
            csv.starts_with("epoch,train_loss,train_top1,val_loss"),
            "{csv}"
        );
        assert_eq!(read_epoch_rows(dir.path()).unwrap(), vec![epoch]);
    }
}
