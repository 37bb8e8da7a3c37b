//! `sluice ingest …`: read-only questions to a run's gate state (`<run_root>/ig`):
//! `lookup` (the receipts of one event and its bus position, through the indexes),
//! `stats`, and `verify` (a full audit of receipts against the bus: the run's file bus, or
//! the bus `--bus URL` names, as `sluice replay --bus` does).

use std::path::{Path, PathBuf};
use std::time::Instant;

use sluice_ingest::audit::audit;
use sluice_ingest::bus_sink::FileBusSink;
use sluice_ingest::bus_target::{open_sink, BusTarget};
use sluice_ingest::lookup::Lookup;
use sluice_ingest::sink::Sink;
use sluice_ingest::IngestError;
use sluice_storage::run::{RunIdSource, RunLayout};

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Subcommand)]
pub enum IngestCommand {
    /// The receipts of one event (and its bus position), answered from the indexes.
    Lookup(LookupArgs),
    /// Counts of the gate state: receipts, runs, contexts.
    Stats(RunRoot),
    /// Audit receipts against the bus: one ADMIT per record, no event twice, times in order.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["event_id", "receipt_id"])))]
pub struct LookupArgs {
    /// The run root: runs/<platform>/<platform_run_id>.
    #[arg(long)]
    pub run_root: PathBuf,
    /// An event id (64 hex).
    #[arg(long)]
    pub event_id: Option<String>,
    /// The bus the run wrote to, as given to `sluice replay --bus` (an ADMIT receipt's
    /// payload hash is read from its bus record) [default: the file bus, <run_root>/eb].
    #[arg(long)]
    pub bus: Option<String>,
    /// A receipt id (32 hex) of a DUPLICATE or QUARANTINE receipt.
    #[arg(long)]
    pub receipt_id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunRoot {
    /// The run root: runs/<platform>/<platform_run_id>.
    #[arg(long)]
    pub run_root: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The run root: runs/<platform>/<platform_run_id>.
    #[arg(long)]
    pub run_root: PathBuf,
    /// The bus the run wrote to, as given to `sluice replay --bus`: file:DIR or
    /// kafka://host:port[,host:port][?options] [default: the file bus, <run_root>/eb].
    #[arg(long)]
    pub bus: Option<String>,
}

pub fn run(cmd: IngestCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        IngestCommand::Lookup(a) => lookup(a, ctx),
        IngestCommand::Stats(a) => {
            let l = Lookup::open(&a.run_root.join("ig"))?;
            let s = l.summary()?;
            ctx.emit(&s, || stats_text(&s, &a.run_root));
            Ok(())
        }
        IngestCommand::Verify(a) => verify(a, ctx),
    }
}

/// `ingest stats` for people: one line per quantity, counts with separators.
fn stats_text(s: &serde_json::Value, run_root: &std::path::Path) -> String {
    let n = |k: &str| indicatif::HumanCount(s[k].as_u64().unwrap_or(0)).to_string();
    [
        format!(
            "gate state of run {} ({})",
            s["platform_run_id"].as_str().unwrap_or("?"),
            run_root.join("ig").display()
        ),
        format!(
            "  receipts      {} (the indexes cover the first {})",
            n("receipts"),
            n("covered_seq")
        ),
        format!(
            "  dedupe index  {} keys in {} run(s)",
            n("dedupe_entries"),
            n("dedupe_runs")
        ),
        format!("  contexts      {}", n("contexts")),
    ]
    .join("\n")
}

fn lookup(a: LookupArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let started = Instant::now();
    let l = Lookup::open(&a.run_root.join("ig"))?;
    let mut found = match (&a.event_id, &a.receipt_id) {
        (Some(id), _) => l.by_event_id(id)?,
        (None, Some(rid)) => l.by_receipt_id(rid)?,
        (None, None) => return Err(CliError::new("USAGE", "give --event-id or --receipt-id")),
    };
    if found.records.iter().any(|r| r.eb.is_some()) {
        // ADMIT and DUPLICATE receipts leave their payload hash to the bus record.
        let filled = read_back_sink(a.bus.as_deref(), &run_layout(&a.run_root)?)
            .and_then(|mut sink| Ok(l.payload_hashes_from_bus(&mut found, sink.as_mut())?));
        if let Err(e) = filled {
            tracing::warn!(
                "payload_hash left null: the bus record could not be read ({e:#}); give --bus"
            );
        }
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let summary = serde_json::json!({
        "receipts": found.receipts,
        "quarantine": found.quarantine,
        "elapsed_ms": elapsed_ms,
    });
    ctx.emit(&summary, || {
        let mut lines = Vec::new();
        for r in &found.receipts {
            let at = match r["eb_ref"].as_object() {
                Some(eb) => format!(
                    "{}/{}@{}",
                    eb["topic"].as_str().unwrap_or("?"),
                    eb["partition"],
                    eb["offset"]
                ),
                None => "not on the bus".into(),
            };
            lines.push(format!(
                "{} {} -> {at}",
                r["decision"].as_str().unwrap_or("?"),
                r["receipt_id"].as_str().unwrap_or("?")
            ));
            lines.push(serde_json::to_string_pretty(r).unwrap_or_default());
        }
        for q in &found.quarantine {
            lines.push(format!(
                "quarantine record: {}",
                serde_json::to_string_pretty(q).unwrap_or_default()
            ));
        }
        lines.push(format!("({elapsed_ms:.2} ms)"));
        lines.join("\n")
    });
    Ok(())
}

/// The run layout of a run root `runs/<platform>/<platform_run_id>` (`.` names the current
/// directory's run).
pub fn run_layout(run_root: &Path) -> anyhow::Result<RunLayout> {
    let run_root = match run_root.file_name() {
        Some(_) => run_root.to_path_buf(),
        None => std::path::absolute(run_root).unwrap_or_default(),
    };
    let id = run_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::new("INVALID_ARGUMENT", "--run-root has no last component"))?;
    Ok(RunLayout {
        platform_dir: run_root.parent().map(PathBuf::from).unwrap_or_default(),
        platform_run_id: id,
        source: RunIdSource::Env,
    })
}

/// The sink a run's events are read back from (shared with `sluice parity bus`): a file bus
/// opened read-only (an audit never writes), or the transport `open_sink` picks for any
/// other URL (Kafka reads from `ig/start.json` on).
pub fn read_back_sink(bus: Option<&str>, layout: &RunLayout) -> anyhow::Result<Box<dyn Sink>> {
    let target = match bus {
        Some(url) => BusTarget::parse(url)?,
        None => BusTarget::RunDefault,
    };
    let read_only = |dir: PathBuf| -> anyhow::Result<Box<dyn Sink>> {
        let sink = FileBusSink::open_read_only(&dir).map_err(|e| IngestError::Sink {
            topic: "(bus)".into(),
            source: e,
        })?;
        Ok(Box::new(sink))
    };
    match target {
        BusTarget::RunDefault => read_only(layout.eb()),
        BusTarget::File(dir) => read_only(dir),
        other => Ok(open_sink(&other, layout)?),
    }
}

fn verify(a: VerifyArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let mut sink = read_back_sink(a.bus.as_deref(), &run_layout(&a.run_root)?)?;
    let report = audit(&a.run_root.join("ig"), sink.as_mut())?;
    ctx.emit(&serde_json::to_value(&report)?, || {
        let mut lines = vec![format!(
            "{} bus records; receipts: {} ADMIT, {} DUPLICATE, {} QUARANTINE; {} problem(s)",
            report.bus_records,
            report.admit_receipts,
            report.duplicate_receipts,
            report.quarantine_receipts,
            report.problem_count
        )];
        lines.extend(report.problems.iter().cloned());
        lines.join("\n")
    });
    if !report.ok() {
        return Err(IngestError::AuditFailed {
            problems: report.problem_count,
            first: report.problems.first().cloned().unwrap_or_default(),
        }
        .into());
    }
    Ok(())
}
