//! A bus whose topics outlive a run (Kafka, played here by a shared `MemorySink`): a new
//! gate state records the run's start offsets and never adopts, audits or counts another
//! run's records; crash and resume stay exactly-once from the start offsets; the file bus
//! (a sink that does not outlive the run) behaves as before.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;
use sluice_ingest::audit::audit;
use sluice_ingest::envelope::RunContext;
use sluice_ingest::gate::start::{is_other_run, StartOffsets};
use sluice_ingest::sink::MemorySink;
use sluice_ingest::{Gate, GateConfig};
use sluice_storage::outputs::OutputSpec;

const TOPIC: &str = "fp.bus.traffic.fraud.v1";
const PARTS: u32 = 4;

fn spec() -> &'static OutputSpec {
    OutputSpec::get(OUTPUT).unwrap()
}

fn ctx(platform_run_id: &str) -> RunContext {
    RunContext {
        platform_run_id: platform_run_id.into(),
        ..run_ctx()
    }
}

fn cfg() -> GateConfig {
    GateConfig {
        partitions: PARTS,
        dedupe_memory: 16 << 20,
        expected_events: 1_000,
    }
}

fn open(dir: &std::path::Path, sink: &mut MemorySink, run: &str) -> Gate {
    let mut g = Gate::open(dir, &cfg(), ctx(run), sink).unwrap();
    g.prepare_topics(sink, &[spec()], PARTS).unwrap();
    g
}

fn ends(sink: &MemorySink) -> Vec<u64> {
    (0..PARTS)
        .map(|p| sink.records(TOPIC, p).len() as u64)
        .collect()
}

/// Event ids on the bus written by `run`, with how often each appears.
fn events_of(sink: &MemorySink, run: &str) -> (usize, HashSet<String>) {
    let mut n = 0;
    let mut ids = HashSet::new();
    for p in 0..PARTS {
        for r in sink.records(TOPIC, p) {
            let v: Value = serde_json::from_slice(&r.value).unwrap();
            if v["platform_run_id"] == run {
                n += 1;
                ids.insert(v["event_id"].as_str().unwrap().to_string());
            }
        }
    }
    (n, ids)
}

fn rows(range: std::ops::Range<i64>) -> Vec<TRow> {
    range.map(|i| row(i, 1)).collect()
}

#[test]
fn a_new_run_on_shared_topics_adopts_nothing_and_stays_exactly_once_from_its_start() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut sink = MemorySink::new();
    sink.set_outlives_run(true);
    // Run A fills the topics (the same events: event ids do not depend on the run).
    let all = rows(0..300);
    let mut a = open(da.path(), &mut sink, "platform_A");
    a.ingest(&mut sink, spec(), &batch(&all[..200]), origin(0))
        .unwrap();
    a.close().unwrap();
    let a_ends = ends(&sink);

    // Run B starts on the same topics: nothing to reconcile, start offsets = A's ends.
    {
        let mut b = open(db.path(), &mut sink, "platform_B");
        assert_eq!(b.open_report().reconcile.receipts_restored, 0);
        for p in 0..PARTS {
            assert_eq!(b.start_offsets().start(TOPIC, p), Some(a_ends[p as usize]));
        }
        let c = b
            .ingest(&mut sink, spec(), &batch(&all[..100]), origin(0))
            .unwrap();
        assert_eq!(c.admitted, 100, "another run's copies are not duplicates");
        // A crash after part of the next batch reached the bus (2nd partition append).
        sink.fail_after_append(4 + 4 + 2);
        let e = b
            .ingest(&mut sink, spec(), &batch(&all[100..200]), origin(100))
            .unwrap_err();
        assert_eq!(e.code(), "SINK_INJECTED_FAILURE");
    }
    let (b_on_bus, _) = events_of(&sink, "platform_B");
    assert!(b_on_bus > 100 && b_on_bus < 200, "{b_on_bus}");
    let mut b = open(db.path(), &mut sink, "platform_B");
    let rec = b.open_report().reconcile.clone();
    assert_eq!(rec.receipts_restored as usize, b_on_bus - 100);
    assert_eq!(rec.other_run_records, 0);
    let c = b
        .ingest(&mut sink, spec(), &batch(&all[100..300]), origin(100))
        .unwrap();
    assert_eq!(c.duplicates as usize, b_on_bus - 100);
    b.close().unwrap();

    // Exactly once from B's start offsets; A's records untouched.
    let (n, ids) = events_of(&sink, "platform_B");
    assert_eq!((n, ids.len()), (300, 300));
    assert_eq!(events_of(&sink, "platform_A").0, 200);
    let rb = audit(db.path(), &mut sink).unwrap();
    assert!(rb.ok(), "{:?}", rb.problems);
    assert_eq!((rb.bus_records, rb.admit_receipts), (300, 300));
    // A's audit reads from 0 and passes over B's records.
    let ra = audit(da.path(), &mut sink).unwrap();
    assert!(ra.ok(), "{:?}", ra.problems);
    assert_eq!((ra.bus_records, ra.other_run_records), (200, 300));

    // Resuming A after B wrote: B's records past A's watermarks are not adopted.
    let mut a = open(da.path(), &mut sink, "platform_A");
    let rec = a.open_report().reconcile.clone();
    assert_eq!((rec.receipts_restored, rec.other_run_records), (0, 300));
    let c = a
        .ingest(&mut sink, spec(), &batch(&all[150..300]), origin(150))
        .unwrap();
    assert_eq!((c.duplicates, c.admitted), (50, 100));
    a.close().unwrap();
    let ra = audit(da.path(), &mut sink).unwrap();
    assert!(ra.ok(), "{:?}", ra.problems);
    assert_eq!(ra.bus_records, 300);
    let rb = audit(db.path(), &mut sink).unwrap();
    assert!(rb.ok(), "{:?}", rb.problems);
    assert_eq!((rb.bus_records, rb.other_run_records), (300, 100));
}

#[test]
fn a_topic_created_after_the_gate_starts_where_it_was_at_first_use() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut sink = MemorySink::new();
    sink.set_outlives_run(true);
    // B's gate state is created while the topic does not exist yet.
    let b = Gate::open(db.path(), &cfg(), ctx("platform_B"), &mut sink).unwrap();
    assert!(b.start_offsets().is_recorded());
    assert_eq!(b.start_offsets().start(TOPIC, 0), None);
    drop(b);
    // Another run creates the topic and writes to it before B uses it.
    let mut a = open(da.path(), &mut sink, "platform_A");
    a.ingest(&mut sink, spec(), &batch(&rows(0..80)), origin(0))
        .unwrap();
    a.close().unwrap();
    // Reopened, B reconciles nothing: it never wrote that topic (rule 4).
    let mut b = Gate::open(db.path(), &cfg(), ctx("platform_B"), &mut sink).unwrap();
    assert_eq!(b.open_report().reconcile, Default::default());
    b.prepare_topics(&mut sink, &[spec()], PARTS).unwrap();
    let a_ends = ends(&sink);
    let s = StartOffsets::read(db.path()).unwrap();
    for p in 0..PARTS {
        assert_eq!(s.start(TOPIC, p), Some(a_ends[p as usize]), "published");
    }
    b.ingest(&mut sink, spec(), &batch(&rows(0..50)), origin(0))
        .unwrap();
    b.close().unwrap();
    let rb = audit(db.path(), &mut sink).unwrap();
    assert!(rb.ok(), "{:?}", rb.problems);
    assert_eq!((rb.bus_records, rb.other_run_records), (50, 0));
}

#[test]
fn a_bus_of_one_run_is_read_from_zero_as_before() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Not shared: like the file bus.
    let mut sink = MemorySink::new();
    let mut a = open(da.path(), &mut sink, "platform_A");
    a.ingest(&mut sink, spec(), &batch(&rows(0..40)), origin(0))
        .unwrap();
    a.close().unwrap();
    // A new gate state reconciles from 0 and writes no start.json.
    let b = open(db.path(), &mut sink, "platform_B");
    assert!(!db.path().join("start.json").exists());
    assert!(!b.start_offsets().is_recorded());
    assert_eq!(b.start_offsets().start(TOPIC, 3), Some(0));
    assert_eq!(b.open_report().reconcile.receipts_restored, 40);
    assert_eq!(b.open_report().reconcile.other_run_records, 0);
}

#[test]
fn other_run_detection_reads_the_envelope_field() {
    let env = |run: &str| format!(r#"{{"event_id":"x","platform_run_id":{run},"payload":{{}}}}"#);
    assert!(is_other_run(env("\"p_B\"").as_bytes(), "p_A"));
    assert!(!is_other_run(env("\"p_A\"").as_bytes(), "p_A"));
    assert!(!is_other_run(env(r#""p\u005fA""#).as_bytes(), "p_A"));
    assert!(is_other_run(env(r#""p\u005fB""#).as_bytes(), "p_A"));
    assert!(
        !is_other_run(br#"{"event_id":"x"}"#, "p_A"),
        "no field: judged as before"
    );
    let nested = br#"{"payload":{"platform_run_id":"p_B"},"platform_run_id":"p_A"}"#;
    assert!(!is_other_run(nested, "p_A"), "top level only");
}
