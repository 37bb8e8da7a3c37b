//! `sluice bus produce TOPIC`: JSON lines `{"key", "value", "ts", "partition"}` on stdin,
//! appended in batches; every acknowledged record is printed as soon as its batch meets
//! the durability policy (so a crash test can record what was promised).
//!
//! 1. A thread reads stdin lines into a channel.
//! 2. The main thread takes one line (blocking), then every line already waiting (up to
//!    `--max-batch`): batches form naturally from what the writer of stdin has sent.
//! 3. It parses them, appends them (`Producer::send`, or `append_batch` for an explicit
//!    partition), prints the acks, flushes stdout, and goes back to 2.

use std::io::{BufRead, Write};
use std::sync::mpsc;

use anyhow::Context;
use serde_json::{json, Value};
use sluice_bus::{Ack, Producer, Record};
use sluice_storage::timefmt::{now_micros, parse_rfc3339_micros};

use crate::cli::Ctx;
use crate::errors::CliError;

/// One parsed input line.
struct Line {
    number: u64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    ts: i64,
    partition: Option<u32>,
}

fn parse_line(number: u64, text: &str) -> anyhow::Result<Line> {
    let bad =
        |why: String| CliError::new("INVALID_ARGUMENT", format!("stdin line {number}: {why}"));
    let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Value::Object(obj) = v else {
        return Err(bad("expected a JSON object {key, value, ts}".into()));
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "key" | "value" | "ts" | "partition") {
            return Err(bad(format!("unknown field {k:?}")));
        }
    }
    // Strings are stored as their UTF-8 bytes, any other JSON as its compact text.
    let bytes = |v: Option<&Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(other) => Some(other.to_string().into_bytes()),
    };
    let ts = match obj.get("ts") {
        None | Some(Value::Null) => now_micros(),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad("ts must be an integer (µs)".into()))?,
        Some(Value::String(s)) => {
            parse_rfc3339_micros(s).ok_or_else(|| bad(format!("ts {s:?} is not RFC 3339")))?
        }
        Some(_) => return Err(bad("ts must be µs or an RFC 3339 string".into())),
    };
    let partition = match obj.get("partition") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| bad("partition must be a non-negative integer".into()))?,
        ),
    };
    Ok(Line {
        number,
        key: bytes(obj.get("key")),
        value: bytes(obj.get("value")),
        ts,
        partition,
    })
}

/// Append one batch of lines; acks in line order.
fn append(producer: &Producer, lines: &[Line]) -> anyhow::Result<Vec<Ack>> {
    let records: Vec<Record<'_>> = lines
        .iter()
        .map(|l| Record {
            key: l.key.as_deref(),
            value: l.value.as_deref(),
            timestamp: l.ts,
            headers: &[],
        })
        .collect();
    if lines.iter().all(|l| l.partition.is_none()) {
        return Ok(producer.send(&records)?);
    }
    // Explicit partitions: consecutive lines for the same partition go as one batch.
    let mut acks = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let p = lines[i]
            .partition
            .unwrap_or_else(|| producer.route(lines[i].key.as_deref()));
        let mut j = i + 1;
        while j < lines.len() && lines[j].partition == Some(p) {
            j += 1;
        }
        let range = producer.append_batch(p, &records[i..j])?;
        acks.extend(range.map(|offset| Ack {
            partition: p,
            offset,
        }));
        i = j;
    }
    Ok(acks)
}

/// Run the produce loop until stdin ends.
pub fn run(producer: &Producer, max_batch: usize, ctx: &Ctx) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<String>>(max_batch.max(1) * 2);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let stdout = std::io::stdout();
    let mut number = 0u64;
    let (mut records, mut batches) = (0u64, 0u64);
    while let Ok(first) = rx.recv() {
        let mut texts = vec![first];
        while texts.len() < max_batch {
            match rx.try_recv() {
                Ok(l) => texts.push(l),
                Err(_) => break,
            }
        }
        let mut lines = Vec::with_capacity(texts.len());
        for t in texts {
            number += 1;
            let t = t.context("reading stdin")?;
            if t.trim().is_empty() {
                continue;
            }
            lines.push(parse_line(number, &t)?);
        }
        if lines.is_empty() {
            continue;
        }
        let acks = append(producer, &lines)?;
        let mut out = stdout.lock();
        for (l, a) in lines.iter().zip(&acks) {
            if ctx.json {
                writeln!(
                    out,
                    "{}",
                    json!({"line": l.number, "partition": a.partition, "offset": a.offset})
                )?;
            } else {
                writeln!(
                    out,
                    "ack line {} -> partition {} offset {}",
                    l.number, a.partition, a.offset
                )?;
            }
        }
        out.flush()?;
        records += acks.len() as u64;
        batches += 1;
    }
    let summary = json!({"summary": {"topic": producer.topic().name, "records": records, "batches": batches}});
    ctx.emit(&summary, || {
        format!(
            "produced {records} records in {batches} batches to {}",
            producer.topic().name
        )
    });
    Ok(())
}
