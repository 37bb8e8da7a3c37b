//! Progress bars that appear only on a terminal: hidden in pipes, in CI logs and with
//! `--json`, so machine output stays clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Ctx;

/// A bar over `total` units (rows, bytes, ...) labelled with the phase; hidden unless stderr
/// is a terminal and `--json` is off.
pub fn bar(ctx: &Ctx, total: u64, phase: &str, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), target(ctx));
    let template = format!(
        "{{prefix:>10.bold}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} {{per_sec}} ETA {{eta}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(phase.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

fn target(ctx: &Ctx) -> ProgressDrawTarget {
    if !ctx.json && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(5)
    } else {
        ProgressDrawTarget::hidden()
    }
}
