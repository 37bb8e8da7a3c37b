//! End-to-end runs of `sluice bus ...`: produce, inspect (topics, describe, tail, get,
//! dump), verify and recover on damage, and the second-writer lock error.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

fn run(args: &[&str], bus: &Path, stdin: Option<&str>) -> Output {
    let mut c = sluice_tests::sluice!();
    for a in args {
        if *a == "BUS" {
            c.arg(bus);
        } else {
            c.arg(a);
        }
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn json_lines(o: &Output) -> Vec<Value> {
    sluice_tests::stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn produce_some(bus: &Path) {
    let mut input = String::new();
    for i in 0..30 {
        input.push_str(&format!(
            "{{\"key\":\"k{}\",\"value\":{{\"i\":{i}}},\"ts\":\"2026-01-05T08:30:{:02}.000000Z\"}}\n",
            i % 3,
            i
        ));
    }
    input.push_str("{\"value\":\"not json\",\"partition\":1,\"ts\":1}\n");
    let o = run(
        &[
            "--json",
            "bus",
            "produce",
            "--bus",
            "BUS",
            "t",
            "--partitions",
            "2",
        ],
        bus,
        Some(&input),
    );
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 32, "31 acks and a summary");
    assert_eq!(lines[30]["partition"], 1);
    assert_eq!(lines[31]["summary"]["records"], 31);
}

#[test]
fn produce_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("eb");
    produce_some(&bus);
    let o = run(&["--json", "bus", "topics", "--bus", "BUS"], &bus, None);
    let v = &json_lines(&o)[0];
    assert_eq!(v["topics"][0]["name"], "t");
    assert_eq!(v["topics"][0]["records"], 31);

    let o = run(
        &["--json", "bus", "describe", "--bus", "BUS", "t"],
        &bus,
        None,
    );
    let v = &json_lines(&o)[0];
    let parts = v["partition_info"].as_array().unwrap();
    let total: u64 = parts
        .iter()
        .map(|p| p["end_offset"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 31);

    let o = run(
        &["--json", "bus", "get", "--bus", "BUS", "t", "1", "0"],
        &bus,
        None,
    );
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let v = &json_lines(&o)[0];
    assert!(v["value"].is_object(), "JSON values are shown as JSON: {v}");
    assert!(v["ts_utc"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-05T08:30:"));

    let o = run(
        &["--json", "bus", "tail", "--bus", "BUS", "t", "-n", "2"],
        &bus,
        None,
    );
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 4, "2 per partition");
    assert!(lines.iter().any(|l| l["value"] == "not json"));

    let o = run(&["bus", "get", "--bus", "BUS", "t", "0", "999"], &bus, None);
    assert!(!o.status.success());
    assert!(sluice_tests::stderr(&o).contains("error[BUS_OFFSET_OUT_OF_RANGE]"));
    let o = run(&["bus", "describe", "--bus", "BUS", "nope"], &bus, None);
    assert!(sluice_tests::stderr(&o).contains("error[BUS_TOPIC_NOT_FOUND]"));
    let o = run(
        &["bus", "topics", "--bus", "BUS"],
        &dir.path().join("nothing"),
        None,
    );
    assert!(sluice_tests::stderr(&o).contains("error[BUS_NOT_FOUND]"));
}

#[test]
fn verify_dump_and_recover_report_damage_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("eb");
    // Three separate produce runs: three batches in partition 0.
    for _ in 0..3 {
        let o = run(
            &["bus", "produce", "--bus", "BUS", "t", "--partitions", "1"],
            &bus,
            Some("{\"value\":{\"a\":1}}\n{\"value\":{\"a\":2}}\n"),
        );
        assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    }
    let seg = bus.join("topics/t/partition-00000/00000000000000000000.log");
    let o = run(&["--json", "bus", "dump", "BUS"], &seg, None);
    let batches: Vec<Value> = json_lines(&o)
        .into_iter()
        .filter(|v| v["kind"] == "batch")
        .collect();
    // Each run appends one or two batches (lines are batched as they arrive).
    assert!(batches.len() >= 3, "{batches:?}");
    let second = batches[1]["position"].as_u64().unwrap();
    let second_base = batches[1]["base_offset"].as_u64().unwrap();
    // Flip a byte inside the second (interior) batch.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[second as usize + 50] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();

    let o = run(&["bus", "verify", "--bus", "BUS"], &bus, None);
    assert_eq!(o.status.code(), Some(1));
    let err = sluice_tests::stderr(&o);
    assert!(
        err.contains("error[BUS_CORRUPT]") && err.contains(&format!("at byte {second}")),
        "{err}"
    );

    let o = run(&["bus", "dump", "BUS"], &seg, None);
    assert!(!o.status.success());
    assert!(
        sluice_tests::stdout(&o).contains("(INVALID)"),
        "{}",
        sluice_tests::stdout(&o)
    );

    // The writer refuses to open; recover cuts and reports.
    let o = run(&["bus", "produce", "--bus", "BUS", "t"], &bus, Some(""));
    assert!(sluice_tests::stderr(&o).contains("error[BUS_CORRUPT]"));
    let o = run(&["--json", "bus", "recover", "--bus", "BUS"], &bus, None);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let v = &json_lines(&o)[0];
    let cut = &v["partitions"][0]["cut"];
    assert_eq!(cut["position"], second);
    assert_eq!(cut["offsets_lost_from"], second_base);
    assert_eq!(cut["offsets_lost_until"], 6);
    let o = run(&["bus", "verify", "--bus", "BUS"], &bus, None);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
}

#[test]
fn second_writer_gets_a_coded_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("eb");
    let mut first = sluice_tests::sluice!()
        .args(["bus", "produce", "--bus"])
        .arg(&bus)
        .arg("t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(b"{\"value\":1}\n").unwrap();
    stdin.flush().unwrap();
    // Once the first record is acknowledged, the lock is certainly held.
    let mut out = BufReader::new(first.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ack line 1"), "{line}");
    let o = run(&["bus", "produce", "--bus", "BUS", "t"], &bus, Some(""));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        sluice_tests::stderr(&o).contains("error[BUS_PARTITION_LOCKED]"),
        "{}",
        sluice_tests::stderr(&o)
    );
    drop(stdin);
    assert!(first.wait().unwrap().success());
    let o = run(
        &["bus", "produce", "--bus", "BUS", "t"],
        &bus,
        Some("{\"value\":2}\n"),
    );
    assert!(o.status.success());
    assert!(sluice_tests::stdout(&o).contains("offset 1"));
}

#[test]
fn tail_follow_sees_records_produced_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let bus = dir.path().join("eb");
    let batch = |from: u32| -> String {
        (from..from + 5)
            .map(|i| format!("{{\"value\":{{\"i\":{i}}},\"ts\":{i}}}\n"))
            .collect()
    };
    let o = run(
        &["bus", "produce", "--bus", "BUS", "t"],
        &bus,
        Some(&batch(0)),
    );
    assert!(o.status.success());
    let mut follower = sluice_tests::sluice!()
        .args(["--json", "bus", "tail", "--bus"])
        .arg(&bus)
        .args(["t", "-n", "100", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let mut next = |n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| {
                let l = lines.next().unwrap().unwrap();
                let v: Value = serde_json::from_str(&l).unwrap();
                v["value"]["i"].as_u64().unwrap()
            })
            .collect()
    };
    assert_eq!(next(5), vec![0, 1, 2, 3, 4]);
    for round in 1..3 {
        let from = round * 5;
        let o = run(
            &["bus", "produce", "--bus", "BUS", "t"],
            &bus,
            Some(&batch(from)),
        );
        assert!(o.status.success());
        let want: Vec<u64> = (from as u64..from as u64 + 5).collect();
        assert_eq!(next(5), want, "every new record once, in order");
    }
    follower.kill().unwrap();
    follower.wait().unwrap();
}
