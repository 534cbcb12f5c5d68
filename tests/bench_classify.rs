//! `album bench classify` end to end: real five-class photos in category folders, a real
//! `album serve` child process with the default model bundle, uploads over HTTP, the
//! categories read back from the listing. A file that is not a photo is refused by the
//! service and reported with its reason, and the rest are still scored.

use std::path::Path;
use std::process::Command;

#[test]
fn a_folder_of_category_folders_is_scored_through_the_service() {
    let five_class = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/five-class");
    assert!(five_class.is_dir(), "{} is missing", five_class.display());
    let temp = tempfile::tempdir().unwrap();
    let photos = temp.path().join("photos");
    let categories = ["animals", "buildings", "landscape", "people", "vehicles"];
    for category in categories {
        let mut files: Vec<_> = std::fs::read_dir(five_class.join(category))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        // five photos spread over the folder's sources
        let target = photos.join(category);
        std::fs::create_dir_all(&target).unwrap();
        for i in 0..5 {
            let file = &files[i * files.len() / 5];
            std::fs::copy(file, target.join(file.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(photos.join("people/broken.jpg"), b"not a JPEG at all").unwrap();
    std::fs::write(photos.join("notes.txt"), b"skipped").unwrap();

    let json = temp.path().join("classify.json");
    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args(["bench", "classify", "--no-faces", "--clients", "3"])
        .arg("--photos")
        .arg(&photos)
        .arg("--json")
        .arg(&json)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("| people |"), "{stdout}");
    assert!(
        stdout.contains("refused: ") && stdout.contains("broken.jpg"),
        "{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scored"], 25);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["refused"].as_array().unwrap().len(), 1);
    let per_category = report["per_category"].as_array().unwrap();
    assert_eq!(per_category.len(), 5);
    for score in per_category {
        let predicted: u64 = score["predicted"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(predicted, 5, "every stored photo got a category: {score}");
    }
    // photos from the set the default bundle was trained and tested on: a mix-up of the
    // categories' names (ids, order) would score near chance (20 %)
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.6, "{accuracy}: {stdout}");
}

#[test]
fn a_folder_named_after_no_category_is_refused_before_anything_starts() {
    let temp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(temp.path().join("cats")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args(["bench", "classify", "--no-faces", "--photos"])
        .arg(temp.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cats") && stderr.contains("people"),
        "{stderr}"
    );
}
