//! A receipt as the platform reads it (`shared/CONTEXT.md`, "Ingestion gate"): the stored
//! record joined with its context.
//!
//! ```json
//! {"receipt_id":"…32 hex…","decision":"ADMIT","event_id":"…","event_type":"…",
//!  "event_class":"…","ts_utc":"…","pins":{…seven…},"dedupe_key":"…","payload_hash":"…",
//!  "eb_ref":{"topic":"…","partition":0,"offset":17},"reason_codes":[]}
//! ```
//!
//! `eb_ref` is where the event is on the bus: its own position for ADMIT, the original's
//! for DUPLICATE, null for QUARANTINE (the event is not on the bus).
//!
//! A record does not store its `payload_hash` ([`super::record`]): rendered from the
//! record alone it is null, and [`crate::lookup::Lookup`] fills it in, from the quarantine
//! record for a QUARANTINE and from the bus record at `eb_ref` for the others
//! ([`crate::bus_payload`]).

use serde_json::{json, Value};
use sluice_storage::timefmt::format_rfc3339_micros;

use super::context::ReceiptContext;
use super::record::ReceiptRecord;
use crate::ids::{dedupe_key, hex16, hex32_string, receipt_id};
use crate::reason::ReasonCode;

/// The receipt JSON of a record.
pub fn render(rec: &ReceiptRecord, ctx: Option<&ReceiptContext>) -> Value {
    let class = ctx.and_then(|c| c.event_class.as_deref());
    let dedupe = match (
        rec.event_id.as_ref(),
        class,
        ctx.and_then(|c| c.platform_run_id()),
    ) {
        (Some(id), Some(class), Some(run)) => {
            Value::String(hex32_string(&dedupe_key(run, class, id)))
        }
        _ => Value::Null,
    };
    let eb_ref = match (rec.eb, ctx.and_then(|c| c.topic.as_deref())) {
        (Some(eb), Some(topic)) if rec.decision != crate::reason::Decision::Quarantine => json!({
            "topic": topic,
            "partition": eb.partition,
            "offset": eb.offset,
        }),
        _ => Value::Null,
    };
    // ADMIT records do not store their id: it is derived from the event id.
    let receipt_id = match (rec.decision, rec.event_id.as_ref()) {
        (crate::reason::Decision::Admit, Some(id)) => receipt_id(rec.decision, &hex32_string(id)),
        _ => hex16(&rec.receipt_id),
    };
    json!({
        "receipt_id": receipt_id,
        "decision": rec.decision.as_str(),
        "event_id": rec.event_id.as_ref().map(hex32_string),
        "event_type": ctx.map(|c| c.event_type.clone()),
        "event_class": class,
        "ts_utc": rec.ts.map(format_rfc3339_micros),
        "pins": ctx.map_or(Value::Null, |c| Value::Object(c.pins.clone())),
        "dedupe_key": dedupe,
        "payload_hash": Value::Null,
        "eb_ref": eb_ref,
        "reason_codes": ReasonCode::from_mask(rec.reasons).iter().map(|r| r.as_str()).collect::<Vec<_>>(),
    })
}
