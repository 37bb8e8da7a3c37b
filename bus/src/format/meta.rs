//! The JSON metadata files: `bus.json`, `topic.json` and consumer-group offsets, with
//! their format names and versions (`docs/format.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::Compression;

/// `format` of `bus.json`.
pub const BUS_FORMAT: &str = "sluice-bus";
/// `format` of `topic.json`.
pub const TOPIC_FORMAT: &str = "sluice-bus-topic";
/// `format` of a group offsets file.
pub const GROUP_FORMAT: &str = "sluice-bus-group-offsets";
/// Version of all three.
pub const META_VERSION: u64 = 1;
/// Cap on a metadata file's size.
pub const MAX_META_BYTES: u64 = 1 << 20;

/// `bus.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusMeta {
    pub format: String,
    pub version: u64,
}

/// A topic's creation settings (`topic.json` `config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub retention_bytes: Option<u64>,
    pub retention_ms: Option<u64>,
    pub compression: Compression,
    pub zstd_level: i32,
    pub index_interval_bytes: u32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: None,
            retention_ms: None,
            compression: Compression::None,
            zstd_level: 3,
            index_interval_bytes: 4096,
        }
    }
}

/// `topic.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicMeta {
    pub format: String,
    pub version: u64,
    pub name: String,
    pub partitions: u32,
    pub created_unix_ms: u64,
    pub config: TopicConfig,
}

/// `groups/<group>/<topic>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupOffsets {
    pub format: String,
    pub version: u64,
    pub group: String,
    pub topic: String,
    /// Partition number (decimal string) -> next offset to consume.
    pub offsets: BTreeMap<String, u64>,
}
