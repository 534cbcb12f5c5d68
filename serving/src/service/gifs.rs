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

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::ingest::{self, Patience};
use crate::media::{self, AnimatedGif, MediaError};
use crate::repo::photos::{self as repo, PhotoInfo};
use crate::service::photos::Photos;

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
    photos: &Photos,
    user_id: i64,
    photo_ids: &[i64],
) -> Result<HashMap<i64, FrameSource>> {
    let c = photos.db.connection()?;
    let mut rows: Vec<(i64, repo::FrameRow)> = Vec::new();
    for &id in photo_ids {
        if rows.iter().any(|(seen, _)| *seen == id) {
            continue;
        }
        let row = repo::frame_row(&c, user_id, id)?.ok_or(Error::NotFound("photo"))?;
        rows.push((id, row));
    }
    drop(c); // the blob checks below need no connection
    let preview_side = u64::from(photos.config.preview_side);
    let mut sources = HashMap::new();
    for (id, row) in rows {
        let pixels = u64::from(row.width) * u64::from(row.height);
        let source = match row.preview_sha256 {
            Some(preview) if photos.blobs.contains(&preview)? => FrameSource {
                sha256: preview,
                orientation: 1,
                pixels: pixels.min(preview_side * preview_side),
            },
            _ => FrameSource {
                sha256: row.sha256,
                orientation: row.orientation,
                pixels,
            },
        };
        sources.insert(id, source);
    }
    let total: u64 = sources.values().map(|s| s.pixels).sum();
    let most = photos.config.gif_max_source_pixels;
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
    photos: &Photos,
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
                        &photos.blobs.read(&source.sha256)?,
                        source.orientation,
                        &photos.decoding,
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
    photos: &Photos,
    user_id: i64,
    request: &Checked,
    abandoned: &Abandoned,
) -> Result<PhotoInfo> {
    let sources = frame_sources(photos, user_id, &request.photo_ids)?;
    let bytes = render(photos, request, &sources, abandoned)?;
    let file = ingest::inspect(request.name.clone(), bytes, &photos.decoding)?;
    photos.store_made(user_id, &file, "gif")
}

/// The GIF service: photos, and the build slots.
#[derive(Clone)]
pub struct Gifs {
    pub(crate) photos: Photos,
    /// GIF builds running now (at most [`crate::config::ServeConfig::gif_builds`]).
    pub slots: Arc<Semaphore>,
    /// How long a request waits for a slot before 503.
    pub(crate) busy_wait: Duration,
}

impl Gifs {
    /// Parameters checked first, then a build slot (busy, with `Retry-After`, when every
    /// slot stays busy), then the frames in a blocking thread that stops between frames
    /// once this future is dropped (the client has gone).
    pub async fn create(&self, user_id: i64, request: GifRequest) -> Result<PhotoInfo> {
        let request = check(request)?;
        let slot = tokio::time::timeout(self.busy_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| Error::Busy {
                message: "every GIF slot is busy; try again in a few seconds".into(),
                retry_after_secs: 5,
            })?
            .map_err(|e| Error::internal("GIF slots", e))?;
        let (abandoned, _on_drop) = Abandoned::watch();
        let photos = self.photos.clone();
        let photo = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            make_gif(&photos, user_id, &request, &abandoned)
        })
        .await??;
        self.photos.jobs.wake();
        Ok(photo)
    }
}

/// Set when the request's future is dropped (the client closed the connection, or the
/// request timed out), so the blocking work it started stops at its next check instead
/// of running to the end for nobody.
#[derive(Clone)]
pub(crate) struct Abandoned(Arc<AtomicBool>);

/// Marks its [`Abandoned`] when dropped; the handler holds it across its `.await`s.
pub(crate) struct MarkOnDrop(Arc<AtomicBool>);

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
