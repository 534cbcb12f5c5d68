//! What the service's integration tests share: a real album on a temp folder (SQLite, and
//! blobs on disk or in the S3 bucket `$ALBUM_TEST_BLOBS` names), requests through the real router with `oneshot`, sign-up helpers,
//! hand-made multipart bodies, and the real photos in ../shared.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use album_serving::blobs::BlobLocation;
use album_serving::db::DatabaseLocation;
use album_serving::jobs::{self, Models};
use album_serving::{AppState, ServeConfig, app};
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn five_class() -> PathBuf {
    workspace().join("../shared/datasets/five-class")
}

pub fn faces_dir() -> PathBuf {
    workspace().join("../shared/datasets/faces")
}

pub fn default_bundle() -> PathBuf {
    workspace().join("experiments/default-model/bundle")
}

/// The folder `scripts/fetch-face-weights.sh` fills (`$ALBUM_FACE_WEIGHTS` overrides it).
pub fn face_weights() -> PathBuf {
    std::env::var_os("ALBUM_FACE_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("data/weights"))
}

/// The first `n` photos (by name) of a five-class class folder.
pub fn class_photos(class: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    files_in(&five_class().join(class), n)
}

pub fn files_in(dir: &Path, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .take(n)
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

pub struct TestAlbum {
    pub dir: tempfile::TempDir,
    pub state: AppState,
}

impl TestAlbum {
    /// An album with no workers (jobs wait in the queue until [`TestAlbum::drain`]).
    pub fn new(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::new(dir.path().join("album"));
        config.workers = 0;
        config.blobs = test_blob_location();
        config.database = test_database();
        // most tests need several users; accounts.rs tests the closed default
        config.open_sign_up = true;
        configure(&mut config);
        let state = AppState::open(config).unwrap();
        TestAlbum { dir, state }
    }

    pub fn plain() -> Self {
        Self::new(|_| {})
    }

    /// Runs every queued job with the configured models, in this thread.
    pub fn drain(&self) -> usize {
        let mut models = Models::load(&self.state.config).unwrap();
        jobs::drain(&self.state, &mut models).unwrap()
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Bytes) {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }

    pub async fn json(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .unwrap();
        let (status, bytes) = self.send(request).await;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    pub async fn get_bytes(&self, uri: &str, token: &str) -> (StatusCode, Bytes) {
        let request = Request::builder()
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// Signs a new user up and in; returns the bearer token.
    pub async fn user(&self, name: &str) -> String {
        let credentials = serde_json::json!({"username": name, "password": "correct horse"});
        let (status, _) = self
            .json("POST", "/api/users", None, Some(credentials.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, session) = self
            .json("POST", "/api/sessions", None, Some(credentials))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        session["token"].as_str().unwrap().to_owned()
    }

    pub async fn upload(&self, token: &str, files: &[(String, Vec<u8>)]) -> (StatusCode, Value) {
        let (status, bytes) = self.send(upload_request(token, files)).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// How many rows a table has (to check that a refusal stored nothing).
    pub fn count(&self, table: &str) -> i64 {
        self.state
            .db
            .connection()
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// Blobs in the store (originals, thumbnails, previews; a crash's leftovers too).
    pub fn blob_files(&self) -> usize {
        let blobs = &self.state.blobs;
        blobs.names().unwrap().len() + blobs.leftovers().unwrap()
    }
}

/// Where a test album keeps its blobs: `$ALBUM_TEST_BLOBS` names an S3 bucket
/// (`s3://bucket?endpoint=…`, what `scripts/test-scale-out.sh` starts) and each album
/// gets a prefix of its own there; unset, the album's own folder, as `album serve` does.
pub fn test_blob_location() -> Option<BlobLocation> {
    static ALBUMS: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::var("ALBUM_TEST_BLOBS")
        .ok()
        .filter(|b| !b.is_empty())?;
    let BlobLocation::S3(mut location) = base.parse().expect("$ALBUM_TEST_BLOBS") else {
        panic!("$ALBUM_TEST_BLOBS names an s3:// bucket, not {base:?}");
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = ALBUMS.fetch_add(1, Ordering::Relaxed);
    location.prefix = format!("test-{}-{nanos}-{n}", std::process::id());
    Some(BlobLocation::S3(location))
}

/// Where a test album keeps its rows: `$ALBUM_TEST_DATABASE` names a Postgres server
/// (`postgres://…/postgres`, what `scripts/test-scale-out.sh` starts) and each album gets
/// a database of its own there; unset, `album.db` in the album's folder.
pub fn test_database() -> Option<DatabaseLocation> {
    static ALBUMS: AtomicUsize = AtomicUsize::new(0);
    let server = std::env::var("ALBUM_TEST_DATABASE")
        .ok()
        .filter(|d| !d.is_empty())?;
    let (base, _) = server
        .rsplit_once('/')
        .expect("$ALBUM_TEST_DATABASE is a postgres://…/DATABASE URL");
    let n = ALBUMS.fetch_add(1, Ordering::Relaxed);
    let name = format!("album_test_{}_{n}", std::process::id());
    let admin = album_serving::sql::Connection::open_postgres(&server).unwrap();
    // one statement a call: Postgres runs a multi-statement batch as one transaction,
    // which CREATE DATABASE refuses
    admin
        .execute_batch(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    admin
        .execute_batch(&format!("CREATE DATABASE {name}"))
        .unwrap();
    Some(DatabaseLocation::Postgres(format!("{base}/{name}")))
}

/// `POST /api/photos` of `files` as `token`'s user.
pub fn upload_request(token: &str, files: &[(String, Vec<u8>)]) -> Request<Body> {
    let (content_type, body) = multipart(files);
    Request::builder()
        .method("POST")
        .uri("/api/photos")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap()
}

pub const BOUNDARY: &str = "album-test-boundary-7f3a";

/// A multipart/form-data body with one `files` part per file.
pub fn multipart(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// An EXIF ASCII field.
fn ascii(tag: exif::Tag, text: &str) -> exif::Field {
    exif::Field {
        tag,
        ifd_num: exif::In::PRIMARY,
        value: exif::Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

/// The four EXIF fields of a GPS position (degrees, minutes, seconds and N/S, E/W).
fn gps_fields(lat: f64, lon: f64) -> [exif::Field; 4] {
    use exif::{Field, In, Rational, Tag, Value};
    let dms = |tag, degrees: f64| {
        let d = degrees.abs();
        let whole = d.floor();
        let minutes = ((d - whole) * 60.0).floor();
        let seconds = ((d - whole) * 60.0 - minutes) * 60.0;
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational {
                    num: whole as u32,
                    denom: 1,
                },
                Rational {
                    num: minutes as u32,
                    denom: 1,
                },
                Rational {
                    num: (seconds * 100.0) as u32,
                    denom: 100,
                },
            ]),
        }
    };
    [
        ascii(Tag::GPSLatitudeRef, if lat < 0.0 { "S" } else { "N" }),
        dms(Tag::GPSLatitude, lat),
        ascii(Tag::GPSLongitudeRef, if lon < 0.0 { "W" } else { "E" }),
        dms(Tag::GPSLongitude, lon),
    ]
}

/// A real five-class photo with an EXIF block added: orientation, date, camera and GPS.
pub fn photo_with_exif(lat: f64, lon: f64, orientation: u16) -> Vec<u8> {
    use exif::{Field, In, Tag, Value};
    let mut fields = vec![
        ascii(Tag::Make, "Canon"),
        ascii(Tag::Model, "EOS 5D"),
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        },
        ascii(Tag::DateTimeOriginal, "2023:06:01 18:45:09"),
    ];
    fields.extend(gps_fields(lat, lon));
    with_exif(&class_photos("landscape", 1)[0].1, &fields)
}

/// `jpeg` with an EXIF block saying it was taken at `taken` ("YYYY:MM:DD HH:MM:SS") at
/// (lat, lon).
pub fn taken_at_in(jpeg: &[u8], taken: &str, lat: f64, lon: f64) -> Vec<u8> {
    let mut fields = vec![ascii(exif::Tag::DateTimeOriginal, taken)];
    fields.extend(gps_fields(lat, lon));
    with_exif(jpeg, &fields)
}

/// `jpeg` with an EXIF block saying it was taken at `taken` ("YYYY:MM:DD HH:MM:SS").
pub fn taken_at(jpeg: &[u8], taken: &str) -> Vec<u8> {
    use exif::{Field, In, Tag, Value};
    let date = Field {
        tag: Tag::DateTimeOriginal,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![taken.as_bytes().to_vec()]),
    };
    with_exif(jpeg, &[date])
}

/// `plain` (a JPEG without EXIF) with an APP1 block of `fields` after its SOI marker.
fn with_exif(plain: &[u8], fields: &[exif::Field]) -> Vec<u8> {
    let mut writer = exif::experimental::Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let payload = [b"Exif\0\0".as_slice(), tiff.get_ref()].concat();
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&plain[2..]);
    out
}
