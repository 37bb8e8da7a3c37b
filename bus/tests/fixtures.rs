//! Committed fixtures of every on-disk format version, intact and damaged
//! (`bus/tests/fixtures/`), decoded by this build. A format change that breaks reading old
//! files fails here. Regenerate (only when adding a version) with
//! `SLUICE_WRITE_FIXTURES=1 cargo test -p sluice-bus --test fixtures`.
//!
//! `v1/bus/` is a whole bus (topic `t`, one partition, one segment of three batches:
//! uncompressed, zstd, uncompressed with headers and nulls). `v1/damaged/` holds copies of
//! its segment: torn tail, interior CRC damage, an intact batch of an unknown version.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use sluice_bus::format::record::{BatchEncoder, EncodedBatches};
use sluice_bus::format::{batch, Compression, Header, Record};
use sluice_bus::inspect::{self, DumpEntry};
use sluice_bus::{Bus, BusError, BusOptions, Durability, OwnedRecord, StartAt, TopicConfig};

const SEGMENT: &str = "topics/t/partition-00000/00000000000000000000.log";
const T0: i64 = 1_767_601_813_260_000; // 2026-01-05T08:30:13.260000Z

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

/// The three batches of the v1 fixture, as (compression, records).
fn batches() -> Vec<(Compression, Vec<Record<'static>>)> {
    const HS: &[Header<'static>] = &[
        Header {
            key: "trace_id",
            value: b"abc123",
        },
        Header {
            key: "empty",
            value: b"",
        },
    ];
    vec![
        (
            Compression::None,
            vec![
                Record::new(br#"{"event_id":"e1","n":1}"#, T0).with_key(b"flow-1"),
                Record::new(br#"{"event_id":"e2","n":2}"#, T0 + 1).with_key(b"flow-2"),
                Record::new(br#"{"event_id":"e3","n":3}"#, T0 - 5).with_key(b"flow-1"),
            ],
        ),
        (
            Compression::Zstd,
            vec![
                Record::new(
                    br#"{"event_id":"e4","payload":"zzzzzzzzzzzzzzzzzzzzzzzz"}"#,
                    T0 + 10,
                ),
                Record::new(
                    br#"{"event_id":"e5","payload":"zzzzzzzzzzzzzzzzzzzzzzzz"}"#,
                    T0 + 20,
                ),
            ],
        ),
        (
            Compression::None,
            vec![Record {
                key: None,
                value: None,
                timestamp: T0 + 30,
                headers: HS,
            }],
        ),
    ]
}

fn expected() -> Vec<OwnedRecord> {
    let mut out = Vec::new();
    for (_, records) in batches() {
        for r in records {
            out.push(OwnedRecord {
                offset: out.len() as u64,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.to_vec()))
                    .collect(),
            });
        }
    }
    out
}

/// Each batch encoded by this build: (compression, frame bytes).
fn encode() -> Vec<(Compression, Vec<u8>)> {
    let mut base = 0;
    let mut out = Vec::new();
    for (c, records) in batches() {
        let mut enc = BatchEncoder::new(c, 3, 1 << 20);
        let mut e = EncodedBatches::default();
        enc.encode(&records, &mut e).unwrap();
        e.stamp(base);
        base += records.len() as u64;
        out.push((c, e.bytes));
    }
    out
}

/// (position, size) of each batch of a segment.
fn positions(path: &Path) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    inspect::dump_segment(path, false, |e| {
        if let DumpEntry::Batch { position, size, .. } = e {
            out.push((*position, *size as u64));
        }
        Ok(())
    })
    .unwrap();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A writable copy of the v1 bus, with its segment replaced by `segment` if given.
fn bus_copy(segment: Option<&str>) -> (tempfile::TempDir, Bus) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("bus"), dir.path());
    if let Some(name) = segment {
        fs::copy(
            fixtures().join("damaged").join(name),
            dir.path().join(SEGMENT),
        )
        .unwrap();
    }
    let bus = Bus::open(dir.path(), BusOptions::default()).unwrap();
    (dir, bus)
}

fn write_fixtures() {
    let root = fixtures();
    let _ = fs::remove_dir_all(&root);
    let busdir = root.join("bus");
    let bus = Bus::create(
        &busdir,
        BusOptions {
            durability: Durability::Never,
            ..BusOptions::default()
        },
    )
    .unwrap();
    bus.create_topic("t", 1, TopicConfig::default()).unwrap();
    let log: Vec<u8> = encode().into_iter().flat_map(|(_, b)| b).collect();
    fs::write(busdir.join(SEGMENT), &log).unwrap();
    inspect::recover(&bus, None).unwrap(); // writes the indexes
    let _ = fs::remove_file(busdir.join("topics/t/partition-00000/writer.lock"));
    let damaged = root.join("damaged");
    fs::create_dir_all(&damaged).unwrap();
    let pos = positions(&busdir.join(SEGMENT));
    // Torn tail: the last batch cut in the middle.
    fs::write(
        damaged.join("torn-tail.log"),
        &log[..(pos[2].0 + pos[2].1 / 2) as usize],
    )
    .unwrap();
    // Interior damage: one byte of the zstd batch's body flipped.
    let mut b = log.clone();
    b[(pos[1].0 + 50) as usize] ^= 0x01;
    fs::write(damaged.join("interior-crc.log"), &b).unwrap();
    // An intact batch of version 2 at the end (CRC recomputed).
    let mut b = log.clone();
    let (p, n) = (pos[2].0 as usize, pos[2].1 as usize);
    b[p + 4] = 2;
    let crc = batch::compute_crc(&b[p..p + n]);
    b[p + 8..p + 12].copy_from_slice(&crc.to_le_bytes());
    fs::write(damaged.join("unknown-version.log"), &b).unwrap();
}

#[test]
fn v1_fixture_decodes_to_the_expected_records() {
    if std::env::var_os("SLUICE_WRITE_FIXTURES").is_some() {
        write_fixtures();
    }
    let (_dir, bus) = bus_copy(None);
    let got = common::read_all(&bus, "t", 0, StartAt::Earliest);
    assert_eq!(got, expected());
    let by_time = common::read_all(&bus, "t", 0, StartAt::Timestamp(T0 + 15));
    assert_eq!(by_time[0].offset, 4);
    let report = inspect::verify(&bus, None).unwrap();
    assert!(report.error().is_none(), "{report:?}");
}

#[test]
fn this_build_writes_v1_byte_for_byte() {
    let log = fs::read(fixtures().join("bus").join(SEGMENT)).unwrap();
    let mut at = 0;
    for (c, frame) in encode() {
        let stored = &log[at..at + frame.len()];
        // zstd output may change with the zstd library; the other batches may not.
        if c == Compression::None {
            assert_eq!(
                stored,
                &frame[..],
                "uncompressed batch at {at} differs from the fixture"
            );
        }
        at += frame.len();
    }
    assert_eq!(at, log.len());
}

#[test]
fn damaged_v1_fixtures_give_the_documented_results() {
    let intact = positions(&fixtures().join("bus").join(SEGMENT));
    // Torn tail: readers stop before it, the writer truncates it.
    let (dir, bus) = bus_copy(Some("torn-tail.log"));
    assert_eq!(
        common::read_all(&bus, "t", 0, StartAt::Earliest),
        expected()[..5]
    );
    let p = bus.producer("t").unwrap();
    assert_eq!(p.end_offset(0).unwrap(), 5);
    assert_eq!(
        fs::metadata(dir.path().join(SEGMENT)).unwrap().len(),
        intact[2].0
    );
    drop(p);
    // Interior CRC damage: refused, naming the segment and the batch's position.
    let (dir, bus) = bus_copy(Some("interior-crc.log"));
    let err = bus.producer("t").err().unwrap();
    assert!(
        matches!(&err, BusError::Corrupt { segment, position, .. }
            if *position == intact[1].0 && segment == &dir.path().join(SEGMENT)),
        "{err:?}"
    );
    // Unknown version: refused, never cut.
    let (_dir, bus) = bus_copy(Some("unknown-version.log"));
    let err = bus.producer("t").err().unwrap();
    assert!(
        matches!(err, BusError::UnsupportedVersion { found: 2, position, .. } if position == intact[2].0)
    );
}
