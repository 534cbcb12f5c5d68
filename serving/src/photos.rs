//! Photos: upload, listing with filters, the original / thumbnail / preview, zip
//! downloads, favourites, and the trash (delete → trash → restore or purge, and the
//! automatic purge after `trash_days`).
//!
//! An upload request is all or nothing: every file is read (with the per-file and
//! per-request limits enforced while streaming) and inspected before any is stored, so a
//! request with one bad file gets a 4xx naming it and stores nothing. A photo is
//! acknowledged only after its blob is on disk and its row (with its queued jobs) is
//! committed.

use std::collections::HashSet;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension, ToSql, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::budget::{BudgetError, Reservation};
use crate::db::{self, now};
use crate::error::{Error, ErrorBody, Result};
use crate::ingest::{self, Decoded, Inspected, Patience};
use crate::jobs::{self, JobKind};
use crate::service::places;
use crate::zipstream::{self, ZipOut};

pub use crate::repo::photos::{PHOTO_COLUMNS, PhotoInfo, photo_from_row};

/// One of the user's photos, trashed or not; someone else's is "not found".
pub fn photo_of(c: &Connection, user_id: i64, photo_id: i64) -> Result<PhotoInfo> {
    crate::repo::photos::find(c, user_id, photo_id)?.ok_or(Error::NotFound("photo"))
}

/// A stored photo's original, decoded and turned upright; `None` when the photo is gone
/// (purged). Callers check ownership first: this looks the photo up by id alone.
pub fn upright_image(
    state: &AppState,
    photo_id: i64,
    patience: Patience,
) -> Result<Option<Decoded>> {
    let original: Option<(String, u16)> = state
        .db
        .connection()?
        .query_row(
            "SELECT sha256, orientation FROM photos WHERE id = ?1",
            [photo_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match original {
        Some((sha256, orientation)) => Ok(Some(ingest::decode_upright(
            &state.blobs.read(&sha256)?,
            orientation,
            &state.decoding,
            patience,
        )?)),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------
// Upload
// ---------------------------------------------------------------------------------------

/// What became of one uploaded file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UploadStatus {
    /// Stored as a new photo.
    Stored,
    /// This user already has these bytes: `photo` is that one.
    Duplicate,
    /// Not stored: `error` says why.
    Refused,
}

/// What happened to one uploaded file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UploadResult {
    /// The file name as sent.
    pub name: String,
    pub status: UploadStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<PhotoInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl UploadResult {
    fn with_photo(name: String, status: UploadStatus, photo: PhotoInfo) -> Self {
        UploadResult {
            name,
            status,
            photo: Some(photo),
            error: None,
        }
    }

    fn refused(name: String, error: &Error) -> Self {
        UploadResult {
            name,
            status: UploadStatus::Refused,
            photo: None,
            error: Some(ErrorBody {
                error: error.code().into(),
                message: error.public_message(),
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadReport {
    pub results: Vec<UploadResult>,
}

/// One file part of an upload: its name and bytes, or why it was refused while read.
struct Incoming {
    name: String,
    bytes: std::result::Result<Vec<u8>, Error>,
}

fn multipart_error(e: MultipartError) -> Error {
    if crate::app::is_body_timeout(&e) {
        Error::Timeout("the upload stalled: no data arrived for a while; send it again".into())
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(format!(
            "the request is over the upload limit: {}",
            e.body_text()
        ))
    } else {
        Error::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Reads every file part, chunk by chunk. A file over the per-file limit or with a
/// hostile name is refused on its own (its bytes are read past, never kept); a request
/// that is malformed, over the request limit or has too many files is refused whole.
/// The bytes kept are held from the memory budget as they arrive (returned with them):
/// when other uploads and decodes hold it all, the request is answered 503 at once.
async fn read_files(
    multipart: &mut Multipart,
    state: &AppState,
) -> Result<(Vec<Incoming>, Reservation)> {
    let config = &state.config;
    let over_budget = |e: BudgetError| e.into_error("the upload");
    let mut held = state.decoding.budget.try_reserve(0).map_err(over_budget)?;
    let mut files = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let Some(name) = field.file_name().map(str::to_owned) else {
            continue; // a plain form field: nothing to store
        };
        if files.len() == config.max_files_per_request {
            return Err(Error::TooLarge(format!(
                "more than {} files in one request",
                config.max_files_per_request
            )));
        }
        let mut bytes = ingest::check_file_name(&name).map(|()| Vec::new());
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if let Ok(kept) = &mut bytes {
                if kept.len() + chunk.len() > config.max_file_bytes {
                    bytes = Err(Error::TooLarge(format!(
                        "{name:?} is over the {} MiB per-file limit",
                        config.max_file_bytes >> 20
                    )));
                } else {
                    held.try_grow(chunk.len() as u64).map_err(over_budget)?;
                    kept.extend_from_slice(&chunk);
                }
            }
        }
        files.push(Incoming { name, bytes });
    }
    Ok((files, held))
}

/// `POST /api/photos`: multipart upload of one or more files (any field name).
pub async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<UploadReport>)> {
    let mut multipart = multipart.map_err(|e| {
        Error::BadRequest(format!(
            "send the photos as multipart/form-data ({})",
            e.body_text()
        ))
    })?;
    // the bodies' bytes stay held until the files are stored or refused
    let (files, _bodies) = read_files(&mut multipart, &state).await?;
    if files.is_empty() {
        return Err(Error::BadRequest(
            "no files in the request: send multipart/form-data with one or more file parts".into(),
        ));
    }
    let decoding = state.decoding.clone();
    let mut inspected = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|file| {
                let name = file.name.clone();
                let inspected = file
                    .bytes
                    .and_then(|bytes| ingest::inspect(file.name, bytes, &decoding));
                inspected.map_err(|error| (name, error))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    // Every file refused: the request failed, with the first file's reason.
    if !inspected.is_empty()
        && inspected.iter().all(Result::is_err)
        && let Err((_, error)) = inspected.swap_remove(0)
    {
        return Err(error);
    }
    // A user already at the quota: refused whole, as one over-limit request is.
    if state.config.quota_bytes.is_some() {
        let smallest = inspected
            .iter()
            .filter_map(|file| file.as_ref().ok().map(|f| f.bytes.len() as u64))
            .min()
            .unwrap_or(0);
        let (user_id, quota_state) = (user.id, state.clone());
        state
            .db
            .run(move |c| check_quota(&quota_state, c, user_id, smallest))
            .await?;
    }
    let store_state = state.clone();
    let results = tokio::task::spawn_blocking(move || {
        let mut results = Vec::with_capacity(inspected.len());
        for outcome in inspected {
            match outcome {
                Ok(file) => results.extend(store_photos(&store_state, user.id, vec![file])?),
                Err((name, error)) => results.push(UploadResult::refused(name, &error)),
            }
        }
        Ok::<_, Error>(results)
    })
    .await??;
    state.jobs.wake();
    let status = if results.iter().any(|r| r.status == UploadStatus::Stored) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UploadReport { results })))
}

/// Bytes of photos `user_id` keeps, the trash included.
pub fn bytes_used(c: &Connection, user_id: i64) -> Result<u64> {
    let used: i64 = c.query_row(
        "SELECT COALESCE(SUM(bytes), 0) FROM photos WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    Ok(used.max(0) as u64)
}

/// `Ok` when `adding` more bytes keep `user_id` within the album's quota. (Two uploads
/// at once may each pass and overshoot it by one of them: the quota bounds a user's
/// storage, it does not account it to the byte.)
fn check_quota(state: &AppState, c: &Connection, user_id: i64, adding: u64) -> Result<()> {
    let Some(quota) = state.config.quota_bytes else {
        return Ok(());
    };
    let used = bytes_used(c, user_id)?;
    if used.saturating_add(adding) <= quota {
        return Ok(());
    }
    let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
    Err(Error::TooLarge(format!(
        "over your storage quota: {:.1} MiB used of {:.1} MiB, this photo is {:.1} MiB \
         (empty the trash or ask the album's admin for more)",
        mib(used),
        mib(quota),
        mib(adding)
    )))
}

/// Stores inspected files for `user_id`: duplicates (same bytes as a photo this user
/// has, in the trash or not) are reported, not stored again.
pub fn store_photos(
    state: &AppState,
    user_id: i64,
    files: Vec<Inspected>,
) -> Result<Vec<UploadResult>> {
    let mut c = state.db.connection()?;
    let mut results = Vec::with_capacity(files.len());
    let mut seen_in_request = HashSet::new();
    let duplicate = |c: &Connection, name: String, id: i64| -> Result<UploadResult> {
        Ok(UploadResult::with_photo(
            name,
            UploadStatus::Duplicate,
            photo_of(c, user_id, id)?,
        ))
    };
    for file in files {
        if let Some(id) = photo_with_bytes(&c, user_id, &file.sha256)? {
            results.push(duplicate(&c, file.name, id)?);
            continue;
        }
        if !seen_in_request.insert(file.sha256.clone()) {
            continue; // the same bytes twice in one request: stored once below
        }
        if let Err(over) = check_quota(state, &c, user_id, file.bytes.len() as u64) {
            results.push(UploadResult::refused(file.name, &over));
            continue;
        }
        let id = match insert_photo(state, &mut c, user_id, &file, "photo") {
            Ok(id) => id,
            // A concurrent request stored the same bytes between the check and the
            // insert (the UNIQUE (user_id, sha256) constraint refused this row).
            Err(error) => match photo_with_bytes(&c, user_id, &file.sha256)? {
                Some(id) => {
                    results.push(duplicate(&c, file.name, id)?);
                    continue;
                }
                None => return Err(error),
            },
        };
        results.push(UploadResult::with_photo(
            file.name,
            UploadStatus::Stored,
            photo_of(&c, user_id, id)?,
        ));
    }
    Ok(results)
}

/// The user's photo (in the trash or not) with these bytes.
pub(crate) fn photo_with_bytes(c: &Connection, user_id: i64, sha256: &str) -> Result<Option<i64>> {
    Ok(c.query_row(
        "SELECT id FROM photos WHERE user_id = ?1 AND sha256 = ?2",
        params![user_id, sha256],
        |r| r.get(0),
    )
    .optional()?)
}

/// Writes the blob (durably), then the row and its jobs in one transaction. The blob
/// lock keeps a purge from deleting the blob between the write and the commit.
pub fn insert_photo(
    state: &AppState,
    c: &mut Connection,
    user_id: i64,
    file: &Inspected,
    kind: &str,
) -> Result<i64> {
    let place_id = match file.meta.gps {
        Some((lat, lon)) => places::place_id(c, user_id, lat, lon)?,
        None => None,
    };
    let _guard = state.blob_writer();
    let sha256 = state.blobs.put(&file.bytes)?;
    let transaction = db::write_transaction(c)?;
    transaction.execute(
        "INSERT INTO photos (user_id, sha256, kind, name, mime, bytes, width, height,
             orientation, taken_at, camera_make, camera_model, latitude, longitude, place_id,
             uploaded)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            user_id,
            sha256,
            kind,
            file.name,
            ingest::mime_of(file.kind),
            file.bytes.len() as i64,
            file.width,
            file.height,
            file.meta.orientation,
            file.meta.taken_at,
            file.meta.camera_make,
            file.meta.camera_model,
            file.meta.gps.map(|g| g.0),
            file.meta.gps.map(|g| g.1),
            place_id,
            now(),
        ],
    )?;
    let id = transaction.last_insert_rowid();
    for job in JobKind::for_new_photo(&state.config) {
        jobs::enqueue(
            &transaction,
            user_id,
            Some(id),
            job,
            state.config.job_attempts,
        )?;
    }
    transaction.commit()?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------

/// `GET /api/photos` filters; all optional, combined with AND.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Page size, 1–500 (default 100).
    pub limit: Option<i64>,
    /// Photos with ids below this (the `next` of the previous page).
    pub before: Option<i64>,
    pub album: Option<i64>,
    pub category: Option<String>,
    pub person: Option<i64>,
    pub place: Option<i64>,
    pub favourite: Option<bool>,
    /// Taken (or, without EXIF date, uploaded) on or after this date, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// … and on or before this date.
    pub to: Option<String>,
    /// List the trash instead of the album.
    #[serde(default)]
    pub trashed: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PhotoPage {
    pub photos: Vec<PhotoInfo>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<i64>,
}

fn check_date(value: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| Error::BadRequest(format!("date {value:?}: expected YYYY-MM-DD")))
}

/// The newest first, `limit` at a time, keyset-paginated on the id.
pub fn list_photos(c: &Connection, user_id: i64, query: &ListQuery) -> Result<PhotoPage> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::BadRequest("limit must be 1 to 500".into()));
    }
    let trash = if query.trashed {
        "p.trashed IS NOT NULL"
    } else {
        "p.trashed IS NULL"
    };
    let mut conditions = vec!["p.user_id = ?".to_owned(), trash.to_owned()];
    let mut values: Vec<Box<dyn ToSql>> = vec![Box::new(user_id)];
    let mut add = |condition: &str, value: Box<dyn ToSql>| {
        conditions.push(condition.to_owned());
        values.push(value);
    };
    if let Some(before) = query.before {
        add("p.id < ?", Box::new(before));
    }
    if let Some(album) = query.album {
        add(
            "p.id IN (SELECT ap.photo_id FROM album_photos ap JOIN albums a ON a.id = ap.album_id
             WHERE ap.album_id = ? AND a.user_id = p.user_id)",
            Box::new(album),
        );
    }
    if let Some(category) = &query.category {
        add("p.category = ?", Box::new(category.clone()));
    }
    if let Some(person) = query.person {
        add(
            "p.id IN (SELECT f.photo_id FROM faces f WHERE f.person_id = ? AND f.user_id = p.user_id)",
            Box::new(person),
        );
    }
    if let Some(place) = query.place {
        add("p.place_id = ?", Box::new(place));
    }
    if let Some(favourite) = query.favourite {
        add("p.favourite = ?", Box::new(favourite));
    }
    let day = "substr(COALESCE(p.taken_at, datetime(p.uploaded, 'unixepoch')), 1, 10)";
    if let Some(from) = &query.from {
        add(&format!("{day} >= ?"), Box::new(check_date(from)?));
    }
    if let Some(to) = &query.to {
        add(&format!("{day} <= ?"), Box::new(check_date(to)?));
    }
    let sql = format!(
        "SELECT {PHOTO_COLUMNS} FROM photos p WHERE {} ORDER BY p.id DESC LIMIT {}",
        conditions.join(" AND "),
        limit + 1
    );
    let mut statement = c.prepare(&sql)?;
    let mut photos = statement
        .query_map(params_from_iter(values.iter()), photo_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next = if photos.len() as i64 > limit {
        photos.truncate(limit as usize);
        photos.last().map(|p| p.id)
    } else {
        None
    };
    Ok(PhotoPage { photos, next })
}

/// `GET /api/photos`.
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<PhotoPage>> {
    let page = state
        .db
        .run(move |c| list_photos(c, user.id, &query))
        .await?;
    Ok(Json(page))
}

/// `GET /api/photos/{id}`.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<PhotoInfo>> {
    Ok(Json(state.db.run(move |c| photo_of(c, user.id, id)).await?))
}

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

/// Which rendition of a photo to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    Original,
    Thumbnail,
    Preview,
}

fn image_response(bytes: Vec<u8>, mime: &str, sha256: &str, name: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(name) = name {
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{ascii}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

/// The rendition's bytes; a thumbnail or preview not made yet by its job is made now.
pub fn rendition_bytes(
    state: &AppState,
    user_id: i64,
    id: i64,
    rendition: Rendition,
) -> Result<(Vec<u8>, String, String, String)> {
    let c = state.db.connection()?;
    let photo = photo_of(&c, user_id, id)?;
    drop(c);
    let sha256 = match rendition {
        Rendition::Original => photo.sha256.clone(),
        Rendition::Thumbnail | Rendition::Preview => {
            let (thumbnail, preview) = jobs::ensure_renditions(state, id, Patience::Request)?;
            if rendition == Rendition::Thumbnail {
                thumbnail
            } else {
                preview
            }
        }
    };
    let mime = if rendition == Rendition::Original {
        photo.mime
    } else {
        "image/jpeg".to_owned()
    };
    Ok((state.blobs.read(&sha256)?, mime, sha256, photo.name))
}

async fn send_rendition(
    state: AppState,
    user: CurrentUser,
    id: i64,
    rendition: Rendition,
) -> Result<Response> {
    let (bytes, mime, sha256, name) =
        tokio::task::spawn_blocking(move || rendition_bytes(&state, user.id, id, rendition))
            .await??;
    let name = (rendition == Rendition::Original).then_some(name.as_str());
    Ok(image_response(bytes, &mime, &sha256, name))
}

/// `GET /api/photos/{id}/original`.
pub async fn original(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    send_rendition(state, user, id, Rendition::Original).await
}

/// `GET /api/photos/{id}/thumbnail`.
pub async fn thumbnail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    send_rendition(state, user, id, Rendition::Thumbnail).await
}

/// `GET /api/photos/{id}/preview`.
pub async fn preview(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    send_rendition(state, user, id, Rendition::Preview).await
}

/// `GET /api/photos/zip?ids=1,2,3`.
#[derive(Debug, Deserialize)]
pub struct ZipQuery {
    pub ids: String,
}

/// Most photos in one zip download.
pub const MAX_ZIP_PHOTOS: usize = 1000;

fn parse_ids(text: &str) -> Result<Vec<i64>> {
    let ids = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| Error::BadRequest(format!("photo id {s:?} is not a number")))
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.is_empty() {
        return Err(Error::BadRequest(
            "ids: give one or more photo ids, comma-separated".into(),
        ));
    }
    if ids.len() > MAX_ZIP_PHOTOS {
        return Err(Error::TooLarge(format!(
            "{} photos: a zip holds at most {MAX_ZIP_PHOTOS}",
            ids.len()
        )));
    }
    Ok(ids)
}

/// Writes the photos' originals into `zip`, each as `<id>-<name>`, read from disk in
/// pieces.
fn write_originals(state: &AppState, zip: &mut ZipOut, photos: Vec<PhotoInfo>) -> Result<()> {
    let mut names = HashSet::new();
    for photo in photos {
        let name = format!("{}-{}", photo.id, photo.name);
        if !names.insert(name.clone()) {
            continue; // the same id twice
        }
        let path = state.blobs.path(&photo.sha256)?;
        let mut file = std::fs::File::open(&path)
            .map_err(|e| Error::internal(&format!("opening {}", path.display()), e))?;
        zipstream::add_entry(zip, &name, &mut file)?;
    }
    Ok(())
}

/// `GET /api/photos/zip?ids=…`: every id checked first (someone else's is "not found"),
/// then the zip streamed as it is written.
pub async fn zip(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ZipQuery>,
) -> Result<Response> {
    let ids = parse_ids(&query.ids)?;
    let photos = state
        .db
        .run(move |c| {
            ids.iter()
                .map(|&id| photo_of(c, user.id, id))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    Ok(zipstream::streamed_zip(
        "attachment; filename=\"photos.zip\"",
        move |zip| write_originals(&state, zip, photos),
    ))
}

// ---------------------------------------------------------------------------------------
// Favourites and the trash
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct PhotoPatch {
    pub favourite: Option<bool>,
    pub name: Option<String>,
}

/// `PATCH /api/photos/{id}`: favourite / unfavourite, rename.
pub async fn patch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<PhotoPatch>,
) -> Result<Json<PhotoInfo>> {
    if let Some(name) = &body.name {
        ingest::check_file_name(name)?;
    }
    let photo = state
        .db
        .run(move |c| {
            photo_of(c, user.id, id)?;
            if let Some(favourite) = body.favourite {
                c.execute(
                    "UPDATE photos SET favourite = ?1 WHERE id = ?2",
                    params![favourite, id],
                )?;
            }
            if let Some(name) = body.name {
                c.execute(
                    "UPDATE photos SET name = ?1 WHERE id = ?2",
                    params![name, id],
                )?;
            }
            photo_of(c, user.id, id)
        })
        .await?;
    Ok(Json(photo))
}

/// `DELETE /api/photos/{id}`: to the trash (again is fine).
pub async fn trash(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    state
        .db
        .run(move |c| {
            photo_of(c, user.id, id)?;
            c.execute(
                "UPDATE photos SET trashed = ?1 WHERE id = ?2 AND trashed IS NULL",
                params![now(), id],
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/photos/{id}/restore`: back from the trash.
pub async fn restore(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<PhotoInfo>> {
    let photo = state
        .db
        .run(move |c| {
            photo_of(c, user.id, id)?;
            c.execute(
                "UPDATE photos SET trashed = NULL WHERE id = ?1",
                params![id],
            )?;
            photo_of(c, user.id, id)
        })
        .await?;
    Ok(Json(photo))
}

/// `GET /api/trash`: the trash, newest first (same paging as `/api/photos`).
pub async fn list_trash(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(mut query): Query<ListQuery>,
) -> Result<Json<PhotoPage>> {
    query.trashed = true;
    let page = state
        .db
        .run(move |c| list_photos(c, user.id, &query))
        .await?;
    Ok(Json(page))
}

/// Deletes photos for good: rows (faces, album entries and jobs go with them), then
/// every blob no remaining row refers to. Returns how many photos went.
pub fn purge(state: &AppState, photo_ids: &[i64]) -> Result<usize> {
    let mut c = state.db.connection()?;
    let _guard = state.blob_purger();
    let transaction = db::write_transaction(&mut c)?;
    let mut blobs = Vec::new();
    let mut purged = 0;
    for &id in photo_ids {
        let row: Option<(String, Option<String>, Option<String>)> = transaction
            .query_row(
                "SELECT sha256, thumbnail_sha256, preview_sha256 FROM photos WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        if let Some((original, thumbnail, preview)) = row {
            let mut faces =
                transaction.prepare("SELECT thumbnail_sha256 FROM faces WHERE photo_id = ?1")?;
            let face_thumbnails = faces
                .query_map([id], |r| r.get::<_, Option<String>>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(faces);
            blobs.extend(face_thumbnails.into_iter().flatten());
            purged += transaction.execute("DELETE FROM photos WHERE id = ?1", [id])?;
            blobs.push(original);
            blobs.extend(thumbnail);
            blobs.extend(preview);
        }
    }
    transaction.commit()?;
    remove_unused_blobs(state, &c, blobs)?;
    Ok(purged)
}

/// Deletes those of `blobs` no row uses any more (an original, a rendition or a face
/// thumbnail). The caller holds [`AppState::blob_purger`], so no writer is between
/// storing a blob and committing the row that uses it.
pub fn remove_unused_blobs(
    state: &AppState,
    c: &Connection,
    blobs: impl IntoIterator<Item = String>,
) -> Result<()> {
    for sha256 in blobs {
        let still_used: bool = c.query_row(
            "SELECT EXISTS (SELECT 1 FROM photos WHERE sha256 = ?1 OR thumbnail_sha256 = ?1
                 OR preview_sha256 = ?1)
             OR EXISTS (SELECT 1 FROM faces WHERE thumbnail_sha256 = ?1)",
            [&sha256],
            |r| r.get(0),
        )?;
        if !still_used {
            state.blobs.remove(&sha256)?;
        }
    }
    Ok(())
}

fn trashed_ids(c: &Connection, user_id: i64, only: Option<i64>) -> Result<Vec<i64>> {
    let mut statement = c.prepare(
        "SELECT id FROM photos WHERE user_id = ?1 AND trashed IS NOT NULL
         AND (?2 IS NULL OR id = ?2)",
    )?;
    let ids = statement
        .query_map(params![user_id, only], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Purged {
    pub purged: usize,
}

/// `DELETE /api/trash/{id}`: deletes one trashed photo for good (a photo not in the
/// trash must go there first: 409).
pub async fn purge_one(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Purged>> {
    let purged = tokio::task::spawn_blocking(move || {
        let c = state.db.connection()?;
        let photo = photo_of(&c, user.id, id)?;
        if photo.trashed.is_none() {
            return Err(Error::Conflict(
                "move the photo to the trash before purging it".into(),
            ));
        }
        let ids = trashed_ids(&c, user.id, Some(id))?;
        drop(c);
        purge(&state, &ids)
    })
    .await??;
    Ok(Json(Purged { purged }))
}

/// `DELETE /api/trash`: empties the trash.
pub async fn empty_trash(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Purged>> {
    let purged = tokio::task::spawn_blocking(move || {
        let ids = trashed_ids(&*state.db.connection()?, user.id, None)?;
        purge(&state, &ids)
    })
    .await??;
    Ok(Json(Purged { purged }))
}

/// Purges every photo that has been in the trash longer than `trash_days`.
pub fn purge_expired(state: &AppState) -> Result<usize> {
    let cutoff = now() - state.config.trash_days * 86_400;
    let ids = {
        let c = state.db.connection()?;
        let mut statement =
            c.prepare("SELECT id FROM photos WHERE trashed IS NOT NULL AND trashed <= ?1")?;
        statement
            .query_map([cutoff], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?
    };
    purge(state, &ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_ids_are_parsed_and_bounded() {
        assert_eq!(parse_ids("1, 2,3,").unwrap(), vec![1, 2, 3]);
        assert!(matches!(parse_ids(""), Err(Error::BadRequest(_))));
        assert!(matches!(parse_ids("1,x"), Err(Error::BadRequest(_))));
        let many = vec!["1"; MAX_ZIP_PHOTOS + 1].join(",");
        assert!(matches!(parse_ids(&many), Err(Error::TooLarge(_))));
    }

    #[test]
    fn dates_must_be_calendar_days() {
        assert_eq!(check_date("2024-02-29").unwrap(), "2024-02-29");
        assert!(check_date("2023-02-29").is_err());
        assert!(check_date("yesterday").is_err());
    }
}
