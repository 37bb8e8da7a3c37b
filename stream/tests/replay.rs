//! Replay against oracles: the rows that come out (order, positions, window, budget, merge
//! order) are compared with a plain in-memory list of the rows written; pacing is checked
//! on a logical clock against the schedule computed from the formula.

use sluice_storage::gen::rng::SplitMix64;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use sluice_storage::outputs::OutputSpec;
use sluice_storage::timefmt::format_rfc3339_micros;
use sluice_stream::fixture::{write_partial_view, write_view, FixtureLayout};
use sluice_stream::pacing::{Pacing, PacingConfig};
use sluice_stream::reader::{StartAt, TimeWindow, ViewReader};
use sluice_stream::replay::{
    run_replay, ClockKind, OutputMonitor, OutputPlan, Release, ReplayConfig, Slice,
    MERGE_BUNDLE_EVENTS,
};
use sluice_stream::view::open_view;

const T0: i64 = 1_767_601_813_260_000; // 2026-01-05T08:30:13.260000Z

/// Traffic rows in time order: flow_id = row number, ts steps of 0..3 s (ties included).
fn traffic(n: usize, seed: u64, ts_start: i64) -> (RecordBatch, Vec<i64>) {
    let spec = OutputSpec::get("s3_event_stream_with_fraud_6B").unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut ts = Vec::with_capacity(n);
    let mut t = ts_start;
    for _ in 0..n {
        t += (rng.next_u64() % 4) as i64 * 1_000_000;
        ts.push(t);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            (0..n as i64).map(|i| i + seed as i64 * 1_000_000),
        )),
        Arc::new(Int64Array::from_iter_values(
            (0..n).map(|i| (i % 3) as i64 + 1),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|_| "AUTH_REQUEST"),
        )),
        Arc::new(StringArray::from_iter_values(
            ts.iter().map(|&t| format_rfc3339_micros(t)),
        )),
        Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| i as f64 * 1.25),
        )),
        Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 7 == 0)))),
        Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 5 == 0).then(|| format!("c{i}"))),
        )),
        Arc::new(Int64Array::from_iter_values((0..n).map(|_| 42))),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|_| "a".repeat(64)),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|_| "b".repeat(64)),
        )),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| "baseline_v1"))),
    ];
    (
        RecordBatch::try_new(spec.arrow_schema(false), cols).unwrap(),
        ts,
    )
}

fn flow_ids(b: &RecordBatch) -> Vec<i64> {
    b.column(0).as_primitive::<Int64Type>().values().to_vec()
}

const SMALL: FixtureLayout = FixtureLayout {
    rows_per_part: 1000,
    rows_per_row_group: 128,
};

fn read_all(reader: ViewReader) -> Vec<(u32, u64, i64)> {
    let mut out = Vec::new();
    for b in reader {
        let b = b.unwrap();
        assert_eq!(b.ts.len(), b.len());
        for (i, id) in flow_ids(&b.batch).into_iter().enumerate() {
            out.push((b.part, b.first_row + i as u64, id));
        }
    }
    out
}

#[test]
fn reads_every_row_in_order_with_exact_positions() {
    let d = tempfile::tempdir().unwrap();
    let (batch, _) = traffic(2500, 1, T0);
    write_view(
        d.path(),
        "s3_event_stream_with_fraud_6B",
        std::slice::from_ref(&batch),
        SMALL,
    )
    .unwrap();
    let view = Arc::new(open_view(d.path(), "s3_event_stream_with_fraud_6B").unwrap());
    assert_eq!(view.parts.len(), 3);
    assert_eq!(view.rows(), 2500);
    let rows = read_all(ViewReader::new(
        view,
        StartAt::default(),
        TimeWindow::default(),
        100,
    ));
    let expected: Vec<(u32, u64, i64)> = flow_ids(&batch)
        .into_iter()
        .enumerate()
        .map(|(i, id)| ((i / 1000) as u32, (i % 1000) as u64, id))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn resume_starts_at_the_exact_row_in_any_row_group() {
    let d = tempfile::tempdir().unwrap();
    let (batch, _) = traffic(2500, 2, T0);
    write_view(
        d.path(),
        "s3_event_stream_with_fraud_6B",
        std::slice::from_ref(&batch),
        SMALL,
    )
    .unwrap();
    let view = Arc::new(open_view(d.path(), "s3_event_stream_with_fraud_6B").unwrap());
    let all = read_all(ViewReader::new(
        view.clone(),
        StartAt::default(),
        TimeWindow::default(),
        77,
    ));
    let mut rng = SplitMix64::new(9);
    for case in 0..25 {
        let global = match case {
            0 => 0,
            1 => 999,
            2 => 1000,
            3 => 2499,
            4 => 128,
            _ => (rng.next_u64() % 2500) as usize,
        };
        let start = StartAt {
            part: (global / 1000) as u32,
            row: (global % 1000) as u64,
        };
        let reader = ViewReader::new(view.clone(), start, TimeWindow::default(), 64);
        let got = read_all(reader);
        assert_eq!(got, all[global..].to_vec(), "start {start:?}");
    }
    // Past the end of a part rolls over to the next part.
    let past = StartAt { part: 0, row: 1000 };
    let got = read_all(ViewReader::new(view, past, TimeWindow::default(), 64));
    assert_eq!(got, all[1000..].to_vec());
}

#[test]
fn window_is_exact_and_skips_row_groups_by_statistics() {
    let d = tempfile::tempdir().unwrap();
    let (batch, ts) = traffic(3000, 3, T0);
    write_view(
        d.path(),
        "s3_event_stream_with_fraud_6B",
        std::slice::from_ref(&batch),
        SMALL,
    )
    .unwrap();
    let view = Arc::new(open_view(d.path(), "s3_event_stream_with_fraud_6B").unwrap());
    let ids = flow_ids(&batch);
    let mut rng = SplitMix64::new(4);
    for _ in 0..20 {
        let a = ts[(rng.next_u64() % 3000) as usize];
        let b = ts[(rng.next_u64() % 3000) as usize];
        let (from, until) = (a.min(b), a.max(b) + (rng.next_u64() % 2) as i64);
        let w = TimeWindow {
            from: Some(from),
            until: Some(until),
        };
        let mut reader = ViewReader::new(view.clone(), StartAt::default(), w, 50);
        let got: Vec<i64> = reader
            .by_ref()
            .flat_map(|b| flow_ids(&b.unwrap().batch))
            .collect();
        let expected: Vec<i64> = ids
            .iter()
            .zip(&ts)
            .filter(|(_, &t)| t >= from && t < until)
            .map(|(&id, _)| id)
            .collect();
        assert_eq!(got, expected, "window [{from}, {until})");
        if from > ts[1500] {
            assert!(reader.stats.row_groups_skipped >= 8, "{:?}", reader.stats);
        }
    }
}

fn collect(plans: &[OutputPlan], cfg: &ReplayConfig) -> Vec<Slice> {
    collect_releases(plans, cfg).into_iter().flatten().collect()
}

/// The channel messages as sent.
fn collect_releases(plans: &[OutputPlan], cfg: &ReplayConfig) -> Vec<Release> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    let monitors: Vec<OutputMonitor> = plans.iter().map(|_| OutputMonitor::default()).collect();
    std::thread::scope(|s| {
        let h = s.spawn(|| rx.iter().collect::<Vec<_>>());
        run_replay(plans, cfg, tx, &monitors).unwrap();
        h.join().unwrap()
    })
}

#[test]
fn paced_releases_follow_the_scenario_clock_exactly() {
    let d = tempfile::tempdir().unwrap();
    let (batch, ts) = traffic(700, 5, T0);
    write_view(d.path(), "s3_event_stream_with_fraud_6B", &[batch], SMALL).unwrap();
    let view = Arc::new(open_view(d.path(), "s3_event_stream_with_fraud_6B").unwrap());
    let plans = [OutputPlan {
        view,
        start: StartAt::default(),
    }];
    for (speedup, rate) in [(600.0, None), (1.0, None), (60.0, Some(50.0))] {
        let cfg = ReplayConfig {
            pacing: PacingConfig {
                pacing: Pacing::Speedup(speedup),
                rate,
            },
            clock: ClockKind::Logical,
            batch_rows: 64,
            ..ReplayConfig::default()
        };
        let slices = collect(&plans, &cfg);
        let released: Vec<Duration> = slices
            .iter()
            .flat_map(|s| std::iter::repeat_n(s.released_at, s.len()))
            .collect();
        assert_eq!(released.len(), 700);
        // The schedule from the formula: due_i = (ts_i - ts_0) / speedup, and with a rate
        // cap never closer than 1/rate to the previous due time.
        let mut prev: Option<f64> = None;
        for (i, &t) in ts.iter().enumerate() {
            let mut due = (t - ts[0]) as f64 * 1e3 / speedup;
            if let (Some(r), Some(p)) = (rate, prev) {
                due = due.max(p + 1e9 / r);
            }
            prev = Some(due);
            let got = released[i].as_nanos() as f64;
            assert!(
                (got - due).abs() <= 1.0,
                "speedup {speedup} rate {rate:?} row {i}: released at {got} ns, due {due} ns"
            );
        }
    }
}

#[test]
fn merge_interleaves_outputs_in_global_time_order() {
    let d = tempfile::tempdir().unwrap();
    let (a, ta) = traffic(900, 6, T0);
    let (b, tb) = traffic(600, 7, T0 + 500_000);
    write_view(
        d.path(),
        "s3_event_stream_with_fraud_6B",
        std::slice::from_ref(&a),
        SMALL,
    )
    .unwrap();
    write_view(
        d.path(),
        "s2_event_stream_baseline_6B",
        std::slice::from_ref(&b),
        SMALL,
    )
    .unwrap();
    let va = Arc::new(open_view(d.path(), "s3_event_stream_with_fraud_6B").unwrap());
    let vb = Arc::new(open_view(d.path(), "s2_event_stream_baseline_6B").unwrap());
    let plans = [
        OutputPlan {
            view: va,
            start: StartAt::default(),
        },
        OutputPlan {
            view: vb,
            start: StartAt::default(),
        },
    ];
    let cfg = ReplayConfig {
        merge: true,
        batch_rows: 100,
        ..ReplayConfig::default()
    };
    let got: Vec<(i64, usize, i64)> = collect(&plans, &cfg)
        .iter()
        .flat_map(|s| {
            flow_ids(&s.record_batch())
                .into_iter()
                .zip(s.ts().to_vec())
                .map(move |(id, t)| (t, s.output, id))
        })
        .collect();
    let mut oracle: Vec<(i64, usize, i64)> = ta
        .iter()
        .zip(flow_ids(&a))
        .map(|(&t, id)| (t, 0, id))
        .chain(tb.iter().zip(flow_ids(&b)).map(|(&t, id)| (t, 1, id)))
        .collect();
    // Stable by (time, output); inside one output the view order is kept.
    oracle.sort_by_key(|&(t, o, _)| (t, o));
    assert_eq!(got, oracle);
    // Unpaced, the slices (a row or a few each) travel in bundles of MERGE_BUNDLE_EVENTS
    // events, the last one shorter; paced, each slice goes on its own when due.
    let releases = collect_releases(&plans, &cfg);
    let sizes: Vec<usize> = releases
        .iter()
        .map(|r| r.iter().map(Slice::len).sum())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 1500);
    let (last, full) = sizes.split_last().unwrap();
    assert!(full.iter().all(|&n| n >= MERGE_BUNDLE_EVENTS), "{sizes:?}");
    assert!((1..=1500).contains(last), "{sizes:?}");
    assert!(releases.iter().flatten().count() > 2 * releases.len());
    let paced = ReplayConfig {
        pacing: PacingConfig {
            pacing: Pacing::Speedup(1e9),
            rate: None,
        },
        clock: ClockKind::Logical,
        ..cfg
    };
    assert!(collect_releases(&plans, &paced)
        .iter()
        .all(|r| r.len() == 1));
}

#[test]
fn max_events_is_one_budget_across_outputs() {
    let d = tempfile::tempdir().unwrap();
    let (a, _) = traffic(900, 8, T0);
    let (b, _) = traffic(900, 9, T0);
    write_view(d.path(), "s3_event_stream_with_fraud_6B", &[a], SMALL).unwrap();
    write_view(d.path(), "s2_event_stream_baseline_6B", &[b], SMALL).unwrap();
    let plans: Vec<OutputPlan> = [
        "s3_event_stream_with_fraud_6B",
        "s2_event_stream_baseline_6B",
    ]
    .iter()
    .map(|id| OutputPlan {
        view: Arc::new(open_view(d.path(), id).unwrap()),
        start: StartAt::default(),
    })
    .collect();
    for merge in [false, true] {
        let cfg = ReplayConfig {
            merge,
            max_events: Some(1234),
            batch_rows: 100,
            ..ReplayConfig::default()
        };
        let n: usize = collect(&plans, &cfg).iter().map(|s| s.len()).sum();
        assert_eq!(n, 1234, "merge {merge}");
    }
}

#[test]
fn views_are_opened_fail_closed_with_platform_codes() {
    let d = tempfile::tempdir().unwrap();
    let id = "arrival_events_5B";
    let code = |root: &std::path::Path| open_view(root, id).unwrap_err().code();
    assert_eq!(code(d.path()), "STREAM_VIEW_MISSING");
    let dir = write_partial_view(d.path(), id).unwrap();
    assert_eq!(code(d.path()), "STREAM_VIEW_PARTIAL_EXISTS");
    std::fs::write(dir.join("_stream_view_manifest.json"), b"{}").unwrap();
    assert_eq!(code(d.path()), "STREAM_RECEIPT_MISSING");
    assert_eq!(
        open_view(d.path(), "nope").unwrap_err().code(),
        "UNKNOWN_OUTPUT_ID"
    );

    // A receipt whose parts do not match the files.
    let (batch, _) = traffic(10, 10, T0);
    let dir = write_view(d.path(), "s3_event_stream_with_fraud_6B", &[batch], SMALL).unwrap();
    let part = dir.join("part-000000.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes.push(0);
    std::fs::write(&part, bytes).unwrap();
    let e = open_view(d.path(), "s3_event_stream_with_fraud_6B").unwrap_err();
    assert_eq!(e.code(), "STREAM_RECEIPT_MISMATCH");
}
