//! Rendering on fixed inputs: every benchmark appears in the HTML and the markdown, the HTML
//! is well-formed and self-contained, harness reports map to the right rows and verdicts.

use std::path::PathBuf;

use super::model::{Bar, BarChart, Better, Section, SectionStatus, Table, TargetLine, Verdict};
use super::svg::tests::check_well_formed;
use super::*;
use crate::bus::{BusBenchReport, Measurement, Target};
use crate::replay::{Contender, Input, RunResult, TargetCheck};

fn machine() -> MachineFacts {
    MachineFacts {
        nproc: 2,
        mem_total_bytes: Some(24 << 30),
        cpu_model: Some("Test CPU <AVX-512> & co".into()),
        kernel: Some("6.1".into()),
        loadavg: Some([0.5, 0.4, 0.3]),
        mem_free_bytes: Some(20 << 30),
        free_page_reporting: Some(true),
    }
}

fn measurement(name: &str, records: u64, bytes: u64, seconds: f64) -> Measurement {
    Measurement {
        name: name.into(),
        records,
        bytes,
        seconds,
        mb_per_s: bytes as f64 / seconds / 1e6,
        records_per_s: records as f64 / seconds,
    }
}

fn bus_report() -> BusBenchReport {
    BusBenchReport {
        machine: machine(),
        loadavg_after: None,
        config: BusBenchConfig {
            dir: PathBuf::from("/w/bus"),
            bytes: 256 << 20,
            batch_bytes: 4 << 20,
            legacy_events: 2000,
            appenders: 2,
            repeat: 3,
        },
        cases: vec![
            measurement("dd conv=fsync", 0, 200_000_000, 0.2),
            measurement("append 1 KiB, fsync/batch", 200_000, 200_000_000, 0.4),
            measurement("read 1 KiB (page cache)", 200_000, 200_000_000, 0.1),
            measurement("legacy JSON line + fsync", 2000, 2_100_000, 0.5),
        ],
        append_1k_vs_dd: 0.5,
        append_1k_vs_legacy: 125.0,
        targets: vec![Target {
            what: "append 1 KiB / dd bandwidth".into(),
            wanted: 0.7,
            got: 0.5,
            met: false,
        }],
    }
}

fn run(wall_s: f64, events: u64, peak: u64) -> RunResult {
    RunResult {
        success: true,
        status: "exit status: 0".into(),
        wall_s,
        cpu_s: Some(wall_s),
        others_cpu_s: Some(0.0),
        events: Some(events),
        events_per_s: Some(events as f64 / wall_s),
        peak_rss_bytes: Some(peak),
        stderr_tail: String::new(),
    }
}

fn replay_report() -> ReplayBenchReport {
    let contender = |name: &str, best: Option<RunResult>| Contender {
        name: name.into(),
        command: "sluice replay".into(),
        runs: best.iter().cloned().collect(),
        best,
    };
    ReplayBenchReport {
        started_utc: "2026-11-27T06:00:00.000000Z".into(),
        machine: machine(),
        config: ReplayBenchConfig::new("/bin/sluice"),
        input: Input {
            engine_root: PathBuf::from("/d"),
            view_dir: PathBuf::from("/d/v"),
            view_bytes: 64 << 20,
            prepared: false,
            prepare_wall_s: None,
        },
        decode: contender(
            "decode floor (replay --decode-only)",
            Some(run(2.0, 20_000_000, 24 << 20)),
        ),
        replay: contender("sluice replay --max", None),
        kafka: None,
        ratio: None,
        targets: vec![TargetCheck {
            target: "events/s end to end".into(),
            pass: None,
            measured: None,
            threshold: 1e6,
        }],
        loadavg_after: None,
    }
}

fn report(sections: Vec<Section>) -> Report {
    Report {
        report_version: 1,
        started_utc: "2026-11-27T06:00:00.000000Z".into(),
        elapsed_s: 12.0,
        command: "sluice bench report --quick".into(),
        quick: true,
        machine: machine(),
        loadavg_before: Some([0.5, 0.4, 0.3]),
        loadavg_after: Some([1.5, 0.6, 0.3]),
        versions: Versions {
            sluice: "0.1.0".into(),
            sluice_build: "debug".into(),
            python: "python3".into(),
            duckdb: Some("2.0.1".into()),
            polars: None,
        },
        sections,
        notes: vec!["polars: not run: no module named 'polars'".into()],
        raw: RawResults::default(),
        files: Vec::new(),
    }
}

fn sort_like_section() -> Section {
    let mut s = Section::new(
        "sort",
        sections::SORT_TITLE,
        "m",
        "sluice bench sort".into(),
    );
    s.table = Some(Table {
        header: vec!["contender".into(), "wall s".into()],
        rows: vec![vec!["sluice".into(), "15.50".into()]],
    });
    s.charts = vec![BarChart {
        title: "Sort wall time".into(),
        unit: "s".into(),
        better: Better::Lower,
        bars: vec![
            Bar {
                label: "sluice".into(),
                value: Some(15.5),
                note: None,
                is_sluice: true,
            },
            Bar {
                label: "DuckDB | legacy".into(),
                value: Some(78.1),
                note: None,
                is_sluice: false,
            },
        ],
    }];
    s.targets = vec![TargetLine {
        target: ">= 4x faster than DuckDB".into(),
        verdict: Verdict::Pass,
        detail: "78.1 s / 15.5 s".into(),
    }];
    s
}

fn all_sections() -> Vec<Section> {
    vec![
        sort_like_section(),
        sections::bus_section(&bus_report(), "sluice bench bus".into()),
        sections::replay_section(&replay_report(), "sluice bench replay".into()),
    ]
}

#[test]
fn html_is_well_formed_self_contained_and_has_every_benchmark() {
    let html = render_html(&report(all_sections()));
    assert_eq!(check_well_formed(&html), Ok(()));
    for title in [
        sections::SORT_TITLE,
        sections::BUS_TITLE,
        sections::REPLAY_TITLE,
    ] {
        assert!(html.contains(title), "{title} missing");
    }
    for id in ["id=\"sort\"", "id=\"bus\"", "id=\"replay\""] {
        assert!(html.contains(id), "{id} missing");
    }
    // The sort fixture has one chart, bus and replay three each.
    assert_eq!(html.matches("<svg ").count(), 1 + 3 + 3);
    assert!(!html.contains("<script"));
    assert!(!html.contains("src="));
    assert!(!html.contains("href=\"http"));
    assert!(html.contains("Test CPU &lt;AVX-512&gt; &amp; co"));
    assert!(html.contains("class=\"pass\">PASS"));
    assert!(html.contains("class=\"fail\">FAIL"));
    assert!(html.contains("class=\"unmeasured\">UNMEASURED"));
    assert!(html.contains("0.50 0.40 0.30") && html.contains("1.50 0.60 0.30"));
}

#[test]
fn markdown_has_every_benchmark_with_its_table_and_targets() {
    let md = render_markdown(&report(all_sections()));
    for heading in [
        format!("## {}", sections::SORT_TITLE),
        format!("## {}", sections::BUS_TITLE),
        format!("## {}", sections::REPLAY_TITLE),
    ] {
        assert!(md.contains(&heading), "{heading} missing:\n{md}");
    }
    assert!(md.contains("| dd conv=fsync | 0 | 190.7 | 0.200 | 1000.0 | 0 | 1.00x |"));
    assert!(md.contains("| append 1 KiB / dd bandwidth | FAIL | got 0.500, need >= 0.7 |"));
    assert!(md.contains("DuckDB 2.0.1, Polars not available"));
    assert!(md.contains("before 0.50 0.40 0.30, after 1.50 0.60 0.30"));
    assert!(md.contains("memory free at the start: 20.0 GiB; free page reporting to the host: on"));
    assert!(md.contains("**quick run**"));
}

#[test]
fn bus_section_charts_writes_reads_and_records_apart() {
    let s = sections::bus_section(&bus_report(), "x".into());
    let titles: Vec<&str> = s.charts.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles.len(), 3);
    let labels =
        |i: usize| -> Vec<&str> { s.charts[i].bars.iter().map(|b| b.label.as_str()).collect() };
    assert_eq!(
        labels(0),
        [
            "dd conv=fsync",
            "append 1 KiB, fsync/batch",
            "legacy JSON line + fsync"
        ]
    );
    // dd writes no records: it has no bar in the records chart.
    assert_eq!(
        labels(1),
        ["append 1 KiB, fsync/batch", "legacy JSON line + fsync"]
    );
    assert_eq!(labels(2), ["read 1 KiB (page cache)"]);
    assert!(s.charts[0].bars[1].is_sluice && !s.charts[0].bars[0].is_sluice);
    assert_eq!(s.targets[0].verdict, Verdict::Fail);
}

#[test]
fn replay_section_shows_a_failed_contender_without_a_bar() {
    let s = sections::replay_section(&replay_report(), "x".into());
    let time = &s.charts[0];
    assert_eq!(time.bars[0].value, Some(2.0));
    assert_eq!(time.bars[1].value, None);
    assert_eq!(time.bars[1].note.as_deref(), Some("not run"));
    let table = s.table.as_ref().map(|t| t.rows.clone()).unwrap_or_default();
    assert_eq!(table[0][5], "10,000,000");
    assert_eq!(table[0][7], "1.00x");
    assert_eq!(table[1][2], "-");
    assert_eq!(s.targets[0].verdict, Verdict::Unmeasured);
}

#[test]
fn skipped_and_failed_sections_still_render() {
    let e = BenchError::InvalidArgument("no <data> & no luck".into());
    let sections = vec![
        skipped(&sections::SORT),
        failed(&sections::BUS, "sluice bench bus".into(), &e),
    ];
    let r = report(sections);
    assert_eq!(r.failed().len(), 1);
    let html = render_html(&r);
    assert_eq!(check_well_formed(&html), Ok(()));
    assert!(html.contains("skipped: --skip sort"));
    assert!(html.contains("FAILED error[INVALID_ARGUMENT]: invalid argument: no &lt;data&gt;"));
    let md = render_markdown(&r);
    assert!(md.contains("- status: FAILED error[INVALID_ARGUMENT]"));
    assert!(matches!(
        r.sections[0].status,
        SectionStatus::Skipped { .. }
    ));
}

#[test]
fn quick_settings_are_tiny_and_rows_override_both_inputs() {
    let mut cfg = ReportConfig {
        out_dir: PathBuf::from("/o"),
        data_root: PathBuf::from("/d"),
        sluice_bin: PathBuf::from("/bin/sluice"),
        sluice_build: "debug".into(),
        python: PathBuf::from("python3"),
        rows: None,
        quick: true,
        skip: vec![Skippable::Polars],
        command: String::new(),
    };
    let work = PathBuf::from("/o/work");
    let sort = sort_config(&cfg, &work);
    assert_eq!((sort.rows, sort.files), (QUICK_ROWS, 4));
    assert_eq!(sort.data_dir, PathBuf::from("/d/sort-20000-4-1"));
    assert!(!sort.skip_duckdb && sort.skip_polars);
    assert!(sort_command(&sort).ends_with("--skip-polars"));
    assert_eq!(bus_config(&cfg, &work).bytes, QUICK_BUS_BYTES);
    cfg.quick = false;
    cfg.rows = Some(1_000_000);
    let replay = replay_config(&cfg, &work);
    assert_eq!(replay.rows, 1_000_000);
    assert_eq!(replay.data_dir, PathBuf::from("/d/replay-1000000-42"));
    assert_eq!(sort_config(&cfg, &work).rows, 1_000_000);
    assert_eq!(bus_config(&cfg, &work).bytes, bus::DEFAULT_BYTES);
}
