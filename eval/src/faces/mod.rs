//! `album faces eval`: the face pipeline measured on photos of known people.
//!
//! The folder holds one sub-folder per person (`DIR/<person>/*.jpg`, LFW's layout). Every
//! photo goes through the whole pipeline (decode, detect, align, embed). A photo may show
//! several faces; the one whose box centre is nearest the photo's centre is taken as the
//! labelled person's (LFW centres that person). Then:
//!
//! - detection rate: photos with at least one face;
//! - verification on every pair of those faces ([`metrics::verification`]);
//! - clustering by each method, incremental in a seeded shuffled arrival order (an album
//!   does not receive its photos sorted by person) and in batch;
//! - a sweep of the similarity threshold for every method;
//! - faces per second and time per stage.
//!
//! Nothing is tuned here: the fixed settings (72 % for the paper's rule, dlib's 0.6 for the
//! density method) are chosen in advance, and the "best threshold" figures are labelled as
//! chosen on this data.

pub mod metrics;
mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use album_faces::cluster::{
    Clustering, DLIB_SAME_PERSON_DISTANCE, DensityClustering, PAPER_THRESHOLD, RepresentativeRule,
    distance_of_similarity,
};
use album_faces::detect::Detection;
use album_faces::embedder::Descriptor;
use album_faces::pipeline::{FacePipeline, StageTimes, decode_photo};
use burn::tensor::Device;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::seq::SliceRandom;

pub use metrics::{ClusterScores, Verification};
pub use report::write_faces_report;

use crate::{Error, Result};

/// What `album faces eval` is asked to do.
#[derive(Debug, Clone)]
pub struct FacesEvalOptions {
    /// `DIR/<person>/*.jpg`.
    pub faces_dir: PathBuf,
    /// Where the two model files are (see `scripts/fetch-face-weights.sh`).
    pub weights_dir: PathBuf,
    /// Seed of the arrival order for the incremental methods.
    pub order_seed: u64,
    /// The density method's smallest person.
    pub min_faces: usize,
    /// Use only the first N photos of each person (all when `None`).
    pub photos_per_person: Option<usize>,
    /// No progress bar.
    pub quiet: bool,
}

impl FacesEvalOptions {
    /// Defaults: seed 42, people of at least 3 faces, every photo.
    pub fn new(faces_dir: PathBuf, weights_dir: PathBuf) -> Self {
        FacesEvalOptions {
            faces_dir,
            weights_dir,
            order_seed: 42,
            min_faces: 3,
            photos_per_person: None,
            quiet: false,
        }
    }
}

/// One photo's outcome.
#[derive(Debug, Clone)]
pub struct PhotoOutcome {
    pub person: String,
    pub file: String,
    pub faces: usize,
    /// The face taken as the labelled person's.
    pub main: Option<Detection>,
    /// Why the photo could not be read, if it could not.
    pub error: Option<String>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct FacesEval {
    pub photos: Vec<PhotoOutcome>,
    pub people: Vec<String>,
    pub quality: Quality,
    pub times: StageTimes,
    pub faces_embedded: usize,
    pub options: FacesEvalOptions,
}

impl FacesEval {
    /// Photos with at least one face, as a share of the photos read.
    pub fn detection_rate(&self) -> f64 {
        let found = self.photos.iter().filter(|p| p.faces > 0).count();
        found as f64 / self.photos.len().max(1) as f64
    }

    /// Faces through detect + align + embed per second of those stages.
    pub fn faces_per_second(&self) -> f64 {
        let seconds = (self.times.detect + self.times.align + self.times.embed).as_secs_f64();
        self.faces_embedded as f64 / seconds.max(f64::EPSILON)
    }
}

/// One clustering method's scores at its fixed setting.
#[derive(Debug, Clone)]
pub struct MethodScores {
    pub method: &'static str,
    pub setting: String,
    /// Whose faces: the held-out half, or everyone.
    pub population: String,
    pub scores: ClusterScores,
}

/// One threshold of the sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepPoint {
    pub similarity: f32,
    pub distance: f32,
    pub balanced_accuracy: f64,
    pub paper_rule_bcubed_f1: f64,
    pub density_incremental_bcubed_f1: f64,
    pub density_batch_bcubed_f1: f64,
}

/// Runs the pipeline over the folder and measures everything.
pub fn evaluate_faces(options: &FacesEvalOptions, device: &Device) -> Result<FacesEval> {
    let photos = list_photos(&options.faces_dir, options.photos_per_person)?;
    let mut pipeline = FacePipeline::load(&options.weights_dir, device)?;
    let bar = progress(photos.len() as u64, options.quiet);
    let mut outcomes = Vec::with_capacity(photos.len());
    let mut descriptors = Vec::new();
    let mut people = Vec::new();
    let mut faces_embedded = 0;
    for photo in &photos {
        let (outcome, main) = run_photo(&mut pipeline, photo);
        faces_embedded += outcome.faces;
        if let Some(descriptor) = main {
            descriptors.push(descriptor);
            people.push(photo.person_index);
        }
        outcomes.push(outcome);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let quality = score_descriptors(&descriptors, &people, options);
    Ok(FacesEval {
        photos: outcomes,
        people: person_names(&photos),
        quality,
        times: pipeline.times(),
        faces_embedded,
        options: options.clone(),
    })
}

/// A photo to read, with its person.
#[derive(Debug, Clone)]
pub struct PhotoFile {
    pub path: PathBuf,
    pub person: String,
    /// The person's position in name order.
    pub person_index: usize,
}

/// `DIR/<person>/<photo>` in name order; only image extensions are taken.
pub fn list_photos(dir: &Path, per_person: Option<usize>) -> Result<Vec<PhotoFile>> {
    let mut people = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect::<Vec<_>>();
    people.sort();
    let mut photos = Vec::new();
    for (person_index, person_dir) in people.iter().enumerate() {
        let person = file_name(person_dir);
        let files = sorted_entries(person_dir)?
            .into_iter()
            .filter(|p| is_image_name(p))
            .take(per_person.unwrap_or(usize::MAX));
        photos.extend(files.map(|path| PhotoFile {
            path,
            person: person.clone(),
            person_index,
        }));
    }
    if photos.is_empty() {
        return Err(Error::Run(format!(
            "{}: no photos found; expected one folder per person holding .jpg/.png files",
            dir.display()
        )));
    }
    Ok(photos)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read folder", dir, e))?;
    let mut paths = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io("read folder", dir, e))?;
    paths.sort();
    Ok(paths)
}

fn is_image_name(path: &Path) -> bool {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(extension.as_deref(), Some("jpg" | "jpeg" | "png")) && path.is_file()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn person_names(photos: &[PhotoFile]) -> Vec<String> {
    let mut names: Vec<String> = photos.iter().map(|p| p.person.clone()).collect();
    names.dedup();
    names
}

/// Reads one photo through the pipeline; a photo that fails is recorded, not fatal.
fn run_photo(pipeline: &mut FacePipeline, photo: &PhotoFile) -> (PhotoOutcome, Option<Descriptor>) {
    let mut outcome = PhotoOutcome {
        person: photo.person.clone(),
        file: file_name(&photo.path),
        faces: 0,
        main: None,
        error: None,
    };
    let faces = std::fs::read(&photo.path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let started = Instant::now();
            let image = decode_photo(&bytes).map_err(|e| e.to_string());
            pipeline.add_decode_time(started.elapsed());
            image
        })
        .and_then(|image| {
            let centre = [image.width() as f32 / 2.0, image.height() as f32 / 2.0];
            let faces = pipeline.faces_in(&image).map_err(|e| e.to_string())?;
            Ok((faces, centre))
        });
    match faces {
        Ok((faces, centre)) => {
            outcome.faces = faces.len();
            let main = faces.into_iter().min_by(|a, b| {
                centre_distance(&a.detection, centre)
                    .total_cmp(&centre_distance(&b.detection, centre))
            });
            outcome.main = main.as_ref().map(|f| f.detection);
            (outcome, main.map(|f| f.descriptor))
        }
        Err(error) => {
            outcome.error = Some(error);
            (outcome, None)
        }
    }
}

fn centre_distance(face: &Detection, centre: [f32; 2]) -> f32 {
    let x = (face.bbox[0] + face.bbox[2]) / 2.0 - centre[0];
    let y = (face.bbox[1] + face.bbox[3]) / 2.0 - centre[1];
    x.hypot(y)
}

/// The similarity thresholds of the sweep: 50 % to 90 % by 1 %.
fn sweep_thresholds() -> impl Iterator<Item = f32> {
    (50..=90).map(|percent| percent as f32 / 100.0)
}

/// What the descriptors say: verification, each method at its setting, the sweep.
#[derive(Debug, Clone)]
pub struct Quality {
    pub verification: Verification,
    pub methods: Vec<MethodScores>,
    pub sweep: Vec<SweepPoint>,
    /// The density method's link distance, chosen on the tuning half.
    pub density_distance: f32,
}

/// The faces of some of the people, in their seeded arrival order.
struct Arrival {
    descriptors: Vec<Descriptor>,
    truth: Vec<usize>,
    people: usize,
}

impl Arrival {
    fn of(
        descriptors: &[Descriptor],
        people: &[usize],
        seed: u64,
        keep: impl Fn(usize) -> bool,
    ) -> Self {
        let order = arrival_order(descriptors.len(), seed);
        let kept: Vec<usize> = order.into_iter().filter(|&i| keep(people[i])).collect();
        let truth: Vec<usize> = kept.iter().map(|&i| people[i]).collect();
        let distinct = truth.iter().collect::<std::collections::HashSet<_>>().len();
        Arrival {
            descriptors: kept.iter().map(|&i| descriptors[i]).collect(),
            truth,
            people: distinct,
        }
    }
}

/// Verification on every pair; the density method's link distance chosen on the tuning
/// half of the people (even positions in name order) by batch BCubed F1; every method
/// scored on the held-out half and on everyone; the threshold sweep on everyone.
pub fn score_descriptors(
    descriptors: &[Descriptor],
    people: &[usize],
    options: &FacesEvalOptions,
) -> Quality {
    let pairs = metrics::all_pairs(descriptors, people);
    let verification = metrics::verification(&pairs, DLIB_SAME_PERSON_DISTANCE);
    let seed = options.order_seed;
    let everyone = Arrival::of(descriptors, people, seed, |_| true);
    let tuning = Arrival::of(descriptors, people, seed, |p| p % 2 == 0);
    let held_out = Arrival::of(descriptors, people, seed, |p| p % 2 == 1);

    let density_distance = tune_density_distance(&tuning, options.min_faces);
    let mut methods = Vec::new();
    for (population, arrival) in [
        (format!("{} held-out people", held_out.people), &held_out),
        (format!("all {} people", everyone.people), &everyone),
    ] {
        methods.extend(method_scores(
            arrival,
            &population,
            density_distance,
            options.min_faces,
        ));
    }
    let sweep = sweep_thresholds()
        .map(|similarity| {
            let distance = distance_of_similarity(similarity);
            let runs = ClusterRuns::at(
                &everyone.descriptors,
                similarity,
                distance,
                options.min_faces,
            );
            let f1 =
                |labels: &[Option<u32>]| metrics::cluster_scores(labels, &everyone.truth).bcubed_f1;
            SweepPoint {
                similarity,
                distance,
                balanced_accuracy: metrics::balanced_accuracy(&pairs, distance),
                paper_rule_bcubed_f1: f1(&runs.paper),
                density_incremental_bcubed_f1: f1(&runs.density_incremental),
                density_batch_bcubed_f1: f1(&runs.density_batch),
            }
        })
        .collect();
    Quality {
        verification,
        methods,
        sweep,
        density_distance,
    }
}

/// The sweep distance with the best batch BCubed F1 on `tuning` (the first, if tied).
fn tune_density_distance(tuning: &Arrival, min_faces: usize) -> f32 {
    let mut best = (DLIB_SAME_PERSON_DISTANCE, f64::NEG_INFINITY);
    for similarity in sweep_thresholds() {
        let distance = distance_of_similarity(similarity);
        let mut density = DensityClustering::new(distance, min_faces);
        density.add_all(&tuning.descriptors);
        density.recluster();
        let f1 = metrics::cluster_scores(density.labels(), &tuning.truth).bcubed_f1;
        if f1 > best.1 {
            best = (distance, f1);
        }
    }
    best.0
}

/// The three methods on one population.
fn method_scores(
    arrival: &Arrival,
    population: &str,
    density_distance: f32,
    min_faces: usize,
) -> Vec<MethodScores> {
    let runs = ClusterRuns::at(
        &arrival.descriptors,
        PAPER_THRESHOLD,
        density_distance,
        min_faces,
    );
    let score = |labels: &[Option<u32>]| metrics::cluster_scores(labels, &arrival.truth);
    let density = density_setting(density_distance, min_faces);
    vec![
        MethodScores {
            method: "paper rule (incremental)",
            setting: format!(
                "join at ≥ {:.0} % similarity (the paper's)",
                PAPER_THRESHOLD * 100.0
            ),
            population: population.to_string(),
            scores: score(&runs.paper),
        },
        MethodScores {
            method: "density (incremental)",
            setting: density.clone(),
            population: population.to_string(),
            scores: score(&runs.density_incremental),
        },
        MethodScores {
            method: "density + Chinese whispers (batch)",
            setting: density,
            population: population.to_string(),
            scores: score(&runs.density_batch),
        },
    ]
}

fn density_setting(max_distance: f32, min_faces: usize) -> String {
    format!(
        "link at distance < {max_distance:.2} (chosen on the tuning half), people of ≥ {min_faces} faces"
    )
}

/// The labels each method gives one arrival order.
struct ClusterRuns {
    paper: Vec<Option<u32>>,
    density_incremental: Vec<Option<u32>>,
    density_batch: Vec<Option<u32>>,
}

impl ClusterRuns {
    fn at(
        arrived: &[Descriptor],
        paper_similarity: f32,
        density_distance: f32,
        min_faces: usize,
    ) -> Self {
        let mut paper = RepresentativeRule::new(paper_similarity);
        paper.add_all(arrived);
        let mut density = DensityClustering::new(density_distance, min_faces);
        density.add_all(arrived);
        let density_incremental = density.labels().to_vec();
        density.recluster();
        ClusterRuns {
            paper: paper.labels().to_vec(),
            density_incremental,
            density_batch: density.labels().to_vec(),
        }
    }
}

/// A seeded shuffle of `0..n`: the order faces arrive in the evaluation.
pub fn arrival_order(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    order
}

fn progress(len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    // the shared bar: at a terminal it redraws, in a log it writes a line a minute
    let bar = album_dataset::progress::bar(len, "photos");
    bar.set_message("faces");
    bar
}
