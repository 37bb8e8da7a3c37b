//! `arrival_events_5B`: one row per arrival, key `(merchant_id, arrival_seq)`, with the
//! merchant's time zones and routing. Besides the required columns it emits this subset of
//! the optional ones ([`EMITTED_OPTIONAL`]); the operational time zone and the spec version
//! stay absent, as in runs of the engine that do not compute them:
//!
//! | column | value |
//! |---|---|
//! | `channel_group` | `card_not_present` for virtual merchants, else mostly `card_present` |
//! | `tzid_settlement`, `ts_local_settlement` | the acquirer's zone (usually the merchant's) |
//! | `tz_group_id` | zones sharing the primary offset |
//! | `site_id` | a physical site of the merchant; null for virtual merchants |
//! | `edge_id` | the routing edge of a virtual merchant; null for physical ones |
//! | `routing_universe_hash` | one 64-hex value for the run |
//! | `lambda_realised` | the merchant's hourly intensity at that local hour |
//!
//! `bucket_index` is the hour of the arrival since the start of the window in the
//! merchant's local time (0..168).

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};

use crate::gen::clock::{window_start_micros, DAY_MICROS, HOURLY_WEIGHTS, HOUR_MICROS};
use crate::gen::columns::{
    assemble, BatchSource, BoolCol, ConstColumns, FloatCol, IntCol, Utf8Col,
};
use crate::gen::rng::Domain;
use crate::gen::world::{ArrivalCursor, World};
use crate::timefmt::{TsFormatter, LOCAL_LEN, UTC_LEN};

/// The optional 5B columns the generator writes (the rest are absent from its files).
pub const EMITTED_OPTIONAL: &[&str] = &[
    "channel_group",
    "tzid_settlement",
    "ts_local_settlement",
    "tz_group_id",
    "site_id",
    "edge_id",
    "routing_universe_hash",
    "lambda_realised",
];

const SITE_ID_BASE: i64 = 80_000_000_000;
const EDGE_ID_BASE: i64 = 90_000_000_000;
const EDGES: u64 = 4_096;

/// Rows of one `arrival_events_5B` file.
pub struct ArrivalEventSource<'w> {
    world: &'w World,
    cursor: ArrivalCursor<'w>,
    schema: SchemaRef,
    /// Pins plus `routing_universe_hash`.
    consts: &'w ConstColumns,
    fmt: TsFormatter,
    mean_hour_weight: f64,
}

impl<'w> ArrivalEventSource<'w> {
    pub fn new(
        world: &'w World,
        lo: u64,
        hi: u64,
        schema: SchemaRef,
        consts: &'w ConstColumns,
    ) -> Self {
        ArrivalEventSource {
            world,
            cursor: ArrivalCursor::new(world, lo, hi),
            schema,
            consts,
            fmt: TsFormatter::default(),
            mean_hour_weight: HOURLY_WEIGHTS.iter().sum::<u32>() as f64 / 24.0,
        }
    }
}

impl BatchSource for ArrivalEventSource<'_> {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, ArrowError> {
        if self.cursor.is_done() {
            return Ok(None);
        }
        let cap = max_rows;
        let mut merchant_id = IntCol::new(cap, false);
        let mut zone_representation = Utf8Col::new(cap, 20, false);
        let mut bucket_index = IntCol::new(cap, false);
        let mut arrival_seq = IntCol::new(cap, false);
        let mut ts_utc = Utf8Col::new(cap, UTC_LEN, false);
        let mut tzid_primary = Utf8Col::new(cap, 16, false);
        let mut ts_local_primary = Utf8Col::new(cap, LOCAL_LEN, false);
        let mut is_virtual = BoolCol::new(cap);
        let mut channel_group = Utf8Col::new(cap, 14, true);
        let mut tzid_settlement = Utf8Col::new(cap, 16, true);
        let mut ts_local_settlement = Utf8Col::new(cap, LOCAL_LEN, true);
        let mut tz_group_id = Utf8Col::new(cap, 12, true);
        let mut site_id = IntCol::new(cap, true);
        let mut edge_id = IntCol::new(cap, true);
        let mut lambda_realised = FloatCol::new(cap);
        let window = window_start_micros();
        let mut rows = 0usize;
        while rows < max_rows {
            let Some(slot) = self.cursor.next_slot() else {
                break;
            };
            let m = self.cursor.merchant();
            let mut r = self
                .world
                .streams
                .stream(Domain::ArrivalRouting, slot.index);
            let offset = m.zone.offset_micros();
            let local = slot.ts + offset;
            merchant_id.push(m.id);
            zone_representation.push(m.zone.representation.as_bytes());
            bucket_index.push((local - window).div_euclid(HOUR_MICROS));
            arrival_seq.push(slot.seq as i64);
            ts_utc.push(&self.fmt.utc(slot.ts));
            tzid_primary.push(m.zone.tzid.as_bytes());
            ts_local_primary.push(&self.fmt.local(slot.ts, offset));
            is_virtual.push(m.is_virtual);
            let channel: &[u8] = if m.is_virtual || r.chance(0.1) {
                b"card_not_present"
            } else {
                b"card_present"
            };
            channel_group.push(channel);
            tzid_settlement.push(m.settlement_zone.tzid.as_bytes());
            ts_local_settlement.push(&self.fmt.local(slot.ts, m.settlement_zone.offset_micros()));
            tz_group_id.push(m.zone.group.as_bytes());
            if m.is_virtual {
                site_id.push_opt(None);
                edge_id.push_opt(Some(EDGE_ID_BASE + r.below(EDGES) as i64));
            } else {
                let site = m.index as i64 * 8 + r.below(m.sites) as i64;
                site_id.push_opt(Some(SITE_ID_BASE + site));
                edge_id.push_opt(None);
            }
            let hour = (local.rem_euclid(DAY_MICROS) / HOUR_MICROS) as usize;
            let shape = HOURLY_WEIGHTS[hour] as f64 / self.mean_hour_weight;
            let noise = 0.8 + 0.4 * r.unit();
            lambda_realised.push((m.mean_rate * shape * noise * 1e6).round() / 1e6);
            rows += 1;
        }
        let mut named = vec![
            ("merchant_id", merchant_id.finish()?),
            ("zone_representation", zone_representation.finish()?),
            ("bucket_index", bucket_index.finish()?),
            ("arrival_seq", arrival_seq.finish()?),
            ("ts_utc", ts_utc.finish()?),
            ("tzid_primary", tzid_primary.finish()?),
            ("ts_local_primary", ts_local_primary.finish()?),
            ("is_virtual", is_virtual.finish()),
            ("channel_group", channel_group.finish()?),
            ("tzid_settlement", tzid_settlement.finish()?),
            ("ts_local_settlement", ts_local_settlement.finish()?),
            ("tz_group_id", tz_group_id.finish()?),
            ("site_id", site_id.finish()?),
            ("edge_id", edge_id.finish()?),
            ("lambda_realised", lambda_realised.finish()),
        ];
        named.extend(self.consts.slice(rows));
        assemble(&self.schema, named).map(Some)
    }
}
