//! Path-level helpers that work on a local path or an `s3://` location alike. Local paths
//! take exactly the `std::fs` call they always did; S3 locations take one request.
//!
//! S3 has no directories: a "directory" `s3://b/d` exists when some object's key starts
//! with `d/`, and listing it lists those objects (recursively).

use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;

use super::{is_remote, Remote};
use crate::error::{Result, StorageError};

/// Whether a file (or, on S3, an object) exists at `path`.
pub fn exists(path: &Path) -> Result<bool> {
    if is_remote(path) {
        Remote::open(path)?.exists()
    } else {
        Ok(path.exists())
    }
}

/// Whether a directory exists (on S3: whether any object lies under `path/`).
pub fn dir_exists(path: &Path) -> Result<bool> {
    if is_remote(path) {
        Ok(!Remote::open(path)?.list()?.is_empty())
    } else {
        Ok(path.is_dir())
    }
}

/// Size in bytes of the file or object.
pub fn len(path: &Path) -> Result<u64> {
    if is_remote(path) {
        Ok(Remote::open(path)?.head()?.0)
    } else {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| StorageError::io(path, e))
    }
}

/// Size and last-modified time in ns since the epoch (what source fingerprints hash).
pub fn len_and_mtime_ns(path: &Path) -> Result<(u64, i128)> {
    if is_remote(path) {
        return Remote::open(path)?.head();
    }
    let meta = std::fs::metadata(path).map_err(|e| StorageError::io(path, e))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Ok((meta.len(), mtime_ns))
}

/// [`len_and_mtime_ns`] of many paths, in order; S3 HEADs go 16 at a time.
pub fn len_and_mtime_ns_many(paths: &[&Path]) -> Result<Vec<(u64, i128)>> {
    use futures::StreamExt;
    if !paths.iter().any(|p| is_remote(p)) {
        return paths.iter().map(|p| len_and_mtime_ns(p)).collect();
    }
    let heads = paths.iter().map(|p| async move {
        if !is_remote(p) {
            return len_and_mtime_ns(p);
        }
        let r = Remote::open(p)?;
        let meta = r
            .store
            .head(&r.path)
            .await
            .map_err(|e| super::remote::map_error("HEAD", &r.url, e))?;
        let ns = meta
            .last_modified
            .timestamp_nanos_opt()
            .map_or(0, i128::from);
        Ok((meta.size, ns))
    });
    let out: Vec<Result<(u64, i128)>> =
        super::block_on(futures::stream::iter(heads).buffered(16).collect())?;
    out.into_iter().collect()
}

/// The whole file or object.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    if is_remote(path) {
        Ok(Remote::open(path)?.get()?.to_vec())
    } else {
        std::fs::read(path).map_err(|e| StorageError::io(path, e))
    }
}

/// Every file under `dir`, recursively on S3 and one level deep locally (the local
/// semantics of `read_dir` over regular files), as full paths sorted bytewise.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if is_remote(dir) {
        return Ok(Remote::open(dir)?
            .list()?
            .into_iter()
            .map(|(p, _)| p)
            .collect());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let p = entry.map_err(|e| StorageError::io(dir, e))?.path();
        if p.is_file() {
            out.push(p);
        }
    }
    crate::layout::sort_paths_bytewise(&mut out);
    Ok(out)
}

/// An absolute, canonical spelling of a root: `canonicalize` for local paths (which must
/// exist), the normalised URL for S3.
pub fn canonical_root(path: &Path) -> Result<PathBuf> {
    if is_remote(path) {
        Ok(PathBuf::from(super::ObjectUrl::parse(path)?.to_url()))
    } else {
        std::fs::canonicalize(path).map_err(|e| StorageError::io(path, e))
    }
}
