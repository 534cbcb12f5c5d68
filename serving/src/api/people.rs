//! `/api/people` and `/api/faces`: the handlers over [`crate::service::people`].

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::repo::faces::{FaceInfo, Person};
use crate::service::people::{People, PersonChange, Suggestion};

#[derive(Debug, Deserialize, Default)]
pub struct PeopleQuery {
    /// Include hidden people.
    #[serde(default)]
    pub hidden: bool,
}

/// `GET /api/people`: most photos first.
pub(crate) async fn list(
    State(people): State<People>,
    user: CurrentUser,
    Query(query): Query<PeopleQuery>,
) -> Result<Json<Vec<Person>>> {
    Ok(Json(people.list(user.id, query.hidden).await?))
}

/// `GET /api/people/{id}`.
pub(crate) async fn get(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Person>> {
    Ok(Json(people.get(user.id, id).await?))
}

/// `PATCH /api/people/{id}`: rename, hide / unhide, choose the cover face.
pub(crate) async fn patch(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(change): Json<PersonChange>,
) -> Result<Json<Person>> {
    Ok(Json(people.change(user.id, id, change).await?))
}

#[derive(Debug, Deserialize)]
pub struct MergeBody {
    /// The person the faces go to; this one is removed.
    pub into: i64,
}

/// `POST /api/people/{id}/merge`: every face of this person goes to `into`.
pub(crate) async fn merge(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<MergeBody>,
) -> Result<Json<Person>> {
    Ok(Json(people.merge(user.id, id, body.into).await?))
}

#[derive(Debug, Deserialize)]
pub struct SplitBody {
    /// Faces of this person that become a new person together.
    pub face_ids: Vec<i64>,
}

/// `POST /api/people/{id}/split`: the given faces leave this person for a new one.
pub(crate) async fn split(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<SplitBody>,
) -> Result<(StatusCode, Json<Person>)> {
    let person = people.split(user.id, id, body.face_ids).await?;
    Ok((StatusCode::CREATED, Json(person)))
}

/// `GET /api/people/{id}/faces`.
pub(crate) async fn faces(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<FaceInfo>>> {
    Ok(Json(people.faces(user.id, id).await?))
}

/// `GET /api/people/{id}/similar`: people who may be the same person ("Same person?").
pub(crate) async fn similar(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Suggestion>>> {
    Ok(Json(people.similar(user.id, id).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct MoveFace {
    /// The person to move the face to; absent or null: a new person.
    pub person_id: Option<i64>,
}

/// `PUT /api/faces/{id}/person`: moves a face to another person (or a new one); the
/// placement is manual and survives re-clustering.
pub(crate) async fn move_face(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<MoveFace>,
) -> Result<Json<FaceInfo>> {
    Ok(Json(people.move_face(user.id, id, body.person_id).await?))
}

/// `GET /api/faces/{id}/thumbnail`: the face cut from its photo, 160 px, JPEG.
pub(crate) async fn face_thumbnail(
    State(people): State<People>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response> {
    let bytes = people.face_thumbnail(user.id, id).await?;
    let mut response = Response::new(Body::from(bytes));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    Ok(response)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reclustered {
    pub people: usize,
}

/// `POST /api/people/recluster`: regroups every face of the user.
pub(crate) async fn recluster(
    State(people): State<People>,
    user: CurrentUser,
) -> Result<Json<Reclustered>> {
    let people = people.recluster_now(user.id).await?;
    Ok(Json(Reclustered { people }))
}
