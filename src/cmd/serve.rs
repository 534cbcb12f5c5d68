//! `album serve`: the album service on a socket, with its background workers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use album_serving::blobs::BlobLocation;
use album_serving::db::DatabaseLocation;
use album_serving::{ServeConfig, server};
use anyhow::Context as _;

/// Run the album service: photos, albums, smart albums, people, places and GIFs over
/// HTTP, with a web page at /.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Folder for the database (album.db) and the photos (blobs/); created if missing.
    #[arg(long, value_name = "DIR", default_value = "data/album")]
    pub data_dir: PathBuf,
    /// Keep the rows in Postgres instead, shared by several instances:
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (the database must exist; its
    /// tables are made on start) [default: DIR/album.db].
    #[arg(long, value_name = "URL")]
    pub database: Option<DatabaseLocation>,
    /// Keep the photos elsewhere: a folder, or an S3-compatible bucket as
    /// s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME] (credentials from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) [default: DIR/blobs].
    #[arg(long, value_name = "WHERE")]
    pub blobs: Option<BlobLocation>,
    /// The classifier bundle (what `album report` exports) for the smart albums.
    #[arg(
        long,
        value_name = "BUNDLE",
        default_value = "experiments/default-model/bundle"
    )]
    pub model: PathBuf,
    /// Run without a classifier (photos stay uncategorised).
    #[arg(long, conflicts_with = "model")]
    pub no_model: bool,
    /// The face models' folder [default: $ALBUM_FACE_WEIGHTS or data/weights].
    #[arg(long = "face-models", alias = "faces", value_name = "DIR")]
    pub faces: Option<PathBuf>,
    /// Run without face detection (no people).
    #[arg(long, conflicts_with = "faces")]
    pub no_faces: bool,
    /// A photo with a face at least this share of its shorter side goes to "people",
    /// whatever the classifier says (1/16: a group or a portrait, not a passer-by); 0 leaves
    /// "people" to the classifier.
    #[arg(long, value_name = "SHARE", default_value_t = 1.0 / 16.0, value_parser = parse_share)]
    pub people_face_share: f64,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = super::parse_listen_addr)]
    pub addr: SocketAddr,
    /// Background worker threads (thumbnails, classification, faces, clustering).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Run only the background workers, no HTTP: the heavy models apart from the API
    /// instances, sharing their database and blobs (the queue hands out jobs under
    /// leases, so any number of instances can share it).
    #[arg(long)]
    pub workers_only: bool,
    /// Largest single photo accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 50)]
    pub max_file_mib: usize,
    /// Largest upload request, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 200)]
    pub max_request_mib: usize,
    /// Pixel cap (megapixels), checked from the header before decoding.
    #[arg(long, value_name = "MP", default_value_t = 100)]
    pub max_megapixels: u64,
    /// Days a photo stays in the trash before it is purged.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub trash_days: i64,
    /// The album is reached over HTTPS (directly or through a proxy): mark the session
    /// cookie Secure and send Strict-Transport-Security.
    #[arg(long)]
    pub secure_cookies: bool,
    /// Let anyone sign up. Without it the first user becomes the admin and adds the
    /// others (POST /api/users while signed in).
    #[arg(long)]
    pub open_sign_up: bool,
    /// Storage each user may fill with photos, the trash included, in GiB [default: no limit].
    #[arg(long, value_name = "GIB")]
    pub quota_gib: Option<f64>,
    /// Memory for decoded pixels and upload bodies, all requests and jobs together, in
    /// MiB; work that would go over it waits, then is answered 503.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = 1024,
        help_heading = "Containment"
    )]
    pub memory_budget_mib: u64,
    /// Seconds a request waits for memory or a GIF slot before it is answered 503 with
    /// Retry-After.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        help_heading = "Containment"
    )]
    pub busy_wait_s: u64,
    /// GIFs built at once.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        help_heading = "Containment"
    )]
    pub gif_builds: usize,
    /// Seconds a connection has to send a request's headers.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 20,
        help_heading = "Containment"
    )]
    pub header_timeout_s: u64,
    /// Seconds a request body may send nothing before it is cut off (408).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        help_heading = "Containment"
    )]
    pub body_timeout_s: u64,
    /// Seconds a whole request may take before it is cut off (408).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 900,
        help_heading = "Containment"
    )]
    pub request_timeout_s: u64,
}

const SERVE_HELP: &str = "\
The API is described in serving/openapi.json. Sign up with POST /api/users (the first user
becomes the admin, who adds the others; --open-sign-up lets anyone), sign in with
POST /api/sessions (the token works as a cookie or as `Authorization: Bearer`), upload
with a multipart POST /api/photos.

Uploads are checked before anything is stored: type from the magic bytes, the pixel cap
from the header, a full decode; in a batch each bad file is reported and the good ones are
stored. A photo is acknowledged after its blob is fsynced and its row committed.
Thumbnails, classification and faces run in the background from a queue kept in the
database; after a crash the queue resumes where it stopped (GET /api/jobs shows progress).
The rows live in DIR/album.db (SQLite) unless --database names a Postgres database, and
the photos in DIR/blobs unless --blobs names another folder or an S3 bucket. Instances
sharing one Postgres database and one bucket share the queue: jobs are leased to the
instance that claims them, and a killed instance's jobs are taken over when their leases
run out.
--workers-only runs the workers without HTTP beside API instances started with --workers 0.

Exit codes: 0 after Ctrl-C or SIGTERM (requests in flight finish first), 2 for a bad data folder, model bundle or face models, 1 when
the server fails.

Examples:
  album serve
  album serve --data-dir /tmp/album --addr 127.0.0.1:0 --no-faces
  album serve --addr localhost:8080 --workers 1
  album serve --data-dir /tmp/album --workers-only --no-faces
  album serve --data-dir /tmp/album --database postgres://album@localhost:5432/album --no-faces";

/// A share of a side: a number in 0..=1.
fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!(
            "expected a share of the photo's side, 0 to 1 (0.0625 is 1/16), got {text:?}"
        )),
    }
}

fn config_of(args: &ServeArgs) -> ServeConfig {
    let face_weights = (!args.no_faces).then(|| {
        args.faces
            .clone()
            .unwrap_or_else(album_faces::weights::default_dir)
    });
    ServeConfig {
        model_bundle: (!args.no_model).then(|| args.model.clone()),
        face_weights,
        people_face_share: args.people_face_share,
        max_file_bytes: args.max_file_mib << 20,
        max_request_bytes: args.max_request_mib << 20,
        max_pixels: args.max_megapixels * 1_000_000,
        trash_days: args.trash_days,
        workers: args.workers,
        secure_cookies: args.secure_cookies,
        open_sign_up: args.open_sign_up,
        quota_bytes: args
            .quota_gib
            .map(|gib| (gib.max(0.0) * f64::from(1u32 << 30)) as u64),
        memory_budget_bytes: args.memory_budget_mib << 20,
        busy_wait: Duration::from_secs(args.busy_wait_s),
        gif_builds: args.gif_builds.max(1),
        header_read_timeout: Duration::from_secs(args.header_timeout_s.max(1)),
        body_idle_timeout: Duration::from_secs(args.body_timeout_s.max(1)),
        request_timeout: Duration::from_secs(args.request_timeout_s.max(1)),
        blobs: args.blobs.clone(),
        database: args.database.clone(),
        ..ServeConfig::new(&args.data_dir)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    bound_malloc_arenas();
    let config = config_of(&args);
    check_models_exist(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Every database query and decode runs on a blocking thread; past this many
        // the rest queue (tokio's default, 512, reserves a GiB of stacks under load).
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?;
    if args.workers_only {
        return runtime.block_on(work_only(config));
    }
    runtime.block_on(serve(config, args.addr))
}

async fn work_only(config: ServeConfig) -> anyhow::Result<()> {
    if config.workers == 0 {
        anyhow::bail!("--workers-only with --workers 0 would do nothing");
    }
    let stop = stop_signal()?;
    println!(
        "album serve: workers only ({} worker(s), database {}, blobs {}); Ctrl-C or SIGTERM stops",
        config.workers,
        config.database_location(),
        config.blob_location()
    );
    server::work_only(config, stop).await?;
    println!("album serve: stopped");
    Ok(())
}

/// Looks for the model bundle and the face models before anything is created: the
/// defaults are relative to the repository root, and started elsewhere the service would
/// otherwise fail after making its data folder, without saying which flag helps.
fn check_models_exist(config: &ServeConfig) -> Result<(), album_serving::Error> {
    let missing = |what: String, flags: &str| {
        album_serving::Error::Setup(format!(
            "{what} (default paths are relative to the repository root): {flags}"
        ))
    };
    if let Some(bundle) = &config.model_bundle
        && !bundle.join("bundle.json").is_file()
    {
        return Err(missing(
            format!("no model bundle at {}", bundle.display()),
            "pass --model DIR, or --no-model to run without categories",
        ));
    }
    if let Some(dir) = &config.face_weights {
        let files = [
            album_faces::weights::RETINAFACE,
            album_faces::weights::DLIB_RESNET,
        ];
        if let Some(file) = files.iter().find(|f| !f.path_in(dir).is_file()) {
            return Err(missing(
                format!("no face model {} in {}", file.file_name, dir.display()),
                "run scripts/fetch-face-weights.sh, pass --face-models DIR, or --no-faces to \
                 run without people",
            ));
        }
    }
    Ok(())
}

/// Blocking threads at most: database queries, decodes, password checks.
const BLOCKING_THREADS: usize = 64;

/// glibc gives each thread that allocates under contention an arena of its own, up to
/// 8 per core, each reserving 64 MiB of address space: under a limit on address space
/// (`ulimit -v`, a container's) that reserve, not the photos, is what runs out. The
/// service's big buffers are counted by its memory budget instead; two arenas serve
/// its small allocations as well. `MALLOC_ARENA_MAX` in the environment overrides this.
fn bound_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return; // the operator chose
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other
    // thread of this program exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Logs to stderr, one line per request (its id, method, path, user, status and
/// latency) and per failed sign-in or job; `RUST_LOG` overrides the level (`info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (tests running the binary's code twice) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colours only for a person at a terminal, not in a log file
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn serve(config: ServeConfig, addr: SocketAddr) -> anyhow::Result<()> {
    let summary = format!(
        "database {}, blobs {}, model {}, faces {}, {} worker(s)",
        config.database_location(),
        config.blob_location(),
        config
            .model_bundle
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        config
            .face_weights
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        config.workers
    );
    // watched from now on, so a signal during start-up stops cleanly too
    let stop = stop_signal()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let server = server::Server::start(config, listener).await?;
    println!("album serve: http://{local}/ ({summary}); Ctrl-C or SIGTERM stops");
    server.run(stop).await?;
    println!("album serve: stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what `kill`, systemd and container runtimes send): requests in
/// flight finish, new connections are refused, then the workers stop between jobs. The
/// handlers are installed before this returns; the future completes on the first signal.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("watching for SIGTERM")?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("watching for SIGINT")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        println!("album serve: stopping");
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// `album serve` with no flags runs with the library's defaults: the flags' own
    /// defaults cannot drift from `ServeConfig::new`.
    #[test]
    fn the_flags_defaults_are_the_configs() {
        let args = Command::parse_from(["album"]).serve;
        let flags = config_of(&args);
        let library = ServeConfig {
            model_bundle: flags.model_bundle.clone(),
            face_weights: flags.face_weights.clone(),
            ..ServeConfig::new(&args.data_dir)
        };
        assert_eq!(format!("{flags:?}"), format!("{library:?}"));
    }

    #[test]
    fn containment_flags_reach_the_config() {
        let args = Command::parse_from([
            "album",
            "--memory-budget-mib",
            "256",
            "--busy-wait-s",
            "3",
            "--gif-builds",
            "4",
            "--request-timeout-s",
            "60",
        ])
        .serve;
        let config = config_of(&args);
        assert_eq!(config.memory_budget_bytes, 256 << 20);
        assert_eq!(config.busy_wait, Duration::from_secs(3));
        assert_eq!(config.gif_builds, 4);
        assert_eq!(config.request_timeout, Duration::from_secs(60));
    }

    #[test]
    fn serve_outside_the_repository_names_the_flags_and_creates_nothing() {
        let here = tempfile::tempdir().unwrap();
        let data = here.path().join("album-data");
        let weights = here.path().join("weights");
        let data_flag = data.to_str().unwrap();
        let args = Command::parse_from(["album", "--data-dir", data_flag, "--model", "nowhere"]);
        let err = check_models_exist(&config_of(&args.serve))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--model DIR, or --no-model"), "{err}");

        let weights_flag = weights.to_str().unwrap();
        let args = [
            "album",
            "--data-dir",
            data_flag,
            "--no-model",
            "--face-models",
            weights_flag,
        ];
        let err = check_models_exist(&config_of(&Command::parse_from(args).serve))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--face-models DIR, or --no-faces"), "{err}");
        assert!(!data.exists());

        let args = ["album", "--data-dir", data_flag, "--no-model", "--no-faces"];
        check_models_exist(&config_of(&Command::parse_from(args).serve)).unwrap();
    }

    #[test]
    fn old_flag_names_still_work() {
        let args = Command::parse_from(["album", "--faces", "/w", "--addr", "localhost:0"]).serve;
        assert_eq!(args.faces, Some(PathBuf::from("/w")));
        assert!(args.addr.ip().is_loopback());
    }
}
