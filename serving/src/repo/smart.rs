//! The `photos` table's category columns: smart albums and users' corrections.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// A smart album: one category of the classifier.
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

/// A user's correction of the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Correction {
    pub photo_id: i64,
    pub category: String,
    /// What the model said, if it has run.
    pub model_category: Option<String>,
    pub model_confidence: Option<f64>,
}

/// A correction with the photo's blob and type, for the export.
#[derive(Debug, Clone)]
pub struct CorrectedPhoto {
    pub correction: Correction,
    pub sha256: String,
    pub mime: String,
}

/// The user's categories with photos not in the trash, by name.
pub fn categories(c: &Connection, user_id: i64) -> rusqlite::Result<Vec<Category>> {
    let mut statement = c.prepare_cached(
        "SELECT category, COUNT(*), SUM(category_manual),
                AVG(CASE WHEN category_manual = 0 THEN confidence END), MAX(id)
         FROM photos WHERE user_id = ?1 AND trashed IS NULL AND category IS NOT NULL
         GROUP BY category ORDER BY category",
    )?;
    statement
        .query_map([user_id], |r| {
            Ok(Category {
                name: r.get(0)?,
                photos: r.get(1)?,
                corrected: r.get(2)?,
                mean_confidence: r.get(3)?,
                cover_photo_id: r.get(4)?,
            })
        })?
        .collect()
}

/// A user's category, which the classify job never overwrites.
pub fn set_manual_category(c: &Connection, photo_id: i64, category: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE photos SET category = ?1, confidence = NULL, category_manual = 1 WHERE id = ?2",
        params![category, photo_id],
    )?;
    Ok(())
}

/// Back to the model's category and confidence.
pub fn clear_manual_category(c: &Connection, photo_id: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE photos SET category = model_category, confidence = model_confidence,
         category_manual = 0 WHERE id = ?1",
        [photo_id],
    )?;
    Ok(())
}

/// The user's corrected photos not in the trash, oldest first.
pub fn corrections(c: &Connection, user_id: i64) -> rusqlite::Result<Vec<CorrectedPhoto>> {
    let mut statement = c.prepare_cached(
        "SELECT id, category, model_category, model_confidence, sha256, mime FROM photos
         WHERE user_id = ?1 AND category_manual = 1 AND trashed IS NULL ORDER BY id",
    )?;
    statement
        .query_map([user_id], |r| {
            Ok(CorrectedPhoto {
                correction: Correction {
                    photo_id: r.get(0)?,
                    category: r.get(1)?,
                    model_category: r.get(2)?,
                    model_confidence: r.get(3)?,
                },
                sha256: r.get(4)?,
                mime: r.get(5)?,
            })
        })?
        .collect()
}

/// The classifier's answer; a user's correction keeps its category, the model's is
/// stored beside it.
pub fn set_model_category(
    c: &Connection,
    photo_id: i64,
    category: &str,
    confidence: f64,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE photos SET model_category = ?1, model_confidence = ?2,
             category = CASE WHEN category_manual = 1 THEN category ELSE ?1 END,
             confidence = CASE WHEN category_manual = 1 THEN confidence ELSE ?2 END
         WHERE id = ?3",
        params![category, confidence, photo_id],
    )?;
    Ok(())
}
