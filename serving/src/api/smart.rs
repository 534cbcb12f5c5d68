//! Smart albums and corrections: the handlers over [`crate::service::smart`].

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::repo::photos::PhotoInfo;
use crate::repo::smart::{Category, Correction};
use crate::service::smart::Smart;
use crate::zipstream;

/// `GET /api/categories`: the smart albums (list one with `GET /api/photos?category=`).
pub(crate) async fn list(
    State(smart): State<Smart>,
    user: CurrentUser,
) -> Result<Json<Vec<Category>>> {
    Ok(Json(smart.categories(user.id).await?))
}

#[derive(Debug, Deserialize)]
pub struct CategoryBody {
    /// The right category; null drops the correction and goes back to the model's.
    pub category: Option<String>,
}

/// `PUT /api/photos/{id}/category`.
pub(crate) async fn correct(
    State(smart): State<Smart>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<CategoryBody>,
) -> Result<Json<PhotoInfo>> {
    Ok(Json(smart.correct(user.id, id, body.category).await?))
}

/// `GET /api/corrections`.
pub(crate) async fn list_corrections(
    State(smart): State<Smart>,
    user: CurrentUser,
) -> Result<Json<Vec<Correction>>> {
    Ok(Json(smart.corrections(user.id).await?))
}

/// `GET /api/corrections/export`, streamed as it is written.
pub(crate) async fn export(State(smart): State<Smart>, user: CurrentUser) -> Result<Response> {
    let rows = smart.corrected_photos(user.id).await?;
    Ok(zipstream::streamed_zip(
        "attachment; filename=\"corrections.zip\"",
        move |zip| smart.write_export(zip, rows),
    ))
}
