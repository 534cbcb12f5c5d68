//! A run's learning curves as PNG: `loss.png` (every batch's loss, faint, with the
//! epoch means of training and validation loss on top) and `accuracy.png` (training
//! top-1 and validation top-1 and top-2 per epoch, and the EMA weights' validation
//! top-1 when the run keeps an EMA). Redrawn after every epoch, so a
//! person can watch a run by reopening them.

use std::path::Path;

use plotters::prelude::*;

use crate::metrics::{BatchRow, EpochRow};
use crate::{Error, Result};

const SIZE: (u32, u32) = (1000, 600);
const FONT: &str = "sans-serif";
/// Okabe–Ito colours, safe for colour-blind readers.
const TRAIN: RGBColor = RGBColor(0, 114, 178);
const VAL: RGBColor = RGBColor(230, 159, 0);
const VAL2: RGBColor = RGBColor(0, 158, 115);
const EMA: RGBColor = RGBColor(204, 121, 167);

type Coords =
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>;
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Coords>;

/// Draws both charts into `dir`.
pub fn draw_curves(
    dir: &Path,
    title: &str,
    batches: &[BatchRow],
    epochs: &[EpochRow],
) -> Result<()> {
    let steps_per_epoch = steps_per_epoch(batches);
    draw_loss(
        &dir.join("loss.png"),
        title,
        batches,
        epochs,
        steps_per_epoch,
    )?;
    draw_accuracy(&dir.join("accuracy.png"), title, epochs)
}

fn steps_per_epoch(batches: &[BatchRow]) -> f64 {
    let first_epoch = batches.first().map_or(0, |b| b.epoch);
    batches
        .iter()
        .filter(|b| b.epoch == first_epoch)
        .count()
        .max(1) as f64
}

fn chart_error(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::io("draw", path, error)
}

fn draw_loss(
    path: &Path,
    title: &str,
    batches: &[BatchRow],
    epochs: &[EpochRow],
    steps_per_epoch: f64,
) -> Result<()> {
    let finite = |v: f32| v.is_finite().then_some(f64::from(v));
    let batch_points: Vec<(f64, f64)> = batches
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some(((i as f64 + 1.0) / steps_per_epoch, finite(b.loss)?)))
        .collect();
    let train: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| Some((e.epoch as f64 + 1.0, finite(e.train_loss)?)))
        .collect();
    let val: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| Some((e.epoch as f64 + 1.0, finite(e.val_loss)?)))
        .collect();
    let y_max = batch_points
        .iter()
        .chain(&train)
        .chain(&val)
        .map(|p| p.1)
        .fold(0.1, f64::max)
        * 1.05;
    let x_max = (epochs.len().max(1) as f64).max(batch_points.last().map_or(1.0, |p| p.0));
    album_dataset::chart_png::write_png(path, SIZE, |root| {
        let mut chart = base_chart(root, &format!("{title}: loss"), x_max, y_max, "loss")?;
        chart
            .draw_series(LineSeries::new(batch_points, TRAIN.mix(0.25)))?
            .label("batch loss (train)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], TRAIN.mix(0.25)));
        series(
            &mut chart,
            train,
            TRAIN,
            "train loss (epoch mean, label-smoothed)",
        )?;
        series(&mut chart, val, VAL, "validation loss (no label smoothing)")?;
        // Losses fall, so the upper right is empty once training is under way.
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
    .map_err(|e| chart_error(path, e))
}

fn draw_accuracy(path: &Path, title: &str, epochs: &[EpochRow]) -> Result<()> {
    let points = |f: fn(&EpochRow) -> f32| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .map(|e| (e.epoch as f64 + 1.0, f64::from(f(e)) * 100.0))
            .collect()
    };
    let x_max = epochs.len().max(1) as f64;
    let ema: Vec<(f64, f64)> = epochs
        .iter()
        .filter_map(|e| Some((e.epoch as f64 + 1.0, f64::from(e.ema_val_top1?) * 100.0)))
        .collect();
    album_dataset::chart_png::write_png(path, SIZE, |root| {
        let mut chart = base_chart(
            root,
            &format!("{title}: accuracy"),
            x_max,
            100.0,
            "accuracy (%)",
        )?;
        series(&mut chart, points(|e| e.train_top1), TRAIN, "train top-1")?;
        series(&mut chart, points(|e| e.val_top1), VAL, "validation top-1")?;
        series(&mut chart, points(|e| e.val_top2), VAL2, "validation top-2")?;
        if !ema.is_empty() {
            series(&mut chart, ema, EMA, "validation top-1, EMA weights")?;
        }
        // Accuracies rise, so the lower right is empty once training is under way.
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
    .map_err(|e| chart_error(path, e))
}

type DrawResult<T> = std::result::Result<
    T,
    DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>,
>;

fn base_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
    x_max: f64,
    y_max: f64,
    y_label: &str,
) -> DrawResult<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        // half an epoch of room after the last, so its marker is not cut in half
        .build_cartesian_2d(0.0..x_max + 0.5, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .x_label_formatter(&|v| epoch_tick(*v))
        .y_label_formatter(&|v| plain_number(*v))
        .label_style((FONT, 16))
        .draw()?;
    Ok(chart)
}

/// Epochs are counted from 1 and labelled only at whole numbers ("5", never "5.0" or "2.5").
fn epoch_tick(value: f64) -> String {
    if (value - value.round()).abs() < 1e-6 && value > 0.5 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}

/// A number without trailing zeros: "100", "0.25", "1.5".
fn plain_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coords>,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    label: &str,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = colour.stroke_width(3);
    chart
        .draw_series(LineSeries::new(points.clone(), style))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    chart.draw_series(
        points
            .into_iter()
            .map(|p| Circle::new(p, 4, colour.filled())),
    )?;
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Coords>,
    position: SeriesLabelPosition,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .position(position)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_axes_say_5_not_5_point_0_and_no_half_epochs() {
        assert_eq!(epoch_tick(5.0), "5");
        assert_eq!(epoch_tick(2.5), "");
        assert_eq!(epoch_tick(0.0), "");
        assert_eq!(plain_number(100.0), "100");
        assert_eq!(plain_number(0.25), "0.25");
        assert_eq!(plain_number(1.5), "1.5");
    }
}
