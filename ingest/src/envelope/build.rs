//! The fast path: a whole Arrow batch of one output becomes envelopes, ids, hashes, partitions
//! and check results in one pass over its rows (and a hashing pass close behind it), with
//! the column types matched once per batch and every byte written by hand ([`crate::json`]).
//!
//! Per row, in this order:
//!
//! 1. checks, first failure wins (as in [`super::check`]): a null primary-key value
//!    (`PRIMARY_KEY_MISSING`); a missing or malformed `ts_utc`, or a pin column of the wrong
//!    type (`ENVELOPE_INVALID`); a null or empty pin (`PINS_MISSING`); the payload against
//!    the output's columns (`SCHEMA_FAIL`; columns that cannot fail are not looked at);
//! 2. `event_id`: the formula's text, appended to one buffer for the batch (a null pin
//!    enters as empty text; such a row is quarantined anyway);
//! 3. the envelope, keys in canonical order, the payload written in place inside it, and
//!    64 placeholder bytes where the event id's hex goes;
//! 4. the partition-key text from the first present field of the output's precedence.
//!
//! Then a second pass over every [`HASH_CHUNK`] rows just built (still in cache) hashes two
//! messages at a time ([`crate::sha256x2`]: two interleaved SHA-NI chains, 1.13-1.45x the
//! speed of one message at a time):
//!
//! 5. the event ids, each one's hex written into its envelope's placeholder (a row whose
//!    partition key falls back to `event_id` had its id computed in step 4 already);
//! 6. the partition from the key text; the dedupe index's key (the event id XOR the
//!    class's mask, [`crate::ids::index_key`]: no hash).
//!
//! The payload hash is **not** computed here: it is the largest of the four hashes (~13
//! of ~16 SHA blocks of a traffic event) and only a known dedupe key needs it (an ADMIT
//! receipt does not store it: the bus record it names has the payload, see
//! `docs/replay.md`). [`EnvelopeBatch::payload_hash`] computes it on demand, over
//! `{"event_type":…,"payload":` (its whole blocks absorbed once per schema) + the payload
//! bytes written in place + `,"schema_version":"v1"}`.
//!
//! ```text
//!  RecordBatch ──bind columns once──> per row: checks, id text, envelope bytes, key text
//!                                                   │
//!        pairs (0,1) (2,3) ... ─> event ids ─> partitions; index keys ─> EnvelopeBatch
//! ```

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use sha2::{Digest, Sha256};
use sluice_storage::outputs::{ColumnSpec, OutputSpec, Presence};
use sluice_storage::timefmt::{parse_rfc3339_micros, write_rfc3339_micros};

use super::columns::{Col, JsonKind};
use super::{RowPins, RunContext};
use crate::error::{IngestError, Result};
use crate::ids::{class_mask, hex32, index_key, Hash32};
use crate::json;
use crate::reason::ReasonCode;
use crate::sha256x2::{Message, Midstate, PairHasher};

/// Rows built between two runs of the second (hashing) pass: few enough that their bytes
/// are still in L1/L2 when they are hashed.
const HASH_CHUNK: usize = 16;

/// `ts` of a row whose `ts_utc` is null or malformed.
pub const NO_TS: i64 = i64::MIN;

/// What the gate needs to know about one row besides its envelope bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowMeta {
    /// `None` when a primary-key value is null.
    pub event_id: Option<Hash32>,
    /// The dedupe index's key ([`crate::ids::index_key`]); zeros when there is no event id.
    pub index_key: Hash32,
    /// `ts_utc` in UTC micros, [`NO_TS`] when missing or malformed.
    pub ts: i64,
    pub partition: u32,
    /// The first failed check, if any.
    pub reason: Option<ReasonCode>,
    /// Index into [`EnvelopeBatch::pin_sets`].
    pub pin_set: u32,
}

/// Envelopes of one batch, back to back, with their metadata.
#[derive(Debug, Default)]
pub struct EnvelopeBatch {
    pub values: Vec<u8>,
    pub value_ends: Vec<usize>,
    /// Partition-key text of each row (the bus record key).
    pub keys: Vec<u8>,
    pub key_ends: Vec<usize>,
    pub rows: Vec<RowMeta>,
    /// The distinct row pins of the batch (usually one).
    pub pin_sets: Vec<RowPins>,
    /// Why each failed row failed, in words (row, detail).
    pub details: Vec<(usize, String)>,
    /// Where each row's payload hash input lies in `values` ([`EnvelopeBatch::payload_hash`]).
    payload_spans: Vec<(usize, usize)>,
    /// The payload hash's constant start for this batch's schema (whole blocks absorbed,
    /// and the rest), copied from the builder's plan.
    hash_mid: Option<Midstate>,
    hash_lead: Vec<u8>,
    /// Event-id texts of the batch, back to back, and the ids the second pass computes.
    id_texts: Vec<u8>,
    id_jobs: Vec<IdJob>,
}

/// An event id to compute: row, its text in `id_texts`, its hex's place in `values`.
#[derive(Debug, Clone, Copy)]
struct IdJob {
    row: usize,
    text: (usize, usize),
    hole: usize,
}

impl EnvelopeBatch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.value_ends[i - 1] };
        &self.values[start..self.value_ends[i]]
    }
    /// The payload hash of row `i` (`shared/CONTEXT.md`: sha256 of the canonical JSON of
    /// `{event_type, payload, schema_version}`), computed now: the builder leaves it to
    /// whoever needs it (a known dedupe key, a quarantine receipt).
    pub fn payload_hash(&self, i: usize) -> Hash32 {
        const SUFFIX: &[u8] = b",\"schema_version\":\"v1\"}";
        let (start, end) = self.payload_spans[i];
        let mid = self.hash_mid.expect("a built batch has its hash prefix");
        PairHasher::new().hash_one(&Message {
            mid,
            parts: [&self.hash_lead, &self.values[start..end], SUFFIX],
        })
    }
    pub fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.keys[start..self.key_ends[i]]
    }
    /// Bytes its buffers hold (what keeping it for reuse costs).
    pub fn retained_bytes(&self) -> usize {
        use std::mem::size_of;
        self.values.capacity()
            + self.keys.capacity()
            + self.id_texts.capacity()
            + (self.value_ends.capacity() + self.key_ends.capacity()) * size_of::<usize>()
            + self.rows.capacity() * size_of::<RowMeta>()
            + self.payload_spans.capacity() * size_of::<(usize, usize)>()
            + self.id_jobs.capacity() * size_of::<IdJob>()
    }

    /// Empty it, keeping its buffers (a recycled batch fills without page faults).
    pub fn clear(&mut self) {
        self.values.clear();
        self.value_ends.clear();
        self.keys.clear();
        self.key_ends.clear();
        self.rows.clear();
        self.pin_sets.clear();
        self.details.clear();
        self.payload_spans.clear();
        self.hash_mid = None;
        self.hash_lead.clear();
        self.id_texts.clear();
        self.id_jobs.clear();
    }

    pub fn detail(&self, row: usize) -> Option<&str> {
        self.details
            .iter()
            .find(|(r, _)| *r == row)
            .map(|(_, d)| d.as_str())
    }
}

/// Builds envelopes for one output and one run context.
pub struct EnvelopeBuilder {
    output: &'static OutputSpec,
    partitions: u32,
    /// `,"event_type":"<id>","manifest_fingerprint":`
    after_event_id: Vec<u8>,
    /// `,"platform_run_id":"…","producer":"…","run_id":"…","scenario_id":`
    after_payload: Vec<u8>,
    /// `,"scenario_run_id":"…","schema_version":"v1","seed":`
    after_scenario_id: Vec<u8>,
    /// `{"event_type":"<id>","payload":`
    hash_prefix: Vec<u8>,
    /// The class's mask of the dedupe index's keys.
    key_mask: Hash32,
    /// What the last batch's schema implied (kept while the schema repeats: `--merge`
    /// sends slices of a row or two, each its own batch).
    plan: Option<SchemaPlan>,
}

/// Everything [`EnvelopeBuilder::build_into`] derives from a batch's schema alone.
struct SchemaPlan {
    schema: SchemaRef,
    /// Payload members in canonical (byte) order: their `{"name":` / `,"name":` prefix,
    /// column index and, for pin columns, which pin they are.
    members: Vec<(Vec<u8>, usize, Option<usize>)>,
    /// The payload's segments: single members, and runs of adjacent pin members.
    segments: Vec<Segment>,
    pk: Vec<Option<usize>>,
    pins: [Option<usize>; 4],
    ts_col: Option<usize>,
    /// Per partition-key field: `None` for `event_id`, else its column if present.
    key_fields: Vec<Option<Option<usize>>>,
    /// Every column the output's spec names, with its column if present.
    specs: Vec<(&'static ColumnSpec, Option<usize>)>,
    /// Bytes of the first member's prefix inside the payload hash's absorbed constant.
    skip: usize,
    /// The payload hash's constant start (`{"event_type":…,"payload":` and the first
    /// member's prefix): whole blocks absorbed, and the rest.
    hash_mid: Midstate,
    hash_lead: Vec<u8>,
    /// The chunks of the pin sets seen with this schema (at most [`MAX_PIN_CHUNKS`] are
    /// kept from one batch to the next).
    chunks: Vec<PinChunks>,
}

/// Pin sets whose chunks a builder keeps between batches.
const MAX_PIN_CHUNKS: usize = 64;

/// Where the payload check of one column must look at cells.
struct SchemaCheck<'c> {
    spec: &'static ColumnSpec,
    col: Option<&'c Col<'c>>,
}

impl SchemaCheck<'_> {
    fn problem(&self, i: usize) -> Option<String> {
        let Some(col) = self.col else {
            return (self.spec.presence != Presence::Optional)
                .then(|| format!("{} is missing", self.spec.name));
        };
        match col.kind(i) {
            JsonKind::Null if self.spec.presence == Presence::Required => {
                Some(format!("{} is null", self.spec.name))
            }
            JsonKind::Null => None,
            k if k.satisfies(self.spec.ty) => None,
            k => Some(format!(
                "{} is a {k:?}, expected {:?}",
                self.spec.name, self.spec.ty
            )),
        }
    }
}

/// Whether a column can fail its spec on some row (if not, rows skip it).
fn may_fail(spec: &ColumnSpec, col: Option<&Col<'_>>) -> bool {
    let Some(col) = col else {
        return spec.presence != Presence::Optional;
    };
    let Some(class) = col.class() else {
        // An all-null column: fails only if required.
        return spec.presence == Presence::Required;
    };
    if !class.satisfies(spec.ty) {
        return true;
    }
    // Right type: only nulls (and non-finite floats, written as null) can fail.
    spec.presence == Presence::Required && (col.has_nulls() || class == JsonKind::Float)
}

fn write_opt_json(out: &mut Vec<u8>, col: Option<&Col<'_>>, i: usize) {
    match col {
        Some(c) => c.write_json(out, i),
        None => out.extend_from_slice(b"null"),
    }
}

/// Which of the four row pins a payload member is (in [`PIN_ORDER`] order).
const PIN_ORDER: [&str; 4] = [
    "manifest_fingerprint",
    "parameter_hash",
    "seed",
    "scenario_id",
];

/// A piece of the payload: one column, or a run of adjacent pin columns whose bytes are the
/// same for every row with the same pins.
enum Segment {
    Column(usize),
    Pins(usize),
}

/// Everything that depends only on a row's four pin values, built once per distinct set.
struct PinChunks {
    /// The four pin cells as JSON, separated by 0xFF (never in UTF-8): the identity.
    key: Vec<u8>,
    /// `,"event_type":"<id>","manifest_fingerprint":…,"parameter_hash":…,"payload":`
    head: Vec<u8>,
    /// `,"platform_run_id":…,"scenario_id":…,"scenario_run_id":…,"schema_version":"v1","seed":…,"ts_utc":`
    tail: Vec<u8>,
    /// `|manifest_fingerprint|parameter_hash|seed|scenario_id` as event-id text.
    id_suffix: Vec<u8>,
    /// The bytes of each pin run of the payload.
    runs: Vec<Vec<u8>>,
    /// The pins as text (an entry of [`EnvelopeBatch::pin_sets`]).
    pins: RowPins,
}

impl EnvelopeBuilder {
    pub fn new(output: &'static OutputSpec, run: &RunContext, partitions: u32) -> Self {
        let mut after_event_id = b",\"event_type\":".to_vec();
        json::write_str(&mut after_event_id, output.id);
        after_event_id.extend_from_slice(b",\"manifest_fingerprint\":");
        let mut after_payload = b",\"platform_run_id\":".to_vec();
        json::write_str(&mut after_payload, &run.platform_run_id);
        after_payload.extend_from_slice(b",\"producer\":");
        json::write_str(&mut after_payload, &run.producer);
        after_payload.extend_from_slice(b",\"run_id\":");
        json::write_str(&mut after_payload, &run.run_id);
        after_payload.extend_from_slice(b",\"scenario_id\":");
        let mut after_scenario_id = b",\"scenario_run_id\":".to_vec();
        json::write_str(&mut after_scenario_id, &run.scenario_run_id);
        after_scenario_id.extend_from_slice(b",\"schema_version\":\"v1\",\"seed\":");
        let mut hash_prefix = b"{\"event_type\":".to_vec();
        json::write_str(&mut hash_prefix, output.id);
        hash_prefix.extend_from_slice(b",\"payload\":");
        EnvelopeBuilder {
            output,
            partitions: partitions.max(1),
            after_event_id,
            after_payload,
            after_scenario_id,
            hash_prefix,
            key_mask: class_mask(output.event_class),
            plan: None,
        }
    }

    pub fn output(&self) -> &'static OutputSpec {
        self.output
    }

    /// The chunks of a new pin set: row `i`'s (`pins`: the four pin columns, `cols` the
    /// batch's columns, `plan` its schema's plan).
    fn pin_chunks(
        &self,
        key: &[u8],
        pins: [Option<&Col<'_>>; 4],
        i: usize,
        cols: &[Col<'_>],
        plan: &SchemaPlan,
    ) -> PinChunks {
        let json = |c: Option<&Col<'_>>| {
            let mut v = Vec::new();
            write_opt_json(&mut v, c, i);
            v
        };
        let mut head = self.after_event_id.clone();
        head.extend_from_slice(&json(pins[0]));
        head.extend_from_slice(b",\"parameter_hash\":");
        head.extend_from_slice(&json(pins[1]));
        head.extend_from_slice(b",\"payload\":");
        let mut tail = self.after_payload.clone();
        tail.extend_from_slice(&json(pins[3]));
        tail.extend_from_slice(&self.after_scenario_id);
        tail.extend_from_slice(&json(pins[2]));
        tail.extend_from_slice(b",\"ts_utc\":");
        let mut id_suffix = Vec::new();
        let text = |c: Option<&Col<'_>>| {
            let mut t = Vec::new();
            if let Some(c) = c {
                c.write_text(&mut t, i);
            }
            t
        };
        let texts: Vec<Vec<u8>> = pins.iter().map(|c| text(*c)).collect();
        for t in &texts {
            id_suffix.push(b'|');
            id_suffix.extend_from_slice(t);
        }
        let mut runs = Vec::new();
        let mut j = 0;
        for seg in &plan.segments {
            match *seg {
                Segment::Column(c) => j = c + 1,
                Segment::Pins(_) => {
                    let mut bytes = Vec::new();
                    while let Some((k, c, Some(_))) = plan.members.get(j) {
                        bytes.extend_from_slice(k);
                        cols[*c].write_json(&mut bytes, i);
                        j += 1;
                    }
                    runs.push(bytes);
                }
            }
        }
        let as_string = |c: Option<&Col<'_>>, t: &[u8]| {
            c.filter(|c| !c.is_null(i))
                .map(|_| String::from_utf8_lossy(t).into_owned())
        };
        PinChunks {
            key: key.to_vec(),
            head,
            tail,
            id_suffix,
            runs,
            pins: RowPins {
                manifest_fingerprint: as_string(pins[0], &texts[0]),
                parameter_hash: as_string(pins[1], &texts[1]),
                seed: as_string(pins[2], &texts[2]),
                scenario_id: as_string(pins[3], &texts[3]),
            },
        }
    }

    /// The plan of `schema` (see [`SchemaPlan`]).
    fn plan_for(&self, schema: SchemaRef) -> SchemaPlan {
        let find = |name: &str| schema.index_of(name).ok();
        let mut order: Vec<usize> = (0..schema.fields().len()).collect();
        order.sort_by(|&a, &b| {
            schema
                .field(a)
                .name()
                .as_bytes()
                .cmp(schema.field(b).name().as_bytes())
        });
        let members: Vec<(Vec<u8>, usize, Option<usize>)> = order
            .iter()
            .enumerate()
            .map(|(j, &c)| {
                let name = schema.field(c).name();
                let mut k = if j == 0 { b"{".to_vec() } else { b",".to_vec() };
                k.extend_from_slice(&json::key_bytes(name));
                (k, c, PIN_ORDER.iter().position(|p| p == name))
            })
            .collect();
        let mut segments: Vec<Segment> = Vec::new();
        let mut pin_runs = 0;
        for (j, m) in members.iter().enumerate() {
            match (m.2, segments.last()) {
                (Some(_), Some(Segment::Pins(_))) if members[j - 1].2.is_some() => {}
                (Some(_), _) => {
                    segments.push(Segment::Pins(pin_runs));
                    pin_runs += 1;
                }
                (None, _) => segments.push(Segment::Column(j)),
            }
        }
        // The payload hash's input starts with `{"event_type":…,"payload":` and the first
        // member's key, the same for every row: absorb its whole blocks once.
        let mut hash_fixed = self.hash_prefix.clone();
        let skip = match members.first() {
            Some((k, _, _)) => {
                hash_fixed.extend_from_slice(k);
                k.len()
            }
            None => 0,
        };
        let (hash_mid, took) = Midstate::absorb(&hash_fixed);
        SchemaPlan {
            pk: self.output.primary_key.iter().map(|k| find(k)).collect(),
            pins: PIN_ORDER.map(find),
            ts_col: find("ts_utc"),
            key_fields: self
                .output
                .partition_key_fields
                .iter()
                .map(|f| (*f != "event_id").then(|| find(f)))
                .collect(),
            specs: self
                .output
                .all_columns()
                .map(|spec| (spec, find(spec.name)))
                .collect(),
            skip,
            hash_mid,
            hash_lead: hash_fixed[took..].to_vec(),
            members,
            segments,
            chunks: Vec::new(),
            schema,
        }
    }

    /// Build the envelopes of every row of `batch` (see the module doc).
    pub fn build(&mut self, batch: &RecordBatch) -> Result<EnvelopeBatch> {
        self.build_into(batch, EnvelopeBatch::default())
    }

    /// [`Self::build`] into the buffers of `out` (cleared first), e.g. a batch the recorder
    /// is done with: its memory is already mapped, so filling it costs no page faults.
    pub fn build_into(&mut self, batch: &RecordBatch, out: EnvelopeBatch) -> Result<EnvelopeBatch> {
        let schema = batch.schema();
        let mut plan = match self.plan.take() {
            Some(p) if Arc::ptr_eq(&p.schema, &schema) || p.schema == schema => p,
            _ => self.plan_for(schema),
        };
        if plan.chunks.len() > MAX_PIN_CHUNKS {
            plan.chunks.clear();
        }
        let built = self.build_planned(batch, &mut plan, out);
        self.plan = Some(plan);
        built
    }

    fn build_planned(
        &self,
        batch: &RecordBatch,
        plan: &mut SchemaPlan,
        mut out: EnvelopeBatch,
    ) -> Result<EnvelopeBatch> {
        out.clear();
        let schema = batch.schema();
        let mut cols: Vec<Col<'_>> = Vec::with_capacity(batch.num_columns());
        for (f, a) in schema.fields().iter().zip(batch.columns()) {
            cols.push(
                Col::bind(a).ok_or_else(|| IngestError::PayloadTypeUnsupported {
                    output_id: self.output.id.to_string(),
                    column: f.name().clone(),
                    data_type: f.data_type().to_string(),
                })?,
            );
        }
        let col = |c: Option<usize>| c.map(|c| &cols[c]);
        let pk: Vec<Option<&Col<'_>>> = plan.pk.iter().map(|&c| col(c)).collect();
        let pins: [Option<&Col<'_>>; 4] = plan.pins.map(col);
        let [mf, ph, seed, sid] = pins;
        let pin_type_bad = |c: Option<&Col<'_>>, int: bool, i: usize| {
            c.is_some_and(|c| !c.is_null(i) && if int { !c.is_int() } else { !c.is_str() })
        };
        let ts_col = col(plan.ts_col);
        let checks: Vec<SchemaCheck<'_>> = plan
            .specs
            .iter()
            .map(|&(spec, c)| SchemaCheck { spec, col: col(c) })
            .filter(|c| may_fail(c.spec, c.col))
            .collect();
        let (hash_mid, skip) = (plan.hash_mid, plan.skip);

        let n = batch.num_rows();
        out.values.reserve(n * 512);
        out.value_ends.reserve(n);
        out.keys.reserve(n * 12);
        out.key_ends.reserve(n);
        out.rows.reserve(n);
        out.payload_spans.reserve(n);
        out.hash_mid = Some(hash_mid);
        out.hash_lead.extend_from_slice(&plan.hash_lead);
        // This batch's pin sets: index into `plan.chunks`, index into `out.pin_sets`.
        let mut sets: Vec<(usize, u32)> = Vec::new();
        let mut current = usize::MAX;
        let mut set = 0u32;
        let mut scratch = Vec::with_capacity(256);
        let mut ts_buf = String::with_capacity(32);
        let (mut chunk_from, mut jobs_from) = (0, 0);
        let mut hasher = PairHasher::new();
        for i in 0..n {
            // The row's pin set: the previous row's when its four pin cells are the same
            // values (the common case: one set per batch), else found by their JSON.
            let same_as_prev = i > 0
                && current != usize::MAX
                && pins.iter().flatten().all(|c| c.same_cell(i, i - 1));
            if !same_as_prev {
                scratch.clear();
                for c in pins {
                    write_opt_json(&mut scratch, c, i);
                    scratch.push(0xff);
                }
            }
            if !same_as_prev && plan.chunks.get(current).is_none_or(|c| c.key != scratch) {
                current = match plan.chunks.iter().position(|c| c.key == scratch) {
                    Some(k) => k,
                    None => {
                        let c = self.pin_chunks(&scratch, pins, i, &cols, plan);
                        plan.chunks.push(c);
                        plan.chunks.len() - 1
                    }
                };
                set = match sets.iter().find(|s| s.0 == current) {
                    Some(&(_, set)) => set,
                    None => {
                        let row = &plan.chunks[current].pins;
                        let set = match out.pin_sets.iter().position(|p| p == row) {
                            Some(k) => k,
                            None => {
                                out.pin_sets.push(row.clone());
                                out.pin_sets.len() - 1
                            }
                        } as u32;
                        sets.push((current, set));
                        set
                    }
                };
            }
            let pc = &plan.chunks[current];

            // 1. checks.
            let raw_ts = ts_col.and_then(|c| c.str_at(i));
            let ts = raw_ts.and_then(parse_rfc3339_micros).unwrap_or(NO_TS);
            let pk_missing = pk.iter().any(|c| c.is_none_or(|c| c.is_null(i)));
            let pin_missing = |c: Option<&Col<'_>>| {
                c.is_none_or(|c| c.is_null(i) || c.str_at(i).is_some_and(str::is_empty))
            };
            let reason = if pk_missing {
                Some((
                    ReasonCode::PrimaryKeyMissing,
                    "a primary-key value is null".to_string(),
                ))
            } else if ts == NO_TS {
                Some((
                    ReasonCode::EnvelopeInvalid,
                    format!("ts_utc {raw_ts:?} is missing or malformed"),
                ))
            } else if pin_type_bad(seed, true, i)
                || pin_type_bad(mf, false, i)
                || pin_type_bad(ph, false, i)
                || pin_type_bad(sid, false, i)
            {
                Some((
                    ReasonCode::EnvelopeInvalid,
                    "a pin column has the wrong type".to_string(),
                ))
            } else if pins.into_iter().any(pin_missing) {
                Some((
                    ReasonCode::PinsMissing,
                    "a pin is null or empty".to_string(),
                ))
            } else {
                checks
                    .iter()
                    .find_map(|c| c.problem(i))
                    .map(|d| (ReasonCode::SchemaFail, d))
            };

            // 2. event_id: the formula's text, hashed in the second pass (its hex goes into
            //    the hole left for it in the envelope).
            let id_text = (!pk_missing).then(|| {
                let start = out.id_texts.len();
                out.id_texts.extend_from_slice(self.output.id.as_bytes());
                for c in pk.iter().flatten() {
                    out.id_texts.push(b'|');
                    c.write_text(&mut out.id_texts, i);
                }
                out.id_texts.extend_from_slice(&pc.id_suffix);
                (start, out.id_texts.len())
            });

            // 3. the envelope.
            let v = &mut out.values;
            let id_hole = match id_text {
                Some(_) => {
                    v.extend_from_slice(b"{\"event_id\":\"");
                    let hole = v.len();
                    v.extend_from_slice(&[b'0'; 64]);
                    v.push(b'"');
                    Some(hole)
                }
                None => {
                    v.extend_from_slice(b"{\"event_id\":null");
                    None
                }
            };
            v.extend_from_slice(&pc.head);
            let payload_start = v.len();
            if plan.members.is_empty() {
                v.push(b'{');
            }
            for seg in &plan.segments {
                match *seg {
                    Segment::Column(j) => {
                        let (k, c, _) = &plan.members[j];
                        v.extend_from_slice(k);
                        cols[*c].write_json(v, i);
                    }
                    Segment::Pins(r) => v.extend_from_slice(&pc.runs[r]),
                }
            }
            v.push(b'}');
            let payload_end = v.len();
            v.extend_from_slice(&pc.tail);
            match raw_ts {
                Some(s) if ts != NO_TS && is_canonical_ts(s) => {
                    v.push(b'"');
                    v.extend_from_slice(s.as_bytes());
                    v.push(b'"');
                }
                Some(_) if ts != NO_TS => {
                    ts_buf.clear();
                    write_rfc3339_micros(&mut ts_buf, ts);
                    json::write_str(v, &ts_buf);
                }
                Some(s) => json::write_str(v, s),
                None => v.extend_from_slice(b"null"),
            }
            v.push(b'}');
            out.value_ends.push(v.len());
            if i == 0 {
                // One row tells the size of the others: reserve once, never regrow.
                let per_row = v.len() + v.len() / 8;
                v.reserve(per_row * n);
            }

            // 4. the partition-key text (hashes and partitions: the second pass).
            out.payload_spans.push((payload_start + skip, payload_end));
            let mut event_id: Option<Hash32> = None;
            for f in &plan.key_fields {
                match *f {
                    Some(Some(c)) => {
                        if cols[c].write_text(&mut out.keys, i) {
                            break;
                        }
                    }
                    Some(None) => {}
                    None => {
                        // Rare (every payload key field null): the id is needed now.
                        if let (Some((start, end)), Some(hole)) = (id_text, id_hole) {
                            let id = Sha256::digest(&out.id_texts[start..end]).into();
                            let hex = hex32(&id);
                            out.values[hole..hole + 64].copy_from_slice(&hex);
                            out.keys.extend_from_slice(&hex);
                            event_id = Some(id);
                            break;
                        }
                    }
                }
            }
            out.key_ends.push(out.keys.len());
            if let (None, Some((start, end)), Some(hole)) = (event_id, id_text, id_hole) {
                out.id_jobs.push(IdJob {
                    row: i,
                    text: (start, end),
                    hole,
                });
            }

            if let Some((_, d)) = &reason {
                out.details.push((i, d.clone()));
            }
            out.rows.push(RowMeta {
                event_id,
                index_key: [0; 32],
                ts,
                partition: 0,
                reason: reason.map(|(r, _)| r),
                pin_set: set,
            });
            // 5 and 6, for the rows since the last chunk, while their bytes are in cache.
            if (i + 1) % HASH_CHUNK == 0 || i + 1 == n {
                let jobs = jobs_from..out.id_jobs.len();
                let rows = chunk_from..i + 1;
                self.hash_rows(&mut out, &mut hasher, rows, jobs);
                chunk_from = i + 1;
                jobs_from = out.id_jobs.len();
            }
        }
        Ok(out)
    }

    /// The second pass over `rows` (with their id jobs `jobs`): event ids (into their
    /// envelope holes) and partitions, two at a time; then the index keys.
    fn hash_rows(
        &self,
        out: &mut EnvelopeBatch,
        hasher: &mut PairHasher,
        chunk: std::ops::Range<usize>,
        jobs: std::ops::Range<usize>,
    ) {
        let EnvelopeBatch {
            values,
            keys,
            key_ends,
            rows,
            id_texts,
            id_jobs,
            ..
        } = out;
        let mut set_id = |job: &IdJob, id: Hash32| {
            values[job.hole..job.hole + 64].copy_from_slice(&hex32(&id));
            rows[job.row].event_id = Some(id);
        };
        let text = |job: &IdJob| Message::plain(&id_texts[job.text.0..job.text.1]);
        for pair in id_jobs[jobs].chunks(2) {
            match pair {
                [a, b] => {
                    let (da, db) = hasher.hash_pair(&text(a), &text(b));
                    set_id(a, da);
                    set_id(b, db);
                }
                [a] => set_id(a, hasher.hash_one(&text(a))),
                _ => {}
            }
        }
        let key = |i: usize| {
            let start = if i == 0 { 0 } else { key_ends[i - 1] };
            Message::plain(&keys[start..key_ends[i]])
        };
        let partitions = u64::from(self.partitions);
        let partition_of = |d: &Hash32| {
            let mut first = [0u8; 8];
            first.copy_from_slice(&d[..8]);
            (u64::from_be_bytes(first) % partitions) as u32
        };
        let n = chunk.end;
        let mut i = chunk.start;
        while i < n {
            if i + 1 == n {
                rows[i].partition = partition_of(&hasher.hash_one(&key(i)));
                break;
            }
            let (ka, kb) = hasher.hash_pair(&key(i), &key(i + 1));
            rows[i].partition = partition_of(&ka);
            rows[i + 1].partition = partition_of(&kb);
            i += 2;
        }
        for row in &mut rows[chunk] {
            if let Some(id) = &row.event_id {
                row.index_key = index_key(&self.key_mask, id);
            }
        }
    }
}

/// True for exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ` (given that it parsed).
fn is_canonical_ts(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27 && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z'
}
