//! The faces crate's error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading the face models or reading a photo.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file that is not where it should be.
    #[error(
        "{what} weights not found at {}: run scripts/fetch-face-weights.sh to fetch them",
        path.display()
    )]
    MissingWeights { what: &'static str, path: PathBuf },

    /// A model file whose bytes are not the pinned release.
    #[error(
        "{}: SHA-256 is {actual}, expected {expected}; run scripts/fetch-face-weights.sh to fetch it again",
        path.display()
    )]
    WeightsHash {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A model file that does not parse as the format and network expected.
    #[error("{}: not a usable {format} file: {reason}", path.display())]
    ModelFormat {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },

    /// A photo that cannot be decoded or used.
    #[error("image: {0}")]
    Image(String),

    /// A caller asked for something the pipeline cannot do (empty input, wrong size, bad settings).
    #[error("{0}")]
    Invalid(String),

    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O failure on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A model file at `path` that breaks the expected `format` for `reason`.
    pub fn model_format(path: &Path, format: &'static str, reason: impl Into<String>) -> Self {
        Error::ModelFormat {
            path: path.to_path_buf(),
            format,
            reason: reason.into(),
        }
    }
}

/// The faces crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
