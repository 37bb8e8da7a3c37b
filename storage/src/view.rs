//! The stream-view contract (`shared/CONTEXT.md`, "Stream view contract"): where a view
//! lives, its receipt and manifest, and how its id is computed. The sort writes these; replay
//! and parity read them, so the types live here at the bottom of the crate graph.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Receipt file name, written after validation.
pub const RECEIPT_FILE: &str = "_stream_sort_receipt.json";
/// Manifest file name, written after the receipt.
pub const MANIFEST_FILE: &str = "_stream_view_manifest.json";
/// The only partition granularity sluice writes.
pub const GRANULARITY_FLAT: &str = "flat";

/// `<engine_root>/stream_view/ts_utc`: the default view root.
pub fn default_view_root(engine_root: &Path) -> PathBuf {
    engine_root.join("stream_view").join("ts_utc")
}

/// `<view_root>/output_id=<id>`: one output's view directory.
pub fn view_dir(view_root: &Path, output_id: &str) -> PathBuf {
    view_root.join(format!("output_id={output_id}"))
}

/// `part-NNNNNN.parquet`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:06}.parquet")
}

/// Lowercase hex of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Lowercase hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Canonical JSON: object keys sorted, no whitespace (serde_json's compact form of a
/// `BTreeMap`-backed value).
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(value).to_string()
}

/// `stream_view_id`: sha256 of canonical JSON over engine root, scenario, output id, sort
/// keys and granularity.
pub fn stream_view_id(
    engine_root: &str,
    scenario_id: &str,
    output_id: &str,
    sort_keys: &[String],
    granularity: &str,
) -> String {
    let v = serde_json::json!({
        "engine_run_root": engine_root,
        "scenario_id": scenario_id,
        "output_id": output_id,
        "sort_keys": sort_keys,
        "partition_granularity": granularity,
    });
    sha256_hex(canonical_json(&v).as_bytes())
}

/// `source_locator_digest`: sha256 of the newline-joined sorted source paths.
pub fn source_locator_digest(sorted_paths: &[String]) -> String {
    sha256_hex(sorted_paths.join("\n").as_bytes())
}

/// `source_fingerprint`: sha256 over one line `path\tbytes\tmtime_ns\n` per source file, in
/// the given (sorted) order. The locator digest names the files; this notices when the same
/// paths now hold other bytes (data regenerated in place), so a stale view is not skipped.
pub fn source_fingerprint(sorted_paths: &[String]) -> crate::Result<String> {
    let mut h = Sha256::new();
    // S3: each object's size and last-modified time, from HEADs sent concurrently.
    let paths: Vec<&Path> = sorted_paths.iter().map(Path::new).collect();
    let metas = crate::object::fs::len_and_mtime_ns_many(&paths)?;
    for (p, (len, mtime_ns)) in sorted_paths.iter().zip(metas) {
        h.update(format!("{p}\t{len}\t{mtime_ns}\n").as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// Row count, order-independent row-hash sums and time range of one side (source or view).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SideStats {
    pub row_count: u64,
    /// Wrapping sum of the 128-bit row hashes, lowercase hex (32 digits).
    pub row_hash_sum: String,
    /// XOR of the 128-bit row hashes, lowercase hex (32 digits).
    pub row_hash_xor: String,
    pub min_ts_utc: Option<String>,
    pub max_ts_utc: Option<String>,
}

/// One part of a view, as listed in the receipt and manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartInfo {
    pub name: String,
    pub row_count: u64,
    pub bytes: u64,
    pub blake3: String,
    pub min_ts_utc: Option<String>,
    pub max_ts_utc: Option<String>,
}

/// `_stream_sort_receipt.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamSortReceipt {
    pub stream_view_id: String,
    pub engine_run_root: String,
    pub stream_view_root: String,
    pub output_id: String,
    pub scenario_id: String,
    pub sort_keys: Vec<String>,
    pub partition_granularity: String,
    pub source_locator_digest: String,
    /// See [`source_fingerprint`]. Empty in receipts written by other tools, which carry
    /// only the locator digest; then only the locator is compared.
    #[serde(default)]
    pub source_fingerprint: String,
    pub source_paths: Vec<String>,
    pub raw_stats: SideStats,
    pub sorted_stats: SideStats,
    pub parts: Vec<PartInfo>,
    pub created_utc: String,
    pub status: String,
    /// Settings that shape the bytes (part size, row-group size, zstd level), informational.
    #[serde(default)]
    pub writer: serde_json::Value,
}

/// `_stream_view_manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamViewManifest {
    pub stream_view_id: String,
    pub output_id: String,
    pub row_count: u64,
    pub parts: Vec<PartInfo>,
    pub created_utc: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_id_is_sha256_of_canonical_json() {
        let keys = vec!["ts_utc".to_string()];
        let id = stream_view_id("/e", "s", "o", &keys, "flat");
        let expected = sha256_hex(
            br#"{"engine_run_root":"/e","output_id":"o","partition_granularity":"flat","scenario_id":"s","sort_keys":["ts_utc"]}"#,
        );
        assert_eq!(id, expected);
    }

    #[test]
    fn locator_digest_joins_with_newlines() {
        let d = source_locator_digest(&["a".into(), "b".into()]);
        assert_eq!(d, sha256_hex(b"a\nb"));
    }

    #[test]
    fn fingerprint_changes_when_a_file_is_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.parquet");
        std::fs::write(&f, b"one").unwrap();
        let paths = vec![f.display().to_string()];
        let first = source_fingerprint(&paths).unwrap();
        assert_eq!(first, source_fingerprint(&paths).unwrap());
        std::fs::write(&f, b"other bytes").unwrap();
        assert_ne!(first, source_fingerprint(&paths).unwrap());
        let e = source_fingerprint(&["/no/such/file".to_string()]).unwrap_err();
        assert_eq!(e.code(), "IO_ERROR");
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(part_name(7), "part-000007.parquet");
        assert_eq!(
            view_dir(&default_view_root(Path::new("/e")), "x"),
            PathBuf::from("/e/stream_view/ts_utc/output_id=x")
        );
    }
}
