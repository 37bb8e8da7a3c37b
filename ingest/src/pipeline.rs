//! The gate on three threads (and two more for index flushes and checkpoint fsyncs), so
//! that building the envelopes of one input, deciding the one before and appending the one
//! before that overlap.
//!
//! ```text
//!  input channel ──> envelope stage ──Built (8)──> stage A: Decider ──Batches / FlushJob──> stage B: Recorder ──> sink
//!  (e.g. replay      envelopes, ids,               contexts, dedupe     (bounded channel)   bus append, quarantine,
//!   slices)          hashes, checks                decisions       <──────FlushDone───────   receipts, runs, manifest
//!                          ▲                                                                   │
//!                          └──────────── recorded envelope buffers, for reuse ────────────────┤
//!                                                 FlushDone ◄── flusher ◄── FlushWork ────────────┤
//!                                                     (log fsync, runs, manifest; answer; compaction) │
//!                                                               Progress::durable(tag) after each batch
//!                                                               Progress::checkpoint() every N events / T,
//!                                                               after gate-sync fsynced the logs
//! ```
//!
//! 0. The envelope stage (`gate-envelopes`) converts each input and builds its envelopes
//!    ([`crate::gate::decide::Envelopes`]: event ids, dedupe keys, payload hashes,
//!    partitions, checks), into buffers the recorder gave back. It reads no index, so it
//!    runs up to `BUILT_QUEUE` inputs ahead. (Measured when it was split off stage A,
//!    session 15: 20M events after dropping the page cache, three interleaved pairs,
//!    27.2-28.7 s against 27.6-29.4 s; half the voluntary context switches and 16-31% less
//!    system time; peak RSS +30-40 MiB. 3M events: no difference. `--merge` of all four
//!    outputs of a 1M-row set, many small slices: 9.35-10.16 s -> 7.97-8.37 s, +65-85 MiB.)
//! 1. Stage A (`gate-decide`) decides; when its memtable is full
//!    it freezes it and sends a flush job down the same channel, so the job reaches stage B
//!    after every batch it covers. Lookups keep consulting the frozen memtable until stage B
//!    answers with the new runs; a second flush waits for the first. Decided batches travel
//!    in messages of at least `MIN_MESSAGE_EVENTS` events (at most a group) while more
//!    input is waiting, else at once (unpaced input: only full messages): `--merge` slices
//!    of a row or two would otherwise each be a message and, with a queue of 32 messages, a
//!    group (and an fsync per partition) of their own. An input may hold several batches
//!    (`convert` returns them in order): an unpaced merge bundles its slices.
//! 2. Stage B (`gate-record`) records batches in order, every batch already waiting in the
//!    queue together with the first, up to `group_events` (group commit: one append and one
//!    fsync per partition for the group, so the fsync latency is paid per group, not per
//!    batch; a flush job ends a group: its quick part, `Recorder::begin_flush`, settles the
//!    last group and takes the receipt-id memtable; the flusher thread, `gate-flush`,
//!    fsyncs the logs, writes the runs and publishes the manifest while stage B goes on,
//!    answers stage A with `FlushDone`, and only then compacts (`FlushWork::write_runs`,
//!    `Compaction::run`)). Groups overlap by one: `Recorder::start_group` writes a group's
//!    partitions (their fsyncs start on the bus's sync helpers), then settles the group
//!    before it (waits for its fsyncs, which had this group's compression and writes to
//!    finish, and writes its receipts: a receipt never reaches the log before its bus
//!    record is durable), then encodes this group's receipts. A group is settled at once
//!    when nothing is queued behind it in a paced replay, and before a checkpoint, a flush
//!    job and the end. After settling it calls `Progress::durable` with each batch's tag: the batch
//!    is on the bus and has receipts; the batch's envelope buffers go back to the envelope
//!    stage for reuse as soon as its group is written. Every `checkpoint_every` events
//!    or `checkpoint_interval`, it settles the last group and asks `gate-sync` to fsync the
//!    logs; when that answers (checked before each message, one at a time) it calls
//!    `Progress::checkpoint`, which is where a replay persists its cursors. Batches settled
//!    while the fsync runs are reported durable only after that checkpoint
//!    (`Reporter`), so a cursor never gets ahead of durable receipts.
//! 3. At the end, a final flush and checkpoint. On a failure a stage stops, the others see
//!    their channels close, and the first real error is returned (the recorder's, else the
//!    decider's, else the envelope stage's). If the envelope stage fails, the decider still
//!    sends what it decided before the failing input, and the recorder records it.

use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use crossbeam_channel::{bounded, Receiver, Sender};
use sluice_storage::outputs::OutputSpec;

use crate::envelope::build::EnvelopeBatch;
use crate::error::{IngestError, Result};
use crate::gate::decide::{DecidedBatch, Envelopes, FlushDone, FlushJob};
use crate::gate::record::BatchCounts;
use crate::gate::record::FlushWork;
use crate::gate::{Gate, Origin};
use crate::sink::Sink;

/// One batch for the gate.
pub struct GateInput<T> {
    pub output: &'static OutputSpec,
    pub batch: RecordBatch,
    pub origin: Origin,
    /// Returned in `Progress::durable` once the batch is recorded.
    pub tag: T,
}

/// Callbacks from stage B.
pub trait Progress<T>: Send {
    /// The batch tagged `tag` is on the bus with its receipts (not yet fsynced).
    fn durable(&mut self, tag: T, counts: &BatchCounts);
    /// Everything reported durable so far is fsynced: persist positions now.
    fn checkpoint(&mut self) -> Result<()>;
}

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    /// Decided batches queued between the stages.
    pub queue_depth: usize,
    /// Stage B records every batch already queued in one go, up to this many events: one
    /// bus append (and fsync) per partition for the group.
    pub group_events: usize,
    /// The input is unpaced (`--max`): no event has to be recorded before stage A has
    /// filled a message, so it never sends a short one because its input ran dry (only
    /// the last one, or one cut by a memtable flush).
    pub unpaced: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            checkpoint_every: 100_000,
            checkpoint_interval: Duration::from_secs(1),
            queue_depth: 32,
            group_events: 1 << 15,
            unpaced: false,
        }
    }
}

/// Totals of a pipeline run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PipelineReport {
    pub counts: BatchCounts,
    pub batches: u64,
    pub checkpoints: u64,
}

/// Stage A sends decided batches in messages of at least this many events (at most
/// `group_events`) when more input is waiting.
const MIN_MESSAGE_EVENTS: usize = 1024;

/// Recorded envelope batches waiting to go back to stage A.
const RECYCLE_QUEUE: usize = 1024;

/// What stage B tells `Progress`, in order. A group's batches are reported durable once it
/// is settled; while a checkpoint's fsync runs on `gate-sync`, batches settled meanwhile
/// are held back and reported after `Progress::checkpoint`, so a checkpoint never names a
/// batch its fsync did not cover.
struct Reporter<T> {
    /// The batches of the group started last.
    unsettled: Vec<(T, BatchCounts)>,
    /// Settled while a checkpoint's fsync runs.
    held: Vec<(T, BatchCounts)>,
    /// A checkpoint's fsync was asked for and has not answered.
    syncing: bool,
}

impl<T> Default for Reporter<T> {
    fn default() -> Self {
        Reporter {
            unsettled: Vec::new(),
            held: Vec::new(),
            syncing: false,
        }
    }
}

impl<T> Reporter<T> {
    /// The recorder settled the group started last.
    fn settled(&mut self, progress: &mut dyn Progress<T>) {
        if self.syncing {
            self.held.append(&mut self.unsettled);
        } else {
            for (tag, c) in self.unsettled.drain(..) {
                progress.durable(tag, &c);
            }
        }
    }

    /// The asked-for fsync is done: checkpoint what was reported before it, then report
    /// what was held back.
    fn synced(&mut self, progress: &mut dyn Progress<T>) -> Result<()> {
        self.syncing = false;
        progress.checkpoint()?;
        for (tag, c) in self.held.drain(..) {
            progress.durable(tag, &c);
        }
        Ok(())
    }
}

/// Envelopes of one input, built ahead of the decider.
struct Built<T> {
    output: &'static OutputSpec,
    env: EnvelopeBatch,
    origin: Origin,
    tag: T,
}

enum FromBuilder<T> {
    /// The batches of one input, in order.
    Built(Vec<Built<T>>),
    /// Every input was built.
    End,
}

/// Inputs built ahead of the decider (each one input's envelopes, ~1 MiB per 1024 traffic
/// rows).
const BUILT_QUEUE: usize = 8;

enum ToRecorder<T> {
    /// Consecutive decided batches, in order.
    Batches(Vec<DecidedBatch<T>>),
    Flush(FlushJob),
}

/// Run the gate over every input until `inputs` closes (see the module doc).
///
/// After an error the gate in memory may hold decisions that were never recorded (a
/// failed append, a batch decided but not sent): drop it and open its directory again
/// before using it (the logs are the truth; `replay` does exactly that on `--resume`).
pub fn run_pipeline<S: Send, T: Send, I: IntoIterator<Item = GateInput<T>>>(
    gate: &mut Gate,
    sink: &mut dyn Sink,
    inputs: Receiver<S>,
    convert: impl Fn(S) -> I + Send,
    progress: &mut dyn Progress<T>,
    cfg: &PipelineConfig,
) -> Result<PipelineReport> {
    let (to_dec, from_env) = bounded::<FromBuilder<T>>(BUILT_QUEUE);
    let (to_rec, from_dec) = bounded::<ToRecorder<T>>(cfg.queue_depth.max(1));
    let (done_tx, done_rx) = bounded::<FlushDone>(1);
    // Recorded envelope buffers going back to the envelope stage for reuse (never waited
    // on). Room for a whole group of small batches (`--merge`); only batches that exist
    // wait here.
    let (recycle_tx, recycle_rx) = bounded::<EnvelopeBatch>(RECYCLE_QUEUE);
    let Gate {
        decider, recorder, ..
    } = gate;
    // The envelope stage borrows the decider's builders for the run and gives them back.
    let run = decider.run.clone();
    let mut envelopes = std::mem::replace(&mut decider.envelopes, Envelopes::new(run));
    let inputs_waiting = inputs.clone();
    let stage_decider = &mut *decider;
    // The flusher thread borrows the index's files for the run and gives them back.
    let (to_flush, flush_rx) = bounded::<FlushWork>(1);
    // Checkpoint fsyncs: the recorder asks (the receipts below a seq), `gate-sync` answers.
    let logs = recorder.log_sync()?;
    let (to_sync, sync_rx) = bounded::<u64>(1);
    let (synced_tx, synced_rx) = bounded::<Result<()>>(1);
    let mut index = std::mem::take(&mut recorder.index);
    let stage_recorder = &mut *recorder;
    let (result, envelopes, index, flushed) = std::thread::scope(|s| {
        let stage_flush = spawn_named(s, "gate-flush", move || {
            // (covered seq of the last flush, flushes)
            let mut flushed = (None, 0u64);
            let r = (|| -> Result<()> {
                for work in flush_rx.iter() {
                    let covered = work.covered_seq;
                    let (done, compaction) = work.write_runs(&mut index)?;
                    flushed = (Some(covered), flushed.1 + 1);
                    // Stage A may have finished with an error and stopped listening.
                    let _ = done_tx.send(done);
                    // Stage A goes on with the new runs (and its memtable back) while
                    // this merges; it sees the merged runs with the next flush's answer.
                    compaction.run(&mut index)?;
                }
                Ok(())
            })();
            (r, index, flushed)
        });
        let stage_env = spawn_named(s, "gate-envelopes", move || {
            let r = build_all(&mut envelopes, inputs, convert, &to_dec, recycle_rx);
            (r, envelopes)
        });
        let stage_a = spawn_named(s, "gate-decide", move || -> Result<()> {
            let decider = stage_decider;
            let send = |m: ToRecorder<T>| to_rec.send(m).map_err(|_| IngestError::PipelinePanicked);
            let mut out: Vec<DecidedBatch<T>> = Vec::new();
            let mut out_events = 0usize;
            // A message never holds more than a group.
            let message_events = MIN_MESSAGE_EVENTS.min(cfg.group_events.max(1));
            let mut ended = false;
            for msg in from_env.iter() {
                let built = match msg {
                    FromBuilder::Built(b) => b,
                    FromBuilder::End => {
                        ended = true;
                        break;
                    }
                };
                let mut items = built.into_iter().peekable();
                while let Some(Built {
                    output,
                    env,
                    origin,
                    tag,
                }) = items.next()
                {
                    if let Ok(done) = done_rx.try_recv() {
                        decider.flushed(done);
                    }
                    let decided = decider.decide_built(output, env, origin, tag)?;
                    out_events += decided.rows.len();
                    out.push(decided);
                    // Small inputs (`--merge` slices of a row or two) travel together: one
                    // message, and one group for stage B, per MIN_MESSAGE_EVENTS events. Paced,
                    // what is decided goes when nothing more waits (no event is held back).
                    let dry = items.peek().is_none()
                        && from_env.is_empty()
                        && inputs_waiting.is_empty()
                        && !cfg.unpaced;
                    if out_events >= message_events || dry || decider.needs_flush() {
                        send(ToRecorder::Batches(std::mem::take(&mut out)))?;
                        out_events = 0;
                    }
                    if decider.needs_flush() {
                        if decider.flush_in_flight() {
                            let done = done_rx.recv().map_err(|_| IngestError::PipelinePanicked)?;
                            decider.flushed(done);
                        }
                        send(ToRecorder::Flush(decider.freeze()))?;
                    }
                }
            }
            // What was decided goes to the recorder, also when the envelope stage failed.
            if !out.is_empty() {
                send(ToRecorder::Batches(out))?;
            }
            if !ended {
                // The envelope stage failed; its error is the one returned.
                return Err(IngestError::PipelinePanicked);
            }
            // The end: flush what is left so lookups need no log scan.
            if decider.flush_in_flight() {
                let done = done_rx.recv().map_err(|_| IngestError::PipelinePanicked)?;
                decider.flushed(done);
            }
            send(ToRecorder::Flush(decider.freeze()))?;
            let done = done_rx.recv().map_err(|_| IngestError::PipelinePanicked)?;
            decider.flushed(done);
            Ok(())
        });
        let stage_sync = spawn_named(s, "gate-sync", move || {
            for next_seq in sync_rx {
                let r = logs.sync(next_seq);
                let failed = r.is_err();
                if synced_tx.send(r).is_err() || failed {
                    break;
                }
            }
        });
        let stage_b = spawn_named(s, "gate-record", move || -> Result<PipelineReport> {
            let recorder = stage_recorder;
            let mut report = PipelineReport::default();
            let mut since = 0u64;
            let mut last = Instant::now();
            // A message taken off the queue while gathering a group, handled next.
            let mut held: Option<ToRecorder<T>> = None;
            let mut rep = Reporter::default();
            loop {
                if rep.syncing {
                    if let Ok(r) = synced_rx.try_recv() {
                        r?;
                        rep.synced(progress)?;
                        report.checkpoints += 1;
                    }
                }
                let msg = match held.take() {
                    Some(m) => m,
                    None => match from_dec.recv() {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                };
                match msg {
                    ToRecorder::Batches(mut group) => {
                        // The group: these batches and every batch already queued behind
                        // them, up to `group_events` (a flush job ends the group: it must
                        // follow the batches it covers).
                        let mut events: usize = group.iter().map(|b| b.rows.len()).sum();
                        while events < cfg.group_events {
                            match from_dec.try_recv() {
                                Ok(ToRecorder::Batches(more)) => {
                                    events += more.iter().map(|b| b.rows.len()).sum::<usize>();
                                    group.extend(more);
                                }
                                Ok(other) => {
                                    held = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        let refs: Vec<&DecidedBatch<T>> = group.iter().collect();
                        // Settles the group before (its receipts are written now).
                        let counts = recorder.start_group(sink, &refs)?;
                        rep.settled(progress);
                        for (b, c) in group.into_iter().zip(counts) {
                            report.counts.add(&c);
                            report.batches += 1;
                            since += c.events;
                            rep.unsettled.push((b.tag, c));
                            let _ = recycle_tx.try_send(b.env);
                        }
                        // One checkpoint fsync at a time; one due meanwhile waits for it.
                        let checkpoint = !rep.syncing
                            && (since >= cfg.checkpoint_every
                                || last.elapsed() >= cfg.checkpoint_interval);
                        // Nothing queued behind a paced replay's group (between events):
                        // no next group to overlap with, so its receipts go out now.
                        // Unpaced, the next group is on its way.
                        if checkpoint || (!cfg.unpaced && from_dec.is_empty()) {
                            recorder.settle()?;
                            rep.settled(progress);
                        }
                        if checkpoint {
                            to_sync
                                .send(recorder.next_receipt_seq())
                                .map_err(|_| IngestError::PipelinePanicked)?;
                            rep.syncing = true;
                            since = 0;
                            last = Instant::now();
                        }
                    }
                    ToRecorder::Flush(job) => {
                        // The quick part here; the flusher fsyncs the logs, writes the
                        // runs and the manifest while this thread goes on recording. (It
                        // settles the last group: the flush covers its receipts.)
                        let work = recorder.begin_flush(job)?;
                        rep.settled(progress);
                        to_flush
                            .send(work)
                            .map_err(|_| IngestError::PipelinePanicked)?;
                    }
                }
            }
            recorder.settle()?;
            rep.settled(progress);
            if rep.syncing {
                synced_rx
                    .recv()
                    .map_err(|_| IngestError::PipelinePanicked)??;
                rep.synced(progress)?;
                report.checkpoints += 1;
            }
            drop(to_sync);
            recorder.sync()?;
            progress.checkpoint()?;
            report.checkpoints += 1;
            Ok(report)
        });
        let (e, envelopes) = match stage_env.join() {
            Ok((r, envelopes)) => (Ok(r), Some(envelopes)),
            Err(_) => (Err(IngestError::PipelinePanicked), None),
        };
        let a = stage_a.join().map_err(|_| IngestError::PipelinePanicked);
        let b = stage_b.join().map_err(|_| IngestError::PipelinePanicked);
        let c = stage_sync.join().map_err(|_| IngestError::PipelinePanicked);
        let (f, index, flushed) = match stage_flush.join() {
            Ok((r, index, flushed)) => (Ok(r), Some(index), flushed),
            Err(_) => (Err(IngestError::PipelinePanicked), None, (None, 0)),
        };
        let result = first_error(
            b.and_then(|r| r),
            vec![f.and_then(|r| r), a.and_then(|r| r), e.and_then(|r| r), c],
        );
        (result, envelopes, index, flushed)
    });
    if let Some(envelopes) = envelopes {
        decider.envelopes = envelopes;
    }
    if let Some(index) = index {
        // The last flush's answer named the runs before its compaction.
        decider.runs = index.dedupe_runs.runs().to_vec();
        recorder.index = index;
    }
    if let (Some(covered), n) = flushed {
        recorder.flushed(covered, n);
    }
    result
}

/// The pipeline's result from its stages' (the recorder's first, then the others in
/// order): the first real error (a stage that stopped because another did reports
/// PipelinePanicked), else the first error, else the recorder's report.
fn first_error<R>(recorder: Result<R>, others: Vec<Result<()>>) -> Result<R> {
    let (report, first) = match recorder {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let mut errors: Vec<IngestError> = first
        .into_iter()
        .chain(others.into_iter().filter_map(Result::err))
        .collect();
    let real = errors
        .iter()
        .position(|e| !matches!(e, IngestError::PipelinePanicked));
    if let Some(i) = real.or((!errors.is_empty()).then_some(0)) {
        return Err(errors.swap_remove(i));
    }
    report.ok_or(IngestError::PipelinePanicked)
}

/// A scoped thread with a name (shown by `top -H`, `perf` and debuggers).
fn spawn_named<'scope, 'env, R: Send + 'scope>(
    s: &'scope std::thread::Scope<'scope, 'env>,
    name: &str,
    f: impl FnOnce() -> R + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, R> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(s, f)
        .expect("spawn a gate pipeline thread")
}

/// The envelope stage: build every input's envelopes, in order, then send `End`.
fn build_all<S, T, I: IntoIterator<Item = GateInput<T>>>(
    envelopes: &mut Envelopes,
    inputs: Receiver<S>,
    convert: impl Fn(S) -> I,
    to_dec: &Sender<FromBuilder<T>>,
    recycle_rx: Receiver<EnvelopeBatch>,
) -> Result<()> {
    let send = |m| to_dec.send(m).map_err(|_| IngestError::PipelinePanicked);
    for input in inputs.iter() {
        let mut built = Vec::new();
        for GateInput {
            output,
            batch,
            origin,
            tag,
        } in convert(input)
        {
            if !envelopes.prepared(output.topic) {
                return Err(IngestError::InvalidArgument(format!(
                    "topic {} is not prepared (call Gate::prepare_topics)",
                    output.topic
                )));
            }
            while let Ok(env) = recycle_rx.try_recv() {
                envelopes.recycle(env);
            }
            let env = envelopes.build(output, &batch)?;
            built.push(Built {
                output,
                env,
                origin,
                tag,
            });
        }
        send(FromBuilder::Built(built))?;
    }
    send(FromBuilder::End)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<R>(r: Result<R>) -> &'static str {
        r.err().map_or("OK", |e| e.code())
    }

    #[test]
    fn the_first_real_error_wins_over_stages_that_only_stopped() {
        let panicked = || Err(IngestError::PipelinePanicked);
        let real = || Err(IngestError::InvalidArgument("bad".into()));
        // The recorder's real error first; else the first real one of the others.
        assert_eq!(
            code(first_error::<()>(real(), vec![panicked()])),
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            code(first_error::<()>(panicked(), vec![panicked(), real()])),
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            code(first_error(Ok(1), vec![Ok(()), real()])),
            "INVALID_ARGUMENT"
        );
        // Only stopped stages: still an error, never the report.
        assert_eq!(
            code(first_error(Ok(1), vec![panicked()])),
            "IG_PIPELINE_PANICKED"
        );
        assert_eq!(
            code(first_error::<()>(panicked(), vec![Ok(())])),
            "IG_PIPELINE_PANICKED"
        );
        assert_eq!(first_error(Ok(7), vec![Ok(()), Ok(())]).unwrap(), 7);
    }
}
