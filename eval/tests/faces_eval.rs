//! `album faces eval` end to end on a small real sample: six LFW people, three photos
//! each, through the real models; every report file written and the figures sane.

use std::path::PathBuf;

use album_eval::faces::{FacesEvalOptions, evaluate_faces, write_faces_report};
use album_eval::read_parquet;
use burn::tensor::Device;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn weights_dir() -> PathBuf {
    std::env::var_os("ALBUM_FACE_WEIGHTS")
        .map_or_else(|| repo().join("data/weights"), PathBuf::from)
}

/// Copies the first `photos` photos of the first `people` people into a fresh folder.
fn sample(people: usize, photos: usize) -> tempfile::TempDir {
    let source = repo().join("../shared/datasets/faces");
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&source)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    for person in names.iter().take(people) {
        let target = dir.path().join(person.file_name().unwrap());
        std::fs::create_dir(&target).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(person)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files.iter().take(photos) {
            std::fs::copy(file, target.join(file.file_name().unwrap())).unwrap();
        }
    }
    dir
}

#[test]
fn faces_eval_on_six_people_writes_every_table_and_scores_them_well() {
    let faces = sample(6, 3);
    // A file that is not a photo must be skipped by name, and a corrupt "photo" recorded.
    std::fs::write(faces.path().join("notes.txt"), "not a person").unwrap();
    let first_person = std::fs::read_dir(faces.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    std::fs::write(
        first_person.join("broken.jpg"),
        b"\xff\xd8\xff\xe0 not really",
    )
    .unwrap();

    let mut options = FacesEvalOptions::new(faces.path().to_path_buf(), weights_dir());
    options.quiet = true;
    options.min_faces = 2;
    let eval = evaluate_faces(&options, &Device::flex()).unwrap();
    assert_eq!(eval.photos.len(), 19);
    assert_eq!(eval.photos.iter().filter(|p| p.error.is_some()).count(), 1);
    assert!(
        eval.detection_rate() >= 18.0 / 19.0 - 1e-9,
        "{}",
        eval.detection_rate()
    );
    let v = &eval.quality.verification;
    assert_eq!(v.same_pairs, 6 * 3);
    assert!(v.roc_auc > 0.95, "{v:?}");
    assert!(v.fixed_balanced_accuracy > 0.9, "{v:?}");

    let out = tempfile::tempdir().unwrap();
    let written = write_faces_report(&eval, out.path(), &["test".into()]).unwrap();
    for name in [
        "photos.parquet",
        "verification.csv",
        "clustering.parquet",
        "sweep.png",
        "timing.csv",
        "summary.md",
    ] {
        assert!(
            written.iter().any(|p| p.ends_with(name)),
            "{name} missing from {written:?}"
        );
    }
    let clustering = read_parquet(&out.path().join("clustering.parquet")).unwrap();
    assert_eq!(clustering.height(), 6, "three methods × two populations");
    let f1 = clustering.column("bcubed_f1").unwrap().f64().unwrap();
    assert!(
        (0..f1.len())
            .filter_map(|i| f1.get(i))
            .all(|v| (0.0..=1.0).contains(&v))
    );
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(summary.contains("held-out"), "{summary}");
}

#[test]
fn a_folder_without_people_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let options = FacesEvalOptions::new(empty.path().to_path_buf(), weights_dir());
    let error = evaluate_faces(&options, &Device::flex()).expect_err("no photos, no evaluation");
    assert!(error.to_string().contains("no photos found"), "{error}");
}
