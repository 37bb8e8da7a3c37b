//! Ranged GETs ahead of the decoder: while a thread decodes row group `i`, the column chunks
//! of the next few row groups are already on the wire.
//!
//! 1. The caller lists its row groups in the order it will mostly want them, each as the
//!    byte ranges of its column chunks ([`super::file::row_group_ranges`]).
//! 2. [`RowGroupPrefetcher::take`]`(i)` starts the fetches of `i..=i+ahead` that have not
//!    started (each one `get_ranges` call: neighbouring chunks coalesced, up to ten requests
//!    concurrently), then waits for `i` only.
//! 3. Bytes of a row group are held from its fetch until its `take`, so memory is bounded
//!    by (decoding threads) x (`ahead` + 1) row groups, whatever order the threads take.
//!
//! ```text
//!  decoder thread:  take(0)  decode 0      take(1) decode 1   ...
//!  I/O runtime:     [fetch 0][fetch 1 ][fetch 2 ][fetch 3 ]   (ahead = 2)
//! ```

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::file::{Fetched, ObjectFile};
use super::{runtime, Remote};
use crate::error::{Result, StorageError};

/// One row group to fetch: the object, its length and the ranges to read.
#[derive(Debug, Clone)]
pub struct FetchItem {
    pub path: PathBuf,
    pub len: u64,
    pub ranges: Vec<Range<u64>>,
}

type Fetch = JoinHandle<Result<Vec<Bytes>>>;

#[derive(Debug)]
enum Slot {
    Idle,
    Running(Fetch),
    Taken,
}

/// Fetches row groups ahead of their decoding (see the module docs).
#[derive(Debug)]
pub struct RowGroupPrefetcher {
    items: Vec<FetchItem>,
    slots: Mutex<Vec<Slot>>,
    ahead: usize,
}

impl RowGroupPrefetcher {
    /// Prefetch `ahead` row groups beyond the one being waited for.
    pub fn new(items: Vec<FetchItem>, ahead: usize) -> Self {
        let slots = items.iter().map(|_| Slot::Idle).collect();
        RowGroupPrefetcher {
            items,
            slots: Mutex::new(slots),
            ahead,
        }
    }

    fn spawn(&self, i: usize) -> Result<Fetch> {
        let item = &self.items[i];
        let remote = Remote::open(&item.path)?;
        let ranges = item.ranges.clone();
        Ok(runtime()?.spawn(async move {
            remote
                .store
                .get_ranges(&remote.path, &ranges)
                .await
                .map_err(|e| super::remote::map_error("GET", &remote.url, e))
        }))
    }

    /// The fetched ranges of row group `i` (item `i` of the list), as a parquet source.
    pub fn take(&self, i: usize) -> Result<ObjectFile> {
        let handle = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let end = (i + self.ahead + 1).min(self.items.len());
            for j in i..end {
                if matches!(slots[j], Slot::Idle) {
                    slots[j] = Slot::Running(self.spawn(j)?);
                }
            }
            match std::mem::replace(&mut slots[i], Slot::Taken) {
                Slot::Running(h) => h,
                // Taken twice (a retried task): fetch again.
                Slot::Idle | Slot::Taken => self.spawn(i)?,
            }
        };
        let item = &self.items[i];
        let bytes = runtime()?
            .block_on(handle)
            .map_err(|e| StorageError::ObjectStore {
                op: "GET",
                url: item.path.to_string_lossy().into_owned(),
                message: format!("fetch task failed: {e}"),
            })??;
        let mut chunks: Vec<(u64, Bytes)> =
            item.ranges.iter().map(|r| r.start).zip(bytes).collect();
        chunks.sort_by_key(|c| c.0);
        Ok(ObjectFile::Remote(Arc::new(Fetched {
            path: item.path.clone(),
            len: item.len,
            chunks,
        })))
    }

    /// Number of row groups listed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no row groups are listed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
