//! Opening a stream view for replay, fail-closed, with the platform's codes
//! (`shared/CONTEXT.md`, "Stream view contract"):
//!
//! 1. no directory, or a directory with none of the view's files -> `STREAM_VIEW_MISSING`;
//! 2. a manifest but no receipt -> `STREAM_RECEIPT_MISSING`;
//! 3. parquet parts but no receipt (a sort that never finished) -> `STREAM_VIEW_PARTIAL_EXISTS`;
//! 4. a receipt that is not `status = "OK"`, names another output, or lists parts that are
//!    missing or of another size -> `STREAM_RECEIPT_MISMATCH`.
//!
//! The parts replayed are exactly the receipt's `parts`, in order; stray files are ignored.

use std::path::{Path, PathBuf};

use sluice_storage::object::fs as objfs;
use sluice_storage::outputs::OutputSpec;
use sluice_storage::publish::read_json;
use sluice_storage::view::{view_dir, StreamSortReceipt, MANIFEST_FILE, RECEIPT_FILE};
use sluice_storage::StorageError;

use crate::error::{ReplayError, Result};

/// One part of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewPart {
    /// Position in the view (0 = `part-000000.parquet`).
    pub index: u32,
    /// File name inside the view directory (what checkpoints record as `last_file`).
    pub name: String,
    pub path: PathBuf,
    pub rows: u64,
}

/// A stream view that passed the checks above.
#[derive(Debug, Clone)]
pub struct StreamView {
    pub output: &'static OutputSpec,
    pub dir: PathBuf,
    pub receipt: StreamSortReceipt,
    pub parts: Vec<ViewPart>,
}

impl StreamView {
    /// Rows in the whole view.
    pub fn rows(&self) -> u64 {
        self.parts.iter().map(|p| p.rows).sum()
    }

    /// The part with file name `name`.
    pub fn part_by_name(&self, name: &str) -> Option<&ViewPart> {
        self.parts.iter().find(|p| p.name == name)
    }
}

fn is_part_name(name: &str) -> bool {
    name.starts_with("part-") && name.ends_with(".parquet")
}

/// Open `<view_root>/output_id=<output_id>` and check it (see the module doc).
pub fn open_view(view_root: &Path, output_id: &str) -> Result<StreamView> {
    let output = OutputSpec::get(output_id)?;
    let dir = view_dir(view_root, output_id);
    let missing = || ReplayError::ViewMissing {
        output_id: output_id.to_string(),
        dir: dir.clone(),
    };
    // Local directories and `s3://` prefixes alike (`sluice_storage::object::fs`).
    let files = match objfs::list_files(&dir) {
        Ok(files) => files,
        Err(StorageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing())
        }
        Err(e) => return Err(e.into()),
    };
    let parquet_files = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| is_part_name(&n.to_string_lossy()))
        })
        .count();
    let receipt_path = dir.join(RECEIPT_FILE);
    if !objfs::exists(&receipt_path)? {
        if objfs::exists(&dir.join(MANIFEST_FILE))? {
            return Err(ReplayError::ReceiptMissing { dir });
        }
        if parquet_files > 0 {
            return Err(ReplayError::PartialExists {
                dir,
                parts: parquet_files,
            });
        }
        return Err(missing());
    }
    let receipt: StreamSortReceipt = read_json(&receipt_path)?;
    let mismatch = |reason: String| ReplayError::ReceiptMismatch {
        path: receipt_path.clone(),
        reason,
    };
    if receipt.status != "OK" {
        return Err(mismatch(format!(
            "status is {:?}, not \"OK\"",
            receipt.status
        )));
    }
    if receipt.output_id != output_id {
        return Err(mismatch(format!(
            "it names output {:?}, the directory is for {output_id:?}",
            receipt.output_id
        )));
    }
    let mut parts = Vec::with_capacity(receipt.parts.len());
    for (i, info) in receipt.parts.iter().enumerate() {
        if !is_part_name(&info.name) || info.name.contains('/') {
            return Err(mismatch(format!(
                "part name {:?} is not part-*.parquet",
                info.name
            )));
        }
        let path = dir.join(&info.name);
        let len = objfs::len(&path)
            .map_err(|_| mismatch(format!("part {} listed but missing", info.name)))?;
        if len != info.bytes {
            return Err(mismatch(format!(
                "part {} has {} bytes, the receipt says {}",
                info.name, len, info.bytes
            )));
        }
        parts.push(ViewPart {
            index: i as u32,
            name: info.name.clone(),
            path,
            rows: info.row_count,
        });
    }
    let listed: u64 = parts.iter().map(|p| p.rows).sum();
    if listed != receipt.sorted_stats.row_count {
        return Err(mismatch(format!(
            "parts hold {listed} rows, sorted_stats.row_count says {}",
            receipt.sorted_stats.row_count
        )));
    }
    Ok(StreamView {
        output,
        dir,
        receipt,
        parts,
    })
}
