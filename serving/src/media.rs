//! Photo media for the album service: what a photo's EXIF says (orientation, time taken,
//! GPS position, camera), turning pixels upright, JPEG thumbnails and previews, animated
//! GIF slideshows, and offline reverse geocoding for albums by place.
//!
//! Everything here is a pure function over bytes or pixels (no file or network I/O), so
//! the service can call it from blocking worker threads and the tests need no server.
//!
//! Place names come from the `reverse_geocoder` crate, which embeds GeoNames' list of
//! cities with 1,000 people or more. GeoNames data is licensed under CC BY 4.0
//! (<https://creativecommons.org/licenses/by/4.0/>): anything that shows these place
//! names must credit "GeoNames (geonames.org)", e.g. on the service's about page.

use std::io::Cursor;

use exif::{Exif, In, Tag, Value};
use fast_image_resize as fr;
use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{Delay, DynamicImage, ExtendedColorType, Frame, Rgba, RgbaImage};
use reverse_geocoder::ReverseGeocoder;

/// Why a thumbnail, preview or animation could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MediaError {
    /// The input has no pixels (or, for an animation, no frames).
    #[error("nothing to encode: {0}")]
    Empty(&'static str),
    /// A parameter or input size is outside what this module accepts.
    #[error("{what} is {value}, but must be in {min}..={max}")]
    OutOfRange {
        what: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    /// fast_image_resize refused the resize (should not happen for valid sizes).
    #[error("resizing failed: {0}")]
    Resize(String),
    /// The JPEG or GIF encoder failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// Result of this module's fallible functions.
pub(crate) type MediaResult<T> = std::result::Result<T, MediaError>;

/// The largest side of an animated GIF, in pixels.
pub(crate) const GIF_MAX_SIZE: u32 = 1024;
/// The most frames in one animated GIF. Frames are encoded one at a time, so memory stays
/// at one canvas, but time grows with frames × size² (about 0.1 s a 1024 px frame, release).
pub(crate) const GIF_MAX_FRAMES: usize = 100;
/// The allowed time each GIF frame is shown, in milliseconds.
pub(crate) const GIF_DELAY_MS: std::ops::RangeInclusive<u32> = 20..=10_000;

/// NeuQuant sampling factor for GIF palettes: image's default (1) is very slow for
/// 100 large frames, and 10 is the gif crate's own recommended trade-off.
const GIF_QUANT_SPEED: i32 = 10;

// ---------------------------------------------------------------------------------------
// EXIF
// ---------------------------------------------------------------------------------------

/// What the photo's EXIF says. `Default` means "nothing known".
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoMeta {
    /// EXIF orientation 1..=8; 1 when absent or out of range.
    pub orientation: u16,
    /// DateTimeOriginal (else DateTime) as "YYYY-MM-DDTHH:MM:SS", only when it is a real date.
    pub taken_at: Option<String>,
    /// (latitude, longitude) in degrees, negative for S and W.
    pub gps: Option<(f64, f64)>,
    /// Camera maker, trimmed, without NULs.
    pub camera_make: Option<String>,
    /// Camera model, trimmed, without NULs.
    pub camera_model: Option<String>,
}

impl Default for PhotoMeta {
    // Hand-written because orientation 1 (upright), not 0, is what "nothing known" means.
    fn default() -> Self {
        Self {
            orientation: 1,
            taken_at: None,
            gps: None,
            camera_make: None,
            camera_model: None,
        }
    }
}

/// Reads the EXIF of a JPEG, TIFF, PNG, WebP or HEIF file held in memory.
///
/// Never fails: a photo without EXIF, or with EXIF that does not parse, gives
/// `PhotoMeta::default()`, and each field that is missing or implausible is left unknown,
/// because a bad tag must never stop an upload.
pub fn read_meta(bytes: &[u8]) -> PhotoMeta {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) else {
        return PhotoMeta::default();
    };
    PhotoMeta {
        orientation: exif_orientation(&exif),
        taken_at: exif_date(&exif, Tag::DateTimeOriginal)
            .or_else(|| exif_date(&exif, Tag::DateTime)),
        gps: exif_gps(&exif),
        camera_make: exif_text(&exif, Tag::Make),
        camera_model: exif_text(&exif, Tag::Model),
    }
}

fn exif_orientation(exif: &Exif) -> u16 {
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .and_then(|value| u16::try_from(value).ok())
        .filter(|value| (1..=8).contains(value))
        .unwrap_or(1)
}

/// Longest EXIF text kept (camera make and model): real ones are a few dozen characters,
/// and the text goes into every listing of the photo.
pub(crate) const EXIF_TEXT_MAX_CHARS: usize = 128;

/// The first ASCII string of a tag, as lossy UTF-8, with control characters and outer
/// whitespace removed, cut to [`EXIF_TEXT_MAX_CHARS`].
fn exif_text(exif: &Exif, tag: Tag) -> Option<String> {
    let Value::Ascii(strings) = &exif.get_field(tag, In::PRIMARY)?.value else {
        return None;
    };
    let raw = String::from_utf8_lossy(strings.first()?);
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(EXIF_TEXT_MAX_CHARS * 4)
        .collect();
    let text: String = kept.trim().chars().take(EXIF_TEXT_MAX_CHARS).collect();
    let text = text.trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

fn exif_date(exif: &Exif, tag: Tag) -> Option<String> {
    let Value::Ascii(strings) = &exif.get_field(tag, In::PRIMARY)?.value else {
        return None;
    };
    let dt = exif::DateTime::from_ascii(strings.first()?).ok()?;
    // from_ascii checks only the layout, and cameras with an unset clock write
    // "0000:00:00 00:00:00", so the calendar is checked here.
    let real = dt.year >= 1
        && (1..=12).contains(&dt.month)
        && dt.day >= 1
        && dt.day <= days_in_month(dt.year, dt.month)
        && dt.hour < 24
        && dt.minute < 60
        && dt.second < 60;
    real.then(|| {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
        )
    })
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn exif_gps(exif: &Exif) -> Option<(f64, f64)> {
    let lat = gps_coordinate(
        exif,
        Tag::GPSLatitude,
        Tag::GPSLatitudeRef,
        b'N',
        b'S',
        90.0,
    )?;
    let lon = gps_coordinate(
        exif,
        Tag::GPSLongitude,
        Tag::GPSLongitudeRef,
        b'E',
        b'W',
        180.0,
    )?;
    // (0, 0) is in the Gulf of Guinea; in practice it is a GPS that had no fix yet.
    (lat != 0.0 || lon != 0.0).then_some((lat, lon))
}

/// One GPS coordinate in signed degrees. The reference tag is required: without it the
/// hemisphere is unknown, and a place on the wrong side of the world is worse than none.
fn gps_coordinate(
    exif: &Exif,
    value_tag: Tag,
    ref_tag: Tag,
    positive: u8,
    negative: u8,
    limit: f64,
) -> Option<f64> {
    let Value::Rational(parts) = &exif.get_field(value_tag, In::PRIMARY)?.value else {
        return None;
    };
    // Degrees, minutes, seconds; some writers leave out the trailing parts.
    let scales = [1.0, 60.0, 3600.0];
    let mut degrees = 0.0;
    for (part, scale) in parts.iter().zip(scales) {
        let value = part.to_f64();
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        degrees += value / scale;
    }
    let sign = match exif_text(exif, ref_tag)?
        .bytes()
        .next()?
        .to_ascii_uppercase()
    {
        c if c == positive => 1.0,
        c if c == negative => -1.0,
        _ => return None,
    };
    (!parts.is_empty() && degrees <= limit).then_some(sign * degrees)
}

// ---------------------------------------------------------------------------------------
// Pixels
// ---------------------------------------------------------------------------------------

/// Rotates and flips so the pixels are upright, per EXIF orientation 1..=8.
/// Any other value leaves the image unchanged.
pub fn apply_orientation(mut image: DynamicImage, orientation: u16) -> DynamicImage {
    let exif_value = u8::try_from(orientation).ok();
    if let Some(orientation) = exif_value.and_then(Orientation::from_exif) {
        image.apply_orientation(orientation);
    }
    image
}

/// Encodes `image` as a JPEG of the given quality (1..=100) whose longer side is at most
/// `max_side`, keeping the aspect ratio and never enlarging. Alpha is dropped.
pub(crate) fn resized_jpeg(
    image: &DynamicImage,
    max_side: u32,
    quality: u8,
) -> MediaResult<Vec<u8>> {
    check_range("max_side", max_side, 1, u32::from(u16::MAX))?;
    check_range("JPEG quality", u32::from(quality), 1, 100)?;
    let (width, height) = fit_within(image.width(), image.height(), max_side)?;
    let pixels = resize_rgb8(image, width, height)?;
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, quality)
        .encode(&pixels, width, height, ExtendedColorType::Rgb8)
        .map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok(jpeg)
}

/// One frame of an animated GIF: `image` fitted into `size`×`size` (aspect kept) and
/// centred on a black canvas of that size.
pub(crate) fn gif_frame(image: &DynamicImage, size: u32) -> MediaResult<RgbaImage> {
    check_range("GIF size", size, 1, GIF_MAX_SIZE)?;
    centred_on_canvas(image, size)
}

/// An animated GIF written one frame at a time into `out`, so that a caller decoding
/// its sources holds one of them at a time; the trailer is written when it is dropped.
pub(crate) struct AnimatedGif<'a> {
    encoder: GifEncoder<&'a mut Vec<u8>>,
    size: u32,
    delay: Delay,
}

impl<'a> AnimatedGif<'a> {
    /// Checks every parameter (before any frame is made) and starts the GIF.
    pub fn new(
        out: &'a mut Vec<u8>,
        frame_count: usize,
        size: u32,
        delay_ms: u32,
    ) -> MediaResult<Self> {
        check_gif_parameters(frame_count, size, delay_ms)?;
        // image's GIF encoder truncates to centiseconds; round instead so 25 ms is not 20 ms.
        let delay = Delay::from_numer_denom_ms((delay_ms + 5) / 10 * 10, 1);
        let mut encoder = GifEncoder::new_with_speed(out, GIF_QUANT_SPEED);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| MediaError::Encode(e.to_string()))?;
        Ok(AnimatedGif {
            encoder,
            size,
            delay,
        })
    }

    /// Appends a frame made by [`gif_frame`] for this GIF's size.
    pub fn push(&mut self, frame: RgbaImage) -> MediaResult<()> {
        if frame.dimensions() != (self.size, self.size) {
            return Err(MediaError::Encode(format!(
                "a {}×{} frame in a {size}×{size} GIF",
                frame.width(),
                frame.height(),
                size = self.size
            )));
        }
        self.encoder
            .encode_frame(Frame::from_parts(frame, 0, 0, self.delay))
            .map_err(|e| MediaError::Encode(e.to_string()))
    }
}

/// The limits on a GIF's frame count, canvas size and frame delay.
pub(crate) fn check_gif_parameters(
    frame_count: usize,
    size: u32,
    delay_ms: u32,
) -> MediaResult<()> {
    check_range(
        "frame count",
        u32::try_from(frame_count).unwrap_or(u32::MAX),
        1,
        GIF_MAX_FRAMES as u32,
    )?;
    check_range("GIF size", size, 1, GIF_MAX_SIZE)?;
    check_range(
        "frame delay (ms)",
        delay_ms,
        *GIF_DELAY_MS.start(),
        *GIF_DELAY_MS.end(),
    )
}

/// `image` fitted into `size`×`size` and pasted in the middle of an opaque black canvas.
fn centred_on_canvas(image: &DynamicImage, size: u32) -> MediaResult<RgbaImage> {
    let (width, height) = fit_within(image.width(), image.height(), size)?;
    // Small frames are enlarged here so every slide fills the same box.
    let (width, height) = fit_exactly(width, height, size);
    let pixels = resize_rgb8(image, width, height)?;
    let mut canvas = RgbaImage::from_pixel(size, size, Rgba([0, 0, 0, 255]));
    let (left, top) = ((size - width) / 2, (size - height) / 2);
    for (i, rgb) in pixels.chunks_exact(3).enumerate() {
        let i = i as u32;
        canvas.put_pixel(
            left + i % width,
            top + i / width,
            Rgba([rgb[0], rgb[1], rgb[2], 255]),
        );
    }
    Ok(canvas)
}

/// The size of a `width`×`height` image shrunk (never enlarged) so its longer side is at
/// most `max_side`; the shorter side is rounded and kept at least 1 pixel.
fn fit_within(width: u32, height: u32, max_side: u32) -> MediaResult<(u32, u32)> {
    if width == 0 || height == 0 {
        return Err(MediaError::Empty("the image has no pixels"));
    }
    if width.max(height) <= max_side {
        return Ok((width, height));
    }
    Ok(fit_exactly(width, height, max_side))
}

/// The size with the longer side exactly `side`, aspect kept (both inputs non-zero).
fn fit_exactly(width: u32, height: u32, side: u32) -> (u32, u32) {
    let scale = |short: u32, long: u32| {
        let scaled = (u64::from(short) * u64::from(side) + u64::from(long) / 2) / u64::from(long);
        // scaled <= side, which is a u32
        u32::try_from(scaled).unwrap_or(side).max(1)
    };
    if width >= height {
        (side, scale(height, width))
    } else {
        (scale(width, height), side)
    }
}

/// Packed RGB8 pixels of `image` resized to `width`×`height` with Lanczos3.
fn resize_rgb8(image: &DynamicImage, width: u32, height: u32) -> MediaResult<Vec<u8>> {
    let rgb = image.to_rgb8();
    if rgb.dimensions() == (width, height) {
        return Ok(rgb.into_raw());
    }
    let resize_error = |e: &dyn std::fmt::Display| MediaError::Resize(e.to_string());
    let source = fr::images::Image::from_vec_u8(
        rgb.width(),
        rgb.height(),
        rgb.into_raw(),
        fr::PixelType::U8x3,
    )
    .map_err(|e| resize_error(&e))?;
    let mut target = fr::images::Image::new(width, height, fr::PixelType::U8x3);
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| resize_error(&e))?;
    Ok(target.into_vec())
}

fn check_range(what: &'static str, value: u32, min: u32, max: u32) -> MediaResult<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(MediaError::OutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Places
// ---------------------------------------------------------------------------------------

/// The GeoNames place nearest to a position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Place {
    /// Place name in ASCII (GeoNames' asciiname), e.g. "Paris".
    pub name: String,
    /// First-level administrative division, in ASCII as GeoNames spells it, e.g. "Ile-de-France".
    pub admin1: String,
    /// ISO 3166-1 alpha-2 country code, e.g. "FR".
    pub country: String,
    /// The place's own latitude, in degrees.
    pub lat: f64,
    /// The place's own longitude, in degrees.
    pub lon: f64,
    /// Great-circle distance from the queried position to the place, in kilometres, so the
    /// caller can decide how far is too far (GeoNames has no places at sea).
    pub distance_km: f64,
}

/// Offline reverse geocoder over GeoNames' cities of 1,000 people or more.
///
/// Building one parses about 145,000 embedded records into a k-d tree, which takes a
/// noticeable moment: build it once and share it (it is `Send + Sync`) behind an `Arc`.
pub(crate) struct Geocoder {
    inner: ReverseGeocoder,
}

const EARTH_RADIUS_KM: f64 = 6371.0;

impl Geocoder {
    /// Loads the embedded GeoNames data.
    pub fn new() -> Self {
        Self {
            inner: ReverseGeocoder::new(),
        }
    }

    /// The nearest place, or `None` for a position that is not finite or not on Earth.
    pub fn nearest(&self, lat: f64, lon: f64) -> Option<Place> {
        let on_earth =
            lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
        if !on_earth {
            return None;
        }
        let found = self.inner.search((lat, lon));
        let record = found.record;
        Some(Place {
            name: record.name.clone(),
            admin1: record.admin1.clone(),
            country: record.cc.clone(),
            lat: record.lat,
            lon: record.lon,
            distance_km: chord_to_km(found.distance),
        })
    }
}

impl Default for Geocoder {
    fn default() -> Self {
        Self::new()
    }
}

/// The crate measures squared straight-line distance between points on the unit sphere;
/// this turns it into distance along the Earth's surface.
fn chord_to_km(squared_chord: f64) -> f64 {
    let half_chord = (squared_chord.max(0.0).sqrt() / 2.0).min(1.0);
    2.0 * EARTH_RADIUS_KM * half_chord.asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use exif::experimental::Writer;
    use exif::{Field, Rational};
    use image::{AnimationDecoder, ImageFormat, Rgb, RgbImage};

    // ---- helpers -------------------------------------------------------------------

    /// A real JPEG photo (a gradient) carrying `fields` as its EXIF APP1 segment.
    fn jpeg_with_exif(fields: &[Field], little_endian: bool) -> Vec<u8> {
        let mut tiff = Cursor::new(Vec::new());
        let mut writer = Writer::new();
        for field in fields {
            writer.push_field(field);
        }
        writer.write(&mut tiff, little_endian).expect("write TIFF");
        jpeg_with_app1(&[b"Exif\0\0".as_slice(), tiff.get_ref()].concat())
    }

    /// A 32×16 JPEG with `payload` inserted as an APP1 segment right after SOI.
    fn jpeg_with_app1(payload: &[u8]) -> Vec<u8> {
        let photo = RgbImage::from_fn(32, 16, |x, y| Rgb([(x * 8) as u8, (y * 16) as u8, 128]));
        let mut plain = Vec::new();
        JpegEncoder::new_with_quality(&mut plain, 90)
            .encode(photo.as_raw(), 32, 16, ExtendedColorType::Rgb8)
            .expect("encode JPEG");
        assert_eq!(&plain[..2], &[0xFF, 0xD8], "JPEG starts with SOI");
        let length = u16::try_from(payload.len() + 2).expect("APP1 fits");
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&plain[2..]);
        // the result must still be a valid photo, as a camera's would be
        image::load_from_memory_with_format(&out, ImageFormat::Jpeg)
            .expect("JPEG with EXIF decodes");
        out
    }

    fn ascii(tag: Tag, text: &[u8]) -> Field {
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![text.to_vec()]),
        }
    }

    fn dms(tag: Tag, parts: [(u32, u32); 3]) -> Field {
        let value = parts
            .iter()
            .map(|&(num, denom)| Rational { num, denom })
            .collect();
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Rational(value),
        }
    }

    fn orientation(value: u16) -> Field {
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![value]),
        }
    }

    /// Sydney Opera House area: 33°51'24.0"S 151°12'54.0"E, plus a full camera record.
    fn camera_fields() -> Vec<Field> {
        vec![
            ascii(Tag::Make, b"  Canon\0\0"),
            ascii(Tag::Model, b"Canon EOS 5D Mark IV "),
            orientation(6),
            ascii(Tag::DateTime, b"2023:06:02 09:00:00"),
            ascii(Tag::DateTimeOriginal, b"2023:06:01 18:45:09"),
            ascii(Tag::GPSLatitudeRef, b"S"),
            dms(Tag::GPSLatitude, [(33, 1), (51, 1), (2400, 100)]),
            ascii(Tag::GPSLongitudeRef, b"E"),
            dms(Tag::GPSLongitude, [(151, 1), (12, 1), (54, 1)]),
        ]
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
    }

    // ---- EXIF ----------------------------------------------------------------------

    /// Finding "EXIF text uncapped": a 60 kB camera model is kept as its first 128
    /// characters, not copied into every listing.
    #[test]
    fn exif_text_is_capped() {
        let model = "X".repeat(60_000);
        let jpeg = jpeg_with_exif(&[ascii(Tag::Model, model.as_bytes())], true);
        let meta = read_meta(&jpeg);
        assert_eq!(
            meta.camera_model.map(|m| m.chars().count()),
            Some(EXIF_TEXT_MAX_CHARS)
        );
    }

    #[test]
    fn reads_a_full_camera_record_in_both_byte_orders() {
        for little_endian in [true, false] {
            let meta = read_meta(&jpeg_with_exif(&camera_fields(), little_endian));
            assert_eq!(meta.orientation, 6);
            assert_eq!(meta.taken_at.as_deref(), Some("2023-06-01T18:45:09"));
            let (lat, lon) = meta.gps.expect("GPS present");
            assert_close(lat, -(33.0 + 51.0 / 60.0 + 24.0 / 3600.0));
            assert_close(lon, 151.0 + 12.0 / 60.0 + 54.0 / 3600.0);
            assert_eq!(meta.camera_make.as_deref(), Some("Canon"));
            assert_eq!(meta.camera_model.as_deref(), Some("Canon EOS 5D Mark IV"));
        }
    }

    #[test]
    fn west_longitude_is_negative() {
        // New York: 40°42'46"N 74°0'22"W
        let fields = vec![
            ascii(Tag::GPSLatitudeRef, b"N"),
            dms(Tag::GPSLatitude, [(40, 1), (42, 1), (46, 1)]),
            ascii(Tag::GPSLongitudeRef, b"W"),
            dms(Tag::GPSLongitude, [(74, 1), (0, 1), (22, 1)]),
        ];
        let (lat, lon) = read_meta(&jpeg_with_exif(&fields, true))
            .gps
            .expect("GPS present");
        assert_close(lat, 40.0 + 42.0 / 60.0 + 46.0 / 3600.0);
        assert_close(lon, -(74.0 + 22.0 / 3600.0));
    }

    #[test]
    fn falls_back_to_datetime_when_original_is_unset() {
        let fields = vec![
            ascii(Tag::DateTime, b"2020:02:29 23:59:59"),
            ascii(Tag::DateTimeOriginal, b"0000:00:00 00:00:00"),
        ];
        let meta = read_meta(&jpeg_with_exif(&fields, true));
        assert_eq!(meta.taken_at.as_deref(), Some("2020-02-29T23:59:59"));
    }

    #[test]
    fn rejects_dates_that_are_not_on_the_calendar() {
        for bad in [
            &b"2021:02:29 10:00:00"[..],
            b"2021:13:01 10:00:00",
            b"2021:04:31 10:00:00",
            b"2021:01:01 24:00:00",
            b"    :  :     :  :  ",
        ] {
            let meta = read_meta(&jpeg_with_exif(&[ascii(Tag::DateTimeOriginal, bad)], true));
            assert_eq!(meta.taken_at, None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rejects_implausible_gps() {
        let cases: Vec<Vec<Field>> = vec![
            // no reference tags: hemisphere unknown
            vec![
                dms(Tag::GPSLatitude, [(10, 1), (0, 1), (0, 1)]),
                dms(Tag::GPSLongitude, [(10, 1), (0, 1), (0, 1)]),
            ],
            // latitude beyond the pole
            vec![
                ascii(Tag::GPSLatitudeRef, b"N"),
                dms(Tag::GPSLatitude, [(91, 1), (0, 1), (0, 1)]),
                ascii(Tag::GPSLongitudeRef, b"E"),
                dms(Tag::GPSLongitude, [(10, 1), (0, 1), (0, 1)]),
            ],
            // zero denominator
            vec![
                ascii(Tag::GPSLatitudeRef, b"N"),
                dms(Tag::GPSLatitude, [(10, 0), (0, 1), (0, 1)]),
                ascii(Tag::GPSLongitudeRef, b"E"),
                dms(Tag::GPSLongitude, [(10, 1), (0, 1), (0, 1)]),
            ],
            // (0, 0): a receiver without a fix
            vec![
                ascii(Tag::GPSLatitudeRef, b"N"),
                dms(Tag::GPSLatitude, [(0, 1), (0, 1), (0, 1)]),
                ascii(Tag::GPSLongitudeRef, b"E"),
                dms(Tag::GPSLongitude, [(0, 1), (0, 1), (0, 1)]),
            ],
        ];
        for fields in cases {
            assert_eq!(read_meta(&jpeg_with_exif(&fields, true)).gps, None);
        }
    }

    #[test]
    fn out_of_range_orientation_and_blank_text_are_unknown() {
        let fields = vec![
            orientation(9),
            ascii(Tag::Make, b" \0 "),
            ascii(Tag::Model, b""),
        ];
        let meta = read_meta(&jpeg_with_exif(&fields, true));
        assert_eq!(meta, PhotoMeta::default());
        assert_eq!(meta.orientation, 1);
    }

    #[test]
    fn garbage_after_the_exif_header_gives_default() {
        let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        for payload in [
            [b"Exif\0\0".as_slice(), &garbage].concat(),
            // a valid TIFF header whose first IFD offset points far past the end
            [b"Exif\0\0II*\0".as_slice(), &0xFFFF_FF00u32.to_le_bytes()].concat(),
            b"Exif\0\0".to_vec(),
        ] {
            assert_eq!(read_meta(&jpeg_with_app1(&payload)), PhotoMeta::default());
        }
        assert_eq!(read_meta(&[]), PhotoMeta::default());
        assert_eq!(read_meta(&garbage), PhotoMeta::default());
    }

    #[test]
    fn truncated_exif_photo_never_panics() {
        let photo = jpeg_with_exif(&camera_fields(), true);
        for end in 0..photo.len().min(400) {
            let _ = read_meta(&photo[..end]);
        }
    }

    #[test]
    fn png_without_exif_gives_default() {
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::new(8, 8))
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .expect("encode PNG");
        assert_eq!(read_meta(&png), PhotoMeta::default());
    }

    /// The shared photo set beside the checkout, as the other crates' tests find it.
    const PHOTOS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/datasets/five-class"
    );

    #[test]
    fn dataset_photos_have_no_exif_and_read_as_default() {
        // The shared set was re-encoded without metadata (its SOURCES.md says so), so real
        // photos must read as defaults rather than as garbage.
        for class in ["people", "buildings", "vehicles"] {
            let dir = std::path::Path::new(PHOTOS).join(class);
            let mut paths: Vec<_> = std::fs::read_dir(&dir)
                .expect("the five-class photos beside the checkout (../shared/datasets/five-class)")
                .map(|entry| entry.expect("directory entry").path())
                .collect();
            paths.sort();
            for path in paths.iter().take(3) {
                let bytes = std::fs::read(path).expect("read photo");
                assert!(
                    bytes.starts_with(&[0xFF, 0xD8]),
                    "{} is a JPEG",
                    path.display()
                );
                assert_eq!(
                    read_meta(&bytes),
                    PhotoMeta::default(),
                    "{}",
                    path.display()
                );
            }
        }
    }

    // ---- orientation ---------------------------------------------------------------

    #[test]
    fn orientation_moves_the_marker_to_the_right_corner() {
        // A 4×2 image whose only red pixel is at (1, 0): off every axis of symmetry,
        // so each of the 8 transforms puts it somewhere different.
        const RED: Rgb<u8> = Rgb([255, 0, 0]);
        let mut stored = RgbImage::from_pixel(4, 2, Rgb([0, 0, 255]));
        stored.put_pixel(1, 0, RED);
        // (orientation, upright size, where the marker must end up), worked out by hand
        // from the EXIF definitions (e.g. 6: rotate 90° clockwise, (x, y) → (H-1-y, x)).
        let expected = [
            (1, (4, 2), (1, 0)),
            (2, (4, 2), (2, 0)),
            (3, (4, 2), (2, 1)),
            (4, (4, 2), (1, 1)),
            (5, (2, 4), (0, 1)),
            (6, (2, 4), (1, 1)),
            (7, (2, 4), (1, 2)),
            (8, (2, 4), (0, 2)),
            (0, (4, 2), (1, 0)),
            (9, (4, 2), (1, 0)),
        ];
        for (value, size, (x, y)) in expected {
            let upright =
                apply_orientation(DynamicImage::ImageRgb8(stored.clone()), value).to_rgb8();
            assert_eq!(upright.dimensions(), size, "orientation {value}");
            assert_eq!(*upright.get_pixel(x, y), RED, "orientation {value}");
            assert_eq!(
                upright.pixels().filter(|p| **p == RED).count(),
                1,
                "orientation {value}"
            );
        }
    }

    // ---- JPEG ----------------------------------------------------------------------

    fn gradient(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 90])
        }))
    }

    fn decoded_jpeg(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(bytes, ImageFormat::Jpeg).expect("decodable JPEG")
    }

    #[test]
    fn large_images_shrink_to_max_side_keeping_aspect() {
        let thumb = decoded_jpeg(&resized_jpeg(&gradient(1000, 500), 256, 85).expect("thumbnail"));
        assert_eq!((thumb.width(), thumb.height()), (256, 128));
        let tall = decoded_jpeg(&resized_jpeg(&gradient(300, 1000), 256, 85).expect("thumbnail"));
        assert_eq!((tall.width(), tall.height()), (77, 256));
        // the content survives resizing: left stays dark red, right bright red
        let rgb = thumb.to_rgb8();
        assert!(rgb.get_pixel(5, 64)[0] < 40 && rgb.get_pixel(250, 64)[0] > 215);
    }

    #[test]
    fn small_images_are_never_enlarged() {
        let jpeg = decoded_jpeg(&resized_jpeg(&gradient(100, 50), 256, 85).expect("thumbnail"));
        assert_eq!((jpeg.width(), jpeg.height()), (100, 50));
    }

    #[test]
    fn extreme_aspect_keeps_at_least_one_pixel() {
        let jpeg = decoded_jpeg(&resized_jpeg(&gradient(3000, 2), 256, 85).expect("thumbnail"));
        assert_eq!((jpeg.width(), jpeg.height()), (256, 1));
    }

    #[test]
    fn quality_changes_the_size() {
        let photo = gradient(640, 480);
        let low = resized_jpeg(&photo, 640, 20).expect("low quality");
        let high = resized_jpeg(&photo, 640, 95).expect("high quality");
        assert!(low.len() < high.len(), "{} !< {}", low.len(), high.len());
    }

    #[test]
    fn jpeg_rejects_bad_arguments() {
        assert!(matches!(
            resized_jpeg(&gradient(10, 10), 0, 85),
            Err(MediaError::OutOfRange { .. })
        ));
        assert!(matches!(
            resized_jpeg(&gradient(10, 10), 256, 0),
            Err(MediaError::OutOfRange { .. })
        ));
        assert!(matches!(
            resized_jpeg(&gradient(10, 10), 256, 101),
            Err(MediaError::OutOfRange { .. })
        ));
        assert!(matches!(
            resized_jpeg(&DynamicImage::new_rgb8(0, 0), 256, 85),
            Err(MediaError::Empty(_))
        ));
    }

    // ---- GIF -----------------------------------------------------------------------

    /// A whole animated GIF through [`AnimatedGif`] (the service streams frames instead),
    /// looping forever: each frame, in the given order, fitted into `size`×`size` (aspect
    /// kept), centred on a black canvas, and shown for `delay_ms`.
    fn animated_gif(frames: &[DynamicImage], size: u32, delay_ms: u32) -> MediaResult<Vec<u8>> {
        if frames.is_empty() {
            return Err(MediaError::Empty("an animation needs at least one frame"));
        }
        let mut gif = Vec::new();
        {
            let mut writer = AnimatedGif::new(&mut gif, frames.len(), size, delay_ms)?;
            for image in frames {
                writer.push(gif_frame(image, size)?)?;
            }
        } // the encoder writes the GIF trailer when dropped
        Ok(gif)
    }

    fn decoded_gif(bytes: &[u8]) -> Vec<image::Frame> {
        let decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).expect("GIF header");
        decoder.into_frames().collect_frames().expect("GIF frames")
    }

    #[test]
    fn gif_frames_come_back_in_order_centred_with_the_delay() {
        let colours = [Rgb([220, 30, 30]), Rgb([30, 220, 30]), Rgb([30, 30, 220])];
        let frames: Vec<DynamicImage> = vec![
            DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 100, colours[0])), // wide
            DynamicImage::ImageRgb8(RgbImage::from_pixel(50, 100, colours[1])),  // tall, small
            DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, colours[2])),   // square
        ];
        let gif = animated_gif(&frames, 64, 150).expect("GIF");
        let decoded = decoded_gif(&gif);
        assert_eq!(decoded.len(), 3);
        for (frame, colour) in decoded.iter().zip(colours) {
            assert_eq!(frame.delay().numer_denom_ms(), (150, 1));
            let buffer = frame.buffer();
            assert_eq!(buffer.dimensions(), (64, 64));
            // the centre has the frame's colour (within palette error)
            let centre = buffer.get_pixel(32, 32);
            for channel in 0..3 {
                assert!(
                    centre[channel].abs_diff(colour[channel]) < 24,
                    "{centre:?} vs {colour:?}"
                );
            }
        }
        // the wide frame is letterboxed: black bars above and below, 16 px each
        let wide = decoded[0].buffer();
        assert!(wide.get_pixel(32, 2)[0] < 24 && wide.get_pixel(32, 61)[0] < 24);
        assert!(wide.get_pixel(32, 17)[0] > 196 && wide.get_pixel(32, 46)[0] > 196);
        // the tall one is pillarboxed: 32 px wide in the middle
        let tall = decoded[1].buffer();
        assert!(tall.get_pixel(2, 32)[1] < 24 && tall.get_pixel(61, 32)[1] < 24);
        assert!(tall.get_pixel(17, 32)[1] > 196 && tall.get_pixel(46, 32)[1] > 196);
    }

    #[test]
    fn gif_loops_forever() {
        let gif = animated_gif(&[gradient(10, 10)], 16, 100).expect("GIF");
        // NETSCAPE2.0 application extension with loop count 0 (= forever)
        let marker = b"NETSCAPE2.0\x03\x01\x00\x00";
        assert!(
            gif.windows(marker.len()).any(|w| w == marker),
            "no infinite-loop block"
        );
    }

    #[test]
    fn gif_rejects_bad_arguments() {
        let one = [gradient(10, 10)];
        assert!(matches!(
            animated_gif(&[], 64, 100),
            Err(MediaError::Empty(_))
        ));
        for (size, delay) in [(0, 100), (1025, 100), (64, 19), (64, 10_001)] {
            assert!(
                matches!(
                    animated_gif(&one, size, delay),
                    Err(MediaError::OutOfRange { .. })
                ),
                "size {size}, delay {delay}"
            );
        }
        let many = vec![gradient(2, 2); GIF_MAX_FRAMES + 1];
        assert!(matches!(
            animated_gif(&many, 8, 100),
            Err(MediaError::OutOfRange {
                what: "frame count",
                ..
            })
        ));
        assert!(matches!(
            animated_gif(&[DynamicImage::new_rgb8(0, 3)], 8, 100),
            Err(MediaError::Empty(_))
        ));
        // the limits themselves are allowed
        assert!(animated_gif(&one, 1, 20).is_ok());
        assert!(animated_gif(&one, GIF_MAX_SIZE, 10_000).is_ok());
    }

    // ---- places --------------------------------------------------------------------

    #[test]
    fn geocoder_finds_known_cities() {
        let started = std::time::Instant::now();
        let geocoder = Geocoder::new();
        println!("Geocoder::new took {:?}", started.elapsed());
        let paris = geocoder.nearest(48.8566, 2.3522).expect("Paris");
        println!("{paris:?}");
        assert_eq!(paris.country, "FR");
        assert_eq!(paris.name, "Paris");
        assert!(paris.distance_km < 5.0, "{paris:?}");
        for (lat, lon, country) in [
            (-33.8688, 151.2093, "AU"),
            (40.7128, -74.0060, "US"),
            (-22.9068, -43.1729, "BR"),
        ] {
            let place = geocoder.nearest(lat, lon).expect("a place");
            println!("{place:?}");
            assert_eq!(place.country, country, "{place:?}");
            assert!(place.distance_km < 10.0, "{place:?}");
        }
        // mid-Pacific: still the nearest place, but far away, which distance_km shows
        let ocean = geocoder.nearest(-30.0, -140.0).expect("a place");
        assert!(ocean.distance_km > 300.0, "{ocean:?}");
        for (lat, lon) in [
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
            (90.5, 0.0),
            (0.0, -181.0),
        ] {
            assert_eq!(geocoder.nearest(lat, lon), None);
        }
    }

    #[test]
    fn geocoder_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Geocoder>();
    }

    #[test]
    fn chord_distance_converts_to_kilometres() {
        // a quarter of the way round the Earth: chord √2 on the unit sphere
        assert!((chord_to_km(2.0) - std::f64::consts::FRAC_PI_2 * EARTH_RADIUS_KM).abs() < 1e-6);
        assert_eq!(chord_to_km(0.0), 0.0);
    }
}
