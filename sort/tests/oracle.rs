//! Oracle tests: sluice's view of seeded random datasets equals a plain `sort_by` of the
//! same rows by (time, file, row), with and without spilling (tiny memory limits force many
//! runs and multi-level merges), at 1 and 2 threads; and the parts are byte-identical
//! across all those settings.

mod common;

use std::path::Path;

use common::*;
use sluice_sort::{build_view, NoProgress, SortConfig, SortSource, ViewReport, ViewStatus};
use sluice_storage::view::view_dir;

/// Sort the `*.parquet` files of `data` into `view_root` as output `events`.
fn sort(data: &Path, view_root: &Path, config: &SortConfig) -> ViewReport {
    let pattern = format!("{}/*.parquet", data.display());
    let source = SortSource::glob(&pattern, "events", view_root, None).unwrap();
    build_view(config, &source, &NoProgress).unwrap()
}

fn settings() -> Vec<(&'static str, SortConfig)> {
    let base = SortConfig {
        part_size: 48 << 10,
        row_group_rows: 700,
        force: true,
        ..SortConfig::default()
    };
    let mut out = Vec::new();
    for threads in [1, 2] {
        out.push((
            "in memory",
            SortConfig {
                threads: Some(threads),
                ..base.clone()
            },
        ));
        out.push((
            "spilling",
            SortConfig {
                threads: Some(threads),
                memory_limit: 600 << 10,
                ..base.clone()
            },
        ));
    }
    out
}

fn check_dataset(spec: DatasetSpec) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let files = generate(&data, &spec);
    let expected = oracle(&files, "ts_utc", string_time);
    let total = expected.len() as u64;
    let mut reference: Option<Vec<Vec<u8>>> = None;
    for (i, (name, config)) in settings().into_iter().enumerate() {
        let view_root = d.path().join(format!("views-{i}"));
        let report = sort(&data, &view_root, &config);
        assert_eq!(report.status, ViewStatus::Built);
        assert_eq!(report.rows, total, "{name}");
        if name == "spilling" && total >= 5000 {
            assert!(report.runs > 2, "{name}: {report:?}");
            assert!(report.spilled_bytes > 0, "{name}: {report:?}");
        } else if name == "in memory" {
            assert_eq!(report.runs, 1, "{name}: {report:?}");
            assert_eq!(report.spilled_bytes, 0, "{name}: {report:?}");
        }
        let dir = view_dir(&view_root, "events");
        let got = view_rows(&dir);
        assert_eq!(got.len(), expected.len(), "{name}");
        if let Some(at) = got.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!(
                "{name} (threads {:?}): row {at} differs\n got {}\nwant {}",
                config.threads, got[at], expected[at]
            );
        }
        let bytes = view_bytes(&dir);
        if total >= 3000 {
            assert!(bytes.len() > 1, "small part size makes several parts");
        }
        match &reference {
            None => reference = Some(bytes),
            Some(r) => assert!(r == &bytes, "{name}: parts differ from the first setting"),
        }
        // Nothing but the view and its lock remain; no spill directory either.
        assert_eq!(
            names(&view_root),
            vec![".output_id=events.lock", "output_id=events"]
        );
        assert!(!d.path().join(".sluice-tmp").exists());
    }
}

#[test]
fn dictionary_strings_ties_empty_and_one_row_files() {
    let mut spec = DatasetSpec::new(1, vec![3000, 0, 1, 2500, 1, 3500]);
    spec.distinct_times = 1500;
    check_dataset(spec);
}

#[test]
fn plain_strings_many_row_groups() {
    let mut spec = DatasetSpec::new(2, vec![4000, 4000, 1]);
    spec.encoding = Encoding::Plain;
    spec.row_group_rows = 97;
    check_dataset(spec);
}

#[test]
fn mixed_encodings_and_heavy_ties() {
    let mut spec = DatasetSpec::new(3, vec![1500; 6]);
    spec.encoding = Encoding::Mixed;
    spec.distinct_times = 40;
    check_dataset(spec);
}

#[test]
fn non_canonical_key_strings_are_carried_byte_for_byte() {
    // Odd files mix other forms of the instants into canonical ones: their chunks carry
    // the strings, the others regenerate them from the key; spilled, merged ahead and
    // gathered together, every string must come out exactly as written.
    let mut spec = DatasetSpec::new(4, vec![2500, 3000, 1800, 2200]);
    spec.encoding = Encoding::Mixed;
    spec.distinct_times = 900;
    spec.row_group_rows = 300;
    spec.odd_time_forms = true;
    check_dataset(spec);
}

#[test]
fn seeded_random_shapes() {
    let mut rng = Rng(77);
    for round in 0..3 {
        let files: Vec<usize> = (0..1 + rng.below(5))
            .map(|_| match rng.below(4) {
                0 => 0,
                1 => 1,
                _ => rng.below(4000) as usize,
            })
            .chain([1000])
            .collect();
        let mut spec = DatasetSpec::new(100 + round, files);
        spec.row_group_rows = 1 + rng.below(900) as usize;
        spec.distinct_times = 1 + rng.below(3000);
        spec.encoding =
            [Encoding::Dictionary, Encoding::Plain, Encoding::Mixed][rng.below(3) as usize];
        check_dataset(spec);
    }
}
