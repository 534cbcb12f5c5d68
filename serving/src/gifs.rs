//! Animated GIFs made from the user's chosen photos, saved as a new item of kind `gif`.
//!
//! Built to be cheap to ask for: every parameter is checked before any photo is read;
//! the database connection is held only for the queries, not while decoding; each
//! frame is decoded from the photo's 1280 px preview when it has one (the canvas is at
//! most 1024 px), fitted to the canvas and encoded before the next is decoded; a photo
//! named several times is decoded once (its canvas kept until its last use).
//!
//! And bounded: at most [`crate::config::ServeConfig::gif_builds`] run at once (503
//! beyond, after a short wait); the distinct sources' pixels are capped before any is
//! decoded; each decode holds its peak from the memory budget; and the build stops
//! between frames once the client has gone ([`Abandoned`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::OptionalExtension;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::ingest::Patience;
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

/// Where a frame's pixels come from: a blob, the EXIF orientation to apply to it, and
/// how many pixels it holds.
struct FrameSource {
    sha256: String,
    orientation: u16,
    pixels: u64,
}

/// Each distinct photo's source, after checking the user owns it (one query a photo):
/// the preview (already upright) when it has been made and is stored, else the
/// original. Refused before any decoding when the sources hold too many pixels.
fn frame_sources(
    state: &AppState,
    user_id: i64,
    photo_ids: &[i64],
) -> Result<HashMap<i64, FrameSource>> {
    let c = state.db.connection()?;
    let mut statement = c.prepare_cached(
        "SELECT sha256, preview_sha256, orientation, width, height FROM photos
         WHERE id = ?1 AND user_id = ?2",
    )?;
    let mut rows: Vec<(i64, (String, Option<String>, u16, u32, u32))> = Vec::new();
    for &id in photo_ids {
        if rows.iter().any(|(seen, _)| *seen == id) {
            continue;
        }
        let row: (String, Option<String>, u16, u32, u32) = statement
            .query_row(rusqlite::params![id, user_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?
            .ok_or(Error::NotFound("photo"))?;
        rows.push((id, row));
    }
    drop(statement);
    drop(c); // the blob checks below need no connection
    let preview_side = u64::from(state.config.preview_side);
    let mut sources = HashMap::new();
    for (id, (original, preview, orientation, width, height)) in rows {
        let pixels = u64::from(width) * u64::from(height);
        let source = match preview {
            Some(preview) if state.blobs.contains(&preview)? => FrameSource {
                sha256: preview,
                orientation: 1,
                pixels: pixels.min(preview_side * preview_side),
            },
            _ => FrameSource {
                sha256: original,
                orientation,
                pixels,
            },
        };
        sources.insert(id, source);
    }
    let total: u64 = sources.values().map(|s| s.pixels).sum();
    let most = state.config.gif_max_source_pixels;
    if total > most {
        return Err(Error::BadImage(format!(
            "the chosen photos hold {} megapixels to decode, more than the {} a GIF may \
             use; choose fewer, or wait until their previews are made",
            total.div_ceil(1_000_000),
            most / 1_000_000
        )));
    }
    Ok(sources)
}

/// Decodes, fits and encodes the frames one at a time.
fn render(
    state: &AppState,
    request: &Checked,
    sources: &HashMap<i64, FrameSource>,
    abandoned: &Abandoned,
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
            abandoned.check()?;
            let frame = match kept.remove(id) {
                Some(frame) => frame,
                None => {
                    let source = sources.get(id).ok_or(Error::NotFound("photo"))?;
                    let image = ingest::decode_upright(
                        &state.blobs.read(&source.sha256)?,
                        source.orientation,
                        &state.decoding,
                        Patience::Request,
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
fn make_gif(
    state: &AppState,
    user_id: i64,
    request: &Checked,
    abandoned: &Abandoned,
) -> Result<PhotoInfo> {
    let sources = frame_sources(state, user_id, &request.photo_ids)?;
    let bytes = render(state, request, &sources, abandoned)?;
    let file = ingest::inspect(request.name.clone(), bytes, &state.decoding)?;
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

/// `POST /api/gifs`: parameters checked first, then a build slot (503 with
/// `Retry-After` when every slot stays busy), then the frames in a blocking thread that
/// stops between frames once the client has gone.
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(request): Json<GifRequest>,
) -> Result<(StatusCode, Json<PhotoInfo>)> {
    let request = check(request)?;
    let slot = tokio::time::timeout(
        state.config.busy_wait,
        state.gif_slots.clone().acquire_owned(),
    )
    .await
    .map_err(|_| Error::Busy {
        message: "every GIF slot is busy; try again in a few seconds".into(),
        retry_after_secs: 5,
    })?
    .map_err(|e| Error::internal("GIF slots", e))?;
    let (abandoned, _on_drop) = Abandoned::watch();
    let worker_state = state.clone();
    let photo = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        make_gif(&worker_state, user.id, &request, &abandoned)
    })
    .await??;
    state.jobs.wake();
    Ok((StatusCode::CREATED, Json(photo)))
}

/// Set when the request's future is dropped (the client closed the connection, or the
/// request timed out), so the blocking work it started stops at its next check instead
/// of running to the end for nobody.
#[derive(Clone)]
pub struct Abandoned(Arc<AtomicBool>);

/// Marks its [`Abandoned`] when dropped; the handler holds it across its `.await`s.
pub struct MarkOnDrop(Arc<AtomicBool>);

impl Abandoned {
    /// A flag, and the guard that raises it when the handler goes away.
    pub fn watch() -> (Abandoned, MarkOnDrop) {
        let flag = Arc::new(AtomicBool::new(false));
        (Abandoned(flag.clone()), MarkOnDrop(flag))
    }

    /// `Err` once the client has gone.
    pub fn check(&self) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            return Err(Error::Abandoned);
        }
        Ok(())
    }
}

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
