//! `album bench people`: the album's face grouping measured through the service's own
//! path. Each photo of a faces folder (LFW's layout) is stored, its faces found and
//! stored by `People::store_faces`, and the cluster job `People::cluster_new_faces` run,
//! photo by photo in the LFW evaluation's arrival order (`album faces eval --seed`);
//! then `People::recluster`. Each photo's subject (the face nearest its centre, as the
//! evaluation takes it) is scored by BCubed against the photo's person, beside the same
//! rule run by the library (`album_faces::cluster`, what the evaluation scores) on the
//! subjects alone in the same order. The service also sees every other face in the
//! photos; the difference between the two rows is what that costs.

use std::collections::HashMap;
use std::path::PathBuf;

use album_eval::faces::metrics::{ClusterScores, cluster_scores};
use album_eval::faces::{arrival_order, list_photos};
use album_faces::cluster::{Clustering, DensityClustering};
use album_serving::ingest::Patience;
use album_serving::repo::faces::GroupedFace;
use album_serving::service::people::FACE_RULE;
use album_serving::{AppState, ServeConfig, ingest};
use anyhow::{Context, bail};

use super::ingest::{ScratchAlbum, create_user, settle_jobs};
use super::locate;
use crate::cmd::faces::ModelArgs;

/// The album's face grouping (people as photos arrive, then a re-cluster) through the
/// service, scored by BCubed on every photo's subject, beside the library's rule.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  album bench people --faces ../shared/datasets/faces --held-out")]
pub struct PeopleBenchArgs {
    /// Folder with one sub-folder of photos per person.
    #[arg(long)]
    faces: PathBuf,
    /// Seed of the arrival order (the evaluation's `--seed`).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Only the evaluation's held-out half: every other person in name order, from the
    /// second (the half its link distance was not chosen on).
    #[arg(long)]
    held_out: bool,
    /// Folder for the scratch album [default: the system's temp folder].
    #[arg(long)]
    scratch: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: PeopleBenchArgs) -> anyhow::Result<()> {
    let faces_dir = locate(&args.faces);
    let photos = list_photos(&faces_dir, None)
        .with_context(|| format!("listing the photos in {}", faces_dir.display()))?;
    // the evaluation's order: every photo shuffled, then the population kept
    let order: Vec<usize> = arrival_order(photos.len(), args.seed)
        .into_iter()
        .filter(|&i| !args.held_out || photos[i].person_index % 2 == 1)
        .collect();
    if order.is_empty() {
        bail!("{} holds no photos in person folders", faces_dir.display());
    }
    let mut config = ServeConfig::new(PathBuf::new());
    config.face_weights = Some(args.model.weights_dir());
    config.workers = 0; // this command runs the jobs itself, in order
    let album = ScratchAlbum::open(args.scratch.as_deref(), config)?;
    let state = &album.state;
    let user_id = create_user(state)?;
    let mut pipeline = args.model.load().context("loading the face models")?;
    eprintln!(
        "album bench people: {} photos of {} people through the service, in arrival order (seed {})",
        order.len(),
        distinct(order.iter().map(|&i| photos[i].person_index)),
        args.seed
    );
    let bar = album_dataset::progress::bar(order.len() as u64, "photos");
    let mut person_of_photo = HashMap::new();
    for &index in &order {
        let photo = &photos[index];
        let photo_id = store(state, &photo.path, user_id)?;
        let image = state
            .photos
            .upright_image(photo_id, Patience::Job)?
            .context("the photo just stored is gone")?;
        state
            .people
            .store_faces(&mut pipeline, user_id, photo_id, &image.to_rgb8())
            .with_context(|| format!("finding the faces in {}", photo.path.display()))?;
        state.people.cluster_new_faces(user_id)?;
        settle_jobs(state)?;
        person_of_photo.insert(photo_id, photo.person_index);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let arrived = subjects(&state.people.grouped_faces(user_id)?);
    let truth: Vec<usize> = arrived
        .iter()
        .map(|f| person_of_photo[&f.photo_id])
        .collect();
    let service = labels(&arrived);
    let mut library = DensityClustering::with_rule(FACE_RULE);
    library.add_all(&arrived.iter().map(|f| f.descriptor).collect::<Vec<_>>());
    let library_incremental = library.labels().to_vec();
    library.recluster();
    state.people.recluster(user_id)?;
    let reclustered = subjects(&state.people.grouped_faces(user_id)?);
    let service_after = labels(&reclustered);

    println!(
        "{} photos, {} with a face; rule: link at d < {:.2}, people of ≥ {} faces",
        order.len(),
        arrived.len(),
        FACE_RULE.max_distance,
        FACE_RULE.min_faces
    );
    println!(
        "| path | BCubed P | BCubed R | BCubed F1 | pairwise F1 | people found / true | left out |"
    );
    println!("|---|---|---|---|---|---|---|");
    let rows = [
        (
            "service, as photos arrive (every face)",
            cluster_scores(&service, &truth),
        ),
        (
            "library rule, as faces arrive (subjects only)",
            cluster_scores(&library_incremental, &truth),
        ),
        (
            "service after re-cluster",
            cluster_scores(&service_after, &truth),
        ),
        (
            "library re-cluster (subjects only)",
            cluster_scores(library.labels(), &truth),
        ),
    ];
    for (path, scores) in rows {
        print_row(path, &scores);
    }
    Ok(())
}

/// Stores one photo as an upload does; its id.
fn store(state: &AppState, path: &std::path::Path, user_id: i64) -> anyhow::Result<i64> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .map_or_else(|| "photo".into(), |n| n.to_string_lossy().into_owned());
    let inspected = ingest::inspect(name, bytes, &state.decoding)
        .with_context(|| format!("inspecting {}", path.display()))?;
    let stored = state
        .photos
        .store(user_id, vec![inspected])
        .with_context(|| format!("storing {}", path.display()))?;
    let photo = stored
        .into_iter()
        .next()
        .and_then(|result| result.photo)
        .with_context(|| format!("storing {} gave no photo", path.display()))?;
    Ok(photo.id)
}

/// Each photo's subject: its face nearest the centre, in the order the photos came.
fn subjects(faces: &[GroupedFace]) -> Vec<GroupedFace> {
    let mut best: Vec<GroupedFace> = Vec::new();
    let mut position: HashMap<i64, usize> = HashMap::new();
    for face in faces {
        match position.get(&face.photo_id) {
            Some(&i) if best[i].off_centre <= face.off_centre => {}
            Some(&i) => best[i] = face.clone(),
            None => {
                position.insert(face.photo_id, best.len());
                best.push(face.clone());
            }
        }
    }
    best
}

/// The service's people as cluster labels (`None`: waiting, no person yet).
fn labels(faces: &[GroupedFace]) -> Vec<Option<u32>> {
    let mut numbers: HashMap<i64, u32> = HashMap::new();
    faces
        .iter()
        .map(|f| {
            f.person_id.map(|p| {
                let next = numbers.len() as u32;
                *numbers.entry(p).or_insert(next)
            })
        })
        .collect()
}

fn distinct(values: impl Iterator<Item = usize>) -> usize {
    values.collect::<std::collections::HashSet<_>>().len()
}

fn print_row(path: &str, s: &ClusterScores) {
    println!(
        "| {path} | {:.3} | {:.3} | **{:.3}** | {:.3} | {} / {} | {} |",
        s.bcubed_precision,
        s.bcubed_recall,
        s.bcubed_f1,
        s.pairwise_f1,
        s.people_found,
        s.people_true,
        s.unassigned
    );
}
