//! `album bench ingest`: the album service's ingest, stage by stage, in photos/s on this
//! machine's cores.
//!
//! Every stage calls the very library function the service runs, one photo at a time, as
//! an upload and then the background jobs do (a job handles one photo; the models run at
//! batch 1):
//!
//! | stage     | what runs                                                              |
//! |-----------|------------------------------------------------------------------------|
//! | decode    | `ingest::inspect`: magic bytes, pixel cap, full decode, EXIF, SHA-256  |
//! | store     | `Photos::store`: blob (fsynced), photo row, its queued jobs     |
//! | thumbnail | `Photos::renditions`: the thumbnail job, 256 px and 1280 px JPEGs |
//! | classify  | `Photos::upright_image` + `jobs::classify_photo`: the classify job     |
//! | detect    | `Photos::upright_image` + RetinaFace inside `People::store_faces`      |
//! | embed     | the rest of `People::store_faces`: align, dlib ResNet, face rows       |
//! | cluster   | `People::cluster_new_faces`: the cluster job a photo with faces queues |
//! | job queue | `jobs::claim` + `jobs::finish` for each of the photo's jobs            |
//!
//! The jobs read the original back from the blob store and decode it again (the upload
//! decoded it once already), so the thumbnail, classify and detect rows include a decode
//! each; the output says how much.
//!
//! The album is a real one (SQLite and blobs on disk, in a throw-away folder), so the
//! cluster job costs what it costs in the service: it reads every face clustered so far
//! and compares the new faces with them, so its time grows with the album. The output
//! gives the last job's time and the first and last tenth's means to show that growth.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use album_dataset::data::with_threads;
use album_serving::auth::{Accounts, Credentials};
use album_serving::ingest::Patience;
use album_serving::jobs::{self, Models};
use album_serving::service::photos::UploadStatus;
use album_serving::{AppState, ServeConfig, ingest};
use anyhow::{Context, bail};
use axum::extract::FromRef;
use indicatif::ProgressBar;
use serde::Serialize;

use super::{is_photo, locate, sorted_entries};

/// Photos through the album service's ingest, stage by stage (upload check, store,
/// thumbnail, classify, face detection, face descriptors, clustering), one photo at a
/// time as the service's jobs run them, with photos/s per stage and for the whole chain.
///
/// A throw-away album (SQLite + blobs) is made in a temporary folder and removed
/// afterwards. Photos are read into memory first; a few warm-up photos go through every
/// stage uncounted.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album bench ingest
  album bench ingest --photos ../shared/datasets/faces --count 200 --json ingest-faces.json")]
pub struct IngestBenchArgs {
    /// Folder of photos: one sub-folder per class or person (such as the five-class or
    /// the faces set), or photos directly in it.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "../shared/datasets/five-class"
    )]
    photos: PathBuf,
    /// Photos measured, spread evenly over the sub-folders (deterministic).
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// Photos run through every stage first and not counted.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// The classifier bundle, as `album serve --model` takes it.
    #[arg(
        long = "model",
        alias = "bundle",
        value_name = "BUNDLE",
        default_value = "experiments/default-model/bundle"
    )]
    bundle: PathBuf,
    /// The face models' folder [default: $ALBUM_FACE_WEIGHTS or data/weights].
    #[arg(long = "face-models", alias = "faces-weights", value_name = "DIR")]
    faces_weights: Option<PathBuf>,
    /// Threads for the models' and images' parallel work [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Where the throw-away album's folder is made [default: the system's temp folder].
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Also write the figures to this JSON file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

pub fn run(args: IngestBenchArgs) -> anyhow::Result<()> {
    super::RunRecord::of_this_run(); // the revision as the run starts
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args.threads.unwrap_or(cores);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let config = album_config(&args)?;
    let photos_dir = locate(&args.photos);
    let paths = select_photos(&photos_dir, args.count + args.warmup)?;
    let warmup = args.warmup.min(paths.len().saturating_sub(1));
    let photos = read_photos(&paths)?;
    let album = ScratchAlbum::open(args.scratch.as_deref(), config)?;
    let user_id = create_user(&album.state)?;
    print_preamble(&args, &photos, warmup, threads, cores, &album);
    let state = &album.state;
    let measured = with_threads(threads, || measure(state, user_id, &photos, warmup))??;
    let people = count_rows(
        state,
        "SELECT COUNT(*) FROM people WHERE user_id = ?1",
        user_id,
    )?;
    let report = Report::new(&args, &measured, warmup, (threads, cores), people);
    print_report(&report);
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------

/// The service's configuration for the scratch album (its folder is set when it is
/// made), after checking the models are where they are said to be.
fn album_config(args: &IngestBenchArgs) -> anyhow::Result<ServeConfig> {
    let bundle = locate(&args.bundle);
    if !bundle.join("bundle.json").is_file() {
        bail!(
            "no model bundle at {} (the default ships in the repository as \
             experiments/default-model/bundle; run from the repository or pass --model; \
             scripts/setup.sh fetches only the face models)",
            bundle.display()
        );
    }
    let weights = locate(
        &args
            .faces_weights
            .clone()
            .unwrap_or_else(album_faces::weights::default_dir),
    );
    let missing = [
        album_faces::weights::RETINAFACE,
        album_faces::weights::DLIB_RESNET,
    ]
    .into_iter()
    .map(|file| file.path_in(&weights))
    .find(|path| !path.is_file());
    if let Some(path) = missing {
        bail!(
            "no face model at {}: run scripts/setup.sh (it fetches both into data/weights), \
             or pass --face-models",
            path.display()
        );
    }
    let mut config = ServeConfig::new(PathBuf::new());
    config.model_bundle = Some(bundle);
    config.face_weights = Some(weights);
    config.workers = 0; // the bench runs the jobs itself, in order
    Ok(config)
}

/// A real album in a folder of its own, removed when dropped (the state first, so its
/// connections close before the files go).
pub(super) struct ScratchAlbum {
    pub(super) state: AppState,
    dir: tempfile::TempDir,
}

impl ScratchAlbum {
    pub(super) fn open(parent: Option<&Path>, mut config: ServeConfig) -> anyhow::Result<Self> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("album-bench-ingest-")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a scratch folder in {}", parent.display()))?;
        config.data_dir = dir.path().join("album");
        let state = AppState::open(config)
            .with_context(|| format!("opening a scratch album in {}", dir.path().display()))?;
        Ok(ScratchAlbum { state, dir })
    }
}

/// Signs a user up through the service's own handler (argon2 hash included).
pub(super) fn create_user(state: &AppState) -> anyhow::Result<i64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let credentials = Credentials {
        username: "bench".into(),
        password: "per-photo timing secret".into(),
    };
    let user = runtime
        .block_on(Accounts::from_ref(state).register(None, credentials))
        .context("creating the scratch album's user")?;
    Ok(user.id)
}

// ---------------------------------------------------------------------------------------
// Photos
// ---------------------------------------------------------------------------------------

struct Photo {
    name: String,
    bytes: Vec<u8>,
}

/// `n` photos spread evenly over the folder's groups (its sub-folders, plus its own
/// photos as one more), evenly spaced within each group, and interleaved (the first of
/// every group, then the second…) so that the warm-up and every stretch of the run cover
/// all the groups.
fn select_photos(root: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    let groups = photo_groups(root)?;
    let quotas = quotas(&groups.iter().map(Vec::len).collect::<Vec<_>>(), n);
    let picks: Vec<Vec<&PathBuf>> = groups
        .iter()
        .zip(&quotas)
        .map(|(group, &quota)| {
            (0..quota)
                .map(|i| &group[i * group.len() / quota])
                .collect()
        })
        .collect();
    let deepest = quotas.iter().copied().max().unwrap_or(0);
    Ok((0..deepest)
        .flat_map(|rank| picks.iter().filter_map(move |p| p.get(rank)))
        .map(|path| (*path).clone())
        .collect())
}

/// Shares of `n` as even as the groups' sizes allow.
fn quotas(sizes: &[usize], n: usize) -> Vec<usize> {
    let mut quotas = vec![0; sizes.len()];
    let mut left = n.min(sizes.iter().sum());
    while left > 0 {
        for (quota, &size) in quotas.iter_mut().zip(sizes) {
            if left > 0 && *quota < size {
                *quota += 1;
                left -= 1;
            }
        }
    }
    quotas
}

fn photo_groups(root: &Path) -> anyhow::Result<Vec<Vec<PathBuf>>> {
    let entries = sorted_entries(root)?;
    let mut groups = vec![
        entries
            .iter()
            .filter(|p| p.is_file() && is_photo(p))
            .cloned()
            .collect(),
    ];
    for dir in entries.iter().filter(|p| p.is_dir()) {
        groups.push(
            sorted_entries(dir)?
                .into_iter()
                .filter(|p| p.is_file() && is_photo(p))
                .collect(),
        );
    }
    groups.retain(|g: &Vec<PathBuf>| !g.is_empty());
    if groups.is_empty() {
        bail!(
            "no photos in {}: expected sub-folders (one per class or person) of JPEG, PNG \
             or WebP files",
            root.display()
        );
    }
    Ok(groups)
}

/// Every photo's bytes, read before anything is timed.
fn read_photos(paths: &[PathBuf]) -> anyhow::Result<Vec<Photo>> {
    paths
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "photo".into());
            Ok(Photo { name, bytes })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------

/// One photo's time in each stage.
#[derive(Debug, Clone, Copy, Default)]
struct PhotoTimes {
    decode: Duration,
    store: Duration,
    thumbnail: Duration,
    classify: Duration,
    /// The classify job's own decode of the original (part of `classify`).
    classify_decode: Duration,
    /// The faces job's decode of the original and its RGB copy (part of `detect`).
    faces_decode: Duration,
    detect: Duration,
    align: Duration,
    embed: Duration,
    /// Writing the face rows and queueing the cluster job.
    face_rows: Duration,
    cluster: Duration,
    queue: Duration,
    faces: usize,
}

impl PhotoTimes {
    fn add(&mut self, other: &PhotoTimes) {
        self.decode += other.decode;
        self.store += other.store;
        self.thumbnail += other.thumbnail;
        self.classify += other.classify;
        self.classify_decode += other.classify_decode;
        self.faces_decode += other.faces_decode;
        self.detect += other.detect;
        self.align += other.align;
        self.embed += other.embed;
        self.face_rows += other.face_rows;
        self.cluster += other.cluster;
        self.queue += other.queue;
        self.faces += other.faces;
    }

    /// The faces job's detect half: its decode and RetinaFace.
    fn detect_stage(&self) -> Duration {
        self.faces_decode + self.detect
    }

    /// The faces job's other half: align, descriptors, rows.
    fn embed_stage(&self) -> Duration {
        self.align + self.embed + self.face_rows
    }

    fn chain(&self) -> Duration {
        self.decode
            + self.store
            + self.thumbnail
            + self.classify
            + self.detect_stage()
            + self.embed_stage()
            + self.cluster
            + self.queue
    }
}

/// One cluster job: its time and how many faces the album had clustered before it.
#[derive(Debug, Clone, Copy)]
struct ClusterJob {
    seconds: f64,
    known_faces: usize,
}

/// What the measured photos added up to.
#[derive(Debug, Default)]
struct Measured {
    photos: usize,
    duplicates: usize,
    photos_with_faces: usize,
    totals: PhotoTimes,
    cluster_jobs: Vec<ClusterJob>,
    wall: Duration,
    load: Duration,
}

/// The models and the album, as one worker holds them.
struct Bench<'a> {
    state: &'a AppState,
    user_id: i64,
    models: Models,
    /// Faces clustered so far, warm-up included.
    known_faces: usize,
}

fn measure(
    state: &AppState,
    user_id: i64,
    photos: &[Photo],
    warmup: usize,
) -> anyhow::Result<Measured> {
    eprintln!("album bench ingest: loading the models as a worker does");
    let started = Instant::now();
    let models = Models::load(&state.config).context("loading the models")?;
    let load = started.elapsed();
    let mut bench = Bench {
        state,
        user_id,
        models,
        known_faces: 0,
    };
    let (warm, counted) = photos.split_at(warmup);
    eprintln!("album bench ingest: {} warm-up photo(s)", warm.len());
    for photo in warm {
        bench.ingest(photo)?;
    }
    let mut measured = Measured {
        load,
        ..Measured::default()
    };
    let bar = progress_bar(counted.len());
    let started = Instant::now();
    for photo in counted {
        bench.ingest_into(photo, &mut measured)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    measured.wall = started.elapsed();
    Ok(measured)
}

impl Bench<'_> {
    fn ingest_into(&mut self, photo: &Photo, measured: &mut Measured) -> anyhow::Result<()> {
        let known_before = self.known_faces;
        let Some(times) = self.ingest(photo)? else {
            measured.duplicates += 1;
            return Ok(());
        };
        measured.photos += 1;
        measured.totals.add(&times);
        if times.faces > 0 {
            measured.photos_with_faces += 1;
            measured.cluster_jobs.push(ClusterJob {
                seconds: times.cluster.as_secs_f64(),
                known_faces: known_before,
            });
        }
        Ok(())
    }

    /// One photo through every stage; `None` when the album has these bytes already
    /// (the service stores nothing and queues no jobs then).
    fn ingest(&mut self, photo: &Photo) -> anyhow::Result<Option<PhotoTimes>> {
        let mut times = PhotoTimes::default();
        let Some(photo_id) = self.upload(photo, &mut times)? else {
            return Ok(None);
        };
        let context = || format!("photo {}", photo.name);
        let (renditions, elapsed) = timed(|| self.state.photos.renditions(photo_id, Patience::Job));
        renditions.with_context(context)?;
        times.thumbnail = elapsed;
        self.classify(photo_id, &mut times).with_context(context)?;
        self.faces(photo_id, &mut times).with_context(context)?;
        if times.faces > 0 {
            let (outcome, elapsed) = timed(|| self.state.people.cluster_new_faces(self.user_id));
            outcome.with_context(|| format!("clustering the faces of {}", photo.name))?;
            times.cluster = elapsed;
            self.known_faces += times.faces;
        }
        let (settled, elapsed) = timed(|| settle_jobs(self.state));
        settled?;
        times.queue = elapsed;
        Ok(Some(times))
    }

    /// The upload: inspect, then store (blob, row, queued jobs).
    fn upload(&self, photo: &Photo, times: &mut PhotoTimes) -> anyhow::Result<Option<i64>> {
        let (name, bytes) = (photo.name.clone(), photo.bytes.clone());
        let decoding = &self.state.decoding;
        let (inspected, elapsed) = timed(|| ingest::inspect(name, bytes, decoding));
        times.decode = elapsed;
        let inspected = inspected.with_context(|| format!("inspecting {}", photo.name))?;
        let (stored, elapsed) = timed(|| self.state.photos.store(self.user_id, vec![inspected]));
        times.store = elapsed;
        let stored = stored.with_context(|| format!("storing {}", photo.name))?;
        let result = stored
            .into_iter()
            .next()
            .with_context(|| format!("storing {} gave no result", photo.name))?;
        let stored_photo = result
            .photo
            .with_context(|| format!("storing {} gave no photo", photo.name))?;
        Ok((result.status == UploadStatus::Stored).then_some(stored_photo.id))
    }

    /// The classify job: decode the original again, classify at batch 1, update the row.
    fn classify(&self, photo_id: i64, times: &mut PhotoTimes) -> anyhow::Result<()> {
        let classifier = self
            .models
            .classifier
            .as_ref()
            .context("no classifier loaded")?;
        let started = Instant::now();
        let image = self
            .state
            .photos
            .upright_image(photo_id, Patience::Job)?
            .context("the photo is gone")?;
        times.classify_decode = started.elapsed();
        jobs::classify_photo(self.state, classifier, photo_id, &image)?;
        times.classify = started.elapsed();
        Ok(())
    }

    /// The faces job: decode again, then `store_faces` (detect, align, embed, rows); the
    /// pipeline's own stage clock splits the model time from the rows.
    fn faces(&mut self, photo_id: i64, times: &mut PhotoTimes) -> anyhow::Result<()> {
        let pipeline = self
            .models
            .faces
            .as_mut()
            .context("no face models loaded")?;
        let started = Instant::now();
        let image = self
            .state
            .photos
            .upright_image(photo_id, Patience::Job)?
            .context("the photo is gone")?;
        let rgb = image.to_rgb8();
        times.faces_decode = started.elapsed();
        let before = pipeline.times();
        let started = Instant::now();
        self.state
            .people
            .store_faces(pipeline, self.user_id, photo_id, &rgb)?;
        let total = started.elapsed();
        let after = pipeline.times();
        times.detect = after.detect.saturating_sub(before.detect);
        times.align = after.align.saturating_sub(before.align);
        times.embed = after.embed.saturating_sub(before.embed);
        times.face_rows = total.saturating_sub(times.detect + times.align + times.embed);
        times.faces = usize::try_from(count_rows(
            self.state,
            "SELECT COUNT(*) FROM faces WHERE photo_id = ?1",
            photo_id,
        )?)?;
        Ok(())
    }
}

/// The queue's bookkeeping for the jobs just run: each is claimed and marked done, as a
/// worker does around every job.
pub(super) fn settle_jobs(state: &AppState) -> anyhow::Result<usize> {
    let c = state.db.connection()?;
    let mut settled = 0;
    while let Some(job) = jobs::claim(state, &c)? {
        jobs::finish(&c, &job, &Ok(()))?;
        settled += 1;
    }
    Ok(settled)
}

fn count_rows(state: &AppState, sql: &str, id: i64) -> anyhow::Result<i64> {
    let c = state.db.connection()?;
    c.query_row(sql, [id], |row| row.get(0))
        .with_context(|| format!("counting rows: {sql}"))
}

/// A bar on stderr (drawn only when it is a terminal).
fn progress_bar(len: usize) -> ProgressBar {
    let bar = album_dataset::progress::bar(len as u64, "photos");
    bar.set_message("ingest");
    bar
}

fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = work();
    (value, started.elapsed())
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Report {
    run: super::RunRecord,
    photos_dir: String,
    photos: usize,
    warmup: usize,
    duplicates_skipped: usize,
    threads: usize,
    cores: usize,
    model_load_seconds: f64,
    wall_seconds: f64,
    stages: Vec<StageRow>,
    chain: StageRow,
    /// Times each original is decoded (the upload's check, then the thumbnail, classify
    /// and faces jobs), and about how long that takes per photo in all.
    decodes_per_photo: usize,
    decode_ms_per_photo: f64,
    faces: usize,
    photos_with_faces: usize,
    people: i64,
    cluster: ClusterSummary,
}

#[derive(Debug, Serialize)]
struct StageRow {
    stage: &'static str,
    seconds: f64,
    photos_per_s: f64,
    ms_per_photo: f64,
    notes: String,
}

#[derive(Debug, Default, Serialize)]
struct ClusterSummary {
    jobs: usize,
    last_job_ms: f64,
    last_job_known_faces: usize,
    first_tenth_mean_ms: f64,
    last_tenth_mean_ms: f64,
}

impl ClusterSummary {
    fn of(jobs: &[ClusterJob]) -> Self {
        let Some(last) = jobs.last() else {
            return ClusterSummary::default();
        };
        let tenth = (jobs.len() / 10).max(1);
        let mean_ms = |slice: &[ClusterJob]| {
            slice.iter().map(|j| j.seconds).sum::<f64>() * 1000.0 / slice.len().max(1) as f64
        };
        ClusterSummary {
            jobs: jobs.len(),
            last_job_ms: last.seconds * 1000.0,
            last_job_known_faces: last.known_faces,
            first_tenth_mean_ms: mean_ms(&jobs[..tenth]),
            last_tenth_mean_ms: mean_ms(&jobs[jobs.len() - tenth..]),
        }
    }
}

impl Report {
    fn new(
        args: &IngestBenchArgs,
        m: &Measured,
        warmup: usize,
        (threads, cores): (usize, usize),
        people: i64,
    ) -> Self {
        let n = m.photos;
        let t = &m.totals;
        let row = |stage, time: Duration, notes: String| StageRow::new(stage, time, n, notes);
        let ms = |time: Duration| ms_per(time, n);
        let faces_per_photo = t.faces as f64 / n.max(1) as f64;
        let cluster = ClusterSummary::of(&m.cluster_jobs);
        let stages = vec![
            row(
                "decode",
                t.decode,
                "upload check: magic bytes, pixel cap, full decode, EXIF, SHA-256".into(),
            ),
            row(
                "store",
                t.store,
                "upload: blob write + fsync, photo row and its 3 jobs in one commit".into(),
            ),
            row(
                "thumbnail",
                t.thumbnail,
                format!(
                    "job: re-read + re-decode (≈{:.2} ms) + 256 and 1280 px JPEGs + 2 blobs",
                    ms(t.classify_decode)
                ),
            ),
            row(
                "classify",
                t.classify,
                format!(
                    "job: re-decode {:.2} ms + model (batch 1) + row {:.2} ms",
                    ms(t.classify_decode),
                    ms(t.classify.saturating_sub(t.classify_decode))
                ),
            ),
            row(
                "detect",
                t.detect_stage(),
                format!(
                    "faces job: re-decode {:.2} ms + RetinaFace {:.2} ms; \
                     {faces_per_photo:.2} faces/photo ({} of {n} photos)",
                    ms(t.faces_decode),
                    ms(t.detect),
                    m.photos_with_faces
                ),
            ),
            row(
                "embed",
                t.embed_stage(),
                format!(
                    "faces job: align {:.2} + ResNet {:.2} ({:.1}/face) + face rows {:.2} ms",
                    ms(t.align),
                    ms(t.embed),
                    ms_per(t.embed, t.faces),
                    ms(t.face_rows)
                ),
            ),
            row(
                "cluster",
                t.cluster,
                format!(
                    "{} job(s); last {:.2} ms vs {} faces; first/last tenth {:.2}/{:.2} ms",
                    cluster.jobs,
                    cluster.last_job_ms,
                    cluster.last_job_known_faces,
                    cluster.first_tenth_mean_ms,
                    cluster.last_tenth_mean_ms
                ),
            ),
            row(
                "job queue",
                t.queue,
                "claim + finish of the photo's 3-4 jobs".into(),
            ),
        ];
        let decode_ms = ms(t.decode + t.classify_decode * 2 + t.faces_decode);
        Report {
            run: super::RunRecord::of_this_run(),
            photos_dir: args.photos.display().to_string(),
            photos: n,
            warmup,
            duplicates_skipped: m.duplicates,
            threads,
            cores,
            model_load_seconds: m.load.as_secs_f64(),
            wall_seconds: m.wall.as_secs_f64(),
            stages,
            chain: row(
                "chain",
                t.chain(),
                "all the rows above, one after another".into(),
            ),
            decodes_per_photo: 4,
            decode_ms_per_photo: decode_ms,
            faces: t.faces,
            photos_with_faces: m.photos_with_faces,
            people,
            cluster,
        }
    }
}

impl StageRow {
    fn new(stage: &'static str, time: Duration, photos: usize, notes: String) -> Self {
        let seconds = time.as_secs_f64();
        StageRow {
            stage,
            seconds,
            photos_per_s: photos as f64 / seconds.max(f64::EPSILON),
            ms_per_photo: ms_per(time, photos),
            notes,
        }
    }
}

fn ms_per(time: Duration, n: usize) -> f64 {
    time.as_secs_f64() * 1000.0 / n.max(1) as f64
}

fn print_preamble(
    args: &IngestBenchArgs,
    photos: &[Photo],
    warmup: usize,
    threads: usize,
    cores: usize,
    album: &ScratchAlbum,
) {
    let bytes: usize = photos.iter().map(|p| p.bytes.len()).sum();
    println!(
        "album bench ingest: {} photos of {} ({:.1} MB, read into memory) after {warmup} \
         warm-up photo(s), one photo at a time through each stage as the service's jobs run",
        photos.len() - warmup,
        args.photos.display(),
        bytes as f64 / 1e6,
    );
    println!(
        "threads: {threads} of {cores} core(s) (a rayon pool for the flex backend's kernels \
         and image work; the stages themselves run one after another on one thread)"
    );
    println!(
        "album: {} (SQLite, synchronous = FULL; blobs fsynced), removed afterwards",
        album.dir.path().display()
    );
}

fn print_report(report: &Report) {
    println!(
        "models loaded in {:.1} s (not counted); measured run {:.1} s",
        report.model_load_seconds, report.wall_seconds
    );
    if report.duplicates_skipped > 0 {
        println!(
            "{} photo(s) had the bytes of an earlier one: the service stores nothing for \
             them, so they are left out",
            report.duplicates_skipped
        );
    }
    println!();
    println!(
        "{:<10} {:>9} {:>9} {:>9}  notes",
        "stage", "seconds", "photos/s", "ms/photo"
    );
    for row in report.stages.iter().chain([&report.chain]) {
        println!(
            "{:<10} {:>9.2} {:>9.1} {:>9.2}  {}",
            row.stage, row.seconds, row.photos_per_s, row.ms_per_photo, row.notes
        );
    }
    println!();
    println!(
        "whole chain: {:.1} photos/s ({:.1} ms/photo) on {} thread(s)",
        report.chain.photos_per_s, report.chain.ms_per_photo, report.threads
    );
    println!(
        "each original is decoded {} times (upload check, then the thumbnail, classify and \
         faces jobs): ≈{:.2} ms/photo, {:.0} % of the chain",
        report.decodes_per_photo,
        report.decode_ms_per_photo,
        100.0 * report.decode_ms_per_photo / report.chain.ms_per_photo.max(f64::EPSILON)
    );
    println!(
        "album at the end: {} faces in {} of {} photos, {} people (warm-up not counted in the \
         photos, but its faces were clustered too)",
        report.faces, report.photos_with_faces, report.photos, report.people
    );
}

fn write_json(path: &Path, report: &Report) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("figures written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_even_and_respect_small_groups() {
        assert_eq!(quotas(&[6000, 6000, 5994], 10), vec![4, 3, 3]);
        assert_eq!(quotas(&[1, 10, 10], 9), vec![1, 4, 4]);
        assert_eq!(quotas(&[2, 3], 100), vec![2, 3]);
        assert_eq!(quotas(&[], 5), Vec::<usize>::new());
    }
}
