//! `album migrate`'s database move: an embedded album (SQLite) with people, corrections,
//! an album and the trash, moved to the database the suite runs on (Postgres under
//! scripts/test-scale-out.sh, another SQLite file otherwise), arrives row for row and
//! serves the same answers there.

mod common;

use album_serving::AppState;
use album_serving::db::DatabaseLocation;
use album_serving::migrate::{compare_databases, copy_database};
use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

/// What a user sees of their album: every listing the page draws from.
async fn views(album: &TestAlbum, token: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for uri in [
        "/api/photos?limit=500",
        "/api/trash",
        "/api/corrections",
        "/api/photos?limit=500&order=taken",
        "/api/people",
        "/api/albums",
        "/api/categories",
        "/api/places",
        "/api/photos/1",
    ] {
        let (status, body) = album.json("GET", uri, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        seen.push(body);
    }
    seen
}

#[tokio::test]
async fn an_embedded_album_moved_to_another_database_arrives_row_for_row() {
    let album = TestAlbum::new(|c| {
        c.database = None;
        c.face_weights = Some(face_weights());
        c.model_bundle = Some(default_bundle());
    });
    let token = album.user("ann").await;
    let mut photos = files_in(&faces_dir().join("Abdullah_Gul"), 3);
    photos.extend(files_in(&faces_dir().join("Amelia_Vega"), 3));
    photos.extend(class_photos("vehicles", 2));
    photos.push((
        "gps.jpg".into(),
        photo_with_exif(48.8584, 2.2945, 6), // Paris, turned by EXIF
    ));
    let (status, _) = album.upload(&token, &photos).await;
    assert_eq!(status, StatusCode::CREATED);
    album.drain();

    // corrections and the user's own organisation, all of which must move
    let (_, people) = album.json("GET", "/api/people", Some(&token), None).await;
    let person = people[0]["id"].as_i64().unwrap();
    let renamed = json!({"name": "Abdullah Gul"});
    let (status, _) = album
        .json(
            "PATCH",
            &format!("/api/people/{person}"),
            Some(&token),
            Some(renamed),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let corrected = json!({"category": "buildings"});
    let (status, _) = album
        .json(
            "PUT",
            "/api/photos/7/category",
            Some(&token),
            Some(corrected),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, made) = album
        .json(
            "POST",
            "/api/albums",
            Some(&token),
            Some(json!({"name": "Trip"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let album_id = made["id"].as_i64().unwrap();
    let (status, _) = album
        .json(
            "POST",
            &format!("/api/albums/{album_id}/photos"),
            Some(&token),
            Some(json!({"photo_ids": [1, 7, 9]})),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = album
        .json(
            "PATCH",
            "/api/photos/2",
            Some(&token),
            Some(json!({"favourite": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = album
        .json("DELETE", "/api/photos/8", Some(&token), None)
        .await;
    assert!(status.is_success());
    let before = views(&album, &token).await;

    let from = album.state.config.database_location();
    let elsewhere = tempfile::tempdir().unwrap();
    let to = test_database()
        .unwrap_or_else(|| DatabaseLocation::Sqlite(elsewhere.path().join("album.db")));
    let moved = copy_database(&from, &to, &|_, _| {}).unwrap();
    let rows_of = |table: &str| moved.tables.iter().find(|(t, _)| t == table).unwrap().1;
    assert_eq!(rows_of("photos"), 9, "{moved:?}");
    assert!(rows_of("faces") >= 6 && rows_of("people") >= 2, "{moved:?}");
    assert_eq!(rows_of("album_photos"), 3);
    let checks = compare_databases(&from, &to).unwrap();
    assert_eq!(checks.len(), 11);
    for check in &checks {
        assert!(check.is_identical(), "{check:?}");
    }

    // The album opens on the new database and answers as it did; new rows get new ids.
    let mut config = (*album.state.config).clone();
    config.database = Some(to.clone());
    let moved_album = TestAlbum {
        dir: tempfile::tempdir().unwrap(),
        state: AppState::open(config).unwrap(),
    };
    assert_eq!(views(&moved_album, &token).await, before);
    let (status, made) = moved_album
        .json(
            "POST",
            "/api/albums",
            Some(&token),
            Some(json!({"name": "After"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["id"].as_i64(), Some(album_id + 1));

    // A second move into the now full database is refused, and changes nothing there.
    let error = copy_database(&from, &to, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(error.contains("already holds rows"), "{error}");
    assert_eq!(moved_album.count("albums"), 2);
}
