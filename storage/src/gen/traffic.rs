//! Traffic outputs: `s3_event_stream_with_fraud_6B` and its pre-fraud twin
//! `s2_event_stream_baseline_6B`. One row per event; a file holds a contiguous range of
//! flows, rows in `(flow_id, event_seq)` order.
//!
//! A flow's events (1..8):
//!
//! ```text
//!   seq 1 AUTH_REQUEST   at the arrival time
//!   seq 2 AUTH_RESPONSE  10 ms .. 3 s later
//!   seq 3.. one of STEP_UP_CHALLENGE (seconds), REVERSAL (minutes), CLEARING (hours),
//!           DISPUTE_UPDATE (hours), REFUND (hours..days), CHARGEBACK (days);
//!           fraud flows lean to step-ups, reversals and chargebacks
//! ```
//!
//! Clearing and chargebacks post in hourly batches and dispute updates every 15 minutes,
//! so those events sit exactly on batch instants: the large groups of exact ties across
//! files that a stream sort must order by file and row. Other events tie by the 10 ms
//! quantum alone.
//!
//! Times strictly increase within a flow from a flow start spread over the week, so the
//! file is sorted by key and unsorted by time. The baseline variant draws the very same
//! events (the streams are keyed by flow) and only lacks the fraud columns.

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};

use crate::gen::clock::TICK_MICROS;
use crate::gen::columns::{
    assemble, BatchSource, BoolCol, ConstColumns, FloatCol, IntCol, Utf8Col,
};
use crate::gen::rng::{Domain, SplitMix64};
use crate::gen::world::{Arrival, ArrivalCursor, World, MAX_EVENTS};
use crate::timefmt::{TsFormatter, UTC_LEN};

/// A later event kind: its share among normal and fraud flows, and its delay after the
/// previous event in 10 ms ticks (`min..max`, skewed towards `min`).
struct LaterKind {
    name: &'static str,
    weight: u32,
    fraud_weight: u32,
    min_ticks: u64,
    max_ticks: u64,
    /// Percentage range of the flow amount the event carries (refunds are partial).
    amount_pct: (u64, u64),
    /// Batch-posted events land on the next multiple of this many ticks (clearing runs
    /// hourly): thousands of rows in many files share these instants exactly.
    batch_ticks: Option<u64>,
}

const MINUTE: u64 = 6_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

static LATER_KINDS: &[LaterKind] = &[
    LaterKind {
        name: "STEP_UP_CHALLENGE",
        weight: 12,
        fraud_weight: 25,
        min_ticks: 100,
        max_ticks: MINUTE,
        amount_pct: (100, 100),
        batch_ticks: None,
    },
    LaterKind {
        name: "REVERSAL",
        weight: 8,
        fraud_weight: 10,
        min_ticks: MINUTE,
        max_ticks: HOUR,
        amount_pct: (100, 100),
        batch_ticks: None,
    },
    LaterKind {
        name: "CLEARING",
        weight: 45,
        fraud_weight: 25,
        min_ticks: HOUR,
        max_ticks: 2 * DAY,
        amount_pct: (100, 100),
        batch_ticks: Some(HOUR),
    },
    LaterKind {
        name: "DISPUTE_UPDATE",
        weight: 7,
        fraud_weight: 10,
        min_ticks: HOUR,
        max_ticks: 2 * DAY,
        amount_pct: (100, 100),
        batch_ticks: Some(15 * MINUTE),
    },
    LaterKind {
        name: "REFUND",
        weight: 25,
        fraud_weight: 10,
        min_ticks: HOUR,
        max_ticks: 5 * DAY,
        amount_pct: (10, 100),
        batch_ticks: None,
    },
    LaterKind {
        name: "CHARGEBACK",
        weight: 3,
        fraud_weight: 20,
        min_ticks: DAY,
        max_ticks: 7 * DAY,
        amount_pct: (100, 100),
        batch_ticks: Some(HOUR),
    },
];

/// One event of a flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowEvent {
    pub kind: &'static str,
    pub ts: i64,
    pub amount_cents: i64,
}

/// Draws a flow's events; owns the cumulative weight tables so the hot loop does not
/// rebuild them.
pub struct FlowEvents {
    normal_cum: Vec<u32>,
    fraud_cum: Vec<u32>,
}

impl Default for FlowEvents {
    fn default() -> Self {
        use crate::gen::clock::cumulative;
        FlowEvents {
            normal_cum: cumulative(LATER_KINDS.iter().map(|k| k.weight)),
            fraud_cum: cumulative(LATER_KINDS.iter().map(|k| k.fraud_weight)),
        }
    }
}

impl FlowEvents {
    /// Fill `out[..n]` with the `n` events of the flow opened by `arrival`.
    pub fn draw(&self, world: &World, arrival: &Arrival, n: usize, out: &mut [FlowEvent]) {
        let mut r = world.streams.stream(Domain::FlowEvents, arrival.slot.index);
        let mut ts = arrival.slot.ts;
        for (i, e) in out.iter_mut().take(n).enumerate() {
            *e = match i {
                0 => FlowEvent {
                    kind: "AUTH_REQUEST",
                    ts,
                    amount_cents: arrival.amount_cents,
                },
                1 => {
                    ts += (1 + r.below(300) as i64) * TICK_MICROS;
                    FlowEvent {
                        kind: "AUTH_RESPONSE",
                        ts,
                        amount_cents: arrival.amount_cents,
                    }
                }
                _ => {
                    let cum = if arrival.fraud {
                        &self.fraud_cum
                    } else {
                        &self.normal_cum
                    };
                    let k = &LATER_KINDS[r.weighted(cum)];
                    ts += skewed_ticks(&mut r, k.min_ticks, k.max_ticks) * TICK_MICROS;
                    if let Some(batch) = k.batch_ticks {
                        let step = batch as i64 * TICK_MICROS;
                        ts = (ts.div_euclid(step) + 1) * step;
                    }
                    let (lo, hi) = k.amount_pct;
                    let pct = lo + r.below(hi - lo + 1);
                    FlowEvent {
                        kind: k.name,
                        ts,
                        amount_cents: (arrival.amount_cents * pct as i64 / 100).max(1),
                    }
                }
            };
        }
    }
}

/// A delay in `min..max` ticks, squared-uniform so short delays dominate.
fn skewed_ticks(r: &mut SplitMix64, min: u64, max: u64) -> i64 {
    let u = r.unit();
    (min + ((max - min) as f64 * u * u) as u64) as i64
}

/// Rows of one traffic file.
pub struct EventStreamSource<'w> {
    world: &'w World,
    cursor: ArrivalCursor<'w>,
    schema: SchemaRef,
    consts: &'w ConstColumns,
    fraud_columns: bool,
    fmt: TsFormatter,
    draw: FlowEvents,
    events: [FlowEvent; MAX_EVENTS],
}

impl<'w> EventStreamSource<'w> {
    /// Flows `lo..hi`; `fraud_columns` selects the s3 (fraud) schema over the s2 one.
    pub fn new(
        world: &'w World,
        lo: u64,
        hi: u64,
        schema: SchemaRef,
        consts: &'w ConstColumns,
        fraud_columns: bool,
    ) -> Self {
        EventStreamSource {
            world,
            cursor: ArrivalCursor::new(world, lo, hi),
            schema,
            consts,
            fraud_columns,
            fmt: TsFormatter::default(),
            draw: FlowEvents::default(),
            events: [FlowEvent::default(); MAX_EVENTS],
        }
    }
}

impl BatchSource for EventStreamSource<'_> {
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, ArrowError> {
        if self.cursor.is_done() {
            return Ok(None);
        }
        let cap = max_rows + MAX_EVENTS;
        let mut flow_id = IntCol::new(cap, false);
        let mut event_seq = IntCol::new(cap, false);
        let mut event_type = Utf8Col::new(cap, 13, false);
        let mut ts_utc = Utf8Col::new(cap, UTC_LEN, false);
        let mut amount = FloatCol::new(cap);
        let mut fraud_flag = BoolCol::new(if self.fraud_columns { cap } else { 0 });
        let mut campaign_id = Utf8Col::new(if self.fraud_columns { cap } else { 0 }, 11, true);
        let mut rows = 0usize;
        while rows < max_rows {
            let Some(slot) = self.cursor.next_slot() else {
                break;
            };
            let a = self.world.arrival(slot, self.cursor.merchant());
            let n = self.world.events_in_flow(slot.index) as usize;
            self.draw.draw(self.world, &a, n, &mut self.events);
            for (i, e) in self.events[..n].iter().enumerate() {
                flow_id.push(a.flow_id);
                event_seq.push(i as i64 + 1);
                event_type.push(e.kind.as_bytes());
                ts_utc.push(&self.fmt.utc(e.ts));
                amount.push(e.amount_cents as f64 / 100.0);
                if self.fraud_columns {
                    fraud_flag.push(a.fraud);
                    match a.campaign {
                        Some(c) => campaign_id.push(self.world.campaigns[c].as_bytes()),
                        None => campaign_id.push_null(),
                    }
                }
            }
            rows += n;
        }
        let mut named = vec![
            ("flow_id", flow_id.finish()?),
            ("event_seq", event_seq.finish()?),
            ("event_type", event_type.finish()?),
            ("ts_utc", ts_utc.finish()?),
            ("amount", amount.finish()),
        ];
        if self.fraud_columns {
            named.push(("fraud_flag", fraud_flag.finish()));
            named.push(("campaign_id", campaign_id.finish()?));
        }
        named.extend(self.consts.slice(rows));
        assemble(&self.schema, named).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::world::Slot;

    #[test]
    fn flow_events_start_at_the_arrival_and_strictly_increase() {
        let w = World::plan(2, 5_000);
        let mut cur = ArrivalCursor::new(&w, 0, w.flows);
        let draw = FlowEvents::default();
        let mut out = [FlowEvent::default(); MAX_EVENTS];
        let mut kinds = std::collections::BTreeSet::new();
        while let Some(slot) = cur.next_slot() {
            let a = w.arrival(slot, cur.merchant());
            let n = w.events_in_flow(slot.index) as usize;
            assert!((1..=MAX_EVENTS).contains(&n));
            draw.draw(&w, &a, n, &mut out);
            assert_eq!(out[0].ts, slot.ts);
            assert_eq!(out[0].kind, "AUTH_REQUEST");
            assert!(out[..n].windows(2).all(|p| p[1].ts > p[0].ts));
            assert!(out[..n]
                .iter()
                .all(|e| e.ts % TICK_MICROS == 0 && e.amount_cents > 0));
            for e in out[..n].iter().filter(|e| e.kind == "CLEARING") {
                assert_eq!(
                    e.ts % (HOUR as i64 * TICK_MICROS),
                    0,
                    "clearing is batched hourly"
                );
            }
            kinds.extend(out[..n].iter().map(|e| e.kind));
        }
        assert_eq!(kinds.len(), 2 + LATER_KINDS.len(), "{kinds:?}");
    }

    #[test]
    fn same_flow_same_events() {
        let w = World::plan(2, 1_000);
        let m = w.merchant(0);
        let slot = Slot {
            index: 0,
            seq: 1,
            ts: 1_767_601_813_260_000,
        };
        let a = w.arrival(slot, &m);
        let draw = FlowEvents::default();
        let (mut x, mut y) = ([FlowEvent::default(); 8], [FlowEvent::default(); 8]);
        draw.draw(&w, &a, 8, &mut x);
        draw.draw(&w, &a, 8, &mut y);
        assert!(x
            .iter()
            .zip(&y)
            .all(|(p, q)| (p.kind, p.ts, p.amount_cents) == (q.kind, q.ts, q.amount_cents)));
    }
}
