//! From each harness's own report to a neutral [`Section`]: which columns a reader needs,
//! which charts (time, peak memory, throughput, ratios), and the targets with verdicts.
//! Only presentation: every number comes from the harness unchanged.

use crate::bus::BusBenchReport;
use crate::replay::{Contender, ReplayBenchReport};
use crate::sort::{RunStatus, SortBenchReport, Verdict as SortVerdict};

use super::model::{
    mib, rate, ratio, secs, to_mib, Bar, BarChart, Better, Section, Table, TargetLine, Verdict,
};

/// Which benchmark a section is: its key, title and what it measures.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub bench: &'static str,
    pub title: &'static str,
    pub measures: &'static str,
}

pub const SORT: Identity = Identity {
    bench: "sort",
    title: SORT_TITLE,
    measures: SORT_MEASURES,
};
pub const BUS: Identity = Identity {
    bench: "bus",
    title: BUS_TITLE,
    measures: BUS_MEASURES,
};
pub const REPLAY: Identity = Identity {
    bench: "replay",
    title: REPLAY_TITLE,
    measures: REPLAY_MEASURES,
};

pub const SORT_TITLE: &str = "Sort: engine output to stream view";
pub const SORT_MEASURES: &str = "Wall time and peak memory to sort one traffic output \
    (s3_event_stream_with_fraud_6B) by (ts_utc, file, row) into parquet: sluice against the \
    platform's legacy DuckDB query (default and memory_limit=1GiB), Polars, and sluice's own \
    copy floor (read + write the same rows, no sort). Each is a separate process on the same \
    warm input.";
pub const BUS_TITLE: &str = "File bus: append and read throughput";
pub const BUS_MEASURES: &str = "Durable append throughput of the file bus (fsync per batch, \
    group commit, pipelined; 1 KiB and 100-byte values) against dd conv=fsync of the same \
    bytes, reads from the page cache, and the legacy bus pattern (one JSON line + fsync per \
    event). In-process cases: no per-case peak memory.";
/// The platform's legacy replay rate quoted by issue 5 (events/s on its bus alone).
pub const LEGACY_EVENTS_PER_S: &str = "7,000";
pub const REPLAY_TITLE: &str = "Replay: stream view through the gate into the bus";
pub const REPLAY_MEASURES: &str = "End-to-end `sluice replay --max` (read the view, envelope, \
    validate, dedupe, append to the bus with fsync per group, receipts, checkpoints) against \
    its decode floor (`--decode-only`: the same reader and pacing, nothing downstream).";

/// The sort harness's report as a section.
pub fn sort_section(r: &SortBenchReport, reproduce: String) -> Section {
    let mut s = Section::of(&SORT, reproduce);
    s.inputs = format!(
        "{} rows of {} in {} files ({:.1} MiB), seed {}, sluice --memory-limit {}, {} run(s) \
         per contender (fastest kept), sluice {} build",
        r.config.rows,
        r.input.output_id,
        r.input.files.len(),
        to_mib(r.input.bytes),
        r.config.seed,
        r.config.memory_limit,
        r.config.repeat,
        r.config.sluice_build
    );
    let header = [
        "contender",
        "status",
        "wall s",
        "CPU s",
        "others' CPU s",
        "peak MiB",
        "rows/s",
        "time vs sluice",
    ];
    let rows = r
        .contenders
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                status_cell(c.status, c.note.as_deref()),
                secs(c.wall_s),
                secs(c.cpu_s),
                secs(c.others_cpu_s),
                mib(c.peak_rss_bytes),
                rate(c.rows_per_s),
                ratio(c.ratio_vs_sluice),
            ]
        })
        .collect();
    s.table = Some(table(&header, rows));
    let bars = |value: &dyn Fn(&crate::sort::ContenderResult) -> Option<f64>| {
        r.contenders
            .iter()
            .map(|c| Bar {
                label: c.name.clone(),
                value: value(c),
                note: (c.status != RunStatus::Ok).then(|| status_cell(c.status, c.note.as_deref())),
                is_sluice: c.name.starts_with("sluice"),
            })
            .collect()
    };
    s.charts = time_and_memory(
        "Sort",
        bars(&|c| c.wall_s),
        bars(&|c| c.peak_rss_bytes.map(to_mib)),
        chart(
            "Sort time relative to sluice",
            "x",
            Better::Lower,
            bars(&|c| c.ratio_vs_sluice),
        ),
    );
    s.targets = r
        .targets
        .iter()
        .map(|t| TargetLine {
            target: t.target.clone(),
            verdict: match t.verdict {
                SortVerdict::Pass => Verdict::Pass,
                SortVerdict::Fail => Verdict::Fail,
                SortVerdict::Unmeasured => Verdict::Unmeasured,
            },
            detail: t.detail.clone(),
        })
        .collect();
    s.notes = r.notes.clone();
    if r.rows_comparable == Some(false) {
        s.notes
            .push("not every contender wrote as many rows as sluice: see the table".into());
    }
    s
}

/// The bus harness's report as a section.
pub fn bus_section(r: &BusBenchReport, reproduce: String) -> Section {
    let mut s = Section::of(&BUS, reproduce);
    s.inputs = format!(
        "{} MiB of values per case, {} KiB per append_batch call, {} appender threads in the \
         group-commit cases, {} legacy events, best of {} round(s), on the disk of {}",
        r.config.bytes >> 20,
        r.config.batch_bytes >> 10,
        r.config.appenders,
        r.config.legacy_events,
        r.config.repeat.max(1),
        r.config.dir.display()
    );
    let dd = r.cases.iter().find(|c| c.name.starts_with("dd"));
    let vs_dd = |mb: f64| dd.map(|d| mb / d.mb_per_s.max(1e-9));
    let header = [
        "case",
        "records",
        "MiB",
        "seconds",
        "MB/s",
        "records/s",
        "bandwidth vs dd",
    ];
    let rows = r
        .cases
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.records.to_string(),
                format!("{:.1}", to_mib(c.bytes)),
                format!("{:.3}", c.seconds),
                format!("{:.1}", c.mb_per_s),
                rate(Some(c.records_per_s)),
                ratio(vs_dd(c.mb_per_s)),
            ]
        })
        .collect();
    s.table = Some(table(&header, rows));
    let is_sluice = |name: &str| name.starts_with("append") || name.starts_with("read");
    let writes = |name: &str| !name.starts_with("read");
    s.charts = vec![
        chart(
            "Bus write bandwidth (durable unless marked no fsync)",
            "MB/s",
            Better::Higher,
            r.cases
                .iter()
                .filter(|c| writes(&c.name))
                .map(|c| value_bar(&c.name, c.mb_per_s, is_sluice(&c.name)))
                .collect(),
        ),
        chart(
            "Bus records per second (appends vs legacy events)",
            "rec/s",
            Better::Higher,
            r.cases
                .iter()
                .filter(|c| c.records > 0 && writes(&c.name))
                .map(|c| value_bar(&c.name, c.records_per_s, is_sluice(&c.name)))
                .collect(),
        ),
        chart(
            "Bus read bandwidth (page cache)",
            "MB/s",
            Better::Higher,
            r.cases
                .iter()
                .filter(|c| !writes(&c.name))
                .map(|c| value_bar(&c.name, c.mb_per_s, true))
                .collect(),
        ),
    ];
    s.targets = r
        .targets
        .iter()
        .map(|t| TargetLine {
            target: t.what.clone(),
            verdict: Verdict::from_pass(Some(t.met)),
            detail: format!("got {:.3}, need >= {}", t.got, t.wanted),
        })
        .collect();
    s.notes.push(format!(
        "best durable 1 KiB append: {:.2}x dd's bandwidth, {:.0}x the legacy pattern's events/s",
        r.append_1k_vs_dd, r.append_1k_vs_legacy
    ));
    s
}

/// The replay harness's report as a section.
pub fn replay_section(r: &ReplayBenchReport, reproduce: String) -> Section {
    let mut s = Section::of(&REPLAY, reproduce);
    s.inputs = format!(
        "{} rows of {} ({} MiB of view, {} source files, seed {}), {} partitions, dedupe \
         memory {}, {} run(s) per contender (fastest kept), sluice {} build",
        r.config.rows,
        crate::replay::OUTPUT_ID,
        r.input.view_bytes >> 20,
        r.config.files,
        r.config.seed,
        r.config.partitions,
        r.config.dedupe_memory,
        r.config.repeat,
        r.config.sluice_build
    );
    let contenders = [&r.decode, &r.replay];
    let header = [
        "contender",
        "status",
        "wall s",
        "CPU s",
        "others' CPU s",
        "events/s",
        "peak MiB",
        "time vs decode floor",
    ];
    let rows = contenders
        .iter()
        .map(|c| {
            let b = c.best.as_ref();
            let vs_floor = b
                .zip(r.decode.best.as_ref())
                .map(|(b, d)| b.wall_s / d.wall_s.max(1e-9));
            vec![
                c.name.clone(),
                replay_status(c),
                secs(b.map(|b| b.wall_s)),
                secs(b.and_then(|b| b.cpu_s)),
                secs(b.and_then(|b| b.others_cpu_s)),
                rate(b.and_then(|b| b.events_per_s)),
                mib(b.and_then(|b| b.peak_rss_bytes)),
                ratio(vs_floor),
            ]
        })
        .collect();
    s.table = Some(table(&header, rows));
    let bars = |value: &dyn Fn(&crate::replay::RunResult) -> Option<f64>| {
        contenders
            .iter()
            .map(|c| Bar {
                label: c.name.clone(),
                value: c.best.as_ref().and_then(value),
                note: c.best.is_none().then(|| replay_status(c)),
                is_sluice: c.name.contains("replay --max"),
            })
            .collect()
    };
    s.charts = time_and_memory(
        "Replay",
        bars(&|b| Some(b.wall_s)),
        bars(&|b| b.peak_rss_bytes.map(to_mib)),
        chart(
            "Replay events per second",
            "ev/s",
            Better::Higher,
            bars(&|b| b.events_per_s),
        ),
    );
    s.targets = r
        .targets
        .iter()
        .map(|t| TargetLine {
            target: t.target.clone(),
            verdict: Verdict::from_pass(t.pass),
            detail: format!(
                "measured {}, threshold {}",
                t.measured.map_or("-".into(), |m| format!("{m:.2}")),
                t.threshold
            ),
        })
        .collect();
    s.notes.push(format!(
        "legacy reference (issue 5, not measured here): the platform's path manages about \
         {LEGACY_EVENTS_PER_S} events/s on its bus alone; the bus benchmark measures that \
         pattern in this run"
    ));
    if r.config.sluice_build == "debug" {
        s.notes.push(
            "sluice is a debug build: its times are not representative (use a release build)"
                .into(),
        );
    }
    s
}

fn replay_status(c: &Contender) -> String {
    match (&c.best, c.runs.last()) {
        (Some(_), _) => "OK".into(),
        (None, Some(last)) => format!("FAILED ({})", last.status),
        (None, None) => "not run".into(),
    }
}

fn status_cell(status: RunStatus, note: Option<&str>) -> String {
    match (status, note) {
        (RunStatus::Ok, _) => "OK".into(),
        (RunStatus::Failed, Some(n)) => format!("FAILED ({n})"),
        (RunStatus::Failed, None) => "FAILED".into(),
        (RunStatus::Skipped, Some(n)) => format!("SKIPPED ({n})"),
        (RunStatus::Skipped, None) => "SKIPPED".into(),
    }
}

fn value_bar(label: &str, value: f64, is_sluice: bool) -> Bar {
    Bar {
        label: label.to_string(),
        value: Some(value),
        note: None,
        is_sluice,
    }
}

/// The charts of a benchmark of separate processes: wall time, peak memory, and one more.
fn time_and_memory(what: &str, time: Vec<Bar>, memory: Vec<Bar>, third: BarChart) -> Vec<BarChart> {
    vec![
        chart(&format!("{what} wall time"), "s", Better::Lower, time),
        chart(
            &format!("{what} peak memory (RSS)"),
            "MiB",
            Better::Lower,
            memory,
        ),
        third,
    ]
}

fn chart(title: &str, unit: &str, better: Better, bars: Vec<Bar>) -> BarChart {
    BarChart {
        title: title.to_string(),
        unit: unit.to_string(),
        better,
        bars,
    }
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}
