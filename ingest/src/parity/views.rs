//! The view side of the bus parity check: every row of every view becomes a
//! [`Kind::View`] entry under its `event_id`, computed from the row's own primary key and
//! pins with the platform's formula ([`crate::ids::event_id`]'s bytes), independently of
//! the gate's envelope builder.
//!
//! Row groups are decoded in parallel (rayon), a few at a time, so memory holds a handful
//! of decoded row groups and their entries, never a whole view.
//!
//! View roots may be local or `s3://` ([`sluice_storage::object`]): a task reads its local
//! file as before, or fetches just its row group's column chunks from S3.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use sluice_storage::object::file::{parquet_metadata, row_group_ranges};
use sluice_storage::object::{fs as objfs, is_remote, ObjectFile};
use sluice_storage::outputs::{OutputSpec, OUTPUTS};
use sluice_storage::view::{view_dir, StreamSortReceipt, RECEIPT_FILE};
use sluice_storage::StorageError;

use super::buckets::{Buckets, Entry, Kind};
use crate::envelope::columns::Col;
use crate::error::{IngestError, Result};

/// One view to compare with the bus.
#[derive(Debug, Clone)]
pub struct ViewInput {
    pub output: &'static OutputSpec,
    pub dir: PathBuf,
    /// Parts in order: name and path.
    pub parts: Vec<(String, PathBuf)>,
    /// Rows the receipt lists (for progress totals; the check counts the files' rows).
    pub receipt_rows: u64,
}

/// The views under `view_root`: the given output ids, or every catalog output with a view
/// directory when `output_ids` is empty. Parts come from each view's receipt.
pub fn views_under(view_root: &Path, output_ids: &[String]) -> Result<Vec<ViewInput>> {
    let ids: Vec<&'static OutputSpec> = if output_ids.is_empty() {
        let mut found = Vec::new();
        for o in OUTPUTS {
            if objfs::dir_exists(&view_dir(view_root, o.id))? {
                found.push(o);
            }
        }
        found
    } else {
        output_ids
            .iter()
            .map(|id| OutputSpec::get(id).map_err(IngestError::from))
            .collect::<Result<_>>()?
    };
    if ids.is_empty() {
        return Err(IngestError::InvalidArgument(format!(
            "no stream views under {}",
            view_root.display()
        )));
    }
    let mut out = Vec::new();
    for output in ids {
        let dir = view_dir(view_root, output.id);
        let receipt: StreamSortReceipt =
            sluice_storage::publish::read_json(&dir.join(RECEIPT_FILE))?;
        let parts = receipt
            .parts
            .iter()
            .map(|p| (p.name.clone(), dir.join(&p.name)))
            .collect();
        out.push(ViewInput {
            output,
            dir,
            parts,
            receipt_rows: receipt.parts.iter().map(|p| p.row_count).sum(),
        });
    }
    Ok(out)
}

/// What reading the views found, per output (indexes as in the input list).
#[derive(Debug, Clone, Default)]
pub struct ViewCounts {
    pub rows: Vec<u64>,
    /// Rows with a null primary-key value: no event id, the gate must quarantine them.
    pub without_id: Vec<u64>,
}

/// Event ids of one batch: `(row, id)` for rows that have one, and the count of rows that
/// do not.
pub fn batch_event_ids(
    output: &OutputSpec,
    batch: &RecordBatch,
) -> Result<(Vec<[u8; 32]>, Vec<bool>)> {
    let schema = batch.schema();
    let bind = |name: &str| -> Result<Option<Col<'_>>> {
        match schema.index_of(name) {
            Err(_) => Ok(None),
            Ok(i) => Col::bind(batch.column(i)).map(Some).ok_or_else(|| {
                IngestError::PayloadTypeUnsupported {
                    output_id: output.id.to_string(),
                    column: name.to_string(),
                    data_type: schema.field(i).data_type().to_string(),
                }
            }),
        }
    };
    let pk: Vec<Option<Col<'_>>> = output
        .primary_key
        .iter()
        .map(|k| bind(k))
        .collect::<Result<_>>()?;
    let pins: Vec<Option<Col<'_>>> = [
        "manifest_fingerprint",
        "parameter_hash",
        "seed",
        "scenario_id",
    ]
    .iter()
    .map(|k| bind(k))
    .collect::<Result<_>>()?;
    let n = batch.num_rows();
    let mut ids = Vec::with_capacity(n);
    let mut has = Vec::with_capacity(n);
    let mut text = Vec::with_capacity(256);
    for i in 0..n {
        text.clear();
        text.extend_from_slice(output.id.as_bytes());
        let mut complete = true;
        for c in &pk {
            text.push(b'|');
            complete &= c.as_ref().is_some_and(|c| c.write_text(&mut text, i));
        }
        for c in &pins {
            // An absent or null pin is empty text, as in the gate's builder.
            text.push(b'|');
            if let Some(c) = c {
                c.write_text(&mut text, i);
            }
        }
        has.push(complete);
        ids.push(if complete {
            Sha256::digest(&text).into()
        } else {
            [0u8; 32]
        });
    }
    Ok((ids, has))
}

/// A part's footer and length in bytes.
fn footer(path: &Path) -> Result<(ArrowReaderMetadata, u64)> {
    Ok(parquet_metadata(path, ArrowReaderOptions::new())?)
}

/// One row group's entries and count of rows without an id.
fn read_task(
    slot: u8,
    output: &OutputSpec,
    path: &Path,
    (meta, len): &(ArrowReaderMetadata, u64),
    (part, rg, first_row): (u32, usize, u64),
) -> Result<(Vec<Entry>, u64)> {
    let f = if is_remote(path) {
        let ranges = row_group_ranges(path, meta.metadata().row_group(rg), *len)?;
        ObjectFile::fetch_ranges(path, *len, ranges)?
    } else {
        ObjectFile::open(path)?
    };
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta.clone())
        .with_row_groups(vec![rg])
        .with_batch_size(64 << 10)
        .build()
        .map_err(|e| IngestError::from(StorageError::parquet(path, e)))?;
    let mut entries = Vec::new();
    let mut without = 0;
    let mut row = first_row;
    for batch in reader {
        let batch = batch.map_err(|e| IngestError::from(StorageError::parquet(path, e)))?;
        let (ids, has) = batch_event_ids(output, &batch)?;
        for (id, ok) in ids.iter().zip(has) {
            if ok {
                entries.push(Entry::new(id, Kind::View, slot, part, row));
            } else {
                without += 1;
            }
            row += 1;
        }
    }
    Ok((entries, without))
}

/// Put every view row into `buckets` (see the module doc).
pub fn collect_views(
    views: &[ViewInput],
    buckets: &mut Buckets,
    advance: &(dyn Fn(u64) + Sync),
) -> Result<ViewCounts> {
    let mut counts = ViewCounts {
        rows: vec![0; views.len()],
        without_id: vec![0; views.len()],
    };
    for (slot, v) in views.iter().enumerate() {
        let metas: Vec<(ArrowReaderMetadata, u64)> = v
            .parts
            .iter()
            .map(|(_, p)| footer(p))
            .collect::<Result<_>>()?;
        let mut tasks = Vec::new();
        for (part, (meta, _)) in metas.iter().enumerate() {
            let mut first = 0u64;
            for (rg, g) in meta.metadata().row_groups().iter().enumerate() {
                tasks.push((part as u32, rg, first));
                first += g.num_rows().max(0) as u64;
            }
        }
        // A few row groups per thread at a time: bounded memory, all cores busy.
        let wave = rayon::current_num_threads().max(1) * 2;
        for chunk in tasks.chunks(wave) {
            let done: Vec<(Vec<Entry>, u64)> = chunk
                .par_iter()
                .map(|&t| {
                    let r = read_task(
                        slot as u8,
                        v.output,
                        &v.parts[t.0 as usize].1,
                        &metas[t.0 as usize],
                        t,
                    )?;
                    advance(r.0.len() as u64 + r.1);
                    Ok(r)
                })
                .collect::<Result<_>>()?;
            for (entries, without) in done {
                counts.rows[slot] += entries.len() as u64 + without;
                counts.without_id[slot] += without;
                for e in &entries {
                    buckets.push(e)?;
                }
            }
        }
    }
    Ok(counts)
}
