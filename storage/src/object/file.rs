//! [`ObjectFile`]: what parquet readers read, whether the bytes are in a local file or in S3.
//!
//! - Local: the open `File` (the parquet reader seeks and reads it as it always did).
//! - Remote: the byte ranges fetched so far (a whole object, or just the column chunks of
//!   one row group), each an immutable `Bytes`. The reader asks for a range; it must lie
//!   inside a fetched one, else `PARQUET_ERROR` names the gap (a planning bug, never a
//!   silent extra request).
//!
//! Footers ([`parquet_metadata`]): locally the reader's own loader; remotely one suffix GET
//! of [`FOOTER_GUESS`] bytes, and a second ranged GET only when the footer is larger.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use object_store::{GetOptions, GetRange, ObjectStore};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::reader::{ChunkReader, Length};

use super::{block_on, is_remote, Remote};
use crate::error::{Result, StorageError};

/// Bytes fetched from the end of an object to find its footer in one request.
pub const FOOTER_GUESS: u64 = 64 * 1024;

/// Byte ranges of a remote object, sorted by start.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    pub len: u64,
    pub chunks: Vec<(u64, Bytes)>,
}

impl Fetched {
    fn slice(&self, start: u64, length: usize) -> std::result::Result<Bytes, ParquetError> {
        let i = self.chunks.partition_point(|(s, _)| *s <= start);
        if i > 0 {
            let (s, b) = &self.chunks[i - 1];
            let off = (start - s) as usize;
            if off + length <= b.len() {
                return Ok(b.slice(off..off + length));
            }
        }
        Err(ParquetError::General(format!(
            "{}: bytes {start}..{} were not fetched",
            self.path.display(),
            start + length as u64
        )))
    }
}

/// A parquet source: a local file or fetched ranges of an S3 object.
#[derive(Debug, Clone)]
pub enum ObjectFile {
    Local(Arc<File>),
    Remote(Arc<Fetched>),
}

/// The `Read` handed to the parquet reader.
pub enum ObjectRead {
    Local(BufReader<File>),
    Remote(bytes::buf::Reader<Bytes>),
}

impl Read for ObjectRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ObjectRead::Local(r) => r.read(buf),
            ObjectRead::Remote(r) => r.read(buf),
        }
    }
}

impl Length for ObjectFile {
    fn len(&self) -> u64 {
        match self {
            ObjectFile::Local(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
            ObjectFile::Remote(f) => f.len,
        }
    }
}

impl ChunkReader for ObjectFile {
    type T = ObjectRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<ObjectRead> {
        match self {
            ObjectFile::Local(f) => {
                use std::io::{Seek, SeekFrom};
                let mut f = f.try_clone()?;
                f.seek(SeekFrom::Start(start))?;
                Ok(ObjectRead::Local(BufReader::new(f)))
            }
            ObjectFile::Remote(f) => {
                // The rest of the fetched range that holds `start`.
                let i = f.chunks.partition_point(|(s, _)| *s <= start);
                let avail = match i.checked_sub(1).map(|j| &f.chunks[j]) {
                    Some((s, b)) if start - s <= b.len() as u64 => b.len() - (start - s) as usize,
                    _ => 0,
                };
                Ok(ObjectRead::Remote(f.slice(start, avail)?.reader()))
            }
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            ObjectFile::Local(f) => f.as_ref().get_bytes(start, length),
            ObjectFile::Remote(f) => f.slice(start, length),
        }
    }
}

impl ObjectFile {
    /// Open a whole file; an S3 object is downloaded (replay reads whole view parts).
    pub fn open(path: &Path) -> Result<Self> {
        if is_remote(path) {
            let bytes = Remote::open(path)?.get()?;
            Ok(ObjectFile::Remote(Arc::new(Fetched {
                path: path.to_path_buf(),
                len: bytes.len() as u64,
                chunks: vec![(0, bytes)],
            })))
        } else {
            let f = File::open(path).map_err(|e| StorageError::io(path, e))?;
            Ok(ObjectFile::Local(Arc::new(f)))
        }
    }

    /// Only `ranges` of the S3 object at `path` (of `len` bytes), fetched concurrently.
    pub fn fetch_ranges(path: &Path, len: u64, ranges: Vec<Range<u64>>) -> Result<Self> {
        let remote = Remote::open(path)?;
        let bytes = remote.get_ranges(&ranges)?;
        let mut chunks: Vec<(u64, Bytes)> = ranges.iter().map(|r| r.start).zip(bytes).collect();
        chunks.sort_by_key(|c| c.0);
        Ok(ObjectFile::Remote(Arc::new(Fetched {
            path: path.to_path_buf(),
            len,
            chunks,
        })))
    }
}

/// The byte ranges of every column chunk of one row group (validated: a corrupt footer is
/// an error, not a panic).
pub fn row_group_ranges(path: &Path, rg: &RowGroupMetaData, len: u64) -> Result<Vec<Range<u64>>> {
    let mut out = Vec::with_capacity(rg.num_columns());
    for c in rg.columns() {
        let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
        let size = c.compressed_size();
        let end = start.checked_add(size);
        match end {
            Some(end) if start >= 0 && size >= 0 && end as u64 <= len => {
                out.push(start as u64..end as u64)
            }
            _ => {
                return Err(StorageError::parquet(
                    path,
                    format!("column chunk at {start}+{size} lies outside the file ({len} bytes)"),
                ))
            }
        }
    }
    Ok(out)
}

/// The footer of a local file or S3 object, with `options` applied, and the file's length.
pub fn parquet_metadata(
    path: &Path,
    options: ArrowReaderOptions,
) -> Result<(ArrowReaderMetadata, u64)> {
    if !is_remote(path) {
        let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io(path, e))?
            .len();
        let meta = ArrowReaderMetadata::load(&file, options)
            .map_err(|e| StorageError::parquet(path, e))?;
        return Ok((meta, len));
    }
    let (meta, len) = remote_footer(path)?;
    let meta = ArrowReaderMetadata::try_new(Arc::new(meta), options)
        .map_err(|e| StorageError::parquet(path, e))?;
    Ok((meta, len))
}

/// Footers fetched at once (all files of a dataset).
const FOOTERS_IN_FLIGHT: usize = 16;

/// [`parquet_metadata`] of many files, in their order. S3 footers are fetched
/// [`FOOTERS_IN_FLIGHT`] at a time (a dataset of 400 files costs ~25 round trips, not 400);
/// local footers are read in parallel on the rayon pool.
pub fn parquet_metadata_many(
    paths: &[PathBuf],
    options: &ArrowReaderOptions,
) -> Result<Vec<(ArrowReaderMetadata, u64)>> {
    use futures::StreamExt;
    use rayon::prelude::*;
    if !paths.iter().any(|p| is_remote(p)) {
        return paths
            .par_iter()
            .map(|p| parquet_metadata(p, options.clone()))
            .collect();
    }
    let tails: Vec<Result<(u64, Bytes)>> = block_on(
        futures::stream::iter(paths.iter().map(|p| fetch_tail(p)))
            .buffered(FOOTERS_IN_FLIGHT)
            .collect(),
    )?;
    paths
        .iter()
        .zip(tails)
        .map(|(p, tail)| {
            let (len, tail) = tail?;
            let meta = footer_from_tail(p, len, tail)?;
            let meta = ArrowReaderMetadata::try_new(Arc::new(meta), options.clone())
                .map_err(|e| StorageError::parquet(p, e))?;
            Ok((meta, len))
        })
        .collect()
}

/// The last [`FOOTER_GUESS`] bytes of an S3 object, and its length.
async fn fetch_tail(path: &Path) -> Result<(u64, Bytes)> {
    let remote = Remote::open(path)?;
    let got = remote
        .store
        .get_opts(
            &remote.path,
            GetOptions::new().with_range(Some(GetRange::Suffix(FOOTER_GUESS))),
        )
        .await
        .map_err(|e| super::remote::map_error("GET", &remote.url, e))?;
    let len = got.meta.size;
    let bytes = got
        .bytes()
        .await
        .map_err(|e| super::remote::map_error("GET", &remote.url, e))?;
    Ok((len, bytes))
}

/// Decode the footer of an S3 object: (metadata, object length).
pub fn remote_footer(path: &Path) -> Result<(ParquetMetaData, u64)> {
    let (len, tail) = block_on(fetch_tail(path))??;
    Ok((footer_from_tail(path, len, tail)?, len))
}

/// Decode a footer from the object's tail (one more ranged GET if the footer is longer).
fn footer_from_tail(path: &Path, len: u64, tail: Bytes) -> Result<ParquetMetaData> {
    if tail.len() < 8 || &tail[tail.len() - 4..] != b"PAR1" {
        return Err(StorageError::parquet(
            path,
            "not a parquet file (no PAR1 footer)",
        ));
    }
    let n = tail.len();
    let meta_len = u32::from_le_bytes([tail[n - 8], tail[n - 7], tail[n - 6], tail[n - 5]]) as u64;
    if meta_len + 8 > len {
        return Err(StorageError::parquet(
            path,
            format!("footer of {meta_len} bytes in a {len}-byte file"),
        ));
    }
    let meta_bytes = if meta_len + 8 <= n as u64 {
        tail.slice(n - 8 - meta_len as usize..n - 8)
    } else {
        let start = len - 8 - meta_len;
        Remote::open(path)?.get_range(start..len - 8)?
    };
    ParquetMetaDataReader::decode_metadata(&meta_bytes).map_err(|e| StorageError::parquet(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_ranges_serve_slices_and_refuse_gaps() {
        let f = Fetched {
            path: "s3://b/k".into(),
            len: 100,
            chunks: vec![
                (10, Bytes::from_static(b"abcdef")),
                (50, Bytes::from_static(b"xyz")),
            ],
        };
        assert_eq!(&f.slice(12, 3).unwrap()[..], b"cde");
        assert_eq!(&f.slice(50, 3).unwrap()[..], b"xyz");
        assert!(f.slice(14, 4).is_err(), "runs past the fetched range");
        assert!(f.slice(0, 1).is_err(), "before any range");
        assert!(f.slice(30, 1).is_err(), "in a gap");
        let file = ObjectFile::Remote(Arc::new(f));
        let mut s = String::new();
        file.get_read(13).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "def");
    }
}
