//! `sluice replay`: stream views through the in-process gate into the bus (by default the
//! file bus under the run root, `runs/<platform>/<platform_run_id>/{eb,ig,wsp}`; `--bus`
//! chooses another). Parsing and printing only; the session is
//! [`sluice_ingest::replay::run`].

pub mod session;

use std::path::PathBuf;
use std::time::Duration;

use sluice_ingest::bus_target::BusTarget;
use sluice_storage::run::DEFAULT_PLATFORM;
use sluice_storage::timefmt::parse_rfc3339_micros;
use sluice_stream::pacing::{Pacing, PacingConfig};
use sluice_stream::reader::TimeWindow;

use crate::cli::Ctx;
use crate::errors::CliError;
use session::{ReplayOptions, ReplaySummary};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["output_id", "all"])))]
#[command(group(clap::ArgGroup::new("pace").args(["speedup", "max"])))]
pub struct Args {
    /// The engine run root (holds run_receipt.json and stream_view/).
    #[arg(long)]
    pub engine_root: PathBuf,
    /// Output ids to replay (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub output_id: Vec<String>,
    /// Replay every output that has a stream view.
    #[arg(long)]
    pub all: bool,
    /// Stream view root [default: <engine-root>/stream_view/ts_utc].
    #[arg(long)]
    pub view_root: Option<PathBuf>,
    /// Directory holding the run trees.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Platform name: the <platform> level of runs/<platform>/<platform_run_id>/.
    #[arg(long, default_value = DEFAULT_PLATFORM)]
    pub platform: String,
    /// Where admitted events go: `file:DIR`, or `kafka://host:port[,host:port]`
    /// [default: the file bus under the run root, <run_root>/eb].
    #[arg(long)]
    pub bus: Option<String>,
    /// With a kafka:// bus: the topics must already exist (KAFKA_TOPIC_NOT_FOUND otherwise)
    /// instead of being created with --partitions.
    #[arg(long)]
    pub no_create_topics: bool,
    /// Scenario seconds per wall second (the platform uses 600); <= 0 means no waiting.
    #[arg(long, default_value_t = 600.0, allow_negative_numbers = true)]
    pub speedup: f64,
    /// No waiting at all: replay as fast as the gate and the bus go.
    #[arg(long)]
    pub max: bool,
    /// Cap in events per second (per output clock; one clock with --merge).
    #[arg(long)]
    pub rate: Option<f64>,
    /// One global time order across outputs instead of one clock per output.
    #[arg(long)]
    pub merge: bool,
    /// Replay events with ts_utc >= this (RFC 3339).
    #[arg(long)]
    pub from_ts: Option<String>,
    /// Replay events with ts_utc < this (RFC 3339).
    #[arg(long)]
    pub until_ts: Option<String>,
    /// Stop after this many events (over all outputs).
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Continue each output after its checkpoint (at-least-once; the gate dedupes).
    #[arg(long)]
    pub resume: bool,
    /// Write checkpoints every N durable events...
    #[arg(long, default_value_t = 100_000)]
    pub checkpoint_every: u64,
    /// ...or every this many milliseconds, whichever comes first (and at the end).
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_ms: u64,
    /// Partitions of the topics this run creates (existing topics keep theirs).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Memory for the dedupe index (filter + memtables), e.g. 256MiB, 2GiB.
    #[arg(long, default_value = "256MiB")]
    pub dedupe_memory: String,
    /// The run_id pin [default: run_id of run_receipt.json, else the engine run's pack key].
    #[arg(long)]
    pub run_id: Option<String>,
    /// The scenario_run_id pin [default: sha256(platform_run_id|run_id|scenario_id)[..32]].
    #[arg(long)]
    pub scenario_run_id: Option<String>,
    /// The envelope's producer.
    #[arg(long, default_value = "sluice-wsp")]
    pub producer: String,
    /// Rows per decoded batch (small batches stay in the CPU caches between the gate's
    /// stages: measured less CPU and a third of the memory than 8192).
    #[arg(long, default_value_t = 1024)]
    pub batch_rows: usize,
    /// Only read (and pace) the views; no gate, no bus, no run directory. The decode floor
    /// that `sluice bench replay` compares against.
    #[arg(long)]
    pub decode_only: bool,
}

/// `256MiB`, `2GiB`, `512MB`, `1000000` -> bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

fn parse_ts(flag: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => parse_rfc3339_micros(s).map(Some).ok_or_else(|| {
            CliError::new(
                "INVALID_ARGUMENT",
                format!("{flag} {s:?} is not an RFC 3339 time"),
            )
        }),
    }
}

/// Flags -> options, with the checks clap cannot express.
pub fn options(args: Args) -> anyhow::Result<ReplayOptions> {
    let bad = |m: String| CliError::new("INVALID_ARGUMENT", m);
    let dedupe_memory = parse_size(&args.dedupe_memory).ok_or_else(|| {
        bad(format!(
            "--dedupe-memory {:?} is not a size",
            args.dedupe_memory
        ))
    })?;
    if dedupe_memory < (1 << 20) {
        return Err(bad("--dedupe-memory must be at least 1MiB".into()));
    }
    if args.partitions == 0 || args.partitions > 1024 {
        return Err(bad("--partitions must be 1 to 1024".into()));
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(bad("--rate must be a positive number".into()));
    }
    let window = TimeWindow {
        from: parse_ts("--from-ts", &args.from_ts)?,
        until: parse_ts("--until-ts", &args.until_ts)?,
    };
    if let (Some(f), Some(u)) = (window.from, window.until) {
        if f >= u {
            return Err(bad("--from-ts must be before --until-ts".into()));
        }
    }
    let pacing = if args.max {
        Pacing::Max
    } else {
        Pacing::from_speedup(args.speedup)
    };
    let mut outputs: Vec<String> = Vec::new();
    for id in args.output_id {
        if !outputs.contains(&id) {
            outputs.push(id);
        }
    }
    let mut bus = match &args.bus {
        Some(url) => BusTarget::parse(url)?,
        None => BusTarget::RunDefault,
    };
    if args.no_create_topics {
        bus.no_create_topics().map_err(|why| bad(why.into()))?;
    }
    Ok(ReplayOptions {
        engine_root: args.engine_root,
        bus,
        view_root: args.view_root,
        outputs: if args.all { Vec::new() } else { outputs },
        runs_dir: args.runs_dir,
        platform: args.platform,
        pacing: PacingConfig {
            pacing,
            rate: args.rate,
        },
        merge: args.merge,
        window,
        max_events: args.max_events,
        resume: args.resume,
        checkpoint_every: args.checkpoint_every,
        checkpoint_interval: Duration::from_millis(args.checkpoint_ms.max(1)),
        partitions: args.partitions,
        dedupe_memory,
        run_id: args.run_id,
        scenario_run_id: args.scenario_run_id,
        producer: args.producer,
        batch_rows: args.batch_rows.max(1),
        decode_only: args.decode_only,
    })
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let opts = options(args)?;
    let bar = crate::progress::bar(ctx, 0, "replay", "events");
    // Per output, every second: events/s since the last update and the lag behind the
    // scenario clock (paced replays), one line each under the bar.
    let last = std::sync::Mutex::new((std::time::Instant::now(), Vec::<u64>::new()));
    let tick = |live: &session::Live| {
        let emitted: u64 = live.outputs.iter().map(|o| o.1).sum();
        bar.set_length(live.total);
        bar.set_position(emitted);
        if let Ok(mut l) = last.lock() {
            let dt = l.0.elapsed().as_secs_f64();
            if dt >= 1.0 {
                l.1.resize(live.outputs.len(), 0);
                let lines: Vec<String> = live
                    .outputs
                    .iter()
                    .zip(&l.1)
                    .map(|((id, n, lag), before)| {
                        let rate = n.saturating_sub(*before) as f64 / dt;
                        let lag = lag.map_or(String::new(), |s| format!("  lag {s:.1}s"));
                        format!(
                            "\n  {id:<32} {:>13} events {:>12}{lag}",
                            indicatif::HumanCount(*n).to_string(),
                            crate::progress::per_second(rate)
                        )
                    })
                    .collect();
                bar.set_message(lines.concat());
                *l = (
                    std::time::Instant::now(),
                    live.outputs.iter().map(|o| o.1).collect(),
                );
            }
        }
    };
    let summary = session::run(&opts, &tick)?;
    bar.finish_and_clear();
    ctx.emit(&serde_json::to_value(&summary)?, || human(&summary));
    Ok(())
}

fn human(s: &ReplaySummary) -> String {
    let head = if s.gate.is_none() {
        format!(
            "decoded only (no gate, no bus) from {}",
            s.engine_root.display()
        )
    } else {
        format!(
            "replayed into {} under {} (platform_run_id {}, run_id {}, scenario_run_id {})",
            s.bus,
            s.run_root.display(),
            s.platform_run_id,
            s.run_id,
            s.scenario_run_id
        )
    };
    let mut lines = vec![
        head,
        format!(
            "{:<32} {:>10} {:>10} {:>10} {:>11}  {}",
            "output", "emitted", "admitted", "duplicate", "quarantined", "start"
        ),
    ];
    for o in &s.outputs {
        let start = if o.resumed {
            format!("resumed at part {} row {}", o.start_part, o.start_row)
        } else {
            "beginning".into()
        };
        lines.push(format!(
            "{:<32} {:>10} {:>10} {:>10} {:>11}  {start}",
            o.output_id, o.emitted, o.admitted, o.duplicates, o.quarantined
        ));
        if !o.by_reason.is_empty() {
            let r: Vec<String> = o
                .by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            lines.push(format!("{:<32} quarantined: {}", "", r.join(", ")));
        }
    }
    lines.push(format!(
        "{} events in {:.2} s ({:.0} events/s); {} admitted, {} duplicate, {} quarantined",
        s.events, s.elapsed_s, s.events_per_s, s.admitted, s.duplicates, s.quarantined
    ));
    if s.gate_open.reconcile.receipts_restored > 0 {
        lines.push(format!(
            "reconciled {} bus records whose receipts a crash had lost",
            s.gate_open.reconcile.receipts_restored
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1.5 GiB"), Some(3 << 29));
        assert_eq!(parse_size("lots"), None);
    }
}
