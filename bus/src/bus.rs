//! The bus handle: a directory (`bus.json`, `topics/`, `groups/`) plus the options every
//! producer opened through it uses (durability policy, fsync implementation, batch size).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::consumer::{Consumer, PartitionReader, StartAt};
use crate::error::{BusError, Result};
use crate::format::meta::{
    BusMeta, TopicConfig, TopicMeta, BUS_FORMAT, MAX_META_BYTES, META_VERSION,
};
use crate::producer::Producer;
use crate::publish;
use crate::sync::{Durability, OsSync, Syncer};
use crate::topic;

/// Options of a bus handle.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// When appends are acknowledged.
    pub durability: Durability,
    /// How files are fsynced (tests inject failures here).
    pub syncer: Arc<dyn Syncer>,
    /// Target size of one batch's records section; larger appends are split.
    pub batch_target_bytes: usize,
    /// Drop durable log bytes more than `sync::KEEP_CACHED_BYTES` behind the end from the
    /// page cache after each fsync (`sync` module docs). Off by default: consumers reading
    /// behind the writer read from memory. Bulk loaders that will not read back soon (the
    /// gate's replay) turn it on.
    pub drop_behind: bool,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            durability: Durability::EveryBatch,
            syncer: Arc::new(OsSync),
            batch_target_bytes: 1 << 20,
            drop_behind: false,
        }
    }
}

/// A file bus on local disk.
#[derive(Debug, Clone)]
pub struct Bus {
    root: PathBuf,
    options: BusOptions,
}

impl Bus {
    /// Open the bus in `root`, creating it (directory and `bus.json`) if it does not exist.
    pub fn create(root: impl Into<PathBuf>, options: BusOptions) -> Result<Bus> {
        let root = root.into();
        let marker = root.join("bus.json");
        if !marker.exists() {
            std::fs::create_dir_all(&root).map_err(|e| BusError::io(&root, e))?;
            let meta = BusMeta {
                format: BUS_FORMAT.to_string(),
                version: META_VERSION,
            };
            publish::write_json_atomic(&marker, &meta)?;
        }
        Bus::open(root, options)
    }

    /// Open an existing bus (`BUS_NOT_FOUND` if `root` has no `bus.json`).
    pub fn open(root: impl Into<PathBuf>, options: BusOptions) -> Result<Bus> {
        let root = root.into();
        let marker = root.join("bus.json");
        if !marker.exists() {
            return Err(BusError::NotFound { path: root });
        }
        let meta: BusMeta = publish::read_json(&marker, MAX_META_BYTES)?;
        if meta.format != BUS_FORMAT {
            return Err(BusError::MetadataInvalid {
                path: marker,
                reason: format!("format is {:?}, not {BUS_FORMAT:?}", meta.format),
            });
        }
        if meta.version > META_VERSION {
            return Err(BusError::UnsupportedVersion {
                path: marker,
                position: 0,
                found: meta.version,
                supported: META_VERSION,
            });
        }
        Ok(Bus { root, options })
    }

    /// The bus directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options producers get.
    pub fn options(&self) -> &BusOptions {
        &self.options
    }

    /// Create a topic (`BUS_TOPIC_EXISTS` if it exists).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicMeta> {
        topic::create(&self.root, name, partitions, config)
    }

    /// The topic, created with `partitions` and `config` if missing; an existing topic
    /// with another partition count is `BUS_TOPIC_MISMATCH`.
    pub fn ensure_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicMeta> {
        match topic::load(&self.root, name) {
            Ok(meta) if meta.partitions == partitions => Ok(meta),
            Ok(meta) => Err(BusError::TopicMismatch {
                topic: name.to_string(),
                detail: format!("{} partitions, not {partitions}", meta.partitions),
            }),
            Err(BusError::TopicNotFound { .. }) => {
                match self.create_topic(name, partitions, config) {
                    Err(BusError::TopicExists { .. }) => topic::load(&self.root, name),
                    other => other,
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A topic's metadata.
    pub fn topic(&self, name: &str) -> Result<TopicMeta> {
        topic::load(&self.root, name)
    }

    /// Names of all topics, sorted.
    pub fn topics(&self) -> Result<Vec<String>> {
        topic::list(&self.root)
    }

    /// The directory of a partition (checked against the topic's partition count).
    pub fn partition_dir(&self, meta: &TopicMeta, partition: u32) -> Result<PathBuf> {
        if partition >= meta.partitions {
            return Err(BusError::PartitionNotFound {
                topic: meta.name.clone(),
                partition,
                partitions: meta.partitions,
            });
        }
        Ok(topic::partition_dir(&self.root, &meta.name, partition))
    }

    /// A producer for every partition of `topic` (takes their lock files).
    pub fn producer(&self, topic: &str) -> Result<Producer> {
        Producer::open(self, self.topic(topic)?)
    }

    /// A consumer over every partition of `topic`.
    pub fn consumer(&self, topic: &str, start: StartAt) -> Result<Consumer> {
        Consumer::open(self, topic, start)
    }

    /// A reader of one partition.
    pub fn partition_reader(
        &self,
        topic: &str,
        partition: u32,
        start: StartAt,
    ) -> Result<PartitionReader> {
        let meta = self.topic(topic)?;
        let dir = self.partition_dir(&meta, partition)?;
        PartitionReader::open(dir, topic, partition, start)
    }
}
