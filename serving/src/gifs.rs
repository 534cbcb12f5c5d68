//! Animated GIFs made from the user's chosen photos, saved as a new item of kind `gif`.
//!
//! Built to be cheap to ask for: every parameter is checked before any photo is read;
//! the database connection is held only for the queries, not while decoding; each
//! frame is decoded from the photo's 1280 px preview when it has one (the canvas is at
//! most 1024 px), fitted to the canvas and encoded before the next is decoded; a photo
//! named several times is decoded once (its canvas kept until its last use).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::OptionalExtension;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::media::{self, AnimatedGif};
use crate::photos::{PhotoInfo, insert_photo, photo_of, photo_with_bytes};
use crate::{ingest, media::MediaError};

#[derive(Debug, Deserialize)]
pub struct GifRequest {
    /// The frames, in order (2 to 100 of the user's photos; one may appear more than once).
    pub photo_ids: Vec<i64>,
    /// How long each frame shows, 20–10,000 ms (default 500).
    pub delay_ms: Option<u32>,
    /// The square canvas side, 16–1024 px (default 320).
    pub size: Option<u32>,
    /// The new item's name (default `animation.gif`).
    pub name: Option<String>,
}

/// A request whose every parameter has been checked.
struct Checked {
    photo_ids: Vec<i64>,
    size: u32,
    delay_ms: u32,
    name: String,
}

fn check(request: GifRequest) -> Result<Checked> {
    if !(2..=media::GIF_MAX_FRAMES).contains(&request.photo_ids.len()) {
        return Err(Error::BadRequest("a GIF needs 2 to 100 photos".into()));
    }
    let size = request.size.unwrap_or(320);
    if !(16..=media::GIF_MAX_SIZE).contains(&size) {
        return Err(Error::BadRequest("size must be 16 to 1024 px".into()));
    }
    let delay_ms = request.delay_ms.unwrap_or(500);
    media::check_gif_parameters(request.photo_ids.len(), size, delay_ms).map_err(refused)?;
    let name = request.name.unwrap_or_else(|| "animation.gif".to_owned());
    ingest::check_file_name(&name)?;
    Ok(Checked {
        photo_ids: request.photo_ids,
        size,
        delay_ms,
        name,
    })
}

fn refused(error: MediaError) -> Error {
    Error::BadRequest(format!("cannot make the GIF: {error}"))
}

/// Where a frame's pixels come from: a blob, and the EXIF orientation to apply to it.
struct FrameSource {
    sha256: String,
    orientation: u16,
}

/// Each distinct photo's source, after checking the user owns it: the preview (already
/// upright) when it has been made and is stored, else the original.
fn frame_sources(
    state: &AppState,
    user_id: i64,
    photo_ids: &[i64],
) -> Result<HashMap<i64, FrameSource>> {
    let c = state.db.connection()?;
    let mut sources = HashMap::new();
    for &id in photo_ids {
        if sources.contains_key(&id) {
            continue;
        }
        photo_of(&c, user_id, id)?;
        let (original, preview, orientation): (String, Option<String>, u16) = c
            .query_row(
                "SELECT sha256, preview_sha256, orientation FROM photos WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or(Error::NotFound("photo"))?;
        let source = match preview {
            Some(preview) if state.blobs.contains(&preview)? => FrameSource {
                sha256: preview,
                orientation: 1,
            },
            _ => FrameSource {
                sha256: original,
                orientation,
            },
        };
        sources.insert(id, source);
    }
    Ok(sources)
}

/// Decodes, fits and encodes the frames one at a time.
fn render(
    state: &AppState,
    request: &Checked,
    sources: &HashMap<i64, FrameSource>,
) -> Result<Vec<u8>> {
    let last_use: HashMap<i64, usize> = request
        .photo_ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i))
        .collect();
    let mut kept: HashMap<i64, image::RgbaImage> = HashMap::new();
    let mut bytes = Vec::new();
    {
        let (count, size) = (request.photo_ids.len(), request.size);
        let mut gif =
            AnimatedGif::new(&mut bytes, count, size, request.delay_ms).map_err(refused)?;
        for (i, id) in request.photo_ids.iter().enumerate() {
            let frame = match kept.remove(id) {
                Some(frame) => frame,
                None => {
                    let source = sources.get(id).ok_or(Error::NotFound("photo"))?;
                    let image = ingest::decode_upright(
                        &state.blobs.read(&source.sha256)?,
                        source.orientation,
                    )?;
                    media::gif_frame(&image, size).map_err(refused)?
                } // the decoded photo is dropped here: one at a time
            };
            if last_use[id] > i {
                kept.insert(*id, frame.clone());
            }
            gif.push(frame).map_err(refused)?;
        }
    } // the encoder writes the GIF trailer when dropped
    Ok(bytes)
}

/// Builds the GIF and stores it like an upload (blob, row, thumbnail job). The same
/// frames, delay and size asked for again (even at the same moment) give the same item.
pub fn make_gif(state: &AppState, user_id: i64, request: GifRequest) -> Result<PhotoInfo> {
    let request = check(request)?;
    let sources = frame_sources(state, user_id, &request.photo_ids)?;
    let bytes = render(state, &request, &sources)?;
    let file = ingest::inspect(request.name, bytes, state.config.max_pixels)?;
    let mut c = state.db.connection()?;
    if let Some(existing) = photo_with_bytes(&c, user_id, &file.sha256)? {
        return photo_of(&c, user_id, existing);
    }
    let id = match insert_photo(state, &mut c, user_id, &file, "gif") {
        Ok(id) => id,
        // a concurrent identical request stored it between the check and the insert
        Err(error) => photo_with_bytes(&c, user_id, &file.sha256)?.ok_or(error)?,
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
