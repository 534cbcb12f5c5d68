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
//! Start with [`server::serve`] (the whole lifecycle: the album opened, the job
//! workers and the hourly purge started, connections served with header, body and
//! request time-outs, a clean stop), or with [`app::AppState::open`] and [`app::app`]
//! for the router alone, as the tests drive it.
//!
//! Where things are:
//! - the HTTP edge: [`app`] (routes, layers: request span and id, time-outs, origin
//!   checks), [`server`] (connections, lifecycle), [`error`] (one error type, statuses);
//! - containment: [`budget`] (one memory budget for every decode and upload body),
//!   [`throttle`] (sign-in throttling and password-check slots), [`zipstream`] (zip
//!   downloads streamed as written);
//! - photos in: [`ingest`] (the checks and the budgeted decode), [`media`] (EXIF,
//!   renditions, GIF frames), [`blobs`] (content-addressed files);
//! - the features in layers, after Immich's server: [`api`] (thin handlers: HTTP in,
//!   JSON out) over [`service`] (the rules; plain values, no HTTP; each service a small
//!   state held once in [`AppState`] and handed to its handlers through `FromRef`) over
//!   [`repo`] (all of the SQL). Photos (uploads, listings, renditions, the trash),
//!   people (faces, their grouping, corrections), GIFs, albums, places, smart albums,
//!   accounts ([`passwords`] holds the password policy) and the queue's progress;
//!   `tests/layers.rs` checks that no layer imports one above it and that SQL stays in
//!   [`repo`];
//! - background work: [`jobs`] runs the queue's workers (thumbnails, classification,
//!   faces, clustering) over the same services; [`origin`] refuses cross-site cookie
//!   writes;
//! - storage: [`sql`] (one SQL interface over SQLite and Postgres); [`db`] (the pool:
//!   SQLite in the data folder or a shared Postgres; `repo::schema` migrates it);
//!   [`blobs`] (local files or an S3 bucket);
//!   [`check`] verifies an album against its blobs; [`migrate`] moves the blobs.
//!
//! Items are `pub(crate)` unless the `album` binary or the integration tests use them:
//! what is `pub` here is the crate's interface, not an accident of layout.

pub mod api;
pub mod app;
pub mod blobs;
pub mod budget;
pub mod check;
pub mod config;
pub mod db;
pub mod error;
pub mod ingest;
pub mod jobs;
pub mod media;
pub mod migrate;
pub mod origin;
pub mod passwords;
pub mod repo;
pub mod server;
pub mod service;
pub mod sql;
pub mod throttle;
pub mod web;
pub mod zipstream;

pub use api::auth;
pub use app::{AppState, app};
pub use config::ServeConfig;
pub use error::{Error, Result};
