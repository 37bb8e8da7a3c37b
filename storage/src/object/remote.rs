//! The S3 client handle and its blocking operations, with `object_store` errors mapped to
//! sluice's stable codes (always naming the `s3://` URL).
//!
//! One client per bucket, cached for the life of the process, so connections are reused
//! across files. Retries with backoff happen inside the client ([`super::config`]); what
//! reaches us is permanent (403, missing bucket, missing object) or retries exhausted.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::config::S3Settings;
use super::{block_on, ObjectUrl};
use crate::error::{Result, StorageError};

/// Multipart chunk size: above S3's 5 MiB minimum, small enough to keep several in flight.
pub const MULTIPART_CHUNK: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const MULTIPART_CONCURRENCY: usize = 4;

static CLIENTS: Mutex<Option<HashMap<String, Arc<dyn ObjectStore>>>> = Mutex::new(None);

/// Drop cached clients (new settings apply to the next access).
pub(crate) fn forget_clients() {
    *CLIENTS.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// One object location with its bucket's client.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: ObjectUrl,
    pub store: Arc<dyn ObjectStore>,
    pub path: ObjectPath,
}

/// Map an `object_store` error for `url` to a stable code.
pub fn map_error(op: &'static str, url: &ObjectUrl, e: object_store::Error) -> StorageError {
    let text = e.to_string();
    match e {
        object_store::Error::NotFound { .. } if text.contains("NoSuchBucket") => {
            StorageError::ObjectBucketMissing {
                bucket: url.bucket.clone(),
                url: url.to_url(),
            }
        }
        object_store::Error::NotFound { .. } => StorageError::ObjectNotFound { url: url.to_url() },
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StorageError::ObjectAccessDenied {
            url: url.to_url(),
            message: text,
        },
        _ if text.contains("NoSuchBucket") => StorageError::ObjectBucketMissing {
            bucket: url.bucket.clone(),
            url: url.to_url(),
        },
        _ if text.contains("AccessDenied")
            || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
            || text.contains("403 Forbidden") =>
        {
            StorageError::ObjectAccessDenied {
                url: url.to_url(),
                message: text,
            }
        }
        _ => StorageError::ObjectStore {
            op,
            url: url.to_url(),
            message: text,
        },
    }
}

impl Remote {
    /// The client and key for an `s3://bucket/key` location.
    pub fn open(location: &Path) -> Result<Self> {
        let url = ObjectUrl::parse(location)?;
        let path = url.object_path()?;
        let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
        let map = clients.get_or_insert_with(HashMap::new);
        let store = match map.get(&url.bucket) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<dyn ObjectStore> = Arc::new(S3Settings::resolve()?.build(&url.bucket)?);
                map.insert(url.bucket.clone(), s.clone());
                s
            }
        };
        Ok(Remote { url, store, path })
    }

    /// The same bucket, another key (`s3://bucket/<key>`).
    pub fn with_key(&self, key: &str) -> Result<Remote> {
        let url = ObjectUrl {
            bucket: self.url.bucket.clone(),
            key: key.trim_matches('/').to_string(),
        };
        Ok(Remote {
            path: url.object_path()?,
            url,
            store: self.store.clone(),
        })
    }

    fn err(&self, op: &'static str, e: object_store::Error) -> StorageError {
        map_error(op, &self.url, e)
    }

    /// Size in bytes and last-modified time (ns since the epoch) of the object.
    pub fn head(&self) -> Result<(u64, i128)> {
        let meta = block_on(self.store.head(&self.path))?.map_err(|e| self.err("HEAD", e))?;
        let ns = meta
            .last_modified
            .timestamp_nanos_opt()
            .map_or(0, i128::from);
        Ok((meta.size, ns))
    }

    /// Whether the object exists (a missing bucket or denied access is an error, not "no").
    pub fn exists(&self) -> Result<bool> {
        match self.head() {
            Ok(_) => Ok(true),
            Err(StorageError::ObjectNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The whole object.
    pub fn get(&self) -> Result<Bytes> {
        block_on(async {
            self.store
                .get(&self.path)
                .await
                .map_err(|e| self.err("GET", e))?
                .bytes()
                .await
                .map_err(|e| self.err("GET", e))
        })?
    }

    /// One byte range of the object.
    pub fn get_range(&self, range: Range<u64>) -> Result<Bytes> {
        block_on(self.store.get_range(&self.path, range))?.map_err(|e| self.err("GET", e))
    }

    /// Several byte ranges of the object, fetched concurrently (the client coalesces
    /// neighbours into one ranged GET).
    pub fn get_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        block_on(self.store.get_ranges(&self.path, ranges))?.map_err(|e| self.err("GET", e))
    }

    /// Every object under `<key>/` (recursively), as `(s3://bucket/key, size)`, sorted by key.
    pub fn list(&self) -> Result<Vec<(PathBuf, u64)>> {
        let prefix = (!self.url.key.is_empty()).then_some(&self.path);
        let metas: Vec<object_store::ObjectMeta> =
            block_on(self.store.list(prefix).try_collect())?.map_err(|e| self.err("LIST", e))?;
        let mut out: Vec<(PathBuf, u64)> = metas
            .into_iter()
            .map(|m| {
                let url = ObjectUrl {
                    bucket: self.url.bucket.clone(),
                    key: m.location.to_string(),
                };
                (PathBuf::from(url.to_url()), m.size)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Write a small object in one PUT.
    pub fn put(&self, bytes: Vec<u8>) -> Result<()> {
        block_on(self.store.put(&self.path, PutPayload::from(bytes)))?
            .map(|_| ())
            .map_err(|e| self.err("PUT", e))
    }

    /// Upload a local file as a multipart upload ([`MULTIPART_CHUNK`] parts, several in
    /// flight). Any failure aborts the upload, so no orphaned parts are left behind; the
    /// object appears only when the upload completes.
    pub fn upload_file(&self, local: &Path) -> Result<u64> {
        use std::io::Read;
        let mut file = std::fs::File::open(local).map_err(|e| StorageError::io(local, e))?;
        block_on(async {
            let upload = self
                .store
                .put_multipart(&self.path)
                .await
                .map_err(|e| self.err("CreateMultipartUpload", e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
            let mut buf = vec![0u8; MULTIPART_CHUNK];
            let mut total = 0u64;
            let outcome: Result<()> = async {
                loop {
                    writer
                        .wait_for_capacity(MULTIPART_CONCURRENCY)
                        .await
                        .map_err(|e| self.err("UploadPart", e))?;
                    // Reading a local file while parts upload: short blocking reads are fine
                    // on this small runtime.
                    let n = file
                        .read(&mut buf)
                        .map_err(|e| StorageError::io(local, e))?;
                    if n == 0 {
                        return Ok(());
                    }
                    total += n as u64;
                    writer.put(Bytes::copy_from_slice(&buf[..n]));
                }
            }
            .await;
            match outcome {
                Ok(()) => {
                    writer
                        .finish()
                        .await
                        .map_err(|e| self.err("CompleteMultipartUpload", e))?;
                    Ok(total)
                }
                Err(e) => {
                    // Best effort: the original error is what the caller needs to see.
                    let _ = writer.abort().await;
                    Err(e)
                }
            }
        })?
    }

    /// Delete the object (deleting a missing object is not an error).
    pub fn delete(&self) -> Result<()> {
        match block_on(self.store.delete(&self.path))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("DELETE", e)),
        }
    }

    /// Delete every object under `<key>/`.
    pub fn delete_prefix(&self) -> Result<usize> {
        let objects = self.list()?;
        for (p, _) in &objects {
            Remote::open(p)?.delete()?;
        }
        Ok(objects.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> ObjectUrl {
        ObjectUrl {
            bucket: "lake".into(),
            key: "eng/x.parquet".into(),
        }
    }

    fn source(text: &str) -> Box<dyn std::error::Error + Send + Sync> {
        text.to_string().into()
    }

    #[test]
    fn permanent_errors_get_their_codes_and_the_url() {
        let cases = [
            (
                object_store::Error::NotFound {
                    path: "eng".into(),
                    source: source("<Code>NoSuchBucket</Code>"),
                },
                "OBJECT_STORE_BUCKET_MISSING",
            ),
            (
                object_store::Error::NotFound {
                    path: "eng".into(),
                    source: source("<Code>NoSuchKey</Code>"),
                },
                "OBJECT_NOT_FOUND",
            ),
            (
                object_store::Error::PermissionDenied {
                    path: "eng".into(),
                    source: source("403"),
                },
                "OBJECT_STORE_ACCESS_DENIED",
            ),
            (
                object_store::Error::Generic {
                    store: "S3",
                    source: source("Client error with status 403 Forbidden: InvalidAccessKeyId"),
                },
                "OBJECT_STORE_ACCESS_DENIED",
            ),
            (
                object_store::Error::Generic {
                    store: "S3",
                    source: source("error sending request after 15 retries"),
                },
                "OBJECT_STORE_ERROR",
            ),
        ];
        for (e, code) in cases {
            let mapped = map_error("GET", &url(), e);
            assert_eq!(mapped.code(), code, "{mapped}");
            assert!(mapped.to_string().contains("s3://lake"), "{mapped}");
        }
    }
}
