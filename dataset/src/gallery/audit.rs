//! The crawl audit: proof that a crawl of the gallery accounted for every photo.
//!
//! Each source photo `DIR/<class>/<file>` has the gallery URL path
//! `/photos/<class>/<file>`. A crawl's output folder holds three tables:
//! `manifest.parquet` (accepted), `duplicates.parquet` (dropped as an exact or near
//! copy of a manifest row) and `rejects.parquet` (refused, with a reason code). The
//! audit checks that
//! - every source photo is in exactly one of them, and a duplicate's pair is in the
//!   manifest;
//! - every planted fault was refused with its expected reason (the planted copy may
//!   instead be the kept one, with the real photo recorded as its duplicate: which of
//!   the two a crawler meets first is its business);
//! - every manifest file decodes fully (and a JPEG ends with its end-of-image marker,
//!   since some decoders fill in a truncated tail rather than fail);
//! - the gallery's access log, when given, shows no request under `/private/`.
//!
//! URLs are compared by their percent-decoded path, so a crawler that writes
//! `%20` and one that writes `+`-free raw paths agree.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use polars::prelude::{DataFrame, DataType};
use rayon::prelude::*;

use super::AccessLogEntry;
use super::faults::{FaultKind, PlantedFault, planted_faults_in, redirect_loop_partner_path};
use super::listing::{PhotoFolder, percent_decode};
use crate::manifest::{Manifest, read_table_parquet};
use crate::{Error, Result};

/// How many unaccounted photos (and other offenders) the tables list by name.
const LIST_AT_MOST: usize = 10;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The folder the gallery served.
    pub source: PathBuf,
    /// The crawl's output folder.
    pub crawl: PathBuf,
    /// The gallery's access log file, if one was kept.
    pub access_log: Option<PathBuf>,
    /// The gallery's `max_per_class`, so the same photos count as "source".
    pub max_per_class: Option<usize>,
    /// Whether the gallery planted its faults.
    pub plant_faults: bool,
}

/// A row of `duplicates.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRow {
    pub image_url: String,
    /// "exact" or "near".
    pub kind: String,
    /// Hamming distance of the perceptual hashes (0 for exact copies).
    pub distance: Option<u64>,
    pub duplicate_of_url: String,
}

/// A row of `rejects.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRow {
    pub url: String,
    pub reason: String,
    pub detail: String,
}

/// How one planted fault fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultCheck {
    pub fault: PlantedFault,
    /// What the crawl recorded for it, in words ("rejected: http-404", "not seen", ...).
    pub found: String,
    pub caught: bool,
}

/// What the access log shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSummary {
    pub requests: usize,
    pub private_requests: Vec<String>,
    pub unreadable_lines: usize,
}

/// The audit's findings; [`AuditReport::verdict`] turns them into pass or fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub source_photos: usize,
    pub in_manifest: usize,
    pub exact_duplicates: usize,
    pub near_duplicates: usize,
    /// Source photos rejected, by reason code.
    pub rejected_by_reason: BTreeMap<String, usize>,
    /// Source photo URL paths found in none of the tables.
    pub unaccounted: Vec<String>,
    /// Source photo URL paths found in more than one table (or twice in one).
    pub accounted_twice: Vec<String>,
    /// Duplicates of source photos whose pair is not in the manifest: `(url, pair)`.
    pub duplicates_without_pair: Vec<(String, String)>,
    pub manifest_rows: usize,
    /// Manifest files that do not decode: `(path, reason)`.
    pub corrupt_in_manifest: Vec<(String, String)>,
    pub faults: Vec<FaultCheck>,
    /// Near-duplicate rows for a person to look at: `(url, duplicate_of_url, distance)`.
    pub near_pairs: Vec<(String, String, Option<u64>)>,
    pub access: Option<AccessSummary>,
}

/// Runs every check; fails only when the inputs cannot be read.
pub fn audit(options: &AuditOptions) -> Result<AuditReport> {
    let folder = PhotoFolder::scan(&options.source, options.max_per_class)?;
    let manifest = Manifest::load(&options.crawl.join("manifest.parquet"))?;
    let duplicates = read_duplicates(&options.crawl.join("duplicates.parquet"))?;
    let rejects = read_rejects(&options.crawl.join("rejects.parquet"))?;
    let tables = CrawlTables::index(&manifest, &duplicates, &rejects);

    let mut report = account_for_source_photos(&folder, &tables);
    report.manifest_rows = manifest.records.len();
    report.corrupt_in_manifest = find_corrupt_files(&manifest);
    if options.plant_faults {
        let class = &folder.classes[0];
        let duplicated = super::listing::photo_path(&class.name, &class.files[0]);
        report.faults = planted_faults_in(&class.name)
            .into_iter()
            .map(|fault| check_fault(fault, &class.name, &duplicated, &tables))
            .collect();
    }
    report.near_pairs = duplicates
        .iter()
        .filter(|d| d.kind == "near")
        .map(|d| (d.image_url.clone(), d.duplicate_of_url.clone(), d.distance))
        .collect();
    report.access = options
        .access_log
        .as_deref()
        .map(summarise_access_log)
        .transpose()?;
    Ok(report)
}

/// The three tables, keyed by decoded URL path.
struct CrawlTables<'a> {
    manifest: HashMap<String, usize>,
    duplicates: HashMap<String, Vec<&'a DuplicateRow>>,
    rejects: HashMap<String, Vec<&'a RejectRow>>,
}

impl<'a> CrawlTables<'a> {
    fn index(
        manifest: &Manifest,
        duplicates: &'a [DuplicateRow],
        rejects: &'a [RejectRow],
    ) -> Self {
        let mut manifest_paths = HashMap::new();
        for record in &manifest.records {
            *manifest_paths
                .entry(url_path_key(&record.image_url))
                .or_insert(0) += 1;
        }
        let mut by_duplicate: HashMap<String, Vec<&DuplicateRow>> = HashMap::new();
        for row in duplicates {
            by_duplicate
                .entry(url_path_key(&row.image_url))
                .or_default()
                .push(row);
        }
        let mut by_reject: HashMap<String, Vec<&RejectRow>> = HashMap::new();
        for row in rejects {
            by_reject
                .entry(url_path_key(&row.url))
                .or_default()
                .push(row);
        }
        CrawlTables {
            manifest: manifest_paths,
            duplicates: by_duplicate,
            rejects: by_reject,
        }
    }

    fn in_manifest(&self, key: &str) -> bool {
        self.manifest.contains_key(key)
    }
}

/// The decoded path of a URL (or of a bare path), the key all comparisons use.
pub fn url_path_key(url: &str) -> String {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| url.to_owned());
    percent_decode(&path)
}

fn account_for_source_photos(folder: &PhotoFolder, tables: &CrawlTables<'_>) -> AuditReport {
    let mut report = AuditReport {
        source_photos: folder.photo_count(),
        in_manifest: 0,
        exact_duplicates: 0,
        near_duplicates: 0,
        rejected_by_reason: BTreeMap::new(),
        unaccounted: Vec::new(),
        accounted_twice: Vec::new(),
        duplicates_without_pair: Vec::new(),
        manifest_rows: 0,
        corrupt_in_manifest: Vec::new(),
        faults: Vec::new(),
        near_pairs: Vec::new(),
        access: None,
    };
    for class in &folder.classes {
        for file in &class.files {
            let key = format!("/photos/{}/{}", class.name, file);
            let manifest_hits = tables.manifest.get(&key).copied().unwrap_or(0);
            let duplicate_rows = tables
                .duplicates
                .get(&key)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let reject_rows = tables
                .rejects
                .get(&key)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match manifest_hits + duplicate_rows.len() + reject_rows.len() {
                0 => report.unaccounted.push(key.clone()),
                1 => {}
                _ => report.accounted_twice.push(key.clone()),
            }
            if manifest_hits > 0 {
                report.in_manifest += 1;
            } else if let Some(row) = duplicate_rows.first() {
                match row.kind.as_str() {
                    "exact" => report.exact_duplicates += 1,
                    _ => report.near_duplicates += 1,
                }
                if !tables.in_manifest(&url_path_key(&row.duplicate_of_url)) {
                    report
                        .duplicates_without_pair
                        .push((key.clone(), row.duplicate_of_url.clone()));
                }
            } else if let Some(row) = reject_rows.first() {
                *report
                    .rejected_by_reason
                    .entry(row.reason.clone())
                    .or_insert(0) += 1;
            }
        }
    }
    report
}

/// Whether the crawl recorded a planted fault as expected.
fn check_fault(
    fault: PlantedFault,
    class: &str,
    duplicated: &str,
    tables: &CrawlTables<'_>,
) -> FaultCheck {
    let mut keys = vec![percent_decode(&fault.path)];
    if fault.kind == FaultKind::RedirectLoop {
        keys.push(percent_decode(&redirect_loop_partner_path(class)));
    }
    let reasons: Vec<&str> = keys
        .iter()
        .flat_map(|k| tables.rejects.get(k).into_iter().flatten())
        .map(|r| r.reason.as_str())
        .collect();
    let caught_as_reject = reasons.contains(&fault.expected_reason);
    let caught_as_duplicate = fault.kind == FaultKind::ExactDuplicate
        && exact_pair_recorded(&keys[0], &percent_decode(duplicated), tables);
    let found = if caught_as_reject {
        format!("rejected: {}", fault.expected_reason)
    } else if caught_as_duplicate {
        "recorded as exact duplicate pair".to_owned()
    } else if !reasons.is_empty() {
        format!("rejected: {}", reasons.join(", "))
    } else if keys.iter().any(|k| tables.in_manifest(k)) {
        "accepted into the manifest".to_owned()
    } else if keys.iter().any(|k| tables.duplicates.contains_key(k)) {
        "recorded as a duplicate of something else".to_owned()
    } else {
        "not seen".to_owned()
    };
    FaultCheck {
        fault,
        found,
        caught: caught_as_reject || caught_as_duplicate,
    }
}

/// Whether `copy` and `original` are recorded as an exact pair, in either direction.
fn exact_pair_recorded(copy: &str, original: &str, tables: &CrawlTables<'_>) -> bool {
    let pairs = |from: &str, to: &str| {
        tables.duplicates.get(from).is_some_and(|rows| {
            rows.iter()
                .any(|r| r.kind == "exact" && url_path_key(&r.duplicate_of_url) == to)
        })
    };
    pairs(copy, original) || pairs(original, copy)
}

/// Decodes every manifest file fully, in parallel; returns the ones that fail.
fn find_corrupt_files(manifest: &Manifest) -> Vec<(String, String)> {
    let bar = crate::progress::bar(manifest.records.len() as u64, "images");
    bar.set_message("decoding manifest files");
    let mut corrupt: Vec<(String, String)> = manifest
        .records
        .par_iter()
        .filter_map(|record| {
            let outcome = verify_image_file(&manifest.file_path(record));
            bar.inc(1);
            outcome.err().map(|reason| (record.path.clone(), reason))
        })
        .collect();
    bar.finish_and_clear();
    corrupt.sort();
    corrupt
}

/// Reads and fully decodes one image; the error says why it is not usable.
pub fn verify_image_file(path: &Path) -> std::result::Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    verify_image_bytes(&bytes)
}

/// Fully decodes image bytes; a JPEG must also end with its end-of-image marker
/// (trailing zero padding allowed), because a truncated JPEG can decode "fine" with its
/// missing rows filled in grey.
pub fn verify_image_bytes(bytes: &[u8]) -> std::result::Result<(), String> {
    let format = image::guess_format(bytes).map_err(|e| format!("not an image: {e}"))?;
    image::load_from_memory_with_format(bytes, format)
        .map_err(|e| format!("does not decode: {e}"))?;
    if format == image::ImageFormat::Jpeg {
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if !bytes[..end].ends_with(&[0xFF, 0xD9]) {
            return Err("JPEG has no end-of-image marker (truncated)".into());
        }
    }
    Ok(())
}

fn summarise_access_log(path: &Path) -> Result<AccessSummary> {
    if !path.exists() {
        return Err(Error::Data(format!(
            "access log {} not found: `album dataset serve-gallery --access-log {0}` writes it \
             while the crawl runs",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read access log", path, e))?;
    let mut summary = AccessSummary {
        requests: 0,
        private_requests: Vec::new(),
        unreadable_lines: 0,
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match AccessLogEntry::parse_line(line) {
            Some(entry) => {
                summary.requests += 1;
                if entry.is_private() {
                    summary.private_requests.push(entry.path);
                }
            }
            None => summary.unreadable_lines += 1,
        }
    }
    Ok(summary)
}

/// Reads `duplicates.parquet`.
pub fn read_duplicates(path: &Path) -> Result<Vec<DuplicateRow>> {
    let df = read_table_parquet(path)?;
    let image_url = string_column(&df, "image_url", path)?;
    let kind = string_column(&df, "kind", path)?;
    let duplicate_of_url = string_column(&df, "duplicate_of_url", path)?;
    let distance = df
        .column("distance")
        .and_then(|c| c.cast(&DataType::UInt64))
        .and_then(|c| Ok(c.u64()?.iter().collect::<Vec<_>>()))
        .map_err(|e| Error::table(path, e))?;
    Ok((0..df.height())
        .map(|i| DuplicateRow {
            image_url: image_url[i].clone(),
            kind: kind[i].clone(),
            distance: distance[i],
            duplicate_of_url: duplicate_of_url[i].clone(),
        })
        .collect())
}

/// Reads `rejects.parquet`.
pub fn read_rejects(path: &Path) -> Result<Vec<RejectRow>> {
    let df = read_table_parquet(path)?;
    let url = string_column(&df, "url", path)?;
    let reason = string_column(&df, "reason", path)?;
    let detail = string_column(&df, "detail", path)?;
    Ok((0..df.height())
        .map(|i| RejectRow {
            url: url[i].clone(),
            reason: reason[i].clone(),
            detail: detail[i].clone(),
        })
        .collect())
}

/// A text column as owned strings, nulls as "".
fn string_column(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<String>> {
    let column = df
        .column(name)
        .map_err(|_| Error::Data(format!("{} has no column {name:?}", path.display())))?;
    let text = column.str().map_err(|e| Error::table(path, e))?;
    Ok(text
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect())
}

impl AuditReport {
    /// Every failed check, in words; empty when the crawl passes.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut note = |count: usize, what: &str, examples: Vec<String>| {
            if count > 0 {
                problems.push(format!("{count} {what}: {}", first_few(&examples)));
            }
        };
        note(
            self.unaccounted.len(),
            "source photos unaccounted for",
            self.unaccounted.clone(),
        );
        note(
            self.accounted_twice.len(),
            "source photos in more than one table",
            self.accounted_twice.clone(),
        );
        note(
            self.duplicates_without_pair.len(),
            "duplicates whose pair is not in the manifest",
            self.duplicates_without_pair
                .iter()
                .map(|(u, p)| format!("{u} -> {p}"))
                .collect(),
        );
        note(
            self.corrupt_in_manifest.len(),
            "manifest files that do not decode",
            self.corrupt_in_manifest
                .iter()
                .map(|(p, r)| format!("{p} ({r})"))
                .collect(),
        );
        let uncaught: Vec<_> = self.faults.iter().filter(|f| !f.caught).collect();
        note(
            uncaught.len(),
            "planted faults not caught",
            uncaught
                .iter()
                .map(|f| format!("{} ({})", f.fault.path, f.found))
                .collect(),
        );
        if let Some(access) = &self.access {
            note(
                access.private_requests.len(),
                "requests under /private/",
                access.private_requests.clone(),
            );
        }
        problems
    }

    /// `Ok` when every check passed, else [`Error::Data`] listing what failed.
    pub fn verdict(&self) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Data(format!(
                "crawl audit failed:\n  {}",
                problems.join("\n  ")
            )))
        }
    }

    /// The summary tables, as aligned Markdown (readable in a terminal too).
    pub fn to_text(&self) -> String {
        let mut out = String::from("## Source photos\n\n");
        out.push_str(&self.accounting_table());
        if !self.unaccounted.is_empty() {
            let _ = writeln!(
                out,
                "\nUnaccounted (first {}): {}",
                LIST_AT_MOST,
                first_few(&self.unaccounted)
            );
        }
        if !self.faults.is_empty() {
            out.push_str("\n## Planted faults\n\n");
            let rows: Vec<Vec<String>> = self
                .faults
                .iter()
                .map(|f| {
                    vec![
                        f.fault.path.clone(),
                        f.fault.expected_reason.to_owned(),
                        f.found.clone(),
                        if f.caught { "yes" } else { "NO" }.to_owned(),
                    ]
                })
                .collect();
            out.push_str(&markdown_table(
                &["fault", "expected", "found", "caught"],
                &rows,
            ));
        }
        out.push_str("\n## Checks\n\n");
        out.push_str(&markdown_table(&["check", "result"], &self.check_rows()));
        let problems = self.problems();
        let _ = writeln!(
            out,
            "\nVerdict: {}",
            if problems.is_empty() { "PASS" } else { "FAIL" }
        );
        for problem in problems {
            let _ = writeln!(out, "- {problem}");
        }
        out
    }

    /// [`Self::to_text`] plus every near-duplicate pair, for a person to check by eye.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Crawl audit\n\n");
        out.push_str(&self.to_text());
        let _ = writeln!(
            out,
            "\n## Near-duplicate pairs ({})\n",
            self.near_pairs.len()
        );
        if self.near_pairs.is_empty() {
            out.push_str("None.\n");
        } else {
            let rows: Vec<Vec<String>> = self
                .near_pairs
                .iter()
                .map(|(url, of, d)| {
                    vec![
                        url.clone(),
                        of.clone(),
                        d.map_or("?".into(), |d| d.to_string()),
                    ]
                })
                .collect();
            out.push_str(&markdown_table(&["dropped", "kept", "distance"], &rows));
        }
        out
    }

    /// Writes [`Self::to_markdown`] to `path`; returns the path.
    pub fn write_markdown(&self, path: &Path) -> Result<PathBuf> {
        std::fs::write(path, self.to_markdown()).map_err(|e| Error::io("write", path, e))?;
        Ok(path.to_path_buf())
    }

    fn accounting_table(&self) -> String {
        let mut rows = vec![
            vec!["source photos".to_owned(), self.source_photos.to_string()],
            vec!["in manifest".to_owned(), self.in_manifest.to_string()],
            vec![
                "exact duplicates".to_owned(),
                self.exact_duplicates.to_string(),
            ],
            vec![
                "near duplicates".to_owned(),
                self.near_duplicates.to_string(),
            ],
        ];
        for (reason, count) in &self.rejected_by_reason {
            rows.push(vec![format!("rejected: {reason}"), count.to_string()]);
        }
        rows.push(vec![
            "unaccounted".to_owned(),
            self.unaccounted.len().to_string(),
        ]);
        markdown_table(&["photos", "count"], &rows)
    }

    fn check_rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![
            vec!["manifest rows".to_owned(), self.manifest_rows.to_string()],
            vec![
                "corrupt files in manifest".to_owned(),
                self.corrupt_in_manifest.len().to_string(),
            ],
            vec![
                "photos in more than one table".to_owned(),
                self.accounted_twice.len().to_string(),
            ],
            vec![
                "duplicates without their pair".to_owned(),
                self.duplicates_without_pair.len().to_string(),
            ],
        ];
        match &self.access {
            Some(access) => {
                rows.push(vec![
                    "requests in access log".to_owned(),
                    access.requests.to_string(),
                ]);
                rows.push(vec![
                    "requests under /private/".to_owned(),
                    access.private_requests.len().to_string(),
                ]);
                if access.unreadable_lines > 0 {
                    rows.push(vec![
                        "unreadable log lines".to_owned(),
                        access.unreadable_lines.to_string(),
                    ]);
                }
            }
            None => rows.push(vec![
                "requests under /private/".to_owned(),
                "not checked (no access log)".to_owned(),
            ]),
        }
        rows
    }
}

fn first_few(items: &[String]) -> String {
    let shown: Vec<&str> = items
        .iter()
        .take(LIST_AT_MOST)
        .map(String::as_str)
        .collect();
    let more = items.len().saturating_sub(LIST_AT_MOST);
    if more > 0 {
        format!("{} … and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A Markdown table with cells padded to their column's width, so it reads well both
/// rendered and as plain text. Numbers (cells that parse as one) are right-aligned.
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..headers.len())
        .map(|c| {
            !rows.is_empty()
                && rows
                    .iter()
                    .all(|r| r.get(c).is_some_and(|v| v.parse::<f64>().is_ok()))
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((cell, &w), &right)| {
                if right {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(headers.to_vec());
    let rule: Vec<String> = widths
        .iter()
        .zip(&numeric)
        .map(|(&w, &right)| {
            if right {
                format!("{}:", "-".repeat(w + 1))
            } else {
                "-".repeat(w + 2)
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keys_ignore_host_and_percent_encoding() {
        assert_eq!(
            url_path_key("http://127.0.0.1:9/photos/a/b%20c.jpg"),
            "/photos/a/b c.jpg"
        );
        assert_eq!(url_path_key("/photos/a/b%20c.jpg"), "/photos/a/b c.jpg");
    }

    #[test]
    fn a_truncated_jpeg_fails_verification_and_the_whole_one_passes() {
        let mut jpeg = Vec::new();
        image::DynamicImage::new_rgb8(64, 48)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        assert_eq!(verify_image_bytes(&jpeg), Ok(()));
        assert!(verify_image_bytes(&jpeg[..jpeg.len() * 6 / 10]).is_err());
        assert!(verify_image_bytes(b"<!doctype html><p>hi</p>").is_err());
    }

    #[test]
    fn markdown_tables_pad_columns_and_right_align_numbers() {
        let table = markdown_table(
            &["name", "n"],
            &[
                vec!["a".into(), "10".into()],
                vec!["long".into(), "2".into()],
            ],
        );
        assert_eq!(
            table,
            "| name |  n |\n|------|---:|\n| a    | 10 |\n| long |  2 |\n"
        );
    }
}
