//! The crawl's report tables and its summary.
//!
//! Beside the manifest ([`crate::manifest`]) a crawl writes two tables, as Parquet and
//! CSV, whose names and columns other tools read:
//! - `duplicates`: [`DUPLICATE_COLUMNS`], one row per image dropped as an exact
//!   (same SHA-256) or near (perceptual-hash distance at most the threshold) copy of an
//!   accepted one, naming the kept image's URL and stored path;
//! - `rejects`: [`REJECT_COLUMNS`], one row per image link refused, with its reason
//!   code (see [`crate::image_check::RejectReason`] and
//!   [`super::fetch::FetchFailure::reason`]) and a sentence of detail.
//!
//! [`CrawlSummary`] is what one run did, printed as a table at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use polars::prelude::*;

use crate::manifest::{
    phash_from_hex, phash_to_hex, read_table_parquet, write_table_csv, write_table_parquet,
};
use crate::{Error, Result};

/// Columns of `duplicates.parquet`, in file order.
pub const DUPLICATE_COLUMNS: [&str; 9] = [
    "image_url",
    "page_url",
    "class",
    "kind",
    "distance",
    "duplicate_of_url",
    "duplicate_of_path",
    "sha256",
    "phash",
];

/// Columns of `rejects.parquet`, in file order.
pub const REJECT_COLUMNS: [&str; 5] = ["url", "page_url", "class", "reason", "detail"];

/// Exact (same bytes) or near (same picture, other bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DuplicateKind {
    Exact,
    Near,
}

impl DuplicateKind {
    /// `"exact"` or `"near"`, as stored.
    pub fn code(self) -> &'static str {
        match self {
            DuplicateKind::Exact => "exact",
            DuplicateKind::Near => "near",
        }
    }

    fn from_code(code: &str) -> Option<Self> {
        match code {
            "exact" => Some(DuplicateKind::Exact),
            "near" => Some(DuplicateKind::Near),
            _ => None,
        }
    }
}

/// An image dropped because an accepted one is the same or nearly the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRecord {
    pub image_url: String,
    pub page_url: String,
    pub class: String,
    pub kind: DuplicateKind,
    /// Perceptual-hash Hamming distance to the kept image (0 for most exact copies).
    pub distance: u32,
    pub duplicate_of_url: String,
    /// The kept image's file, relative to the output folder.
    pub duplicate_of_path: String,
    /// SHA-256 of the dropped image's bytes.
    pub sha256: String,
    /// Perceptual hash of the dropped image.
    pub phash: u64,
}

/// An image link refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRecord {
    pub url: String,
    pub page_url: String,
    pub class: String,
    /// Stable code, e.g. `"corrupt"`, `"http-404"`, `"redirect-loop"`.
    pub reason: String,
    pub detail: String,
}

/// Writes the duplicates table as `<stem>.parquet` and `<stem>.csv`.
pub fn write_duplicates(parquet_path: &Path, rows: &[DuplicateRecord]) -> Result<()> {
    let strings = |f: fn(&DuplicateRecord) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let mut df = df!(
        "image_url" => strings(|r| &r.image_url),
        "page_url" => strings(|r| &r.page_url),
        "class" => strings(|r| &r.class),
        "kind" => rows.iter().map(|r| r.kind.code()).collect::<Vec<_>>(),
        "distance" => rows.iter().map(|r| r.distance).collect::<Vec<_>>(),
        "duplicate_of_url" => strings(|r| &r.duplicate_of_url),
        "duplicate_of_path" => strings(|r| &r.duplicate_of_path),
        "sha256" => strings(|r| &r.sha256),
        "phash" => rows.iter().map(|r| phash_to_hex(r.phash)).collect::<Vec<_>>(),
    )
    .map_err(|e| Error::table(parquet_path, e))?;
    write_table_parquet(parquet_path, &mut df)?;
    write_table_csv(&parquet_path.with_extension("csv"), &mut df)
}

/// Writes the rejects table as `<stem>.parquet` and `<stem>.csv`.
pub fn write_rejects(parquet_path: &Path, rows: &[RejectRecord]) -> Result<()> {
    let strings = |f: fn(&RejectRecord) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let mut df = df!(
        "url" => strings(|r| &r.url),
        "page_url" => strings(|r| &r.page_url),
        "class" => strings(|r| &r.class),
        "reason" => strings(|r| &r.reason),
        "detail" => strings(|r| &r.detail),
    )
    .map_err(|e| Error::table(parquet_path, e))?;
    write_table_parquet(parquet_path, &mut df)?;
    write_table_csv(&parquet_path.with_extension("csv"), &mut df)
}

/// Reads a duplicates table back.
pub fn read_duplicates(path: &Path) -> Result<Vec<DuplicateRecord>> {
    let df = read_table_parquet(path)?;
    let text = |name: &str| string_column(&df, name, path);
    let (image_url, page_url, class, kind) = (
        text("image_url")?,
        text("page_url")?,
        text("class")?,
        text("kind")?,
    );
    let (of_url, of_path, sha256, phash) = (
        text("duplicate_of_url")?,
        text("duplicate_of_path")?,
        text("sha256")?,
        text("phash")?,
    );
    let distance = u32_column(&df, "distance", path)?;
    (0..df.height())
        .map(|i| {
            let bad = |what: &str| Error::Data(format!("{} row {i}: {what}", path.display()));
            Ok(DuplicateRecord {
                image_url: image_url[i].clone(),
                page_url: page_url[i].clone(),
                class: class[i].clone(),
                kind: DuplicateKind::from_code(&kind[i])
                    .ok_or_else(|| bad(&format!("kind {:?}", kind[i])))?,
                distance: distance[i],
                duplicate_of_url: of_url[i].clone(),
                duplicate_of_path: of_path[i].clone(),
                sha256: sha256[i].clone(),
                phash: phash_from_hex(&phash[i])
                    .ok_or_else(|| bad(&format!("phash {:?}", phash[i])))?,
            })
        })
        .collect()
}

/// Reads a rejects table back.
pub fn read_rejects(path: &Path) -> Result<Vec<RejectRecord>> {
    let df = read_table_parquet(path)?;
    let text = |name: &str| string_column(&df, name, path);
    let (url, page_url, class, reason, detail) = (
        text("url")?,
        text("page_url")?,
        text("class")?,
        text("reason")?,
        text("detail")?,
    );
    Ok((0..df.height())
        .map(|i| RejectRecord {
            url: url[i].clone(),
            page_url: page_url[i].clone(),
            class: class[i].clone(),
            reason: reason[i].clone(),
            detail: detail[i].clone(),
        })
        .collect())
}

fn string_column(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<String>> {
    let column = df.column(name).map_err(|_| missing_column(path, name))?;
    let values = column.str().map_err(|e| Error::table(path, e))?;
    Ok((0..values.len())
        .map(|i| values.get(i).unwrap_or_default().to_owned())
        .collect())
}

fn u32_column(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<u32>> {
    let column = df.column(name).map_err(|_| missing_column(path, name))?;
    let values = column
        .cast(&DataType::UInt32)
        .map_err(|e| Error::table(path, e))?;
    let values = values.u32().map_err(|e| Error::table(path, e))?;
    Ok((0..values.len())
        .map(|i| values.get(i).unwrap_or_default())
        .collect())
}

fn missing_column(path: &Path, name: &str) -> Error {
    Error::Data(format!("{} has no column {name:?}", path.display()))
}

/// What happened to one class in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassSummary {
    pub name: String,
    /// Pages downloaded and parsed this run.
    pub pages_fetched: usize,
    /// Pages finished in an earlier run, whose links were taken from the checkpoint.
    pub pages_remembered: usize,
    /// Pages without a single image link.
    pub pages_without_images: usize,
    /// Page links robots.txt forbids (never requested).
    pub pages_disallowed: usize,
    /// Pages that could not be fetched: `(url, reason: detail)`.
    pub pages_failed: Vec<(String, String)>,
    /// Seed URLs among `pages_failed`.
    pub seeds_failed: Vec<(String, String)>,
    pub accepted: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    /// Rejected image links by reason code.
    pub rejected: BTreeMap<String, usize>,
    /// Image links skipped because an earlier run (or another class) already has them.
    pub already_known: usize,
    /// Set when `max_pages` or `max_images` stopped this class early.
    pub cap_reached: Option<String>,
}

impl ClassSummary {
    pub fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }

    /// Image links dealt with this run.
    pub fn images_processed(&self) -> usize {
        self.accepted + self.exact_duplicates + self.near_duplicates + self.rejected_total()
    }
}

/// What a run did, and what the output folder holds after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrawlSummary {
    pub classes: Vec<ClassSummary>,
    /// HTTP requests sent (robots.txt, pages, images, redirects and retries included).
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
    pub elapsed: Duration,
    /// Rows in the output folder's tables after the run.
    pub stored_accepted: usize,
    pub stored_duplicates: usize,
    pub stored_rejects: usize,
    /// The run was stopped (Ctrl-C) before it finished.
    pub interrupted: bool,
}

impl CrawlSummary {
    pub fn pages_fetched(&self) -> usize {
        self.classes.iter().map(|c| c.pages_fetched).sum()
    }

    pub fn images_processed(&self) -> usize {
        self.classes
            .iter()
            .map(ClassSummary::images_processed)
            .sum()
    }

    /// Image links dealt with per second of wall time.
    pub fn images_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.images_processed() as f64 / seconds
        } else {
            0.0
        }
    }

    /// `Err` when pages were tried and none could be fetched (nor remembered from an
    /// earlier run): the message names each failed seed and why, e.g. its host
    /// refusing connections.
    pub fn ensure_something_fetched(&self) -> Result<()> {
        let fetched: usize = self
            .classes
            .iter()
            .map(|c| c.pages_fetched + c.pages_remembered)
            .sum();
        let failed: Vec<&(String, String)> =
            self.classes.iter().flat_map(|c| &c.pages_failed).collect();
        if fetched > 0 || failed.is_empty() {
            return Ok(());
        }
        let mut hosts: Vec<String> = failed
            .iter()
            .filter_map(|(url, _)| url::Url::parse(url).ok())
            .filter_map(|u| {
                u.host_str()
                    .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        // A dead host fails every seed the same way: say that once, not once per class.
        let mut reasons: Vec<&str> = Vec::new();
        for (_, why) in &failed {
            if !reasons.contains(&why.as_str()) {
                reasons.push(why);
            }
        }
        let shown: Vec<&str> = reasons.iter().take(3).copied().collect();
        let more = match reasons.len().saturating_sub(shown.len()) {
            0 => String::new(),
            n => format!("; and {n} other reason(s)"),
        };
        Err(Error::Http {
            url: hosts.join(", "),
            // Error::Http already names the hosts in front of this message.
            message: format!(
                "nothing could be fetched ({} page(s) tried): {}{more}{}",
                failed.len(),
                shown.join("; "),
                if hosts.iter().any(|h| is_loopback_host(h)) {
                    " (is the gallery running? `album dataset serve-gallery` serves one)"
                } else {
                    ""
                }
            ),
        })
    }

    /// The per-class table, the rejects by reason, the failed seeds and the totals.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        self.write_class_table(&mut out);
        self.write_reason_table(&mut out);
        self.write_problems(&mut out);
        self.write_totals(&mut out);
        out
    }

    fn write_class_table(&self, out: &mut String) {
        let header = [
            "class",
            "pages",
            "remembered",
            "failed",
            "accepted",
            "exact dup",
            "near dup",
            "rejected",
            "known",
        ];
        let mut rows: Vec<Vec<String>> = self
            .classes
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.pages_fetched.to_string(),
                    c.pages_remembered.to_string(),
                    c.pages_failed.len().to_string(),
                    c.accepted.to_string(),
                    c.exact_duplicates.to_string(),
                    c.near_duplicates.to_string(),
                    c.rejected_total().to_string(),
                    c.already_known.to_string(),
                ]
            })
            .collect();
        let total =
            |f: fn(&ClassSummary) -> usize| self.classes.iter().map(f).sum::<usize>().to_string();
        rows.push(vec![
            "total".into(),
            total(|c| c.pages_fetched),
            total(|c| c.pages_remembered),
            total(|c| c.pages_failed.len()),
            total(|c| c.accepted),
            total(|c| c.exact_duplicates),
            total(|c| c.near_duplicates),
            total(ClassSummary::rejected_total),
            total(|c| c.already_known),
        ]);
        write_aligned(out, &header.map(String::from), &rows);
    }

    fn write_reason_table(&self, out: &mut String) {
        let mut reasons: Vec<&String> = self
            .classes
            .iter()
            .flat_map(|c| c.rejected.keys())
            .collect();
        reasons.sort();
        reasons.dedup();
        if reasons.is_empty() {
            return;
        }
        let mut header = vec!["rejected by reason".to_owned()];
        header.extend(self.classes.iter().map(|c| c.name.clone()));
        header.push("total".into());
        let rows: Vec<Vec<String>> = reasons
            .iter()
            .map(|reason| {
                let counts: Vec<usize> = self
                    .classes
                    .iter()
                    .map(|c| c.rejected.get(*reason).copied().unwrap_or(0))
                    .collect();
                let mut row = vec![(*reason).clone()];
                row.extend(counts.iter().map(usize::to_string));
                row.push(counts.iter().sum::<usize>().to_string());
                row
            })
            .collect();
        out.push('\n');
        write_aligned(out, &header, &rows);
    }

    /// Failed seeds, one line per distinct reason: a host that is down fails every
    /// class's seed with the same error, which is then printed once.
    fn write_failed_seeds(&self, out: &mut String) {
        let mut by_reason: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
        for class in &self.classes {
            for (url, why) in &class.seeds_failed {
                let seed = (class.name.as_str(), url.as_str());
                match by_reason.iter_mut().find(|(reason, _)| reason == why) {
                    Some((_, seeds)) => seeds.push(seed),
                    None => by_reason.push((why, vec![seed])),
                }
            }
        }
        for (why, seeds) in by_reason {
            let _ = match seeds.as_slice() {
                [(class, url)] => {
                    writeln!(out, "\n{class}: seed {url} could not be fetched: {why}")
                }
                _ => {
                    let classes: Vec<&str> = seeds.iter().map(|(class, _)| *class).collect();
                    writeln!(
                        out,
                        "\nthe seeds of {} could not be fetched: {why}",
                        classes.join(", ")
                    )
                }
            };
        }
    }

    fn write_problems(&self, out: &mut String) {
        self.write_failed_seeds(out);
        for class in &self.classes {
            let other_failures = class.pages_failed.len() - class.seeds_failed.len();
            if other_failures > 0 {
                let _ = writeln!(
                    out,
                    "{}: {other_failures} other page(s) could not be fetched",
                    class.name
                );
            }
            if let Some(cap) = &class.cap_reached {
                let _ = writeln!(out, "{}: stopped at {cap}", class.name);
            }
        }
    }

    fn write_totals(&self, out: &mut String) {
        let seconds = self.elapsed.as_secs_f64();
        let forbidden: usize = self.classes.iter().map(|c| c.pages_disallowed).sum();
        let _ = writeln!(
            out,
            "\npages fetched {} ({forbidden} more forbidden by robots.txt, not requested), requests {}, \
             {:.1} MiB received, {:.1} s, {} images processed, {:.1} images/s",
            self.pages_fetched(),
            self.requests,
            self.bytes as f64 / f64::from(1u32 << 20),
            seconds,
            self.images_processed(),
            self.images_per_second()
        );
        let _ = writeln!(
            out,
            "output folder now holds {} accepted, {} duplicates, {} rejects{}",
            self.stored_accepted,
            self.stored_duplicates,
            self.stored_rejects,
            if self.interrupted {
                " (run interrupted; run again to resume)"
            } else {
                ""
            }
        );
    }
}

/// A plain text table: first column left-aligned, the rest right-aligned.
fn write_aligned(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == 0 {
                    format!("{cell:<w$}", w = widths[i])
                } else {
                    format!("{cell:>w$}", w = widths[i])
                }
            })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(header));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_gallery_on_this_machine_is_recognised_for_the_hint() {
        for host in ["127.0.0.1:8765", "localhost:8765", "[::1]:80", "localhost"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.org:80", "10.0.0.1:8765"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    fn duplicate(i: u32) -> DuplicateRecord {
        DuplicateRecord {
            image_url: format!("http://127.0.0.1:1/photos/a/{i}.jpg"),
            page_url: "http://127.0.0.1:1/class/a/page/1".into(),
            class: "a".into(),
            kind: if i.is_multiple_of(2) {
                DuplicateKind::Exact
            } else {
                DuplicateKind::Near
            },
            distance: i,
            duplicate_of_url: "http://127.0.0.1:1/photos/a/0.jpg".into(),
            duplicate_of_path: "images/ab/ab12.jpg".into(),
            sha256: format!("{i:064x}"),
            phash: u64::MAX - u64::from(i),
        }
    }

    #[test]
    fn duplicates_round_trip_with_their_agreed_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duplicates.parquet");
        let rows: Vec<_> = (0..4).map(duplicate).collect();
        write_duplicates(&path, &rows).unwrap();
        assert_eq!(read_duplicates(&path).unwrap(), rows);
        let df = read_table_parquet(&path).unwrap();
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, DUPLICATE_COLUMNS);
        let csv = std::fs::read_to_string(dir.path().join("duplicates.csv")).unwrap();
        assert!(csv.starts_with(&DUPLICATE_COLUMNS.join(",")), "{csv}");
    }

    #[test]
    fn rejects_round_trip_with_their_agreed_columns_even_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rejects.parquet");
        let rows = vec![RejectRecord {
            url: "http://127.0.0.1:1/x.jpg".into(),
            page_url: "http://127.0.0.1:1/".into(),
            class: "a".into(),
            reason: "http-404".into(),
            detail: "server answered 404 Not Found, twice, \"quoted\"".into(),
        }];
        write_rejects(&path, &rows).unwrap();
        assert_eq!(read_rejects(&path).unwrap(), rows);
        write_rejects(&path, &[]).unwrap();
        assert!(read_rejects(&path).unwrap().is_empty());
        let df = read_table_parquet(&path).unwrap();
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, REJECT_COLUMNS);
    }

    #[test]
    fn the_summary_table_shows_per_class_counts_reasons_and_rate() {
        let mut animals = ClassSummary {
            name: "animals".into(),
            pages_fetched: 3,
            accepted: 50,
            exact_duplicates: 1,
            ..Default::default()
        };
        animals.rejected.insert("corrupt".into(), 1);
        animals.rejected.insert("http-404".into(), 2);
        animals
            .seeds_failed
            .push(("http://127.0.0.1:1/x".into(), "http-500: boom".into()));
        animals
            .pages_failed
            .push(("http://127.0.0.1:1/x".into(), "http-500: boom".into()));
        let people = ClassSummary {
            name: "people".into(),
            pages_fetched: 2,
            accepted: 40,
            near_duplicates: 2,
            ..Default::default()
        };
        let summary = CrawlSummary {
            classes: vec![animals, people],
            elapsed: Duration::from_secs(2),
            ..Default::default()
        };
        let table = summary.to_table();
        assert!(table.contains("total"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("http-404") && l.trim_end().ends_with('2')),
            "{table}"
        );
        assert!(
            table.contains("seed http://127.0.0.1:1/x could not be fetched"),
            "{table}"
        );
        assert_eq!(summary.images_processed(), 96);
        assert!(table.contains("48.0 images/s"), "{table}");
    }

    #[test]
    fn a_dead_crawl_host_prints_its_error_once_not_once_per_class() {
        let why = "host-unreachable: 127.0.0.1:9: tcp connect error: Connection refused";
        let class = |name: &str| ClassSummary {
            name: name.into(),
            pages_failed: vec![(format!("http://127.0.0.1:9/{name}/1"), why.into())],
            seeds_failed: vec![(format!("http://127.0.0.1:9/{name}/1"), why.into())],
            ..Default::default()
        };
        let summary = CrawlSummary {
            classes: ["animals", "buildings", "people"].map(class).to_vec(),
            ..Default::default()
        };
        let table = summary.to_table();
        assert_eq!(table.matches("Connection refused").count(), 1, "{table}");
        assert!(table.contains("the seeds of animals, buildings, people could not be fetched"));
        let err = summary.ensure_something_fetched().unwrap_err().to_string();
        assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
        assert!(err.contains("3 page(s) tried"), "{err}");
    }

    #[test]
    fn nothing_fetched_is_an_error_naming_the_host() {
        let class = ClassSummary {
            name: "a".into(),
            pages_failed: vec![(
                "http://127.0.0.1:9/p".into(),
                "host-unreachable: connection refused".into(),
            )],
            ..Default::default()
        };
        let summary = CrawlSummary {
            classes: vec![class],
            ..Default::default()
        };
        let err = summary.ensure_something_fetched().unwrap_err().to_string();
        assert!(
            err.contains("127.0.0.1:9") && err.contains("connection refused"),
            "{err}"
        );
        assert!(CrawlSummary::default().ensure_something_fetched().is_ok());
    }
}

/// Whether `host` (`127.0.0.1:8765`, `localhost`) is this machine, where a crawl usually
/// reads `album dataset serve-gallery`'s website.
fn is_loopback_host(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name == "localhost"
        || name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
