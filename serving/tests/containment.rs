//! Containment: one user's large or hostile work cannot take the server's memory, time
//! or connections from the others. Each test is named for a finding of the security
//! review it pins (issue 16); `album bench contain` runs the same attacks at full size
//! against `album serve` under an address-space limit.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use futures::StreamExt as _;
use serde_json::{Value, json};

fn encoded(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A smooth 8-bit RGB photo of `width` × `height` as JPEG.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    encoded(
        image::DynamicImage::ImageRgb8(image),
        image::ImageFormat::Jpeg,
    )
}

/// A 16-bit RGBA PNG (8 bytes a pixel as decoded).
fn png16(width: u32, height: u32) -> Vec<u8> {
    let image = image::ImageBuffer::<image::Rgba<u16>, _>::from_fn(width, height, |x, y| {
        image::Rgba([(x * 97) as u16, (y * 89) as u16, 40_000, 65_535])
    });
    encoded(
        image::DynamicImage::ImageRgba16(image),
        image::ImageFormat::Png,
    )
}

/// A GIF whose logical screen is 64 × 64 and whose one frame claims `side` × `side`.
fn gif_with_one_big_frame(side: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(64u16.to_le_bytes());
    gif.extend(64u16.to_le_bytes());
    gif.extend([0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.push(0x2C);
    for value in [0, 0, side, side] {
        gif.extend(value.to_le_bytes());
    }
    gif.extend([0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
    gif
}

fn assert_nothing_stored(album: &TestAlbum) {
    assert_eq!(album.count("photos"), 0, "a photo row was stored");
    assert_eq!(album.blob_files(), 0, "a blob was written");
}

async fn post_gif(album: &TestAlbum, token: &str, request: Value) -> (StatusCode, Value) {
    album
        .json("POST", "/api/gifs", Some(token), Some(request))
        .await
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// Finding "a GIF whose logical screen is 16×16 with one 16000×16000 frame is accepted
/// (1 GiB during upload)": refused from its frame descriptor, nothing decoded or stored.
#[tokio::test]
async fn multi_frame_gif_bomb_is_refused_from_its_frame_descriptor() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let (status, body) = album
        .upload(
            &token,
            &[("bomb.gif".into(), gif_with_one_big_frame(16_000))],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("16000×16000"), "{body}");
    assert_nothing_stored(&album);
    assert_eq!(album.state.decoding.budget.in_use(), 0);
}

/// Finding "a 16-bit 9000×9000 PNG is accepted (870 MiB); its thumbnail job then fails
/// for ever": a 16-bit photo is counted at 8 bytes a pixel against the memory budget
/// (refused outright when it could never fit), and one that fits is stored and gets
/// its thumbnail from pixels reduced to 8 bits.
#[tokio::test]
async fn a_16_bit_png_is_counted_at_its_width_and_thumbnailed() {
    // 1000 × 1000 × (8 + 4) bytes = 11.4 MiB fits 32 MiB (with its upload body);
    // 1700 × 1700 (33 MiB) never can
    let album = TestAlbum::new(|c| c.memory_budget_bytes = 32 << 20);
    let token = album.user("ann").await;
    let (status, body) = album
        .upload(&token, &[("wide.png".into(), png16(1700, 1700))])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        message(&body).contains("8 bytes a pixel") && message(&body).contains("32 MiB"),
        "{body}"
    );
    assert_nothing_stored(&album);

    let (status, body) = album
        .upload(&token, &[("fits.png".into(), png16(1000, 1000))])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["results"][0]["photo"]["id"].as_i64().unwrap();
    album.drain();
    let (status, bytes) = album
        .get_bytes(&format!("/api/photos/{id}/thumbnail"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let thumbnail = image::load_from_memory(&bytes).unwrap();
    assert_eq!(thumbnail.color(), image::ColorType::Rgb8);
    assert_eq!(album.state.decoding.budget.in_use(), 0);
}

/// Finding "nothing bounds concurrent decodes": when other work holds the memory
/// budget, an upload waits briefly, then is answered 503 with Retry-After and nothing
/// stored; the same upload goes through once the memory is free.
#[tokio::test]
async fn uploads_wait_for_memory_then_get_a_503_with_retry_after() {
    let album = TestAlbum::new(|c| {
        c.memory_budget_bytes = 64 << 20;
        c.busy_wait = Duration::from_millis(200);
    });
    let token = album.user("ann").await;
    let photo = jpeg(1200, 900); // 1.08 MP × (3 + 3) bytes ≈ 6.2 MiB to decode
    let budget = album.state.decoding.budget.clone();
    let others = budget.try_reserve(60 << 20).unwrap(); // other users' decodes

    let started = Instant::now();
    let request = upload_request(&token, &[("busy.jpg".into(), photo.clone())]);
    let response = tower::ServiceExt::oneshot(album_serving::app(album.state.clone()), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
    assert_nothing_stored(&album);

    drop(others);
    let (status, body) = album.upload(&token, &[("busy.jpg".into(), photo)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(budget.in_use(), 0, "everything held was given back");
}

/// Finding "one POST /api/gifs of 100 × a legal 100-megapixel photo drove the server to
/// 23.6 GB": the sources' pixels are added up from the rows and refused before any
/// photo is read.
#[tokio::test]
async fn gif_bomb_is_refused_before_any_photo_is_decoded() {
    let album = TestAlbum::new(|c| c.gif_max_source_pixels = 2_000_000);
    let token = album.user("ann").await;
    let photos: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("big{i}.jpg"), jpeg(1000 + i, 1000)))
        .collect();
    let (status, body) = album.upload(&token, &photos).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids: Vec<i64> = (0..100).map(|i| 1 + i % 3).collect();
    let budget = album.state.decoding.budget.clone();
    let watcher = std::thread::spawn(move || {
        // the most memory held at any moment while the request runs
        let mut most = 0;
        for _ in 0..200 {
            most = most.max(budget.in_use());
            std::thread::sleep(Duration::from_millis(2));
        }
        most
    });
    let (status, body) = post_gif(&album, &token, json!({"photo_ids": ids, "size": 256})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(message(&body).contains("megapixels"), "{body}");
    assert_eq!(watcher.join().unwrap(), 0, "nothing was decoded");
    assert_eq!(album.count("photos"), 3);

    // the same photo a hundred times is one source, decoded once
    let (status, body) = post_gif(
        &album,
        &token,
        json!({"photo_ids": vec![1; 100], "size": 64}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Finding "abandoned GIF requests still run to the end": a request cut off by its
/// time-out stops building between frames, and stores nothing.
#[tokio::test]
async fn an_abandoned_gif_request_stops_and_stores_nothing() {
    let album = TestAlbum::new(|c| c.request_timeout = Duration::from_millis(300));
    let token = album.user("ann").await;
    let photos: Vec<(String, Vec<u8>)> = class_photos("landscape", 10);
    let (status, _) = album.upload(&token, &photos).await;
    assert_eq!(status, StatusCode::CREATED);
    let stored = album.count("photos");
    // 100 frames at 1024 px: many seconds of quantising in a test build
    let ids: Vec<i64> = (0..100).map(|i| 1 + i % 10).collect();
    let (status, body) = post_gif(&album, &token, json!({"photo_ids": ids, "size": 1024})).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    // the build gives its slot back when it stops
    let deadline = Instant::now() + Duration::from_secs(60);
    while album.state.gifs.slots.available_permits() < album.state.config.gif_builds {
        assert!(
            Instant::now() < deadline,
            "the abandoned build never stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(album.count("photos"), stored, "no GIF was stored");
}

/// Finding "GIF requests beyond what the server can build wait for ever": with every
/// build slot taken, a request is answered 503 with Retry-After after a short wait.
#[tokio::test]
async fn gif_requests_beyond_the_build_slots_get_a_503() {
    let album = TestAlbum::new(|c| {
        c.gif_builds = 1;
        c.busy_wait = Duration::from_millis(100);
    });
    let token = album.user("ann").await;
    album.upload(&token, &class_photos("animals", 2)).await;
    let taken = album.state.gifs.slots.clone().try_acquire_owned().unwrap();
    let (status, body) = post_gif(&album, &token, json!({"photo_ids": [1, 2]})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    drop(taken);
    let (status, body) = post_gif(&album, &token, json!({"photo_ids": [1, 2]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Finding "no body timeouts: a 2 GB Content-Length followed by silence keeps its
/// connection open": a body that stops sending is cut off with 408, nothing stored.
#[tokio::test]
async fn a_slow_body_is_cut_off_with_408() {
    let album = TestAlbum::new(|c| c.body_idle_timeout = Duration::from_millis(300));
    let token = album.user("ann").await;
    let (content_type, body) = multipart(&[("slow.jpg".into(), jpeg(200, 200))]);
    let first = axum::body::Bytes::from(body[..body.len() / 2].to_vec());
    let stalled = futures::stream::once(async move { Ok::<_, std::io::Error>(first) })
        .chain(futures::stream::pending());
    let request = Request::builder()
        .method("POST")
        .uri("/api/photos")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stalled))
        .unwrap();
    let started = Instant::now();
    let (status, bytes) = album.send(request).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(message(&body).contains("stalled"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_nothing_stored(&album);
    assert_eq!(album.state.decoding.budget.in_use(), 0);
}

/// Finding "no header timeouts": on the real server, a connection that sends half a
/// request line and then nothing is closed; meanwhile others are served, and the server
/// stops cleanly when told to.
#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = album_serving::ServeConfig::new(dir.path().join("album"));
    config.workers = 0;
    config.blobs = test_blob_location();
    config.database = common::test_database();
    config.header_read_timeout = Duration::from_millis(500);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(album_serving::server::serve(config, listener, async {
        let _ = stopped.await;
    }));

    let slow = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: album\r\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest); // the server closes: end of stream
        started.elapsed()
    });
    let health = reqwest::get(format!("http://{addr}/api/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    let closed_after = slow.await.unwrap();
    assert!(
        closed_after < Duration::from_secs(10),
        "the half-sent request held its connection for {closed_after:?}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops when told")
        .unwrap()
        .unwrap();
}
