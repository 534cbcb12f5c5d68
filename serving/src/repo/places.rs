//! The `places` table (one row per user and town).

use crate::sql::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::media::Place;

/// A place as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlaceInfo {
    pub id: i64,
    pub name: String,
    pub admin1: String,
    pub country: String,
    pub photos: i64,
    /// The newest photo there, for a cover.
    pub cover_photo_id: i64,
    /// Where its photos were taken, on average (degrees): the place's marker on a map.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// The user's row for `place`, made on first use.
pub(crate) fn find_or_insert(
    c: &Connection,
    user_id: i64,
    place: &Place,
) -> crate::sql::Result<Option<i64>> {
    c.execute(
        "INSERT INTO places (user_id, name, admin1, country) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        params![user_id, place.name, place.admin1, place.country],
    )?;
    c.query_row(
        "SELECT id FROM places WHERE user_id = ?1 AND name = ?2 AND admin1 = ?3 AND country = ?4",
        params![user_id, place.name, place.admin1, place.country],
        |r| r.get(0),
    )
    .optional()
}

/// The user's places with photos not in the trash, most photos first.
pub(crate) fn list(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<PlaceInfo>> {
    let mut statement = c.prepare_cached(
        "SELECT pl.id, pl.name, pl.admin1, pl.country, COUNT(*), MAX(p.id),
                AVG(p.latitude), AVG(p.longitude)
         FROM photos p JOIN places pl ON pl.id = p.place_id
         WHERE p.user_id = ?1 AND p.trashed IS NULL
         GROUP BY pl.id ORDER BY COUNT(*) DESC, pl.name",
    )?;
    statement
        .query_map([user_id], |r| {
            Ok(PlaceInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                admin1: r.get(2)?,
                country: r.get(3)?,
                photos: r.get(4)?,
                cover_photo_id: r.get(5)?,
                latitude: r.get(6)?,
                longitude: r.get(7)?,
            })
        })?
        .collect()
}
