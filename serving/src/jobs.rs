//! The background work after an upload, as a queue persisted in SQLite: each photo gets a
//! `thumbnail`, a `classify` and a `faces` job (the last two when their models are
//! configured), and a found face queues a `cluster` job.
//!
//! Worker threads claim the oldest due job in one UPDATE (so two workers never take the
//! same row) with a lease in their instance's name, run it, and mark it `done`; a
//! failure goes back to `queued` with a back-off (2, 4, 8 … seconds) until
//! `max_attempts`, then stays `failed` with its error. Several instances (`album serve`
//! and `album serve --workers-only` on one database) share the queue: each renews its
//! leases while it lives, a killed instance's jobs are claimed again once their leases
//! run out, and an outcome is written only under a lease still held, so no job is
//! recorded done twice. Every job is written to be safe to run twice. `GET /api/jobs` shows the progress.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sql::Connection;
use album_faces::pipeline::FacePipeline;
use album_training::inference::TrainedModel;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::db::now;
use crate::error::{Error, Result};
use crate::ingest::Patience;
use crate::repo::jobs as repo;

pub use crate::repo::jobs::{Counts, Job, Progress};
pub(crate) use crate::service::jobs::JobSignal;
pub use crate::service::jobs::{JobKind, enqueue};

/// Puts jobs a crash left `running` back in the queue (those without a lease, or whose
/// lease ran out); returns how many.
pub fn recover(c: &Connection) -> Result<usize> {
    Ok(repo::recover(c, now())?)
}

/// Takes the oldest due job, or one whose lease ran out because its instance died,
/// leased to this instance for [`ServeConfig::job_lease`].
pub fn claim(state: &AppState, c: &Connection) -> Result<Option<Job>> {
    let time = now();
    let until = time + lease_seconds(&state.config);
    Ok(repo::claim(c, time, &state.jobs.owner, until)?)
}

fn lease_seconds(config: &ServeConfig) -> i64 {
    config.job_lease.as_secs().max(1) as i64
}

/// Records a job's outcome: done, back in the queue after a back-off (2, 4, 8 …
/// seconds), or failed for good after its last attempt. Nothing is written when the
/// job's lease ran out and another instance took it over: that instance records it.
pub fn finish(c: &Connection, job: &Job, outcome: &Result<()>) -> Result<()> {
    let time = now();
    let held = match outcome {
        Ok(()) => repo::mark_done(c, job, time)?,
        Err(error) => {
            // what `GET /api/jobs` shows its owner; the cause itself is logged by the worker
            let message = error.public_message();
            if job.attempts >= job.max_attempts {
                repo::mark_failed(c, job, &message, time)?
            } else {
                let backoff = 1i64 << job.attempts.clamp(1, 10);
                repo::requeue(c, job, &message, time + backoff, time)?
            }
        }
    };
    if !held {
        tracing::warn!(
            job = job.id,
            kind = %job.kind,
            "the job's lease ran out and another instance took it over; its outcome here is dropped"
        );
    }
    Ok(())
}

/// The models a worker runs, loaded in its own thread.
pub struct Models {
    pub classifier: Option<TrainedModel>,
    pub faces: Option<FacePipeline>,
}

impl Models {
    /// Loads what the config names on the flex (CPU) device.
    pub fn load(config: &ServeConfig) -> Result<Self> {
        let device = burn::tensor::Device::flex();
        let classifier = match &config.model_bundle {
            Some(bundle) => Some(
                TrainedModel::load_bundle(bundle, device.clone())
                    .map_err(|e| Error::Setup(format!("the model bundle: {e}")))?,
            ),
            None => None,
        };
        let faces = match &config.face_weights {
            Some(dir) => Some(
                FacePipeline::load(dir, &device)
                    .map_err(|e| Error::Setup(format!("the face models: {e}")))?,
            ),
            None => None,
        };
        Ok(Models { classifier, faces })
    }
}

/// The running worker threads; [`Workers::stop`] ends them after their current job.
pub struct Workers {
    signal: Arc<JobSignal>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Re-queues crashed jobs, then starts `config.workers` threads, each loading its own
    /// models first (a model that fails to load is reported here, before serving).
    pub fn start(state: &AppState) -> Result<Self> {
        recover(&*state.db.connection()?)?;
        let mut threads = Vec::new();
        for index in 0..state.config.workers {
            let (ready, loaded) = std::sync::mpsc::channel();
            let worker_state = state.clone();
            let thread = std::thread::Builder::new()
                .name(format!("album-worker-{index}"))
                .spawn(move || match Models::load(&worker_state.config) {
                    Ok(mut models) => {
                        let _ = ready.send(Ok(()));
                        work(&worker_state, &mut models);
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                })
                .map_err(|e| Error::Setup(format!("cannot start a worker: {e}")))?;
            loaded
                .recv()
                .map_err(|_| Error::Setup("a worker stopped while loading its models".into()))??;
            threads.push(thread);
        }
        threads.push(lease_keeper(state)?);
        Ok(Workers {
            signal: Arc::clone(&state.jobs),
            threads,
        })
    }

    pub fn stop(self) {
        self.signal.stop.store(true, Ordering::SeqCst);
        self.signal.wake();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// A thread that renews this instance's leases every quarter lease while the workers
/// run, so a job longer than a lease (a montage) is not taken over while alive.
fn lease_keeper(state: &AppState) -> Result<JoinHandle<()>> {
    let state = state.clone();
    std::thread::Builder::new()
        .name("album-leases".into())
        .spawn(move || {
            let lease = lease_seconds(&state.config);
            let every = Duration::from_millis((lease as u64 * 1000 / 4).max(250));
            while !state.jobs.stopping() {
                let renewed = state
                    .db
                    .connection()
                    .and_then(|c| Ok(repo::renew_leases(&c, &state.jobs.owner, now() + lease)?));
                if let Err(error) = renewed {
                    tracing::error!(%error, "renewing the job leases");
                }
                state.jobs.sleep_unless_stopping(every);
            }
        })
        .map_err(|e| Error::Setup(format!("cannot start the lease keeper: {e}")))
}

fn work(state: &AppState, models: &mut Models) {
    while !state.jobs.stopping() {
        match run_next(state, models) {
            Ok(true) => {}
            Ok(false) => state.jobs.wait(Duration::from_millis(500)),
            Err(error) => {
                tracing::error!(%error, "the job queue");
                state.jobs.wait(Duration::from_secs(1));
            }
        }
    }
}

/// Claims and runs one job; `false` when none was due.
pub(crate) fn run_next(state: &AppState, models: &mut Models) -> Result<bool> {
    let Some(job) = claim(state, &*state.db.connection()?)? else {
        return Ok(false);
    };
    let outcome = run_job(state, models, &job);
    if let Err(error) = &outcome {
        tracing::warn!(
            job = job.id,
            kind = %job.kind,
            attempt = job.attempts,
            of = job.max_attempts,
            %error,
            "job failed"
        );
    }
    finish(&*state.db.connection()?, &job, &outcome)?;
    if outcome.is_ok() && job.kind == JobKind::Faces.as_str() {
        state.jobs.wake(); // its cluster job is due now
    }
    Ok(true)
}

/// Runs every due job until the queue has none (tests, benches, `album serve` never).
pub fn drain(state: &AppState, models: &mut Models) -> Result<usize> {
    let mut ran = 0;
    while run_next(state, models)? {
        ran += 1;
    }
    Ok(ran)
}

fn run_job(state: &AppState, models: &mut Models, job: &Job) -> Result<()> {
    let kind = JobKind::parse(&job.kind)
        .ok_or_else(|| Error::internal("job queue", format!("unknown job kind {:?}", job.kind)))?;
    if kind == JobKind::Cluster {
        return state.people.cluster_new_faces(job.user_id);
    }
    if kind == JobKind::Montage {
        return state.montages.render(job.id);
    }
    let photo_id = job
        .photo_id
        .ok_or_else(|| Error::internal("job queue", "a photo job without a photo"))?;
    // A photo purged since the job was queued leaves nothing to do.
    let gone = |outcome: Result<()>| match outcome {
        Err(Error::NotFound(_)) => Ok(()),
        other => other,
    };
    match kind {
        JobKind::Thumbnail => gone(state.photos.renditions(photo_id, Patience::Job).map(|_| ())),
        JobKind::Classify => {
            let classifier = models
                .classifier
                .as_ref()
                .ok_or_else(|| Error::internal("classify", "no model bundle is loaded"))?;
            match state.photos.upright_image(photo_id, Patience::Job)? {
                Some(image) => classify_photo(state, classifier, photo_id, &image),
                None => Ok(()),
            }
        }
        JobKind::Faces => {
            let pipeline = models
                .faces
                .as_mut()
                .ok_or_else(|| Error::internal("faces", "no face models are loaded"))?;
            match state.photos.upright_image(photo_id, Patience::Job)? {
                Some(image) => {
                    state
                        .people
                        .store_faces(pipeline, job.user_id, photo_id, &image.to_rgb8())
                }
                None => Ok(()),
            }
        }
        JobKind::Cluster | JobKind::Montage => Ok(()),
    }
}

/// The photo's category and confidence from the classifier. A user's correction is
/// kept: the model's answer is stored beside it, never over it.
pub fn classify_photo(
    state: &AppState,
    classifier: &TrainedModel,
    photo_id: i64,
    image: &image::DynamicImage,
) -> Result<()> {
    let rgb = image.to_rgb8();
    let photo = album_dataset::data::RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        pixels: rgb.into_raw(),
    };
    let probabilities = classifier
        .classify(std::slice::from_ref(&photo))
        .map_err(|e| Error::internal("classify", e))?;
    let row = probabilities
        .first()
        .ok_or_else(|| Error::internal("classify", "no output for the photo"))?;
    let (best, confidence) = row
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or_else(|| Error::internal("classify", "the model has no classes"))?;
    let category = classifier
        .class_names()
        .get(best)
        .cloned()
        .ok_or_else(|| Error::internal("classify", "class index out of range"))?;
    let probabilities: serde_json::Map<String, serde_json::Value> = classifier
        .class_names()
        .iter()
        .zip(row)
        .map(|(name, p)| (name.clone(), serde_json::Value::from(f64::from(*p))))
        .collect();
    let probabilities_json = serde_json::Value::Object(probabilities).to_string();
    let answer = crate::repo::smart::ModelAnswer {
        category: &category,
        confidence: f64::from(confidence),
        probabilities_json: &probabilities_json,
    };
    let c = state.db.connection()?;
    crate::repo::smart::set_model_category(
        &c,
        photo_id,
        &answer,
        state.photos.people_by_faces.as_deref(),
    )?;
    Ok(())
}
