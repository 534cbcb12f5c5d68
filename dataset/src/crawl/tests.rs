//! Crawler tests against small sites served by axum on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use url::Url;

use super::config::tests_support::http_settings;
use super::*;

const PHOTOS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/five-class"
);

/// Paths the server was asked for, in order.
#[derive(Clone, Default)]
struct Hits(Arc<Mutex<Vec<String>>>);

impl Hits {
    fn paths(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.paths().iter().filter(|p| *p == path).count()
    }
}

/// Serves `router` on a free loopback port, logging every request path into `hits`.
async fn serve(router: Router, hits: &Hits) -> SocketAddr {
    let log = hits.clone();
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            log.0.lock().unwrap().push(request.uri().path().to_owned());
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn url(addr: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{addr}{path}")).unwrap()
}

fn quick_settings() -> HttpSettings {
    let mut settings = http_settings();
    settings.per_host_concurrency = 4;
    settings.requests_per_second = 1000.0;
    settings.retry_backoff = Duration::from_millis(5);
    settings.request_timeout = Duration::from_secs(5);
    settings
}

fn any_host(_: &Url) -> bool {
    true
}

fn robots(text: &'static str) -> Router {
    Router::new().route("/robots.txt", get(move || async move { text }))
}

// ---- Fetcher ---------------------------------------------------------------------

#[tokio::test]
async fn a_5xx_is_retried_until_it_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let router = Router::new().route(
        "/flaky",
        get(move || {
            let n = counter.fetch_add(1, AtomicOrdering::SeqCst);
            async move {
                if n < 2 {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    "ok".into_response()
                }
            }
        }),
    );
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let fetcher = Fetcher::new(quick_settings()).unwrap();
    let fetched = fetcher
        .fetch(&url(addr, "/flaky"), &any_host)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, b"ok");
    assert_eq!(hits.count("/flaky"), 3);
}

#[tokio::test]
async fn a_persistent_500_fails_after_every_retry_and_a_404_is_not_retried() {
    let router = Router::new()
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/gone", get(|| async { StatusCode::NOT_FOUND }));
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let mut settings = quick_settings();
    settings.retries = 2;
    let fetcher = Fetcher::new(settings).unwrap();
    let broken = fetcher
        .fetch(&url(addr, "/broken"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(broken.reason(), "http-500");
    assert_eq!(hits.count("/broken"), 3);
    let gone = fetcher
        .fetch(&url(addr, "/gone"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(gone.reason(), "http-404");
    assert_eq!(hits.count("/gone"), 1);
}

#[tokio::test]
async fn a_time_out_is_retried_then_reported() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        }),
    );
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let mut settings = quick_settings();
    settings.request_timeout = Duration::from_millis(150);
    settings.retries = 1;
    let fetcher = Fetcher::new(settings).unwrap();
    let failure = fetcher
        .fetch(&url(addr, "/slow"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(failure, FetchFailure::Timeout);
    assert_eq!(hits.count("/slow"), 2);
}

/// An endless body without a length: only the cap can stop it.
fn endless_body() -> Body {
    let chunk = Bytes::from(vec![0u8; 16 * 1024]);
    Body::from_stream(futures::stream::repeat_with(move || {
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

#[tokio::test]
async fn a_body_over_the_byte_cap_is_cut_off_while_streaming() {
    let router = Router::new().route("/endless.jpg", get(|| async { endless_body() }));
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let mut settings = quick_settings();
    settings.max_file_bytes = 256 * 1024;
    let fetcher = Fetcher::new(settings).unwrap();
    let failure = fetcher
        .fetch(&url(addr, "/endless.jpg"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(
        failure,
        FetchFailure::TooLarge {
            limit: 256 * 1024,
            announced: None
        }
    );
    let received = fetcher.counters().bytes.load(AtomicOrdering::Relaxed);
    assert!(
        received < 4 << 20,
        "read {received} bytes of an endless body"
    );
    assert_eq!(
        hits.count("/endless.jpg"),
        1,
        "a too-large body is not retried"
    );
}

#[tokio::test]
async fn an_announced_length_over_the_cap_is_refused_unread() {
    let router = Router::new().route(
        "/huge.jpg",
        get(|| async {
            (
                [(header::CONTENT_LENGTH, (1u64 << 30).to_string())],
                endless_body(),
            )
        }),
    );
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let fetcher = Fetcher::new(quick_settings()).unwrap();
    let failure = fetcher
        .fetch(&url(addr, "/huge.jpg"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), "too-large-bytes");
    assert!(
        matches!(failure, FetchFailure::TooLarge { announced: Some(n), .. } if n == 1 << 30),
        "{failure:?}"
    );
}

fn redirect_to(location: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[tokio::test]
async fn redirects_are_followed_and_loops_and_long_chains_are_caught() {
    let router = Router::new()
        .route("/old", get(|| async { redirect_to("/new".into()) }))
        .route("/new", get(|| async { "moved here" }))
        .route("/a", get(|| async { redirect_to("/b".into()) }))
        .route(
            "/b",
            get(|| async { redirect_to("http://127.0.0.1/a".into()) }),
        )
        .route(
            "/chain/{n}",
            get(|UrlPath(n): UrlPath<u32>| async move { redirect_to(format!("/chain/{}", n + 1)) }),
        );
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let mut settings = quick_settings();
    settings.max_redirects = 3;
    let fetcher = Fetcher::new(settings).unwrap();

    let moved = fetcher.fetch(&url(addr, "/old"), &any_host).await.unwrap();
    assert_eq!(
        (moved.url.path(), moved.bytes.as_slice()),
        ("/new", b"moved here".as_slice())
    );

    // "/b" points at port 80 on purpose: off the allowed host, so it must not be
    // requested at all. A same-host loop comes next.
    let same_host = |u: &Url| u.port_or_known_default() == Some(addr.port());
    let off_host = fetcher
        .fetch(&url(addr, "/a"), &same_host)
        .await
        .unwrap_err();
    assert_eq!(off_host.reason(), "off-host");

    let chain = fetcher
        .fetch(&url(addr, "/chain/0"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(chain.reason(), "redirect-loop");
    assert_eq!(hits.count("/chain/3"), 1);
    assert_eq!(
        hits.count("/chain/4"),
        0,
        "the hop over the limit is not requested"
    );
}

#[tokio::test]
async fn a_redirect_back_to_a_visited_url_is_a_loop_requesting_each_once() {
    let router = Router::new()
        .route("/ping", get(|| async { redirect_to("/pong".into()) }))
        .route("/pong", get(|| async { redirect_to("/ping".into()) }));
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let fetcher = Fetcher::new(quick_settings()).unwrap();
    let failure = fetcher
        .fetch(&url(addr, "/ping"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), "redirect-loop");
    assert!(failure.detail().contains("/ping"), "{}", failure.detail());
    assert_eq!((hits.count("/ping"), hits.count("/pong")), (1, 1));
}

#[tokio::test]
async fn robots_is_read_once_per_host_and_obeyed_even_for_redirect_targets() {
    let router = robots("User-agent: *\nDisallow: /private/\n")
        .route("/open/{n}", get(|| async { "fine" }))
        .route(
            "/sneaky",
            get(|| async { redirect_to("/private/secret.jpg".into()) }),
        )
        .route("/private/{file}", get(|| async { "secret" }));
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let fetcher = Fetcher::new(quick_settings()).unwrap();
    let fetches = (0..5).map(|n| {
        let target = url(addr, &format!("/open/{n}"));
        let fetcher = &fetcher;
        async move { fetcher.fetch(&target, &any_host).await }
    });
    assert!(
        futures::future::join_all(fetches)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let direct = fetcher
        .fetch(&url(addr, "/private/a.jpg"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(direct, FetchFailure::RobotsDisallowed);
    let redirected = fetcher
        .fetch(&url(addr, "/sneaky"), &any_host)
        .await
        .unwrap_err();
    assert_eq!(redirected.reason(), "robots-disallowed");
    assert_eq!(hits.count("/robots.txt"), 1);
    assert!(
        hits.paths().iter().all(|p| !p.starts_with("/private/")),
        "{:?}",
        hits.paths()
    );
}

#[tokio::test]
async fn a_missing_robots_txt_allows_everything() {
    let router = Router::new().route("/private/x", get(|| async { "not actually private" }));
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let fetcher = Fetcher::new(quick_settings()).unwrap();
    assert!(
        fetcher
            .fetch(&url(addr, "/private/x"), &any_host)
            .await
            .is_ok()
    );
    assert_eq!(hits.paths(), ["/robots.txt", "/private/x"]);
}

/// A loopback port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_host_fails_with_its_address_and_is_not_retried_per_url() {
    let port = closed_port().await;
    let mut settings = quick_settings();
    settings.retries = 1;
    let fetcher = Fetcher::new(settings).unwrap();
    let target = Url::parse(&format!("http://127.0.0.1:{port}/page")).unwrap();
    let failure = fetcher.fetch(&target, &any_host).await.unwrap_err();
    assert_eq!(failure.reason(), "host-unreachable");
    assert!(
        failure.detail().contains(&format!("127.0.0.1:{port}")),
        "{}",
        failure.detail()
    );
    let requests_after_first = fetcher.counters().requests.load(AtomicOrdering::Relaxed);
    let again = fetcher.fetch(&target, &any_host).await.unwrap_err();
    assert_eq!(again.reason(), "host-unreachable");
    assert_eq!(
        fetcher.counters().requests.load(AtomicOrdering::Relaxed),
        requests_after_first
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_host_concurrency_is_never_exceeded() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (Arc::clone(&in_flight), Arc::clone(&most));
    let router = Router::new().route(
        "/work/{n}",
        get(move || {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            async move {
                let current = now.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                peak.fetch_max(current, AtomicOrdering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40)).await;
                now.fetch_sub(1, AtomicOrdering::SeqCst);
                "done"
            }
        }),
    );
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let mut settings = quick_settings();
    settings.per_host_concurrency = 3;
    let fetcher = Fetcher::new(settings).unwrap();
    let fetches = (0..12).map(|n| {
        let target = url(addr, &format!("/work/{n}"));
        let fetcher = &fetcher;
        async move { fetcher.fetch(&target, &any_host).await }
    });
    assert!(
        futures::future::join_all(fetches)
            .await
            .iter()
            .all(Result::is_ok)
    );
    let peak = most.load(AtomicOrdering::SeqCst);
    assert!((2..=3).contains(&peak), "peak concurrency {peak}");
}

// ---- Whole crawls of a small site ------------------------------------------------

fn photo(class: &str, index: usize) -> Vec<u8> {
    let mut files: Vec<_> = std::fs::read_dir(format!("{PHOTOS}/{class}"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::read(&files[index]).unwrap()
}

/// The same photo, scaled to 90 % and re-encoded: other bytes, same picture.
fn rescaled(bytes: &[u8]) -> Vec<u8> {
    let image = image::load_from_memory(bytes).unwrap();
    let smaller = image.resize(
        image.width() * 9 / 10,
        image.height() * 9 / 10,
        image::imageops::FilterType::Lanczos3,
    );
    let mut out = Vec::new();
    smaller
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn figure(path: &str) -> String {
    format!(r#"<figure class="photo"><a href="{path}"><img src="{path}"></a></figure>"#)
}

/// Two pages of class "a": three distinct photos, an exact copy, a rescaled copy, a
/// forbidden private photo and page, and a truncated photo.
fn small_site() -> Router {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("one.jpg", photo("animals", 0)),
        ("two.jpg", photo("animals", 1)),
        ("copy-of-two.jpg", photo("animals", 1)),
        ("one-smaller.png", rescaled(&photo("animals", 0))),
        ("three.jpg", photo("people", 0)),
        ("cut.jpg", photo("people", 1)[..2000].to_vec()),
    ];
    let files = Arc::new(files);
    let page1 = format!(
        "<main>{}{}{}{}{}</main><nav><a rel=next href=/a/2>Next</a> <a rel=next href=/private/a>Private</a></nav>",
        figure("/img/one.jpg"),
        figure("/img/two.jpg"),
        figure("/img/copy-of-two.jpg"),
        figure("/img/one-smaller.png"),
        figure("/private/hidden.jpg"),
    );
    let page2 = format!(
        "<main>{}{}</main>",
        figure("/img/three.jpg"),
        figure("/img/cut.jpg")
    );
    robots("User-agent: *\nDisallow: /private/\n")
        .route("/a/1", get(move || async move { Html(page1) }))
        .route("/a/2", get(move || async move { Html(page2) }))
        .route(
            "/img/{file}",
            get(move |UrlPath(file): UrlPath<String>| {
                let files = Arc::clone(&files);
                async move {
                    match files.iter().find(|(name, _)| *name == file) {
                        Some((_, bytes)) => bytes.clone().into_response(),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
        .route("/private/{file}", get(|| async { "secret" }))
}

fn small_site_config(addr: SocketAddr) -> CrawlConfig {
    let text = format!(
        r#"
        [http]
        per_host_concurrency = 4
        requests_per_second = 1000.0
        retry_backoff_ms = 5

        [classes.a]
        seeds = ["http://{addr}/a/1"]
        image_selector = "figure.photo a"
        next_selector = "a[rel=next]"
        "#
    );
    CrawlConfig::parse(&text, std::path::Path::new("small-site.toml")).unwrap()
}

fn quiet() -> CrawlOptions {
    CrawlOptions {
        progress: false,
        checkpoint_every: 2,
    }
}

/// A stop signal that never comes.
fn never() -> std::future::Pending<()> {
    std::future::pending()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_site_is_crawled_with_duplicates_paired_and_private_paths_untouched() {
    let hits = Hits::default();
    let addr = serve(small_site(), &hits).await;
    let out = tempfile::tempdir().unwrap();
    let summary = crawl(&small_site_config(addr), out.path(), &quiet(), never())
        .await
        .unwrap();

    let class = &summary.classes[0];
    assert_eq!(
        (
            class.accepted,
            class.exact_duplicates,
            class.near_duplicates
        ),
        (3, 1, 1),
        "{class:?}"
    );
    assert_eq!(class.rejected.get("corrupt"), Some(&1), "{class:?}");
    assert_eq!(
        class.rejected.get("robots-disallowed"),
        Some(&1),
        "{class:?}"
    );
    assert_eq!((class.pages_fetched, class.pages_disallowed), (2, 1));
    assert!(
        hits.paths().iter().all(|p| !p.starts_with("/private/")),
        "{:?}",
        hits.paths()
    );

    let store = Store::open(out.path()).unwrap();
    let kept = |name: &str| {
        store
            .manifest()
            .iter()
            .find(|r| r.image_url.ends_with(name))
            .unwrap()
            .clone()
    };
    let exact = store
        .duplicates()
        .iter()
        .find(|d| d.kind == DuplicateKind::Exact)
        .unwrap();
    assert!(
        exact.image_url.ends_with("/img/copy-of-two.jpg"),
        "the later link is the duplicate"
    );
    assert_eq!(
        (
            exact.duplicate_of_url.clone(),
            exact.duplicate_of_path.clone()
        ),
        (kept("two.jpg").image_url, kept("two.jpg").path)
    );
    let near = store
        .duplicates()
        .iter()
        .find(|d| d.kind == DuplicateKind::Near)
        .unwrap();
    assert!(near.image_url.ends_with("/img/one-smaller.png"));
    assert_eq!(near.duplicate_of_url, kept("one.jpg").image_url);
    assert!(
        near.distance <= crate::phash::NEAR_DUPLICATE_MAX_DISTANCE,
        "{near:?}"
    );
    for record in store.manifest() {
        let stored = std::fs::read(out.path().join(&record.path)).unwrap();
        assert_eq!(
            record.path,
            format!("images/{}/{}.jpg", &record.sha256[..2], record.sha256)
        );
        assert_eq!(stored.len() as u64, record.bytes);
        assert!(crate::image_check::validate(&stored, &Default::default()).is_ok());
    }
    assert!(out.path().join(SUMMARY_FILE).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_crawl_run_again_requests_only_robots_txt() {
    let hits = Hits::default();
    let addr = serve(small_site(), &hits).await;
    let out = tempfile::tempdir().unwrap();
    let config = small_site_config(addr);
    crawl(&config, out.path(), &quiet(), never()).await.unwrap();
    let first_run = hits.paths().len();

    let again = crawl(&config, out.path(), &quiet(), never()).await.unwrap();
    assert_eq!(hits.paths()[first_run..], ["/robots.txt"]);
    let class = &again.classes[0];
    assert_eq!(
        (
            class.pages_fetched,
            class.pages_remembered,
            class.images_processed()
        ),
        (0, 2, 0)
    );
    assert_eq!(again.stored_accepted, 3);
    again.ensure_something_fetched().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_stopped_at_once_checkpoints_and_the_next_run_finishes_it() {
    let hits = Hits::default();
    let addr = serve(small_site(), &hits).await;
    let out = tempfile::tempdir().unwrap();
    let config = small_site_config(addr);
    let stopped = crawl(&config, out.path(), &quiet(), async {})
        .await
        .unwrap();
    assert!(stopped.interrupted);
    for name in [MANIFEST_FILE, DUPLICATES_FILE, REJECTS_FILE, STATE_FILE] {
        assert!(out.path().join(name).exists(), "{name} after a stop");
    }
    let finished = crawl(&config, out.path(), &quiet(), never()).await.unwrap();
    assert!(!finished.interrupted);
    assert_eq!(
        (
            finished.stored_accepted,
            finished.stored_duplicates,
            finished.stored_rejects
        ),
        (3, 2, 2)
    );
}

#[tokio::test]
async fn an_unreachable_host_is_reported_per_class_and_fails_the_run_naming_it() {
    let port = closed_port().await;
    let text = format!(
        r#"
        [http]
        retries = 1
        retry_backoff_ms = 5
        [classes.a]
        seeds = ["http://127.0.0.1:{port}/a"]
        image_selector = "img"
        [classes.b]
        seeds = ["http://127.0.0.1:{port}/b"]
        image_selector = "img"
        "#
    );
    let config = CrawlConfig::parse(&text, std::path::Path::new("down.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = crawl(&config, out.path(), &quiet(), never()).await.unwrap();
    for class in &summary.classes {
        assert_eq!(class.seeds_failed.len(), 1, "{class:?}");
        assert!(
            class.seeds_failed[0].1.starts_with("host-unreachable"),
            "{class:?}"
        );
    }
    let message = summary.ensure_something_fetched().unwrap_err().to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(summary.to_table().contains("could not be fetched"));
}

#[tokio::test]
async fn failed_and_empty_pages_are_reported_but_do_not_fail_the_run() {
    let router = robots("User-agent: *\nDisallow:\n")
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/empty", get(|| async { Html("<p>no photos here</p>") }));
    let hits = Hits::default();
    let addr = serve(router, &hits).await;
    let text = format!(
        r#"
        [http]
        requests_per_second = 1000.0
        retries = 2
        retry_backoff_ms = 5
        [classes.a]
        seeds = ["http://{addr}/missing"]
        image_selector = "img"
        [classes.b]
        seeds = ["http://{addr}/broken"]
        image_selector = "img"
        [classes.c]
        seeds = ["http://{addr}/empty"]
        image_selector = "img"
        "#
    );
    let config = CrawlConfig::parse(&text, std::path::Path::new("faults.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = crawl(&config, out.path(), &quiet(), never()).await.unwrap();
    assert!(
        summary.classes[0].seeds_failed[0].1.starts_with("http-404"),
        "{:?}",
        summary.classes[0]
    );
    assert!(
        summary.classes[1].seeds_failed[0].1.starts_with("http-500"),
        "{:?}",
        summary.classes[1]
    );
    assert_eq!(hits.count("/broken"), 3, "a 500 page is retried");
    assert_eq!(
        (
            summary.classes[2].pages_fetched,
            summary.classes[2].pages_without_images
        ),
        (1, 1)
    );
    summary.ensure_something_fetched().unwrap();
}
