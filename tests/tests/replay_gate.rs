//! `sluice replay` end to end on small hand-written views: event ids by the documented
//! formula, bad rows quarantined without stopping the replay, re-pushes as DUPLICATE
//! pointing at the original offsets, a changed payload as PAYLOAD_HASH_MISMATCH, time
//! windows, and views refused with the platform's codes.

mod replay_support;

use replay_support::*;
use serde_json::json;
use sluice_storage::view::sha256_hex;
use sluice_tests::{output, sluice, stderr, stdout};

fn cmd() -> std::process::Command {
    sluice!()
}

#[test]
fn bad_rows_are_quarantined_and_the_rest_admitted_with_formula_event_ids() {
    let d = tempfile::tempdir().unwrap();
    let (eng, runs) = (d.path().join("eng"), d.path().join("runs"));
    let mut rows = good_rows(300);
    rows[10].amount = None; // SCHEMA_FAIL
    rows[150].flow_id = None; // PRIMARY_KEY_MISSING
    write_traffic_view(&eng, &rows, 120);
    let (o, v) = replay(
        cmd,
        &runs,
        &eng,
        &["--output-id", TRAFFIC, "--max", "--batch-rows", "64"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = &v["outputs"][0];
    assert_eq!(out["emitted"], 300);
    assert_eq!(
        (out["admitted"].as_u64(), out["quarantined"].as_u64()),
        (Some(298), Some(2))
    );
    assert_eq!(
        out["by_reason"],
        json!({"PRIMARY_KEY_MISSING": 1, "SCHEMA_FAIL": 1})
    );

    // Event ids on the bus are sha256 of the documented string, for every good row.
    let bus = bus_records(cmd, &runs, TRAFFIC_TOPIC);
    assert_eq!(bus.len(), 298);
    let mut on_bus: Vec<String> = bus
        .iter()
        .map(|(_, _, v)| v["event_id"].as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 10 && *i != 150)
        .map(|(_, r)| sha256_hex(event_id_string(r).as_bytes()))
        .collect();
    on_bus.sort();
    expected.sort();
    assert_eq!(on_bus, expected);
    // Per partition, offsets follow time.
    for p in 0..4 {
        let ts: Vec<&str> = bus
            .iter()
            .filter(|r| r.0 == p)
            .map(|r| r.2["ts_utc"].as_str().unwrap())
            .collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "partition {p} out of order"
        );
    }
    let q = lookup(
        cmd,
        &runs,
        &sha256_hex(event_id_string(&rows[10]).as_bytes()),
    );
    assert_eq!(q["receipts"][0]["decision"], "QUARANTINE");
    assert_eq!(q["receipts"][0]["reason_codes"], json!(["SCHEMA_FAIL"]));
    assert_eq!(
        q["quarantine"][0]["source"],
        json!({"file": "part-000000.parquet", "row": 10})
    );
    assert_verified(cmd, &runs);
}

#[test]
fn re_push_gives_duplicates_at_the_original_offsets_and_changed_payloads_mismatch() {
    let d = tempfile::tempdir().unwrap();
    let (eng, runs) = (d.path().join("eng"), d.path().join("runs"));
    let rows = good_rows(200);
    write_traffic_view(&eng, &rows, 80);
    let args = ["--output-id", TRAFFIC, "--max", "--batch-rows", "50"];
    let (o, _) = replay(cmd, &runs, &eng, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = bus_records(cmd, &runs, TRAFFIC_TOPIC);

    // Again, from the beginning (no --resume): every event is a duplicate.
    let (o, v) = replay(cmd, &runs, &eng, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        (v["admitted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(200))
    );
    assert_eq!(
        bus_records(cmd, &runs, TRAFFIC_TOPIC),
        first,
        "the bus did not change"
    );
    for r in rows.iter().step_by(23) {
        let id = sha256_hex(event_id_string(r).as_bytes());
        let found = lookup(cmd, &runs, &id);
        let receipts = found["receipts"].as_array().unwrap();
        let admit = receipts.iter().find(|x| x["decision"] == "ADMIT").unwrap();
        let dup = receipts
            .iter()
            .find(|x| x["decision"] == "DUPLICATE")
            .unwrap();
        assert_eq!(admit["eb_ref"], dup["eb_ref"]);
        let (p, o) = (
            admit["eb_ref"]["partition"].as_u64().unwrap(),
            admit["eb_ref"]["offset"].as_u64().unwrap(),
        );
        let rec = first.iter().find(|x| x.0 == p && x.1 == o).unwrap();
        assert_eq!(rec.2["event_id"], id.as_str());
        // The ADMIT receipt's payload hash (not stored: `lookup` computes it from the bus
        // record) is the contract's formula, and the DUPLICATE's (stored) is the same.
        let canonical = sluice_storage::view::canonical_json(&json!({
            "event_type": TRAFFIC, "schema_version": "v1", "payload": rec.2["payload"],
        }));
        assert_eq!(
            admit["payload_hash"],
            sha256_hex(canonical.as_bytes()).as_str()
        );
        assert_eq!(dup["payload_hash"], admit["payload_hash"]);
    }

    // The same ids with one payload changed: that one is quarantined, the rest duplicates.
    let mut changed = rows.clone();
    changed[42].amount = Some(12345.5);
    write_traffic_view(&eng, &changed, 80);
    let (o, v) = replay(cmd, &runs, &eng, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        v["outputs"][0]["by_reason"],
        json!({"PAYLOAD_HASH_MISMATCH": 1})
    );
    assert_eq!(v["duplicates"], 199);
    let found = lookup(
        cmd,
        &runs,
        &sha256_hex(event_id_string(&changed[42]).as_bytes()),
    );
    let q = &found["quarantine"][0];
    let admit = found["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["decision"] == "ADMIT")
        .unwrap();
    assert_eq!(q["conflicts_with"], admit["eb_ref"]);
    assert_eq!(q["envelope"]["payload"]["amount"], 12345.5);
    assert_verified(cmd, &runs);
}

#[test]
fn time_windows_replay_exactly_the_rows_inside() {
    let d = tempfile::tempdir().unwrap();
    let (eng, runs) = (d.path().join("eng"), d.path().join("runs"));
    let rows = good_rows(400);
    write_traffic_view(&eng, &rows, 150);
    let (from, until) = (rows[123].ts, rows[301].ts);
    let f = sluice_storage::timefmt::format_rfc3339_micros(from);
    let u = sluice_storage::timefmt::format_rfc3339_micros(until);
    let (o, v) = replay(
        cmd,
        &runs,
        &eng,
        &[
            "--output-id",
            TRAFFIC,
            "--max",
            "--from-ts",
            &f,
            "--until-ts",
            &u,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["outputs"][0]["emitted"], 301 - 123);
    assert!(
        v["outputs"][0]["row_groups_skipped"].as_u64().unwrap() >= 2,
        "{v}"
    );
    let bus = bus_records(cmd, &runs, TRAFFIC_TOPIC);
    let mut flows: Vec<i64> = bus
        .iter()
        .map(|r| r.2["payload"]["flow_id"].as_i64().unwrap())
        .collect();
    flows.sort();
    assert_eq!(flows, (123..301).map(|i| 1000 + i).collect::<Vec<_>>());
}

#[test]
fn missing_and_partial_views_are_refused_with_platform_codes() {
    let d = tempfile::tempdir().unwrap();
    let (eng, runs) = (d.path().join("eng"), d.path().join("runs"));
    write_traffic_view(&eng, &good_rows(10), 10);
    let run = |id: &str| {
        let (o, _) = replay(cmd, &runs, &eng, &["--output-id", id, "--max"]);
        assert_eq!(o.status.code(), Some(1));
        stderr(&o)
    };
    assert!(
        run("arrival_events_5B").starts_with("error[STREAM_VIEW_MISSING]"),
        "{}",
        run("arrival_events_5B")
    );
    let dir =
        sluice_storage::view::view_dir(&sluice_storage::view::default_view_root(&eng), TRAFFIC);
    std::fs::remove_file(dir.join("_stream_sort_receipt.json")).unwrap();
    let e = run(TRAFFIC);
    assert!(e.starts_with("error[STREAM_VIEW_PARTIAL_EXISTS]"), "{e}");
    assert!(run("nope").starts_with("error[UNKNOWN_OUTPUT_ID]"));
    // Usage: neither --output-id nor --all.
    let mut c = sluice!();
    c.args(["replay", "--engine-root"]).arg(&eng);
    assert_eq!(output(c).status.code(), Some(2));
}

#[test]
fn bus_flag_chooses_the_file_bus_and_refuses_unknown_schemes() {
    let d = tempfile::tempdir().unwrap();
    let (eng, runs) = (d.path().join("eng"), d.path().join("runs"));
    let elsewhere = d.path().join("other-eb");
    write_traffic_view(&eng, &good_rows(50), 20);

    // Unknown schemes and malformed Kafka URLs (options included) fail before anything is
    // written.
    for (url, code) in [
        ("s3://bucket/eb", "BUS_URL_UNSUPPORTED"),
        ("eb-without-scheme", "BUS_URL_UNSUPPORTED"),
        ("kafka://", "KAFKA_URL_INVALID"),
        ("kafka://h:9?in_flight=9", "KAFKA_URL_INVALID"),
    ] {
        let (o, _) = replay(
            cmd,
            &runs,
            &eng,
            &["--output-id", TRAFFIC, "--max", "--bus", url],
        );
        assert_eq!(o.status.code(), Some(1), "{url}");
        assert!(
            stderr(&o).starts_with(&format!("error[{code}]")),
            "{url}: {}",
            stderr(&o)
        );
    }
    assert!(
        !runs.exists(),
        "a refused --bus must not create the run tree"
    );

    // file:DIR puts the bus there; the gate state stays under the run root.
    let url = format!("file://{}", elsewhere.display());
    let (o, v) = replay(
        cmd,
        &runs,
        &eng,
        &["--output-id", TRAFFIC, "--max", "--bus", &url],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["admitted"], 50);
    assert_eq!(v["bus"], url.as_str());
    // The run tree's own eb/ (created with the tree) stays empty.
    let eb = run_root(&runs).join("eb");
    assert!(std::fs::read_dir(&eb).map_or(true, |mut d| d.next().is_none()));
    let mut c = cmd();
    c.args([
        "bus",
        "tail",
        TRAFFIC_TOPIC,
        "-n",
        "1000",
        "--json",
        "--bus",
    ])
    .arg(&elsewhere);
    let o = output(c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 50);
    assert!(run_root(&runs).join("ig").join("receipts.log").is_file());
}

#[test]
fn merged_replay_records_every_output_in_one_global_time_order() {
    // `--merge` hands the gate slices of a row or two, alternating between outputs; the
    // gate packs them into large messages and groups. The receipts (one per event, in
    // decision order) must still follow the merged order: time never goes back across
    // outputs, every output is there, and receipts agree with the bus.
    let d = tempfile::tempdir().unwrap();
    let runs = d.path().join("runs");
    let eng = gen_and_sort(cmd, d.path(), 6000);
    let (o, v) = replay(cmd, &runs, &eng, &["--all", "--merge", "--max"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let outputs = v["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 4, "{v}");
    assert!(
        outputs.iter().all(|o| o["emitted"].as_u64().unwrap() > 0),
        "{v}"
    );
    assert_verified(cmd, &runs);
    let log = std::fs::read(run_root(&runs).join("ig").join("receipts.log")).unwrap();
    // A 128-byte header, then 64-byte records (time at bytes 16..24, flag 2).
    let times: Vec<i64> = log[128..]
        .chunks_exact(sluice_ingest::receipts::RECORD)
        .map(|r| {
            assert!(r[5] & 2 != 0, "a receipt without its time");
            i64::from_le_bytes(r[16..24].try_into().unwrap())
        })
        .collect();
    assert_eq!(times.len() as u64, v["events"].as_u64().unwrap());
    let back = times.windows(2).position(|w| w[1] < w[0]);
    assert_eq!(back, None, "receipt times go back");

    // `ingest stats`: the same count, for scripts and for people.
    let stats = |json: bool| {
        let mut c = cmd();
        if json {
            c.arg("--json");
        }
        c.args(["ingest", "stats", "--run-root"])
            .arg(run_root(&runs));
        let o = output(c);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let j: serde_json::Value = serde_json::from_str(stats(true).trim()).unwrap();
    assert_eq!(j["receipts"], v["events"]);
    assert_eq!(
        j["contexts"].as_u64(),
        Some(4),
        "one context per output: {j}"
    );
    let text = stats(false);
    let digits = times.len().to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).unwrap())
        .collect();
    let count = groups.join(",");
    assert!(text.contains(&format!("receipts      {count} ")), "{text}");
}
