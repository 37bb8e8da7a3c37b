//! Corruption: byte flips at known offsets in the tail and the interior, truncated files,
//! deleted and damaged indexes, batches of an unknown version. Each gives the result
//! documented in `docs/format.md` (Recovery policy): the code and the position.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use sluice_bus::format::batch;
use sluice_bus::format::index::IndexKind;
use sluice_bus::inspect::{self, DumpEntry};
use sluice_bus::segment::{index_path, list_segments, log_path};
use sluice_bus::{Bus, BusError, Durability, Record, StartAt, TopicConfig};

/// (position, size, base offset, count) of every batch of a segment.
fn batches(path: &Path) -> Vec<(u64, u64, u64, u32)> {
    let mut out = Vec::new();
    inspect::dump_segment(path, false, |e| {
        if let DumpEntry::Batch {
            position,
            size,
            base_offset,
            count,
            ..
        } = e
        {
            out.push((*position, *size as u64, *base_offset, *count));
        }
        Ok(())
    })
    .unwrap();
    out
}

fn flip(path: &Path, pos: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[pos as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    bus: Bus,
    part: PathBuf,
}

/// A topic with `batches` batches of 10 records each (values "b<batch>r<record>").
fn fixture(segment_bytes: u64, batches: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bus = common::bus(dir.path(), Durability::Never);
    let config = TopicConfig {
        segment_bytes,
        index_interval_bytes: 64,
        ..TopicConfig::default()
    };
    bus.create_topic("t", 1, config).unwrap();
    let p = bus.producer("t").unwrap();
    for b in 0..batches {
        let vals: Vec<Vec<u8>> = (0..10)
            .map(|r| format!("b{b}r{r}-{}", "x".repeat(40)).into_bytes())
            .collect();
        let recs: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(r, v)| Record::new(v, (b * 10 + r) as i64))
            .collect();
        p.append_batch(0, &recs).unwrap();
    }
    drop(p);
    let part = dir.path().join("topics/t/partition-00000");
    Fixture {
        _dir: dir,
        bus,
        part,
    }
}

fn segments(f: &Fixture) -> Vec<PathBuf> {
    list_segments(&f.part)
        .unwrap()
        .into_iter()
        .map(|b| log_path(&f.part, b))
        .collect()
}

fn read_values(bus: &Bus) -> Result<Vec<u64>, BusError> {
    let mut r = bus.partition_reader("t", 0, StartAt::Earliest)?;
    let mut out = Vec::new();
    while let Some(b) = r.next_batch()? {
        out.extend(b.records().map(|r| r.offset));
    }
    Ok(out)
}

fn assert_corrupt_at(err: &BusError, segment: &Path, position: u64) {
    match err {
        BusError::Corrupt {
            segment: s,
            position: p,
            ..
        } => {
            assert_eq!(s, segment, "{err}");
            assert_eq!(*p, position, "{err}");
        }
        other => panic!("expected BUS_CORRUPT, got {other:?}"),
    }
    assert_eq!(err.code(), "BUS_CORRUPT");
}

#[test]
fn torn_tail_is_truncated_on_writer_open() {
    let f = fixture(1 << 20, 5);
    let seg = &segments(&f)[0];
    let b = batches(seg);
    let (last_pos, ..) = b[4];
    truncate(seg, last_pos + 20);
    // Readers see the intact batches and no error; verify reports the torn tail.
    assert_eq!(read_values(&f.bus).unwrap().len(), 40);
    let report = inspect::verify(&f.bus, None).unwrap();
    let err = report.error().unwrap();
    assert_corrupt_at(&err, seg, last_pos);
    assert_eq!(report.problems().next().unwrap().kind, "torn_tail");
    // The writer truncates to the last good batch and continues at offset 40.
    let p = f.bus.producer("t").unwrap();
    assert_eq!(fs::metadata(seg).unwrap().len(), last_pos);
    assert_eq!(
        p.append_batch(0, &[Record::new(b"new", 1)]).unwrap(),
        40..41
    );
    drop(p);
    assert!(inspect::verify(&f.bus, None).unwrap().error().is_none());
}

#[test]
fn bad_crc_in_the_last_batch_is_a_torn_tail() {
    let f = fixture(1 << 20, 5);
    let seg = &segments(&f)[0];
    let (last_pos, size, ..) = batches(seg)[4];
    flip(seg, last_pos + size - 3);
    assert_eq!(read_values(&f.bus).unwrap().len(), 40);
    let err = inspect::verify(&f.bus, None).unwrap().error().unwrap();
    assert_corrupt_at(&err, seg, last_pos);
    let p = f.bus.producer("t").unwrap();
    assert_eq!(p.end_offset(0).unwrap(), 40);
}

#[test]
fn interior_flip_is_refused_with_segment_and_position() {
    let f = fixture(1 << 20, 5);
    let seg = &segments(&f)[0];
    let b = batches(seg);
    let (pos, ..) = b[1];
    flip(seg, pos + 60); // inside batch 1's records
    let len_before = fs::metadata(seg).unwrap().len();
    let err = f.bus.producer("t").err().unwrap();
    assert_corrupt_at(&err, seg, pos);
    assert_eq!(
        fs::metadata(seg).unwrap().len(),
        len_before,
        "nothing modified"
    );
    // A reader delivers batch 0 and then fails at the same place.
    let err = read_values(&f.bus).unwrap_err();
    assert_corrupt_at(&err, seg, pos);
    let err = inspect::verify(&f.bus, None).unwrap().error().unwrap();
    assert_corrupt_at(&err, seg, pos);
    // recover cuts at the damage and says which offsets were lost.
    let rec = inspect::recover(&f.bus, None).unwrap();
    let cut = rec[0].cut.as_ref().unwrap();
    assert_eq!(
        (cut.position, cut.offsets_lost_from, cut.offsets_lost_until),
        (pos, 10, 50)
    );
    assert_eq!(cut.bytes_cut, len_before - pos);
    assert_eq!(read_values(&f.bus).unwrap(), (0..10).collect::<Vec<_>>());
    let p = f.bus.producer("t").unwrap();
    assert_eq!(p.end_offset(0).unwrap(), 10);
}

#[test]
fn flipped_length_field_in_the_interior_is_not_mistaken_for_a_torn_tail() {
    let f = fixture(1 << 20, 5);
    let seg = &segments(&f)[0];
    let (pos, ..) = batches(seg)[2];
    // batch_length's third byte: the length now points far past the end of the file.
    flip(seg, pos + 14);
    let err = f.bus.producer("t").err().unwrap();
    assert_corrupt_at(&err, seg, pos);
}

#[test]
fn damage_in_a_sealed_segment_is_found_by_readers_verify_and_recover() {
    let f = fixture(4096, 24);
    let segs = segments(&f);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let sealed = &segs[1];
    let b = batches(sealed);
    let (pos, _, base, _) = b[0];
    flip(sealed, pos + 50);
    let err = read_values(&f.bus).unwrap_err();
    assert_corrupt_at(&err, sealed, pos);
    let err = inspect::verify(&f.bus, None).unwrap().error().unwrap();
    assert_corrupt_at(&err, sealed, pos);
    let rec = inspect::recover(&f.bus, None).unwrap();
    let cut = rec[0].cut.as_ref().unwrap();
    assert_eq!(cut.offsets_lost_from, base);
    assert_eq!(cut.offsets_lost_until, 240);
    assert_eq!(cut.segments_deleted.len(), segs.len() - 2);
    assert_eq!(read_values(&f.bus).unwrap().len() as u64, base);
    assert!(inspect::verify(&f.bus, None).unwrap().error().is_none());
}

#[test]
fn truncated_sealed_segment_is_refused_on_open() {
    let f = fixture(4096, 24);
    let segs = segments(&f);
    let sealed = &segs[0];
    let b = batches(sealed);
    let (pos, ..) = b[b.len() - 1];
    truncate(sealed, pos + 10);
    let err = f.bus.producer("t").err().unwrap();
    assert_corrupt_at(&err, sealed, pos);
    let err = read_values(&f.bus).unwrap_err();
    assert_corrupt_at(&err, sealed, pos);
}

#[test]
fn deleted_or_damaged_indexes_are_rebuilt() {
    let f = fixture(4096, 24);
    let segs = segments(&f);
    let bases = list_segments(&f.part).unwrap();
    let before = read_values(&f.bus).unwrap();
    fs::remove_file(index_path(&f.part, bases[0], IndexKind::Offset)).unwrap();
    fs::write(index_path(&f.part, bases[1], IndexKind::Time), b"garbage!").unwrap();
    fs::remove_file(index_path(
        &f.part,
        *bases.last().unwrap(),
        IndexKind::Offset,
    ))
    .unwrap();
    // Reads are unaffected (indexes rebuilt in memory), and lookups still land right.
    assert_eq!(read_values(&f.bus).unwrap(), before);
    let mid = common::read_all(&f.bus, "t", 0, StartAt::Offset(57));
    assert_eq!(mid[0].offset, 57);
    let by_time = common::read_all(&f.bus, "t", 0, StartAt::Timestamp(33));
    assert_eq!(by_time[0].offset, 33);
    let report = inspect::verify(&f.bus, None).unwrap();
    assert_eq!(report.error().unwrap().code(), "BUS_INDEX_DAMAGED");
    assert_eq!(report.problems().count(), 3);
    // The writer rebuilds them on disk.
    drop(f.bus.producer("t").unwrap());
    assert!(index_path(&f.part, bases[0], IndexKind::Offset).exists());
    assert!(inspect::verify(&f.bus, None).unwrap().error().is_none());
    assert_eq!(segs.len(), list_segments(&f.part).unwrap().len());
}

#[test]
fn intact_batch_of_an_unknown_version_is_never_cut() {
    let f = fixture(1 << 20, 3);
    let seg = &segments(&f)[0];
    let (pos, size, ..) = batches(seg)[2];
    let mut bytes = fs::read(seg).unwrap();
    let frame = &mut bytes[pos as usize..(pos + size) as usize];
    frame[4] = 2; // version 2, CRC recomputed: intact, just newer
    let crc = batch::compute_crc(frame);
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
    fs::write(seg, &bytes).unwrap();
    let err = f.bus.producer("t").err().unwrap();
    assert!(
        matches!(err, BusError::UnsupportedVersion { found: 2, position, .. } if position == pos),
        "{err:?}"
    );
    assert_eq!(fs::metadata(seg).unwrap().len(), bytes.len() as u64);
    let err = inspect::recover(&f.bus, None).unwrap_err();
    assert_eq!(err.code(), "BUS_UNSUPPORTED_VERSION");
    assert_eq!(fs::metadata(seg).unwrap().len(), bytes.len() as u64);
    let err = read_values(&f.bus).unwrap_err();
    assert_eq!(err.code(), "BUS_UNSUPPORTED_VERSION");
}

#[test]
fn garbage_after_a_roll_in_an_empty_active_segment_is_a_torn_tail() {
    let f = fixture(4096, 24);
    let segs = segments(&f);
    let last = segs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    let mut bytes = fs::read(last).unwrap();
    bytes.extend_from_slice(b"SBUS\x01\x00");
    fs::write(last, &bytes).unwrap();
    let p = f.bus.producer("t").unwrap();
    assert_eq!(fs::metadata(last).unwrap().len(), len);
    assert_eq!(p.end_offset(0).unwrap(), 240);
}
