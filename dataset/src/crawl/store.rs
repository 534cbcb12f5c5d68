//! The crawl's output folder: content-addressed files, the three tables and the
//! checkpoint, and the duplicate index over everything accepted so far.
//!
//! Layout of `<out>/`:
//! - `images/<first 2 hex of sha>/<sha256>.<ext>`: accepted files, named by content;
//! - `manifest.parquet|csv`, `duplicates.parquet|csv`, `rejects.parquet|csv`;
//! - `crawl-state.toml`: pages whose every image link is recorded, with the page links
//!   found on them, so a resumed crawl need not fetch them again;
//! - `summary.txt`: the last run's summary table.
//!
//! Every file is written to a temporary sibling and renamed into place, so killing the
//! crawler at any moment leaves each file either old or new, never half written. The
//! tables are written in the order manifest, duplicates, rejects, state: a duplicate
//! row's kept image is always in the manifest already, and a page is only remembered
//! once its images are.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::report::{
    DuplicateKind, DuplicateRecord, RejectRecord, read_duplicates, read_rejects, write_duplicates,
    write_rejects,
};
use crate::manifest::{ManifestRecord, read_parquet, write_manifest};
use crate::phash::distance;
use crate::{Error, Result};

pub const MANIFEST_FILE: &str = "manifest.parquet";
pub const DUPLICATES_FILE: &str = "duplicates.parquet";
pub const REJECTS_FILE: &str = "rejects.parquet";
pub const STATE_FILE: &str = "crawl-state.toml";
pub const SUMMARY_FILE: &str = "summary.txt";
pub const IMAGES_DIR: &str = "images";

/// A page whose image links are all recorded, and the page links it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedPage {
    pub url: String,
    pub class: String,
    /// Page links (next pages) found on it, in page order.
    pub links: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointState {
    #[serde(default)]
    pages: Vec<FinishedPage>,
}

/// The accepted image an incoming one duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateMatch {
    pub kind: DuplicateKind,
    pub distance: u32,
    pub of_url: String,
    pub of_path: String,
}

/// The output folder and everything recorded in it.
#[derive(Debug)]
pub struct Store {
    out: PathBuf,
    manifest: Vec<ManifestRecord>,
    duplicates: Vec<DuplicateRecord>,
    rejects: Vec<RejectRecord>,
    finished_pages: BTreeMap<String, FinishedPage>,
    /// SHA-256 → manifest row.
    by_sha: HashMap<String, usize>,
    known_urls: HashSet<String>,
    /// Which parts changed since the last checkpoint.
    dirty: Dirty,
}

#[derive(Debug, Default, Clone, Copy)]
struct Dirty {
    manifest: bool,
    duplicates: bool,
    rejects: bool,
    state: bool,
}

impl Store {
    /// Opens an output folder, creating it, and loads what an earlier run recorded.
    pub fn open(out: &Path) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| Error::io("create output folder", out, e))?;
        let manifest = load_or_default(out, MANIFEST_FILE, read_parquet)?;
        let duplicates = load_or_default(out, DUPLICATES_FILE, read_duplicates)?;
        let rejects = load_or_default(out, REJECTS_FILE, read_rejects)?;
        let state = load_or_default(out, STATE_FILE, read_state)?;
        let mut store = Store {
            out: out.to_path_buf(),
            manifest: Vec::new(),
            duplicates,
            rejects,
            finished_pages: state
                .pages
                .into_iter()
                .map(|p| (p.url.clone(), p))
                .collect(),
            by_sha: HashMap::new(),
            known_urls: HashSet::new(),
            dirty: Dirty::default(),
        };
        for record in manifest {
            store.index_accepted(record);
        }
        store
            .known_urls
            .extend(store.duplicates.iter().map(|d| d.image_url.clone()));
        store
            .known_urls
            .extend(store.rejects.iter().map(|r| r.url.clone()));
        Ok(store)
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    pub fn manifest(&self) -> &[ManifestRecord] {
        &self.manifest
    }

    pub fn duplicates(&self) -> &[DuplicateRecord] {
        &self.duplicates
    }

    pub fn rejects(&self) -> &[RejectRecord] {
        &self.rejects
    }

    pub fn finished_pages(&self) -> &BTreeMap<String, FinishedPage> {
        &self.finished_pages
    }

    /// Every image URL recorded in any of the three tables.
    pub fn known_urls(&self) -> &HashSet<String> {
        &self.known_urls
    }

    /// Image links recorded per class, in any table.
    pub fn records_per_class(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        let classes = self.manifest.iter().map(|r| &r.class);
        let classes = classes
            .chain(self.duplicates.iter().map(|d| &d.class))
            .chain(self.rejects.iter().map(|r| &r.class));
        for class in classes {
            *counts.entry(class.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// The accepted image these bytes duplicate: the same SHA-256, or else the nearest
    /// perceptual hash within `max_distance` that `confirm` accepts (see
    /// [`crate::phash`]: a hash match alone is only a candidate). Candidates are tried
    /// nearest first, the earliest accepted on a tie.
    pub fn find_duplicate(
        &self,
        sha256: &str,
        phash: u64,
        max_distance: u32,
        mut confirm: impl FnMut(&ManifestRecord) -> bool,
    ) -> Option<DuplicateMatch> {
        if let Some(&row) = self.by_sha.get(sha256) {
            let kept = &self.manifest[row];
            return Some(DuplicateMatch {
                kind: DuplicateKind::Exact,
                distance: distance(phash, kept.phash),
                of_url: kept.image_url.clone(),
                of_path: kept.path.clone(),
            });
        }
        let mut candidates: Vec<(u32, &ManifestRecord)> = self
            .manifest
            .iter()
            .map(|kept| (distance(phash, kept.phash), kept))
            .filter(|&(d, _)| d <= max_distance)
            .collect();
        // Stable: equal distances keep acceptance order.
        candidates.sort_by_key(|&(d, _)| d);
        let (d, kept) = candidates.into_iter().find(|(_, kept)| confirm(kept))?;
        Some(DuplicateMatch {
            kind: DuplicateKind::Near,
            distance: d,
            of_url: kept.image_url.clone(),
            of_path: kept.path.clone(),
        })
    }

    /// Absolute path of a stored file, from its manifest path.
    pub fn file_path(&self, relative: &str) -> PathBuf {
        self.out.join(relative)
    }

    /// Writes an accepted file under its content address and returns its path relative
    /// to the output folder. Rewriting an existing address is harmless (same bytes).
    pub fn write_image(&self, sha256: &str, extension: &str, bytes: &[u8]) -> Result<String> {
        let prefix = sha256.get(..2).unwrap_or("00");
        let relative = format!("{IMAGES_DIR}/{prefix}/{sha256}.{extension}");
        write_atomically(&self.out.join(&relative), bytes)?;
        Ok(relative)
    }

    /// Records an accepted image (its file already written).
    pub fn accept(&mut self, record: ManifestRecord) {
        self.index_accepted(record);
        self.dirty.manifest = true;
    }

    pub fn add_duplicate(&mut self, record: DuplicateRecord) {
        self.known_urls.insert(record.image_url.clone());
        self.duplicates.push(record);
        self.dirty.duplicates = true;
    }

    pub fn add_reject(&mut self, record: RejectRecord) {
        self.known_urls.insert(record.url.clone());
        self.rejects.push(record);
        self.dirty.rejects = true;
    }

    pub fn finish_page(&mut self, page: FinishedPage) {
        self.finished_pages.insert(page.url.clone(), page);
        self.dirty.state = true;
    }

    /// Writes whatever changed since the last checkpoint; every table is written at
    /// least once so a run leaves all three behind even when they are empty.
    pub fn checkpoint(&mut self) -> Result<()> {
        let first_time = |name: &str| !self.out.join(name).exists();
        if self.dirty.manifest || first_time(MANIFEST_FILE) {
            write_manifest(&self.out.join(MANIFEST_FILE), &self.manifest)?;
        }
        if self.dirty.duplicates || first_time(DUPLICATES_FILE) {
            write_duplicates(&self.out.join(DUPLICATES_FILE), &self.duplicates)?;
        }
        if self.dirty.rejects || first_time(REJECTS_FILE) {
            write_rejects(&self.out.join(REJECTS_FILE), &self.rejects)?;
        }
        if self.dirty.state || first_time(STATE_FILE) {
            self.write_state()?;
        }
        self.dirty = Dirty::default();
        Ok(())
    }

    /// Writes the summary text beside the tables.
    pub fn write_summary(&self, text: &str) -> Result<()> {
        write_atomically(&self.out.join(SUMMARY_FILE), text.as_bytes())
    }

    fn index_accepted(&mut self, record: ManifestRecord) {
        self.known_urls.insert(record.image_url.clone());
        self.by_sha
            .entry(record.sha256.clone())
            .or_insert(self.manifest.len());
        self.manifest.push(record);
    }

    fn write_state(&self) -> Result<()> {
        let state = CheckpointState {
            pages: self.finished_pages.values().cloned().collect(),
        };
        let path = self.out.join(STATE_FILE);
        let text = toml::to_string(&state).map_err(|e| {
            Error::Data(format!(
                "cannot serialise crawl state for {}: {e}",
                path.display()
            ))
        })?;
        write_atomically(&path, text.as_bytes())
    }
}

fn read_state(path: &Path) -> Result<CheckpointState> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    toml::from_str(&text).map_err(|e| {
        Error::Data(format!(
            "{} is not a crawl checkpoint ({e}); delete it to re-read every page",
            path.display()
        ))
    })
}

/// Writes to a temporary sibling, then renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
}

/// Reads `out/name` with `read` if a previous run left it, else starts empty.
fn load_or_default<T: Default>(
    out: &Path,
    name: &str,
    read: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let path = out.join(name);
    if path.exists() {
        read(&path)
    } else {
        Ok(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u8, phash: u64) -> ManifestRecord {
        ManifestRecord {
            path: format!("images/{i:02x}/{i:02x}.jpg"),
            class: "animals".into(),
            image_url: format!("http://127.0.0.1:1/photos/{i}.jpg"),
            page_url: "http://127.0.0.1:1/page/1".into(),
            sha256: format!("{i:02x}{}", "0".repeat(62)),
            phash,
            width: 100,
            height: 100,
            bytes: 10,
            fetched_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn exact_matches_come_first_then_the_nearest_hash_within_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.accept(record(1, 0));
        store.accept(record(2, 0b1111));
        let same_bytes = store
            .find_duplicate(&record(2, 0).sha256, 0, 6, |_| true)
            .unwrap();
        assert_eq!(
            (same_bytes.kind, same_bytes.of_url.as_str()),
            (DuplicateKind::Exact, "http://127.0.0.1:1/photos/2.jpg")
        );
        assert_eq!(same_bytes.distance, 4);
        let near = store.find_duplicate("ff", 0b0111, 6, |_| true).unwrap();
        assert_eq!(
            (near.kind, near.distance, near.of_path.as_str()),
            (DuplicateKind::Near, 1, "images/02/02.jpg")
        );
        assert!(store.find_duplicate("ff", u64::MAX, 6, |_| true).is_none());
        assert!(
            store
                .find_duplicate("ff", 0b0111_1111, 2, |_| true)
                .is_none()
        );
    }

    #[test]
    fn a_hash_candidate_the_check_refuses_is_not_a_duplicate_and_the_next_is_tried() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.accept(record(1, 0b1));
        store.accept(record(2, 0b11));
        let refuse_nearest = |kept: &ManifestRecord| kept.phash != 0b1;
        let found = store.find_duplicate("ff", 0, 6, refuse_nearest).unwrap();
        assert_eq!(
            (found.distance, found.of_path.as_str()),
            (2, "images/02/02.jpg")
        );
        assert!(store.find_duplicate("ff", 0, 6, |_| false).is_none());
    }

    #[test]
    fn a_checkpoint_reopens_with_every_url_and_page_known() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.accept(record(1, 7));
        store.add_reject(RejectRecord {
            url: "http://127.0.0.1:1/bad.jpg".into(),
            page_url: "p".into(),
            class: "people".into(),
            reason: "corrupt".into(),
            detail: "d".into(),
        });
        store.finish_page(FinishedPage {
            url: "http://127.0.0.1:1/page/1".into(),
            class: "animals".into(),
            links: vec!["http://127.0.0.1:1/page/2".into()],
        });
        store.checkpoint().unwrap();

        let reopened = Store::open(dir.path()).unwrap();
        assert!(
            reopened
                .known_urls()
                .contains("http://127.0.0.1:1/photos/1.jpg")
        );
        assert!(reopened.known_urls().contains("http://127.0.0.1:1/bad.jpg"));
        assert_eq!(
            reopened.finished_pages()["http://127.0.0.1:1/page/1"].links,
            ["http://127.0.0.1:1/page/2"]
        );
        assert_eq!(reopened.records_per_class()["people"], 1);
        assert!(
            reopened
                .find_duplicate(&record(1, 0).sha256, 0, 0, |_| true)
                .is_some()
        );
        for name in [
            MANIFEST_FILE,
            DUPLICATES_FILE,
            REJECTS_FILE,
            "manifest.csv",
            "duplicates.csv",
            "rejects.csv",
        ] {
            assert!(dir.path().join(name).exists(), "{name}");
        }
    }

    #[test]
    fn images_are_stored_under_their_content_address_without_temp_files_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sha = "ab".repeat(32);
        let relative = store.write_image(&sha, "jpg", b"bytes").unwrap();
        assert_eq!(relative, format!("images/ab/{sha}.jpg"));
        assert_eq!(std::fs::read(dir.path().join(&relative)).unwrap(), b"bytes");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("images/ab"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn a_damaged_checkpoint_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "pages = 3").unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(STATE_FILE) && err.contains("not a crawl checkpoint"),
            "{err}"
        );
    }
}
