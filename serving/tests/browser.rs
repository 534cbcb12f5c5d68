//! The web page in a real headless browser. This starts the whole service in-process (the
//! router on a real socket, the background workers with the real classifier and face
//! models, a temp data folder), then runs `serving/web/tests/album.spec.mjs` under node:
//! Playwright drives Chromium through sign-in, an upload of three LFW photos (dated by
//! EXIF), the timeline's order and day headings, next/previous in the viewer, People
//! (waiting for the background face jobs), a rename, a merge and a hidden person, search,
//! a photo to the trash and back, a video montage of the three photos, made in the
//! background and played in the page, a shift-click selection added to an album and
//! trashed, and the page on a phone.
//!
//! Needs Chromium and `serving/web/node_modules` (`scripts/setup-browser.sh` installs
//! both); without them it fails, saying so, rather than passing without a browser.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use album_serving::jobs::Workers;
use album_serving::{AppState, ServeConfig, app};
use common::{
    default_bundle, face_weights, faces_dir, taken_at, taken_at_in, test_blob_location, workspace,
};

/// Longer than the script's own 330 s watchdog, so the script normally reports first.
const NODE_DEADLINE: Duration = Duration::from_secs(400);

const SETUP: &str = "run scripts/setup-browser.sh (installs Chromium and serving/web/node_modules)";

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails with the fix when something the browser test needs is missing.
fn check_browser_setup(web: &Path) {
    let browser = chromium();
    assert!(
        browser.is_file(),
        "no Chromium at {} ($CHROMIUM overrides the path): {SETUP}",
        browser.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node does not run ({node:?}): {SETUP}"
    );
    let playwright = web.join("node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "{} is missing: {SETUP}",
        playwright.display()
    );
}

#[test]
fn in_chromium_a_user_signs_in_uploads_renames_a_person_and_restores_a_trashed_photo() {
    let web = workspace().join("serving/web");
    check_browser_setup(&web);
    let weights = face_weights();
    assert!(
        weights.join("retinaface-mobilenet0.25.onnx").is_file(),
        "no face models in {}: run scripts/setup.sh (or scripts/fetch-face-weights.sh)",
        weights.display()
    );
    // Three photos of one person (a person needs three faces), so People has one to show.
    let photos: Vec<PathBuf> = [
        "Abdullah_Gul/Abdullah_Gul_0001.jpg",
        "Abdullah_Gul/Abdullah_Gul_0002.jpg",
        "Abdullah_Gul/Abdullah_Gul_0003.jpg",
    ]
    .iter()
    .map(|p| faces_dir().join(p))
    .collect();
    for photo in &photos {
        assert!(
            photo.is_file(),
            "{} is missing (../shared/datasets/faces)",
            photo.display()
        );
    }

    let temp = tempfile::tempdir().unwrap();
    // Dated by EXIF so that the timeline has an order to show: the second photo is the
    // newest taken (2021), the first and third share a day (2019), the third later in it.
    // The first was taken in Paris too (48.8566 N, 2.3522 E): a place on the map.
    let dates = [
        "2019:05:04 09:00:00",
        "2021:08:15 12:00:00",
        "2019:05:04 17:30:00",
    ];
    let photos: Vec<PathBuf> = photos
        .iter()
        .zip(dates)
        .enumerate()
        .map(|(i, (photo, date))| {
            let jpeg = std::fs::read(photo).unwrap();
            let dated = temp.path().join(photo.file_name().unwrap());
            let bytes = if i == 0 {
                taken_at_in(&jpeg, date, 48.8566, 2.3522)
            } else {
                taken_at(&jpeg, date)
            };
            std::fs::write(&dated, bytes).unwrap();
            dated
        })
        .collect();
    let mut config = ServeConfig::new(temp.path().join("album"));
    config.model_bundle = Some(default_bundle());
    config.face_weights = Some(weights);
    config.blobs = test_blob_location();
    config.database = common::test_database();
    let state = AppState::open(config).expect("open the album");
    let workers = Workers::start(&state).expect("start the workers (models load here)");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The memory budget is full until the page has shown the first upload answered
    // "busy" (503): the page must wait the Retry-After and send it again, losing nothing.
    let budget = state.decoding.budget.clone();
    let router = app(state);
    runtime.spawn(async move { axum::serve(listener, router).await });

    // Output goes to files (no pipe to fill up and block node); read after it exits.
    let artifacts = temp.path().join("browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let busy_seen = artifacts.join("busy-seen");
    let held = budget.try_reserve(budget.limit()).unwrap();
    {
        let busy_seen = busy_seen.clone();
        std::thread::spawn(move || {
            let waiting = Instant::now();
            while !busy_seen.exists() && waiting.elapsed() < NODE_DEADLINE {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(held);
        });
    }
    let log = artifacts.join("node.log");
    let out = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(web.join("tests/album.spec.mjs"))
        .arg(&base)
        .args(&photos)
        .current_dir(&web)
        .env("ALBUM_BROWSER_ARTIFACTS", &artifacts)
        .env("ALBUM_BUSY_SEEN", &busy_seen)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start node");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > NODE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    println!("{output}");
    println!("browser test: {:.1} s", started.elapsed().as_secs_f64());

    workers.stop();
    drop(runtime);
    if status.is_some_and(|s| s.success()) {
        return;
    }
    // Keep the temp folder (screenshot, log, the album itself) for a look afterwards.
    let kept = temp.keep();
    match status {
        Some(status) => panic!(
            "the browser script failed ({status}); its output is above; \
             screenshot and log kept in {}",
            kept.join("browser").display()
        ),
        None => panic!(
            "the browser script ran over {} s and was stopped; its output is above; kept {}",
            NODE_DEADLINE.as_secs(),
            kept.display()
        ),
    }
}
