//! `album dataset pack` on real photos (a few per class from
//! `../shared/datasets/five-class`, beside the checkout): the pack is a split folder a
//! trainer reads as it is, under its byte budget, and it says what it holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use album_dataset::data::read_dimensions;
use album_dataset::gallery::PhotoFolder;
use album_dataset::manifest::{Manifest, ManifestRecord, write_manifest};
use album_dataset::pack::{PackOptions, pack_splits};
use sha2::{Digest, Sha256};

const PHOTOS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class"
);

/// A split folder with `train` and `val` photos per class, paths relative to it as
/// `album dataset split` writes them.
fn small_split(dir: &Path, train: usize, val: usize) -> PathBuf {
    let folder = PhotoFolder::scan(Path::new(PHOTOS), Some(train + val))
        .expect("the five-class photos beside the checkout (../shared/datasets/five-class)");
    let split_dir = dir.join("split");
    std::fs::create_dir_all(&split_dir).unwrap();
    let (mut train_rows, mut val_rows) = (Vec::new(), Vec::new());
    for class in &folder.classes {
        for (i, file) in class.files.iter().enumerate() {
            let path = folder.root.join(&class.name).join(file);
            let bytes = std::fs::read(&path).unwrap();
            let (width, height) = read_dimensions(&path).unwrap();
            let record = ManifestRecord {
                path: path.to_string_lossy().into_owned(),
                class: class.name.clone(),
                image_url: format!("http://127.0.0.1:1/photos/{}/{file}", class.name),
                page_url: String::new(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                phash: 7,
                width,
                height,
                bytes: bytes.len() as u64,
                fetched_at: String::new(),
            };
            if i < train {
                &mut train_rows
            } else {
                &mut val_rows
            }
            .push(record);
        }
    }
    write_manifest(&split_dir.join("train.parquet"), &train_rows).unwrap();
    write_manifest(&split_dir.join("val.parquet"), &val_rows).unwrap();
    split_dir
}

fn options(max_mib: f64) -> PackOptions {
    PackOptions {
        side: 64,
        splits: vec!["train".into(), "val".into()],
        per_class: BTreeMap::from([("val".to_owned(), 2)]),
        per_class_default: 0,
        max_bytes: (max_mib * 1024.0 * 1024.0) as u64,
        progress: false,
    }
}

#[test]
fn a_pack_is_a_split_folder_of_square_jpegs_under_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 4, 3);
    let out = dir.path().join("pack");
    let summary = pack_splits(&split, &out, &options(1.0)).unwrap();

    assert_eq!(summary.splits["train"].photos, 20);
    // the per-split limit: 2 of each class's 3 val photos
    assert_eq!(summary.splits["val"].photos, 10);
    assert!(summary.splits["val"].per_class.values().all(|&n| n == 2));
    assert!(summary.total_bytes <= summary.max_bytes);
    assert_eq!(
        summary.jpeg_quality, 90,
        "a generous budget keeps the best quality"
    );
    assert!(out.join("pack.json").is_file() && out.join("train.parquet").is_file());
    assert!(!dir.path().join("pack.partial").exists());

    let original = Manifest::load(&split.join("train.parquet")).unwrap();
    let packed = Manifest::load(&out.join("train.parquet")).unwrap();
    for (before, after) in original.records.iter().zip(&packed.records) {
        let file = packed.file_path(after);
        let bytes = std::fs::read(&file).unwrap();
        // the record describes the packed file, and keeps where the photo came from
        assert_eq!(after.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(after.bytes, bytes.len() as u64);
        assert_eq!((after.width, after.height), (64, 64));
        assert_eq!(read_dimensions(&file).unwrap(), (64, 64));
        assert_eq!(
            (&after.class, &after.image_url),
            (&before.class, &before.image_url)
        );
        assert_eq!(after.phash, before.phash);
        assert!(after.path.starts_with("photos/"), "{}", after.path);
    }
}

#[test]
fn a_tight_budget_lowers_the_quality_and_an_impossible_one_says_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 4, 3);
    let roomy = pack_splits(&split, &dir.path().join("roomy"), &options(1.0)).unwrap();
    let budget = roomy.total_bytes as f64 * 0.8 / 1048576.0;
    let tight = pack_splits(&split, &dir.path().join("tight"), &options(budget)).unwrap();
    assert!(tight.jpeg_quality < roomy.jpeg_quality);
    assert!(tight.total_bytes <= tight.max_bytes);

    let err = pack_splits(&split, &dir.path().join("tiny"), &options(0.001)).unwrap_err();
    assert!(
        err.to_string()
            .contains("fewer photos per class or a smaller side"),
        "{err}"
    );
    assert!(!dir.path().join("tiny").exists() && !dir.path().join("tiny.partial").exists());
    // an existing folder is never written into
    let err = pack_splits(&split, &dir.path().join("roomy"), &options(1.0)).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn a_limit_for_a_split_that_is_not_packed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let split = small_split(dir.path(), 1, 1);
    let mut wrong = options(1.0);
    wrong.per_class = BTreeMap::from([("vall".to_owned(), 2)]);
    let err = pack_splits(&split, &dir.path().join("pack"), &wrong).unwrap_err();
    assert!(err.to_string().contains("\"vall\""), "{err}");
}
