//! `album faces`: the face pipeline on its own: find faces in photos, measure it on
//! photos of known people, and time it.

use std::path::PathBuf;
use std::time::Instant;

use album_eval::faces::{FacesEvalOptions, evaluate_faces, write_faces_report};
use album_faces::pipeline::FacePipeline;
use album_faces::weights;
use album_training::device::DeviceKind;
use album_training::provenance::git_state;
use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum FacesCommand {
    /// Find the faces in photos: boxes, landmarks and scores as JSON lines.
    Detect(DetectArgs),
    /// Measure detection, verification and clustering on a folder of known people.
    Eval(FacesEvalArgs),
}

pub fn run(command: FacesCommand) -> anyhow::Result<()> {
    match command {
        FacesCommand::Detect(args) => run_detect(args),
        FacesCommand::Eval(args) => run_eval(args),
    }
}

/// Where the models come from, shared by every faces command.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The face models' folder, holding the two model files [default: $ALBUM_FACE_WEIGHTS
    /// or data/weights]. Fetch them with scripts/fetch-face-weights.sh.
    #[arg(long = "face-models", alias = "weights", value_name = "DIR")]
    weights: Option<PathBuf>,
    /// Device: flex, tch-cpu, tch-cuda or tch-cuda:N.
    #[arg(long, default_value = "flex")]
    pub(crate) device: DeviceKind,
}

impl ModelArgs {
    pub(crate) fn load(&self) -> anyhow::Result<FacePipeline> {
        let device = self.device.device()?;
        Ok(FacePipeline::load(&self.weights_dir(), &device)?)
    }

    pub(crate) fn weights_dir(&self) -> PathBuf {
        self.weights.clone().unwrap_or_else(weights::default_dir)
    }
}

/// Find the faces in each photo and print one JSON line per photo: its faces (score,
/// box x1 y1 x2 y2, five landmarks) or why it could not be read. A photo that fails does
/// not stop the others; the exit code is 1 if any failed.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album faces detect ../shared/datasets/faces/Abdullah_Gul/*.jpg")]
pub struct DetectArgs {
    /// Photos (JPEG, PNG, GIF, WebP, BMP, TIFF).
    #[arg(required = true)]
    photos: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct DetectLine {
    photo: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    faces: Option<Vec<FaceLine>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct FaceLine {
    score: f32,
    bbox: [f32; 4],
    landmarks: [[f32; 2]; 5],
}

fn run_detect(args: DetectArgs) -> anyhow::Result<()> {
    let mut pipeline = args.model.load()?;
    let mut failed = 0;
    for path in &args.photos {
        let outcome = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| pipeline.faces_in_bytes(&bytes).map_err(|e| e.to_string()));
        let line = match outcome {
            Ok(faces) => DetectLine {
                photo: path.display().to_string(),
                faces: Some(
                    faces
                        .iter()
                        .map(|f| FaceLine {
                            score: f.detection.score,
                            bbox: f.detection.bbox,
                            landmarks: f.detection.landmarks,
                        })
                        .collect(),
                ),
                error: None,
            },
            Err(error) => {
                failed += 1;
                DetectLine {
                    photo: path.display().to_string(),
                    faces: None,
                    error: Some(error),
                }
            }
        };
        println!("{}", serde_json::to_string(&line)?);
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} photos could not be read", args.photos.len());
    }
    Ok(())
}

/// Measure the face pipeline on DIR/<person>/*.jpg: the share of photos with a face,
/// verification on every pair (ROC AUC, balanced accuracy at dlib's fixed threshold and
/// at the best one), clustering into people by the paper's 72 % rule and by the density
/// method (incremental and batch; pairwise and BCubed precision, recall, F1), a sweep of
/// the similarity threshold, and faces per second. Written to OUT as Parquet and CSV
/// tables, sweep.png and summary.md.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album faces eval --faces ../shared/datasets/faces --out experiments/faces-lfw100")]
pub struct FacesEvalArgs {
    /// Folder with one sub-folder of photos per person.
    #[arg(long)]
    faces: PathBuf,
    /// Where the report goes.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the order in which photos arrive for the incremental methods.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The density method's smallest person, in faces.
    #[arg(long, default_value_t = 3)]
    min_faces: usize,
    /// Use only the first N photos of each person.
    #[arg(long)]
    photos_per_person: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    model: ModelArgs,
}

fn run_eval(args: FacesEvalArgs) -> anyhow::Result<()> {
    let mut options = FacesEvalOptions::new(args.faces.clone(), args.model.weights_dir());
    options.order_seed = args.seed;
    options.min_faces = args.min_faces;
    options.photos_per_person = args.photos_per_person;
    options.quiet = args.quiet;
    let device = args.model.device.device()?;
    let started = Instant::now();
    let eval = evaluate_faces(&options, &device)
        .with_context(|| format!("evaluating faces in {} failed", args.faces.display()))?;
    let (revision, dirty) = git_state();
    let notes = vec![
        format!(
            "command: `album faces eval --faces {} --out {} --seed {} --min-faces {}`",
            args.faces.display(),
            args.out.display(),
            args.seed,
            args.min_faces
        ),
        format!(
            "git revision {revision}{}",
            if dirty { " (uncommitted changes)" } else { "" }
        ),
        format!(
            "models: {} ({}), {} ({})",
            weights::RETINAFACE.file_name,
            weights::RETINAFACE.sha256,
            weights::DLIB_RESNET.file_name,
            weights::DLIB_RESNET.sha256
        ),
        format!(
            "device {}, {} CPU threads, whole run {:.0} s",
            args.model.device,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            started.elapsed().as_secs_f64()
        ),
    ];
    write_faces_report(&eval, &args.out, &notes)?;
    let v = &eval.quality.verification;
    println!(
        "photos with a face   {:.1} % of {}",
        eval.detection_rate() * 100.0,
        eval.photos.len()
    );
    println!(
        "verification         AUC {:.4}, balanced accuracy {:.1} % at d < {:.2}, best {:.1} % at d < {:.3}",
        v.roc_auc,
        v.fixed_balanced_accuracy * 100.0,
        v.fixed_threshold,
        v.best_balanced_accuracy * 100.0,
        v.best_threshold
    );
    for m in &eval.quality.methods {
        println!(
            "{:<36} {:<20} BCubed F1 {:.3}, pairwise F1 {:.3}, {} people found of {}",
            m.method,
            m.population,
            m.scores.bcubed_f1,
            m.scores.pairwise_f1,
            m.scores.people_found,
            m.scores.people_true
        );
    }
    println!(
        "speed                {:.1} faces/s (detect + align + embed)",
        eval.faces_per_second()
    );
    println!("report: {}", args.out.join("summary.md").display());
    Ok(())
}
