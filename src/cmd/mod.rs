//! Subcommands. Each file owns one group: its clap arguments and a `run` function.

mod bench;
mod check;
mod crawl;
mod device;
mod eval;
pub mod faces;
mod gallery;
mod migrate;
mod models;
mod montage;
mod pack;
mod report;
mod serve;
mod split;
mod sweep;
mod train;

use album_dataset::Error as DatasetError;
use album_training::Error as TrainingError;
use std::net::{SocketAddr, ToSocketAddrs};

use clap::Subcommand;

pub use check::{CheckArgs, run as run_check};
pub use eval::{EvalArgs, run as run_eval};
pub use migrate::{MigrateArgs, run as run_migrate};
pub use models::{ModelsArgs, run as run_models};
pub use montage::{MontageArgs, run as run_montage};
pub use report::{ReportArgs, run as run_report};
pub use serve::{ServeArgs, run as run_serve};
pub use sweep::{SweepCommand, run as run_sweep};
pub use train::{TrainArgs, run as run_train};

/// Reads a `--addr` value: an IP and port (`127.0.0.1:8080`, `[::1]:8080`) or a host name
/// and port (`localhost:8080`), resolved now. For a name, an IPv4 address is preferred:
/// `localhost` then serves the `http://127.0.0.1:…` a browser tries first.
pub(crate) fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let resolved: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("expected HOST:PORT such as 127.0.0.1:8080 ({e})"))?
        .collect();
    resolved
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(resolved.first())
        .copied()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::parse_listen_addr;

    #[test]
    fn listen_address_localhost_with_a_port_is_accepted() {
        let addr = parse_listen_addr("localhost:8080").unwrap();
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), 8080);
        assert_eq!(parse_listen_addr("127.0.0.1:0").unwrap().port(), 0);
        assert_eq!(parse_listen_addr("[::1]:9").unwrap().port(), 9);
    }

    #[test]
    fn listen_address_without_a_port_says_what_is_expected() {
        let err = parse_listen_addr("localhost").unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
    }
}

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
    /// Re-encode splits as small square JPEGs under a byte budget (for the GPU machine).
    Pack(pack::PackArgs),
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
    /// The paper's Table 1: a run's top-1/top-5, images/s and latency per batch size and precision.
    Infer(bench::infer::InferBenchArgs),
    /// Face pipeline faces/s per stage (detect, align, embed) beside onnxruntime + dlib.
    Faces(bench::faces::FacesBenchArgs),
    /// The album service under load: 20,000 uploads over HTTP, checks, latencies, a kill -9.
    Load(bench::load::LoadBenchArgs),
    /// The album's ingest, stage by stage (decode, thumbnail, classify, detect, embed, cluster).
    Ingest(bench::ingest::IngestBenchArgs),
    /// The album's face grouping through the service, BCubed on LFW beside the library's rule.
    People(bench::people::PeopleBenchArgs),
    /// Time to place one face at 1k, 10k and 100k faces: the HNSW face index beside a scan.
    FaceIndex(bench::face_index::FaceIndexBenchArgs),
    /// The album service under attack within a memory limit, a normal user's latency beside.
    Contain(bench::contain::ContainBenchArgs),
    /// A folder of category sub-folders uploaded to the album: per-category smart-album accuracy.
    Classify(bench::classify::ClassifyBenchArgs),
    /// Montage rendering speed: seconds of 720p and 1080p video per second of wall time.
    Montage(bench::montage::MontageBenchArgs),
}

pub fn run_dataset(command: DatasetCommand) -> anyhow::Result<()> {
    match command {
        DatasetCommand::Crawl(args) => crawl::run(args),
        DatasetCommand::ServeGallery(args) => gallery::run_serve(args),
        DatasetCommand::Audit(args) => gallery::run_audit(args),
        DatasetCommand::Split(args) => split::run(args),
        DatasetCommand::Pack(args) => pack::run(args),
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
        BenchCommand::Infer(args) => bench::infer::run(args),
        BenchCommand::Faces(args) => bench::faces::run(args),
        BenchCommand::Load(args) => bench::load::run(args),
        BenchCommand::Ingest(args) => bench::ingest::run(args),
        BenchCommand::People(args) => bench::people::run(args),
        BenchCommand::FaceIndex(args) => bench::face_index::run(args),
        BenchCommand::Contain(args) => bench::contain::run(args),
        BenchCommand::Classify(args) => bench::classify::run(args),
        BenchCommand::Montage(args) => bench::montage::run(args),
    }
}

/// 2 for input the user can fix (configs, arguments, data), 1 for everything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<album_eval::Error>() {
        Some(
            album_eval::Error::Invalid(_)
            | album_eval::Error::Unknown { .. }
            | album_eval::Error::Options(_)
            | album_eval::Error::Run(_),
        ) => return 2,
        Some(album_eval::Error::Training(inner)) => return training_exit_code(inner),
        Some(album_eval::Error::Faces(inner)) => return faces_exit_code(inner),
        _ => {}
    }
    if let Some(album_serving::Error::Setup(_)) = error.downcast_ref::<album_serving::Error>() {
        return 2;
    }
    if let Some(inner) = error.downcast_ref::<album_faces::Error>() {
        return faces_exit_code(inner);
    }
    if let Some(inner) = error.downcast_ref::<TrainingError>() {
        return training_exit_code(inner);
    }
    match error.downcast_ref::<DatasetError>() {
        Some(inner) => dataset_exit_code(inner),
        None => 1,
    }
}

fn training_exit_code(error: &TrainingError) -> u8 {
    match error {
        TrainingError::Device { .. }
        | TrainingError::Unknown { .. }
        | TrainingError::Config(_)
        | TrainingError::Resume(_)
        | TrainingError::Run(_) => 2,
        TrainingError::Data(inner) => dataset_exit_code(inner),
        _ => 1,
    }
}

fn dataset_exit_code(error: &DatasetError) -> u8 {
    match error {
        DatasetError::Config { .. } | DatasetError::InvalidArgument(_) | DatasetError::Data(_) => 2,
        _ => 1,
    }
}

fn faces_exit_code(error: &album_faces::Error) -> u8 {
    match error {
        album_faces::Error::MissingWeights { .. }
        | album_faces::Error::WeightsHash { .. }
        | album_faces::Error::Image(_)
        | album_faces::Error::Invalid(_) => 2,
        _ => 1,
    }
}
