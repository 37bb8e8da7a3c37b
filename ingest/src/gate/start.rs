//! `ig/start.json`: where this platform run begins on a bus whose topics outlive a run.
//!
//! Kafka topics are shared by every run that replays into the same cluster; the file bus
//! lives in the run's own directory. On a shared bus a *new* gate state must not treat the
//! records another run left on the topics as its own, so it writes down, before it appends
//! anything, each partition's end offset: the run's **start offsets**.
//!
//! ```json
//! {"format":"sluice-ig-start","version":1,
//!  "topics":{"fp.bus.traffic.fraud.v1":{"0":301234,"1":299876}}}
//! ```
//!
//! ```text
//!   kafka partition:  [0 ........ start) [start ...... wm) [wm ...... end)
//!                      other runs         this run's        appended, receipts
//!                      (never read)       receipts          lost in a crash
//! ```
//!
//! Rules (one reader of them each: reconciliation, `ingest verify`, `parity bus`):
//!
//! 1. no `start.json` (the file bus, or a gate state older than this file): every partition
//!    starts at offset 0, exactly as before;
//! 2. a new gate state on a shared bus writes `start.json` *before* `gate.json`, with the end
//!    offset of every partition of every platform topic that exists at that moment; a crash
//!    between the two leaves no `gate.json`, so the next open starts over;
//! 3. a topic (or partition) absent then gets its entry at first use, before the gate's first
//!    append to it ([`StartOffsets::cover`]): 0 for a topic this run just created, the end
//!    for one another run created in between;
//! 4. a topic or partition with no entry was never written by this run: it is not read.
//!
//! Every change is published atomically (temp, fsync, rename, fsync dir).
//!
//! Start offsets only cut off what was there *before* the run. Another run appending to the
//! same topics later (or at the same time) leaves its records among this run's; so, with a
//! `start.json`, the same three readers also pass over any record whose envelope names
//! another `platform_run_id` ([`is_other_run`]): a resumed run never adopts them, its audit
//! never judges them. Without one (the file bus) every record is judged, as before.

use std::path::{Path, PathBuf};

use sluice_storage::outputs::OUTPUTS;
use sluice_storage::publish::{read_json, write_json_atomic};

use super::manifest::{check_version, Identity, Watermarks, VERSION};
use crate::error::{IngestError, Result};
use crate::json::top_level_span;
use crate::sink::Sink;

pub const START_FORMAT: &str = "sluice-ig-start";
pub const START_FILE: &str = "start.json";

/// Whether the envelope `value` names a `platform_run_id` other than `run` (an envelope
/// without one is not "another run's": the readers judge it as before).
pub fn is_other_run(value: &[u8], run: &str) -> bool {
    let Some(raw) = top_level_span(value, "platform_run_id").and_then(|s| value.get(s)) else {
        return false;
    };
    // Fast path: a plain quoted string compares byte for byte.
    if raw.len() >= 2 && raw[0] == b'"' && !raw.contains(&b'\\') {
        return &raw[1..raw.len() - 1] != run.as_bytes();
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|r| r != run)
}

/// The body of `ig/start.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StartFile {
    format: String,
    version: u32,
    topics: Watermarks,
}

/// A run's start offsets: `None` inside means "no start.json", every partition from 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOffsets {
    topics: Option<Watermarks>,
    path: PathBuf,
    /// The gate's run (from `gate.json` when [`StartOffsets::read`] found one, or given to
    /// [`StartOffsets::create`]).
    run: Option<String>,
}

impl StartOffsets {
    /// Read `<ig>/start.json` (an absent file means every partition starts at 0) and the
    /// run id from `<ig>/gate.json` if there is one.
    pub fn read(ig: &Path) -> Result<StartOffsets> {
        let path = ig.join(START_FILE);
        let run = if ig.join("gate.json").exists() {
            Some(Identity::check_or_create(ig, None, false)?.platform_run_id)
        } else {
            None
        };
        if !path.exists() {
            return Ok(StartOffsets {
                topics: None,
                path,
                run,
            });
        }
        let v: serde_json::Value = read_json(&path)?;
        check_version(&path, &v, START_FORMAT, VERSION)?;
        let f: StartFile =
            serde_json::from_value(v).map_err(|e| IngestError::corrupt(&path, 0, e.to_string()))?;
        Ok(StartOffsets {
            topics: Some(f.topics),
            path,
            run,
        })
    }

    /// Rule 2: record the current end of every partition of every existing platform topic
    /// and publish it (replacing a file a crash left without `gate.json`). `run` is the
    /// platform run the new gate state is for ([`StartOffsets::is_other_run`]).
    pub(crate) fn create(ig: &Path, sink: &mut dyn Sink, run: &str) -> Result<StartOffsets> {
        let mut s = StartOffsets {
            topics: Some(Watermarks::new()),
            path: ig.join(START_FILE),
            run: Some(run.to_string()),
        };
        let mut topics: Vec<&str> = OUTPUTS.iter().map(|o| o.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        for topic in topics {
            let parts = sink
                .partitions(topic)
                .map_err(|e| IngestError::sink(topic, e))?;
            if let Some(n) = parts {
                s.fill(sink, topic, n)?;
            }
        }
        s.publish()?;
        Ok(s)
    }

    /// Whether there is a `start.json` (a shared bus).
    pub fn is_recorded(&self) -> bool {
        self.topics.is_some()
    }

    /// Where this run begins in a partition; `None`: never written by this run (rule 4).
    pub fn start(&self, topic: &str, partition: u32) -> Option<u64> {
        match &self.topics {
            None => Some(0),
            Some(t) => t.get(topic)?.get(&partition).copied(),
        }
    }

    /// Whether `value` is an envelope of another platform run than the gate's
    /// ([`is_other_run`]). Only on a shared bus: without `start.json` (the file bus, a bus
    /// of one run) every record is judged, as before.
    pub fn is_other_run(&self, value: &[u8]) -> bool {
        self.topics.is_some() && self.run.as_deref().is_some_and(|r| is_other_run(value, r))
    }

    /// Rule 3: give partitions `0..partitions` of `topic` an entry (their current end) if
    /// they have none, and publish before the caller appends. Without a `start.json`, nothing.
    pub(crate) fn cover(
        &mut self,
        sink: &mut dyn Sink,
        topic: &str,
        partitions: u32,
    ) -> Result<()> {
        if self.fill(sink, topic, partitions)? {
            self.publish()?;
        }
        Ok(())
    }

    /// Add missing entries; true if any was added.
    fn fill(&mut self, sink: &mut dyn Sink, topic: &str, partitions: u32) -> Result<bool> {
        let Some(topics) = self.topics.as_mut() else {
            return Ok(false);
        };
        let mut added = false;
        for p in 0..partitions {
            if topics.get(topic).is_some_and(|m| m.contains_key(&p)) {
                continue;
            }
            let end = sink
                .end_offset(topic, p)
                .map_err(|e| IngestError::sink(topic, e))?;
            topics.entry(topic.to_string()).or_default().insert(p, end);
            added = true;
        }
        Ok(added)
    }

    fn publish(&self) -> Result<()> {
        let Some(topics) = &self.topics else {
            return Ok(());
        };
        let f = StartFile {
            format: START_FORMAT.into(),
            version: VERSION,
            topics: topics.clone(),
        };
        Ok(write_json_atomic(&self.path, &f)?)
    }
}
