//! The synthetic world behind every generated output: merchants, their arrivals, and the
//! flow each arrival opens. All outputs are views of this one world, so they agree (the
//! flow anchor of flow `f` has the time of event 1 of flow `f`, the arrival entity and the
//! 5B arrival event of the same arrival share merchant, sequence and time).
//!
//! ```text
//!   merchants m = 0..M (sizes heavy-tailed)      arrivals a = 0..A, merchant-major
//!   |---- m0 ----|-- m1 --|------- m2 -------|   a -> (merchant_id, arrival_seq, ts_utc)
//!   flow f = arrival a (flow_id = FLOW_ID_BASE + a), with 1..8 events
//! ```
//!
//! Planning is two cheap passes (one hash per flow, one per merchant): count flows until
//! their events reach the requested traffic rows (the last flow is clipped so the total is
//! exact), then lay out merchants over those arrivals. Nothing per row is kept in memory;
//! each generator walks its own range with an [`ArrivalCursor`].
//!
//! Inside a merchant, arrivals are numbered in time order (as the engine numbers them), so
//! time rises within each merchant's run of rows and jumps back at the next merchant:
//! sorted in primary-key order, unsorted in time.

use crate::gen::clock::{
    cumulative, window_start_micros, Zone, DAY_MICROS, HOURLY_WEIGHTS, HOUR_MICROS, TICK_MICROS,
    WINDOW_DAYS, ZONES,
};
use crate::gen::rng::{Domain, SplitMix64, Streams};

pub const FLOW_ID_BASE: i64 = 10_000_000_000;
const MERCHANT_ID_BASE: i64 = 100_000;
const PARTY_ID_BASE: i64 = 20_000_000_000;
const ACCOUNT_ID_BASE: i64 = 30_000_000_000;
const INSTRUMENT_ID_BASE: i64 = 40_000_000_000;
const DEVICE_ID_BASE: i64 = 50_000_000_000;
const IP_ID_BASE: i64 = 60_000_000_000;
const SESSION_ID_BASE: i64 = 70_000_000_000;
/// Devices and IPs shared by a fraud campaign live in their own id block.
const CAMPAIGN_POOL_BASE: i64 = 9_000_000_000;

/// Relative frequency of flows with 1..=8 events (mean about 3.8, like the engine's
/// 473M traffic rows over 124.7M arrivals).
const EVENT_COUNT_WEIGHTS: [u32; 8] = [10, 22, 18, 15, 13, 10, 7, 5];
pub const MAX_EVENTS: usize = EVENT_COUNT_WEIGHTS.len();
/// Share of flows that are fraud.
const FRAUD_RATE: f64 = 0.02;
/// Share of fraud flows attributed to a campaign (the rest are opportunistic).
const CAMPAIGN_RATE: f64 = 0.85;
const CAMPAIGNS: u64 = 24;
const VIRTUAL_MERCHANT_RATE: f64 = 0.08;

/// The planned world for one seed and traffic size.
#[derive(Debug)]
pub struct World {
    pub streams: Streams,
    /// Number of flows (= arrivals).
    pub flows: u64,
    /// Exactly the requested traffic rows.
    pub traffic_rows: u64,
    /// Events of the last flow after clipping to `traffic_rows`.
    last_flow_events: u32,
    /// `merchant_start[m]..merchant_start[m + 1]` are merchant `m`'s arrivals.
    merchant_start: Vec<u64>,
    event_count_cum: Vec<u32>,
    zone_cum: Vec<u32>,
    hour_cum: Vec<u32>,
    /// `campaign_id` values, indexed by campaign number.
    pub campaigns: Vec<String>,
    parties: u64,
    ips: u64,
}

/// A merchant's fixed traits.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub index: u64,
    pub id: i64,
    pub zone: &'static Zone,
    pub settlement_zone: &'static Zone,
    pub is_virtual: bool,
    /// Physical sites (0 for virtual merchants).
    pub sites: u64,
    /// Mean arrivals per hour over the window (the 5B intensity scale).
    pub mean_rate: f64,
    pub first_arrival: u64,
    pub arrivals: u64,
}

/// One arrival's place: global index, its merchant's sequence number (1-based), its time.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub index: u64,
    pub seq: u64,
    pub ts: i64,
}

/// Facts of one arrival (and of the flow it opens) that several outputs carry.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub slot: Slot,
    pub flow_id: i64,
    pub merchant_id: i64,
    pub fraud: bool,
    /// Index into `World::campaigns`.
    pub campaign: Option<usize>,
    pub amount_cents: i64,
    pub party_id: i64,
    pub account_id: i64,
    pub instrument_id: i64,
    pub device_id: i64,
    pub ip_id: i64,
    pub session_id: i64,
}

impl World {
    /// Plan the world that yields exactly `traffic_rows` traffic rows (`> 0`).
    pub fn plan(seed: u64, traffic_rows: u64) -> World {
        let streams = Streams::new(seed);
        let event_count_cum = cumulative(EVENT_COUNT_WEIGHTS);
        let mut world = World {
            streams,
            flows: 0,
            traffic_rows,
            last_flow_events: 0,
            merchant_start: Vec::new(),
            event_count_cum,
            zone_cum: cumulative(ZONES.iter().map(|z| z.weight)),
            hour_cum: cumulative(HOURLY_WEIGHTS),
            campaigns: (0..CAMPAIGNS)
                .map(|k| format!("cmp-{:04x}-{k:02}", seed & 0xffff))
                .collect(),
            parties: 1,
            ips: 1,
        };
        // Pass 1: flows until their events cover the rows; clip the last one.
        let mut rows = 0u64;
        while rows < traffic_rows {
            let n = world.natural_events(world.flows) as u64;
            world.last_flow_events = n.min(traffic_rows - rows) as u32;
            rows += n;
            world.flows += 1;
        }
        world.parties = (world.flows / 4).max(1);
        world.ips = (world.flows / 6).max(1);
        // Pass 2: heavy-tailed merchant sizes over the arrivals.
        world.merchant_start.push(0);
        let mut covered = 0u64;
        let mut m = 0u64;
        while covered < world.flows {
            let u = 1.0
                - (world.streams.hash(Domain::MerchantSize, m) >> 11) as f64 / (1u64 << 53) as f64;
            let size = (8.0 * u.powf(-0.7)).ceil().min(200_000.0) as u64;
            covered = (covered + size).min(world.flows);
            world.merchant_start.push(covered);
            m += 1;
        }
        world
    }

    /// Events of flow `f` before clipping (1..=8).
    fn natural_events(&self, flow: u64) -> u32 {
        let h = self.streams.hash(Domain::FlowEventCount, flow);
        let total = *self.event_count_cum.last().unwrap_or(&1) as u64;
        let x = ((h as u128 * total as u128) >> 64) as u32;
        self.event_count_cum
            .iter()
            .position(|&c| x < c)
            .unwrap_or(0) as u32
            + 1
    }

    /// Events of flow `f` (the last flow is clipped so traffic rows are exact).
    pub fn events_in_flow(&self, flow: u64) -> u32 {
        if flow + 1 == self.flows {
            self.last_flow_events
        } else {
            self.natural_events(flow)
        }
    }

    pub fn merchants(&self) -> u64 {
        self.merchant_start.len() as u64 - 1
    }

    /// Flow boundaries of `files` traffic files with about equal rows: file `k` holds flows
    /// `cuts[k]..cuts[k + 1]`. `files` must be in `1..=flows`; every file gets >= 1 flow.
    pub fn traffic_cuts(&self, files: u64) -> Vec<u64> {
        let mut cuts = Vec::with_capacity(files as usize + 1);
        cuts.push(0);
        let mut rows = 0u64;
        let mut flow = 0u64;
        for k in 1..files {
            let target = (self.traffic_rows as u128 * k as u128 / files as u128) as u64;
            while rows < target && flow < self.flows {
                rows += self.events_in_flow(flow) as u64;
                flow += 1;
            }
            let lowest = cuts[k as usize - 1] + 1;
            let highest = self.flows - (files - k);
            let cut = flow.clamp(lowest, highest);
            // Keep `rows` in step if the clamp moved the cut.
            while flow < cut {
                rows += self.events_in_flow(flow) as u64;
                flow += 1;
            }
            cuts.push(cut);
        }
        cuts.push(self.flows);
        cuts
    }

    /// Rows of the traffic file holding flows `lo..hi`.
    pub fn traffic_rows_in(&self, lo: u64, hi: u64) -> u64 {
        (lo..hi).map(|f| self.events_in_flow(f) as u64).sum()
    }

    /// The merchant owning arrival `a`.
    pub fn merchant_of(&self, arrival: u64) -> u64 {
        (self.merchant_start.partition_point(|&s| s <= arrival) - 1) as u64
    }

    /// Merchant `m`'s traits.
    pub fn merchant(&self, m: u64) -> Merchant {
        let mut r = self.streams.stream(Domain::Merchant, m);
        let first_arrival = self.merchant_start[m as usize];
        let arrivals = self.merchant_start[m as usize + 1] - first_arrival;
        let zone = &ZONES[r.weighted(&self.zone_cum)];
        let settlement_zone = if r.chance(0.75) {
            zone
        } else {
            &ZONES[r.weighted(&self.zone_cum)]
        };
        let is_virtual = r.chance(VIRTUAL_MERCHANT_RATE);
        let sites = if is_virtual { 0 } else { 1 + r.below(5) };
        Merchant {
            index: m,
            // Strictly increasing in `m` with gaps, so ids look issued, not counted.
            id: MERCHANT_ID_BASE + m as i64 * 8 + r.below(8) as i64,
            zone,
            settlement_zone,
            is_virtual,
            sites,
            mean_rate: arrivals as f64 / (WINDOW_DAYS * 24) as f64,
            first_arrival,
            arrivals,
        }
    }

    /// Merchant `m`'s arrival times, ascending: day, then local hour along the daily
    /// curve, then a 10 ms tick, converted from local time to UTC.
    pub fn arrival_times(&self, merchant: &Merchant, out: &mut Vec<i64>) {
        out.clear();
        let mut r = self.streams.stream(Domain::ArrivalTimes, merchant.index);
        let start = window_start_micros() - merchant.zone.offset_micros();
        for _ in 0..merchant.arrivals {
            let day = r.below(WINDOW_DAYS) as i64;
            let hour = r.weighted(&self.hour_cum) as i64;
            let tick = r.below((HOUR_MICROS / TICK_MICROS) as u64) as i64;
            out.push(start + day * DAY_MICROS + hour * HOUR_MICROS + tick * TICK_MICROS);
        }
        out.sort_unstable();
    }

    /// Facts of the arrival in `slot`, which belongs to `merchant`.
    pub fn arrival(&self, slot: Slot, merchant: &Merchant) -> Arrival {
        let mut r = self.streams.stream(Domain::Arrival, slot.index);
        let fraud = r.chance(FRAUD_RATE);
        let campaign_draw = r.below(CAMPAIGNS) as usize;
        let campaign = (fraud && r.chance(CAMPAIGN_RATE)).then_some(campaign_draw);
        let amount_cents = lognormal_cents(&mut r, if fraud { (4.2, 0.8) } else { (3.3, 1.0) });
        let party = r.below(self.parties) as i64;
        let account = party * 2 + r.below(2) as i64;
        let instrument = account * 2 + r.below(2) as i64;
        let pooled = |r: &mut SplitMix64, c: usize, size: u64| {
            CAMPAIGN_POOL_BASE + c as i64 * 64 + r.below(size) as i64
        };
        let (device_id, ip_id) = match campaign {
            // Campaigns reuse a few devices and IPs: the signal fraud models look for.
            Some(c) => (
                DEVICE_ID_BASE + pooled(&mut r, c, 16),
                IP_ID_BASE + pooled(&mut r, c, 8),
            ),
            None => (
                DEVICE_ID_BASE + party * 2 + r.below(2) as i64,
                IP_ID_BASE + r.below(self.ips) as i64,
            ),
        };
        // One session per party and day of the window.
        let day = (slot.ts - window_start_micros() + DAY_MICROS).div_euclid(DAY_MICROS);
        Arrival {
            slot,
            flow_id: FLOW_ID_BASE + slot.index as i64,
            merchant_id: merchant.id,
            fraud,
            campaign,
            amount_cents,
            party_id: PARTY_ID_BASE + party,
            account_id: ACCOUNT_ID_BASE + account,
            instrument_id: INSTRUMENT_ID_BASE + instrument,
            device_id,
            ip_id,
            session_id: SESSION_ID_BASE + party * (WINDOW_DAYS as i64 + 2) + day,
        }
    }
}

/// A log-normal amount in cents (Irwin-Hall approximation of a standard normal), >= 0.50.
fn lognormal_cents(r: &mut SplitMix64, (mu, sigma): (f64, f64)) -> i64 {
    let z = (r.unit() + r.unit() + r.unit() + r.unit() - 2.0) * 3f64.sqrt();
    ((mu + sigma * z).exp() * 100.0).round().max(50.0) as i64
}

/// Walks arrivals `lo..hi` in primary-key order, loading each merchant's sorted times once.
pub struct ArrivalCursor<'w> {
    world: &'w World,
    next: u64,
    end: u64,
    merchant: Merchant,
    times: Vec<i64>,
}

impl<'w> ArrivalCursor<'w> {
    pub fn new(world: &'w World, lo: u64, hi: u64) -> Self {
        let m = world.merchant_of(lo.min(world.flows.saturating_sub(1)));
        let merchant = world.merchant(m);
        let mut times = Vec::new();
        world.arrival_times(&merchant, &mut times);
        ArrivalCursor {
            world,
            next: lo,
            end: hi,
            merchant,
            times,
        }
    }

    /// The merchant of the slot last returned.
    pub fn merchant(&self) -> &Merchant {
        &self.merchant
    }

    pub fn is_done(&self) -> bool {
        self.next >= self.end
    }

    /// The next arrival's slot, or `None` past the end of the range.
    pub fn next_slot(&mut self) -> Option<Slot> {
        if self.next >= self.end {
            return None;
        }
        let a = self.next;
        if a >= self.merchant.first_arrival + self.merchant.arrivals {
            self.merchant = self.world.merchant(self.merchant.index + 1);
            self.world.arrival_times(&self.merchant, &mut self.times);
        }
        self.next += 1;
        let j = a - self.merchant.first_arrival;
        Some(Slot {
            index: a,
            seq: j + 1,
            ts: self.times[j as usize],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_hits_the_row_count_exactly() {
        for rows in [1u64, 2, 7, 8, 9, 1_000, 123_457] {
            let w = World::plan(11, rows);
            assert_eq!(w.traffic_rows_in(0, w.flows), rows, "rows={rows}");
            assert!(w.events_in_flow(w.flows - 1) >= 1);
            assert_eq!(*w.merchant_start.last().unwrap(), w.flows);
        }
    }

    #[test]
    fn traffic_cuts_cover_all_flows_with_nonempty_balanced_files() {
        let w = World::plan(5, 100_000);
        for files in [1u64, 2, 3, 8, 40] {
            let cuts = w.traffic_cuts(files);
            assert_eq!(cuts.len() as u64, files + 1);
            assert_eq!((cuts[0], *cuts.last().unwrap()), (0, w.flows));
            let sizes: Vec<u64> = cuts
                .windows(2)
                .map(|c| w.traffic_rows_in(c[0], c[1]))
                .collect();
            assert_eq!(sizes.iter().sum::<u64>(), 100_000);
            let ideal = 100_000 / files;
            assert!(sizes.iter().all(|&s| s.abs_diff(ideal) <= 8), "{sizes:?}");
        }
        // As many files as flows: one flow each.
        let small = World::plan(5, 20);
        let cuts = small.traffic_cuts(small.flows);
        assert!(cuts.windows(2).all(|c| c[1] == c[0] + 1), "{cuts:?}");
    }

    #[test]
    fn cursor_walks_merchants_in_key_order_with_times_sorted_per_merchant() {
        let w = World::plan(3, 50_000);
        let lo = w.flows / 3;
        let mut cur = ArrivalCursor::new(&w, lo, w.flows);
        let mut prev: Option<(i64, u64, i64)> = None;
        let mut seen = 0u64;
        while let Some(slot) = cur.next_slot() {
            let key = (cur.merchant().id, slot.seq, slot.ts);
            assert_eq!(w.merchant_of(slot.index), cur.merchant().index);
            if let Some((m, s, t)) = prev {
                assert!((key.0, key.1) > (m, s), "pk order");
                if key.0 == m {
                    assert!(key.2 >= t, "time order within a merchant");
                }
            }
            prev = Some(key);
            seen += 1;
        }
        assert_eq!(seen, w.flows - lo);
    }

    #[test]
    fn arrival_facts_are_a_function_of_the_arrival() {
        let w = World::plan(9, 10_000);
        let m = w.merchant(0);
        let mut times = Vec::new();
        w.arrival_times(&m, &mut times);
        let slot = Slot {
            index: 0,
            seq: 1,
            ts: times[0],
        };
        let (a, b) = (w.arrival(slot, &m), w.arrival(slot, &m));
        assert_eq!(
            (a.party_id, a.amount_cents, a.fraud, a.device_id),
            (b.party_id, b.amount_cents, b.fraud, b.device_id)
        );
    }

    #[test]
    fn fraud_is_rare_and_campaigns_only_mark_fraud() {
        let w = World::plan(4, 200_000);
        let mut cur = ArrivalCursor::new(&w, 0, w.flows);
        let (mut fraud, mut campaigns) = (0u64, 0u64);
        while let Some(slot) = cur.next_slot() {
            let a = w.arrival(slot, cur.merchant());
            fraud += a.fraud as u64;
            campaigns += a.campaign.is_some() as u64;
            assert!(a.campaign.is_none() || a.fraud);
            assert!(a.amount_cents >= 50);
        }
        let rate = fraud as f64 / w.flows as f64;
        assert!((0.01..0.03).contains(&rate), "fraud rate {rate}");
        assert!(campaigns > 0 && campaigns < fraud);
    }
}
