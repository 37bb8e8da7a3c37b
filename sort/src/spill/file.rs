//! Spill files: sorted segments written once and read back once, in order.
//!
//! Format: an Arrow IPC file (uncompressed; `docs/sort.md` has the measurements against
//! lz4/zstd) whose schema is the work schema plus two `UInt64` columns holding the packed
//! sort key (`__sluice_key_hi`, `__sluice_key_lo`). A file holds one or more **segments**:
//! runs of consecutive batches whose rows are in key order (a sorted chunk of phase 1, or
//! the output of an intermediate merge). The segment table lives in memory ([`Segment`]). IPC is read back **zero-copy from an
//! mmap**: record batches point straight into the mapped pages, and once the merge has
//! gathered a batch's rows, [`MappedRun::release`] drops its pages with
//! `madvise(MADV_DONTNEED)`, so resident memory stays one batch per run however large the
//! run is.
//!
//! ```text
//!  write:  sorted batch ──► IPC message ──► BufWriter ──► unlinked file (charged to TempSpace)
//!  read:   mmap ──► footer ──► block i ──► RecordBatch (zero-copy) ──► merge ──► release(i)
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_buffer::Buffer;
use arrow_ipc::reader::{read_footer_length, FileDecoder};
use arrow_ipc::writer::FileWriter;
use arrow_ipc::{root_as_footer, Block};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use memmap2::{Mmap, UncheckedAdvice};

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

/// A run mapped for reading.
pub struct MappedRun {
    run: SpillRun,
    mmap: Arc<Mmap>,
    buffer: Buffer,
    blocks: Vec<Block>,
    decoder: FileDecoder,
    page: usize,
}

impl std::fmt::Debug for MappedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedRun")
            .field("path", &self.run.path)
            .field("batches", &self.blocks.len())
            .finish()
    }
}

fn page_size() -> usize {
    // The kernel's page size; 4 KiB on every platform sluice targets, and releasing whole
    // 4 KiB-aligned ranges stays correct on larger pages (the kernel rounds).
    4096
}

impl MappedRun {
    /// Map a finished run whose work schema is `work_schema`.
    pub fn open(run: SpillRun, work_schema: &Schema) -> Result<Self> {
        let path = run.path.clone();
        let bad = |what: &str| SortError::spill(&path, what);
        // SAFETY: the file is anonymous (unlinked at creation) and only this process holds
        // it; nothing writes it after `finish`, so the mapping cannot change underneath.
        let mmap = unsafe { Mmap::map(&run.file) }.map_err(|e| SortError::spill(&path, e))?;
        let _ = mmap.advise(memmap2::Advice::Sequential);
        let mmap = Arc::new(mmap);
        let len = mmap.len();
        if len < 10 {
            return Err(bad("file too short for an Arrow IPC footer"));
        }
        let ptr = NonNull::new(mmap.as_ptr() as *mut u8).ok_or_else(|| bad("null mapping"))?;
        // SAFETY: `ptr` points to `len` mapped bytes that stay valid as long as the `Mmap`
        // lives; the buffer owns an `Arc` to it.
        let buffer = unsafe { Buffer::from_custom_allocation(ptr, len, mmap.clone()) };
        let mut trailer = [0u8; 10];
        trailer.copy_from_slice(&buffer[len - 10..]);
        let footer_len = read_footer_length(trailer).map_err(|e| SortError::spill(&path, e))?;
        let start = (len - 10)
            .checked_sub(footer_len)
            .ok_or_else(|| bad("footer longer than the file"))?;
        let footer =
            root_as_footer(&buffer[start..len - 10]).map_err(|e| SortError::spill(&path, e))?;
        let blocks: Vec<Block> = footer
            .recordBatches()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        for b in &blocks {
            let end = b.offset() as u64 + b.metaDataLength() as u64 + b.bodyLength() as u64;
            if b.offset() < 0 || end > len as u64 {
                return Err(bad("batch block outside the file"));
            }
        }
        let schema = spill_schema(work_schema);
        // SAFETY: this process wrote the file moments ago with the same schema (the writer
        // validated every array), and the anonymous file cannot be changed by others.
        let decoder = unsafe {
            FileDecoder::new(schema, footer.version())
                .with_require_alignment(false)
                .with_skip_validation(true)
        };
        Ok(MappedRun {
            run,
            mmap,
            buffer,
            blocks,
            decoder,
            page: page_size(),
        })
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

    /// Decode batch `i` (zero-copy): work columns followed by the two key columns.
    pub fn batch(&self, i: usize) -> Result<RecordBatch> {
        let block = &self.blocks[i];
        let len = block.metaDataLength() as usize + block.bodyLength() as usize;
        // Map the batch's pages in one call instead of one page fault per 4 KiB (faults
        // are expensive in VMs; measured in docs/sort.md). Best effort: older kernels
        // without MADV_POPULATE_READ just fault lazily.
        let _ = self.mmap.advise_range(
            memmap2::Advice::PopulateRead,
            (block.offset() as usize / self.page) * self.page,
            len + block.offset() as usize % self.page,
        );
        let data = self.buffer.slice_with_length(block.offset() as usize, len);
        match self.decoder.read_record_batch(block, &data) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(SortError::spill(&self.run.path, "empty IPC message")),
            Err(e) => Err(SortError::spill(&self.run.path, e)),
        }
    }

    /// Drop the resident pages of batch `i` (and any earlier bytes on its first page): the
    /// merge has gathered its rows. Pages shared with batch `i + 1` stay.
    pub fn release(&self, i: usize) {
        let block = &self.blocks[i];
        let start = (block.offset() as usize / self.page) * self.page;
        let end =
            block.offset() as usize + block.metaDataLength() as usize + block.bodyLength() as usize;
        let end = if i + 1 == self.blocks.len() {
            self.mmap.len()
        } else {
            (end / self.page) * self.page
        };
        if end > start {
            // SAFETY: DONTNEED on a read-only shared file mapping only drops resident pages;
            // a later access faults them back in from the file, so arrays that still point
            // here (none should) would read the same bytes.
            let _ = unsafe {
                self.mmap
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}
