//! One image link: fetch it, then check and hash it off the async reactor.
//!
//! The checks ([`crate::image_check::validate`]), the SHA-256 and the perceptual hash
//! run on rayon's pool, inside `catch_unwind`: a decoder that panics on hostile bytes
//! costs one `corrupt` reject, not the crawl.

use std::panic::{AssertUnwindSafe, catch_unwind};

use sha2::{Digest, Sha256};
use url::Url;

use super::config::ClassConfig;
use super::fetch::Fetcher;
use crate::image_check::{ImageKind, Limits, RejectReason, validate};
use crate::phash::{Thumbnail, fingerprint};

/// An image that passed every check, ready for the duplicate test and the store.
#[derive(Debug, Clone)]
pub struct Examined {
    pub bytes: Vec<u8>,
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    pub sha256: String,
    pub phash: u64,
    /// Confirms or refuses perceptual-hash candidates, see [`crate::phash`].
    pub thumbnail: Thumbnail,
    /// RFC 3339, UTC, when the download finished.
    pub fetched_at: String,
}

/// What became of one image link before the duplicate test.
#[derive(Debug, Clone)]
pub enum ImageOutcome {
    Passed(Box<Examined>),
    Rejected { reason: String, detail: String },
}

impl ImageOutcome {
    fn rejected(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        ImageOutcome::Rejected {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

/// Fetches an image link (robots.txt, host rules and byte cap applied) and examines it.
pub async fn fetch_and_examine(
    fetcher: &Fetcher,
    class: &ClassConfig,
    url: &Url,
    limits: Limits,
) -> ImageOutcome {
    let fetched = match fetcher.fetch(url, &|u: &Url| class.allows_host(u)).await {
        Ok(fetched) => fetched,
        Err(failure) => return ImageOutcome::rejected(failure.reason(), failure.detail()),
    };
    let fetched_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    examine_on_pool(fetched.bytes, limits, fetched_at).await
}

/// Runs [`examine`] on rayon and waits for it without blocking the reactor.
pub async fn examine_on_pool(bytes: Vec<u8>, limits: Limits, fetched_at: String) -> ImageOutcome {
    let (reply, answer) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| examine(bytes, &limits, fetched_at)))
            .unwrap_or_else(|_| {
                ImageOutcome::rejected(
                    RejectReason::Corrupt.code(),
                    "the decoder panicked on these bytes",
                )
            });
        // The receiver is gone only when the crawl is being stopped.
        let _ = reply.send(outcome);
    });
    answer
        .await
        .unwrap_or_else(|_| ImageOutcome::rejected("internal", "the check was abandoned"))
}

/// Validates, then hashes: SHA-256 of the bytes and the perceptual hash of the pixels.
pub fn examine(bytes: Vec<u8>, limits: &Limits, fetched_at: String) -> ImageOutcome {
    let valid = match validate(&bytes, limits) {
        Ok(valid) => valid,
        Err(rejection) => return ImageOutcome::rejected(rejection.reason.code(), rejection.detail),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let (phash, thumbnail) = fingerprint(&valid.image);
    ImageOutcome::Passed(Box::new(Examined {
        thumbnail,
        bytes,
        kind: valid.kind,
        width: valid.width,
        height: valid.height,
        sha256,
        phash,
        fetched_at,
    }))
}
