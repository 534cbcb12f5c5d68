//! How the service runs: where its data lives, its limits and its background work.

use std::path::PathBuf;
use std::time::Duration;

use crate::blobs::BlobLocation;
use crate::db::DatabaseLocation;
use crate::throttle::SignInPolicy;

/// Settings for one album service. [`ServeConfig::new`] gives the defaults `album serve`
/// starts with; each field is a flag there.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Holds `album.db` (SQLite) and `blobs/` (originals, thumbnails, previews), unless
    /// [`ServeConfig::database`] and [`ServeConfig::blobs`] say otherwise.
    pub data_dir: PathBuf,
    /// Where the rows live instead of `<data_dir>/album.db` (a Postgres database that
    /// several instances share).
    pub database: Option<DatabaseLocation>,
    /// Where the blobs live instead of `<data_dir>/blobs` (an S3 bucket, another disk).
    pub blobs: Option<BlobLocation>,
    /// The classifier bundle (what `album report` exports); `None` leaves photos
    /// unclassified (tests that do not need the model).
    pub model_bundle: Option<PathBuf>,
    /// The face models' folder (`scripts/fetch-face-weights.sh`); `None` skips faces.
    pub face_weights: Option<PathBuf>,
    /// A photo with a detected face whose shorter side is at least this share of the
    /// photo's shorter side goes to the bundle's "people" smart album, whatever the
    /// classifier says (see `repo::smart::PeopleByFaces`); 0 leaves it to the classifier.
    /// The default, 1/16, counts a person whose full height is at least about half the
    /// photo's (a face is about an eighth of a standing person): a group or a portrait,
    /// not a passer-by.
    pub people_face_share: f64,
    /// The lowest detection score of such a face (the detector keeps faces from 0.8).
    pub people_face_min_score: f64,
    /// The lowest probability the classifier gives "people" for such a face to count: its
    /// second opinion, which keeps the faces of cats and dogs (the detector finds them too)
    /// out. The three settings were chosen on the validation split, as it is and enlarged
    /// 6× (experiments/people-by-faces/).
    pub people_min_probability: f64,
    /// Largest single file accepted.
    pub max_file_bytes: usize,
    /// Largest upload request (all files and form overhead together).
    pub max_request_bytes: usize,
    /// Most files in one upload request.
    pub max_files_per_request: usize,
    /// Pixel cap (width × height) checked from the header before decoding, against
    /// decompression bombs.
    pub max_pixels: u64,
    /// Longer side of thumbnails and previews.
    pub thumbnail_side: u32,
    pub preview_side: u32,
    /// Days a photo stays in the trash before it is purged automatically.
    pub trash_days: i64,
    /// Days a sign-in lasts.
    pub session_days: i64,
    /// Days a sign-in lasts unused: a session not used for this long is over, however
    /// far its expiry.
    pub session_idle_days: i64,
    /// Background worker threads (thumbnails, classification, faces, clustering);
    /// 0 runs none (the queue just fills, as in some tests).
    pub workers: usize,
    /// A failed job is tried this many times in all.
    pub job_attempts: i64,
    /// How long a claimed job stays this instance's without a renewal: the workers'
    /// lease keeper renews every quarter of it, and a killed instance's jobs are taken
    /// over by another instance once it has passed.
    pub job_lease: Duration,
    /// Database connections in the pool.
    pub db_connections: u32,
    /// How failed sign-ins are throttled and password checks bounded.
    pub sign_in: SignInPolicy,
    /// Served over TLS (directly or behind a proxy that terminates it): the session
    /// cookie is marked `Secure` and responses carry `Strict-Transport-Security`.
    pub secure_cookies: bool,
    /// Anyone may sign up. Closed by default: the first user becomes the admin and adds
    /// the others (`POST /api/users` signed in as the admin).
    pub open_sign_up: bool,
    /// Bytes of photos one user may keep (the trash counts); `None`: no limit.
    pub quota_bytes: Option<u64>,
    /// Memory for pixels and upload bodies, all users together (see [`crate::budget`]).
    pub memory_budget_bytes: u64,
    /// How long a request waits for memory, or for a GIF slot, before it is answered 503.
    pub busy_wait: Duration,
    /// GIFs built at once; a request beyond them waits [`ServeConfig::busy_wait`].
    pub gif_builds: usize,
    /// The most source pixels one GIF may decode, its distinct photos together: 100
    /// frames from previews (1280 px) come to about 160 megapixels, while 100 originals
    /// of 100 megapixels would be 10 gigapixels of decoding for one request.
    pub gif_max_source_pixels: u64,
    /// A connection must deliver a request's headers within this.
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long is cut off (408).
    pub body_idle_timeout: Duration,
    /// A request not answered within this is cut off (408), its work abandoned.
    pub request_timeout: Duration,
    /// On stopping, how long requests in flight may take to finish.
    pub drain_timeout: Duration,
}

impl ServeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            data_dir: data_dir.into(),
            database: None,
            blobs: None,
            model_bundle: None,
            face_weights: None,
            people_face_share: 1.0 / 16.0,
            people_face_min_score: 0.95,
            people_min_probability: 0.1,
            max_file_bytes: 50 << 20,
            max_request_bytes: 200 << 20,
            max_files_per_request: 100,
            max_pixels: 100_000_000,
            thumbnail_side: 256,
            preview_side: 1280,
            trash_days: 30,
            session_days: 30,
            session_idle_days: 7,
            workers: 2,
            job_attempts: 3,
            job_lease: Duration::from_secs(60),
            db_connections: 16,
            sign_in: SignInPolicy::default(),
            secure_cookies: false,
            open_sign_up: false,
            quota_bytes: None,
            memory_budget_bytes: 1 << 30,
            busy_wait: Duration::from_secs(10),
            gif_builds: 2,
            gif_max_source_pixels: 1_000_000_000,
            header_read_timeout: Duration::from_secs(20),
            body_idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15 * 60),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl ServeConfig {
    /// Where the rows live: [`ServeConfig::database`], else `<data_dir>/album.db`.
    pub fn database_location(&self) -> DatabaseLocation {
        self.database
            .clone()
            .unwrap_or_else(|| DatabaseLocation::Sqlite(self.data_dir.join("album.db")))
    }

    /// Where the blobs live: [`ServeConfig::blobs`], else `<data_dir>/blobs`.
    pub fn blob_location(&self) -> BlobLocation {
        self.blobs
            .clone()
            .unwrap_or_else(|| BlobLocation::Local(self.data_dir.join("blobs")))
    }
}
