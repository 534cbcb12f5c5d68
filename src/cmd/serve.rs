//! `album serve`: the album service on a socket, with its background workers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use album_serving::jobs::Workers;
use album_serving::{AppState, ServeConfig, app, auth, photos};
use anyhow::Context as _;

/// Run the album service: photos, albums, smart albums, people, places and GIFs over
/// HTTP, with a web page at /.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Folder for the database (album.db) and the photos (blobs/); created if missing.
    #[arg(long, value_name = "DIR", default_value = "data/album")]
    pub data_dir: PathBuf,
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
    #[arg(long, value_name = "DIR")]
    pub faces: Option<PathBuf>,
    /// Run without face detection (no people).
    #[arg(long, conflicts_with = "faces")]
    pub no_faces: bool,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Background worker threads (thumbnails, classification, faces, clustering).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
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

Exit codes: 0 after Ctrl-C or SIGTERM (requests in flight finish first), 2 for a bad data folder, model bundle or face models, 1 when
the server fails.

Examples:
  album serve
  album serve --data-dir /tmp/album --addr 127.0.0.1:0 --no-faces
  album serve --model experiments/study-cpu/families/bundle --workers 1";

fn config_of(args: &ServeArgs) -> ServeConfig {
    let face_weights = (!args.no_faces).then(|| {
        args.faces
            .clone()
            .unwrap_or_else(album_faces::weights::default_dir)
    });
    ServeConfig {
        model_bundle: (!args.no_model).then(|| args.model.clone()),
        face_weights,
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
        ..ServeConfig::new(&args.data_dir)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = config_of(&args);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(config, args.addr))
}

async fn serve(config: ServeConfig, addr: SocketAddr) -> anyhow::Result<()> {
    let summary = format!(
        "data {}, model {}, faces {}, {} worker(s)",
        config.data_dir.display(),
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
    let state = AppState::open(config)?;
    let workers = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || Workers::start(&state)).await??
    };
    let purge_state = state.clone();
    tokio::spawn(async move {
        loop {
            let state = purge_state.clone();
            let purged = tokio::task::spawn_blocking(move || {
                let photos = photos::purge_expired(&state);
                let sessions = auth::purge_expired_sessions(&state);
                (photos, sessions)
            })
            .await;
            match purged {
                Ok((photos, sessions)) => {
                    match photos {
                        Ok(0) => {}
                        Ok(n) => eprintln!("album serve: purged {n} photo(s) from the trash"),
                        Err(e) => eprintln!("album serve: automatic purge: {e}"),
                    }
                    if let Err(e) = sessions {
                        eprintln!("album serve: removing expired sessions: {e}");
                    }
                }
                Err(e) => eprintln!("album serve: automatic purge: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    println!("album serve: http://{local}/ ({summary}); Ctrl-C or SIGTERM stops");
    // with each connection's address: sign-in failures are counted per address too
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop_signal())
    .await
    .context("serving")?;
    tokio::task::spawn_blocking(move || workers.stop()).await?;
    println!("album serve: stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what `kill`, systemd and container runtimes send): requests in
/// flight finish, new connections are refused, then the workers stop between jobs.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                eprintln!("album serve: cannot watch for SIGTERM ({e}); Ctrl-C still stops");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    println!("album serve: stopping");
}
