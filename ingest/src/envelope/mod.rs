//! The event envelope (`shared/CONTEXT.md`, "Replay"): what every event looks like on its
//! way into the gate and on the bus.
//!
//! ```text
//! {"event_id":"<64 hex>","event_type":"<output_id>","manifest_fingerprint":"…",
//!  "parameter_hash":"…","payload":{<the row, keys sorted>},"platform_run_id":"…",
//!  "producer":"…","run_id":"…","scenario_id":"…","scenario_run_id":"…",
//!  "schema_version":"v1","seed":42,"ts_utc":"YYYY-MM-DDTHH:MM:SS.ffffffZ"}
//! ```
//!
//! Keys are written sorted and without whitespace, so an envelope (and its payload) is
//! canonical JSON byte for byte; optional `trace_id`/`span_id` are accepted, never written.
//!
//! - [`check`]: the gate's checks on an envelope given as JSON (the reference; the oracle
//!   of the fast path).
//! - [`columns`]: typed access to Arrow columns as JSON values and key text.
//! - [`build`]: the fast path: envelopes, ids, hashes and check results for a whole Arrow
//!   batch at once, columnwise, with no per-row `serde_json::Value`.
//!
//! Where the pins come from: `manifest_fingerprint`, `parameter_hash`, `seed` and
//! `scenario_id` from the row's own pin columns; `platform_run_id`, `run_id` and
//! `scenario_run_id` (and `producer`) from the [`RunContext`] of the replay.

pub mod build;
pub mod check;
pub mod columns;

/// Every field an envelope may have; anything else is `ENVELOPE_INVALID`.
pub const ENVELOPE_FIELDS: [&str; 15] = [
    "event_id",
    "event_type",
    "manifest_fingerprint",
    "parameter_hash",
    "payload",
    "platform_run_id",
    "producer",
    "run_id",
    "scenario_id",
    "scenario_run_id",
    "schema_version",
    "seed",
    "span_id",
    "trace_id",
    "ts_utc",
];

/// The seven pins every class requires.
pub const PIN_FIELDS: [&str; 7] = [
    "manifest_fingerprint",
    "parameter_hash",
    "seed",
    "scenario_id",
    "run_id",
    "platform_run_id",
    "scenario_run_id",
];

/// The pins and producer that are the same for every event of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RunContext {
    pub platform_run_id: String,
    pub run_id: String,
    pub scenario_run_id: String,
    pub producer: String,
}

/// The four pins a row carries in its own columns (`None` = null or absent), as text
/// (`seed` in decimal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RowPins {
    pub manifest_fingerprint: Option<String>,
    pub parameter_hash: Option<String>,
    pub seed: Option<String>,
    pub scenario_id: Option<String>,
}
