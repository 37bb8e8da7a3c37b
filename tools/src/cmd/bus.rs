//! `sluice bus ...`: inspect, verify, recover and write the log-structured file bus.
//!
//! Thin: each subcommand is one `sluice_bus` library call plus printing (human text by
//! default, JSON with `--json`). Values are shown as JSON when they are JSON.

mod produce;
mod render;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_bus::inspect::{self, DumpEntry};
use sluice_bus::{Bus, BusOptions, Compression, Durability, StartAt, TopicConfig};

use crate::cli::Ctx;
use crate::errors::CliError;

/// Where the bus is (`<run_root>/eb/`).
#[derive(Debug, clap::Args)]
pub struct BusDir {
    /// The bus directory (e.g. runs/<platform>/<platform_run_id>/eb).
    #[arg(long = "bus", value_name = "DIR", env = "SLUICE_BUS")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum BusCommand {
    /// List topics with their partitions and record counts.
    Topics {
        #[command(flatten)]
        bus: BusDir,
    },
    /// Partitions, offset ranges, segments, sizes and time range of a topic.
    Describe {
        #[command(flatten)]
        bus: BusDir,
        topic: String,
    },
    /// The last N records of each partition; with --follow, then new records as they come.
    Tail {
        #[command(flatten)]
        bus: BusDir,
        topic: String,
        /// Records per partition.
        #[arg(short = 'n', default_value_t = 10)]
        n: u64,
        /// Keep printing records as they are appended (until interrupted).
        #[arg(long)]
        follow: bool,
    },
    /// One record by partition and offset.
    Get {
        #[command(flatten)]
        bus: BusDir,
        topic: String,
        partition: u32,
        offset: u64,
    },
    /// A segment file batch by batch (base offset, count, position, size, CRC status).
    Dump {
        /// A `.log` segment file.
        segment_file: PathBuf,
        /// Also print every record.
        #[arg(long)]
        records: bool,
    },
    /// Full checksum scan (one topic or all); exits non-zero on damage.
    Verify {
        #[command(flatten)]
        bus: BusDir,
        topic: Option<String>,
    },
    /// Truncate damage, rebuild indexes, report what was cut (one topic or all).
    Recover {
        #[command(flatten)]
        bus: BusDir,
        topic: Option<String>,
    },
    /// Append JSON lines {"key", "value", "ts", "partition"} from stdin; prints each
    /// acknowledged record (line, partition, offset) as soon as it is acknowledged.
    Produce {
        #[command(flatten)]
        bus: BusDir,
        topic: String,
        /// Partitions when the topic is created (an existing topic must match if given).
        #[arg(long)]
        partitions: Option<u32>,
        /// When appends are acknowledged: batch (fsync per batch), interval:MS, never.
        #[arg(long, default_value = "batch", value_parser = parse_durability)]
        durability: Durability,
        /// Batch compression for a new topic: none or zstd.
        #[arg(long, default_value = "none", value_parser = parse_compression)]
        compression: Compression,
        /// Segment size for a new topic.
        #[arg(long, default_value_t = 1 << 30)]
        segment_bytes: u64,
        /// Most stdin lines per batch.
        #[arg(long, default_value_t = 10_000)]
        max_batch: usize,
    },
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    Durability::parse(s).ok_or_else(|| format!("{s:?}: expected batch, never or interval:MS"))
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    match s {
        "none" => Ok(Compression::None),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(format!("{s:?}: expected none or zstd")),
    }
}

fn open(dir: &BusDir) -> anyhow::Result<Bus> {
    Ok(Bus::open(&dir.dir, BusOptions::default())?)
}

pub fn run(cmd: BusCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        BusCommand::Topics { bus } => topics(&open(&bus)?, ctx),
        BusCommand::Describe { bus, topic } => describe(&open(&bus)?, &topic, ctx),
        BusCommand::Tail {
            bus,
            topic,
            n,
            follow,
        } => tail(&open(&bus)?, &topic, n, follow, ctx),
        BusCommand::Get {
            bus,
            topic,
            partition,
            offset,
        } => get(&open(&bus)?, &topic, partition, offset, ctx),
        BusCommand::Dump {
            segment_file,
            records,
        } => dump(&segment_file, records, ctx),
        BusCommand::Verify { bus, topic } => verify(&open(&bus)?, topic.as_deref(), ctx),
        BusCommand::Recover { bus, topic } => recover(&open(&bus)?, topic.as_deref(), ctx),
        BusCommand::Produce {
            bus,
            topic,
            partitions,
            durability,
            compression,
            segment_bytes,
            max_batch,
        } => {
            let options = BusOptions {
                durability,
                ..BusOptions::default()
            };
            let b = Bus::create(&bus.dir, options)?;
            let config = TopicConfig {
                compression,
                segment_bytes,
                ..TopicConfig::default()
            };
            let meta = match partitions {
                Some(n) => b.ensure_topic(&topic, n, config)?,
                None => match b.topic(&topic) {
                    Ok(m) => m,
                    Err(sluice_bus::BusError::TopicNotFound { .. }) => {
                        b.ensure_topic(&topic, 1, config)?
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            let producer = b.producer(&meta.name)?;
            produce::run(&producer, max_batch.max(1), ctx)
        }
    }
}

fn topics(bus: &Bus, ctx: &Ctx) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for name in bus.topics()? {
        let info = inspect::describe(bus, &name)?;
        let records: u64 = info
            .partition_info
            .iter()
            .map(|p| p.end_offset - p.start_offset)
            .sum();
        let bytes: u64 = info.partition_info.iter().map(|p| p.bytes).sum();
        rows.push(json!({"name": name, "partitions": info.partitions, "records": records, "bytes": bytes}));
    }
    ctx.emit(&json!({ "topics": rows }), || {
        if rows.is_empty() {
            return "no topics".to_string();
        }
        rows.iter()
            .map(|r| {
                format!(
                    "{:<45} partitions {:>4}  records {:>12}  bytes {:>14}",
                    r["name"].as_str().unwrap_or(""),
                    r["partitions"],
                    r["records"],
                    r["bytes"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn describe(bus: &Bus, topic: &str, ctx: &Ctx) -> anyhow::Result<()> {
    let info = inspect::describe(bus, topic)?;
    ctx.emit(&serde_json::to_value(&info)?, || {
        let c = &info.config;
        let mut s = format!(
            "topic {}  partitions {}  compression {}  segment_bytes {}  retention_bytes {:?}  retention_ms {:?}\n",
            info.name, info.partitions, c.compression.name(), c.segment_bytes, c.retention_bytes, c.retention_ms
        );
        s.push_str("partition        start          end  segments          bytes  first ts                     max ts\n");
        for p in &info.partition_info {
            s.push_str(&format!(
                "{:>9} {:>12} {:>12} {:>9} {:>14}  {:<28} {}\n",
                p.partition,
                p.start_offset,
                p.end_offset,
                p.segments.len(),
                p.bytes,
                render::ts(p.first_timestamp),
                render::ts(p.max_timestamp)
            ));
            for seg in &p.segments {
                s.push_str(&format!(
                    "          {}  offsets {}..{}  {} bytes\n",
                    seg.file.display(),
                    seg.base_offset,
                    seg.end_offset,
                    seg.bytes
                ));
            }
        }
        s.trim_end().to_string()
    });
    Ok(())
}

fn print_batch(b: &sluice_bus::ReadBatch<'_>, ctx: &Ctx) {
    for r in b.records() {
        if ctx.json {
            println!("{}", render::record_json(Some(b.partition), &r));
        } else {
            println!("{}", render::record_line(b.partition, &r));
        }
    }
}

fn tail(bus: &Bus, topic: &str, n: u64, follow: bool, ctx: &Ctx) -> anyhow::Result<()> {
    let meta = bus.topic(topic)?;
    let mut readers = Vec::new();
    for p in 0..meta.partitions {
        let dir = bus.partition_dir(&meta, p)?;
        let (start, end) = sluice_bus::consumer::offset_range(&dir)?;
        let from = end.saturating_sub(n).max(start);
        readers.push(bus.partition_reader(topic, p, StartAt::Offset(from))?);
    }
    loop {
        let mut any = false;
        for r in &mut readers {
            while let Some(b) = r.next_batch()? {
                any = true;
                print_batch(&b, ctx);
            }
        }
        if !follow {
            return Ok(());
        }
        if !any {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn get(bus: &Bus, topic: &str, partition: u32, offset: u64, ctx: &Ctx) -> anyhow::Result<()> {
    let mut r = bus.partition_reader(topic, partition, StartAt::Offset(offset))?;
    let Some(b) = r.next_batch()? else {
        return Err(CliError::new(
            "BUS_OFFSET_OUT_OF_RANGE",
            format!("offset {offset} of partition {partition} of {topic} is not written yet"),
        ));
    };
    let Some(rec) = b.records().next() else {
        return Err(CliError::new("INTERNAL", "empty batch"));
    };
    let v = render::record_json(Some(partition), &rec);
    ctx.emit(&v, || {
        let mut s = format!(
            "topic {topic}  partition {partition}  offset {}\ntimestamp {} ({})\nkey {}\n",
            rec.offset,
            v["ts_utc"].as_str().unwrap_or(""),
            rec.timestamp,
            v["key"]
        );
        if let Some(h) = v.get("headers") {
            s.push_str(&format!("headers {h}\n"));
        }
        let value = serde_json::to_string_pretty(&v["value"]).unwrap_or_default();
        s.push_str(&format!("value {value}"));
        s
    });
    Ok(())
}

fn dump(path: &std::path::Path, records: bool, ctx: &Ctx) -> anyhow::Result<()> {
    let summary = inspect::dump_segment(path, records, |e| {
        if ctx.json {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            if let DumpEntry::Batch {
                records: Some(rs), ..
            } = e
            {
                v["records"] = rs
                    .iter()
                    .map(|r| {
                        json!({"offset": r.offset, "timestamp": r.timestamp,
                        "key": r.key.as_deref().map_or(Value::Null, render::text_or_hex),
                        "value": render::bytes_value(r.value.as_deref())})
                    })
                    .collect();
            }
            println!("{v}");
            return Ok(());
        }
        match e {
            DumpEntry::Batch {
                position,
                size,
                base_offset,
                last_offset,
                count,
                first_timestamp,
                max_timestamp,
                compression,
                crc,
                crc_ok,
                records,
                error,
            } => {
                println!(
                    "baseOffset: {base_offset} lastOffset: {last_offset} count: {count} position: {position} size: {size} \
                     compression: {} crc: {crc:#010x} ({}) firstTimestamp: {} maxTimestamp: {}",
                    compression.name(),
                    if *crc_ok { "valid" } else { "INVALID" },
                    render::ts(Some(*first_timestamp)),
                    render::ts(Some(*max_timestamp)),
                );
                if let Some(err) = error {
                    println!("  error: {err}");
                }
                for r in records.iter().flatten() {
                    println!(
                        "| offset: {} timestamp: {} key: {} value: {}",
                        r.offset,
                        render::ts(Some(r.timestamp)),
                        r.key.as_deref().map_or(Value::Null, render::text_or_hex),
                        render::bytes_value(r.value.as_deref())
                    );
                }
            }
            DumpEntry::Damage {
                position,
                error,
                resume_at,
            } => {
                println!(
                    "DAMAGE at position {position}: {error}; next intact batch: {}",
                    resume_at.map_or("none".to_string(), |p| p.to_string())
                );
            }
        }
        Ok(())
    })?;
    ctx.emit(&json!({ "summary": summary }), || {
        format!(
            "{}: {} bytes, {} batches, {} records, {} damaged regions",
            summary.file.display(),
            summary.bytes,
            summary.batches,
            summary.records,
            summary.damaged
        )
    });
    if summary.damaged > 0 {
        return Err(CliError::new(
            "BUS_CORRUPT",
            format!("{} has damaged batches", path.display()),
        ));
    }
    Ok(())
}

fn verify(bus: &Bus, topic: Option<&str>, ctx: &Ctx) -> anyhow::Result<()> {
    let report = inspect::verify(bus, topic)?;
    let error = report.error();
    let mut v = serde_json::to_value(&report)?;
    v["ok"] = json!(error.is_none());
    ctx.emit(&v, || {
        let mut s = String::new();
        for p in &report.partitions {
            s.push_str(&format!(
                "{}/{}: {} segments, {} batches, {} records, {} bytes, end offset {}: {}\n",
                p.topic,
                p.partition,
                p.segments,
                p.batches,
                p.records,
                p.bytes,
                p.end_offset,
                if p.problems.is_empty() {
                    "ok"
                } else {
                    "DAMAGED"
                }
            ));
            for pr in &p.problems {
                s.push_str(&format!(
                    "  {} in {} at byte {}: {}\n",
                    pr.kind,
                    pr.segment.display(),
                    pr.position,
                    pr.detail
                ));
            }
        }
        if report.partitions.is_empty() {
            s.push_str("no topics\n");
        }
        s.trim_end().to_string()
    });
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn recover(bus: &Bus, topic: Option<&str>, ctx: &Ctx) -> anyhow::Result<()> {
    let reports = inspect::recover(bus, topic)?;
    ctx.emit(&json!({ "partitions": reports }), || {
        let mut s = String::new();
        for r in &reports {
            match &r.cut {
                None => s.push_str(&format!(
                    "{}: intact, {} segments, end offset {}, {} indexes rebuilt\n",
                    r.dir.display(),
                    r.segments,
                    r.end_offset,
                    r.indexes_rebuilt
                )),
                Some(c) => {
                    s.push_str(&format!(
                        "{}: CUT {} at byte {} ({}): {} bytes removed, offsets {}..{} lost, end offset now {}\n",
                        r.dir.display(),
                        c.segment.display(),
                        c.position,
                        c.reason,
                        c.bytes_cut,
                        c.offsets_lost_from,
                        c.offsets_lost_until,
                        r.end_offset
                    ));
                    for d in &c.segments_deleted {
                        s.push_str(&format!("  deleted {}\n", d.display()));
                    }
                }
            }
        }
        if reports.is_empty() {
            s.push_str("no topics\n");
        }
        s.trim_end().to_string()
    });
    Ok(())
}
