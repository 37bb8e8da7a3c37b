//! `sluice replay --bus kafka://…` end to end against a real Kafka-protocol broker (tansu):
//! SIGKILLed at random moments and resumed until it finishes, then the topics are read back:
//! every view row is on Kafka exactly once (its event id, once), each partition's records
//! are in time order, and every ADMIT receipt names a real Kafka partition and offset
//! holding its event (the gate's audit, run against the Kafka sink). Also the codes of a
//! missing topic with `--no-create-topics` and of unreachable brokers.

#[path = "replay_support/mod.rs"]
mod replay_support;

mod kafka_support;

use sluice_storage::gen::rng::SplitMix64;
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use kafka_support::Tansu;
use replay_support::*;
use sluice_ingest::kafka::KafkaSink;
use sluice_ingest::sink::Sink;
use sluice_storage::outputs::OutputSpec;
use sluice_storage::timefmt::parse_rfc3339_micros;
use sluice_storage::view::sha256_hex;
use sluice_tests::{output, sluice, stderr};

fn cmd() -> std::process::Command {
    sluice!()
}

const BASELINE: &str = "s2_event_stream_baseline_6B";

/// `sluice replay --engine-root ENG --runs-dir RUNS --all --max`; callers add the rest.
fn replay_all(eng: &std::path::Path, runs: &std::path::Path) -> std::process::Command {
    let mut c = cmd();
    c.arg("replay")
        .arg("--engine-root")
        .arg(eng)
        .arg("--runs-dir")
        .arg(runs)
        .args(["--all", "--max"]);
    c
}

/// Run `c`; it must fail with `error[CODE]`.
fn assert_fails_with(c: std::process::Command, code: &str) {
    let o = output(c);
    let err = stderr(&o);
    assert!(!o.status.success(), "expected {code}, got success");
    assert!(err.contains(&format!("error[{code}]")), "{err}");
}

/// Every record of a topic: (partition, offset, envelope).
fn topic_records(sink: &mut KafkaSink, topic: &str) -> Vec<(u32, u64, serde_json::Value)> {
    let parts = sink.partitions(topic).unwrap().unwrap_or(0);
    let mut out = Vec::new();
    for p in 0..parts {
        sink.read(topic, p, 0, &mut |o, v| {
            out.push((p, o, serde_json::from_slice(v).unwrap()));
            Ok(())
        })
        .unwrap();
    }
    out
}

#[test]
fn sigkill_and_resume_leave_every_row_on_kafka_exactly_once() {
    let Some(broker) = Tansu::start("sigkill_and_resume_leave_every_row_on_kafka_exactly_once")
    else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let eng = d.path().join("eng");
    let traffic = good_rows(6_000);
    let baseline = good_rows(1_500);
    write_view(&eng, TRAFFIC, &traffic, 1_000);
    write_view(&eng, BASELINE, &baseline, 500);
    let runs = d.path().join("runs");
    let args = |c: &mut std::process::Command| {
        c.env("PLATFORM_RUN_ID", RUN_ID)
            .arg("replay")
            .arg("--engine-root")
            .arg(&eng)
            .arg("--runs-dir")
            .arg(&runs)
            .args([
                "--all",
                "--max",
                "--rate",
                "2000",
                "--resume",
                "--partitions",
                "3",
            ])
            .args(["--checkpoint-every", "300", "--checkpoint-ms", "20"])
            .args(["--batch-rows", "128", "--bus", &broker.url(), "--json"]);
    };
    let mut rng = SplitMix64::new(0x006b_6166_6b61);
    let mut kills = 0;
    for _ in 0..12 {
        let mut c = cmd();
        args(&mut c);
        let log = std::fs::File::create(d.path().join(format!("{kills}.stderr"))).unwrap();
        let mut child = c.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng.next_u64() % 500));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "a replay failed on its own: {status}");
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    let reconciled = (0..=kills)
        .filter(|k| {
            std::fs::read_to_string(d.path().join(format!("{k}.stderr")))
                .is_ok_and(|t| t.contains("reconciled"))
        })
        .count();
    eprintln!("{kills} kill(s) mid-replay; {reconciled} restart(s) reconciled Kafka records without receipts");
    // The last run finishes.
    let mut c = cmd();
    args(&mut c);
    let o = output(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let last: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    eprintln!(
        "last run: admitted {} duplicates {}; gate open: {}",
        last["admitted"], last["duplicates"], last["gate_open"]
    );

    let mut sink = KafkaSink::open(&broker.url()).unwrap();
    let mut total = 0u64;
    for (id, rows) in [(TRAFFIC, &traffic), (BASELINE, &baseline)] {
        let topic = OutputSpec::get(id).unwrap().topic;
        assert_eq!(sink.partitions(topic).unwrap(), Some(3), "{topic}");
        let records = topic_records(&mut sink, topic);
        // Exactly once: the view's event ids, each once.
        // event_id_string is the traffic output's id text; the baseline's names its own.
        let want: HashSet<String> = rows
            .iter()
            .map(|r| sha256_hex(event_id_string(r).replacen(TRAFFIC, id, 1).as_bytes()))
            .collect();
        let mut seen = HashSet::new();
        for (p, o, env) in &records {
            let eid = env["event_id"].as_str().unwrap().to_string();
            assert!(want.contains(&eid), "{topic}/{p}@{o}: not a view row");
            assert!(
                seen.insert(eid),
                "{topic}/{p}@{o}: an event is on Kafka twice"
            );
        }
        assert_eq!(seen.len(), want.len(), "{topic}: rows missing");
        // Per partition, time never goes backwards and offsets are dense.
        for p in 0..3u32 {
            let part: Vec<_> = records.iter().filter(|r| r.0 == p).collect();
            for (i, w) in part.iter().enumerate() {
                assert_eq!(w.1, i as u64, "{topic}/{p}: offsets not dense");
            }
            let ts: Vec<i64> = part
                .iter()
                .map(|r| parse_rfc3339_micros(r.2["ts_utc"].as_str().unwrap()).unwrap())
                .collect();
            assert!(
                ts.windows(2).all(|w| w[0] <= w[1]),
                "{topic}/{p}: time goes backwards"
            );
        }
        total += records.len() as u64;
    }
    // Receipts point at real offsets holding their events (and nothing else is wrong).
    let report = sluice_ingest::audit::audit(&run_root(&runs).join("ig"), &mut sink).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.bus_records, total);
    assert_eq!(report.admit_receipts, total);
}

#[test]
fn no_create_topics_refuses_a_missing_topic() {
    let Some(broker) = Tansu::start("no_create_topics_refuses_a_missing_topic") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let eng = d.path().join("eng");
    write_view(&eng, TRAFFIC, &good_rows(50), 50);
    let mut c = replay_all(&eng, &d.path().join("runs"));
    c.args(["--no-create-topics", "--bus", &broker.url()]);
    assert_fails_with(c, "KAFKA_TOPIC_NOT_FOUND");
}

#[test]
fn unreachable_brokers_fail_with_their_code() {
    let d = tempfile::tempdir().unwrap();
    let eng = d.path().join("eng");
    write_view(&eng, TRAFFIC, &good_rows(10), 10);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let runs = d.path().join("runs");
    let mut c = replay_all(&eng, &runs);
    c.arg("--bus")
        .arg(format!("kafka://127.0.0.1:{port}?timeout_ms=1000"));
    assert_fails_with(c, "KAFKA_BROKERS_UNREACHABLE");
    // A bad option is refused before anything is sent.
    let mut c = replay_all(&eng, &runs);
    c.args(["--bus", "kafka://127.0.0.1:9?in_flight=9"]);
    assert_fails_with(c, "KAFKA_URL_INVALID");
}

/// Replay the views into Kafka as platform run `run` (no kills).
fn replay_run(eng: &std::path::Path, runs: &std::path::Path, run: &str, url: &str) {
    let mut c = replay_all(eng, runs);
    c.env("PLATFORM_RUN_ID", run)
        .args(["--partitions", "3", "--bus", url]);
    let o = output(c);
    assert!(o.status.success(), "{run}: {}", stderr(&o));
}

#[test]
fn two_platform_runs_on_the_same_topics_each_own_only_their_records() {
    let Some(broker) =
        Tansu::start("two_platform_runs_on_the_same_topics_each_own_only_their_records")
    else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let eng = d.path().join("eng");
    let traffic = good_rows(900);
    write_view(&eng, TRAFFIC, &traffic, 300);
    let runs = d.path().join("runs");
    let (run_a, run_b) = ("platform_e2e_a", "platform_e2e_b");
    let root = |run: &str| runs.join("fraud-platform").join(run);
    let topic = OutputSpec::get(TRAFFIC).unwrap().topic;

    replay_run(&eng, &runs, run_a, &broker.url());
    let mut sink = KafkaSink::open(&broker.url()).unwrap();
    let a_ends: Vec<u64> = (0..3).map(|p| sink.end_offset(topic, p).unwrap()).collect();
    // The same views again, as another platform run: the topics already hold run A's.
    replay_run(&eng, &runs, run_b, &broker.url());

    // Run B's gate starts at run A's ends (ig/start.json).
    let start: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root(run_b).join("ig").join("start.json")).unwrap())
            .unwrap();
    for (p, end) in a_ends.iter().enumerate() {
        assert_eq!(start["topics"][topic][p.to_string()], *end, "partition {p}");
    }
    // Each run's receipts cover exactly its own events, each once.
    let records = topic_records(&mut sink, topic);
    assert_eq!(records.len(), 2 * traffic.len());
    for (run, other) in [(run_a, run_b), (run_b, run_a)] {
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r.2["platform_run_id"] == run)
            .collect();
        assert_eq!(mine.len(), traffic.len(), "{run}");
        let report = sluice_ingest::audit::audit(&root(run).join("ig"), &mut sink).unwrap();
        assert!(report.ok(), "{run}: {:?}", report.problems);
        assert_eq!(report.bus_records, traffic.len() as u64, "{run}");
        assert_eq!(report.admit_receipts, traffic.len() as u64, "{run}");
        // A read its partitions from 0 and passed over B's; B never saw A's.
        let passed = if run == run_a {
            traffic.len() as u64
        } else {
            0
        };
        assert_eq!(report.other_run_records, passed, "{run} vs {other}");
        // Every ADMIT receipt of the run points at a record of the run.
        let mut c = cmd();
        c.args(["--json", "ingest", "lookup", "--run-root"])
            .arg(root(run))
            .args(["--event-id", mine[0].2["event_id"].as_str().unwrap()])
            .args(["--bus", &broker.url()]);
        let o = output(c);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let text = v.to_string();
        assert!(
            text.contains(&format!("\"offset\":{}", mine[0].1)),
            "{text}"
        );
        // The ADMIT receipt's payload hash, read from its Kafka record.
        let hash = v["receipts"][0]["payload_hash"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(hash.len(), 64, "{text}");
        // `sluice parity bus` against Kafka checks only the run's part.
        let mut c = cmd();
        c.args(["--json", "parity", "bus", "--engine-root"])
            .arg(&eng)
            .arg("--runs-dir")
            .arg(&runs)
            .args(["--run-id", run, "--bus", &broker.url()]);
        let o = output(c);
        assert!(o.status.success(), "{run}: {}", stderr(&o));
        // `sluice ingest verify --bus kafka://…` audits the same part from the CLI.
        let mut c = cmd();
        c.args(["--json", "ingest", "verify", "--run-root"])
            .arg(root(run))
            .args(["--bus", &broker.url()]);
        let o = output(c);
        assert!(o.status.success(), "{run}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["problem_count"], 0, "{run}: {v}");
        assert_eq!(v["bus_records"], traffic.len() as u64, "{run}: {v}");
        assert_eq!(v["admit_receipts"], traffic.len() as u64, "{run}: {v}");
        assert_eq!(v["other_run_records"], passed, "{run}: {v}");
    }
}
