//! The photo folder a gallery serves: class sub-folders of image files.
//!
//! The listing is taken once, when the gallery opens, and is the only source of names
//! the site will serve: a request names a class and a file, and both are looked up
//! here rather than joined onto a path, so no request can reach outside the folder.
//! The audit uses the same listing, so "a source photo" means the same thing to both.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File extensions the gallery treats as photos (compared case-insensitively).
const PHOTO_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff"];

/// One class sub-folder and its photo file names, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPhotos {
    pub name: String,
    pub files: Vec<String>,
}

impl ClassPhotos {
    /// Whether `file` is one of this class's photos (names are sorted, so a binary search).
    pub fn contains(&self, file: &str) -> bool {
        self.files
            .binary_search_by(|f| f.as_str().cmp(file))
            .is_ok()
    }
}

/// A folder of class sub-folders, as the gallery serves it.
#[derive(Debug, Clone)]
pub struct PhotoFolder {
    pub root: PathBuf,
    /// Classes sorted by name; only sub-folders holding at least one photo.
    pub classes: Vec<ClassPhotos>,
}

impl PhotoFolder {
    /// Lists `root`: every non-hidden sub-folder with photos is a class; at most
    /// `max_per_class` photos per class are kept (the first ones by name).
    ///
    /// Names that are not valid UTF-8 are left out, since they cannot be put in a URL
    /// the crawler would read back the same way.
    pub fn scan(root: &Path, max_per_class: Option<usize>) -> Result<Self> {
        let entries = read_dir_sorted(root)?;
        let mut classes = Vec::new();
        for (name, path) in entries {
            if name.starts_with('.') || !path.is_dir() {
                continue;
            }
            let mut files: Vec<String> = read_dir_sorted(&path)?
                .into_iter()
                .filter(|(file, file_path)| is_photo_name(file) && file_path.is_file())
                .map(|(file, _)| file)
                .collect();
            if let Some(max) = max_per_class {
                files.truncate(max);
            }
            if !files.is_empty() {
                classes.push(ClassPhotos { name, files });
            }
        }
        if classes.is_empty() {
            return Err(Error::Data(format!(
                "{} has no class sub-folders with photos ({} files)",
                root.display(),
                PHOTO_EXTENSIONS.join("/")
            )));
        }
        Ok(PhotoFolder {
            root: root.to_path_buf(),
            classes,
        })
    }

    /// The class of that name, if it is served.
    pub fn class(&self, name: &str) -> Option<&ClassPhotos> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Path on disk of a listed photo.
    pub fn file_path(&self, class: &str, file: &str) -> PathBuf {
        self.root.join(class).join(file)
    }

    /// Total number of photos over all classes.
    pub fn photo_count(&self) -> usize {
        self.classes.iter().map(|c| c.files.len()).sum()
    }
}

/// The gallery URL path of a photo: `/photos/<class>/<file>`, percent-encoded.
pub fn photo_path(class: &str, file: &str) -> String {
    format!("/photos/{}/{}", percent_encode(class), percent_encode(file))
}

/// The Content-Type a file name's extension calls for.
pub fn content_type_for(file: &str) -> &'static str {
    match extension_lowercase(file).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some("tif" | "tiff") => "image/tiff",
        _ => "application/octet-stream",
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the result is
/// safe both as one URL path segment and inside an HTML attribute.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; malformed escapes are kept as they are. Invalid UTF-8 is
/// replaced, which can only make a lookup miss, never reach another file.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Whether `path` names a photo by its extension (jpg, png, gif, webp, bmp, tiff, in any
/// case) and is not hidden: what every command that takes a folder of photos lists.
pub fn is_photo_path(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(is_photo_name)
}

fn is_photo_name(file: &str) -> bool {
    !file.starts_with('.')
        && extension_lowercase(file).is_some_and(|ext| PHOTO_EXTENSIONS.contains(&ext.as_str()))
}

fn extension_lowercase(file: &str) -> Option<String> {
    Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// A folder's entries with UTF-8 names, sorted by name.
fn read_dir_sorted(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let reader = std::fs::read_dir(dir).map_err(|e| Error::io("list folder", dir, e))?;
    let mut entries = Vec::new();
    for entry in reader {
        let entry = entry.map_err(|e| Error::io("list folder", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `album montage` took GIF, BMP and TIFF files from a folder while the benchmarks
    /// skipped them: both now ask this one function.
    #[test]
    fn a_photo_path_is_one_of_the_gallery_extensions_in_any_case_and_not_hidden() {
        for photo in [
            "a/IMG_0001.JPG",
            "b.jpeg",
            "c.png",
            "d.Gif",
            "e.webp",
            "f.bmp",
            "g.TIFF",
        ] {
            assert!(is_photo_path(Path::new(photo)), "{photo}");
        }
        for other in [
            "notes.txt",
            "a/.hidden.jpg",
            "no-extension",
            "clip.mp4",
            "a/jpg",
        ] {
            assert!(!is_photo_path(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn percent_encoding_round_trips_awkward_names() {
        for name in [
            "plain.jpg",
            "with space.jpg",
            "a&b\"<c>.jpg",
            "100%.jpg",
            "ünïcode.jpg",
            "../x.jpg",
        ] {
            let encoded = percent_encode(name);
            assert!(!encoded.contains(['/', ' ', '"', '<', '&']), "{encoded}");
            assert_eq!(percent_decode(&encoded), name);
        }
    }

    #[test]
    fn malformed_escapes_are_kept_verbatim() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("%41%"), "A%");
    }

    #[test]
    fn content_type_follows_the_extension() {
        assert_eq!(content_type_for("x.JPG"), "image/jpeg");
        assert_eq!(content_type_for("x.png"), "image/png");
        assert_eq!(content_type_for("x"), "application/octet-stream");
    }

    #[test]
    fn scanning_keeps_only_photo_sub_folders_and_caps_each_class() {
        let dir = tempfile::tempdir().unwrap();
        for (class, files) in [
            ("b", vec!["2.jpg", "1.jpg", "3.png", "notes.txt"]),
            ("a", vec!["x.jpeg"]),
            ("empty", vec!["readme.md"]),
        ] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for f in files {
                std::fs::write(dir.path().join(class).join(f), b"x").unwrap();
            }
        }
        std::fs::write(dir.path().join("loose.jpg"), b"x").unwrap();
        let folder = PhotoFolder::scan(dir.path(), Some(2)).unwrap();
        let names: Vec<_> = folder.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(folder.class("b").unwrap().files, ["1.jpg", "2.jpg"]);
        assert!(folder.class("b").unwrap().contains("2.jpg"));
        assert!(!folder.class("b").unwrap().contains("3.png"));
    }

    #[test]
    fn a_folder_without_photos_is_a_data_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = PhotoFolder::scan(dir.path(), None).unwrap_err();
        assert!(matches!(err, Error::Data(_)), "{err}");
        let err = PhotoFolder::scan(&dir.path().join("missing"), None).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
