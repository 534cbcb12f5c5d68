//! Routing tests: the router driven in-process with `oneshot`, over real photos.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::listing::photo_path;
use super::*;

/// The five-class photo set, beside the repository (`../shared`), or where
/// `ALBUM_FIVE_CLASS_DIR` says.
fn five_class_dir() -> PathBuf {
    std::env::var_os("ALBUM_FIVE_CLASS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/five-class")
        })
}

fn small_gallery(per_page: usize, plant_faults: bool) -> Gallery {
    let mut options = GalleryOptions::new(five_class_dir());
    options.per_page = per_page;
    options.max_per_class = Some(5);
    options.plant_faults = plant_faults;
    Gallery::open(&options).expect("the five-class photo set opens")
}

struct Reply {
    status: StatusCode,
    content_type: String,
    location: String,
    content_length: Option<u64>,
    body: Vec<u8>,
}

async fn get(gallery: &Gallery, path: &str) -> Reply {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app(gallery.clone()).oneshot(request).await.unwrap();
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let content_type = header_text(header::CONTENT_TYPE);
    let location = header_text(header::LOCATION);
    let content_length = header_text(header::CONTENT_LENGTH).parse().ok();
    let status = response.status();
    // The 1 GiB photo is never read here; everything else is small.
    let body = if content_length.is_some_and(|n| n > 10_000_000) {
        Vec::new()
    } else {
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    };
    Reply {
        status,
        content_type,
        location,
        content_length,
        body,
    }
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

#[tokio::test]
async fn index_links_every_class_first_page() {
    let gallery = small_gallery(2, false);
    let page = text(&get(&gallery, "/").await);
    for class in ["animals", "buildings", "landscape", "people", "vehicles"] {
        assert!(
            page.contains(&format!(r#"href="/class/{class}/page/1""#)),
            "{class} missing in {page}"
        );
    }
}

#[tokio::test]
async fn class_pages_hold_sorted_photo_figures_and_next_links_except_on_the_last() {
    let gallery = small_gallery(2, false);
    let files = gallery.folder().class("people").unwrap().files.clone();
    let page1 = text(&get(&gallery, "/class/people/page/1").await);
    let first = photo_path("people", &files[0]);
    assert!(
        page1.contains(&format!(
            r#"<figure class="photo"><a href="{first}"><img src="{first}"></a></figure>"#
        )),
        "{page1}"
    );
    assert!(page1.contains(r#"<a class="next" rel="next" href="/class/people/page/2">Next</a>"#));
    let page3 = text(&get(&gallery, "/class/people/page/3").await);
    assert!(page3.contains(&photo_path("people", &files[4])), "{page3}");
    assert!(!page3.contains("class=\"next\""), "{page3}");
    assert_eq!(
        get(&gallery, "/class/people/page/4").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&gallery, "/class/people/page/0").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&gallery, "/class/people/page/x").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&gallery, "/class/nobody/page/1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn photos_are_served_byte_for_byte_as_jpeg() {
    let gallery = small_gallery(60, false);
    let file = &gallery.folder().class("vehicles").unwrap().files[0];
    let reply = get(&gallery, &photo_path("vehicles", file)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "image/jpeg");
    assert_eq!(
        reply.body,
        std::fs::read(gallery.folder().file_path("vehicles", file)).unwrap()
    );
}

#[tokio::test]
async fn only_listed_names_are_served_so_traversal_finds_nothing() {
    let gallery = small_gallery(60, false);
    let unlisted = std::fs::read_dir(five_class_dir().join("animals"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|name| !gallery.folder().class("animals").unwrap().contains(name))
        .unwrap();
    for path in [
        "/photos/animals/..%2F..%2FSOURCES.md".to_owned(),
        "/photos/..%2Fanimals/x.jpg".to_owned(),
        "/photos/animals/%2Fetc%2Fpasswd".to_owned(),
        "/photos/animals/../SOURCES.md".to_owned(),
        photo_path("animals", &unlisted),
    ] {
        assert_eq!(
            get(&gallery, &path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn robots_txt_forbids_private_and_every_first_page_links_there() {
    let gallery = small_gallery(60, false);
    assert_eq!(
        text(&get(&gallery, "/robots.txt").await),
        "User-agent: *\nDisallow: /private/\n"
    );
    for class in &gallery.folder().classes {
        let page = text(&get(&gallery, &format!("/class/{}/page/1", class.name)).await);
        let private_photo = format!("/private/photos/{}/{}", class.name, class.files[0]);
        assert!(
            page.contains(&format!(
                r#"<figure class="photo"><a href="{private_photo}">"#
            )),
            "{page}"
        );
        assert!(
            page.contains(&format!(r#"href="/private/{}/page/1""#, class.name)),
            "{page}"
        );
        assert_eq!(get(&gallery, &private_photo).await.status, StatusCode::OK);
    }
    assert_eq!(
        get(&gallery, "/private/animals/page/1").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn planted_faults_appear_only_on_the_first_class_page_one_and_only_when_asked() {
    let with = small_gallery(2, true);
    let page1 = text(&get(&with, "/class/animals/page/1").await);
    for fault in planted_faults() {
        let figure = format!(
            r#"<figure class="photo"><a href="{0}"><img src="{0}"></a></figure>"#,
            fault.path
        );
        assert!(page1.contains(&figure), "{} missing", fault.path);
    }
    assert!(page1.contains(EMPTY_PAGE_PATH));
    let page2 = text(&get(&with, "/class/animals/page/2").await);
    let people = text(&get(&with, "/class/people/page/1").await);
    assert!(!page2.contains("planted-") && !people.contains("planted-"));

    let without = small_gallery(2, false);
    assert!(!text(&get(&without, "/class/animals/page/1").await).contains("planted-"));
    assert_eq!(
        get(&without, &planted_faults()[1].path).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn each_planted_fault_misbehaves_as_described() {
    let gallery = small_gallery(60, true);
    let path = |kind| {
        planted_faults()
            .into_iter()
            .find(|f| f.kind == kind)
            .unwrap()
            .path
    };
    let animals = gallery.folder().class("animals").unwrap();
    let original = std::fs::read(gallery.folder().file_path("animals", &animals.files[0])).unwrap();
    let second = std::fs::read(gallery.folder().file_path("animals", &animals.files[1])).unwrap();

    assert_eq!(
        get(&gallery, &path(FaultKind::BrokenLink)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&gallery, &path(FaultKind::ServerError)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let duplicate = get(&gallery, &path(FaultKind::ExactDuplicate)).await;
    assert_eq!(duplicate.body, original);

    let not_image = get(&gallery, &path(FaultKind::NotAnImage)).await;
    assert_eq!(not_image.content_type, "image/jpeg");
    assert!(text(&not_image).starts_with("<!doctype html>"));

    let truncated = get(&gallery, &path(FaultKind::TruncatedJpeg)).await;
    assert_eq!(truncated.body, second[..second.len() * 6 / 10]);

    let a = get(&gallery, &path(FaultKind::RedirectLoop)).await;
    assert_eq!(a.status, StatusCode::FOUND);
    let b = get(&gallery, &a.location).await;
    assert_eq!(b.status, StatusCode::FOUND);
    assert_eq!(b.location, path(FaultKind::RedirectLoop));

    let huge = get(&gallery, &path(FaultKind::TooLarge)).await;
    assert_eq!(
        (huge.status, huge.content_length),
        (StatusCode::OK, Some(1 << 30))
    );
    assert_eq!(huge.content_type, "image/jpeg");
}

#[tokio::test]
async fn the_empty_page_has_no_photos() {
    let gallery = small_gallery(60, true);
    let page = get(&gallery, EMPTY_PAGE_PATH).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!text(&page).contains("<img"));
}

#[tokio::test]
async fn the_access_log_keeps_method_path_status_and_bytes_of_every_request() {
    let gallery = small_gallery(60, true);
    get(&gallery, "/robots.txt").await;
    get(&gallery, "/nowhere").await;
    get(&gallery, &planted_faults()[6].path).await;
    let log = gallery.access_log();
    let expected = [
        ("/robots.txt", 200, ROBOTS_TXT.len() as u64),
        ("/nowhere", 404, log[1].bytes),
        ("/photos/animals/planted-huge.jpg", 200, 1 << 30),
    ];
    let got: Vec<_> = log
        .iter()
        .map(|e| (e.path.as_str(), e.status, e.bytes))
        .collect();
    assert_eq!(got, expected);
    assert!(log[1].bytes > 0 && log.iter().all(|e| e.method == "GET" && !e.is_private()));
}

#[test]
fn access_log_lines_parse_back() {
    let entry =
        AccessLogEntry::parse_line("2026-01-02T03:04:05.000Z GET /private/x 200 12").unwrap();
    assert_eq!(
        entry,
        AccessLogEntry {
            method: "GET".into(),
            path: "/private/x".into(),
            status: 200,
            bytes: 12
        }
    );
    assert!(entry.is_private());
    assert!(AccessLogEntry::parse_line("garbage").is_none());
    assert!(AccessLogEntry::parse_line("t GET / 200 12 extra").is_none());
}

#[test]
fn zero_per_page_and_a_missing_folder_are_errors_not_panics() {
    let mut options = GalleryOptions::new(five_class_dir());
    options.per_page = 0;
    assert!(matches!(
        Gallery::open(&options),
        Err(Error::InvalidArgument(_))
    ));
    let missing = Gallery::open(&GalleryOptions::new(PathBuf::from("/nonexistent/gallery")));
    assert!(matches!(missing, Err(Error::Io { .. })));
}
