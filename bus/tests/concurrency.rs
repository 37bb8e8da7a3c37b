//! Concurrency and writer exclusivity: a follower reading while a producer writes sees
//! every record exactly once, in order; concurrent appenders share fsyncs (group commit)
//! and get dense, disjoint offsets; a second writer gets the lock error; a failed fsync
//! poisons the partition.

mod common;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_bus::{Bus, BusOptions, Consumer, Durability, Record, StartAt, Syncer, TopicConfig};

/// Counts fsyncs, optionally slows them down, optionally fails from the n-th one on.
#[derive(Debug, Default)]
struct TestSync {
    calls: AtomicU64,
    delay_ms: u64,
    fail_from: Option<u64>,
}

impl Syncer for TestSync {
    fn sync(&self, file: &File, _path: &Path) -> std::io::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_from.is_some_and(|k| n >= k) {
            return Err(std::io::Error::other("injected fsync failure (EIO)"));
        }
        std::thread::sleep(Duration::from_millis(self.delay_ms));
        file.sync_data()
    }
}

fn bus_with(dir: &Path, durability: Durability, syncer: Arc<TestSync>) -> Bus {
    Bus::create(
        dir,
        BusOptions {
            durability,
            syncer,
            ..BusOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn follower_sees_every_record_exactly_once_in_order_across_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    bus.create_topic("t", 1, common::small_segments(8192))
        .unwrap();
    const BATCHES: usize = 300;
    let total: usize = (0..BATCHES).map(|b| 1 + b % 17).sum();
    let writer_bus = bus.clone();
    let writer = std::thread::spawn(move || {
        let p = writer_bus.producer("t").unwrap();
        let mut n = 0usize;
        for b in 0..BATCHES {
            let vals: Vec<Vec<u8>> = (0..1 + b % 17)
                .map(|_| {
                    n += 1;
                    format!("v{}", n - 1).into_bytes()
                })
                .collect();
            let recs: Vec<_> = vals.iter().map(|v| Record::new(v, n as i64)).collect();
            p.append_batch(0, &recs).unwrap();
        }
    });
    let mut reader = bus.partition_reader("t", 0, StartAt::Earliest).unwrap();
    let mut seen = Vec::with_capacity(total);
    let mut idle_polls = 0u64;
    while seen.len() < total {
        match reader.next_batch().unwrap() {
            Some(b) => {
                for r in b.records() {
                    seen.push((r.offset, r.value.unwrap().to_vec()));
                }
            }
            None => {
                idle_polls += 1;
                assert!(
                    idle_polls < 50_000_000,
                    "follower stalled at {}",
                    seen.len()
                );
                std::thread::yield_now();
            }
        }
    }
    writer.join().unwrap();
    assert!(
        reader.next_batch().unwrap().is_none(),
        "nothing beyond the end"
    );
    for (i, (offset, value)) in seen.iter().enumerate() {
        assert_eq!(*offset, i as u64);
        assert_eq!(value, format!("v{i}").as_bytes());
    }
}

#[test]
fn concurrent_appenders_get_dense_offsets_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let sync = Arc::new(TestSync {
        delay_ms: 3,
        ..TestSync::default()
    });
    let bus = bus_with(dir.path(), Durability::EveryBatch, Arc::clone(&sync));
    bus.create_topic("t", 1, TopicConfig::default()).unwrap();
    let producer = Arc::new(bus.producer("t").unwrap());
    const THREADS: usize = 4;
    const APPENDS: usize = 40;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = Arc::clone(&producer);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for a in 0..APPENDS {
                    let vals: Vec<Vec<u8>> = (0..5)
                        .map(|i| format!("{t}-{a}-{i}").into_bytes())
                        .collect();
                    let recs: Vec<_> = vals.iter().map(|v| Record::new(v, 0)).collect();
                    let range = p.append_batch(0, &recs).unwrap();
                    assert_eq!(range.end - range.start, 5);
                    got.push((range, t, a));
                }
                got
            })
        })
        .collect();
    let mut all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let appends = (THREADS * APPENDS) as u64;
    let syncs = sync.calls.load(Ordering::SeqCst);
    assert!(
        syncs < appends,
        "{syncs} fsyncs for {appends} appends: no group commit"
    );
    all.sort_by_key(|(r, ..)| r.start);
    for (i, (r, ..)) in all.iter().enumerate() {
        assert_eq!(r.start, 5 * i as u64, "offsets dense and disjoint");
    }
    // The records of each append are where its ack says.
    let records = common::read_all(&bus, "t", 0, StartAt::Earliest);
    for (r, t, a) in &all {
        let v = records[r.start as usize].value.as_deref().unwrap();
        assert_eq!(v, format!("{t}-{a}-0").as_bytes());
    }
}

#[test]
fn second_writer_gets_the_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    bus.create_topic("t", 2, TopicConfig::default()).unwrap();
    let first = bus.producer("t").unwrap();
    let err = bus.producer("t").err().unwrap();
    assert_eq!(err.code(), "BUS_PARTITION_LOCKED");
    assert!(err.to_string().contains("writer.lock"), "{err}");
    let err = sluice_bus::inspect::recover(&bus, Some("t")).unwrap_err();
    assert_eq!(err.code(), "BUS_PARTITION_LOCKED");
    drop(first);
    assert!(bus.producer("t").is_ok());
}

#[test]
fn failed_fsync_poisons_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let sync = Arc::new(TestSync {
        fail_from: Some(3),
        ..TestSync::default()
    });
    let bus = bus_with(dir.path(), Durability::EveryBatch, Arc::clone(&sync));
    bus.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = bus.producer("t").unwrap();
    let rec = [Record::new(b"x", 1)];
    assert_eq!(p.append_batch(0, &rec).unwrap(), 0..1);
    assert_eq!(p.append_batch(0, &rec).unwrap(), 1..2);
    let err = p.append_batch(0, &rec).unwrap_err();
    assert_eq!(err.code(), "BUS_PARTITION_POISONED");
    assert!(err.to_string().contains("injected"), "{err}");
    // Every later append is refused without writing.
    let calls = sync.calls.load(Ordering::SeqCst);
    let err = p.append_batch(0, &rec).unwrap_err();
    assert_eq!(err.code(), "BUS_PARTITION_POISONED");
    assert_eq!(
        sync.calls.load(Ordering::SeqCst),
        calls,
        "no fsync attempted"
    );
    assert!(p.flush().is_err());
    drop(p);
    // Reopening with a working fsync recovers; the unacknowledged record may or may not be
    // there (it was written, not acknowledged), the acknowledged ones are.
    let bus = common::bus(dir.path(), Durability::EveryBatch);
    let p = bus.producer("t").unwrap();
    let end = p.end_offset(0).unwrap();
    assert!((2..=3).contains(&end), "end {end}");
    assert_eq!(p.append_batch(0, &rec).unwrap(), end..end + 1);
}

#[test]
fn consumer_group_commits_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    bus.create_topic("t", 2, TopicConfig::default()).unwrap();
    let p = bus.producer("t").unwrap();
    let vals = common::numbered(40);
    let recs: Vec<_> = vals.iter().map(|v| Record::new(v, 0)).collect();
    p.send(&recs).unwrap(); // round-robin: 20 per partition
    let mut c = Consumer::open_group(&bus, "t", "g", StartAt::Earliest).unwrap();
    let mut n = 0;
    while let Some(b) = c.poll().unwrap() {
        n += b.len();
    }
    assert_eq!(n, 40);
    c.commit().unwrap();
    assert_eq!(c.positions(), vec![(0, 20), (1, 20)]);
    p.send(&recs[..4]).unwrap();
    let mut c = Consumer::open_group(&bus, "t", "g", StartAt::Earliest).unwrap();
    let mut offsets = Vec::new();
    while let Some(b) = c.poll().unwrap() {
        offsets.extend(b.records().map(|r| (b.partition, r.offset)));
    }
    offsets.sort();
    assert_eq!(offsets, vec![(0, 20), (0, 21), (1, 20), (1, 21)]);
    let file = dir.path().join("groups/g/t.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(json["offsets"]["0"], 20);
    let no_group = Consumer::open(&bus, "t", StartAt::Earliest).unwrap();
    assert_eq!(no_group.commit().unwrap_err().code(), "INVALID_ARGUMENT");
}

#[test]
fn one_thread_pipelines_appends_and_each_ack_follows_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let sync = Arc::new(TestSync {
        delay_ms: 2,
        ..TestSync::default()
    });
    let bus = bus_with(dir.path(), Durability::EveryBatch, Arc::clone(&sync));
    bus.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = bus.producer("t").unwrap();
    let vals = common::numbered(200);
    let mut pending = None;
    let mut acked = Vec::new();
    for chunk in vals.chunks(10) {
        let recs: Vec<_> = chunk.iter().map(|v| Record::new(v, 0)).collect();
        // fsyncs started before this write cannot cover it.
        let syncs_at_write = sync.calls.load(Ordering::SeqCst);
        let next = p.start_append(0, &recs).unwrap();
        if let Some(prev) = pending.replace((next, syncs_at_write)) {
            let (prev, syncs_before): (sluice_bus::producer::PendingAppend, u64) = prev;
            acked.push(prev.wait().unwrap());
            // Acknowledged only after an fsync that started after its write.
            assert!(sync.calls.load(Ordering::SeqCst) > syncs_before);
        }
    }
    let (last, _) = pending.unwrap();
    acked.push(last.wait().unwrap());
    for (i, r) in acked.iter().enumerate() {
        assert_eq!(*r, (10 * i as u64)..(10 * i as u64 + 10));
    }
    let records = common::read_all(&bus, "t", 0, StartAt::Earliest);
    assert_eq!(records.len(), 200);
    assert!(records
        .iter()
        .zip(&vals)
        .all(|(r, v)| r.value.as_deref() == Some(&v[..])));
}

#[test]
fn pipelined_append_reports_a_failed_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let sync = Arc::new(TestSync {
        fail_from: Some(1),
        ..TestSync::default()
    });
    let bus = bus_with(dir.path(), Durability::EveryBatch, sync);
    bus.create_topic("t", 1, TopicConfig::default()).unwrap();
    let p = bus.producer("t").unwrap();
    let pending = p.start_append(0, &[Record::new(b"x", 0)]).unwrap();
    assert_eq!(pending.wait().unwrap_err().code(), "BUS_PARTITION_POISONED");
    let err = p.start_append(0, &[Record::new(b"y", 0)]).err().unwrap();
    assert_eq!(err.code(), "BUS_PARTITION_POISONED");
}
