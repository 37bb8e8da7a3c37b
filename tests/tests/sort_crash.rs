//! Crash consistency: `SIGKILL` a `sluice sort` at chosen and at seeded random moments,
//! then check that the view is either absent or complete and correct, that a rerun
//! finishes it, and that no staging, trash or spill files survive.

mod sort_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use sluice_storage::view::{StreamSortReceipt, RECEIPT_FILE};
use sluice_tests::sluice;
use sort_support::*;

fn sort_cmd(root: &Path, vr: &Path) -> Command {
    let mut c = sluice!();
    c.args(["sort", "--json", "--engine-root"])
        .arg(root)
        .args(["--output-id", OUTPUT])
        .arg("--view-root")
        .arg(vr)
        // Small budget: the build spills, so a kill can land with spill files open.
        .args(["--memory-limit", "4MiB"]);
    for v in [
        "STREAM_SORT_MEMORY_LIMIT",
        "STREAM_SORT_TEMP_DIR",
        "STREAM_SORT_MAX_TEMP_SIZE",
        "STREAM_SORT_THREADS",
        "SLUICE_SORT_FAULT",
    ] {
        c.env_remove(v);
    }
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
}

/// The view under `vr` is absent, or complete: receipt present, every part the receipt
/// lists is there with its size, and the rows are `reference`'s.
fn assert_absent_or_complete(vr: &Path, reference: &[(i64, i64)]) {
    let dir = view_dir(vr, OUTPUT);
    if !dir.exists() {
        return;
    }
    let receipt: StreamSortReceipt = serde_json::from_slice(
        &fs::read(dir.join(RECEIPT_FILE)).expect("a published view has a receipt"),
    )
    .unwrap();
    for p in &receipt.parts {
        assert_eq!(fs::metadata(dir.join(&p.name)).unwrap().len(), p.bytes);
    }
    assert_eq!(parts(&dir).len(), receipt.parts.len());
    assert_eq!(view_pk(&dir), reference);
}

struct Fixture {
    _d: tempfile::TempDir,
    root: PathBuf,
    reference: Vec<(i64, i64)>,
    base: PathBuf,
}

fn fixture() -> Fixture {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("engine");
    gen(sluice!(), &root, 150_000, 5, 11);
    let refroot = d.path().join("reference");
    let out = sort_cmd(&root, &refroot).output().unwrap();
    assert!(out.status.success());
    let reference = view_pk(&view_dir(&refroot, OUTPUT));
    assert_eq!(reference.len(), 150_000);
    Fixture {
        base: d.path().to_path_buf(),
        _d: d,
        root,
        reference,
    }
}

fn finish_and_check(f: &Fixture, vr: &Path) {
    assert_absent_or_complete(vr, &f.reference);
    let out = sort_cmd(&f.root, vr).output().unwrap();
    assert!(out.status.success(), "rerun after a kill succeeds");
    assert_eq!(view_pk(&view_dir(vr, OUTPUT)), f.reference);
    assert_no_leftovers(vr);
}

#[test]
fn kills_at_random_moments_leave_old_state_or_whole_view() {
    let f = fixture();
    // Seeded delays spread over a build (a debug build of this size takes ~1-3 s).
    let mut seed = 0x5eed_u64;
    for round in 0..6 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(20 + (seed >> 33) % 1500);
        let vr = f.base.join(format!("views-{round}"));
        let child = sort_cmd(&f.root, &vr).spawn().unwrap();
        sleep(delay);
        kill(child);
        finish_and_check(&f, &vr);
    }
}

fn staging_of(vr: &Path) -> Option<PathBuf> {
    fs::read_dir(vr)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".staging-"))
        })
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn kills_at_named_points() {
    let f = fixture();
    // After phase 1: spill files and a staging directory exist, nothing is published.
    let vr = f.base.join("after-phase1");
    let child = sort_cmd(&f.root, &vr)
        .env("SLUICE_SORT_FAULT", "pause-after-phase1=60000")
        .spawn()
        .unwrap();
    wait_for("a staging dir", || staging_of(&vr).is_some());
    sleep(Duration::from_millis(1500));
    kill(child);
    assert!(!view_dir(&vr, OUTPUT).exists());
    finish_and_check(&f, &vr);

    // Receipt and manifest written into staging, not yet renamed.
    let vr = f.base.join("before-publish");
    let child = sort_cmd(&f.root, &vr)
        .env("SLUICE_SORT_FAULT", "pause-before-publish=60000")
        .spawn()
        .unwrap();
    wait_for("the staged receipt", || {
        staging_of(&vr).is_some_and(|s| s.join("_stream_view_manifest.json").exists())
    });
    kill(child);
    assert!(!view_dir(&vr, OUTPUT).exists());
    finish_and_check(&f, &vr);
}

#[test]
fn kill_during_forced_replacement_keeps_one_whole_view() {
    let f = fixture();
    let vr = f.base.join("replace");
    assert!(sort_cmd(&f.root, &vr).output().unwrap().status.success());
    let old = fs::read(view_dir(&vr, OUTPUT).join(RECEIPT_FILE)).unwrap();
    // Swapped in, old view not yet deleted: the new view is whole, the old one is a
    // leftover the next run removes.
    let child = sort_cmd(&f.root, &vr)
        .args(["--force", "--zstd-level", "5"])
        .env("SLUICE_SORT_FAULT", "pause-after-swap=60000")
        .spawn()
        .unwrap();
    wait_for("the swap", || {
        fs::read(view_dir(&vr, OUTPUT).join(RECEIPT_FILE)).is_ok_and(|r| r != old)
    });
    kill(child);
    assert_absent_or_complete(&vr, &f.reference);
    finish_and_check(&f, &vr);
    // Random kills during more forced rebuilds: always one whole view.
    let mut seed = 99u64;
    for level in [2, 3, 4] {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let child = sort_cmd(&f.root, &vr)
            .args(["--force", "--zstd-level", &level.to_string()])
            .spawn()
            .unwrap();
        sleep(Duration::from_millis(50 + (seed >> 33) % 2500));
        kill(child);
        assert!(
            view_dir(&vr, OUTPUT).exists(),
            "the old or the new view is always there"
        );
        finish_and_check(&f, &vr);
    }
}
