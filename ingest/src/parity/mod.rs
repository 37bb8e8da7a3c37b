//! Offline parity of a replay (`sluice parity bus`): proof, from files alone, that the bus
//! holds exactly the stream views' events, once each, where the platform's rules put them,
//! and that the gate's receipts say so.
//!
//! It is not `ingest verify` ([`crate::audit`]), which checks receipts against bus
//! positions in memory; this check starts from the views, joins three sources by event id
//! in bounded memory, and includes the receipt/position agreement in its verdicts.
//!
//! 1. Views ([`views`]): every row's `event_id` from its primary key and pins -> entries.
//! 2. Bus ([`bus`]): every record of the views' topics through [`Sink::read`] -> entries;
//!    topic, routing and per-partition time order checked on the way.
//! 3. Receipts (the gate's log through [`Lookup::scan_all`]): ADMIT / DUPLICATE with their
//!    bus position, QUARANTINE -> entries.
//! 4. Verdicts ([`verdict`]): bucket by bucket, sorted by id, each id's sightings judged.
//!
//! ```text
//!  views ──► event ids ─┐
//!  bus (Sink::read) ────┼─► Entry(id16, kind, place) ─► N bucket files ─► sort ─► verdicts
//!  ig/receipts.log ─────┘          32 bytes              (by id)          one bucket
//!                                                                         in memory
//! ```
//!
//! Memory: the bucket count is chosen so that one bucket's entries fit `memory` bytes
//! (20M events make about 60M entries, 1.9 GB of scratch, 8 buckets of 240 MB at the
//! default 256 MiB); scratch goes to a temp directory that is removed afterwards.
//!
//! Not checked: that a partial replay (`--max-events`, a time window, a crash) covered only
//! part of a view is indistinguishable from lost events, so those show as `missing`.

pub mod buckets;
pub mod bus;
pub mod verdict;
pub mod views;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use sluice_storage::check::Check;
use sluice_storage::outputs::OutputSpec;

use crate::error::{IngestError, Result};
use crate::lookup::Lookup;
use crate::reason::Decision;
use crate::receipts::{Contexts, ReceiptReader};
use crate::sink::Sink;
use buckets::{load_sorted, Buckets, Entry, Kind, ENTRY_BYTES};
use bus::{collect_topic, BusFindings, TopicCounts};
use verdict::{Names, Verdicts};
pub use views::{views_under, ViewInput};

/// A kind of problem: how often it was seen and the first place.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub count: u64,
    pub first: Option<String>,
}

impl Finding {
    /// Count one; describe it only if it is the first.
    pub fn add(&mut self, place: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(place());
        }
    }
}

/// A check that counts findings of one kind: passes at zero, names the first.
fn zero(name: &str, what: &str, f: &Finding) -> Check {
    Check::verdict(
        name,
        f.count == 0,
        format!("0 {what}"),
        format!("{} {what}", f.count),
        f.first.clone().unwrap_or_default(),
    )
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct BusParityOptions {
    /// `<run_root>/ig`: the gate's state.
    pub ig_dir: PathBuf,
    pub views: Vec<ViewInput>,
    /// Scratch directory parent (a fresh subdirectory is made and removed).
    pub temp_dir: PathBuf,
    /// Memory for one bucket of entries.
    pub memory: u64,
}

/// Per output: what the views hold and where it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputCounts {
    pub output_id: String,
    pub topic: String,
    pub view_rows: u64,
    pub admitted: u64,
    pub quarantined: u64,
    pub without_event_id: u64,
}

/// The result of a bus parity check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BusParity {
    pub outputs: Vec<OutputCounts>,
    pub topics: Vec<TopicCounts>,
    pub receipts: ReceiptCounts,
    pub buckets: usize,
    pub entries: u64,
    pub elapsed_s: f64,
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// Receipts seen, by decision.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReceiptCounts {
    pub admit: u64,
    pub duplicate: u64,
    pub quarantine: u64,
    /// QUARANTINE receipts without an event id (a null primary-key value).
    pub quarantine_without_event_id: u64,
}

/// Step 3: receipts of the checked outputs -> entries. The log is read record by record
/// with its contexts (what [`Lookup`] renders from), without rendering JSON per receipt.
fn collect_receipts(
    ig: &Path,
    outputs: &[&'static OutputSpec],
    topics: &[String],
    buckets: &mut Buckets,
    receipts_bad: &mut Finding,
) -> Result<ReceiptCounts> {
    // Opening through `Lookup` checks the gate's identity and manifest first.
    let _ = Lookup::open(ig)?;
    let contexts = Contexts::open(&ig.join("contexts.jsonl"), false)?;
    let reader = ReceiptReader::open(&ig.join("receipts.log"))?;
    // Per context: is it one of the checked outputs, and its topic slot.
    let ctx_slots: Vec<(bool, Option<u8>)> = contexts
        .all()
        .iter()
        .map(|c| {
            let checked = outputs.iter().any(|o| o.id == c.event_type);
            let slot = c
                .topic
                .as_deref()
                .and_then(|t| topics.iter().position(|x| x == t))
                .map(|p| p as u8);
            (checked, slot)
        })
        .collect();
    let mut counts = ReceiptCounts::default();
    let mut push_err = None;
    reader.scan(0, reader.len()?, |seq, r| {
        let (checked, slot) = ctx_slots
            .get(r.ctx as usize)
            .copied()
            .unwrap_or((false, None));
        if !checked {
            return Ok(());
        }
        let (kind, slot, part, pos) = match r.decision {
            Decision::Quarantine => {
                counts.quarantine += 1;
                (Kind::Quarantine, 0, 0, seq)
            }
            d => {
                let (Some(slot), Some(eb)) = (slot, r.eb) else {
                    receipts_bad.add(|| format!("receipt {seq} has no usable eb_ref"));
                    return Ok(());
                };
                let kind = if d == Decision::Admit {
                    counts.admit += 1;
                    Kind::Admit
                } else {
                    counts.duplicate += 1;
                    Kind::Duplicate
                };
                (kind, slot, eb.partition, eb.offset)
            }
        };
        match r.event_id {
            Some(id) => {
                if let Err(e) = buckets.push(&Entry::new(&id, kind, slot, part, pos)) {
                    push_err.get_or_insert(e);
                }
            }
            None if kind == Kind::Quarantine => counts.quarantine_without_event_id += 1,
            None => receipts_bad.add(|| format!("receipt {seq} has no event id")),
        }
        Ok(())
    })?;
    match push_err {
        Some(e) => Err(e),
        None => Ok(counts),
    }
}

/// Scratch directory that removes itself.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the check (see the module doc). `advance` gets units of work done (rows, records,
/// receipts).
pub fn check_bus(
    opts: &BusParityOptions,
    sink: &mut dyn Sink,
    advance: &(dyn Fn(u64) + Sync),
) -> Result<BusParity> {
    let started = Instant::now();
    if opts.views.len() > usize::from(u8::MAX) {
        return Err(IngestError::InvalidArgument("too many views".into()));
    }
    let specs: Vec<&'static OutputSpec> = opts.views.iter().map(|v| v.output).collect();
    let mut topics: Vec<String> = Vec::new();
    for s in &specs {
        if !topics.iter().any(|t| t == s.topic) {
            topics.push(s.topic.to_string());
        }
    }
    let output_topic: Vec<u8> = specs
        .iter()
        .map(|s| topics.iter().position(|t| t == s.topic).unwrap_or(0) as u8)
        .collect();
    // Size the buckets from the footers' row counts: about three entries per view row.
    let rows: u64 = opts
        .views
        .iter()
        .flat_map(|v| v.parts.iter())
        .map(|(_, p)| parquet_rows(p))
        .sum::<Result<u64>>()?;
    let n_buckets = ((rows * 3 * ENTRY_BYTES as u64) / opts.memory.max(1 << 20) + 1).min(4096);
    let scratch = Scratch(opts.temp_dir.join(format!(
        ".sluice-parity-{}-{}",
        std::process::id(),
        sluice_storage::timefmt::now_micros()
    )));
    std::fs::create_dir_all(&scratch.0).map_err(|e| IngestError::io(&scratch.0, e))?;
    let mut buckets = Buckets::create(&scratch.0, n_buckets as usize)?;

    // Steps 1-3.
    let view_counts = views::collect_views(&opts.views, &mut buckets, advance)?;
    tracing::debug!(
        elapsed_s = started.elapsed().as_secs_f64(),
        "parity: views read"
    );
    let mut bus_findings = BusFindings::default();
    let mut topic_counts = Vec::new();
    // This run's part of the bus only (shared Kafka topics hold other runs' records).
    let start = crate::gate::start::StartOffsets::read(&opts.ig_dir)?;
    for (slot, t) in topics.iter().enumerate() {
        topic_counts.push(collect_topic(
            sink,
            &start,
            t,
            slot as u8,
            &specs,
            &mut buckets,
            &mut bus_findings,
            advance,
        )?);
    }
    tracing::debug!(
        elapsed_s = started.elapsed().as_secs_f64(),
        "parity: bus read"
    );
    let mut receipts_bad = Finding::default();
    let receipts = collect_receipts(
        &opts.ig_dir,
        &specs,
        &topics,
        &mut buckets,
        &mut receipts_bad,
    )?;
    advance(receipts.admit + receipts.duplicate + receipts.quarantine);
    let entries = buckets.entries();
    tracing::debug!(
        elapsed_s = started.elapsed().as_secs_f64(),
        "parity: receipts read"
    );

    // Step 4.
    let outputs: Vec<String> = specs.iter().map(|s| s.id.to_string()).collect();
    let parts: Vec<Vec<String>> = opts
        .views
        .iter()
        .map(|v| v.parts.iter().map(|p| p.0.clone()).collect())
        .collect();
    let names = Names {
        outputs: &outputs,
        parts: &parts,
        topics: &topics,
        output_topic: &output_topic,
    };
    let mut verdicts = Verdicts::new(specs.len());
    for path in buckets.finish()? {
        let sorted = load_sorted(&path)?;
        let _ = std::fs::remove_file(&path);
        verdicts.judge_bucket(&sorted, &names);
    }
    tracing::debug!(
        elapsed_s = started.elapsed().as_secs_f64(),
        "parity: verdicts done"
    );
    verdicts.receipts.count += receipts_bad.count;
    if verdicts.receipts.first.is_none() {
        verdicts.receipts.first = receipts_bad.first;
    }
    let without_id: u64 = view_counts.without_id.iter().sum();
    let checks = vec![
        zero(
            "bus_readable",
            "unreadable partitions",
            &bus_findings.unreadable,
        ),
        zero(
            "bus_records_parse",
            "malformed records",
            &bus_findings.malformed,
        ),
        zero(
            "all_admitted_or_quarantined",
            "view rows missing",
            &verdicts.missing,
        ),
        zero(
            "exactly_once",
            "events on the bus twice",
            &verdicts.exactly_once,
        ),
        zero("nothing_extra", "bus records in no view", &verdicts.extra),
        zero(
            "view_ids_unique",
            "repeated event ids in views",
            &verdicts.view_ids_unique,
        ),
        zero("topic", "events on a wrong topic", &verdicts.topic),
        zero(
            "topic_event_types",
            "records of a foreign event_type",
            &bus_findings.wrong_topic,
        ),
        zero(
            "partition_routing",
            "records in a wrong partition",
            &bus_findings.misrouted,
        ),
        zero(
            "partition_order",
            "backwards steps in time",
            &bus_findings.out_of_order,
        ),
        zero(
            "receipts_match_bus",
            "receipt/position disagreements",
            &verdicts.receipts,
        ),
        Check {
            name: "quarantine_accounted".into(),
            ok: without_id == receipts.quarantine_without_event_id
                && verdicts.stray_quarantine == 0,
            expected: format!("{without_id} view rows without event id"),
            actual: format!(
                "{} QUARANTINE receipts without event id, {} for events in no view",
                receipts.quarantine_without_event_id, verdicts.stray_quarantine
            ),
            place: if without_id == receipts.quarantine_without_event_id {
                String::new()
            } else {
                "rows with a null primary key and their QUARANTINE receipts differ in number".into()
            },
        },
    ];
    let mut outputs_out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        outputs_out.push(OutputCounts {
            output_id: s.id.to_string(),
            topic: s.topic.to_string(),
            view_rows: view_counts.rows[i],
            admitted: verdicts.admitted[i],
            quarantined: verdicts.quarantined[i],
            without_event_id: view_counts.without_id[i],
        });
    }
    let ok = checks.iter().all(|c| c.ok);
    Ok(BusParity {
        outputs: outputs_out,
        topics: topic_counts,
        receipts,
        buckets: n_buckets as usize,
        entries,
        elapsed_s: started.elapsed().as_secs_f64(),
        ok,
        checks,
    })
}

fn parquet_rows(path: &Path) -> Result<u64> {
    // Local file or `s3://` object (one suffix GET).
    let (meta, _) = sluice_storage::object::file::parquet_metadata(
        path,
        parquet::arrow::arrow_reader::ArrowReaderOptions::new(),
    )?;
    Ok(meta.metadata().file_metadata().num_rows().max(0) as u64)
}
