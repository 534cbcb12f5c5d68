//! Each photo made ready for the encoder: cropped to the frame's aspect ratio (the video
//! is filled edge to edge, as Google Photos' and Apple's montages are), the crop placed
//! so that the faces stay in view, and resized once to a little over the frame size, so
//! that the zoom never enlarges past the photo's own pixels by much and the encoder gets
//! small inputs whatever the original's size.

use fast_image_resize::{self as fir, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage};

use crate::kenburns::FractionBox;
use crate::{Error, Result};

/// A box in the upright photo's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl PixelBox {
    /// The smallest box holding all of `boxes` (None for none).
    pub fn around(boxes: &[PixelBox]) -> Option<PixelBox> {
        let first = boxes.first()?;
        let (mut left, mut top) = (first.left, first.top);
        let (mut right, mut bottom) = (first.left + first.width, first.top + first.height);
        for b in &boxes[1..] {
            left = left.min(b.left);
            top = top.min(b.top);
            right = right.max(b.left + b.width);
            bottom = bottom.max(b.top + b.height);
        }
        Some(PixelBox {
            left,
            top,
            width: right - left,
            height: bottom - top,
        })
    }
}

/// A photo cropped and resized for the encoder, with its faces' box in the crop.
pub struct Prepared {
    pub image: RgbImage,
    pub faces: Option<FractionBox>,
}

/// The part of a `width × height` photo with the frame's `aspect` (width / height) that
/// the video shows: as large as the photo allows, centred on `faces` when given (as
/// far as the edges allow), else on the photo's centre. Returns (left, top, w, h).
pub fn crop_box(
    width: u32,
    height: u32,
    aspect: f64,
    faces: Option<PixelBox>,
) -> (f64, f64, f64, f64) {
    let (w, h) = (f64::from(width), f64::from(height));
    let (cw, ch) = if w / h > aspect {
        (h * aspect, h)
    } else {
        (w, w / aspect)
    };
    let (fx, fy) = faces.map_or((w / 2.0, h / 2.0), |f| {
        (f.left + f.width / 2.0, f.top + f.height / 2.0)
    });
    let left = (fx - cw / 2.0).clamp(0.0, w - cw);
    let top = (fy - ch / 2.0).clamp(0.0, h - ch);
    (left, top, cw, ch)
}

/// Crops `photo` to the frame's aspect (see [`crop_box`]) and resizes it to
/// `out_width × out_height`; the face box comes back in fractions of the crop.
pub fn cover_crop(
    photo: &DynamicImage,
    faces: Option<PixelBox>,
    out_width: u32,
    out_height: u32,
) -> Result<Prepared> {
    let failed = |reason: String| Error::Invalid(format!("preparing a photo: {reason}"));
    let rgb = photo.to_rgb8();
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(failed("the photo has no pixels".into()));
    }
    let aspect = f64::from(out_width) / f64::from(out_height);
    let (left, top, cw, ch) = crop_box(width, height, aspect, faces);
    let source = fir::images::ImageRef::new(width, height, rgb.as_raw(), PixelType::U8x3)
        .map_err(|e| failed(e.to_string()))?;
    let mut target = fir::images::Image::new(out_width, out_height, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(left, top, cw, ch);
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| failed(e.to_string()))?;
    let image = RgbImage::from_raw(out_width, out_height, target.into_vec())
        .ok_or_else(|| failed("resized buffer has the wrong size".into()))?;
    let faces = faces.map(|f| {
        let clip = |v: f64, lo: f64, len: f64| ((v - lo) / len).clamp(0.0, 1.0);
        let (l, t) = (clip(f.left, left, cw), clip(f.top, top, ch));
        let (r, b) = (
            clip(f.left + f.width, left, cw),
            clip(f.top + f.height, top, ch),
        );
        FractionBox {
            left: l,
            top: t,
            width: r - l,
            height: b - t,
        }
    });
    Ok(Prepared { image, faces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_photo_is_cut_to_the_frame_around_its_faces() {
        // 4000 × 1000 into 16:9: the crop is 1777.8 × 1000, slid to the face at x = 3500
        let face = PixelBox {
            left: 3400.0,
            top: 400.0,
            width: 200.0,
            height: 200.0,
        };
        let (left, top, w, h) = crop_box(4000, 1000, 16.0 / 9.0, Some(face));
        assert!((w - 1000.0 * 16.0 / 9.0).abs() < 1e-6 && h == 1000.0);
        assert_eq!(top, 0.0);
        assert!(
            (left + w - 4000.0).abs() < 1e-6,
            "slid to the right edge: {left}"
        );
        let centred = crop_box(4000, 1000, 16.0 / 9.0, None);
        assert!((centred.0 - (4000.0 - w) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn a_portrait_photo_in_a_landscape_frame_keeps_its_width() {
        let (left, top, w, h) = crop_box(1000, 3000, 16.0 / 9.0, None);
        assert_eq!((left, w), (0.0, 1000.0));
        assert!((h - 562.5).abs() < 1e-6 && (top - (3000.0 - 562.5) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn the_face_box_comes_back_in_the_crops_fractions() {
        let photo = DynamicImage::ImageRgb8(RgbImage::new(400, 100));
        let face = PixelBox {
            left: 10.0,
            top: 25.0,
            width: 40.0,
            height: 50.0,
        };
        let prepared = cover_crop(&photo, Some(face), 64, 32).unwrap();
        assert_eq!(prepared.image.dimensions(), (64, 32));
        // crop: 200 × 100 at x = 0 (the face near the left edge)
        let f = prepared.faces.unwrap();
        assert!(
            (f.left - 0.05).abs() < 1e-9 && (f.width - 0.2).abs() < 1e-9,
            "{f:?}"
        );
        assert!(
            (f.top - 0.25).abs() < 1e-9 && (f.height - 0.5).abs() < 1e-9,
            "{f:?}"
        );
    }

    #[test]
    fn a_one_pixel_photo_fills_the_frame() {
        let mut one = RgbImage::new(1, 1);
        one.put_pixel(0, 0, image::Rgb([200, 10, 30]));
        let prepared = cover_crop(&DynamicImage::ImageRgb8(one), None, 32, 18).unwrap();
        assert!(prepared.image.pixels().all(|p| p.0 == [200, 10, 30]));
    }

    #[test]
    fn the_box_around_several_faces_holds_them_all() {
        let a = PixelBox {
            left: 10.0,
            top: 20.0,
            width: 5.0,
            height: 5.0,
        };
        let b = PixelBox {
            left: 50.0,
            top: 0.0,
            width: 10.0,
            height: 8.0,
        };
        let all = PixelBox::around(&[a, b]).unwrap();
        assert_eq!(
            (all.left, all.top, all.width, all.height),
            (10.0, 0.0, 50.0, 25.0)
        );
        assert!(PixelBox::around(&[]).is_none());
    }
}
