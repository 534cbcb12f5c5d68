//! The `montages` table (a request and its render job), the rows the automatic choice
//! reads about candidate photos, and the `video` row a finished render adds.

use crate::sql::{Connection, OptionalExtension, Row, params};

/// A montage as stored, with its job's state.
#[derive(Debug, Clone)]
pub struct MontageRow {
    pub id: i64,
    pub user_id: i64,
    pub job_id: i64,
    pub title: String,
    /// JSON, see `service::montages::Settings`.
    pub settings: String,
    /// JSON array of photo ids.
    pub photo_ids: String,
    pub progress: f64,
    pub video_id: Option<i64>,
    pub rebuilt_from: Option<i64>,
    pub created: i64,
    /// The job's state (`queued`, `running`, `done`, `failed`); `done` when the job row
    /// is gone.
    pub state: String,
    pub error: Option<String>,
}

const COLUMNS: &str = "m.id, m.user_id, m.job_id, m.title, m.settings, m.photo_ids, m.progress, \
    m.video_id, m.rebuilt_from, m.created, COALESCE(j.state, 'done'), j.last_error";

fn from_row(r: &Row) -> crate::sql::Result<MontageRow> {
    Ok(MontageRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        job_id: r.get(2)?,
        title: r.get(3)?,
        settings: r.get(4)?,
        photo_ids: r.get(5)?,
        progress: r.get(6)?,
        video_id: r.get(7)?,
        rebuilt_from: r.get(8)?,
        created: r.get(9)?,
        state: r.get(10)?,
        error: r.get(11)?,
    })
}

/// What a new montage row holds.
pub(crate) struct NewMontage<'a> {
    pub user_id: i64,
    pub job_id: i64,
    pub title: &'a str,
    pub settings: &'a str,
    pub photo_ids: &'a str,
    pub rebuilt_from: Option<i64>,
}

pub(crate) fn insert(
    c: &Connection,
    montage: &NewMontage<'_>,
    time: i64,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO montages (user_id, job_id, title, settings, photo_ids, rebuilt_from,
                               created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
        params![
            montage.user_id,
            montage.job_id,
            montage.title,
            montage.settings,
            montage.photo_ids,
            montage.rebuilt_from,
            time
        ],
        |r| r.get(0),
    )
}

/// The user's montage `id`, if it is theirs.
pub(crate) fn find(
    c: &Connection,
    user_id: i64,
    id: i64,
) -> crate::sql::Result<Option<MontageRow>> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM montages m LEFT JOIN jobs j ON j.id = m.job_id
             WHERE m.id = ?1 AND m.user_id = ?2"
        ),
        params![id, user_id],
        from_row,
    )
    .optional()
}

/// The montage a render job is for.
pub(crate) fn of_job(c: &Connection, job_id: i64) -> crate::sql::Result<Option<MontageRow>> {
    c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM montages m LEFT JOIN jobs j ON j.id = m.job_id
             WHERE m.job_id = ?1"
        ),
        [job_id],
        from_row,
    )
    .optional()
}

/// The user's newest `limit` montages, newest first.
pub(crate) fn list(
    c: &Connection,
    user_id: i64,
    limit: i64,
) -> crate::sql::Result<Vec<MontageRow>> {
    let mut statement = c.prepare(&format!(
        "SELECT {COLUMNS} FROM montages m LEFT JOIN jobs j ON j.id = m.job_id
         WHERE m.user_id = ?1 ORDER BY m.id DESC LIMIT ?2"
    ))?;
    statement
        .query_map(params![user_id, limit], from_row)?
        .collect()
}

pub(crate) fn set_progress(
    c: &Connection,
    id: i64,
    progress: f64,
    time: i64,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE montages SET progress = ?1, updated = ?2 WHERE id = ?3",
        params![progress, time, id],
    )?;
    Ok(())
}

pub(crate) fn set_video(
    c: &Connection,
    id: i64,
    video_id: i64,
    time: i64,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE montages SET video_id = ?1, progress = 1, updated = ?2 WHERE id = ?3",
        params![video_id, time, id],
    )?;
    Ok(())
}

/// What the automatic choice knows about one of the user's photos.
#[derive(Debug, Clone)]
pub struct CandidateRow {
    pub id: i64,
    pub taken_at: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub faces: i64,
    /// Faces of people the user has named.
    pub named_faces: i64,
    pub thumbnail_sha256: Option<String>,
}

/// Every photo (not GIFs or videos) outside the trash, oldest taken first, at most
/// `limit`.
pub(crate) fn candidates(
    c: &Connection,
    user_id: i64,
    limit: i64,
) -> crate::sql::Result<Vec<CandidateRow>> {
    let mut statement = c.prepare(
        "SELECT p.id, p.taken_at, p.latitude, p.longitude,
                (SELECT COUNT(*) FROM faces f WHERE f.photo_id = p.id),
                (SELECT COUNT(*) FROM faces f JOIN people pe ON pe.id = f.person_id
                 WHERE f.photo_id = p.id AND pe.name IS NOT NULL),
                p.thumbnail_sha256
         FROM photos p
         WHERE p.user_id = ?1 AND p.trashed IS NULL AND p.kind = 'photo'
         ORDER BY p.taken_at IS NULL, p.taken_at, p.id LIMIT ?2",
    )?;
    statement
        .query_map(params![user_id, limit], |r| {
            Ok(CandidateRow {
                id: r.get(0)?,
                taken_at: r.get(1)?,
                latitude: r.get(2)?,
                longitude: r.get(3)?,
                faces: r.get(4)?,
                named_faces: r.get(5)?,
                thumbnail_sha256: r.get(6)?,
            })
        })?
        .collect()
}

/// The face boxes of a photo, in its upright pixels: (left, top, width, height).
pub fn face_boxes(c: &Connection, photo_id: i64) -> crate::sql::Result<Vec<[f64; 4]>> {
    let mut statement =
        c.prepare_cached("SELECT x, y, w, h FROM faces WHERE photo_id = ?1 ORDER BY id")?;
    statement
        .query_map([photo_id], |r| {
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
        })?
        .collect()
}

/// What a rendered video's row holds.
pub(crate) struct NewVideo<'a> {
    pub user_id: i64,
    pub sha256: &'a str,
    pub name: &'a str,
    pub bytes: i64,
    pub width: u32,
    pub height: u32,
    /// The poster frame, as the thumbnail and preview every item has.
    pub thumbnail_sha256: &'a str,
    pub preview_sha256: &'a str,
}

/// A `video` item, its renditions already made (no thumbnail job is queued for it).
pub(crate) fn insert_video(
    c: &Connection,
    video: &NewVideo<'_>,
    time: i64,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
             uploaded, thumbnail_sha256, preview_sha256)
         VALUES (?1, ?2, 'video', ?3, 'video/mp4', ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        params![
            video.user_id,
            video.sha256,
            video.name,
            video.bytes,
            video.width,
            video.height,
            time,
            video.thumbnail_sha256,
            video.preview_sha256
        ],
        |r| r.get(0),
    )
}

/// A music file a user uploaded for montages.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct MusicRow {
    pub id: i64,
    #[serde(skip)]
    pub sha256: String,
    pub name: String,
    pub bytes: i64,
    /// Its length, as ffprobe read it.
    pub seconds: f64,
    /// Unix seconds.
    pub created: i64,
}

fn music_from_row(r: &Row) -> crate::sql::Result<MusicRow> {
    Ok(MusicRow {
        id: r.get(0)?,
        sha256: r.get(1)?,
        name: r.get(2)?,
        bytes: r.get(3)?,
        seconds: r.get(4)?,
        created: r.get(5)?,
    })
}

pub(crate) fn insert_music(
    c: &Connection,
    user_id: i64,
    sha256: &str,
    name: &str,
    bytes: i64,
    seconds: f64,
    time: i64,
) -> crate::sql::Result<i64> {
    c.query_row(
        "INSERT INTO music (user_id, sha256, name, bytes, seconds, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        params![user_id, sha256, name, bytes, seconds, time],
        |r| r.get(0),
    )
}

/// The user's music `id`, if it is theirs.
pub(crate) fn find_music(
    c: &Connection,
    user_id: i64,
    id: i64,
) -> crate::sql::Result<Option<MusicRow>> {
    c.query_row(
        "SELECT id, sha256, name, bytes, seconds, created FROM music
         WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
        music_from_row,
    )
    .optional()
}

/// The user's music, newest first.
pub(crate) fn list_music(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<MusicRow>> {
    let mut statement = c.prepare(
        "SELECT id, sha256, name, bytes, seconds, created FROM music
         WHERE user_id = ?1 ORDER BY id DESC",
    )?;
    statement.query_map([user_id], music_from_row)?.collect()
}
