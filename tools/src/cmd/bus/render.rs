//! How `sluice bus` shows stored bytes and records: values as JSON when they are JSON,
//! else as text, else as hex; timestamps as RFC 3339 (microseconds, UTC).

use serde_json::{json, Value};
use sluice_bus::RecordView;
use sluice_storage::timefmt::format_rfc3339_micros;

/// Bytes as a JSON value: parsed JSON, else a string, else `{"hex": ...}`.
pub fn bytes_value(b: Option<&[u8]>) -> Value {
    let Some(b) = b else {
        return Value::Null;
    };
    if let Ok(v) = serde_json::from_slice::<Value>(b) {
        return v;
    }
    text_or_hex(b)
}

/// Bytes as a string if UTF-8, else `{"hex": ...}` (keys are never parsed as JSON).
pub fn text_or_hex(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
    }
}

/// A record as JSON.
pub fn record_json(partition: Option<u32>, r: &RecordView<'_>) -> Value {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .clone()
        .map(|h| (h.key.to_string(), text_or_hex(h.value)))
        .collect();
    let mut v = json!({
        "offset": r.offset,
        "timestamp": r.timestamp,
        "ts_utc": format_rfc3339_micros(r.timestamp),
        "key": r.key.map_or(Value::Null, text_or_hex),
        "value": bytes_value(r.value),
    });
    if let Some(p) = partition {
        v["partition"] = json!(p);
    }
    if !headers.is_empty() {
        v["headers"] = Value::Object(headers);
    }
    v
}

/// A record on one human line.
pub fn record_line(partition: u32, r: &RecordView<'_>) -> String {
    let key = match r.key {
        Some(k) => format!(" key={}", text_or_hex(k)),
        None => String::new(),
    };
    format!(
        "p{partition} @{}  {}{key}  {}",
        r.offset,
        format_rfc3339_micros(r.timestamp),
        bytes_value(r.value)
    )
}

/// A timestamp for humans, `-` when absent.
pub fn ts(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), format_rfc3339_micros)
}
