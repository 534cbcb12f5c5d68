//! The comparison's charts, in the style of the evaluation report (font "sans-serif",
//! Okabe–Ito colours, one colour per run throughout), each written whole or not at all:
//!
//! - `accuracy-vs-macs.png`: validation top-1 against multiply–accumulates per image
//!   (log scale), each run a labelled point with its 95 % interval as an error bar;
//! - `accuracy-vs-time.png`: the same against training time, with the budget, if any, as
//!   a dashed line;
//! - `learning-curves.png`: validation top-1 per epoch of every run (top panel), and
//!   validation loss (solid) and training loss (dashed, label-smoothed) per epoch
//!   (bottom panel).
//!
//! The winner is ringed; a run over the budget is drawn hollow.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::runs::RunFigures;
use super::winner::Decision;
use crate::Result;
use crate::charts::{Area, DrawResult, FONT, GREY, colour, draw_png};
use crate::format::{count, duration};

const SCATTER_SIZE: (u32, u32) = (1000, 700);
const CURVES_SIZE: (u32, u32) = (1000, 1100);

/// One run as a point of a scatter chart.
struct Point {
    x: f64,
    /// Top-1 and its interval, in percent.
    y: f64,
    low: f64,
    high: f64,
    label: String,
    colour: RGBColor,
    winner: bool,
    over_budget: bool,
}

fn points(runs: &[RunFigures], decision: &Decision, x: fn(&RunFigures) -> f64) -> Vec<Point> {
    runs.iter()
        .enumerate()
        .map(|(i, r)| Point {
            x: x(r),
            y: r.val_top1.value * 100.0,
            low: r.val_top1.low * 100.0,
            high: r.val_top1.high * 100.0,
            label: run_label(r),
            colour: colour(i),
            winner: i == decision.winner,
            over_budget: decision.over_budget.contains(&i),
        })
        .collect()
}

/// Draws `accuracy-vs-macs.png`.
pub(crate) fn draw_accuracy_vs_macs(
    path: &Path,
    runs: &[RunFigures],
    decision: &Decision,
    title: &str,
) -> Result<()> {
    let points = points(runs, decision, |r| r.macs.max(1) as f64);
    draw_png(path, SCATTER_SIZE, |root| {
        let (lo, hi) = log_range(points.iter().map(|p| p.x));
        let body = heading(
            root,
            &format!("{title}: validation top-1 vs multiply–accumulates"),
        )?;
        let mut chart = ChartBuilder::on(&body)
            .margin(20)
            .margin_right(44)
            .x_label_area_size(52)
            .y_label_area_size(64)
            .build_cartesian_2d((lo..hi).log_scale(), y_range(&points))?;
        chart
            .configure_mesh()
            .x_desc("multiply–accumulates per image (log scale)")
            .y_desc("validation top-1 (%)")
            .y_label_formatter(&|v| plain_tick(*v))
            .x_label_formatter(&|v| decade_tick(*v))
            .light_line_style(WHITE)
            .label_style((FONT, 16))
            .draw()?;
        draw_points(&mut chart, &points)
    })
}

/// Draws `accuracy-vs-time.png`.
pub(crate) fn draw_accuracy_vs_time(
    path: &Path,
    runs: &[RunFigures],
    decision: &Decision,
    title: &str,
) -> Result<()> {
    let mut points = points(runs, decision, |r| r.train_seconds);
    let longest = points
        .iter()
        .map(|p| p.x)
        .chain(decision.budget_seconds)
        .fold(1.0, f64::max);
    let (divisor, unit) = time_unit(longest);
    for p in &mut points {
        p.x /= divisor;
    }
    let budget = decision.budget_seconds.map(|b| (b / divisor, b));
    draw_png(path, SCATTER_SIZE, |root| {
        let x_max = longest / divisor * 1.2;
        let body = heading(root, &format!("{title}: validation top-1 vs training time"))?;
        let mut chart = ChartBuilder::on(&body)
            .margin(20)
            .margin_right(44)
            .x_label_area_size(52)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, y_range(&points))?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "training time in {unit}, validation included (wall clock)"
            ))
            .y_desc("validation top-1 (%)")
            .x_label_formatter(&|v| plain_tick(*v))
            .y_label_formatter(&|v| plain_tick(*v))
            .light_line_style(WHITE)
            .label_style((FONT, 16))
            .draw()?;
        if let Some((x, seconds)) = budget {
            let (y0, y1) = (chart.y_range().start, chart.y_range().end);
            let style = GREY.stroke_width(2);
            chart.draw_series(DashedLineSeries::new([(x, y0), (x, y1)], 8, 6, style))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, y0))
                    + Text::new(
                        format!("budget {}", duration(seconds)),
                        (6, -8),
                        text_style(15.0, GREY, HPos::Left, VPos::Bottom),
                    ),
            ))?;
        }
        draw_points(&mut chart, &points)
    })
}

type Scatter<'a, 'b, X> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, RangedCoordf64>>;

/// Error bars, markers and labels; each label goes right of its marker, moved up or down
/// until it covers no other marker or label ([`place_labels`]).
fn draw_points<X>(chart: &mut Scatter<'_, '_, X>, points: &[Point]) -> DrawResult<()>
where
    X: Ranged<ValueType = f64>,
{
    // Error bars by hand (plotters' ErrorBar needs a feature this workspace leaves off):
    // the interval as a line, with a cap of fixed pixel width at each end.
    for p in points
        .iter()
        .filter(|p| p.low.is_finite() && p.high.is_finite())
    {
        let style = p.colour.stroke_width(2);
        chart.draw_series(std::iter::once(PathElement::new(
            [(p.x, p.low), (p.x, p.high)],
            style,
        )))?;
        chart
            .draw_series([p.low, p.high].map(|y| {
                EmptyElement::at((p.x, y)) + PathElement::new([(-7, 0), (7, 0)], style)
            }))?;
    }
    let style = text_style(16.0, BLACK, HPos::Left, VPos::Center);
    let labels: Vec<String> = points
        .iter()
        .map(|p| {
            // "(winner)" only where there was a choice
            if p.winner && points.len() > 1 {
                format!("{} (winner)", p.label)
            } else {
                p.label.clone()
            }
        })
        .collect();
    let anchors: Vec<(i32, i32)> = points
        .iter()
        .map(|p| chart.backend_coord(&(p.x, p.y)))
        .collect();
    let sizes = labels
        .iter()
        .map(|label| chart.plotting_area().estimate_text_size(label, &style))
        .collect::<Result<Vec<_>, _>>()?;
    let right_edge = chart.plotting_area().get_pixel_range().0.end + RIGHT_MARGIN_USED;
    let spots = place_labels(&anchors, &sizes, right_edge);
    for ((p, label), spot) in points.iter().zip(labels).zip(spots) {
        let marker = if p.over_budget {
            Circle::new((0, 0), 7, p.colour.stroke_width(2))
        } else {
            Circle::new((0, 0), 7, p.colour.filled())
        };
        // Every point gets a ring so the elements have one type; only the winner's shows.
        let ring = Circle::new(
            (0, 0),
            13,
            BLACK.mix(if p.winner { 1.0 } else { 0.0 }).stroke_width(3),
        );
        let text = if spot.left {
            let style = text_style(16.0, BLACK, HPos::Right, VPos::Center);
            Text::new(label, (-LABEL_GAP, spot.dy), style)
        } else {
            Text::new(label, (LABEL_GAP, spot.dy), style.clone())
        };
        chart.draw_series(std::iter::once(
            EmptyElement::at((p.x, p.y)) + ring + marker + text,
        ))?;
    }
    Ok(())
}

/// Pixels between a marker's centre and its label.
const LABEL_GAP: i32 = 16;

/// Pixels right of the plotting area that a label may still use (the chart's right margin).
const RIGHT_MARGIN_USED: i32 = 36;

/// Where a point's label goes: left or right of the marker, and moved up or down by `dy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LabelSpot {
    left: bool,
    dy: i32,
}

/// Each label's spot: right of its point, or left of it where it would run past
/// `right_edge`; then the first vertical offset of 0, +20, −20, +40, −40, … at which the
/// label's box overlaps no marker and no label placed before it (0 when none within
/// ±200 px is free).
fn place_labels(anchors: &[(i32, i32)], sizes: &[(u32, u32)], right_edge: i32) -> Vec<LabelSpot> {
    type PixelBox = (i32, i32, i32, i32);
    let overlap = |a: &PixelBox, b: &PixelBox| a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3;
    let markers: Vec<PixelBox> = anchors
        .iter()
        .map(|&(x, y)| (x - 14, y - 14, x + 14, y + 14))
        .collect();
    let mut placed: Vec<PixelBox> = Vec::new();
    let mut offsets = Vec::with_capacity(anchors.len());
    for (&(x, y), &(width, height)) in anchors.iter().zip(sizes) {
        let (width, height) = (width as i32, height as i32);
        let left = x + LABEL_GAP + width > right_edge;
        let label_box = |dy: i32| {
            let top = y + dy - height / 2;
            if left {
                (x - LABEL_GAP - width, top, x - LABEL_GAP, top + height)
            } else {
                (x + LABEL_GAP, top, x + LABEL_GAP + width, top + height)
            }
        };
        let free = |b: &PixelBox| !markers.iter().chain(&placed).any(|other| overlap(b, other));
        let dy = (0..=20)
            .map(|k| {
                if k % 2 == 1 {
                    (k + 1) / 2 * 20
                } else {
                    -(k / 2) * 20
                }
            })
            .find(|&dy| free(&label_box(dy)))
            .unwrap_or(0);
        placed.push(label_box(dy));
        offsets.push(LabelSpot { left, dy });
    }
    offsets
}

/// The largest font size up to `max` at which `text` fits in `width` pixels, taking a
/// sans-serif character as about 0.55 of the size wide: a long report title shrinks
/// instead of running off both edges.
fn fitted_font_size(text: &str, width: u32, max: f64) -> f64 {
    let chars = text.chars().count().max(1) as f64;
    (0.94 * width as f64 / (0.55 * chars)).clamp(10.0, max)
}

/// The title and, under it, the key of the markers; returns the area below them.
fn heading<'a>(root: &Area<'a>, title: &str) -> DrawResult<Area<'a>> {
    let (top, body) = root.split_vertically(76);
    let centre = SCATTER_SIZE.0 as i32 / 2;
    top.draw_text(
        title,
        &text_style(
            fitted_font_size(title, SCATTER_SIZE.0, 24.0),
            BLACK,
            HPos::Center,
            VPos::Top,
        ),
        (centre, 14),
    )?;
    top.draw_text(
        "bars: 95 % bootstrap interval over validation photos · ring: the winner · hollow: \
         over the time budget",
        &text_style(15.0, GREY, HPos::Center, VPos::Top),
        (centre, 48),
    )?;
    Ok(body)
}

/// Draws `learning-curves.png`.
pub(crate) fn draw_learning_curves(path: &Path, runs: &[RunFigures], title: &str) -> Result<()> {
    draw_png(path, CURVES_SIZE, |root| {
        let (upper, lower) = root.split_vertically(CURVES_SIZE.1 / 2);
        accuracy_panel(&upper, runs, title)?;
        loss_panel(&lower, runs)
    })
}

fn epochs_axis(runs: &[RunFigures]) -> f64 {
    runs.iter()
        .flat_map(|r| r.curve.iter().map(|p| p.epoch + 1))
        .max()
        .unwrap_or(1) as f64
        + 0.5
}

fn accuracy_panel(area: &Area<'_>, runs: &[RunFigures], title: &str) -> DrawResult<()> {
    let caption = format!("{title}: learning curves");
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.curve.iter().map(|p| p.val_top1 * 100.0))
        .filter(|v| v.is_finite())
        .collect();
    let low = values.iter().copied().fold(100.0, f64::min);
    let y_low = ((low - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            &caption,
            (
                FONT,
                fitted_font_size(&caption, area.dim_in_pixel().0, 24.0),
            ),
        )
        .margin(20)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5..epochs_axis(runs), y_low..100.0)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("validation top-1 (%)")
        .x_label_formatter(&|v| whole_number(*v))
        .y_label_formatter(&|v| whole_number(*v))
        .label_style((FONT, 16))
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        let style = colour(i).stroke_width(3);
        let points: Vec<(f64, f64)> = run
            .curve
            .iter()
            .filter(|p| p.val_top1.is_finite())
            .map(|p| (p.epoch as f64 + 1.0, p.val_top1 * 100.0))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), style))?
            .label(run_label(run))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, colour(i).filled())),
        )?;
    }
    // Accuracies rise, so the lower right is empty once training is under way.
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
}

fn loss_panel(area: &Area<'_>, runs: &[RunFigures]) -> DrawResult<()> {
    // Positive values only: the axis is logarithmic, so that one run's first-epoch spike
    // (GoogLeNet's validation loss can start in the thousands) does not flatten the rest.
    let finite = |v: f64| (v.is_finite() && v > 0.0).then_some(v);
    let losses = runs
        .iter()
        .flat_map(|r| r.curve.iter())
        .flat_map(|p| [finite(p.train_loss), finite(p.val_loss)])
        .flatten();
    let (y_low, y_high) = loss_range(losses);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "loss: validation solid, training dashed (log scale)",
            (FONT, 20),
        )
        .margin(20)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5..epochs_axis(runs), (y_low..y_high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .x_label_formatter(&|v| whole_number(*v))
        .y_label_formatter(&|v| loss_tick(*v))
        .label_style((FONT, 16))
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        let series = |f: fn(&super::runs::CurvePoint) -> f64| -> Vec<(f64, f64)> {
            run.curve
                .iter()
                .filter_map(|p| Some((p.epoch as f64 + 1.0, finite(f(p))?)))
                .collect()
        };
        let (val, train) = (series(|p| p.val_loss), series(|p| p.train_loss));
        let style = colour(i).stroke_width(3);
        chart.draw_series(LineSeries::new(val.clone(), style))?;
        chart.draw_series(
            val.into_iter()
                .map(|p| Circle::new(p, 4, colour(i).filled())),
        )?;
        chart.draw_series(DashedLineSeries::new(
            train,
            10,
            6,
            colour(i).stroke_width(2),
        ))?;
    }
    let solid = BLACK.stroke_width(3);
    let dashed = BLACK.stroke_width(2);
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("validation loss (no label smoothing)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], solid));
    chart
        .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("training loss (label-smoothed; colours as above)")
        .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 20, y)], 5, 3, dashed));
    // Losses fall, so the upper right is empty once training is under way.
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
}

fn text_style(size: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

/// An epoch axis labels whole epochs only.
/// A run's name in legends and point labels: its model and width, with the run folder's
/// name after it where that says something the model does not (an ablation, a sweep's
/// "epochs-10").
fn run_label(run: &RunFigures) -> String {
    model_label(&run.model, run.width, &run.name)
}

fn model_label(model: &str, width: f32, run_name: &str) -> String {
    let width = if (width - 1.0).abs() < 1e-6 {
        String::new()
    } else {
        format!(" ×{width}")
    };
    if model.starts_with(run_name) {
        format!("{model}{width}")
    } else {
        format!("{model}{width} ({run_name})")
    }
}

/// The loss axis' range on a log scale: from the power of ten below the lowest loss
/// (plotters places a log axis' ticks from the first power of ten in range, so a range
/// starting at 0.17 would have no labelled tick under 1) to a little above the highest.
fn loss_range(losses: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = losses.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        return (0.1, 10.0); // no loss to draw
    }
    let floor = 10f64.powf(low.log10().floor());
    // Just under it: plotters finds its first tick as 10^ceil(log10(start)), and
    // log10(0.1) computes as -0.999…, which would round up to 1.
    (floor * 0.99, (high * 1.25).max(floor * 2.0))
}

/// A log loss axis' tick label: 1, 2 and 5 times a power of ten, written as plainly as
/// possible ("0.2", "5", "2000"); the other ticks stay unlabelled.
fn loss_tick(value: f64) -> String {
    if !(value.is_finite() && value > 0.0) {
        return String::new();
    }
    let power = value.log10().floor();
    let mantissa = value / 10f64.powf(power);
    if ![1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 0.05)
    {
        return String::new();
    }
    let decimals = (-power).max(0.0) as usize;
    format!("{value:.decimals$}")
}

/// A tick label with one decimal only where the tick needs it ("92", "92.5").
fn plain_tick(value: f64) -> String {
    let text = format!("{value:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}

fn whole_number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-6 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}

/// Seconds, minutes or hours, whichever keeps the axis' numbers small.
fn time_unit(longest_seconds: f64) -> (f64, &'static str) {
    if longest_seconds > 5.0 * 3600.0 {
        (3600.0, "hours")
    } else if longest_seconds > 300.0 {
        (60.0, "minutes")
    } else {
        (1.0, "seconds")
    }
}

/// A log axis' tick label: 1, 2 and 5 times a power of ten ("20 M"); the other ticks
/// stay unlabelled so the labels do not run into each other.
fn decade_tick(value: f64) -> String {
    if !(value.is_finite() && value > 0.0) {
        return String::new();
    }
    let mantissa = value / 10f64.powf(value.log10().floor());
    if [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 0.05)
    {
        count(value).replace(".00", "").replace(".0 ", " ")
    } else {
        String::new()
    }
}

/// A log-scale range around `values` from one power of ten to another (so the axis has
/// labelled ticks), with room for labels on the right.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if hi == 0.0 {
        return (1.0, 10.0);
    }
    let decade = |v: f64, round: fn(f64) -> f64| 10f64.powf(round(v.log10()));
    (decade(lo / 1.5, f64::floor), decade(hi * 2.5, f64::ceil))
}

/// A percentage range around every interval, padded, within 0–100.
fn y_range(points: &[Point]) -> std::ops::Range<f64> {
    let (lo, hi) = points
        .iter()
        .flat_map(|p| [p.low, p.y, p.high])
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..100.0;
    }
    let pad = ((hi - lo) * 0.25).max(2.0);
    (lo - pad).max(0.0)..(hi + pad).min(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_epoch_loss_spike_does_not_flatten_the_loss_axis() {
        // GoogLeNet's epoch-1 validation loss of ~2,800 beside losses near 0.3: on the
        // log axis 0.3 and 0.6 still lie a tenth of the axis apart.
        let (low, high) = loss_range([2800.0, 0.3, 0.6, 1.2].into_iter());
        assert!(low < 0.3 && high > 2800.0);
        assert!(
            (0.098..0.1).contains(&low),
            "{low}: under 0.1, so 0.2 and 0.5 get labels"
        );
        let share = (0.6f64.ln() - 0.3f64.ln()) / (high.ln() - low.ln());
        assert!(share > 0.05, "{share}");
        assert_eq!(loss_range(std::iter::empty()), (0.1, 10.0));
    }

    #[test]
    fn legends_name_the_model_not_just_the_run_folder() {
        assert_eq!(model_label("vgg16-bn", 0.25, "vgg16"), "vgg16-bn ×0.25");
        assert_eq!(
            model_label("se-resnext50", 1.0, "epochs-10"),
            "se-resnext50 (epochs-10)"
        );
        assert_eq!(
            model_label("se-resnext50", 0.25, "se-resnext50-no-se"),
            "se-resnext50 ×0.25 (se-resnext50-no-se)"
        );
    }

    #[test]
    fn plain_ticks_drop_a_needless_decimal() {
        assert_eq!(plain_tick(94.0), "94");
        assert_eq!(plain_tick(92.5), "92.5");
    }

    #[test]
    fn loss_ticks_label_one_two_and_five_plainly() {
        assert_eq!(loss_tick(0.2), "0.2");
        assert_eq!(loss_tick(0.05), "0.05");
        assert_eq!(loss_tick(5.0), "5");
        assert_eq!(loss_tick(2000.0), "2000");
        assert_eq!(loss_tick(0.3), "");
    }

    #[test]
    fn ranges_hold_every_point_with_room_to_spare() {
        assert_eq!(log_range([2.07e7].into_iter()), (1e7, 1e8));
        assert_eq!(decade_tick(2e7), "20 M");
        assert_eq!(decade_tick(1e9), "1 G");
        assert_eq!(decade_tick(3e7), "");
        assert_eq!(time_unit(1568.5), (60.0, "minutes"));
        assert_eq!(log_range([1.1e6, 4e8].into_iter()), (1e5, 1e9));
        assert_eq!(log_range(std::iter::empty()), (1.0, 10.0));
        let point = |y: f64| Point {
            x: 1.0,
            y,
            low: y - 1.0,
            high: y + 1.0,
            label: String::new(),
            colour: colour(0),
            winner: false,
            over_budget: false,
        };
        let range = y_range(&[point(90.0), point(60.0)]);
        assert!(range.start < 59.0 && range.end > 91.0 && range.end <= 100.0);
        let range = y_range(&[point(99.5)]);
        assert!(range.end <= 100.0 && range.start < 98.5);
    }

    #[test]
    fn a_label_that_would_be_clipped_at_the_right_edge_goes_left_of_its_point() {
        let spots = place_labels(&[(900, 300), (200, 300)], &[(200, 18), (200, 18)], 980);
        assert_eq!(spots[0], LabelSpot { left: true, dy: 0 });
        assert_eq!(spots[1], LabelSpot { left: false, dy: 0 });
    }

    #[test]
    fn labels_move_off_markers_and_earlier_labels() {
        // two points 40 px apart on one row: the first label would cover the second marker
        let dys = |spots: Vec<LabelSpot>| spots.iter().map(|s| s.dy).collect::<Vec<_>>();
        let offsets = dys(place_labels(
            &[(100, 300), (140, 300)],
            &[(120, 18), (60, 18)],
            1000,
        ));
        assert_ne!(offsets[0], 0);
        assert_eq!(offsets[1], 0);
        // a lone point keeps its label level with it
        assert_eq!(dys(place_labels(&[(100, 300)], &[(80, 18)], 1000)), vec![0]);
        // the same spot twice: the second label moves
        let offsets = dys(place_labels(
            &[(100, 300), (500, 300), (100, 300)],
            &[(80, 18); 3],
            1000,
        ));
        assert_eq!(offsets[..2], [0, 0]);
        assert_ne!(offsets[2], 0);
        assert_eq!(whole_number(2.0), "2");
        assert_eq!(whole_number(2.5), "");
    }

    #[test]
    fn every_run_keeps_its_colour_and_the_palette_cycles() {
        assert_eq!(colour(0), colour(crate::charts::PALETTE.len()));
        assert_ne!(colour(0), colour(1));
    }
}
