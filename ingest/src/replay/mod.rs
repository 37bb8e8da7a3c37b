//! One replay session: stream views (`sluice-stream`) wired into the gate and a sink, with
//! checkpoints. `sluice replay`, `sluice demo` and tests all call [`run`] (or
//! [`run_with_sink`] with a sink of their own); the CLI only parses flags and prints.
//!
//! ```text
//!  run_replay (this thread)           run_pipeline (stage A, stage B)             checkpoints
//!  views -> paced Slices --channel--> decide (envelopes, dedupe) -> record (sink,  -> durable(tag)
//!                                                                  receipts)     every N / T:
//!                                                                                checkpoint()
//!                                                     cursor.json + cursor.jsonl per output
//! ```
//!
//! 1. Resolve the outputs and open their views (fail-closed: `STREAM_VIEW_MISSING`, …);
//!    `decode_only` stops here and only reads (the decode floor of `sluice bench replay`).
//! 2. Resolve the run layout and the run context ([`context`]); choose the sink
//!    ([`crate::bus_target::open_sink`], or the caller's own in [`run_with_sink`]).
//! 3. Each output starts at its checkpoint (`resume`) or at the beginning.
//! 4. Open the gate (recovery and reconciliation against the sink), prepare the topics.
//! 5. Replay into the two-stage gate pipeline; the [`checkpointer::Checkpointer`] writes
//!    cursors only for rows the gate reported durable.
//! 6. Close the gate (final flush) and summarise.

pub mod checkpointer;
pub mod context;
pub mod summary;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_storage::layout::EngineRunReceipt;
use sluice_storage::outputs::OutputSpec;
use sluice_storage::run::RunLayout;
use sluice_storage::view::default_view_root;
use sluice_stream::checkpoint::{pack_key, resume_position, CheckpointStore};
use sluice_stream::pacing::PacingConfig;
use sluice_stream::reader::{StartAt, TimeWindow, NO_TS};
use sluice_stream::replay::{
    channel, run_replay, ClockKind, OutputMonitor, OutputPlan, Release, ReplayConfig, Slice,
};
use sluice_stream::view::{open_view, StreamView};

use crate::bus_target::{open_sink, BusTarget};
use crate::error::{IngestError, Result};
use crate::gate::record::BatchCounts;
use crate::gate::{Gate, GateConfig, OpenReport, Origin};
use crate::pipeline::{run_pipeline, GateInput, PipelineConfig};
use crate::sink::Sink;
use checkpointer::{Checkpointer, Tag};
pub use summary::{Live, OutputSummary, ReplaySummary};

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
    /// Where admitted events go (`--bus`); default the file bus under the run root.
    pub bus: BusTarget,
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

/// The callback for live numbers (about five times a second).
pub type Tick<'a> = dyn Fn(&Live) + Sync + 'a;

/// Run a replay session into the sink `opts.bus` names (see the module doc).
pub fn run(opts: &ReplayOptions, tick: &Tick<'_>) -> Result<ReplaySummary> {
    if opts.decode_only {
        return decode_only(opts);
    }
    let layout = RunLayout::resolve(&opts.runs_dir, &opts.platform)?;
    layout.ensure()?;
    let sink = open_sink(&opts.bus, &layout)?;
    let bus = opts.bus.describe(&layout);
    run_with_sink(opts, &layout, sink, &bus, tick)
}

/// The views of the session's outputs.
fn open_views(opts: &ReplayOptions) -> Result<Vec<Arc<StreamView>>> {
    let view_root = opts
        .view_root
        .clone()
        .unwrap_or_else(|| default_view_root(&opts.engine_root));
    let ids = context::output_ids(opts, &view_root)?;
    let views = ids
        .iter()
        .map(|id| open_view(&view_root, id).map(Arc::new))
        .collect::<std::result::Result<_, _>>()?;
    Ok(views)
}

fn replay_config(opts: &ReplayOptions) -> ReplayConfig {
    ReplayConfig {
        pacing: opts.pacing,
        merge: opts.merge,
        window: opts.window,
        max_events: opts.max_events,
        batch_rows: opts.batch_rows.max(1),
        clock: ClockKind::System,
    }
}

/// Run a replay session into `sink`, a sink the caller opened for `layout` (`bus` is how the
/// summary names it). `opts.bus` is not looked at.
pub fn run_with_sink(
    opts: &ReplayOptions,
    layout: &RunLayout,
    mut sink: Box<dyn Sink>,
    bus: &str,
    tick: &Tick<'_>,
) -> Result<ReplaySummary> {
    let started = Instant::now();
    // 1. Views.
    let views = open_views(opts)?;
    // 2. Pins and run context.
    let receipt = EngineRunReceipt::read(&opts.engine_root)?;
    let pins = receipt.pins();
    let pack = pack_key(&pins);
    layout.ensure()?;
    let run = context::run_context(opts, layout, &pack, &pins.scenario_id)?;

    // 3. Where each output starts.
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

    // 4. The gate on the sink.
    let expected: u64 = views.iter().map(|v| v.rows()).sum();
    let gate_cfg = GateConfig {
        partitions: opts.partitions,
        dedupe_memory: opts.dedupe_memory,
        expected_events: expected,
    };
    let mut gate = Gate::open(&layout.ig(), &gate_cfg, run.clone(), sink.as_mut())?;
    let specs: Vec<&'static OutputSpec> = views.iter().map(|v| v.output).collect();
    let topics = gate.prepare_topics(sink.as_mut(), &specs, opts.partitions)?;

    // 5. Replay into the pipeline.
    let labels: Vec<Vec<Arc<str>>> = views
        .iter()
        .map(|v| v.parts.iter().map(|p| Arc::from(p.name.as_str())).collect())
        .collect();
    let mut checkpointer = Checkpointer::new(stores, views.clone());
    let monitors: Vec<OutputMonitor> = views.iter().map(|_| OutputMonitor::default()).collect();
    let rcfg = replay_config(opts);
    let pcfg = PipelineConfig {
        checkpoint_every: opts.checkpoint_every.max(1),
        checkpoint_interval: opts.checkpoint_interval,
        unpaced: opts.pacing.is_free(),
        ..PipelineConfig::default()
    };
    let input = |s: Slice| {
        let n = s.len() as u64;
        let view = &views[s.output];
        GateInput {
            output: view.output,
            origin: Origin {
                label: labels[s.output][s.part() as usize].clone(),
                first_row: s.first_row(),
            },
            tag: Tag {
                output: s.output,
                part: s.part(),
                last_row: s.first_row() + n.saturating_sub(1),
                last_ts: s.ts().iter().rev().copied().find(|&t| t != NO_TS),
            },
            // Cut here, on the gate's thread, which also frees it.
            batch: s.record_batch(),
        }
    };
    let convert = |r: Release| r.into_iter().map(input);
    let (tx, rx) = channel(8);
    let done = AtomicBool::new(false);
    let total = opts.max_events.unwrap_or(expected);
    let sink_ref = sink.as_mut();
    let (replayed, piped) = std::thread::scope(|s| {
        let pipe =
            s.spawn(|| run_pipeline(&mut gate, sink_ref, rx, convert, &mut checkpointer, &pcfg));
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                tick(&live(&views, &monitors, total));
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

    // 6. Summary.
    let elapsed = started.elapsed().as_secs_f64();
    let outputs = views
        .iter()
        .enumerate()
        .map(|(i, v)| {
            OutputSummary::new(
                v,
                &reader_reports[i],
                &checkpointer.counts[i],
                topics.get(i).map_or(0, |t| t.1),
                (plans[i].start.part, plans[i].start.row, resumed[i]),
            )
        })
        .collect();
    Ok(ReplaySummary {
        platform_run_id: layout.platform_run_id.clone(),
        run_root: layout.root(),
        engine_root: opts.engine_root.clone(),
        bus: bus.to_string(),
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
        peak_rss_bytes: sluice_storage::process::peak_rss_bytes(),
    })
}

fn live(views: &[Arc<StreamView>], monitors: &[OutputMonitor], total: u64) -> Live {
    Live {
        total,
        outputs: views
            .iter()
            .zip(monitors)
            .map(|(v, m)| {
                let lag = m.lag_micros.load(Ordering::Relaxed);
                (
                    v.output.id.to_string(),
                    m.emitted.load(Ordering::Relaxed),
                    (lag != NO_TS).then(|| lag as f64 / 1e6),
                )
            })
            .collect(),
    }
}

/// `decode_only`: read (and pace) every view, discard the slices.
fn decode_only(opts: &ReplayOptions) -> Result<ReplaySummary> {
    let started = Instant::now();
    let views = open_views(opts)?;
    let plans: Vec<OutputPlan> = views
        .iter()
        .map(|v| OutputPlan {
            view: v.clone(),
            start: StartAt::default(),
        })
        .collect();
    let monitors: Vec<OutputMonitor> = views.iter().map(|_| OutputMonitor::default()).collect();
    let rcfg = replay_config(opts);
    let (tx, rx) = channel(8);
    let reports = std::thread::scope(|s| {
        let drain = s.spawn(move || rx.iter().flatten().map(|sl| sl.len() as u64).sum::<u64>());
        let r = run_replay(&plans, &rcfg, tx, &monitors);
        let _ = drain.join();
        r
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let events: u64 = reports.iter().map(|r| r.emitted).sum();
    let none = BatchCounts::default();
    Ok(ReplaySummary {
        platform_run_id: String::new(),
        run_root: PathBuf::new(),
        engine_root: opts.engine_root.clone(),
        bus: String::new(),
        pack_key: String::new(),
        run_id: String::new(),
        scenario_run_id: String::new(),
        outputs: views
            .iter()
            .zip(&reports)
            .map(|(v, r)| OutputSummary::new(v, r, &none, 0, (0, 0, false)))
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
        peak_rss_bytes: sluice_storage::process::peak_rss_bytes(),
    })
}
