//! The report's two charts, as PNG in the training stage's style (font "sans-serif",
//! Okabe–Ito colours, safe for colour-blind readers):
//!
//! - `confusion.png`: the confusion matrix as a heat map, true class down, predicted class
//!   across, each cell giving its count and its share of the true class (row %). The colour
//!   follows the row share, so a small class's mistakes show as clearly as a large one's.
//! - `reliability.png`: the reliability diagram of Guo et al. (2017): per confidence bin,
//!   the accuracy as a bar and the bin's mean confidence as a line across it, the diagonal
//!   of perfect calibration, the photos per bin above each bar, and ECE in the title.
//!
//! Each chart is drawn in memory (`album_dataset::chart_png`), written into a hidden
//! sibling file and renamed into place when whole.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::classification::EvalReport;
use crate::{Error, Result, write_atomically};

pub(crate) const FONT: &str = "sans-serif";
/// Okabe–Ito blue, the dark end of the heat map's ramp and the reliability bars.
pub(crate) const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Okabe–Ito vermillion, the mean confidence of a bin.
pub(crate) const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub(crate) const GREY: RGBColor = RGBColor(90, 90, 90);

/// Okabe–Ito, yellow last (faint on white), black kept for the winner's ring.
pub(crate) const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
];

/// The colour of the `i`-th run, the same in every chart of a report or sweep.
pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const CONFUSION_SIZE: (u32, u32) = (1000, 860);
const RELIABILITY_SIZE: (u32, u32) = (1000, 700);

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
pub(crate) type DrawResult<T> = std::result::Result<
    T,
    DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>,
>;

/// Draws `confusion.png` at `path`.
pub(crate) fn draw_confusion(path: &Path, report: &EvalReport, title: &str) -> Result<()> {
    draw_png(path, CONFUSION_SIZE, |root| {
        confusion_heat_map(root, report, title)
    })
}

/// Draws `reliability.png` at `path`.
pub(crate) fn draw_reliability(path: &Path, report: &EvalReport, title: &str) -> Result<()> {
    draw_png(path, RELIABILITY_SIZE, |root| {
        reliability_diagram(root, report, title)
    })
}

pub(crate) fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> DrawResult<()>,
) -> Result<()> {
    let png =
        album_dataset::chart_png::render_png(size, draw).map_err(|e| Error::chart(path, e))?;
    write_atomically(path, |tmp| {
        std::fs::write(tmp, &png).map_err(|e| Error::io("write", tmp, e))
    })
}

fn text_style(size: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: colour.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

fn centred(size: f64, colour: RGBColor) -> TextStyle<'static> {
    text_style(size, colour, HPos::Center, VPos::Center)
}

/// Where the heat map's parts go, in pixels.
struct Grid {
    left: i32,
    top: i32,
    cell: i32,
    classes: i32,
}

impl Grid {
    fn new(classes: usize) -> Self {
        let (width, height) = (CONFUSION_SIZE.0 as i32, CONFUSION_SIZE.1 as i32);
        let (left, top) = (200, 100);
        // Room on the right for the colour bar, below for the class names.
        let room = (width - left - 150).min(height - top - 110);
        let classes = classes.max(1) as i32;
        Grid {
            left,
            top,
            cell: room / classes,
            classes,
        }
    }

    fn right(&self) -> i32 {
        self.left + self.cell * self.classes
    }

    fn bottom(&self) -> i32 {
        self.top + self.cell * self.classes
    }

    fn corner(&self, row: usize, column: usize) -> (i32, i32) {
        (
            self.left + column as i32 * self.cell,
            self.top + row as i32 * self.cell,
        )
    }

    /// Text size that fits a count and a percentage into a cell.
    fn font(&self) -> f64 {
        f64::from(self.cell / 6).clamp(10.0, 24.0)
    }
}

fn confusion_heat_map(root: &Area<'_>, report: &EvalReport, title: &str) -> DrawResult<()> {
    let grid = Grid::new(report.class_names.len());
    let centre_x = CONFUSION_SIZE.0 as i32 / 2;
    root.draw_text(
        &format!("{title}: confusion matrix"),
        &centred(26.0, BLACK),
        (centre_x, 32),
    )?;
    root.draw_text(
        &format!(
            "{} photos; each cell: count and share of its true class (row %)",
            report.n
        ),
        &centred(16.0, GREY),
        (centre_x, 64),
    )?;
    for (row, counts) in report.confusion.iter().enumerate() {
        let total: u64 = counts.iter().sum();
        for (column, &count) in counts.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            draw_cell(root, &grid, (row, column), count, share)?;
        }
    }
    class_labels(root, &grid, &report.class_names)?;
    colour_bar(root, &grid)
}

fn draw_cell(
    root: &Area<'_>,
    grid: &Grid,
    (row, column): (usize, usize),
    count: u64,
    share: f64,
) -> DrawResult<()> {
    let (x, y) = grid.corner(row, column);
    let fill = ramp(share);
    root.draw(&Rectangle::new(
        [(x, y), (x + grid.cell, y + grid.cell)],
        fill.filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(x, y), (x + grid.cell, y + grid.cell)],
        WHITE.stroke_width(2),
    ))?;
    let ink = ink_on(fill);
    let font = grid.font();
    let (cx, cy) = (x + grid.cell / 2, y + grid.cell / 2);
    let offset = (font * 0.65) as i32;
    root.draw_text(
        &count.to_string(),
        &centred(font * 1.1, ink),
        (cx, cy - offset),
    )?;
    root.draw_text(
        &format!("{:.1} %", share * 100.0),
        &centred(font * 0.85, ink),
        (cx, cy + offset),
    )
}

fn class_labels(root: &Area<'_>, grid: &Grid, names: &[String]) -> DrawResult<()> {
    let size = grid.font().clamp(12.0, 18.0);
    for (i, name) in names.iter().enumerate() {
        let (x, y) = grid.corner(i, i);
        let middle = grid.cell / 2;
        root.draw_text(
            name,
            &text_style(size, BLACK, HPos::Right, VPos::Center),
            (grid.left - 10, y + middle),
        )?;
        root.draw_text(
            name,
            &text_style(size, BLACK, HPos::Center, VPos::Top),
            (x + middle, grid.bottom() + 10),
        )?;
    }
    let axis = |h, v| text_style(18.0, GREY, h, v);
    root.draw_text(
        "predicted class",
        &axis(HPos::Center, VPos::Top),
        ((grid.left + grid.right()) / 2, grid.bottom() + 44),
    )?;
    let vertical = axis(HPos::Center, VPos::Center).transform(FontTransform::Rotate270);
    root.draw_text(
        "true class",
        &vertical,
        (28, (grid.top + grid.bottom()) / 2),
    )
}

/// A vertical bar of the ramp beside the grid, 0 % at the bottom, 100 % at the top.
fn colour_bar(root: &Area<'_>, grid: &Grid) -> DrawResult<()> {
    const STEPS: i32 = 100;
    let (x, width) = (grid.right() + 40, 24);
    let height = grid.bottom() - grid.top;
    for step in 0..STEPS {
        let y0 = grid.bottom() - height * (step + 1) / STEPS;
        let y1 = grid.bottom() - height * step / STEPS;
        let fill = ramp(f64::from(step) / f64::from(STEPS - 1));
        root.draw(&Rectangle::new([(x, y0), (x + width, y1)], fill.filled()))?;
    }
    root.draw(&Rectangle::new(
        [(x, grid.top), (x + width, grid.bottom())],
        GREY.stroke_width(1),
    ))?;
    let label = text_style(14.0, BLACK, HPos::Left, VPos::Center);
    for (share, y) in [
        (0, grid.bottom()),
        (50, (grid.top + grid.bottom()) / 2),
        (100, grid.top),
    ] {
        root.draw_text(&format!("{share} %"), &label, (x + width + 6, y))?;
    }
    root.draw_text(
        "row %",
        &text_style(14.0, GREY, HPos::Center, VPos::Bottom),
        (x + width / 2, grid.top - 8),
    )
}

/// White at 0, Okabe–Ito blue at 1.
fn ramp(share: f64) -> RGBColor {
    let t = share.clamp(0.0, 1.0);
    let mix = |dark: u8| (255.0 + (f64::from(dark) - 255.0) * t).round() as u8;
    RGBColor(mix(BLUE.0), mix(BLUE.1), mix(BLUE.2))
}

/// Black or white, whichever contrasts more with `fill` (WCAG relative luminance).
fn ink_on(fill: RGBColor) -> RGBColor {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * linear(fill.0) + 0.7152 * linear(fill.1) + 0.0722 * linear(fill.2);
    let against_black = (luminance + 0.05) / 0.05;
    let against_white = 1.05 / (luminance + 0.05);
    if against_black >= against_white {
        BLACK
    } else {
        WHITE
    }
}

fn reliability_diagram(root: &Area<'_>, report: &EvalReport, title: &str) -> DrawResult<()> {
    let caption = format!(
        "{title}: reliability, ECE {:.1} % ({} bins)",
        report.ece.value * 100.0,
        report.calibration.len()
    );
    // Headroom above 1 for the counts over the tallest bars.
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..1.0, 0.0..1.08)?;
    chart
        .configure_mesh()
        .x_desc("confidence (top-1 probability)")
        .y_desc("accuracy")
        .light_line_style(WHITE)
        .label_style((FONT, 16))
        .draw()?;
    let filled: Vec<_> = report.calibration.iter().filter(|b| b.count > 0).collect();
    chart
        .draw_series(
            filled
                .iter()
                .map(|b| Rectangle::new([(b.lower, 0.0), (b.upper, b.accuracy)], BLUE.filled())),
        )?
        .label("accuracy per bin")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], BLUE.filled()));
    chart.draw_series(filled.iter().map(|b| {
        Rectangle::new(
            [(b.lower, 0.0), (b.upper, b.accuracy)],
            WHITE.stroke_width(1),
        )
    }))?;
    // A line rather than a second bar: over- and underconfidence both stay visible, above
    // the bar or inside it, without colours mixing.
    let marker = VERMILLION.stroke_width(4);
    chart
        .draw_series(filled.iter().map(|b| {
            PathElement::new(
                [(b.lower, b.mean_confidence), (b.upper, b.mean_confidence)],
                marker,
            )
        }))?
        .label("mean confidence of the bin")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], marker));
    let diagonal = BLACK.stroke_width(2);
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            8,
            6,
            diagonal,
        ))?
        .label("perfect calibration")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], diagonal));
    let count_style = text_style(13.0, GREY, HPos::Center, VPos::Bottom);
    chart
        .draw_series(filled.iter().map(|b| {
            let top = b.accuracy.max(b.mean_confidence);
            Text::new(
                b.count.to_string(),
                ((b.lower + b.upper) / 2.0, top + 0.01),
                count_style.clone(),
            )
        }))?
        .label("photos in the bin")
        .legend(|(x, y)| {
            Text::new(
                "123",
                (x - 4, y),
                text_style(13.0, GREY, HPos::Left, VPos::Center),
            )
        });
    // Low-confidence bins are rare and inaccurate, so the upper left stays empty.
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_runs_from_white_to_blue_and_the_ink_stays_readable() {
        assert_eq!(ramp(0.0), WHITE);
        assert_eq!(ramp(1.0), BLUE);
        assert_eq!(ink_on(WHITE), BLACK);
        assert_eq!(ink_on(RGBColor(0, 0, 0)), WHITE);
        assert_eq!(ink_on(ramp(0.3)), BLACK);
    }

    #[test]
    fn the_grid_fits_the_image() {
        for classes in [1, 5, 30] {
            let grid = Grid::new(classes);
            assert!(grid.cell > 0);
            assert!(grid.right() + 150 <= CONFUSION_SIZE.0 as i32);
            assert!(grid.bottom() + 100 <= CONFUSION_SIZE.1 as i32);
        }
    }
}
