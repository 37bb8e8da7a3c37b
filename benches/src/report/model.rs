//! The report's neutral shape: one [`Section`] per benchmark (a table of strings, bar
//! charts of numbers, the targets with verdicts, notes, the command to reproduce),
//! so that the HTML, SVG and markdown renderers know nothing about any one harness.
//! [`super::sections`] fills it from each harness's own report.

use serde::Serialize;

/// Whether a smaller or a larger value wins, printed under the chart's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

/// One bar: a contender's value, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
    /// Shown instead of a bar when `value` is `None` (skipped, failed).
    pub note: Option<String>,
    /// sluice's own bars are drawn in a distinct colour.
    pub is_sluice: bool,
}

/// A horizontal bar chart on a linear scale from zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BarChart {
    pub title: String,
    pub unit: String,
    pub better: Better,
    pub bars: Vec<Bar>,
}

/// A table of preformatted cells (the renderers escape them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// PASS, FAIL, or UNMEASURED (a side it needs did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Fail,
    Unmeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unmeasured => "UNMEASURED",
        }
    }

    /// From a harness's `Option<bool>` (`None`: not measured).
    pub fn from_pass(pass: Option<bool>) -> Self {
        match pass {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::Unmeasured,
        }
    }
}

/// One of the targets, checked by the harness.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetLine {
    pub target: String,
    pub verdict: Verdict,
    /// The numbers behind the verdict, in words.
    pub detail: String,
}

/// Whether the benchmark ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SectionStatus {
    Ran,
    /// Not asked for (`--skip`).
    Skipped {
        reason: String,
    },
    /// The harness itself failed (no data, unwritable directory); its error code and message.
    Failed {
        code: String,
        message: String,
    },
}

/// One benchmark in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// `sort`, `bus` or `replay`.
    pub bench: String,
    pub title: String,
    /// What it measures, in a sentence or two.
    pub measures: String,
    /// The command that reruns just this benchmark with the same settings.
    pub reproduce: String,
    #[serde(flatten)]
    pub status: SectionStatus,
    /// Input and settings, in words.
    pub inputs: String,
    pub table: Option<Table>,
    pub charts: Vec<BarChart>,
    pub targets: Vec<TargetLine>,
    pub notes: Vec<String>,
}

impl Section {
    /// A section with its identity and nothing measured yet.
    pub fn new(bench: &str, title: &str, measures: &str, reproduce: String) -> Self {
        Section {
            bench: bench.to_string(),
            title: title.to_string(),
            measures: measures.to_string(),
            reproduce,
            status: SectionStatus::Ran,
            inputs: String::new(),
            table: None,
            charts: Vec::new(),
            targets: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A section of the benchmark `id`, nothing measured yet.
    pub fn of(id: &super::sections::Identity, reproduce: String) -> Self {
        Section::new(id.bench, id.title, id.measures, reproduce)
    }

    /// The status as one short line (`ran`, `skipped: …`, `FAILED error[CODE]: …`).
    pub fn status_line(&self) -> String {
        match &self.status {
            SectionStatus::Ran => "ran".to_string(),
            SectionStatus::Skipped { reason } => format!("skipped: {reason}"),
            SectionStatus::Failed { code, message } => format!("FAILED error[{code}]: {message}"),
        }
    }
}

/// Load averages as `1.50 0.60 0.30` (1, 5, 15 minutes), or `unknown`.
pub fn load(l: Option<[f64; 3]>) -> String {
    l.map_or("unknown".into(), |[a, b, c]| {
        format!("{a:.2} {b:.2} {c:.2}")
    })
}

/// Bytes of RAM as `23.5 GiB`, or `unknown`.
pub fn gib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| {
        format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))
    })
}

/// Seconds, or `-`.
pub fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// Bytes as MiB, or `-`.
pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.0}", to_mib(b)))
}

pub fn to_mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A rate with thousands grouping (`8,890,000`), or `-`.
pub fn rate(v: Option<f64>) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return "-".into();
    };
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as `5.04x`, or `-`.
pub fn ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_format_numbers_and_gaps() {
        assert_eq!(secs(Some(15.456)), "15.46");
        assert_eq!(secs(None), "-");
        assert_eq!(mib(Some(722 << 20)), "722");
        assert_eq!(rate(Some(8_890_000.4)), "8,890,000");
        assert_eq!(rate(Some(999.0)), "999");
        assert_eq!(rate(Some(1000.0)), "1,000");
        assert_eq!(rate(Some(f64::NAN)), "-");
        assert_eq!(ratio(Some(5.037)), "5.04x");
    }

    #[test]
    fn status_serialises_flat_with_its_reason() {
        let mut s = Section::new("bus", "Bus", "m", "sluice bench bus".into());
        s.status = SectionStatus::Failed {
            code: "IO_ERROR".into(),
            message: "disk".into(),
        };
        let v = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(v["status"], "FAILED");
        assert_eq!(v["code"], "IO_ERROR");
        assert_eq!(s.status_line(), "FAILED error[IO_ERROR]: disk");
    }
}
