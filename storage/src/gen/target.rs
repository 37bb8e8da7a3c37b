//! The run root a generation writes into: refuse to mix with existing data, or (with
//! `force`) remove exactly what a generation owns first.
//!
//! A generation owns, under the run root, each of its outputs' dataset directories
//! (`data/layer3/6B/<output>/`, `data/layer2/5B/arrival_events/`, every partition below
//! them) and `run_receipt.json`. Nothing else is read, checked or removed: other outputs,
//! stream views and run directories stay as they are.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::gen::plan::GenPlan;
use crate::layout::EngineRunReceipt;

/// The existing paths a generation of `plan` would replace (dataset dirs, the receipt).
pub fn existing_targets(plan: &GenPlan) -> Vec<PathBuf> {
    let out = plan.out();
    let receipt = out.join(EngineRunReceipt::FILE_NAME);
    plan.outputs
        .iter()
        .map(|o| out.join(o.spec.dataset_dir))
        .chain(std::iter::once(receipt))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect()
}

/// Make the run root ready: `GEN_OUTPUT_EXISTS` if anything the plan owns exists and
/// `force` is off; otherwise remove it (receipt first, so a crash mid-way never leaves a
/// receipt naming deleted data) and create the empty partition directories.
pub fn prepare(plan: &GenPlan, force: bool) -> Result<()> {
    let existing = existing_targets(plan);
    if !existing.is_empty() && !force {
        return Err(StorageError::GenOutputExists { paths: existing });
    }
    let receipt = plan.out().join(EngineRunReceipt::FILE_NAME);
    for p in existing.iter().filter(|p| **p == receipt) {
        fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
    }
    for p in existing.iter().filter(|p| **p != receipt) {
        remove_any(p)?;
    }
    for o in &plan.outputs {
        let dir = plan.out().join(&o.partition_dir);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    let meta = p.symlink_metadata().map_err(|e| StorageError::io(p, e))?;
    let r = if meta.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    };
    r.map_err(|e| StorageError::io(p, e))
}
