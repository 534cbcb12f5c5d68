//! `split-stats.png`: photos per class and split (grouped bars, each labelled with its
//! count) beside the short-side size histogram of each split (as a share of the split,
//! so splits of different sizes compare by shape).
//!
//! Text is drawn with plotters' `ttf` backend, which finds "sans-serif" through
//! fontconfig (DejaVu Sans from Debian's `fonts-dejavu-core` on CI).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::HistogramRow;
use super::{Split, SplitRatios};
use crate::{Error, Result};

const SIZE: (u32, u32) = (1500, 640);
const FONT: &str = "sans-serif";

/// Colour-blind-safe colours for train, val and test (Okabe–Ito blue, orange, green).
const SPLIT_COLOURS: [RGBColor; 3] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
];

/// Draws the chart to `path` (PNG).
pub fn draw_split_chart(
    path: &Path,
    classes: &[String],
    counts: &[[usize; 3]],
    histogram: &[HistogramRow],
    ratios: SplitRatios,
) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| Error::Chart {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let total: usize = counts.iter().flatten().sum();
    let title = format!("Train / val / test split of {total} photos (ratio {ratios})");
    crate::chart_png::write_png(path, SIZE, |root| {
        let root = root.titled(&title, (FONT, 30))?;
        let (left, right) = root.split_horizontally(SIZE.0 * 55 / 100);
        draw_class_bars(&left, classes, counts)?;
        draw_size_histogram(&right, histogram)
    })
    .map_err(|e| fail(&e))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult<'a> =
    std::result::Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

/// Grouped bars: one group per class, one bar per split.
fn draw_class_bars<'a>(
    area: &Area<'a>,
    classes: &[String],
    counts: &[[usize; 3]],
) -> DrawResult<'a> {
    let highest = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption("Photos per class", (FONT, 22))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // Head room above the tallest bar keeps the legend clear of the bars.
        .build_cartesian_2d(-0.5f64..(classes.len() as f64 - 0.5), 0f64..highest * 1.3)?;
    let names = classes.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(classes.len())
        .x_label_formatter(&|x| label_at(&names, *x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .y_desc("photos")
        .label_style((FONT, 17))
        .axis_desc_style((FONT, 18))
        .draw()?;
    draw_grouped_bars(
        &mut chart,
        counts.iter().map(|c| c.map(|n| n as f64)).collect(),
        |v| format!("{v:.0}"),
    )?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 17))
        .draw()
}

/// Short-side histogram: one group per size bin, one bar per split, as % of the split.
fn draw_size_histogram<'a>(area: &Area<'a>, histogram: &[HistogramRow]) -> DrawResult<'a> {
    let bins = occupied_bins(histogram);
    let split_totals: Vec<usize> = Split::ALL
        .iter()
        .map(|&s| {
            histogram
                .iter()
                .filter(|r| r.split == s)
                .map(|r| r.count)
                .sum()
        })
        .collect();
    let shares: Vec<[f64; 3]> = bins
        .iter()
        .map(|&(start, _)| {
            Split::ALL.map(|s| {
                let count = histogram
                    .iter()
                    .find(|r| r.split == s && r.bin_start == start)
                    .map_or(0, |r| r.count);
                let total = split_totals[s as usize];
                if total == 0 {
                    0.0
                } else {
                    100.0 * count as f64 / total as f64
                }
            })
        })
        .collect();
    let highest = shares.iter().flatten().copied().fold(1.0, f64::max);
    let labels: Vec<String> = bins.iter().map(|(a, b)| format!("{a}–{b}")).collect();
    let mut chart = ChartBuilder::on(area)
        .caption("Short side (px), share of each split", (FONT, 22))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            -0.5f64..(bins.len() as f64 - 0.5),
            0f64..(highest * 1.12).min(112.0),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bins.len())
        .x_label_formatter(&|x| label_at(&labels, *x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .y_desc("% of the split")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .draw()?;
    draw_grouped_bars(&mut chart, shares, share_label)
}

/// Three bars per group at x = group index, each labelled with `label(value)` on top.
fn draw_grouped_bars<'a>(
    chart: &mut ChartContext<
        'a,
        BitMapBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    values: Vec<[f64; 3]>,
    label: impl Fn(f64) -> String,
) -> DrawResult<'a> {
    const GROUP_WIDTH: f64 = 0.8;
    let bar = GROUP_WIDTH / 3.0;
    let bar_left =
        |group: usize, split: usize| group as f64 - GROUP_WIDTH / 2.0 + split as f64 * bar;
    for split in Split::ALL {
        let s = split as usize;
        let colour = SPLIT_COLOURS[s];
        chart
            .draw_series(values.iter().enumerate().map(|(g, v)| {
                Rectangle::new(
                    [
                        (bar_left(g, s) + 0.01, 0.0),
                        (bar_left(g, s) + bar - 0.01, v[s]),
                    ],
                    colour.filled(),
                )
            }))?
            .label(split.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 7), (x + 16, y + 7)], colour.filled()));
        let on_top =
            TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(values.iter().enumerate().map(|(g, v)| {
            Text::new(
                label(v[s]),
                (bar_left(g, s) + bar / 2.0, v[s]),
                on_top.clone(),
            )
        }))?;
    }
    Ok(())
}

/// A percentage as a bar label: whole numbers, one decimal under 1 %, and none under
/// 0.1 % (such labels would collide over bars too thin to see; the CSV has the counts).
fn share_label(percent: f64) -> String {
    match percent {
        p if p <= 0.0 => "0".to_owned(),
        p if p < 0.1 => String::new(),
        p if p < 1.0 => format!("{p:.1}"),
        p => format!("{p:.0}"),
    }
}

/// The label of the group centred at `x`, or nothing between groups.
fn label_at(labels: &[String], x: f64) -> String {
    let nearest = x.round();
    if (x - nearest).abs() > 1e-6 || nearest < 0.0 {
        return String::new();
    }
    labels.get(nearest as usize).cloned().unwrap_or_default()
}

/// Bins from the first to the last that holds any photo.
fn occupied_bins(histogram: &[HistogramRow]) -> Vec<(u32, u32)> {
    let mut bins: Vec<(u32, u32)> = histogram.iter().map(|r| (r.bin_start, r.bin_end)).collect();
    bins.sort_unstable();
    bins.dedup();
    let occupied = |(start, _): &(u32, u32)| {
        histogram
            .iter()
            .any(|r| r.bin_start == *start && r.count > 0)
    };
    let first = bins.iter().position(occupied).unwrap_or(0);
    let last = bins
        .iter()
        .rposition(occupied)
        .map_or(bins.len(), |i| i + 1);
    bins[first..last.max(first)].to_vec()
}
