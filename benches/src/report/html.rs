//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external
//! reference) with the machine facts, then per benchmark its status, targets, charts and
//! results table. Opens offline in any browser; everything is escaped.

use super::model::{gib, load, Section, Table, Verdict};
use super::svg::{bar_chart, escape};
use super::Report;

const STYLE: &str = "body{font-family:sans-serif;max-width:980px;margin:2em auto;padding:0 1em;\
color:#1a202c}table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #cbd5e0;\
padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}\
th{background:#edf2f7}.pass{color:#276749;font-weight:bold}.fail{color:#9b2c2c;font-weight:bold}\
.unmeasured{color:#744210}pre{background:#f7fafc;padding:6px;overflow-x:auto}\
.quick{background:#fefcbf;padding:6px}svg{display:block;margin:.5em 0}";

/// The whole report as an HTML page.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <title>sluice benchmark report {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>sluice benchmark report</h1>\n",
        escape(&r.started_utc)
    );
    if r.quick {
        out.push_str(
            "<p class=\"quick\">Quick run on tiny inputs: a smoke test of the harnesses, \
             not a measurement.</p>\n",
        );
    }
    out.push_str(&machine(r));
    out.push_str("<ul>\n");
    for s in &r.sections {
        out.push_str(&format!(
            "<li><a href=\"#{}\">{}</a>: {}</li>\n",
            escape(&s.bench),
            escape(&s.title),
            escape(&s.status_line())
        ));
    }
    out.push_str("</ul>\n");
    for s in &r.sections {
        out.push_str(&section(s));
    }
    if !r.notes.is_empty() {
        out.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &r.notes {
            out.push_str(&format!("<li>{}</li>\n", escape(n)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn machine(r: &Report) -> String {
    let m = &r.machine;
    let facts = Table {
        header: vec!["fact".into(), "value".into()],
        rows: vec![
            vec!["started (UTC)".into(), r.started_utc.clone()],
            vec!["elapsed".into(), format!("{:.0} s", r.elapsed_s)],
            vec!["command".into(), r.command.clone()],
            vec![
                "CPU".into(),
                m.cpu_model.clone().unwrap_or_else(|| "unknown".into()),
            ],
            vec!["threads".into(), m.nproc.to_string()],
            vec!["RAM".into(), gib(m.mem_total_bytes)],
            vec!["RAM free at the start".into(), gib(m.mem_free_bytes)],
            vec![
                "free page reporting".into(),
                super::markdown::page_reporting(m.free_page_reporting).into(),
            ],
            vec![
                "kernel".into(),
                m.kernel.clone().unwrap_or_else(|| "unknown".into()),
            ],
            vec!["load average before".into(), load(r.loadavg_before)],
            vec!["load average after".into(), load(r.loadavg_after)],
            vec![
                "sluice".into(),
                format!("{} ({} build)", r.versions.sluice, r.versions.sluice_build),
            ],
            vec![
                "DuckDB".into(),
                r.versions
                    .duckdb
                    .clone()
                    .unwrap_or_else(|| "not available".into()),
            ],
            vec![
                "Polars".into(),
                r.versions
                    .polars
                    .clone()
                    .unwrap_or_else(|| "not available".into()),
            ],
        ],
    };
    format!("<h2>Machine</h2>\n{}", table(&facts))
}

fn section(s: &Section) -> String {
    let mut out = format!(
        "<h2 id=\"{}\">{}</h2>\n<p>{}</p>\n<p>Status: {}</p>\n",
        escape(&s.bench),
        escape(&s.title),
        escape(&s.measures),
        escape(&s.status_line())
    );
    if !s.inputs.is_empty() {
        out.push_str(&format!("<p>Inputs: {}</p>\n", escape(&s.inputs)));
    }
    out.push_str(&format!(
        "<p>Reproduce:</p>\n<pre>{}</pre>\n",
        escape(&s.reproduce)
    ));
    if !s.targets.is_empty() {
        out.push_str(
            "<h3>Targets</h3>\n<table>\n<tr><th>target</th><th>verdict</th><th>detail</th></tr>\n",
        );
        for t in &s.targets {
            let class = match t.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::Unmeasured => "unmeasured",
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>\n",
                escape(&t.target),
                t.verdict.label(),
                escape(&t.detail)
            ));
        }
        out.push_str("</table>\n");
    }
    for c in &s.charts {
        out.push_str(&bar_chart(c));
    }
    if let Some(t) = &s.table {
        out.push_str("<h3>Results</h3>\n");
        out.push_str(&table(t));
    }
    if !s.notes.is_empty() {
        out.push_str("<ul>\n");
        for n in &s.notes {
            out.push_str(&format!("<li>{}</li>\n", escape(n)));
        }
        out.push_str("</ul>\n");
    }
    out
}

/// An HTML table with a header row.
fn table(t: &Table) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for c in row {
            out.push_str(&format!("<td>{}</td>", escape(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}
