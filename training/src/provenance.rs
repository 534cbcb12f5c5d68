//! What a run directory records so its numbers can be reproduced: the git revision
//! (and whether the tree had uncommitted changes), the data-manifest hashes, the seed,
//! the device and the command line. Written as `provenance.json` beside the resolved
//! `config.toml`.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub git_revision: String,
    pub git_dirty: bool,
    pub train_manifest_sha256: String,
    pub val_manifest_sha256: String,
    pub train_images: usize,
    pub val_images: usize,
    pub class_names: Vec<String>,
    pub seed: u64,
    pub device: String,
    pub precision: String,
    pub burn_version: String,
    pub command_line: Vec<String>,
    pub started_at: String,
    pub cpu_threads: usize,
}

/// `git rev-parse HEAD` and whether `git status --porcelain` lists anything, in the
/// current directory; `unknown` outside a checkout.
pub fn git_state() -> (String, bool) {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let revision = run(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    (revision, dirty)
}

impl Provenance {
    pub fn write(&self, path: &Path) -> Result<()> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::io("serialise", path, e))?;
        write_atomically(path, text.as_bytes())
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::io("parse", path, e))
    }
}

/// Writes through a temporary sibling and a rename, so a crash leaves the old file or
/// the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
}
