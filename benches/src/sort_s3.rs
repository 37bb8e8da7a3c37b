//! # `sluice bench sort --s3`: the same sort reading from and writing to a local S3 server,
//! against the same sort on local disk (issue 7; target: S3 at most 1.5x the local time)
//!
//! ```text
//!  1 ensure input     .bench/sort-<rows>-<files>-<seed>/ (sluice gen, once; reused after)
//!  2 start server     moto_server on 127.0.0.1:<free port> (pip moto[server])
//!  3 upload           the engine run to s3://bench/eng with boto3 (timed apart, not counted)
//!  4 for each repeat: local sort (disk -> disk) then S3 sort (s3 -> s3), child processes,
//!                     wall time by the harness; both must report the same row count
//!  5 DuckDB httpfs    `LOAD httpfs` probed; if it loads, DuckDB's sort of the s3:// data is
//!                     timed too, else SKIPPED with the reason (no network: it cannot install)
//!  6 report           fastest run of each; ratio S3/local vs 1.5; load average before/after;
//!                     <work>/bench-sort-s3.json (atomic)
//! ```
//!
//! What it is not: a benchmark of S3 itself. moto is a single-threaded Python server, so the
//! numbers bound sluice's overhead over a slow local endpoint; MinIO or S3 serve faster.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_storage::publish;

use crate::error::BenchError;
use crate::machine::{read_loadavg, MachineFacts};
use crate::proc;
use crate::sort::absolute;

/// The output sorted.
pub const OUTPUT_ID: &str = "s3_event_stream_with_fraud_6B";
/// S3 time / local time the issue allows.
pub const TARGET_RATIO: f64 = 1.5;
const BUCKET: &str = "bench";
const KEY: &str = "sluice-bench";

/// What to run.
#[derive(Debug, Clone)]
pub struct S3BenchConfig {
    pub sluice: PathBuf,
    pub python: PathBuf,
    pub data_dir: PathBuf,
    pub work_dir: PathBuf,
    pub rows: u64,
    pub files: u32,
    pub seed: u64,
    pub memory_limit: String,
    pub threads: Option<usize>,
    pub repeat: u32,
}

/// One contender's runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing {
    pub name: String,
    pub status: String,
    pub runs_s: Vec<f64>,
    pub best_s: Option<f64>,
    pub rows: Option<u64>,
    pub note: String,
}

/// The report printed and written to `<work>/bench-sort-s3.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct S3BenchReport {
    pub machine: MachineFacts,
    pub loadavg_after: Option<[f64; 3]>,
    pub rows: u64,
    pub files: u32,
    pub input_bytes: u64,
    pub server: String,
    pub upload_s: f64,
    pub local: Timing,
    pub s3: Timing,
    pub duckdb_httpfs: Timing,
    pub ratio_s3_to_local: Option<f64>,
    pub target_ratio: f64,
    pub verdict: String,
}

fn free_port() -> Result<u16, BenchError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::io("127.0.0.1:0", e))?;
    Ok(l.local_addr()
        .map_err(|e| BenchError::io("127.0.0.1:0", e))?
        .port())
}

/// The moto server child, killed (by its pid) when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    fn start() -> Result<Server, BenchError> {
        let port = free_port()?;
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| BenchError::Spawn {
                program: "moto_server (pip install 'moto[server]')".into(),
                source,
            })?;
        let mut server = Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || matches!(server.child.try_wait(), Ok(Some(_))) {
                return Err(BenchError::InvalidArgument(
                    "moto_server did not start listening".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3_env(c: &mut Command, endpoint: &str) {
    c.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", KEY)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("OBJECT_STORE_ENDPOINT")
        .env_remove("AWS_SESSION_TOKEN");
}

fn python(cfg: &S3BenchConfig, endpoint: &str, code: &str) -> Result<proc::ChildRun, BenchError> {
    let script = format!(
        "import boto3, os, sys, json\n\
         s3 = boto3.client('s3', endpoint_url={endpoint:?}, aws_access_key_id={KEY:?},\n\
             aws_secret_access_key={KEY:?}, region_name='us-east-1')\n{code}\n"
    );
    proc::run_measured(Command::new(&cfg.python).args(["-c", &script]))
}

fn ensure_input(cfg: &S3BenchConfig) -> Result<u64, BenchError> {
    if !cfg.data_dir.join("run_receipt.json").is_file() {
        let run = proc::run_measured(
            Command::new(&cfg.sluice)
                .args(["gen", "--json", "--out"])
                .arg(&cfg.data_dir)
                .args(["--rows", &cfg.rows.to_string()])
                .args(["--files", &cfg.files.to_string()])
                .args(["--seed", &cfg.seed.to_string(), "--outputs", OUTPUT_ID]),
        )?;
        if !run.success {
            return Err(BenchError::DataGen {
                dir: cfg.data_dir.clone(),
                status: run.status.clone(),
                stderr_tail: run.stderr_excerpt(4, 8),
            });
        }
    }
    let files = sluice_storage::layout::discover_output(&cfg.data_dir, OUTPUT_ID)?;
    let mut bytes = 0;
    for f in &files {
        bytes += std::fs::metadata(f)
            .map_err(|e| BenchError::io(f, e))?
            .len();
    }
    Ok(bytes)
}

fn sort_command(cfg: &S3BenchConfig, engine_root: &str, view_root: &str) -> Command {
    let mut c = Command::new(&cfg.sluice);
    c.args(["sort", "--json", "--force", "--output-id", OUTPUT_ID])
        .args(["--engine-root", engine_root, "--view-root", view_root])
        .args(["--memory-limit", &cfg.memory_limit])
        .env("STREAM_SORT_TEMP_DIR", cfg.work_dir.join("spill"))
        .env("TMPDIR", &cfg.work_dir)
        .env_remove("SLUICE_SORT_FAULT");
    if let Some(t) = cfg.threads {
        c.args(["--threads", &t.to_string()]);
    }
    c
}

fn record(t: &mut Timing, run: &proc::ChildRun) {
    if !run.success {
        t.status = "FAILED".into();
        t.note = run.stderr_excerpt(4, 8);
        return;
    }
    t.runs_s.push(run.wall_s);
    t.best_s = t.runs_s.iter().copied().reduce(f64::min);
    t.rows = run
        .json()
        .and_then(|v| v["views"][0]["rows"].as_u64())
        .or(t.rows);
}

fn timing(name: &str) -> Timing {
    Timing {
        name: name.into(),
        status: "OK".into(),
        runs_s: Vec::new(),
        best_s: None,
        rows: None,
        note: String::new(),
    }
}

/// DuckDB reading the same `s3://` data, if its httpfs extension loads here.
fn duckdb_httpfs(cfg: &S3BenchConfig, endpoint: &str) -> Result<Timing, BenchError> {
    let mut t = timing("duckdb-httpfs");
    let host = endpoint.trim_start_matches("http://");
    let code = format!(
        "import duckdb, time\n\
         con = duckdb.connect()\n\
         con.execute('LOAD httpfs')\n\
         con.execute(\"SET s3_endpoint='{host}'; SET s3_use_ssl=false; SET s3_url_style='path'; \
         SET s3_access_key_id='{KEY}'; SET s3_secret_access_key='{KEY}'; SET s3_region='us-east-1'\")\n\
         t = time.time()\n\
         con.execute(\"COPY (SELECT * FROM read_parquet('s3://{BUCKET}/eng/data/**/*.parquet', \
         filename=true, file_row_number=true) ORDER BY CAST(ts_utc AS TIMESTAMP), filename, \
         file_row_number) TO 's3://{BUCKET}/duckdb/out.parquet'\")\n\
         print(json.dumps({{'wall_s': time.time() - t}}))"
    );
    let run = python(cfg, endpoint, &code)?;
    if !run.success {
        t.status = "SKIPPED".into();
        t.note = format!("httpfs unavailable offline: {}", run.stderr_excerpt(0, 1));
        return Ok(t);
    }
    if let Some(s) = run.json().and_then(|v| v["wall_s"].as_f64()) {
        t.runs_s.push(s);
        t.best_s = Some(s);
    }
    Ok(t)
}

/// Run the benchmark (module docs) and write `<work>/bench-sort-s3.json`.
pub fn run_s3_bench(cfg: &S3BenchConfig) -> Result<S3BenchReport, BenchError> {
    if cfg.repeat == 0 {
        return Err(BenchError::InvalidArgument(
            "--repeat must be at least 1".into(),
        ));
    }
    // Children run in their own directories: every path they get must be absolute.
    let cfg = &S3BenchConfig {
        data_dir: absolute(&cfg.data_dir),
        work_dir: absolute(&cfg.work_dir),
        ..cfg.clone()
    };
    std::fs::create_dir_all(&cfg.work_dir).map_err(|e| BenchError::io(&cfg.work_dir, e))?;
    let machine = MachineFacts::read();
    let input_bytes = ensure_input(cfg)?;
    let server = Server::start()?;
    let endpoint = server.endpoint.clone();
    let data = cfg.data_dir.display().to_string();
    let upload = python(
        cfg,
        &endpoint,
        &format!(
            "s3.create_bucket(Bucket={BUCKET:?})\nroot = {data:?}\n\
             for d, _, fs in os.walk(os.path.join(root, 'data')):\n    for f in fs:\n        \
             p = os.path.join(d, f)\n        s3.upload_file(p, {BUCKET:?}, 'eng/' + os.path.relpath(p, root))\n\
             s3.upload_file(os.path.join(root, 'run_receipt.json'), {BUCKET:?}, 'eng/run_receipt.json')"
        ),
    )?;
    if !upload.success {
        return Err(BenchError::InvalidArgument(format!(
            "uploading the input to moto failed: {}",
            upload.stderr_excerpt(2, 6)
        )));
    }
    let (mut local, mut s3) = (timing("sluice-local"), timing("sluice-s3"));
    let local_views = cfg.work_dir.join("local-views").display().to_string();
    let engine_s3 = format!("s3://{BUCKET}/eng");
    let views_s3 = format!("s3://{BUCKET}/views");
    for _ in 0..cfg.repeat {
        proc::sync_filesystems();
        record(
            &mut local,
            &proc::run_measured(&mut sort_command(cfg, &data, &local_views))?,
        );
        let mut c = sort_command(cfg, &engine_s3, &views_s3);
        s3_env(&mut c, &endpoint);
        record(&mut s3, &proc::run_measured(&mut c)?);
    }
    if s3.rows != local.rows && s3.status == "OK" {
        s3.status = "FAILED".into();
        s3.note = format!("{:?} rows, local sort has {:?}", s3.rows, local.rows);
    }
    let duckdb_httpfs = duckdb_httpfs(cfg, &endpoint)?;
    drop(server);
    let ratio = match (s3.best_s, local.best_s) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let verdict = match ratio {
        Some(r) if s3.status == "OK" && r <= TARGET_RATIO => "PASS",
        Some(_) => "FAIL",
        None => "UNKNOWN",
    };
    let report = S3BenchReport {
        machine,
        loadavg_after: read_loadavg(),
        rows: cfg.rows,
        files: cfg.files,
        input_bytes,
        server: "moto_server (Python, single process) on 127.0.0.1".into(),
        upload_s: upload.wall_s,
        local,
        s3,
        duckdb_httpfs,
        ratio_s3_to_local: ratio,
        target_ratio: TARGET_RATIO,
        verdict: verdict.into(),
    };
    publish::write_json_atomic(&cfg.work_dir.join("bench-sort-s3.json"), &report)?;
    Ok(report)
}

/// Human text of a report.
pub fn render_text(r: &S3BenchReport) -> String {
    let secs = |t: &Timing| match t.best_s {
        Some(s) => format!("{s:.2} s"),
        None => t.status.clone(),
    };
    let load = |l: Option<[f64; 3]>| l.map_or("?".into(), |l| format!("{:.2}", l[0]));
    let mut out = format!(
        "sluice bench sort --s3: {} rows in {} files ({} bytes), server {}\n\
         machine: {} cores, load {} before, {} after\n\
         upload (untimed for the ratio): {:.2} s\n",
        r.rows,
        r.files,
        r.input_bytes,
        r.server,
        r.machine.nproc,
        load(r.machine.loadavg),
        load(r.loadavg_after),
        r.upload_s
    );
    for t in [&r.local, &r.s3, &r.duckdb_httpfs] {
        out.push_str(&format!("  {:<14} {:>10}  {}\n", t.name, secs(t), t.note));
    }
    if let Some(ratio) = r.ratio_s3_to_local {
        out.push_str(&format!(
            "S3 / local: {ratio:.2}x (target <= {:.1}x): {}\n",
            r.target_ratio, r.verdict
        ));
    }
    out
}
