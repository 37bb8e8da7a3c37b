//! End-to-end tests of sluice against a real S3-compatible server (`moto_server`, see
//! `s3_support`): sort -> replay -> parity (view, bus, legacy) on `s3://` roots, checked against the same sort on local
//! disk (the oracle: the view's parts must be byte-identical), plus the failure cases of
//! issue 7: a killed upload, a 403, a missing bucket, and the server stopped mid-read then
//! restarted.

mod s3_support;
mod sort_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use s3_support::*;
use sluice_storage::view::{StreamSortReceipt, MANIFEST_FILE, RECEIPT_FILE};
use sluice_tests::sluice;
use sort_support::{gen, stderr, OUTPUT};

const ROWS: u64 = 30_000;
const VIEW_PREFIX: &str = "eng/stream_view/ts_utc/output_id=s3_event_stream_with_fraud_6B";

fn skip() -> bool {
    if moto_available() {
        return false;
    }
    eprintln!("skipping: moto_server is not installed (pip install 'moto[server]')");
    true
}

/// `sluice sort` with small parts (several per view) and the knobs pinned.
fn sort_cmd(tmp: &Path, endpoint: &str, engine_root: &str) -> Command {
    let mut c = sluice!();
    c.args(["sort", "--json", "--engine-root", engine_root])
        .args(["--output-id", OUTPUT, "--part-size", "64KiB"])
        .args(["--row-group-rows", "4096", "--threads", "2"])
        .env("STREAM_SORT_TEMP_DIR", tmp.join("spill"))
        .env("TMPDIR", tmp)
        .env_remove("STREAM_SORT_MEMORY_LIMIT")
        .env_remove("STREAM_SORT_MAX_TEMP_SIZE")
        .env_remove("SLUICE_SORT_FAULT");
    s3_env(&mut c, endpoint);
    c
}

fn run_ok(mut c: Command) -> serde_json::Value {
    let out = c.output().expect("spawn sluice");
    assert!(out.status.success(), "sluice failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON summary")
}

fn expect_code(mut c: Command, code: &str) -> String {
    let out = c.output().expect("spawn sluice");
    let err = stderr(&out);
    assert!(!out.status.success(), "expected {code}, got success");
    assert!(
        err.contains(&format!("error[{code}]")),
        "expected {code}: {err}"
    );
    err
}

/// A generated engine run plus its view sorted on local disk (the oracle).
struct Fixture {
    dir: tempfile::TempDir,
    engine: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let engine = dir.path().join("engine");
        gen(sluice!(), &engine, ROWS, 3, 11);
        let local = sort_cmd(
            dir.path(),
            "http://127.0.0.1:9",
            &engine.display().to_string(),
        );
        assert_eq!(run_ok(local)["views"][0]["status"], "built");
        Fixture { dir, engine }
    }

    fn tmp(&self) -> &Path {
        self.dir.path()
    }

    fn local_view(&self) -> PathBuf {
        self.engine
            .join("stream_view/ts_utc")
            .join(format!("output_id={OUTPUT}"))
    }

    /// Upload the engine run (without its local view) to `s3://lake/eng`.
    fn upload(&self, endpoint: &str) {
        let data = self.tmp().join("upload");
        std::fs::create_dir_all(&data).unwrap();
        let copy = Command::new("cp")
            .arg("-r")
            .arg(self.engine.join("data"))
            .arg(self.engine.join("run_receipt.json"))
            .arg(&data)
            .status()
            .unwrap();
        assert!(copy.success());
        upload_dir(endpoint, "lake", &data, "eng");
    }

    /// The local view's parts, in order, written as one parquet file (a `parity legacy`
    /// reference).
    fn local_view_as_one_file(&self) -> PathBuf {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::arrow::ArrowWriter;
        let out = self.tmp().join("reference.parquet");
        let mut writer: Option<ArrowWriter<std::fs::File>> = None;
        for p in &self.local_receipt().parts {
            let f = std::fs::File::open(self.local_view().join(&p.name)).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let w = writer.get_or_insert_with(|| {
                    let file = std::fs::File::create(&out).unwrap();
                    ArrowWriter::try_new(file, batch.schema(), None).unwrap()
                });
                w.write(&batch).unwrap();
            }
        }
        writer.expect("the local view has rows").close().unwrap();
        out
    }

    fn local_receipt(&self) -> StreamSortReceipt {
        serde_json::from_slice(&std::fs::read(self.local_view().join(RECEIPT_FILE)).unwrap())
            .unwrap()
    }

    /// The S3 view's parts are byte-identical to the local view's, and its receipt has the
    /// same statistics.
    fn assert_s3_view_matches(&self, endpoint: &str) {
        let local = self.local_receipt();
        let keys = list(endpoint, "lake", VIEW_PREFIX);
        let mut names: Vec<String> = keys
            .iter()
            .map(|(k, _)| k.rsplit('/').next().unwrap().to_string())
            .collect();
        names.sort();
        let mut expected: Vec<String> = local.parts.iter().map(|p| p.name.clone()).collect();
        expected.extend([RECEIPT_FILE.to_string(), MANIFEST_FILE.to_string()]);
        expected.sort();
        assert_eq!(names, expected, "exactly the parts, receipt and manifest");
        assert!(local.parts.len() > 1, "the test needs several parts");
        for p in &local.parts {
            let remote = get(endpoint, "lake", &format!("{VIEW_PREFIX}/{}", p.name));
            let want = std::fs::read(self.local_view().join(&p.name)).unwrap();
            assert!(remote == want, "{} differs from the local sort", p.name);
        }
        let receipt: StreamSortReceipt = serde_json::from_slice(&get(
            endpoint,
            "lake",
            &format!("{VIEW_PREFIX}/{RECEIPT_FILE}"),
        ))
        .unwrap();
        assert_eq!(receipt.raw_stats, local.raw_stats);
        assert_eq!(receipt.sorted_stats, local.sorted_stats);
        assert_eq!(receipt.engine_run_root, "s3://lake/eng");
        assert_eq!(receipt.status, "OK");
        let marker = list(endpoint, "lake", "eng/stream_view/ts_utc/.output_id=");
        assert!(marker.is_empty(), "no upload marker left: {marker:?}");
        assert_eq!(
            open_uploads(endpoint, "lake"),
            0,
            "no orphaned multipart uploads"
        );
    }
}

fn replay_cmd(tmp: &Path, endpoint: &str, engine_root: &str) -> Command {
    let mut c = sluice!();
    c.args(["replay", "--json", "--engine-root", engine_root])
        .args(["--output-id", OUTPUT, "--max", "--runs-dir"])
        .arg(tmp.join("runs"))
        .env_remove("SLUICE_SORT_FAULT");
    s3_env(&mut c, endpoint);
    c
}

/// A fixture uploaded to a fresh moto server and sorted there (`s3://lake/eng`), with the
/// sort's summary.
fn sorted_on_s3() -> (Fixture, Moto, serde_json::Value) {
    let fx = Fixture::new();
    let moto = Moto::start(false);
    fx.upload(&moto.endpoint());
    let built = run_ok(sort_cmd(fx.tmp(), &moto.endpoint(), "s3://lake/eng"));
    assert_eq!(built["views"][0]["status"], "built");
    (fx, moto, built)
}

#[test]
fn sort_then_replay_on_s3_matches_the_local_sort() {
    if skip() {
        return;
    }
    let (fx, moto, built) = sorted_on_s3();
    assert_eq!(built["views"][0]["rows"], ROWS);
    fx.assert_s3_view_matches(&moto.endpoint());
    // A matching receipt in S3 means done.
    let again = run_ok(sort_cmd(fx.tmp(), &moto.endpoint(), "s3://lake/eng"));
    assert_eq!(again["views"][0]["status"], "skipped");
    let replayed = run_ok(replay_cmd(fx.tmp(), &moto.endpoint(), "s3://lake/eng"));
    assert_eq!(replayed["events"], ROWS);
    assert_eq!(replayed["admitted"], ROWS);
    // Parity straight off S3: the view against its S3 sources, then the run's bus
    // against the S3 view.
    let view = run_ok(parity_cmd(&moto.endpoint(), &["view", "--all"]));
    assert_parity_passes(&view);
    let views = view["views"].as_array().unwrap();
    assert_eq!(views.len(), 1, "{view}");
    assert_eq!(views[0]["output_id"], OUTPUT);
    assert_eq!(views[0]["source_rows"], ROWS);
    assert_eq!(views[0]["view_rows"], ROWS);
    assert!(views[0]["parts"].as_u64().unwrap() > 1, "{view}");
    assert_parity_passes(&views[0]);
    let run_root = replayed["run_root"]
        .as_str()
        .expect("replay names its run root");
    let bus = run_ok(parity_cmd(
        &moto.endpoint(),
        &["bus", "--run-root", run_root],
    ));
    assert_parity_passes(&bus);
    assert_eq!(bus["outputs"][0]["output_id"], OUTPUT);
    assert_eq!(bus["outputs"][0]["view_rows"], ROWS);
    assert_eq!(bus["outputs"][0]["admitted"], ROWS);
    // The S3 view, row by row, against the local sort written as one reference file.
    let reference = fx.local_view_as_one_file();
    let view_url = format!("s3://lake/{VIEW_PREFIX}");
    let mut legacy = sluice!();
    legacy
        .args([
            "--json",
            "parity",
            "legacy",
            "--view",
            &view_url,
            "--reference",
        ])
        .arg(&reference);
    s3_env(&mut legacy, &moto.endpoint());
    let legacy = run_ok(legacy);
    assert_parity_passes(&legacy);
    assert_eq!(legacy["view_rows"], ROWS);
    assert_eq!(legacy["reference_rows"], ROWS);
}

/// `sluice parity <args> --engine-root s3://lake/eng`.
fn parity_cmd(endpoint: &str, args: &[&str]) -> Command {
    let mut c = sluice!();
    c.args(["--json", "parity"])
        .args(args)
        .args(["--engine-root", "s3://lake/eng"]);
    s3_env(&mut c, endpoint);
    c
}

/// A parity report (or one view of it) is ok and every check in it passed.
fn assert_parity_passes(report: &serde_json::Value) {
    assert_eq!(report["ok"], true, "{report}");
    if let Some(checks) = report["checks"].as_array() {
        assert!(!checks.is_empty(), "{report}");
        let failed: Vec<_> = checks.iter().filter(|c| c["ok"] != true).collect();
        assert!(failed.is_empty(), "failed checks: {failed:?}");
    }
}

#[test]
fn a_killed_upload_leaves_no_receipt_and_the_rerun_cleans_up() {
    if skip() {
        return;
    }
    let fx = Fixture::new();
    let moto = Moto::start(false);
    let endpoint = moto.endpoint();
    fx.upload(&endpoint);
    let mut c = sort_cmd(fx.tmp(), &endpoint, "s3://lake/eng");
    c.env("SLUICE_SORT_FAULT", "pause-s3-after-part=60000");
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !list(&endpoint, "lake", VIEW_PREFIX)
        .iter()
        .any(|(k, _)| k.ends_with(".parquet"))
    {
        assert!(Instant::now() < deadline, "no part was uploaded");
        thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = list(&endpoint, "lake", VIEW_PREFIX);
    assert!(
        !left.iter().any(|(k, _)| k.ends_with(RECEIPT_FILE)),
        "no receipt after a kill: {left:?}"
    );
    assert_eq!(
        list(&endpoint, "lake", "eng/stream_view/ts_utc/.output_id=").len(),
        1
    );
    expect_code(
        replay_cmd(fx.tmp(), &endpoint, "s3://lake/eng"),
        "STREAM_VIEW_PARTIAL_EXISTS",
    );
    // The next build removes its own leftovers and publishes the whole view.
    let built = run_ok(sort_cmd(fx.tmp(), &endpoint, "s3://lake/eng"));
    assert_eq!(built["views"][0]["status"], "built");
    fx.assert_s3_view_matches(&endpoint);
}

#[test]
fn wrong_credentials_fail_at_once_with_403_code_and_url() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start(true);
    let mut c = sort_cmd(tmp.path(), &moto.endpoint(), "s3://lake/eng");
    c.env("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0");
    let err = expect_code(c, "OBJECT_STORE_ACCESS_DENIED");
    assert!(err.contains("s3://lake/eng"), "names the URL: {err}");
}

#[test]
fn a_missing_bucket_fails_with_its_code() {
    if skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start(false);
    let err = expect_code(
        sort_cmd(tmp.path(), &moto.endpoint(), "s3://no-such-bucket/eng"),
        "OBJECT_STORE_BUCKET_MISSING",
    );
    assert!(err.contains("s3://no-such-bucket"), "names the URL: {err}");
    let replay = replay_cmd(tmp.path(), &moto.endpoint(), "s3://no-such-bucket/eng");
    expect_code(replay, "OBJECT_STORE_BUCKET_MISSING");

    // The global flag wins over the environment: with the environment pointing at a dead
    // port, `--s3-endpoint` alone reaches the server (which answers "no such bucket").
    let mut flagged = sort_cmd(tmp.path(), "http://127.0.0.1:9", "s3://no-such-bucket/eng");
    flagged
        .args(["--s3-endpoint", &moto.endpoint(), "--s3-path-style", "true"])
        .env("OBJECT_STORE_MAX_RETRIES", "1");
    expect_code(flagged, "OBJECT_STORE_BUCKET_MISSING");
}

#[test]
fn a_server_stopped_mid_read_then_restarted_is_retried() {
    if skip() {
        return;
    }
    let fx = Fixture::new();
    let moto = Moto::start(false);
    fx.upload(&moto.endpoint());
    let mut proxy = Proxy::start(moto.port);
    let mut c = sort_cmd(fx.tmp(), &proxy.endpoint(), "s3://lake/eng");
    // Slow reads (every row group waits) so the outage lands while the sort is reading.
    c.env("SLUICE_SORT_FAULT", "pause-read-row-group=300")
        .env("RUST_LOG", "warn,object_store=info");
    let child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(800));
    proxy.stop();
    thread::sleep(Duration::from_millis(2500));
    proxy.restart();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "retried through the outage: {err}");
    // The outage overlaps the ~2.7 s of slowed reads, so requests were refused and retried.
    assert!(err.contains("backing off"), "the client retried: {err}");
    fx.assert_s3_view_matches(&moto.endpoint());
}

/// Every event id on the file bus of a replay's run root (topic of `OUTPUT`), sorted.
fn bus_event_ids(run_root: &str) -> Vec<String> {
    let topic = sluice_storage::outputs::OutputSpec::get(OUTPUT)
        .unwrap()
        .topic;
    let mut c = sluice!();
    c.args(["bus", "tail", topic, "-n", "100000000", "--json", "--bus"])
        .arg(Path::new(run_root).join("eb"));
    let out = c.output().expect("spawn sluice bus tail");
    assert!(out.status.success(), "bus tail: {}", stderr(&out));
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["value"]["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids
}

/// `text` without ANSI colour sequences (the log may be coloured even into a pipe).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A time window replayed from S3 (ranged reads of only the row groups the window needs)
/// admits exactly what the same window replayed from the local view admits, and skips the
/// same row groups; the count is checked against the view's own `ts_utc` column.
#[test]
fn a_time_window_replayed_from_s3_equals_the_same_window_locally() {
    use arrow_array::cast::AsArray;
    use sluice_storage::timefmt::parse_rfc3339_micros;
    if skip() {
        return;
    }
    let (fx, moto, _) = sorted_on_s3();

    // The oracle: the local view's times; the window is its 30th..60th percentile.
    let mut ts = Vec::new();
    for b in sort_support::read_all(&sort_support::parts(&fx.local_view())) {
        let col = b.column_by_name("ts_utc").unwrap().as_string::<i32>();
        ts.extend(col.iter().map(|v| v.unwrap().to_string()));
    }
    assert_eq!(ts.len() as u64, ROWS);
    let (from, until) = (ts[ts.len() * 3 / 10].clone(), ts[ts.len() * 6 / 10].clone());
    let (f, u) = (
        parse_rfc3339_micros(&from).unwrap(),
        parse_rfc3339_micros(&until).unwrap(),
    );
    let expected = ts
        .iter()
        .filter(|t| (f..u).contains(&parse_rfc3339_micros(t).unwrap()))
        .count() as u64;
    assert!(expected > 0 && expected < ROWS / 2, "{expected}");

    let window = |tmp: &Path, root: &str| {
        let mut c = replay_cmd(tmp, &moto.endpoint(), root);
        c.args(["--from-ts", &from, "--until-ts", &until])
            .env("RUST_LOG", "warn,sluice_stream=debug");
        let out = c.output().expect("spawn sluice");
        assert!(out.status.success(), "sluice failed: {}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (summary, strip_ansi(&stderr(&out)))
    };
    let local_engine = fx.engine.display().to_string();
    let (local, local_log) = window(&fx.tmp().join("local"), &local_engine);
    let (s3, s3_log) = window(&fx.tmp().join("s3"), "s3://lake/eng");
    // S3 parts were read by ranges, fewer bytes than their objects; local parts as files.
    let field = |line: &str, name: &str| -> u64 {
        let at = line.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        let digits: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().unwrap()
    };
    let ranged: Vec<&str> = s3_log
        .lines()
        .filter(|l| l.contains("ranged reads of an S3 part"))
        .collect();
    assert!(!ranged.is_empty(), "S3 parts are read by ranges: {s3_log}");
    let fetched: u64 = ranged.iter().map(|l| field(l, "bytes")).sum();
    let objects: u64 = ranged.iter().map(|l| field(l, "object_bytes")).sum();
    assert!(fetched > 0 && fetched < objects, "{fetched} of {objects}");
    assert!(!local_log.contains("ranged reads"), "{local_log}");
    for summary in [&local, &s3] {
        assert_eq!(summary["events"], expected, "{summary}");
        assert_eq!(summary["admitted"], expected, "{summary}");
    }
    let (lo, so) = (&local["outputs"][0], &s3["outputs"][0]);
    assert_eq!(
        lo["row_groups_read"], so["row_groups_read"],
        "{local}\n{s3}"
    );
    assert_eq!(lo["row_groups_skipped"], so["row_groups_skipped"]);
    assert!(
        so["row_groups_skipped"].as_u64().unwrap() > 0,
        "the window skips row groups: {s3}"
    );
    let ids = |s: &serde_json::Value| bus_event_ids(s["run_root"].as_str().unwrap());
    let (local_ids, s3_ids) = (ids(&local), ids(&s3));
    assert_eq!(local_ids.len() as u64, expected);
    assert!(local_ids == s3_ids, "the same events, from S3 and locally");
}

/// A replay from S3 stopped by `--max-events` inside a row group resumes from its checkpoint
/// (a ranged read that starts mid row group): every view row ends on the bus exactly once.
#[test]
fn a_replay_from_s3_resumes_inside_a_row_group() {
    if skip() {
        return;
    }
    let (fx, moto, _) = sorted_on_s3();
    let replay = |extra: &[&str]| {
        let mut c = replay_cmd(fx.tmp(), &moto.endpoint(), "s3://lake/eng");
        c.env("PLATFORM_RUN_ID", "s3_resume").args(extra);
        run_ok(c)
    };
    // 5000 is inside the second row group (4096 rows each).
    let first = replay(&["--max-events", "5000"]);
    assert_eq!(first["admitted"], 5000, "{first}");
    let second = replay(&["--resume"]);
    assert_eq!(second["outputs"][0]["resumed"], true, "{second}");
    // Parts hold row groups of 4096 rows: the resume row is inside one, not at its start.
    let start_row = second["outputs"][0]["start_row"].as_u64().unwrap();
    assert_ne!(start_row % 4096, 0, "{second}");
    let admitted = first["admitted"].as_u64().unwrap() + second["admitted"].as_u64().unwrap();
    assert_eq!(admitted, ROWS, "{first}\n{second}");
    let mut verify = sluice!();
    verify
        .args(["--json", "ingest", "verify", "--run-root"])
        .arg(second["run_root"].as_str().unwrap());
    let report = run_ok(verify);
    assert_eq!(report["bus_records"], ROWS, "{report}");
    assert_eq!(report["problem_count"], 0, "{report}");
    assert_eq!(
        bus_event_ids(second["run_root"].as_str().unwrap()).len() as u64,
        ROWS
    );
}
