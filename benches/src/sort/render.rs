//! The sort benchmark's report as text for people: input and machine first (the numbers mean
//! nothing without them), then the table, the targets, the row check, failures and the exact
//! commands.

use std::fmt::Write;

use super::contenders::ContenderKind;
use super::report::{mib, ContenderResult, RunStatus, SortBenchReport, Verdict};

/// The whole report as text.
pub fn render_text(r: &SortBenchReport) -> String {
    let mut out = String::new();
    // `write!` to a String cannot fail; the results are ignored on purpose.
    let _ = header(&mut out, r);
    let _ = table(&mut out, &r.contenders, r.machine.nproc);
    let _ = targets(&mut out, r);
    let _ = rows_check(&mut out, r);
    let _ = failures(&mut out, &r.contenders);
    let _ = commands(&mut out, r);
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(out, "report: {}", r.report_path.display());
    out
}

fn header(out: &mut String, r: &SortBenchReport) -> std::fmt::Result {
    let i = &r.input;
    if let Some(pattern) = &i.pattern {
        writeln!(
            out,
            "sluice bench sort: {pattern} ({} rows in {} files, {:.1} MiB; sluice sorts it \
             with --input as view {})",
            i.rows,
            i.files.len(),
            mib(i.bytes),
            i.output_id,
        )?;
    } else {
        writeln!(
            out,
            "sluice bench sort: {} ({} rows asked, seed {}) in {} files, {:.1} MiB at {}; {}",
            i.output_id,
            r.config.rows,
            r.config.seed,
            i.files.len(),
            mib(i.bytes),
            i.dir.display(),
            match i.gen_wall_s {
                Some(s) if i.generated => format!("generated now in {s:.1} s"),
                _ => "reused".to_string(),
            },
        )?;
    }
    let m = &r.machine;
    writeln!(
        out,
        "machine: {} threads, {} RAM, {}, kernel {}; load {} at start, {} at end",
        m.nproc,
        m.mem_total_bytes
            .map(|b| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)))
            .unwrap_or_else(|| "? GiB".into()),
        m.cpu_model.as_deref().unwrap_or("unknown CPU"),
        m.kernel.as_deref().unwrap_or("?"),
        load(m.loadavg),
        load(r.loadavg_end),
    )?;
    let v = &r.versions;
    writeln!(
        out,
        "sluice {} ({} build), duckdb {}, polars {}; memory limit {}; threads {}; {} run(s) \
         per contender, fastest shown",
        v.sluice,
        r.config.sluice_build,
        v.duckdb.as_deref().unwrap_or("-"),
        v.polars.as_deref().unwrap_or("-"),
        r.config.memory_limit,
        r.config
            .threads
            .map(|t| t.to_string())
            .unwrap_or_else(|| "default".into()),
        r.config.repeat,
    )?;
    writeln!(out, "cache: {}", r.cache)?;
    writeln!(out)
}

fn load(l: Option<[f64; 3]>) -> String {
    match l {
        Some([a, b, c]) => format!("{a:.2} {b:.2} {c:.2}"),
        None => "?".into(),
    }
}

fn table(out: &mut String, rows: &[ContenderResult], nproc: usize) -> std::fmt::Result {
    const HEAD: [&str; 9] = [
        "contender",
        "status",
        "wall s",
        "cpu s",
        "others %",
        "peak RSS MiB",
        "rows/s",
        "x sluice",
        "rows",
    ];
    line(out, HEAD.map(String::from))?;
    for c in rows {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
        line(
            out,
            [
                c.name.clone(),
                status(c.status).to_string(),
                or_dash(c.wall_s.map(|w| format!("{w:.2}"))),
                or_dash(c.cpu_s.map(|s| format!("{s:.2}"))),
                or_dash(others_share(c, nproc).map(|p| format!("{p:.0}"))),
                or_dash(c.peak_rss_bytes.map(|b| format!("{:.1}", mib(b)))),
                or_dash(c.rows_per_s.map(human_rate)),
                or_dash(c.ratio_vs_sluice.map(|x| format!("{x:.2}"))),
                or_dash(c.rows.map(|n| n.to_string())),
            ],
        )?;
    }
    writeln!(
        out,
        "(cpu s: the contender's user+system CPU; others %: share of all {nproc} cores other \
         processes used during its run)"
    )?;
    writeln!(out)
}

fn line(out: &mut String, cells: [String; 9]) -> std::fmt::Result {
    let [name, status, rest @ ..] = cells;
    write!(out, "{name:<26} {status:<8}")?;
    for (cell, width) in rest.iter().zip([8, 7, 8, 12, 9, 8, 10]) {
        write!(out, " {cell:>width$}")?;
    }
    writeln!(out)
}

/// Percent of the machine's CPU capacity other processes used during the contender's run.
pub fn others_share(c: &ContenderResult, nproc: usize) -> Option<f64> {
    let wall = c.wall_s.filter(|w| *w > 0.0)?;
    Some(100.0 * c.others_cpu_s? / (wall * nproc.max(1) as f64))
}

fn status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Ok => "OK",
        RunStatus::Failed => "FAILED",
        RunStatus::Skipped => "SKIPPED",
    }
}

fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

fn targets(out: &mut String, r: &SortBenchReport) -> std::fmt::Result {
    writeln!(out, "targets (issue 3):")?;
    for t in &r.targets {
        let v = match t.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unmeasured => "UNMEASURED",
        };
        writeln!(out, "  {v:<10} {}: {}", t.target, t.detail)?;
    }
    writeln!(out)
}

fn rows_check(out: &mut String, r: &SortBenchReport) -> std::fmt::Result {
    let Some(sluice_rows) = r
        .contenders
        .iter()
        .find(|c| c.kind == ContenderKind::Sluice)
        .and_then(|c| c.rows)
    else {
        return writeln!(out, "rows: sluice did not run, nothing to compare\n");
    };
    writeln!(out, "rows (each output vs sluice's {sluice_rows}):")?;
    for c in r
        .contenders
        .iter()
        .filter(|c| c.kind != ContenderKind::Sluice)
    {
        if let (Some(n), Some(same)) = (c.rows, c.rows_match_sluice) {
            let verdict = if same { "equal" } else { "DIFFERENT" };
            writeln!(out, "  {:<26} {n} rows, {verdict}", c.name)?;
        }
    }
    writeln!(out)
}

fn failures(out: &mut String, rows: &[ContenderResult]) -> std::fmt::Result {
    for c in rows {
        match c.status {
            RunStatus::Failed => {
                writeln!(
                    out,
                    "FAILED {}: {}",
                    c.name,
                    c.note.as_deref().unwrap_or("")
                )?;
                for line in c.stderr_tail.as_deref().unwrap_or("").lines() {
                    writeln!(out, "  | {line}")?;
                }
                if let Some(path) = &c.stderr_path {
                    writeln!(out, "  (whole stderr: {})", path.display())?;
                }
            }
            RunStatus::Skipped => writeln!(
                out,
                "SKIPPED {}: {}",
                c.name,
                c.note.as_deref().unwrap_or("")
            )?,
            RunStatus::Ok => {}
        }
    }
    Ok(())
}

fn commands(out: &mut String, r: &SortBenchReport) -> std::fmt::Result {
    writeln!(out, "commands:")?;
    if let Some(gen) = &r.input.gen_command {
        writeln!(out, "  gen: {gen}")?;
    }
    for c in &r.contenders {
        if let Some(cmd) = &c.command {
            writeln!(out, "  {} ({}): {cmd}", c.name, c.what)?;
        }
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::machine::MachineFacts;
    use crate::sort::data::InputData;
    use crate::sort::report::{ConfigEcho, TargetCheck, ToolVersions};

    fn row(kind: ContenderKind, status: RunStatus, wall: Option<f64>) -> ContenderResult {
        ContenderResult {
            kind,
            name: format!("{kind:?}").to_lowercase(),
            what: "does things".into(),
            status,
            wall_s: wall,
            wall_samples_s: wall.into_iter().collect(),
            cpu_s: wall.map(|w| w * 1.5),
            others_cpu_s: wall.map(|w| w / 2.0),
            peak_rss_bytes: wall.map(|_| 512 << 20),
            rows: wall.map(|_| 1000),
            output_bytes: None,
            rows_per_s: wall.map(|w| 1000.0 / w),
            ratio_vs_sluice: wall.map(|w| w / 2.0),
            rows_match_sluice: wall.map(|_| true),
            command: Some(format!("run-{kind:?}")),
            note: (status != RunStatus::Ok).then(|| "why not".to_string()),
            stderr_tail: (status == RunStatus::Failed).then(|| "error[X]: boom".to_string()),
            stderr_path: (status == RunStatus::Failed).then(|| "/w/polars.stderr.txt".into()),
            summary: None,
        }
    }

    fn report() -> SortBenchReport {
        SortBenchReport {
            bench: "sort",
            report_version: 1,
            started_utc: "2026-01-01T00:00:00.000000Z".into(),
            elapsed_s: 1.0,
            config: ConfigEcho {
                input: None,
                sort_key: "ts_utc".into(),
                rows: 1000,
                files: 2,
                seed: 1,
                memory_limit: "1GiB".into(),
                threads: None,
                repeat: 1,
                sluice_bin: "sluice".into(),
                sluice_build: "release".into(),
                python: "python3".into(),
                work_dir: "/w".into(),
            },
            versions: ToolVersions {
                sluice: "0.1.0".into(),
                duckdb: Some("2.0.1".into()),
                polars: None,
            },
            machine: MachineFacts {
                nproc: 2,
                mem_total_bytes: Some(24 << 30),
                cpu_model: Some("Test CPU".into()),
                kernel: None,
                loadavg: Some([0.5, 0.25, 0.1]),
                mem_free_bytes: None,
                free_page_reporting: None,
            },
            loadavg_end: None,
            input: InputData {
                dir: "/d".into(),
                pattern: None,
                output_id: "s3_event_stream_with_fraud_6B".into(),
                rows: 1000,
                files: vec![PathBuf::from("/d/a"), PathBuf::from("/d/b")],
                bytes: 3 << 20,
                generated: false,
                gen_command: None,
                gen_wall_s: None,
            },
            cache: "warm".into(),
            contenders: vec![
                row(ContenderKind::Sluice, RunStatus::Ok, Some(2.0)),
                row(ContenderKind::Duckdb, RunStatus::Ok, Some(9.0)),
                row(ContenderKind::Polars, RunStatus::Failed, None),
            ],
            targets: vec![TargetCheck {
                target: "sluice >= 4x faster than DuckDB".into(),
                verdict: Verdict::Pass,
                measured: Some(4.5),
                threshold: 4.0,
                detail: "9.00 s / sluice 2.00 s = 4.50x".into(),
            }],
            rows_comparable: Some(true),
            notes: vec!["a caveat".into()],
            report_path: "/w/bench-sort.json".into(),
        }
    }

    #[test]
    fn a_given_input_is_named_by_its_pattern_and_row_count() {
        let mut r = report();
        r.input.pattern = Some("/data/*.parquet".into());
        r.input.output_id = "bench_input".into();
        r.input.rows = 777;
        let text = render_text(&r);
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            "sluice bench sort: /data/*.parquet (777 rows in 2 files, 3.0 MiB; sluice sorts it \
             with --input as view bench_input)"
        );
    }

    #[test]
    fn text_shows_machine_table_targets_failures_and_commands() {
        let report = report();
        let text = render_text(&report);
        for needle in [
            "2 files, 3.0 MiB",
            "2 threads, 24.0 GiB RAM, Test CPU",
            "sluice 0.1.0 (release build), duckdb 2.0.1, polars -;",
            "load 0.50 0.25 0.10 at start",
            "peak RSS MiB",
            "PASS       sluice >= 4x faster than DuckDB: 9.00 s / sluice 2.00 s = 4.50x",
            "duckdb                     1000 rows, equal",
            "FAILED polars: why not",
            "  | error[X]: boom\n  (whole stderr: /w/polars.stderr.txt)",
            "run-Duckdb",
            "note: a caveat",
            "report: /w/bench-sort.json",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        let duck = text.lines().find(|l| l.starts_with("duckdb "));
        let cols: Vec<&str> = duck
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        assert_eq!(
            cols,
            ["duckdb", "OK", "9.00", "13.50", "25", "512.0", "111", "4.50", "1000"]
        );
    }
}
