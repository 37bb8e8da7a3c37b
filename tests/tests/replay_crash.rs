//! Crash safety end to end: `sluice replay --resume` is killed with SIGKILL at random
//! moments, again and again, then allowed to finish. Afterwards the bus must hold every
//! view row exactly once, each partition in time order, and the receipts must agree with
//! the bus (`sluice ingest verify`).

mod replay_support;

use sluice_storage::gen::rng::SplitMix64;
use std::process::Stdio;
use std::time::Duration;

use replay_support::*;
use sluice_storage::outputs::OutputSpec;
use sluice_storage::publish::read_json;
use sluice_storage::view::{default_view_root, view_dir, StreamSortReceipt, RECEIPT_FILE};
use sluice_tests::{sluice, stderr};

fn cmd() -> std::process::Command {
    sluice!()
}

const ARGS: [&str; 10] = [
    "--all",
    "--max",
    "--resume",
    "--checkpoint-every",
    "500",
    "--checkpoint-ms",
    "50",
    "--batch-rows",
    "256",
    "--json",
];

#[test]
fn sigkill_and_resume_leave_every_view_row_on_the_bus_exactly_once() {
    kill_and_resume(&[], 0x5eed);
}

/// The same with a dedupe index of 1 MiB: memtables of ~1,500 events (~24 flushes), so runs are
/// written, compacted and published by the pipeline's flusher thread while the recorder
/// goes on recording, and the kills land in the middle of that too.
#[test]
fn sigkill_during_index_flushes_and_compactions_loses_and_duplicates_nothing() {
    kill_and_resume(&["--dedupe-memory", "1MiB"], 0xf1a5);
}

fn kill_and_resume(extra: &[&str], seed: u64) {
    let d = tempfile::tempdir().unwrap();
    // Two outputs replayed concurrently, many small parts and row groups. (Views written
    // here rather than by `sluice sort`, so this test checks replay alone.)
    let eng = d.path().join("eng");
    write_view(&eng, TRAFFIC, &good_rows(30_000), 4_000);
    write_view(
        &eng,
        "s2_event_stream_baseline_6B",
        &good_rows(6_000),
        1_000,
    );
    let runs = d.path().join("runs");
    let mut rng = SplitMix64::new(seed);
    let mut kills = 0;
    let mut finished = false;
    let logs = d.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for attempt in 0..16 {
        let log = std::fs::File::create(logs.join(format!("{attempt}.stderr"))).unwrap();
        let mut c = cmd();
        c.env("PLATFORM_RUN_ID", RUN_ID)
            .arg("replay")
            .arg("--engine-root")
            .arg(&eng)
            .arg("--runs-dir")
            .arg(&runs)
            .args(ARGS)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log);
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(10 + rng.next_u64() % 150));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "a replay failed on its own: {status}");
                finished = true;
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
    }
    assert!(kills >= 4, "only {kills} kills landed mid-replay");
    let reconciled = std::fs::read_dir(&logs)
        .unwrap()
        .filter(|e| {
            let text = std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap();
            text.contains("reconciled")
        })
        .count();
    eprintln!("{kills} kills, {reconciled} runs reconciled bus records without receipts");
    // Let the last one finish.
    let last: Vec<&str> = ARGS[..9].iter().chain(extra).copied().collect();
    let (o, v) = replay(cmd, &runs, &eng, &last);
    assert!(o.status.success(), "{}", stderr(&o));
    if finished {
        assert_eq!(v["admitted"], 0, "nothing was left to admit");
    }

    eprintln!("last run: {}", v["gate_open"]);
    let audit = assert_verified(cmd, &runs);
    let root = default_view_root(&eng);
    let mut total = 0;
    for id in [TRAFFIC, "s2_event_stream_baseline_6B"] {
        let receipt: StreamSortReceipt =
            read_json(&view_dir(&root, id).join(RECEIPT_FILE)).unwrap();
        let topic = OutputSpec::get(id).unwrap().topic;
        let bus = bus_records(cmd, &runs, topic);
        assert_eq!(bus.len() as u64, receipt.sorted_stats.row_count, "{id}");
        let mut ids: Vec<&str> = bus
            .iter()
            .map(|r| r.2["event_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), bus.len(), "{id}: an event is on the bus twice");
        total += bus.len() as u64;
    }
    assert_eq!(audit["bus_records"], total);
    assert_eq!(audit["admit_receipts"], total);
}
