//! Animated GIFs made from the user's chosen photos, saved as a new item of kind `gif`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::photos::{PhotoInfo, insert_photo, photo_of, upright_image};
use crate::{ingest, media};

#[derive(Debug, Deserialize)]
pub struct GifRequest {
    /// The frames, in order (2 to 100 of the user's photos).
    pub photo_ids: Vec<i64>,
    /// How long each frame shows, 20–10,000 ms (default 500).
    pub delay_ms: Option<u32>,
    /// The square canvas side, 16–1024 px (default 320).
    pub size: Option<u32>,
    /// The new item's name (default `animation.gif`).
    pub name: Option<String>,
}

/// Builds the GIF and stores it like an upload (blob, row, thumbnail job).
pub fn make_gif(state: &AppState, user_id: i64, request: GifRequest) -> Result<PhotoInfo> {
    if !(2..=100).contains(&request.photo_ids.len()) {
        return Err(Error::BadRequest("a GIF needs 2 to 100 photos".into()));
    }
    let size = request.size.unwrap_or(320);
    if !(16..=1024).contains(&size) {
        return Err(Error::BadRequest("size must be 16 to 1024 px".into()));
    }
    let delay_ms = request.delay_ms.unwrap_or(500);
    let name = request.name.unwrap_or_else(|| "animation.gif".to_owned());
    ingest::check_file_name(&name)?;
    let mut c = state.db.connection()?;
    let mut frames = Vec::with_capacity(request.photo_ids.len());
    for &id in &request.photo_ids {
        photo_of(&c, user_id, id)?;
        frames.push(upright_image(state, id)?.ok_or(Error::NotFound("photo"))?);
    }
    let bytes = media::animated_gif(&frames, size, delay_ms)
        .map_err(|e| Error::BadRequest(format!("cannot make the GIF: {e}")))?;
    let file = ingest::inspect(name, bytes, state.config.max_pixels)?;
    let id = match c.query_row(
        "SELECT id FROM photos WHERE user_id = ?1 AND sha256 = ?2",
        rusqlite::params![user_id, file.sha256],
        |r| r.get::<_, i64>(0),
    ) {
        Ok(existing) => existing, // the same frames, delay and size were made before
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            insert_photo(state, &mut c, user_id, &file, "gif")?
        }
        Err(e) => return Err(e.into()),
    };
    photo_of(&c, user_id, id)
}

/// `POST /api/gifs`.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(request): Json<GifRequest>,
) -> Result<(StatusCode, Json<PhotoInfo>)> {
    let worker_state = state.clone();
    let photo =
        tokio::task::spawn_blocking(move || make_gif(&worker_state, user.id, request)).await??;
    state.jobs.wake();
    Ok((StatusCode::CREATED, Json(photo)))
}
