//! Albums the user makes: create, rename, delete, add and remove photos, cover photo.
//! An album's photos are listed with `GET /api/photos?album=ID`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::db::{self, now};
use crate::error::{Error, Result};
use crate::ingest::is_unsafe_in_name;
use crate::photos::photo_of;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Album {
    pub id: i64,
    pub name: String,
    /// The chosen cover, else the newest photo, if any.
    pub cover_photo_id: Option<i64>,
    /// Photos in it that are not in the trash.
    pub photos: i64,
    pub created: i64,
}

const ALBUM_COLUMNS: &str = "a.id, a.name,
    COALESCE(a.cover_photo_id, (SELECT MAX(ap.photo_id) FROM album_photos ap
        JOIN photos p ON p.id = ap.photo_id WHERE ap.album_id = a.id AND p.trashed IS NULL)),
    (SELECT COUNT(*) FROM album_photos ap JOIN photos p ON p.id = ap.photo_id
        WHERE ap.album_id = a.id AND p.trashed IS NULL),
    a.created";

fn album_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Album> {
    Ok(Album {
        id: r.get(0)?,
        name: r.get(1)?,
        cover_photo_id: r.get(2)?,
        photos: r.get(3)?,
        created: r.get(4)?,
    })
}

pub fn album_of(c: &Connection, user_id: i64, id: i64) -> Result<Album> {
    c.query_row(
        &format!("SELECT {ALBUM_COLUMNS} FROM albums a WHERE a.id = ?1 AND a.user_id = ?2"),
        params![id, user_id],
        album_from_row,
    )
    .optional()?
    .ok_or(Error::NotFound("album"))
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(is_unsafe_in_name) {
        return Err(Error::BadRequest(
            "an album name is 1–200 characters, no control or text-direction characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// `GET /api/albums`.
pub async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<Album>>> {
    let albums = state
        .db
        .run(move |c| {
            let mut statement = c.prepare(&format!(
                "SELECT {ALBUM_COLUMNS} FROM albums a WHERE a.user_id = ?1 ORDER BY a.name, a.id"
            ))?;
            let albums = statement
                .query_map([user.id], album_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(albums)
        })
        .await?;
    Ok(Json(albums))
}

#[derive(Debug, Deserialize)]
pub struct NewAlbum {
    pub name: String,
}

/// `POST /api/albums`.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(body): Json<NewAlbum>,
) -> Result<(StatusCode, Json<Album>)> {
    let name = check_name(&body.name)?;
    let album = state
        .db
        .run(move |c| {
            c.execute(
                "INSERT INTO albums (user_id, name, created) VALUES (?1, ?2, ?3)",
                params![user.id, name, now()],
            )?;
            album_of(c, user.id, c.last_insert_rowid())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(album)))
}

/// `GET /api/albums/{id}`.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Album>> {
    Ok(Json(state.db.run(move |c| album_of(c, user.id, id)).await?))
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

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        Option::<i64>::deserialize(d).map(Some)
    }
}

/// `PATCH /api/albums/{id}`: rename, set or clear the cover.
pub async fn patch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<AlbumPatch>,
) -> Result<Json<Album>> {
    let name = body.name.as_deref().map(check_name).transpose()?;
    let album = state
        .db
        .run(move |c| {
            album_of(c, user.id, id)?;
            if let Some(name) = name {
                c.execute("UPDATE albums SET name = ?1 WHERE id = ?2", params![name, id])?;
            }
            if let Some(cover) = body.cover_photo_id {
                if let Some(photo) = cover {
                    let inside: bool = c.query_row(
                        "SELECT EXISTS (SELECT 1 FROM album_photos WHERE album_id = ?1 AND photo_id = ?2)",
                        params![id, photo],
                        |r| r.get(0),
                    )?;
                    if !inside {
                        return Err(Error::BadRequest("the cover must be a photo in the album".into()));
                    }
                }
                c.execute(
                    "UPDATE albums SET cover_photo_id = ?1 WHERE id = ?2",
                    params![cover, id],
                )?;
            }
            album_of(c, user.id, id)
        })
        .await?;
    Ok(Json(album))
}

/// `DELETE /api/albums/{id}`: the album goes; its photos stay.
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode> {
    state
        .db
        .run(move |c| {
            album_of(c, user.id, id)?;
            c.execute("DELETE FROM albums WHERE id = ?1", [id])?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct PhotoIds {
    pub photo_ids: Vec<i64>,
}

/// `POST /api/albums/{id}/photos`: adds the user's photos (already there is fine).
pub async fn add_photos(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<PhotoIds>,
) -> Result<Json<Album>> {
    let album = state
        .db
        .run(move |c| {
            album_of(c, user.id, id)?;
            let t = db::write_transaction(c)?;
            for &photo in &body.photo_ids {
                photo_of(&t, user.id, photo)?;
                t.execute(
                    "INSERT OR IGNORE INTO album_photos (album_id, photo_id, added) VALUES (?1, ?2, ?3)",
                    params![id, photo, now()],
                )?;
            }
            t.commit()?;
            album_of(c, user.id, id)
        })
        .await?;
    Ok(Json(album))
}

/// `DELETE /api/albums/{id}/photos/{photo_id}`: takes a photo out (the photo stays).
pub async fn remove_photo(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, photo)): Path<(i64, i64)>,
) -> Result<Json<Album>> {
    let album = state
        .db
        .run(move |c| {
            album_of(c, user.id, id)?;
            photo_of(c, user.id, photo)?;
            c.execute(
                "DELETE FROM album_photos WHERE album_id = ?1 AND photo_id = ?2",
                params![id, photo],
            )?;
            c.execute(
                "UPDATE albums SET cover_photo_id = NULL WHERE id = ?1 AND cover_photo_id = ?2",
                params![id, photo],
            )?;
            album_of(c, user.id, id)
        })
        .await?;
    Ok(Json(album))
}
