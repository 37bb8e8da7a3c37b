//! # sluice-ingest
//!
//! The ingestion gate, in process (`shared/CONTEXT.md`, "Ingestion gate"): every event gets
//! an envelope (event id, normalised `ts_utc`, seven pins, payload), is checked (shape, pins,
//! payload schema), deduplicated exactly, and decided ADMIT / DUPLICATE / QUARANTINE with a
//! receipt; admitted events go to their class's topic, partitioned by the platform's key
//! precedence, on a [`sink::Sink`] (the file bus, or memory in tests).
//!
//! The gate itself is not a transport and not a reader of views: it takes Arrow batches of
//! one output at a time and knows nothing about pacing or checkpoints (callers get a
//! callback when a batch is durable and decide what to persist then). One module sits on
//! top and wires it to `sluice-stream`: [`replay`], the replay session behind `sluice
//! replay` (views -> pacing -> gate -> sink, with checkpoints), whose sink the caller
//! chooses ([`bus_target`]: `--bus`).
//!
//! ```text
//!  RecordBatch ─> envelope::build ─> gate::decide ──────────> gate::record ─────> Sink (bus)
//!                 ids, checks,       dedupe index             bus append,       receipts.log
//!                 canonical JSON     (index: memtable,        receipts,         quarantine.log
//!                                     filter, sorted runs)    quarantine        index runs
//! ```
//!
//! Modules: [`envelope`] (building and checking envelopes), [`ids`] (the platform's
//! formulas), [`sha256x2`] (their sha256, two messages at a time), [`json`] (the byte-exact
//! JSON writer), [`index`] (the dedupe LSM), [`receipts`]
//! and [`quarantine`] (the logs), [`gate`] (state, recovery, reconciliation, decisions),
//! [`pipeline`] (the two-thread gate), [`lookup`] and [`audit`] (read-only), [`sink`],
//! [`bus_sink`] and [`kafka`] (where admitted events go: the file bus, or Kafka brokers),
//! [`bus_target`] (which of them a `--bus` URL names), [`replay`] (the session).

pub mod audit;
pub mod bus_payload;
pub mod bus_sink;
pub mod bus_target;
pub mod envelope;
pub mod error;
pub mod gate;
pub mod ids;
pub mod index;
pub mod json;
pub mod kafka;
pub mod lookup;
pub mod parity;
pub mod pipeline;
pub mod quarantine;
pub mod reason;
pub mod receipts;
pub mod replay;
pub mod sha256x2;
pub mod sink;

pub use error::{IngestError, Result, SinkError};
pub use gate::{Gate, GateConfig, Origin};
pub use reason::{Decision, ReasonCode};
