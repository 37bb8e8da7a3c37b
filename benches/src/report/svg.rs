//! Hand-written SVG bar charts for the benchmark report: no script, no fonts to fetch, no
//! library; a chart is a string that any browser (or image viewer) draws offline.
//!
//! What it is not: a general plotting tool. One shape only: horizontal bars on a linear
//! scale starting at zero, one bar per contender, the value written at the end of each bar.
//! Linear (not log) on purpose: the reader should *see* that a 40x gap is 40x; tiny bars
//! still get their number printed beside them.
//!
//! ```text
//!   title (and "lower is better" / "higher is better")
//!   label .......... |██████████████████████████████| 15.5 s
//!   label .......... |████████                       | 4.1 s
//!   label .......... skipped: python module duckdb is not importable
//!   <-- LABEL_W -->   <----------- BAR_W ----------->
//! ```
//!
//! Bar length = `value / max(values) * BAR_W`, so lengths are proportional across a chart
//! (not across charts). A bar without a value (skipped, failed) shows its note instead.

use super::model::{BarChart, Better};

/// Width of the label column, in SVG user units (px).
const LABEL_W: f64 = 250.0;
/// Width of the longest bar.
pub const BAR_W: f64 = 360.0;
/// Room right of the longest bar for its value.
const VALUE_W: f64 = 130.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 18.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 12.0;
/// Colour of sluice's own bars, and of everyone else's.
const SLUICE_FILL: &str = "#2b6cb0";
const OTHER_FILL: &str = "#a0aec0";

/// Total width of every chart.
pub fn chart_width() -> f64 {
    LABEL_W + BAR_W + VALUE_W
}

/// The chart as a standalone `<svg>` element (valid XML, no external references).
pub fn bar_chart(chart: &BarChart) -> String {
    let width = chart_width();
    let height = TOP + ROW_H * chart.bars.len().max(1) as f64 + BOTTOM;
    let max = chart
        .bars
        .iter()
        .filter_map(|b| b.value)
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(0.0_f64, f64::max);
    let better = match chart.better {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"{title}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n",
        title = escape(&chart.title),
    );
    s.push_str(&format!(
        "<text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{} ({})</text>\n\
         <text x=\"0\" y=\"32\" fill=\"#4a5568\">{better}</text>\n",
        escape(&chart.title),
        escape(&chart.unit)
    ));
    // The zero line the bars grow from.
    s.push_str(&format!(
        "<line x1=\"{LABEL_W}\" y1=\"{TOP}\" x2=\"{LABEL_W}\" y2=\"{:.1}\" stroke=\"#4a5568\"/>\n",
        height - BOTTOM
    ));
    for (i, bar) in chart.bars.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let text_y = y + BAR_H / 2.0 + 4.0;
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{text_y:.1}\" text-anchor=\"end\">{}</text>\n",
            LABEL_W - 6.0,
            escape(&bar.label)
        ));
        match bar.value.filter(|v| v.is_finite() && *v >= 0.0) {
            Some(v) => {
                let len = bar_length(v, max);
                let fill = if bar.is_sluice {
                    SLUICE_FILL
                } else {
                    OTHER_FILL
                };
                s.push_str(&format!(
                    "<rect x=\"{LABEL_W}\" y=\"{:.1}\" width=\"{len:.2}\" height=\"{BAR_H}\" \
                     fill=\"{fill}\"><title>{}: {}</title></rect>\n",
                    y + (ROW_H - BAR_H) / 2.0,
                    escape(&bar.label),
                    escape(&format_value(v, &chart.unit))
                ));
                s.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{text_y:.1}\">{}</text>\n",
                    LABEL_W + len + 6.0,
                    escape(&format_value(v, &chart.unit))
                ));
            }
            None => s.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{text_y:.1}\" fill=\"#9b2c2c\" font-style=\"italic\">{}</text>\n",
                LABEL_W + 6.0,
                escape(bar.note.as_deref().unwrap_or("not measured"))
            )),
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Length of a bar of `value` when the longest bar (`max`) is [`BAR_W`] long.
pub fn bar_length(value: f64, max: f64) -> f64 {
    if max <= 0.0 {
        return 0.0;
    }
    (value / max * BAR_W).clamp(0.0, BAR_W)
}

/// A value with its unit, with as many digits as its size needs.
pub fn format_value(v: f64, unit: &str) -> String {
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let number = if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{v:.digits$}")
    };
    format!("{number} {unit}").trim_end().to_string()
}

/// Escape text for XML content and attribute values (HTML accepts the same).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::model::Bar;

    /// A minimal XML well-formedness check: tags nest and close, attribute values are
    /// quoted, `&` only starts an entity, no stray `<` in text. Enough to catch what a
    /// string-built SVG/HTML gets wrong (an unescaped label, a tag left open).
    pub(crate) fn check_well_formed(xml: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open])?;
            let after = &rest[open + 1..];
            let close = after.find('>').ok_or("a '<' is never closed")?;
            let tag = &after[..close];
            rest = &after[close + 1..];
            if tag.starts_with('!') || tag.starts_with('?') {
                continue; // doctype, comment (none contain '>'), declaration
            }
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if top != name.trim() {
                    return Err(format!("</{name}> closes <{top}>"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name = body.split_whitespace().next().ok_or("an empty tag")?;
            check_attributes(&body[name.len()..])?;
            if !self_closing && !VOID_HTML.contains(&name) {
                stack.push(name.to_string());
            }
        }
        check_text(rest)?;
        match stack.pop() {
            Some(open) => Err(format!("<{open}> is never closed")),
            None => Ok(()),
        }
    }

    /// HTML elements without a closing tag.
    const VOID_HTML: [&str; 4] = ["meta", "br", "hr", "img"];

    fn check_text(text: &str) -> Result<(), String> {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                .iter()
                .any(|e| entity.starts_with(e));
            if !ok {
                return Err(format!("bare '&' in {text:?}"));
            }
        }
        if text.contains('>') {
            return Err(format!("bare '>' in text {text:?}"));
        }
        Ok(())
    }

    fn check_attributes(mut attrs: &str) -> Result<(), String> {
        loop {
            attrs = attrs.trim_start();
            if attrs.is_empty() {
                return Ok(());
            }
            let eq = attrs
                .find('=')
                .ok_or(format!("attribute without value: {attrs}"))?;
            let value = attrs[eq + 1..]
                .strip_prefix('"')
                .ok_or(format!("unquoted attribute: {attrs}"))?;
            let end = value.find('"').ok_or("an attribute value is not closed")?;
            check_text(&value[..end])?;
            attrs = &value[end + 1..];
        }
    }

    fn chart(values: &[Option<f64>]) -> BarChart {
        BarChart {
            title: "Sort <wall> & time".into(),
            unit: "s".into(),
            better: Better::Lower,
            bars: values
                .iter()
                .enumerate()
                .map(|(i, v)| Bar {
                    label: format!("contender \"{i}\" <x>"),
                    value: *v,
                    note: v.is_none().then(|| "skipped: no duckdb & co".to_string()),
                    is_sluice: i == 0,
                })
                .collect(),
        }
    }

    /// The `width` attributes of the `<rect>` bars, in order.
    fn bar_widths(svg: &str) -> Vec<f64> {
        svg.match_indices("<rect ")
            .filter_map(|(i, _)| {
                let w = svg[i..].split("width=\"").nth(1)?;
                w.split('"').next()?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn charts_are_well_formed_xml_with_escaped_labels() {
        let svg = bar_chart(&chart(&[Some(15.5), None, Some(78.1)]));
        assert_eq!(check_well_formed(&svg), Ok(()));
        assert!(svg.contains("Sort &lt;wall&gt; &amp; time"));
        assert!(svg.contains("contender &quot;1&quot; &lt;x&gt;"));
        assert!(svg.contains("skipped: no duckdb &amp; co"));
        assert!(!svg.contains("<script"));
        // The namespace is the only URL: nothing is fetched.
        assert_eq!(svg.matches("http").count(), 1);
        let empty = bar_chart(&chart(&[]));
        assert_eq!(check_well_formed(&empty), Ok(()));
    }

    #[test]
    fn bar_lengths_are_proportional_to_values() {
        let svg = bar_chart(&chart(&[Some(10.0), Some(40.0), Some(20.0), Some(0.0)]));
        let widths = bar_widths(&svg);
        assert_eq!(widths.len(), 4);
        assert!((widths[1] - BAR_W).abs() < 0.01, "{widths:?}");
        assert!((widths[0] - BAR_W / 4.0).abs() < 0.01, "{widths:?}");
        assert!((widths[2] - BAR_W / 2.0).abs() < 0.01, "{widths:?}");
        assert_eq!(widths[3], 0.0);
        // Missing bars draw no rect; NaN and negative values are not drawn either.
        let svg = bar_chart(&chart(&[Some(5.0), None, Some(f64::NAN), Some(-1.0)]));
        assert_eq!(bar_widths(&svg), [BAR_W]);
        assert_eq!(bar_length(3.0, 0.0), 0.0);
    }

    #[test]
    fn the_checker_rejects_broken_markup() {
        assert!(check_well_formed("<svg><text>a</svg>").is_err());
        assert!(check_well_formed("<svg><text>a & b</text></svg>").is_err());
        assert!(check_well_formed("<svg x=1></svg>").is_err());
        assert!(check_well_formed("<svg>").is_err());
        assert!(check_well_formed("<svg><rect x=\"1\"/></svg>").is_ok());
    }

    #[test]
    fn values_are_printed_with_their_unit() {
        assert_eq!(format_value(15.456, "s"), "15.5 s");
        assert_eq!(format_value(1.234, "x"), "1.23 x");
        assert_eq!(format_value(722.4, "MiB"), "722 MiB");
        assert_eq!(format_value(8_890_000.0, "rec/s"), "8.89M rec/s");
        assert_eq!(format_value(2.0, ""), "2.00");
    }
}
