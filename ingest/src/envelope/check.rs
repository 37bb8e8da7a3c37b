//! The gate's checks on an envelope given as JSON, in the platform's order; the first
//! failure decides the reason code:
//!
//! 1. shape -> `ENVELOPE_INVALID`: an object with only [`super::ENVELOPE_FIELDS`];
//!    `event_id` 64 lowercase hex; `event_type` a known output; `schema_version` "v1";
//!    `ts_utc` normalised (`YYYY-MM-DDTHH:MM:SS.ffffffZ`); `producer` a non-empty string;
//!    `payload` an object; `trace_id`/`span_id` strings if present; pins, when present and
//!    not null, of the right type (`seed` an integer, the others strings). A null or absent
//!    `event_id` whose payload lacks a primary-key value is `PRIMARY_KEY_MISSING` instead
//!    (the producer could not form an id).
//! 2. pins -> `PINS_MISSING`: all seven present, not null, strings not empty.
//! 3. payload -> `SCHEMA_FAIL` against the output's columns (`sluice_storage::outputs`):
//!    required columns present, not null and of their JSON type; nullable columns present
//!    and null or of their type; optional columns absent, null or of their type. Extra
//!    payload fields are allowed. JSON types: int = an integer number, float = any number,
//!    string, bool.
//!
//! The fast path ([`super::build`]) must decide exactly the same for the envelopes it
//! writes; a test runs both on the same rows.

use serde_json::{Map, Value};
use sluice_storage::outputs::{ColType, ColumnSpec, OutputSpec, Presence};
use sluice_storage::timefmt::{format_rfc3339_micros, parse_rfc3339_micros};

use super::{ENVELOPE_FIELDS, PIN_FIELDS};
use crate::ids::{parse_hex32, Hash32, SCHEMA_VERSION};
use crate::reason::ReasonCode;

/// An envelope that passed every check.
#[derive(Debug)]
pub struct Checked<'a> {
    pub output: &'static OutputSpec,
    pub event_id: Hash32,
    pub ts_micros: i64,
    pub payload: &'a Map<String, Value>,
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: ReasonCode,
    pub detail: String,
}

fn reject(reason: ReasonCode, detail: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        detail: detail.into(),
    }
}

/// Whether a JSON value has a column's type (null is handled by the caller).
pub fn json_type_ok(ty: ColType, v: &Value) -> bool {
    match ty {
        ColType::Int => v.as_i64().is_some() || v.as_u64().is_some(),
        ColType::Float => v.is_number(),
        ColType::Str => v.is_string(),
        ColType::Bool => v.is_boolean(),
    }
}

/// The `SCHEMA_FAIL` check of one column against a payload: `Some(detail)` on failure.
pub fn column_problem(col: &ColumnSpec, payload: &Map<String, Value>) -> Option<String> {
    match (payload.get(col.name), col.presence) {
        (None, Presence::Optional) => None,
        (None, _) => Some(format!("{} is missing", col.name)),
        (Some(Value::Null), Presence::Required) => Some(format!("{} is null", col.name)),
        (Some(Value::Null), _) => None,
        (Some(v), _) if json_type_ok(col.ty, v) => None,
        (Some(v), _) => Some(format!("{} is {v}, expected {:?}", col.name, col.ty)),
    }
}

fn is_present_pin(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Run the checks (see the module doc).
pub fn check_envelope(v: &Value) -> Result<Checked<'_>, Rejection> {
    use ReasonCode::*;
    let obj = v
        .as_object()
        .ok_or_else(|| reject(EnvelopeInvalid, "envelope is not a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| !ENVELOPE_FIELDS.contains(&k.as_str())) {
        return Err(reject(EnvelopeInvalid, format!("unknown field {k:?}")));
    }
    let event_type = obj
        .get("event_type")
        .and_then(Value::as_str)
        .ok_or_else(|| reject(EnvelopeInvalid, "event_type is missing or not a string"))?;
    let output = OutputSpec::get(event_type).map_err(|_| {
        reject(
            EnvelopeInvalid,
            format!("unknown event_type {event_type:?}"),
        )
    })?;
    let payload = obj
        .get("payload")
        .and_then(Value::as_object)
        .ok_or_else(|| reject(EnvelopeInvalid, "payload is missing or not an object"))?;
    let event_id = match obj.get("event_id") {
        Some(Value::String(s)) => parse_hex32(s)
            .ok_or_else(|| reject(EnvelopeInvalid, "event_id is not 64 lowercase hex digits"))?,
        None | Some(Value::Null) => {
            let pk_null = output
                .primary_key
                .iter()
                .any(|k| payload.get(*k).is_none_or(Value::is_null));
            return Err(if pk_null {
                reject(PrimaryKeyMissing, "a primary-key value is null")
            } else {
                reject(EnvelopeInvalid, "event_id is missing")
            });
        }
        Some(_) => return Err(reject(EnvelopeInvalid, "event_id is not a string")),
    };
    if obj.get("schema_version").and_then(Value::as_str) != Some(SCHEMA_VERSION) {
        return Err(reject(EnvelopeInvalid, "schema_version is not \"v1\""));
    }
    let ts = obj.get("ts_utc").and_then(Value::as_str).unwrap_or("");
    let ts_micros = parse_rfc3339_micros(ts)
        .filter(|&t| format_rfc3339_micros(t) == ts)
        .ok_or_else(|| reject(EnvelopeInvalid, format!("ts_utc {ts:?} is not normalised")))?;
    match obj.get("producer") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err(reject(EnvelopeInvalid, "producer is missing or empty")),
    }
    for k in ["trace_id", "span_id"] {
        if obj.get(k).is_some_and(|v| !v.is_string()) {
            return Err(reject(EnvelopeInvalid, format!("{k} is not a string")));
        }
    }
    for k in PIN_FIELDS {
        let ok = match obj.get(k) {
            None | Some(Value::Null) => true,
            Some(v) if k == "seed" => v.as_i64().is_some() || v.as_u64().is_some(),
            Some(v) => v.is_string(),
        };
        if !ok {
            return Err(reject(
                EnvelopeInvalid,
                format!("pin {k} has the wrong type"),
            ));
        }
    }
    if let Some(k) = PIN_FIELDS.iter().find(|k| !is_present_pin(obj.get(**k))) {
        return Err(reject(PinsMissing, format!("pin {k} is missing")));
    }
    for col in output.all_columns() {
        if let Some(detail) = column_problem(col, payload) {
            return Err(reject(SchemaFail, detail));
        }
    }
    Ok(Checked {
        output,
        event_id,
        ts_micros,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "event_id": "ab".repeat(32),
            "event_type": "s2_event_stream_baseline_6B",
            "schema_version": "v1",
            "ts_utc": "2026-01-05T08:30:13.260000Z",
            "manifest_fingerprint": "m", "parameter_hash": "p", "seed": 1, "scenario_id": "s",
            "run_id": "r", "platform_run_id": "pr", "scenario_run_id": "sr",
            "producer": "sluice",
            "payload": {"flow_id": 1, "event_seq": 1, "event_type": "AUTH_REQUEST",
                        "ts_utc": "2026-01-05T08:30:13.260000Z", "amount": 3,
                        "seed": 1, "manifest_fingerprint": "m", "parameter_hash": "p",
                        "scenario_id": "s", "extra": [1]},
        })
    }

    fn reason(v: &Value) -> Option<ReasonCode> {
        check_envelope(v).err().map(|r| r.reason)
    }

    #[test]
    fn a_good_envelope_passes() {
        let v = good();
        let c = check_envelope(&v).unwrap();
        assert_eq!(c.output.id, "s2_event_stream_baseline_6B");
        assert_eq!(c.ts_micros, 1_767_601_813_260_000);
    }

    #[test]
    fn each_check_has_its_code_in_order() {
        use ReasonCode::*;
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, ReasonCode)> = vec![
            (Box::new(|v| v["surprise"] = json!(1)), EnvelopeInvalid),
            (
                Box::new(|v| v["event_id"] = json!("AB".repeat(32))),
                EnvelopeInvalid,
            ),
            (
                Box::new(|v| v["ts_utc"] = json!("2026-01-05T08:30:13Z")),
                EnvelopeInvalid,
            ),
            (
                Box::new(|v| v["schema_version"] = json!("v2")),
                EnvelopeInvalid,
            ),
            (
                Box::new(|v| v["event_type"] = json!("nope")),
                EnvelopeInvalid,
            ),
            (Box::new(|v| v["seed"] = json!("1")), EnvelopeInvalid),
            (Box::new(|v| v["trace_id"] = json!(5)), EnvelopeInvalid),
            (Box::new(|v| v["run_id"] = json!(null)), PinsMissing),
            (Box::new(|v| v["scenario_run_id"] = json!("")), PinsMissing),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("platform_run_id");
                }),
                PinsMissing,
            ),
            (
                Box::new(|v| {
                    v["payload"].as_object_mut().unwrap().remove("amount");
                }),
                SchemaFail,
            ),
            (
                Box::new(|v| v["payload"]["flow_id"] = json!(1.5)),
                SchemaFail,
            ),
            (
                Box::new(|v| v["payload"]["event_type"] = json!(null)),
                SchemaFail,
            ),
            (
                Box::new(|v| v["payload"]["amount"] = json!("3")),
                SchemaFail,
            ),
            // Pins beat schema: both broken, PINS_MISSING wins.
            (
                Box::new(|v| {
                    v["run_id"] = json!(null);
                    v["payload"]["amount"] = json!(null);
                }),
                PinsMissing,
            ),
            (
                Box::new(|v| {
                    v["event_id"] = json!(null);
                    v["payload"]["flow_id"] = json!(null);
                }),
                PrimaryKeyMissing,
            ),
            (Box::new(|v| v["event_id"] = json!(null)), EnvelopeInvalid),
        ];
        for (i, (mutate, want)) in cases.into_iter().enumerate() {
            let mut v = good();
            mutate(&mut v);
            assert_eq!(reason(&v), Some(want), "case {i}: {v}");
        }
        let mut v = good();
        v["trace_id"] = json!("t");
        assert_eq!(reason(&v), None);
    }
}
