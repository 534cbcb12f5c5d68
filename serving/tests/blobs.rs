//! The blob store's contract, on whichever back end the suite runs on: the album's own
//! folder by default, an S3 bucket on a real SeaweedFS under `scripts/test-scale-out.sh`
//! (`$ALBUM_TEST_BLOBS`).

mod common;

use std::sync::Arc;

use album_serving::blobs::{BlobLocation, BlobStore, sha256_hex};
use album_serving::check::check_album;
use axum::http::StatusCode;
use common::*;

fn store_in(dir: &tempfile::TempDir) -> (BlobStore, BlobLocation) {
    let location =
        test_blob_location().unwrap_or_else(|| BlobLocation::Local(dir.path().join("blobs")));
    let (store, _) = BlobStore::open(&location).unwrap();
    (store, location)
}

#[test]
fn a_blob_is_stored_once_under_its_hash_and_removed_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_in(&dir);
    let photo = class_photos("animals", 1).remove(0).1;
    let name = store.put(&photo).unwrap();
    assert_eq!(name, sha256_hex(&photo));
    assert_eq!(store.put(&photo).unwrap(), name, "the same bytes again");
    assert!(store.contains(&name).unwrap());
    assert_eq!(store.read(&name).unwrap(), photo);
    assert_eq!(store.names().unwrap(), vec![name.clone()]);
    assert_eq!(store.hash_of(&name).unwrap(), name);
    store.remove(&name).unwrap();
    assert!(!store.contains(&name).unwrap());
    assert!(store.names().unwrap().is_empty());
    store.remove(&name).unwrap();
    assert!(store.read(&name).is_err(), "a removed blob cannot be read");
}

/// Two service instances on one store, writing the same photos at once: every write
/// succeeds, each blob is there once and whole (on S3 the conditional put lets one
/// win and tells the other the blob exists).
#[test]
fn two_stores_writing_the_same_bytes_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let (first, location) = store_in(&dir);
    let (second, _) = BlobStore::open(&location).unwrap();
    let photos = Arc::new(class_photos("vehicles", 6));
    let writers: Vec<_> = [first.clone(), second]
        .into_iter()
        .map(|store| {
            let photos = photos.clone();
            std::thread::spawn(move || {
                photos
                    .iter()
                    .map(|(_, bytes)| store.put(bytes).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let names: Vec<Vec<String>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(names[0], names[1]);
    let mut stored = first.names().unwrap();
    stored.sort();
    let mut expected = names[0].clone();
    expected.sort();
    expected.dedup();
    assert_eq!(stored, expected);
    for (name, (_, bytes)) in names[0].iter().zip(photos.iter()) {
        assert_eq!(&first.read(name).unwrap(), bytes);
    }
}

/// The consistency check reads the same store the album writes: after uploads every
/// original, thumbnail and preview is there and whole.
#[tokio::test]
async fn the_store_check_finds_every_uploaded_photo_whole() {
    let album = TestAlbum::plain();
    let token = album.user("ann").await;
    let (status, _) = album.upload(&token, &class_photos("buildings", 3)).await;
    assert_eq!(status, StatusCode::CREATED);
    album.drain();
    let config = &album.state.config;
    let check = check_album(&config.database_location(), &config.blob_location()).unwrap();
    assert_eq!(check.photos, 3);
    assert_eq!(
        check.blobs, 9,
        "original, thumbnail and preview each: {check:?}"
    );
    assert!(check.is_sound() && check.orphan_blobs == 0, "{check:?}");
}

#[test]
fn an_s3_bucket_that_does_not_exist_is_refused_when_the_store_opens() {
    let Some(BlobLocation::S3(mut location)) = test_blob_location() else {
        // The local back end has no such failure: a missing folder is created.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not/yet/there");
        BlobStore::open(&BlobLocation::Local(root.clone())).unwrap();
        assert!(root.join("tmp").is_dir());
        return;
    };
    location.bucket = "no-such-bucket-here".into();
    let error = BlobStore::open(&BlobLocation::S3(location)).unwrap_err();
    assert!(error.to_string().contains("no-such-bucket-here"), "{error}");
}

/// `album migrate`'s move: an album on local blobs, moved to the store the suite runs on
/// (an S3 bucket under scripts/test-scale-out.sh), is whole there and opens on it.
#[tokio::test]
async fn an_albums_photos_moved_to_another_store_arrive_whole() {
    let album = TestAlbum::new(|c| c.blobs = None);
    let token = album.user("ann").await;
    let (status, _) = album.upload(&token, &class_photos("landscape", 4)).await;
    assert_eq!(status, StatusCode::CREATED);
    album.drain();
    let config = &album.state.config;
    let from = config.blob_location();
    let elsewhere = tempfile::tempdir().unwrap();
    let to =
        test_blob_location().unwrap_or_else(|| BlobLocation::Local(elsewhere.path().join("blobs")));
    let moved = album_serving::migrate::copy_blobs(&from, &to, 4, &|| {}).unwrap();
    assert_eq!((moved.copied, moved.already_there), (12, 0), "{moved:?}");
    let check = check_album(&config.database_location(), &to).unwrap();
    assert!(check.is_sound() && check.blobs == 12, "{check:?}");
    // the album opens on the new store and serves the photos from it
    let mut moved_config = (**config).clone();
    moved_config.blobs = Some(to);
    let moved_album = album_serving::AppState::open(moved_config).unwrap();
    let (source, _) = BlobStore::open(&from).unwrap();
    for name in source.names().unwrap() {
        assert_eq!(
            moved_album.blobs.read(&name).unwrap(),
            source.read(&name).unwrap()
        );
    }
}

/// Regression: with several instances on one store, a purge on one instance could delete
/// a blob between another instance's put of the same bytes (which found the blob there
/// and wrote nothing) and the commit of the row naming it: an acknowledged photo without
/// its original. The purge deletes under the database's write lock, and a blob that was
/// already there is confirmed under the same lock before its row commits.
#[tokio::test]
async fn a_purge_on_another_instance_between_a_put_and_its_commit_loses_nothing() {
    let album = TestAlbum::plain();
    let ann = album.user("ann").await;
    let photo = class_photos("buildings", 1);
    let (status, report) = album.upload(&ann, &photo).await;
    assert_eq!(status, StatusCode::CREATED, "{report}");
    let id = report["results"][0]["photo"]["id"].as_i64().unwrap();
    let (status, _) = album
        .json("DELETE", &format!("/api/photos/{id}"), Some(&ann), None)
        .await;
    assert!(status.is_success());
    let blobs = &album.state.blobs;
    let bytes = &photo[0].1;

    // this instance's upload of the same bytes puts its blob: already there
    let staged = blobs.stage(bytes).unwrap();
    // meanwhile the other instance empties ann's trash: her row and the blob go
    let (status, _) = album.json("DELETE", "/api/trash", Some(&ann), None).await;
    assert!(status.is_success());
    assert!(!blobs.contains(staged.name()).unwrap());
    // the upload's transaction confirms its blob before the row commits
    let c = album.state.db.connection().unwrap();
    let transaction = c.write_transaction().unwrap();
    let name = staged.confirm(blobs, &transaction).unwrap().to_owned();
    transaction.commit().unwrap();
    assert_eq!(blobs.read(&name).unwrap(), *bytes);
}
