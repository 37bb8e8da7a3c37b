//! What a replay session reports: per output and in total, plus live numbers for a
//! progress display.

use std::path::PathBuf;

use sluice_stream::replay::OutputReport;
use sluice_stream::view::StreamView;

use crate::gate::record::BatchCounts;
use crate::gate::{GateStats, OpenReport};
use crate::reason::ReasonCode;

/// Per output, what happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputSummary {
    pub output_id: String,
    pub topic: String,
    pub partitions: u32,
    pub view_rows: u64,
    /// Where this session started: part index and row.
    pub start_part: u32,
    pub start_row: u64,
    pub resumed: bool,
    pub emitted: u64,
    pub admitted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub by_reason: serde_json::Map<String, serde_json::Value>,
    pub row_groups_read: u64,
    pub row_groups_skipped: u64,
}

impl OutputSummary {
    /// One output's line from its view, reader report and gate counts.
    pub fn new(
        view: &StreamView,
        reader: &OutputReport,
        counts: &BatchCounts,
        partitions: u32,
        start: (u32, u64, bool),
    ) -> Self {
        let mut by_reason = serde_json::Map::new();
        for r in ReasonCode::ALL {
            let n = counts.by_reason[r as usize];
            if n > 0 {
                by_reason.insert(r.as_str().into(), n.into());
            }
        }
        OutputSummary {
            output_id: view.output.id.to_string(),
            topic: view.output.topic.to_string(),
            partitions,
            view_rows: view.rows(),
            start_part: start.0,
            start_row: start.1,
            resumed: start.2,
            emitted: reader.emitted,
            admitted: counts.admitted,
            duplicates: counts.duplicates,
            quarantined: counts.quarantined,
            by_reason,
            row_groups_read: reader.reader.row_groups_read,
            row_groups_skipped: reader.reader.row_groups_skipped,
        }
    }
}

/// What a session did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplaySummary {
    pub platform_run_id: String,
    pub run_root: PathBuf,
    pub engine_root: PathBuf,
    /// Where admitted events went (`file://…`, `kafka://…`); empty with `decode_only`.
    pub bus: String,
    pub pack_key: String,
    pub run_id: String,
    pub scenario_run_id: String,
    pub outputs: Vec<OutputSummary>,
    pub events: u64,
    pub admitted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub checkpoints: u64,
    pub gate_open: OpenReport,
    pub gate: Option<GateStats>,
    /// Peak resident memory of this process (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Live numbers for a progress display.
#[derive(Debug, Clone)]
pub struct Live {
    pub total: u64,
    /// (output id, emitted, lag behind the scenario clock in seconds if paced)
    pub outputs: Vec<(String, u64, Option<f64>)>,
}
