//! What to sort ([`SortSource`]): an engine output found by its hive template, or any
//! parquet dataset named by a glob; plus the identity fields its receipt records. Roots and
//! globs may be local paths or `s3://bucket/prefix` URLs (`docs/s3.md`): discovery goes
//! through `sluice_storage`, which lists S3 the same way it walks directories.

use std::path::{Path, PathBuf};

use sluice_storage::layout::{discover_output, expand_glob, EngineRunReceipt};
use sluice_storage::outputs::OUTPUTS;
use sluice_storage::view::default_view_root;

use crate::error::{Result, SortError};

/// The files of one output and where its view goes.
#[derive(Debug, Clone)]
pub struct SortSource {
    /// The view's `output_id`.
    pub output_id: String,
    /// Source files in bytewise path order (the tie-break order).
    pub files: Vec<PathBuf>,
    /// `<view_root>/output_id=<id>` is the view directory.
    pub view_root: PathBuf,
    /// The engine run root (`engine_run_root` of the receipt; empty for a bare glob).
    pub engine_root: Option<PathBuf>,
    /// `scenario_id` from the engine root's `run_receipt.json` (empty if there is none).
    pub scenario_id: String,
}

/// Canonical spelling of a root (local: `canonicalize`; S3: the normalised URL).
fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(sluice_storage::object::fs::canonical_root(path)?)
}

fn scenario_of(engine_root: Option<&Path>) -> String {
    engine_root
        .and_then(|r| EngineRunReceipt::read(r).ok())
        .map(|r| r.scenario_id)
        .unwrap_or_default()
}

impl SortSource {
    /// Output `output_id` of the engine run at `engine_root` (canonicalised, so receipts do
    /// not depend on how the root was spelled). The view root defaults to
    /// `<engine_root>/stream_view/ts_utc`.
    pub fn engine_output(
        engine_root: &Path,
        output_id: &str,
        view_root: Option<&Path>,
    ) -> Result<Self> {
        let root = absolute(engine_root)?;
        let files = discover_output(&root, output_id)?;
        Ok(SortSource {
            output_id: output_id.to_string(),
            files,
            view_root: view_root
                .map(Path::to_path_buf)
                .unwrap_or_else(|| default_view_root(&root)),
            scenario_id: scenario_of(Some(&root)),
            engine_root: Some(root),
        })
    }

    /// Every catalog output that has files under `engine_root`, in catalog order.
    pub fn all_outputs(engine_root: &Path) -> Result<Vec<String>> {
        let root = absolute(engine_root)?;
        Ok(OUTPUTS
            .iter()
            .filter(|o| discover_output(&root, o.id).is_ok())
            .map(|o| o.id.to_string())
            .collect())
    }

    /// Any parquet dataset: the files matching `pattern`, viewed as `output_id` under
    /// `view_root`.
    pub fn glob(
        pattern: &str,
        output_id: &str,
        view_root: &Path,
        engine_root: Option<&Path>,
    ) -> Result<Self> {
        if output_id.is_empty() || output_id.contains('/') {
            return Err(SortError::Config(format!(
                "output id {output_id:?} must be a non-empty name without '/'"
            )));
        }
        let files = expand_glob(pattern)?;
        let engine_root = engine_root.map(absolute).transpose()?;
        Ok(SortSource {
            output_id: output_id.to_string(),
            files,
            view_root: view_root.to_path_buf(),
            scenario_id: scenario_of(engine_root.as_deref()),
            engine_root,
        })
    }

    /// The paths as the receipt lists them (and as `source_locator_digest` hashes them).
    pub fn path_strings(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    /// `engine_run_root` as the receipt records it.
    pub fn engine_root_string(&self) -> String {
        self.engine_root
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
