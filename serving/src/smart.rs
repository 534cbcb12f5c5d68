//! Smart albums: one per category of the packaged classifier, with the model's
//! confidence per photo, and the user's corrections.
//!
//! A correction (`PUT /api/photos/{id}/category`) sets `category_manual`, and the
//! classify job never overwrites a manual category (it stores its own answer beside it).
//! `GET /api/corrections/export` hands the corrected photos back as a dataset in the
//! project's manifest format (MANIFEST.csv + images/), ready for `album split`/training.

use album_dataset::manifest::{COLUMNS, phash_to_hex};
use album_dataset::phash::phash;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::ingest::{self, Patience};
use crate::photos::{PhotoInfo, photo_of};
use crate::zipstream::{self, ZipOut};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub name: String,
    pub photos: i64,
    /// Of those, how many a user placed by hand.
    pub corrected: i64,
    /// The model's mean confidence over the photos it placed.
    pub mean_confidence: Option<f64>,
    pub cover_photo_id: i64,
}

/// `GET /api/categories`: the smart albums (list one with `GET /api/photos?category=`).
pub async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Vec<Category>>> {
    let categories = state
        .db
        .run(move |c| {
            let mut statement = c.prepare(
                "SELECT category, COUNT(*), SUM(category_manual),
                        AVG(CASE WHEN category_manual = 0 THEN confidence END), MAX(id)
                 FROM photos WHERE user_id = ?1 AND trashed IS NULL AND category IS NOT NULL
                 GROUP BY category ORDER BY category",
            )?;
            let categories = statement
                .query_map([user.id], |r| {
                    Ok(Category {
                        name: r.get(0)?,
                        photos: r.get(1)?,
                        corrected: r.get(2)?,
                        mean_confidence: r.get(3)?,
                        cover_photo_id: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(categories)
        })
        .await?;
    Ok(Json(categories))
}

/// The categories a correction may name: the classifier's classes when a bundle is
/// configured, else any plain lower-case word.
fn check_category(state: &AppState, name: &str) -> Result<()> {
    match &state.class_names {
        Some(classes) if !classes.iter().any(|c| c == name) => Err(Error::BadRequest(format!(
            "category {name:?}: expected one of {}",
            classes.join(", ")
        ))),
        None if name.is_empty()
            || name.len() > 40
            || !name.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
        {
            Err(Error::BadRequest(format!(
                "category {name:?} is not a plain word"
            )))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
pub struct CategoryBody {
    /// The right category; null drops the correction and goes back to the model's.
    pub category: Option<String>,
}

/// `PUT /api/photos/{id}/category`.
pub async fn correct(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<CategoryBody>,
) -> Result<Json<PhotoInfo>> {
    if let Some(category) = &body.category {
        check_category(&state, category)?;
    }
    let photo = state
        .db
        .run(move |c| {
            photo_of(c, user.id, id)?;
            match body.category {
                Some(category) => c.execute(
                    "UPDATE photos SET category = ?1, confidence = NULL, category_manual = 1
                     WHERE id = ?2",
                    params![category, id],
                )?,
                None => c.execute(
                    "UPDATE photos SET category = model_category, confidence = model_confidence,
                     category_manual = 0 WHERE id = ?1",
                    params![id],
                )?,
            };
            photo_of(c, user.id, id)
        })
        .await?;
    Ok(Json(photo))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Correction {
    pub photo_id: i64,
    pub category: String,
    /// What the model said, if it has run.
    pub model_category: Option<String>,
    pub model_confidence: Option<f64>,
}

fn corrections_of(
    c: &rusqlite::Connection,
    user_id: i64,
) -> Result<Vec<(Correction, String, String)>> {
    let mut statement = c.prepare(
        "SELECT id, category, model_category, model_confidence, sha256, mime FROM photos
         WHERE user_id = ?1 AND category_manual = 1 AND trashed IS NULL ORDER BY id",
    )?;
    let rows = statement
        .query_map([user_id], |r| {
            Ok((
                Correction {
                    photo_id: r.get(0)?,
                    category: r.get(1)?,
                    model_category: r.get(2)?,
                    model_confidence: r.get(3)?,
                },
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// `GET /api/corrections`.
pub async fn list_corrections(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<Correction>>> {
    let rows = state.db.run(move |c| corrections_of(c, user.id)).await?;
    Ok(Json(rows.into_iter().map(|(c, _, _)| c).collect()))
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn extension_of(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        "image/tiff" => "tif",
        _ => "jpg",
    }
}

/// The corrected photos as a zip: `MANIFEST.csv` in the project's manifest columns
/// (class = the user's category, image_url = `album:photo/<id>`) and `images/<sha>.<ext>`,
/// one photo read and hashed at a time.
fn write_corrections(
    state: &AppState,
    zip: &mut ZipOut,
    rows: Vec<(Correction, String, String)>,
) -> Result<()> {
    let mut manifest = COLUMNS.join(",") + "\n";
    let fetched_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (correction, sha256, mime) in rows {
        let bytes = state.blobs.read(&sha256)?;
        // the download is under way: wait for memory rather than cut it short
        let image = ingest::decode_upright(&bytes, 1, &state.decoding, Patience::Job)?;
        let path = format!("images/{sha256}.{}", extension_of(&mime));
        let fields = [
            path.clone(),
            correction.category.clone(),
            format!("album:photo/{}", correction.photo_id),
            String::new(),
            sha256.clone(),
            phash_to_hex(phash(&image)),
            image.width().to_string(),
            image.height().to_string(),
            bytes.len().to_string(),
            fetched_at.clone(),
        ];
        drop(image);
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        manifest.push_str(&line.join(","));
        manifest.push('\n');
        zipstream::add_entry(zip, &path, &mut bytes.as_slice())?;
    }
    zipstream::add_entry(zip, "MANIFEST.csv", &mut manifest.as_bytes())
}

/// `GET /api/corrections/export`, streamed as it is written.
pub async fn export(State(state): State<AppState>, user: CurrentUser) -> Result<Response> {
    let rows = state.db.run(move |c| corrections_of(c, user.id)).await?;
    Ok(zipstream::streamed_zip(
        "attachment; filename=\"corrections.zip\"",
        move |zip| write_corrections(&state, zip, rows),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
