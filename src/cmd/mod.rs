//! Subcommands. Each file owns one group: its clap arguments and a `run` function.

mod bench;
mod crawl;
mod device;
mod gallery;
mod models;
mod split;
mod train;

use album_dataset::Error as DatasetError;
use album_training::Error as TrainingError;
use clap::Subcommand;

pub use models::{ModelsArgs, run as run_models};
pub use train::{TrainArgs, run as run_train};

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Crawl a website for photos as a crawl config says (robots.txt obeyed).
    Crawl(crawl::CrawlArgs),
    /// Serve a folder of class sub-folders as a small gallery website to crawl.
    ServeGallery(gallery::ServeGalleryArgs),
    /// Check that every photo of a gallery folder is accounted for by a crawl.
    Audit(gallery::AuditArgs),
    /// Split a manifest into train/val/test, stratified by class.
    Split(split::SplitArgs),
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Check that a compute device works and agrees with flex on a grouped convolution.
    Check(device::DeviceCheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Data pipeline images/s (decode, resize, crop, flip, normalise) beside PyTorch.
    Data(bench::DataBenchArgs),
    /// Training-step images/s (forward, backward, update) on flex and LibTorch beside PyTorch.
    Train(bench::train::TrainBenchArgs),
}

pub fn run_dataset(command: DatasetCommand) -> anyhow::Result<()> {
    match command {
        DatasetCommand::Crawl(args) => crawl::run(args),
        DatasetCommand::ServeGallery(args) => gallery::run_serve(args),
        DatasetCommand::Audit(args) => gallery::run_audit(args),
        DatasetCommand::Split(args) => split::run(args),
    }
}

pub fn run_device(command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Check(args) => device::run(args),
    }
}

pub fn run_bench(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Data(args) => bench::run(args),
        BenchCommand::Train(args) => bench::train::run(args),
    }
}

/// 2 for input the user can fix (configs, arguments, data), 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<DatasetError>() {
        Some(
            DatasetError::Config { .. } | DatasetError::InvalidArgument(_) | DatasetError::Data(_),
        ) => 2,
        _ => match error.downcast_ref::<TrainingError>() {
            Some(
                TrainingError::Device { .. } | TrainingError::Config(_) | TrainingError::Resume(_),
            ) => 2,
            _ => 1,
        },
    }
}
