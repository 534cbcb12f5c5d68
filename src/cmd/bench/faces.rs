//! `album bench faces`: the face pipeline's faces/s, stage by stage, beside the Python
//! pipeline a user would reach for (onnxruntime for the same RetinaFace ONNX, dlib for
//! the same descriptor model), on the same photos in one run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use album_eval::faces::list_photos;
use album_faces::pipeline::{FacePipeline, StageTimes};
use anyhow::Context;
use serde::Deserialize;

use super::{FileList, locate};
use crate::cmd::faces::ModelArgs;

/// Faces per second through decode, detect, align and embed on photos of a faces folder
/// (one photo at a time, as the album ingests them), then the same photos through the
/// Python reference (scripts/bench_faces_reference.py; set it up with
/// scripts/setup-face-reference.sh), with the ratio.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album bench faces --faces ../shared/datasets/faces --photos 200")]
pub struct FacesBenchArgs {
    /// Folder with one sub-folder of photos per person.
    #[arg(long)]
    faces: PathBuf,
    /// How many photos, spread over the people.
    #[arg(long, default_value_t = 200)]
    photos: usize,
    /// Photos run first and not counted.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Python with onnxruntime and dlib [default: .venv-faces/bin/python].
    #[arg(long)]
    python: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

/// What the reference script prints.
#[derive(Debug, Deserialize)]
struct Reference {
    faces: usize,
    faces_per_s: f64,
    seconds: ReferenceSeconds,
}

#[derive(Debug, Deserialize)]
struct ReferenceSeconds {
    decode: f64,
    detect: f64,
    align: f64,
    embed: f64,
}

pub fn run(args: FacesBenchArgs) -> anyhow::Result<()> {
    let paths = spread_photos(&args.faces, args.photos + args.warmup)?;
    let mut pipeline = args.model.load()?;
    let (warmup, measured) = paths.split_at(args.warmup.min(paths.len()));
    for path in warmup {
        run_photo(&mut pipeline, path)?;
    }
    let before = pipeline.times();
    let started = Instant::now();
    let mut faces = 0;
    for path in measured {
        faces += run_photo(&mut pipeline, path)?;
    }
    let wall = started.elapsed().as_secs_f64();
    let times = difference(pipeline.times(), before);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{} photos, {faces} faces, {threads} CPU threads, device {}, {wall:.1} s",
        measured.len(),
        args.model.device
    );
    let rust = Stages::of(&times);
    let reference = run_reference(&args, &paths, threads);
    print_table(
        &rust,
        faces,
        reference
            .as_ref()
            .ok()
            .map(|r| (Stages::of_reference(&r.seconds), r.faces)),
    );
    match reference {
        Ok(r) => println!(
            "Python faces/s {:.1}; smart-album / Python = {:.2}×",
            r.faces_per_s,
            rust.faces_per_s(faces) / r.faces_per_s
        ),
        Err(reason) => println!("Python reference unavailable: {reason:#}"),
    }
    Ok(())
}

fn run_photo(pipeline: &mut FacePipeline, path: &std::path::Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let faces = pipeline
        .faces_in_bytes(&bytes)
        .with_context(|| format!("finding faces in {}", path.display()))?;
    Ok(faces.len())
}

fn difference(after: StageTimes, before: StageTimes) -> StageTimes {
    StageTimes {
        decode: after.decode.saturating_sub(before.decode),
        detect: after.detect.saturating_sub(before.detect),
        align: after.align.saturating_sub(before.align),
        embed: after.embed.saturating_sub(before.embed),
    }
}

/// Seconds per stage.
struct Stages([(&'static str, f64); 4]);

impl Stages {
    fn of(t: &StageTimes) -> Self {
        Stages([
            ("decode", t.decode.as_secs_f64()),
            ("detect", t.detect.as_secs_f64()),
            ("align", t.align.as_secs_f64()),
            ("embed", t.embed.as_secs_f64()),
        ])
    }

    fn of_reference(s: &ReferenceSeconds) -> Self {
        Stages([
            ("decode", s.decode),
            ("detect", s.detect),
            ("align", s.align),
            ("embed", s.embed),
        ])
    }

    /// Faces through detect + align + embed per second of those stages.
    fn faces_per_s(&self, faces: usize) -> f64 {
        let seconds: f64 = self.0[1..].iter().map(|s| s.1).sum();
        faces as f64 / seconds.max(f64::EPSILON)
    }
}

fn print_table(rust: &Stages, faces: usize, reference: Option<(Stages, usize)>) {
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "ms per face", "smart-album", "Python", "speed-up"
    );
    let per_face = |s: f64, n: usize| s * 1000.0 / n.max(1) as f64;
    for (i, (stage, seconds)) in rust.0.iter().enumerate() {
        let ours = per_face(*seconds, faces);
        match &reference {
            Some((python, n)) => {
                let theirs = per_face(python.0[i].1, *n);
                println!(
                    "{stage:<28} {ours:>14.1} {theirs:>14.1} {:>7.2}×",
                    theirs / ours.max(f64::EPSILON)
                );
            }
            None => println!("{stage:<28} {ours:>14.1} {:>14} {:>8}", "-", "-"),
        }
    }
    let ours = rust.faces_per_s(faces);
    match &reference {
        Some((python, n)) => println!(
            "{:<28} {ours:>14.1} {:>14.1} {:>7.2}×",
            "faces/s (detect+align+embed)",
            python.faces_per_s(*n),
            ours / python.faces_per_s(*n).max(f64::EPSILON)
        ),
        None => println!("{:<28} {ours:>14.1}", "faces/s (detect+align+embed)"),
    }
}

/// Every person's photos taken in turn, so a small sample covers many people.
fn spread_photos(dir: &std::path::Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let photos = list_photos(dir, None)?;
    // Each photo's rank within its person: the first photo of everyone, then the second...
    let mut ranked: Vec<(usize, usize, PathBuf)> = Vec::with_capacity(photos.len());
    let mut rank = 0;
    for (i, photo) in photos.iter().enumerate() {
        let same_person = i > 0 && photos[i - 1].person_index == photo.person_index;
        rank = if same_person { rank + 1 } else { 0 };
        ranked.push((rank, photo.person_index, photo.path.clone()));
    }
    ranked.sort();
    Ok(ranked
        .into_iter()
        .take(n)
        .map(|(_, _, path)| path)
        .collect())
}

fn run_reference(
    args: &FacesBenchArgs,
    paths: &[PathBuf],
    threads: usize,
) -> anyhow::Result<Reference> {
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| locate(std::path::Path::new(".venv-faces/bin/python")));
    anyhow::ensure!(
        python.exists() || args.python.is_some(),
        "{} not found; run scripts/setup-face-reference.sh",
        python.display()
    );
    let script = locate(std::path::Path::new("scripts/bench_faces_reference.py"));
    let list = FileList::write(paths)?;
    let weights = args.model.weights_dir();
    let output = Command::new(&python)
        .arg(&script)
        .arg("--weights")
        .arg(&weights)
        .arg("--photos-list")
        .arg(&list.path)
        .args([
            "--threads",
            &threads.to_string(),
            "--warmup",
            &args.warmup.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        anyhow::bail!(
            "{} exited with {}: {}",
            script.display(),
            output.status,
            stderr.lines().last().unwrap_or("")
        );
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON line from the reference")?;
    Ok(serde_json::from_str(line)?)
}
