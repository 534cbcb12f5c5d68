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

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

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

/// What decoding an image will take, read from its header alone (and, for a GIF, from
/// every frame's descriptor): nothing here allocates pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodePlan {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    /// Bytes per pixel of the decoder's own output (6 for 16-bit RGB, 16 for float RGBA).
    pub bytes_per_pixel: u8,
    /// The most bytes of pixels held at once while decoding and using the image: the
    /// decoder's buffer, one 8-bit working copy (the 16-bit to 8-bit reduction, an EXIF
    /// turn or a colour conversion) and, for a GIF whose first frame does not cover its
    /// screen, that frame's own buffer.
    pub peak_bytes: u64,
}

/// Sniffs, size-checks from the header, decodes fully and checks a JPEG's end marker.
/// 16-bit and floating-point images come back reduced to 8 bits per channel.
pub fn validate(bytes: &[u8], limits: &Limits) -> Result<ValidImage, ImageRejection> {
    plan_decode(bytes, limits)?.decode()
}

/// An image whose header has been read and checked, with the decoder that read it: the
/// decode goes on from there, so the header is parsed once. Holds no pixels yet.
pub struct PlannedDecode<'a> {
    pub plan: DecodePlan,
    decoder: Box<dyn ImageDecoder + 'a>,
}

impl fmt::Debug for PlannedDecode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedDecode")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// Every check that needs no pixels: the magic bytes, the header's size against the
/// limits, each GIF frame against the pixel cap, a JPEG's end marker; and what decoding
/// will cost. Cheap: call it before deciding whether there is memory to decode.
pub fn plan_decode<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<PlannedDecode<'a>, ImageRejection> {
    let kind = sniff(bytes).ok_or_else(|| {
        ImageRejection::new(
            RejectReason::NotAnImage,
            format!("unknown magic bytes {}", hex_prefix(bytes)),
        )
    })?;
    let decoder = header_decoder(bytes, kind, limits)?;
    let (width, height) = decoder.dimensions();
    let bytes_per_pixel = decoder.color_type().bytes_per_pixel();
    check_size(width, height, limits)?;
    // the output buffer against the decoder's allocation limit, as `ImageReader::decode`
    // checks it
    decoder_limits(limits)
        .reserve(decoder.total_bytes())
        .map_err(|e| ImageRejection::new(RejectReason::TooLargePixels, e.to_string()))?;
    if kind == ImageKind::Jpeg && !jpeg_has_end_marker(bytes) {
        return Err(ImageRejection::new(
            RejectReason::Corrupt,
            "JPEG is truncated: no end-of-image marker",
        ));
    }
    let pixels = u64::from(width) * u64::from(height);
    let working_copy = pixels * u64::from(bytes_per_pixel.min(4));
    let mut peak_bytes = pixels * u64::from(bytes_per_pixel) + working_copy;
    if kind == ImageKind::Gif {
        let frames = gif_frames(bytes);
        for (index, frame) in frames.iter().enumerate() {
            let frame_pixels = u64::from(frame.width) * u64::from(frame.height);
            if frame_pixels > limits.max_pixels {
                return Err(ImageRejection::new(
                    RejectReason::TooLargePixels,
                    format!(
                        "GIF frame {} is {}×{} = {frame_pixels} pixels, more than {}",
                        index + 1,
                        frame.width,
                        frame.height,
                        limits.max_pixels
                    ),
                ));
            }
        }
        // The decoder reads a first frame that does not fill the screen into a buffer
        // of its own before placing it.
        if let Some(first) = frames.first()
            && !first.fills_width_of(width, height)
        {
            peak_bytes += u64::from(first.width) * u64::from(first.height) * 4;
        }
    }
    Ok(PlannedDecode {
        plan: DecodePlan {
            kind,
            width,
            height,
            bytes_per_pixel,
            peak_bytes,
        },
        decoder,
    })
}

impl PlannedDecode<'_> {
    /// Decodes the image [`plan_decode`] passed: the whole image must decode at the size
    /// its header gave. 16-bit and floating-point pixels are reduced to 8 bits per
    /// channel at once, so nothing downstream holds the wide buffer.
    pub fn decode(self) -> Result<ValidImage, ImageRejection> {
        let DecodePlan {
            kind,
            width,
            height,
            ..
        } = self.plan;
        let image = DynamicImage::from_decoder(self.decoder).map_err(|e| {
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
            image: to_eight_bits(image),
            kind,
            width,
            height,
        })
    }
}

/// The same picture at 8 bits per channel, channels kept (a 16-bit grey PNG stays grey).
pub fn to_eight_bits(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(image.to_luma8()),
        DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLumaA8(image.to_luma_alpha8()),
        DynamicImage::ImageRgb16(_) | DynamicImage::ImageRgb32F(_) => {
            DynamicImage::ImageRgb8(image.to_rgb8())
        }
        DynamicImage::ImageRgba16(_) | DynamicImage::ImageRgba32F(_) => {
            DynamicImage::ImageRgba8(image.to_rgba8())
        }
        eight_bit => eight_bit,
    }
}

/// Width, height and the decoder's bytes per pixel, from the header only.
/// The decoder for `bytes`, its header read, the decoder limits set.
fn header_decoder<'a>(
    bytes: &'a [u8],
    kind: ImageKind,
    limits: &Limits,
) -> Result<Box<dyn ImageDecoder + 'a>, ImageRejection> {
    let unparsable = |e: image::ImageError| {
        ImageRejection::new(
            RejectReason::Corrupt,
            format!("{kind} header does not parse: {e}"),
        )
    };
    let decoder = reader(bytes, kind, limits)
        .into_decoder()
        .map_err(unparsable)?;
    Ok(Box::new(decoder))
}

/// Where one GIF image sits on the logical screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GifFrame {
    left: u32,
    top: u32,
    width: u32,
    height: u32,
}

impl GifFrame {
    /// Whether the decoder can write this frame straight into the screen's buffer (it
    /// spans the full width and ends within the height).
    fn fills_width_of(&self, width: u32, height: u32) -> bool {
        self.left == 0 && self.width == width && self.top + self.height <= height
    }
}

/// Every image descriptor of a GIF, walked by the block structure alone (no LZW
/// decoding): the logical screen says nothing about how large each frame is, and a
/// 16 × 16 screen may hold a 16 000 × 16 000 frame. The walk stops quietly at anything
/// malformed; the decoder reports that.
fn gif_frames(bytes: &[u8]) -> Vec<GifFrame> {
    let mut frames = Vec::new();
    let le16 = |at: usize| -> Option<u32> {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let colour_table = |packed: u8| -> usize {
        if packed & 0x80 != 0 {
            3 << ((packed & 0x07) + 1)
        } else {
            0
        }
    };
    // Data sub-blocks: a length byte and that many bytes, until a zero length.
    let skip_sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let length = usize::from(*bytes.get(at)?);
            at += 1;
            if length == 0 {
                return Some(at);
            }
            at += length;
        }
    };
    let Some(&screen_packed) = bytes.get(10) else {
        return frames;
    };
    let mut at = 13 + colour_table(screen_packed);
    while let Some(&introducer) = bytes.get(at) {
        match introducer {
            0x21 => match skip_sub_blocks(at + 2) {
                Some(next) => at = next,
                None => break,
            },
            0x2C => {
                let (Some(left), Some(top), Some(width), Some(height), Some(&packed)) = (
                    le16(at + 1),
                    le16(at + 3),
                    le16(at + 5),
                    le16(at + 7),
                    bytes.get(at + 9),
                ) else {
                    break;
                };
                frames.push(GifFrame {
                    left,
                    top,
                    width,
                    height,
                });
                // the table, then the LZW minimum code size, then the data
                match skip_sub_blocks(at + 10 + colour_table(packed) + 1) {
                    Some(next) => at = next,
                    None => break,
                }
            }
            _ => break, // the trailer (0x3B) or something broken
        }
    }
    frames
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

    /// A GIF's logical screen says nothing of its frames' sizes: 16 × 16 pixels.
    fn gif_with_frame(width: u16, height: u16) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend(16u16.to_le_bytes());
        gif.extend(16u16.to_le_bytes());
        gif.extend([0x80, 0, 0]); // a global table of 2 colours
        gif.extend([0, 0, 0, 255, 255, 255]);
        gif.extend([0x21, 0xF9, 4, 0, 10, 0, 0, 0]); // a graphic control extension
        gif.push(0x2C);
        for value in [0, 0, width, height] {
            gif.extend(value.to_le_bytes());
        }
        gif.extend([0, 2, 2, 0x4C, 0x01, 0]); // no local table; a tiny LZW stream
        gif.push(0x3B);
        gif
    }

    /// Finding "a GIF whose logical screen is 16×16 with one 16000×16000 frame is
    /// accepted (1 GiB during upload)": every frame is held to the pixel cap, from its
    /// descriptor, before anything is decoded.
    #[test]
    fn a_gif_frame_larger_than_its_screen_is_held_to_the_pixel_cap() {
        let limits = Limits {
            min_side: 1,
            ..Limits::default()
        };
        let bomb = gif_with_frame(16_000, 16_000);
        let err = plan_decode(&bomb, &limits).unwrap_err();
        assert_eq!(err.reason, RejectReason::TooLargePixels, "{err}");
        assert!(err.detail.contains("16000×16000"), "{}", err.detail);
        // a frame within the cap but beyond the screen is counted in the peak
        let wide = gif_with_frame(1000, 1000);
        let plan = plan_decode(&wide, &limits).unwrap().plan;
        assert!(plan.peak_bytes >= 1000 * 1000 * 4, "{plan:?}");
    }

    #[test]
    fn gif_frames_are_read_from_the_block_structure() {
        let mut bytes = Vec::new();
        {
            let mut encoder = image::codecs::gif::GifEncoder::new(&mut bytes);
            for (w, h) in [(40, 36), (40, 36), (40, 36)] {
                let frame = image::Frame::new(image::RgbaImage::new(w, h));
                encoder.encode_frame(frame).unwrap();
            }
        }
        let frames = gif_frames(&bytes);
        assert_eq!(frames.len(), 3);
        assert!(
            frames.iter().all(|f| (f.width, f.height) == (40, 36)),
            "{frames:?}"
        );
        assert!(validate(&bytes, &Limits::default()).is_ok());
        assert!(gif_frames(&bytes[..bytes.len() / 2]).len() < 3);
        assert!(gif_frames(b"GIF8").is_empty());
    }

    /// Finding "a 16-bit 9000×9000 PNG is accepted (870 MiB)": its plan counts 6 bytes
    /// a pixel, and what comes back holds 3.
    #[test]
    fn a_16_bit_png_is_counted_at_its_width_and_reduced_to_8_bits() {
        let wide = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 1000) as u16, (y * 1000) as u16, 65535])
        });
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb16(wide)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        let planned = plan_decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(planned.plan.bytes_per_pixel, 6);
        assert_eq!(planned.plan.peak_bytes, 64 * 48 * (6 + 4));
        let valid = planned.decode().unwrap();
        assert_eq!(valid.image.color(), image::ColorType::Rgb8);
        assert_eq!(valid.image.to_rgb8().get_pixel(1, 0).0, [4, 0, 255]);
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
