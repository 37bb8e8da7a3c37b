//! # `sluice bench replay`: replay end to end against its decode floor
//!
//! What it is: a harness that drives two contenders as child processes on the same stream
//! view of `s3_event_stream_with_fraud_6B`: `sluice replay --max` (read, envelope, validate,
//! dedupe, bus append with fsync per group, receipts, checkpoints) and
//! `sluice replay --max --decode-only` (the same reader and pacing, nothing downstream).
//! It reports wall time (its own clock), CPU (the child's, and what others took meanwhile),
//! events/s, peak RSS (as each child reports it) and the issue's targets as PASS/FAIL.
//! What it is not: a correctness test (the replay tests live in `tests/tests/replay_*.rs`).
//!
//! ```text
//!  1 ensure input     .bench/replay-<rows>-<seed>/ (sluice gen + sluice sort, once; reused)
//!  2 warm page cache  read every view part once, untimed
//!  3 for each repeat: decode floor, then replay (fresh run directory, after `sync`)
//!  4 summarise        fastest successful run of each; ratio replay / decode
//!  5 check targets    >= 1M events/s; replay time <= 3x the decode floor
//!  6 report           <work>/bench-replay.json (atomic), returned for printing
//! ```

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use sluice_storage::publish::write_json_atomic;
use sluice_storage::timefmt::{format_rfc3339_micros, now_micros};
use sluice_storage::view::{default_view_root, view_dir, RECEIPT_FILE};

use crate::error::BenchError;
use crate::machine::MachineFacts;
use crate::proc::{self, ChildRun};
use crate::sort::absolute;

/// The output replayed.
pub const OUTPUT_ID: &str = "s3_event_stream_with_fraud_6B";
/// The issue's size: a 20M-row traffic view.
pub const DEFAULT_ROWS: u64 = 20_000_000;
pub const DEFAULT_FILES: u32 = 8;
pub const DEFAULT_SEED: u64 = 42;
/// Target: events per second end to end.
pub const TARGET_EVENTS_PER_S: f64 = 1_000_000.0;
/// Target: replay time over decode-floor time.
pub const TARGET_RATIO: f64 = 3.0;

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayBenchConfig {
    pub sluice_bin: PathBuf,
    /// "debug" or "release": the build of the binary driven.
    pub sluice_build: String,
    pub rows: u64,
    pub files: u32,
    pub seed: u64,
    pub data_dir: PathBuf,
    pub work_dir: PathBuf,
    pub repeat: u32,
    pub partitions: u32,
    pub dedupe_memory: String,
    /// A `kafka://` bus to replay into as a third contender (issue 8), once: its topics
    /// outlive a run, so a repeat would find the first run's records (use a fresh broker).
    pub kafka_bus: Option<String>,
}

/// `.bench/replay-<rows>-<seed>`.
pub fn default_data_dir(rows: u64, seed: u64) -> PathBuf {
    PathBuf::from(format!(".bench/replay-{rows}-{seed}"))
}

impl ReplayBenchConfig {
    pub fn new(sluice_bin: impl Into<PathBuf>) -> Self {
        ReplayBenchConfig {
            sluice_bin: sluice_bin.into(),
            sluice_build: "unknown".into(),
            rows: DEFAULT_ROWS,
            files: DEFAULT_FILES,
            seed: DEFAULT_SEED,
            data_dir: default_data_dir(DEFAULT_ROWS, DEFAULT_SEED),
            work_dir: PathBuf::from(".bench/replay-work"),
            repeat: 1,
            partitions: 4,
            dedupe_memory: "256MiB".into(),
            kafka_bus: None,
        }
    }

    fn validate(&self) -> Result<(), BenchError> {
        if self.rows == 0 || self.files == 0 || self.repeat == 0 {
            return Err(BenchError::InvalidArgument(
                "--rows, --files and --repeat must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// One measured run of a contender.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    pub success: bool,
    pub status: String,
    pub wall_s: f64,
    pub cpu_s: Option<f64>,
    pub others_cpu_s: Option<f64>,
    pub events: Option<u64>,
    pub events_per_s: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub stderr_tail: String,
}

/// A contender: its command and runs, and the fastest successful run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Contender {
    pub name: String,
    pub command: String,
    pub runs: Vec<RunResult>,
    pub best: Option<RunResult>,
}

/// A target and whether it was met.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub pass: Option<bool>,
    pub measured: Option<f64>,
    pub threshold: f64,
}

/// The input as the contenders saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Input {
    pub engine_root: PathBuf,
    pub view_dir: PathBuf,
    pub view_bytes: u64,
    pub prepared: bool,
    pub prepare_wall_s: Option<f64>,
}

/// `bench-replay.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayBenchReport {
    pub started_utc: String,
    pub machine: MachineFacts,
    pub config: ReplayBenchConfig,
    pub input: Input,
    pub decode: Contender,
    pub replay: Contender,
    /// `--bus kafka://…` (when asked for): the same replay into Kafka brokers.
    pub kafka: Option<Contender>,
    /// Replay wall time over decode-floor wall time (fastest runs).
    pub ratio: Option<f64>,
    pub targets: Vec<TargetCheck>,
    pub loadavg_after: Option<[f64; 3]>,
}

fn prepare(cfg: &ReplayBenchConfig) -> Result<Input, BenchError> {
    let view = view_dir(&default_view_root(&cfg.data_dir), OUTPUT_ID);
    let mut prepared = false;
    let mut wall = None;
    if !view.join(RECEIPT_FILE).is_file() {
        prepared = true;
        let mut total = 0.0;
        let mut gen = Command::new(&cfg.sluice_bin);
        gen.args(["gen", "--force", "--json", "--outputs", OUTPUT_ID])
            .arg("--out")
            .arg(&cfg.data_dir)
            .args(["--rows", &cfg.rows.to_string()])
            .args(["--files", &cfg.files.to_string()])
            .args(["--seed", &cfg.seed.to_string()]);
        let mut sort = Command::new(&cfg.sluice_bin);
        sort.args(["sort", "--json", "--output-id", OUTPUT_ID])
            .arg("--engine-root")
            .arg(&cfg.data_dir);
        for mut cmd in [gen, sort] {
            let run = proc::run_measured(&mut cmd)?;
            total += run.wall_s;
            if !run.success {
                return Err(BenchError::DataGen {
                    dir: cfg.data_dir.clone(),
                    status: run.status.clone(),
                    stderr_tail: run.stderr_excerpt(8, 12),
                });
            }
        }
        wall = Some(total);
    }
    let mut bytes = 0;
    let mut buf = vec![0u8; 1 << 20];
    for e in std::fs::read_dir(&view).map_err(|e| BenchError::io(&view, e))? {
        let p = e.map_err(|e| BenchError::io(&view, e))?.path();
        if p.extension().is_some_and(|x| x == "parquet") {
            // Warm the page cache: every contender starts from the same state.
            let mut f = File::open(&p).map_err(|e| BenchError::io(&p, e))?;
            loop {
                let n = f.read(&mut buf).map_err(|e| BenchError::io(&p, e))?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
            }
        }
    }
    Ok(Input {
        engine_root: cfg.data_dir.clone(),
        view_dir: view,
        view_bytes: bytes,
        prepared,
        prepare_wall_s: wall,
    })
}

fn result(run: &ChildRun) -> RunResult {
    let json = run.json();
    let events = json.as_ref().and_then(|v| v["events"].as_u64());
    RunResult {
        success: run.success && events.is_some(),
        status: run.status.clone(),
        wall_s: run.wall_s,
        cpu_s: run.cpu.cpu_s,
        others_cpu_s: run.cpu.others_cpu_s,
        events,
        events_per_s: events.map(|e| e as f64 / run.wall_s.max(1e-9)),
        peak_rss_bytes: json.as_ref().and_then(|v| v["peak_rss_bytes"].as_u64()),
        stderr_tail: if run.success {
            String::new()
        } else {
            run.stderr_excerpt(4, 8)
        },
    }
}

fn best(runs: &[RunResult]) -> Option<RunResult> {
    runs.iter()
        .filter(|r| r.success)
        .min_by(|a, b| a.wall_s.total_cmp(&b.wall_s))
        .cloned()
}

/// Run the benchmark (see the module doc); `on_step` hears what is running.
pub fn run_replay_bench(
    cfg: &ReplayBenchConfig,
    on_step: &mut dyn FnMut(&str),
) -> Result<ReplayBenchReport, BenchError> {
    cfg.validate()?;
    let mut cfg = cfg.clone();
    cfg.data_dir = absolute(&cfg.data_dir);
    cfg.work_dir = absolute(&cfg.work_dir);
    let started_utc = format_rfc3339_micros(now_micros());
    let machine = MachineFacts::read();
    on_step("input");
    // Before generating anything: the file-bus run directory, a Kafka run's gate state
    // (receipts and indexes) and, if missing, the input and its view. Run
    // directories a previous bench left are removed first (each run starts without one).
    for old in [cfg.work_dir.join("runs"), cfg.work_dir.join("runs-kafka")] {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| BenchError::io(&old, e))?;
        }
    }
    use crate::space::{GATE_STATE_PER_EVENT, REPLAY_INPUT_PER_ROW, REPLAY_PER_EVENT};
    let kafka_state = if cfg.kafka_bus.is_some() {
        cfg.rows * GATE_STATE_PER_EVENT
    } else {
        0
    };
    crate::space::ensure(
        &cfg.work_dir,
        cfg.rows * (REPLAY_PER_EVENT + REPLAY_INPUT_PER_ROW) + kafka_state,
        "the replay's run directories",
    )?;
    let input = prepare(&cfg)?;
    std::fs::create_dir_all(&cfg.work_dir).map_err(|e| BenchError::io(&cfg.work_dir, e))?;
    let runs_dir = cfg.work_dir.join("runs");
    let base = |extra: &[&str]| {
        let mut c = Command::new(&cfg.sluice_bin);
        c.args(["--json", "replay", "--max", "--output-id", OUTPUT_ID])
            .arg("--engine-root")
            .arg(&cfg.data_dir)
            .args(extra);
        c
    };
    let decode_cmd = || base(&["--decode-only"]);
    let replay_cmd = || {
        let mut c = base(&[
            "--partitions",
            &cfg.partitions.to_string(),
            "--dedupe-memory",
            &cfg.dedupe_memory,
        ]);
        c.arg("--runs-dir")
            .arg(&runs_dir)
            .env("PLATFORM_RUN_ID", "bench_replay");
        c
    };
    let mut decode = Contender {
        name: "decode floor (replay --decode-only)".into(),
        command: proc::command_line(&decode_cmd()),
        runs: Vec::new(),
        best: None,
    };
    let mut replay = Contender {
        name: "sluice replay --max".into(),
        command: proc::command_line(&replay_cmd()),
        runs: Vec::new(),
        best: None,
    };
    let kafka_runs_dir = cfg.work_dir.join("runs-kafka");
    let kafka_cmd = |url: &str| {
        let mut c = base(&[
            "--partitions",
            &cfg.partitions.to_string(),
            "--dedupe-memory",
            &cfg.dedupe_memory,
            "--bus",
            url,
        ]);
        c.arg("--runs-dir")
            .arg(&kafka_runs_dir)
            .env("PLATFORM_RUN_ID", "bench_replay_kafka");
        c
    };
    let mut kafka = cfg.kafka_bus.as_deref().map(|url| Contender {
        name: "sluice replay --max --bus kafka".into(),
        command: proc::command_line(&kafka_cmd(url)),
        runs: Vec::new(),
        best: None,
    });
    for r in 0..cfg.repeat {
        on_step(&format!("decode floor, run {}", r + 1));
        decode
            .runs
            .push(result(&proc::run_measured(&mut decode_cmd())?));
        on_step(&format!("replay, run {}", r + 1));
        if runs_dir.exists() {
            std::fs::remove_dir_all(&runs_dir).map_err(|e| BenchError::io(&runs_dir, e))?;
        }
        proc::sync_filesystems();
        replay
            .runs
            .push(result(&proc::run_measured(&mut replay_cmd())?));
        if let (0, Some(k), Some(url)) = (r, kafka.as_mut(), cfg.kafka_bus.as_deref()) {
            on_step("replay into kafka");
            if kafka_runs_dir.exists() {
                std::fs::remove_dir_all(&kafka_runs_dir)
                    .map_err(|e| BenchError::io(&kafka_runs_dir, e))?;
            }
            k.runs
                .push(result(&proc::run_measured(&mut kafka_cmd(url))?));
        }
    }
    if let Some(k) = kafka.as_mut() {
        k.best = best(&k.runs);
    }
    decode.best = best(&decode.runs);
    replay.best = best(&replay.runs);
    let ratio = match (&decode.best, &replay.best) {
        (Some(d), Some(r)) => Some(r.wall_s / d.wall_s.max(1e-9)),
        _ => None,
    };
    let eps = replay.best.as_ref().and_then(|r| r.events_per_s);
    let targets = vec![
        TargetCheck {
            target: "events/s end to end".into(),
            pass: eps.map(|e| e >= TARGET_EVENTS_PER_S),
            measured: eps,
            threshold: TARGET_EVENTS_PER_S,
        },
        TargetCheck {
            target: "replay time / decode-floor time".into(),
            pass: ratio.map(|r| r <= TARGET_RATIO),
            measured: ratio,
            threshold: TARGET_RATIO,
        },
    ];
    let report = ReplayBenchReport {
        started_utc,
        machine,
        config: cfg.clone(),
        input,
        decode,
        replay,
        kafka,
        ratio,
        targets,
        loadavg_after: crate::machine::read_loadavg(),
    };
    let path = cfg.work_dir.join("bench-replay.json");
    write_json_atomic(&path, &report)?;
    Ok(report)
}

fn mib(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| {
        format!("{:.0}", b as f64 / (1 << 20) as f64)
    })
}

/// The report as text.
pub fn render_text(r: &ReplayBenchReport) -> String {
    let mut lines = vec![
        format!(
            "replay benchmark: {} rows of {OUTPUT_ID}, {} MiB of view, sluice {} build",
            r.config.rows,
            r.input.view_bytes >> 20,
            r.config.sluice_build
        ),
        format!(
            "machine: {} threads, {}, load average before {:?}, after {:?}",
            r.machine.nproc,
            r.machine.cpu_model.as_deref().unwrap_or("unknown CPU"),
            r.machine.loadavg,
            r.loadavg_after
        ),
        format!(
            "{:<38} {:>9} {:>9} {:>12} {:>12} {:>9}",
            "contender", "wall s", "cpu s", "others cpu", "events/s", "peak MiB"
        ),
    ];
    for c in [&r.decode, &r.replay].into_iter().chain(r.kafka.as_ref()) {
        match &c.best {
            Some(b) => lines.push(format!(
                "{:<38} {:>9.2} {:>9} {:>12} {:>12.0} {:>9}",
                c.name,
                b.wall_s,
                b.cpu_s.map_or("-".into(), |x| format!("{x:.2}")),
                b.others_cpu_s.map_or("-".into(), |x| format!("{x:.2}")),
                b.events_per_s.unwrap_or(0.0),
                mib(b.peak_rss_bytes)
            )),
            None => lines.push(format!(
                "{:<38} FAILED {}",
                c.name,
                c.runs.last().map_or("", |x| x.stderr_tail.as_str())
            )),
        }
    }
    for t in &r.targets {
        let verdict = match t.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a",
        };
        lines.push(format!(
            "{verdict:<5} {}: {} (target {})",
            t.target,
            t.measured.map_or("-".into(), |m| format!("{m:.2}")),
            t.threshold
        ));
    }
    lines.join("\n")
}
