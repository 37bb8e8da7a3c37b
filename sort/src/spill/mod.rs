//! Spill space: where sorted runs go when the input does not fit in memory.
//!
//! Every sort gets its own directory `<temp root>/sluice-sort-<pid>-<nanos>/`. Spill files
//! are created there and **unlinked immediately**, so they live exactly as long as the open
//! file handle: whatever happens to the process (error, panic, `SIGKILL`), the kernel frees
//! them and no spill file outlives the command. The directory itself is removed on drop;
//! if the process is killed, the next sort removes directories whose owning pid is gone.
//!
//! Bytes written are charged against `--max-temp-size` as they are written; going over
//! fails with `SORT_TEMP_FULL`.

pub mod file;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, SortError};

/// Prefix of every sort's spill directory.
pub const DIR_PREFIX: &str = "sluice-sort-";

/// The spill directory of one sort, with its byte accounting.
#[derive(Debug)]
pub struct TempSpace {
    root: PathBuf,
    dir: PathBuf,
    limit: Option<u64>,
    used: AtomicU64,
    peak: AtomicU64,
    total: AtomicU64,
    counter: AtomicU64,
}

/// Whether a process with this pid exists (Linux `/proc`).
pub fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The pid in a `sluice-sort-<pid>-<nanos>` name.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(DIR_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Remove spill directories under `root` left by processes that no longer exist (and
/// `root` itself if that leaves it empty).
pub fn clean_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = owner_pid(&name) {
            if pid != std::process::id() && !pid_alive(pid) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let _ = fs::remove_dir(root);
}

impl TempSpace {
    /// Create this sort's spill directory under `root` (created if missing), after removing
    /// stale directories of dead processes.
    pub fn create(root: &Path, limit: Option<u64>) -> Result<Self> {
        clean_stale(root);
        fs::create_dir_all(root).map_err(|e| SortError::io(root, e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = root.join(format!("{DIR_PREFIX}{}-{nanos}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| SortError::io(&dir, e))?;
        Ok(TempSpace {
            root: root.to_path_buf(),
            dir,
            limit,
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            total: AtomicU64::new(0),
            counter: AtomicU64::new(0),
        })
    }

    /// This sort's spill directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new anonymous spill file (created, then unlinked at once), with the name it had
    /// for error messages.
    pub fn new_file(&self, what: &str) -> Result<(File, PathBuf)> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{what}-{n:06}.arrow"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SortError::io(&path, e))?;
        fs::remove_file(&path).map_err(|e| SortError::io(&path, e))?;
        Ok((file, path))
    }

    /// Charge `bytes` about to be written; `SORT_TEMP_FULL` if that passes the limit.
    pub fn charge(&self, bytes: u64) -> Result<()> {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.total.fetch_add(bytes, Ordering::Relaxed);
        self.peak.fetch_max(now, Ordering::Relaxed);
        match self.limit {
            Some(limit) if now > limit => Err(SortError::TempFull {
                temp_dir: self.dir.clone(),
                limit,
                needed: now,
            }),
            _ => Ok(()),
        }
    }

    /// Give back the bytes of a spill file that was closed.
    pub fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// All bytes ever written to spill files.
    pub fn total_written(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The most spill bytes alive at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for TempSpace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        // The shared root goes too once no sort uses it (fails harmlessly otherwise).
        let _ = fs::remove_dir(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_anonymous_and_the_directory_goes_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join(".sluice-tmp");
        let space = TempSpace::create(&root, None).unwrap();
        let (mut f, path) = space.new_file("run").unwrap();
        use std::io::Write;
        f.write_all(b"spill").unwrap();
        assert!(!path.exists(), "spill files are unlinked at creation");
        assert_eq!(fs::read_dir(space.dir()).unwrap().count(), 0);
        let dir = space.dir().to_path_buf();
        drop(space);
        assert!(!dir.exists());
        assert!(!root.exists(), "an unused root is removed");
    }

    #[test]
    fn the_limit_is_enforced() {
        let d = tempfile::tempdir().unwrap();
        let space = TempSpace::create(d.path(), Some(100)).unwrap();
        space.charge(60).unwrap();
        let e = space.charge(60).unwrap_err();
        assert_eq!(e.code(), "SORT_TEMP_FULL");
        space.release(120);
        space.charge(10).unwrap();
        assert_eq!(space.total_written(), 130);
    }

    #[test]
    fn stale_directories_of_dead_processes_are_removed() {
        let d = tempfile::tempdir().unwrap();
        // pid 0 never names a live process in /proc; our own pid is alive.
        let dead = d.path().join(format!("{DIR_PREFIX}0-1"));
        let live = d
            .path()
            .join(format!("{DIR_PREFIX}{}-2", std::process::id()));
        let other = d.path().join("unrelated");
        // (`other` keeps the root non-empty, so the root itself stays.)
        for p in [&dead, &live, &other] {
            fs::create_dir(p).unwrap();
        }
        clean_stale(d.path());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }
}
