//! Object storage: engine outputs and stream views in S3 (or MinIO) as well as on local disk,
//! behind the same storage functions (issue 7, `docs/s3.md`).
//!
//! A location is a `PathBuf` either way: a local path, or the text `s3://bucket/key`. Every
//! storage function that touches data ([`fs`] here, `layout::discover_output`,
//! `layout::expand_glob`, `publish::read_json`, `view::source_fingerprint`) asks
//! [`is_remote`] and takes the `std::fs` path (unchanged, the fast path) or the
//! `object_store` path. Callers never branch themselves.
//!
//! It is not a general filesystem: S3 has no directories, renames or locks, so the view
//! publisher (`sluice-sort`'s `view::publish`) orders its uploads instead (parts first,
//! receipt last) and cleans its own leftovers through a marker object.
//!
//! ```text
//!  s3://bucket/prefix ─► ObjectUrl ─► Remote (AmazonS3, cached per bucket) ─┐
//!                                                                         ├─► RUNTIME.block_on
//!  sync callers (rayon threads) ─► fs / file / prefetch (blocking API) ───┘
//! ```
//!
//! - [`config`]: endpoint, region, credentials, path style, retries (environment + overrides).
//! - [`remote`]: the client handle, blocking operations and the error mapping to stable codes.
//! - [`fs`]: path-level helpers that dispatch local or remote (`exists`, `len`, `read`, ...).
//! - [`file`]: [`ObjectFile`], a parquet `ChunkReader` over a local file or fetched ranges.
//! - [`prefetch`]: ranged GETs of row groups ahead of the decoder, several in flight.

pub mod config;
pub mod file;
pub mod fs;
pub mod prefetch;
pub mod remote;

use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Result, StorageError};

pub use file::ObjectFile;
pub use prefetch::RowGroupPrefetcher;
pub use remote::Remote;

/// The URL scheme sluice accepts for object storage.
pub const S3_SCHEME: &str = "s3://";

/// Whether `path` names an object-store location (`s3://...`) rather than a local path.
pub fn is_remote(path: &Path) -> bool {
    path.as_os_str()
        .as_encoded_bytes()
        .starts_with(S3_SCHEME.as_bytes())
}

/// `s3://bucket/key`, split. The key has no leading or trailing `/` (empty for the bucket
/// root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    pub bucket: String,
    pub key: String,
}

impl ObjectUrl {
    /// Parse an `s3://bucket[/key]` location.
    pub fn parse(path: &Path) -> Result<Self> {
        let text = path
            .to_str()
            .ok_or_else(|| StorageError::ObjectUrlInvalid {
                url: path.to_string_lossy().into_owned(),
                reason: "not UTF-8".into(),
            })?;
        let invalid = |reason: &str| StorageError::ObjectUrlInvalid {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix(S3_SCHEME)
            .ok_or_else(|| invalid("expected s3://bucket/key"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket name"));
        }
        let key = key.trim_matches('/');
        if key.split('/').any(|c| c == "." || c == "..") || key.contains("//") {
            return Err(invalid("empty, '.' or '..' path components"));
        }
        Ok(ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The location as text: `s3://bucket/key`.
    pub fn to_url(&self) -> String {
        if self.key.is_empty() {
            format!("{S3_SCHEME}{}", self.bucket)
        } else {
            format!("{S3_SCHEME}{}/{}", self.bucket, self.key)
        }
    }

    /// The key as an `object_store` path.
    pub fn object_path(&self) -> Result<object_store::path::Path> {
        object_store::path::Path::parse(&self.key).map_err(|e| StorageError::ObjectUrlInvalid {
            url: self.to_url(),
            reason: e.to_string(),
        })
    }
}

/// The small tokio runtime that drives `object_store` for sluice's blocking callers. Two
/// workers: the work is waiting on sockets, not computing.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sluice-object-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| StorageError::ObjectStoreConfig {
            url: String::new(),
            message: format!("cannot start the I/O runtime: {e}"),
        })
}

/// Run a future to completion from synchronous code (never call from inside the runtime).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print() {
        let u = ObjectUrl::parse(Path::new("s3://b/a/c=1/")).unwrap();
        assert_eq!(u.bucket, "b");
        assert_eq!(u.key, "a/c=1");
        assert_eq!(u.to_url(), "s3://b/a/c=1");
        let root = ObjectUrl::parse(Path::new("s3://b")).unwrap();
        assert_eq!(root.key, "");
        assert_eq!(root.to_url(), "s3://b");
        for bad in [
            "s3://",
            "s3:///k",
            "/local/path",
            "s3://b/x/../y",
            "s3://b/x//y",
        ] {
            let e = ObjectUrl::parse(Path::new(bad)).unwrap_err();
            assert_eq!(e.code(), "OBJECT_URL_INVALID", "{bad}");
        }
    }

    #[test]
    fn remote_is_decided_by_the_scheme() {
        assert!(is_remote(Path::new("s3://b/k")));
        assert!(!is_remote(Path::new("/s3/b")));
        assert!(!is_remote(Path::new("s3:/b")));
        // Joining keeps the URL text, which is how view paths are built.
        let joined = Path::new("s3://b/root").join("output_id=x");
        assert_eq!(joined.to_str(), Some("s3://b/root/output_id=x"));
    }
}
