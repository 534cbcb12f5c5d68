//! The crawler against the real gallery, on loopback, over a slice of the five-class
//! photo set: robots.txt obeyed, every planted fault caught with its reason, nothing
//! corrupt accepted, and a resumed crawl fetching nothing it already has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use album_dataset::crawl::report::{read_duplicates, read_rejects};
use album_dataset::crawl::{
    CrawlConfig, CrawlOptions, CrawlSummary, DUPLICATES_FILE, DuplicateKind, MANIFEST_FILE,
    REJECTS_FILE, crawl,
};
use album_dataset::gallery::audit::{AuditOptions, audit, url_path_key, verify_image_file};
use album_dataset::gallery::{FaultKind, GalleryOptions, RunningGallery, spawn};
use album_dataset::image_check;
use album_dataset::manifest::Manifest;

const PHOTOS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class"
);

/// Photos served per class: enough for several pages, few enough to stay quick.
const PER_CLASS: usize = 20;
const PER_PAGE: usize = 8;

async fn start_gallery() -> RunningGallery {
    let mut options = GalleryOptions::new(PathBuf::from(PHOTOS));
    options.per_page = PER_PAGE;
    options.max_per_class = Some(PER_CLASS);
    options.plant_faults = true;
    spawn(options, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// The shipped config's classes and selectors, pointed at this gallery, with short
/// back-off so the planted 500 does not slow the test.
fn config_for(gallery: &RunningGallery) -> CrawlConfig {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/crawl/gallery.toml");
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace("127.0.0.1:8765", &gallery.addr.to_string())
        .replace("retry_backoff_ms = 200", "retry_backoff_ms = 5");
    CrawlConfig::parse(&text, &shipped).unwrap()
}

fn options() -> CrawlOptions {
    CrawlOptions {
        progress: false,
        checkpoint_every: 10,
    }
}

async fn crawl_to_end(config: &CrawlConfig, out: &Path) -> CrawlSummary {
    crawl(config, out, &options(), std::future::pending())
        .await
        .unwrap()
}

fn audit_options(out: &Path) -> AuditOptions {
    AuditOptions {
        source: PathBuf::from(PHOTOS),
        crawl: out.to_path_buf(),
        access_log: None,
        max_per_class: Some(PER_CLASS),
        plant_faults: true,
    }
}

/// Every image URL path recorded in the three tables.
fn recorded_paths(out: &Path) -> Vec<String> {
    let manifest = Manifest::load(&out.join(MANIFEST_FILE)).unwrap();
    let duplicates = read_duplicates(&out.join(DUPLICATES_FILE)).unwrap();
    let rejects = read_rejects(&out.join(REJECTS_FILE)).unwrap();
    let urls = manifest.records.iter().map(|r| r.image_url.clone());
    let urls = urls.chain(duplicates.iter().map(|d| d.image_url.clone()));
    urls.chain(rejects.iter().map(|r| r.url.clone()))
        .map(|u| url_path_key(&u))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawling_the_gallery_obeys_robots_and_catches_every_planted_fault() {
    let gallery = start_gallery().await;
    let out = tempfile::tempdir().unwrap();
    let summary = crawl_to_end(&config_for(&gallery), out.path()).await;

    let private: Vec<_> = gallery
        .access_log()
        .into_iter()
        .filter(|e| e.is_private())
        .collect();
    assert!(private.is_empty(), "requests under /private/: {private:?}");

    let rejects = read_rejects(&out.path().join(REJECTS_FILE)).unwrap();
    let duplicates = read_duplicates(&out.path().join(DUPLICATES_FILE)).unwrap();
    let faults = gallery.gallery().planted_faults();
    assert_eq!(faults.len(), FaultKind::ALL.len());
    for fault in faults
        .iter()
        .filter(|f| f.kind != FaultKind::ExactDuplicate)
    {
        let reasons: Vec<&str> = rejects
            .iter()
            .filter(|r| url_path_key(&r.url) == fault.path)
            .map(|r| r.reason.as_str())
            .collect();
        assert_eq!(reasons, [fault.expected_reason], "{:?}", fault.kind);
    }
    let (class, original) = gallery.gallery().duplicated_photo().unwrap();
    let copy = faults
        .iter()
        .find(|f| f.kind == FaultKind::ExactDuplicate)
        .unwrap();
    let pair = duplicates
        .iter()
        .find(|d| url_path_key(&d.image_url) == copy.path)
        .expect("the planted copy is listed");
    assert_eq!(pair.kind, DuplicateKind::Exact);
    assert_eq!(
        url_path_key(&pair.duplicate_of_url),
        format!("/photos/{class}/{original}")
    );

    let manifest = Manifest::load(&out.path().join(MANIFEST_FILE)).unwrap();
    for record in &manifest.records {
        let path = manifest.file_path(record);
        verify_image_file(&path).unwrap_or_else(|why| panic!("{}: {why}", record.path));
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            image_check::validate(&bytes, &image_check::Limits::default()).is_ok(),
            "{}",
            record.path
        );
    }

    let animals = summary
        .classes
        .iter()
        .find(|c| c.name == "animals")
        .unwrap();
    assert!(
        animals.pages_without_images >= 1,
        "the gallery's empty page was visited: {animals:?}"
    );
    assert!(
        summary.bytes < 64 << 20,
        "the 1 GiB photo was not read: {} bytes received",
        summary.bytes
    );
    summary.ensure_something_fetched().unwrap();

    let report = audit(&audit_options(out.path())).unwrap();
    report.verdict().unwrap();
    assert_eq!(report.source_photos, 5 * PER_CLASS);
    gallery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_crawl_of_the_gallery_requests_only_robots_txt() {
    let gallery = start_gallery().await;
    let out = tempfile::tempdir().unwrap();
    let config = config_for(&gallery);
    let first = crawl_to_end(&config, out.path()).await;
    let requests_before = gallery.access_log().len();

    let second = crawl_to_end(&config, out.path()).await;
    let new_paths: Vec<String> = gallery.access_log()[requests_before..]
        .iter()
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(new_paths, ["/robots.txt"]);
    assert_eq!(second.images_processed(), 0);
    assert_eq!(second.pages_fetched(), 0);
    assert_eq!(
        (
            second.stored_accepted,
            second.stored_duplicates,
            second.stored_rejects
        ),
        (
            first.stored_accepted,
            first.stored_duplicates,
            first.stored_rejects
        )
    );
    second.ensure_something_fetched().unwrap();
    gallery.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_crawl_resumes_without_refetching_or_losing_a_photo() {
    let gallery = start_gallery().await;
    let out = tempfile::tempdir().unwrap();
    let config = config_for(&gallery);
    let photo_requests = || {
        gallery
            .access_log()
            .iter()
            .filter(|e| e.path.starts_with("/photos/"))
            .count()
    };
    let after_some_photos = async {
        while photo_requests() < 25 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let stopped = crawl(&config, out.path(), &options(), after_some_photos)
        .await
        .unwrap();
    assert!(stopped.interrupted);
    let kept_by_first_run: HashSet<String> = recorded_paths(out.path()).into_iter().collect();
    assert!(!kept_by_first_run.is_empty() && kept_by_first_run.len() < 5 * PER_CLASS);
    let requests_before = gallery.access_log().len();

    crawl_to_end(&config, out.path()).await;
    let refetched: Vec<String> = gallery.access_log()[requests_before..]
        .iter()
        .map(|e| e.path.clone())
        .filter(|p| kept_by_first_run.contains(&url_path_key(p)))
        .collect();
    assert!(
        refetched.is_empty(),
        "fetched again after the resume: {refetched:?}"
    );
    let recorded = recorded_paths(out.path());
    let unique: HashSet<&String> = recorded.iter().collect();
    assert_eq!(unique.len(), recorded.len(), "a URL is recorded twice");
    audit(&audit_options(out.path()))
        .unwrap()
        .verdict()
        .unwrap();
    gallery.shutdown().await;
}

#[tokio::test]
async fn a_crawl_of_a_stopped_gallery_fails_naming_its_address() {
    let gallery = start_gallery().await;
    let config = config_for(&gallery);
    let addr = gallery.addr;
    gallery.shutdown().await;
    let out = tempfile::tempdir().unwrap();
    let summary = crawl_to_end(&config, out.path()).await;
    assert!(
        summary.classes.iter().all(|c| c.seeds_failed.len() == 1),
        "{summary:?}"
    );
    let message = summary.ensure_something_fetched().unwrap_err().to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
}
