//! Shared helpers of the bus integration tests: a seeded PRNG (no `rand`), record models and
//! small constructors.

#![allow(dead_code)]

use std::path::Path;

use sluice_bus::{Bus, BusOptions, Durability, OwnedRecord, StartAt, TopicConfig};

/// splitmix64: small, seeded, good enough to drive test cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A record as the tests model it (owned, without offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Model {
    pub fn matches(&self, r: &OwnedRecord) -> bool {
        self.key == r.key
            && self.value == r.value
            && self.timestamp == r.timestamp
            && self.headers == r.headers
    }
}

/// A bus in `dir` with the given durability.
pub fn bus(dir: &Path, durability: Durability) -> Bus {
    Bus::create(
        dir,
        BusOptions {
            durability,
            ..BusOptions::default()
        },
    )
    .unwrap()
}

/// A small-segment config (forces rolls).
pub fn small_segments(segment_bytes: u64) -> TopicConfig {
    TopicConfig {
        segment_bytes,
        index_interval_bytes: 256,
        ..TopicConfig::default()
    }
}

/// Every record of a partition from `start`, read until caught up.
pub fn read_all(bus: &Bus, topic: &str, partition: u32, start: StartAt) -> Vec<OwnedRecord> {
    let mut r = bus.partition_reader(topic, partition, start).unwrap();
    let mut out = Vec::new();
    while let Some(b) = r.next_batch().unwrap() {
        out.extend(b.records().map(|r| r.to_owned_record()));
    }
    out
}

/// Values `0..n` as records with timestamps `base + i`.
pub fn numbered(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"n\":{i}}}").into_bytes())
        .collect()
}
