//! The committer: the one place that decides duplicates and writes the store.
//!
//! Image jobs finish in whatever order the network allows; the committer puts their
//! outcomes back into discovery order (each job carries a sequence number given when
//! its link was found) before judging them. So of two identical photos on one page
//! the first linked is kept and the later one listed as its duplicate, however the
//! downloads raced. It runs on a blocking thread: it hashes, compares and writes files.

use std::collections::{BTreeMap, HashMap};

use indicatif::ProgressBar;
use tokio::sync::{mpsc, watch};

use super::images::{Examined, ImageOutcome};
use super::report::{DuplicateRecord, RejectRecord};
use super::store::{FinishedPage, Store};
use crate::Result;
use crate::manifest::ManifestRecord;
use crate::phash::{NEAR_DUPLICATE_MIN_CORRELATION, Thumbnail, thumbnail, thumbnail_correlation};

/// What the walkers and image jobs tell the committer.
#[derive(Debug)]
pub enum Event {
    /// A page was fetched and parsed; `images` of its image links were handed to jobs.
    /// `complete` is false when a cap or a stop left some links untaken.
    PageParsed {
        class: usize,
        url: String,
        links: Vec<String>,
        images: usize,
        complete: bool,
    },
    /// One image job's result.
    Image {
        seq: u64,
        class: usize,
        page_url: String,
        image_url: String,
        outcome: ImageOutcome,
    },
}

/// Per-class counts of what was committed this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitCounts {
    pub accepted: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    pub rejected: BTreeMap<String, usize>,
}

/// A parsed page still waiting for some of its images.
#[derive(Debug)]
struct PendingPage {
    class: usize,
    links: Vec<String>,
    remaining: usize,
    complete: bool,
}

/// Settings and outputs the committer works with.
pub struct Committer {
    pub store: Store,
    pub class_names: Vec<String>,
    pub near_duplicate_distance: u32,
    pub checkpoint_every: usize,
    pub progress: ProgressBar,
    /// Raised when the committer fails, so the walkers stop too.
    pub stop: watch::Sender<bool>,
}

/// Everything the committer leaves behind.
#[derive(Debug)]
pub struct Committed {
    pub store: Store,
    pub counts: Vec<CommitCounts>,
}

impl Committer {
    /// Consumes events until every sender is gone, then writes a final checkpoint.
    pub fn run(self, events: mpsc::Receiver<Event>) -> Result<Committed> {
        let stop = self.stop.clone();
        let outcome = self.consume(events);
        if outcome.is_err() {
            // Nobody may be listening any more; that is fine.
            let _ = stop.send(true);
        }
        outcome
    }

    fn consume(self, mut events: mpsc::Receiver<Event>) -> Result<Committed> {
        let mut state = CommitState {
            counts: vec![CommitCounts::default(); self.class_names.len()],
            waiting: BTreeMap::new(),
            next_seq: 0,
            pages: HashMap::new(),
            since_checkpoint: 0,
            kept_thumbnails: HashMap::new(),
            committer: self,
        };
        while let Some(event) = events.blocking_recv() {
            match event {
                Event::PageParsed {
                    class,
                    url,
                    links,
                    images,
                    complete,
                } => {
                    state.page_parsed(class, url, links, images, complete);
                }
                Event::Image {
                    seq,
                    class,
                    page_url,
                    image_url,
                    outcome,
                } => {
                    state
                        .waiting
                        .insert(seq, (class, page_url, image_url, outcome));
                    state.commit_in_order()?;
                }
            }
        }
        // Jobs cut short by a stop leave gaps in the sequence; commit what came.
        let rest = std::mem::take(&mut state.waiting);
        for (_, (class, page_url, image_url, outcome)) in rest {
            state.commit(class, page_url, image_url, outcome)?;
        }
        state.committer.store.checkpoint()?;
        Ok(Committed {
            store: state.committer.store,
            counts: state.counts,
        })
    }
}

type Waiting = (usize, String, String, ImageOutcome);

struct CommitState {
    committer: Committer,
    counts: Vec<CommitCounts>,
    waiting: BTreeMap<u64, Waiting>,
    next_seq: u64,
    pages: HashMap<String, PendingPage>,
    since_checkpoint: usize,
    /// Thumbnails of kept photos that were hash candidates, read back from the store
    /// on first need (few are ever needed, and a resumed crawl has none in memory).
    kept_thumbnails: HashMap<String, Option<Thumbnail>>,
}

/// The thumbnail of a stored photo; `None` if it can no longer be read, in which case
/// it confirms nothing.
fn stored_thumbnail(path: &std::path::Path) -> Option<Thumbnail> {
    image::open(path).ok().map(|image| thumbnail(&image))
}

impl CommitState {
    fn page_parsed(
        &mut self,
        class: usize,
        url: String,
        links: Vec<String>,
        images: usize,
        complete: bool,
    ) {
        let page = PendingPage {
            class,
            links,
            remaining: images,
            complete,
        };
        if images == 0 {
            self.finish_if_done(url, page);
        } else {
            self.pages.insert(url, page);
        }
    }

    fn commit_in_order(&mut self) -> Result<()> {
        while let Some((class, page_url, image_url, outcome)) = self.waiting.remove(&self.next_seq)
        {
            self.next_seq += 1;
            self.commit(class, page_url, image_url, outcome)?;
        }
        Ok(())
    }

    fn commit(
        &mut self,
        class: usize,
        page_url: String,
        image_url: String,
        outcome: ImageOutcome,
    ) -> Result<()> {
        match outcome {
            ImageOutcome::Rejected { reason, detail } => {
                self.reject(class, &page_url, image_url, reason, detail)
            }
            ImageOutcome::Passed(examined) => self.judge(class, &page_url, image_url, *examined)?,
        }
        self.image_done(&page_url);
        self.committer.progress.inc(1);
        self.show_totals();
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.committer.checkpoint_every {
            self.committer.store.checkpoint()?;
            self.since_checkpoint = 0;
        }
        Ok(())
    }

    fn reject(
        &mut self,
        class: usize,
        page_url: &str,
        url: String,
        reason: String,
        detail: String,
    ) {
        *self.counts[class]
            .rejected
            .entry(reason.clone())
            .or_insert(0) += 1;
        let class = self.committer.class_names[class].clone();
        self.committer.store.add_reject(RejectRecord {
            url,
            page_url: page_url.to_owned(),
            class,
            reason,
            detail,
        });
    }

    /// Keeps the image, or lists it as a duplicate of the accepted one it matches.
    fn judge(
        &mut self,
        class: usize,
        page_url: &str,
        image_url: String,
        image: Examined,
    ) -> Result<()> {
        let class_name = self.committer.class_names[class].clone();
        let store = &mut self.committer.store;
        let kept_thumbnails = &mut self.kept_thumbnails;
        let store_root = store.file_path("");
        let confirm = |kept: &ManifestRecord| {
            let kept_thumbnail = kept_thumbnails
                .entry(kept.path.clone())
                .or_insert_with(|| stored_thumbnail(&store_root.join(&kept.path)));
            kept_thumbnail.as_ref().is_some_and(|t| {
                thumbnail_correlation(t, &image.thumbnail) >= NEAR_DUPLICATE_MIN_CORRELATION
            })
        };
        let found = store.find_duplicate(
            &image.sha256,
            image.phash,
            self.committer.near_duplicate_distance,
            confirm,
        );
        match found {
            Some(found) => {
                match found.kind {
                    super::report::DuplicateKind::Exact => self.counts[class].exact_duplicates += 1,
                    super::report::DuplicateKind::Near => self.counts[class].near_duplicates += 1,
                }
                store.add_duplicate(DuplicateRecord {
                    image_url,
                    page_url: page_url.to_owned(),
                    class: class_name,
                    kind: found.kind,
                    distance: found.distance,
                    duplicate_of_url: found.of_url,
                    duplicate_of_path: found.of_path,
                    sha256: image.sha256,
                    phash: image.phash,
                });
            }
            None => {
                let path =
                    store.write_image(&image.sha256, image.kind.extension(), &image.bytes)?;
                store.accept(ManifestRecord {
                    path,
                    class: class_name,
                    image_url,
                    page_url: page_url.to_owned(),
                    sha256: image.sha256,
                    phash: image.phash,
                    width: image.width,
                    height: image.height,
                    bytes: image.bytes.len() as u64,
                    fetched_at: image.fetched_at,
                });
                self.counts[class].accepted += 1;
            }
        }
        Ok(())
    }

    fn image_done(&mut self, page_url: &str) {
        let Some(page) = self.pages.get_mut(page_url) else {
            return;
        };
        page.remaining = page.remaining.saturating_sub(1);
        if page.remaining == 0
            && let Some(page) = self.pages.remove(page_url)
        {
            self.finish_if_done(page_url.to_owned(), page);
        }
    }

    /// A page whose every image link is recorded is remembered by the checkpoint.
    fn finish_if_done(&mut self, url: String, page: PendingPage) {
        if page.complete {
            let class = self.committer.class_names[page.class].clone();
            self.committer.store.finish_page(FinishedPage {
                url,
                class,
                links: page.links,
            });
        }
    }

    fn show_totals(&self) {
        let sum = |f: fn(&CommitCounts) -> usize| self.counts.iter().map(f).sum::<usize>();
        self.committer.progress.set_message(format!(
            "accepted {} · duplicates {} · rejected {}",
            sum(|c| c.accepted),
            sum(|c| c.exact_duplicates + c.near_duplicates),
            sum(|c| c.rejected.values().sum())
        ));
    }
}
