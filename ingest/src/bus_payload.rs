//! Payload hashes of records on the bus: what an ADMIT receipt does not store.
//!
//! The gate admits an event by appending its envelope; the receipt names the record
//! (`eb_ref`) and does not store the payload hash (`crate::receipts::record`). The
//! hash is a function of the record: sha256 of `{"event_type":…,"payload":…,
//! "schema_version":"v1"}` over the payload's bytes exactly as stored (the gate writes them
//! canonical, so nothing is re-serialised and no float can change). Readers that need it
//! (the recorder, for a later event with the same dedupe key; `sluice ingest lookup`)
//! read the record back through the [`Sink`].

use std::collections::HashMap;

use crate::error::{IngestError, Result, SinkError};
use crate::ids::{payload_hash, Hash32};
use crate::json::top_level_spans;
use crate::sink::Sink;

/// Offsets further apart than this are read separately (rather than through the records
/// between them).
const READ_THROUGH: u64 = 4096;

const STOP: &str = "IG_READ_STOP";

/// The payload hash of a gate envelope as stored on the bus (`None` if it is not one).
pub fn payload_hash_of(value: &[u8]) -> Option<Hash32> {
    let [event_type, payload] = top_level_spans(value, ["event_type", "payload"]);
    let event_type: String = serde_json::from_slice(&value[event_type?]).ok()?;
    Some(payload_hash(&event_type, &value[payload?]))
}

/// `IG_BUS_RECORD_INVALID`: the record at `offset` is not what a gate wrote (`why`).
pub(crate) fn invalid(topic: &str, partition: u32, offset: u64, why: &str) -> IngestError {
    IngestError::Sink {
        topic: topic.to_string(),
        source: SinkError {
            code: "IG_BUS_RECORD_INVALID",
            message: format!("{topic}/{partition} offset {offset} {why}"),
        },
    }
}

/// The payload hashes of the records at `offsets` of one partition (any order, repeats
/// allowed): nearby offsets in one read, each read stopped after its last wanted record.
/// A wanted record that is missing or not a gate envelope fails `IG_BUS_RECORD_INVALID`.
pub fn payload_hashes(
    sink: &mut dyn Sink,
    topic: &str,
    partition: u32,
    offsets: &[u64],
) -> Result<HashMap<u64, Hash32>> {
    let mut wanted = offsets.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = HashMap::with_capacity(wanted.len());
    let mut i = 0;
    while i < wanted.len() {
        let mut j = i + 1;
        while j < wanted.len() && wanted[j] - wanted[j - 1] <= READ_THROUGH {
            j += 1;
        }
        let cluster = &wanted[i..j];
        let last = cluster[cluster.len() - 1];
        let mut bad: Option<u64> = None;
        let read = sink.read(topic, partition, cluster[0], &mut |offset, value| {
            if cluster.binary_search(&offset).is_ok() {
                match payload_hash_of(value) {
                    Some(h) => {
                        out.insert(offset, h);
                    }
                    None => {
                        bad = Some(offset);
                        return Err(SinkError {
                            code: STOP,
                            message: String::new(),
                        });
                    }
                }
            }
            if offset >= last {
                return Err(SinkError {
                    code: STOP,
                    message: String::new(),
                });
            }
            Ok(())
        });
        match read {
            Err(e) if e.code != STOP => return Err(IngestError::sink(topic, e)),
            _ => {}
        }
        if let Some(offset) = bad {
            return Err(invalid(topic, partition, offset, "is not a gate envelope"));
        }
        if let Some(&missing) = cluster.iter().find(|o| !out.contains_key(o)) {
            return Err(invalid(topic, partition, missing, "is not on the bus"));
        }
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{MemorySink, SinkRecord};

    fn envelope(n: u64) -> Vec<u8> {
        format!(
            "{{\"event_id\":\"x\",\"event_type\":\"arrival_events_5B\",\"payload\":{{\"n\":{n}}},\"ts_utc\":\"t\"}}"
        )
        .into_bytes()
    }

    #[test]
    fn hashes_equal_the_formula_at_scattered_offsets_and_missing_ones_fail() {
        let mut sink = MemorySink::new();
        sink.ensure_topic("t", 1).unwrap();
        let values: Vec<Vec<u8>> = (0..10_000).map(envelope).collect();
        let records: Vec<SinkRecord<'_>> = values
            .iter()
            .map(|v| SinkRecord {
                ts_micros: 0,
                key: b"k",
                value: v,
            })
            .collect();
        sink.append("t", 0, &records).unwrap();
        let want = [9_999, 3, 3, 4, 5_000, 0];
        let got = payload_hashes(&mut sink, "t", 0, &want).unwrap();
        assert_eq!(got.len(), 5);
        for o in want {
            let payload = format!("{{\"n\":{o}}}");
            assert_eq!(
                got[&o],
                payload_hash("arrival_events_5B", payload.as_bytes()),
                "offset {o}"
            );
        }
        let err = payload_hashes(&mut sink, "t", 0, &[7, 10_000]).unwrap_err();
        assert_eq!(err.code(), "IG_BUS_RECORD_INVALID", "{err}");
        assert!(err.to_string().contains("10000 is not on the bus"), "{err}");
    }
}
