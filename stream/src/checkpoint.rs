//! Replay checkpoints (`shared/CONTEXT.md`, "Replay"): per output,
//! `<run_root>/wsp/checkpoints/<pack_key>/output_id=<id>/cursor.json`, published atomically
//! (temp, fsync, rename, fsync dir), plus the same record appended to `cursor.jsonl`.
//!
//! A cursor names the last row known to be *durable downstream* (on the bus with its
//! receipt): `last_file` is the part's file name inside the view directory and
//! `last_row_index` the 0-based row inside it. Resume restarts at the row after it, so
//! delivery is at-least-once (rows after the cursor that did reach the bus before a crash
//! are sent again) and the gate's dedupe makes the bus exactly-once.
//!
//! `pack_key` names the engine run being replayed: the first 32 hex digits of the sha256 of
//! the canonical JSON `{"manifest_fingerprint","parameter_hash","scenario_id","seed"}` of its
//! `run_receipt.json`, so a run replaying two engine runs keeps their cursors apart.
//!
//! `cursor.json` is the truth; `cursor.jsonl` is the history (a torn last line after a crash
//! is ignored by readers).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sluice_storage::outputs::Pins;
use sluice_storage::publish::{fsync_dir, write_json_atomic};
use sluice_storage::timefmt::{format_rfc3339_micros, now_micros};
use sluice_storage::view::{canonical_json, sha256_hex};

use crate::error::{ReplayError, Result};
use crate::reader::StartAt;
use crate::view::StreamView;

/// `cursor.json`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub pack_key: String,
    pub output_id: String,
    pub last_file: String,
    pub last_row_index: u64,
    pub last_ts_utc: Option<String>,
    pub updated_at_utc: String,
}

/// The `pack_key` of an engine run (see the module doc).
pub fn pack_key(pins: &Pins) -> String {
    let v = serde_json::json!({
        "manifest_fingerprint": pins.manifest_fingerprint,
        "parameter_hash": pins.parameter_hash,
        "scenario_id": pins.scenario_id,
        "seed": pins.seed,
    });
    sha256_hex(canonical_json(&v).as_bytes())[..32].to_string()
}

/// The checkpoint files of one output.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    pack_key: String,
    output_id: String,
    dir: PathBuf,
}

impl CheckpointStore {
    /// `<wsp>/checkpoints/<pack_key>/output_id=<output_id>/`.
    pub fn new(wsp: &Path, pack_key: &str, output_id: &str) -> Self {
        CheckpointStore {
            pack_key: pack_key.to_string(),
            output_id: output_id.to_string(),
            dir: wsp
                .join("checkpoints")
                .join(pack_key)
                .join(format!("output_id={output_id}")),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cursor_path(&self) -> PathBuf {
        self.dir.join("cursor.json")
    }

    pub fn history_path(&self) -> PathBuf {
        self.dir.join("cursor.jsonl")
    }

    /// The current cursor, if one was written.
    pub fn read(&self) -> Result<Option<Cursor>> {
        let path = self.cursor_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ReplayError::io(&path, e)),
        };
        let invalid = |reason: String| ReplayError::CheckpointInvalid {
            path: path.clone(),
            reason,
        };
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if c.pack_key != self.pack_key || c.output_id != self.output_id {
            return Err(invalid(format!(
                "it is for pack {} output {}, expected pack {} output {}",
                c.pack_key, c.output_id, self.pack_key, self.output_id
            )));
        }
        Ok(Some(c))
    }

    /// Build a cursor for the row `(part, row)` of `view` whose time is `ts`.
    pub fn cursor(&self, view: &StreamView, part: u32, row: u64, ts: Option<i64>) -> Cursor {
        Cursor {
            pack_key: self.pack_key.clone(),
            output_id: self.output_id.clone(),
            last_file: view
                .parts
                .get(part as usize)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            last_row_index: row,
            last_ts_utc: ts.map(format_rfc3339_micros),
            updated_at_utc: format_rfc3339_micros(now_micros()),
        }
    }

    /// Publish `cursor.json` atomically and append the cursor to `cursor.jsonl`.
    pub fn write(&self, cursor: &Cursor) -> Result<()> {
        let fresh = !self.dir.is_dir();
        fs::create_dir_all(&self.dir).map_err(|e| ReplayError::io(&self.dir, e))?;
        if fresh {
            if let Some(parent) = self.dir.parent() {
                fsync_dir(parent)?;
            }
        }
        write_json_atomic(&self.cursor_path(), cursor)?;
        let hist = self.history_path();
        let mut line = serde_json::to_vec(cursor).map_err(|e| ReplayError::CheckpointInvalid {
            path: hist.clone(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&hist)
            .map_err(|e| ReplayError::io(&hist, e))?;
        f.write_all(&line).map_err(|e| ReplayError::io(&hist, e))?;
        f.sync_data().map_err(|e| ReplayError::io(&hist, e))?;
        Ok(())
    }
}

/// Where to resume in `view` after `cursor`: the row after `last_row_index` of `last_file`.
pub fn resume_position(view: &StreamView, cursor: &Cursor, path: &Path) -> Result<StartAt> {
    let invalid = |reason: String| ReplayError::CheckpointInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let part = view.part_by_name(&cursor.last_file).ok_or_else(|| {
        invalid(format!(
            "last_file {:?} is not a part of the view {}",
            cursor.last_file,
            view.dir.display()
        ))
    })?;
    if cursor.last_row_index >= part.rows {
        return Err(invalid(format!(
            "last_row_index {} is beyond {} ({} rows)",
            cursor.last_row_index, part.name, part.rows
        )));
    }
    Ok(StartAt {
        part: part.index,
        row: cursor.last_row_index + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins() -> Pins {
        Pins {
            seed: 42,
            manifest_fingerprint: "a".repeat(64),
            parameter_hash: "b".repeat(64),
            scenario_id: "baseline_v1".into(),
        }
    }

    #[test]
    fn pack_key_is_prefix_of_sha256_of_canonical_pins() {
        let expected = sha256_hex(
            format!(
                "{{\"manifest_fingerprint\":\"{}\",\"parameter_hash\":\"{}\",\"scenario_id\":\"baseline_v1\",\"seed\":42}}",
                "a".repeat(64),
                "b".repeat(64)
            )
            .as_bytes(),
        );
        assert_eq!(pack_key(&pins()), expected[..32]);
    }

    #[test]
    fn write_then_read_roundtrips_and_appends_history() {
        let d = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(d.path(), "pk", "arrival_events_5B");
        assert_eq!(store.read().unwrap(), None);
        let mut c = Cursor {
            pack_key: "pk".into(),
            output_id: "arrival_events_5B".into(),
            last_file: "part-000000.parquet".into(),
            last_row_index: 9,
            last_ts_utc: Some("2026-01-05T08:30:13.260000Z".into()),
            updated_at_utc: "2026-01-05T08:30:14.000000Z".into(),
        };
        store.write(&c).unwrap();
        c.last_row_index = 19;
        store.write(&c).unwrap();
        assert_eq!(store.read().unwrap(), Some(c));
        let hist = fs::read_to_string(store.history_path()).unwrap();
        assert_eq!(hist.lines().count(), 2);
        assert!(store
            .cursor_path()
            .ends_with("checkpoints/pk/output_id=arrival_events_5B/cursor.json"));
    }

    #[test]
    fn a_cursor_of_another_output_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let a = CheckpointStore::new(d.path(), "pk", "x");
        fs::create_dir_all(a.dir()).unwrap();
        fs::write(
            a.cursor_path(),
            r#"{"pack_key":"pk","output_id":"y","last_file":"p","last_row_index":0,"last_ts_utc":null,"updated_at_utc":""}"#,
        )
        .unwrap();
        let e = a.read().unwrap_err();
        assert_eq!(e.code(), "CHECKPOINT_INVALID");
        fs::write(a.cursor_path(), b"{not json").unwrap();
        assert_eq!(a.read().unwrap_err().code(), "CHECKPOINT_INVALID");
    }
}
