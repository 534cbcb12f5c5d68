//! `album bench load`: the album service under load, the way the paper load-tested its
//! album with JMeter (20,000 uploads), through the real HTTP API on loopback.
//!
//! It starts `album serve` as a child process on a fresh data folder, signs a user up,
//! then:
//! 1. **uploads** `--count` photos from a class-folder set (one photo per request,
//!    `--clients` at once), timing each request;
//! 2. optionally **kills the server with SIGKILL** once `--kill-after` uploads were
//!    acknowledged, checks the data folder while it is dead (no blob whose bytes differ
//!    from its name, no row whose blob is missing), restarts it and goes on: requests cut
//!    by the kill are sent again, and the ones the dead server had committed come back as
//!    duplicates of the same photo;
//! 3. **checks** that every acknowledged photo downloads byte-identical to its file;
//! 4. times **list pages and thumbnails** at `--read-clients` concurrent clients;
//! 5. waits for the **job queue** (thumbnails, classification, faces, clustering) to
//!    finish, then stops the server and checks the data folder once more.
//!
//! With `--instances N` it starts N servers sharing one album (`--database` and
//! `--blobs`: Postgres and a bucket, or the data folder's own), spreads the uploads and
//! the reads over them, and `--kill-after` kills the first one for good: its requests go
//! to the others, and its jobs are taken over by them once their leases run out. The
//! album is checked for work done twice (a face stored twice) at the end.
//!
//! Any error, mismatch, lost photo, damaged blob or failed job makes the command fail
//! after printing what it measured. Everything stays on 127.0.0.1 and is bounded by
//! `--count` and the time limits.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use album_serving::blobs::BlobLocation;
use album_serving::check::{RepeatedWork, StoreCheck, check_album, repeated_work};
use album_serving::db::DatabaseLocation;
use album_serving::jobs::Progress;
use album_serving::service::photos::{PhotoPage, UploadReport, UploadStatus};
use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::{RunRecord, is_photo, locate, sorted_entries};

/// Upload photos to a real `album serve` over HTTP on 127.0.0.1, check every one comes
/// back byte-identical, time list pages and thumbnails under concurrent clients, let
/// the job queue finish; optionally kill -9 the server half-way and restart it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  album bench load                                   # 20,000 photos, the paper's load test
  album bench load --kill-after 10000                # kill -9 the server half-way through
  album bench load --count 500 --no-faces --json load.json
  album bench load --instances 2 --kill-after 10000 --database postgres://album@localhost:5432/album")]
pub struct LoadBenchArgs {
    /// Folder of class sub-folders of photos.
    #[arg(long, default_value = "../shared/datasets/five-class")]
    photos: PathBuf,
    /// Photos to upload, spread over the classes (the paper's JMeter run: 20,000).
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Concurrent upload clients (one photo per request).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Concurrent clients listing pages and fetching thumbnails.
    #[arg(long, default_value_t = 64)]
    read_clients: usize,
    /// List requests and thumbnail requests each read client makes.
    #[arg(long, default_value_t = 50)]
    reads: usize,
    /// SIGKILL the server once this many uploads were acknowledged, then restart it
    /// (with --instances above 1: kill the first instance for good).
    #[arg(long, value_name = "N")]
    kill_after: Option<usize>,
    /// `album serve` instances sharing the album, the requests spread over them.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// The album's rows in this Postgres database (empty), shared by the instances
    /// [default: DIR/album.db].
    #[arg(long, value_name = "URL")]
    database: Option<DatabaseLocation>,
    /// The album's photos here (a folder or an S3 bucket, credentials from AWS_*),
    /// shared by the instances [default: DIR/blobs].
    #[arg(long, value_name = "WHERE")]
    blobs: Option<BlobLocation>,
    /// The server's data folder; must not exist yet [default: a temporary folder,
    /// removed afterwards].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    server: ServerOptions,
    /// Stop uploading after this many seconds (the run then fails: not all were sent).
    #[arg(long, default_value_t = 3600)]
    upload_time_limit_s: u64,
    /// Seconds to wait for the job queue to finish after the uploads (0: do not wait).
    #[arg(long, default_value_t = 3600)]
    jobs_time_limit_s: u64,
    /// Order of the uploads and the reads' choices.
    #[arg(long, default_value_t = 20_221)]
    seed: u64,
    /// Also write the figures as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

pub fn run(args: LoadBenchArgs) -> anyhow::Result<()> {
    super::RunRecord::of_this_run(); // the revision as the run starts
    if args.count == 0 || args.clients == 0 || args.read_clients == 0 || args.instances == 0 {
        bail!(album_dataset::Error::InvalidArgument(
            "--count, --clients, --read-clients and --instances must be positive".into()
        ));
    }
    let photos = pick_photos(&locate(&args.photos), args.count, args.seed)?;
    let (data_dir, _temp) = data_dir_of(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime.block_on(run_load(&args, photos, &data_dir))?;
    report.print(&args);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    report.verdict(args.kill_after.is_some())
}

// ---------------------------------------------------------------------------------------
// The photos and the data folder
// ---------------------------------------------------------------------------------------

/// `count` photos spread evenly over the class folders' sorted files, in a shuffled order.
fn pick_photos(root: &Path, count: usize, seed: u64) -> anyhow::Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for class_dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        all.extend(
            sorted_entries(&class_dir)?
                .into_iter()
                .filter(|p| is_photo(p)),
        );
    }
    if all.len() < count {
        bail!(album_dataset::Error::InvalidArgument(format!(
            "{} has {} photos in class folders; --count asks for {count}",
            root.display(),
            all.len()
        )));
    }
    let mut picked: Vec<PathBuf> = (0..count)
        .map(|i| all[i * all.len() / count].clone())
        .collect();
    picked.shuffle(&mut StdRng::seed_from_u64(seed));
    Ok(picked)
}

impl LoadBenchArgs {
    /// `album serve` on the album's folder, database and blobs.
    fn serve_command(&self, data_dir: &Path) -> anyhow::Result<Command> {
        let mut command = self.server.command(data_dir)?;
        if let Some(database) = &self.database {
            command.arg("--database").arg(database_argument(database));
        }
        if let Some(blobs) = &self.blobs {
            command.arg("--blobs").arg(blobs.to_string());
        }
        Ok(command)
    }

    fn database_location(&self, data_dir: &Path) -> DatabaseLocation {
        self.database
            .clone()
            .unwrap_or_else(|| DatabaseLocation::Sqlite(data_dir.join("album.db")))
    }

    fn blob_location(&self, data_dir: &Path) -> BlobLocation {
        self.blobs
            .clone()
            .unwrap_or_else(|| BlobLocation::Local(data_dir.join("blobs")))
    }
}

/// The location as `album serve --database` takes it (with its password, unlike its
/// display).
fn database_argument(location: &DatabaseLocation) -> std::ffi::OsString {
    match location {
        DatabaseLocation::Sqlite(path) => path.clone().into_os_string(),
        DatabaseLocation::Postgres(url) => url.into(),
    }
}

fn data_dir_of(args: &LoadBenchArgs) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.data_dir {
        Some(dir) if dir.exists() => bail!(album_dataset::Error::InvalidArgument(format!(
            "--data-dir {} exists already; the load run needs an empty album",
            dir.display()
        ))),
        Some(dir) => Ok((dir.clone(), None)),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("album-load-")
                .tempdir()
                .context("creating a temporary data folder")?;
            Ok((temp.path().join("album"), Some(temp)))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// `album serve` running as a child process.
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) base: String,
}

/// How long the server may take to load its models and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How a bench runs its `album serve`.
#[derive(Debug, clap::Args)]
pub(super) struct ServerOptions {
    /// The server's background worker threads.
    #[arg(long, default_value_t = 2)]
    pub(super) workers: usize,
    /// Classifier bundle for the server.
    #[arg(long, default_value = "experiments/default-model/bundle")]
    pub(super) model: PathBuf,
    /// Run the server without a classifier.
    #[arg(long)]
    pub(super) no_model: bool,
    /// Run the server without face detection.
    #[arg(long)]
    pub(super) no_faces: bool,
    /// The server's `--people-face-share` (0: "people" is the classifier's alone)
    /// [default: the server's].
    #[arg(long, value_name = "SHARE")]
    pub(super) people_face_share: Option<f64>,
}

impl ServerOptions {
    /// `album serve` (this very binary) on a free port of 127.0.0.1.
    pub(super) fn command(&self, data_dir: &Path) -> anyhow::Result<Command> {
        let exe = std::env::current_exe().context("finding the album binary")?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--addr", "127.0.0.1:0", "--workers"])
            .arg(self.workers.to_string());
        if self.no_model {
            command.arg("--no-model");
        } else {
            command.arg("--model").arg(locate(&self.model));
        }
        if self.no_faces {
            command.arg("--no-faces");
        }
        if let Some(share) = self.people_face_share {
            command.arg("--people-face-share").arg(share.to_string());
        }
        Ok(command)
    }
}

impl Server {
    /// Starts the server and waits for the line naming its address. Its stderr (job
    /// failures, crash recovery) is appended to `log`.
    pub(super) fn start(mut command: Command, log: &Path) -> anyhow::Result<Server> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("starting album serve")?;
        let stdout = child
            .stdout
            .take()
            .context("album serve's output is not piped")?;
        let (sender, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keeps reading so the server never blocks on a full pipe.
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(addr) = address_in(&line) {
                    let _ = sender.send(addr);
                }
            }
        });
        match address.recv_timeout(START_TIMEOUT) {
            Ok(addr) => Ok(Server {
                child,
                base: format!("http://{addr}"),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // its output closed without an address: it stopped, and says why in the log
                let status = child.wait().context("waiting for album serve")?;
                let last = std::fs::read_to_string(log).unwrap_or_default();
                // its own error line, else whatever it said last (the dynamic loader's
                // complaint under an address-space limit, say)
                let mut lines = last.lines().rev().filter(|l| !l.trim().is_empty());
                let reason = last
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error"))
                    .or_else(|| lines.next())
                    .unwrap_or("it printed nothing");
                bail!(
                    "album serve stopped before it was ready ({status}): {reason} (all of its \
                     output is in {})",
                    log.display()
                )
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "album serve did not start within {} s (its errors are in {})",
                    START_TIMEOUT.as_secs(),
                    log.display()
                )
            }
        }
    }

    /// SIGKILL: no chance to flush or finish anything.
    fn kill_hard(mut self) -> anyhow::Result<()> {
        self.child.kill().context("killing album serve")?;
        self.child.wait().context("waiting for album serve")?;
        Ok(())
    }

    /// SIGINT, as Ctrl-C: the server stops accepting, finishes and exits.
    pub(super) fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while sent.as_ref().is_ok_and(|s| s.success()) && Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("album serve did not stop on SIGINT within 60 s; killing it");
        self.kill_hard()
    }
}

/// A server left running by an error in the bench is killed, not orphaned.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in `album serve: http://127.0.0.1:PORT/ (...)`.
fn address_in(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix("album serve: http://")?;
    rest.split('/').next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// The HTTP side
// ---------------------------------------------------------------------------------------

/// Why a request failed: the connection (expected while the server is down) or the
/// server's answer (always an error).
pub(super) enum Failure {
    Transport(String),
    Answer(String),
}

pub(super) async fn sign_up(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let credentials = serde_json::json!({"username": "load", "password": "twenty thousand photos"});
    for path in ["/api/users", "/api/sessions"] {
        let response = client
            .post(format!("{base}{path}"))
            .json(&credentials)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        if !response.status().is_success() {
            bail!("POST {path}: {}", response.status());
        }
        if path == "/api/sessions" {
            let session: serde_json::Value = response.json().await?;
            return session["token"]
                .as_str()
                .map(str::to_owned)
                .context("the session has no token");
        }
    }
    bail!("signing up did not give a token")
}

/// One photo in one multipart request: its id and whether it was stored or a duplicate.
pub(super) async fn upload_one(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> Result<(i64, bool), Failure> {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("image/jpeg")
        .map_err(|e| Failure::Answer(e.to_string()))?;
    let response = client
        .post(format!("{base}/api/photos"))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("photo", part))
        .send()
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::Transport(e.to_string()))?;
    if !status.is_success() {
        return Err(Failure::Answer(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let report: UploadReport =
        serde_json::from_slice(&body).map_err(|e| Failure::Answer(e.to_string()))?;
    let result = report
        .results
        .first()
        .ok_or_else(|| Failure::Answer("the upload report is empty".into()))?;
    let photo = result.photo.as_ref().ok_or_else(|| {
        let why = result
            .error
            .as_ref()
            .map_or("no reason", |e| e.message.as_str());
        Failure::Answer(format!("{} was {:?}: {why}", result.name, result.status))
    })?;
    Ok((photo.id, result.status == UploadStatus::Duplicate))
}

pub(super) async fn get_bytes(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<axum::body::Bytes> {
    let response = client.get(url).bearer_auth(token).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {url}: {status}");
    }
    Ok(response.bytes().await?)
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// What every upload client shares.
struct Uploads {
    client: reqwest::Client,
    token: String,
    photos: Vec<PathBuf>,
    /// The live servers' addresses, and how many times that list changed (a kill, a
    /// restart).
    server: watch::Receiver<(u64, Vec<String>)>,
    /// True from the kill until the restarted server listens.
    down: AtomicBool,
    next: AtomicUsize,
    acknowledged: AtomicUsize,
    deadline: Instant,
    kill_after: Option<usize>,
    kill_now: Notify,
    /// Set when `--kill-after` uploads were acknowledged (the killer then kills, even if
    /// the last uploads finish before it gets to run).
    kill_triggered: AtomicBool,
    outcome: Mutex<UploadOutcome>,
    bar: indicatif::ProgressBar,
}

#[derive(Default)]
struct UploadOutcome {
    /// Photo id per photo index, once acknowledged.
    ids: Vec<Option<i64>>,
    latencies: Vec<Duration>,
    errors: Vec<String>,
    /// Requests cut by the kill, sent again after the restart.
    interrupted: usize,
    /// Of those, the ones the dead server had committed (answered as duplicates).
    committed_unacknowledged: usize,
    duplicates: usize,
}

async fn run_load(
    args: &LoadBenchArgs,
    photos: Vec<PathBuf>,
    data_dir: &Path,
) -> anyhow::Result<LoadReport> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let log = data_dir.join("serve.log");
    let command = || args.serve_command(data_dir);
    let mut servers = Vec::with_capacity(args.instances);
    for instance in 1..=args.instances {
        let log = match instance {
            1 => log.clone(),
            n => data_dir.join(format!("serve-{n}.log")),
        };
        let server = Server::start(command()?, &log)?;
        eprintln!(
            "album bench load: album serve at {} (log {})",
            server.base,
            log.display()
        );
        servers.push(server);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.read_clients.max(args.clients))
        .timeout(Duration::from_secs(120))
        .build()?;
    let token = sign_up(&client, &servers[0].base).await?;
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let (publish, server_watch) = watch::channel((1, bases));
    let count = photos.len();
    let uploads = Arc::new(Uploads {
        client,
        token,
        photos,
        server: server_watch,
        down: AtomicBool::new(false),
        next: AtomicUsize::new(0),
        acknowledged: AtomicUsize::new(0),
        deadline: Instant::now() + Duration::from_secs(args.upload_time_limit_s),
        kill_after: args.kill_after,
        kill_now: Notify::new(),
        kill_triggered: AtomicBool::new(false),
        outcome: Mutex::new(UploadOutcome {
            ids: vec![None; count],
            ..UploadOutcome::default()
        }),
        bar: album_dataset::progress::bar(count as u64, "photos"),
    });
    uploads.bar.set_message("uploading");

    let started = Instant::now();
    let killer = tokio::spawn(kill_and_restart(
        Arc::clone(&uploads),
        servers,
        publish,
        command()?,
        log.clone(),
        (
            args.database_location(data_dir),
            args.blob_location(data_dir),
        ),
    ));
    let clients: Vec<_> = (0..args.clients)
        .map(|_| tokio::spawn(upload_client(Arc::clone(&uploads))))
        .collect();
    for client in clients {
        client.await?;
    }
    let upload_seconds = started.elapsed().as_secs_f64();
    uploads.bar.finish_and_clear();
    uploads.kill_now.notify_one(); // lets the killer return if it never fired
    let (servers, crash) = killer.await??;

    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let verified = verify_downloads(&uploads, &bases).await;
    let busy_reads = time_reads(&uploads, &bases, args, "while the job queue works").await?;
    let jobs = wait_for_jobs(&uploads, &bases[0], args.jobs_time_limit_s).await?;
    let quiet_reads = time_reads(&uploads, &bases, args, "after the job queue finished").await?;
    for server in servers {
        server.stop()?;
    }
    let database = args.database_location(data_dir);
    let final_check = check_album(&database, &args.blob_location(data_dir))?;
    let repeated = repeated_work(&database)?;

    let outcome = std::mem::take(&mut *lock(&uploads));
    Ok(LoadReport::new(
        args,
        count,
        outcome,
        upload_seconds,
        crash,
        verified,
        vec![busy_reads, quiet_reads],
        jobs,
        final_check,
        repeated,
    ))
}

fn lock(uploads: &Uploads) -> std::sync::MutexGuard<'_, UploadOutcome> {
    // Clients only push figures under the lock; a poisoned lock still holds them.
    uploads
        .outcome
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

/// One upload client: takes the next photo until none are left or time is up.
async fn upload_client(uploads: Arc<Uploads>) {
    let mut server = uploads.server.clone();
    loop {
        let index = uploads.next.fetch_add(1, Ordering::SeqCst);
        if index >= uploads.photos.len() || Instant::now() >= uploads.deadline {
            return;
        }
        let path = &uploads.photos[index];
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                lock(&uploads)
                    .errors
                    .push(format!("reading {}: {e}", path.display()));
                continue;
            }
        };
        let mut cut_by_kill = false;
        loop {
            let (generation, bases) = server.borrow_and_update().clone();
            // The photos take turns over the live servers, as a load balancer would.
            let base = &bases[index % bases.len()];
            let sent = Instant::now();
            match upload_one(&uploads.client, base, &uploads.token, &name, bytes.clone()).await {
                Ok((id, duplicate)) => {
                    acknowledge(&uploads, index, id, duplicate, cut_by_kill, sent.elapsed());
                    break;
                }
                Err(Failure::Transport(_)) if kill_in_progress(&uploads, &server, generation) => {
                    // The kill cut this request: send it again once restarted.
                    cut_by_kill = true;
                    lock(&uploads).interrupted += 1;
                    while server.borrow().0 == generation {
                        if server.changed().await.is_err() {
                            return;
                        }
                    }
                }
                Err(Failure::Transport(e) | Failure::Answer(e)) => {
                    lock(&uploads).errors.push(format!("{name}: {e}"));
                    break;
                }
            }
        }
    }
}

fn kill_in_progress(
    uploads: &Uploads,
    server: &watch::Receiver<(u64, Vec<String>)>,
    sent_on: u64,
) -> bool {
    uploads.down.load(Ordering::SeqCst) || server.borrow().0 != sent_on
}

fn acknowledge(
    uploads: &Uploads,
    index: usize,
    id: i64,
    duplicate: bool,
    retried_after_kill: bool,
    latency: Duration,
) {
    {
        let mut outcome = lock(uploads);
        outcome.ids[index] = Some(id);
        outcome.latencies.push(latency);
        if duplicate {
            outcome.duplicates += 1;
            if retried_after_kill {
                outcome.committed_unacknowledged += 1;
            }
        }
    }
    uploads.bar.inc(1);
    let acknowledged = uploads.acknowledged.fetch_add(1, Ordering::SeqCst) + 1;
    if uploads.kill_after == Some(acknowledged) {
        uploads.kill_triggered.store(true, Ordering::SeqCst);
        uploads.kill_now.notify_one();
    }
}

/// What the kill showed.
#[derive(Debug, Clone, Serialize)]
struct CrashReport {
    acknowledged_before_kill: usize,
    /// The album checked while the killed server was dead.
    store_while_dead: StoreCheck,
    /// The killed server was started again (a lone instance); with several, the others
    /// went on without it.
    restarted: bool,
    /// From the kill until the requests went on (to the restarted server or the others).
    restart_seconds: f64,
}

/// Waits for the kill signal; when `--kill-after` is set, kills the first server,
/// checks the album while it is dead, then restarts it (a lone instance) or leaves the
/// others to serve, and publishes the live servers.
async fn kill_and_restart(
    uploads: Arc<Uploads>,
    mut servers: Vec<Server>,
    publish: watch::Sender<(u64, Vec<String>)>,
    command: Command,
    log: PathBuf,
    (database, blobs): (DatabaseLocation, BlobLocation),
) -> anyhow::Result<(Vec<Server>, Option<CrashReport>)> {
    uploads.kill_now.notified().await;
    if !uploads.kill_triggered.load(Ordering::SeqCst) {
        return Ok((servers, None)); // no --kill-after, or fewer acknowledged uploads
    }
    uploads.down.store(true, Ordering::SeqCst);
    let acknowledged_before_kill = uploads.acknowledged.load(Ordering::SeqCst);
    let killed = Instant::now();
    servers.remove(0).kill_hard()?;
    uploads.bar.suspend(|| {
        eprintln!("album bench load: killed album serve (SIGKILL) after {acknowledged_before_kill} acknowledged uploads")
    });
    let store_while_dead =
        tokio::task::spawn_blocking(move || check_album(&database, &blobs)).await??;
    let restarted = servers.is_empty();
    if restarted {
        let server = tokio::task::spawn_blocking(move || Server::start(command, &log)).await??;
        servers.push(server);
    }
    let restart_seconds = killed.elapsed().as_secs_f64();
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    uploads.down.store(false, Ordering::SeqCst);
    publish.send_modify(|(generation, live)| {
        *generation += 1;
        live.clone_from(&bases);
    });
    uploads.bar.suspend(|| {
        if restarted {
            eprintln!(
                "album bench load: restarted at {} after {restart_seconds:.1} s",
                bases[0]
            );
        } else {
            eprintln!("album bench load: going on with {}", bases.join(", "));
        }
    });
    Ok((
        servers,
        Some(CrashReport {
            acknowledged_before_kill,
            store_while_dead,
            restarted,
            restart_seconds,
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// After the uploads
// ---------------------------------------------------------------------------------------

/// Every acknowledged photo downloaded and compared with its file.
#[derive(Debug, Clone, Default, Serialize)]
struct Verified {
    checked: usize,
    identical: usize,
    problems: Vec<String>,
}

/// Index and id of every acknowledged photo.
fn acknowledged_ids(uploads: &Uploads) -> Vec<(usize, i64)> {
    lock(uploads)
        .ids
        .iter()
        .enumerate()
        .filter_map(|(index, id)| id.map(|id| (index, id)))
        .collect()
}

/// Concurrent downloads while comparing (not timed: only the bytes matter here).
const VERIFY_CLIENTS: usize = 16;

async fn verify_downloads(uploads: &Arc<Uploads>, bases: &[String]) -> Verified {
    let acknowledged = Arc::new(acknowledged_ids(uploads));
    let bar = album_dataset::progress::bar(acknowledged.len() as u64, "photos");
    bar.set_message("downloading and comparing");
    let next = Arc::new(AtomicUsize::new(0));
    let verified = Arc::new(Mutex::new(Verified::default()));
    let tasks: Vec<_> = (0..VERIFY_CLIENTS)
        .map(|client| {
            let (uploads, acknowledged, next, verified, bar) = (
                Arc::clone(uploads),
                Arc::clone(&acknowledged),
                Arc::clone(&next),
                Arc::clone(&verified),
                bar.clone(),
            );
            let base = bases[client % bases.len()].clone();
            tokio::spawn(async move {
                while let Some(&(index, id)) = acknowledged.get(next.fetch_add(1, Ordering::SeqCst))
                {
                    let outcome = compare_one(&uploads, &base, index, id).await;
                    let mut verified = verified.lock().unwrap_or_else(|p| p.into_inner());
                    verified.checked += 1;
                    match outcome {
                        Ok(()) => verified.identical += 1,
                        Err(problem) => verified.problems.push(problem),
                    }
                    bar.inc(1);
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    bar.finish_and_clear();
    let guard = verified.lock().unwrap_or_else(|p| p.into_inner());
    guard.clone()
}

async fn compare_one(uploads: &Uploads, base: &str, index: usize, id: i64) -> Result<(), String> {
    let path = &uploads.photos[index];
    let expected = tokio::fs::read(path)
        .await
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let url = format!("{base}/api/photos/{id}/original");
    let got = get_bytes(&uploads.client, &url, &uploads.token)
        .await
        .map_err(|e| format!("photo {id} ({}): {e:#}", path.display()))?;
    if got.as_ref() == expected.as_slice() {
        Ok(())
    } else {
        Err(format!(
            "photo {id} differs from {} ({} bytes, expected {})",
            path.display(),
            got.len(),
            expected.len()
        ))
    }
}

/// Latencies of list pages and thumbnails under concurrent clients.
#[derive(Debug, Clone, Default, Serialize)]
struct Reads {
    when: &'static str,
    clients: usize,
    list: Latencies,
    thumbnail: Latencies,
    errors: Vec<String>,
    /// Thumbnail jobs still waiting when the reads began (those are made on request).
    thumbnails_pending: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Latencies {
    requests: usize,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latencies {
    fn of(mut times: Vec<Duration>, seconds: f64) -> Self {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Latencies {
            requests: times.len(),
            per_s: times.len() as f64 / seconds.max(1e-9),
            p50_ms: percentile(&times, 50.0).map_or(0.0, ms),
            p99_ms: percentile(&times, 99.0).map_or(0.0, ms),
            max_ms: times.last().copied().map_or(0.0, ms),
        }
    }
}

/// The `p`th percentile of sorted `times` (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[derive(Default)]
struct ReadTimes {
    list: Vec<Duration>,
    thumbnail: Vec<Duration>,
    errors: Vec<String>,
}

async fn time_reads(
    uploads: &Arc<Uploads>,
    bases: &[String],
    args: &LoadBenchArgs,
    when: &'static str,
) -> anyhow::Result<Reads> {
    let ids: Arc<Vec<i64>> = Arc::new(
        acknowledged_ids(uploads)
            .into_iter()
            .map(|(_, id)| id)
            .collect(),
    );
    if ids.is_empty() {
        return Ok(Reads {
            when,
            ..Reads::default()
        });
    }
    let pending = job_progress(uploads, &bases[0]).await?;
    let thumbnails_pending = pending
        .by_kind
        .get("thumbnail")
        .map_or(0, |c| c.queued + c.running);
    let bar = album_dataset::progress::bar((args.read_clients * args.reads * 2) as u64, "requests");
    bar.set_message("list pages and thumbnails");
    let times = Arc::new(Mutex::new(ReadTimes::default()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.read_clients)
        .map(|client| {
            let (uploads, ids, times, bar) = (
                Arc::clone(uploads),
                Arc::clone(&ids),
                Arc::clone(&times),
                bar.clone(),
            );
            let (base, reads) = (bases[client % bases.len()].clone(), args.reads);
            let mut rng = StdRng::seed_from_u64(args.seed ^ (client as u64 + 1));
            tokio::spawn(async move {
                for _ in 0..reads {
                    let before = ids[rng.random_range(0..ids.len())] + 1;
                    let list = format!("{base}/api/photos?limit=100&before={before}");
                    let thumbnail_id = ids[rng.random_range(0..ids.len())];
                    let thumbnail = format!("{base}/api/photos/{thumbnail_id}/thumbnail");
                    for (url, is_list) in [(list, true), (thumbnail, false)] {
                        let sent = Instant::now();
                        let outcome = read_one(&uploads, &url, is_list).await;
                        let elapsed = sent.elapsed();
                        let mut times = times.lock().unwrap_or_else(|p| p.into_inner());
                        match outcome {
                            Ok(()) if is_list => times.list.push(elapsed),
                            Ok(()) => times.thumbnail.push(elapsed),
                            Err(e) => times.errors.push(format!("{e:#}")),
                        }
                        bar.inc(1);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let times = std::mem::take(&mut *times.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Reads {
        when,
        clients: args.read_clients,
        list: Latencies::of(times.list, seconds),
        thumbnail: Latencies::of(times.thumbnail, seconds),
        errors: times.errors,
        thumbnails_pending,
    })
}

/// One list page (must parse and hold photos) or one thumbnail (must not be empty).
async fn read_one(uploads: &Uploads, url: &str, is_list: bool) -> anyhow::Result<()> {
    let body = get_bytes(&uploads.client, url, &uploads.token).await?;
    if is_list {
        let page: PhotoPage =
            serde_json::from_slice(&body).with_context(|| format!("GET {url}"))?;
        if page.photos.is_empty() {
            bail!("GET {url}: an empty page");
        }
    } else if body.is_empty() {
        bail!("GET {url}: an empty thumbnail");
    }
    Ok(())
}

async fn job_progress(uploads: &Uploads, base: &str) -> anyhow::Result<Progress> {
    let body = get_bytes(&uploads.client, &format!("{base}/api/jobs"), &uploads.token).await?;
    serde_json::from_slice(&body).context("reading GET /api/jobs")
}

/// The job queue at the end.
#[derive(Debug, Clone, Serialize)]
struct Jobs {
    finished: bool,
    /// From the end of the uploads until the queue was empty (or the time limit).
    seconds: f64,
    progress: Progress,
}

async fn wait_for_jobs(uploads: &Uploads, base: &str, limit_s: u64) -> anyhow::Result<Jobs> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(limit_s);
    let bar = album_dataset::progress::bar(0, "jobs");
    bar.set_message("background jobs");
    loop {
        let progress = job_progress(uploads, base).await?;
        let total = &progress.total;
        bar.set_length((total.queued + total.running + total.done + total.failed) as u64);
        bar.set_position((total.done + total.failed) as u64);
        let finished = total.queued + total.running == 0;
        if finished || Instant::now() >= deadline {
            bar.finish_and_clear();
            return Ok(Jobs {
                finished,
                seconds: started.elapsed().as_secs_f64(),
                progress,
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct LoadReport {
    run: RunRecord,
    seed: u64,
    photos_dir: String,
    photos: usize,
    acknowledged: usize,
    distinct_ids: usize,
    upload_errors: Vec<String>,
    upload_seconds: f64,
    photos_per_s: f64,
    upload: Latencies,
    interrupted_by_kill: usize,
    committed_but_unacknowledged: usize,
    duplicates: usize,
    crash: Option<CrashReport>,
    verified: Verified,
    reads: Vec<Reads>,
    jobs: Jobs,
    store_after_stop: StoreCheck,
    instances: usize,
    database: String,
    blobs: String,
    repeated: RepeatedWork,
}

impl LoadReport {
    #[allow(clippy::too_many_arguments)]
    fn new(
        args: &LoadBenchArgs,
        photos: usize,
        outcome: UploadOutcome,
        upload_seconds: f64,
        crash: Option<CrashReport>,
        verified: Verified,
        reads: Vec<Reads>,
        jobs: Jobs,
        store_after_stop: StoreCheck,
        repeated: RepeatedWork,
    ) -> Self {
        let ids: std::collections::HashSet<i64> = outcome.ids.iter().flatten().copied().collect();
        let acknowledged = outcome.ids.iter().flatten().count();
        LoadReport {
            run: RunRecord::of_this_run(),
            seed: args.seed,
            photos_dir: args.photos.display().to_string(),
            photos,
            acknowledged,
            distinct_ids: ids.len(),
            upload_errors: outcome.errors,
            upload_seconds,
            photos_per_s: acknowledged as f64 / upload_seconds.max(1e-9),
            upload: Latencies::of(outcome.latencies, upload_seconds),
            interrupted_by_kill: outcome.interrupted,
            committed_but_unacknowledged: outcome.committed_unacknowledged,
            duplicates: outcome.duplicates,
            crash,
            verified,
            reads,
            jobs,
            store_after_stop,
            instances: args.instances,
            database: args
                .database
                .as_ref()
                .map_or("DIR/album.db".into(), ToString::to_string),
            blobs: args
                .blobs
                .as_ref()
                .map_or("DIR/blobs".into(), ToString::to_string),
            repeated,
        }
    }
}

impl LoadReport {
    fn print(&self, args: &LoadBenchArgs) {
        let server = format!(
            "{} worker(s), {}, {}",
            args.server.workers,
            if args.server.no_model {
                "no classifier"
            } else {
                "classifier"
            },
            if args.server.no_faces {
                "no faces"
            } else {
                "faces"
            }
        );
        let instances = match self.instances {
            1 => "album serve".to_owned(),
            n => format!("{n} album serve instances"),
        };
        println!(
            "album bench load: {} photos from {}, {} upload clients; {instances} with {server}; rows in {}, photos in {}",
            self.photos,
            args.photos.display(),
            args.clients,
            self.database,
            self.blobs
        );
        let upload = &self.upload;
        println!(
            "  uploads     {}/{} acknowledged, {} error(s), {:.1} s: {:.1} photos/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.acknowledged,
            self.photos,
            self.upload_errors.len(),
            self.upload_seconds,
            self.photos_per_s,
            upload.p50_ms,
            upload.p99_ms,
            upload.max_ms
        );
        if let Some(crash) = &self.crash {
            let dead = &crash.store_while_dead;
            println!(
                "  kill -9     after {} acknowledged uploads; the album while dead: {} photos, {} blobs, {} corrupt, {} missing, {} temp file(s), {} orphan(s); {} in {:.1} s",
                crash.acknowledged_before_kill,
                dead.photos,
                dead.blobs,
                dead.corrupt_blobs.len(),
                dead.missing_blobs.len(),
                dead.temp_files,
                dead.orphan_blobs,
                if crash.restarted {
                    "back"
                } else {
                    "the other instance(s) took its requests"
                },
                crash.restart_seconds
            );
            println!(
                "              {} request(s) cut by the kill and sent again; {} of them had been committed (answered as duplicates of the same photo)",
                self.interrupted_by_kill, self.committed_but_unacknowledged
            );
        }
        println!(
            "  downloads   {}/{} byte-identical ({} distinct photos)",
            self.verified.identical, self.acknowledged, self.distinct_ids
        );
        for reads in &self.reads {
            print_reads(reads);
        }
        let jobs = &self.jobs;
        let kinds: Vec<String> = jobs
            .progress
            .by_kind
            .iter()
            .map(|(kind, c)| format!("{kind} {}", c.done + c.failed))
            .collect();
        println!(
            "  jobs        {} {:.1} s after the uploads: {} done, {} failed, {} left ({})",
            if jobs.finished {
                "finished"
            } else {
                "NOT finished"
            },
            jobs.seconds,
            jobs.progress.total.done,
            jobs.progress.total.failed,
            jobs.progress.total.queued + jobs.progress.total.running,
            kinds.join(", ")
        );
        let store = &self.store_after_stop;
        println!(
            "  store       after a clean stop: {} photos, {} blobs, {} corrupt, {} missing, {} temp file(s), {} orphan(s)",
            store.photos,
            store.blobs,
            store.corrupt_blobs.len(),
            store.missing_blobs.len(),
            store.temp_files,
            store.orphan_blobs
        );
        println!(
            "  work        {} job(s) done after more than one claim (taken over from a dead instance or retried); {} face(s) stored twice",
            self.repeated.jobs_claimed_again, self.repeated.repeated_faces
        );
        for problem in self
            .upload_errors
            .iter()
            .chain(&self.verified.problems)
            .chain(self.reads.iter().flat_map(|r| &r.errors))
            .take(10)
        {
            println!("  problem: {problem}");
        }
    }

    /// Every claim the run makes, as a list of what failed.
    fn failures(&self, kill_requested: bool) -> Vec<String> {
        let mut failed = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                failed.push(what);
            }
        };
        check(
            self.upload_errors.is_empty(),
            format!("{} upload error(s)", self.upload_errors.len()),
        );
        check(
            self.acknowledged == self.photos,
            format!(
                "{} of {} photos acknowledged",
                self.acknowledged, self.photos
            ),
        );
        check(
            self.distinct_ids == self.acknowledged,
            format!(
                "{} distinct ids for {} photos",
                self.distinct_ids, self.acknowledged
            ),
        );
        check(
            self.verified.identical == self.acknowledged,
            format!(
                "{} of {} photos came back byte-identical",
                self.verified.identical, self.acknowledged
            ),
        );
        check(
            self.reads.iter().all(|r| r.errors.is_empty()),
            "errors in the list and thumbnail requests".into(),
        );
        check(
            self.jobs.finished,
            "the job queue did not finish in time".into(),
        );
        check(
            self.jobs.progress.total.failed == 0,
            format!("{} job(s) failed", self.jobs.progress.total.failed),
        );
        let store = &self.store_after_stop;
        check(
            store.is_sound() && store.temp_files == 0,
            "the data folder after the stop has damaged, missing or temp blobs".into(),
        );
        check(
            store.photos == self.distinct_ids,
            format!(
                "{} photo rows for {} photos",
                store.photos, self.distinct_ids
            ),
        );
        match &self.crash {
            Some(crash) => check(
                crash.store_while_dead.is_sound(),
                "the data folder after the kill has damaged or missing blobs".into(),
            ),
            None => check(!kill_requested, "--kill-after was not reached".into()),
        }
        check(
            self.repeated.repeated_faces == 0,
            format!(
                "{} face(s) stored twice: a job's work was done twice",
                self.repeated.repeated_faces
            ),
        );
        failed
    }

    fn verdict(&self, kill_requested: bool) -> anyhow::Result<()> {
        let failed = self.failures(kill_requested);
        if failed.is_empty() {
            println!("  verdict     every check passed");
            Ok(())
        } else {
            bail!("the load run failed: {}", failed.join("; "))
        }
    }
}

fn print_reads(reads: &Reads) {
    println!(
        "  reads       {} clients {}: list p50 {:.1} ms, p99 {:.1} ms ({} pages of 100, {:.0}/s); thumbnail p50 {:.1} ms, p99 {:.1} ms ({} requests, {:.0}/s); {} error(s); {} thumbnail job(s) queued at the start",
        reads.clients,
        reads.when,
        reads.list.p50_ms,
        reads.list.p99_ms,
        reads.list.requests,
        reads.list.per_s,
        reads.thumbnail.p50_ms,
        reads.thumbnail.p99_ms,
        reads.thumbnail.requests,
        reads.thumbnail.per_s,
        reads.errors.len(),
        reads.thumbnails_pending
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_address_is_read_from_its_first_line() {
        let line = "album serve: http://127.0.0.1:40123/ (data /tmp/a, model none); Ctrl-C stops";
        assert_eq!(address_in(line), "127.0.0.1:40123".parse().ok());
        assert_eq!(address_in("album serve: stopped"), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&times, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&times, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&times[..1], 99.0),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }
}
