//! The background queue as the rest of the service sees it: the kinds of job, queueing
//! one, the signal that wakes the workers, and the progress its owners see (the workers
//! themselves are [`crate::jobs`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::sql::Connection;
use serde::{Deserialize, Serialize};

use crate::config::ServeConfig;
use crate::db::{Db, now};
use crate::error::Result;
use crate::repo::jobs::{self as repo, Progress};

/// One kind of background step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Thumbnail,
    Classify,
    Faces,
    Cluster,
    /// A video montage's render (no photo: the montage row names its job).
    Montage,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Thumbnail,
        JobKind::Classify,
        JobKind::Faces,
        JobKind::Cluster,
        JobKind::Montage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Thumbnail => "thumbnail",
            JobKind::Classify => "classify",
            JobKind::Faces => "faces",
            JobKind::Cluster => "cluster",
            JobKind::Montage => "montage",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The jobs a new photo gets: thumbnails always, the rest when their models are set.
    pub(crate) fn for_new_photo(config: &ServeConfig) -> Vec<JobKind> {
        let mut kinds = vec![JobKind::Thumbnail];
        if config.model_bundle.is_some() {
            kinds.push(JobKind::Classify);
        }
        if config.face_weights.is_some() {
            kinds.push(JobKind::Faces);
        }
        kinds
    }
}

/// Queues a job (in the caller's transaction).
pub fn enqueue(
    c: &Connection,
    user_id: i64,
    photo_id: Option<i64>,
    kind: JobKind,
    max_attempts: i64,
) -> Result<i64> {
    Ok(repo::insert(
        c,
        user_id,
        photo_id,
        kind.as_str(),
        max_attempts.max(1),
        now(),
    )?)
}

/// Wakes sleeping workers when work arrives, and tells them to stop.
#[derive(Debug)]
pub struct JobSignal {
    generation: Mutex<u64>,
    changed: Condvar,
    pub(crate) stop: AtomicBool,
    /// This instance's name on the leases its workers hold: unique per process, so
    /// instances sharing one queue never renew or finish each other's jobs.
    pub(crate) owner: String,
}

impl Default for JobSignal {
    fn default() -> Self {
        JobSignal {
            generation: Mutex::default(),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            owner: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
        }
    }
}

impl JobSignal {
    pub(crate) fn wake(&self) {
        if let Ok(mut generation) = self.generation.lock() {
            *generation += 1;
        }
        self.changed.notify_all();
    }

    /// Sleeps until woken or `timeout`.
    pub(crate) fn wait(&self, timeout: Duration) {
        if let Ok(generation) = self.generation.lock() {
            let seen = *generation;
            let _ = self
                .changed
                .wait_timeout_while(generation, timeout, |g| *g == seen);
        }
    }

    /// Sleeps `timeout`, or less when told to stop.
    pub(crate) fn sleep_unless_stopping(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.stopping() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            self.wait(left.min(Duration::from_millis(250)));
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The queue's progress service.
#[derive(Clone)]
pub struct Queue {
    pub(crate) db: Db,
}

impl Queue {
    /// The user's background work: counts per kind and state, the newest failures.
    pub async fn progress(&self, user_id: i64) -> Result<Progress> {
        self.db.run(move |c| Ok(repo::progress(c, user_id)?)).await
    }
}
