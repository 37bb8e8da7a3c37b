//! Crash consistency of the file bus: `sluice bus produce` (fsync per batch) is killed with
//! SIGKILL at random moments, many times, while a feeder writes records to its stdin and a
//! reader records the acknowledgements it prints. After every kill the next run reopens the
//! bus (recovering a torn tail). At the end, every acknowledged record is where its ack
//! said, offsets are dense per partition, and nothing was invented or duplicated.

use sluice_storage::gen::rng::SplitMix64;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn spawn_producer(bus: &std::path::Path) -> Child {
    sluice_tests::sluice!()
        .args(["--json", "bus", "produce", "--bus"])
        .arg(bus)
        .args([
            "t",
            "--partitions",
            "2",
            "--durability",
            "batch",
            "--max-batch",
            "300",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sluice bus produce")
}

/// One round: feed records with ids from `first_id`, kill after `kill_after`; returns the
/// number of lines written and the acks (id -> (partition, offset)).
fn round(
    bus: &std::path::Path,
    first_id: u64,
    pad: usize,
    kill_after: Duration,
) -> (u64, Vec<(u64, u32, u64)>) {
    let mut child = spawn_producer(bus);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut written = 0u64;
        for i in 0..20_000u64 {
            let id = first_id + i;
            let line = format!(
                "{{\"key\":\"k{}\",\"value\":{{\"id\":{id},\"pad\":\"{}\"}},\"ts\":{id}}}\n",
                id % 13,
                "x".repeat(pad)
            );
            if stdin.write_all(line.as_bytes()).is_err() {
                break; // the child is gone: this line may be partly written, never acked
            }
            written += 1;
        }
        // Lines counted as written may have been cut off; ids past them are never used again.
        written + 1
    });
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line).expect("ack line is JSON");
            if let Some(n) = v["line"].as_u64() {
                let p = v["partition"].as_u64().unwrap() as u32;
                let o = v["offset"].as_u64().unwrap();
                tx.send((first_id + n - 1, p, o)).unwrap();
            }
        }
    });
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL the producer");
    child.wait().unwrap();
    let written = feeder.join().unwrap();
    reader.join().unwrap();
    (written, rx.try_iter().collect())
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("eb");
    let mut rng = SplitMix64::new(0x5eed);
    let mut acked: HashMap<u64, (u32, u64)> = HashMap::new();
    let mut next_id = 0u64;
    const KILLS: usize = 24;
    for _ in 0..KILLS {
        let pad = (rng.next_u64() % 1500) as usize;
        let kill_after = Duration::from_millis(30 + rng.next_u64() % 170);
        let (written, acks) = round(&bus, next_id, pad, kill_after);
        for (id, p, o) in acks {
            assert!(acked.insert(id, (p, o)).is_none(), "id {id} acked twice");
        }
        next_id += written;
    }
    assert!(
        acked.len() > 100,
        "only {} acks: the producer never got going",
        acked.len()
    );
    // One clean run with empty stdin reopens (recovering the last torn tail) and exits.
    let mut last = spawn_producer(&bus);
    drop(last.stdin.take());
    assert!(last.wait().unwrap().success());
    let verify = sluice_tests::output({
        let mut c = sluice_tests::sluice!();
        c.args(["bus", "verify", "--bus"]).arg(&bus);
        c
    });
    assert!(verify.status.success(), "{}", sluice_tests::stderr(&verify));
    // Read everything back.
    let out = sluice_tests::output({
        let mut c = sluice_tests::sluice!();
        c.args(["--json", "bus", "tail", "--bus"])
            .arg(&bus)
            .args(["t", "-n", "100000000"]);
        c
    });
    assert!(out.status.success(), "{}", sluice_tests::stderr(&out));
    let mut next_offset = [0u64; 2];
    let mut seen: HashMap<u64, (u32, u64)> = HashMap::new();
    for line in sluice_tests::stdout(&out).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let p = v["partition"].as_u64().unwrap() as u32;
        let o = v["offset"].as_u64().unwrap();
        assert_eq!(
            o, next_offset[p as usize],
            "offsets dense and in order in partition {p}"
        );
        next_offset[p as usize] += 1;
        let id = v["value"]["id"].as_u64().expect("a record we sent");
        assert!(id < next_id, "invented record {id}");
        assert!(
            seen.insert(id, (p, o)).is_none(),
            "record {id} stored twice"
        );
        assert_eq!(v["timestamp"].as_u64(), Some(id));
    }
    eprintln!(
        "{KILLS} kills: {} records sent, {} acknowledged, {} stored",
        next_id,
        acked.len(),
        seen.len()
    );
    for (id, at) in &acked {
        assert_eq!(
            seen.get(id),
            Some(at),
            "acknowledged record {id} lost or moved"
        );
    }
}
