//! `album montage` end to end: real photos from the shared set to an MP4 that ffprobe
//! reads back with the length the photos and the title card add up to; bad input is a
//! clear error with exit code 2 and no video.

use std::path::Path;
use std::process::Command;

use album_montage::probe::probe;

fn five_class_photo(class: &str, index: usize) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets/five-class")
        .join(class);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.swap_remove(index * files.len() / 10)
}

#[test]
fn three_photos_make_a_video_of_the_expected_length() {
    let temp = tempfile::tempdir().unwrap();
    let photos = temp.path().join("trip");
    std::fs::create_dir_all(&photos).unwrap();
    for (i, class) in ["people", "landscape", "vehicles"].iter().enumerate() {
        let source = five_class_photo(class, 7);
        std::fs::copy(&source, photos.join(format!("{i}.jpg"))).unwrap();
    }
    std::fs::write(photos.join("notes.txt"), b"not a photo").unwrap();
    let out = temp.path().join("trip.mp4");
    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args([
            "montage",
            "--no-faces",
            "--seconds-per-photo",
            "1.5",
            "--crossfade",
            "0.3",
        ])
        .arg("--photos")
        .arg(&photos)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 photos"), "{stdout}");
    let facts = probe(&out).unwrap();
    // a 2.5 s title card and 3 × 1.5 s of photos
    assert!((facts.duration - 7.0).abs() < 0.15, "{facts:?}");
    assert_eq!((facts.width, facts.height), (1280, 720));
}

#[test]
fn a_folder_without_photos_is_a_clear_error_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("none.mp4");
    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args(["montage", "--no-faces", "--photos"])
        .arg(temp.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no photos"), "{stderr}");
    assert!(!out.exists());
}
