//! `album`: the command-line front of smart-album.
//!
//! A thin layer: each subcommand parses its arguments with clap and calls one of the
//! library crates (dataset → training → eval → serving). Errors from the libraries are
//! printed with their causes and mapped to an exit code:
//! 0 success, 1 the work failed, 2 bad usage or bad input (clap's own convention).

mod cmd;
#[cfg(test)]
mod help_examples;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// smart-album: a research-and-training workbench for a smart photo album.
///
/// Crawl and split a five-class photo set, train and compare image classifiers with
/// burn, evaluate them, and serve the winner behind an album service.
#[derive(Debug, Parser)]
#[command(
    name = "album",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the photo set: serve a local gallery, crawl it, split it.
    #[command(subcommand)]
    Dataset(cmd::DatasetCommand),
    /// Check compute devices (flex CPU, LibTorch CPU or CUDA).
    #[command(subcommand)]
    Device(cmd::DeviceCommand),
    /// Train a model as a config says, or continue a run after a crash.
    Train(cmd::TrainArgs),
    /// Evaluate a run's model on the validation or test split, with intervals and charts.
    Eval(cmd::EvalArgs),
    /// Train one config several ways and tabulate the outcome (the paper's Table 2).
    #[command(subcommand)]
    Sweep(cmd::SweepCommand),
    /// Compare finished runs side by side, pick the winner on validation, export it as a bundle.
    Report(cmd::ReportArgs),
    /// List the models, their parameters and multiply–accumulates.
    Models(cmd::ModelsArgs),
    /// Find faces, and measure the face pipeline on photos of known people.
    #[command(subcommand)]
    Faces(cmd::faces::FacesCommand),
    /// Run the album service (axum; SQLite or Postgres) with the web page, classifier and faces.
    Serve(cmd::ServeArgs),
    /// Move an album's rows to Postgres and its photos to a bucket, each checked on arrival.
    Migrate(cmd::MigrateArgs),
    /// Check an album: every photo its rows name stored whole, no work done twice.
    Check(cmd::CheckArgs),
    /// Make a video montage of photos: title card, pans to the faces, crossfades, music.
    Montage(cmd::MontageArgs),
    /// Measure throughput and print it beside the alternative a user would pick.
    #[command(subcommand)]
    Bench(cmd::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Dataset(command) => cmd::run_dataset(command),
        Command::Serve(args) => cmd::run_serve(args),
        Command::Migrate(args) => cmd::run_migrate(args),
        Command::Check(args) => cmd::run_check(args),
        Command::Montage(args) => cmd::run_montage(args),
        Command::Device(command) => cmd::run_device(command),
        Command::Bench(command) => cmd::run_bench(command),
        Command::Train(args) => cmd::run_train(args),
        Command::Models(args) => cmd::run_models(args),
        Command::Eval(args) => cmd::run_eval(args),
        Command::Report(args) => cmd::run_report(args),
        Command::Sweep(command) => cmd::run_sweep(command),
        Command::Faces(command) => cmd::faces::run(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            // Library errors often quote their source already; print each cause once.
            let mut shown = error.to_string();
            for cause in error.chain().skip(1) {
                let text = cause.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                    shown.push_str(&text);
                }
            }
            ExitCode::from(cmd::exit_code(&error))
        }
    }
}
