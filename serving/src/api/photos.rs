//! `/api/photos` and `/api/trash`: the handlers over [`crate::service::photos`].
//!
//! The upload reads each file part chunk by chunk with the per-file and per-request
//! limits enforced while streaming, holding the bytes from the memory budget as they
//! arrive; the service then checks and stores each file.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::budget::{BudgetError, Reservation};
use crate::error::{Error, Result};
use crate::ingest;
use crate::repo::photos::{PhotoFilter, PhotoInfo};
use crate::service::photos::{
    Arrived, MonthCount, PhotoChange, PhotoDetail, PhotoPage, Photos, Rendition, RenditionBytes,
    UploadReport, UploadStatus,
};
use crate::zipstream;

pub(crate) fn multipart_error(e: MultipartError) -> Error {
    if is_body_timeout(&e) {
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

/// Whether a body error is the idle time-out of `tower_http`'s `RequestBodyTimeoutLayer`, however
/// deeply the extractor wrapped it.
fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Reads every file part, chunk by chunk. A file over the per-file limit or with a
/// hostile name is refused on its own (its bytes are read past, never kept); a request
/// that is malformed, over the request limit or has too many files is refused whole.
/// The bytes kept are held from the memory budget as they arrive (returned with them):
/// when other uploads and decodes hold it all, the request is answered 503 at once.
async fn read_files(
    multipart: &mut Multipart,
    photos: &Photos,
) -> Result<(Vec<Arrived>, Reservation)> {
    let config = &photos.config;
    let over_budget = |e: BudgetError| e.into_error("the upload");
    let mut held = photos.decoding.budget.try_reserve(0).map_err(over_budget)?;
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
        files.push(Arrived { name, bytes });
    }
    Ok((files, held))
}

/// `POST /api/photos`: multipart upload of one or more files (any field name). 201 when
/// at least one file was stored, else 200; each file's outcome is in the report.
pub(crate) async fn upload(
    State(photos): State<Photos>,
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
    let (files, _bodies) = read_files(&mut multipart, &photos).await?;
    let results = photos.upload(user.id, files).await?;
    let status = if results.iter().any(|r| r.status == UploadStatus::Stored) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(UploadReport { results })))
}

/// `GET /api/photos`.
pub(crate) async fn list(
    State(photos): State<Photos>,
    user: CurrentUser,
    Query(filter): Query<PhotoFilter>,
) -> Result<Json<PhotoPage>> {
    Ok(Json(photos.list(user.id, filter).await?))
}

/// `GET /api/photos/months`: the months the listing's photos were taken in, with counts.
pub(crate) async fn months(
    State(photos): State<Photos>,
    user: CurrentUser,
    Query(filter): Query<PhotoFilter>,
) -> Result<Json<Vec<MonthCount>>> {
    Ok(Json(photos.months(user.id, filter).await?))
}

/// `GET /api/photos/{id}`: the photo and the people in it.
pub(crate) async fn get(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<PhotoDetail>> {
    Ok(Json(photos.detail(user.id, id).await?))
}

fn image_response(file: RenditionBytes, with_name: bool) -> Response {
    let mut response = Response::new(Body::from(file.bytes));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&file.mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
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
    if with_name {
        let ascii: String = file
            .name
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

async fn send_rendition(
    photos: Photos,
    user: CurrentUser,
    id: i64,
    rendition: Rendition,
) -> Result<Response> {
    let file = photos.rendition(user.id, id, rendition).await?;
    Ok(image_response(file, rendition == Rendition::Original))
}

/// `GET /api/photos/{id}/original`.
pub(crate) async fn original(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    send_rendition(photos, user, id, Rendition::Original).await
}

/// `GET /api/photos/{id}/thumbnail`.
pub(crate) async fn thumbnail(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    send_rendition(photos, user, id, Rendition::Thumbnail).await
}

/// `GET /api/photos/{id}/preview`.
pub(crate) async fn preview(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    send_rendition(photos, user, id, Rendition::Preview).await
}

/// `GET /api/photos/zip?ids=1,2,3`.
#[derive(Debug, Deserialize)]
pub struct ZipQuery {
    pub ids: String,
}

fn parse_ids(text: &str) -> Result<Vec<i64>> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| Error::BadRequest(format!("photo id {s:?} is not a number")))
        })
        .collect()
}

/// `GET /api/photos/zip?ids=…`: every id checked first (someone else's is "not found"),
/// then the zip streamed as it is written.
pub(crate) async fn zip(
    State(photos): State<Photos>,
    user: CurrentUser,
    Query(query): Query<ZipQuery>,
) -> Result<Response> {
    let chosen = photos.for_zip(user.id, parse_ids(&query.ids)?).await?;
    Ok(zipstream::streamed_zip(
        "attachment; filename=\"photos.zip\"",
        move |zip| photos.write_originals(zip, chosen),
    ))
}

/// `PATCH /api/photos/{id}`: favourite / unfavourite, rename.
pub(crate) async fn patch(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(change): Json<PhotoChange>,
) -> Result<Json<PhotoInfo>> {
    Ok(Json(photos.change(user.id, id, change).await?))
}

/// `DELETE /api/photos/{id}`: to the trash (again is fine).
pub(crate) async fn trash(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    photos.trash(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/photos/{id}/restore`: back from the trash.
pub(crate) async fn restore(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<PhotoInfo>> {
    Ok(Json(photos.restore(user.id, id).await?))
}

/// `GET /api/trash`: the trash, newest first (same paging as `/api/photos`).
pub(crate) async fn list_trash(
    State(photos): State<Photos>,
    user: CurrentUser,
    Query(mut filter): Query<PhotoFilter>,
) -> Result<Json<PhotoPage>> {
    filter.trashed = true;
    Ok(Json(photos.list(user.id, filter).await?))
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Purged {
    pub purged: usize,
}

/// `DELETE /api/trash/{id}`: deletes one trashed photo for good (a photo not in the
/// trash must go there first: 409).
pub(crate) async fn purge_one(
    State(photos): State<Photos>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Purged>> {
    let purged = photos.purge_one(user.id, id).await?;
    Ok(Json(Purged { purged }))
}

/// `DELETE /api/trash`: empties the trash.
pub(crate) async fn empty_trash(
    State(photos): State<Photos>,
    user: CurrentUser,
) -> Result<Json<Purged>> {
    let purged = photos.empty_trash(user.id).await?;
    Ok(Json(Purged { purged }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_ids_are_parsed() {
        assert_eq!(parse_ids("1, 2,3,").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_ids("").unwrap(), Vec::<i64>::new());
        assert!(matches!(parse_ids("1,x"), Err(Error::BadRequest(_))));
    }
}
