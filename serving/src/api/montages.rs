//! `/api/montages`: the handlers over [`crate::service::montages`].

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::photos::multipart_error;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::repo::montages::MusicRow;
use crate::service::montages::{MontageInfo, MontageRequest, Montages, RebuildRequest};

/// `POST /api/montages`: the render queued (202); `GET /api/montages/{id}` follows it.
pub(crate) async fn create(
    State(montages): State<Montages>,
    user: CurrentUser,
    Json(request): Json<MontageRequest>,
) -> Result<(StatusCode, Json<MontageInfo>)> {
    let montage = montages.create(user.id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(montage)))
}

/// `GET /api/montages`: the newest 100, newest first.
pub(crate) async fn list(
    State(montages): State<Montages>,
    user: CurrentUser,
) -> Result<Json<Vec<MontageInfo>>> {
    Ok(Json(montages.list(user.id).await?))
}

/// `GET /api/montages/{id}`: its state, progress and, once rendered, its video item.
pub(crate) async fn get(
    State(montages): State<Montages>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<MontageInfo>> {
    Ok(Json(montages.get(user.id, id).await?))
}

/// `POST /api/montages/{id}/rebuild`: a new montage with the same settings and the
/// photos given (some removed, or reordered); 202.
pub(crate) async fn rebuild(
    State(montages): State<Montages>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(request): Json<RebuildRequest>,
) -> Result<(StatusCode, Json<MontageInfo>)> {
    let montage = montages.rebuild(user.id, id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(montage)))
}

/// `POST /api/music`: one audio file as multipart/form-data (its first file field),
/// kept for montages once ffprobe finds sound in it; 201 with its id and length.
pub(crate) async fn add_music(
    State(montages): State<Montages>,
    user: CurrentUser,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<MusicRow>)> {
    let mut multipart = multipart.map_err(|e| {
        Error::BadRequest(format!(
            "send the music as multipart/form-data ({})",
            e.body_text()
        ))
    })?;
    let limit = montages.photos.config.max_file_bytes;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let Some(name) = field.file_name().map(str::to_owned) else {
            continue; // a plain form field
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > limit {
                return Err(Error::TooLarge(format!(
                    "{name:?} is over the {} MiB per-file limit",
                    limit >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let music = montages.add_music(user.id, &name, bytes).await?;
        return Ok((StatusCode::CREATED, Json(music)));
    }
    Err(Error::BadRequest("the request holds no file".into()))
}

/// `GET /api/music`: the user's music, newest first.
pub(crate) async fn music(
    State(montages): State<Montages>,
    user: CurrentUser,
) -> Result<Json<Vec<MusicRow>>> {
    Ok(Json(montages.music(user.id).await?))
}
