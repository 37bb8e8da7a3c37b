//! Reconciliation on open: the bus is the truth for what was admitted.
//!
//! ```text
//!   bus partition:  [0 .. start) [start ...... wm) [wm ........ end)
//!                    other runs   receipts exist    appended, receipts lost in a crash
//! ```
//!
//! For every topic and partition the gate knows, records from the watermark (the offset
//! after the last ADMIT receipt; without one, the run's start offset from
//! [`super::start`], 0 on the file bus) to the bus end are read back; a partition the run
//! has no start offset for was never written by it and is skipped, and on a shared bus a
//! record naming another `platform_run_id` is passed over. Each other record read gets the
//! ADMIT receipt the crash lost, and its index key enters the index, so a resumed replay that sends the
//! event again gets DUPLICATE instead of a second copy on the bus. The key is recomputed
//! from the stored envelope's class and `event_id` ([`crate::ids::index_key`]); an ADMIT
//! receipt stores neither its payload hash (the record has it, [`crate::bus_payload`])
//! nor its receipt id (derived from the event id).
//!
//! A bus that ends *before* a watermark lost records that receipts vouch for:
//! `IG_BUS_BEHIND`, nothing is modified.

use serde_json::Value;
use sluice_storage::outputs::{OutputSpec, OUTPUTS};
use sluice_storage::timefmt::parse_rfc3339_micros;

use super::decide::Decider;
use super::record::Recorder;
use super::start::StartOffsets;
use crate::error::{IngestError, Result, SinkError};
use crate::ids::{class_mask, index_key, parse_hex32};
use crate::json::top_level_span;
use crate::reason::Decision;
use crate::receipts::context::pins_from_envelope;
use crate::receipts::{EbPos, ReceiptRecord};
use crate::sink::Sink;

/// What reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Bus records that had no receipt and got one.
    pub receipts_restored: u64,
    /// Restored records whose dedupe key was already known (a second copy on the bus).
    pub duplicates_on_bus: u64,
    /// Records past the watermarks that belong to another platform run (shared Kafka
    /// topics): passed over, never adopted.
    pub other_run_records: u64,
}

fn bad_record(topic: &str, partition: u32, offset: u64, why: &str) -> IngestError {
    crate::bus_payload::invalid(
        topic,
        partition,
        offset,
        &format!("is not a gate envelope: {why}"),
    )
}

/// Bring receipts and index up to the bus (see the module doc).
pub(crate) fn reconcile(
    decider: &mut Decider,
    recorder: &mut Recorder,
    start: &StartOffsets,
    sink: &mut dyn Sink,
) -> Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let mut topics: Vec<String> = OUTPUTS.iter().map(|o| o.topic.to_string()).collect();
    topics.extend(recorder.watermarks.keys().cloned());
    topics.sort();
    topics.dedup();
    for topic in topics {
        let parts = sink
            .partitions(&topic)
            .map_err(|e| IngestError::sink(&topic, e))?
            .unwrap_or(0);
        let known: Vec<(u32, u64)> = recorder
            .watermarks
            .get(&topic)
            .map(|m| m.iter().map(|(&p, &o)| (p, o)).collect())
            .unwrap_or_default();
        for &(p, wm) in &known {
            if p >= parts && wm > 0 {
                return Err(IngestError::BusBehind {
                    topic: topic.clone(),
                    partition: p,
                    receipts: wm,
                    bus: 0,
                });
            }
        }
        for p in 0..parts {
            let receipted = known.iter().find(|k| k.0 == p).map(|k| k.1);
            let Some(wm) = receipted.or_else(|| start.start(&topic, p)) else {
                continue; // never written by this run
            };
            let end = sink
                .end_offset(&topic, p)
                .map_err(|e| IngestError::sink(&topic, e))?;
            if end < wm {
                return Err(IngestError::BusBehind {
                    topic: topic.clone(),
                    partition: p,
                    receipts: wm,
                    bus: end,
                });
            }
            if end == wm {
                continue;
            }
            let mut encoded = Vec::new();
            let mut failure: Option<IngestError> = None;
            let restored_before = report.receipts_restored;
            sink.read(&topic, p, wm, &mut |offset, value| {
                if start.is_other_run(value) {
                    report.other_run_records += 1;
                    return Ok(());
                }
                match restore(decider, &topic, p, offset, value, &mut report) {
                    Ok(rec) => {
                        rec.encode(&mut encoded);
                        Ok(())
                    }
                    Err(e) => {
                        failure = Some(e);
                        Err(SinkError {
                            code: "IG_RECONCILE_STOPPED",
                            message: "stopped".into(),
                        })
                    }
                }
            })
            .map_err(|e| {
                failure
                    .take()
                    .unwrap_or_else(|| IngestError::sink(&topic, e))
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            if !encoded.is_empty() {
                recorder.receipts.append(&encoded)?;
                recorder.receipts.sync()?;
                tracing::warn!(
                    "reconciled {topic}/{p}: {} bus record(s) from offset {wm} had no receipt (a crash after the append); receipts written",
                    report.receipts_restored - restored_before
                );
            }
            recorder
                .watermarks
                .entry(topic.clone())
                .or_default()
                .insert(p, end);
        }
    }
    Ok(report)
}

/// The ADMIT receipt of one bus record, its key remembered by the decider.
fn restore(
    decider: &mut Decider,
    topic: &str,
    partition: u32,
    offset: u64,
    value: &[u8],
    report: &mut ReconcileReport,
) -> Result<ReceiptRecord> {
    let bad = |why: &str| bad_record(topic, partition, offset, why);
    let env: Value = serde_json::from_slice(value).map_err(|e| bad(&e.to_string()))?;
    let obj = env.as_object().ok_or_else(|| bad("not an object"))?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str);
    let event_type = text("event_type").ok_or_else(|| bad("no event_type"))?;
    let output = OutputSpec::get(event_type).map_err(|_| bad("unknown event_type"))?;
    let event_id = text("event_id")
        .and_then(parse_hex32)
        .ok_or_else(|| bad("no event_id"))?;
    text("platform_run_id").ok_or_else(|| bad("no platform_run_id"))?;
    top_level_span(value, "payload").ok_or_else(|| bad("no payload"))?;
    let key = index_key(&class_mask(output.event_class), &event_id);
    let ts = text("ts_utc").and_then(parse_rfc3339_micros);
    let ctx = decider
        .contexts
        .id_for(event_type, pins_from_envelope(obj))?;
    let seq = decider.next_seq;
    decider.next_seq += 1;
    if decider.lookup(&key)?.is_some() {
        report.duplicates_on_bus += 1;
    } else {
        decider.remember(key, seq);
    }
    report.receipts_restored += 1;
    Ok(ReceiptRecord {
        decision: Decision::Admit,
        reasons: 0,
        ctx,
        ts,
        event_id: Some(event_id),
        // ADMIT receipt ids are derived from the event id when rendered.
        receipt_id: [0; 16],
        eb: Some(EbPos { partition, offset }),
        quarantine: None,
    })
}
