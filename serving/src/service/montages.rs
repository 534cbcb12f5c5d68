//! Video montages in the service (the paper's "automatic video editing"): a request
//! names its photos, or a rule that picks them, and queues a render job; the job renders
//! with [`album_montage::render`] and adds the video to the library as an item of kind
//! `video`, with a poster frame as its thumbnail.
//!
//! Everything a request can get wrong is refused before anything is queued: photos that
//! are not the user's (404), too many photos or too long a video (413), settings out of
//! range (400). The render writes no row until the MP4 is whole: the video row and the
//! montage's link to it are one transaction, so a crash mid-render leaves no half item,
//! and the job, put back in the queue on start-up, renders again.
//!
//! The automatic choice ("memories" when no rule is given) cuts the library into events
//! by time and place and takes the largest; a rule (album, person, place, category, date
//! range) takes the photos it matches. Either way [`album_montage::select::choose`]
//! drops near-duplicates (the split's perceptual hash on the thumbnails, confirmed by the
//! thumbnails' correlation), prefers faces of named people, and spreads the pick over
//! the time span, as many photos as the chosen length holds.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::sql::Connection;
use album_dataset::phash::{
    NEAR_DUPLICATE_MAX_DISTANCE, NEAR_DUPLICATE_MIN_CORRELATION, Thumbnail, distance, fingerprint,
    thumbnail_correlation,
};
use album_montage::frame::PixelBox;
use album_montage::render::{MAX_PHOTOS, MAX_SECONDS};
use album_montage::select::{self, Candidate, Length};
use album_montage::{MontagePhoto, MontageSpec, Orientation, Pixels, Resolution};
use image::DynamicImage;
use serde::{Deserialize, Serialize};

use crate::db::now;
use crate::error::{Error, Result};
use crate::ingest::{self, Patience};
use crate::media;
use crate::repo::montages::{
    self as repo, CandidateRow, MontageRow, MusicRow, NewMontage, NewVideo,
};
use crate::repo::photos::{self as photos_repo, PhotoFilter};
use crate::repo::{albums as albums_repo, faces as faces_repo};
use crate::service::jobs::{JobKind, enqueue};
use crate::service::photos::Photos;

/// The most photos a rule or the automatic choice looks at.
const MAX_CANDIDATES: i64 = 20_000;
/// The longest title.
const MAX_TITLE_CHARS: usize = 100;

/// How long an automatically chosen montage runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MontageLength {
    /// About 30 s.
    Short,
    /// About a minute.
    #[default]
    Medium,
    /// About two minutes.
    Long,
}

impl MontageLength {
    fn select(self) -> Length {
        match self {
            MontageLength::Short => Length::Short,
            MontageLength::Medium => Length::Medium,
            MontageLength::Long => Length::Long,
        }
    }
}

/// `POST /api/montages`: the photos, or a rule that picks them, and how to show them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MontageRequest {
    /// The photos in the order shown (1 to 300 of the user's photos). Without them the
    /// rule below picks the photos; with no rule either, the largest event does.
    pub photo_ids: Option<Vec<i64>>,
    pub album_id: Option<i64>,
    pub person_id: Option<i64>,
    pub place_id: Option<i64>,
    pub category: Option<String>,
    /// Taken on or after this day, `YYYY-MM-DD`...
    pub from: Option<String>,
    /// ...and on or before this one.
    pub to: Option<String>,
    /// For a rule or the automatic choice: short (≈ 30 s), medium (≈ 1 min, the
    /// default) or long (≈ 2 min).
    pub length: Option<MontageLength>,
    pub title: Option<String>,
    pub orientation: Option<Orientation>,
    pub resolution: Option<Resolution>,
    /// 0.5 to 30 (default 3).
    pub seconds_per_photo: Option<f64>,
    /// Music uploaded with `POST /api/music`, looped under the photos and faded out
    /// at the end.
    pub music_id: Option<i64>,
}

impl MontageRequest {
    fn has_rule(&self) -> bool {
        self.album_id.is_some()
            || self.person_id.is_some()
            || self.place_id.is_some()
            || self.category.is_some()
            || self.from.is_some()
            || self.to.is_some()
    }
}

/// `POST /api/montages/{id}/rebuild`: the same montage with its photos removed or
/// reordered (and, if given, a new title).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildRequest {
    pub photo_ids: Vec<i64>,
    pub title: Option<String>,
}

/// How a montage is shown, stored as JSON beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Settings {
    /// The title card's second line (the dates the photos span).
    pub subtitle: String,
    pub orientation: Orientation,
    pub resolution: Resolution,
    pub seconds_per_photo: f64,
    pub crossfade: f64,
    pub title_seconds: f64,
    pub fps: u32,
    /// The music under the video, if any: its row and its blob.
    #[serde(default)]
    pub music_id: Option<i64>,
    #[serde(default)]
    pub music_sha256: Option<String>,
}

impl Settings {
    fn spec(&self, title: &str, photos: Vec<MontagePhoto>) -> MontageSpec {
        let mut spec = MontageSpec::new(title, photos);
        spec.subtitle = self.subtitle.clone();
        spec.orientation = self.orientation;
        spec.resolution = self.resolution;
        spec.seconds_per_photo = self.seconds_per_photo;
        spec.crossfade = self.crossfade;
        spec.title_seconds = self.title_seconds;
        spec.fps = self.fps;
        spec
    }

    /// Refuses `photos` photos with these settings: 413 beyond the photo or duration
    /// limit, 400 for a setting out of range.
    fn check(&self, photos: usize) -> Result<()> {
        if photos > MAX_PHOTOS {
            return Err(Error::TooLarge(format!(
                "{photos} photos: a montage takes at most {MAX_PHOTOS}"
            )));
        }
        let spec = self.spec("", Vec::new());
        let seconds = spec.timeline_for(photos).duration();
        if seconds > MAX_SECONDS {
            return Err(Error::TooLarge(format!(
                "the montage would last {seconds:.0} s; the limit is {MAX_SECONDS:.0} s \
                 (fewer photos, or fewer seconds a photo)"
            )));
        }
        spec.validate_for(photos)
            .map_err(|e| Error::BadRequest(e.to_string()))
    }
}

/// A montage as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MontageInfo {
    pub id: i64,
    pub title: String,
    pub subtitle: String,
    /// The render job's state: `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// The share of the render done, 0 to 1.
    pub progress: f64,
    /// The photos in the order shown.
    pub photo_ids: Vec<i64>,
    /// The `video` item, once rendered.
    pub video_id: Option<i64>,
    /// Why the last render attempt failed.
    pub error: Option<String>,
    pub orientation: Orientation,
    pub resolution: Resolution,
    pub seconds_per_photo: f64,
    /// The video's length in seconds.
    pub seconds: f64,
    /// The montage this one was rebuilt from.
    pub rebuilt_from: Option<i64>,
    /// The music under it, if any.
    pub music_id: Option<i64>,
    /// Unix seconds.
    pub created: i64,
}

fn info(row: MontageRow) -> Result<MontageInfo> {
    let settings: Settings = serde_json::from_str(&row.settings)
        .map_err(|e| Error::internal("a montage's settings", e))?;
    let photo_ids: Vec<i64> = serde_json::from_str(&row.photo_ids)
        .map_err(|e| Error::internal("a montage's photos", e))?;
    let seconds = settings
        .spec("", Vec::new())
        .timeline_for(photo_ids.len())
        .duration();
    Ok(MontageInfo {
        id: row.id,
        title: row.title,
        subtitle: settings.subtitle,
        state: row.state,
        progress: row.progress,
        video_id: row.video_id,
        error: row.error,
        orientation: settings.orientation,
        resolution: settings.resolution,
        seconds_per_photo: settings.seconds_per_photo,
        seconds,
        photo_ids,
        rebuilt_from: row.rebuilt_from,
        music_id: settings.music_id,
        created: row.created,
    })
}

/// The montage service, over the photos service's database, blobs and settings.
#[derive(Clone)]
pub struct Montages {
    pub(crate) photos: Photos,
}

impl Montages {
    pub fn new(photos: Photos) -> Self {
        Montages { photos }
    }

    /// Checks the request, chooses its photos, and queues the render.
    pub async fn create(&self, user_id: i64, request: MontageRequest) -> Result<MontageInfo> {
        let service = self.clone();
        let info =
            tokio::task::spawn_blocking(move || service.create_now(user_id, request)).await??;
        self.photos.jobs.wake();
        Ok(info)
    }

    /// The same settings with other photos (some removed, or in another order).
    pub async fn rebuild(
        &self,
        user_id: i64,
        id: i64,
        request: RebuildRequest,
    ) -> Result<MontageInfo> {
        let service = self.clone();
        let info = tokio::task::spawn_blocking(move || {
            let mut c = service.photos.db.connection()?;
            let old = repo::find(&c, user_id, id)?.ok_or(Error::NotFound("montage"))?;
            let settings: Settings = serde_json::from_str(&old.settings)
                .map_err(|e| Error::internal("a montage's settings", e))?;
            let title = match request.title {
                Some(title) => checked_title(title)?,
                None => old.title,
            };
            settings.check(request.photo_ids.len())?;
            check_photos(&c, user_id, &request.photo_ids)?;
            queue(
                &mut c,
                user_id,
                &title,
                &settings,
                &request.photo_ids,
                Some(id),
                &service,
            )
        })
        .await??;
        self.photos.jobs.wake();
        Ok(info)
    }

    pub async fn get(&self, user_id: i64, id: i64) -> Result<MontageInfo> {
        self.photos
            .db
            .run(move |c| info(repo::find(c, user_id, id)?.ok_or(Error::NotFound("montage"))?))
            .await
    }

    /// Keeps an uploaded music file once ffprobe finds sound in it (anything else is a
    /// 400 that keeps nothing).
    pub async fn add_music(&self, user_id: i64, name: &str, bytes: Vec<u8>) -> Result<MusicRow> {
        let name = music_name(name)?;
        let service = self.clone();
        tokio::task::spawn_blocking(move || service.add_music_now(user_id, &name, &bytes)).await?
    }

    fn add_music_now(&self, user_id: i64, name: &str, bytes: &[u8]) -> Result<MusicRow> {
        if bytes.is_empty() {
            return Err(Error::BadRequest(format!("{name} is empty")));
        }
        let dir = render_dir(&self.photos.config.data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::internal("the montage folder", e))?;
        let mut file = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| Error::internal("a music file", e))?;
        std::io::Write::write_all(&mut file, bytes)
            .map_err(|e| Error::internal("a music file", e))?;
        let seconds = album_montage::probe::audio_seconds(file.path()).map_err(|e| match e {
            album_montage::Error::Invalid(why) => Error::BadRequest(format!("{name}: {why}")),
            other => render_error(other),
        })?;
        let blobs = &self.photos.blobs;
        let c = self.photos.db.connection()?;
        let _guard = blobs.writer();
        let staged = blobs.stage(bytes)?;
        let transaction = c.write_transaction()?;
        let id = repo::insert_music(
            &transaction,
            user_id,
            staged.confirm(blobs, &transaction)?,
            name,
            bytes.len() as i64,
            seconds,
            now(),
        )?;
        transaction.commit()?;
        repo::find_music(&c, user_id, id)?.ok_or(Error::NotFound("music"))
    }

    /// The user's music, newest first.
    pub async fn music(&self, user_id: i64) -> Result<Vec<MusicRow>> {
        self.photos
            .db
            .run(move |c| Ok(repo::list_music(c, user_id)?))
            .await
    }

    /// The user's newest 100 montages.
    pub async fn list(&self, user_id: i64) -> Result<Vec<MontageInfo>> {
        self.photos
            .db
            .run(move |c| repo::list(c, user_id, 100)?.into_iter().map(info).collect())
            .await
    }

    fn create_now(&self, user_id: i64, request: MontageRequest) -> Result<MontageInfo> {
        if request.photo_ids.is_some() && (request.has_rule() || request.length.is_some()) {
            return Err(Error::BadRequest(
                "give photo_ids, or a rule (album_id, person_id, place_id, category, from, \
                 to) with a length, not both"
                    .into(),
            ));
        }
        let mut settings = Settings {
            subtitle: String::new(),
            orientation: request.orientation.unwrap_or_default(),
            resolution: request.resolution.unwrap_or_default(),
            seconds_per_photo: request.seconds_per_photo.unwrap_or(3.0),
            crossfade: 0.6,
            title_seconds: 2.5,
            fps: 30,
            music_id: None,
            music_sha256: None,
        };
        // a short photo time keeps its crossfade within half of it
        settings.crossfade = settings.crossfade.min(settings.seconds_per_photo / 2.0);
        settings.title_seconds = settings.title_seconds.max(settings.crossfade);
        let mut c = self.photos.db.connection()?;
        if let Some(id) = request.music_id {
            let music = repo::find_music(&c, user_id, id)?.ok_or(Error::NotFound("music"))?;
            settings.music_id = Some(music.id);
            settings.music_sha256 = Some(music.sha256);
        }
        let (photo_ids, default_title) = match &request.photo_ids {
            Some(ids) => {
                settings.check(ids.len())?;
                check_photos(&c, user_id, ids)?;
                (ids.clone(), "Montage".to_owned())
            }
            None => {
                settings.check(1)?;
                self.choose(&c, user_id, &request, &settings)?
            }
        };
        settings.check(photo_ids.len())?;
        let taken: Vec<Option<String>> = photo_ids
            .iter()
            .map(|&id| Ok(photos_repo::find(&c, user_id, id)?.and_then(|p| p.taken_at)))
            .collect::<Result<_>>()?;
        settings.subtitle = select::date_range(taken.iter().flatten().map(String::as_str));
        let title = match request.title {
            Some(title) => checked_title(title)?,
            None => default_title,
        };
        queue(&mut c, user_id, &title, &settings, &photo_ids, None, self)
    }

    /// The photos a rule (or, with none, the largest event) picks, and a title for them.
    fn choose(
        &self,
        c: &Connection,
        user_id: i64,
        request: &MontageRequest,
        settings: &Settings,
    ) -> Result<(Vec<i64>, String)> {
        let mut rows = repo::candidates(c, user_id, MAX_CANDIDATES)?;
        let title = if request.has_rule() {
            let filter = PhotoFilter {
                album: request.album_id,
                person: request.person_id,
                place: request.place_id,
                category: request.category.clone(),
                from: request.from.as_deref().map(check_day).transpose()?,
                to: request.to.as_deref().map(check_day).transpose()?,
                ..PhotoFilter::default()
            };
            let picked: HashSet<i64> = photos_repo::filtered(c, user_id, &filter, MAX_CANDIDATES)?
                .into_iter()
                .map(|p| p.id)
                .collect();
            rows.retain(|r| picked.contains(&r.id));
            self.rule_title(c, user_id, request)?
        } else {
            "Memories".to_owned()
        };
        let candidates: Vec<Candidate> = rows.iter().map(candidate).collect();
        let pool: Vec<usize> = if request.has_rule() {
            (0..rows.len()).collect()
        } else {
            let events = select::events(&candidates);
            match select::best_event(&events) {
                Some(event) => event.photos.clone(),
                None => Vec::new(),
            }
        };
        if pool.is_empty() {
            return Err(Error::BadRequest(if request.has_rule() {
                "no photos match: choose another album, person, place, category or dates".into()
            } else {
                "no photos with a date to make memories from: upload photos with their \
                 EXIF dates, or give photo_ids"
                    .into()
            }));
        }
        let count = request
            .length
            .unwrap_or_default()
            .select()
            .photos(settings.seconds_per_photo, settings.title_seconds);
        let looks = Looks::new(self, &rows);
        let same = |a: usize, b: usize| looks.same(a, b);
        let chosen = select::choose(&candidates, &pool, count.min(MAX_PHOTOS), &same);
        Ok((chosen.into_iter().map(|i| rows[i].id).collect(), title))
    }

    /// The album's, person's or category's name, or "Montage".
    fn rule_title(&self, c: &Connection, user_id: i64, request: &MontageRequest) -> Result<String> {
        if let Some(id) = request.album_id {
            let album = albums_repo::find(c, user_id, id)?.ok_or(Error::NotFound("album"))?;
            return Ok(album.name);
        }
        if let Some(id) = request.person_id {
            let person =
                faces_repo::find_person(c, user_id, id)?.ok_or(Error::NotFound("person"))?;
            return Ok(person.name.unwrap_or_else(|| "Someone".to_owned()));
        }
        if let Some(category) = &request.category {
            let mut title = category.clone();
            if let Some(first) = title.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            return Ok(title);
        }
        Ok("Montage".to_owned())
    }

    /// Renders the montage of a `montage` job and stores its video (the worker's side).
    pub fn render(&self, job_id: i64) -> Result<()> {
        let c = self.photos.db.connection()?;
        let Some(row) = repo::of_job(&c, job_id)? else {
            return Ok(()); // its owner has gone (the row went with the user)
        };
        if row.video_id.is_some() {
            return Ok(()); // rendered before a crash lost the job's own `done`
        }
        let settings: Settings = serde_json::from_str(&row.settings)
            .map_err(|e| Error::internal("a montage's settings", e))?;
        let ids: Vec<i64> = serde_json::from_str(&row.photo_ids)
            .map_err(|e| Error::internal("a montage's photos", e))?;
        let mut photos = Vec::with_capacity(ids.len());
        for id in ids {
            // a photo purged since the request is left out
            if let Some(photo) = self.deferred_photo(&c, row.user_id, id)? {
                photos.push(photo);
            }
        }
        drop(c);
        if photos.is_empty() {
            return Err(Error::BadRequest(
                "every photo of this montage has been deleted".into(),
            ));
        }
        let mut spec = settings.spec(&row.title, photos);
        let dir = render_dir(&self.photos.config.data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::internal("the montage folder", e))?;
        let out = dir.join(format!("montage-{}.mp4", row.id));
        // ffmpeg reads the music from a file of its own, removed with the render
        let music = match &settings.music_sha256 {
            Some(sha256) => {
                let path = dir.join(format!("montage-{}.music", row.id));
                std::fs::write(&path, self.photos.blobs.read(sha256)?)
                    .map_err(|e| Error::internal("the montage's music", e))?;
                Some(path)
            }
            None => None,
        };
        spec.music = music.clone();
        let mut reported = 0.0;
        let db = self.photos.db.clone();
        let mut progress = |share: f64| {
            // a row write every 2 %, never 100 % before the video row exists
            if share - reported >= 0.02 {
                reported = share;
                if let Ok(c) = db.connection() {
                    let _ = repo::set_progress(&c, row.id, share.min(0.99), now());
                }
            }
        };
        let rendered = album_montage::render(&spec, &out, &mut progress).map_err(render_error);
        if let Some(music) = &music {
            let _ = std::fs::remove_file(music);
        }
        let rendered = rendered?;
        let stored = self.store_video(&row, &settings, &out, rendered.width, rendered.height);
        let _ = std::fs::remove_file(&out);
        stored
    }

    /// A photo of the montage, to be decoded when its turn comes: its preview when one
    /// is stored (already upright, at most the preview side), else its original.
    fn deferred_photo(
        &self,
        c: &Connection,
        user_id: i64,
        photo_id: i64,
    ) -> Result<Option<MontagePhoto>> {
        let Some(row) = photos_repo::frame_row(c, user_id, photo_id)? else {
            return Ok(None);
        };
        let faces = repo::face_boxes(c, photo_id)?
            .into_iter()
            .map(|[left, top, width, height]| PixelBox {
                left,
                top,
                width,
                height,
            })
            .collect();
        let (sha256, orientation) = match row.preview_sha256 {
            Some(preview) if self.photos.blobs.contains(&preview)? => (preview, 1),
            _ => (row.sha256, row.orientation),
        };
        let blobs = self.photos.blobs.clone();
        let decoding = self.photos.decoding.clone();
        let load = move || -> std::result::Result<DynamicImage, String> {
            let bytes = blobs.read(&sha256).map_err(|e| e.to_string())?;
            let decoded = ingest::decode_upright(&bytes, orientation, &decoding, Patience::Job)
                .map_err(|e| e.to_string())?;
            Ok((*decoded).clone())
        };
        Ok(Some(MontagePhoto {
            image: Pixels::Deferred {
                size: (row.width, row.height),
                load: Box::new(load),
            },
            faces,
        }))
    }

    /// The finished MP4 and its poster frame (the first photo, mid-way through its
    /// time) as blobs, then the `video` row and the montage's link to it in one
    /// transaction.
    fn store_video(
        &self,
        row: &MontageRow,
        settings: &Settings,
        video: &std::path::Path,
        width: u32,
        height: u32,
    ) -> Result<()> {
        let bytes = std::fs::read(video).map_err(|e| Error::internal("the rendered montage", e))?;
        // the middle of the first photo's time on screen alone
        let (solo_start, solo_end) = settings.spec("", Vec::new()).timeline_for(1).solo(0);
        let poster_at = (solo_start + solo_end) / 2.0;
        let poster = album_montage::probe::frame_at(video, poster_at).map_err(render_error)?;
        let poster = DynamicImage::ImageRgb8(poster);
        let config = &self.photos.config;
        let thumbnail = media::resized_jpeg(&poster, config.thumbnail_side, 85)
            .map_err(|e| Error::internal("the montage's thumbnail", e))?;
        let preview = media::resized_jpeg(&poster, config.preview_side, 90)
            .map_err(|e| Error::internal("the montage's preview", e))?;
        let name = file_name(&row.title);
        let c = self.photos.db.connection()?;
        let blobs = &self.photos.blobs;
        let _guard = blobs.writer();
        let video = blobs.stage(&bytes)?;
        let thumbnail = blobs.stage(&thumbnail)?;
        let preview = blobs.stage(&preview)?;
        let transaction = c.write_transaction()?;
        let sha256 = video.confirm(blobs, &transaction)?.to_owned();
        let thumbnail_sha256 = thumbnail.confirm(blobs, &transaction)?.to_owned();
        let preview_sha256 = preview.confirm(blobs, &transaction)?.to_owned();
        let time = now();
        // the same video rendered again (a rebuild that changed nothing) is one item
        let video_id = match photos_repo::with_bytes(&transaction, row.user_id, &sha256)? {
            Some(id) => id,
            None => repo::insert_video(
                &transaction,
                &NewVideo {
                    user_id: row.user_id,
                    sha256: &sha256,
                    name: &name,
                    bytes: bytes.len() as i64,
                    width,
                    height,
                    thumbnail_sha256: &thumbnail_sha256,
                    preview_sha256: &preview_sha256,
                },
                time,
            )?,
        };
        repo::set_video(&transaction, row.id, video_id, time)?;
        transaction.commit()?;
        Ok(())
    }
}

/// The montage row and its render job, queued together.
fn queue(
    c: &mut Connection,
    user_id: i64,
    title: &str,
    settings: &Settings,
    photo_ids: &[i64],
    rebuilt_from: Option<i64>,
    service: &Montages,
) -> Result<MontageInfo> {
    let settings_json =
        serde_json::to_string(settings).map_err(|e| Error::internal("montage settings", e))?;
    let ids_json =
        serde_json::to_string(photo_ids).map_err(|e| Error::internal("montage photos", e))?;
    let transaction = c.write_transaction()?;
    let job_id = enqueue(
        &transaction,
        user_id,
        None,
        JobKind::Montage,
        service.photos.config.job_attempts,
    )?;
    let id = repo::insert(
        &transaction,
        &NewMontage {
            user_id,
            job_id,
            title,
            settings: &settings_json,
            photo_ids: &ids_json,
            rebuilt_from,
        },
        now(),
    )?;
    let row = repo::find(&transaction, user_id, id)?.ok_or(Error::NotFound("montage"))?;
    transaction.commit()?;
    info(row)
}

/// Each id is one of the user's photos or GIFs (someone else's is "not found", so ids
/// cannot be probed); a video cannot be part of a montage.
fn check_photos(c: &Connection, user_id: i64, ids: &[i64]) -> Result<()> {
    for &id in ids {
        let photo = photos_repo::find(c, user_id, id)?.ok_or(Error::NotFound("photo"))?;
        if photo.kind == "video" {
            return Err(Error::BadRequest(format!(
                "photo {id} is a video; a montage is made of photos"
            )));
        }
    }
    Ok(())
}

fn checked_title(title: String) -> Result<String> {
    let title = title.trim().to_owned();
    if title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!(
            "a title is at most {MAX_TITLE_CHARS} characters, on one line"
        )));
    }
    Ok(title)
}

/// A music file's name as shown: its last path part, on one line, at most 200 characters.
fn music_name(name: &str) -> Result<String> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if name.chars().any(char::is_control) {
        return Err(Error::BadRequest("a music file's name is one line".into()));
    }
    let name: String = name.chars().take(200).collect();
    Ok(if name.is_empty() {
        "music".to_owned()
    } else {
        name
    })
}

fn check_day(day: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map(|_| day.to_owned())
        .map_err(|_| Error::BadRequest(format!("{day:?} is not a day: write YYYY-MM-DD")))
}

/// The video's file name: its title with only letters, digits, spaces, `-` and `_`.
fn file_name(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim();
    if stem.is_empty() {
        "montage.mp4".to_owned()
    } else {
        format!("{stem}.mp4")
    }
}

fn candidate(row: &CandidateRow) -> Candidate {
    Candidate {
        taken_at: row.taken_at.as_deref().and_then(select::seconds_of),
        place: row.latitude.zip(row.longitude),
        faces: row.faces as usize,
        named_faces: row.named_faces as usize,
    }
}

fn render_error(error: album_montage::Error) -> Error {
    match error {
        album_montage::Error::Invalid(message) => Error::BadRequest(message),
        album_montage::Error::Photo { index, reason } => {
            Error::BadImage(format!("photo {} of the montage: {reason}", index + 1))
        }
        missing @ album_montage::Error::MissingTool { .. } => Error::Setup(missing.to_string()),
        other => Error::internal("montage render", other),
    }
}

/// The candidates' perceptual fingerprints, read from their thumbnails when the choice
/// first compares them (a photo whose thumbnail is not made yet has none, and is never
/// taken for a near-duplicate).
struct Looks<'a> {
    service: &'a Montages,
    rows: &'a [CandidateRow],
    seen: RefCell<HashMap<usize, Option<(u64, Thumbnail)>>>,
}

impl<'a> Looks<'a> {
    fn new(service: &'a Montages, rows: &'a [CandidateRow]) -> Self {
        Looks {
            service,
            rows,
            seen: RefCell::new(HashMap::new()),
        }
    }

    fn same(&self, a: usize, b: usize) -> bool {
        let (Some((hash_a, thumb_a)), Some((hash_b, thumb_b))) = (self.look(a), self.look(b))
        else {
            return false;
        };
        distance(hash_a, hash_b) <= NEAR_DUPLICATE_MAX_DISTANCE
            && thumbnail_correlation(&thumb_a, &thumb_b) >= NEAR_DUPLICATE_MIN_CORRELATION
    }

    fn look(&self, i: usize) -> Option<(u64, Thumbnail)> {
        if let Some(known) = self.seen.borrow().get(&i) {
            return known.clone();
        }
        let look = self.rows[i].thumbnail_sha256.as_ref().and_then(|sha256| {
            let bytes = self.service.photos.blobs.read(sha256).ok()?;
            let image = image::load_from_memory(&bytes).ok()?;
            Some(fingerprint(&image))
        });
        self.seen.borrow_mut().insert(i, look.clone());
        look
    }
}

/// Where the renders are written until they are stored.
pub(crate) fn render_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("montages")
}
