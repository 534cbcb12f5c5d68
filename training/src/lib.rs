//! # album-training
//!
//! The second stage of smart-album's data flow (dataset → training → eval → serving).
//! It will hold one file per model family and the one training loop they share; for
//! now it holds the choice of compute device, which every later stage uses.
//!
//! - [`device`]: pick burn's backend at run time (flex CPU, LibTorch CPU or CUDA) and
//!   check that it computes a grouped convolution and its gradients like flex does.

pub mod device;
pub mod error;

pub use error::{Error, Result};
