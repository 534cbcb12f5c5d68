//! # album-serving
//!
//! The last stage of smart-album's data flow (dataset → training → eval → serving): the
//! album service. axum over SQLite (WAL, migrations) and a content-addressed blob store;
//! uploads are checked (magic bytes, pixel cap, full decode) and acknowledged only once
//! durable; a job queue persisted in SQLite makes thumbnails, classifies each photo with
//! the packaged model (smart albums, with sticky corrections), finds faces and groups
//! them into people; places come from EXIF GPS offline; GIFs from chosen photos; a small
//! web page is served from the binary.
//!
//! Start with [`app::AppState::open`] and [`app::app`]; `album serve` adds the socket and
//! the workers ([`jobs::Workers`]).

pub mod albums;
pub mod app;
pub mod auth;
pub mod blobs;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod gifs;
pub mod ingest;
pub mod jobs;
pub mod media;
pub mod origin;
pub mod passwords;
pub mod people;
pub mod photos;
pub mod places;
pub mod smart;
pub mod throttle;
pub mod web;

pub use app::{AppState, app};
pub use config::ServeConfig;
pub use error::{Error, Result};
