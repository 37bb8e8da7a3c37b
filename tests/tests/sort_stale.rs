//! A view built from data that was later regenerated in place (same paths, other bytes) is
//! stale: the next `sluice sort` must refuse it with STREAM_RECEIPT_MISMATCH rather than skip
//! it as done, and `--force` must rebuild it.

use sluice_tests::{output, sluice, stderr, stdout};

fn gen(root: &std::path::Path, rows: &str, force: bool) {
    let mut c = sluice!();
    c.args(["gen", "--rows", rows, "--files", "2", "--seed", "1"])
        .args(["--outputs", "s3_event_stream_with_fraud_6B", "--out"])
        .arg(root);
    if force {
        c.arg("--force");
    }
    let o = output(c);
    assert!(o.status.success(), "gen failed: {}", stderr(&o));
}

fn sort(root: &std::path::Path, force: bool) -> std::process::Output {
    let mut c = sluice!();
    c.args([
        "--json",
        "sort",
        "--output-id",
        "s3_event_stream_with_fraud_6B",
        "--engine-root",
    ])
    .arg(root);
    if force {
        c.arg("--force");
    }
    output(c)
}

#[test]
fn regenerated_sources_make_the_receipt_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gen(root, "20000", false);
    let first = sort(root, false);
    assert!(first.status.success(), "{}", stderr(&first));

    // Unchanged sources: the matching receipt means done.
    let again = sort(root, false);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("\"skipped\""), "{}", stdout(&again));

    // Same paths (same seed and file count), other data (more rows).
    gen(root, "30000", true);
    let stale = sort(root, false);
    assert_eq!(stale.status.code(), Some(1));
    let err = stderr(&stale);
    assert!(err.starts_with("error[STREAM_RECEIPT_MISMATCH]"), "{err}");
    assert!(err.contains("source_fingerprint"), "{err}");

    let rebuilt = sort(root, true);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert!(
        stdout(&rebuilt).contains("\"built\""),
        "{}",
        stdout(&rebuilt)
    );
}
