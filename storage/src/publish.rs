//! Atomic publish: a reader never sees half a file, or half a directory, under a final name.
//!
//! Files: write to a temp name in the same directory -> fsync the file -> rename over the
//! final name -> fsync the directory (the rename itself is only durable once the directory
//! is synced). Directories: build under a staging name beside the final one, fsync every
//! file in it, then rename the directory and fsync the parent.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, StorageError};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// fsync a directory so that renames and creations inside it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| StorageError::io(dir, e))?;
    f.sync_all().map_err(|e| StorageError::io(dir, e))
}

/// The parent directory of a path (or `.`).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temp name in the same directory as `path`: `.<name>.tmp-<pid>-<n>`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_of(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Whether a file name is one of our temp siblings (for crash cleanup).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// A file being written under a temp name; `commit` publishes it, dropping it discards it.
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Start writing `final_path` (its directory must exist).
    pub fn create(final_path: impl Into<PathBuf>) -> Result<Self> {
        let final_path = final_path.into();
        let temp_path = temp_sibling(&final_path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(|e| StorageError::io(&temp_path, e))?;
        Ok(AtomicFile {
            final_path,
            temp_path,
            file: Some(file),
        })
    }

    /// The open temp file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("AtomicFile used after commit")
    }

    /// fsync, rename over the final name, fsync the directory.
    pub fn commit(mut self) -> Result<PathBuf> {
        let file = self.file.take().expect("AtomicFile committed twice");
        file.sync_all()
            .map_err(|e| StorageError::io(&self.temp_path, e))?;
        drop(file);
        fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| StorageError::io(&self.final_path, e))?;
        fsync_dir(parent_of(&self.final_path))?;
        Ok(self.final_path.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Write `bytes` to `path` atomically (temp, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.file()
        .write_all(bytes)
        .map_err(|e| StorageError::io(path, e))?;
    f.commit()?;
    Ok(())
}

/// Serialize `value` as pretty JSON (plus a newline) and write it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StorageError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Read and parse a JSON file (or `s3://` object).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = crate::object::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| StorageError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// fsync every regular file directly inside `dir`, then the directory itself.
pub fn fsync_tree_shallow(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let p = entry.path();
        if p.is_file() {
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| StorageError::io(&p, e))?;
        }
    }
    fsync_dir(dir)
}

/// Publish a fully written staging directory under `final_dir` (which must not exist):
/// fsync its files, rename, fsync the parent.
pub fn publish_dir(staging: &Path, final_dir: &Path) -> Result<()> {
    fsync_tree_shallow(staging)?;
    fs::rename(staging, final_dir).map_err(|e| StorageError::io(final_dir, e))?;
    fsync_dir(parent_of(final_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn dropped_atomic_file_is_not_published() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("y");
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert!(!p.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn temp_names_are_recognised() {
        let t = temp_sibling(Path::new("/a/b/part-000001.parquet"));
        assert!(is_temp_name(&t.file_name().unwrap().to_string_lossy()));
        assert!(!is_temp_name("part-000001.parquet"));
    }
}
