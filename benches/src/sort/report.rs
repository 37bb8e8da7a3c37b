//! The sort benchmark's report: one row per contender (fastest of its runs), the issue's
//! targets checked against those rows, and everything needed to judge the numbers later
//! (machine, input, cache state, exact commands). Serialised as-is for `--json` and for
//! `<work>/bench-sort.json`; [`super::render`] prints it for people.

use std::path::PathBuf;

use serde_json::Value;

use super::contenders::{ContenderKind, Outcome, Plan};
use super::data::InputData;
use crate::machine::MachineFacts;

/// 1 GiB: the issue's memory ceiling for sluice at default settings.
pub const PEAK_RSS_CEILING_BYTES: u64 = 1 << 30;
/// sluice must be at least this many times faster than DuckDB (every DuckDB run).
pub const MIN_SPEEDUP_VS_DUCKDB: f64 = 4.0;
/// ... and than Polars.
pub const MIN_SPEEDUP_VS_POLARS: f64 = 1.8;
/// sluice's sort may take at most this multiple of its own copy floor.
pub const MAX_RATIO_VS_COPY_FLOOR: f64 = 1.25;

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SortBenchReport {
    pub bench: &'static str,
    /// Bumped when fields change meaning, for `sluice bench report`.
    pub report_version: u32,
    pub started_utc: String,
    pub elapsed_s: f64,
    pub config: ConfigEcho,
    pub versions: ToolVersions,
    pub machine: MachineFacts,
    /// Load averages when the runs ended (the start is in `machine.loadavg`).
    pub loadavg_end: Option<[f64; 3]>,
    pub input: InputData,
    /// How the page cache was prepared (warm, not dropped).
    pub cache: String,
    pub contenders: Vec<ContenderResult>,
    pub targets: Vec<TargetCheck>,
    /// Whether every contender that ran wrote as many rows as sluice.
    pub rows_comparable: Option<bool>,
    pub notes: Vec<String>,
    /// Where the JSON report was written.
    pub report_path: PathBuf,
}

/// The settings the run used, as a reader needs them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigEcho {
    /// `--input`, when the input is a given dataset (then rows/files/seed are unused).
    pub input: Option<String>,
    pub sort_key: String,
    pub rows: u64,
    pub files: u32,
    pub seed: u64,
    pub memory_limit: String,
    pub threads: Option<usize>,
    pub repeat: u32,
    pub sluice_bin: PathBuf,
    pub sluice_build: String,
    pub python: PathBuf,
    pub work_dir: PathBuf,
}

/// Versions of what ran (`None`: not installed or skipped).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolVersions {
    pub sluice: String,
    pub duckdb: Option<String>,
    pub polars: Option<String>,
}

/// OK, FAILED (the child failed; see `stderr_tail`) or SKIPPED (see `note`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Ok,
    Failed,
    Skipped,
}

/// One contender's row: the fastest of its runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContenderResult {
    pub kind: ContenderKind,
    pub name: String,
    pub what: String,
    pub status: RunStatus,
    /// Fastest wall time (harness clock).
    pub wall_s: Option<f64>,
    /// Every run's wall time, in run order.
    pub wall_samples_s: Vec<f64>,
    /// CPU seconds (user + system) of the fastest run; above `wall_s` when it ran in parallel.
    pub cpu_s: Option<f64>,
    /// CPU seconds other processes on the machine used during the fastest run: how much the
    /// contender had to share the cores.
    pub others_cpu_s: Option<f64>,
    /// Highest peak RSS over the runs, as the process reported it.
    pub peak_rss_bytes: Option<u64>,
    pub rows: Option<u64>,
    pub output_bytes: Option<u64>,
    pub rows_per_s: Option<f64>,
    /// This contender's wall time over sluice's (2.0 = twice as slow as sluice).
    pub ratio_vs_sluice: Option<f64>,
    pub rows_match_sluice: Option<bool>,
    /// The exact command (shell syntax).
    pub command: Option<String>,
    pub note: Option<String>,
    pub stderr_tail: Option<String>,
    /// The whole stderr of the failed run.
    pub stderr_path: Option<PathBuf>,
    /// The child's own JSON summary from its fastest run.
    pub summary: Option<Value>,
}

/// PASS, FAIL, or UNMEASURED (a contender it needs was skipped or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    Unmeasured,
}

/// One of the issue's targets, checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub verdict: Verdict,
    /// The measured quantity (a ratio, or MiB for memory).
    pub measured: Option<f64>,
    pub threshold: f64,
    /// The numbers behind it, in words.
    pub detail: String,
}

/// Fold a contender's runs into its row (ratios and row checks come later, from sluice's).
pub fn summarize(plan: &Plan, command: Option<String>, outcomes: &[Outcome]) -> ContenderResult {
    let mut row = ContenderResult {
        kind: plan.kind,
        name: plan.name.clone(),
        what: plan.what.clone(),
        status: RunStatus::Ok,
        wall_s: None,
        wall_samples_s: Vec::new(),
        cpu_s: None,
        others_cpu_s: None,
        peak_rss_bytes: None,
        rows: None,
        output_bytes: None,
        rows_per_s: None,
        ratio_vs_sluice: None,
        rows_match_sluice: None,
        command,
        note: None,
        stderr_tail: None,
        stderr_path: None,
        summary: None,
    };
    if let Some(reason) = &plan.skip_reason {
        row.status = RunStatus::Skipped;
        row.note = Some(reason.clone());
        return row;
    }
    let mut fastest: Option<&super::contenders::Sample> = None;
    for outcome in outcomes {
        match outcome {
            Outcome::Ok(s) => {
                row.wall_samples_s.push(s.wall_s);
                row.peak_rss_bytes = row.peak_rss_bytes.max(s.peak_rss_bytes);
                if row.rows.is_some_and(|r| r != s.rows) {
                    row.note = Some(format!(
                        "row counts differ between runs ({:?} then {})",
                        row.rows, s.rows
                    ));
                }
                row.rows = Some(s.rows);
                if fastest.is_none_or(|f| s.wall_s < f.wall_s) {
                    fastest = Some(s);
                }
            }
            Outcome::Failed {
                status,
                wall_s,
                stderr_tail,
                stderr_path,
            } => {
                row.wall_samples_s.extend(wall_s);
                if row.status == RunStatus::Ok {
                    row.status = RunStatus::Failed;
                    row.note = Some(status.clone());
                    row.stderr_tail = Some(stderr_tail.clone());
                    row.stderr_path = stderr_path.clone();
                }
            }
        }
    }
    if row.status == RunStatus::Ok {
        if let Some(f) = fastest {
            row.wall_s = Some(f.wall_s);
            row.cpu_s = f.cpu.cpu_s;
            row.others_cpu_s = f.cpu.others_cpu_s;
            row.output_bytes = f.output_bytes;
            row.summary = Some(f.summary.clone());
            if f.wall_s > 0.0 {
                row.rows_per_s = Some(f.rows as f64 / f.wall_s);
            }
        }
    }
    row
}

/// Fill in each row's ratio to sluice and whether its row count equals sluice's.
pub fn compare_to_sluice(rows: &mut [ContenderResult]) -> Option<bool> {
    let sluice = rows
        .iter()
        .find(|r| r.kind == ContenderKind::Sluice && r.status == RunStatus::Ok)
        .map(|r| (r.wall_s, r.rows));
    let (Some(sluice_wall), sluice_rows) = sluice? else {
        return None;
    };
    let mut all_match = true;
    for row in rows.iter_mut().filter(|r| r.status == RunStatus::Ok) {
        if let Some(w) = row.wall_s {
            row.ratio_vs_sluice = (sluice_wall > 0.0).then(|| w / sluice_wall);
        }
        let matches = row.rows.is_some() && row.rows == sluice_rows;
        row.rows_match_sluice = Some(matches);
        all_match &= matches;
    }
    Some(all_match)
}

/// The issue's targets, each PASS/FAIL with its numbers (UNMEASURED if a side is missing).
pub fn check_targets(rows: &[ContenderResult]) -> Vec<TargetCheck> {
    let ok = |kind| {
        rows.iter()
            .find(|r| r.kind == kind && r.status == RunStatus::Ok)
    };
    let sluice = ok(ContenderKind::Sluice);
    let mut checks = Vec::new();
    for (kind, label) in [
        (ContenderKind::Duckdb, "DuckDB (default settings)"),
        (ContenderKind::DuckdbMemoryLimited, "DuckDB (memory_limit)"),
        (ContenderKind::Polars, "Polars"),
    ] {
        let min = if kind == ContenderKind::Polars {
            MIN_SPEEDUP_VS_POLARS
        } else {
            MIN_SPEEDUP_VS_DUCKDB
        };
        let target = format!("sluice >= {min}x faster than {label}");
        checks.push(speedup_check(target, sluice, ok(kind), min));
    }
    checks.push(memory_check(sluice));
    checks.push(copy_floor_check(sluice, ok(ContenderKind::SluiceCopyFloor)));
    checks
}

fn speedup_check(
    target: String,
    sluice: Option<&ContenderResult>,
    other: Option<&ContenderResult>,
    min: f64,
) -> TargetCheck {
    let walls = sluice
        .and_then(|s| s.wall_s)
        .zip(other.and_then(|o| o.wall_s));
    match walls {
        Some((s, o)) if s > 0.0 => {
            let speedup = o / s;
            TargetCheck {
                target,
                verdict: verdict(speedup >= min),
                measured: Some(speedup),
                threshold: min,
                detail: format!("{o:.2} s / sluice {s:.2} s = {speedup:.2}x (need >= {min}x)"),
            }
        }
        _ => unmeasured(target, min, "a side did not run successfully"),
    }
}

fn memory_check(sluice: Option<&ContenderResult>) -> TargetCheck {
    let target = "sluice peak RSS <= 1 GiB at default settings".to_string();
    let ceiling_mib = mib(PEAK_RSS_CEILING_BYTES);
    match sluice.and_then(|s| s.peak_rss_bytes) {
        Some(peak) => TargetCheck {
            target,
            verdict: verdict(peak <= PEAK_RSS_CEILING_BYTES),
            measured: Some(mib(peak)),
            threshold: ceiling_mib,
            detail: format!("peak RSS {:.1} MiB (limit {ceiling_mib:.0} MiB)", mib(peak)),
        },
        None => unmeasured(target, ceiling_mib, "sluice reported no peak RSS"),
    }
}

fn copy_floor_check(
    sluice: Option<&ContenderResult>,
    floor: Option<&ContenderResult>,
) -> TargetCheck {
    let target = format!("sluice <= {MAX_RATIO_VS_COPY_FLOOR}x its own copy floor");
    let walls = sluice
        .and_then(|s| s.wall_s)
        .zip(floor.and_then(|f| f.wall_s));
    match walls {
        Some((s, f)) if f > 0.0 => {
            let ratio = s / f;
            TargetCheck {
                target,
                verdict: verdict(ratio <= MAX_RATIO_VS_COPY_FLOOR),
                measured: Some(ratio),
                threshold: MAX_RATIO_VS_COPY_FLOOR,
                detail: format!(
                    "sluice {s:.2} s / copy floor {f:.2} s = {ratio:.2}x (need <= {MAX_RATIO_VS_COPY_FLOOR}x)"
                ),
            }
        }
        _ => unmeasured(
            target,
            MAX_RATIO_VS_COPY_FLOOR,
            "sluice or its copy floor did not run successfully",
        ),
    }
}

fn unmeasured(target: String, threshold: f64, why: &str) -> TargetCheck {
    TargetCheck {
        target,
        verdict: Verdict::Unmeasured,
        measured: None,
        threshold,
        detail: why.to_string(),
    }
}

fn verdict(pass: bool) -> Verdict {
    if pass {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::super::contenders::Sample;
    use super::*;

    fn plan(kind: ContenderKind, skip: Option<&str>) -> Plan {
        Plan {
            kind,
            name: format!("{kind:?}"),
            what: String::new(),
            dir: PathBuf::new(),
            command: None,
            skip_reason: skip.map(str::to_string),
        }
    }

    fn ok(wall_s: f64, rows: u64, peak: u64) -> Outcome {
        Outcome::Ok(Sample {
            wall_s,
            cpu: crate::cpu::CpuUse {
                cpu_s: Some(wall_s * 2.0),
                others_cpu_s: Some(0.5),
            },
            peak_rss_bytes: Some(peak),
            rows,
            output_bytes: Some(1),
            summary: Value::Null,
        })
    }

    fn row(kind: ContenderKind, outcomes: &[Outcome]) -> ContenderResult {
        summarize(&plan(kind, None), None, outcomes)
    }

    #[test]
    fn summarize_keeps_the_fastest_run_and_the_highest_peak() {
        let r = row(
            ContenderKind::Sluice,
            &[ok(3.0, 10, 500), ok(2.0, 10, 700), ok(2.5, 10, 600)],
        );
        assert_eq!(r.status, RunStatus::Ok);
        assert_eq!(r.wall_s, Some(2.0));
        assert_eq!((r.cpu_s, r.others_cpu_s), (Some(4.0), Some(0.5)));
        assert_eq!(r.wall_samples_s, vec![3.0, 2.0, 2.5]);
        assert_eq!(r.peak_rss_bytes, Some(700));
        assert_eq!(r.rows_per_s, Some(5.0));
    }

    #[test]
    fn one_failed_run_fails_the_contender_with_its_stderr() {
        let failed = Outcome::Failed {
            status: "exit status: 1".into(),
            wall_s: Some(0.5),
            stderr_tail: "error[X]: boom".into(),
            stderr_path: Some("/w/p.stderr.txt".into()),
        };
        let r = row(ContenderKind::Polars, &[ok(1.0, 10, 1), failed]);
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(r.wall_s, None);
        assert_eq!(r.stderr_tail.as_deref(), Some("error[X]: boom"));
        assert_eq!(r.stderr_path, Some(PathBuf::from("/w/p.stderr.txt")));
        let s = summarize(&plan(ContenderKind::Duckdb, Some("no duckdb")), None, &[]);
        assert_eq!(s.status, RunStatus::Skipped);
        assert_eq!(s.note.as_deref(), Some("no duckdb"));
    }

    #[test]
    fn targets_pass_and_fail_on_the_issue_thresholds() {
        let mut rows = vec![
            row(ContenderKind::Sluice, &[ok(5.0, 100, 900 << 20)]),
            row(ContenderKind::SluiceCopyFloor, &[ok(4.5, 100, 1)]),
            row(ContenderKind::Duckdb, &[ok(25.0, 100, 1)]),
            row(ContenderKind::DuckdbMemoryLimited, &[ok(19.0, 100, 1)]),
            row(ContenderKind::Polars, &[ok(11.0, 99, 1)]),
        ];
        assert_eq!(compare_to_sluice(&mut rows), Some(false));
        assert_eq!(rows[2].ratio_vs_sluice, Some(5.0));
        assert_eq!(rows[4].rows_match_sluice, Some(false));
        let checks = check_targets(&rows);
        let verdicts: Vec<_> = checks.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Pass, // 25 / 5 = 5x
                Verdict::Fail, // 19 / 5 = 3.8x
                Verdict::Pass, // 11 / 5 = 2.2x
                Verdict::Pass, // 900 MiB
                Verdict::Pass, // 5 / 4.5 = 1.11x
            ]
        );
        assert_eq!(checks[3].measured, Some(900.0));
    }

    #[test]
    fn missing_contenders_leave_targets_unmeasured() {
        let mut rows = vec![
            row(ContenderKind::Sluice, &[ok(5.0, 100, 2 << 30)]),
            summarize(&plan(ContenderKind::Polars, Some("skip")), None, &[]),
        ];
        assert_eq!(compare_to_sluice(&mut rows), Some(true));
        let checks = check_targets(&rows);
        let verdicts: Vec<_> = checks.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Unmeasured,
                Verdict::Unmeasured,
                Verdict::Unmeasured,
                Verdict::Fail, // 2 GiB
                Verdict::Unmeasured,
            ]
        );
    }
}
