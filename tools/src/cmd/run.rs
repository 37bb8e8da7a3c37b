//! `sluice run`: show (and with `--create`, make) the run-scoped directory.

use std::path::PathBuf;

use sluice_storage::run::{RunLayout, DEFAULT_PLATFORM};

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding `runs/` trees (the platform's `runs` folder).
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Platform name: the `<platform>` level of `runs/<platform>/<platform_run_id>/`.
    #[arg(long, default_value = DEFAULT_PLATFORM)]
    pub platform: String,
    /// Create the directories (and record a new id in ACTIVE_RUN_ID).
    #[arg(long)]
    pub create: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let layout = RunLayout::resolve(&args.runs_dir, &args.platform)?;
    if args.create {
        layout.ensure()?;
    }
    let summary = serde_json::json!({
        "platform_run_id": layout.platform_run_id,
        "source": layout.source,
        "run_root": layout.root(),
        "eb": layout.eb(), "ig": layout.ig(), "wsp": layout.wsp(), "logs": layout.logs(),
        "created": args.create,
    });
    ctx.emit(&summary, || {
        format!(
            "platform_run_id {} (from {:?})\nrun root        {}",
            layout.platform_run_id,
            layout.source,
            layout.root().display()
        )
    });
    Ok(())
}
