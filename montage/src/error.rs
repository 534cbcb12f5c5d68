//! The montage crate's errors: what a user can fix (a bad spec, a missing ffmpeg) kept
//! apart from what went wrong underneath (a photo, the encoder), with the source kept.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot make a montage (no photos, too many, a length out of range).
    #[error("{0}")]
    Invalid(String),
    /// `ffmpeg` (or `ffprobe`) is not on the PATH.
    #[error(
        "{program} was not found on the PATH ({source}): install it with scripts/setup.sh \
         (Debian's ffmpeg package)"
    )]
    MissingTool {
        program: &'static str,
        source: std::io::Error,
    },
    /// A photo that could not be prepared (decoded, resized, written for the encoder).
    #[error("photo {index}: {reason}")]
    Photo { index: usize, reason: String },
    /// The encoder ran and failed; `log` is the end of what it printed.
    #[error("ffmpeg failed ({status}): {log}")]
    Encoder { status: String, log: String },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
