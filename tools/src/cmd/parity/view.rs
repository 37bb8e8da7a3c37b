//! `sluice parity view`: every requested stream view against its source files, receipt and
//! manifest ([`sluice_sort::parity::view::check_view`]).

use std::path::PathBuf;

use indicatif::ProgressBar;
use serde_json::json;
use sluice_sort::parity::view::{check_view, ViewParity, ViewParityOptions};
use sluice_sort::SortSource;
use sluice_storage::view::{default_view_root, view_dir};

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The engine run root (source files and, by default, stream_view/).
    #[arg(long)]
    pub engine_root: PathBuf,
    /// Stream view root [default: <engine-root>/stream_view/ts_utc].
    #[arg(long)]
    pub view_root: Option<PathBuf>,
    /// Output ids to check (repeat or separate with commas).
    #[arg(long, value_delimiter = ',', conflicts_with = "all")]
    pub output_id: Vec<String>,
    /// Check every output that has source files and a view directory (the default).
    #[arg(long)]
    pub all: bool,
}

/// A progress bar behind the sort crate's progress trait.
struct Bar(ProgressBar);

impl sluice_sort::Progress for Bar {
    fn phase(&self, _name: &'static str, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

/// Check the views (library call, shared with `sluice demo`).
pub fn check_views(args: &Args, ctx: &Ctx) -> anyhow::Result<Vec<ViewParity>> {
    let ids = if args.output_id.is_empty() {
        // Local path or `s3://` root alike.
        let root = sluice_storage::object::fs::canonical_root(&args.engine_root)?;
        let view_root = args
            .view_root
            .clone()
            .unwrap_or_else(|| default_view_root(&root));
        SortSource::all_outputs(&root)?
            .into_iter()
            .filter_map(|id| {
                match sluice_storage::object::fs::dir_exists(&view_dir(&view_root, &id)) {
                    Ok(true) => Some(Ok(id)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .collect::<Result<_, _>>()?
    } else {
        args.output_id.clone()
    };
    if ids.is_empty() {
        return Err(crate::errors::CliError::new(
            "STREAM_VIEW_MISSING",
            format!(
                "no stream views of {} to check; build them with `sluice sort`",
                args.engine_root.display()
            ),
        ));
    }
    let mut reports = Vec::new();
    for id in ids {
        let bar = Bar(crate::progress::bar(ctx, 0, "parity", "rows"));
        bar.0.set_message(id.clone());
        let opts = ViewParityOptions {
            engine_root: args.engine_root.clone(),
            view_root: args.view_root.clone(),
            output_id: id,
        };
        let r = check_view(&opts, &bar);
        bar.0.finish_and_clear();
        reports.push(r?);
    }
    Ok(reports)
}

/// The human report of view checks.
pub fn human(reports: &[ViewParity]) -> String {
    let mut s = String::new();
    for r in reports {
        s.push_str(&format!(
            "{} {}: {} source rows in {} files, {} view rows in {} parts, {:.2} s\n",
            if r.ok { "PASS" } else { "FAIL" },
            r.output_id,
            r.source_rows,
            r.source_files,
            r.view_rows,
            r.parts,
            r.elapsed_s
        ));
        s.push_str(&super::check_table(&r.checks));
        s.push('\n');
    }
    let failed = reports.iter().filter(|r| !r.ok).count();
    s.push_str(&format!(
        "{} view(s) checked, {} failed",
        reports.len(),
        failed
    ));
    s
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let reports = check_views(&args, ctx)?;
    let failed: usize = reports
        .iter()
        .map(|r| super::failed_checks(&r.checks))
        .sum();
    let ok = failed == 0;
    ctx.emit(&json!({ "ok": ok, "views": reports }), || human(&reports));
    super::verdict("the stream views", failed)
}
