//! What happens to each uploaded file before anything is stored: the name is checked,
//! the type is read from the magic bytes (never from the name), the header's size is
//! checked against the pixel cap before decoding (decompression bombs), the whole image
//! is decoded (truncated and corrupt files), and the EXIF orientation, date, GPS and
//! camera are read. Only a file that passes every step is written.

use std::ops::Deref;
use std::time::Duration;

use album_dataset::image_check::{
    self, DecodePlan, ImageKind, ImageRejection, Limits, RejectReason,
};
use image::DynamicImage;

use crate::blobs::sha256_hex;
use crate::budget::{MemoryBudget, Reservation};
use crate::error::{Error, Result};
use crate::media::{self, PhotoMeta};

/// How this album decodes photos: the pixel cap for new ones, and the memory budget
/// every decode draws its peak from before it starts (see [`crate::budget`]).
#[derive(Debug, Clone)]
pub struct Decoding {
    pub budget: MemoryBudget,
    pub max_pixels: u64,
    /// How long a request's decode waits for memory before it is answered 503.
    pub request_wait: Duration,
}

/// How long a decode may wait for memory held by other work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// A request: [`Decoding::request_wait`], then 503 with `Retry-After`.
    Request,
    /// Background work: as long as it takes.
    Job,
}

impl Decoding {
    /// Holds `plan`'s peak from the budget for the decode about to start.
    fn hold(&self, plan: &DecodePlan, patience: Patience, what: &str) -> Result<Reservation> {
        let held = match patience {
            Patience::Request => self
                .budget
                .reserve_within(plan.peak_bytes, self.request_wait),
            Patience::Job => self.budget.reserve(plan.peak_bytes),
        };
        held.map_err(|e| {
            e.into_error(&format!(
                "{what} ({}×{} {}, {} bytes a pixel)",
                plan.width, plan.height, plan.kind, plan.bytes_per_pixel
            ))
        })
    }
}

/// A decoded photo, holding its memory from the budget until dropped.
pub struct Decoded {
    image: DynamicImage,
    _held: Reservation,
}

impl Deref for Decoded {
    type Target = DynamicImage;

    fn deref(&self) -> &DynamicImage {
        &self.image
    }
}

/// An uploaded file that passed every check.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sha256: String,
    pub kind: ImageKind,
    /// Upright size (after the EXIF orientation).
    pub width: u32,
    pub height: u32,
    pub meta: PhotoMeta,
}

/// The MIME type the album serves a stored kind as.
pub(crate) fn mime_of(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Jpeg => "image/jpeg",
        ImageKind::Png => "image/png",
        ImageKind::Gif => "image/gif",
        ImageKind::WebP => "image/webp",
        ImageKind::Bmp => "image/bmp",
        ImageKind::Tiff => "image/tiff",
    }
}

/// Whether `c` has no place in a name a person typed: a control character, or a
/// bidirectional-text control (U+200E/F, U+202A–E, U+2066–9, U+061C), which can make a
/// name display as something else ("photo\u{202E}gpj.exe" shows as "photoexe.jpg").
pub(crate) fn is_unsafe_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Refuses file names that are not a plain name: path separators, `..`, control
/// characters, or too long. The name is only ever shown (blobs are stored by hash), but
/// a client sending `../../etc/passwd` is broken or hostile and gets told so.
pub(crate) fn check_file_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::BadRequest(format!("file name {name:?} {why}")));
    if name.trim().is_empty() {
        return bad("is empty");
    }
    if name.len() > 255 {
        return bad("is longer than 255 bytes");
    }
    if name.contains(['/', '\\']) {
        return bad("contains a path separator; send a plain file name");
    }
    if name == "." || name == ".." {
        return bad("is not a file name");
    }
    if name.chars().any(is_unsafe_in_name) {
        return bad("contains control or text-direction characters");
    }
    Ok(())
}

/// Every check for one file; see the module docs. The decode waits for memory as a
/// request does.
pub fn inspect(name: String, bytes: Vec<u8>, decoding: &Decoding) -> Result<Inspected> {
    check_file_name(&name)?;
    if bytes.is_empty() {
        return Err(Error::BadImage(format!("{name:?} is empty")));
    }
    let Some(kind) = image_check::sniff(&bytes) else {
        return Err(Error::UnsupportedType(format!(
            "{name:?} is not a JPEG, PNG, GIF, WebP, BMP or TIFF image (judged by its \
             first bytes, whatever its name says)"
        )));
    };
    let limits = Limits {
        min_side: 1,
        max_pixels: decoding.max_pixels,
    };
    let refused = |rejection: ImageRejection| {
        let what = match rejection.reason {
            RejectReason::TooLargePixels => "is over the pixel cap",
            RejectReason::NotAnImage => "is not an image",
            RejectReason::Corrupt | RejectReason::TooSmall => "does not decode",
        };
        Error::BadImage(format!("{name:?} {what}: {}", rejection.detail))
    };
    let planned = image_check::plan_decode(&bytes, &limits).map_err(refused)?;
    let held = decoding.hold(&planned.plan, Patience::Request, &format!("{name:?}"))?;
    let valid = planned.decode().map_err(refused)?;
    drop((valid.image, held)); // only the facts are kept
    let meta = media::read_meta(&bytes);
    let (width, height) = upright_size(valid.width, valid.height, meta.orientation);
    Ok(Inspected {
        name,
        sha256: sha256_hex(&bytes),
        bytes,
        kind,
        width,
        height,
        meta,
    })
}

/// Orientations 5–8 turn the picture a quarter, swapping its sides.
pub(crate) fn upright_size(width: u32, height: u32, orientation: u16) -> (u32, u32) {
    if (5..=8).contains(&orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// Decodes a stored photo and turns it upright, its peak memory held from the budget
/// first (16-bit pixels come back as 8-bit). Stored photos passed the pixel cap when
/// they came in; the budget alone bounds them now, so lowering the cap later never
/// makes a stored photo undecodable.
pub(crate) fn decode_upright(
    bytes: &[u8],
    orientation: u16,
    decoding: &Decoding,
    patience: Patience,
) -> Result<Decoded> {
    let limits = Limits {
        min_side: 1,
        max_pixels: u64::MAX,
    };
    let broken = |rejection: ImageRejection| Error::internal("decoding a stored photo", rejection);
    let planned = image_check::plan_decode(bytes, &limits).map_err(broken)?;
    let held = decoding.hold(&planned.plan, patience, "a stored photo")?;
    let valid = planned.decode().map_err(broken)?;
    Ok(Decoded {
        image: media::apply_orientation(valid.image, orientation),
        _held: held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding "right-to-left-override characters accepted in names".
    #[test]
    fn text_direction_controls_are_refused_in_names() {
        for name in ["photo\u{202E}gpj.exe", "a\u{2066}b.jpg", "\u{200F}x.png"] {
            assert!(check_file_name(name).is_err(), "{name:?}");
        }
        assert!(check_file_name("café – 東京.jpg").is_ok());
        assert!(!is_unsafe_in_name('é') && is_unsafe_in_name('\u{202E}'));
    }

    #[test]
    fn hostile_file_names_are_refused() {
        for name in [
            "../../etc/passwd",
            "..\\..\\windows\\win.ini",
            "a/b.jpg",
            "..",
            "",
            "bad\u{0}name.jpg",
            "new\nline.jpg",
        ] {
            assert!(check_file_name(name).is_err(), "{name:?} was accepted");
        }
        for name in [
            "IMG_0001.JPG",
            "holiday photo (1).jpeg",
            "日本.png",
            "..hidden.jpg",
        ] {
            assert!(check_file_name(name).is_ok(), "{name:?} was refused");
        }
    }

    #[test]
    fn quarter_turns_swap_the_sides() {
        assert_eq!(upright_size(40, 30, 1), (40, 30));
        assert_eq!(upright_size(40, 30, 3), (40, 30));
        assert_eq!(upright_size(40, 30, 6), (30, 40));
        assert_eq!(upright_size(40, 30, 8), (30, 40));
    }
}
