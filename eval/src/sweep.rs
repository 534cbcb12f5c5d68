//! The paper's Table 2 redone: what a model reaches after 5, 10, 20 and 40 epochs.
//!
//! Each epoch count is its **own run** with its own learning-rate schedule, not one long
//! run read at checkpoints. The schedules here (warm-up, then cosine or step decay) are
//! stretched over the run's length: a 40-epoch run at its fifth epoch is still at nearly
//! its peak rate, with noisy weights, so reading it there would understate what five
//! epochs of training can buy. Separate runs answer the question the table asks ("how
//! good is a model trained for N epochs?"); the longest run read at each epoch count is
//! kept beside them (`longest_run_val_top1`) to show how much the two readings differ.
//!
//! Runs go to `<out>/epochs-<N>/` and are ordinary run directories (config, provenance,
//! metrics, checkpoints). A sweep started again skips the runs that finished, continues
//! the ones that were cut short, and refuses a folder trained with a different config.
//!
//! Per epoch count the table gives validation top-1 at the last epoch and the best one,
//! the minimum training loss (label-smoothed) and the minimum validation loss (the paper
//! calls its held-out loss "test loss"; here the test split is never used to choose
//! anything), and, when asked, the test top-1 of the checkpoint chosen on validation with
//! its 95 % bootstrap interval.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use album_training::config::{Precision, TrainConfig};
use album_training::device::DeviceKind;
use album_training::inference::{CheckpointChoice, read_summary};
use album_training::metrics::{EpochRow, read_epoch_rows};
use album_training::training::{self, RunOptions, RunSummary};
use plotters::prelude::*;
use polars::prelude::*;

use crate::charts::{self, FONT, GREY};
use crate::format::{duration, percent, share};
use crate::run::{EvalRunOptions, Split, evaluate_run};
use crate::tables::{write_csv, write_parquet, write_text};
use crate::{Error, Estimate, EvalOptions, Result};

/// The paper's Table 2: SE-ResNeXt-152 accuracy after this many epochs (their data,
/// 112 px, a GPU), for comparison only.
pub const PAPER_TABLE2: [(usize, f64); 4] = [(5, 0.797), (10, 0.893), (20, 0.927), (40, 0.975)];

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// The epoch counts, each trained as its own run.
    pub epochs: Vec<usize>,
    /// The sweep's folder: runs go in `epochs-<N>/`, the table beside them.
    pub out_dir: PathBuf,
    /// Evaluate each run's best checkpoint on the test split (reporting only).
    pub evaluate_test: bool,
    /// Device for the test evaluation.
    pub eval_device: DeviceKind,
    pub progress: bool,
    /// The command line, recorded in each new run's provenance.
    pub command_line: Vec<String>,
}

/// One row of Table 2.
#[derive(Debug, Clone, PartialEq)]
pub struct Table2Row {
    pub epochs: usize,
    /// The run's folder name under the sweep folder.
    pub run: String,
    pub final_val_top1: f64,
    pub best_val_top1: f64,
    /// After how many epochs the best validation top-1 was reached.
    pub best_after_epochs: usize,
    pub min_train_loss: f64,
    pub min_val_loss: f64,
    pub train_seconds: f64,
    /// The test top-1 of the checkpoint chosen on validation, when evaluated.
    pub test_top1: Option<Estimate>,
    /// Validation top-1 of the sweep's longest run after this many epochs: the same
    /// epoch count read off one long schedule.
    pub longest_run_val_top1: Option<f64>,
    /// The paper's figure at this epoch count, if it has one.
    pub paper_top1: Option<f64>,
}

/// Trains (or reuses) one run per epoch count, then builds and writes Table 2 into the
/// sweep folder: `table2.parquet`, `table2.csv`, `table2.md` and `table2.png`.
pub fn sweep_epochs(config: &TrainConfig, options: &SweepOptions) -> Result<Vec<Table2Row>> {
    let epochs = checked_epochs(&options.epochs)?;
    if config.train.precision != Precision::F32 {
        // burn fixes a device's float type once per process, and a sweep trains every
        // run in one process.
        return Err(Error::Options(format!(
            "a sweep trains in float32 only (the config says {}): train half-precision \
             runs one per `album train`",
            config.train.precision
        )));
    }
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|e| Error::io("create folder", &options.out_dir, e))?;
    let mut runs = Vec::new();
    for &count in &epochs {
        runs.push((count, ensure_run(config, count, options)?));
    }
    let rows = table2_rows(&runs, options)?;
    write_table2(&options.out_dir, &rows, &runs, config)?;
    Ok(rows)
}

/// The run folder of one epoch count, under the sweep folder.
pub fn run_dir_name(epochs: usize) -> String {
    format!("epochs-{epochs:02}")
}

fn checked_epochs(epochs: &[usize]) -> Result<Vec<usize>> {
    let mut sorted = epochs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() || sorted[0] == 0 || sorted.len() != epochs.len() {
        return Err(Error::Options(format!(
            "epoch counts {epochs:?}: give one or more distinct counts above zero, e.g. 5,10,20,40"
        )));
    }
    Ok(sorted)
}

/// Trains the run of `epochs` epochs unless it is already complete; continues it if a
/// previous sweep was cut short inside it.
fn ensure_run(config: &TrainConfig, epochs: usize, options: &SweepOptions) -> Result<PathBuf> {
    let mut wanted = config.clone();
    wanted.train.epochs = epochs;
    let name = run_dir_name(epochs);
    let run_dir = options.out_dir.join(&name);
    let mut run_options = RunOptions {
        out_root: options.out_dir.clone(),
        run_id: Some(name),
        resume: None,
        max_steps: None,
        time_limit: None,
        progress: options.progress,
        command_line: options.command_line.clone(),
    };
    if run_dir.exists() {
        check_same_config(&run_dir, &wanted)?;
        if read_summary(&run_dir)
            .ok()
            .is_some_and(|s| finished(&s, epochs))
        {
            eprintln!("{}: already trained, reused", run_dir.display());
            return Ok(run_dir);
        }
        eprintln!("{}: continuing from its last checkpoint", run_dir.display());
        run_options.run_id = None;
        run_options.resume = Some(run_dir.clone());
    } else {
        eprintln!("{}: training {epochs} epochs", run_dir.display());
    }
    let summary = training::train(wanted, &run_options)?;
    if !finished(&summary, epochs) {
        return Err(Error::Run(format!(
            "{} stopped after {} of {epochs} epochs",
            run_dir.display(),
            summary.epochs_done
        )));
    }
    Ok(run_dir)
}

fn finished(summary: &RunSummary, epochs: usize) -> bool {
    !summary.interrupted && (summary.epochs_done >= epochs || summary.stopped_early)
}

/// A folder of the sweep must hold the run this sweep would train, or its figures would
/// be put in the wrong row: anything else is an error, and nothing is overwritten.
fn check_same_config(run_dir: &Path, wanted: &TrainConfig) -> Result<()> {
    let path = run_dir.join("config.toml");
    let saved = TrainConfig::load(&path).map_err(|e| {
        Error::Run(format!(
            "{} is in the sweep's place but is not a run ({e}); move it away",
            run_dir.display()
        ))
    })?;
    let mut wanted = wanted.clone();
    // Training fills the class count in from the data.
    wanted.model.num_classes = saved.model.num_classes;
    if saved != wanted {
        return Err(Error::Run(format!(
            "{} was trained with a different config than this sweep's; choose another \
             --out or move it away (compare {} with the sweep's config)",
            run_dir.display(),
            path.display()
        )));
    }
    Ok(())
}

fn table2_rows(runs: &[(usize, PathBuf)], options: &SweepOptions) -> Result<Vec<Table2Row>> {
    let curves = runs
        .iter()
        .map(|(_, dir)| read_epoch_rows(dir).map_err(Error::from))
        .collect::<Result<Vec<_>>>()?;
    let longest = curves.last().map(Vec::as_slice).unwrap_or_default();
    runs.iter()
        .zip(&curves)
        .map(|((epochs, dir), curve)| {
            let test_top1 = if options.evaluate_test {
                Some(test_top1(dir, options)?)
            } else {
                None
            };
            row(*epochs, dir, curve, longest, test_top1)
        })
        .collect()
}

fn row(
    epochs: usize,
    dir: &Path,
    curve: &[EpochRow],
    longest: &[EpochRow],
    test_top1: Option<Estimate>,
) -> Result<Table2Row> {
    let last = curve
        .last()
        .ok_or_else(|| Error::Run(format!("{} has no epochs", dir.display())))?;
    let best = curve
        .iter()
        .max_by(|a, b| {
            a.val_top1
                .total_cmp(&b.val_top1)
                .then(b.epoch.cmp(&a.epoch))
        })
        .unwrap_or(last);
    let min = |value: fn(&EpochRow) -> f32| {
        curve
            .iter()
            .map(|r| value(r) as f64)
            .fold(f64::INFINITY, f64::min)
    };
    let summary = read_summary(dir).ok();
    Ok(Table2Row {
        epochs,
        run: dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        final_val_top1: last.val_top1 as f64,
        best_val_top1: best.val_top1 as f64,
        best_after_epochs: best.epoch + 1,
        min_train_loss: min(|r| r.train_loss),
        min_val_loss: min(|r| r.val_loss),
        train_seconds: summary.map_or_else(
            || curve.iter().map(|r| r.epoch_seconds).sum(),
            |s| s.seconds,
        ),
        test_top1,
        longest_run_val_top1: longest
            .iter()
            .find(|r| r.epoch + 1 == epochs)
            .map(|r| r.val_top1 as f64),
        paper_top1: PAPER_TABLE2
            .iter()
            .find(|(e, _)| *e == epochs)
            .map(|(_, top1)| *top1),
    })
}

/// Test top-1 of the checkpoint with the best validation top-1, written as the run's
/// `eval-test/` report like `album eval --split test` would.
fn test_top1(run_dir: &Path, options: &SweepOptions) -> Result<Estimate> {
    let outcome = evaluate_run(
        run_dir,
        &EvalRunOptions {
            split: Split::Test,
            checkpoint: CheckpointChoice::Best,
            device: options.eval_device,
            batch_size: 64,
            sources: Vec::new(),
            eval: EvalOptions::default(),
            out_dir: None,
            progress: options.progress,
        },
    )?;
    Ok(outcome.report.top1)
}

fn write_table2(
    dir: &Path,
    rows: &[Table2Row],
    runs: &[(usize, PathBuf)],
    config: &TrainConfig,
) -> Result<Vec<PathBuf>> {
    let parquet = dir.join("table2.parquet");
    let mut df = table2_frame(rows).map_err(|e| Error::table(&parquet, e))?;
    let mut written = vec![
        write_parquet(&mut df, &parquet)?,
        write_csv(&mut df, &dir.join("table2.csv"))?,
    ];
    let chart = dir.join("table2.png");
    draw_table2_chart(&chart, runs, config)?;
    written.push(chart);
    written.push(write_text(
        &dir.join("table2.md"),
        &table2_markdown(rows, config),
    )?);
    Ok(written)
}

fn table2_frame(rows: &[Table2Row]) -> PolarsResult<DataFrame> {
    let f64s = |value: fn(&Table2Row) -> f64| rows.iter().map(value).collect::<Vec<_>>();
    let options = |value: fn(&Table2Row) -> Option<f64>| rows.iter().map(value).collect::<Vec<_>>();
    df!(
        "epochs" => rows.iter().map(|r| r.epochs as u32).collect::<Vec<_>>(),
        "run" => rows.iter().map(|r| r.run.clone()).collect::<Vec<_>>(),
        "final_val_top1" => f64s(|r| r.final_val_top1),
        "best_val_top1" => f64s(|r| r.best_val_top1),
        "best_after_epochs" => rows.iter().map(|r| r.best_after_epochs as u32).collect::<Vec<_>>(),
        "min_train_loss" => f64s(|r| r.min_train_loss),
        "min_val_loss" => f64s(|r| r.min_val_loss),
        "train_seconds" => f64s(|r| r.train_seconds),
        "test_top1" => options(|r| r.test_top1.map(|e| e.value)),
        "test_top1_low" => options(|r| r.test_top1.map(|e| e.low)),
        "test_top1_high" => options(|r| r.test_top1.map(|e| e.high)),
        "longest_run_val_top1" => options(|r| r.longest_run_val_top1),
        "paper_top1" => options(|r| r.paper_top1),
    )
}

fn optional_percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), share)
}

/// The table as Markdown, with what each column means and where the figures come from.
pub fn table2_markdown(rows: &[Table2Row], config: &TrainConfig) -> String {
    let mut text = String::new();
    let model = &config.model;
    let _ = writeln!(
        text,
        "# Table 2: accuracy after N epochs\n\n{} width {} at {} px, {} schedule, batch {}, \
         seed {}; {} photos per class per split{}.\n",
        model.name,
        model.width,
        config.data.crop,
        format!("{:?}", config.train.schedule).to_lowercase(),
        config.train.batch_size,
        config.train.seed,
        if config.data.images_per_class == 0 {
            "all".to_owned()
        } else {
            config.data.images_per_class.to_string()
        },
        if config.data.images_per_class == 0 {
            ""
        } else {
            " (spread evenly over each class)"
        },
    );
    text.push_str(
        "| epochs | val top-1 (last) | val top-1 (best, after) | min train loss | min val loss \
         | test top-1 (95 % CI) | longest run at N | paper | train time |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let test = r.test_top1.as_ref().map_or_else(|| "–".into(), percent);
        let _ = writeln!(
            text,
            "| {} | {} | {} ({}) | {:.3} | {:.3} | {} | {} | {} | {} |",
            r.epochs,
            share(r.final_val_top1),
            share(r.best_val_top1),
            r.best_after_epochs,
            r.min_train_loss,
            r.min_val_loss,
            test,
            optional_percent(r.longest_run_val_top1),
            optional_percent(r.paper_top1),
            duration(r.train_seconds),
        );
    }
    text.push_str(
        "\nEach row is its own run (`epochs-NN/`) with the schedule stretched over its length; \
         \"longest run at N\" reads the longest run's validation top-1 after N epochs instead, \
         where that run's learning rate is still high, so the two readings differ. The \
         training loss is label-smoothed, the validation loss is not. The test top-1 is the \
         checkpoint chosen on validation, evaluated once for reporting; nothing was chosen on it. \
         The paper's figures are SE-ResNeXt-152 on its own 30,000 photos at 112 px on a GPU: \
         compare the trend, not the values.\n\n![validation top-1 per epoch of each run](table2.png)\n",
    );
    text
}

const CHART_SIZE: (u32, u32) = (1000, 640);

/// Validation top-1 per epoch of every run, overlaid, with the paper's points.
fn draw_table2_chart(path: &Path, runs: &[(usize, PathBuf)], config: &TrainConfig) -> Result<()> {
    let curves = runs
        .iter()
        .map(|(epochs, dir)| Ok((*epochs, read_epoch_rows(dir)?)))
        .collect::<Result<Vec<_>>>()?;
    let max_epochs = runs.iter().map(|(e, _)| *e).max().unwrap_or(1).max(1);
    let title = format!(
        "Table 2 · {} width {} at {} px: validation top-1 per epoch",
        config.model.name, config.model.width, config.data.crop
    );
    charts::draw_png(path, CHART_SIZE, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..max_epochs as f64 + 0.5, 0f64..100f64)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("top-1 (%)")
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()?;
        for (i, (epochs, curve)) in curves.iter().enumerate() {
            let colour = charts::colour(i);
            let points: Vec<(f64, f64)> = curve
                .iter()
                .map(|r| ((r.epoch + 1) as f64, r.val_top1 as f64 * 100.0))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(format!("{epochs}-epoch run"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(points.last().map(|&p| Circle::new(p, 5, colour.filled())))?;
        }
        chart
            .draw_series(
                PAPER_TABLE2
                    .iter()
                    .filter(|(e, _)| *e <= max_epochs)
                    .map(|&(e, top1)| {
                        TriangleMarker::new((e as f64, top1 * 100.0), 7, GREY.filled())
                    }),
            )?
            .label("paper (SE-ResNeXt-152, its data, GPU)")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, GREY.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, val_top1: f32, train_loss: f32, val_loss: f32) -> EpochRow {
        EpochRow {
            epoch,
            train_loss,
            train_top1: 0.0,
            val_loss,
            val_top1,
            val_top2: 0.0,
            val_top5: 1.0,
            lr: 0.1,
            epoch_seconds: 2.0,
            train_images_per_s: 100.0,
            val_images_per_s: 300.0,
            nonfinite_steps: 0,
            ema_val_loss: None,
            ema_val_top1: None,
        }
    }

    #[test]
    fn epoch_counts_must_be_distinct_and_positive_and_come_out_sorted() {
        assert_eq!(checked_epochs(&[20, 5, 10]).unwrap(), vec![5, 10, 20]);
        for bad in [&[][..], &[0, 5][..], &[5, 5][..]] {
            assert!(
                matches!(checked_epochs(bad), Err(Error::Options(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_row_reads_last_best_and_minima_and_the_longest_run_at_the_same_epoch() {
        let dir = Path::new("sweep/epochs-05");
        let curve = [
            epoch(0, 0.5, 1.2, 0.9),
            epoch(1, 0.7, 1.0, 0.7),
            epoch(2, 0.7, 0.9, 0.8),
        ];
        let longest = [
            epoch(0, 0.4, 1.3, 1.0),
            epoch(1, 0.45, 1.2, 1.1),
            epoch(2, 0.6, 1.1, 0.9),
        ];
        let row = row(3, dir, &curve, &longest, None).unwrap();
        assert_eq!(row.run, "epochs-05");
        assert_eq!(row.final_val_top1, 0.7f32 as f64);
        assert_eq!(
            (row.best_val_top1, row.best_after_epochs),
            (0.7f32 as f64, 2)
        );
        assert_eq!(row.min_train_loss, 0.9f32 as f64);
        assert_eq!(row.min_val_loss, 0.7f32 as f64);
        assert_eq!(row.longest_run_val_top1, Some(0.6f32 as f64));
        assert_eq!(row.train_seconds, 6.0);
        assert_eq!(row.paper_top1, None);
        let five = super::row(5, dir, &curve, &longest, None).unwrap();
        assert_eq!(
            (five.paper_top1, five.longest_run_val_top1),
            (Some(0.797), None)
        );
    }

    #[test]
    fn a_run_without_epochs_is_an_error_not_a_row_of_zeros() {
        let err = row(5, Path::new("empty"), &[], &[], None).unwrap_err();
        assert!(err.to_string().contains("has no epochs"), "{err}");
    }

    #[test]
    fn a_half_precision_config_is_refused_before_anything_is_trained() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = TrainConfig::default();
        config.train.precision = Precision::Bf16;
        let options = SweepOptions {
            epochs: vec![1],
            out_dir: dir.path().join("sweep"),
            evaluate_test: false,
            eval_device: DeviceKind::Flex,
            progress: false,
            command_line: vec![],
        };
        assert!(matches!(
            sweep_epochs(&config, &options),
            Err(Error::Options(_))
        ));
        assert!(!options.out_dir.exists());
    }
}
