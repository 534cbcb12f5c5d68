//! The crawl config: a TOML file, checked in full before any request is sent.
//!
//! The schema is documented on [`crate::crawl`] and in `configs/crawl/gallery.toml`.
//! Unknown keys are errors (a misspelt `max_pages` must not silently mean "default"),
//! and so are unparsable URLs and selectors, an empty class list and zero caps. Every
//! error is [`Error::Config`] naming the file and the setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scraper::Selector;
use serde::Deserialize;
use url::Url;

use crate::image_check::Limits;
use crate::phash::NEAR_DUPLICATE_MAX_DISTANCE;
use crate::{Error, Result};

/// The user agent sent, and matched against robots.txt groups, unless configured.
pub const DEFAULT_USER_AGENT: &str = "smart-album-crawler/0.1";

/// A checked crawl config.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// The file it was read from (for messages); empty for configs built in code.
    pub path: PathBuf,
    pub http: HttpSettings,
    pub images: ImageSettings,
    /// Classes by name, in name order.
    pub classes: Vec<ClassConfig>,
}

/// How requests are made.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub user_agent: String,
    /// Requests in flight to one host at a time.
    pub per_host_concurrency: usize,
    /// Requests started per second per host.
    pub requests_per_second: f64,
    /// Further attempts after a 5xx answer, a time-out or a dropped connection.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// Limit for one request, body included.
    pub request_timeout: Duration,
    /// Bodies longer than this are cut off and rejected (`too-large-bytes`).
    pub max_file_bytes: u64,
    /// Redirect hops followed per request; one more is a `redirect-loop`.
    pub max_redirects: usize,
}

/// What counts as an acceptable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSettings {
    pub limits: Limits,
    /// Perceptual-hash Hamming distance at or under which a photo is a near duplicate.
    pub near_duplicate_distance: u32,
}

/// One class: where its pages start and how to read them.
#[derive(Debug, Clone)]
pub struct ClassConfig {
    pub name: String,
    pub seeds: Vec<Url>,
    /// Selects the elements whose `href` (or `src`) is an image to fetch.
    pub image_selector: Selector,
    /// Selects the elements whose `href` is another page of this class to crawl.
    pub next_selector: Option<Selector>,
    /// Hosts (`host` or `host:port`) this class may request.
    pub allowed_hosts: Vec<String>,
    /// Most pages fetched for this class, over all runs into one output folder.
    pub max_pages: usize,
    /// Most image links taken for this class (accepted, duplicate or rejected), over all
    /// runs into one output folder.
    pub max_images: usize,
}

impl ClassConfig {
    /// Whether a URL's host is one this class may request.
    pub fn allows_host(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let with_port = url
            .port_or_known_default()
            .map(|port| format!("{host}:{port}"));
        self.allowed_hosts.iter().any(|allowed| {
            allowed.eq_ignore_ascii_case(host)
                || with_port
                    .as_deref()
                    .is_some_and(|hp| allowed.eq_ignore_ascii_case(hp))
        })
    }
}

/// The file as written: every field optional where a default makes sense.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    images: RawImages,
    #[serde(default)]
    classes: BTreeMap<String, RawClass>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    user_agent: String,
    per_host_concurrency: usize,
    requests_per_second: f64,
    retries: u32,
    retry_backoff_ms: u64,
    request_timeout_secs: f64,
    max_file_bytes: u64,
    max_redirects: usize,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            user_agent: DEFAULT_USER_AGENT.into(),
            per_host_concurrency: 2,
            requests_per_second: 2.0,
            retries: 3,
            retry_backoff_ms: 500,
            request_timeout_secs: 30.0,
            max_file_bytes: 20 << 20,
            max_redirects: 5,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawImages {
    min_side: u32,
    max_pixels: u64,
    near_duplicate_distance: u32,
}

impl Default for RawImages {
    fn default() -> Self {
        let limits = Limits::default();
        RawImages {
            min_side: limits.min_side,
            max_pixels: limits.max_pixels,
            near_duplicate_distance: NEAR_DUPLICATE_MAX_DISTANCE,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    seeds: Vec<String>,
    image_selector: String,
    #[serde(default)]
    next_selector: Option<String>,
    #[serde(default)]
    allowed_hosts: Option<Vec<String>>,
    #[serde(default = "default_max_pages")]
    max_pages: usize,
    #[serde(default = "default_max_images")]
    max_images: usize,
}

fn default_max_pages() -> usize {
    100
}

fn default_max_images() -> usize {
    5_000
}

impl CrawlConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(path, format!("cannot read: {e}")))?;
        Self::parse(&text, path)
    }

    /// Parses and checks config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| config_error(path, e.to_string().trim_end()))?;
        let fail = |message: String| config_error(path, message);
        let http = check_http(raw.http).map_err(fail)?;
        let images = check_images(raw.images).map_err(fail)?;
        if raw.classes.is_empty() {
            return Err(fail(
                "no classes: add at least one [classes.<name>] table".into(),
            ));
        }
        let classes = raw
            .classes
            .into_iter()
            .map(|(name, class)| check_class(name, class))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(fail)?;
        Ok(CrawlConfig {
            path: path.to_path_buf(),
            http,
            images,
            classes,
        })
    }

    /// Every host any class may request, sorted.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .classes
            .iter()
            .flat_map(|c| c.allowed_hosts.clone())
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

fn config_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

type Checked<T> = std::result::Result<T, String>;

fn check_http(raw: RawHttp) -> Checked<HttpSettings> {
    if raw.user_agent.trim().is_empty() {
        return Err("http.user_agent is empty".into());
    }
    positive("http.per_host_concurrency", raw.per_host_concurrency as u64)?;
    if !(raw.requests_per_second.is_finite() && raw.requests_per_second > 0.0) {
        return Err(format!(
            "http.requests_per_second must be above 0, not {}",
            raw.requests_per_second
        ));
    }
    if !(raw.request_timeout_secs.is_finite() && raw.request_timeout_secs > 0.0) {
        return Err(format!(
            "http.request_timeout_secs must be above 0, not {}",
            raw.request_timeout_secs
        ));
    }
    positive("http.max_file_bytes", raw.max_file_bytes)?;
    Ok(HttpSettings {
        user_agent: raw.user_agent,
        per_host_concurrency: raw.per_host_concurrency,
        requests_per_second: raw.requests_per_second,
        retries: raw.retries,
        retry_backoff: Duration::from_millis(raw.retry_backoff_ms),
        request_timeout: Duration::from_secs_f64(raw.request_timeout_secs),
        max_file_bytes: raw.max_file_bytes,
        max_redirects: raw.max_redirects,
    })
}

fn check_images(raw: RawImages) -> Checked<ImageSettings> {
    positive("images.min_side", u64::from(raw.min_side))?;
    positive("images.max_pixels", raw.max_pixels)?;
    if raw.near_duplicate_distance > 64 {
        return Err(format!(
            "images.near_duplicate_distance is {}, but hashes have 64 bits",
            raw.near_duplicate_distance
        ));
    }
    Ok(ImageSettings {
        limits: Limits {
            min_side: raw.min_side,
            max_pixels: raw.max_pixels,
        },
        near_duplicate_distance: raw.near_duplicate_distance,
    })
}

fn check_class(name: String, raw: RawClass) -> Checked<ClassConfig> {
    let prefix = format!("classes.{name}");
    let at = |key: &str| format!("{prefix}.{key}");
    if name.trim().is_empty() || name.contains(['/', '\\']) {
        return Err(format!(
            "class name {name:?} must be non-empty and contain no slash"
        ));
    }
    if raw.seeds.is_empty() {
        return Err(format!("{} is empty", at("seeds")));
    }
    let seeds = raw
        .seeds
        .iter()
        .map(|seed| parse_http_url(seed, &at("seeds")))
        .collect::<Checked<Vec<_>>>()?;
    let image_selector = parse_selector(&raw.image_selector, &at("image_selector"))?;
    let next_selector = raw
        .next_selector
        .as_deref()
        .map(|s| parse_selector(s, &at("next_selector")))
        .transpose()?;
    positive(&at("max_pages"), raw.max_pages as u64)?;
    positive(&at("max_images"), raw.max_images as u64)?;
    let allowed_hosts = match raw.allowed_hosts {
        Some(hosts) if hosts.is_empty() => return Err(format!("{} is empty", at("allowed_hosts"))),
        Some(hosts) => hosts,
        None => seed_hosts(&seeds),
    };
    let class = ClassConfig {
        name,
        seeds,
        image_selector,
        next_selector,
        allowed_hosts,
        max_pages: raw.max_pages,
        max_images: raw.max_images,
    };
    if let Some(seed) = class.seeds.iter().find(|seed| !class.allows_host(seed)) {
        return Err(format!(
            "seed {seed} is not on one of {} {:?}",
            at("allowed_hosts"),
            class.allowed_hosts
        ));
    }
    Ok(class)
}

fn seed_hosts(seeds: &[Url]) -> Vec<String> {
    let mut hosts: Vec<String> = seeds
        .iter()
        .filter_map(|s| s.host_str().map(str::to_owned))
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn parse_http_url(text: &str, key: &str) -> Checked<Url> {
    let url = Url::parse(text).map_err(|e| format!("{key}: {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{key}: {text:?} is not an http(s) URL with a host"));
    }
    Ok(url)
}

fn parse_selector(text: &str, key: &str) -> Checked<Selector> {
    Selector::parse(text).map_err(|e| format!("{key}: {text:?} is not a CSS selector: {e}"))
}

fn positive(key: &str, value: u64) -> Checked<()> {
    if value == 0 {
        Err(format!("{key} must be at least 1"))
    } else {
        Ok(())
    }
}

/// Settings for tests elsewhere in the crawler.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The defaults, as a config without an `[http]` table gets them.
    pub fn http_settings() -> HttpSettings {
        check_http(RawHttp::default()).expect("the defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [http]
        per_host_concurrency = 4
        requests_per_second = 50.0

        [images]
        min_side = 40

        [classes.cats]
        seeds = ["http://127.0.0.1:8765/class/cats/page/1"]
        image_selector = "figure.photo a"
        next_selector = "a[rel=next]"
        max_pages = 3
        max_images = 10

        [classes.dogs]
        seeds = ["http://localhost:8765/dogs"]
        image_selector = "img"
        allowed_hosts = ["localhost:8765", "127.0.0.1"]
    "#;

    fn parse(text: &str) -> Result<CrawlConfig> {
        CrawlConfig::parse(text, Path::new("configs/crawl/test.toml"))
    }

    fn config_message(text: &str) -> String {
        match parse(text) {
            Err(Error::Config { path, message }) => {
                assert_eq!(path, Path::new("configs/crawl/test.toml"));
                message
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_config_parses_with_defaults_filled_in() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.http.user_agent, DEFAULT_USER_AGENT);
        assert_eq!(config.http.per_host_concurrency, 4);
        assert_eq!(config.images.limits.min_side, 40);
        assert_eq!(
            config.images.near_duplicate_distance,
            NEAR_DUPLICATE_MAX_DISTANCE
        );
        let names: Vec<_> = config.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cats", "dogs"]);
        assert_eq!(config.classes[0].allowed_hosts, ["127.0.0.1"]);
        assert_eq!(config.classes[0].max_pages, 3);
        assert!(config.classes[1].next_selector.is_none());
    }

    #[test]
    fn allowed_hosts_match_with_or_without_port() {
        let config = parse(GOOD).unwrap();
        let dogs = &config.classes[1];
        assert!(dogs.allows_host(&Url::parse("http://localhost:8765/x").unwrap()));
        assert!(!dogs.allows_host(&Url::parse("http://localhost:9999/x").unwrap()));
        assert!(dogs.allows_host(&Url::parse("http://127.0.0.1:1/x").unwrap()));
        assert!(!dogs.allows_host(&Url::parse("http://example.invalid/x").unwrap()));
    }

    #[test]
    fn bad_toml_is_a_config_error() {
        let message = config_message("[classes.cats\nseeds = 1");
        assert!(!message.is_empty());
    }

    #[test]
    fn an_unknown_key_is_named() {
        let text = GOOD.replace("max_pages = 3", "max_page = 3");
        assert!(
            config_message(&text).contains("max_page"),
            "{}",
            config_message(&text)
        );
        let text = GOOD.replace("min_side = 40", "min_size = 40");
        assert!(config_message(&text).contains("min_size"));
    }

    #[test]
    fn a_bad_seed_url_is_named() {
        let message = config_message(&GOOD.replace("http://localhost:8765/dogs", "not a url"));
        assert!(
            message.contains("classes.dogs.seeds") && message.contains("not a url"),
            "{message}"
        );
        let message =
            config_message(&GOOD.replace("http://localhost:8765/dogs", "ftp://localhost/x"));
        assert!(message.contains("http(s)"), "{message}");
    }

    #[test]
    fn no_classes_is_an_error() {
        let message = config_message("[http]\nretries = 1\n");
        assert!(message.contains("no classes"), "{message}");
    }

    #[test]
    fn zero_caps_are_errors() {
        for (from, to, key) in [
            ("max_pages = 3", "max_pages = 0", "classes.cats.max_pages"),
            (
                "max_images = 10",
                "max_images = 0",
                "classes.cats.max_images",
            ),
            (
                "per_host_concurrency = 4",
                "per_host_concurrency = 0",
                "http.per_host_concurrency",
            ),
            (
                "requests_per_second = 50.0",
                "requests_per_second = 0.0",
                "http.requests_per_second",
            ),
            ("min_side = 40", "max_pixels = 0", "images.max_pixels"),
        ] {
            let message = config_message(&GOOD.replace(from, to));
            assert!(message.contains(key), "{key}: {message}");
        }
    }

    #[test]
    fn a_bad_selector_is_named() {
        let message = config_message(&GOOD.replace("figure.photo a", "figure..photo"));
        assert!(message.contains("classes.cats.image_selector"), "{message}");
    }

    #[test]
    fn a_seed_off_the_allowed_hosts_is_an_error() {
        let message = config_message(&GOOD.replace("\"localhost:8765\", ", ""));
        assert!(
            message.contains("not on one of classes.dogs.allowed_hosts"),
            "{message}"
        );
    }

    #[test]
    fn the_shipped_gallery_config_is_valid_and_crawls_five_classes_on_loopback() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/crawl/gallery.toml");
        let config = CrawlConfig::load(&path).unwrap();
        let names: Vec<_> = config.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["animals", "buildings", "landscape", "people", "vehicles"]
        );
        assert_eq!(config.hosts(), ["127.0.0.1:8765"]);
        assert_eq!(config.http.user_agent, DEFAULT_USER_AGENT);
        assert!(
            config
                .classes
                .iter()
                .all(|c| c.max_images >= 6_000 && c.max_pages >= 100)
        );
    }

    #[test]
    fn a_missing_file_is_a_config_error_naming_it() {
        let err = CrawlConfig::load(Path::new("/nonexistent/crawl.toml")).unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        assert!(err.to_string().contains("/nonexistent/crawl.toml"), "{err}");
    }
}
