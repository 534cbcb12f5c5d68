//! Polite HTTP fetching: robots.txt, per-host limits, retries, redirects, byte caps.
//!
//! Every request the crawler makes goes through [`Fetcher::fetch`], which
//! - asks the host's robots.txt first (fetched once per host, then cached) and never
//!   sends a request robots.txt forbids, not even as a redirect target;
//! - holds one of the host's `per_host_concurrency` permits and waits for the host's
//!   next rate slot (`requests_per_second`) before each attempt;
//! - retries 5xx answers, time-outs and dropped connections with exponential back-off
//!   (`retry_backoff`, doubled each time), but not 4xx answers;
//! - follows redirects itself (reqwest's are off): each hop is checked against the
//!   caller's host rule and robots.txt, and a revisited URL or one hop too many is a
//!   `redirect-loop`;
//! - stops reading a body as soon as it passes the byte cap (`too-large-bytes`), or
//!   before reading at all when `Content-Length` announces more.
//!
//! Connections go straight to the host: no proxy from the environment is used.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::{Client, StatusCode, redirect};
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::config::HttpSettings;
use super::robots::Robots;
use crate::{Error, Result};

/// robots.txt bodies larger than this are cut off here (RFC 9309 asks for at least
/// 500 KiB to be read).
const ROBOTS_MAX_BYTES: u64 = 512 << 10;

/// Longest wait between two retries, however many there are.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a URL could not be fetched. [`FetchFailure::reason`] is the stable code the
/// reports store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// The server answered with this (non-success, non-redirect) status, for good.
    Status(u16),
    /// A redirect revisited a URL or went over the hop limit.
    RedirectLoop(String),
    /// The body is longer than the byte cap.
    TooLarge { limit: u64, announced: Option<u64> },
    /// The request timed out on every attempt.
    Timeout,
    /// The connection failed on every attempt (refused, reset, DNS).
    Network(String),
    /// robots.txt forbids this URL; nothing was sent.
    RobotsDisallowed,
    /// The URL (or a redirect target) is on a host the class may not request.
    OffHost(String),
    /// A redirect without a usable `Location`.
    BadRedirect(String),
    /// The host's robots.txt could not be fetched at all, so nothing there is tried.
    HostUnreachable(String),
}

impl FetchFailure {
    /// Short code, e.g. `"http-404"`, `"redirect-loop"`, `"too-large-bytes"`.
    pub fn reason(&self) -> String {
        match self {
            FetchFailure::Status(code) => format!("http-{code}"),
            FetchFailure::RedirectLoop(_) => "redirect-loop".into(),
            FetchFailure::TooLarge { .. } => "too-large-bytes".into(),
            FetchFailure::Timeout => "timeout".into(),
            FetchFailure::Network(_) => "network".into(),
            FetchFailure::RobotsDisallowed => "robots-disallowed".into(),
            FetchFailure::OffHost(_) => "off-host".into(),
            FetchFailure::BadRedirect(_) => "bad-redirect".into(),
            FetchFailure::HostUnreachable(_) => "host-unreachable".into(),
        }
    }

    /// A sentence for people.
    pub fn detail(&self) -> String {
        match self {
            FetchFailure::Status(code) => {
                let text = StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                format!("server answered {code} {text}")
                    .trim_end()
                    .to_owned()
            }
            FetchFailure::RedirectLoop(why) => why.clone(),
            FetchFailure::TooLarge {
                limit,
                announced: Some(size),
            } => {
                format!("Content-Length {size} is over the {limit}-byte cap; not read")
            }
            FetchFailure::TooLarge {
                limit,
                announced: None,
            } => {
                format!("body passed the {limit}-byte cap; stopped reading")
            }
            FetchFailure::Timeout => "timed out on every attempt".into(),
            FetchFailure::Network(why) | FetchFailure::HostUnreachable(why) => why.clone(),
            FetchFailure::RobotsDisallowed => "robots.txt disallows it; not requested".into(),
            FetchFailure::OffHost(url) => format!("{url} is not on an allowed host; not requested"),
            FetchFailure::BadRedirect(why) => why.clone(),
        }
    }
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason(), self.detail())
    }
}

/// A body fetched whole.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the body came from after redirects.
    pub url: Url,
    pub bytes: Vec<u8>,
}

/// One host's robots rules, or why there are none.
#[derive(Debug, Clone)]
enum RobotsState {
    Rules(Robots),
    Unreachable(String),
}

/// Per-host politeness: a concurrency gate, a rate slot and the robots rules.
#[derive(Debug)]
struct Host {
    gate: Semaphore,
    slots: Mutex<RateSlots>,
    robots: OnceCell<RobotsState>,
}

/// Start times handed out at a fixed rate: each request reserves the next free slot,
/// at least `interval` after the one before, and never in the past.
#[derive(Debug, Clone, Copy)]
struct RateSlots {
    next: Instant,
    interval: Duration,
}

impl RateSlots {
    fn new(requests_per_second: f64, now: Instant) -> Self {
        RateSlots {
            next: now,
            interval: Duration::from_secs_f64(1.0 / requests_per_second),
        }
    }

    /// Reserves the next slot at or after `now` and returns it.
    fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next.max(now);
        self.next = slot + self.interval;
        slot
    }
}

/// Traffic counters, for the summary.
#[derive(Debug, Default)]
pub struct FetchCounters {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// The crawler's HTTP client. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Fetcher {
    client: Client,
    settings: HttpSettings,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    counters: FetchCounters,
}

/// A usable answer to one request.
enum Answer {
    Body(Vec<u8>),
    /// The raw `Location` of a 3xx answer.
    Redirect(String),
}

/// Why one attempt failed, and whether another attempt could do better.
enum Attempt {
    /// 5xx, time-out, dropped connection: worth another try after back-off.
    Retry(FetchFailure),
    /// 4xx, too large, bad redirect: the same answer would come again.
    Fail(FetchFailure),
}

impl Fetcher {
    /// Builds the client: our user agent, no automatic redirects, the request time-out.
    pub fn new(settings: HttpSettings) -> Result<Self> {
        let client = Client::builder()
            .user_agent(settings.user_agent.clone())
            .redirect(redirect::Policy::none())
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .pool_max_idle_per_host(settings.per_host_concurrency)
            .no_proxy()
            .build()
            .map_err(|e| Error::Http {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(Fetcher {
            client,
            settings,
            hosts: Mutex::new(HashMap::new()),
            counters: FetchCounters::default(),
        })
    }

    /// Requests and bytes so far.
    pub fn counters(&self) -> &FetchCounters {
        &self.counters
    }

    /// Fetches a URL whole, following redirects that stay on hosts `host_allowed`
    /// accepts and that robots.txt allows.
    pub async fn fetch(
        &self,
        start: &Url,
        host_allowed: &(dyn Fn(&Url) -> bool + Sync),
    ) -> Result<Fetched, FetchFailure> {
        let mut url = start.clone();
        let mut visited = HashSet::from([url.clone()]);
        loop {
            if !host_allowed(&url) {
                return Err(FetchFailure::OffHost(url.to_string()));
            }
            let host = self.host(&url);
            self.check_robots(&host, &url).await?;
            match self
                .get_with_retries(&host, &url, self.settings.max_file_bytes)
                .await?
            {
                Answer::Body(bytes) => return Ok(Fetched { url, bytes }),
                Answer::Redirect(location) => url = self.next_hop(&url, &location, &mut visited)?,
            }
        }
    }

    /// Whether robots.txt allows a URL, fetching the host's file on first use.
    pub async fn robots_allows(&self, url: &Url) -> bool {
        let host = self.host(url);
        self.check_robots(&host, url).await.is_ok()
    }

    /// Resolves a redirect and guards against loops and long chains.
    fn next_hop(
        &self,
        from: &Url,
        location: &str,
        visited: &mut HashSet<Url>,
    ) -> Result<Url, FetchFailure> {
        let mut next = from.join(location).map_err(|e| {
            FetchFailure::BadRedirect(format!("{from} redirects to unusable {location:?}: {e}"))
        })?;
        next.set_fragment(None);
        let hops_so_far = visited.len() - 1;
        if hops_so_far >= self.settings.max_redirects {
            return Err(FetchFailure::RedirectLoop(format!(
                "more than {} redirects (last to {next})",
                self.settings.max_redirects
            )));
        }
        if !visited.insert(next.clone()) {
            return Err(FetchFailure::RedirectLoop(format!(
                "{from} redirects back to {next}"
            )));
        }
        Ok(next)
    }

    fn host(&self, url: &Url) -> Arc<Host> {
        let key = host_key(url);
        let mut hosts = lock(&self.hosts);
        hosts
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Host {
                    gate: Semaphore::new(self.settings.per_host_concurrency),
                    slots: Mutex::new(RateSlots::new(
                        self.settings.requests_per_second,
                        Instant::now(),
                    )),
                    robots: OnceCell::new(),
                })
            })
            .clone()
    }

    async fn check_robots(&self, host: &Host, url: &Url) -> Result<(), FetchFailure> {
        let state = host
            .robots
            .get_or_init(|| self.load_robots(host, url))
            .await;
        match state {
            RobotsState::Unreachable(why) => Err(FetchFailure::HostUnreachable(why.clone())),
            RobotsState::Rules(robots) if robots.allows(&path_and_query(url)) => Ok(()),
            RobotsState::Rules(_) => Err(FetchFailure::RobotsDisallowed),
        }
    }

    /// Fetches `/robots.txt` (same-host redirects followed): 2xx → its rules, 4xx → no
    /// rules, unreachable → nothing is tried on the host, anything else → disallow all.
    async fn load_robots(&self, host: &Host, url: &Url) -> RobotsState {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        robots_url.set_fragment(None);
        let mut visited = HashSet::from([robots_url.clone()]);
        let origin = host_key(url);
        loop {
            let answer = self
                .get_with_retries(host, &robots_url, ROBOTS_MAX_BYTES)
                .await;
            match answer {
                Ok(Answer::Body(bytes)) => {
                    return RobotsState::Rules(Robots::parse(
                        &String::from_utf8_lossy(&bytes),
                        &self.settings.user_agent,
                    ));
                }
                Ok(Answer::Redirect(location)) => {
                    match self.next_hop(&robots_url, &location, &mut visited) {
                        Ok(next) if host_key(&next) == origin => robots_url = next,
                        _ => return RobotsState::Rules(Robots::disallow_all()),
                    }
                }
                Err(FetchFailure::Status(code)) if (400..500).contains(&code) => {
                    return RobotsState::Rules(Robots::allow_all());
                }
                Err(failure @ (FetchFailure::Network(_) | FetchFailure::Timeout)) => {
                    return RobotsState::Unreachable(format!("{}: {}", origin, failure.detail()));
                }
                Err(_) => return RobotsState::Rules(Robots::disallow_all()),
            }
        }
    }

    /// One URL, no redirects followed, with retries; returns `Body` or `Redirect`.
    async fn get_with_retries(
        &self,
        host: &Host,
        url: &Url,
        byte_cap: u64,
    ) -> Result<Answer, FetchFailure> {
        let mut attempt = 0u32;
        loop {
            match self.get_once(host, url, byte_cap).await {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Retry(_)) if attempt < self.settings.retries => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(Attempt::Retry(failure) | Attempt::Fail(failure)) => return Err(failure),
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt);
        self.settings
            .retry_backoff
            .saturating_mul(factor)
            .min(MAX_BACKOFF)
    }

    /// A single attempt, inside the host's concurrency gate and rate slot.
    async fn get_once(&self, host: &Host, url: &Url, byte_cap: u64) -> Result<Answer, Attempt> {
        // Acquiring fails only on a closed semaphore, and this one is never closed.
        let Ok(_permit) = host.gate.acquire().await else {
            return Err(Attempt::Fail(FetchFailure::Network(
                "host gate closed".into(),
            )));
        };
        self.wait_for_rate_slot(host).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = match self.client.get(url.clone()).send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Err(Attempt::Retry(FetchFailure::Timeout)),
            Err(error) => return Err(Attempt::Retry(FetchFailure::Network(describe(&error)))),
        };
        let status = response.status();
        if status.is_redirection() {
            return match response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                Some(location) => Ok(Answer::Redirect(location.to_owned())),
                None => Err(Attempt::Fail(FetchFailure::BadRedirect(format!(
                    "{url} answered {status} without a Location"
                )))),
            };
        }
        if status.is_server_error() {
            return Err(Attempt::Retry(FetchFailure::Status(status.as_u16())));
        }
        if !status.is_success() {
            return Err(Attempt::Fail(FetchFailure::Status(status.as_u16())));
        }
        self.read_capped(response, byte_cap).await
    }

    /// Reserves the host's next rate slot and sleeps until it comes.
    async fn wait_for_rate_slot(&self, host: &Host) {
        let slot = lock(&host.slots).reserve(Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    /// Reads a body chunk by chunk, giving up the moment it passes the cap.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        cap: u64,
    ) -> Result<Answer, Attempt> {
        if let Some(announced) = response.content_length().filter(|&n| n > cap) {
            return Err(Attempt::Fail(FetchFailure::TooLarge {
                limit: cap,
                announced: Some(announced),
            }));
        }
        let expected = response.content_length().unwrap_or(0).min(cap);
        let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.counters
                        .bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if (body.len() + chunk.len()) as u64 > cap {
                        return Err(Attempt::Fail(FetchFailure::TooLarge {
                            limit: cap,
                            announced: None,
                        }));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Answer::Body(body)),
                Err(error) if error.is_timeout() => {
                    return Err(Attempt::Retry(FetchFailure::Timeout));
                }
                Err(error) => return Err(Attempt::Retry(FetchFailure::Network(describe(&error)))),
            }
        }
    }
}

/// `host:port`, the unit of politeness.
fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// The part of a URL robots.txt rules are matched against.
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A reqwest error with its causes, e.g. "error sending request: connection refused".
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A lock that survives a panicked holder: the data here stays consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_slots_are_spaced_by_the_interval_and_never_in_the_past() {
        let start = Instant::now();
        let mut slots = RateSlots::new(10.0, start);
        let burst: Vec<Instant> = (0..4).map(|_| slots.reserve(start)).collect();
        let gaps: Vec<Duration> = burst.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(burst[0], start);
        assert!(
            gaps.iter().all(|&g| g == Duration::from_millis(100)),
            "{gaps:?}"
        );
        let later = start + Duration::from_secs(5);
        assert_eq!(
            slots.reserve(later),
            later,
            "an idle host does not bank slots"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut settings = super::super::config::tests_support::http_settings();
        settings.retry_backoff = Duration::from_millis(100);
        let fetcher = Fetcher::new(settings).unwrap();
        let waits: Vec<u128> = (0..4).map(|a| fetcher.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800]);
        assert_eq!(fetcher.backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn failure_codes_are_the_agreed_ones() {
        assert_eq!(FetchFailure::Status(404).reason(), "http-404");
        assert_eq!(FetchFailure::Status(500).reason(), "http-500");
        assert_eq!(
            FetchFailure::RedirectLoop(String::new()).reason(),
            "redirect-loop"
        );
        assert_eq!(
            FetchFailure::TooLarge {
                limit: 1,
                announced: None
            }
            .reason(),
            "too-large-bytes"
        );
        assert_eq!(
            FetchFailure::Status(404).detail(),
            "server answered 404 Not Found"
        );
    }
}
