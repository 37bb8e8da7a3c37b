//! Durable file operations the bus needs: atomic publish (temp -> fsync -> rename -> fsync
//! directory), directory fsync and reads capped before allocating.
//!
//! This is the same small pattern as `sluice_storage::publish`, repeated here because the
//! bus sits beside storage and must not depend on it. A reader never sees half a file under
//! a final name; temp names (`.<name>.tmp-<pid>-<n>`) are removed by the writer on open.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{BusError, Result};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// fsync a directory so that creations, renames and deletions inside it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| BusError::io(dir, e))?;
    f.sync_all().map_err(|e| BusError::io(dir, e))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temp name beside `path`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_of(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Whether a file name is a temp sibling.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_sibling(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(BusError::io(&temp, e));
    }
    fs::rename(&temp, path).map_err(|e| {
        let _ = fs::remove_file(&temp);
        BusError::io(path, e)
    })?;
    fsync_dir(parent_of(path))
}

/// Serialize `value` as pretty JSON and write it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| BusError::MetadataInvalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Read a whole file, refusing files larger than `cap` before allocating.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{len} bytes, over the cap of {cap}"),
        ));
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(cap).read_to_end(&mut out)?;
    Ok(out)
}

/// Read and parse a JSON metadata file (capped), mapping failures to bus errors.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, cap: u64) -> Result<T> {
    let bytes = read_capped(path, cap).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => BusError::MetadataInvalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        _ => BusError::io(path, e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| BusError::MetadataInvalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
