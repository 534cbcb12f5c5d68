//! The evaluation crate's error type. Bad input (predictions whose shapes disagree, NaN
//! probabilities, impossible options) is an error that names what is wrong, never a panic:
//! the caller is a command-line program that should say why a report was not made.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while computing or writing an evaluation report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name given on the command line (a split) that is not one of the accepted ones.
    #[error("unknown {what} {name:?}: expected {expected}")]
    Unknown {
        what: &'static str,
        name: String,
        expected: &'static str,
    },

    /// Predictions that cannot be evaluated as given (shapes, values, labels).
    #[error("invalid predictions: {0}")]
    Invalid(String),

    /// Evaluation options that cannot be used (no resamples, no bins, a confidence outside (0, 1)).
    #[error("invalid options: {0}")]
    Options(String),

    /// A run directory that cannot be used as asked: files missing, trained with another
    /// config than the one given, stopped before its end.
    #[error("{0}")]
    Run(String),

    /// Reading or writing a file or folder of the report.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Building, writing or reading a table (polars).
    #[error("table: {0}")]
    Table(String),

    /// Drawing a chart (plotters).
    #[error("chart: {0}")]
    Chart(String),

    /// Loading a run's model or data, or running it (the training crate).
    #[error(transparent)]
    Training(#[from] album_training::Error),

    /// Loading or running the face models (the faces crate).
    #[error(transparent)]
    Faces(#[from] album_faces::Error),
}

impl Error {
    /// An I/O failure on `path`, saying what was being done.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A polars failure on the table at `path`.
    pub fn table(path: &Path, error: impl std::fmt::Display) -> Self {
        Error::Table(format!("{}: {error}", path.display()))
    }

    /// A plotters failure on the chart at `path`.
    pub fn chart(path: &Path, error: impl std::fmt::Display) -> Self {
        Error::Chart(format!("{}: {error}", path.display()))
    }
}

/// The evaluation crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
