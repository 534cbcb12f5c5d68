//! The service as a value: [`AppState`] (database, blobs, settings, the queue's signal)
//! and [`app`], the router, which tests drive with `tower::ServiceExt::oneshot` and
//! `album serve` binds to a socket.

use std::sync::Arc;

use album_training::inference::BundleInfo;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, delete, get, post, put};
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::api::auth::{self, CookiePolicy};
use crate::api::{albums, gifs, montages, people, photos, places, smart};
use crate::blobs::BlobStore;
use crate::budget::MemoryBudget;
use crate::config::ServeConfig;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::ingest::Decoding;
use crate::repo::smart::PeopleByFaces;
use crate::service::accounts::Accounts;
use crate::service::albums::Albums;
use crate::service::gifs::Gifs;
use crate::service::jobs::JobSignal;
use crate::service::jobs::Queue;
use crate::service::montages::Montages;
use crate::service::people::People;
use crate::service::photos::Photos;
use crate::service::places::Places;
use crate::service::smart::Smart;
use crate::throttle::SignInGuard;
use crate::{api, origin, web};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub blobs: BlobStore,
    pub config: Arc<ServeConfig>,
    pub jobs: Arc<JobSignal>,
    /// The classifier's class names (from the bundle), when one is configured.
    pub class_names: Option<Arc<Vec<String>>>,
    /// Failed sign-ins counted, password checks bounded.
    pub sign_in: Arc<SignInGuard>,
    /// The pixel cap and the memory budget every decode and upload body draws on.
    pub decoding: Decoding,
    /// The photos service (uploads, listings, renditions, the trash).
    pub photos: Photos,
    /// The people service (faces, their grouping, corrections).
    pub people: People,
    /// The GIF service (with its build slots).
    pub gifs: Gifs,
    /// The video montage service (requests, and the render the jobs run).
    pub montages: Montages,
}

impl AppState {
    /// Opens (creating if needed) the data directory: `album.db` and `blobs/`.
    pub fn open(config: ServeConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Setup(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let db = Db::open_at(&config.database_location(), config.db_connections)?;
        let (blobs, removed) = BlobStore::open(&config.blob_location())?;
        if removed > 0 {
            tracing::warn!(removed, "removed half-written blobs left by a crash");
        }
        let class_names = match &config.model_bundle {
            Some(bundle) => Some(Arc::new(
                BundleInfo::read(bundle)
                    .map_err(|e| Error::Setup(format!("the model bundle: {e}")))?
                    .class_names,
            )),
            None => None,
        };
        let decoding = Decoding {
            budget: MemoryBudget::new(config.memory_budget_bytes),
            max_pixels: config.max_pixels,
            request_wait: config.busy_wait,
        };
        let people_by_faces = people_by_faces(&config, class_names.as_deref());
        let config = Arc::new(config);
        let jobs = Arc::new(JobSignal::default());
        let photos = Photos {
            db: db.clone(),
            blobs: blobs.clone(),
            decoding: decoding.clone(),
            config: config.clone(),
            jobs: jobs.clone(),
            people_by_faces,
        };
        let gifs = Gifs {
            photos: photos.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(config.gif_builds)),
            busy_wait: config.busy_wait,
        };
        Ok(AppState {
            db,
            blobs,
            decoding,
            sign_in: Arc::new(SignInGuard::new(config.sign_in.clone())),
            people: People::new(photos.clone()),
            montages: Montages::new(photos.clone()),
            photos,
            gifs,
            config,
            jobs,
            class_names,
        })
    }
}

/// The faces' say in the "people" smart album: only with face models, a positive share
/// and a bundle that has a "people" class (a bundle of other categories keeps its own).
fn people_by_faces(
    config: &ServeConfig,
    class_names: Option<&Vec<String>>,
) -> Option<Arc<PeopleByFaces>> {
    const PEOPLE: &str = "people";
    let has_people = class_names.is_some_and(|names| names.iter().any(|n| n == PEOPLE));
    (config.face_weights.is_some() && config.people_face_share > 0.0 && has_people).then(|| {
        Arc::new(PeopleByFaces {
            category: PEOPLE.to_owned(),
            min_share: config.people_face_share,
            min_score: config.people_face_min_score,
            min_probability: config.people_min_probability,
        })
    })
}

/// The accounts service, as its handlers' state and the sign-in extractor's.
impl FromRef<AppState> for Accounts {
    fn from_ref(state: &AppState) -> Accounts {
        Accounts {
            db: state.db.clone(),
            guard: state.sign_in.clone(),
            open_sign_up: state.config.open_sign_up,
            session_days: state.config.session_days,
            session_idle_days: state.config.session_idle_days,
        }
    }
}

/// How the session cookie is set.
impl FromRef<AppState> for CookiePolicy {
    fn from_ref(state: &AppState) -> CookiePolicy {
        CookiePolicy {
            secure: state.config.secure_cookies,
        }
    }
}

/// The queue's progress, as its handler's state.
impl FromRef<AppState> for Queue {
    fn from_ref(state: &AppState) -> Queue {
        Queue {
            db: state.db.clone(),
        }
    }
}

/// The albums service, as the albums handlers' state.
impl FromRef<AppState> for Albums {
    fn from_ref(state: &AppState) -> Albums {
        Albums::new(state.db.clone())
    }
}

/// The places service, as the places handler's state.
impl FromRef<AppState> for Places {
    fn from_ref(state: &AppState) -> Places {
        Places::new(state.db.clone())
    }
}

/// The photos service, as the photo and trash handlers' state.
impl FromRef<AppState> for Photos {
    fn from_ref(state: &AppState) -> Photos {
        state.photos.clone()
    }
}

/// The people service, as the people and face handlers' state.
impl FromRef<AppState> for People {
    fn from_ref(state: &AppState) -> People {
        state.people.clone()
    }
}

/// The GIF service, as its handler's state.
impl FromRef<AppState> for Gifs {
    fn from_ref(state: &AppState) -> Gifs {
        state.gifs.clone()
    }
}

/// The montage service, as its handlers' state.
impl FromRef<AppState> for Montages {
    fn from_ref(state: &AppState) -> Montages {
        state.montages.clone()
    }
}

/// The smart-albums service, as its handlers' state.
impl FromRef<AppState> for Smart {
    fn from_ref(state: &AppState) -> Smart {
        Smart {
            db: state.db.clone(),
            blobs: state.blobs.clone(),
            decoding: state.decoding.clone(),
            class_names: state.class_names.clone(),
            people_by_faces: state.photos.people_by_faces.clone(),
        }
    }
}

/// Every route: its path and its handlers. The OpenAPI test checks this list against
/// `serving/openapi.json` both ways.
pub fn routes(config: &ServeConfig) -> Vec<(&'static str, MethodRouter<AppState>)> {
    let upload_limit = DefaultBodyLimit::max(config.max_request_bytes);
    vec![
        ("/", get(web::index)),
        ("/app.js", get(web::script)),
        ("/style.css", get(web::style)),
        ("/basemap.json", get(web::basemap)),
        ("/api/health", get(web::health)),
        ("/api/users", post(auth::register)),
        ("/api/sessions", post(auth::sign_in).delete(auth::sign_out)),
        ("/api/me", get(auth::me)),
        ("/api/me/sessions", delete(auth::sign_out_everywhere)),
        ("/api/me/password", put(auth::change_password)),
        (
            "/api/photos",
            get(photos::list).post(photos::upload).layer(upload_limit),
        ),
        ("/api/photos/zip", get(photos::zip)),
        ("/api/photos/months", get(photos::months)),
        (
            "/api/photos/{id}",
            get(photos::get).patch(photos::patch).delete(photos::trash),
        ),
        ("/api/photos/{id}/original", get(photos::original)),
        ("/api/photos/{id}/thumbnail", get(photos::thumbnail)),
        ("/api/photos/{id}/preview", get(photos::preview)),
        ("/api/photos/{id}/restore", post(photos::restore)),
        ("/api/photos/{id}/category", put(smart::correct)),
        (
            "/api/trash",
            get(photos::list_trash).delete(photos::empty_trash),
        ),
        ("/api/trash/{id}", delete(photos::purge_one)),
        ("/api/albums", get(albums::list).post(albums::create)),
        (
            "/api/albums/{id}",
            get(albums::get).patch(albums::patch).delete(albums::delete),
        ),
        ("/api/albums/{id}/photos", post(albums::add_photos)),
        (
            "/api/albums/{id}/photos/{photo_id}",
            delete(albums::remove_photo),
        ),
        ("/api/categories", get(smart::list)),
        ("/api/corrections", get(smart::list_corrections)),
        ("/api/corrections/export", get(smart::export)),
        ("/api/people", get(people::list)),
        ("/api/people/recluster", post(people::recluster)),
        ("/api/people/{id}", get(people::get).patch(people::patch)),
        ("/api/people/{id}/faces", get(people::faces)),
        ("/api/people/{id}/merge", post(people::merge)),
        ("/api/people/{id}/similar", get(people::similar)),
        ("/api/people/{id}/split", post(people::split)),
        ("/api/faces/{id}/person", put(people::move_face)),
        ("/api/faces/{id}/thumbnail", get(people::face_thumbnail)),
        ("/api/places", get(places::list)),
        ("/api/gifs", post(gifs::create)),
        ("/api/montages", get(montages::list).post(montages::create)),
        ("/api/montages/{id}", get(montages::get)),
        ("/api/montages/{id}/rebuild", post(montages::rebuild)),
        (
            "/api/music",
            get(montages::music)
                .post(montages::add_music)
                .layer(upload_limit),
        ),
        ("/api/jobs", get(api::jobs::progress)),
    ]
}

/// The router for `state`.
pub fn app(state: AppState) -> Router {
    let router = routes(&state.config)
        .into_iter()
        .fold(Router::new(), |router, (path, method_router)| {
            router.route(path, method_router)
        });
    let config = state.config.clone();
    let router = router
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn(
            origin::refuse_cross_origin_cookie_writes,
        ));
    let router = if config.secure_cookies {
        router.layer(axum::middleware::map_response(strict_transport_security))
    } else {
        router
    };
    router
        .layer(RequestBodyTimeoutLayer::new(config.body_idle_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                )
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// One span per request: its id (also sent back as `x-request-id`), method and path;
/// the signed-in user is recorded into it by [`crate::auth::CurrentUser`]. The query
/// string is left out: it may carry a session token.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        id,
        method = %request.method(),
        path = request.uri().path(),
        user = tracing::field::Empty,
    )
}

/// Over TLS, browsers are told to use nothing else for this host for a year.
async fn strict_transport_security(
    mut response: axum::response::Response,
) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    response
}
