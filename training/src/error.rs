//! The training crate's error type.

/// Everything that can go wrong while choosing a device or training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A device name that is unknown, or needs a feature this build lacks.
    #[error("device {name:?}: {message}")]
    Device { name: String, message: String },

    /// Two backends disagree beyond tolerance.
    #[error("check failed: {0}")]
    Check(String),
}

/// The training crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
