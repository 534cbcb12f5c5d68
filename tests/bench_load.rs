//! `album bench load` end to end at a small size: a real `album serve` child process on
//! 127.0.0.1, real five-class photos, a SIGKILL half-way and a restart. The command
//! checks its own claims (every photo acknowledged and byte-identical, the data folder
//! sound while dead and after the stop, the job queue finished) and fails otherwise.

use std::path::Path;
use std::process::Command;

#[test]
fn a_small_load_run_survives_a_kill_and_every_check_passes() {
    let five_class = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/five-class");
    assert!(five_class.is_dir(), "{} is missing", five_class.display());
    let temp = tempfile::tempdir().unwrap();
    let json = temp.path().join("load.json");
    let output = Command::new(env!("CARGO_BIN_EXE_album"))
        .args(["bench", "load", "--count", "60", "--kill-after", "30"])
        .args(["--clients", "4", "--read-clients", "8", "--reads", "3"])
        .args(["--no-model", "--no-faces", "--jobs-time-limit-s", "120"])
        .arg("--photos")
        .arg(&five_class)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every check passed"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["acknowledged"], 60);
    assert_eq!(report["verified"]["identical"], 60);
    let crash = &report["crash"];
    assert!(crash["acknowledged_before_kill"].as_u64().unwrap() >= 30);
    assert_eq!(
        crash["store_while_dead"]["corrupt_blobs"],
        serde_json::json!([])
    );
    assert_eq!(
        crash["store_while_dead"]["missing_blobs"],
        serde_json::json!([])
    );
    assert_eq!(report["store_after_stop"]["photos"], 60);
    assert_eq!(report["jobs"]["progress"]["total"]["failed"], 0);
}
