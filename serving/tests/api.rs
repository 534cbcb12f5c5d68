//! The album API end to end through the real router, SQLite on disk and real photos:
//! accounts and owner scoping, upload and duplicates, listing and filters, renditions,
//! zip, favourites, the trash, albums, smart albums with sticky corrections and their
//! export, places from EXIF GPS, GIFs, and the job queue.

mod common;

use std::io::Read;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

fn ids(page: &Value) -> Vec<i64> {
    page["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn sign_up_sign_in_and_sign_out() {
    let album = TestAlbum::plain();
    let credentials = json!({"username": "ann", "password": "correct horse"});
    let (status, _) = album
        .json("POST", "/api/users", None, Some(credentials.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = album
        .json("POST", "/api/users", None, Some(credentials.clone()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = album
        .json(
            "POST",
            "/api/sessions",
            None,
            Some(json!({"username": "ann", "password": "wrong password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, session) = album
        .json("POST", "/api/sessions", None, Some(credentials))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = session["token"].as_str().unwrap();
    let (status, me) = album.json("GET", "/api/me", Some(token), None).await;
    assert_eq!(
        (status, me["username"].as_str()),
        (StatusCode::OK, Some("ann"))
    );
    // The database keeps only the token's hash.
    let stored: String = album
        .state
        .db
        .connection()
        .unwrap()
        .query_row("SELECT token_sha256 FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, token);
    let (status, _) = album
        .json("DELETE", "/api/sessions", Some(token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = album.json("GET", "/api/me", Some(token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Every page of `query` (which ends in `&` or `?`), two photos at a time, following `next`.
async fn all_pages(album: &TestAlbum, token: &str, query: &str) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let (status, page) = album
            .json("GET", &format!("{query}limit=2{before}"), Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page));
        match page["next"].as_i64() {
            Some(next) => before = format!("&before={next}"),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn the_timeline_orders_by_date_taken_and_pages_without_gaps() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    // Uploaded in id order 1..5; taken 2021, (no date: counts from its upload, today),
    // 2019 twice in the same second (ties go by id, newest first), 2022.
    let taken = [
        Some("2021:08:15 12:00:00"),
        None,
        Some("2019:05:04 09:00:00"),
        Some("2019:05:04 09:00:00"),
        Some("2022:01:01 00:00:00"),
    ];
    let photos: Vec<(String, Vec<u8>)> = class_photos("landscape", 5)
        .into_iter()
        .zip(taken)
        .map(|((name, jpeg), when)| match when {
            Some(when) => (name, taken_at(&jpeg, when)),
            None => (name, jpeg),
        })
        .collect();
    let (status, report) = album.upload(&token, &photos).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");

    assert_eq!(
        all_pages(&album, &token, "/api/photos?order=taken&").await,
        vec![2, 5, 1, 4, 3]
    );
    // The upload order stays the default, and says so when asked by name.
    assert_eq!(
        all_pages(&album, &token, "/api/photos?").await,
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(
        all_pages(&album, &token, "/api/photos?order=uploaded&").await,
        vec![5, 4, 3, 2, 1]
    );
    // Filters combine with the order: one day's photos, newest taken first.
    assert_eq!(
        all_pages(
            &album,
            &token,
            "/api/photos?order=taken&from=2019-05-04&to=2019-05-04&"
        )
        .await,
        vec![4, 3]
    );

    // The scrubber's months: by date taken, newest first; the undated photo in this month.
    let (status, months) = album
        .json("GET", "/api/photos/months", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{months}");
    let this_month = chrono::Utc::now().format("%Y-%m").to_string();
    assert_eq!(
        months,
        json!([
            {"month": this_month, "photos": 1},
            {"month": "2022-01", "photos": 1},
            {"month": "2021-08", "photos": 1},
            {"month": "2019-05", "photos": 2},
        ])
    );
    let (_, months) = album
        .json(
            "GET",
            "/api/photos/months?to=2021-12-31",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        months,
        json!([{"month": "2021-08", "photos": 1}, {"month": "2019-05", "photos": 2}])
    );

    let (status, body) = album
        .json("GET", "/api/photos?order=sideways", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("\"taken\""),
        "{body}"
    );
}

#[tokio::test]
async fn upload_list_renditions_and_duplicates() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let photos = class_photos("vehicles", 5);
    let (status, report) = album.upload(&token, &photos).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|r| r["status"] == "stored"));
    assert_eq!(album.count("photos"), 5);
    assert_eq!(
        album.count("jobs"),
        5,
        "one thumbnail job each (no models configured)"
    );

    // The same bytes again are reported as duplicates and stored once.
    let (status, report) = album.upload(&token, &photos[..2]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "duplicate")
    );
    assert_eq!(album.count("photos"), 5);

    // Pages of two, newest first, cover all five.
    let (status, page) = album
        .json("GET", "/api/photos?limit=2", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = ids(&page);
    let mut next = page["next"].as_i64();
    while let Some(before) = next {
        let (_, page) = album
            .json(
                "GET",
                &format!("/api/photos?limit=2&before={before}"),
                Some(&token),
                None,
            )
            .await;
        seen.extend(ids(&page));
        next = page["next"].as_i64();
    }
    assert_eq!(seen, vec![5, 4, 3, 2, 1]);

    // Originals come back byte for byte; thumbnails are made on demand before the job.
    let (status, original) = album.get_bytes("/api/photos/1/original", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(original.as_ref(), photos[0].1.as_slice());
    let (status, thumbnail) = album.get_bytes("/api/photos/1/thumbnail", &token).await;
    assert_eq!(status, StatusCode::OK);
    let thumbnail = image::load_from_memory(&thumbnail).unwrap();
    assert!(thumbnail.width().max(thumbnail.height()) <= 256);
    assert_eq!(album.drain(), 5, "the queued thumbnail jobs run and finish");
    let (_, jobs) = album.json("GET", "/api/jobs", Some(&token), None).await;
    assert_eq!(jobs["total"]["done"], 5);

    // A zip of two holds both originals.
    let (status, zip) = album.get_bytes("/api/photos/zip?ids=1,2", &token).await;
    assert_eq!(status, StatusCode::OK);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    assert_eq!(archive.len(), 2);
    let mut first = Vec::new();
    archive
        .by_index(0)
        .unwrap()
        .read_to_end(&mut first)
        .unwrap();
    assert_eq!(first, photos[0].1);
}

/// Regression: two requests with the same bytes racing past the duplicate check both
/// tried to insert, and the UNIQUE (user, hash) constraint turned the loser into a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_bytes_uploaded_at_once_are_stored_once_and_the_rest_are_duplicates() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let photo = class_photos("animals", 1);
    let (a, b, c, d) = tokio::join!(
        album.upload(&token, &photo),
        album.upload(&token, &photo),
        album.upload(&token, &photo),
        album.upload(&token, &photo)
    );
    let mut statuses = Vec::new();
    for (status, report) in [a, b, c, d] {
        assert!(status.is_success(), "{status}: {report}");
        statuses.push(report["results"][0]["status"].as_str().unwrap().to_owned());
    }
    statuses.sort();
    assert_eq!(statuses, ["duplicate", "duplicate", "duplicate", "stored"]);
    assert_eq!(album.count("photos"), 1);
}

/// Regression: a thumbnail job and a purge took the blob lock and then waited for a
/// database connection, while uploads held every connection and waited for the lock;
/// everything stood still until the pool's 30 s timeout failed the job or the purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_thumbnails_and_purges_at_once_do_not_deadlock_on_a_small_pool() {
    let album = std::sync::Arc::new(TestAlbum::new(|config| config.db_connections = 3));
    let token = album.user("ann").await;
    let (status, _) = album.upload(&token, &class_photos("people", 4)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = album
        .json("DELETE", "/api/photos/1", Some(&token), None)
        .await;
    assert!(status.is_success());

    let state = album.state.clone();
    let jobs = tokio::task::spawn_blocking(move || {
        let mut models = album_serving::jobs::Models::load(&state.config).unwrap();
        album_serving::jobs::drain(&state, &mut models)
    });
    let mut requests = Vec::new();
    for photo in class_photos("buildings", 8) {
        let (album, token) = (album.clone(), token.clone());
        requests.push(tokio::spawn(async move {
            let (status, report) = album.upload(&token, &[photo]).await;
            (status, report.to_string())
        }));
    }
    let (album_for_purge, token_for_purge) = (album.clone(), token.clone());
    requests.push(tokio::spawn(async move {
        let (status, body) = album_for_purge
            .json("DELETE", "/api/trash", Some(&token_for_purge), None)
            .await;
        (status, body.to_string())
    }));
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
    }
    jobs.await.unwrap().unwrap();
    let failures: i64 = album
        .state
        .db
        .connection()
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM jobs WHERE last_error IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 0, "a job failed (waiting for a connection)");
    assert_eq!(album.count("photos"), 11);
}

#[tokio::test]
async fn another_users_photos_are_not_found() {
    let album = TestAlbum::plain();
    let ann = album.user("ann").await;
    let bob = album.user("bob").await;
    album.upload(&ann, &class_photos("animals", 1)).await;
    for uri in [
        "/api/photos/1",
        "/api/photos/1/original",
        "/api/photos/1/thumbnail",
        "/api/photos/zip?ids=1",
    ] {
        let (status, _) = album.get_bytes(uri, &bob).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
    let (status, _) = album
        .json("DELETE", "/api/photos/1", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = album.json("GET", "/api/photos", Some(&bob), None).await;
    assert!(ids(&page).is_empty());
    // Bob uploading the same bytes gets his own photo (duplicates are per user).
    let (status, report) = album.upload(&bob, &class_photos("animals", 1)).await;
    assert_eq!(
        (status, report["results"][0]["status"].as_str()),
        (StatusCode::CREATED, Some("stored"))
    );
}

#[tokio::test]
async fn favourites_trash_restore_and_purge() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    album.upload(&token, &class_photos("buildings", 3)).await;
    album.drain();
    let (status, photo) = album
        .json(
            "PATCH",
            "/api/photos/2",
            Some(&token),
            Some(json!({"favourite": true})),
        )
        .await;
    assert_eq!(
        (status, photo["favourite"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (_, page) = album
        .json("GET", "/api/photos?favourite=true", Some(&token), None)
        .await;
    assert_eq!(ids(&page), vec![2]);

    let (status, _) = album
        .json("DELETE", "/api/photos/3", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, page) = album.json("GET", "/api/photos", Some(&token), None).await;
    assert_eq!(ids(&page), vec![2, 1]);
    let (_, trash) = album.json("GET", "/api/trash", Some(&token), None).await;
    assert_eq!(ids(&trash), vec![3]);
    let (status, _) = album
        .json("POST", "/api/photos/3/restore", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = album.json("GET", "/api/photos", Some(&token), None).await;
    assert_eq!(ids(&page), vec![3, 2, 1]);

    // Purging needs the trash first; then the row and its three blobs go.
    let (status, _) = album
        .json("DELETE", "/api/trash/1", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let blobs = album.blob_files();
    album
        .json("DELETE", "/api/photos/1", Some(&token), None)
        .await;
    let (status, purged) = album
        .json("DELETE", "/api/trash/1", Some(&token), None)
        .await;
    assert_eq!(
        (status, purged["purged"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    assert_eq!(
        album.blob_files(),
        blobs - 3,
        "original, thumbnail and preview deleted"
    );
    let (status, _) = album.get_bytes("/api/photos/1", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The automatic purge takes photos trashed longer ago than trash_days.
    album
        .json("DELETE", "/api/photos/2", Some(&token), None)
        .await;
    assert_eq!(album.state.photos.purge_expired().unwrap(), 0);
    album
        .state
        .db
        .connection()
        .unwrap()
        .execute(
            "UPDATE photos SET trashed = trashed - 31 * 86400 WHERE id = 2",
            [],
        )
        .unwrap();
    assert_eq!(album.state.photos.purge_expired().unwrap(), 1);
    assert_eq!(album.count("photos"), 1);
}

#[tokio::test]
async fn albums_hold_photos_and_a_cover() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    album.upload(&token, &class_photos("landscape", 3)).await;
    let (status, created) = album
        .json(
            "POST",
            "/api/albums",
            Some(&token),
            Some(json!({"name": "Holiday"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_i64().unwrap();
    let uri = format!("/api/albums/{id}");
    let (_, with_photos) = album
        .json(
            "POST",
            &format!("{uri}/photos"),
            Some(&token),
            Some(json!({"photo_ids": [1, 2]})),
        )
        .await;
    assert_eq!(with_photos["photos"], 2);
    assert_eq!(
        with_photos["cover_photo_id"], 2,
        "newest photo until one is chosen"
    );
    let (_, renamed) = album
        .json(
            "PATCH",
            &uri,
            Some(&token),
            Some(json!({"name": "Alps", "cover_photo_id": 1})),
        )
        .await;
    assert_eq!(
        (renamed["name"].as_str(), renamed["cover_photo_id"].as_i64()),
        (Some("Alps"), Some(1))
    );
    let (status, _) = album
        .json(
            "PATCH",
            &uri,
            Some(&token),
            Some(json!({"cover_photo_id": 3})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the cover must be in the album"
    );
    let (_, page) = album
        .json(
            "GET",
            &format!("/api/photos?album={id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ids(&page), vec![2, 1]);
    let (_, removed) = album
        .json("DELETE", &format!("{uri}/photos/1"), Some(&token), None)
        .await;
    assert_eq!(
        (
            removed["photos"].as_i64(),
            removed["cover_photo_id"].as_i64()
        ),
        (Some(1), Some(2))
    );
    let bob = album.user("bob").await;
    let (status, _) = album.json("GET", &uri, Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = album.json("DELETE", &uri, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        album.count("photos"),
        3,
        "deleting an album keeps its photos"
    );
}

#[tokio::test]
async fn smart_albums_from_the_default_model_and_sticky_corrections() {
    let album = TestAlbum::new(|c| c.model_bundle = Some(default_bundle()));
    let token = album.user("ann").await;
    let mut photos = class_photos("animals", 3);
    photos.extend(class_photos("vehicles", 3));
    album.upload(&token, &photos).await;
    assert_eq!(
        album.drain(),
        12,
        "a thumbnail and a classify job per photo"
    );
    let (_, categories) = album
        .json("GET", "/api/categories", Some(&token), None)
        .await;
    let count = |name: &str| {
        categories
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map_or(0, |c| c["photos"].as_i64().unwrap())
    };
    // The shipped model (92.0 % test top-1) gets at least 5 of these 6 right.
    assert!(count("animals") + count("vehicles") >= 5, "{categories}");
    let (_, photo) = album.json("GET", "/api/photos/1", Some(&token), None).await;
    let confidence = photo["confidence"].as_f64().unwrap();
    assert!((0.2..=1.0).contains(&confidence), "{photo}");

    // A correction sticks through a re-classification.
    let (status, _) = album
        .json(
            "PUT",
            "/api/photos/1/category",
            Some(&token),
            Some(json!({"category": "planets"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "only the model's classes");
    let (status, corrected) = album
        .json(
            "PUT",
            "/api/photos/1/category",
            Some(&token),
            Some(json!({"category": "buildings"})),
        )
        .await;
    assert_eq!(
        (status, corrected["category_manual"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    {
        let c = album.state.db.connection().unwrap();
        album_serving::jobs::enqueue(&c, 1, Some(1), album_serving::jobs::JobKind::Classify, 3)
            .unwrap();
    }
    assert_eq!(album.drain(), 1);
    let (_, photo) = album.json("GET", "/api/photos/1", Some(&token), None).await;
    assert_eq!(photo["category"], "buildings");
    let (_, listed) = album
        .json("GET", "/api/photos?category=buildings", Some(&token), None)
        .await;
    assert_eq!(ids(&listed), vec![1]);

    // The export is a dataset: MANIFEST.csv in the project's columns plus the image.
    let (status, zip) = album.get_bytes("/api/corrections/export", &token).await;
    assert_eq!(status, StatusCode::OK);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut manifest = String::new();
    archive
        .by_name("MANIFEST.csv")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines[0], album_dataset::manifest::COLUMNS.join(","));
    assert_eq!(lines.len(), 2);
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((fields[1], fields[2]), ("buildings", "album:photo/1"));
    let mut image = Vec::new();
    archive
        .by_name(fields[0])
        .unwrap()
        .read_to_end(&mut image)
        .unwrap();
    assert_eq!(image, photos[0].1);

    // Dropping the correction goes back to the model's answer.
    let (_, reverted) = album
        .json(
            "PUT",
            "/api/photos/1/category",
            Some(&token),
            Some(json!({"category": null})),
        )
        .await;
    assert_eq!(reverted["category_manual"], false);
    assert_ne!(reverted["category"], "buildings");
}

#[tokio::test]
async fn exif_is_read_turned_upright_and_placed() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let bytes = photo_with_exif(48.8566, 2.3522, 6);
    let plain = image::load_from_memory(&bytes).unwrap();
    let (status, report) = album.upload(&token, &[("paris.jpg".into(), bytes)]).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let photo = &report["results"][0]["photo"];
    assert_eq!(photo["taken_at"], "2023-06-01T18:45:09");
    assert_eq!(photo["camera_make"], "Canon");
    assert!((photo["latitude"].as_f64().unwrap() - 48.8566).abs() < 1e-3);
    // Orientation 6 is a quarter turn: the upright photo has its sides swapped.
    assert_eq!(photo["width"].as_u64(), Some(u64::from(plain.height())));
    assert_eq!(photo["height"].as_u64(), Some(u64::from(plain.width())));
    let (_, preview) = album.get_bytes("/api/photos/1/preview", &token).await;
    let preview = image::load_from_memory(&preview).unwrap();
    assert_eq!(
        (preview.width(), preview.height()),
        (plain.height(), plain.width())
    );
    assert!(photo["place"].as_str().unwrap().contains("FR"), "{photo}");
    let (_, places) = album.json("GET", "/api/places", Some(&token), None).await;
    assert_eq!(places[0]["country"], "FR");
    // The map's marker stands where the photo was taken.
    assert!(
        (places[0]["latitude"].as_f64().unwrap() - 48.8566).abs() < 1e-3
            && (places[0]["longitude"].as_f64().unwrap() - 2.3522).abs() < 1e-3,
        "{places}"
    );
    let place = places[0]["id"].as_i64().unwrap();
    let (_, page) = album
        .json(
            "GET",
            &format!("/api/photos?place={place}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ids(&page), vec![1]);
    let (_, page) = album
        .json(
            "GET",
            "/api/photos?from=2023-06-01&to=2023-06-01",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ids(&page), vec![1]);
    let (_, page) = album
        .json("GET", "/api/photos?to=2023-05-31", Some(&token), None)
        .await;
    assert!(ids(&page).is_empty());
}

/// Regression: places were one table for everyone, so bob's first photo near Paris got
/// the id ann's Paris photo had made long before (lower than the id of the Berlin place
/// bob had just made), which told bob someone else had photos near Paris.
#[tokio::test]
async fn a_place_id_tells_nothing_about_other_users_photos() {
    let album = TestAlbum::plain();
    let ann = album.user("ann").await;
    let bob = album.user("bob").await;
    let paris = |variant: u16| photo_with_exif(48.8566, 2.3522, variant);
    let (status, _) = album.upload(&ann, &[("paris.jpg".into(), paris(1))]).await;
    assert_eq!(status, StatusCode::CREATED);
    let berlin = photo_with_exif(52.52, 13.405, 1);
    let (status, _) = album.upload(&bob, &[("berlin.jpg".into(), berlin)]).await;
    assert_eq!(status, StatusCode::CREATED);
    // the same town as ann's, in other bytes (an orientation of 3 changes the EXIF)
    let (status, _) = album.upload(&bob, &[("paris.jpg".into(), paris(3))]).await;
    assert_eq!(status, StatusCode::CREATED);
    let place_ids = |places: &Value| -> Vec<(String, i64)> {
        places
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["country"].as_str().unwrap().to_string(),
                    p["id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let (_, anns) = album.json("GET", "/api/places", Some(&ann), None).await;
    let (_, bobs) = album.json("GET", "/api/places", Some(&bob), None).await;
    let (anns, bobs) = (place_ids(&anns), place_ids(&bobs));
    let id_of = |places: &[(String, i64)], country: &str| {
        places.iter().find(|p| p.0 == country).map(|p| p.1).unwrap()
    };
    assert!(id_of(&bobs, "FR") > id_of(&bobs, "DE"), "{bobs:?}");
    assert_ne!(id_of(&bobs, "FR"), id_of(&anns, "FR"));
    // and ann's place lists nothing of bob's
    let (_, page) = album
        .json(
            "GET",
            &format!("/api/photos?place={}", id_of(&anns, "FR")),
            Some(&bob),
            None,
        )
        .await;
    assert!(ids(&page).is_empty());
}

fn gif_frames(bytes: &[u8]) -> Vec<image::Frame> {
    use image::AnimationDecoder;
    image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes.to_vec()))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap()
}

#[tokio::test]
async fn a_gif_from_chosen_photos_is_a_new_item() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    album.upload(&token, &class_photos("animals", 3)).await;
    let (status, gif) = album
        .json(
            "POST",
            "/api/gifs",
            Some(&token),
            Some(json!({"photo_ids": [3, 1, 2], "delay_ms": 200, "size": 96})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{gif}");
    assert_eq!(
        (gif["kind"].as_str(), gif["mime"].as_str()),
        (Some("gif"), Some("image/gif"))
    );
    let (_, bytes) = album
        .get_bytes(&format!("/api/photos/{}/original", gif["id"]), &token)
        .await;
    let frames = gif_frames(&bytes);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].buffer().dimensions(), (96, 96));
    let (status, _) = album
        .json(
            "POST",
            "/api/gifs",
            Some(&token),
            Some(json!({"photo_ids": [1]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Finding "right-to-left-override characters accepted in names": an album name that
/// would display as something else is refused and nothing is made.
#[tokio::test]
async fn names_with_text_direction_controls_are_refused() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let (status, body) = album
        .json(
            "POST",
            "/api/albums",
            Some(&token),
            Some(json!({"name": "Holiday \u{202E}gpj.exe"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(album.count("albums"), 0);
}

/// Finding "GIF parameters checked only after decoding": a bad delay is refused before
/// any photo is looked at (these ids do not even exist).
#[tokio::test]
async fn gif_parameters_are_checked_before_any_photo_is_read() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let (status, body) = album
        .json(
            "POST",
            "/api/gifs",
            Some(&token),
            Some(json!({"photo_ids": [998, 999], "delay_ms": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("delay"),
        "{body}"
    );
}

/// Finding "concurrent identical GIFs give a 500 (UNIQUE constraint)": every request
/// gets the one item; a photo named several times is one frame source, each use a frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_gifs_give_one_item_not_a_500() {
    let album = std::sync::Arc::new(TestAlbum::plain());
    let token = album.user("ann").await;
    album.upload(&token, &class_photos("vehicles", 2)).await;
    let request = json!({"photo_ids": [1, 2, 1, 2, 1], "delay_ms": 100, "size": 64});
    let attempts = (0..6).map(|_| {
        let (album, token, request) = (album.clone(), token.clone(), request.clone());
        tokio::spawn(async move {
            album
                .json("POST", "/api/gifs", Some(&token), Some(request))
                .await
        })
    });
    let mut ids = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        let (status, gif) = attempt.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{gif}");
        ids.push(gif["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, bytes) = album
        .get_bytes(&format!("/api/photos/{}/original", ids[0]), &token)
        .await;
    let frames = gif_frames(&bytes);
    assert_eq!(frames.len(), 5);
    assert_eq!(
        frames[0].buffer(),
        frames[2].buffer(),
        "the same photo, the same frame"
    );
    assert_ne!(frames[0].buffer(), frames[1].buffer());
}

#[tokio::test]
async fn failed_jobs_are_retried_then_reported_and_crashed_ones_resume() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    album.upload(&token, &class_photos("people", 2)).await;
    // A blob that vanished makes the thumbnail job fail on every attempt.
    let sha: String = album
        .state
        .db
        .connection()
        .unwrap()
        .query_row("SELECT sha256 FROM photos WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    album.state.blobs.remove(&sha).unwrap();
    let c = album.state.db.connection().unwrap();
    c.execute("UPDATE jobs SET state = 'running' WHERE photo_id = 2", [])
        .unwrap();
    // A crash left photo 2's job running: start-up queues it again.
    assert_eq!(album_serving::jobs::recover(&c).unwrap(), 1);
    let mut attempts = 0;
    while attempts < 5 {
        album.drain();
        c.execute("UPDATE jobs SET run_after = 0 WHERE state = 'queued'", [])
            .unwrap();
        attempts += 1;
    }
    let (_, jobs) = album.json("GET", "/api/jobs", Some(&token), None).await;
    assert_eq!(
        (
            jobs["total"]["done"].as_i64(),
            jobs["total"]["failed"].as_i64()
        ),
        (Some(1), Some(1)),
        "{jobs}"
    );
    assert_eq!(jobs["failed"][0]["attempts"], 3);
    assert_eq!(jobs["failed"][0]["photo_id"], 1);
    // finding "job errors show internal causes to the user": the vanished blob's path
    // stays in the server's log
    let error = jobs["failed"][0]["error"].as_str().unwrap();
    assert!(!error.contains('/') && !error.contains("blob"), "{error}");
}

/// Finding "no quotas": a user's photos (the trash included) stay within the album's
/// quota; a batch stores what fits and refuses the rest, a user at the quota is refused
/// whole, and emptying the trash makes room again.
#[tokio::test]
async fn uploads_stay_within_the_users_quota() {
    let photos = class_photos("animals", 3);
    let sizes: Vec<u64> = photos.iter().map(|(_, b)| b.len() as u64).collect();
    let quota = sizes[0] + sizes[1] + sizes[2] / 2;
    let album = TestAlbum::new(|c| c.quota_bytes = Some(quota));
    let token = album.user("ann").await;
    let (status, report) = album.upload(&token, &photos).await;
    assert_eq!(status, StatusCode::CREATED);
    let statuses: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["stored", "stored", "refused"], "{report}");
    assert!(
        report["results"][2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quota")
    );
    let (status, _) = album.upload(&token, &photos[2..]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // another user has a quota of their own
    let bob = album.user("bob").await;
    let (status, _) = album.upload(&bob, &photos[2..]).await;
    assert_eq!(status, StatusCode::CREATED);
    // the trash counts until it is emptied
    album
        .json("DELETE", "/api/photos/1", Some(&token), None)
        .await;
    let (status, _) = album.upload(&token, &photos[2..]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    album.json("DELETE", "/api/trash", Some(&token), None).await;
    let (status, _) = album.upload(&token, &photos[2..]).await;
    assert_eq!(status, StatusCode::CREATED);
}
