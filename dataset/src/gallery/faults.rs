//! Faults planted on the gallery so that a crawl can prove it handles the web's mess.
//!
//! All of them sit on page 1 of the first class (alphabetically), after the real
//! photos, as ordinary `<figure class="photo">` links under `/photos/<class>/`, so a
//! crawler cannot tell them apart by markup. Each has the reject code a correct crawler
//! records for it; the audit checks those codes.

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::listing::{ClassPhotos, PhotoFolder, percent_encode};
use crate::{Error, Result};

/// The class the five-class photo set plants its faults in (its first, alphabetically).
pub const DEFAULT_FAULT_CLASS: &str = "animals";

/// Size the oversized photo announces and streams: 1 GiB.
pub const HUGE_PHOTO_BYTES: u64 = 1 << 30;

/// Share of a real photo's bytes the truncated copy keeps: 6/10.
const TRUNCATED_KEEP: (usize, usize) = (6, 10);

/// What kind of trouble a planted link leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The link answers 404.
    BrokenLink,
    /// The bytes of a real photo of the class, under another name.
    ExactDuplicate,
    /// HTML text served as `image/jpeg` behind a `.jpg` link.
    NotAnImage,
    /// The first 60 % of a real JPEG.
    TruncatedJpeg,
    /// A redirects to B, B redirects to A.
    RedirectLoop,
    /// The link answers 500.
    ServerError,
    /// A 1 GiB "JPEG", streamed on the fly.
    TooLarge,
}

impl FaultKind {
    /// Every kind, in the order the links appear on the page.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::BrokenLink,
        FaultKind::ExactDuplicate,
        FaultKind::NotAnImage,
        FaultKind::TruncatedJpeg,
        FaultKind::RedirectLoop,
        FaultKind::ServerError,
        FaultKind::TooLarge,
    ];

    /// The reject code a correct crawler records (agreed with the crawler).
    pub fn expected_reason(self) -> &'static str {
        match self {
            FaultKind::BrokenLink => "http-404",
            FaultKind::ExactDuplicate => "exact-duplicate",
            FaultKind::NotAnImage => "not-an-image",
            FaultKind::TruncatedJpeg => "corrupt",
            FaultKind::RedirectLoop => "redirect-loop",
            FaultKind::ServerError => "http-500",
            FaultKind::TooLarge => "too-large-bytes",
        }
    }

    /// The file name of the linked URL.
    fn file_name(self) -> &'static str {
        match self {
            FaultKind::BrokenLink => "planted-missing.jpg",
            FaultKind::ExactDuplicate => "planted-duplicate.jpg",
            FaultKind::NotAnImage => "planted-not-an-image.jpg",
            FaultKind::TruncatedJpeg => "planted-truncated.jpg",
            FaultKind::RedirectLoop => LOOP_A,
            FaultKind::ServerError => "planted-server-error.jpg",
            FaultKind::TooLarge => "planted-huge.jpg",
        }
    }
}

/// The second half of the redirect loop; only reachable through the first.
const LOOP_A: &str = "planted-loop-a.jpg";
const LOOP_B: &str = "planted-loop-b.jpg";

/// One planted link: its URL path, its kind and the reject code expected for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedFault {
    /// URL path as linked from the page, e.g. `/photos/animals/planted-missing.jpg`.
    pub path: String,
    pub kind: FaultKind,
    pub expected_reason: &'static str,
}

/// The faults planted on the five-class photo set (first class: `animals`).
pub fn planted_faults() -> Vec<PlantedFault> {
    planted_faults_in(DEFAULT_FAULT_CLASS)
}

/// The faults planted when `class` is the gallery's first class.
pub fn planted_faults_in(class: &str) -> Vec<PlantedFault> {
    FaultKind::ALL
        .iter()
        .map(|&kind| PlantedFault {
            path: fault_path(class, kind.file_name()),
            kind,
            expected_reason: kind.expected_reason(),
        })
        .collect()
}

/// The URL path the redirect loop's first link redirects to (and which redirects back);
/// a crawler may report the loop under either.
pub fn redirect_loop_partner_path(class: &str) -> String {
    fault_path(class, LOOP_B)
}

fn fault_path(class: &str, file: &str) -> String {
    format!("/photos/{}/{}", percent_encode(class), percent_encode(file))
}

/// The bytes the faults serve, prepared when the gallery opens.
#[derive(Debug, Clone)]
pub(crate) struct FaultAssets {
    pub class: String,
    /// The real photo the duplicate copies (the class's first photo).
    pub duplicated_file: String,
    duplicate: Bytes,
    truncated: Bytes,
}

impl FaultAssets {
    /// Reads the photos the faults are made from, in the folder's first class.
    pub fn prepare(folder: &PhotoFolder) -> Result<Self> {
        let class = folder
            .classes
            .first()
            .ok_or_else(|| Error::Data("no class to plant faults in".into()))?;
        reject_name_clashes(class)?;
        let duplicated_file = class.files[0].clone();
        // A different photo for the truncation where there is one, so the two faults
        // cannot be mistaken for each other.
        let truncated_source = class.files.get(1).unwrap_or(&class.files[0]);
        let read = |file: &str| {
            let path = folder.file_path(&class.name, file);
            std::fs::read(&path).map_err(|e| Error::io("read", path, e))
        };
        let duplicate = read(&duplicated_file)?;
        let whole = read(truncated_source)?;
        let keep = whole.len() * TRUNCATED_KEEP.0 / TRUNCATED_KEEP.1;
        Ok(FaultAssets {
            class: class.name.clone(),
            duplicated_file,
            duplicate: Bytes::from(duplicate),
            truncated: Bytes::from(whole).slice(..keep),
        })
    }

    /// The response for a planted file name of the fault class, if it is one.
    pub fn respond(&self, file: &str) -> Option<Response> {
        if file == LOOP_B {
            return Some(redirect(&fault_path(&self.class, LOOP_A)));
        }
        let kind = FaultKind::ALL.into_iter().find(|k| k.file_name() == file)?;
        Some(match kind {
            FaultKind::BrokenLink => (StatusCode::NOT_FOUND, "no such photo\n").into_response(),
            FaultKind::ExactDuplicate => jpeg(Body::from(self.duplicate.clone())),
            FaultKind::NotAnImage => jpeg(Body::from(NOT_AN_IMAGE_HTML)),
            FaultKind::TruncatedJpeg => jpeg(Body::from(self.truncated.clone())),
            FaultKind::RedirectLoop => redirect(&fault_path(&self.class, LOOP_B)),
            FaultKind::ServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (planted)\n",
            )
                .into_response(),
            FaultKind::TooLarge => huge_jpeg(),
        })
    }
}

/// Refuses to open when a real photo has a planted name: it could never be served.
fn reject_name_clashes(class: &ClassPhotos) -> Result<()> {
    let planted = FaultKind::ALL.iter().map(|k| k.file_name()).chain([LOOP_B]);
    match planted.into_iter().find(|name| class.contains(name)) {
        Some(name) => Err(Error::Data(format!(
            "class {} has a photo named {name}, which the gallery uses for a planted fault; \
             rename it or serve with faults off",
            class.name
        ))),
        None => Ok(()),
    }
}

const NOT_AN_IMAGE_HTML: &str =
    "<!doctype html><html><body><p>This is a web page, not a photo.</p></body></html>\n";

fn jpeg(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], body).into_response()
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// A JPEG start (SOI + JFIF APP0) and then zero filler up to 1 GiB, generated chunk by
/// chunk as the client reads, so the server never holds more than one chunk.
fn huge_jpeg() -> Response {
    const CHUNK: usize = 64 * 1024;
    static FILLER: [u8; CHUNK] = [0; CHUNK];
    const JPEG_START: [u8; 20] = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    let chunks = HUGE_PHOTO_BYTES / CHUNK as u64;
    let stream = futures::stream::iter((0..chunks).map(move |i| {
        let chunk = if i == 0 {
            let mut first = FILLER.to_vec();
            first[..JPEG_START.len()].copy_from_slice(&JPEG_START);
            Bytes::from(first)
        } else {
            Bytes::from_static(&FILLER)
        };
        Ok::<_, std::io::Error>(chunk)
    }));
    (
        [
            (header::CONTENT_TYPE, "image/jpeg".to_owned()),
            (header::CONTENT_LENGTH, HUGE_PHOTO_BYTES.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_agreed_reject_code_and_a_distinct_path() {
        let faults = planted_faults();
        let reasons: Vec<_> = faults.iter().map(|f| f.expected_reason).collect();
        assert_eq!(
            reasons,
            [
                "http-404",
                "exact-duplicate",
                "not-an-image",
                "corrupt",
                "redirect-loop",
                "http-500",
                "too-large-bytes"
            ]
        );
        let mut paths: Vec<_> = faults.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), faults.len());
        assert!(paths.iter().all(|p| p.starts_with("/photos/animals/")));
    }
}
