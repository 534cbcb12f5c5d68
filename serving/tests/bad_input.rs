//! The bad-input suite: every hostile or broken request gets a clear 4xx with a JSON
//! message, and nothing is stored (no photo row, no job, no blob, no temp file); in a
//! batch, a bad file is reported on its own and the good ones are stored.

mod common;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use image::ImageFormat;
use serde_json::{Value, json};

fn assert_nothing_stored(album: &TestAlbum) {
    assert_eq!(album.count("photos"), 0, "a photo row was stored");
    assert_eq!(album.count("jobs"), 0, "a job was queued");
    assert_eq!(album.blob_files(), 0, "a blob or temp file was written");
}

fn assert_refused(status: StatusCode, body: &Value, expected: StatusCode, words: &str) {
    assert_eq!(status, expected, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(words),
        "message {message:?} lacks {words:?}"
    );
}

fn real_jpeg() -> Vec<u8> {
    class_photos("animals", 1).remove(0).1
}

fn png_of(bytes: &[u8]) -> Vec<u8> {
    let image = image::load_from_memory(bytes).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A real decompression bomb: a valid 30000×30000 grey PNG whose IDAT inflates to
/// 900 MB of zeros, in under a megabyte.
fn png_bomb() -> Vec<u8> {
    const SIDE: u32 = 30_000;
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&SIDE.to_be_bytes());
    ihdr.extend_from_slice(&SIDE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; SIDE as usize + 1]; // filter byte + pixels
    for _ in 0..SIDE {
        encoder.write_all(&row).unwrap();
    }
    let idat = encoder.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &ihdr);
    png_chunk(&mut png, b"IDAT", &idat);
    png_chunk(&mut png, b"IEND", &[]);
    assert!(png.len() < 2 << 20, "the bomb is {} bytes", png.len());
    png
}

#[tokio::test]
async fn broken_and_hostile_files_are_refused_and_nothing_is_stored() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let jpeg = real_jpeg();

    let mut corrupt = jpeg.clone();
    let middle = corrupt.len() / 3;
    corrupt[20..middle].fill(0xFF); // headers and tables gone, end marker kept
    let png = png_of(&jpeg);
    let truncated_png = png[..png.len() / 2].to_vec();
    // The first megabyte of this test's own ELF executable.
    let mut executable = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    executable.truncate(1 << 20);

    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "corrupt.jpg",
            corrupt,
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not decode",
        ),
        (
            "truncated.png",
            truncated_png,
            StatusCode::UNPROCESSABLE_ENTITY,
            "does not decode",
        ),
        (
            "bomb.png",
            png_bomb(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "pixel cap",
        ),
        (
            "holiday.jpg",
            executable,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not a JPEG",
        ),
        (
            "empty.jpg",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty",
        ),
        (
            "../../etc/passwd.jpg",
            jpeg.clone(),
            StatusCode::BAD_REQUEST,
            "path separator",
        ),
        (
            "..\\..\\boot.jpg",
            jpeg.clone(),
            StatusCode::BAD_REQUEST,
            "path separator",
        ),
        (
            "..",
            jpeg.clone(),
            StatusCode::BAD_REQUEST,
            "not a file name",
        ),
    ];
    for (name, bytes, expected, words) in cases {
        let (status, body) = album.upload(&token, &[(name.to_owned(), bytes)]).await;
        assert_refused(status, &body, expected, words);
        assert_nothing_stored(&album);
    }
}

/// Finding "an upload is all-or-nothing, so one such photo refused its whole batch": a
/// batch of independent photos with bad ones in it stores each good photo and reports
/// each refused one with its reason, in the order sent.
#[tokio::test]
async fn a_batch_with_one_bad_photo_stores_the_good_ones_and_reports_the_bad() {
    let album = TestAlbum::new(|c| c.max_file_bytes = 200_000);
    let token = album.user("ann").await;
    let mut files = class_photos("vehicles", 2);
    files.insert(1, ("fake.jpg".into(), b"MZ\x90\x00 not a photo".to_vec()));
    files.push(("../escape.jpg".into(), real_jpeg()));
    files.push(("huge.png".into(), vec![0u8; 300_000]));
    let (status, body) = album.upload(&token, &files).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let results = body["results"].as_array().unwrap();
    let outcome = |i: usize| {
        let r = &results[i];
        (
            r["name"].as_str().unwrap(),
            r["status"].as_str().unwrap(),
            r["error"]["error"].as_str(),
        )
    };
    assert_eq!(results.len(), 5, "{body}");
    assert_eq!(
        outcome(1),
        ("fake.jpg", "refused", Some("unsupported_type"))
    );
    assert_eq!(
        outcome(3),
        ("../escape.jpg", "refused", Some("bad_request"))
    );
    assert_eq!(outcome(4), ("huge.png", "refused", Some("too_large")));
    for i in [0, 2] {
        assert_eq!(outcome(i).1, "stored", "{body}");
        assert!(results[i]["photo"]["id"].is_i64());
    }
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fake.jpg")
    );
    assert_eq!(album.count("photos"), 2);
}

#[tokio::test]
async fn oversize_files_and_requests_are_refused_while_streaming() {
    let album = TestAlbum::new(|c| {
        c.max_file_bytes = 20_000;
        c.max_request_bytes = 100_000;
    });
    let token = album.user("ann").await;
    let big = png_of(&real_jpeg());
    assert!(big.len() > 20_000);
    let (status, body) = album.upload(&token, &[("big.png".into(), big)]).await;
    assert_refused(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "per-file limit",
    );
    assert_nothing_stored(&album);

    let many = class_photos("landscape", 30); // each under 20 kB, over 100 kB together
    let (status, body) = album.upload(&token, &many).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_nothing_stored(&album);
}

#[tokio::test]
async fn malformed_requests_get_a_400() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let (content_type, body) = multipart(&[("a.jpg".into(), real_jpeg())]);
    let bodies = [
        // Cut off before the closing boundary.
        (content_type.clone(), body[..body.len() / 2].to_vec()),
        // A boundary the body does not use.
        ("multipart/form-data; boundary=elsewhere".to_owned(), body.clone()),
        // Not multipart at all.
        ("application/json".to_owned(), b"{\"files\": []}".to_vec()),
        // Multipart without any file part.
        (
            content_type.clone(),
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{BOUNDARY}--\r\n").into_bytes(),
        ),
    ];
    for (content_type, body) in bodies {
        let request = Request::builder()
            .method("POST")
            .uri("/api/photos")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, &content_type)
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = album.send(request).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{content_type}: {body}");
        assert!(body["message"].as_str().is_some());
        assert_nothing_stored(&album);
    }
    // Broken JSON elsewhere is a 4xx too, not a panic.
    let request = Request::builder()
        .method("POST")
        .uri("/api/albums")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let (status, _) = album.send(request).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn wrong_tokens_and_other_users_ids_reveal_nothing() {
    let album = TestAlbum::plain();
    let ann = album.user("ann").await;
    album.upload(&ann, &class_photos("people", 1)).await;
    let jpeg = real_jpeg();
    for token in ["0".repeat(64), "not-a-token".to_owned(), String::new()] {
        let (status, body) = album
            .upload(&token, &[("a.jpg".into(), jpeg.clone())])
            .await;
        assert_refused(status, &body, StatusCode::UNAUTHORIZED, "sign in");
        let (status, _) = album.json("GET", "/api/photos/1", Some(&token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(album.count("photos"), 1);

    let bob = album.user("bob").await;
    let requests: [(&str, &str, Option<Value>); 7] = [
        ("GET", "/api/photos/1", None),
        ("GET", "/api/photos/1/preview", None),
        ("PATCH", "/api/photos/1", Some(json!({"favourite": true}))),
        ("DELETE", "/api/photos/1", None),
        ("POST", "/api/photos/1/restore", None),
        (
            "PUT",
            "/api/photos/1/category",
            Some(json!({"category": "animals"})),
        ),
        ("DELETE", "/api/trash/1", None),
    ];
    for (method, uri, body) in requests {
        let (status, answer) = album.json(method, uri, Some(&bob), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {answer}");
        assert_eq!(answer["message"], "photo not found");
    }
    let (_, photo) = album.json("GET", "/api/photos/1", Some(&ann), None).await;
    assert_eq!(
        (photo["favourite"].as_bool(), photo["trashed"].as_i64()),
        (Some(false), None)
    );
}
