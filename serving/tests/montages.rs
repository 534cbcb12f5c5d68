//! Video montages through the service: `POST /api/montages` queues a render, the job
//! renders it with the real ffmpeg from real photos, and the video is a new item of kind
//! `video` whose original is the MP4 and whose thumbnail is its poster frame. Limits are
//! refused before anything is queued; a render cut short by a crash leaves no item and
//! runs again; the automatic choice takes the largest event and drops near-duplicates.

mod common;

use album_montage::probe::{likeness, probe};
use album_serving::jobs;
use axum::http::StatusCode;
use common::{TestAlbum, class_photos, taken_at};
use serde_json::{Value, json};

fn video_items(album: &TestAlbum) -> i64 {
    album
        .state
        .db
        .connection()
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM photos WHERE kind = 'video'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Three real photos of different classes, ids 1, 2, 3.
async fn three_photos(album: &TestAlbum, token: &str) -> Vec<Vec<u8>> {
    let photos: Vec<(String, Vec<u8>)> = ["animals", "buildings", "vehicles"]
        .iter()
        .flat_map(|class| class_photos(class, 1))
        .collect();
    let (status, body) = album.upload(token, &photos).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    photos.into_iter().map(|(_, bytes)| bytes).collect()
}

async fn montage(album: &TestAlbum, token: &str, id: &Value) -> Value {
    let (status, body) = album
        .json("GET", &format!("/api/montages/{id}"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_montage_of_chosen_photos_becomes_a_video_item_and_can_be_rebuilt() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let originals = three_photos(&album, &token).await;
    album.drain(); // thumbnails and previews

    let (status, queued) = album
        .json(
            "POST",
            "/api/montages",
            Some(&token),
            Some(json!({"photo_ids": [3, 1, 2], "seconds_per_photo": 1.0, "title": "Three"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["photo_ids"], json!([3, 1, 2]));
    assert_eq!(video_items(&album), 0, "no item before the render");

    album.drain();
    let done = montage(&album, &token, &queued["id"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["progress"], 1.0);
    let video_id = done["video_id"].as_i64().expect("a video item");
    let (_, item) = album
        .json(
            "GET",
            &format!("/api/photos/{video_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (item["kind"].as_str(), item["mime"].as_str()),
        (Some("video"), Some("video/mp4"))
    );
    assert_eq!(
        (item["width"].as_i64(), item["height"].as_i64()),
        (Some(1280), Some(720))
    );
    assert_eq!(item["name"], "Three.mp4");
    assert_eq!(item["thumbnail_ready"], true);

    let (status, mp4) = album
        .get_bytes(&format!("/api/photos/{video_id}/original"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.mp4");
    std::fs::write(&path, &mp4).unwrap();
    let facts = probe(&path).unwrap();
    assert_eq!(
        (facts.width, facts.height, facts.codec.as_str()),
        (1280, 720, "h264")
    );
    let seconds = done["seconds"].as_f64().unwrap();
    assert!(
        (facts.duration - seconds).abs() < 0.15,
        "{facts:?} vs {seconds}"
    );

    // the poster is the first photo shown (photo 3), not the others
    let (_, poster) = album
        .get_bytes(&format!("/api/photos/{video_id}/preview"), &token)
        .await;
    let poster = image::load_from_memory(&poster).unwrap().to_rgb8();
    let scores: Vec<f64> = originals
        .iter()
        .map(|bytes| likeness(&poster, &image::load_from_memory(bytes).unwrap().to_rgb8()))
        .collect();
    assert!(
        scores[2] > scores[0] && scores[2] > scores[1],
        "the poster should show photo 3: {scores:?}"
    );

    // rebuilt without photo 1, the rest swapped: a new, shorter video; the old one stays
    let (status, rebuilt) = album
        .json(
            "POST",
            &format!("/api/montages/{}/rebuild", queued["id"]),
            Some(&token),
            Some(json!({"photo_ids": [2, 3]})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{rebuilt}");
    assert_eq!(rebuilt["rebuilt_from"], queued["id"]);
    assert_eq!(rebuilt["title"], "Three");
    album.drain();
    let rebuilt = montage(&album, &token, &rebuilt["id"]).await;
    assert_eq!(rebuilt["state"], "done", "{rebuilt}");
    assert_ne!(rebuilt["video_id"].as_i64(), Some(video_id));
    assert!(rebuilt["seconds"].as_f64().unwrap() < seconds);
    assert_eq!(video_items(&album), 2);
    let (_, list) = album.json("GET", "/api/montages", Some(&token), None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));

    // someone else sees none of it
    let bob = album.user("bob").await;
    let (status, _) = album
        .json(
            "GET",
            &format!("/api/montages/{}", queued["id"]),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn montage_requests_over_the_limits_are_refused_and_queue_nothing() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    three_photos(&album, &token).await;
    let bob = album.user("bob").await;
    let cases = [
        (
            json!({"photo_ids": (1..=301).collect::<Vec<i64>>()}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 300",
        ),
        (
            json!({"photo_ids": (1..=200).collect::<Vec<i64>>(), "seconds_per_photo": 10.0}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit is 600 s",
        ),
        (
            json!({"photo_ids": [1, 2], "seconds_per_photo": 0.1}),
            StatusCode::BAD_REQUEST,
            "s a photo",
        ),
        (
            json!({"photo_ids": []}),
            StatusCode::BAD_REQUEST,
            "at least one photo",
        ),
        (
            json!({"photo_ids": [1], "album_id": 1}),
            StatusCode::BAD_REQUEST,
            "not both",
        ),
        (
            json!({"photo_ids": [1], "resolution": "4k"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"category": "animals", "from": "yesterday"}),
            StatusCode::BAD_REQUEST,
            "YYYY-MM-DD",
        ),
        (
            json!({"category": "nothing-like-this"}),
            StatusCode::BAD_REQUEST,
            "no photos match",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "no photos with a date"),
    ];
    for (request, expected, says) in cases {
        let (status, body) = album
            .json("POST", "/api/montages", Some(&token), Some(request.clone()))
            .await;
        assert_eq!(status, expected, "{request}: {body}");
        assert!(body.to_string().contains(says), "{request}: {body}");
    }
    // ann's photos are not bob's to use
    let (status, _) = album
        .json(
            "POST",
            "/api/montages",
            Some(&bob),
            Some(json!({"photo_ids": [1, 2]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(album.count("montages"), 0);
    let montage_jobs: i64 = album
        .state
        .db
        .connection()
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'montage'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(montage_jobs, 0);
}

/// A worker that dies mid-render leaves its job `running` and a `.part` file; on
/// start-up the job is queued again, renders, and exactly one video item appears.
#[tokio::test]
async fn a_render_cut_short_by_a_crash_leaves_no_item_and_runs_again() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    three_photos(&album, &token).await;
    album.drain();
    let (status, queued) = album
        .json(
            "POST",
            "/api/montages",
            Some(&token),
            Some(json!({"photo_ids": [1, 2], "seconds_per_photo": 1.0, "orientation": "portrait"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    {
        let c = album.state.db.connection().unwrap();
        let job = jobs::claim(&album.state, &c)
            .unwrap()
            .expect("the render job");
        assert_eq!(job.kind, "montage");
        // the crash: the job stays `running` under a lease no one renews (here it has
        // run out already), half a video lies in the render folder
        c.execute("UPDATE jobs SET lease_until = 0 WHERE id = ?1", [job.id])
            .unwrap();
    }
    let renders = album.state.config.data_dir.join("montages");
    std::fs::create_dir_all(&renders).unwrap();
    let part = renders.join(format!("montage-{}.mp4.part", queued["id"]));
    std::fs::write(&part, b"half a video").unwrap();
    assert_eq!(
        montage(&album, &token, &queued["id"]).await["state"],
        "running"
    );
    assert_eq!(video_items(&album), 0);

    assert_eq!(
        jobs::recover(&album.state.db.connection().unwrap()).unwrap(),
        1
    );
    album.drain();
    let done = montage(&album, &token, &queued["id"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(video_items(&album), 1);
    assert!(
        !part.exists(),
        "the half video was replaced and the whole one stored"
    );
    let (_, item) = album
        .json(
            "GET",
            &format!("/api/photos/{}", done["video_id"]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (item["width"].as_i64(), item["height"].as_i64()),
        (Some(720), Some(1280))
    );
}

/// Real photos over three days (EXIF dates): "memories" takes the largest day, one of
/// a near-duplicate pair, in time order; an album rule takes the album's photos.
#[tokio::test]
async fn memories_take_the_largest_event_without_near_duplicates() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let buildings = class_photos("buildings", 4);
    let animals = class_photos("animals", 2);
    let landscape = class_photos("landscape", 1);
    // the first building again, re-encoded: other bytes, the same picture
    let again = {
        let image = image::load_from_memory(&buildings[0].1).unwrap();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
            .encode_image(&image)
            .unwrap();
        jpeg
    };
    let mut files = vec![
        (
            "a1.jpg".to_owned(),
            taken_at(&animals[0].1, "2024:05:01 10:00:00"),
        ),
        (
            "a2.jpg".to_owned(),
            taken_at(&animals[1].1, "2024:05:01 10:30:00"),
        ),
    ];
    for (i, (_, bytes)) in buildings.iter().enumerate() {
        let time = format!("2024:05:03 {:02}:00:00", 9 + i);
        files.push((format!("b{i}.jpg"), taken_at(bytes, &time)));
    }
    files.push((
        "b0-again.jpg".to_owned(),
        taken_at(&again, "2024:05:03 09:05:00"),
    ));
    files.push((
        "l1.jpg".to_owned(),
        taken_at(&landscape[0].1, "2024:05:07 15:00:00"),
    ));
    let (status, body) = album.upload(&token, &files).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    album.drain(); // the thumbnails the near-duplicate check reads

    let (status, memories) = album
        .json(
            "POST",
            "/api/montages",
            Some(&token),
            Some(json!({"length": "short"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{memories}");
    assert_eq!(memories["title"], "Memories");
    assert_eq!(memories["subtitle"], "3 May 2024");
    let picked: Vec<i64> = serde_json::from_value(memories["photo_ids"].clone()).unwrap();
    // ids 3..=6 are the four buildings, 7 the re-encoded copy of the first
    assert_eq!(picked.len(), 4, "{picked:?}");
    assert!(picked.iter().all(|id| (3..=7).contains(id)), "{picked:?}");
    assert!(
        !(picked.contains(&3) && picked.contains(&7)),
        "both near-duplicates were picked: {picked:?}"
    );
    assert!(picked.contains(&4) && picked.contains(&5) && picked.contains(&6));

    let (_, holiday) = album
        .json(
            "POST",
            "/api/albums",
            Some(&token),
            Some(json!({"name": "Zoo day"})),
        )
        .await;
    let (status, _) = album
        .json(
            "POST",
            &format!("/api/albums/{}/photos", holiday["id"]),
            Some(&token),
            Some(json!({"photo_ids": [2, 1, 8]})),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, from_album) = album
        .json(
            "POST",
            "/api/montages",
            Some(&token),
            Some(json!({"album_id": holiday["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{from_album}");
    assert_eq!(from_album["title"], "Zoo day");
    assert_eq!(from_album["photo_ids"], json!([1, 2, 8]), "in time order");
}

/// `seconds` of a 440 Hz tone as a WAV file, made by the real ffmpeg.
fn tone(seconds: f64) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-f", "wav", "-"])
        .output()
        .expect("ffmpeg (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

async fn add_music(
    album: &TestAlbum,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let (content_type, body) = common::multipart(&[(name.to_owned(), bytes)]);
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/api/music")
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .unwrap();
    let (status, bytes) = album.send(request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Music uploaded through the service is checked by ffprobe, kept as the user's, and
/// plays under the montage (looped, as the tone is shorter than the video); a file
/// with no sound is refused and keeps nothing.
#[tokio::test]
async fn uploaded_music_plays_under_the_montage_and_a_file_without_sound_is_refused() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let originals = three_photos(&album, &token).await;
    album.drain();
    let blobs_before = album.blob_files();

    let (status, body) = add_music(&album, &token, "photo.mp3", originals[0].clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("photo.mp3"), "{body}");
    let (status, body) = add_music(&album, &token, "empty.wav", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        (album.count("music"), album.blob_files()),
        (0, blobs_before)
    );

    let (status, music) = add_music(&album, &token, "folder/tone.wav", tone(2.0)).await;
    assert_eq!(status, StatusCode::CREATED, "{music}");
    assert_eq!(music["name"], "tone.wav");
    assert!(
        (music["seconds"].as_f64().unwrap() - 2.0).abs() < 0.05,
        "{music}"
    );
    let (_, listed) = album.json("GET", "/api/music", Some(&token), None).await;
    assert_eq!(listed, json!([music.clone()]));

    // bob can neither list nor use ann's music
    let bob = album.user("bob").await;
    let (_, bobs) = album.json("GET", "/api/music", Some(&bob), None).await;
    assert_eq!(bobs, json!([]));

    let (status, queued) = album
        .json(
            "POST",
            "/api/montages",
            Some(&token),
            Some(json!({"photo_ids": [1, 2], "seconds_per_photo": 2.0, "music_id": music["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["music_id"], music["id"]);
    album.drain();
    let done = montage(&album, &token, &queued["id"]).await;
    assert_eq!(done["state"], "done", "{done}");
    let (_, mp4) = album
        .get_bytes(
            &format!("/api/photos/{}/original", done["video_id"]),
            &token,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("with-music.mp4");
    std::fs::write(&path, &mp4).unwrap();
    let facts = probe(&path).unwrap();
    assert!(facts.has_audio, "{facts:?}");
    let seconds = done["seconds"].as_f64().unwrap();
    assert!(
        seconds > 4.0 && (facts.duration - seconds).abs() < 0.15,
        "{facts:?} vs {seconds}"
    );
    let renders = album.state.config.data_dir.join("montages");
    let left: Vec<_> = std::fs::read_dir(&renders)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the render's files are cleaned up: {left:?}"
    );

    let (status, _) = album
        .json(
            "POST",
            "/api/montages",
            Some(&bob),
            Some(json!({"photo_ids": [], "music_id": music["id"]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "ann's music is not bob's to use"
    );
}
