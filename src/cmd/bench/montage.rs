//! `album bench montage`: how fast the montage renders on this machine, as seconds of
//! video made per second of wall time, at 720p and 1080p, over several rounds (the
//! machine is shared: the spread is printed beside the median). The photos are real
//! ones from a class-folder set, the same for every round and resolution; faces are not
//! looked for (that is the face pipeline's benchmark), so the figure is preparing the
//! photos plus ffmpeg's filter graph and x264.

use std::path::PathBuf;
use std::time::Instant;

use album_montage::{MontagePhoto, MontageSpec, Resolution, render};
use anyhow::{Context, bail};
use serde::Serialize;

use super::{RunRecord, is_photo, locate, sorted_entries};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album bench montage --photos ../shared/datasets/five-class --count 12 --rounds 3")]
pub struct MontageBenchArgs {
    /// Folder of class sub-folders (or of photos); photos are spread over it.
    #[arg(long, default_value = "../shared/datasets/five-class")]
    photos: PathBuf,
    /// Photos per montage.
    #[arg(long, default_value_t = 12)]
    count: usize,
    /// Renders per resolution.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds each photo is on screen.
    #[arg(long, default_value_t = 3.0)]
    seconds_per_photo: f64,
    /// Also write the figures as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Row {
    resolution: String,
    video_seconds: f64,
    /// Seconds of video per second of wall time, one per round.
    rates: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct MontageBenchReport {
    run: RunRecord,
    photos: usize,
    rows: Vec<Row>,
}

pub fn run(args: MontageBenchArgs) -> anyhow::Result<()> {
    RunRecord::of_this_run();
    if args.count == 0 || args.rounds == 0 {
        bail!(album_dataset::Error::InvalidArgument(
            "--count and --rounds must be positive".into()
        ));
    }
    let files = spread_photos(&locate(&args.photos), args.count)?;
    let images = files
        .iter()
        .map(|f| image::open(f).with_context(|| format!("reading {}", f.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let temp = tempfile::tempdir().context("creating a temporary folder")?;
    let mut rows = Vec::new();
    for (name, resolution) in [("720p", Resolution::P720), ("1080p", Resolution::P1080)] {
        let mut rates = Vec::new();
        let mut video_seconds = 0.0;
        for round in 0..args.rounds {
            let photos = images
                .iter()
                .map(|image| MontagePhoto {
                    image: image.clone().into(),
                    faces: Vec::new(),
                })
                .collect();
            let mut spec = MontageSpec::new("Benchmark", photos);
            spec.resolution = resolution;
            spec.seconds_per_photo = args.seconds_per_photo;
            spec.crossfade = spec.crossfade.min(args.seconds_per_photo / 4.0);
            let out = temp.path().join(format!("{name}-{round}.mp4"));
            let started = Instant::now();
            let rendered = render(&spec, &out, &mut |_| {})?;
            let wall = started.elapsed().as_secs_f64();
            video_seconds = rendered.timeline.duration();
            rates.push(video_seconds / wall);
            eprintln!(
                "{name} round {}: {:.1} s of video in {wall:.1} s",
                round + 1,
                video_seconds
            );
        }
        rows.push(Row {
            resolution: name.into(),
            video_seconds,
            rates,
        });
    }
    let report = MontageBenchReport {
        run: RunRecord::of_this_run(),
        photos: files.len(),
        rows,
    };
    println!(
        "montage rendering, {} photos, {} s each, {} cores (seconds of video per second of wall time)",
        report.photos, args.seconds_per_photo, report.run.cores
    );
    println!("| resolution | video | median | min | max |");
    println!("|---|---:|---:|---:|---:|");
    for row in &report.rows {
        let mut sorted = row.rates.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.1} s | {:.2} | {:.2} | {:.2} |",
            row.resolution,
            row.video_seconds,
            sorted[sorted.len() / 2],
            sorted[0],
            sorted[sorted.len() - 1]
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `count` photos spread evenly over every photo under `root` (one level of folders).
fn spread_photos(root: &std::path::Path, count: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for entry in sorted_entries(root)? {
        if entry.is_dir() {
            all.extend(sorted_entries(&entry)?.into_iter().filter(|p| is_photo(p)));
        } else if is_photo(&entry) {
            all.push(entry);
        }
    }
    if all.is_empty() {
        bail!(album_dataset::Error::InvalidArgument(format!(
            "{} holds no photos",
            root.display()
        )));
    }
    let count = count.min(all.len());
    Ok((0..count)
        .map(|i| all[i * all.len() / count].clone())
        .collect())
}
