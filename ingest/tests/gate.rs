//! The gate end to end over a memory sink: duplicates point at the original offsets, changed
//! payloads are quarantined, bad rows do not stop anything, dedupe matches a HashMap oracle
//! through flushes, compactions, reopens and crashes, and a crash between the bus append
//! and the receipts is reconciled so the bus stays exactly-once.

mod common;

use std::collections::HashMap;

use arrow_array::RecordBatch;
use common::*;
use serde_json::Value;
use sluice_ingest::gate::record::BatchCounts;
use sluice_ingest::lookup::Lookup;
use sluice_ingest::pipeline::{run_pipeline, GateInput, PipelineConfig, Progress};
use sluice_ingest::receipts::RECORD;
use sluice_ingest::sink::{MemorySink, Sink};
use sluice_ingest::{Decision, Gate, GateConfig, ReasonCode};
use sluice_storage::outputs::OutputSpec;
use sluice_storage::view::sha256_hex;

const TOPIC: &str = "fp.bus.traffic.fraud.v1";

fn spec() -> &'static OutputSpec {
    OutputSpec::get(OUTPUT).unwrap()
}

fn open(dir: &std::path::Path, sink: &mut MemorySink, memory: u64) -> Gate {
    let cfg = GateConfig {
        partitions: 4,
        dedupe_memory: memory,
        expected_events: 10_000,
    };
    let mut g = Gate::open(dir, &cfg, run_ctx(), sink).unwrap();
    g.prepare_topics(sink, &[spec()], 4).unwrap();
    g
}

fn eid(r: &TRow) -> String {
    sha256_hex(event_id_string(r).as_bytes())
}

/// All bus records of the topic as (partition, offset, envelope).
fn bus(sink: &MemorySink) -> Vec<(u32, u64, Value)> {
    let mut out = Vec::new();
    for p in 0..4 {
        for (o, r) in sink.records(TOPIC, p).into_iter().enumerate() {
            out.push((p, o as u64, serde_json::from_slice(&r.value).unwrap()));
        }
    }
    out
}

/// Every receipt: (decision, event_id, eb_ref).
fn receipts(dir: &std::path::Path) -> Vec<(Decision, Option<String>, Value)> {
    let l = Lookup::open(dir).unwrap();
    let mut out = Vec::new();
    l.scan_all(|_, r, v| {
        out.push((
            r.decision,
            v["event_id"].as_str().map(String::from),
            v["eb_ref"].clone(),
        ));
        Ok(())
    })
    .unwrap();
    out
}

/// The bus holds each event once, and receipts agree: one ADMIT per bus record, pointing at it.
fn assert_bus_and_receipts_agree(dir: &std::path::Path, sink: &MemorySink) -> usize {
    let records = bus(sink);
    let mut on_bus: HashMap<String, (u32, u64)> = HashMap::new();
    for (p, o, v) in &records {
        let id = v["event_id"].as_str().unwrap().to_string();
        assert!(
            on_bus.insert(id.clone(), (*p, *o)).is_none(),
            "{id} twice on the bus"
        );
    }
    let mut admits = 0;
    for (d, id, eb) in receipts(dir) {
        let Some(id) = id else { continue };
        if d == Decision::Quarantine {
            assert!(eb.is_null());
            continue;
        }
        let (p, o) = on_bus[&id];
        assert_eq!(eb["topic"], TOPIC);
        assert_eq!(
            (eb["partition"].as_u64(), eb["offset"].as_u64()),
            (Some(p.into()), Some(o))
        );
        if d == Decision::Admit {
            admits += 1;
        }
    }
    assert_eq!(admits, records.len(), "one ADMIT receipt per bus record");
    records.len()
}

#[test]
fn re_pushed_events_are_duplicates_pointing_at_the_original_offsets() {
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    let mut g = open(d.path(), &mut sink, 64 << 20);
    let rows: Vec<TRow> = (0..200).map(|i| row(i, 1)).collect();
    let c = g
        .ingest(&mut sink, spec(), &batch(&rows), origin(0))
        .unwrap();
    assert_eq!((c.admitted, c.duplicates, c.quarantined), (200, 0, 0));
    let c = g
        .ingest(&mut sink, spec(), &batch(&rows), origin(0))
        .unwrap();
    assert_eq!((c.admitted, c.duplicates, c.quarantined), (0, 200, 0));
    // Before close, lookups see the receipts through the log tail; after, through the index.
    for closed in [false, true] {
        let l = Lookup::open(d.path()).unwrap();
        for r in rows.iter().step_by(37) {
            let mut found = l.by_event_id(&eid(r)).unwrap();
            // Receipt records leave the payload hash to the bus record (the original's,
            // for the DUPLICATE): null until read from there.
            assert!(found.receipts[0]["payload_hash"].is_null());
            assert!(found.receipts[1]["payload_hash"].is_null());
            l.payload_hashes_from_bus(&mut found, &mut sink).unwrap();
            let [admit, dup] = &found.receipts[..] else {
                panic!("{:?}", found.receipts)
            };
            assert_eq!(admit["payload_hash"].as_str().map(str::len), Some(64));
            assert_eq!(admit["payload_hash"], dup["payload_hash"]);
            assert_eq!(
                (admit["decision"].as_str(), dup["decision"].as_str()),
                (Some("ADMIT"), Some("DUPLICATE"))
            );
            assert_eq!(admit["eb_ref"], dup["eb_ref"]);
            let expected_rid = &sha256_hex(format!("DUPLICATE:{}", eid(r)).as_bytes())[..32];
            assert_eq!(dup["receipt_id"], expected_rid);
            assert_eq!(admit["pins"]["seed"], 42);
            assert_eq!(admit["pins"]["platform_run_id"], run_ctx().platform_run_id);
            // The contract's dedupe key (the index keys events otherwise, `ids::index_key`).
            let dk = format!("{}:traffic_fraud:{}", run_ctx().platform_run_id, eid(r));
            assert_eq!(admit["dedupe_key"], sha256_hex(dk.as_bytes()));
            assert_eq!(dup["dedupe_key"], admit["dedupe_key"]);
        }
        if !closed {
            g.flush().unwrap();
        }
    }
    g.close().unwrap();
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink), 200);
}

#[test]
fn a_changed_payload_under_the_same_id_is_quarantined_as_hash_mismatch() {
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    let mut g = open(d.path(), &mut sink, 64 << 20);
    let rows: Vec<TRow> = (0..10).map(|i| row(i, 1)).collect();
    g.ingest(&mut sink, spec(), &batch(&rows), origin(0))
        .unwrap();
    g.flush().unwrap(); // the original is now found through a run, not the memtable
    let mut changed = rows[3].clone();
    changed.amount = Some(999.5);
    let c = g
        .ingest(&mut sink, spec(), &batch(&[changed.clone()]), origin(50))
        .unwrap();
    assert_eq!(
        (
            c.quarantined,
            c.by_reason[ReasonCode::PayloadHashMismatch as usize]
        ),
        (1, 1)
    );
    // And in the same batch as its original (memtable path).
    let mut twin = row(77, 1);
    let first = twin.clone();
    twin.amount = Some(1.0);
    let c = g
        .ingest(&mut sink, spec(), &batch(&[first, twin]), origin(60))
        .unwrap();
    assert_eq!((c.admitted, c.quarantined), (1, 1));
    g.close().unwrap();
    let l = Lookup::open(d.path()).unwrap();
    let found = l.by_event_id(&eid(&changed)).unwrap();
    let q = found
        .receipts
        .iter()
        .find(|r| r["decision"] == "QUARANTINE")
        .unwrap();
    assert_eq!(
        q["reason_codes"],
        serde_json::json!(["PAYLOAD_HASH_MISMATCH"])
    );
    assert!(q["eb_ref"].is_null());
    let admit = found
        .receipts
        .iter()
        .find(|r| r["decision"] == "ADMIT")
        .unwrap();
    assert_eq!(found.quarantine[0]["conflicts_with"], admit["eb_ref"]);
    // The two hashes the recorder compared: the quarantined event's (from its quarantine
    // record) and the original's (from its bus record).
    assert_eq!(q["payload_hash"], found.quarantine[0]["payload_hash"]);
    assert_eq!(q["payload_hash"].as_str().map(str::len), Some(64));
    let mut filled = found.clone();
    l.payload_hashes_from_bus(&mut filled, &mut sink).unwrap();
    let admit_hash = filled
        .receipts
        .iter()
        .find(|r| r["decision"] == "ADMIT")
        .unwrap()["payload_hash"]
        .clone();
    assert_eq!(admit_hash.as_str().map(str::len), Some(64));
    assert_ne!(q["payload_hash"], admit_hash);
    assert_eq!(found.quarantine[0]["envelope"]["payload"]["amount"], 999.5);
    assert_eq!(found.quarantine[0]["source"]["row"], 50);
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink), 11);
}

#[test]
fn rows_failing_checks_are_quarantined_and_the_rest_admitted() {
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    let mut g = open(d.path(), &mut sink, 64 << 20);
    let mut rows: Vec<TRow> = (0..50).map(|i| row(i, 1)).collect();
    rows[7].amount = None;
    rows[8].event_type = None;
    rows[20].manifest_fingerprint = None;
    rows[30].flow_id = None;
    rows[40].ts_utc = Some("yesterday".into());
    let c = g
        .ingest(&mut sink, spec(), &batch(&rows), origin(1000))
        .unwrap();
    assert_eq!((c.admitted, c.quarantined), (45, 5));
    use ReasonCode::*;
    for (r, n) in [
        (SchemaFail, 2),
        (PinsMissing, 1),
        (PrimaryKeyMissing, 1),
        (EnvelopeInvalid, 1),
    ] {
        assert_eq!(c.by_reason[r as usize], n, "{r:?}");
    }
    g.close().unwrap();
    let l = Lookup::open(d.path()).unwrap();
    let found = l.by_event_id(&eid(&rows[7])).unwrap();
    assert_eq!(
        found.receipts[0]["reason_codes"],
        serde_json::json!(["SCHEMA_FAIL"])
    );
    assert_eq!(found.quarantine[0]["detail"], "amount is null");
    assert_eq!(found.quarantine[0]["source"]["row"], 1007);
    // The row without a primary key has no event id; its receipt id is the surrogate's.
    let rid = &sha256_hex(format!("QUARANTINE:{OUTPUT}/part-000000.parquet#1030").as_bytes())[..32];
    let found = l.by_receipt_id(rid).unwrap();
    assert_eq!(
        found.receipts[0]["reason_codes"],
        serde_json::json!(["PRIMARY_KEY_MISSING"])
    );
    assert!(found.receipts[0]["event_id"].is_null());
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink), 45);
}

/// What the oracle expects for an event given what it saw before.
fn oracle_decision(seen: &mut HashMap<(i64, i64), u64>, r: &TRow) -> Decision {
    let key = (r.flow_id.unwrap(), r.event_seq.unwrap());
    let payload = r.amount.unwrap().to_bits();
    match seen.get(&key) {
        None => {
            seen.insert(key, payload);
            Decision::Admit
        }
        Some(&p) if p == payload => Decision::Duplicate,
        Some(_) => Decision::Quarantine,
    }
}

#[test]
fn dedupe_matches_a_hashmap_oracle_through_flushes_reopens_and_crashes() {
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    // A tiny budget: memtables of ~1000 entries, so flushes and merges happen often.
    let memory = 200 << 10;
    let mut g = Some(open(d.path(), &mut sink, memory));
    let mut rng = SplitMix64(99);
    let mut seen = HashMap::new();
    let mut expected = Vec::new();
    for round in 0..40 {
        let rows: Vec<TRow> = (0..300)
            .map(|_| {
                let mut r = row(rng.below(4000) as i64, rng.below(2) as i64 + 1);
                if rng.below(10) == 0 {
                    r.amount = Some(7.25); // a changed payload
                }
                r
            })
            .collect();
        for r in &rows {
            expected.push((eid(r), oracle_decision(&mut seen, r)));
        }
        let gate = g.as_mut().unwrap();
        gate.ingest(&mut sink, spec(), &batch(&rows), origin(round * 300))
            .unwrap();
        match round % 7 {
            3 => g.take().unwrap().close().map(drop).unwrap(), // clean close
            5 => drop(g.take()),                               // crash: memtables lost
            _ => {}
        }
        if g.is_none() {
            g = Some(open(d.path(), &mut sink, memory));
        }
    }
    let stats = g.take().unwrap().close().unwrap();
    assert!(stats.flushes > 0 || stats.dedupe_runs > 0);
    let got: Vec<(String, Decision)> = receipts(d.path())
        .into_iter()
        .map(|(dec, id, _)| (id.unwrap(), dec))
        .collect();
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "event {i}");
    }
    let distinct = seen.len();
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink), distinct);
    let runs = std::fs::read_dir(d.path().join("index/dedupe"))
        .unwrap()
        .count();
    assert!(runs >= 1, "runs were written");
}

#[test]
fn a_crash_between_bus_append_and_receipts_is_reconciled_on_open() {
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    let rows: Vec<TRow> = (0..400).map(|i| row(i, 1)).collect();
    {
        let mut g = open(d.path(), &mut sink, 64 << 20);
        g.ingest(&mut sink, spec(), &batch(&rows[..100]), origin(0))
            .unwrap();
        // The next batch reaches the bus (2nd partition append stores and then fails):
        // some of its records are on the bus, none has a receipt.
        sink.fail_after_append(4 + 2);
        let e = g
            .ingest(&mut sink, spec(), &batch(&rows[100..200]), origin(100))
            .unwrap_err();
        assert_eq!(e.code(), "SINK_INJECTED_FAILURE");
        // The process dies here: no close, no flush.
    }
    let on_bus_before = bus(&sink).len();
    assert!(
        on_bus_before > 100 && on_bus_before < 200,
        "{on_bus_before}"
    );
    let mut g = open(d.path(), &mut sink, 64 << 20);
    assert_eq!(
        g.open_report().reconcile.receipts_restored as usize,
        on_bus_before - 100
    );
    // Resume from before the failed batch: the restored ones are duplicates now.
    let c = g
        .ingest(&mut sink, spec(), &batch(&rows[100..400]), origin(100))
        .unwrap();
    assert_eq!(c.duplicates as usize, on_bus_before - 100);
    assert_eq!(c.admitted as usize, 300 - (on_bus_before - 100));
    g.close().unwrap();
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink), 400);
}

struct Recorded {
    tags: Vec<u32>,
    checkpoints: usize,
    counts: BatchCounts,
    /// If set, every checkpoint checks that this receipt log holds a receipt for every
    /// event reported durable so far.
    log: Option<std::path::PathBuf>,
}

impl Recorded {
    fn new(log: Option<std::path::PathBuf>) -> Self {
        Recorded {
            tags: Vec::new(),
            checkpoints: 0,
            counts: BatchCounts::default(),
            log,
        }
    }
}

impl Progress<u32> for Recorded {
    fn durable(&mut self, tag: u32, counts: &BatchCounts) {
        self.tags.push(tag);
        self.counts.add(counts);
    }
    fn checkpoint(&mut self) -> sluice_ingest::Result<()> {
        self.checkpoints += 1;
        if let Some(log) = &self.log {
            // A 128-byte header, then 64-byte records.
            let on_log = (std::fs::metadata(log).unwrap().len() - 128) / RECORD as u64;
            assert!(
                on_log >= self.counts.events,
                "checkpoint {}: {} events reported durable, {on_log} receipts on the log",
                self.checkpoints,
                self.counts.events
            );
        }
        Ok(())
    }
}

#[test]
fn the_pipeline_decides_exactly_like_the_single_threaded_gate() {
    // One batch per group (200 events), a checkpoint asked for after every group; one
    // asked for while the fsync of the one before runs waits for it, so at most 31 (30 and
    // the end's).
    let report = pipeline_equals_single_threaded(&[200; 30], 200, Feed::default());
    assert!(
        (2..=31).contains(&report.checkpoints),
        "{}",
        report.checkpoints
    );
}

#[test]
fn grouped_recording_decides_exactly_like_the_single_threaded_gate() {
    // Groups of whatever is queued (duplicates resolved inside a group, flushes ending
    // groups): receipts and bus are still those of the single-threaded gate.
    let report = pipeline_equals_single_threaded(&[200; 30], 1 << 15, Feed::default());
    assert!((2..=31).contains(&report.checkpoints));
}

#[test]
fn tiny_batches_travel_and_record_together() {
    // `--merge` feeds the gate slices of a row or two. With every input already waiting,
    // stage A packs them into messages of >= 1024 events and stage B records each message
    // as one group: 1500 one- to three-row batches (~3000 events) make a handful of groups
    // (one checkpoint each, checkpoint_every = 1; memtable flushes end groups too), not
    // one per batch or per queue's worth (32 batches: at least 47 groups).
    let feed = Feed {
        prefill: true,
        ..Feed::default()
    };
    tiny_batches_make_few_groups(11, feed, "tiny batches were recorded one group each");
}

#[test]
fn unpaced_input_that_runs_dry_still_records_full_groups() {
    // An unpaced `--merge` sends bundles of tiny slices, and its reader falls behind the
    // gate now and then. Paced, stage A sends what it has whenever its input runs dry (here
    // every 10 bundles: ~75 groups, each with its fsyncs); unpaced, it only sends full
    // messages, so the groups are as few as with every input waiting.
    let feed = Feed {
        bundle: 2,
        pause_every: 10,
        unpaced: true,
        ..Feed::default()
    };
    tiny_batches_make_few_groups(12, feed, "the gate recorded short groups of unpaced input");
}

/// The envelope stage fails (a batch of an output whose topic was never prepared): the
/// pipeline returns that error, not "the pipeline panicked", every batch before it is
/// recorded, and the gate opened again goes on from there.
#[test]
fn an_envelope_stage_error_is_returned_and_what_came_before_is_recorded() {
    let other = sluice_storage::outputs::OUTPUTS
        .iter()
        .find(|o| o.topic != TOPIC)
        .expect("an output of another topic");
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    let mut g = open(d.path(), &mut sink, 200 << 10);
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..6u32 {
        let rows: Vec<TRow> = (0..10).map(|k| row(i as i64 * 10 + k, 1)).collect();
        let output = if i == 3 { other } else { spec() };
        tx.send((i, output, batch(&rows))).unwrap();
    }
    drop(tx);
    let mut progress = Recorded::new(None);
    let err = run_pipeline(
        &mut g,
        &mut sink as &mut dyn Sink,
        rx,
        |(i, output, b): (u32, &'static OutputSpec, RecordBatch)| {
            [GateInput {
                output,
                batch: b,
                origin: origin(i as u64 * 10),
                tag: i,
            }]
        },
        &mut progress,
        &PipelineConfig::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, sluice_ingest::IngestError::InvalidArgument(m) if m.contains("not prepared")),
        "{err:?}"
    );
    assert_eq!(progress.tags, vec![0, 1, 2]);
    assert_eq!(bus(&sink).len(), 30);
    // Opened again, the gate knows every recorded event: a new one is admitted, a
    // re-pushed one is a duplicate.
    drop(g);
    let mut g = open(d.path(), &mut sink, 200 << 10);
    let rows: Vec<TRow> = vec![row(1000, 1), row(0, 1)];
    let c = g
        .ingest(&mut sink, spec(), &batch(&rows), origin(60))
        .unwrap();
    assert_eq!((c.admitted, c.duplicates), (1, 1));
    g.close().unwrap();
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink), 31);
}

/// 1500 batches of one to three rows through the pipeline, fed as `feed` says: at most
/// 12 groups (checkpoints), and the single-threaded gate's receipts and bus.
fn tiny_batches_make_few_groups(seed: u64, feed: Feed, why: &str) {
    let mut rng = SplitMix64(seed);
    let sizes: Vec<usize> = (0..1500).map(|_| 1 + rng.below(3) as usize).collect();
    let report = pipeline_equals_single_threaded(&sizes, 1 << 15, feed);
    assert!(
        report.checkpoints <= 12,
        "{} checkpoints: {why}",
        report.checkpoints
    );
}

/// How the pipeline test feeds its batches.
#[derive(Clone, Copy, Default)]
struct Feed {
    /// Every input is queued before the pipeline starts.
    prefill: bool,
    /// Batches per input message (0 counts as 1), as an unpaced merge bundles slices.
    bundle: usize,
    /// The feeder sleeps 2 ms after every this many messages (0: never): the input runs dry.
    pause_every: usize,
    /// `PipelineConfig::unpaced`.
    unpaced: bool,
}

/// Ingest batches of `sizes` rows (random rows, some duplicates, some failing checks)
/// through the pipeline and through the single-threaded gate; both must leave the same
/// receipts and bus.
fn pipeline_equals_single_threaded(
    sizes: &[usize],
    group_events: usize,
    feed: Feed,
) -> sluice_ingest::pipeline::PipelineReport {
    let mut rng = SplitMix64(3);
    let batches: Vec<Vec<TRow>> = sizes
        .iter()
        .map(|&n| {
            (0..n)
                .map(|_| {
                    let mut r = row(rng.below(2500) as i64, 1);
                    if rng.below(20) == 0 {
                        r.amount = None;
                    }
                    r
                })
                .collect()
        })
        .collect();
    let events: usize = sizes.iter().sum();
    let first_rows: Vec<u64> = sizes
        .iter()
        .scan(0u64, |at, &n| {
            let first = *at;
            *at += n as u64;
            Some(first)
        })
        .collect();
    let memory = 200 << 10;
    // Single-threaded.
    let d1 = tempfile::tempdir().unwrap();
    let mut s1 = MemorySink::new();
    let mut g1 = open(d1.path(), &mut s1, memory);
    for (i, b) in batches.iter().enumerate() {
        g1.ingest(&mut s1, spec(), &batch(b), origin(first_rows[i]))
            .unwrap();
    }
    let again1 = g1
        .ingest(&mut s1, spec(), &batch(&batches[0]), origin(first_rows[0]))
        .unwrap();
    g1.close().unwrap();
    // Pipelined.
    let d2 = tempfile::tempdir().unwrap();
    let mut s2 = MemorySink::new();
    let mut g2 = open(d2.path(), &mut s2, memory);
    let (tx, rx) = if feed.prefill {
        crossbeam_channel::unbounded()
    } else {
        crossbeam_channel::bounded(2)
    };
    let messages: Vec<Vec<(u32, RecordBatch)>> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| (i as u32, batch(b)))
        .collect::<Vec<_>>()
        .chunks(feed.bundle.max(1))
        .map(|c| c.to_vec())
        .collect();
    let mut messages = messages.into_iter();
    if feed.prefill {
        for m in messages.by_ref() {
            tx.send(m).unwrap();
        }
    }
    let mut progress = Recorded::new(Some(d2.path().join("receipts.log")));
    let cfg = PipelineConfig {
        checkpoint_every: 1,
        group_events,
        unpaced: feed.unpaced,
        ..PipelineConfig::default()
    };
    let report = std::thread::scope(|s| {
        let feeder = s.spawn(move || {
            for (k, m) in messages.enumerate() {
                tx.send(m).unwrap();
                if feed.pause_every > 0 && (k + 1) % feed.pause_every == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            }
            drop(tx);
        });
        let report = run_pipeline(
            &mut g2,
            &mut s2 as &mut dyn Sink,
            rx,
            |m: Vec<(u32, RecordBatch)>| {
                m.into_iter().map(|(i, b)| GateInput {
                    output: spec(),
                    batch: b,
                    origin: origin(first_rows[i as usize]),
                    tag: i,
                })
            },
            &mut progress,
            &cfg,
        )
        .unwrap();
        feeder.join().unwrap();
        report
    });
    assert_eq!(report.counts.events, events as u64);
    assert_eq!(report.batches, sizes.len() as u64);
    assert_eq!(progress.checkpoints as u64, report.checkpoints);
    // The gate goes on after the pipeline with the runs its flushes and compactions left:
    // the first batch again decides as in the single-threaded gate (no admits).
    let again2 = g2
        .ingest(&mut s2, spec(), &batch(&batches[0]), origin(first_rows[0]))
        .unwrap();
    assert_eq!(again1, again2);
    assert_eq!(again2.admitted, 0);
    g2.close().unwrap();
    assert_eq!(progress.tags, (0..sizes.len() as u32).collect::<Vec<_>>());
    assert_eq!(receipts(d1.path()), receipts(d2.path()));
    assert_eq!(bus(&s1), bus(&s2));
    assert_eq!(progress.counts.events, events as u64);
    report
}

#[test]
fn one_writer_per_gate_and_one_run_per_gate() {
    let d = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::new();
    let g = open(d.path(), &mut sink, 64 << 20);
    let e = Gate::open(d.path(), &GateConfig::default(), run_ctx(), &mut sink)
        .err()
        .unwrap();
    assert_eq!(e.code(), "IG_LOCKED");
    drop(g);
    let mut other = run_ctx();
    other.platform_run_id = "platform_other".into();
    let e = Gate::open(d.path(), &GateConfig::default(), other, &mut sink)
        .err()
        .unwrap();
    assert_eq!(e.code(), "IG_RUN_MISMATCH");
}

/// A memory sink whose appends become durable only when waited on: each wait notes how
/// many receipts the log held then, how many records were on the bus before its group,
/// and how many had been started by then; it fails the wait numbered `fail_wait`.
struct DeferredSink {
    inner: MemorySink,
    receipts_log: std::path::PathBuf,
    started: std::sync::Arc<std::sync::atomic::AtomicU64>,
    waits: std::sync::Arc<std::sync::Mutex<Vec<(u64, u64, u64)>>>,
    fail_wait: Option<usize>,
}

impl Sink for DeferredSink {
    fn ensure_topic(
        &mut self,
        topic: &str,
        partitions: u32,
    ) -> Result<u32, sluice_ingest::SinkError> {
        self.inner.ensure_topic(topic, partitions)
    }
    fn partitions(&mut self, topic: &str) -> Result<Option<u32>, sluice_ingest::SinkError> {
        self.inner.partitions(topic)
    }
    fn append(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[sluice_ingest::sink::SinkRecord<'_>],
    ) -> Result<u64, sluice_ingest::SinkError> {
        self.inner.append(topic, partition, records)
    }
    fn start_many(
        &mut self,
        topic: &str,
        groups: &[(u32, &[sluice_ingest::sink::SinkRecord<'_>])],
    ) -> Result<sluice_ingest::sink::PendingMany, sluice_ingest::SinkError> {
        use std::sync::atomic::Ordering;
        let n: u64 = groups.iter().map(|(_, r)| r.len() as u64).sum();
        let before = self.started.fetch_add(n, Ordering::SeqCst);
        let firsts = self.inner.append_many(topic, groups)?;
        let (log, started, waits) = (
            self.receipts_log.clone(),
            self.started.clone(),
            self.waits.clone(),
        );
        let fail = self.fail_wait;
        Ok(sluice_ingest::sink::PendingMany::new(firsts, move || {
            let receipts = (std::fs::metadata(&log).unwrap().len() - 128) / RECORD as u64;
            let mut w = waits.lock().unwrap();
            w.push((receipts, before, started.load(Ordering::SeqCst)));
            if fail == Some(w.len()) {
                return Err(sluice_ingest::SinkError {
                    code: "BUS_IO",
                    message: "the disk went away".into(),
                });
            }
            Ok(())
        }))
    }
    fn end_offset(&mut self, topic: &str, partition: u32) -> Result<u64, sluice_ingest::SinkError> {
        self.inner.end_offset(topic, partition)
    }
    fn read(
        &mut self,
        topic: &str,
        partition: u32,
        from: u64,
        visit: &mut sluice_ingest::sink::Visit<'_>,
    ) -> Result<(), sluice_ingest::SinkError> {
        self.inner.read(topic, partition, from, visit)
    }
}

/// Runs 40 batches of 50 new events each (every event admitted, so receipts and bus
/// records correspond one to one) through the pipeline over a [`DeferredSink`].
fn run_deferred(
    dir: &std::path::Path,
    fail_wait: Option<usize>,
) -> (
    sluice_ingest::Result<sluice_ingest::pipeline::PipelineReport>,
    DeferredSink,
    Recorded,
) {
    let mut mem = MemorySink::new();
    let mut g = open(dir, &mut mem, 200 << 10);
    let mut sink = DeferredSink {
        inner: mem,
        receipts_log: dir.join("receipts.log"),
        started: Default::default(),
        waits: Default::default(),
        fail_wait,
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..40u32 {
        let rows: Vec<TRow> = (0..50).map(|k| row(i as i64 * 50 + k, 1)).collect();
        tx.send((i, batch(&rows))).unwrap();
    }
    drop(tx);
    let mut progress = Recorded::new(None);
    let cfg = PipelineConfig {
        group_events: 100,
        unpaced: true,
        ..PipelineConfig::default()
    };
    let report = run_pipeline(
        &mut g,
        &mut sink as &mut dyn Sink,
        rx,
        |(i, b): (u32, RecordBatch)| {
            [GateInput {
                output: spec(),
                batch: b,
                origin: origin(i as u64 * 50),
                tag: i,
            }]
        },
        &mut progress,
        &cfg,
    );
    drop(g);
    (report, sink, progress)
}

/// Groups overlap: the recorder writes a group's bus records, then waits for the group
/// before it to be durable and only then writes that group's receipts. No receipt is ever
/// on the log before its bus record is durable, and waits do happen after the next group
/// was written (the overlap is real).
#[test]
fn receipts_follow_durable_bus_appends_and_groups_overlap() {
    let d = tempfile::tempdir().unwrap();
    let (report, sink, progress) = run_deferred(d.path(), None);
    let report = report.unwrap();
    assert_eq!(report.counts.admitted, 2000);
    assert_eq!(progress.tags, (0..40).collect::<Vec<_>>());
    let waits = sink.waits.lock().unwrap().clone();
    assert!(waits.len() >= 10, "{} groups", waits.len());
    for &(receipts, before, _) in &waits {
        assert!(
            receipts <= before,
            "{receipts} receipts on the log when the group after record {before} became durable"
        );
    }
    let overlapped = waits
        .iter()
        .zip(waits.iter().skip(1))
        // Started records at this wait include the next group's.
        .filter(|(w, next)| w.2 > next.1)
        .count();
    assert!(
        overlapped > 0,
        "no group was waited for after the next was written: {waits:?}"
    );
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &sink.inner), 2000);
}

/// A group's appends fail to become durable: the pipeline returns the sink's error, that
/// group's receipts are never written, and the gate opened again reconciles its records
/// (the bus keeps them: here they were stored before the failure), so the bus stays
/// exactly-once and every record has its ADMIT receipt.
#[test]
fn a_failed_durability_wait_writes_no_receipts_for_its_group() {
    let d = tempfile::tempdir().unwrap();
    let (report, sink, _) = run_deferred(d.path(), Some(5));
    let err = report.unwrap_err();
    assert_eq!(err.code(), "BUS_IO", "{err:?}");
    let waits = sink.waits.lock().unwrap().clone();
    let (_, before_failed, _) = waits[4];
    let on_log = (std::fs::metadata(d.path().join("receipts.log"))
        .unwrap()
        .len()
        - 128)
        / RECORD as u64;
    assert!(
        on_log <= before_failed,
        "{on_log} receipts, the failed group started at record {before_failed}"
    );
    let mut mem = sink.inner;
    let mut g = open(d.path(), &mut mem, 200 << 10);
    let rows: Vec<TRow> = (0..50).map(|k| row(k, 1)).collect();
    let c = g
        .ingest(&mut mem, spec(), &batch(&rows), origin(0))
        .unwrap();
    assert_eq!(c.duplicates, 50);
    g.close().unwrap();
    let on_bus = bus(&mem).len();
    assert_eq!(assert_bus_and_receipts_agree(d.path(), &mem), on_bus);
}
