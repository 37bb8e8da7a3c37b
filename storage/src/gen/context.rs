//! Context outputs of layer 6B, one row per arrival/flow:
//!
//! - `s3_flow_anchor_with_fraud_6B` / `s2_flow_anchor_baseline_6B`: the flow's anchor
//!   (its entities, start time = time of event 1, amount), key `flow_id`;
//! - `s1_arrival_entities_6B`: the entities attached to an arrival, key
//!   `(merchant_id, arrival_seq)`.
//!
//! Flow ids follow arrival order, so both walk the same [`ArrivalCursor`] range and are in
//! key order by construction.

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};

use crate::gen::columns::{
    assemble, BatchSource, BoolCol, ConstColumns, FloatCol, IntCol, Utf8Col,
};
use crate::gen::world::{ArrivalCursor, World};
use crate::timefmt::{TsFormatter, UTC_LEN};

/// Which 6B context table a [`ContextSource`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextKind {
    FlowAnchorFraud,
    FlowAnchorBaseline,
    ArrivalEntities,
}

/// Rows of one flow-anchor or arrival-entity file.
pub struct ContextSource<'w> {
    world: &'w World,
    cursor: ArrivalCursor<'w>,
    schema: SchemaRef,
    consts: &'w ConstColumns,
    kind: ContextKind,
    fmt: TsFormatter,
}

impl<'w> ContextSource<'w> {
    /// Arrivals (= flows) `lo..hi`.
    pub fn new(
        world: &'w World,
        lo: u64,
        hi: u64,
        schema: SchemaRef,
        consts: &'w ConstColumns,
        kind: ContextKind,
    ) -> Self {
        ContextSource {
            world,
            cursor: ArrivalCursor::new(world, lo, hi),
            schema,
            consts,
            kind,
            fmt: TsFormatter::default(),
        }
    }
}

impl BatchSource for ContextSource<'_> {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, ArrowError> {
        if self.cursor.is_done() {
            return Ok(None);
        }
        let anchor = self.kind != ContextKind::ArrivalEntities;
        let fraud = self.kind == ContextKind::FlowAnchorFraud;
        let cap = max_rows;
        let ints = |on: bool| IntCol::new(if on { cap } else { 0 }, false);
        let mut flow_id = ints(anchor);
        let mut arrival_seq = ints(true);
        let mut merchant_id = ints(true);
        let mut party_id = ints(true);
        let mut account_id = ints(true);
        let mut instrument_id = ints(true);
        let mut device_id = ints(true);
        let mut ip_id = ints(true);
        let mut session_id = ints(!anchor);
        let mut ts_utc = Utf8Col::new(cap, UTC_LEN, false);
        let mut amount = FloatCol::new(if anchor { cap } else { 0 });
        let mut fraud_flag = BoolCol::new(if fraud { cap } else { 0 });
        let mut campaign_id = Utf8Col::new(if fraud { cap } else { 0 }, 11, true);
        let mut rows = 0usize;
        while rows < max_rows {
            let Some(slot) = self.cursor.next_slot() else {
                break;
            };
            let a = self.world.arrival(slot, self.cursor.merchant());
            arrival_seq.push(slot.seq as i64);
            merchant_id.push(a.merchant_id);
            party_id.push(a.party_id);
            account_id.push(a.account_id);
            instrument_id.push(a.instrument_id);
            device_id.push(a.device_id);
            ip_id.push(a.ip_id);
            ts_utc.push(&self.fmt.utc(slot.ts));
            if anchor {
                flow_id.push(a.flow_id);
                amount.push(a.amount_cents as f64 / 100.0);
            } else {
                session_id.push(a.session_id);
            }
            if fraud {
                fraud_flag.push(a.fraud);
                match a.campaign {
                    Some(c) => campaign_id.push(self.world.campaigns[c].as_bytes()),
                    None => campaign_id.push_null(),
                }
            }
            rows += 1;
        }
        let mut named = vec![
            ("arrival_seq", arrival_seq.finish()?),
            ("merchant_id", merchant_id.finish()?),
            ("party_id", party_id.finish()?),
            ("account_id", account_id.finish()?),
            ("instrument_id", instrument_id.finish()?),
            ("device_id", device_id.finish()?),
            ("ip_id", ip_id.finish()?),
            ("ts_utc", ts_utc.finish()?),
        ];
        if anchor {
            named.push(("flow_id", flow_id.finish()?));
            named.push(("amount", amount.finish()));
        } else {
            named.push(("session_id", session_id.finish()?));
        }
        if fraud {
            named.push(("fraud_flag", fraud_flag.finish()));
            named.push(("campaign_id", campaign_id.finish()?));
        }
        named.extend(self.consts.slice(rows));
        assemble(&self.schema, named).map(Some)
    }
}
