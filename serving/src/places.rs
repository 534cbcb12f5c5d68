//! Places: a photo's EXIF GPS position named offline by the nearest GeoNames town of
//! ≥ 1,000 people (the reverse_geocoder crate's data, CC BY 4.0), and the places list.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::error::Result;
use crate::media::Geocoder;

/// The geocoder, built once per process on first use (it indexes the whole table).
pub fn geocoder() -> &'static Geocoder {
    static GEOCODER: OnceLock<Geocoder> = OnceLock::new();
    GEOCODER.get_or_init(Geocoder::new)
}

/// The user's `places` row for the town nearest to (lat, lon), created on first use.
/// Rows are per user: a shared row would tell a user, by its older id, that someone
/// else had photos near that town.
pub fn place_id(c: &Connection, user_id: i64, lat: f64, lon: f64) -> Result<Option<i64>> {
    let Some(place) = geocoder().nearest(lat, lon) else {
        return Ok(None);
    };
    c.execute(
        "INSERT OR IGNORE INTO places (user_id, name, admin1, country) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, place.name, place.admin1, place.country],
    )?;
    Ok(c.query_row(
        "SELECT id FROM places WHERE user_id = ?1 AND name = ?2 AND admin1 = ?3 AND country = ?4",
        params![user_id, place.name, place.admin1, place.country],
        |r| r.get(0),
    )
    .optional()?)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlaceInfo {
    pub id: i64,
    pub name: String,
    pub admin1: String,
    pub country: String,
    pub photos: i64,
    /// The newest photo there, for a cover.
    pub cover_photo_id: i64,
}

/// `GET /api/places`: the user's places, most photos first (list a place's photos with
/// `GET /api/photos?place=ID`).
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<PlaceInfo>>> {
    let places = state
        .db
        .run(move |c| {
            let mut statement = c.prepare(
                "SELECT pl.id, pl.name, pl.admin1, pl.country, COUNT(*), MAX(p.id)
                 FROM photos p JOIN places pl ON pl.id = p.place_id
                 WHERE p.user_id = ?1 AND p.trashed IS NULL
                 GROUP BY pl.id ORDER BY COUNT(*) DESC, pl.name",
            )?;
            let places = statement
                .query_map([user.id], |r| {
                    Ok(PlaceInfo {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        admin1: r.get(2)?,
                        country: r.get(3)?,
                        photos: r.get(4)?,
                        cover_photo_id: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(places)
        })
        .await?;
    Ok(Json(places))
}
