//! `/api/albums`: the handlers over [`crate::service::albums`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::repo::albums::Album;
use crate::service::albums::{AlbumChange, Albums};

/// `GET /api/albums`.
pub(crate) async fn list(
    State(albums): State<Albums>,
    user: CurrentUser,
) -> Result<Json<Vec<Album>>> {
    Ok(Json(albums.list(user.id).await?))
}

#[derive(Debug, Deserialize)]
pub struct NewAlbum {
    pub name: String,
}

/// `POST /api/albums`.
pub(crate) async fn create(
    State(albums): State<Albums>,
    user: CurrentUser,
    Json(body): Json<NewAlbum>,
) -> Result<(StatusCode, Json<Album>)> {
    let album = albums.create(user.id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(album)))
}

/// `GET /api/albums/{id}`.
pub(crate) async fn get(
    State(albums): State<Albums>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Album>> {
    Ok(Json(albums.get(user.id, id).await?))
}

#[derive(Debug, Deserialize)]
pub struct AlbumPatch {
    pub name: Option<String>,
    /// A photo in the album; null goes back to the newest photo.
    #[serde(default, with = "double_option")]
    pub cover_photo_id: Option<Option<i64>>,
}

/// Tells a missing field (leave alone) from an explicit null (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<i64>>, D::Error> {
        Option::<i64>::deserialize(d).map(Some)
    }
}

/// `PATCH /api/albums/{id}`: rename, set or clear the cover.
pub(crate) async fn patch(
    State(albums): State<Albums>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<AlbumPatch>,
) -> Result<Json<Album>> {
    let change = AlbumChange {
        name: body.name,
        cover_photo_id: body.cover_photo_id,
    };
    Ok(Json(albums.change(user.id, id, change).await?))
}

/// `DELETE /api/albums/{id}`: the album goes; its photos stay.
pub(crate) async fn delete(
    State(albums): State<Albums>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    albums.delete(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct PhotoIds {
    pub photo_ids: Vec<i64>,
}

/// `POST /api/albums/{id}/photos`: adds the user's photos (already there is fine).
pub(crate) async fn add_photos(
    State(albums): State<Albums>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<PhotoIds>,
) -> Result<Json<Album>> {
    Ok(Json(albums.add_photos(user.id, id, body.photo_ids).await?))
}

/// `DELETE /api/albums/{id}/photos/{photo_id}`: takes a photo out (the photo stays).
pub(crate) async fn remove_photo(
    State(albums): State<Albums>,
    user: CurrentUser,
    Path((id, photo)): Path<(i64, i64)>,
) -> Result<Json<Album>> {
    Ok(Json(albums.remove_photo(user.id, id, photo).await?))
}
