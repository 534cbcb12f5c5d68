//! # album-dataset
//!
//! The first stage of smart-album's one-way data flow (dataset → training → eval →
//! serving): get photos, check them, drop duplicates, split them 6:2:2 by class, and
//! feed them to burn.
//!
//! - [`crawl`]: a polite crawler (reqwest + scraper) driven by a TOML config, writing a
//!   content-addressed store and a Polars manifest.
//! - [`gallery`]: a small website over a folder of class sub-folders, with planted
//!   faults, that the crawler is tested and demonstrated against on loopback.
//! - [`image_check`]: type sniffing, full decoding and size caps for untrusted bytes.
//! - [`phash`]: the perceptual hash used for near-duplicate detection.
//! - [`manifest`]: the manifest schema and its Parquet/CSV input and output.
//! - [`split`]: the stratified, seeded, duplicate-aware train/val/test split.
//! - [`data`]: burn `Dataset` and `Batcher` with decode caching and augmentation.
//! - [`pack`]: splits re-encoded small enough to travel to a machine without the photos.
//! - [`chart_png`]: charts drawn in memory and written as compact PNGs (every stage).

pub mod chart_png;
pub mod crawl;
pub mod data;
pub mod error;
pub mod gallery;
pub mod image_check;
pub mod manifest;
pub mod pack;
pub mod phash;
pub mod progress;
pub mod split;

pub use error::{Error, Result};
