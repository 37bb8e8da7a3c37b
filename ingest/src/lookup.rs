//! `sluice ingest lookup`: the receipts of one event, read-only, alongside a running writer.
//!
//! ```text
//!   event_id ─┬─ for each class of the contexts: index key (event id XOR class mask)
//!             │      -> dedupe runs (fences + one block) -> ADMIT receipt seq
//!             ├─ receipt_id(DUPLICATE|QUARANTINE, event_id)
//!             │      -> receipt-id runs -> newest receipt seq
//!             └─ receipts after the manifest's covered seq (only after a crash or while a
//!                replay runs): a backwards scan of 128-byte records
//! ```
//!
//! Each hit is one positioned read of a receipt record, rendered with its context; a
//! quarantined event also gets its quarantine record. No log is scanned from its start.
//! Payload hashes are not stored in receipt records: a QUARANTINE's comes from its
//! quarantine record, and [`Lookup::payload_hashes_from_bus`] reads an ADMIT's or a
//! DUPLICATE's from the bus record at its `eb_ref` (one positioned read through the bus
//! index).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{IngestError, Result};
use crate::gate::manifest::{Identity, Manifest};
use crate::gate::record::receipt_id_key;
use crate::ids::{class_mask, hex32_string, index_key, parse_hex16, parse_hex32, receipt_id_bytes};
use crate::index::RunSet;
use crate::quarantine::read_record;
use crate::reason::Decision;
use crate::receipts::render::render;
use crate::receipts::{Contexts, ReceiptReader, ReceiptRecord};
use crate::sink::Sink;

/// Read-only access to a gate's receipts.
pub struct Lookup {
    dir: PathBuf,
    contexts: Contexts,
    reader: ReceiptReader,
    dedupe: RunSet,
    rids: RunSet,
    covered_seq: u64,
    pub platform_run_id: String,
}

/// What a lookup found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// Receipts, newest decision kinds last (ADMIT, DUPLICATE, QUARANTINE).
    pub receipts: Vec<Value>,
    /// Quarantine records of the quarantine receipts.
    pub quarantine: Vec<Value>,
    /// The records behind `receipts`, in the same order.
    #[serde(skip)]
    pub records: Vec<ReceiptRecord>,
}

impl Lookup {
    /// Open `<run_root>/ig` read-only (no lock, nothing modified).
    pub fn open(dir: &Path) -> Result<Lookup> {
        let ident = Identity::check_or_create(dir, None, false)?;
        let manifest = Manifest::read(&dir.join("index").join("MANIFEST.json"))?;
        Ok(Lookup {
            dir: dir.to_path_buf(),
            contexts: Contexts::open(&dir.join("contexts.jsonl"), false)?,
            reader: ReceiptReader::open(&dir.join("receipts.log"))?,
            dedupe: RunSet::open(&dir.join("index/dedupe"), &manifest.dedupe_runs, false)?,
            rids: RunSet::open(
                &dir.join("index/receipt_ids"),
                &manifest.receipt_id_runs,
                false,
            )?,
            covered_seq: manifest.covered_seq,
            platform_run_id: ident.platform_run_id,
        })
    }

    fn found(&self, records: Vec<ReceiptRecord>) -> Result<Found> {
        let mut out = Found {
            receipts: Vec::new(),
            quarantine: Vec::new(),
            records: Vec::new(),
        };
        for r in records {
            let mut receipt = render(&r, self.contexts.get(r.ctx));
            if let Some(pos) = r.quarantine {
                let q = read_record(&self.dir.join("quarantine.log"), pos)?;
                receipt["payload_hash"] = q["payload_hash"].clone();
                out.quarantine.push(q);
            }
            out.receipts.push(receipt);
            out.records.push(r);
        }
        Ok(out)
    }

    /// Fill in the payload hashes of `found`'s ADMIT and DUPLICATE receipts from the
    /// records at their `eb_ref` on `sink` (the bus the run wrote to).
    /// An event's ADMIT and DUPLICATE name the same record: it is read once.
    pub fn payload_hashes_from_bus(&self, found: &mut Found, sink: &mut dyn Sink) -> Result<()> {
        let at: Vec<Option<(&str, u32, u64)>> = found
            .records
            .iter()
            .map(|r| {
                let topic = self.contexts.get(r.ctx)?.topic.as_deref()?;
                let eb = r.eb?;
                Some((topic, eb.partition, eb.offset))
            })
            .collect();
        let mut wanted: BTreeMap<(&str, u32), Vec<u64>> = BTreeMap::new();
        for &(topic, partition, offset) in at.iter().flatten() {
            wanted.entry((topic, partition)).or_default().push(offset);
        }
        let mut hashes = BTreeMap::new();
        for ((topic, partition), offsets) in wanted {
            let found = crate::bus_payload::payload_hashes(sink, topic, partition, &offsets)?;
            hashes.insert((topic, partition), found);
        }
        for (v, at) in found.receipts.iter_mut().zip(at) {
            if let Some((topic, partition, offset)) = at {
                v["payload_hash"] =
                    Value::String(hex32_string(&hashes[&(topic, partition)][&offset]));
            }
        }
        Ok(())
    }

    /// Receipts after the covered seq matching `pred`, newest first per receipt id.
    fn tail(&self, pred: impl Fn(&ReceiptRecord) -> bool) -> Result<Vec<ReceiptRecord>> {
        let end = self.reader.len()?;
        let mut hits: Vec<ReceiptRecord> = Vec::new();
        self.reader.scan(self.covered_seq.min(end), end, |_, r| {
            if pred(r) {
                hits.retain(|h| h.receipt_id != r.receipt_id);
                hits.push(*r);
            }
            Ok(())
        })?;
        Ok(hits)
    }

    /// Every receipt of `event_id` (64 hex): at most one per decision, the newest.
    pub fn by_event_id(&self, event_id: &str) -> Result<Found> {
        let id = parse_hex32(event_id).ok_or_else(|| {
            IngestError::InvalidArgument(format!("{event_id:?} is not 64 lowercase hex digits"))
        })?;
        let mut records: Vec<ReceiptRecord> = Vec::new();
        let mut seen_keys = Vec::new();
        for ctx in self.contexts.all() {
            let Some(class) = ctx.event_class.as_deref() else {
                continue;
            };
            let key = index_key(&class_mask(class), &id);
            if seen_keys.contains(&key) {
                continue;
            }
            seen_keys.push(key);
            if let Some(seq) = self.dedupe.get(&key)? {
                let r = self.reader.read(seq)?;
                if r.event_id == Some(id) {
                    records.push(r);
                }
            }
        }
        for d in [Decision::Duplicate, Decision::Quarantine] {
            let rid = receipt_id_bytes(d, event_id);
            if let Some(seq) = self.rids.get(&receipt_id_key(&rid))? {
                records.push(self.reader.read(seq)?);
            }
        }
        for r in self.tail(|r| r.event_id == Some(id))? {
            records.retain(|h| h.receipt_id != r.receipt_id);
            records.push(r);
        }
        if records.is_empty() {
            return Err(IngestError::ReceiptNotFound {
                what: format!("event_id {event_id}"),
            });
        }
        records.sort_by_key(|r| r.decision.to_byte());
        self.found(records)
    }

    /// The newest receipt with `receipt_id` (32 hex).
    pub fn by_receipt_id(&self, receipt_id: &str) -> Result<Found> {
        let rid = parse_hex16(receipt_id).ok_or_else(|| {
            IngestError::InvalidArgument(format!("{receipt_id:?} is not 32 lowercase hex digits"))
        })?;
        let mut records = self.tail(|r| r.receipt_id == rid)?;
        if records.is_empty() {
            if let Some(seq) = self.rids.get(&receipt_id_key(&rid))? {
                records.push(self.reader.read(seq)?);
            }
        }
        if records.is_empty() {
            return Err(IngestError::ReceiptNotFound {
                what: format!("receipt_id {receipt_id} (ADMIT receipts are found by --event-id)"),
            });
        }
        self.found(records)
    }

    /// Summary numbers of the gate state.
    pub fn summary(&self) -> Result<Value> {
        Ok(json!({
            "platform_run_id": self.platform_run_id,
            "receipts": self.reader.len()?,
            "covered_seq": self.covered_seq,
            "dedupe_runs": self.dedupe.runs().len(),
            "dedupe_entries": self.dedupe.entries(),
            "contexts": self.contexts.all().len(),
        }))
    }

    /// Every receipt in order (for audits and tests; a full scan).
    pub fn scan_all(
        &self,
        mut visit: impl FnMut(u64, &ReceiptRecord, Value) -> Result<()>,
    ) -> Result<()> {
        let end = self.reader.len()?;
        self.reader.scan(0, end, |seq, r| {
            visit(seq, r, render(r, self.contexts.get(r.ctx)))
        })
    }

    /// The event id of a receipt as hex (helper for callers rendering tables).
    pub fn hex(id: &[u8; 32]) -> String {
        hex32_string(id)
    }
}
