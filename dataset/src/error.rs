//! The dataset crate's error type.
//!
//! Every fallible function here returns [`Result`]. Messages name the file, URL or
//! setting at fault so that the `album` binary can print them as they are.

use std::path::PathBuf;

/// Everything that can go wrong while crawling, splitting or loading data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A configuration file is missing, unreadable or invalid.
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },

    /// A data folder or manifest is missing, empty or inconsistent.
    #[error("data: {0}")]
    Data(String),

    /// A manifest or report table could not be read or written.
    #[error("table {path}: {source}")]
    Table {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },

    /// An image could not be decoded or failed validation.
    #[error("image {origin}: {reason}")]
    Image { origin: String, reason: String },

    /// A network request failed for good (after retries).
    #[error("fetch {url}: {message}")]
    Http { url: String, message: String },

    /// A chart could not be drawn.
    #[error("chart {path}: {message}")]
    Chart { path: PathBuf, message: String },

    /// An argument given by the caller is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The dataset crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Wraps a Polars error with the table file it concerns.
    pub fn table(path: impl Into<PathBuf>, source: polars::error::PolarsError) -> Self {
        Error::Table {
            path: path.into(),
            source,
        }
    }
}
