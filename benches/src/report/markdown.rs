//! `report.md`: the report as GitHub-flavoured markdown (machine facts, then per benchmark
//! its status, inputs, targets and results table), for pasting into `docs/benchmarks.md`
//! or an issue. Charts are in the HTML only.

use super::model::{gib, load, Section, Table};
use super::Report;

/// The whole report as markdown.
pub fn render(r: &Report) -> String {
    let mut out = String::from("# sluice benchmark report\n\n");
    out.push_str(&machine_lines(r));
    for s in &r.sections {
        out.push('\n');
        out.push_str(&section(s));
    }
    if !r.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &r.notes {
            out.push_str(&format!("- {}\n", inline(n)));
        }
    }
    out
}

/// How a reader should take the free-page-reporting fact.
pub(crate) fn page_reporting(on: Option<bool>) -> &'static str {
    match on {
        Some(true) => "on (pages the guest has not used lately fault on the host: memory-heavy runs vary; compare within this run)",
        Some(false) => "off",
        None => "unknown",
    }
}

fn machine_lines(r: &Report) -> String {
    let m = &r.machine;
    let mut lines = vec![
        format!("- started: {} ({:.0} s)", r.started_utc, r.elapsed_s),
        format!("- command: `{}`", r.command),
        format!(
            "- machine: {}, {} threads, {} RAM, kernel {}",
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            m.nproc,
            gib(m.mem_total_bytes),
            m.kernel.as_deref().unwrap_or("unknown")
        ),
        format!(
            "- load average (1, 5, 15 min): before {}, after {}",
            load(r.loadavg_before),
            load(r.loadavg_after)
        ),
        format!(
            "- memory free at the start: {}; free page reporting to the host: {}",
            gib(m.mem_free_bytes),
            page_reporting(m.free_page_reporting)
        ),
        format!(
            "- versions: sluice {} ({} build), DuckDB {}, Polars {}",
            r.versions.sluice,
            r.versions.sluice_build,
            r.versions.duckdb.as_deref().unwrap_or("not available"),
            r.versions.polars.as_deref().unwrap_or("not available")
        ),
    ];
    if r.quick {
        lines.push("- **quick run** (tiny inputs): a smoke test, not a measurement".into());
    }
    lines.iter().map(|l| format!("{}\n", inline(l))).collect()
}

fn section(s: &Section) -> String {
    let mut out = format!("## {}\n\n{}\n\n", inline(&s.title), inline(&s.measures));
    out.push_str(&format!("- status: {}\n", inline(&s.status_line())));
    if !s.inputs.is_empty() {
        out.push_str(&format!("- inputs: {}\n", inline(&s.inputs)));
    }
    out.push_str(&format!("- reproduce: `{}`\n", s.reproduce));
    if !s.targets.is_empty() {
        let rows = s
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.target.clone(),
                    t.verdict.label().to_string(),
                    t.detail.clone(),
                ]
            })
            .collect();
        out.push_str("\nTargets:\n\n");
        out.push_str(&table(&Table {
            header: vec!["target".into(), "verdict".into(), "detail".into()],
            rows,
        }));
    }
    if let Some(t) = &s.table {
        out.push_str("\nResults:\n\n");
        out.push_str(&table(t));
    }
    if !s.notes.is_empty() {
        out.push('\n');
        for n in &s.notes {
            out.push_str(&format!("- note: {}\n", inline(n)));
        }
    }
    out
}

/// A markdown table; cells are escaped so `|` and newlines cannot break rows.
pub fn table(t: &Table) -> String {
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = row(&t.header);
    out.push_str(&format!("|{}\n", "---|".repeat(t.header.len())));
    for r in &t.rows {
        out.push_str(&row(r));
    }
    out
}

fn cell(text: &str) -> String {
    inline(text).replace('|', "\\|")
}

/// Text on one line (markdown ends a list item or a table row at a newline).
fn inline(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_one_row_per_line_and_escape_pipes() {
        let t = Table {
            header: vec!["case".into(), "MB/s".into()],
            rows: vec![
                vec!["dd | fsync".into(), "1513.2".into()],
                vec!["multi\nline".into(), "-".into()],
            ],
        };
        let md = table(&t);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines,
            [
                "| case | MB/s |",
                "|---|---|",
                "| dd \\| fsync | 1513.2 |",
                "| multi line | - |",
            ]
        );
        // Every row has as many unescaped separators as the header.
        let seps = |l: &str| l.replace("\\|", "").matches('|').count();
        assert!(lines.iter().all(|l| seps(l) == seps(lines[0])));
    }
}
