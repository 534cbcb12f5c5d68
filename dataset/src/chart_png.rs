//! Charts drawn in memory and encoded as compact PNGs, for every stage that draws one
//! (the split chart here, training curves, evaluation reports).
//!
//! plotters' `BitMapBackend::new(path, …)` saves with the PNG encoder's fast defaults,
//! which made a chart 3–4 times larger than the same pixels need: the committed run
//! directories under experiments/ held about 30 MB of charts, most of the checkout.
//! Drawing into a buffer and encoding with the best compression and adaptive filters
//! keeps every pixel and costs a few milliseconds per chart.

use image::ExtendedColorType;
use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;

/// The drawing area a chart is drawn on.
pub type ChartArea<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// What drawing on a [`ChartArea`] can fail with.
pub type DrawError = DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

/// Draws a chart of `size` (width, height) on white with `draw` and returns it as PNG
/// bytes; the error is a message for the caller's own error type.
pub fn render_png(
    size: (u32, u32),
    draw: impl FnOnce(&ChartArea<'_>) -> Result<(), DrawError>,
) -> Result<Vec<u8>, String> {
    let (width, height) = size;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
            .map_err(|e| e.to_string())?;
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(&pixels, width, height, ExtendedColorType::Rgb8)
        .map_err(|e| format!("encoding PNG: {e}"))?;
    Ok(png)
}

/// [`render_png`], written to `path` (whole or not at all: a hidden sibling renamed into
/// place).
pub fn write_png(
    path: &std::path::Path,
    size: (u32, u32),
    draw: impl FnOnce(&ChartArea<'_>) -> Result<(), DrawError>,
) -> Result<(), String> {
    let png = render_png(size, draw)?;
    let name = path
        .file_name()
        .map_or_else(|| "chart.png".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, &png)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("writing {}: {e}", path.display())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawn_chart_decodes_to_the_same_pixels_it_was_drawn_with() {
        let png = render_png((120, 80), |root| {
            root.draw(&Rectangle::new(
                [(10, 10), (60, 40)],
                RGBColor(213, 94, 0).filled(),
            ))
        })
        .unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (120, 80));
        assert_eq!(image.get_pixel(30, 20).0, [213, 94, 0]);
        assert_eq!(image.get_pixel(100, 70).0, [255, 255, 255]);
    }

    #[test]
    fn a_failed_drawing_is_reported_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        let error = write_png(&path, (100, 100), |_| {
            Err(DrawingAreaErrorKind::LayoutError)
        });
        assert!(error.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
