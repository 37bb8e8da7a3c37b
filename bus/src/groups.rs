//! Consumer-group offsets: `groups/<group>/<topic>.json`, the next offset to consume per
//! partition, committed atomically (temp, fsync, rename, fsync directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{BusError, Result};
use crate::format::meta::{GroupOffsets, GROUP_FORMAT, MAX_META_BYTES, META_VERSION};
use crate::publish;
use crate::topic::check_name;

/// `<bus>/groups/<group>/<topic>.json`.
pub fn offsets_path(bus: &Path, group: &str, topic: &str) -> PathBuf {
    bus.join("groups").join(group).join(format!("{topic}.json"))
}

/// The committed offsets of `group` on `topic` (empty if it never committed).
pub fn committed(bus: &Path, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>> {
    check_name("group", group)?;
    check_name("topic", topic)?;
    let path = offsets_path(bus, group, topic);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let file: GroupOffsets = publish::read_json(&path, MAX_META_BYTES)?;
    if file.format != GROUP_FORMAT {
        return Err(BusError::MetadataInvalid {
            path,
            reason: format!("format is {:?}, not {GROUP_FORMAT:?}", file.format),
        });
    }
    if file.version > META_VERSION {
        return Err(BusError::UnsupportedVersion {
            path,
            position: 0,
            found: file.version,
            supported: META_VERSION,
        });
    }
    let mut out = BTreeMap::new();
    for (p, o) in file.offsets {
        let p: u32 = p.parse().map_err(|_| BusError::MetadataInvalid {
            path: path.clone(),
            reason: format!("partition key {p:?} is not a number"),
        })?;
        out.insert(p, o);
    }
    Ok(out)
}

/// Merge `positions` (partition -> next offset) into the group's file and publish it.
pub fn commit(bus: &Path, group: &str, topic: &str, positions: &[(u32, u64)]) -> Result<()> {
    let mut all = committed(bus, group, topic)?;
    for &(p, o) in positions {
        all.insert(p, o);
    }
    let path = offsets_path(bus, group, topic);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| BusError::io(dir, e))?;
    }
    let file = GroupOffsets {
        format: GROUP_FORMAT.to_string(),
        version: META_VERSION,
        group: group.to_string(),
        topic: topic.to_string(),
        offsets: all.into_iter().map(|(p, o)| (p.to_string(), o)).collect(),
    };
    publish::write_json_atomic(&path, &file)
}
