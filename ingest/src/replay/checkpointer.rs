//! Durable positions -> cursors: the [`Progress`] of a replay's gate pipeline.
//!
//! The pipeline calls [`Progress::durable`] after each batch is on the bus with its
//! receipts, and [`Progress::checkpoint`] after it fsynced the logs; only then are cursors
//! written, so a cursor never names a row whose receipt a power loss could take back.

use std::sync::Arc;

use sluice_stream::checkpoint::CheckpointStore;
use sluice_stream::view::StreamView;

use crate::error::Result;
use crate::gate::record::BatchCounts;
use crate::pipeline::Progress;

/// What a batch of the pipeline is: the last row of one slice of one output.
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    pub output: usize,
    pub part: u32,
    pub last_row: u64,
    pub last_ts: Option<i64>,
}

/// Receives durable positions from the gate and writes cursors at checkpoints.
pub struct Checkpointer {
    stores: Vec<CheckpointStore>,
    views: Vec<Arc<StreamView>>,
    latest: Vec<Option<Tag>>,
    written: Vec<Option<(u32, u64)>>,
    /// Decisions per output, for the summary.
    pub counts: Vec<BatchCounts>,
}

impl Checkpointer {
    pub fn new(stores: Vec<CheckpointStore>, views: Vec<Arc<StreamView>>) -> Self {
        let n = views.len();
        Checkpointer {
            stores,
            views,
            latest: vec![None; n],
            written: vec![None; n],
            counts: vec![BatchCounts::default(); n],
        }
    }
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

    fn checkpoint(&mut self) -> Result<()> {
        for (o, latest) in self.latest.iter().enumerate() {
            let Some(t) = latest else { continue };
            if self.written[o] == Some((t.part, t.last_row)) {
                continue;
            }
            let c = self.stores[o].cursor(&self.views[o], t.part, t.last_row, t.last_ts);
            self.stores[o].write(&c)?;
            self.written[o] = Some((t.part, t.last_row));
        }
        Ok(())
    }
}
