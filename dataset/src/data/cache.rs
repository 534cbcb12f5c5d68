//! The decoded-image cache: every photo of a manifest decoded once and resized so that
//! its short side is `resize`, kept as RGB8 in one contiguous buffer.
//!
//! Epochs after the first never decode JPEG again: they crop, flip and normalise from
//! here. The buffer lives in memory ([`DecodedImages::decode_in_memory`]) or in a
//! memory-mapped file ([`DecodedImages::open_or_build`]) under a cache folder, named by
//! a SHA-256 of the manifest rows (path, class, sha256, bytes) and the resize, so a
//! later process with the same manifest maps it instead of decoding.
//!
//! File layout (little-endian):
//!
//! | bytes            | content                                                        |
//! |------------------|----------------------------------------------------------------|
//! | 0..8             | magic `ALBDEC01`                                               |
//! | 8..40            | key: SHA-256 of format, resize, class names and manifest rows |
//! | 40..48           | image count `n`                                                |
//! | 48..56           | pixel byte count                                               |
//! | 56..64           | checksum of the entry table and every image's pixels          |
//! | 64..64+24n       | per image: offset u64, width u32, height u32, label u32, 0u32  |
//! | then             | pixels, image after image, `width × height × 3` bytes each    |
//!
//! A file is written under a temporary name, synced, then renamed into place, so a
//! crash never leaves a partial cache under the real name. On opening, the magic, key,
//! count, length, entry table and checksum are all checked; a file failing any check is
//! rebuilt, never trusted ([`CacheStatus::Rebuilt`] says why).
//!
//! Unreadable photos: building fails on the first file that cannot be read or decoded,
//! with an [`Error`] naming it. Skipping would silently change class balance and split
//! sizes, and the manifest is the checked source of truth, so a bad file there is a
//! damaged store to repair, not noise to step over.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::transform::{ImageView, RgbImage, decode_and_resize};
use crate::manifest::{Manifest, ManifestRecord};
use crate::{Error, Result, progress};

const MAGIC: &[u8; 8] = b"ALBDEC01";
const HEADER_LEN: usize = 64;
const ENTRY_LEN: usize = 24;
/// Images decoded in parallel before their pixels are appended in manifest order; bounds
/// the memory held at once to this many resized images.
const DECODE_CHUNK: usize = 512;

/// Where one image's pixels are and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    offset: u64,
    width: u32,
    height: u32,
    label: u32,
}

impl Entry {
    /// Saturates rather than overflows, so a corrupt table cannot wrap around.
    fn byte_len(&self) -> u64 {
        (u64::from(self.width) * u64::from(self.height)).saturating_mul(3)
    }

    fn to_bytes(self) -> [u8; ENTRY_LEN] {
        let mut bytes = [0u8; ENTRY_LEN];
        bytes[0..8].copy_from_slice(&self.offset.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.width.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.height.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.label.to_le_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8; ENTRY_LEN]) -> Self {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Entry {
            offset: u64::from_le_bytes(bytes[0..8].try_into().unwrap_or_default()),
            width: word(8),
            height: word(12),
            label: word(16),
        }
    }
}

/// What [`DecodedImages::open_or_build`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// A valid cache file was mapped; nothing was decoded.
    Reused,
    /// There was no cache file; one was built.
    Built,
    /// A cache file existed but failed a check (the reason); it was rebuilt.
    Rebuilt { reason: String },
}

enum Storage {
    Memory(Vec<u8>),
    Mapped { map: Mmap, pixels_start: usize },
}

impl Storage {
    fn pixels(&self) -> &[u8] {
        match self {
            Storage::Memory(bytes) => bytes,
            Storage::Mapped { map, pixels_start } => map.get(*pixels_start..).unwrap_or_default(),
        }
    }
}

/// Every image of a manifest, decoded and resized (short side = `resize`), with its label
/// (the class's position in the manifest's sorted class names). Indices follow the
/// manifest's rows.
pub struct DecodedImages {
    storage: Storage,
    entries: Vec<Entry>,
    class_names: Vec<String>,
    resize: u32,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for DecodedImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedImages")
            .field("images", &self.entries.len())
            .field("resize", &self.resize)
            .field("pixel_bytes", &self.storage.pixels().len())
            .field("file", &self.file)
            .finish()
    }
}

impl DecodedImages {
    /// Decodes every image of the manifest in parallel into memory.
    pub fn decode_in_memory(manifest: &Manifest, resize: u32) -> Result<Self> {
        check_resize(resize)?;
        let class_names = manifest.class_names();
        let labels = labels_of(&manifest.records, &class_names);
        let mut pixels = Vec::new();
        let entries = decode_all(manifest, resize, &labels, |bytes| {
            pixels.extend_from_slice(bytes);
            Ok(())
        })?;
        Ok(DecodedImages {
            storage: Storage::Memory(pixels),
            entries,
            class_names,
            resize,
            file: None,
        })
    }

    /// Maps the manifest's cache file under `cache_dir` if it is valid; otherwise decodes
    /// every image (in parallel, with a progress bar), writes the file atomically and
    /// maps that.
    pub fn open_or_build(
        manifest: &Manifest,
        resize: u32,
        cache_dir: &Path,
    ) -> Result<(Self, CacheStatus)> {
        check_resize(resize)?;
        let class_names = manifest.class_names();
        let key = cache_key(manifest, resize, &class_names);
        let path = cache_dir.join(cache_file_name(&key, resize));
        let status = match open_cache_file(
            &path,
            &key,
            manifest.records.len(),
            resize,
            class_names.len(),
        ) {
            Probe::Valid { map, entries } => {
                let storage = Storage::Mapped {
                    map,
                    pixels_start: pixels_start(entries.len()),
                };
                let images = DecodedImages {
                    storage,
                    entries,
                    class_names,
                    resize,
                    file: Some(path),
                };
                return Ok((images, CacheStatus::Reused));
            }
            Probe::Missing => CacheStatus::Built,
            Probe::Invalid(reason) => CacheStatus::Rebuilt { reason },
        };
        let labels = labels_of(&manifest.records, &class_names);
        let entries = write_cache_file(manifest, resize, &labels, &key, &path)?;
        let map = map_file(&path)?;
        let storage = Storage::Mapped {
            map,
            pixels_start: pixels_start(entries.len()),
        };
        Ok((
            DecodedImages {
                storage,
                entries,
                class_names,
                resize,
                file: Some(path),
            },
            status,
        ))
    }

    /// The file [`open_or_build`](Self::open_or_build) uses for this manifest and resize.
    pub fn cache_path(manifest: &Manifest, resize: u32, cache_dir: &Path) -> PathBuf {
        let key = cache_key(manifest, resize, &manifest.class_names());
        cache_dir.join(cache_file_name(&key, resize))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The resized image at `index` (manifest row order).
    pub fn image(&self, index: usize) -> Option<ImageView<'_>> {
        let entry = self.entries.get(index)?;
        let start = usize::try_from(entry.offset).ok()?;
        let end = start.checked_add(usize::try_from(entry.byte_len()).ok()?)?;
        let pixels = self.storage.pixels().get(start..end)?;
        Some(ImageView {
            width: entry.width,
            height: entry.height,
            pixels,
        })
    }

    /// The class index of the image at `index`.
    pub fn label(&self, index: usize) -> Option<usize> {
        self.entries.get(index).map(|e| e.label as usize)
    }

    /// Sorted class names; a label is a position here.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The short side every image was resized to.
    pub fn resize(&self) -> u32 {
        self.resize
    }

    /// The cache file mapped, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Total bytes of pixels held.
    pub fn pixel_bytes(&self) -> usize {
        self.storage.pixels().len()
    }

    /// Shared ownership, for datasets and items.
    pub fn into_shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

fn check_resize(resize: u32) -> Result<()> {
    if resize == 0 {
        return Err(Error::InvalidArgument("resize must be positive".into()));
    }
    Ok(())
}

fn labels_of(records: &[ManifestRecord], class_names: &[String]) -> Vec<u32> {
    records
        .iter()
        .map(|r| class_names.binary_search(&r.class).map_or(0, |i| i as u32))
        .collect()
}

fn pixels_start(count: usize) -> usize {
    HEADER_LEN + count * ENTRY_LEN
}

/// Reads, decodes and resizes every record, `DECODE_CHUNK` at a time in parallel, and
/// hands each image's pixels to `sink` in manifest order. Stops at the first failure.
fn decode_all(
    manifest: &Manifest,
    resize: u32,
    labels: &[u32],
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Vec<Entry>> {
    let bar = progress::bar(manifest.records.len() as u64, "images");
    bar.set_message(format!("decoding, short side {resize}"));
    let mut entries = Vec::with_capacity(manifest.records.len());
    let mut offset = 0u64;
    for (chunk_index, chunk) in manifest.records.chunks(DECODE_CHUNK).enumerate() {
        let decoded: Vec<Result<RgbImage>> = chunk
            .par_iter()
            .map(|record| {
                let image = load_record(manifest, record, resize);
                bar.inc(1);
                image
            })
            .collect();
        for (i, image) in decoded.into_iter().enumerate() {
            let image = image?;
            let label = labels[chunk_index * DECODE_CHUNK + i];
            let entry = Entry {
                offset,
                width: image.width,
                height: image.height,
                label,
            };
            sink(&image.pixels)?;
            offset += entry.byte_len();
            entries.push(entry);
        }
    }
    bar.finish_and_clear();
    Ok(entries)
}

fn load_record(manifest: &Manifest, record: &ManifestRecord, resize: u32) -> Result<RgbImage> {
    let path = manifest.file_path(record);
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read image", &path, e))?;
    decode_and_resize(&bytes, resize, &path.display().to_string())
}

/// SHA-256 over everything that decides the cache's content.
fn cache_key(manifest: &Manifest, resize: u32, class_names: &[String]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(MAGIC);
    hasher.update(resize.to_le_bytes());
    for name in class_names {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
    }
    for record in &manifest.records {
        for field in [&record.path, &record.class, &record.sha256] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.update(record.bytes.to_le_bytes());
    }
    hasher.finalize().into()
}

fn cache_file_name(key: &[u8; 32], resize: u32) -> String {
    format!("decoded-{}-r{resize}.rgb8", hex::encode(&key[..8]))
}

enum Probe {
    Missing,
    Invalid(String),
    Valid { map: Mmap, entries: Vec<Entry> },
}

fn open_cache_file(
    path: &Path,
    key: &[u8; 32],
    count: usize,
    resize: u32,
    classes: usize,
) -> Probe {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Probe::Missing,
        Err(e) => return Probe::Invalid(format!("cannot open {}: {e}", path.display())),
    };
    // SAFETY: see `map_file`.
    let map = match unsafe { Mmap::map(&file) } {
        Ok(map) => map,
        Err(e) => return Probe::Invalid(format!("cannot map {}: {e}", path.display())),
    };
    match validate(&map, key, count, resize, classes) {
        Ok(entries) => Probe::Valid { map, entries },
        Err(reason) => Probe::Invalid(format!("{}: {reason}", path.display())),
    }
}

/// Every check a cache file must pass before its pixels are used.
fn validate(
    bytes: &[u8],
    key: &[u8; 32],
    count: usize,
    resize: u32,
    classes: usize,
) -> Result<Vec<Entry>, String> {
    let header = bytes.get(..HEADER_LEN).ok_or("shorter than its header")?;
    if &header[0..8] != MAGIC {
        return Err("not a decoded-image cache (bad magic)".into());
    }
    if &header[8..40] != key {
        return Err("written for another manifest or resize".into());
    }
    let number = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or_default());
    let (stored_count, pixel_bytes, checksum) = (number(40), number(48), number(56));
    if stored_count != count as u64 {
        return Err(format!(
            "holds {stored_count} images, the manifest has {count}"
        ));
    }
    let expected_len = (pixels_start(count) as u64)
        .checked_add(pixel_bytes)
        .ok_or("pixel byte count overflows")?;
    if bytes.len() as u64 != expected_len {
        return Err(format!(
            "{} bytes long, expected {expected_len} (truncated or padded)",
            bytes.len()
        ));
    }
    let table = &bytes[HEADER_LEN..pixels_start(count)];
    let pixels = &bytes[pixels_start(count)..];
    let (rows, _) = table.as_chunks::<ENTRY_LEN>();
    let entries: Vec<Entry> = rows.iter().map(Entry::from_bytes).collect();
    let mut next_offset = 0u64;
    for (i, entry) in entries.iter().enumerate() {
        let sane = entry.offset == next_offset
            && entry.width.min(entry.height) == resize
            && (entry.label as usize) < classes
            && entry.byte_len() <= pixel_bytes - next_offset;
        if !sane {
            return Err(format!("entry {i} is inconsistent: {entry:?}"));
        }
        next_offset += entry.byte_len();
    }
    if next_offset != pixel_bytes {
        return Err(format!(
            "entries cover {next_offset} pixel bytes, the header says {pixel_bytes}"
        ));
    }
    if content_checksum(
        table,
        entries
            .iter()
            .map(|e| &pixels[e.offset as usize..(e.offset + e.byte_len()) as usize]),
    ) != checksum
    {
        return Err("checksum mismatch (corrupted)".into());
    }
    Ok(entries)
}

/// Decodes into `<path>`'s temporary sibling, fills in header and table, syncs and
/// renames into place. The temporary file is removed if anything fails.
fn write_cache_file(
    manifest: &Manifest,
    resize: u32,
    labels: &[u32],
    key: &[u8; 32],
    path: &Path,
) -> Result<Vec<Entry>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create cache folder", dir, e))?;
    let temp = temp_path(path);
    let outcome = write_cache_contents(manifest, resize, labels, key, &temp).and_then(|entries| {
        std::fs::rename(&temp, path)
            .map(|()| entries)
            .map_err(|e| Error::io("rename into", path, e))
    });
    if outcome.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    outcome
}

fn write_cache_contents(
    manifest: &Manifest,
    resize: u32,
    labels: &[u32],
    key: &[u8; 32],
    temp: &Path,
) -> Result<Vec<Entry>> {
    let io = |action: &'static str| move |e| Error::io(action, temp, e);
    let file = File::create(temp).map_err(io("create"))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let table_len = manifest.records.len() * ENTRY_LEN;
    out.write_all(&vec![0u8; HEADER_LEN + table_len])
        .map_err(io("write"))?;
    let mut pixel_hashes = Vec::with_capacity(manifest.records.len());
    let entries = decode_all(manifest, resize, labels, |pixels| {
        pixel_hashes.push(hash_bytes(pixels));
        out.write_all(pixels).map_err(io("write"))
    })?;
    let table: Vec<u8> = entries.iter().flat_map(|e| e.to_bytes()).collect();
    let pixel_bytes: u64 = entries.iter().map(Entry::byte_len).sum();
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(key);
    header.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    header.extend_from_slice(&pixel_bytes.to_le_bytes());
    header.extend_from_slice(&combine_checksum(&table, pixel_hashes).to_le_bytes());
    out.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
    out.write_all(&header).map_err(io("write"))?;
    out.write_all(&table).map_err(io("write"))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io("write", temp, e.into_error()))?;
    file.sync_all().map_err(io("sync"))?;
    Ok(entries)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(".{name}.{}-{nanos}.tmp", std::process::id()))
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    // SAFETY: cache files are written whole under a temporary name and renamed into
    // place; nothing in this crate modifies or truncates them afterwards. (Another
    // program truncating the file while it is mapped would be outside that contract.)
    unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))
}

fn content_checksum<'a>(table: &[u8], images: impl Iterator<Item = &'a [u8]>) -> u64 {
    combine_checksum(table, images.map(hash_bytes))
}

fn combine_checksum(table: &[u8], image_hashes: impl IntoIterator<Item = u64>) -> u64 {
    image_hashes.into_iter().fold(hash_bytes(table), |acc, h| {
        splitmix64(acc.rotate_left(17) ^ h)
    })
}

/// A fast non-cryptographic 64-bit hash (four independent multiply lanes) to detect
/// corruption; reopening a cache hashes every pixel, so it must run at memory speed.
fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lanes = [1u64, 2, 3, 4];
    let (blocks, tail) = bytes.as_chunks::<32>();
    for block in blocks {
        let (words, _) = block.as_chunks::<8>();
        for (lane, word) in lanes.iter_mut().zip(words) {
            *lane = (*lane ^ u64::from_le_bytes(*word))
                .wrapping_mul(K)
                .rotate_left(29);
        }
    }
    let mut h = lanes
        .iter()
        .fold(bytes.len() as u64, |h, lane| splitmix64(h ^ lane));
    for &byte in tail {
        h = (h ^ u64::from(byte)).wrapping_mul(K);
    }
    splitmix64(h)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_bytes() {
        let entry = Entry {
            offset: 1 << 40,
            width: 64,
            height: 96,
            label: 4,
        };
        assert_eq!(Entry::from_bytes(&entry.to_bytes()), entry);
    }

    #[test]
    fn hash_sees_a_single_flipped_bit_anywhere() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let base = hash_bytes(&data);
        for at in [0, 31, 32, 500, 995, 999] {
            let mut changed = data.clone();
            changed[at] ^= 1;
            assert_ne!(hash_bytes(&changed), base, "flip at {at}");
        }
        assert_ne!(hash_bytes(&data[..999]), base);
    }

    #[test]
    fn validate_rejects_short_and_foreign_files() {
        let key = [7u8; 32];
        assert!(
            validate(b"tiny", &key, 0, 64, 5)
                .unwrap_err()
                .contains("header")
        );
        let mut header = vec![0u8; HEADER_LEN];
        header[0..8].copy_from_slice(b"NOTMAGIC");
        assert!(
            validate(&header, &key, 0, 64, 5)
                .unwrap_err()
                .contains("magic")
        );
    }
}
