//! The generator's randomness: SplitMix64 (Steele, Lea & Flood 2014), written out here
//! because the workspace does not take `rand`.
//!
//! Every random fact is drawn from a stream keyed by *what it describes*, never from a
//! shared sequence:
//!
//! ```text
//!   run key   = mix64(seed ^ RUN_SALT)
//!   domain    = mix64(run key ^ DOMAIN)            e.g. DOMAIN = ARRIVAL, FLOW_EVENTS
//!   stream    = SplitMix64::new(mix64(domain ^ index))   index = arrival / flow / merchant
//! ```
//!
//! So a flow's events are the same whichever file, thread or output draws them: the fraud
//! traffic, the baseline traffic and the flow anchors agree about every flow, and the bytes
//! of a file depend only on the arguments, not on scheduling.

/// The SplitMix64 output function: a bijective 64-bit mixer with full avalanche.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 generator: 8 bytes of state, passes BigCrush, trivially seekable.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform in `0..n` (`n > 0`) by multiply-shift; the bias (< n / 2^64) is irrelevant
    /// for synthetic data and the method needs no rejection loop.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index drawn with probability proportional to `weights[i]` (`cumulative` holds the
    /// running sums of the weights; its last entry is the total).
    #[inline]
    pub fn weighted(&mut self, cumulative: &[u32]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0) as u64;
        if total == 0 {
            return 0;
        }
        let x = self.below(total) as u32;
        cumulative.iter().position(|&c| x < c).unwrap_or(0)
    }
}

/// Independent keyed streams for one run (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    run_key: u64,
}

/// What a stream describes. The discriminants are salts: changing one changes the data.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Domain {
    /// How many events a flow has (one draw per flow; read twice while planning).
    FlowEventCount = 0x11,
    /// How many arrivals a merchant has.
    MerchantSize = 0x12,
    /// A merchant's fixed traits.
    Merchant = 0x13,
    /// A merchant's arrival times.
    ArrivalTimes = 0x17,
    /// Per-arrival facts shared by every output (fraud, amount, parties, devices).
    Arrival = 0x14,
    /// A flow's event sequence (types, gaps, per-event amounts).
    FlowEvents = 0x15,
    /// Per-arrival details only the 5B arrival events carry (site, edge, intensity).
    ArrivalRouting = 0x16,
}

impl Streams {
    pub fn new(seed: u64) -> Self {
        Streams {
            run_key: mix64(seed ^ 0x736c_7569_6365_6765), // "sluicege"
        }
    }

    /// The stream for entity `index` of `domain`.
    #[inline]
    pub fn stream(&self, domain: Domain, index: u64) -> SplitMix64 {
        SplitMix64::new(self.hash(domain, index))
    }

    /// One 64-bit draw for entity `index` of `domain` (cheaper than a stream when one
    /// number is all that is needed).
    #[inline]
    pub fn hash(&self, domain: Domain, index: u64) -> u64 {
        mix64(mix64(self.run_key ^ domain as u64) ^ index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_vector() {
        // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let a = Streams::new(7);
        let b = Streams::new(7);
        let c = Streams::new(8);
        let draw = |s: &Streams| {
            let mut r = s.stream(Domain::Arrival, 42);
            (0..16).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(&a), draw(&b));
        assert_ne!(draw(&a), draw(&c));
        // Domains and indices are independent streams too.
        assert_ne!(a.hash(Domain::Arrival, 1), a.hash(Domain::FlowEvents, 1));
        assert_ne!(a.hash(Domain::Arrival, 1), a.hash(Domain::Arrival, 2));
    }

    #[test]
    fn below_and_unit_stay_in_range_and_cover_it() {
        let mut r = SplitMix64::new(99);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let x = r.below(10);
            assert!(x < 10);
            seen[x as usize] += 1;
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn weighted_follows_weights() {
        let cumulative = [0u32, 10, 10, 40]; // weights 0, 10, 0, 30
        let mut r = SplitMix64::new(5);
        let mut seen = [0u32; 4];
        for _ in 0..4_000 {
            seen[r.weighted(&cumulative)] += 1;
        }
        assert_eq!(seen[0], 0);
        assert_eq!(seen[2], 0);
        assert!(seen[3] > 2 * seen[1], "{seen:?}");
    }
}
