//! The replay session is a library call, [`sluice_ingest::replay::run`]; this module only
//! re-exports it for the commands that start one (`replay`, `demo`).

pub use sluice_ingest::replay::{Live, OutputSummary, ReplayOptions, ReplaySummary};

/// Run a replay session (see [`sluice_ingest::replay`]).
pub fn run(opts: &ReplayOptions, tick: &(dyn Fn(&Live) + Sync)) -> anyhow::Result<ReplaySummary> {
    Ok(sluice_ingest::replay::run(opts, tick)?)
}
