//! Progress bars that appear only on a terminal: hidden in pipes, in CI logs and with
//! `--json`, so machine output stays clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::cli::Ctx;

/// A bar over `total` units (rows, bytes, ...) labelled with the phase; hidden unless stderr
/// is a terminal and `--json` is off. One line of at most ~80 columns; the message (if
/// any) follows on its own lines.
pub fn bar(ctx: &Ctx, total: u64, phase: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target(ctx));
    let template = format!(
        "{{prefix:>10.bold}} [{{bar:24}}] {{human_pos}}/{{human_len}} {unit} {{rate}} ETA {{eta}}{{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        let style = style
            .with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", per_second(state.per_sec()));
                },
            )
            .progress_chars("=> ");
        pb.set_style(style);
    }
    pb.set_prefix(phase.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A rate for people: whole units with thousands separators (`375,626/s`).
pub fn per_second(rate: f64) -> String {
    let whole = if rate.is_finite() && rate > 0.0 {
        rate.round() as u64
    } else {
        0
    };
    format!("{}/s", HumanCount(whole))
}

fn target(ctx: &Ctx) -> ProgressDrawTarget {
    if !ctx.json && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(5)
    } else {
        ProgressDrawTarget::hidden()
    }
}

#[cfg(test)]
mod tests {
    use super::per_second;

    #[test]
    fn rates_are_whole_numbers_with_separators() {
        assert_eq!(per_second(236_903.768_5), "236,904/s");
        assert_eq!(per_second(0.4), "0/s");
        assert_eq!(per_second(f64::NAN), "0/s");
        assert_eq!(per_second(f64::INFINITY), "0/s");
        assert_eq!(per_second(12.0), "12/s");
    }
}
