//! `--merge`: all outputs interleaved into one global time order, paced on one clock.
//!
//! ```text
//!   head A: [a a a|a a]     pick the head with the smallest (time, output index);
//!   head B: [b|b b b]  -->  release its run of rows that stay below the next head's
//!   head C: [c c|c]         (time, index); repeat. Rows with no time take the time of
//!                           the row before them in their own view.
//! ```
//!
//! Each release is a range of rows of the current batch of one output, so the consumer
//! still sees consecutive rows of one view per [`Slice`] and checkpoints stay per output.
//! Unpaced, the ranges share their batch and travel in bundles of about
//! [`MERGE_BUNDLE_EVENTS`] events: one channel message, one wake-up of the consumer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::error::Result;
use crate::pacing::{pace_batch, Schedule};
use crate::reader::{ViewBatch, ViewReader, NO_TS};
use crate::replay::{
    make_clock, send, Budget, Outbox, OutputMonitor, OutputPlan, OutputReport, Release,
    ReplayConfig, Slice, Stop, MERGE_BUNDLE_EVENTS,
};

struct Head {
    reader: ViewReader,
    batch: Option<Arc<ViewBatch>>,
    /// Effective time of each row of `batch` (missing times carried forward).
    eff: Vec<i64>,
    pos: usize,
    last_valid: i64,
    done: bool,
}

impl Head {
    /// Make sure a row is available unless the view is exhausted.
    fn fill(&mut self) -> Result<()> {
        while !self.done && self.batch.as_ref().is_none_or(|b| self.pos >= b.len()) {
            match self.reader.next().transpose()? {
                None => {
                    self.done = true;
                    self.batch = None;
                }
                Some(b) => {
                    self.eff =
                        b.ts.iter()
                            .map(|&t| {
                                if t != NO_TS {
                                    self.last_valid = t;
                                }
                                self.last_valid
                            })
                            .collect();
                    self.batch = Some(Arc::new(b));
                    self.pos = 0;
                }
            }
        }
        Ok(())
    }

    fn peek(&self) -> Option<i64> {
        self.batch
            .as_ref()
            .filter(|b| self.pos < b.len())
            .map(|_| self.eff[self.pos])
    }
}

/// Replay every plan in one global `(time, output index)` order.
pub(crate) fn replay_merged(
    plans: &[OutputPlan],
    cfg: &ReplayConfig,
    tx: &Sender<Release>,
    budget: &Budget,
    monitors: &[OutputMonitor],
) -> Result<Vec<OutputReport>> {
    let mut heads: Vec<Head> = plans
        .iter()
        .map(|p| Head {
            reader: ViewReader::new(p.view.clone(), p.start, cfg.window, cfg.batch_rows),
            batch: None,
            eff: Vec::new(),
            pos: 0,
            last_valid: NO_TS,
            done: false,
        })
        .collect();
    let clock = make_clock(cfg.clock);
    let mut sched = Schedule::new(cfg.pacing);
    // Unpaced, slices travel in bundles; paced, each goes when due.
    let bundle = if sched.is_free() {
        MERGE_BUNDLE_EVENTS
    } else {
        0
    };
    let mut out = Outbox::new(tx, bundle);
    while !budget.spent() {
        for h in heads.iter_mut() {
            h.fill()?;
        }
        let mut order: Vec<(i64, usize)> = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.peek().map(|t| (t, i)))
            .collect();
        order.sort_unstable();
        let Some(&(_, o)) = order.first() else {
            break;
        };
        let bound = order.get(1).copied();
        let head = &mut heads[o];
        let Some(batch) = head.batch.as_ref() else {
            break;
        };
        let start = head.pos;
        let end = match bound {
            None => batch.len(),
            Some(b) => start + head.eff[start..].partition_point(|&t| (t, o) < b),
        };
        // The chosen head is the smallest, so at least its first row goes.
        let end = end.max(start + 1);
        head.pos = end;
        let r = pace_batch(
            &mut sched,
            clock.as_ref(),
            batch,
            start..end,
            |rows, now, lag| {
                let slice = Slice {
                    output: o,
                    batch: batch.clone(),
                    rows,
                    released_at: now,
                };
                send(&mut out, budget, &monitors[o], slice, lag)
            },
        );
        match r {
            Ok(()) => {}
            Err(Stop::Budget) => break,
            Err(Stop::Err(e)) => return Err(e),
        }
    }
    out.flush()?;
    Ok(heads
        .iter()
        .zip(plans)
        .zip(monitors)
        .map(|((h, p), m)| OutputReport {
            output_id: p.view.output.id.to_string(),
            emitted: m.emitted.load(Ordering::Relaxed),
            reader: h.reader.stats,
        })
        .collect())
}
