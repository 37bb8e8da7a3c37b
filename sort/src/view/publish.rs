//! The build lock, staging directories, leftover recovery and the publishing rename.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, renameat_with, FlockOperation, RenameFlags, CWD};
use sluice_storage::publish::{fsync_dir, fsync_tree_shallow};
use sluice_storage::view::view_dir;

use crate::error::{Result, SortError};

fn hidden(view_root: &Path, output_id: &str, suffix: &str) -> PathBuf {
    view_root.join(format!(".output_id={output_id}.{suffix}"))
}

/// `<view_root>/.output_id=<id>.staging-<pid>`: where this process builds the view.
pub fn staging_dir(view_root: &Path, output_id: &str) -> PathBuf {
    hidden(
        view_root,
        output_id,
        &format!("staging-{}", std::process::id()),
    )
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
    /// process holds it), then recover and remove leftovers of crashed builds.
    pub fn acquire(view_root: &Path, output_id: &str) -> Result<Self> {
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
        recover_leftovers(view_root, output_id)?;
        Ok(ViewLock { _file: file })
    }
}

/// With the lock held: restore a trashed view whose replacement never arrived, then delete
/// every staging and trash directory of this view.
fn recover_leftovers(view_root: &Path, output_id: &str) -> Result<()> {
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
    if !final_dir.exists() {
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
