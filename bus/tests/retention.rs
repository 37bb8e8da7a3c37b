//! Segments roll by size and retention deletes whole old segments by size or age; reading
//! below the new start is `BUS_OFFSET_OUT_OF_RANGE`.

mod common;

use std::time::{Duration, SystemTime};

use sluice_bus::retention;
use sluice_bus::segment::{list_segments, log_path};
use sluice_bus::{Durability, Record, StartAt, TopicConfig};

fn fill(bus: &sluice_bus::Bus, batches: usize) {
    let p = bus.producer("t").unwrap();
    let v = vec![b'x'; 1000];
    for b in 0..batches {
        let recs: Vec<_> = (0..4)
            .map(|i| Record::new(&v, (b * 4 + i) as i64))
            .collect();
        p.append_batch(0, &recs).unwrap();
    }
}

#[test]
fn retention_by_size_keeps_the_newest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    let config = TopicConfig {
        segment_bytes: 8192,
        retention_bytes: Some(20_000),
        ..TopicConfig::default()
    };
    bus.create_topic("t", 1, config).unwrap();
    fill(&bus, 30); // ~120 KB in ~15 segments
    let part = dir.path().join("topics/t/partition-00000");
    let config = bus.topic("t").unwrap().config;
    let active = *list_segments(&part).unwrap().last().unwrap();
    retention::enforce(&part, &config, active).unwrap();
    let bases = list_segments(&part).unwrap();
    let sizes: Vec<u64> = bases
        .iter()
        .map(|&b| std::fs::metadata(log_path(&part, b)).unwrap().len())
        .collect();
    let total: u64 = sizes.iter().sum();
    assert!(
        bases.len() >= 2 && bases[0] > 0,
        "old segments deleted: {bases:?}"
    );
    // Deleting stops exactly when one more deletion would go below the limit.
    assert!(total >= 20_000, "over-deleted: {total}");
    assert!(total - sizes[0] < 20_000, "under-deleted: {total}");
    let records = common::read_all(&bus, "t", 0, StartAt::Earliest);
    assert_eq!(records[0].offset, bases[0]);
    assert_eq!(records.last().unwrap().offset, 119);
    let err = bus
        .partition_reader("t", 0, StartAt::Offset(0))
        .err()
        .unwrap();
    assert_eq!(err.code(), "BUS_OFFSET_OUT_OF_RANGE");
}

#[test]
fn retention_by_age_uses_the_last_write_time_and_spares_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    let config = TopicConfig {
        segment_bytes: 8192,
        retention_ms: Some(3_600_000),
        ..TopicConfig::default()
    };
    bus.create_topic("t", 1, config.clone()).unwrap();
    fill(&bus, 10);
    let part = dir.path().join("topics/t/partition-00000");
    let bases = list_segments(&part).unwrap();
    assert!(bases.len() >= 3);
    // Age every segment by two hours: all sealed ones go, the active one stays.
    let old = SystemTime::now() - Duration::from_secs(7200);
    for &b in &bases {
        let f = std::fs::File::options()
            .write(true)
            .open(log_path(&part, b))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    let active = *bases.last().unwrap();
    let deleted = retention::enforce(&part, &config, active).unwrap();
    assert_eq!(deleted.len(), bases.len() - 1);
    assert!(deleted.iter().all(|d| d.reason == "age"));
    assert_eq!(list_segments(&part).unwrap(), vec![active]);
    let records = common::read_all(&bus, "t", 0, StartAt::Earliest);
    assert_eq!(records[0].offset, active);
    // Nothing more to delete, and the writer reopens on what is left.
    assert!(retention::enforce(&part, &config, active)
        .unwrap()
        .is_empty());
    let p = bus.producer("t").unwrap();
    assert_eq!(p.end_offset(0).unwrap(), 40);
}

#[test]
fn segments_roll_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    let config = TopicConfig {
        segment_ms: 1,
        ..TopicConfig::default()
    };
    bus.create_topic("t", 1, config).unwrap();
    let p = bus.producer("t").unwrap();
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(5));
        p.append_batch(0, &[Record::new(b"x", i)]).unwrap();
    }
    let part = dir.path().join("topics/t/partition-00000");
    assert_eq!(list_segments(&part).unwrap(), vec![0, 1, 2]);
}
