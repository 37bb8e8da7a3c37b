//! The build lock, staging directories, leftover recovery and the publishing rename.
//!
//! Views under an `s3://` root ([`is_remote`]) are built in a local staging directory like
//! any other and published by upload instead of rename (S3 has neither rename nor locks):
//!
//! 1. put the marker `<view_root>/.output_id=<id>.uploading` (this build's upload is open);
//! 2. delete an old view: its receipt and manifest first (so it stops counting as done),
//!    then its parts;
//! 3. upload every part (multipart; a failed upload is aborted, leaving no parts);
//! 4. upload the receipt, then the manifest; 5. delete the marker.
//!
//! A build killed anywhere before step 4 leaves parts and the marker but no receipt, so
//! readers refuse the view (fail-closed). The next build, holding the lock, finds the marker
//! and deletes what it left ([`ViewLock::acquire`]); after step 4 only the marker goes. The
//! lock is a local `flock` under the temp directory: it excludes builders on this host
//! only (S3 offers no lock; a platform runs one builder per view).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, renameat_with, FlockOperation, RenameFlags, CWD};
use sluice_storage::object::{is_remote, Remote};
use sluice_storage::publish::{fsync_dir, fsync_tree_shallow};
use sluice_storage::view::{sha256_hex, view_dir, MANIFEST_FILE, RECEIPT_FILE};

use crate::error::{Result, SortError};

fn hidden(view_root: &Path, output_id: &str, suffix: &str) -> PathBuf {
    view_root.join(format!(".output_id={output_id}.{suffix}"))
}

/// Where builds of views under an S3 root keep their lock and staging directories:
/// `<temp>/sluice-s3-views/<sha256 of the root URL, 16 hex>`.
fn local_shadow(view_root: &Path) -> PathBuf {
    let digest = sha256_hex(view_root.to_string_lossy().as_bytes());
    std::env::temp_dir()
        .join("sluice-s3-views")
        .join(&digest[..16])
}

/// `<view_root>/.output_id=<id>.staging-<pid>`: where this process builds the view (for an
/// S3 view root, the same name in its local shadow directory).
pub fn staging_dir(view_root: &Path, output_id: &str) -> PathBuf {
    let base = if is_remote(view_root) {
        local_shadow(view_root)
    } else {
        view_root.to_path_buf()
    };
    hidden(&base, output_id, &format!("staging-{}", std::process::id()))
}

/// The canonical spelling of a view root: `canonicalize` locally (after the lock created
/// it), the normalised URL for S3.
pub fn canonical_view_root(view_root: &Path) -> Result<PathBuf> {
    Ok(sluice_storage::object::fs::canonical_root(view_root)?)
}

/// `<view_root>/.output_id=<id>.uploading`: present while a build uploads to S3.
fn upload_marker(view_root: &Path, output_id: &str) -> PathBuf {
    hidden(view_root, output_id, "uploading")
}

fn trash_dir(view_root: &Path, output_id: &str) -> PathBuf {
    hidden(
        view_root,
        output_id,
        &format!("trash-{}", std::process::id()),
    )
}

/// An exclusive lock on building one view (released when dropped or when the process
/// dies, however it dies).
#[derive(Debug)]
pub struct ViewLock {
    _file: File,
}

impl ViewLock {
    /// Take the lock of view `output_id` under `view_root` (`STREAM_VIEW_LOCKED` if a live
    /// process holds it), then recover and remove leftovers of crashed builds (for an S3
    /// root: the local shadow's staging directories, and a killed upload's objects).
    pub fn acquire(view_root: &Path, output_id: &str) -> Result<Self> {
        let remote = is_remote(view_root);
        let local_root = if remote {
            local_shadow(view_root)
        } else {
            view_root.to_path_buf()
        };
        let remote_root = view_root;
        let view_root = local_root.as_path();
        fs::create_dir_all(view_root).map_err(|e| SortError::io(view_root, e))?;
        let path = hidden(view_root, output_id, "lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SortError::io(&path, e))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Err(SortError::ViewLocked { lock: path });
        }
        recover_leftovers(view_root, output_id, !remote)?;
        if remote {
            recover_remote(remote_root, output_id)?;
        }
        Ok(ViewLock { _file: file })
    }
}

/// With the lock held, an S3 view root: if a build's upload marker is there, delete that
/// build's parts unless its receipt made it (then only the marker goes).
fn recover_remote(view_root: &Path, output_id: &str) -> Result<()> {
    let marker = Remote::open(&upload_marker(view_root, output_id))?;
    if !marker.exists()? {
        return Ok(());
    }
    let dir = view_dir(view_root, output_id);
    if !Remote::open(&dir.join(RECEIPT_FILE))?.exists()? {
        let n = Remote::open(&dir)?.delete_prefix()?;
        tracing::info!(view = %dir.display(), objects = n, "removed a killed upload's leftovers");
    }
    marker.delete()?;
    Ok(())
}

/// With the lock held: restore a trashed view whose replacement never arrived, then delete
/// every staging and trash directory of this view.
fn recover_leftovers(view_root: &Path, output_id: &str, restore_trash: bool) -> Result<()> {
    let prefix = format!(".output_id={output_id}.");
    let final_dir = view_dir(view_root, output_id);
    let mut leftovers = Vec::new();
    for entry in fs::read_dir(view_root).map_err(|e| SortError::io(view_root, e))? {
        let entry = entry.map_err(|e| SortError::io(view_root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&prefix) {
            if rest.starts_with("staging-") || rest.starts_with("trash-") {
                leftovers.push(entry.path());
            }
        }
    }
    leftovers.sort();
    if restore_trash && !final_dir.exists() {
        let trash = leftovers.iter().find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".trash-"))
        });
        if let Some(trash) = trash.cloned() {
            fs::rename(&trash, &final_dir).map_err(|e| SortError::io(&final_dir, e))?;
            fsync_dir(view_root)?;
            leftovers.retain(|p| p != &trash);
        }
    }
    for p in leftovers {
        fs::remove_dir_all(&p).map_err(|e| SortError::io(&p, e))?;
    }
    Ok(())
}

/// Publish a complete staging directory as `final_dir`: fsync its files, then rename it into
/// place (swapping atomically with an existing view when `replace`), fsync the parent, and
/// delete the old view.
pub fn publish(staging: &Path, final_dir: &Path, replace: bool) -> Result<()> {
    if is_remote(final_dir) {
        return publish_remote(staging, final_dir);
    }
    fsync_tree_shallow(staging)?;
    let parent = final_dir
        .parent()
        .ok_or_else(|| SortError::Internal(format!("{} has no parent", final_dir.display())))?;
    if !final_dir.exists() {
        fs::rename(staging, final_dir).map_err(|e| SortError::io(final_dir, e))?;
        return Ok(fsync_dir(parent)?);
    }
    if !replace {
        return Err(SortError::Internal(format!(
            "{} appeared during the build",
            final_dir.display()
        )));
    }
    match renameat_with(CWD, staging, CWD, final_dir, RenameFlags::EXCHANGE) {
        Ok(()) => {
            // The old view now sits at the staging path.
            fsync_dir(parent)?;
            crate::fault::pause("after-swap");
            fs::remove_dir_all(staging).map_err(|e| SortError::io(staging, e))?;
            Ok(())
        }
        Err(_) => {
            // No RENAME_EXCHANGE here: old view to trash, new view in, trash gone. A crash
            // in between is repaired by `recover_leftovers`.
            let output_id = final_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let output_id = output_id.trim_start_matches("output_id=");
            let trash = trash_dir(parent, output_id);
            fs::rename(final_dir, &trash).map_err(|e| SortError::io(&trash, e))?;
            fs::rename(staging, final_dir).map_err(|e| SortError::io(final_dir, e))?;
            fsync_dir(parent)?;
            fs::remove_dir_all(&trash).map_err(|e| SortError::io(&trash, e))?;
            Ok(())
        }
    }
}

/// Publish a complete local staging directory to an S3 view directory (steps 1-5 of the
/// module docs), then delete the staging directory.
fn publish_remote(staging: &Path, final_dir: &Path) -> Result<()> {
    let (view_root, output_id) = match (final_dir.parent(), final_dir.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy().into_owned()),
        _ => {
            return Err(SortError::Internal(format!(
                "{} is not a view directory",
                final_dir.display()
            )))
        }
    };
    let output_id = output_id.trim_start_matches("output_id=");
    let mut parts = Vec::new();
    for entry in fs::read_dir(staging).map_err(|e| SortError::io(staging, e))? {
        let name = entry
            .map_err(|e| SortError::io(staging, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != RECEIPT_FILE && name != MANIFEST_FILE {
            parts.push(name);
        }
    }
    parts.sort();
    // Step 1.
    let marker = Remote::open(&upload_marker(view_root, output_id))?;
    marker.put(format!("{{\"pid\": {}}}\n", std::process::id()).into_bytes())?;
    // Step 2.
    let dir = Remote::open(final_dir)?;
    Remote::open(&final_dir.join(RECEIPT_FILE))?.delete()?;
    Remote::open(&final_dir.join(MANIFEST_FILE))?.delete()?;
    dir.delete_prefix()?;
    // Step 3.
    for name in &parts {
        Remote::open(&final_dir.join(name))?.upload_file(&staging.join(name))?;
        crate::fault::pause("s3-after-part");
    }
    // Step 4.
    for name in [RECEIPT_FILE, MANIFEST_FILE] {
        let local = staging.join(name);
        if local.exists() {
            let bytes = fs::read(&local).map_err(|e| SortError::io(&local, e))?;
            Remote::open(&final_dir.join(name))?.put(bytes)?;
        }
    }
    // Step 5.
    marker.delete()?;
    fs::remove_dir_all(staging).map_err(|e| SortError::io(staging, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let a = ViewLock::acquire(d.path(), "x").unwrap();
        let e = ViewLock::acquire(d.path(), "x").unwrap_err();
        assert_eq!(e.code(), "STREAM_VIEW_LOCKED");
        assert!(ViewLock::acquire(d.path(), "y").is_ok());
        drop(a);
        assert!(ViewLock::acquire(d.path(), "x").is_ok());
    }

    #[test]
    fn leftovers_are_removed_and_a_lost_view_is_restored() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let staging = root.join(".output_id=x.staging-999999");
        let trash = root.join(".output_id=x.trash-999999");
        fs::create_dir_all(&staging).unwrap();
        fs::create_dir_all(&trash).unwrap();
        fs::write(trash.join("part-000000.parquet"), b"old").unwrap();
        let _lock = ViewLock::acquire(root, "x").unwrap();
        assert!(!staging.exists());
        assert!(!trash.exists());
        let restored = view_dir(root, "x").join("part-000000.parquet");
        assert_eq!(fs::read(restored).unwrap(), b"old");
    }

    #[test]
    fn publish_replaces_an_existing_view_whole() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let final_dir = view_dir(root, "x");
        fs::create_dir_all(&final_dir).unwrap();
        fs::write(final_dir.join("old"), b"1").unwrap();
        let staging = staging_dir(root, "x");
        fs::create_dir_all(&staging).unwrap();
        fs::write(staging.join("new"), b"2").unwrap();
        publish(&staging, &final_dir, true).unwrap();
        assert!(final_dir.join("new").exists());
        assert!(!final_dir.join("old").exists());
        assert!(!staging.exists());
        let names: Vec<_> = fs::read_dir(root).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing but the view remains");
    }
}
