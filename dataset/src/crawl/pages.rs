//! The class walker: follows one class's pages from its seeds and hands every new image
//! link to an image job.
//!
//! Pages are walked breadth-first, one at a time per class (the classes run side by
//! side, and each page's images are fetched concurrently). A page finished in an
//! earlier run is not fetched again: its page links come from the checkpoint. Page
//! links robots.txt forbids are never requested, nor are links off the class's hosts.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::Shared;
use super::commit::Event;
use super::config::ClassConfig;
use super::fetch::FetchFailure;
use super::images::fetch_and_examine;

/// What one class's walk saw (the committer counts the images).
#[derive(Debug, Clone, Default)]
pub struct ClassWalk {
    pub pages_fetched: usize,
    pub pages_remembered: usize,
    pub pages_without_images: usize,
    pub pages_disallowed: usize,
    pub pages_failed: Vec<(String, String)>,
    pub seeds_failed: Vec<(String, String)>,
    pub already_known: usize,
    pub cap_reached: Option<String>,
}

/// Links found on a page, absolute, without fragments, de-duplicated in page order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageLinks {
    pub images: Vec<Url>,
    pub pages: Vec<Url>,
}

/// Extracts image links (`href`, else `src`, of elements the image selector picks) and
/// page links (`href` of elements the next selector picks). Only http(s) links count.
pub fn extract_links(
    html: &str,
    base: &Url,
    image_selector: &Selector,
    next_selector: Option<&Selector>,
) -> PageLinks {
    let document = Html::parse_document(html);
    let images = resolve_all(document.select(image_selector), base, &["href", "src"]);
    let pages = next_selector
        .map(|s| resolve_all(document.select(s), base, &["href"]))
        .unwrap_or_default();
    PageLinks { images, pages }
}

fn resolve_all<'a>(
    elements: impl Iterator<Item = ElementRef<'a>>,
    base: &Url,
    attributes: &[&str],
) -> Vec<Url> {
    let mut seen = HashSet::new();
    elements
        .filter_map(|element| attributes.iter().find_map(|a| element.value().attr(a)))
        .filter_map(|link| resolve(base, link))
        .filter(|url| seen.insert(url.to_string()))
        .collect()
}

fn resolve(base: &Url, link: &str) -> Option<Url> {
    let mut url = base.join(link.trim()).ok()?;
    url.set_fragment(None);
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// Walks one class; `already_taken` image links of it are recorded from earlier runs.
pub async fn walk_class(shared: Arc<Shared>, index: usize, already_taken: usize) -> ClassWalk {
    let class = &shared.config.classes[index];
    let mut walk = ClassWalk::default();
    let mut queue: VecDeque<(Url, bool)> = class.seeds.iter().map(|s| (s.clone(), true)).collect();
    let mut visited: HashSet<String> = HashSet::new();
    let mut pages_visited = 0usize;
    let mut taken = already_taken;
    let on_class_host = |u: &Url| class.allows_host(u);
    while let Some((url, is_seed)) = queue.pop_front() {
        if shared.is_stopped() {
            break;
        }
        if !visited.insert(url.to_string()) {
            continue;
        }
        if let Some(cap) = cap_reached(class, pages_visited, taken) {
            walk.cap_reached = Some(cap);
            break;
        }
        if let Some(page) = shared
            .remembered
            .get(url.as_str())
            .filter(|p| p.class == class.name)
        {
            pages_visited += 1;
            walk.pages_remembered += 1;
            queue.extend(
                page.links
                    .iter()
                    .filter_map(|l| Url::parse(l).ok())
                    .map(|l| (l, false)),
            );
            continue;
        }
        let fetched = tokio::select! {
            fetched = shared.fetcher.fetch(&url, &on_class_host) => fetched,
            () = shared.stopped() => break,
        };
        let fetched = match fetched {
            Ok(fetched) => fetched,
            Err(FetchFailure::RobotsDisallowed) if !is_seed => {
                // Never requested, so it does not count against max_pages.
                walk.pages_disallowed += 1;
                continue;
            }
            Err(failure) => {
                pages_visited += 1;
                record_page_failure(&mut walk, &url, is_seed, &failure);
                continue;
            }
        };
        pages_visited += 1;
        walk.pages_fetched += 1;
        shared.progress.pages.inc(1);
        visited.insert(fetched.url.to_string());
        let links = parse_page(&shared, index, fetched.bytes, fetched.url).await;
        queue.extend(
            links
                .pages
                .iter()
                .filter(|p| class.allows_host(p))
                .map(|p| (p.clone(), false)),
        );
        if links.images.is_empty() {
            walk.pages_without_images += 1;
        }
        let (chosen, complete) =
            choose_new_images(&shared, class, links.images, &mut taken, &mut walk);
        let page_links: Vec<String> = links.pages.iter().map(Url::to_string).collect();
        let page_url = url.to_string();
        let parsed = Event::PageParsed {
            class: index,
            url: page_url.clone(),
            links: page_links,
            images: chosen.len(),
            complete,
        };
        if shared.events.send(parsed).await.is_err() {
            break;
        }
        if !schedule_images(&shared, index, &page_url, chosen).await {
            break;
        }
    }
    walk
}

fn cap_reached(class: &ClassConfig, pages_visited: usize, taken: usize) -> Option<String> {
    if pages_visited >= class.max_pages {
        Some(format!("max_pages = {}", class.max_pages))
    } else if taken >= class.max_images {
        Some(format!("max_images = {}", class.max_images))
    } else {
        None
    }
}

fn record_page_failure(walk: &mut ClassWalk, url: &Url, is_seed: bool, failure: &FetchFailure) {
    let entry = (url.to_string(), failure.to_string());
    if is_seed {
        walk.seeds_failed.push(entry.clone());
    }
    walk.pages_failed.push(entry);
}

/// Parses a page on a blocking thread (large pages are real CPU work).
async fn parse_page(shared: &Arc<Shared>, index: usize, body: Vec<u8>, base: Url) -> PageLinks {
    let shared = Arc::clone(shared);
    let parse = move || {
        let class = &shared.config.classes[index];
        extract_links(
            &String::from_utf8_lossy(&body),
            &base,
            &class.image_selector,
            class.next_selector.as_ref(),
        )
    };
    // A parse that panicked (it should not) yields no links rather than a crash.
    tokio::task::spawn_blocking(parse).await.unwrap_or_default()
}

/// Picks the image links no run has taken yet, up to the class's image cap. Returns
/// them and whether the page's links were all taken (false when the cap cut in).
fn choose_new_images(
    shared: &Shared,
    class: &ClassConfig,
    images: Vec<Url>,
    taken: &mut usize,
    walk: &mut ClassWalk,
) -> (Vec<Url>, bool) {
    let mut seen = shared.lock_seen_images();
    let mut chosen = Vec::new();
    for image in images {
        if seen.contains(image.as_str()) {
            walk.already_known += 1;
            continue;
        }
        if *taken >= class.max_images {
            walk.cap_reached = Some(format!("max_images = {}", class.max_images));
            return (chosen, false);
        }
        seen.insert(image.to_string());
        *taken += 1;
        chosen.push(image);
    }
    (chosen, true)
}

/// Starts one job per image link, at most `in_flight` at a time. Returns false when
/// the crawl is stopping.
async fn schedule_images(
    shared: &Arc<Shared>,
    index: usize,
    page_url: &str,
    images: Vec<Url>,
) -> bool {
    for image in images {
        let Ok(permit) = Arc::clone(&shared.in_flight).acquire_owned().await else {
            return false;
        };
        if shared.is_stopped() {
            return false;
        }
        // No await between taking the number and spawning: numbers stay contiguous.
        let seq = shared
            .next_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let job_shared = Arc::clone(shared);
        let page_url = page_url.to_owned();
        tokio::spawn(async move {
            let _permit = permit;
            let class = &job_shared.config.classes[index];
            let outcome = tokio::select! {
                outcome = fetch_and_examine(&job_shared.fetcher, class, &image, job_shared.config.images.limits) => outcome,
                () = job_shared.stopped() => return,
            };
            let event = Event::Image {
                seq,
                class: index,
                page_url,
                image_url: image.to_string(),
                outcome,
            };
            // A closed channel means the committer failed; its error is reported.
            let _ = job_shared.events.send(event).await;
        });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_resolved_deduplicated_and_split_by_selector() {
        let html = r##"
            <figure class="photo"><a href="/photos/a/1.jpg"><img src="/photos/a/1.jpg"></a></figure>
            <figure class="photo"><a href="2.jpg#top"><img src="2.jpg"></a></figure>
            <figure class="photo"><a href="/photos/a/1.jpg"></a></figure>
            <figure class="photo"><img src="http://127.0.0.1:9/only-img.png"></figure>
            <figure class="photo"><a href="mailto:x@y">mail</a></figure>
            <a class="next" rel="next" href="/class/a/page/2">Next</a>
            <a class="page" href="/private/a/page/1">Private</a>
        "##;
        let base = Url::parse("http://127.0.0.1:9/class/a/page/1").unwrap();
        let image_selector = Selector::parse("figure.photo a, figure.photo img").unwrap();
        let next_selector = Selector::parse("a[rel=next], a.page").unwrap();
        let links = extract_links(html, &base, &image_selector, Some(&next_selector));
        let images: Vec<&str> = links.images.iter().map(Url::as_str).collect();
        assert_eq!(
            images,
            [
                "http://127.0.0.1:9/photos/a/1.jpg",
                "http://127.0.0.1:9/class/a/page/2.jpg",
                "http://127.0.0.1:9/only-img.png",
            ]
        );
        let pages: Vec<&str> = links.pages.iter().map(Url::as_str).collect();
        assert_eq!(
            pages,
            [
                "http://127.0.0.1:9/class/a/page/2",
                "http://127.0.0.1:9/private/a/page/1"
            ]
        );
    }

    #[test]
    fn a_page_without_matches_has_no_links() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        let selector = Selector::parse("figure.photo a").unwrap();
        assert_eq!(
            extract_links("<p>nothing here</p>", &base, &selector, None),
            PageLinks::default()
        );
    }
}
