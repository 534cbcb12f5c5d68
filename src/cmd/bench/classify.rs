//! `album bench classify`: how well the album's smart albums sort a folder of photos,
//! measured the way a user meets them. The folder holds one sub-folder per category
//! (`people/`, `animals/`, ...: the bundle's class names); every photo is uploaded to a
//! real `album serve` on 127.0.0.1 over HTTP, the job queue is left to finish, and the
//! category each photo was given is read back from the photo listing. Printed: per
//! category, the photos, the share put in the right smart album, what the others became,
//! and the ones the service refused (with the reason); overall and per-category mean
//! accuracy. Nothing is tuned on what it prints: it is a check, run on folders the
//! classifier never saw.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use album_serving::jobs::Progress;
use album_serving::service::photos::PhotoPage;
use anyhow::{Context, bail};
use serde::Serialize;

use super::load::{Failure, Server, ServerOptions, get_bytes, sign_up, upload_one};
use super::{RunRecord, is_photo, locate, sorted_entries};

/// Upload a folder of category sub-folders to a real album service and print how many
/// photos each smart album got right.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album bench classify --photos ~/Pictures/sorted           # the default model bundle
  album bench classify --photos held-out --model experiments/default-model/bundle
  album bench classify --photos held-out --no-faces --json classify.json

The folder's sub-folders must be named after the bundle's categories (animals, buildings,
landscape, people, vehicles for the default bundle); other files and folders are listed
as skipped.")]
pub struct ClassifyBenchArgs {
    /// Folder with one sub-folder of photos per category.
    #[arg(long)]
    photos: PathBuf,
    /// Concurrent upload clients (one photo per request).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// At most this many photos per category, the first in name order.
    #[arg(long, value_name = "N")]
    per_class: Option<usize>,
    /// The server's data folder; must not exist yet [default: a temporary folder,
    /// removed afterwards].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    server: ServerOptions,
    /// Seconds to wait for the job queue (classification) after the uploads.
    #[arg(long, default_value_t = 3600)]
    jobs_time_limit_s: u64,
    /// Also write the figures as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

pub fn run(args: ClassifyBenchArgs) -> anyhow::Result<()> {
    RunRecord::of_this_run();
    if args.server.no_model {
        bail!(album_dataset::Error::InvalidArgument(
            "--no-model: this bench measures the classifier, so it needs one (--model)".into()
        ));
    }
    if args.clients == 0 {
        bail!(album_dataset::Error::InvalidArgument(
            "--clients must be positive".into()
        ));
    }
    let bundle = locate(&args.server.model);
    let categories = bundle_categories(&bundle)?;
    let folder = locate(&args.photos);
    let photos = list_labelled(&folder, &categories, args.per_class)?;
    if photos.labelled.is_empty() {
        bail!(album_dataset::Error::InvalidArgument(format!(
            "{} holds no photos in category sub-folders ({})",
            folder.display(),
            categories.join(", ")
        )));
    }
    let temp = tempfile::Builder::new()
        .prefix("album-classify-")
        .tempdir()
        .context("creating a temporary folder")?;
    let data_dir = match &args.data_dir {
        Some(dir) if dir.exists() => bail!(album_dataset::Error::InvalidArgument(format!(
            "--data-dir {} exists already; the bench needs an empty album",
            dir.display()
        ))),
        Some(dir) => dir.clone(),
        None => temp.path().join("album"),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcomes = runtime.block_on(classify_through_service(&args, &photos, &data_dir))?;
    let report = ClassifyReport::new(&folder, &bundle, &categories, &photos, outcomes);
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.jobs_finished {
        bail!(
            "the job queue did not finish within {} s: the figures above count the photos \
             still waiting as unclassified",
            args.jobs_time_limit_s
        );
    }
    Ok(())
}

/// The category names of a bundle (`bundle.json`'s `class_names`).
fn bundle_categories(bundle: &Path) -> anyhow::Result<Vec<String>> {
    let path = bundle.join("bundle.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (--model must be a model bundle folder)",
            path.display()
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let names = value["class_names"]
        .as_array()
        .with_context(|| format!("{} has no class_names", path.display()))?;
    Ok(names
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect())
}

/// A photo and the category its folder names.
#[derive(Debug, Clone)]
struct Labelled {
    path: PathBuf,
    category: String,
}

#[derive(Debug, Default)]
struct Listing {
    labelled: Vec<Labelled>,
    /// Files and folders that are not photos in a category folder.
    skipped: Vec<String>,
}

/// Every photo in `root`'s category sub-folders (names matched without regard to case).
fn list_labelled(
    root: &Path,
    categories: &[String],
    per_class: Option<usize>,
) -> anyhow::Result<Listing> {
    let mut listing = Listing::default();
    let mut unknown = Vec::new();
    for entry in sorted_entries(root)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !entry.is_dir() {
            listing.skipped.push(name);
            continue;
        }
        let Some(category) = categories.iter().find(|c| c.eq_ignore_ascii_case(&name)) else {
            unknown.push(name);
            continue;
        };
        let mut taken = 0;
        for file in sorted_entries(&entry)? {
            if !(file.is_file() && is_photo(&file)) {
                listing.skipped.push(file.display().to_string());
            } else if per_class.is_none_or(|limit| taken < limit) {
                listing.labelled.push(Labelled {
                    path: file,
                    category: category.clone(),
                });
                taken += 1;
            }
        }
    }
    if !unknown.is_empty() {
        bail!(album_dataset::Error::InvalidArgument(format!(
            "{}: the folder(s) {} are not categories of the model ({}); rename or move them",
            root.display(),
            unknown.join(", "),
            categories.join(", ")
        )));
    }
    Ok(listing)
}

/// What became of one photo.
#[derive(Debug, Clone)]
enum Outcome {
    /// Stored as this photo id.
    Stored(i64),
    /// The service said no (the reason as it gave it).
    Refused(String),
}

struct Finished {
    outcomes: Vec<Outcome>,
    categories: HashMap<i64, Option<String>>,
    jobs_finished: bool,
    upload_seconds: f64,
    jobs_seconds: f64,
}

async fn classify_through_service(
    args: &ClassifyBenchArgs,
    photos: &Listing,
    data_dir: &Path,
) -> anyhow::Result<Finished> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let log = data_dir.join("serve.log");
    let server = Server::start(args.server.command(data_dir)?, &log)?;
    eprintln!(
        "album bench classify: album serve at {} (log {}), {} photos",
        server.base,
        log.display(),
        photos.labelled.len()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let token = sign_up(&client, &server.base).await?;
    let started = Instant::now();
    let outcomes = upload_all(&client, &server.base, &token, photos, args.clients).await?;
    let upload_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let jobs_finished =
        wait_for_queue(&client, &server.base, &token, args.jobs_time_limit_s).await?;
    let jobs_seconds = started.elapsed().as_secs_f64();
    let categories = list_categories(&client, &server.base, &token).await?;
    server.stop()?;
    Ok(Finished {
        outcomes,
        categories,
        jobs_finished,
        upload_seconds,
        jobs_seconds,
    })
}

/// Uploads every photo, `clients` requests at a time, in listing order.
async fn upload_all(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    photos: &Listing,
    clients: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let paths: Arc<Vec<PathBuf>> =
        Arc::new(photos.labelled.iter().map(|p| p.path.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let bar = album_dataset::progress::bar(paths.len() as u64, "photos");
    bar.set_message("uploading");
    let mut tasks = Vec::new();
    for _ in 0..clients.min(paths.len()) {
        let (client, base, token) = (client.clone(), base.to_owned(), token.to_owned());
        let (paths, next, bar) = (Arc::clone(&paths), Arc::clone(&next), bar.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(index) else {
                    return Ok::<_, anyhow::Error>(done);
                };
                let bytes = tokio::fs::read(path)
                    .await
                    .with_context(|| format!("reading {}", path.display()))?;
                let name = path
                    .file_name()
                    .map_or_else(|| "photo".into(), |n| n.to_string_lossy().into_owned());
                let outcome = match upload_one(&client, &base, &token, &name, bytes).await {
                    Ok((id, _duplicate)) => Outcome::Stored(id),
                    Err(Failure::Answer(why)) => Outcome::Refused(why),
                    Err(Failure::Transport(why)) => {
                        bail!(
                            "uploading {}: the server did not answer: {why}",
                            path.display()
                        )
                    }
                };
                done.push((index, outcome));
                bar.inc(1);
            }
        }));
    }
    let mut outcomes = vec![None; paths.len()];
    for task in tasks {
        for (index, outcome) in task.await.context("an upload client stopped")?? {
            outcomes[index] = Some(outcome);
        }
    }
    bar.finish_and_clear();
    outcomes
        .into_iter()
        .map(|o| o.context("a photo was never uploaded"))
        .collect()
}

/// Waits until no job is queued or running; false when the time limit came first.
async fn wait_for_queue(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    limit_s: u64,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(limit_s);
    let bar = album_dataset::progress::bar(0, "jobs");
    bar.set_message("classifying");
    loop {
        let body = get_bytes(client, &format!("{base}/api/jobs"), token).await?;
        let progress: Progress = serde_json::from_slice(&body).context("reading GET /api/jobs")?;
        let total = &progress.total;
        bar.set_length((total.queued + total.running + total.done + total.failed) as u64);
        bar.set_position((total.done + total.failed) as u64);
        if total.queued + total.running == 0 {
            bar.finish_and_clear();
            return Ok(true);
        }
        if Instant::now() >= deadline {
            bar.finish_and_clear();
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every photo's category as the listing shows it, page by page.
async fn list_categories(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<HashMap<i64, Option<String>>> {
    let mut categories = HashMap::new();
    let mut before: Option<i64> = None;
    loop {
        let url = match before {
            Some(before) => format!("{base}/api/photos?limit=100&before={before}"),
            None => format!("{base}/api/photos?limit=100"),
        };
        let page: PhotoPage = serde_json::from_slice(&get_bytes(client, &url, token).await?)
            .context("reading GET /api/photos")?;
        for photo in page.photos {
            categories.insert(photo.id, photo.category);
        }
        match page.next {
            Some(next) => before = Some(next),
            None => return Ok(categories),
        }
    }
}

/// One category's figures.
#[derive(Debug, Default, Serialize)]
struct CategoryScore {
    category: String,
    photos: usize,
    correct: usize,
    accuracy: f64,
    /// What the service made of this category's photos (`unclassified`: no category).
    predicted: BTreeMap<String, usize>,
    refused: usize,
}

#[derive(Debug, Serialize)]
struct ClassifyReport {
    run: RunRecord,
    photos_folder: PathBuf,
    bundle: PathBuf,
    /// Photos the service stored and classified, over all categories.
    scored: usize,
    correct: usize,
    accuracy: f64,
    /// The mean of the per-category accuracies (each category counts once).
    mean_category_accuracy: f64,
    per_category: Vec<CategoryScore>,
    /// Files refused by the service, with its reason.
    refused: Vec<(String, String)>,
    skipped: usize,
    upload_seconds: f64,
    jobs_seconds: f64,
    jobs_finished: bool,
}

const UNCLASSIFIED: &str = "unclassified";

impl ClassifyReport {
    fn new(
        folder: &Path,
        bundle: &Path,
        categories: &[String],
        photos: &Listing,
        finished: Finished,
    ) -> Self {
        let mut scores: Vec<CategoryScore> = categories
            .iter()
            .map(|c| CategoryScore {
                category: c.clone(),
                ..CategoryScore::default()
            })
            .collect();
        let mut refused = Vec::new();
        for (photo, outcome) in photos.labelled.iter().zip(&finished.outcomes) {
            let Some(score) = scores.iter_mut().find(|s| s.category == photo.category) else {
                continue;
            };
            match outcome {
                Outcome::Refused(why) => {
                    score.refused += 1;
                    refused.push((photo.path.display().to_string(), why.clone()));
                }
                Outcome::Stored(id) => {
                    let predicted = finished
                        .categories
                        .get(id)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| UNCLASSIFIED.into());
                    score.photos += 1;
                    score.correct += usize::from(predicted == photo.category);
                    *score.predicted.entry(predicted).or_default() += 1;
                }
            }
        }
        scores.retain(|s| s.photos + s.refused > 0);
        for score in &mut scores {
            score.accuracy = score.correct as f64 / score.photos.max(1) as f64;
        }
        let scored: usize = scores.iter().map(|s| s.photos).sum();
        let correct: usize = scores.iter().map(|s| s.correct).sum();
        let with_photos: Vec<&CategoryScore> = scores.iter().filter(|s| s.photos > 0).collect();
        let mean_category_accuracy =
            with_photos.iter().map(|s| s.accuracy).sum::<f64>() / with_photos.len().max(1) as f64;
        ClassifyReport {
            run: RunRecord::of_this_run(),
            photos_folder: folder.to_owned(),
            bundle: bundle.to_owned(),
            scored,
            correct,
            accuracy: correct as f64 / scored.max(1) as f64,
            mean_category_accuracy,
            per_category: scores,
            refused,
            skipped: photos.skipped.len(),
            upload_seconds: finished.upload_seconds,
            jobs_seconds: finished.jobs_seconds,
            jobs_finished: finished.jobs_finished,
        }
    }

    fn print(&self) {
        println!(
            "smart albums of {} through album serve (bundle {}; revision {}{})",
            self.photos_folder.display(),
            self.bundle.display(),
            self.run
                .git_revision
                .get(..7)
                .unwrap_or(&self.run.git_revision),
            if self.run.git_dirty {
                ", modified tree"
            } else {
                ""
            }
        );
        println!("| category | photos | right album | accuracy | what the others became |");
        println!("|---|---:|---:|---:|---|");
        for score in &self.per_category {
            let others: Vec<String> = score
                .predicted
                .iter()
                .filter(|(name, _)| **name != score.category)
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            println!(
                "| {} | {} | {} | {:.1} % | {} |",
                score.category,
                score.photos,
                score.correct,
                score.accuracy * 100.0,
                if others.is_empty() {
                    "—".into()
                } else {
                    others.join(", ")
                }
            );
        }
        println!(
            "overall: {} of {} photos in the right smart album ({:.1} %); mean over \
             categories {:.1} %",
            self.correct,
            self.scored,
            self.accuracy * 100.0,
            self.mean_category_accuracy * 100.0
        );
        println!(
            "uploads {:.1} s, classification {:.1} s{}",
            self.upload_seconds,
            self.jobs_seconds,
            if self.skipped > 0 {
                format!(
                    "; {} files skipped (not photos in a category folder)",
                    self.skipped
                )
            } else {
                String::new()
            }
        );
        for (path, why) in &self.refused {
            println!("refused: {path}: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn categories() -> Vec<String> {
        ["animals", "people"].map(String::from).to_vec()
    }

    #[test]
    fn category_folders_are_matched_without_case_and_others_are_skipped_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("People")).unwrap();
        std::fs::create_dir_all(dir.path().join("animals")).unwrap();
        for (folder, file) in [
            ("People", "a.jpg"),
            ("People", "b.JPG"),
            ("People", "notes.txt"),
            ("animals", "c.png"),
        ] {
            std::fs::write(dir.path().join(folder).join(file), b"x").unwrap();
        }
        std::fs::write(dir.path().join("readme.md"), b"x").unwrap();
        let listing = list_labelled(dir.path(), &categories(), None).unwrap();
        let labels: Vec<&str> = listing
            .labelled
            .iter()
            .map(|l| l.category.as_str())
            .collect();
        // sorted by path: "People" before "animals" (upper case first)
        assert_eq!(labels, ["people", "people", "animals"]);
        assert_eq!(listing.skipped.len(), 2, "{:?}", listing.skipped);
        let limited = list_labelled(dir.path(), &categories(), Some(1)).unwrap();
        assert_eq!(limited.labelled.len(), 2);

        std::fs::create_dir_all(dir.path().join("cats")).unwrap();
        let err = list_labelled(dir.path(), &categories(), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cats") && err.contains("animals, people"),
            "{err}"
        );
    }
}
