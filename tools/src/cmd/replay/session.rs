//! One replay session: views (`sluice-stream`) wired into the gate (`sluice-ingest`) and the
//! file bus, with checkpoints. The wiring lives here, in the binary crate, because it is the
//! only place that knows both halves; it is a library function (`run`) so tests and the
//! demo call it as the CLI does.
//!
//! ```text
//!  run_replay (this thread)             run_pipeline (2 threads)               checkpoints
//!  views -> paced Slices --channel--> gate: decide -> record (bus, receipts) -> durable(tag)
//!                                                                  every N / T: checkpoint()
//!                                                      cursor.json + cursor.jsonl per output
//! ```
//!
//! Where the seven pins come from: `manifest_fingerprint`, `parameter_hash`, `seed`,
//! `scenario_id` from each row; `platform_run_id` from the run layout (`PLATFORM_RUN_ID`,
//! `ACTIVE_RUN_ID`, or new); `run_id` from `--run-id`, else `run_id` in the engine's
//! `run_receipt.json`, else the engine run's `pack_key`; `scenario_run_id` from
//! `--scenario-run-id`, else the first 32 hex of sha256 of
//! `platform_run_id|run_id|scenario_id`. All defaults are deterministic, so a resumed replay
//! rebuilds byte-identical envelopes and the gate recognises its duplicates.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sluice_ingest::bus_sink::FileBusSink;
use sluice_ingest::envelope::RunContext;
use sluice_ingest::gate::record::BatchCounts;
use sluice_ingest::gate::{Gate, GateConfig, GateStats, OpenReport, Origin};
use sluice_ingest::pipeline::{run_pipeline, GateInput, PipelineConfig, Progress};
use sluice_ingest::{IngestError, ReasonCode};
use sluice_storage::layout::EngineRunReceipt;
use sluice_storage::outputs::{OutputSpec, OUTPUTS};
use sluice_storage::run::RunLayout;
use sluice_storage::view::{default_view_root, sha256_hex, view_dir};
use sluice_stream::checkpoint::{pack_key, resume_position, CheckpointStore};
use sluice_stream::pacing::PacingConfig;
use sluice_stream::reader::{StartAt, TimeWindow, NO_TS};
use sluice_stream::replay::{
    channel, run_replay, ClockKind, OutputMonitor, OutputPlan, ReplayConfig, Slice,
};
use sluice_stream::view::{open_view, StreamView};

use crate::errors::CliError;

/// Everything a replay needs (the CLI flags, parsed).
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub engine_root: PathBuf,
    /// Default `<engine_root>/stream_view/ts_utc`.
    pub view_root: Option<PathBuf>,
    /// Empty = every output with a view directory.
    pub outputs: Vec<String>,
    pub runs_dir: PathBuf,
    pub platform: String,
    pub pacing: PacingConfig,
    pub merge: bool,
    pub window: TimeWindow,
    pub max_events: Option<u64>,
    pub resume: bool,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub partitions: u32,
    pub dedupe_memory: u64,
    pub run_id: Option<String>,
    pub scenario_run_id: Option<String>,
    pub producer: String,
    pub batch_rows: usize,
    /// Read and pace the views but send nothing to the gate (the decode floor of a benchmark).
    pub decode_only: bool,
}

/// Per output, what happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputSummary {
    pub output_id: String,
    pub topic: String,
    pub partitions: u32,
    pub view_rows: u64,
    /// Where this session started: part index and row.
    pub start_part: u32,
    pub start_row: u64,
    pub resumed: bool,
    pub emitted: u64,
    pub admitted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub by_reason: serde_json::Map<String, serde_json::Value>,
    pub row_groups_read: u64,
    pub row_groups_skipped: u64,
}

/// What a session did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplaySummary {
    pub platform_run_id: String,
    pub run_root: PathBuf,
    pub engine_root: PathBuf,
    pub pack_key: String,
    pub run_id: String,
    pub scenario_run_id: String,
    pub outputs: Vec<OutputSummary>,
    pub events: u64,
    pub admitted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub checkpoints: u64,
    pub gate_open: OpenReport,
    pub gate: Option<GateStats>,
    /// Peak resident memory of this process (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Peak resident set size of this process, from `/proc/self/status` (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `--decode-only`: read (and pace) every view, discard the slices.
fn decode_only(
    opts: &ReplayOptions,
    views: &[Arc<StreamView>],
    plans: &[OutputPlan],
    started: Instant,
) -> anyhow::Result<ReplaySummary> {
    let monitors: Vec<OutputMonitor> = views.iter().map(|_| OutputMonitor::default()).collect();
    let rcfg = ReplayConfig {
        pacing: opts.pacing,
        merge: opts.merge,
        window: opts.window,
        max_events: opts.max_events,
        batch_rows: opts.batch_rows,
        clock: ClockKind::System,
    };
    let (tx, rx) = channel(8);
    let reports = std::thread::scope(|s| {
        let drain = s.spawn(move || rx.iter().map(|sl| sl.batch.len() as u64).sum::<u64>());
        let r = run_replay(plans, &rcfg, tx, &monitors);
        let _ = drain.join();
        r
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let events: u64 = reports.iter().map(|r| r.emitted).sum();
    Ok(ReplaySummary {
        platform_run_id: String::new(),
        run_root: PathBuf::new(),
        engine_root: opts.engine_root.clone(),
        pack_key: String::new(),
        run_id: String::new(),
        scenario_run_id: String::new(),
        outputs: views
            .iter()
            .zip(&reports)
            .zip(plans)
            .map(|((v, r), p)| OutputSummary {
                output_id: v.output.id.to_string(),
                topic: v.output.topic.to_string(),
                partitions: 0,
                view_rows: v.rows(),
                start_part: p.start.part,
                start_row: p.start.row,
                resumed: false,
                emitted: r.emitted,
                admitted: 0,
                duplicates: 0,
                quarantined: 0,
                by_reason: serde_json::Map::new(),
                row_groups_read: r.reader.row_groups_read,
                row_groups_skipped: r.reader.row_groups_skipped,
            })
            .collect(),
        events,
        admitted: 0,
        duplicates: 0,
        quarantined: 0,
        elapsed_s: elapsed,
        events_per_s: events as f64 / elapsed.max(1e-9),
        checkpoints: 0,
        gate_open: OpenReport::default(),
        gate: None,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Live numbers for a progress display.
#[derive(Debug, Clone)]
pub struct Live {
    pub total: u64,
    /// (output id, emitted, lag behind the scenario clock in seconds if paced)
    pub outputs: Vec<(String, u64, Option<f64>)>,
}

/// What a batch of the pipeline is: the last row of a slice.
#[derive(Debug, Clone, Copy)]
struct Tag {
    output: usize,
    part: u32,
    last_row: u64,
    last_ts: Option<i64>,
}

/// Receives durable positions from the gate and writes cursors at checkpoints.
struct Checkpointer {
    stores: Vec<CheckpointStore>,
    views: Vec<Arc<StreamView>>,
    latest: Vec<Option<Tag>>,
    written: Vec<Option<(u32, u64)>>,
    counts: Vec<BatchCounts>,
}

impl Progress<Tag> for Checkpointer {
    fn durable(&mut self, tag: Tag, counts: &BatchCounts) {
        let prev_ts = self.latest[tag.output].and_then(|t| t.last_ts);
        self.latest[tag.output] = Some(Tag {
            last_ts: tag.last_ts.or(prev_ts),
            ..tag
        });
        self.counts[tag.output].add(counts);
    }

    fn checkpoint(&mut self) -> sluice_ingest::Result<()> {
        for (o, latest) in self.latest.iter().enumerate() {
            let Some(t) = latest else { continue };
            if self.written[o] == Some((t.part, t.last_row)) {
                continue;
            }
            let c = self.stores[o].cursor(&self.views[o], t.part, t.last_row, t.last_ts);
            self.stores[o]
                .write(&c)
                .map_err(|e| IngestError::Callback {
                    code: e.code(),
                    message: e.to_string(),
                })?;
            self.written[o] = Some((t.part, t.last_row));
        }
        Ok(())
    }
}

/// Output ids with a view directory under `view_root`, in catalog order.
fn all_outputs(view_root: &std::path::Path) -> Vec<String> {
    OUTPUTS
        .iter()
        .filter(|o| view_dir(view_root, o.id).is_dir())
        .map(|o| o.id.to_string())
        .collect()
}

/// The run context (see the module doc for the defaults).
fn run_context(
    opts: &ReplayOptions,
    layout: &RunLayout,
    pack: &str,
    scenario_id: &str,
) -> anyhow::Result<RunContext> {
    let run_id = match &opts.run_id {
        Some(r) => r.clone(),
        None => {
            let path = opts.engine_root.join(EngineRunReceipt::FILE_NAME);
            let raw: serde_json::Value = sluice_storage::publish::read_json(&path)?;
            raw.get("run_id")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map_or_else(|| pack.to_string(), String::from)
        }
    };
    let scenario_run_id = opts.scenario_run_id.clone().unwrap_or_else(|| {
        sha256_hex(format!("{}|{run_id}|{scenario_id}", layout.platform_run_id).as_bytes())[..32]
            .to_string()
    });
    Ok(RunContext {
        platform_run_id: layout.platform_run_id.clone(),
        run_id,
        scenario_run_id,
        producer: opts.producer.clone(),
    })
}

/// Run a replay session (see the module doc). `tick` is called about five times a second
/// with live numbers.
pub fn run(opts: &ReplayOptions, tick: &(dyn Fn(&Live) + Sync)) -> anyhow::Result<ReplaySummary> {
    let started = Instant::now();
    let view_root = opts
        .view_root
        .clone()
        .unwrap_or_else(|| default_view_root(&opts.engine_root));
    let ids = if opts.outputs.is_empty() {
        let all = all_outputs(&view_root);
        if all.is_empty() {
            return Err(CliError::new(
                "STREAM_VIEW_MISSING",
                format!(
                    "no stream views under {}; build them with `sluice sort`",
                    view_root.display()
                ),
            ));
        }
        all
    } else {
        opts.outputs.clone()
    };
    let views: Vec<Arc<StreamView>> = ids
        .iter()
        .map(|id| open_view(&view_root, id).map(Arc::new))
        .collect::<Result<_, _>>()?;
    if opts.decode_only {
        let plans: Vec<OutputPlan> = views
            .iter()
            .map(|v| OutputPlan {
                view: v.clone(),
                start: StartAt::default(),
            })
            .collect();
        return decode_only(opts, &views, &plans, started);
    }
    let receipt = EngineRunReceipt::read(&opts.engine_root).with_context(|| {
        format!(
            "reading the engine run receipt of {}",
            opts.engine_root.display()
        )
    })?;
    let pins = receipt.pins();
    let pack = pack_key(&pins);
    let layout = RunLayout::resolve(&opts.runs_dir, &opts.platform)?;
    layout.ensure()?;
    let run = run_context(opts, &layout, &pack, &pins.scenario_id)?;

    // Where each output starts.
    let stores: Vec<CheckpointStore> = views
        .iter()
        .map(|v| CheckpointStore::new(&layout.wsp(), &pack, v.output.id))
        .collect();
    let mut plans = Vec::with_capacity(views.len());
    let mut resumed = Vec::with_capacity(views.len());
    for (v, store) in views.iter().zip(&stores) {
        let start = match (opts.resume, store.read()?) {
            (true, Some(c)) => {
                resumed.push(true);
                resume_position(v, &c, &store.cursor_path())?
            }
            _ => {
                resumed.push(false);
                StartAt::default()
            }
        };
        plans.push(OutputPlan {
            view: v.clone(),
            start,
        });
    }

    // The gate and the bus.
    let mut sink = FileBusSink::open(&layout.eb()).map_err(|e| IngestError::Sink {
        topic: "(bus)".into(),
        source: e,
    })?;
    let expected: u64 = views.iter().map(|v| v.rows()).sum();
    let gate_cfg = GateConfig {
        partitions: opts.partitions,
        dedupe_memory: opts.dedupe_memory,
        expected_events: expected,
    };
    let mut gate = Gate::open(&layout.ig(), &gate_cfg, run.clone(), &mut sink)?;
    let specs: Vec<&'static OutputSpec> = views.iter().map(|v| v.output).collect();
    let topics = gate.prepare_topics(&mut sink, &specs, opts.partitions)?;

    let labels: Vec<Vec<Arc<str>>> = views
        .iter()
        .map(|v| v.parts.iter().map(|p| Arc::from(p.name.as_str())).collect())
        .collect();
    let mut checkpointer = Checkpointer {
        stores,
        views: views.clone(),
        latest: vec![None; views.len()],
        written: vec![None; views.len()],
        counts: vec![BatchCounts::default(); views.len()],
    };
    let monitors: Vec<OutputMonitor> = views.iter().map(|_| OutputMonitor::default()).collect();
    let rcfg = ReplayConfig {
        pacing: opts.pacing,
        merge: opts.merge,
        window: opts.window,
        max_events: opts.max_events,
        batch_rows: opts.batch_rows,
        clock: ClockKind::System,
    };
    let pcfg = PipelineConfig {
        checkpoint_every: opts.checkpoint_every.max(1),
        checkpoint_interval: opts.checkpoint_interval,
        ..PipelineConfig::default()
    };
    let convert = |s: Slice| {
        let n = s.batch.len() as u64;
        let view = &views[s.output];
        GateInput {
            output: view.output,
            origin: Origin {
                label: labels[s.output][s.batch.part as usize].clone(),
                first_row: s.batch.first_row,
            },
            tag: Tag {
                output: s.output,
                part: s.batch.part,
                last_row: s.batch.first_row + n.saturating_sub(1),
                last_ts: s.batch.ts.iter().rev().copied().find(|&t| t != NO_TS),
            },
            batch: s.batch.batch,
        }
    };
    let (tx, rx) = channel(8);
    let done = AtomicBool::new(false);
    let (replayed, piped) = std::thread::scope(|s| {
        let pipe =
            s.spawn(|| run_pipeline(&mut gate, &mut sink, rx, convert, &mut checkpointer, &pcfg));
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                tick(&Live {
                    total: opts.max_events.unwrap_or(expected),
                    outputs: views
                        .iter()
                        .zip(&monitors)
                        .map(|(v, m)| {
                            let lag = m.lag_micros.load(Ordering::Relaxed);
                            (
                                v.output.id.to_string(),
                                m.emitted.load(Ordering::Relaxed),
                                (lag != NO_TS).then(|| lag as f64 / 1e6),
                            )
                        })
                        .collect(),
                });
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let replayed = run_replay(&plans, &rcfg, tx, &monitors);
        let piped = pipe.join();
        done.store(true, Ordering::Relaxed);
        (replayed, piped)
    });
    let piped = piped.map_err(|_| IngestError::PipelinePanicked)?;
    // The gate's error explains a replay stopped by a closed channel.
    let report = piped?;
    let reader_reports = replayed?;
    let gate_open = gate.open_report().clone();
    let stats = gate.close()?;

    let elapsed = started.elapsed().as_secs_f64();
    let mut outputs = Vec::new();
    for (i, v) in views.iter().enumerate() {
        let c = &checkpointer.counts[i];
        let mut by_reason = serde_json::Map::new();
        for r in ReasonCode::ALL {
            let n = c.by_reason[r as usize];
            if n > 0 {
                by_reason.insert(r.as_str().into(), n.into());
            }
        }
        let rr = &reader_reports[i];
        outputs.push(OutputSummary {
            output_id: v.output.id.to_string(),
            topic: v.output.topic.to_string(),
            partitions: topics.get(i).map_or(0, |t| t.1),
            view_rows: v.rows(),
            start_part: plans[i].start.part,
            start_row: plans[i].start.row,
            resumed: resumed[i],
            emitted: rr.emitted,
            admitted: c.admitted,
            duplicates: c.duplicates,
            quarantined: c.quarantined,
            by_reason,
            row_groups_read: rr.reader.row_groups_read,
            row_groups_skipped: rr.reader.row_groups_skipped,
        });
    }
    Ok(ReplaySummary {
        platform_run_id: layout.platform_run_id.clone(),
        run_root: layout.root(),
        engine_root: opts.engine_root.clone(),
        pack_key: pack,
        run_id: run.run_id,
        scenario_run_id: run.scenario_run_id,
        events: report.counts.events,
        admitted: report.counts.admitted,
        duplicates: report.counts.duplicates,
        quarantined: report.counts.quarantined,
        elapsed_s: elapsed,
        events_per_s: report.counts.events as f64 / elapsed.max(1e-9),
        checkpoints: report.checkpoints,
        outputs,
        gate_open,
        gate: Some(stats),
        peak_rss_bytes: peak_rss_bytes(),
    })
}
