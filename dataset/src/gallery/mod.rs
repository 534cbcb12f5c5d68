//! A small website over a folder of class sub-folders, for the crawler to crawl.
//!
//! The web cannot be reached from where smart-album is built and tested, so this site
//! is the crawler's real target: it serves the five-class photo set on loopback with
//! the layout described in [`site`], a robots.txt the crawler must obey, and the faults
//! in [`faults`] that a crawl must catch. Every request is kept in an access log (and
//! appended to a file on request) so the [`audit`] can prove what the crawler did.
//!
//! ```no_run
//! # async fn demo() -> album_dataset::Result<()> {
//! use album_dataset::gallery::{GalleryOptions, spawn};
//! let mut options = GalleryOptions::new("/data/five-class".into());
//! options.max_per_class = Some(5);
//! let gallery = spawn(options, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("crawl {}", gallery.base_url());
//! gallery.shutdown().await;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod faults;
pub mod listing;
mod site;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::response::Response;

pub use faults::{FaultKind, PlantedFault, planted_faults, planted_faults_in};
pub use listing::PhotoFolder;
pub use site::{EMPTY_PAGE_PATH, ROBOTS_TXT, app};

use crate::{Error, Result};

/// Photos per class page unless told otherwise.
pub const DEFAULT_PER_PAGE: usize = 60;

/// How long [`RunningGallery::shutdown`] waits for open responses before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to serve a gallery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalleryOptions {
    /// Folder of class sub-folders.
    pub root: PathBuf,
    /// Photos per class page (at least 1).
    pub per_page: usize,
    /// Plant the faults of [`faults`] on the first class's page 1.
    pub plant_faults: bool,
    /// Serve only the first N photos (by name) of each class.
    pub max_per_class: Option<usize>,
    /// Append every request to this file as well as keeping it in memory.
    pub access_log: Option<PathBuf>,
}

impl GalleryOptions {
    /// Defaults: 60 photos a page, faults planted, every photo, no log file.
    pub fn new(root: PathBuf) -> Self {
        GalleryOptions {
            root,
            per_page: DEFAULT_PER_PAGE,
            plant_faults: true,
            max_per_class: None,
            access_log: None,
        }
    }
}

/// One request the gallery answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub method: String,
    /// The request's path, as sent (percent-encoded), without the query.
    pub path: String,
    pub status: u16,
    /// The body size the response announced (a client may stop reading earlier).
    pub bytes: u64,
}

impl AccessLogEntry {
    /// Whether the request went to the part of the site robots.txt forbids.
    pub fn is_private(&self) -> bool {
        self.path == "/private" || self.path.starts_with("/private/")
    }

    /// Parses a log file line `<RFC 3339 time> <METHOD> <path> <status> <bytes>`.
    pub fn parse_line(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        let _time = fields.next()?;
        let entry = AccessLogEntry {
            method: fields.next()?.to_owned(),
            path: fields.next()?.to_owned(),
            status: fields.next()?.parse().ok()?,
            bytes: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(entry)
    }
}

/// The state the site's handlers share: the listing, fault bytes and the access log.
/// Cheap to clone.
#[derive(Clone)]
pub struct Gallery {
    inner: Arc<GalleryInner>,
}

struct GalleryInner {
    folder: PhotoFolder,
    per_page: usize,
    faults: Option<faults::FaultAssets>,
    log: Mutex<Vec<AccessLogEntry>>,
    log_file: Option<(PathBuf, Mutex<File>)>,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("root", &self.inner.folder.root)
            .field("classes", &self.inner.folder.classes.len())
            .field("per_page", &self.inner.per_page)
            .field("faults", &self.inner.faults.is_some())
            .finish()
    }
}

impl Gallery {
    /// Lists the folder, reads the fault photos and opens the log file.
    pub fn open(options: &GalleryOptions) -> Result<Self> {
        if options.per_page == 0 {
            return Err(Error::InvalidArgument("per_page must be at least 1".into()));
        }
        if options.max_per_class == Some(0) {
            return Err(Error::InvalidArgument(
                "max_per_class must be at least 1".into(),
            ));
        }
        let folder = PhotoFolder::scan(&options.root, options.max_per_class)?;
        let faults = options
            .plant_faults
            .then(|| faults::FaultAssets::prepare(&folder))
            .transpose()?;
        let log_file = match &options.access_log {
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::io("open access log", path, e))?;
                Some((path.clone(), Mutex::new(file)))
            }
            None => None,
        };
        Ok(Gallery {
            inner: Arc::new(GalleryInner {
                folder,
                per_page: options.per_page,
                faults,
                log: Mutex::new(Vec::new()),
                log_file,
            }),
        })
    }

    /// The folder listing being served.
    pub fn folder(&self) -> &PhotoFolder {
        &self.inner.folder
    }

    pub fn per_page(&self) -> usize {
        self.inner.per_page
    }

    /// The faults this gallery plants (none with faults off).
    pub fn planted_faults(&self) -> Vec<PlantedFault> {
        self.inner
            .faults
            .as_ref()
            .map(|f| planted_faults_in(&f.class))
            .unwrap_or_default()
    }

    /// The real photo `(class, file)` whose bytes the planted duplicate serves.
    pub fn duplicated_photo(&self) -> Option<(String, String)> {
        self.inner
            .faults
            .as_ref()
            .map(|f| (f.class.clone(), f.duplicated_file.clone()))
    }

    /// Every request answered so far, oldest first.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        lock(&self.inner.log).clone()
    }

    fn is_fault_class(&self, class: &str) -> bool {
        self.inner.faults.as_ref().is_some_and(|f| f.class == class)
    }

    fn fault_response(&self, class: &str, file: &str) -> Option<Response> {
        self.inner
            .faults
            .as_ref()
            .filter(|f| f.class == class)?
            .respond(file)
    }

    fn record_access(&self, method: String, path: String, status: u16, bytes: u64) {
        let entry = AccessLogEntry {
            method,
            path,
            status,
            bytes,
        };
        if let Some((path, file)) = &self.inner.log_file {
            let line = format!(
                "{} {} {} {} {}\n",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                entry.method,
                entry.path,
                entry.status,
                entry.bytes
            );
            // A full disk must not take the site down; say so once per failed line.
            if let Err(error) = lock(file).write_all(line.as_bytes()) {
                eprintln!(
                    "gallery: cannot append to access log {}: {error}",
                    path.display()
                );
            }
        }
        lock(&self.inner.log).push(entry);
    }
}

/// A lock that survives a panicked holder: the log is plain data, still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A gallery serving in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningGallery {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: SocketAddr,
    gallery: Gallery,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningGallery {
    /// `http://<addr>` without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request answered so far, oldest first.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        self.gallery.access_log()
    }

    /// The shared state, for the listing and the planted faults.
    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// Stops accepting, lets open responses finish for a few seconds, then cuts them
    /// (a client stalled on the 1 GiB photo must not hold shutdown forever).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningGallery {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Opens the gallery, binds `addr` (port 0 picks a free one) and serves in a
/// background task; returns as soon as it is listening.
pub async fn spawn(options: GalleryOptions, addr: SocketAddr) -> Result<RunningGallery> {
    let gallery = Gallery::open(&options)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io("listen on", addr.to_string(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("read the address of", addr.to_string(), e))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(gallery.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningGallery {
        addr,
        gallery,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Serves until Ctrl-C on a runtime of its own; `on_ready` is called once listening.
pub fn serve_until_ctrl_c(
    options: GalleryOptions,
    addr: SocketAddr,
    on_ready: impl FnOnce(&RunningGallery),
) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::io("start runtime for", &options.root, e))?;
    runtime.block_on(async move {
        let running = spawn(options, addr).await?;
        on_ready(&running);
        let interrupted = tokio::signal::ctrl_c().await;
        running.shutdown().await;
        interrupted.map_err(|e| {
            Error::io(
                "wait for Ctrl-C while serving",
                PathBuf::from(addr.to_string()),
                e,
            )
        })
    })
}

#[cfg(test)]
mod tests;
