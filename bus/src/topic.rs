//! Topics: names, creation settings, `topic.json`, and where their partitions live.
//!
//! Creating a topic builds `topics/.<name>.tmp-*` (metadata plus one empty directory per
//! partition), fsyncs it and renames it to `topics/<name>`: a topic either exists whole or
//! not at all, and two concurrent creators cannot both win (the second rename fails).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{BusError, Result};
use crate::format::meta::{TopicConfig, TopicMeta, MAX_META_BYTES, META_VERSION, TOPIC_FORMAT};
use crate::publish;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// Lowest `zstd_level`: zstd's fast ("negative") levels trade ratio for speed; their
/// frames are ordinary zstd frames, decoded exactly like any other level's.
pub const MIN_ZSTD_LEVEL: i32 = -7;
/// Highest `zstd_level`.
pub const MAX_ZSTD_LEVEL: i32 = 22;

/// Check a topic or group name: 1 to 200 bytes of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn check_name(kind: &'static str, name: &str) -> Result<()> {
    let bad = |reason| {
        Err(BusError::NameInvalid {
            kind,
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 200 {
        return bad("must be 1 to 200 bytes");
    }
    if name == "." || name == ".." {
        return bad("must not be . or ..");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only A-Z a-z 0-9 . _ - are allowed");
    }
    Ok(())
}

/// Check creation settings.
pub fn check_config(partitions: u32, c: &TopicConfig) -> Result<()> {
    let bad = |m: String| Err(BusError::InvalidArgument(m));
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return bad(format!(
            "partitions must be 1 to {MAX_PARTITIONS}, not {partitions}"
        ));
    }
    if !(4096..=(2u64 << 30)).contains(&c.segment_bytes) {
        return bad(format!(
            "segment_bytes must be 4 KiB to 2 GiB, not {}",
            c.segment_bytes
        ));
    }
    if c.segment_ms == 0 {
        return bad("segment_ms must be positive".into());
    }
    if c.index_interval_bytes == 0 {
        return bad("index_interval_bytes must be positive".into());
    }
    if !(MIN_ZSTD_LEVEL..=MAX_ZSTD_LEVEL).contains(&c.zstd_level) || c.zstd_level == 0 {
        return bad(format!(
            "zstd_level must be {MIN_ZSTD_LEVEL} to -1 (zstd's fast levels) or 1 to \
             {MAX_ZSTD_LEVEL}, not {}",
            c.zstd_level
        ));
    }
    Ok(())
}

/// `<bus>/topics`.
pub fn topics_dir(bus: &Path) -> PathBuf {
    bus.join("topics")
}

/// `<bus>/topics/<topic>`.
pub fn topic_dir(bus: &Path, topic: &str) -> PathBuf {
    topics_dir(bus).join(topic)
}

/// `<bus>/topics/<topic>/partition-NNNNN`.
pub fn partition_dir(bus: &Path, topic: &str, partition: u32) -> PathBuf {
    topic_dir(bus, topic).join(format!("partition-{partition:05}"))
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Create a topic (atomically). `BUS_TOPIC_EXISTS` if it is already there.
pub fn create(bus: &Path, name: &str, partitions: u32, config: TopicConfig) -> Result<TopicMeta> {
    check_name("topic", name)?;
    check_config(partitions, &config)?;
    let meta = TopicMeta {
        format: TOPIC_FORMAT.to_string(),
        version: META_VERSION,
        name: name.to_string(),
        partitions,
        created_unix_ms: now_unix_ms(),
        config,
    };
    let parent = topics_dir(bus);
    let final_dir = topic_dir(bus, name);
    if final_dir.join("topic.json").exists() {
        return Err(BusError::TopicExists {
            topic: name.to_string(),
        });
    }
    fs::create_dir_all(&parent).map_err(|e| BusError::io(&parent, e))?;
    let staging = publish::temp_sibling(&final_dir);
    let build = || -> Result<()> {
        fs::create_dir(&staging).map_err(|e| BusError::io(&staging, e))?;
        for p in 0..partitions {
            let d = staging.join(format!("partition-{p:05}"));
            fs::create_dir(&d).map_err(|e| BusError::io(&d, e))?;
        }
        publish::write_json_atomic(&staging.join("topic.json"), &meta)?;
        publish::fsync_dir(&staging)
    };
    if let Err(e) = build() {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    // A directory left by a crashed creation (no topic.json) is replaced.
    if final_dir.exists() && !final_dir.join("topic.json").exists() {
        let _ = fs::remove_dir_all(&final_dir);
    }
    if let Err(e) = fs::rename(&staging, &final_dir) {
        let _ = fs::remove_dir_all(&staging);
        if final_dir.join("topic.json").exists() {
            return Err(BusError::TopicExists {
                topic: name.to_string(),
            });
        }
        return Err(BusError::io(&final_dir, e));
    }
    publish::fsync_dir(&parent)?;
    Ok(meta)
}

/// Read a topic's metadata.
pub fn load(bus: &Path, name: &str) -> Result<TopicMeta> {
    check_name("topic", name)?;
    let path = topic_dir(bus, name).join("topic.json");
    if !path.exists() {
        return Err(BusError::TopicNotFound {
            topic: name.to_string(),
        });
    }
    let meta: TopicMeta = publish::read_json(&path, MAX_META_BYTES)?;
    if meta.format != TOPIC_FORMAT {
        return Err(BusError::MetadataInvalid {
            path,
            reason: format!("format is {:?}, not {TOPIC_FORMAT:?}", meta.format),
        });
    }
    if meta.version > META_VERSION {
        return Err(BusError::UnsupportedVersion {
            path,
            position: 0,
            found: meta.version,
            supported: META_VERSION,
        });
    }
    if meta.name != name {
        return Err(BusError::MetadataInvalid {
            path,
            reason: format!("names topic {:?}", meta.name),
        });
    }
    check_config(meta.partitions, &meta.config).map_err(|e| BusError::MetadataInvalid {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(meta)
}

/// Names of all topics, sorted.
pub fn list(bus: &Path) -> Result<Vec<String>> {
    let dir = topics_dir(bus);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BusError::io(&dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| BusError::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !publish::is_temp_name(&name) && entry.path().join("topic.json").exists() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(check_name("topic", "fp.bus.traffic.fraud.v1").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(201)] {
            let err = check_name("topic", bad).unwrap_err();
            assert_eq!(err.code(), "BUS_NAME_INVALID", "{bad:?}");
        }
    }

    #[test]
    fn config_limits_are_checked() {
        let ok = TopicConfig::default();
        assert!(check_config(1, &ok).is_ok());
        assert!(check_config(0, &ok).is_err());
        assert!(check_config(MAX_PARTITIONS + 1, &ok).is_err());
        let small = TopicConfig {
            segment_bytes: 100,
            ..TopicConfig::default()
        };
        assert!(check_config(1, &small).is_err());
        let level = |zstd_level| TopicConfig {
            zstd_level,
            ..TopicConfig::default()
        };
        for ok in [MIN_ZSTD_LEVEL, -1, 1, MAX_ZSTD_LEVEL] {
            assert!(check_config(1, &level(ok)).is_ok(), "{ok}");
        }
        for bad in [MIN_ZSTD_LEVEL - 1, 0, MAX_ZSTD_LEVEL + 1] {
            assert!(check_config(1, &level(bad)).is_err(), "{bad}");
        }
    }
}
