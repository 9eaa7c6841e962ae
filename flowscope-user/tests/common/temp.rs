//! A temporary directory for files a test writes, removed on drop.

use std::path::{Path, PathBuf};

/// A fresh temporary directory, removed on drop (also when a test fails).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `flowscope-TAG-PID` in the system's temporary directory.
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("flowscope-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        Self(d)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
