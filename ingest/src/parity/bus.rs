//! The bus side of the bus parity check: every record of this run's part of every partition
//! of the checked topics (from the run's start offset, `crate::gate::start`; 0 on the file
//! bus; records naming another `platform_run_id` are passed over), read through [`Sink::read`] (so the file bus and Kafka are read alike), becomes
//! a [`Kind::Bus`] entry; on the way, the checks that need only the record and its
//! neighbours in the partition:
//!
//! - the record parses far enough to have an `event_id`, an `event_type` and a `ts_utc`;
//! - its `event_type` belongs on this topic;
//! - its partition is the one the platform's key rule gives ([`partition_for`] of the text
//!   of the first present partition-key field of the payload, else the event id);
//! - inside the partition, `ts_utc` never goes backwards.
//!
//! The sink delivers values on one thread (it decompresses); values are copied into chunks
//! of [`CHUNK_RECORDS`], parsed and hashed on the rayon pool, then judged in offset order.
//!
//! A partition that cannot be read (a damaged segment) is a finding with the sink's
//! message, not an abort: the other partitions are still checked.

use std::ops::Range;

use rayon::prelude::*;

use sluice_storage::outputs::OutputSpec;
use sluice_storage::timefmt::parse_rfc3339_micros;

use super::buckets::{Buckets, Entry, Kind};
use super::Finding;
use crate::error::{IngestError, Result};
use crate::gate::start::StartOffsets;
use crate::ids::{parse_hex32, partition_for};
use crate::json::{top_level_span, top_level_spans};
use crate::sink::Sink;

/// What reading one topic found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TopicCounts {
    pub topic: String,
    pub partitions: u32,
    pub records: u64,
}

/// The bus-only findings.
#[derive(Debug, Default)]
pub struct BusFindings {
    pub unreadable: Finding,
    pub malformed: Finding,
    pub wrong_topic: Finding,
    pub misrouted: Finding,
    pub out_of_order: Finding,
}

fn text_of<'a>(value: &'a [u8], span: Range<usize>) -> Option<std::borrow::Cow<'a, str>> {
    let raw = value.get(span)?;
    if raw == b"null" {
        return None;
    }
    if raw.first() == Some(&b'"') {
        if raw.contains(&b'\\') {
            return serde_json::from_slice::<String>(raw).ok().map(Into::into);
        }
        return std::str::from_utf8(raw.get(1..raw.len().saturating_sub(1))?)
            .ok()
            .map(Into::into);
    }
    std::str::from_utf8(raw).ok().map(Into::into)
}

/// The partition-key text of an envelope (`payload` and `event_id` are the spans of its
/// members): the first present key field of the payload, else the event id.
fn key_text<'a>(
    value: &'a [u8],
    payload: Option<Range<usize>>,
    event_id: Option<Range<usize>>,
    spec: &OutputSpec,
) -> Option<std::borrow::Cow<'a, str>> {
    let body = value.get(payload?)?;
    for f in spec.partition_key_fields {
        let found = if *f == "event_id" {
            event_id.clone().and_then(|s| text_of(value, s))
        } else {
            top_level_span(body, f).and_then(|s| text_of(body, s))
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Read every partition of `topic` (slot `slot`) from the run's start, check each record,
/// bucket its id.
#[allow(clippy::too_many_arguments)]
pub fn collect_topic(
    sink: &mut dyn Sink,
    start: &StartOffsets,
    topic: &str,
    slot: u8,
    outputs: &[&'static OutputSpec],
    buckets: &mut Buckets,
    findings: &mut BusFindings,
    advance: &(dyn Fn(u64) + Sync),
) -> Result<TopicCounts> {
    let partitions = sink
        .partitions(topic)
        .map_err(|e| IngestError::sink(topic, e))?
        .unwrap_or(0);
    let mut counts = TopicCounts {
        topic: topic.to_string(),
        partitions,
        records: 0,
    };
    for p in 0..partitions {
        let Some(from) = start.start(topic, p) else {
            continue; // never written by this run
        };
        let mut state = PartitionState {
            topic,
            slot,
            partition: p,
            partitions,
            outputs,
            last_ts: None,
            pending: Pending::default(),
        };
        let mut push_err: Option<IngestError> = None;
        let mut n = 0u64;
        let read = sink.read(topic, p, from, &mut |off, value| {
            if start.is_other_run(value) {
                return Ok(()); // another run's record on shared topics
            }
            n += 1;
            state.pending.push(off, value);
            if state.pending.offsets.len() >= CHUNK_RECORDS {
                if let Err(e) = state.flush(buckets, findings) {
                    push_err.get_or_insert(e);
                }
            }
            Ok(())
        });
        // Records read before a damaged batch are still checked.
        if let Err(e) = state.flush(buckets, findings) {
            push_err.get_or_insert(e);
        }
        advance(n);
        counts.records += n;
        if let Some(e) = push_err {
            return Err(e);
        }
        if let Err(e) = read {
            findings
                .unreadable
                .add(|| format!("{topic}/{p} after {n} records: [{}] {e}", e.code));
        }
    }
    Ok(counts)
}

/// Records parsed together on the rayon pool (decompression stays in the sink's thread).
pub const CHUNK_RECORDS: usize = 16 * 1024;

/// Record values copied out of the sink's callback, back to back.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    offsets: Vec<u64>,
}

impl Pending {
    fn push(&mut self, off: u64, value: &[u8]) {
        self.bytes.extend_from_slice(value);
        self.ends.push(self.bytes.len());
        self.offsets.push(off);
    }

    fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.offsets.clear();
    }
}

/// What one record says, parsed independently of its neighbours.
struct Parsed {
    id: Option<[u8; 32]>,
    ts: Option<i64>,
    /// The output its `event_type` names, if it is one of the checked ones.
    spec: Option<&'static OutputSpec>,
    /// The partition the key rule gives.
    routed: Option<u32>,
}

/// The reading position in one partition: the order check spans chunks.
struct PartitionState<'a> {
    topic: &'a str,
    slot: u8,
    partition: u32,
    partitions: u32,
    outputs: &'a [&'static OutputSpec],
    last_ts: Option<(i64, u64)>,
    pending: Pending,
}

impl PartitionState<'_> {
    /// Parse the pending records in parallel, then judge and bucket them in order.
    fn flush(&mut self, buckets: &mut Buckets, findings: &mut BusFindings) -> Result<()> {
        let (outputs, partitions) = (self.outputs, self.partitions);
        let pending = &self.pending;
        let parsed: Vec<Parsed> = (0..pending.offsets.len())
            .into_par_iter()
            .map(|i| {
                let value = pending.value(i);
                // One pass over the envelope for the four members.
                let [event_type, event_id, ts_utc, payload] =
                    top_level_spans(value, ["event_type", "event_id", "ts_utc", "payload"]);
                let spec = event_type
                    .and_then(|s| text_of(value, s))
                    .and_then(|t| outputs.iter().find(|o| o.id == t).copied());
                Parsed {
                    id: event_id
                        .clone()
                        .and_then(|s| text_of(value, s))
                        .and_then(|t| parse_hex32(&t)),
                    ts: ts_utc
                        .and_then(|s| text_of(value, s))
                        .and_then(|t| parse_rfc3339_micros(&t)),
                    spec,
                    routed: spec
                        .and_then(|s| key_text(value, payload, event_id, s))
                        .map(|k| partition_for(k.as_bytes(), partitions)),
                }
            })
            .collect();
        let (topic, p) = (self.topic, self.partition);
        for (r, &off) in parsed.iter().zip(&pending.offsets) {
            let place = || format!("{topic}/{p}@{off}");
            let (Some(id), Some(ts)) = (r.id, r.ts) else {
                findings
                    .malformed
                    .add(|| format!("{}: no event_id or ts_utc", place()));
                continue;
            };
            match r.spec {
                Some(s) if s.topic == topic => {}
                _ => findings
                    .wrong_topic
                    .add(|| format!("{}: event_type is not one of this topic's", place())),
            }
            if r.spec.is_some() && r.routed != Some(p) {
                findings.misrouted.add(|| {
                    format!(
                        "{}: the key rule routes it to partition {:?}",
                        place(),
                        r.routed
                    )
                });
            }
            if let Some((prev, prev_off)) = self.last_ts {
                if ts < prev {
                    findings
                        .out_of_order
                        .add(|| format!("{}: ts_utc earlier than at offset {prev_off}", place()));
                }
            }
            self.last_ts = Some((self.last_ts.map_or(ts, |(t, _)| t.max(ts)), off));
            buckets.push(&Entry::new(&id, Kind::Bus, self.slot, p, off))?;
        }
        self.pending.clear();
        Ok(())
    }
}
