//! The realistic engine-output generator behind `sluice gen`.
//!
//! It writes an engine run root the way the platform's data engine does: each streamed
//! output as hive-partitioned `part-NNNNN.parquet` files with the contract's exact schema
//! (`outputs::OUTPUTS`), and `run_receipt.json` naming the pins. The data has the traits
//! that make the real outputs hard to stream: rows in primary-key order so time is unsorted
//! within and across files, 10 ms time quanta so many rows tie exactly across files, nulls
//! in the nullable columns, several zstd row groups per file with statistics.
//!
//! It is not a model of fraud, and not the engine: values are plausible, not calibrated.
//!
//! How a run flows:
//!
//! 1. [`plan`]: validate the [`GenConfig`], derive the pins from the seed, plan the
//!    [`world`] (flows until their events make exactly `rows` traffic rows; merchants over
//!    those arrivals), cut each output into files (traffic: `files`; context outputs:
//!    proportionally fewer) and pick row-group sizes.
//! 2. [`execute`]: refuse if the outputs exist (`GEN_OUTPUT_EXISTS`) unless `force`, which
//!    removes them first; then write every (output, file) pair in parallel with rayon, each
//!    through an atomic temp-and-rename; last, `run_receipt.json`, atomically.
//!
//! ```text
//!   GenConfig --plan--> GenPlan --execute--> rayon over (output, file)
//!                         |                      |  BatchSource (traffic / context / 5B)
//!                         world (keyed PRNG)     |  -> ArrowWriter -> AtomicFile
//!                                                v
//!                    <out>/<partition_dir>/part-NNNNN.parquet ...  then run_receipt.json
//! ```
//!
//! Determinism: every value is drawn from a PRNG stream keyed by the seed and the entity it
//! describes (`rng`), so the same configuration writes byte-identical files whatever the
//! thread count or scheduling.

pub mod arrival_events;
pub mod clock;
pub mod columns;
pub mod context;
pub mod plan;
pub mod rng;
pub mod target;
pub mod traffic;
pub mod world;
pub mod writer;

use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;

use crate::error::Result;
use crate::layout::EngineRunReceipt;
use crate::outputs::Pins;
use columns::{BatchSource, Const, ConstColumns, MAX_BATCH_ROWS};
pub use plan::{emitted_schema, pins_for_seed, plan, GenPlan, OutputPlan, SCENARIO_ID};
use plan::{file_path, Kind};
use writer::WrittenFile;

/// The outputs generated when none are named: traffic and the three context outputs the
/// platform streams beside it.
pub const DEFAULT_OUTPUTS: [&str; 4] = [
    "s3_event_stream_with_fraud_6B",
    "arrival_events_5B",
    "s1_arrival_entities_6B",
    "s3_flow_anchor_with_fraud_6B",
];

/// What to generate. `GenConfig::new(out)` gives the defaults of `sluice gen`.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// The engine run root to write.
    pub out: PathBuf,
    /// Traffic rows (exact). Context outputs get about one row per flow (rows / 3.8).
    pub rows: u64,
    /// Files of each traffic output; context outputs get proportionally fewer (>= 1).
    /// Clamped to the number of flows.
    pub files: usize,
    /// The seed: the `seed` pin, and the root of every random draw.
    pub seed: u64,
    /// Output ids to write (see [`DEFAULT_OUTPUTS`]; the baseline variants
    /// `s2_event_stream_baseline_6B` and `s2_flow_anchor_baseline_6B` are supported too).
    pub outputs: Vec<String>,
    /// Rows per row group; `None` picks four row groups for the largest file of each output.
    pub row_group_rows: Option<usize>,
    /// Replace existing generated data (the outputs' dataset directories and the receipt).
    pub force: bool,
}

impl GenConfig {
    /// The defaults, writing under `out`.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        GenConfig {
            out: out.into(),
            ..GenConfig::default()
        }
    }
}

impl Default for GenConfig {
    /// 1M traffic rows in 8 files, seed 42, the default outputs; `out` is empty and must be
    /// set.
    fn default() -> Self {
        GenConfig {
            out: PathBuf::new(),
            rows: 1_000_000,
            files: 8,
            seed: 42,
            outputs: DEFAULT_OUTPUTS.iter().map(|s| s.to_string()).collect(),
            row_group_rows: None,
            force: false,
        }
    }
}

/// What one output got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputSummary {
    pub output_id: String,
    /// Relative to the run root.
    pub partition_dir: String,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub row_groups: u64,
    pub row_group_rows: u64,
}

/// What a generation wrote (the `--json` summary of `sluice gen`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenSummary {
    pub out: PathBuf,
    pub pins: Pins,
    pub outputs: Vec<OutputSummary>,
    pub total_rows: u64,
    pub total_bytes: u64,
    pub elapsed_secs: f64,
    pub rows_per_sec: f64,
}

/// Plan and write a run; `progress` is called with row counts as batches are written
/// (from several threads; the counts add up to `plan(cfg)?.total_rows()`).
pub fn generate(cfg: &GenConfig, progress: &(dyn Fn(u64) + Sync)) -> Result<GenSummary> {
    execute(&plan(cfg)?, progress)
}

/// Write a planned run (see the module doc for the steps).
pub fn execute(plan: &GenPlan, progress: &(dyn Fn(u64) + Sync)) -> Result<GenSummary> {
    let started = Instant::now();
    target::prepare(plan, plan.cfg.force)?;
    let consts: Vec<ConstColumns> = plan.outputs.iter().map(|o| constants(plan, o)).collect();
    // Largest files first: an idle rayon thread steals from the tail, so the stragglers
    // at the end are the small context files, not a traffic file.
    let mut jobs: Vec<(usize, usize)> = plan
        .outputs
        .iter()
        .enumerate()
        .flat_map(|(o, out)| (0..out.files()).map(move |k| (o, k)))
        .collect();
    jobs.sort_by_key(|&(o, _)| {
        std::cmp::Reverse(plan.outputs[o].rows / plan.outputs[o].files() as u64)
    });
    let written: Vec<((usize, usize), WrittenFile)> = jobs
        .par_iter()
        .map(|&(o, k)| write_one(plan, o, k, &consts[o], progress).map(|w| ((o, k), w)))
        .collect::<Result<_>>()?;

    let receipt = EngineRunReceipt {
        seed: plan.pins.seed,
        manifest_fingerprint: plan.pins.manifest_fingerprint.clone(),
        parameter_hash: plan.pins.parameter_hash.clone(),
        scenario_id: plan.pins.scenario_id.clone(),
        outputs: plan.outputs.iter().map(|o| o.spec.id.to_string()).collect(),
        producer: format!("sluice gen {}", env!("CARGO_PKG_VERSION")),
    };
    crate::publish::write_json_atomic(&plan.out().join(EngineRunReceipt::FILE_NAME), &receipt)?;

    let outputs: Vec<OutputSummary> = plan
        .outputs
        .iter()
        .enumerate()
        .map(|(o, out)| {
            let mine = written
                .iter()
                .filter(|((oo, _), _)| *oo == o)
                .map(|(_, w)| w);
            let (rows, bytes, row_groups) = mine.fold((0, 0, 0), |acc, w| {
                (acc.0 + w.rows, acc.1 + w.bytes, acc.2 + w.row_groups)
            });
            OutputSummary {
                output_id: out.spec.id.to_string(),
                partition_dir: out.partition_dir.clone(),
                rows,
                files: out.files() as u64,
                bytes,
                row_groups,
                row_group_rows: out.row_group_rows as u64,
            }
        })
        .collect();
    let total_rows = outputs.iter().map(|o| o.rows).sum();
    let elapsed_secs = started.elapsed().as_secs_f64();
    Ok(GenSummary {
        out: plan.out().to_path_buf(),
        pins: plan.pins.clone(),
        total_bytes: outputs.iter().map(|o| o.bytes).sum(),
        outputs,
        total_rows,
        elapsed_secs,
        rows_per_sec: total_rows as f64 / elapsed_secs.max(1e-9),
    })
}

/// The per-run constant columns of an output: the pins (and 5B's routing hash).
fn constants(plan: &GenPlan, output: &OutputPlan) -> ConstColumns {
    let p = &plan.pins;
    let mut values = vec![
        ("seed", Const::Int(p.seed)),
        ("manifest_fingerprint", Const::Str(&p.manifest_fingerprint)),
        ("parameter_hash", Const::Str(&p.parameter_hash)),
        ("scenario_id", Const::Str(&p.scenario_id)),
    ];
    if output.kind == Kind::ArrivalEvents {
        values.push((
            "routing_universe_hash",
            Const::Str(&plan.routing_universe_hash),
        ));
    }
    ConstColumns::new(MAX_BATCH_ROWS + world::MAX_EVENTS, &values)
}

fn write_one(
    plan: &GenPlan,
    o: usize,
    k: usize,
    consts: &ConstColumns,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WrittenFile> {
    let output = &plan.outputs[o];
    let (lo, hi) = output.ranges[k];
    let world = &plan.world;
    let schema = output.schema.clone();
    let mut source: Box<dyn BatchSource + '_> = match output.kind {
        Kind::EventStream { fraud } => Box::new(traffic::EventStreamSource::new(
            world, lo, hi, schema, consts, fraud,
        )),
        Kind::Context(kind) => Box::new(context::ContextSource::new(
            world, lo, hi, schema, consts, kind,
        )),
        Kind::ArrivalEvents => Box::new(arrival_events::ArrivalEventSource::new(
            world, lo, hi, schema, consts,
        )),
    };
    let path = file_path(plan.out(), output, k);
    writer::write_file(
        &path,
        output.schema.clone(),
        output.row_group_rows,
        source.as_mut(),
        progress,
    )
}

#[cfg(test)]
mod tests;
