//! Spill files: sorted segments written once and read back once, in order.
//!
//! Format: an Arrow IPC file (uncompressed; `docs/sort.md` has the measurements against
//! lz4/zstd) whose schema is the work schema (or the text schema, for chunks that carry
//! their key strings: `crate::keytext`; one file per schema, the run remembers which)
//! plus two `UInt64` columns holding the packed sort key (`__sluice_key_hi`,
//! `__sluice_key_lo`). A file holds one or more **segments**:
//! runs of consecutive batches whose rows are in key order (a sorted chunk of phase 1, or
//! the output of an intermediate merge). The segment table lives in memory ([`Segment`]).
//! Batches are read back one at a time with `pread` and decoded zero-copy from that buffer
//! ([`SpillReader`], which explains why not `mmap`): resident memory is one or a few
//! batches per merge source however large the file is.
//!
//! ```text
//!  write: sorted chunk ──► IPC batches ──► BufWriter ──► unlinked file (charged to TempSpace)
//!  read:  footer ──► block i ──pread──► aligned buffer ──► RecordBatch (zero-copy) ──► merge
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::{read_footer_length, FileDecoder};
use arrow_ipc::writer::FileWriter;
use arrow_ipc::{root_as_footer, Block};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::TempSpace;
use crate::error::{Result, SortError};

/// Name of the spilled key's high half (the time).
pub const KEY_HI: &str = "__sluice_key_hi";
/// Name of the spilled key's low half (file and row).
pub const KEY_LO: &str = "__sluice_key_lo";

/// The schema of spill files: the work schema plus the two key columns.
pub fn spill_schema(work: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = work.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(KEY_HI, DataType::UInt64, false));
    fields.push(Field::new(KEY_LO, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// A writer that charges every byte to the temp space before writing it.
struct Charged {
    inner: BufWriter<File>,
    space: Arc<TempSpace>,
    written: u64,
    refused: Option<SortError>,
}

impl Write for Charged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Err(e) = self.space.charge(buf.len() as u64) {
            self.space.release(buf.len() as u64);
            self.refused = Some(e);
            return Err(std::io::Error::other("spill space exhausted"));
        }
        match self.inner.write(buf) {
            Ok(n) => {
                self.written += n as u64;
                // Charge only what was written.
                self.space.release((buf.len() - n) as u64);
                Ok(n)
            }
            Err(e) => {
                self.space.release(buf.len() as u64);
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A sorted segment of a spill file: batches `first..first + batches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub first: usize,
    pub batches: usize,
    pub rows: u64,
}

/// Writes one spill file of sorted segments.
pub struct SpillWriter {
    path: PathBuf,
    writer: FileWriter<Charged>,
    schema: SchemaRef,
    /// The work schema (without the key columns).
    work: SchemaRef,
    rows: u64,
    batches: usize,
    segments: Vec<Segment>,
}

impl SpillWriter {
    /// Start a run in `space` for batches of `work_schema`.
    pub fn create(space: &Arc<TempSpace>, work_schema: &Schema) -> Result<Self> {
        let (file, path) = space.new_file("run")?;
        let schema = spill_schema(work_schema);
        let charged = Charged {
            inner: BufWriter::with_capacity(1 << 20, file),
            space: space.clone(),
            written: 0,
            refused: None,
        };
        let writer =
            FileWriter::try_new(charged, &schema).map_err(|e| SortError::spill(&path, e))?;
        Ok(SpillWriter {
            path,
            writer,
            schema,
            work: Arc::new(work_schema.clone()),
            rows: 0,
            batches: 0,
            segments: Vec::new(),
        })
    }

    /// Start a new sorted segment: the rows written next are in key order among themselves
    /// (but not relative to earlier segments).
    pub fn begin_segment(&mut self) {
        self.segments.push(Segment {
            first: self.batches,
            batches: 0,
            rows: 0,
        });
    }

    /// Write a sorted batch (work columns) and its keys as one segment, cut into IPC batches
    /// of at most `rows_per_batch` rows (zero-copy slices).
    pub fn write_segment(
        &mut self,
        batch: &RecordBatch,
        keys: &[u128],
        rows_per_batch: usize,
    ) -> Result<()> {
        self.begin_segment();
        let mut offset = 0;
        while offset < keys.len() {
            let n = rows_per_batch.max(1).min(keys.len() - offset);
            let cols = batch.columns().iter().map(|c| c.slice(offset, n)).collect();
            self.write(cols, &keys[offset..offset + n])?;
            offset += n;
        }
        Ok(())
    }

    fn fail(&mut self, e: impl std::fmt::Display) -> SortError {
        match self.writer.get_mut().refused.take() {
            Some(full) => full,
            None => SortError::spill(&self.path, e),
        }
    }

    /// Append sorted rows to the current segment (one is started if none is): the work
    /// columns and their keys.
    pub fn write(&mut self, mut columns: Vec<ArrayRef>, keys: &[u128]) -> Result<()> {
        if self.segments.is_empty() {
            self.begin_segment();
        }
        columns.push(Arc::new(UInt64Array::from_iter_values(
            keys.iter().map(|&k| (k >> 64) as u64),
        )));
        columns.push(Arc::new(UInt64Array::from_iter_values(
            keys.iter().map(|&k| k as u64),
        )));
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| SortError::spill(&self.path, e))?;
        if let Err(e) = self.writer.write(&batch) {
            return Err(self.fail(e));
        }
        self.rows += keys.len() as u64;
        self.batches += 1;
        if let Some(seg) = self.segments.last_mut() {
            seg.batches += 1;
            seg.rows += keys.len() as u64;
        }
        Ok(())
    }

    /// Finish the file; the run is then ready to be mapped.
    pub fn finish(mut self) -> Result<SpillRun> {
        if let Err(e) = self.writer.finish() {
            return Err(self.fail(e));
        }
        let charged = match self.writer.into_inner() {
            Ok(c) => c,
            Err(e) => return Err(SortError::spill(&self.path, e)),
        };
        let Charged {
            inner,
            space,
            written,
            ..
        } = charged;
        let file = inner
            .into_inner()
            .map_err(|e| SortError::spill(&self.path, e.error()))?;
        Ok(SpillRun {
            file,
            path: self.path,
            work: self.work,
            bytes: written,
            rows: self.rows,
            segments: self.segments,
            space,
        })
    }
}

/// A finished spill file (anonymous: it disappears when this is dropped).
#[derive(Debug)]
pub struct SpillRun {
    file: File,
    path: PathBuf,
    /// The work schema its batches were written with (without the key columns).
    work: SchemaRef,
    bytes: u64,
    rows: u64,
    segments: Vec<Segment>,
    space: Arc<TempSpace>,
}

impl SpillRun {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn rows(&self) -> u64 {
        self.rows
    }
    /// The sorted segments, in file order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl Drop for SpillRun {
    fn drop(&mut self) {
        self.space.release(self.bytes);
    }
}

/// A finished spill file opened for reading: batch by batch, each read with `pread` into
/// its own 64-byte-aligned buffer and decoded zero-copy from it. A batch's memory is freed
/// when the last array taken from it is dropped.
///
/// Why not `mmap`: on the platform's kernels the page cache holds large folios, and mapping
/// a batch maps its whole folio (measured: populating a 12 KiB batch made 296 KiB resident,
/// and released neighbours were mapped again by the next batch), so with hundreds of merge
/// sources resident memory could not be bounded per batch (1.67 GB peak RSS at 125M rows
/// with a 1 GiB limit). `pread` makes resident memory exactly what the merge holds, and
/// saves the page-table work besides.
pub struct SpillReader {
    run: SpillRun,
    blocks: Vec<Block>,
    decoder: FileDecoder,
}

impl std::fmt::Debug for SpillReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillReader")
            .field("path", &self.run.path)
            .field("batches", &self.blocks.len())
            .finish()
    }
}

impl SpillReader {
    /// Open a finished run: read its footer.
    pub fn open(run: SpillRun) -> Result<Self> {
        let path = run.path.clone();
        let bad = |what: &str| SortError::spill(&path, what);
        let len = run
            .file
            .metadata()
            .map_err(|e| SortError::spill(&path, e))?
            .len();
        if len < 10 {
            return Err(bad("file too short for an Arrow IPC footer"));
        }
        let mut trailer = [0u8; 10];
        run.file
            .read_exact_at(&mut trailer, len - 10)
            .map_err(|e| SortError::spill(&path, e))?;
        let footer_len = read_footer_length(trailer).map_err(|e| SortError::spill(&path, e))?;
        let start = (len - 10)
            .checked_sub(footer_len as u64)
            .ok_or_else(|| bad("footer longer than the file"))?;
        let mut footer_bytes = vec![0u8; footer_len];
        run.file
            .read_exact_at(&mut footer_bytes, start)
            .map_err(|e| SortError::spill(&path, e))?;
        let footer = root_as_footer(&footer_bytes).map_err(|e| SortError::spill(&path, e))?;
        let blocks: Vec<Block> = footer
            .recordBatches()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        for b in &blocks {
            let end = b.offset() as u64 + b.metaDataLength() as u64 + b.bodyLength() as u64;
            if b.offset() < 0 || b.metaDataLength() < 0 || b.bodyLength() < 0 || end > start {
                return Err(bad("batch block outside the file"));
            }
        }
        let schema = spill_schema(&run.work);
        // SAFETY: this process wrote the file moments ago with the same schema (the writer
        // validated every array), and the anonymous file cannot be changed by others.
        let decoder = unsafe {
            FileDecoder::new(schema, footer.version())
                .with_require_alignment(false)
                .with_skip_validation(true)
        };
        Ok(SpillReader {
            run,
            blocks,
            decoder,
        })
    }

    /// The work schema of the run's batches (they hold the key columns after it).
    pub fn work_schema(&self) -> &SchemaRef {
        &self.run.work
    }

    /// Batches in the run.
    pub fn num_batches(&self) -> usize {
        self.blocks.len()
    }

    /// Rows in the run.
    pub fn rows(&self) -> u64 {
        self.run.rows
    }

    /// The sorted segments of the file.
    pub fn segments(&self) -> &[Segment] {
        &self.run.segments
    }

    /// Read and decode batch `i`: work columns followed by the two key columns.
    pub fn batch(&self, i: usize) -> Result<RecordBatch> {
        let path = &self.run.path;
        let block = self
            .blocks
            .get(i)
            .ok_or_else(|| SortError::spill(path, format!("no batch {i}")))?;
        let len = block.metaDataLength() as usize + block.bodyLength() as usize;
        // Arrow's allocator aligns to 64 bytes, as the IPC writer aligned the buffers.
        let mut buf = MutableBuffer::from_len_zeroed(len);
        self.run
            .file
            .read_exact_at(buf.as_slice_mut(), block.offset() as u64)
            .map_err(|e| SortError::spill(path, e))?;
        let data: Buffer = buf.into();
        match self.decoder.read_record_batch(block, &data) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(SortError::spill(path, "empty IPC message")),
            Err(e) => Err(SortError::spill(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt64Type};
    use arrow_array::Int64Array;
    use arrow_schema::Field;

    use super::*;

    #[test]
    fn segments_round_trip_batch_by_batch() {
        let d = tempfile::tempdir().unwrap();
        let space = Arc::new(TempSpace::create(d.path(), None).unwrap());
        let schema = Schema::new(vec![Field::new("v", DataType::Int64, false)]);
        let mut w = SpillWriter::create(&space, &schema).unwrap();
        let rows = 4096usize;
        for s in 0..3u64 {
            let col: ArrayRef = Arc::new(Int64Array::from_iter_values(
                (0..rows as i64).map(|i| i * 10 + s as i64),
            ));
            let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![col]).unwrap();
            let keys: Vec<u128> = (0..rows as u128).map(|i| (s as u128) << 64 | i).collect();
            w.write_segment(&batch, &keys, 500).unwrap();
        }
        let run = w.finish().unwrap();
        assert_eq!(run.segments().len(), 3);
        assert!(run
            .segments()
            .iter()
            .all(|s| s.batches == 9 && s.rows == 4096));
        let reader = SpillReader::open(run).unwrap();
        assert_eq!(reader.rows(), 3 * 4096);
        assert_eq!(reader.num_batches(), 27);
        let mut seen = 0;
        for (si, seg) in reader.segments().to_vec().iter().enumerate() {
            let mut row = 0i64;
            for i in seg.first..seg.first + seg.batches {
                let b = reader.batch(i).unwrap();
                assert_eq!(b.num_columns(), 3, "work column plus the two key columns");
                let v = b.column(0).as_primitive::<Int64Type>();
                let hi = b.column(1).as_primitive::<UInt64Type>();
                let lo = b.column(2).as_primitive::<UInt64Type>();
                for j in 0..b.num_rows() {
                    assert_eq!(v.value(j), row * 10 + si as i64);
                    assert_eq!((hi.value(j), lo.value(j)), (si as u64, row as u64));
                    row += 1;
                }
                seen += b.num_rows();
            }
        }
        assert_eq!(seen, 3 * 4096);
        assert!(reader.batch(27).is_err());
    }
}
