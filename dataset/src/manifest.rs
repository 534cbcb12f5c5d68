//! The manifest: one row per accepted photo, written as Parquet (the source of truth)
//! and CSV (for people and spreadsheets).
//!
//! `path` is relative to the folder that holds the manifest, so a store can be moved
//! or copied as a whole. `phash` is the 64-bit perceptual hash from [`crate::phash`],
//! kept as 16 lower-case hex digits so that a person can compare two rows by eye.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::{Error, Result};

/// Columns of a manifest, in file order.
pub const COLUMNS: [&str; 10] = [
    "path",
    "class",
    "image_url",
    "page_url",
    "sha256",
    "phash",
    "width",
    "height",
    "bytes",
    "fetched_at",
];

/// One accepted photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    /// File path relative to the manifest's folder.
    pub path: String,
    /// Class label (a folder name on the gallery, a config key in a crawl).
    pub class: String,
    /// Where the image bytes came from ("file://..." for a local index).
    pub image_url: String,
    /// The page that linked to the image.
    pub page_url: String,
    /// SHA-256 of the stored bytes, lower-case hex.
    pub sha256: String,
    /// Perceptual hash, see [`crate::phash`].
    pub phash: u64,
    pub width: u32,
    pub height: u32,
    /// Stored file size in bytes.
    pub bytes: u64,
    /// When it was fetched, RFC 3339 in UTC.
    pub fetched_at: String,
}

/// A manifest loaded from disk, with the folder its relative paths start from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub root: PathBuf,
    pub records: Vec<ManifestRecord>,
}

impl Manifest {
    /// Reads a Parquet manifest; `root` becomes the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let records = read_parquet(path)?;
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Manifest { root, records })
    }

    /// Absolute (or caller-relative) path of a record's file.
    pub fn file_path(&self, record: &ManifestRecord) -> PathBuf {
        self.root.join(&record.path)
    }

    /// Sorted, de-duplicated class names; a class's index is its position here.
    pub fn class_names(&self) -> Vec<String> {
        class_names(&self.records)
    }
}

/// Sorted, de-duplicated class names of a set of records.
pub fn class_names(records: &[ManifestRecord]) -> Vec<String> {
    let mut names: Vec<String> = records.iter().map(|r| r.class.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// Formats a perceptual hash the way manifests store it.
pub fn phash_to_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Parses a stored perceptual hash.
pub fn phash_from_hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text, 16).ok()
}

/// Builds the manifest table.
pub fn to_dataframe(records: &[ManifestRecord]) -> PolarsResult<DataFrame> {
    let col_str = |f: fn(&ManifestRecord) -> &str| -> Vec<&str> { records.iter().map(f).collect() };
    df!(
        "path" => col_str(|r| &r.path),
        "class" => col_str(|r| &r.class),
        "image_url" => col_str(|r| &r.image_url),
        "page_url" => col_str(|r| &r.page_url),
        "sha256" => col_str(|r| &r.sha256),
        "phash" => records.iter().map(|r| phash_to_hex(r.phash)).collect::<Vec<_>>(),
        "width" => records.iter().map(|r| r.width).collect::<Vec<_>>(),
        "height" => records.iter().map(|r| r.height).collect::<Vec<_>>(),
        "bytes" => records.iter().map(|r| r.bytes).collect::<Vec<_>>(),
        "fetched_at" => col_str(|r| &r.fetched_at),
    )
}

/// Reads manifest rows back from a table.
pub fn from_dataframe(df: &DataFrame) -> PolarsResult<Vec<ManifestRecord>> {
    let text = |name: &str| -> PolarsResult<StringChunked> { Ok(df.column(name)?.str()?.clone()) };
    let number = |name: &str| -> PolarsResult<UInt64Chunked> {
        Ok(df.column(name)?.cast(&DataType::UInt64)?.u64()?.clone())
    };
    let (path, class, image_url, page_url, sha256, phash, fetched_at) = (
        text("path")?,
        text("class")?,
        text("image_url")?,
        text("page_url")?,
        text("sha256")?,
        text("phash")?,
        text("fetched_at")?,
    );
    let (width, height, bytes) = (number("width")?, number("height")?, number("bytes")?);
    let missing = |name: &str, row: usize| polars_err!(ComputeError: "manifest column {name} has no value in row {row}");
    (0..df.height())
        .map(|i| {
            let s = |c: &StringChunked, name: &str| c.get(i).map(str::to_owned).ok_or_else(|| missing(name, i));
            let n = |c: &UInt64Chunked, name: &str| c.get(i).ok_or_else(|| missing(name, i));
            let hash_text = s(&phash, "phash")?;
            Ok(ManifestRecord {
                path: s(&path, "path")?,
                class: s(&class, "class")?,
                image_url: s(&image_url, "image_url")?,
                page_url: s(&page_url, "page_url")?,
                sha256: s(&sha256, "sha256")?,
                phash: phash_from_hex(&hash_text).ok_or_else(
                    || polars_err!(ComputeError: "row {i}: phash {hash_text:?} is not 16 hex digits"),
                )?,
                width: u32::try_from(n(&width, "width")?).unwrap_or(u32::MAX),
                height: u32::try_from(n(&height, "height")?).unwrap_or(u32::MAX),
                bytes: n(&bytes, "bytes")?,
                fetched_at: s(&fetched_at, "fetched_at")?,
            })
        })
        .collect()
}

/// Writes any table as Parquet, creating parent folders; the write goes to a temporary
/// file that is renamed into place, so a crash never leaves half a table.
pub fn write_table_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    let tmp = temp_sibling(path)?;
    let file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(|e| Error::table(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
}

/// Writes any table as CSV with a header row, atomically like [`write_table_parquet`].
pub fn write_table_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    let tmp = temp_sibling(path)?;
    let mut file = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(df)
        .map_err(|e| Error::table(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
}

/// Reads any Parquet table.
pub fn read_table_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::table(path, e))
}

/// Writes a manifest as `<stem>.parquet` and `<stem>.csv` beside it.
pub fn write_manifest(parquet_path: &Path, records: &[ManifestRecord]) -> Result<()> {
    let mut df = to_dataframe(records).map_err(|e| Error::table(parquet_path, e))?;
    write_table_parquet(parquet_path, &mut df)?;
    write_table_csv(&parquet_path.with_extension("csv"), &mut df)
}

/// Reads a Parquet manifest's rows.
pub fn read_parquet(path: &Path) -> Result<Vec<ManifestRecord>> {
    let df = read_table_parquet(path)?;
    for name in COLUMNS {
        if df.column(name).is_err() {
            return Err(Error::Data(format!(
                "{} is not a manifest: it has no column {name:?}",
                path.display()
            )));
        }
    }
    from_dataframe(&df).map_err(|e| Error::table(path, e))
}

fn temp_sibling(path: &Path) -> Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.tmp")))
}

/// At most `wanted` records of each class (all of them when `wanted` is 0), spread evenly over the class's records in
/// their listed order (a split lists each class's photos grouped by source, so the first
/// `wanted` would come from one source).
pub fn spread_per_class(records: Vec<ManifestRecord>, wanted: usize) -> Vec<ManifestRecord> {
    if wanted == 0 {
        return records;
    }
    let mut sizes = BTreeMap::<String, usize>::new();
    for record in &records {
        *sizes.entry(record.class.clone()).or_default() += 1;
    }
    let mut seen = BTreeMap::<String, usize>::new();
    records
        .into_iter()
        .filter(|r| {
            let rank = seen.entry(r.class.clone()).or_default();
            let keep = is_spread_pick(*rank, sizes[&r.class], wanted);
            *rank += 1;
            keep
        })
        .collect()
}

/// Whether the `rank`-th of `size` items is one of `wanted` picked evenly over all of
/// them (ranks `floor(i * size / wanted)` for i < wanted).
pub fn is_spread_pick(rank: usize, size: usize, wanted: usize) -> bool {
    if wanted >= size {
        return true;
    }
    // Rank r is picked when some i has floor(i * size / wanted) == r, i.e. when the
    // smallest i with i * size >= r * wanted also satisfies i * size < (r + 1) * wanted.
    let i = (rank * wanted).div_ceil(size);
    i < wanted && i * size < (rank + 1) * wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_picks_exactly_the_wanted_count_at_evenly_spaced_ranks() {
        for (size, wanted) in [(10, 3), (3_545, 500), (7, 7), (5, 9), (1_000, 1)] {
            let picked: Vec<usize> = (0..size)
                .filter(|&rank| is_spread_pick(rank, size, wanted))
                .collect();
            let expected: Vec<usize> = (0..wanted.min(size))
                .map(|i| i * size / wanted.min(size))
                .collect();
            assert_eq!(picked, expected, "size {size}, wanted {wanted}");
        }
    }

    fn record(i: u32) -> ManifestRecord {
        ManifestRecord {
            path: format!("images/{i:02x}/x{i}.jpg"),
            class: if i.is_multiple_of(2) {
                "animals"
            } else {
                "people"
            }
            .into(),
            image_url: format!("http://127.0.0.1:1/img/{i}.jpg"),
            page_url: "http://127.0.0.1:1/class/animals?page=1".into(),
            sha256: format!("{i:064x}"),
            phash: u64::MAX - u64::from(i),
            width: 100 + i,
            height: 80,
            bytes: 4096,
            fetched_at: "2026-11-24T12:00:00Z".into(),
        }
    }

    #[test]
    fn manifest_round_trips_through_parquet_and_keeps_full_64_bit_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/manifest.parquet");
        let records: Vec<_> = (0..5).map(record).collect();
        write_manifest(&path, &records).unwrap();
        assert!(path.with_extension("csv").exists());
        let loaded = Manifest::load(&path).unwrap();
        assert_eq!(loaded.records, records);
        assert_eq!(loaded.class_names(), vec!["animals", "people"]);
        assert_eq!(
            loaded.file_path(&records[0]),
            dir.path().join("sub/images/00/x0.jpg")
        );
    }

    #[test]
    fn a_table_without_manifest_columns_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.parquet");
        let mut df = df!("a" => [1u32, 2]).unwrap();
        write_table_parquet(&path, &mut df).unwrap();
        let err = read_parquet(&path).unwrap_err().to_string();
        assert!(err.contains("not a manifest"), "{err}");
    }
}
