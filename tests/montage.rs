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

/// A real photo's JPEG bytes with an EXIF DateTimeOriginal block added.
fn with_date(jpeg: &[u8], taken: &str) -> Vec<u8> {
    use exif::experimental::Writer;
    use exif::{Field, In, Tag, Value};
    let field = Field {
        tag: Tag::DateTimeOriginal,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![taken.as_bytes().to_vec()]),
    };
    let mut writer = Writer::new();
    writer.push_field(&field);
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let payload = [b"Exif\0\0".as_slice(), tiff.get_ref()].concat();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Photos over three days, the second day the busiest and holding one photo twice (the
/// same shot saved again an hour later): `--auto` finds the three days as events, takes
/// the second, and never picks both copies.
#[test]
fn the_automatic_choice_finds_the_days_and_skips_the_near_duplicate() {
    let temp = tempfile::tempdir().unwrap();
    let photos = temp.path().join("holiday");
    std::fs::create_dir_all(&photos).unwrap();
    let plan = [
        ("2024:06:03", vec![9, 12, 15]),
        ("2024:06:04", vec![8, 10, 12, 14, 16]),
        ("2024:06:05", vec![10, 11]),
    ];
    let classes = ["people", "landscape", "vehicles", "animals", "buildings"];
    let mut n = 0;
    for (day, hours) in &plan {
        for &hour in hours {
            let source = std::fs::read(five_class_photo(classes[n % 5], n % 10)).unwrap();
            let name = format!("{n:02}.jpg");
            std::fs::write(
                photos.join(&name),
                with_date(&source, &format!("{day} {hour:02}:00:00")),
            )
            .unwrap();
            n += 1;
        }
    }
    // the 4th of June's 10 o'clock photo (file 04), saved again at 11
    let copy = std::fs::read(photos.join("04.jpg")).unwrap();
    let original = String::from_utf8_lossy(&copy).into_owned();
    assert!(original.contains("2024:06:04 10:00:00"));
    let source = std::fs::read(five_class_photo(classes[4], 4)).unwrap();
    std::fs::write(
        photos.join("dup.jpg"),
        with_date(&source, "2024:06:04 11:00:00"),
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args(["montage", "--auto", "--dry-run", "--no-faces", "--photos"])
        .arg(&photos)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 events in 11 photos"), "{stdout}");
    assert!(
        stdout.contains("chosen from the largest event (6 photos"),
        "{stdout}"
    );
    let chosen: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("chosen"))
        .skip(1)
        .collect();
    assert_eq!(chosen.len(), 5, "{stdout}");
    assert!(chosen.iter().all(|l| l.contains("2024-06-04")), "{stdout}");
    let copies = chosen
        .iter()
        .filter(|l| l.contains("04.jpg") || l.contains("dup.jpg"))
        .count();
    assert_eq!(copies, 1, "{stdout}");
}

#[test]
fn the_rendering_benchmark_prints_both_resolutions() {
    let temp = tempfile::tempdir().unwrap();
    let json = temp.path().join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args([
            "bench",
            "montage",
            "--count",
            "2",
            "--rounds",
            "1",
            "--seconds-per-photo",
            "1",
        ])
        .arg("--json")
        .arg(&json)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("| 720p |") && stdout.contains("| 1080p |"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for row in report["rows"].as_array().unwrap() {
        assert_eq!(row["video_seconds"], 4.5);
        assert!(row["rates"][0].as_f64().unwrap() > 0.0);
    }
}
