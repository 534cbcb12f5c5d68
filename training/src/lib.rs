//! # album-training
//!
//! The second stage of smart-album's data flow (dataset → training → eval → serving):
//! the five model families and the one training loop they share.
//!
//! - [`models`]: one file per family (SE-ResNeXt, AlexNet, VGG, GoogLeNet, DenseNet) and
//!   the registry of names with their published reference facts.
//! - [`config`]: the TOML training config (`configs/cpu/*.toml`).
//! - [`ops`]: the layer operations (conv, batch norm, ReLU) with the project's own
//!   forward and backward per backend: LibTorch's ATen kernels, direct Rust on flex.
//! - [`ema`]: the moving average of the weights, validated beside the live model.
//! - [`optim`]: SGD updating each parameter in one of the project's operations.
//! - [`training`]: the loop, run directories, `--resume`.
//! - [`metrics`], [`plots`], [`checkpoint`], [`provenance`]: what a run writes.
//! - [`inference`]: a finished run's model loaded back, predicting a split.
//! - [`schedule`]: warm-up and cosine or step learning-rate decay.
//! - [`data`]: the train and val splits, filtered and decoded.
//! - [`device`]: pick burn's backend at run time (flex CPU, LibTorch CPU or CUDA) and
//!   check that it computes a grouped convolution and its gradients like flex does.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod ema;
pub mod error;
pub mod inference;
pub mod metrics;
pub mod mix;
pub mod models;
pub mod ops;
pub mod optim;
pub mod plots;
pub mod provenance;
pub mod schedule;
pub mod training;

pub use error::{Error, Result};
