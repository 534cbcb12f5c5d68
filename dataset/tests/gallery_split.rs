//! The gallery over real HTTP on 127.0.0.1, the crawl audit on a crawl output made
//! from what the gallery served, and the split of that output, all on real photos from
//! the five-class set (a few per class).

use std::path::{Path, PathBuf};

use album_dataset::gallery::audit::{AuditOptions, RejectRow, audit, read_rejects};
use album_dataset::gallery::listing::photo_path;
use album_dataset::gallery::{
    AccessLogEntry, FaultKind, GalleryOptions, RunningGallery, planted_faults, spawn,
};
use album_dataset::manifest::{ManifestRecord, write_manifest, write_table_parquet};
use album_dataset::split::{DEFAULT_GROUP_DISTANCE, SplitOptions, run_split};
use album_dataset::{Error, phash};
use polars::prelude::*;
use sha2::{Digest, Sha256};

/// The five-class photo set, beside the repository (`../shared`), or where
/// `ALBUM_FIVE_CLASS_DIR` says.
fn five_class_dir() -> PathBuf {
    std::env::var_os("ALBUM_FIVE_CLASS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/five-class")
        })
}

async fn small_gallery(per_class: usize, access_log: Option<PathBuf>) -> RunningGallery {
    let options = GalleryOptions {
        per_page: 4,
        max_per_class: Some(per_class),
        access_log,
        ..GalleryOptions::new(five_class_dir())
    };
    spawn(options, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("gallery starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn fetch(client: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_gallery_answers_real_http_and_appends_each_request_to_its_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let gallery = small_gallery(3, Some(log_path.clone())).await;
    let base = gallery.base_url();
    let http = client();

    let (status, index) = fetch(&http, &format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&index).contains(r#"href="/class/landscape/page/1""#));
    let file = &gallery.gallery().folder().class("landscape").unwrap().files[2].clone();
    let (status, bytes) = fetch(&http, &format!("{base}{}", photo_path("landscape", file))).await;
    assert_eq!(status, 200);
    assert_eq!(
        bytes,
        std::fs::read(five_class_dir().join("landscape").join(file)).unwrap()
    );
    let (status, _) = fetch(&http, &format!("{base}/private/landscape/page/1")).await;
    assert_eq!(status, 200);

    let in_memory = gallery.access_log();
    gallery.shutdown().await;
    let in_file: Vec<AccessLogEntry> = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .map(|line| AccessLogEntry::parse_line(line).expect("a well-formed log line"))
        .collect();
    assert_eq!(in_file, in_memory);
    let paths: Vec<&str> = in_file.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/",
            photo_path("landscape", file).as_str(),
            "/private/landscape/page/1"
        ]
    );
    assert_eq!(in_file[1].bytes, bytes.len() as u64);
    assert_eq!(in_file.iter().filter(|e| e.is_private()).count(), 1);
}

#[tokio::test]
async fn the_huge_photo_announces_one_gib_and_streams_a_jpeg_start() {
    let gallery = small_gallery(2, None).await;
    let huge = planted_faults()
        .into_iter()
        .find(|f| f.kind == FaultKind::TooLarge)
        .unwrap();
    let mut response = client()
        .get(format!("{}{}", gallery.base_url(), huge.path))
        .send()
        .await
        .unwrap();
    assert_eq!(response.content_length(), Some(1 << 30));
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let mut head = Vec::new();
    while head.len() < 1 << 20 {
        head.extend_from_slice(&response.chunk().await.unwrap().expect("more body"));
    }
    assert_eq!(&head[..4], [0xFF, 0xD8, 0xFF, 0xE0]);
    drop(response);
    // Hanging up mid-body leaves the site serving.
    let (status, _) = fetch(&client(), &format!("{}/robots.txt", gallery.base_url())).await;
    assert_eq!(status, 200);
    gallery.shutdown().await;
}

#[tokio::test]
async fn the_redirect_loop_never_reaches_a_body() {
    let gallery = small_gallery(2, None).await;
    let looping = planted_faults()
        .into_iter()
        .find(|f| f.kind == FaultKind::RedirectLoop)
        .unwrap();
    let following = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    let error = following
        .get(format!("{}{}", gallery.base_url(), looping.path))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_redirect(), "{error}");
    gallery.shutdown().await;
}

#[tokio::test]
async fn an_empty_or_missing_folder_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:0".parse().unwrap();
    let err = spawn(GalleryOptions::new(empty.path().to_path_buf()), addr)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err}");
    let err = spawn(GalleryOptions::new(empty.path().join("nope")), addr)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// A crawl output of the small gallery as a correct crawler would write it: every
/// photo fetched over HTTP into the manifest, the planted copy in duplicates, the
/// other faults in rejects. Returns (crawl folder, access log path).
async fn crawl_output(dir: &Path, per_class: usize) -> (PathBuf, PathBuf) {
    let log = dir.join("access.log");
    let gallery = small_gallery(per_class, Some(log.clone())).await;
    let base = gallery.base_url();
    let crawl = dir.join("crawl");
    let http = client();
    let mut records = Vec::new();
    for class in &gallery.gallery().folder().classes {
        for file in &class.files {
            let url = format!("{base}{}", photo_path(&class.name, file));
            let (status, bytes) = fetch(&http, &url).await;
            assert_eq!(status, 200);
            records.push(store(&crawl, &class.name, &url, &bytes));
        }
    }
    let faults = planted_faults();
    let duplicate = faults
        .iter()
        .find(|f| f.kind == FaultKind::ExactDuplicate)
        .unwrap();
    let (class, original) = gallery.gallery().duplicated_photo().unwrap();
    let original_url = format!("{base}{}", photo_path(&class, &original));
    let mut duplicates = df!(
        "image_url" => [format!("{base}{}", duplicate.path)],
        "page_url" => [format!("{base}/class/{class}/page/1")],
        "class" => [class.clone()],
        "kind" => ["exact"],
        "distance" => [0u32],
        "duplicate_of_url" => [original_url],
        "duplicate_of_path" => [records[0].path.clone()],
        "sha256" => [records[0].sha256.clone()],
        "phash" => [format!("{:016x}", records[0].phash)],
    )
    .unwrap();
    let rejected: Vec<_> = faults
        .iter()
        .filter(|f| f.kind != FaultKind::ExactDuplicate)
        .collect();
    let mut rejects = df!(
        "url" => rejected.iter().map(|f| format!("{base}{}", f.path)).collect::<Vec<_>>(),
        "page_url" => rejected.iter().map(|_| format!("{base}/class/{class}/page/1")).collect::<Vec<_>>(),
        "class" => rejected.iter().map(|_| class.clone()).collect::<Vec<_>>(),
        "reason" => rejected.iter().map(|f| f.expected_reason).collect::<Vec<_>>(),
        "detail" => rejected.iter().map(|_| "").collect::<Vec<_>>(),
    )
    .unwrap();
    write_manifest(&crawl.join("manifest.parquet"), &records).unwrap();
    write_table_parquet(&crawl.join("duplicates.parquet"), &mut duplicates).unwrap();
    write_table_parquet(&crawl.join("rejects.parquet"), &mut rejects).unwrap();
    gallery.shutdown().await;
    (crawl, log)
}

fn store(crawl: &Path, class: &str, url: &str, bytes: &[u8]) -> ManifestRecord {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let path = format!("images/{}/{sha256}.jpg", &sha256[..2]);
    std::fs::create_dir_all(crawl.join(&path).parent().unwrap()).unwrap();
    std::fs::write(crawl.join(&path), bytes).unwrap();
    let image = image::load_from_memory(bytes).unwrap();
    ManifestRecord {
        path,
        class: class.into(),
        image_url: url.into(),
        page_url: String::new(),
        sha256,
        phash: phash::phash(&image),
        width: image.width(),
        height: image.height(),
        bytes: bytes.len() as u64,
        fetched_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn audit_options(crawl: &Path, log: &Path, per_class: usize) -> AuditOptions {
    AuditOptions {
        source: five_class_dir(),
        crawl: crawl.to_path_buf(),
        access_log: Some(log.to_path_buf()),
        max_per_class: Some(per_class),
        plant_faults: true,
    }
}

#[tokio::test]
async fn the_audit_passes_a_complete_crawl_and_names_each_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (crawl, log) = crawl_output(dir.path(), 4).await;
    let options = audit_options(&crawl, &log, 4);

    let report = audit(&options).unwrap();
    assert_eq!(
        report.problems(),
        Vec::<String>::new(),
        "{}",
        report.to_text()
    );
    assert_eq!((report.source_photos, report.in_manifest), (20, 20));
    assert!(report.faults.iter().all(|f| f.caught) && report.faults.len() == 7);
    assert!(report.verdict().is_ok());
    let written = report.write_markdown(&crawl.join("audit.md")).unwrap();
    assert!(
        std::fs::read_to_string(written)
            .unwrap()
            .contains("## Near-duplicate pairs")
    );

    // A photo missing from every table, a fault rejected for the wrong reason, a
    // truncated file in the manifest and a request under /private/: each is named.
    let manifest_path = crawl.join("manifest.parquet");
    let mut records = album_dataset::manifest::read_parquet(&manifest_path).unwrap();
    let dropped = records.remove(7);
    let bytes = std::fs::read(crawl.join(&records[0].path)).unwrap();
    std::fs::write(crawl.join(&records[0].path), &bytes[..bytes.len() / 2]).unwrap();
    write_manifest(&manifest_path, &records).unwrap();
    let rejects = read_rejects(&crawl.join("rejects.parquet")).unwrap();
    let reason = |r: &RejectRow| {
        if r.reason == "http-500" {
            "http-error".to_owned()
        } else {
            r.reason.clone()
        }
    };
    let mut relabelled = df!(
        "url" => rejects.iter().map(|r| r.url.clone()).collect::<Vec<_>>(),
        "page_url" => rejects.iter().map(|_| "").collect::<Vec<_>>(),
        "class" => rejects.iter().map(|_| "animals").collect::<Vec<_>>(),
        "reason" => rejects.iter().map(reason).collect::<Vec<_>>(),
        "detail" => rejects.iter().map(|r| r.detail.clone()).collect::<Vec<_>>(),
    )
    .unwrap();
    write_table_parquet(&crawl.join("rejects.parquet"), &mut relabelled).unwrap();
    let mut log_text = std::fs::read_to_string(&log).unwrap();
    log_text.push_str("2026-01-01T00:00:00Z GET /private/animals/page/1 200 10\n");
    std::fs::write(&log, log_text).unwrap();

    let report = audit(&options).unwrap();
    let problems = report.problems().join("\n");
    assert!(report.verdict().is_err());
    let missing = album_dataset::gallery::audit::url_path_key(&dropped.image_url);
    assert_eq!(report.unaccounted, [missing]);
    assert_eq!(report.corrupt_in_manifest.len(), 1, "{problems}");
    assert!(
        problems.contains("planted-server-error.jpg (rejected: http-error)"),
        "{problems}"
    );
    assert!(
        problems.contains("1 requests under /private/"),
        "{problems}"
    );
}

#[tokio::test]
async fn a_split_of_a_crawl_writes_valid_manifests_tables_and_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let (crawl, _) = crawl_output(dir.path(), 10).await;
    let out = dir.path().join("splits");
    let options = SplitOptions {
        manifest: crawl.join("manifest.parquet"),
        out: Some(out.clone()),
        ratios: "6:2:2".parse().unwrap(),
        seed: 42,
        group_distance: DEFAULT_GROUP_DISTANCE,
    };
    let report = run_split(&options).unwrap();
    for (class, counts) in report.classes.iter().zip(&report.counts) {
        assert_eq!(counts, &[6, 2, 2], "{class}");
    }
    let mut seen = 0;
    for split in ["train", "val", "test"] {
        let manifest =
            album_dataset::manifest::Manifest::load(&out.join(format!("{split}.parquet"))).unwrap();
        assert!(out.join(format!("{split}.csv")).exists());
        for record in &manifest.records {
            assert!(
                manifest.file_path(record).is_file(),
                "{} does not resolve from {}",
                record.path,
                out.display()
            );
        }
        seen += manifest.records.len();
    }
    assert_eq!(seen, 50);
    let stats =
        album_dataset::manifest::read_table_parquet(&out.join("split-stats.parquet")).unwrap();
    let columns: Vec<&str> = stats
        .get_column_names()
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(columns, ["class", "split", "count", "fraction"]);
    assert_eq!(stats.height(), 6 * 3);
    let histogram =
        album_dataset::manifest::read_table_parquet(&out.join("size-histogram.parquet")).unwrap();
    assert!(histogram.column("short_side_bin").is_ok() && out.join("size-histogram.csv").exists());
    let chart = image::open(out.join("split-stats.png")).unwrap();
    assert_eq!((chart.width(), chart.height()), (1500, 640));
}
