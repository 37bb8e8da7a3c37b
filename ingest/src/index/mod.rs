//! The gate's on-disk key indexes: a small LSM of sorted runs plus an in-memory memtable and,
//! for dedupe, a Bloom filter. Two instances:
//!
//! - `dedupe`: index key ([`crate::ids::index_key`]: event id XOR the class's mask) ->
//!   receipt seq of the event's ADMIT receipt (whose record holds the bus position);
//! - `receipt_ids`: receipt id (16 bytes, zero-padded) -> seq of the newest DUPLICATE or
//!   QUARANTINE receipt with that id (for `sluice ingest lookup`).
//!
//! ```text
//!   lookup(key):  memtable ──hit──> seq                           (recent, in memory)
//!                    │ miss
//!                 frozen memtable (being flushed) ──hit──> same
//!                    │ miss
//!                 filter ──"absent"──> NEW                          (99.9% of new keys)
//!                    │ maybe
//!                 runs, newest first: fences -> one 5 KiB block -> seq -> receipt record
//! ```
//!
//! 1. Decisions go to the memtable; the receipt log (`receipts.log`) is the write-ahead log,
//!    so a memtable lost in a crash is rebuilt from the log's tail on open.
//! 2. A full memtable is frozen and written as a sorted run ([`run`]); the manifest then
//!    records the run and the receipt seq it covers, atomically.
//! 3. Runs are merged in tiers of four ([`RunSet::compact`]): each entry is rewritten about
//!    log4(total / memtable) times and a lookup sees at most three runs per tier.
//! 4. The filter holds every key in the runs; it is rebuilt from them on open.

pub mod filter;
pub mod memtable;
pub mod run;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IngestError, Result};
use crate::ids::Hash32;
use run::{merge_runs, write_run, SortedRun};

/// Runs of the same tier merged at once.
pub const MERGE_FANOUT: usize = 4;

fn run_name(id: u64) -> String {
    format!("run-{id:08}.six")
}

fn run_id(name: &str) -> Option<u64> {
    name.strip_prefix("run-")?
        .strip_suffix(".six")?
        .parse()
        .ok()
}

/// The runs of one index, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RunSet {
    dir: PathBuf,
    runs: Vec<Arc<SortedRun>>,
    next_id: u64,
}

impl RunSet {
    /// Open the runs named in the manifest; run files it does not name (left by a crash
    /// between writing a run and publishing the manifest) and temp files are deleted.
    pub fn open(dir: &Path, names: &[String], writable: bool) -> Result<RunSet> {
        if writable {
            fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        }
        let mut next_id = 1;
        if dir.is_dir() {
            for entry in fs::read_dir(dir).map_err(|e| IngestError::io(dir, e))? {
                let entry = entry.map_err(|e| IngestError::io(dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = run_id(&name) {
                    next_id = next_id.max(id + 1);
                }
                let orphan = run_id(&name).is_some() && !names.contains(&name);
                if writable && (orphan || sluice_storage::publish::is_temp_name(&name)) {
                    fs::remove_file(entry.path()).map_err(|e| IngestError::io(entry.path(), e))?;
                }
            }
        }
        let mut runs = Vec::with_capacity(names.len());
        for n in names {
            if run_id(n).is_none() {
                return Err(IngestError::corrupt(
                    dir,
                    0,
                    format!("manifest names a bad run file {n:?}"),
                ));
            }
            runs.push(Arc::new(SortedRun::open(&dir.join(n))?));
        }
        Ok(RunSet {
            dir: dir.to_path_buf(),
            runs,
            next_id,
        })
    }

    /// File names, oldest first (what the manifest records).
    pub fn names(&self) -> Vec<String> {
        self.runs
            .iter()
            .filter_map(|r| {
                r.path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect()
    }

    pub fn runs(&self) -> &[Arc<SortedRun>] {
        &self.runs
    }

    /// Entries over all runs (duplicates across runs counted each time).
    pub fn entries(&self) -> u64 {
        self.runs.iter().map(|r| r.len()).sum()
    }

    /// Write `sorted` as the newest run (nothing for an empty input).
    pub fn add(&mut self, sorted: Vec<(Hash32, u64)>) -> Result<()> {
        if sorted.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(run_name(self.next_id));
        self.next_id += 1;
        self.runs.push(Arc::new(write_run(&path, sorted)?));
        Ok(())
    }

    /// Merge the newest [`MERGE_FANOUT`] runs while they are of one tier (tier = floor(log4
    /// of entries / `base`)). Returns the replaced files: delete them only after the manifest
    /// that no longer names them is published.
    pub fn compact(&mut self, base: u64) -> Result<Vec<PathBuf>> {
        let tier = |n: u64| {
            let mut t = 0;
            let mut x = n / base.max(1);
            while x >= MERGE_FANOUT as u64 {
                x /= MERGE_FANOUT as u64;
                t += 1;
            }
            t
        };
        let mut obsolete = Vec::new();
        while self.runs.len() >= MERGE_FANOUT {
            let tail = &self.runs[self.runs.len() - MERGE_FANOUT..];
            let t = tier(tail[0].len());
            if !tail.iter().all(|r| tier(r.len()) == t) {
                break;
            }
            let path = self.dir.join(run_name(self.next_id));
            self.next_id += 1;
            let inputs: Vec<&SortedRun> = tail.iter().map(|r| r.as_ref()).collect();
            let merged = merge_runs(&inputs, &path)?;
            obsolete.extend(tail.iter().map(|r| r.path().to_path_buf()));
            let keep = self.runs.len() - MERGE_FANOUT;
            self.runs.truncate(keep);
            self.runs.push(Arc::new(merged));
        }
        Ok(obsolete)
    }

    /// The seq of `key` in the newest run that has it.
    pub fn get(&self, key: &Hash32) -> Result<Option<u64>> {
        get_in(&self.runs, key)
    }
}

/// The seq of `key` in the newest of `runs` (oldest first) that has it.
pub fn get_in(runs: &[Arc<SortedRun>], key: &Hash32) -> Result<Option<u64>> {
    for r in runs.iter().rev() {
        if let Some(s) = r.get(key)? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

/// Delete files replaced by a compaction (after the manifest no longer names them).
pub fn remove_files(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(IngestError::io(p, e)),
        }
    }
    Ok(())
}

/// `n` zeros written now, not allocated zeroed. A zeroed allocation maps the shared zero
/// page on the first read of each page and copies it on the first write, and that copy
/// changes a mapping other threads may have cached: a TLB shootdown (an interrupt to the
/// other core) per page. Tables probed before they are written (tags, Bloom filters) hit
/// exactly that, at random, in the deciding thread (`perf`: `do_wp_page` ->
/// `flush_tlb_mm_range` under `MemTable::insert`). Writing the zeros at allocation faults
/// each page in once, sequentially, with no shootdown.
#[allow(clippy::slow_vector_initialization)] // `vec![0; n]` is the zeroed allocation avoided here
pub(crate) fn written_zeros(n: usize) -> Vec<u64> {
    let mut v = Vec::with_capacity(n);
    v.resize(n, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    fn key(i: u64) -> Hash32 {
        Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn tiers_merge_and_lookups_agree_with_a_map() {
        let d = tempfile::tempdir().unwrap();
        let mut set = RunSet::open(d.path(), &[], true).unwrap();
        let mut oracle = HashMap::new();
        let mut obsolete_total = 0;
        for flush in 0..21u64 {
            let mut batch: Vec<(Hash32, u64)> = (0..10)
                .map(|j| {
                    // Some keys repeat across flushes: the newest must win.
                    let k = key(flush * 7 + j);
                    (k, flush * 100 + j)
                })
                .collect();
            batch.sort();
            for (k, s) in &batch {
                oracle.insert(*k, *s);
            }
            set.add(batch).unwrap();
            let gone = set.compact(10).unwrap();
            obsolete_total += gone.len();
            remove_files(&gone).unwrap();
        }
        assert!(obsolete_total > 0, "some merges happened");
        assert!(set.runs().len() <= 9, "{} runs", set.runs().len());
        for (k, s) in &oracle {
            assert_eq!(set.get(k).unwrap(), Some(*s));
        }
        assert_eq!(set.get(&key(1_000_000)).unwrap(), None);
        // Reopen from the names; an unlisted run file is deleted as an orphan.
        let names = set.names();
        std::fs::write(d.path().join("run-99999999.six"), b"orphan").unwrap();
        let again = RunSet::open(d.path(), &names, true).unwrap();
        assert!(!d.path().join("run-99999999.six").exists());
        for (k, s) in &oracle {
            assert_eq!(again.get(k).unwrap(), Some(*s));
        }
    }
}
