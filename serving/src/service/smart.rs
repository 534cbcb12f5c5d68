//! Smart albums: one per category of the packaged classifier, with the model's
//! confidence per photo, and the user's corrections.
//!
//! A correction sets `category_manual`, and the classify job never overwrites a manual
//! category (it stores its own answer beside it). The export hands the corrected photos
//! back as a dataset in the project's manifest format (MANIFEST.csv + images/), ready
//! for `album split` and training.

use std::sync::Arc;

use album_dataset::manifest::{COLUMNS, phash_to_hex};
use album_dataset::phash::phash;

use crate::blobs::BlobStore;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::ingest::{self, Decoding, Patience};
use crate::repo::photos::{self, PhotoInfo};
use crate::repo::smart::{self as repo, Category, CorrectedPhoto, Correction, PeopleByFaces};
use crate::zipstream::{self, ZipOut};

/// The smart-albums service.
#[derive(Clone)]
pub struct Smart {
    pub(crate) db: Db,
    pub(crate) blobs: BlobStore,
    pub(crate) decoding: Decoding,
    /// The classifier's class names, when a bundle is configured.
    pub(crate) class_names: Option<Arc<Vec<String>>>,
    /// Faces' say in the "people" album, for a photo whose correction is dropped.
    pub(crate) people_by_faces: Option<Arc<PeopleByFaces>>,
}

impl Smart {
    /// The user's smart albums.
    pub async fn categories(&self, user_id: i64) -> Result<Vec<Category>> {
        self.db
            .run(move |c| Ok(repo::categories(c, user_id)?))
            .await
    }

    /// Sets the user's category for a photo; `None` drops the correction and goes back
    /// to the model's.
    pub async fn correct(
        &self,
        user_id: i64,
        photo_id: i64,
        category: Option<String>,
    ) -> Result<PhotoInfo> {
        if let Some(category) = &category {
            self.check_category(category)?;
        }
        let faces_rule = self.people_by_faces.clone();
        self.db
            .run(move |c| {
                owned(c, user_id, photo_id)?;
                match &category {
                    Some(category) => repo::set_manual_category(c, photo_id, category)?,
                    None => repo::clear_manual_category(c, photo_id, faces_rule.as_deref())?,
                }
                owned(c, user_id, photo_id)
            })
            .await
    }

    /// The user's corrections.
    pub(crate) async fn corrections(&self, user_id: i64) -> Result<Vec<Correction>> {
        let rows = self.corrected_photos(user_id).await?;
        Ok(rows.into_iter().map(|row| row.correction).collect())
    }

    /// What the export will hold, read before it starts.
    pub(crate) async fn corrected_photos(&self, user_id: i64) -> Result<Vec<CorrectedPhoto>> {
        self.db
            .run(move |c| Ok(repo::corrections(c, user_id)?))
            .await
    }

    /// Writes the export: `images/<sha>.<ext>` per photo, one read and hashed at a
    /// time, then `MANIFEST.csv` in the project's manifest columns (class = the user's
    /// category, image_url = `album:photo/<id>`). Blocking.
    pub(crate) fn write_export(&self, zip: &mut ZipOut, rows: Vec<CorrectedPhoto>) -> Result<()> {
        let mut manifest = COLUMNS.join(",") + "\n";
        let fetched_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for row in rows {
            let bytes = self.blobs.read(&row.sha256)?;
            // the download is under way: wait for memory rather than cut it short
            let image = ingest::decode_upright(&bytes, 1, &self.decoding, Patience::Job)?;
            let path = format!("images/{}.{}", row.sha256, extension_of(&row.mime));
            let fields = [
                path.clone(),
                row.correction.category.clone(),
                format!("album:photo/{}", row.correction.photo_id),
                String::new(),
                row.sha256.clone(),
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

    /// The categories a correction may name: the classifier's classes when a bundle
    /// is configured, else any plain lower-case word.
    fn check_category(&self, name: &str) -> Result<()> {
        match &self.class_names {
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
}

fn owned(c: &crate::sql::Connection, user_id: i64, photo_id: i64) -> Result<PhotoInfo> {
    photos::find(c, user_id, photo_id)?.ok_or(Error::NotFound("photo"))
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
