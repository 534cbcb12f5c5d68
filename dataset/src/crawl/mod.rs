//! A polite, resumable crawler for class-labelled photos.
//!
//! [`crawl`] walks each class's pages from its seed URLs, follows its next-page links,
//! fetches every image link, checks the bytes ([`crate::image_check`]), drops exact and
//! near duplicates ([`crate::phash`]) and stores the rest by content. It obeys
//! robots.txt, limits concurrency and request rate per host, retries 5xx answers and
//! time-outs with exponential back-off, caps every body in bytes and follows redirects
//! itself with a loop guard (see [`fetch`]).
//!
//! # Config
//!
//! A TOML file; unknown keys are errors. Every setting but the class tables has a
//! default (shown).
//!
//! ```toml
//! [http]
//! user_agent = "smart-album-crawler/0.1"  # sent, and matched against robots.txt
//! per_host_concurrency = 2                # requests in flight per host
//! requests_per_second = 2.0               # request starts per second per host
//! retries = 3                             # extra attempts on 5xx, time-outs, resets
//! retry_backoff_ms = 500                  # first wait; doubled for each retry
//! request_timeout_secs = 30.0             # per request, body included
//! max_file_bytes = 20971520               # bigger bodies: "too-large-bytes"
//! max_redirects = 5                       # one more, or a revisit: "redirect-loop"
//!
//! [images]
//! min_side = 32                           # shorter side in px, else "too-small"
//! max_pixels = 40000000                   # from the header, before decoding
//! near_duplicate_distance = 6             # pHash Hamming distance, 0..=64
//!
//! [classes.animals]                       # one table per class; at least one
//! seeds = ["http://127.0.0.1:8765/class/animals/page/1"]   # required
//! image_selector = "figure.photo a"       # required; link = href, else src
//! next_selector = "a[rel=next]"           # optional; pages to follow (href)
//! allowed_hosts = ["127.0.0.1"]           # default: the seeds' hosts; "host" or "host:port"
//! max_pages = 100                         # pages visited, over all runs into --out
//! max_images = 5000                       # image links taken, over all runs into --out
//! ```
//!
//! # Output
//!
//! See [`store`] for the folder layout and [`report`] for the `duplicates` and
//! `rejects` tables; the manifest is [`crate::manifest`]'s. Image links are recorded
//! under the URL as linked (before redirects).
//!
//! # Resuming
//!
//! The store is checkpointed every `checkpoint_every` images and at the end (also on
//! Ctrl-C). A later run into the same folder skips every image URL already in the
//! manifest, duplicates or rejects, and takes the page links of pages whose images were
//! all recorded from the checkpoint instead of fetching those pages again; so a
//! finished crawl, run again, sends no request but robots.txt's. Every write is
//! atomic, so a killed crawl leaves a consistent folder to resume from.

mod commit;
pub mod config;
pub mod fetch;
mod images;
mod pages;
pub mod report;
pub mod robots;
pub mod store;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar};
use tokio::sync::{Semaphore, mpsc, watch};

pub use config::{ClassConfig, CrawlConfig, DEFAULT_USER_AGENT, HttpSettings, ImageSettings};
pub use fetch::{FetchFailure, Fetcher};
pub use report::{ClassSummary, CrawlSummary, DuplicateKind, DuplicateRecord, RejectRecord};
pub use store::{DUPLICATES_FILE, MANIFEST_FILE, REJECTS_FILE, STATE_FILE, SUMMARY_FILE};

use crate::{Error, Result};
use commit::{CommitCounts, Committed, Committer, Event};
use pages::{ClassWalk, walk_class};
use store::{FinishedPage, Store};

/// How a crawl run behaves, apart from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrawlOptions {
    /// Show progress bars on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Write the tables and checkpoint after this many images (and at the end).
    pub checkpoint_every: usize,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        CrawlOptions {
            progress: true,
            checkpoint_every: 500,
        }
    }
}

/// Image jobs in flight per host permit: enough to keep every host permit busy while
/// other jobs decode or wait for the committer.
const JOBS_PER_HOST_PERMIT: usize = 4;

/// Lower bound on image jobs in flight.
const MIN_JOBS_IN_FLIGHT: usize = 16;

/// Events buffered between the crawl and the committer.
const EVENT_BUFFER: usize = 1024;

/// State shared by the class walkers and the image jobs.
pub(crate) struct Shared {
    pub config: CrawlConfig,
    pub fetcher: Arc<Fetcher>,
    /// Pages finished in earlier runs, by URL.
    pub remembered: BTreeMap<String, FinishedPage>,
    seen_images: Mutex<HashSet<String>>,
    pub in_flight: Arc<Semaphore>,
    pub next_seq: AtomicU64,
    pub events: mpsc::Sender<Event>,
    stop: watch::Receiver<bool>,
    pub progress: Progress,
}

impl Shared {
    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the crawl is told to stop.
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        if stop.wait_for(|stopped| *stopped).await.is_err() {
            // The sender lives as long as the crawl; without it, no stop can come.
            std::future::pending::<()>().await;
        }
    }

    /// Image URLs taken by any class, this run or earlier.
    pub fn lock_seen_images(&self) -> MutexGuard<'_, HashSet<String>> {
        self.seen_images
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The bars a crawl shows.
pub(crate) struct Progress {
    /// Keeps the bars drawn together; dropping it would not hide them, but keep it.
    _multi: MultiProgress,
    pub pages: ProgressBar,
    pub images: ProgressBar,
}

impl Progress {
    fn new(show: bool) -> Self {
        let multi = MultiProgress::new();
        if !show {
            return Progress {
                _multi: multi,
                pages: ProgressBar::hidden(),
                images: ProgressBar::hidden(),
            };
        }
        let pages = multi.add(crate::progress::spinner("pages"));
        pages.set_message("pages");
        let images = multi.add(crate::progress::spinner("images"));
        images.set_message("images");
        Progress {
            _multi: multi,
            pages,
            images,
        }
    }

    fn finish(&self) {
        self.pages.finish_and_clear();
        self.images.finish_and_clear();
    }
}

/// Crawls as `config` says into `out`, until done or until `stop` resolves (then it
/// stops early, checkpoints and returns the summary marked interrupted).
///
/// Fails on problems with the output folder; network trouble is counted in the
/// summary instead (see [`CrawlSummary::ensure_something_fetched`]).
pub async fn crawl(
    config: &CrawlConfig,
    out: &Path,
    options: &CrawlOptions,
    stop: impl Future<Output = ()>,
) -> Result<CrawlSummary> {
    if options.checkpoint_every == 0 {
        return Err(Error::InvalidArgument(
            "checkpoint_every must be at least 1".into(),
        ));
    }
    let started = Instant::now();
    let store = open_store(out.to_path_buf()).await?;
    let already_taken = store.records_per_class();
    let remembered = store.finished_pages().clone();
    let seen_images = store.known_urls().clone();
    let fetcher = Arc::new(Fetcher::new(config.http.clone())?);
    let (stop_sender, stop_receiver) = watch::channel(false);
    let (events, event_receiver) = mpsc::channel(EVENT_BUFFER);
    let progress = Progress::new(options.progress);
    let committer = Committer {
        class_names: config.classes.iter().map(|c| c.name.clone()).collect(),
        near_duplicate_distance: config.images.near_duplicate_distance,
        checkpoint_every: options.checkpoint_every,
        progress: progress.images.clone(),
        stop: stop_sender.clone(),
        store,
    };
    let jobs = (config.http.per_host_concurrency * config.hosts().len() * JOBS_PER_HOST_PERMIT)
        .max(MIN_JOBS_IN_FLIGHT);
    let shared = Arc::new(Shared {
        config: config.clone(),
        fetcher: Arc::clone(&fetcher),
        remembered,
        seen_images: Mutex::new(seen_images),
        in_flight: Arc::new(Semaphore::new(jobs)),
        next_seq: AtomicU64::new(0),
        events,
        stop: stop_receiver,
        progress,
    });
    let committing = tokio::task::spawn_blocking(move || committer.run(event_receiver));

    let mut walkers = tokio::task::JoinSet::new();
    for (index, class) in config.classes.iter().enumerate() {
        let taken = already_taken.get(&class.name).copied().unwrap_or(0);
        let shared = Arc::clone(&shared);
        walkers.spawn(async move { (index, walk_class(shared, index, taken).await) });
    }
    let walking = collect_walks(walkers, config.classes.len());
    tokio::pin!(walking, stop);
    let (walks, interrupted) = tokio::select! {
        walks = &mut walking => (walks, false),
        () = &mut stop => {
            // Walkers and jobs see the flag and wind down; the committer keeps what came.
            let _ = stop_sender.send(true);
            (walking.await, true)
        }
    };
    shared.progress.finish();
    // The last job to finish drops the last sender, which ends the committer.
    drop(shared);
    let committed = committing
        .await
        .map_err(|e| Error::Data(format!("the crawl's committer stopped unexpectedly: {e}")))??;
    let walks = walks?;
    let summary = summarise(config, &walks, &committed, &fetcher, started, interrupted);
    committed.store.write_summary(&summary.to_table())?;
    Ok(summary)
}

/// Runs [`crawl`] on a runtime of its own, stopping cleanly on Ctrl-C.
pub fn crawl_until_ctrl_c(
    config: &CrawlConfig,
    out: &Path,
    options: &CrawlOptions,
) -> Result<CrawlSummary> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::io("start runtime for crawl into", out, e))?;
    runtime.block_on(crawl(config, out, options, async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No Ctrl-C handler could be installed: run to the end.
            std::future::pending::<()>().await;
        }
    }))
}

async fn open_store(out: PathBuf) -> Result<Store> {
    tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&out)?;
        // Leave all three tables behind from the start, even if the run is killed.
        store.checkpoint()?;
        Ok(store)
    })
    .await
    .map_err(|e| {
        Error::Data(format!(
            "opening the output folder stopped unexpectedly: {e}"
        ))
    })?
}

async fn collect_walks(
    mut walkers: tokio::task::JoinSet<(usize, ClassWalk)>,
    classes: usize,
) -> Result<Vec<ClassWalk>> {
    let mut walks = vec![ClassWalk::default(); classes];
    while let Some(joined) = walkers.join_next().await {
        let (index, walk) =
            joined.map_err(|e| Error::Data(format!("a class walker stopped unexpectedly: {e}")))?;
        walks[index] = walk;
    }
    Ok(walks)
}

fn summarise(
    config: &CrawlConfig,
    walks: &[ClassWalk],
    committed: &Committed,
    fetcher: &Fetcher,
    started: Instant,
    interrupted: bool,
) -> CrawlSummary {
    let classes = config
        .classes
        .iter()
        .zip(walks)
        .zip(&committed.counts)
        .map(|((class, walk), counts)| class_summary(&class.name, walk, counts))
        .collect();
    CrawlSummary {
        classes,
        requests: fetcher.counters().requests.load(Ordering::Relaxed),
        bytes: fetcher.counters().bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        stored_accepted: committed.store.manifest().len(),
        stored_duplicates: committed.store.duplicates().len(),
        stored_rejects: committed.store.rejects().len(),
        interrupted,
    }
}

fn class_summary(name: &str, walk: &ClassWalk, counts: &CommitCounts) -> ClassSummary {
    ClassSummary {
        name: name.to_owned(),
        pages_fetched: walk.pages_fetched,
        pages_remembered: walk.pages_remembered,
        pages_without_images: walk.pages_without_images,
        pages_disallowed: walk.pages_disallowed,
        pages_failed: walk.pages_failed.clone(),
        seeds_failed: walk.seeds_failed.clone(),
        accepted: counts.accepted,
        exact_duplicates: counts.exact_duplicates,
        near_duplicates: counts.near_duplicates,
        rejected: counts.rejected.clone(),
        already_known: walk.already_known,
        cap_reached: walk.cap_reached.clone(),
    }
}

#[cfg(test)]
mod tests;
