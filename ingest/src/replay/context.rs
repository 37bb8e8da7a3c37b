//! Where a replay's outputs and pins come from.
//!
//! - Outputs: the ids given, or every output with a view directory (catalog order).
//! - Pins: `manifest_fingerprint`, `parameter_hash`, `seed`, `scenario_id` from each row;
//!   `platform_run_id` from the run layout (`PLATFORM_RUN_ID`, `ACTIVE_RUN_ID`, or new);
//!   `run_id` from the option, else `run_id` in the engine's `run_receipt.json`, else the
//!   engine run's `pack_key`; `scenario_run_id` from the option, else the first 32 hex of
//!   sha256 of `platform_run_id|run_id|scenario_id`. All defaults are deterministic, so a
//!   resumed replay rebuilds byte-identical envelopes and the gate recognises its duplicates.

use std::path::Path;

use sluice_storage::layout::EngineRunReceipt;
use sluice_storage::outputs::OUTPUTS;
use sluice_storage::run::RunLayout;
use sluice_storage::view::{sha256_hex, view_dir};
use sluice_stream::ReplayError;

use super::ReplayOptions;
use crate::envelope::RunContext;
use crate::error::Result;

/// The ids to replay: `opts.outputs`, or every output with a view under `view_root`.
pub fn output_ids(opts: &ReplayOptions, view_root: &Path) -> Result<Vec<String>> {
    if !opts.outputs.is_empty() {
        return Ok(opts.outputs.clone());
    }
    let all: Vec<String> = OUTPUTS
        .iter()
        .filter(|o| view_dir(view_root, o.id).is_dir())
        .map(|o| o.id.to_string())
        .collect();
    if all.is_empty() {
        return Err(ReplayError::ViewMissing {
            output_id: "any output".into(),
            dir: view_root.to_path_buf(),
        }
        .into());
    }
    Ok(all)
}

/// The run context (see the module doc for the defaults).
pub fn run_context(
    opts: &ReplayOptions,
    layout: &RunLayout,
    pack: &str,
    scenario_id: &str,
) -> Result<RunContext> {
    let run_id = match &opts.run_id {
        Some(r) => r.clone(),
        None => {
            let path = opts.engine_root.join(EngineRunReceipt::FILE_NAME);
            let raw: serde_json::Value = sluice_storage::publish::read_json(&path)?;
            raw.get("run_id")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map_or_else(|| pack.to_string(), String::from)
        }
    };
    let scenario_run_id = opts.scenario_run_id.clone().unwrap_or_else(|| {
        sha256_hex(format!("{}|{run_id}|{scenario_id}", layout.platform_run_id).as_bytes())[..32]
            .to_string()
    });
    Ok(RunContext {
        platform_run_id: layout.platform_run_id.clone(),
        run_id,
        scenario_run_id,
        producer: opts.producer.clone(),
    })
}
