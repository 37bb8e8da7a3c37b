//! `sluice ingest verify`: a full audit of receipts against the bus, from files alone.
//!
//! 1. every bus record has exactly one ADMIT receipt, at its position, with its event id;
//! 2. every ADMIT receipt points at a bus record (none is dangling);
//! 3. no event id is on the bus twice (exactly-once);
//! 4. every DUPLICATE receipt points at a bus record with its own event id;
//! 5. inside each partition, event times never go backwards.
//!
//! Only this run's part of the bus is read: each partition from the run's start offset
//! (`ig/start.json`, see `crate::gate::start`; 0 on the file bus), partitions the run never
//! wrote not at all; records naming another `platform_run_id` (a later run on the same
//! Kafka topics) are counted, not judged. So another run's records are never problems.
//!
//! It holds one entry per ADMIT receipt in memory (about 80 bytes each): an audit tool,
//! not a hot path.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;
use sluice_storage::outputs::OUTPUTS;
use sluice_storage::timefmt::parse_rfc3339_micros;

use crate::error::{IngestError, Result};
use crate::gate::start::StartOffsets;
use crate::ids::{hex32_string, parse_hex32, Hash32};
use crate::json::top_level_span;
use crate::lookup::Lookup;
use crate::reason::Decision;
use crate::sink::Sink;

/// What the audit found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditReport {
    pub bus_records: u64,
    pub admit_receipts: u64,
    pub duplicate_receipts: u64,
    pub quarantine_receipts: u64,
    /// Records in this run's part of the bus written by another platform run.
    pub other_run_records: u64,
    pub problem_count: u64,
    /// The first problems, in words.
    pub problems: Vec<String>,
}

impl AuditReport {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < 20 {
            self.problems.push(p);
        }
    }

    pub fn ok(&self) -> bool {
        self.problem_count == 0
    }
}

type Pos = (String, u32, u64);

fn event_id_of(value: &[u8]) -> Option<Hash32> {
    let span = top_level_span(value, "event_id")?;
    let s = std::str::from_utf8(&value[span]).ok()?;
    parse_hex32(s.trim_matches('"'))
}

fn ts_of(value: &[u8]) -> Option<i64> {
    let span = top_level_span(value, "ts_utc")?;
    let s = std::str::from_utf8(&value[span]).ok()?;
    parse_rfc3339_micros(s.trim_matches('"'))
}

/// Audit the gate state in `ig` against `sink` (see the module doc).
pub fn audit(ig: &Path, sink: &mut dyn Sink) -> Result<AuditReport> {
    let lookup = Lookup::open(ig)?;
    let start = StartOffsets::read(ig)?;
    let mut report = AuditReport::default();
    let mut admits: HashMap<Pos, Hash32> = HashMap::new();
    let mut dups: Vec<(Pos, Hash32, u64)> = Vec::new();
    let mut problems = Vec::new();
    lookup.scan_all(|seq, r, v: Value| {
        match r.decision {
            Decision::Quarantine => report.quarantine_receipts += 1,
            d => {
                let topic = v["eb_ref"]["topic"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let part = v["eb_ref"]["partition"].as_u64().unwrap_or(u64::MAX) as u32;
                let off = v["eb_ref"]["offset"].as_u64().unwrap_or(u64::MAX);
                let id = r.event_id.unwrap_or_default();
                if d == Decision::Admit {
                    report.admit_receipts += 1;
                    if admits.insert((topic.clone(), part, off), id).is_some() {
                        problems.push(format!(
                            "two ADMIT receipts for {topic}/{part}@{off} (receipt {seq})"
                        ));
                    }
                } else {
                    report.duplicate_receipts += 1;
                    dups.push(((topic, part, off), id, seq));
                }
            }
        }
        Ok(())
    })?;
    for p in problems {
        report.problem(p);
    }
    let mut seen_ids: HashSet<Hash32> = HashSet::new();
    let mut on_bus: HashMap<Pos, Hash32> = HashMap::new();
    let mut topics: Vec<&str> = OUTPUTS.iter().map(|o| o.topic).collect();
    topics.dedup();
    for topic in topics {
        let parts = sink
            .partitions(topic)
            .map_err(|e| IngestError::sink(topic, e))?
            .unwrap_or(0);
        for p in 0..parts {
            let Some(from) = start.start(topic, p) else {
                continue; // never written by this run
            };
            let mut last_ts = i64::MIN;
            let mut found = Vec::new();
            sink.read(topic, p, from, &mut |off, value| {
                if start.is_other_run(value) {
                    report.other_run_records += 1;
                    return Ok(());
                }
                found.push((off, event_id_of(value), ts_of(value)));
                Ok(())
            })
            .map_err(|e| IngestError::sink(topic, e))?;
            for (off, id, ts) in found {
                report.bus_records += 1;
                let Some(id) = id else {
                    report.problem(format!("{topic}/{p}@{off} has no event_id"));
                    continue;
                };
                if let Some(t) = ts {
                    if t < last_ts {
                        report.problem(format!("{topic}/{p}@{off}: time goes backwards"));
                    }
                    last_ts = last_ts.max(t);
                }
                if !seen_ids.insert(id) {
                    report.problem(format!("event {} is on the bus twice", hex32_string(&id)));
                }
                let pos = (topic.to_string(), p, off);
                match admits.get(&pos) {
                    None => report.problem(format!("{topic}/{p}@{off} has no ADMIT receipt")),
                    Some(r) if *r != id => report.problem(format!(
                        "{topic}/{p}@{off}: receipt and record event ids differ"
                    )),
                    Some(_) => {}
                }
                on_bus.insert(pos, id);
            }
        }
    }
    for pos in admits.keys() {
        if !on_bus.contains_key(pos) {
            report.problem(format!(
                "ADMIT receipt points at {}/{}@{}, which is not on the bus",
                pos.0, pos.1, pos.2
            ));
        }
    }
    for (pos, id, seq) in dups {
        if on_bus.get(&pos) != Some(&id) {
            report.problem(format!(
                "DUPLICATE receipt {seq} does not point at its original"
            ));
        }
    }
    Ok(report)
}
