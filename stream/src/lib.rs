//! # sluice-stream
//!
//! Replay of stream views (the platform's "world streamer"): reads each output's view in time
//! order, paces the events on the output's scenario clock (or flat out), and keeps per-output
//! checkpoints so a replay resumes after the last durable row.
//!
//! It is not the gate: it knows nothing of envelopes, dedupe or the bus. It hands out
//! [`replay::Slice`]s (consecutive rows of one view: a range of a decoded Arrow batch with
//! its parsed times) on a channel, one per message or, unpaced `--merge`, in bundles; whoever consumes them (the gate, wired to the views by the session
//! in `sluice_ingest::replay`) reports back which rows are durable, and only those are written
//! to checkpoints.
//!
//! ```text
//!  <engine_root>/stream_view/ts_utc/output_id=<id>/part-*.parquet + _stream_sort_receipt.json
//!        | view::open_view (fail-closed: STREAM_VIEW_MISSING / _PARTIAL_EXISTS / ...)
//!        v
//!  reader::ViewReader (resume position, time window, row-group skipping)
//!        | pacing::Schedule per output clock (or merge::  one global order)
//!        v
//!  replay::run_replay --Release (Slices)--> channel --> consumer --durable rows--> checkpoint::CheckpointStore
//! ```
//!
//! Modules: [`view`] (open and check), [`reader`] (decode), [`pacing`] and [`clock`]
//! (when to release), [`replay`] and [`merge`] (threads, budget), [`checkpoint`] (cursor
//! files), [`fixture`] (tiny views for tests).

pub mod checkpoint;
pub mod clock;
pub mod error;
pub mod fixture;
pub mod merge;
pub mod pacing;
pub mod reader;
pub mod replay;
pub mod view;

pub use error::{ReplayError, Result};
