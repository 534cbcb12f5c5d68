//! Paths shared by the integration tests: the weights folder and the committed fixtures.

#![allow(dead_code)]

use std::path::PathBuf;

/// The folder `scripts/fetch-face-weights.sh` fills (`$ALBUM_FACE_WEIGHTS` overrides it).
pub fn weights_dir() -> PathBuf {
    std::env::var_os("ALBUM_FACE_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/weights"))
}

/// `faces/fixtures/`, made by `scripts/make_face_fixtures.py`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `../shared/datasets/faces` seen from the repository root (`$ALBUM_FACES_DIR` overrides it).
pub fn lfw_dir() -> PathBuf {
    std::env::var_os("ALBUM_FACES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/faces")
        })
}
