//! Checks for untrusted image bytes: what they are, whether they decode, whether their
//! size is acceptable.
//!
//! Used by the crawler for every downloaded file and meant for the album service's
//! uploads as well. Nothing here trusts a `Content-Type` header or a file extension:
//!
//! 1. [`sniff`] names the format from its magic bytes (JPEG, PNG, GIF, WebP, BMP, TIFF);
//!    anything else is [`RejectReason::NotAnImage`].
//! 2. The dimensions are read from the header alone, and the pixel count and the short
//!    side are checked *before* decoding, so a decompression bomb (a small file that
//!    claims 100 000 × 100 000 pixels) is refused without allocating its pixels. The
//!    decoder also gets [`image::Limits`] so it cannot be talked into more.
//! 3. The whole image is decoded; any decoder error is [`RejectReason::Corrupt`].
//! 4. A JPEG's segments must reach its end-of-image marker (`FF D9`): the JPEG decoder
//!    fills a truncated scan with grey instead of failing, so a cut-off download would
//!    otherwise pass as a photo with a grey bottom. What follows the marker is not looked
//!    at: cameras and phones write data there (a Motion Photo's video, MPF images, a
//!    newline, padding), and every viewer ignores it.
//!
//! Decoding is CPU work: call [`validate`] from a blocking thread or rayon, not from an
//! async task.

use std::fmt;
use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};

/// An image format recognised from its leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
    Gif,
    WebP,
    Bmp,
    Tiff,
}

impl ImageKind {
    /// The file extension the store uses for this format.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::Gif => "gif",
            ImageKind::WebP => "webp",
            ImageKind::Bmp => "bmp",
            ImageKind::Tiff => "tif",
        }
    }

    /// The `image` crate's name for this format.
    pub fn format(self) -> ImageFormat {
        match self {
            ImageKind::Jpeg => ImageFormat::Jpeg,
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Gif => ImageFormat::Gif,
            ImageKind::WebP => ImageFormat::WebP,
            ImageKind::Bmp => ImageFormat::Bmp,
            ImageKind::Tiff => ImageFormat::Tiff,
        }
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// Names the image format from magic bytes, or `None` when it is none we accept.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    let riff_webp = bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP";
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(PNG) {
        Some(ImageKind::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else if riff_webp {
        Some(ImageKind::WebP)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(ImageKind::Tiff)
    } else if bytes.starts_with(b"BM") && bytes.len() >= BMP_MIN_HEADER {
        // "BM" alone is weak evidence; the decoder has the final word.
        Some(ImageKind::Bmp)
    } else {
        None
    }
}

/// File header (14 bytes) plus the smallest info header (12 bytes).
const BMP_MIN_HEADER: usize = 26;

/// Why a file was refused. [`RejectReason::code`] is stable: reports store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not an image format we accept.
    NotAnImage,
    /// The header or the pixel data do not decode, or a JPEG is truncated.
    Corrupt,
    /// The shorter side is below the minimum.
    TooSmall,
    /// The header announces more pixels than allowed.
    TooLargePixels,
}

impl RejectReason {
    /// Short code for reports, e.g. `"too-small"`.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::NotAnImage => "not-an-image",
            RejectReason::Corrupt => "corrupt",
            RejectReason::TooSmall => "too-small",
            RejectReason::TooLargePixels => "too-large-pixels",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal: the reason code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl ImageRejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        ImageRejection {
            reason,
            detail: detail.into(),
        }
    }

    /// The crate error for this refusal, naming where the bytes came from.
    pub fn into_error(self, origin: impl Into<String>) -> crate::Error {
        crate::Error::Image {
            origin: origin.into(),
            reason: self.to_string(),
        }
    }
}

impl fmt::Display for ImageRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for ImageRejection {}

/// Size rules for accepted images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The shorter side must be at least this many pixels.
    pub min_side: u32,
    /// Width × height must be at most this (the decompression-bomb cap).
    pub max_pixels: u64,
}

impl Default for Limits {
    /// 32 px short side, 40 megapixels.
    fn default() -> Self {
        Limits {
            min_side: 32,
            max_pixels: 40_000_000,
        }
    }
}

/// An image that passed every check, decoded.
#[derive(Debug, Clone)]
pub struct ValidImage {
    pub image: DynamicImage,
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

/// Sniffs, size-checks from the header, decodes fully and checks a JPEG's end marker.
pub fn validate(bytes: &[u8], limits: &Limits) -> Result<ValidImage, ImageRejection> {
    let kind = sniff(bytes).ok_or_else(|| {
        ImageRejection::new(
            RejectReason::NotAnImage,
            format!("unknown magic bytes {}", hex_prefix(bytes)),
        )
    })?;
    let (width, height) = header_dimensions(bytes, kind, limits)?;
    check_size(width, height, limits)?;
    if kind == ImageKind::Jpeg && !jpeg_has_end_marker(bytes) {
        return Err(ImageRejection::new(
            RejectReason::Corrupt,
            "JPEG is truncated: no end-of-image marker",
        ));
    }
    let image = reader(bytes, kind, limits).decode().map_err(|e| {
        ImageRejection::new(
            RejectReason::Corrupt,
            format!("{kind} does not decode: {e}"),
        )
    })?;
    if (image.width(), image.height()) != (width, height) {
        // A header that lies about the size is as broken as one that does not parse.
        return Err(ImageRejection::new(
            RejectReason::Corrupt,
            format!(
                "header says {width}×{height}, pixels are {}×{}",
                image.width(),
                image.height()
            ),
        ));
    }
    Ok(ValidImage {
        image,
        kind,
        width,
        height,
    })
}

/// Width and height from the header only, without decoding pixels.
fn header_dimensions(
    bytes: &[u8],
    kind: ImageKind,
    limits: &Limits,
) -> Result<(u32, u32), ImageRejection> {
    reader(bytes, kind, limits).into_dimensions().map_err(|e| {
        ImageRejection::new(
            RejectReason::Corrupt,
            format!("{kind} header does not parse: {e}"),
        )
    })
}

fn check_size(width: u32, height: u32, limits: &Limits) -> Result<(), ImageRejection> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImageRejection::new(
            RejectReason::TooLargePixels,
            format!(
                "{width}×{height} = {pixels} pixels, more than {}",
                limits.max_pixels
            ),
        ));
    }
    if width.min(height) < limits.min_side {
        return Err(ImageRejection::new(
            RejectReason::TooSmall,
            format!("{width}×{height}: short side under {} px", limits.min_side),
        ));
    }
    Ok(())
}

/// A reader for the sniffed format (never guessed from anything else), with decoder
/// limits derived from ours.
fn reader<'a>(bytes: &'a [u8], kind: ImageKind, limits: &Limits) -> ImageReader<Cursor<&'a [u8]>> {
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(kind.format());
    reader.limits(decoder_limits(limits));
    reader
}

/// Bytes per pixel of the widest buffer a decoder produces (RGBA, 32-bit float).
const MAX_BYTES_PER_PIXEL: u64 = 16;

/// Headroom for decoder tables and scratch buffers beyond the output image.
const DECODER_SCRATCH_BYTES: u64 = 64 << 20;

fn decoder_limits(limits: &Limits) -> image::Limits {
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut decoder = image::Limits::default();
    decoder.max_image_width = Some(side);
    decoder.max_image_height = Some(side);
    decoder.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(MAX_BYTES_PER_PIXEL)
            .saturating_add(DECODER_SCRATCH_BYTES),
    );
    decoder
}

/// Whether a JPEG's marker structure reaches its end-of-image marker (`FF D9`).
///
/// The segments are walked by their lengths from the start-of-image marker, so an EXIF
/// thumbnail's own `FF D9` inside APP1 does not count; after each start-of-scan the
/// entropy-coded data is searched for the next marker (`FF 00` is a stuffed byte,
/// `FF D0`–`FF D7` are restart markers). Stray bytes where a marker should be are skipped,
/// as libjpeg does. A download cut short ends before the marker is reached. Anything after
/// the marker (a Motion Photo's MP4, a trailing newline) is ignored.
pub fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut at = 2;
    loop {
        // the next marker: FF (fill FFs allowed) and a code
        let Some(start) = next_ff(bytes, at) else {
            return false;
        };
        let Some(code) = bytes[start..]
            .iter()
            .position(|&b| b != 0xFF)
            .map(|i| start + i)
        else {
            return false;
        };
        at = code + 1;
        match bytes[code] {
            0xD9 => return true,
            // markers without a segment: TEM, restarts, a stray start-of-image
            0x01 | 0xD0..=0xD8 => {}
            marker => {
                let Some(length) = bytes.get(at..at + 2) else {
                    return false;
                };
                at += usize::from(u16::from_be_bytes([length[0], length[1]]));
                if marker == 0xDA {
                    match end_of_entropy_data(bytes, at) {
                        Some(next_marker) => at = next_marker,
                        None => return false,
                    }
                }
            }
        }
    }
}

/// The index of the first `FF` at or after `from`.
fn next_ff(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|&b| b == 0xFF)
        .map(|i| from + i)
}

/// Where the entropy-coded data starting at `from` ends: the index of the first `FF`
/// that starts a marker other than a stuffed byte (`FF 00`) or a restart (`FF D0`–`D7`).
fn end_of_entropy_data(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let ff = next_ff(bytes, from)?;
        match *bytes.get(ff + 1)? {
            0x00 | 0xD0..=0xD7 => from = ff + 2,
            0xFF => from = ff + 1,
            _ => return Some(ff),
        }
    }
}

/// The first bytes in hex, for reject details.
fn hex_prefix(bytes: &[u8]) -> String {
    const SHOWN: usize = 8;
    if bytes.is_empty() {
        return "(empty file)".into();
    }
    bytes
        .iter()
        .take(SHOWN)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    const SAMPLE_JPEG: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/datasets/five-class/animals/caltech101_Leopards_image_0001.jpg"
    );

    fn real_jpeg() -> Vec<u8> {
        std::fs::read(SAMPLE_JPEG).expect("the five-class photo set is present")
    }

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 7) as u8, (y * 5) as u8, 90])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), format)
            .unwrap();
        out
    }

    #[test]
    fn sniff_names_every_accepted_format_by_magic_bytes() {
        let cases = [
            (ImageFormat::Jpeg, ImageKind::Jpeg),
            (ImageFormat::Png, ImageKind::Png),
            (ImageFormat::Gif, ImageKind::Gif),
            (ImageFormat::WebP, ImageKind::WebP),
            (ImageFormat::Bmp, ImageKind::Bmp),
            (ImageFormat::Tiff, ImageKind::Tiff),
        ];
        for (format, kind) in cases {
            assert_eq!(sniff(&encoded(40, 40, format)), Some(kind), "{format:?}");
        }
    }

    #[test]
    fn sniff_ignores_text_and_empty_input() {
        assert_eq!(sniff(b"<!doctype html><html></html>"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"BM"), None);
    }

    #[test]
    fn a_real_photo_validates_with_its_header_size() {
        let valid = validate(&real_jpeg(), &Limits::default()).unwrap();
        assert_eq!(valid.kind, ImageKind::Jpeg);
        assert_eq!(
            (valid.image.width(), valid.image.height()),
            (valid.width, valid.height)
        );
        assert!(valid.width.min(valid.height) >= 32);
    }

    #[test]
    fn every_accepted_format_round_trips_through_validate() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Gif,
            ImageFormat::WebP,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
        ] {
            let valid = validate(&encoded(48, 40, format), &Limits::default())
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((valid.width, valid.height), (48, 40), "{format:?}");
        }
    }

    #[test]
    fn html_behind_a_jpg_name_is_not_an_image() {
        let err = validate(b"<!doctype html><p>hello</p>", &Limits::default()).unwrap_err();
        assert_eq!(err.reason, RejectReason::NotAnImage);
        assert!(err.detail.contains("3c 21"), "{}", err.detail);
    }

    #[test]
    fn a_truncated_jpeg_is_corrupt() {
        let bytes = real_jpeg();
        for fraction in [0.3, 0.6, 0.95] {
            let cut = &bytes[..(bytes.len() as f64 * fraction) as usize];
            let err = validate(cut, &Limits::default()).unwrap_err();
            assert_eq!(
                err.reason,
                RejectReason::Corrupt,
                "cut at {fraction}: {err}"
            );
        }
    }

    /// Why the end-marker check exists: image 0.25's JPEG decoder returns a full-size
    /// picture for a file cut at 60 %, the missing rows filled in. Should a later
    /// decoder refuse such files, this test fails and the check is merely redundant.
    #[test]
    fn the_jpeg_decoder_alone_accepts_a_truncated_file() {
        let bytes = real_jpeg();
        let cut = &bytes[..bytes.len() * 6 / 10];
        let decoded = image::load_from_memory_with_format(cut, ImageFormat::Jpeg);
        assert!(
            decoded.is_ok(),
            "the decoder now refuses truncated JPEGs: {decoded:?}"
        );
        assert!(!jpeg_has_end_marker(cut));
    }

    #[test]
    fn a_jpeg_cut_inside_its_header_is_corrupt() {
        let bytes = real_jpeg();
        let err = validate(&bytes[..40], &Limits::default()).unwrap_err();
        assert_eq!(err.reason, RejectReason::Corrupt, "{err}");
    }

    #[test]
    fn end_marker_check_walks_the_segments() {
        assert!(jpeg_has_end_marker(&[0xFF, 0xD8, 0x01, 0xFF, 0xD9]));
        assert!(jpeg_has_end_marker(&[
            0xFF, 0xD8, 0x01, 0xFF, 0xD9, 0, 0, 0
        ]));
        assert!(!jpeg_has_end_marker(&[0xFF, 0xD8, 0x01, 0x02]));
        assert!(!jpeg_has_end_marker(&[]));
        // a scan whose data holds a stuffed FF 00 and a restart marker, then EOI
        let scan = [
            0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56,
        ];
        assert!(!jpeg_has_end_marker(&scan), "cut inside the scan");
        assert!(jpeg_has_end_marker(&[&scan[..], &[0xFF, 0xD9]].concat()));
    }

    /// A camera JPEG with one newline after its end-of-image marker was refused as
    /// truncated (the check demanded that the file end with FF D9).
    #[test]
    fn a_jpeg_with_a_newline_after_its_end_marker_is_accepted() {
        let bytes = [real_jpeg(), b"\n".to_vec()].concat();
        let valid = validate(&bytes, &Limits::default()).unwrap();
        assert_eq!(valid.kind, ImageKind::Jpeg);
    }

    /// Phones' Motion Photos append a whole MP4 after the picture's end marker.
    #[test]
    fn a_jpeg_followed_by_a_video_is_accepted() {
        let mut trailer = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom".to_vec();
        trailer.extend((0..4096u32).map(|i| (i * 37 % 251) as u8));
        let bytes = [real_jpeg(), trailer].concat();
        assert!(validate(&bytes, &Limits::default()).is_ok());
    }

    /// An EXIF thumbnail inside APP1 carries its own FF D9: it must not stand in for the
    /// end of a photo whose scan was cut short.
    #[test]
    fn a_thumbnails_end_marker_does_not_hide_a_truncated_photo() {
        let photo = real_jpeg();
        let thumbnail = encoded(16, 16, ImageFormat::Jpeg);
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(&thumbnail);
        let length = u16::try_from(app1.len() + 2).unwrap().to_be_bytes();
        let mut with_thumbnail = vec![0xFF, 0xD8, 0xFF, 0xE1, length[0], length[1]];
        with_thumbnail.extend(&app1);
        with_thumbnail.extend(&photo[2..]);
        assert!(validate(&with_thumbnail, &Limits::default()).is_ok());
        let cut = &with_thumbnail[..with_thumbnail.len() * 7 / 10];
        assert!(
            cut.windows(2).any(|w| w == [0xFF, 0xD9]),
            "the thumbnail's marker is in"
        );
        let err = validate(cut, &Limits::default()).unwrap_err();
        assert_eq!(err.reason, RejectReason::Corrupt, "{err}");
    }

    #[test]
    fn a_truncated_png_is_corrupt() {
        let bytes = encoded(64, 64, ImageFormat::Png);
        let err = validate(&bytes[..bytes.len() * 2 / 3], &Limits::default()).unwrap_err();
        assert_eq!(err.reason, RejectReason::Corrupt, "{err}");
    }

    #[test]
    fn a_small_image_is_too_small() {
        let err = validate(&encoded(100, 20, ImageFormat::Png), &Limits::default()).unwrap_err();
        assert_eq!(err.reason, RejectReason::TooSmall);
        assert_eq!(err.reason.code(), "too-small");
    }

    /// CRC-32 (IEEE) as PNG chunks use it.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A valid PNG header claiming 50 000 × 50 000 pixels over a few hundred bytes of
    /// data: refused from the header, before any pixel buffer exists.
    #[test]
    fn a_decompression_bomb_header_is_refused_before_decoding() {
        let mut bytes = encoded(40, 40, ImageFormat::Png);
        // IHDR: length at 8, type at 12, data (width, height, ...) at 16..29, CRC at 29.
        bytes[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let limits = Limits {
            min_side: 1,
            max_pixels: 10_000_000,
        };
        let err = validate(&bytes, &limits).unwrap_err();
        assert_eq!(err.reason, RejectReason::TooLargePixels, "{err}");
        assert!(err.detail.contains("50000×50000"), "{}", err.detail);
    }

    #[test]
    fn an_image_over_the_pixel_cap_is_too_large_pixels() {
        let limits = Limits {
            min_side: 1,
            max_pixels: 64 * 64 - 1,
        };
        let err = validate(&encoded(64, 64, ImageFormat::Jpeg), &limits).unwrap_err();
        assert_eq!(err.reason, RejectReason::TooLargePixels);
        assert_eq!(err.reason.code(), "too-large-pixels");
    }

    #[test]
    fn rejection_becomes_an_image_error_naming_its_origin() {
        let err = validate(b"nope", &Limits::default())
            .unwrap_err()
            .into_error("upload 7");
        let text = err.to_string();
        assert!(
            text.contains("upload 7") && text.contains("not-an-image"),
            "{text}"
        );
    }
}
