//! `ig/contexts.jsonl`: what receipts share, stored once. A context is an event type with its
//! class, topic and the seven pins; a receipt record holds only the context's id (its line
//! number). A replay of one engine run uses one context per output.
//!
//! A new context is appended and fsynced before the first receipt that names it is written,
//! so a receipt never points at a context that a crash lost. A torn last line (no newline)
//! is cut by the writer and ignored by readers.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sluice_storage::outputs::OutputSpec;

use crate::envelope::{RowPins, RunContext, PIN_FIELDS};
use crate::error::{IngestError, Result};

/// One line of `contexts.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReceiptContext {
    pub id: u32,
    pub event_type: String,
    pub event_class: Option<String>,
    pub topic: Option<String>,
    /// The seven pins (null where missing), `seed` a number.
    pub pins: Map<String, Value>,
}

impl ReceiptContext {
    /// The `platform_run_id` pin, if it is a string.
    pub fn platform_run_id(&self) -> Option<&str> {
        self.pins.get("platform_run_id").and_then(Value::as_str)
    }
}

/// The pins object of a receipt from the run's and the row's pins.
pub fn pins_map(run: &RunContext, row: &RowPins) -> Map<String, Value> {
    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let seed = match &row.seed {
        None => Value::Null,
        Some(t) => t
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(t.clone())),
    };
    let mut m = Map::new();
    m.insert("manifest_fingerprint".into(), s(&row.manifest_fingerprint));
    m.insert("parameter_hash".into(), s(&row.parameter_hash));
    m.insert("seed".into(), seed);
    m.insert("scenario_id".into(), s(&row.scenario_id));
    m.insert("run_id".into(), Value::String(run.run_id.clone()));
    m.insert(
        "platform_run_id".into(),
        Value::String(run.platform_run_id.clone()),
    );
    m.insert(
        "scenario_run_id".into(),
        Value::String(run.scenario_run_id.clone()),
    );
    m
}

/// The pins object of a receipt from an envelope given as JSON.
pub fn pins_from_envelope(env: &Map<String, Value>) -> Map<String, Value> {
    PIN_FIELDS
        .iter()
        .map(|k| (k.to_string(), env.get(*k).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// The contexts of a gate.
#[derive(Debug)]
pub struct Contexts {
    path: PathBuf,
    writer: Option<File>,
    list: Vec<ReceiptContext>,
    by_key: HashMap<String, u32>,
}

fn key_of(event_type: &str, pins: &Map<String, Value>) -> String {
    // serde_json maps are sorted, so this is canonical.
    format!("{event_type}\n{}", Value::Object(pins.clone()))
}

impl Contexts {
    /// Load the file; a writer also cuts a torn last line and keeps the file open.
    pub fn open(path: &Path, writable: bool) -> Result<Contexts> {
        let io = |e: std::io::Error| IngestError::io(path, e);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut list = Vec::new();
        let mut by_key = HashMap::new();
        let mut pos = 0usize;
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if line.is_empty() {
                pos += 1;
                continue;
            }
            let c: ReceiptContext = serde_json::from_slice(line).map_err(|e| {
                IngestError::corrupt(path, pos as u64, format!("bad context line: {e}"))
            })?;
            if c.id as usize != list.len() {
                return Err(IngestError::corrupt(
                    path,
                    pos as u64,
                    "context ids are not consecutive",
                ));
            }
            by_key.insert(key_of(&c.event_type, &c.pins), c.id);
            list.push(c);
            pos += line.len() + 1;
        }
        let writer = if writable {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io)?;
            if complete != bytes.len() {
                tracing::warn!("{}: torn last line cut", path.display());
                f.set_len(complete as u64).map_err(io)?;
                f.sync_all().map_err(io)?;
            }
            Some(f)
        } else {
            None
        };
        Ok(Contexts {
            path: path.to_path_buf(),
            writer,
            list,
            by_key,
        })
    }

    pub fn get(&self, id: u32) -> Option<&ReceiptContext> {
        self.list.get(id as usize)
    }

    pub fn all(&self) -> &[ReceiptContext] {
        &self.list
    }

    /// The id of (event_type, pins), appending (and fsyncing) a new context if needed.
    pub fn id_for(&mut self, event_type: &str, pins: Map<String, Value>) -> Result<u32> {
        let key = key_of(event_type, &pins);
        if let Some(&id) = self.by_key.get(&key) {
            return Ok(id);
        }
        let spec = OutputSpec::get(event_type).ok();
        let c = ReceiptContext {
            id: self.list.len() as u32,
            event_type: event_type.to_string(),
            event_class: spec.map(|s| s.event_class.to_string()),
            topic: spec.map(|s| s.topic.to_string()),
            pins,
        };
        let mut line = serde_json::to_vec(&c)
            .map_err(|e| IngestError::corrupt(&self.path, 0, e.to_string()))?;
        line.push(b'\n');
        let f = self
            .writer
            .as_mut()
            .ok_or_else(|| IngestError::InvalidArgument("contexts opened read-only".into()))?;
        f.write_all(&line)
            .map_err(|e| IngestError::io(&self.path, e))?;
        f.sync_data().map_err(|e| IngestError::io(&self.path, e))?;
        self.by_key.insert(key, c.id);
        self.list.push(c);
        Ok(self.list.len() as u32 - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_across_reopen_and_torn_lines_are_cut() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("contexts.jsonl");
        let run = RunContext {
            platform_run_id: "pr".into(),
            run_id: "r".into(),
            scenario_run_id: "sr".into(),
            producer: "p".into(),
        };
        let row = RowPins {
            manifest_fingerprint: Some("m".into()),
            parameter_hash: Some("h".into()),
            seed: Some("42".into()),
            scenario_id: None,
        };
        let mut c = Contexts::open(&p, true).unwrap();
        let a = c.id_for("arrival_events_5B", pins_map(&run, &row)).unwrap();
        let b = c
            .id_for("s3_event_stream_with_fraud_6B", pins_map(&run, &row))
            .unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(
            c.id_for("arrival_events_5B", pins_map(&run, &row)).unwrap(),
            0
        );
        assert_eq!(
            c.get(1).unwrap().topic.as_deref(),
            Some("fp.bus.traffic.fraud.v1")
        );
        assert_eq!(c.get(0).unwrap().pins["seed"], serde_json::json!(42));
        assert_eq!(c.get(0).unwrap().pins["scenario_id"], Value::Null);
        drop(c);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"id\":2,\"event_ty").unwrap();
        let ro = Contexts::open(&p, false).unwrap();
        assert_eq!(ro.all().len(), 2);
        let mut c = Contexts::open(&p, true).unwrap();
        assert_eq!(
            c.id_for("arrival_events_5B", pins_map(&run, &row)).unwrap(),
            0
        );
        assert_eq!(
            c.id_for("s1_arrival_entities_6B", pins_map(&run, &row))
                .unwrap(),
            2
        );
        assert_eq!(Contexts::open(&p, false).unwrap().all().len(), 3);
    }
}
