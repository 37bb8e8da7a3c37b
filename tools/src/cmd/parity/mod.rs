//! `sluice parity {view,bus,legacy}`: offline proof that every stage agrees with its source
//! (`docs/parity.md`). Parsing and printing only: the checks are
//! `sluice_sort::parity` (views, legacy reference) and `sluice_ingest::parity` (the bus).
//!
//! Every subcommand prints a table of checks (or `--json`) and exits 0 only when all pass;
//! otherwise `error[PARITY_FAILED]` after the report.

pub mod bus;
pub mod legacy;
pub mod view;

use sluice_storage::check::Check;

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum ParityCommand {
    /// Check stream views against their source files, receipts and manifests.
    View(view::Args),
    /// Check a replay's bus and receipts against the stream views, by event id.
    Bus(bus::Args),
    /// Compare a view row by row with a reference parquet file (e.g. DuckDB's sort).
    Legacy(legacy::Args),
}

pub fn run(command: ParityCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match command {
        ParityCommand::View(a) => view::run(a, ctx),
        ParityCommand::Bus(a) => bus::run(a, ctx),
        ParityCommand::Legacy(a) => legacy::run(a, ctx),
    }
}

/// The check table of a report, failures with their place on a second line.
pub fn check_table(checks: &[Check]) -> String {
    let name_w = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(5);
    let exp_w = checks
        .iter()
        .map(|c| c.expected.len())
        .max()
        .unwrap_or(8)
        .clamp(8, 60);
    let mut out = format!(
        "  {:<4}  {:<name_w$}  {:<exp_w$}  {}\n",
        "", "check", "expected", "actual"
    );
    for c in checks {
        out.push_str(&format!(
            "  {:<4}  {:<name_w$}  {:<exp_w$}  {}\n",
            if c.ok { "pass" } else { "FAIL" },
            c.name,
            c.expected,
            c.actual
        ));
        if !c.ok && !c.place.is_empty() {
            out.push_str(&format!("        {:<name_w$}  at: {}\n", "", c.place));
        }
    }
    out
}

/// `PARITY_FAILED` naming how many checks failed, or `Ok`.
pub fn verdict(what: &str, failed: usize) -> anyhow::Result<()> {
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::new(
            "PARITY_FAILED",
            format!("{failed} parity check(s) of {what} failed (see the report above)"),
        ))
    }
}

/// Failed checks in a report value.
pub fn failed_checks(checks: &[Check]) -> usize {
    checks.iter().filter(|c| !c.ok).count()
}
