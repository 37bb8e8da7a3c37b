//! `ig/gate.json` (whose run this gate state is) and `ig/index/MANIFEST.json` (the commit
//! point of the indexes), both JSON, both published atomically.
//!
//! ```json
//! {"format":"sluice-ig-manifest","version":2,
//!  "covered_seq":1200000,            // receipts below this seq are all in the runs
//!  "quarantine_durable":4096,        // quarantine.log bytes fsynced at that point
//!  "dedupe_runs":["run-00000003.six","run-00000007.six"],
//!  "receipt_id_runs":["run-00000002.six"],
//!  "watermarks":{"fp.bus.traffic.fraud.v1":{"0":301234,"1":299876}}}
//! ```
//!
//! `watermarks` are, per topic and partition, the bus offset after the last ADMIT receipt
//! covered: the place reconciliation starts reading the bus from (after the receipt log's
//! tail has moved them further on open).
//!
//! Manifest version 2 (session 17): the dedupe runs are keyed by the index key
//! ([`crate::ids::index_key`]), not the contract's dedupe key; a version-1 index is refused
//! (`IG_UNSUPPORTED_VERSION`), never read with the wrong keys.

use std::collections::BTreeMap;
use std::path::Path;

use sluice_storage::publish::{read_json, write_json_atomic};

use crate::error::{IngestError, Result};

pub const MANIFEST_FORMAT: &str = "sluice-ig-manifest";
pub const IDENTITY_FORMAT: &str = "sluice-ig";
/// Version of `gate.json` and `start.json`.
pub const VERSION: u32 = 1;
/// Version of `MANIFEST.json` (2: dedupe runs keyed by [`crate::ids::index_key`]).
pub const MANIFEST_VERSION: u32 = 2;

/// Per topic, per partition: the next bus offset not yet covered by a receipt.
pub type Watermarks = BTreeMap<String, BTreeMap<u32, u64>>;

/// `ig/index/MANIFEST.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub covered_seq: u64,
    pub quarantine_durable: u64,
    pub dedupe_runs: Vec<String>,
    pub receipt_id_runs: Vec<String>,
    pub watermarks: Watermarks,
}

impl Manifest {
    pub fn empty() -> Self {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            ..Default::default()
        }
    }

    /// Read the manifest; an absent one is an empty gate.
    pub fn read(path: &Path) -> Result<Manifest> {
        if !path.exists() {
            return Ok(Manifest::empty());
        }
        let v: serde_json::Value = read_json(path)?;
        check_version(path, &v, MANIFEST_FORMAT, MANIFEST_VERSION)?;
        serde_json::from_value(v).map_err(|e| IngestError::corrupt(path, 0, e.to_string()))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        Ok(write_json_atomic(path, self)?)
    }
}

pub(super) fn check_version(
    path: &Path,
    v: &serde_json::Value,
    format: &str,
    expected: u32,
) -> Result<()> {
    if v.get("format").and_then(|f| f.as_str()) != Some(format) {
        return Err(IngestError::corrupt(
            path,
            0,
            format!("format is not {format:?}"),
        ));
    }
    let version = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0);
    if version != u64::from(expected) {
        return Err(IngestError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: expected.into(),
        });
    }
    Ok(())
}

/// `ig/gate.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub format: String,
    pub version: u32,
    pub platform_run_id: String,
}

impl Identity {
    /// Read it, or create it for `platform_run_id` (when `create`); refuse another run's.
    pub fn check_or_create(
        dir: &Path,
        platform_run_id: Option<&str>,
        create: bool,
    ) -> Result<Identity> {
        let path = dir.join("gate.json");
        if !path.exists() {
            let (Some(id), true) = (platform_run_id, create) else {
                return Err(IngestError::NotFound {
                    dir: dir.to_path_buf(),
                });
            };
            let ident = Identity {
                format: IDENTITY_FORMAT.into(),
                version: VERSION,
                platform_run_id: id.to_string(),
            };
            write_json_atomic(&path, &ident)?;
            return Ok(ident);
        }
        let v: serde_json::Value = read_json(&path)?;
        check_version(&path, &v, IDENTITY_FORMAT, VERSION)?;
        let ident: Identity =
            serde_json::from_value(v).map_err(|e| IngestError::corrupt(&path, 0, e.to_string()))?;
        if let Some(expected) = platform_run_id {
            if ident.platform_run_id != expected {
                return Err(IngestError::RunMismatch {
                    dir: dir.to_path_buf(),
                    found: ident.platform_run_id,
                    expected: expected.to_string(),
                });
            }
        }
        Ok(ident)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_index_keyed_by_the_contracts_dedupe_key_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("MANIFEST.json");
        let mut m = Manifest::empty();
        m.covered_seq = 7;
        m.write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), m);
        m.version = 1;
        m.write(&path).unwrap();
        let err = Manifest::read(&path).unwrap_err();
        assert_eq!(err.code(), "IG_UNSUPPORTED_VERSION", "{err:?}");
    }
}
