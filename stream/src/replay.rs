//! The replay driver: views in, paced [`Slice`]s out on a channel.
//!
//! ```text
//!  default (concurrent):                        --merge (one global time order):
//!   view A -> ViewReader -> Schedule A --+       view A -> ViewReader --+
//!   view B -> ViewReader -> Schedule B --+-->    view B -> ViewReader --+-> merge by (ts, output)
//!   view C -> ViewReader -> Schedule C --+  tx   view C -> ViewReader --+   -> one Schedule -> tx
//!          (one thread per output,                      (one thread)
//!           each on its own clock)
//! ```
//!
//! 1. Each output starts at its [`StartAt`] (from a checkpoint or the beginning) and reads
//!    its view inside the time window.
//! 2. Pacing ([`crate::pacing`]) releases slices at their due time; the consumer's channel is
//!    bounded, so a slow consumer slows the replay down instead of buffering it in memory.
//! 3. `--merge` interleaves outputs by event time; ties go to the output listed first, and a
//!    row with a missing time stays right after the row before it in its own view.
//! 4. `--max-events` is one budget shared by all outputs; an output stops when it is spent.
//! 5. A closed channel (the consumer failed) stops every output with `REPLAY_CONSUMER_CLOSED`.

use std::ops::Range;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use crossbeam_channel::Sender;

use crate::clock::{Clock, LogicalClock, SystemClock};
use crate::error::{ReplayError, Result};
use crate::pacing::{pace_batch, PacingConfig, Schedule};
use crate::reader::{ReaderStats, StartAt, TimeWindow, ViewBatch, ViewReader, NO_TS};
use crate::view::StreamView;

/// One output to replay and where to start.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    pub view: Arc<StreamView>,
    pub start: StartAt,
}

/// The bounded channel [`run_replay`] sends on (its depth, in releases, is the
/// backpressure window).
pub fn channel(depth: usize) -> (Sender<Release>, crossbeam_channel::Receiver<Release>) {
    crossbeam_channel::bounded(depth.max(1))
}

/// Slices sent in one channel message, in release order: one slice, except in an unpaced
/// `--merge`, which bundles its slices (a row or two each) up to [`MERGE_BUNDLE_EVENTS`]
/// events so that the consumer is not woken once per slice.
pub type Release = Vec<Slice>;

/// Events an unpaced `--merge` gathers in one [`Release`].
pub const MERGE_BUNDLE_EVENTS: usize = 1024;

/// Slices waiting to go out as one [`Release`].
pub(crate) struct Outbox<'a> {
    tx: &'a Sender<Release>,
    pending: Release,
    events: usize,
    /// Send once this many events wait (0: every slice at once).
    bundle: usize,
}

impl<'a> Outbox<'a> {
    pub(crate) fn new(tx: &'a Sender<Release>, bundle: usize) -> Self {
        Outbox {
            tx,
            pending: Vec::new(),
            events: 0,
            bundle,
        }
    }
    fn push(&mut self, slice: Slice) -> Result<()> {
        self.events += slice.len();
        self.pending.push(slice);
        if self.events >= self.bundle {
            self.flush()?;
        }
        Ok(())
    }
    /// Send what waits (nothing if nothing does).
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.events = 0;
        self.tx
            .send(std::mem::take(&mut self.pending))
            .map_err(|_| ReplayError::ConsumerClosed)
    }
}

/// Which clock pacing waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    System,
    /// For tests: time jumps to each due time instead of sleeping.
    Logical,
}

/// Settings of a replay.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub pacing: PacingConfig,
    pub merge: bool,
    pub window: TimeWindow,
    pub max_events: Option<u64>,
    /// Rows per decoded batch.
    pub batch_rows: usize,
    pub clock: ClockKind,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            pacing: PacingConfig::MAX,
            merge: false,
            window: TimeWindow::default(),
            max_events: None,
            batch_rows: 8192,
            clock: ClockKind::System,
        }
    }
}

/// Events released to the consumer: consecutive rows of one output.
///
/// The rows stay in their decoded batch, shared: an unpaced `--merge` releases a row or
/// two at a time, and cutting each into its own `RecordBatch` on the reading thread cost
/// a dozen allocations per slice, freed by the consumer's thread (contended allocator
/// arenas). The consumer cuts the rows where it uses them ([`Slice::record_batch`]).
#[derive(Debug, Clone)]
pub struct Slice {
    /// Index of the output in the plans given to [`run_replay`].
    pub output: usize,
    /// The decoded batch the rows are in.
    pub batch: Arc<ViewBatch>,
    /// The released rows of `batch`.
    pub rows: Range<usize>,
    /// Clock time of the release (for pacing checks and lag).
    pub released_at: Duration,
}

impl Slice {
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// The view part the rows are in.
    pub fn part(&self) -> u32 {
        self.batch.part
    }
    /// Row index, inside the part, of the first released row.
    pub fn first_row(&self) -> u64 {
        self.batch.first_row + self.rows.start as u64
    }
    /// `ts_utc` of each released row in UTC microseconds ([`NO_TS`] when unknown).
    pub fn ts(&self) -> &[i64] {
        &self.batch.ts[self.rows.clone()]
    }
    /// The released rows as their own batch (zero-copy).
    pub fn record_batch(&self) -> RecordBatch {
        if self.rows.start == 0 && self.rows.end == self.batch.len() {
            self.batch.batch.clone()
        } else {
            self.batch.batch.slice(self.rows.start, self.rows.len())
        }
    }
}

/// Live counters per output, readable from another thread (progress display).
#[derive(Debug)]
pub struct OutputMonitor {
    pub emitted: AtomicU64,
    /// Time of the last released event (UTC micros), `NO_TS` before the first.
    pub last_ts: AtomicI64,
    /// Behind the scenario clock, micros; `NO_TS` when unpaced.
    pub lag_micros: AtomicI64,
}

impl Default for OutputMonitor {
    fn default() -> Self {
        OutputMonitor {
            emitted: AtomicU64::new(0),
            last_ts: AtomicI64::new(NO_TS),
            lag_micros: AtomicI64::new(NO_TS),
        }
    }
}

/// What one output did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputReport {
    pub output_id: String,
    pub emitted: u64,
    pub reader: ReaderStats,
}

/// The shared `--max-events` budget.
pub(crate) struct Budget(pub(crate) Option<AtomicU64>);

impl Budget {
    /// Take up to `n` events; returns how many may be sent.
    pub(crate) fn take(&self, n: usize) -> usize {
        let Some(left) = &self.0 else {
            return n;
        };
        let mut got = 0;
        let _ = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
            got = l.min(n as u64);
            Some(l - got)
        });
        got as usize
    }
    pub(crate) fn spent(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|l| l.load(Ordering::SeqCst) == 0)
    }
}

pub(crate) fn make_clock(kind: ClockKind) -> Arc<dyn Clock> {
    match kind {
        ClockKind::System => Arc::new(SystemClock::new()),
        ClockKind::Logical => Arc::new(LogicalClock::new()),
    }
}

/// Cut the slice to the budget and send it (or bundle it); `Err(Stop::Budget)` once the
/// budget is spent.
pub(crate) fn send(
    out: &mut Outbox<'_>,
    budget: &Budget,
    monitor: &OutputMonitor,
    mut slice: Slice,
    lag: Option<i64>,
) -> std::result::Result<(), Stop> {
    let n = budget.take(slice.len());
    if n == 0 {
        return Err(Stop::Budget);
    }
    slice.rows.end = slice.rows.start + n;
    monitor.emitted.fetch_add(n as u64, Ordering::Relaxed);
    if let Some(&t) = slice.ts().iter().rev().find(|&&t| t != NO_TS) {
        monitor.last_ts.store(t, Ordering::Relaxed);
    }
    monitor
        .lag_micros
        .store(lag.unwrap_or(NO_TS), Ordering::Relaxed);
    out.push(slice).map_err(Stop::Err)?;
    if budget.spent() {
        return Err(Stop::Budget);
    }
    Ok(())
}

/// Why `pace_batch`'s callback stopped: the budget (not a failure) or an error.
pub(crate) enum Stop {
    Budget,
    Err(ReplayError),
}

fn replay_one(
    output: usize,
    plan: &OutputPlan,
    cfg: &ReplayConfig,
    tx: &Sender<Release>,
    budget: &Budget,
    monitor: &OutputMonitor,
) -> Result<OutputReport> {
    let mut out = Outbox::new(tx, 0);
    let clock = make_clock(cfg.clock);
    let mut sched = Schedule::new(cfg.pacing);
    let mut reader = ViewReader::new(plan.view.clone(), plan.start, cfg.window, cfg.batch_rows);
    while !budget.spent() {
        let Some(batch) = reader.next().transpose()? else {
            break;
        };
        let batch = Arc::new(batch);
        let r = pace_batch(
            &mut sched,
            clock.as_ref(),
            &batch,
            0..batch.len(),
            |rows, now, lag| {
                let slice = Slice {
                    output,
                    batch: batch.clone(),
                    rows,
                    released_at: now,
                };
                send(&mut out, budget, monitor, slice, lag)
            },
        );
        match r {
            Ok(()) => {}
            Err(Stop::Budget) => break,
            Err(Stop::Err(e)) => return Err(e),
        }
    }
    Ok(OutputReport {
        output_id: plan.view.output.id.to_string(),
        emitted: monitor.emitted.load(Ordering::Relaxed),
        reader: reader.stats,
    })
}

/// Replay `plans` into `tx` (see the module doc). Blocks until every output is done, the
/// budget is spent, or the consumer hangs up. `monitors` must have one entry per plan.
pub fn run_replay(
    plans: &[OutputPlan],
    cfg: &ReplayConfig,
    tx: Sender<Release>,
    monitors: &[OutputMonitor],
) -> Result<Vec<OutputReport>> {
    if monitors.len() != plans.len() {
        return Err(ReplayError::InvalidArgument(format!(
            "{} monitors for {} outputs",
            monitors.len(),
            plans.len()
        )));
    }
    let budget = Budget(cfg.max_events.map(AtomicU64::new));
    if cfg.merge {
        return crate::merge::replay_merged(plans, cfg, &tx, &budget, monitors);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .enumerate()
            .map(|(i, plan)| {
                let tx = tx.clone();
                let budget = &budget;
                let monitor = &monitors[i];
                scope.spawn(move || replay_one(i, plan, cfg, &tx, budget, monitor))
            })
            .collect();
        drop(tx);
        let mut reports = Vec::with_capacity(handles.len());
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(r)) => reports.push(r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(ReplayError::InvalidArgument(
                        "a replay thread panicked".into(),
                    ));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    })
}
