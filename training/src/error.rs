//! The training crate's error type.

/// Everything that can go wrong while choosing a device, building a model or training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device name that is unknown, or needs a feature this build lacks.
    #[error("device {name:?}: {message}")]
    Device { name: String, message: String },

    /// A name given on the command line (a checkpoint) that is not one of the accepted ones.
    #[error("unknown {what} {name:?}: expected {expected}")]
    Unknown {
        what: &'static str,
        name: String,
        expected: &'static str,
    },

    /// A training or model config that cannot be used as written.
    #[error("config: {0}")]
    Config(String),

    /// Photos, manifests or caches from the dataset stage.
    #[error(transparent)]
    Data(#[from] album_dataset::Error),

    /// Reading or writing a run directory, a checkpoint or a chart.
    #[error("{0}")]
    Io(String),

    /// A run directory that cannot be resumed (missing or damaged checkpoint, other config).
    #[error("resume: {0}")]
    Resume(String),

    /// A run directory that cannot be read back for inference (missing files, no checkpoint).
    #[error("run: {0}")]
    Run(String),

    /// The loss stopped being a number.
    #[error("training diverged: {0}")]
    Diverged(String),

    /// Two backends disagree beyond tolerance.
    #[error("check failed: {0}")]
    Check(String),
}

impl Error {
    /// An I/O failure on `path`, saying what was being done.
    pub fn io(action: &str, path: &std::path::Path, error: impl std::fmt::Display) -> Self {
        Error::Io(format!("cannot {action} {}: {error}", path.display()))
    }
}

/// The training crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
