//! `sluice demo` end to end on a small run: every stage reports, the views hold every
//! generated row, the replay puts every view row through the gate onto the bus, and both
//! parity stages pass (views against sources, the bus against the views).

use sluice_tests::{output, sluice, stderr, stdout};

#[test]
fn demo_runs_every_stage_and_accounts_for_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let mut c = sluice!();
    c.args(["--json", "demo", "--rows", "20000", "--files", "3", "--dir"])
        .arg(&demo_dir);
    let o = output(c);
    assert!(o.status.success(), "demo failed: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["gen", "sort", "replay", "parity view", "parity bus"]
    );
    let gen_rows = v["stages"][0]["rows"].as_u64().unwrap();
    let view_rows: u64 = v["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(view_rows, gen_rows, "sort lost or invented rows");
    assert_eq!(v["replay"]["events"].as_u64(), Some(view_rows));
    assert_eq!(v["replay"]["admitted"].as_u64(), Some(view_rows));
    assert_eq!(v["replay"]["quarantined"].as_u64(), Some(0));
    assert_eq!(
        v["parity"]["ok"],
        serde_json::Value::Bool(true),
        "{}",
        v["parity"]
    );
    let checked_views = v["parity"]["views"].as_array().unwrap();
    assert_eq!(checked_views.len(), v["views"].as_array().unwrap().len());
    let admitted: u64 = v["parity"]["bus"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["admitted"].as_u64().unwrap())
        .sum();
    assert_eq!(
        admitted, view_rows,
        "parity found every view row on the bus once"
    );

    // A second demo into the same directory starts over instead of refusing.
    let mut again = sluice!();
    again
        .args(["--json", "demo", "--rows", "20000", "--files", "3", "--dir"])
        .arg(&demo_dir);
    assert!(output(again).status.success());

    // A foreign non-empty directory is refused with a code.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), b"keep me").unwrap();
    let mut bad = sluice!();
    bad.args(["demo", "--rows", "1000", "--dir"]).arg(&foreign);
    let o = output(bad);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error[DEMO_DIR_NOT_EMPTY]"),
        "{}",
        stderr(&o)
    );
    assert!(foreign.join("precious.txt").exists());
}
